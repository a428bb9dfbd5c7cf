//! Release-built services as child processes: started on a free port,
//! waited on until healthy, measured (peak RSS, metrics), stopped.

use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use arkiv_tests::{ConfigFile, TestConfig};

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

pub struct Service {
    name: &'static str,
    child: Child,
    metrics: Option<String>,
    _config: Option<ConfigFile>,
}

impl Service {
    /// An Arkiv service with `config`, its ops listener (`listen_setting`)
    /// on a free port.
    pub async fn start(config: &TestConfig, name: &'static str, listen_setting: &str) -> Self {
        let port = free_port();
        let mut config = config.clone();
        config.set(listen_setting, format!("127.0.0.1:{port}"));
        let file = config.write();
        let path = file.path.to_str().expect("a UTF-8 path").to_owned();
        let mut service = Self::spawn(name, &["--config", &path]);
        service._config = Some(file);
        let metrics = format!("http://127.0.0.1:{port}/metrics");
        wait_ready(name, &metrics).await;
        service.metrics = Some(metrics);
        service
    }

    /// Any binary of the workspace with `args`, ready once `ready_url`
    /// answers.
    pub async fn start_plain(name: &'static str, args: &[&str], ready_url: &str) -> Self {
        let service = Self::spawn(name, args);
        wait_ready(name, ready_url).await;
        service
    }

    fn spawn(name: &'static str, args: &[&str]) -> Self {
        let mut command = Command::new(arkiv_tests::bin_path(name));
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("ARKIV_") {
                command.env_remove(key);
            }
        }
        let mut child = command
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {name}: {e}"));
        let stderr = child.stderr.take().expect("stderr");
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                eprintln!("{name}: {line}");
            }
        });
        Self {
            name,
            child,
            metrics: None,
            _config: None,
        }
    }

    /// Where the service serves (the address of its `/metrics`).
    pub fn url(&self) -> String {
        self.metrics
            .as_deref()
            .expect("an Arkiv service")
            .trim_end_matches("/metrics")
            .to_owned()
    }

    /// Peak resident memory so far (VmHWM), MiB.
    pub fn peak_rss_mb(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_else(|_| panic!("{} is still running", self.name));
        status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .expect("VmHWM in /proc/pid/status")
            / 1024.0
    }

    /// A counter or gauge from the service's `/metrics` (summed over labels).
    pub async fn metric(&self, name: &str) -> f64 {
        let url = self.metrics.as_ref().expect("an Arkiv service");
        let text = reqwest::get(url)
            .await
            .expect("scrape metrics")
            .text()
            .await
            .expect("metrics body");
        text.lines()
            .filter(|l| {
                l.strip_prefix(name)
                    .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
            })
            .filter_map(|l| l.split_whitespace().last()?.parse::<f64>().ok())
            .sum()
    }

    pub fn stop(mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = self.child.wait();
    }
}

async fn wait_ready(name: &str, url: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !reqwest::get(url)
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        assert!(Instant::now() < deadline, "{name} did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

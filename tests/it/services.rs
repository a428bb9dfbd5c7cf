//! Each service binary starts, reports healthy and stops cleanly.

use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use arkiv_tests::{bin_path, TestConfig, TestDb};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A command for a workspace binary that sees none of the caller's
/// `ARKIV_*` variables (a developer's shell may have sourced .run/env).
fn isolated_command(name: &str) -> Command {
    let mut command = Command::new(bin_path(name));
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("ARKIV_") {
            command.env_remove(key);
        }
    }
    command
}

struct Service {
    name: &'static str,
    child: Child,
}

impl Service {
    fn spawn(name: &'static str, args: &[&str]) -> Self {
        let child = isolated_command(name)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {name}: {e}"));
        Self { name, child }
    }

    fn stop(mut self) -> ExitStatus {
        kill(Pid::from_raw(self.child.id() as i32), Signal::SIGTERM).unwrap();
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not stop on SIGTERM",
                self.name
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Wait for exit (for a service expected to fail at start) and return
    /// its status and stderr.
    fn wait_failed(self) -> (ExitStatus, String) {
        let output = self.child.wait_with_output().unwrap();
        (
            output.status,
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }
}

async fn wait_healthy(name: &str, port: u16) -> serde_json::Value {
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/healthz");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(response) = client.get(&url).send().await {
            let status = response.status();
            let body: serde_json::Value = response.json().await.unwrap_or_default();
            if status.is_success() {
                return body;
            }
            assert!(
                Instant::now() < deadline,
                "{name} unhealthy: {status} {body}"
            );
        }
        assert!(Instant::now() < deadline, "{name} never answered on {url}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn every_service_starts_reports_healthy_and_exits_0_on_sigterm() {
    let db = TestDb::create().await;
    let mut config = TestConfig::isolated("services");
    config.set("database.url", db.url.clone());
    // (binary, listen setting, dependencies its /healthz must report)
    let services: [(&str, &str, &[&str]); 5] = [
        ("arkiv-api", "api.listen", &["postgres", "rabbitmq", "s3"]),
        (
            "arkiv-worker",
            "worker.listen",
            &["postgres", "rabbitmq", "s3"],
        ),
        (
            "arkiv-scheduler",
            "scheduler.listen",
            &["postgres", "rabbitmq", "s3"],
        ),
        (
            "arkiv-connector-m365",
            "m365.listen",
            &["postgres", "rabbitmq"],
        ),
        (
            "arkiv-connector-google",
            "google.listen",
            &["postgres", "rabbitmq"],
        ),
    ];
    let mut ports = Vec::new();
    for (_, setting, _) in services {
        let port = free_port();
        config.set(setting, format!("127.0.0.1:{port}"));
        ports.push(port);
    }
    let file = config.write();
    let path = file.path.to_str().unwrap();
    let running: Vec<Service> = services
        .iter()
        .map(|(name, _, _)| Service::spawn(name, &["--config", path]))
        .collect();
    for ((name, _, deps), port) in services.iter().zip(&ports) {
        let health = wait_healthy(name, *port).await;
        assert_eq!(health["status"], "ok", "{name}: {health}");
        assert_eq!(health["service"], *name);
        for dep in *deps {
            assert_eq!(
                health["checks"][dep], "ok",
                "{name} must check {dep}: {health}"
            );
        }
        let metrics = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
            .await
            .unwrap();
        assert!(metrics.status().is_success(), "{name} /metrics");
    }
    for service in running {
        let name = service.name;
        let status = service.stop();
        assert!(status.success(), "{name} exited with {status} on SIGTERM");
    }
}

#[tokio::test]
async fn the_simulator_starts_and_exits_0_on_sigterm() {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let sim = Service::spawn("arkiv-sim", &["--listen", &listen, "--dataset", "tiny"]);
    wait_healthy("arkiv-sim", port).await;
    let manifest: serde_json::Value = reqwest::get(format!("http://{listen}/_sim/manifest"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(manifest["dataset"], "tiny");
    let status = sim.stop();
    assert!(
        status.success(),
        "arkiv-sim exited with {status} on SIGTERM"
    );
}

#[tokio::test]
async fn a_service_with_a_missing_setting_fails_naming_it() {
    let mut config = TestConfig::isolated("missing");
    config.remove("rabbitmq");
    let file = config.write();
    let (status, stderr) =
        Service::spawn("arkiv-worker", &["--config", file.path.to_str().unwrap()]).wait_failed();
    assert!(!status.success());
    assert!(stderr.contains("rabbitmq.url"), "stderr: {stderr}");
    assert!(stderr.contains("ARKIV_RABBITMQ_URL"), "stderr: {stderr}");
}

#[tokio::test]
async fn a_service_with_a_wrong_setting_fails_naming_it() {
    let mut config = TestConfig::isolated("wrong");
    config.set("worker.listen", "localhost-ish");
    let file = config.write();
    let (status, stderr) =
        Service::spawn("arkiv-worker", &["--config", file.path.to_str().unwrap()]).wait_failed();
    assert!(!status.success());
    assert!(stderr.contains("worker.listen"), "stderr: {stderr}");
}

#[tokio::test]
async fn a_service_on_an_unmigrated_database_refuses_and_says_what_to_run() {
    let db = TestDb::create_empty().await;
    let mut config = TestConfig::isolated("unmigrated");
    config.set("database.url", db.url.clone());
    let file = config.write();
    let (status, stderr) = Service::spawn(
        "arkiv-scheduler",
        &["--config", file.path.to_str().unwrap()],
    )
    .wait_failed();
    assert!(!status.success());
    assert!(stderr.contains("arkiv migrate up"), "stderr: {stderr}");
}

#[tokio::test]
async fn cli_migrate_and_bootstrap_work_straight_on_the_database() {
    let db = TestDb::create_empty().await;
    let mut config = TestConfig::isolated("cli");
    config.set("database.url", db.url.clone());
    let file = config.write();
    let arkiv = |args: &[&str]| {
        let output = isolated_command("arkiv")
            .arg("--config")
            .arg(&file.path)
            .args(args)
            .output()
            .unwrap();
        (
            output.status,
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let (status, out, err) = arkiv(&["migrate", "status", "--json"]);
    assert!(status.success(), "{err}");
    let listed: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(listed
        .as_array()
        .unwrap()
        .iter()
        .all(|m| m["applied"] == false));

    let (status, _, err) = arkiv(&["bootstrap", "--json"]);
    assert!(
        !status.success(),
        "bootstrap must refuse an unmigrated database"
    );
    assert!(err.contains("arkiv migrate up"), "{err}");

    let (status, _, err) = arkiv(&["migrate", "up", "--json"]);
    assert!(status.success(), "{err}");

    let (status, out, err) = arkiv(&["bootstrap", "--json"]);
    assert!(status.success(), "{err}");
    let first: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(first["token"].as_str().unwrap().starts_with("ark_"));
    assert_eq!(first["created"], true);

    let (status, _, err) = arkiv(&["bootstrap", "--json"]);
    assert!(!status.success(), "a second bootstrap must be refused");
    assert!(err.contains("already exists"), "{err}");

    let (status, out, err) = arkiv(&["bootstrap", "--reissue", "--json"]);
    assert!(status.success(), "{err}");
    let again: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(again["principal_id"], first["principal_id"]);
    assert_ne!(again["token"], first["token"]);

    let report = arkiv_db::audit::verify(&db.conn, None).await.unwrap();
    assert_eq!(report.entries, 2, "both bootstraps are audited");
    assert!(report.is_intact());
}

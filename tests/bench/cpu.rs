//! Where the machine's CPU went during a measurement: user + system time of
//! every process on the machine, summed by component (RabbitMQ's Erlang VM,
//! PostgreSQL's backends, Garage, each Arkiv service, the bench itself), so
//! a throughput figure comes with the reason it is not higher.

use std::collections::BTreeMap;

/// CPU seconds so far, by component.
#[derive(Clone, Debug, Default)]
pub struct Sample(BTreeMap<&'static str, f64>);

impl Sample {
    pub fn now() -> Self {
        // /proc reports times in USER_HZ ticks, 100 per second on Linux.
        let ticks = 100.0;
        let mut by = BTreeMap::new();
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            // pid (comm) state ... utime(14) stime(15): comm may hold spaces.
            let Some((head, tail)) = stat.rsplit_once(')') else {
                continue;
            };
            let comm = head.split_once('(').map(|(_, c)| c).unwrap_or("");
            let fields: Vec<&str> = tail.split_whitespace().collect();
            let time = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
            let (Some(utime), Some(stime)) = (time(11), time(12)) else {
                continue;
            };
            *by.entry(component(comm)).or_insert(0.0) += (utime + stime) / ticks;
        }
        Self(by)
    }

    /// CPU seconds spent since `earlier`, as `name=seconds` pairs for a
    /// BENCH line, busiest first.
    pub fn since(&self, earlier: &Sample) -> String {
        self.minus(earlier)
            .busiest()
            .iter()
            .map(|(name, s)| format!("cpu_{name}_s={s:.1}"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// CPU seconds spent since `earlier`, by component.
    pub fn minus(&self, earlier: &Sample) -> Sample {
        Sample(
            self.0
                .iter()
                .map(|(name, s)| (*name, s - earlier.get(name)))
                .collect(),
        )
    }

    /// Components that spent at least 0.05 s, busiest first.
    pub fn busiest(&self) -> Vec<(&'static str, f64)> {
        let mut spent: Vec<(&'static str, f64)> = self
            .0
            .iter()
            .map(|(name, s)| (*name, *s))
            .filter(|(_, s)| *s >= 0.05)
            .collect();
        spent.sort_by(|a, b| b.1.total_cmp(&a.1));
        spent
    }

    pub fn get(&self, component: &str) -> f64 {
        self.0.get(component).copied().unwrap_or(0.0)
    }

    /// How busy the machine's cores were over `seconds`, from 0 to 1, by
    /// this (a difference of two samples): near 1, a run is bound by CPU,
    /// not by the time its requests wait.
    pub fn busy(&self, seconds: f64) -> f64 {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        self.0.values().sum::<f64>() / (seconds * cores)
    }
}

fn component(comm: &str) -> &'static str {
    match comm {
        "beam.smp" | "erl_child_setup" | "epmd" => "rabbitmq",
        "postgres" => "postgres",
        "garage" => "garage",
        "arkiv-worker" => "worker",
        // comm is cut at 15 characters.
        c if c.starts_with("arkiv-connector") => "connector",
        "arkiv-sim" => "sim",
        "arkiv-bench" => "bench",
        _ => "other",
    }
}

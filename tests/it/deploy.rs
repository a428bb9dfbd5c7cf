//! deploy/ cannot run here (no Docker engine, no cluster), so these tests
//! check what can be checked: every manifest parses, names every service,
//! probes its /healthz, and gives each service every setting it requires,
//! as the services themselves would read them.

use std::collections::BTreeMap;
use std::path::PathBuf;

use arkiv_config::Settings;
use arkiv_tests::workspace_root;
use serde_norway::Value;

/// (service, health port, needs S3). Every service needs PostgreSQL,
/// RabbitMQ and the keys.
const SERVICES: [(&str, u16, bool); 5] = [
    ("api", 8080, true),
    ("worker", 9101, true),
    ("scheduler", 9102, true),
    ("connector-m365", 9103, false),
    ("connector-google", 9104, false),
];

fn deploy(path: &str) -> PathBuf {
    workspace_root().join("deploy").join(path)
}

fn read(path: &str) -> String {
    std::fs::read_to_string(deploy(path)).unwrap_or_else(|e| panic!("deploy/{path}: {e}"))
}

/// `KEY=value` lines, as systemd's EnvironmentFile and compose's env_file.
fn env_file(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (k, v) = l.split_once('=').expect("KEY=value");
            (k.to_owned(), v.to_owned())
        })
        .collect()
}

/// The service can start with these settings: each requirement present.
fn assert_complete(where_: &str, service: &str, needs_s3: bool, settings: &Settings) {
    let context = format!("{where_}: {service}");
    settings.database().expect(&context);
    settings.rabbitmq().expect(&context);
    if needs_s3 {
        let regions = settings.regions().expect(&context);
        assert!(regions.len() >= 3, "{context} has regions {regions:?}");
    }
    let keys = settings.keys().expect(&context);
    assert!(
        keys.master_key.is_some() || keys.master_key_file.is_some(),
        "{where_}: {service} lacks keys.master_key"
    );
    assert!(
        keys.transport_key.is_some() || keys.transport_key_file.is_some(),
        "{where_}: {service} lacks keys.transport_key"
    );
}

fn listen_port(settings: &Settings, service: &str) -> u16 {
    match service {
        "api" => settings.api.listen.port(),
        "worker" => settings.worker.listen.port(),
        "scheduler" => settings.scheduler.listen.port(),
        "connector-m365" => settings.m365.listen.port(),
        "connector-google" => settings.google.listen.port(),
        other => panic!("unknown service {other}"),
    }
}

#[test]
fn systemd_units_start_every_service_with_a_complete_configuration() {
    let toml = read("arkiv.example.toml");
    let env = env_file(&read("systemd/arkiv.env.example"));
    let settings = Settings::from_sources(Some(&toml), env).expect("example config parses");
    for (service, _, needs_s3) in SERVICES {
        let unit = read(&format!("systemd/arkiv-{service}.service"));
        let mut section = String::new();
        let mut keys = BTreeMap::new();
        for line in unit.lines().map(str::trim) {
            if line.starts_with('[') {
                section = line.trim_matches(['[', ']']).to_owned();
            } else if let Some((k, v)) = line.split_once('=') {
                keys.insert(format!("{section}.{k}"), v.to_owned());
            }
        }
        let exec = &keys["Service.ExecStart"];
        assert!(
            exec.starts_with(&format!(
                "/usr/local/bin/arkiv-{service} --config /etc/arkiv/arkiv.toml"
            )),
            "{service}: {exec}"
        );
        assert_eq!(keys["Service.EnvironmentFile"], "/etc/arkiv/arkiv.env");
        assert_eq!(keys["Service.KillSignal"], "SIGTERM");
        assert!(keys.contains_key("Install.WantedBy"));
        assert_complete("systemd", service, needs_s3, &settings);
    }
}

#[test]
fn compose_runs_every_service_and_its_dependencies_with_health_checks() {
    let mut compose: Value = serde_norway::from_str(&read("compose/docker-compose.yml")).unwrap();
    compose.apply_merge().unwrap();
    let services = compose["services"].as_mapping().expect("services");
    for dependency in ["postgres", "rabbitmq", "garage"] {
        assert!(
            services.contains_key(dependency),
            "compose lacks {dependency}"
        );
    }
    let shared_env = env_file(&read("compose/arkiv.env"));
    for (service, port, needs_s3) in SERVICES {
        let spec = &compose["services"][service];
        assert!(spec.is_mapping(), "compose lacks {service}");
        assert_eq!(spec["env_file"].as_str(), Some("arkiv.env"), "{service}");
        assert_eq!(
            spec["command"][0].as_str(),
            Some(format!("arkiv-{service}").as_str())
        );
        let probe: Vec<&str> = spec["healthcheck"]["test"]
            .as_sequence()
            .expect("healthcheck")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert!(
            probe.contains(&format!("http://127.0.0.1:{port}/healthz").as_str()),
            "{service}: {probe:?}"
        );
        let mut env = shared_env.clone();
        if let Some(extra) = spec["environment"].as_mapping() {
            for (k, v) in extra {
                env.push((
                    k.as_str().unwrap().to_owned(),
                    v.as_str().unwrap().to_owned(),
                ));
            }
        }
        let settings =
            Settings::from_sources(None, env).unwrap_or_else(|e| panic!("compose {service}: {e}"));
        assert_complete("compose", service, needs_s3, &settings);
        assert_eq!(
            listen_port(&settings, service),
            port,
            "{service} listens where it is probed"
        );
    }
}

#[test]
fn kubernetes_deploys_every_service_with_probes_and_a_complete_configuration() {
    let text = read("k8s/arkiv.yaml");
    let docs: Vec<Value> = serde_norway::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).expect("each document parses"))
        .collect();
    let find = |kind: &str, name: &str| {
        docs.iter()
            .find(|d| {
                d["kind"].as_str() == Some(kind) && d["metadata"]["name"].as_str() == Some(name)
            })
            .unwrap_or_else(|| panic!("k8s lacks {kind} {name}"))
    };
    for dependency in ["postgres", "rabbitmq", "garage"] {
        find("StatefulSet", dependency);
        find("Service", dependency);
    }
    find("Job", "arkiv-migrate");
    let toml = find("ConfigMap", "arkiv-config")["data"]["arkiv.toml"]
        .as_str()
        .expect("arkiv.toml in the ConfigMap")
        .to_owned();
    let env: Vec<(String, String)> = find("Secret", "arkiv-env")["stringData"]
        .as_mapping()
        .expect("stringData")
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().unwrap().to_owned(),
                v.as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let settings = Settings::from_sources(Some(&toml), env).expect("k8s configuration parses");
    for (service, port, needs_s3) in SERVICES {
        let deployment = find("Deployment", &format!("arkiv-{service}"));
        let container = &deployment["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(
            container["args"][0].as_str(),
            Some(format!("arkiv-{service}").as_str())
        );
        for probe in ["readinessProbe", "livenessProbe"] {
            let get = &container[probe]["httpGet"];
            assert_eq!(get["path"].as_str(), Some("/healthz"), "{service} {probe}");
            assert_eq!(
                get["port"].as_u64(),
                Some(u64::from(port)),
                "{service} {probe}"
            );
        }
        assert_complete("k8s", service, needs_s3, &settings);
        assert_eq!(
            listen_port(&settings, service),
            port,
            "{service} listens where it is probed"
        );
    }
}

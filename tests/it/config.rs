//! The configuration the local set-up writes is complete and valid.

use arkiv_tests::{base_config_path, TestConfig};

#[test]
fn the_setup_configuration_is_complete() {
    let settings = arkiv_config::Settings::load(Some(&base_config_path()))
        .expect("make setup writes a valid configuration");
    settings.database().unwrap();
    settings.rabbitmq().unwrap();
    let regions: Vec<String> = settings
        .regions()
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect();
    for required in ["eu", "uk", "us"] {
        assert!(
            regions.iter().any(|r| r == required),
            "region {required} missing: {regions:?}"
        );
    }
    let keys = settings.keys().unwrap();
    keys.master_key().unwrap();
    keys.transport_key().unwrap();
}

#[test]
fn every_listener_in_the_setup_configuration_is_loopback() {
    let settings = TestConfig::isolated("loopback").settings();
    for addr in [
        settings.api.listen,
        settings.worker.listen,
        settings.scheduler.listen,
        settings.m365.listen,
        settings.google.listen,
    ] {
        assert!(addr.ip().is_loopback(), "{addr} is not loopback");
    }
}

#![allow(clippy::result_large_err)] // figment::Jail closures return figment::Error

use figment::Jail;
use secrecy::ExposeSecret;

use super::*;

const MINIMAL: &str = r#"
[database]
url = "postgres://127.0.0.1/arkiv"

[rabbitmq]
url = "amqp://guest:guest@127.0.0.1:5672/%2f"

[s3]
endpoint = "http://127.0.0.1:3900"
access_key = "GK0000"
secret_key = "secret"
buckets = { eu = "arkiv-eu", uk = "arkiv-uk" }

[keys]
master_key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
"#;

#[test]
fn a_complete_file_loads_with_defaults_filled_in() {
    let s = Settings::from_toml_str(MINIMAL).unwrap();
    assert_eq!(s.database().unwrap().max_connections, 10);
    assert_eq!(s.rabbitmq().unwrap().queue_prefix, "arkiv");
    assert_eq!(
        s.regions()
            .unwrap()
            .iter()
            .map(|r| r.as_str())
            .collect::<Vec<_>>(),
        ["eu", "uk"]
    );
    assert_eq!(s.api.listen.to_string(), "127.0.0.1:8080");
    let key = s.keys().unwrap().master_key().unwrap();
    assert_eq!(secrecy::ExposeSecret::expose_secret(&key)[31], 31);
}

#[test]
fn a_missing_section_names_the_setting_and_its_variable() {
    let s = Settings::from_toml_str("").unwrap();
    let err = s.database().unwrap_err();
    assert_eq!(err.setting(), Some("database.url"));
    assert!(err.to_string().contains("ARKIV_DATABASE_URL"), "{err}");
}

#[test]
fn a_missing_field_inside_a_section_names_the_setting() {
    let err =
        Settings::from_toml_str("[s3]\nendpoint = \"http://x\"\naccess_key = \"a\"").unwrap_err();
    assert_eq!(err.setting(), Some("s3.secret_key"), "{err}");
    assert!(err.to_string().contains("ARKIV_S3_SECRET_KEY"), "{err}");
}

#[test]
fn a_value_of_the_wrong_kind_names_the_setting() {
    let err = Settings::from_toml_str("[api]\nlisten = \"not an address\"").unwrap_err();
    assert_eq!(err.setting(), Some("api.listen"), "{err}");

    let err =
        Settings::from_toml_str("[database]\nurl = \"x\"\nmax_connections = \"many\"").unwrap_err();
    assert_eq!(err.setting(), Some("database.max_connections"), "{err}");

    let err = Settings::from_toml_str("[log]\nformat = \"xml\"").unwrap_err();
    assert_eq!(err.setting(), Some("log.format"), "{err}");
}

#[test]
fn a_malformed_region_name_is_refused() {
    let toml = MINIMAL.replace("uk = ", "\"U K\" = ");
    let err = Settings::from_toml_str(&toml).unwrap_err();
    assert!(err.setting().unwrap().starts_with("s3.buckets"), "{err}");
    assert!(err.to_string().contains("invalid region"), "{err}");
}

#[test]
fn an_unknown_setting_is_refused_by_name() {
    let err = Settings::from_toml_str("[database]\nurl = \"x\"\npool = 3").unwrap_err();
    assert_eq!(err.setting(), Some("database.pool"), "{err}");
    assert!(err.to_string().contains("max_connections"), "{err}");
}

#[test]
fn a_bad_master_key_names_the_setting() {
    let s = Settings::from_toml_str("[keys]\nmaster_key = \"c2hvcnQ=\"").unwrap();
    let err = s.keys().unwrap().master_key().unwrap_err();
    assert_eq!(err.setting(), Some("keys.master_key"));
    assert!(err.to_string().contains("32 bytes"), "{err}");

    let s = Settings::from_toml_str("[keys]\nmaster_key_file = \"/nonexistent/kek\"").unwrap();
    let err = s.keys().unwrap().master_key().unwrap_err();
    assert_eq!(err.setting(), Some("keys.master_key_file"), "{err}");
}

#[test]
fn no_buckets_means_no_regions_and_is_refused() {
    let s = Settings::from_toml_str(
        "[s3]\nendpoint = \"http://x\"\naccess_key = \"a\"\nsecret_key = \"b\"",
    )
    .unwrap();
    assert_eq!(s.s3().unwrap_err().setting(), Some("s3.buckets"));
}

#[test]
fn environment_variables_override_the_file() {
    Jail::expect_with(|jail| {
        jail.clear_env();
        jail.create_file("arkiv.toml", MINIMAL)?;
        jail.set_env("ARKIV_DATABASE_MAX_CONNECTIONS", "3");
        jail.set_env("ARKIV_S3_BUCKETS__US", "arkiv-us");
        jail.set_env("ARKIV_M365_CLIENT_ID", "12345");
        jail.set_env("ARKIV_S3_SECRET_KEY", "12e45");
        jail.set_env("ARKIV_S3_PATH_STYLE", "false");
        jail.set_env("ARKIV_WORKER_REGIONS", "eu, us");
        // Not settings: used by the CLI and scripts.
        jail.set_env("ARKIV_API", "http://127.0.0.1:8080");
        jail.set_env("ARKIV_TOKEN", "secret");
        let s = Settings::load(Some(std::path::Path::new("arkiv.toml"))).unwrap();
        assert_eq!(s.database().unwrap().max_connections, 3);
        assert_eq!(s.regions().unwrap().len(), 3);
        // Values stay the exact strings given, never numbers.
        assert_eq!(s.m365.client_id.as_deref(), Some("12345"));
        assert_eq!(s.s3().unwrap().secret_key.expose_secret(), "12e45");
        assert!(!s.s3().unwrap().path_style);
        assert_eq!(s.worker.regions.len(), 2);
        Ok(())
    });
}

#[test]
fn a_misspelt_environment_variable_is_refused_by_name() {
    Jail::expect_with(|jail| {
        jail.clear_env();
        jail.set_env("ARKIV_S3_ENDPIONT", "http://x");
        let err = Settings::load(None).unwrap_err();
        assert_eq!(err.setting(), Some("s3.endpiont"), "{err}");
        assert!(err.to_string().contains("ARKIV_S3_ENDPIONT"), "{err}");
        Ok(())
    });
}

#[test]
fn settings_can_come_from_a_set_of_variables() {
    let vars = [
        ("ARKIV_DATABASE_URL", "postgres://db/arkiv"),
        ("PATH", "/usr/bin"),
    ]
    .map(|(k, v)| (k.to_owned(), v.to_owned()));
    let s =
        Settings::from_sources(Some("[database]\nurl = \"x\"\nmax_connections = 4"), vars).unwrap();
    assert_eq!(
        s.database().unwrap().url.expose_secret(),
        "postgres://db/arkiv"
    );
    assert_eq!(s.database().unwrap().max_connections, 4);
}

#[test]
fn a_missing_config_file_is_named() {
    let err = Settings::load(Some(std::path::Path::new("/nonexistent/arkiv.toml"))).unwrap_err();
    assert!(err.to_string().contains("/nonexistent/arkiv.toml"), "{err}");
}

#[test]
fn env_var_names_follow_the_documented_rule() {
    assert_eq!(env_var_for("s3.endpoint"), "ARKIV_S3_ENDPOINT");
    assert_eq!(env_var_for("s3.buckets.eu"), "ARKIV_S3_BUCKETS__EU");
    assert_eq!(
        env_var_for("keys.master_key_file"),
        "ARKIV_KEYS_MASTER_KEY_FILE"
    );
}

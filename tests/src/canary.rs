//! Looking for a canary string where plaintext must never be: S3 objects
//! (keys and bodies), a PostgreSQL dump, RabbitMQ's data directory, logs.
//! Each search is shown to work first (a control that must be found), so
//! "not found" means something.

use std::path::Path;

/// Whether `needle` occurs in `haystack`.
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// Whether any file under `dir` holds `needle` (grep -r, binary files too).
pub fn grep_dir(dir: &Path, needle: &str) -> bool {
    let status = std::process::Command::new("grep")
        .args(["-r", "-F", "-q", "-a", "-s", "-D", "skip", "--", needle])
        .arg(dir)
        .status()
        .expect("grep runs");
    assert!(
        status.code() != Some(2),
        "grep could not read {}",
        dir.display()
    );
    status.success()
}

/// RabbitMQ's data directory (`ARKIV_RABBITMQ_DATA_DIR` overrides).
pub fn rabbitmq_data_dir() -> std::path::PathBuf {
    std::env::var_os("ARKIV_RABBITMQ_DATA_DIR")
        .map(Into::into)
        .unwrap_or_else(|| "/var/lib/rabbitmq".into())
}

/// A data-only dump of the database at `url`.
pub fn pg_dump(url: &str) -> Vec<u8> {
    let dump = std::process::Command::new("pg_dump")
        .arg("--data-only")
        .arg(url)
        .output()
        .expect("pg_dump runs");
    assert!(
        dump.status.success(),
        "pg_dump: {}",
        String::from_utf8_lossy(&dump.stderr)
    );
    dump.stdout
}

/// Assert that no object of `store` (every region, under its key prefix)
/// holds `needle` in its key or body; returns how many objects were read.
pub async fn assert_absent_from_store(store: &arkiv_store::ObjectStore, needle: &str) -> usize {
    let regions: Vec<_> = store.regions().cloned().collect();
    let mut objects = 0;
    for region in regions {
        for key in store.list(&region, "").await.expect("list objects") {
            objects += 1;
            assert!(!key.contains(needle), "object key {key}");
            let body = store.get(&region, &key).await.expect("read object");
            assert!(!contains(&body, needle.as_bytes()), "object {key}");
        }
    }
    objects
}

/// Assert that nothing under RabbitMQ's data directory holds `needle`,
/// once the search is shown to see message bodies: a control message,
/// published unsealed on purpose to a scratch queue, is found there.
pub async fn assert_absent_from_rabbitmq(broker: &arkiv_queue::Broker, needle: &str) {
    let control = format!("CONTROL{}", uuid::Uuid::new_v4().simple());
    let scratch = broker
        .declare_quorum_queue("canary-control")
        .await
        .expect("declare the scratch queue");
    broker
        .publisher()
        .await
        .expect("a publisher")
        .publish("", &scratch, control.as_bytes(), Default::default())
        .await
        .expect("the control is confirmed");
    let data = rabbitmq_data_dir();
    assert!(
        grep_dir(&data, &control),
        "the control message is found in {}: the search sees message bodies",
        data.display()
    );
    assert!(!grep_dir(&data, needle), "RabbitMQ data");
    broker
        .delete_queue(&scratch)
        .await
        .expect("delete the scratch queue");
}

/// Assert that a data-only dump of the database at `url` holds `control`
/// (some value its rows must contain) and not `needle`.
pub fn assert_absent_from_database(url: &str, control: &str, needle: &str) {
    let dump = pg_dump(url);
    assert!(
        contains(&dump, control.as_bytes()),
        "the dump holds {control}"
    );
    assert!(!contains(&dump, needle.as_bytes()), "PostgreSQL dump");
}

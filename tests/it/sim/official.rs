//! The official client libraries (Microsoft's msgraph-sdk with MSAL,
//! Google's google-api-python-client with google-auth) against the
//! simulator: `tests/python/official_clients.py` authenticates, lists,
//! pages, delta-syncs, downloads, inserts and deletes across every
//! workload. `make setup` installs them into `$ARKIV_STATE/venv`.

use std::path::PathBuf;

use super::*;

fn python() -> PathBuf {
    let state = std::env::var_os("ARKIV_STATE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var("HOME").expect("HOME")).join(".arkiv-dev"));
    let python = state.join("venv/bin/python");
    assert!(
        python.is_file(),
        "{} is missing: run `make setup`, which installs the official client libraries",
        python.display()
    );
    python
}

#[tokio::test]
async fn the_official_client_libraries_work_against_the_simulator() {
    let sim = start().await;
    let script = arkiv_tests::workspace_root().join("tests/python/official_clients.py");
    let output = tokio::process::Command::new(python())
        .arg(script)
        .arg(sim.base_url())
        .output()
        .await
        .expect("run the Python script");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "official clients failed:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("all official-client checks passed"),
        "{stdout}"
    );
    sim.stop().await;
}

//! A partner onboards a customer and its admin connects the simulator's
//! Microsoft tenant and Google domain, with the `arkiv` CLI alone (and the
//! admin's browser for the consent page).

use serde_json::Value;

use super::*;

/// Run the CLI. It blocks its thread, so the test runs on a multi-threaded
/// runtime: the API and the simulator it calls are served by the others.
fn arkiv(api: &TestApi, token: &str, args: &[&str]) -> Value {
    let mut command = std::process::Command::new(arkiv_tests::bin_path("arkiv"));
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("ARKIV_") {
            command.env_remove(key);
        }
    }
    let output = command
        .env("ARKIV_API", &api.url)
        .env("ARKIV_TOKEN", token)
        .args(args)
        .arg("--json")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "arkiv {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("arkiv {args:?} printed no JSON ({e}): {stdout}"))
}

fn id(v: &Value) -> String {
    v["id"].as_str().expect("an id").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partner_onboards_a_customer_who_connects_both_providers_from_the_cli() {
    let api = TestApi::start().await;
    let op = api.operator.clone();
    // The operator creates a partner and its admin.
    let partner = id(&arkiv(
        &api,
        &op,
        &["partner", "create", "--name", "Adatum MSP"],
    ));
    let pa = id(&arkiv(
        &api,
        &op,
        &[
            "principal",
            "create",
            "--role",
            "partner-admin",
            "--partner",
            &partner,
            "--email",
            "ops@adatum.test",
        ],
    ));
    let pa_token = arkiv(&api, &op, &["token", "create", "--principal", &pa])["token"]
        .as_str()
        .unwrap()
        .to_owned();

    // The partner onboards a customer in the EU and creates its admin.
    let tenant = arkiv(
        &api,
        &pa_token,
        &[
            "tenant",
            "create",
            "--partner",
            &partner,
            "--name",
            "Tailspin Toys",
            "--region",
            "eu",
        ],
    );
    assert_eq!(tenant["region"], "eu");
    assert_eq!(tenant["subscription_state"], "trial");
    let tenant = id(&tenant);
    let ta = id(&arkiv(
        &api,
        &pa_token,
        &[
            "principal",
            "create",
            "--role",
            "tenant-admin",
            "--tenant",
            &tenant,
            "--email",
            "it@tailspin.test",
        ],
    ));
    let ta_token = arkiv(&api, &pa_token, &["token", "create", "--principal", &ta])["token"]
        .as_str()
        .unwrap()
        .to_owned();

    // The customer's admin connects Microsoft 365: the consent URL, then the browser.
    let domain = api.manifest["m365"][0]["domain"].as_str().unwrap();
    let started = arkiv(
        &api,
        &ta_token,
        &["connect", "m365", "--tenant", &tenant, "--domain", domain],
    );
    let consent = reqwest::get(started["consent_url"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(consent.status(), 200, "{}", consent.text().await.unwrap());

    // And Google Workspace, whose admin delegated to Arkiv's service account.
    let g = &api.manifest["google"][0];
    let google = arkiv(
        &api,
        &ta_token,
        &[
            "connect",
            "google",
            "--tenant",
            &tenant,
            "--domain",
            g["domain"].as_str().unwrap(),
            "--admin",
            g["admin"].as_str().unwrap(),
        ],
    );
    assert_eq!(google["status"], "active");

    let connections = arkiv(
        &api,
        &ta_token,
        &["connection", "list", "--tenant", &tenant],
    );
    let mut providers: Vec<(&str, &str)> = connections
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["provider"].as_str().unwrap(),
                c["status"].as_str().unwrap(),
            )
        })
        .collect();
    providers.sort();
    assert_eq!(providers, [("google", "active"), ("m365", "active")]);
    let accounts = arkiv(&api, &ta_token, &["account", "list", "--tenant", &tenant]);
    let expected = api.manifest["m365"][0]["users"].as_array().unwrap().len()
        + g["users"].as_array().unwrap().len();
    assert_eq!(accounts.as_array().unwrap().len(), expected);
    assert!(
        accounts[0]["email"].as_str().unwrap().contains('@') && accounts[0]["included"] == true
    );

    // Support access, then the audit log.
    let grant = arkiv(
        &api,
        &ta_token,
        &["grant", "support", "--tenant", &tenant, "--hours", "8"],
    );
    assert_eq!(grant["active"], true);
    let verified = arkiv(&api, &ta_token, &["audit", "verify", "--tenant", &tenant]);
    assert_eq!(verified["intact"], true);
    let mut export = std::process::Command::new(arkiv_tests::bin_path("arkiv"));
    let csv = export
        .env("ARKIV_API", &api.url)
        .env("ARKIV_TOKEN", &ta_token)
        .args(["audit", "export", "--tenant", &tenant, "--format", "csv"])
        .output()
        .unwrap();
    let csv = String::from_utf8(csv.stdout).unwrap();
    for action in [
        "tenant.create",
        "connection.m365.activate",
        "connection.google.connect",
        "support_grant.create",
    ] {
        assert!(csv.contains(action), "{action} missing from the CSV export");
    }

    // Errors go to stderr with a non-zero exit.
    let failed = std::process::Command::new(arkiv_tests::bin_path("arkiv"))
        .env("ARKIV_API", &api.url)
        .env("ARKIV_TOKEN", &ta_token)
        .args([
            "tenant",
            "create",
            "--partner",
            &partner,
            "--name",
            "X",
            "--region",
            "eu",
        ])
        .output()
        .unwrap();
    assert!(!failed.status.success());
    assert!(String::from_utf8_lossy(&failed.stderr).contains("Not found"));
}

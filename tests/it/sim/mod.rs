//! Conformance of the cloud simulator: the Rust client crates Arkiv uses
//! (graph-rs-sdk; google-gmail1, google-drive3, google-calendar3 with
//! yup-oauth2) pointed at it with only their base URL changed, and reqwest
//! for the wire-level edge cases the crates hide.

mod google;
mod graph;
mod official;
mod wire;

use arkiv_cloud_sim::{SimConfig, Simulator};
use serde_json::{json, Value};

/// A simulator in this process, on a free port, with the tiny dataset.
pub async fn start() -> Simulator {
    arkiv_cloud_sim::start("127.0.0.1:0".parse().unwrap(), SimConfig::tiny())
        .await
        .expect("simulator starts")
}

pub async fn manifest(sim: &Simulator) -> Value {
    get_json(&format!("{}/_sim/manifest", sim.base_url())).await
}

pub async fn get_json(url: &str) -> Value {
    reqwest::get(url).await.unwrap().json().await.unwrap()
}

pub async fn post_json(url: &str, body: Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(url)
        .json(&body)
        .send()
        .await
        .unwrap()
}

pub async fn stats(sim: &Simulator) -> Value {
    get_json(&format!("{}/_sim/stats", sim.base_url())).await
}

pub async fn set_faults(sim: &Simulator, faults: Value) {
    let r = post_json(&format!("{}/_sim/faults", sim.base_url()), faults).await;
    assert!(
        r.status().is_success(),
        "faults refused: {}",
        r.text().await.unwrap()
    );
}

pub async fn expire_cursors(sim: &Simulator) {
    let r = reqwest::Client::new()
        .post(format!("{}/_sim/expire-cursors", sim.base_url()))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
}

/// A client that does not follow redirects, to see them.
pub fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Consent as the tenant's admin (following the consent URL like a
/// browser), then get an app-only token by client credentials.
pub async fn graph_token(sim: &Simulator) -> String {
    let m = manifest(sim).await;
    let tenant = &m["m365"][0];
    let consent = format!(
        "{}/{}/adminconsent?client_id={}&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcallback&state=s1",
        sim.base_url(),
        tenant["domain"].as_str().unwrap(),
        tenant["client_id"].as_str().unwrap()
    );
    let r = no_redirects().get(consent).send().await.unwrap();
    assert_eq!(r.status(), 302, "consent redirects back");
    client_credentials(
        sim,
        tenant["tenant_id"].as_str().unwrap(),
        tenant["client_id"].as_str().unwrap(),
        tenant["client_secret"].as_str().unwrap(),
    )
    .await
    .expect("token")
}

pub async fn client_credentials(
    sim: &Simulator,
    tenant: &str,
    client_id: &str,
    secret: &str,
) -> Result<String, (u16, Value)> {
    let r = reqwest::Client::new()
        .post(format!("{}/{tenant}/oauth2/v2.0/token", sim.base_url()))
        .form(&[
            ("client_id", client_id),
            ("client_secret", secret),
            ("scope", "https://graph.microsoft.com/.default"),
            ("grant_type", "client_credentials"),
        ])
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let body: Value = r.json().await.unwrap();
    if status == 200 {
        Ok(body["access_token"].as_str().unwrap().to_owned())
    } else {
        Err((status, body))
    }
}

pub fn graph_client(sim: &Simulator, token: &str) -> graph_rs_sdk::GraphClient {
    let config = graph_rs_sdk::GraphClientConfiguration::new()
        .access_token(token)
        .https_only(false);
    let mut client = graph_rs_sdk::GraphClient::from(config);
    client.use_test_endpoint(&url::Url::parse(&format!("{}/v1.0", sim.base_url())).unwrap());
    client
}

/// The JSON of a raw Graph call (for what the SDK does not model).
pub async fn graph_get(sim: &Simulator, token: &str, path: &str) -> (u16, Value) {
    let r = reqwest::Client::new()
        .get(format!("{}/v1.0/{path}", sim.base_url()))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(json!(null)))
}

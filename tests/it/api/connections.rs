//! Both OAuth flows end to end against the simulator.

use serde_json::{json, Value};

use super::*;

async fn start_m365(api: &TestApi, org: &Org) -> Value {
    let domain = api.manifest["m365"][0]["domain"].as_str().unwrap();
    api.ok(
        &org.tenant_admin,
        &format!("/v1/tenants/{}/connections/m365", org.tenant),
        json!({ "domain": domain }),
    )
    .await
}

/// Follow the consent URL like the admin's browser: the simulator approves
/// (or denies) and redirects to the API's callback.
async fn browse(url: &str) -> (u16, Value) {
    let r = reqwest::get(url).await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn microsoft_365_admin_consent_activates_the_connection_and_lists_accounts() {
    let api = TestApi::start().await;
    let org = api.org("Contoso").await;
    let started = start_m365(&api, &org).await;
    let consent_url = started["consent_url"].as_str().unwrap();
    assert!(
        consent_url.starts_with(&api.sim.base_url()),
        "{consent_url}"
    );
    assert!(consent_url.contains("/adminconsent?client_id="));

    let (status, body) = browse(consent_url).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "active");
    let users = api.manifest["m365"][0]["users"].as_array().unwrap().len();
    assert_eq!(body["accounts"], users as u64);

    let (_, connections) = api
        .get(
            &org.tenant_admin,
            &format!("/v1/tenants/{}/connections", org.tenant),
        )
        .await;
    assert_eq!(connections[0]["status"], "active");
    assert_eq!(
        connections[0]["external_id"],
        api.manifest["m365"][0]["tenant_id"]
    );
    let (_, accounts) = api
        .get(
            &org.tenant_admin,
            &format!("/v1/tenants/{}/accounts", org.tenant),
        )
        .await;
    let emails: Vec<&str> = accounts
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["email"].as_str().unwrap())
        .collect();
    for u in api.manifest["m365"][0]["users"].as_array().unwrap() {
        assert!(emails.contains(
            &u["userPrincipalName"]
                .as_str()
                .unwrap()
                .to_lowercase()
                .as_str()
        ));
    }
    assert!(
        accounts
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["included"] == true),
        "new accounts follow the tenant default"
    );

    // The same callback again is a replay.
    let (status, body) = browse(consent_url).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["field"], "state");
    assert!(body["detail"]
        .as_str()
        .unwrap()
        .contains("already completed"));
}

#[tokio::test]
async fn denied_forged_and_expired_consents_change_nothing() {
    let api = TestApi::start().await;
    let org = api.org("Fabrikam").await;

    // Denied by the admin.
    let started = start_m365(&api, &org).await;
    post_json(
        &format!("{}/_sim/consent", api.sim.base_url()),
        json!({ "tenant": api.manifest["m365"][0]["domain"], "decision": "deny" }),
    )
    .await;
    let before = business_rows(&api.db).await;
    let (status, body) = browse(started["consent_url"].as_str().unwrap()).await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("did not grant consent"),
        "{body}"
    );
    assert_eq!(
        business_rows(&api.db).await,
        before,
        "a denied consent writes nothing"
    );
    let (_, c) = api
        .get(
            &org.tenant_admin,
            &format!("/v1/connections/{}", started["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(c["status"], "pending");

    // Forged: a state Arkiv did not sign.
    let forged = format!("{}/v1/oauth/m365/callback?admin_consent=True&tenant={}&state=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", api.url, api.manifest["m365"][0]["tenant_id"].as_str().unwrap());
    let (status, body) = browse(&forged).await;
    assert_eq!(status, 422);
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("not one Arkiv issued"),
        "{body}"
    );
    // A real state with one byte changed.
    let url = url::Url::parse(started["consent_url"].as_str().unwrap()).unwrap();
    let state = url
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    let mut tampered = state.clone().into_bytes();
    tampered[30] = if tampered[30] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let (status, _) = browse(&format!(
        "{}/v1/oauth/m365/callback?admin_consent=True&tenant={}&state={tampered}",
        api.url,
        api.manifest["m365"][0]["tenant_id"].as_str().unwrap()
    ))
    .await;
    assert_eq!(status, 422);

    // Expired: the admin took too long.
    use arkiv_db::sea_orm::ConnectionTrait;
    api.db
        .conn
        .execute_unprepared("UPDATE consent_states SET expires_at = now() - interval '1 minute'")
        .await
        .unwrap();
    let (status, body) = browse(started["consent_url"].as_str().unwrap()).await;
    assert_eq!(status, 422);
    assert!(
        body["detail"].as_str().unwrap().contains("expired"),
        "{body}"
    );
    assert_eq!(
        business_rows(&api.db).await,
        before,
        "none of these wrote anything"
    );
}

async fn post_json(url: &str, body: Value) {
    let r = reqwest::Client::new()
        .post(url)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
}

#[tokio::test]
async fn google_workspace_connects_when_delegated_and_explains_what_is_missing_otherwise() {
    let api = TestApi::start().await;
    let org = api.org("Northwind").await;
    let g = &api.manifest["google"][0];
    let (domain, admin) = (g["domain"].as_str().unwrap(), g["admin"].as_str().unwrap());

    // The admin has not authorised Arkiv yet.
    post_json(
        &format!("{}/_sim/google/delegation", api.sim.base_url()),
        json!({ "domain": domain, "scopes": [] }),
    )
    .await;
    let (status, pending) = api
        .post(
            &org.tenant_admin,
            &format!("/v1/tenants/{}/connections/google", org.tenant),
            json!({ "domain": domain, "admin_email": admin }),
        )
        .await;
    assert_eq!(status, 201, "{pending}");
    assert_eq!(pending["status"], "pending");
    let client_id = g["service_account"]["client_id"].as_str().unwrap();
    assert_eq!(pending["client_id"], client_id);
    let detail = pending["detail"].as_str().unwrap();
    assert!(
        detail.contains(client_id)
            && detail.contains("https://mail.google.com/")
            && detail.contains("Domain-wide delegation"),
        "{detail}"
    );

    // They authorise it; verifying again activates and lists the users.
    post_json(
        &format!("{}/_sim/google/delegation", api.sim.base_url()),
        json!({ "domain": domain, "scopes": g["scopes"] }),
    )
    .await;
    let (status, verified) = api
        .post(
            &org.tenant_admin,
            &format!("/v1/connections/{}/verify", pending["id"].as_str().unwrap()),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{verified}");
    assert_eq!(verified["status"], "active");
    assert_eq!(
        verified["accounts"],
        g["users"].as_array().unwrap().len() as u64
    );

    // A second connection of the same domain is refused.
    let (status, body) = api
        .post(
            &org.tenant_admin,
            &format!("/v1/tenants/{}/connections/google", org.tenant),
            json!({ "domain": domain, "admin_email": admin }),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    // An admin address outside the domain is bad input.
    let (status, body) = api
        .post(
            &org.tenant_admin,
            &format!("/v1/tenants/{}/connections/google", org.tenant),
            json!({ "domain": domain, "admin_email": "x@elsewhere.example" }),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(body["field"], "admin_email");
}

#[tokio::test]
async fn credentials_are_sealed_at_rest_and_never_returned() {
    let api = TestApi::start().await;
    let org = api.org("Sealed").await;
    let secret = "BYO-secret-value-4711";
    let (status, started) = api
        .post(
            &org.tenant_admin,
            &format!("/v1/tenants/{}/connections/m365", org.tenant),
            json!({ "client_id": "6731de76-14a6-49ae-97bc-6eba6914391e", "client_secret": secret }),
        )
        .await;
    assert_eq!(status, 201);
    assert!(!started.to_string().contains(secret));
    let (_, c) = api
        .get(
            &org.tenant_admin,
            &format!("/v1/connections/{}", started["id"].as_str().unwrap()),
        )
        .await;
    assert!(!c.to_string().contains(secret));
    // Not in any column in plaintext.
    use arkiv_db::sea_orm::{ConnectionTrait, Statement};
    let dump = api
        .db
        .conn
        .query_all(Statement::from_string(
            api.db.conn.get_database_backend(),
            "SELECT row_to_json(c)::text AS j FROM connections c",
        ))
        .await
        .unwrap();
    for row in dump {
        let j: String = row.try_get("", "j").unwrap();
        assert!(
            !j.contains(secret),
            "the secret is stored in plaintext: {j}"
        );
    }
}

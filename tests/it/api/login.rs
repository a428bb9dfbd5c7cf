//! Console login: password + TOTP, lockout, anonymised IPs; API tokens'
//! expiry and revocation.

use reqwest::Method;
use serde_json::json;

use super::*;

fn code(secret_b32: &str) -> String {
    let secret = totp_rs::Secret::Encoded(secret_b32.to_owned())
        .to_bytes()
        .unwrap();
    totp_rs::TOTP::new(
        totp_rs::Algorithm::SHA1,
        6,
        1,
        30,
        secret,
        None,
        String::new(),
    )
    .unwrap()
    .generate_current()
    .unwrap()
}

#[tokio::test]
async fn console_login_needs_the_password_and_a_current_totp_code_and_locks_after_failures() {
    let api = TestApi::start().await;
    let org = api.org("Login").await;
    let email = "tenant-admin@login.test";
    let creds = api
        .call(
            &org.tenant_admin,
            Method::PUT,
            &format!("/v1/principals/{}/credentials", org.tenant_admin_id),
            Some(json!({ "password": "correct horse battery staple" })),
        )
        .await
        .1;
    let secret = creds["totp_secret"].as_str().unwrap().to_owned();
    assert!(creds["otpauth_url"]
        .as_str()
        .unwrap()
        .starts_with("otpauth://totp/"));

    let login = |password: &str, totp: String| {
        let url = format!("{}/v1/auth/login", api.url);
        let body = json!({ "email": email, "password": password, "totp": totp });
        async move {
            let r = reqwest::Client::new()
                .post(url)
                .header("x-forwarded-for", "203.0.113.77, 10.0.0.1")
                .json(&body)
                .send()
                .await
                .unwrap();
            (
                r.status().as_u16(),
                r.json::<serde_json::Value>().await.unwrap(),
            )
        }
    };
    let (status, session) = login("correct horse battery staple", code(&secret)).await;
    assert_eq!(status, 200, "{session}");
    let (status, me) = api.get(session["token"].as_str().unwrap(), "/v1/me").await;
    assert_eq!(status, 200);
    assert_eq!(me["role"], "tenant-admin");

    assert_eq!(
        login("correct horse battery staple", "000000".into())
            .await
            .0,
        401,
        "a wrong code"
    );
    assert_eq!(
        login("wrong password", code(&secret)).await.0,
        401,
        "a wrong password"
    );
    for _ in 0..3 {
        login("wrong password", code(&secret)).await;
    }
    let (status, body) = login("correct horse battery staple", code(&secret)).await;
    assert_eq!(status, 423, "locked after five failures: {body}");

    use arkiv_db::sea_orm::{ConnectionTrait, Statement};
    let rows = api
        .db
        .conn
        .query_all(Statement::from_string(
            api.db.conn.get_database_backend(),
            "SELECT ip_anon, outcome FROM login_events ORDER BY id",
        ))
        .await
        .unwrap();
    let events: Vec<(String, String)> = rows
        .iter()
        .map(|r| {
            (
                r.try_get("", "ip_anon").unwrap(),
                r.try_get("", "outcome").unwrap(),
            )
        })
        .collect();
    assert!(
        events.iter().all(|(ip, _)| ip == "203.0.113.0/24"),
        "{events:?}"
    );
    let outcomes: Vec<&str> = events.iter().map(|(_, o)| o.as_str()).collect();
    assert_eq!(
        outcomes,
        [
            "success",
            "bad_totp",
            "bad_password",
            "bad_password",
            "bad_password",
            "bad_password",
            "locked"
        ]
    );
}

#[tokio::test]
async fn tokens_are_shown_once_expire_and_can_be_revoked() {
    let api = TestApi::start().await;
    let org = api.org("Tokens").await;
    let created = api
        .ok(
            &org.tenant_admin,
            &format!("/v1/principals/{}/tokens", org.tenant_admin_id),
            json!({ "label": "ci", "days": 1 }),
        )
        .await;
    let token = created["token"].as_str().unwrap().to_owned();
    assert_eq!(api.get(&token, "/v1/me").await.0, 200);
    let (_, listed) = api
        .get(
            &org.tenant_admin,
            &format!("/v1/principals/{}/tokens", org.tenant_admin_id),
        )
        .await;
    assert!(
        !listed.to_string().contains(&token),
        "listing never shows a token"
    );

    api.call(
        &org.tenant_admin,
        Method::DELETE,
        &format!("/v1/tokens/{}", created["id"].as_str().unwrap()),
        None,
    )
    .await;
    assert_eq!(api.get(&token, "/v1/me").await.0, 401, "revoked");

    let other = api
        .ok(
            &org.tenant_admin,
            &format!("/v1/principals/{}/tokens", org.tenant_admin_id),
            json!({}),
        )
        .await;
    use arkiv_db::sea_orm::ConnectionTrait;
    api.db
        .conn
        .execute_unprepared(&format!(
            "UPDATE api_tokens SET expires_at = now() - interval '1 second' WHERE id = '{}'",
            other["id"].as_str().unwrap()
        ))
        .await
        .unwrap();
    assert_eq!(
        api.get(other["token"].as_str().unwrap(), "/v1/me").await.0,
        401,
        "expired"
    );
}

#[tokio::test]
async fn every_state_change_is_audited_in_a_verifiable_chain_exported_as_csv_and_json() {
    let api = TestApi::start().await;
    let org = api.org("Audit").await;
    api.call(
        &org.tenant_admin,
        Method::PUT,
        &format!("/v1/tenants/{}/retention", org.tenant),
        Some(json!({ "keep_versions_days": 90 })),
    )
    .await;
    api.ok(
        &org.tenant_admin,
        &format!("/v1/tenants/{}/support-grants", org.tenant),
        json!({ "hours": 4 }),
    )
    .await;
    let (status, entries) = api
        .get(
            &org.tenant_admin,
            &format!("/v1/tenants/{}/audit", org.tenant),
        )
        .await;
    assert_eq!(status, 200);
    let actions: Vec<&str> = entries
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for expected in [
        "tenant.create",
        "principal.create",
        "retention.set",
        "support_grant.create",
    ] {
        assert!(
            actions.contains(&expected),
            "{expected} missing from {actions:?}"
        );
    }
    assert!(entries
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["outcome"] == "success"));
    let csv = reqwest::Client::new()
        .get(format!(
            "{}/v1/tenants/{}/audit?format=csv",
            api.url, org.tenant
        ))
        .bearer_auth(&org.tenant_admin)
        .send()
        .await
        .unwrap();
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    let csv = csv.text().await.unwrap();
    assert!(csv
        .starts_with("seq,at,actor_id,actor_role,action,target,outcome,details,prev_hash,hash\n"));
    assert_eq!(csv.lines().count(), entries.as_array().unwrap().len() + 1);

    let (_, v) = api
        .get(
            &org.tenant_admin,
            &format!("/v1/tenants/{}/audit/verify", org.tenant),
        )
        .await;
    assert_eq!(v["intact"], true);
    use arkiv_db::sea_orm::ConnectionTrait;
    api.db
        .conn
        .execute_unprepared(&format!(
            "ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update; \
             UPDATE audit_log SET outcome = 'denied' WHERE chain = '{}' AND seq = 2; \
             ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_update;",
            org.tenant
        ))
        .await
        .unwrap();
    let (_, v) = api
        .get(
            &org.tenant_admin,
            &format!("/v1/tenants/{}/audit/verify", org.tenant),
        )
        .await;
    assert_eq!(v["intact"], false);
    assert_eq!(v["first_broken"], 2);

    // A denied attempt is recorded (on the global chain, not the tenant's).
    let before = arkiv_db::audit::verify(&api.db.conn, None)
        .await
        .unwrap()
        .entries;
    let foreign = api.org("Foreign").await;
    api.call(
        &foreign.tenant_admin,
        Method::PUT,
        &format!("/v1/tenants/{}/retention", org.tenant),
        Some(json!({ "keep_versions_days": 1 })),
    )
    .await;
    let after = arkiv_db::audit::verify(&api.db.conn, None).await.unwrap();
    assert!(after.entries > before, "the refusal is audited");
    assert!(after.is_intact());
}

//! Bad input on every write route: a problem document naming the field,
//! never a 500, and nothing written.

use reqwest::Method;
use serde_json::{json, Value};

use super::*;

#[tokio::test]
async fn bad_input_on_every_write_route_names_the_field_and_writes_nothing() {
    let api = TestApi::start().await;
    let org = api.org("Input").await;
    let t = &org.tenant;
    let p = &org.partner;
    let principal = &org.tenant_admin_id;
    let cases: Vec<(Method, String, Value, &str)> = vec![
        (
            Method::POST,
            "/v1/partners".into(),
            json!({ "name": "  " }),
            "name",
        ),
        (
            Method::POST,
            "/v1/partners".into(),
            json!({ "name": "x".repeat(201) }),
            "name",
        ),
        (
            Method::POST,
            "/v1/partners".into(),
            json!({ "name": "ok", "extra": 1 }),
            "extra",
        ),
        (
            Method::POST,
            "/v1/partners".into(),
            json!({ "name": 42 }),
            "name",
        ),
        (
            Method::POST,
            "/v1/tenants".into(),
            json!({ "partner_id": p, "name": "T", "region": "mars" }),
            "region",
        ),
        (
            Method::POST,
            "/v1/tenants".into(),
            json!({ "partner_id": p, "name": "", "region": "eu" }),
            "name",
        ),
        (
            Method::POST,
            "/v1/tenants".into(),
            json!({ "partner_id": "not-a-uuid", "name": "T", "region": "eu" }),
            "partner_id",
        ),
        (
            Method::POST,
            "/v1/tenants".into(),
            json!({ "partner_id": p, "name": "T", "region": "eu", "plan": "gold plan!" }),
            "plan",
        ),
        (
            Method::PATCH,
            format!("/v1/tenants/{t}"),
            json!({ "name": "\u{7}" }),
            "name",
        ),
        (
            Method::PATCH,
            format!("/v1/tenants/{t}"),
            json!({ "subscription_state": "purged" }),
            "subscription_state",
        ),
        (
            Method::PUT,
            format!("/v1/tenants/{t}/retention"),
            json!({ "keep_versions_days": 0 }),
            "keep_versions_days",
        ),
        (
            Method::PUT,
            format!("/v1/tenants/{t}/retention"),
            json!({ "overrides": { "contacts": { "keep_versions_days": 3 } } }),
            "overrides.contacts",
        ),
        (
            Method::PUT,
            format!("/v1/tenants/{t}/retention"),
            json!({ "overrides": { "mail": { "keep_deleted_days": -1 } } }),
            "overrides.mail.keep_deleted_days",
        ),
        (
            Method::POST,
            "/v1/principals".into(),
            json!({ "role": "king", "email": "a@b.test" }),
            "role",
        ),
        (
            Method::POST,
            "/v1/principals".into(),
            json!({ "role": "tenant-admin", "email": "not-an-email", "tenant_id": t }),
            "email",
        ),
        (
            Method::POST,
            "/v1/principals".into(),
            json!({ "role": "tenant-admin", "email": "x@y.test" }),
            "tenant_id",
        ),
        (
            Method::POST,
            "/v1/principals".into(),
            json!({ "role": "partner-admin", "email": "x@y.test" }),
            "partner_id",
        ),
        (
            Method::POST,
            "/v1/principals".into(),
            json!({ "role": "operator", "email": "x@y.test", "partner_id": p }),
            "partner_id",
        ),
        (
            Method::PUT,
            format!("/v1/principals/{principal}/credentials"),
            json!({ "password": "short" }),
            "password",
        ),
        (
            Method::POST,
            format!("/v1/principals/{principal}/tokens"),
            json!({ "days": 9999 }),
            "days",
        ),
        (
            Method::POST,
            format!("/v1/principals/{principal}/tokens"),
            json!({ "label": "" }),
            "label",
        ),
        (
            Method::POST,
            format!("/v1/tenants/{t}/connections/m365"),
            json!({ "domain": "bad domain" }),
            "domain",
        ),
        (
            Method::POST,
            format!("/v1/tenants/{t}/connections/m365"),
            json!({ "client_id": "not-a-guid", "client_secret": "s" }),
            "client_id",
        ),
        (
            Method::POST,
            format!("/v1/tenants/{t}/connections/m365"),
            json!({ "client_secret": "s" }),
            "client_id",
        ),
        (
            Method::POST,
            format!("/v1/tenants/{t}/connections/google"),
            json!({ "domain": "x.example", "admin_email": "a@x.example", "service_account_key": "{}" }),
            "service_account_key",
        ),
        (
            Method::POST,
            format!("/v1/tenants/{t}/connections/google"),
            json!({ "domain": "x.example" }),
            "admin_email",
        ),
        (
            Method::POST,
            format!("/v1/tenants/{t}/support-grants"),
            json!({ "hours": 0 }),
            "hours",
        ),
        (
            Method::POST,
            format!("/v1/tenants/{t}/support-grants"),
            json!({ "hours": 721 }),
            "hours",
        ),
        (
            Method::POST,
            format!("/v1/tenants/{t}/support-grants"),
            json!({ "hours": "two" }),
            "hours",
        ),
        (
            Method::POST,
            "/v1/auth/login".into(),
            json!({ "email": "a@b.test" }),
            "password",
        ),
        (Method::POST, "/v1/restores".into(), json!({}), "item_id"),
        (
            Method::POST,
            "/v1/restores".into(),
            json!({ "item_id": "not-a-uuid" }),
            "item_id",
        ),
        (
            Method::POST,
            "/v1/restores".into(),
            json!({ "account": "someone@example.com", "workload": "contacts", "at": "2026-11-24" }),
            "workload",
        ),
        (
            Method::POST,
            "/v1/restores".into(),
            json!({ "account": "someone@example.com", "workload": "mail", "at": "last tuesday" }),
            "at",
        ),
        (
            Method::POST,
            "/v1/restores".into(),
            json!({ "account": "someone@example.com", "workload": "mail", "at": "2026-11-24", "tenant_id": t }),
            "account",
        ),
        (
            Method::POST,
            "/v1/restores".into(),
            json!({ "item_id": "00000000-0000-0000-0000-000000000001", "collision": "merge" }),
            "collision",
        ),
    ];
    let before = business_rows(&api.db).await;
    for (method, path, body, field) in &cases {
        let (status, problem) = api
            .call(&api.operator, method.clone(), path, Some(body.clone()))
            .await;
        assert_eq!(status, 422, "{method} {path} {body}: {problem}");
        assert_eq!(
            problem["field"], *field,
            "{method} {path} {body}: {problem}"
        );
        assert!(problem["detail"].as_str().is_some_and(|d| !d.is_empty()));
    }
    // Malformed JSON is a problem document too.
    let r = reqwest::Client::new()
        .post(format!("{}/v1/partners", api.url))
        .bearer_auth(&api.operator)
        .header("content-type", "application/json")
        .body("{\"name\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    assert_eq!(
        business_rows(&api.db).await,
        before,
        "rejected requests wrote nothing"
    );

    // Conflicts are reported with their field too.
    api.ok(
        &api.operator,
        "/v1/partners",
        json!({ "name": "Unique Co" }),
    )
    .await;
    let (status, problem) = api
        .post(
            &api.operator,
            "/v1/partners",
            json!({ "name": "unique co" }),
        )
        .await;
    assert_eq!(status, 409);
    assert_eq!(problem["field"], "name");
    let (status, problem) = api
        .post(
            &api.operator,
            "/v1/principals",
            json!({ "role": "tenant-admin", "tenant_id": t, "email": "TENANT-ADMIN@input.test" }),
        )
        .await;
    assert_eq!(status, 409, "{problem}");
    assert_eq!(problem["field"], "email");
}

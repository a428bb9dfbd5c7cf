//! The OpenAPI document covers every route the API serves.

use super::*;

#[tokio::test]
async fn the_openapi_document_covers_every_route() {
    let api = TestApi::start().await;
    let doc: serde_json::Value = reqwest::get(format!("{}/openapi.json", api.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let mut documented = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            documented.push(format!("{} {path}", method.to_uppercase()));
        }
        for (_, op) in item.as_object().unwrap() {
            assert!(
                op["responses"].as_object().is_some_and(|r| !r.is_empty()),
                "{path} documents its responses"
            );
        }
    }
    documented.sort();
    let mut expected = vec![
        "GET /healthz",
        "GET /metrics",
        "GET /openapi.json",
        "POST /v1/auth/login",
        "GET /v1/me",
        "POST /v1/partners",
        "GET /v1/partners",
        "GET /v1/partners/{id}",
        "POST /v1/tenants",
        "GET /v1/tenants",
        "GET /v1/tenants/{id}",
        "PATCH /v1/tenants/{id}",
        "GET /v1/tenants/{id}/retention",
        "PUT /v1/tenants/{id}/retention",
        "POST /v1/tenants/{id}/end",
        "POST /v1/tenants/{id}/purge",
        "POST /v1/tenants/{id}/reactivate",
        "POST /v1/tenants/{id}/erasures",
        "GET /v1/tenants/{id}/erasures",
        "GET /v1/erasures/{id}",
        "GET /v1/erasures/{id}/certificate",
        "POST /v1/principals",
        "GET /v1/principals",
        "GET /v1/principals/{id}",
        "DELETE /v1/principals/{id}",
        "PUT /v1/principals/{id}/credentials",
        "POST /v1/principals/{id}/tokens",
        "GET /v1/principals/{id}/tokens",
        "DELETE /v1/tokens/{id}",
        "POST /v1/tenants/{id}/connections/m365",
        "GET /v1/oauth/m365/callback",
        "POST /v1/tenants/{id}/connections/google",
        "POST /v1/connections/{id}/verify",
        "GET /v1/tenants/{id}/connections",
        "GET /v1/connections/{id}",
        "PATCH /v1/connections/{id}",
        "DELETE /v1/connections/{id}",
        "GET /v1/tenants/{id}/accounts",
        "PATCH /v1/accounts/{id}",
        "POST /v1/tenants/{id}/backups",
        "GET /v1/tenants/{id}/backups",
        "GET /v1/runs/{id}",
        "POST /v1/tenants/{id}/support-grants",
        "GET /v1/tenants/{id}/support-grants",
        "DELETE /v1/support-grants/{id}",
        "GET /v1/tenants/{id}/audit",
        "GET /v1/tenants/{id}/audit/verify",
        "GET /v1/tenants/{id}/search",
        "GET /v1/items/{id}/versions",
        "POST /v1/restores",
        "GET /v1/restores/{id}",
        "POST /v1/restores/{id}/retry",
        "GET /v1/tenants/{id}/restores",
        "GET /v1/tenants/{id}/export",
        "GET /v1/exports/{id}",
    ];
    expected.sort();
    assert_eq!(documented, expected);
    // Each documented route is served (not 404/405 from the router).
    for route in &expected {
        let (method, path) = route.split_once(' ').unwrap();
        let url = format!(
            "{}{}",
            api.url,
            path.replace("{id}", "00000000-0000-0000-0000-000000000000")
        );
        let r = reqwest::Client::new()
            .request(method.parse().unwrap(), url)
            .bearer_auth(&api.operator)
            .json(&serde_json::json!({}))
            .send()
            .await
            .unwrap();
        assert_ne!(r.status(), 405, "{route} is not served");
        if r.status() == 404 {
            let body: serde_json::Value = r.json().await.unwrap();
            assert_eq!(
                body["type"], "https://arkiv.dev/problems/not-found",
                "{route} is not routed"
            );
        }
    }
}

//! The authorisation matrix: every route, every role, own scope and foreign
//! scope. Outside one's scope the answer is 404, as for a resource that
//! does not exist.

use reqwest::Method;
use serde_json::{json, Value};

use super::*;

/// One request against one organisation's resources.
struct Route {
    name: &'static str,
    method: Method,
    path: String,
    body: Option<Value>,
}

/// Fresh objects for the routes that act on one (some routes destroy them),
/// and no active support grant (an earlier caller may have created one).
async fn fixtures(api: &TestApi, org: &Org, n: usize) -> Value {
    use arkiv_db::sea_orm::ConnectionTrait;
    api.db
        .conn
        .execute_unprepared("UPDATE support_grants SET revoked_at = now() WHERE revoked_at IS NULL")
        .await
        .unwrap();
    let principal = api.ok(&api.operator, "/v1/principals", json!({ "role": "tenant-admin", "tenant_id": org.tenant, "email": format!("fixture{n}-{}@fix.test", &org.tenant[..8]) })).await["id"].clone();
    let token = api
        .ok(
            &api.operator,
            &format!("/v1/principals/{}/tokens", principal.as_str().unwrap()),
            json!({}),
        )
        .await["id"]
        .clone();
    let connection = api
        .ok(
            &api.operator,
            &format!("/v1/tenants/{}/connections/m365", org.tenant),
            json!({}),
        )
        .await["id"]
        .clone();
    // Revoked at once: a fixture must not give support access.
    let grant = api
        .ok(
            &api.operator,
            &format!("/v1/tenants/{}/support-grants", org.tenant),
            json!({ "hours": 1 }),
        )
        .await["id"]
        .clone();
    api.call(
        &api.operator,
        Method::DELETE,
        &format!("/v1/support-grants/{}", grant.as_str().unwrap()),
        None,
    )
    .await;
    json!({ "principal": principal, "token": token, "connection": connection, "grant": grant })
}

fn routes(org: &Org, fx: &Value, n: usize) -> Vec<Route> {
    let t = &org.tenant;
    let p = &org.partner;
    let id = |k: &str| fx[k].as_str().unwrap().to_owned();
    let r = |name, method, path: String, body: Option<Value>| Route {
        name,
        method,
        path,
        body,
    };
    vec![
        r(
            "partner.create",
            Method::POST,
            "/v1/partners".into(),
            Some(json!({ "name": format!("P{n}-{}", &t[..8]) })),
        ),
        r(
            "partner.get",
            Method::GET,
            format!("/v1/partners/{p}"),
            None,
        ),
        r(
            "tenant.create",
            Method::POST,
            "/v1/tenants".into(),
            Some(json!({ "partner_id": p, "name": "New", "region": "eu" })),
        ),
        r("tenant.get", Method::GET, format!("/v1/tenants/{t}"), None),
        r(
            "tenant.update",
            Method::PATCH,
            format!("/v1/tenants/{t}"),
            Some(json!({ "name": "Renamed" })),
        ),
        r(
            "tenant.subscription",
            Method::PATCH,
            format!("/v1/tenants/{t}"),
            Some(json!({ "subscription_state": "active" })),
        ),
        r(
            "retention.get",
            Method::GET,
            format!("/v1/tenants/{t}/retention"),
            None,
        ),
        r(
            "retention.put",
            Method::PUT,
            format!("/v1/tenants/{t}/retention"),
            Some(json!({ "keep_versions_days": 30 })),
        ),
        r(
            "principal.create",
            Method::POST,
            "/v1/principals".into(),
            Some(
                json!({ "role": "tenant-admin", "tenant_id": t, "email": format!("new{n}-{}@x.test", &t[..8]) }),
            ),
        ),
        r(
            "principal.get",
            Method::GET,
            format!("/v1/principals/{}", id("principal")),
            None,
        ),
        r(
            "principal.credentials",
            Method::PUT,
            format!("/v1/principals/{}/credentials", id("principal")),
            Some(json!({ "password": "correct horse battery" })),
        ),
        r(
            "token.create",
            Method::POST,
            format!("/v1/principals/{}/tokens", id("principal")),
            Some(json!({})),
        ),
        r(
            "token.list",
            Method::GET,
            format!("/v1/principals/{}/tokens", id("principal")),
            None,
        ),
        r(
            "token.revoke",
            Method::DELETE,
            format!("/v1/tokens/{}", id("token")),
            None,
        ),
        r(
            "connection.m365",
            Method::POST,
            format!("/v1/tenants/{t}/connections/m365"),
            Some(json!({})),
        ),
        r(
            "connection.google",
            Method::POST,
            format!("/v1/tenants/{t}/connections/google"),
            Some(json!({ "domain": "not a domain", "admin_email": "a@b.example" })),
        ),
        r(
            "connection.list",
            Method::GET,
            format!("/v1/tenants/{t}/connections"),
            None,
        ),
        r(
            "connection.get",
            Method::GET,
            format!("/v1/connections/{}", id("connection")),
            None,
        ),
        r(
            "connection.verify",
            Method::POST,
            format!("/v1/connections/{}/verify", id("connection")),
            Some(json!({})),
        ),
        r(
            "account.list",
            Method::GET,
            format!("/v1/tenants/{t}/accounts"),
            None,
        ),
        r(
            "grant.create",
            Method::POST,
            format!("/v1/tenants/{t}/support-grants"),
            Some(json!({ "hours": 1 })),
        ),
        r(
            "grant.list",
            Method::GET,
            format!("/v1/tenants/{t}/support-grants"),
            None,
        ),
        r(
            "grant.revoke",
            Method::DELETE,
            format!("/v1/support-grants/{}", id("grant")),
            None,
        ),
        r(
            "audit.export",
            Method::GET,
            format!("/v1/tenants/{t}/audit"),
            None,
        ),
        r(
            "search",
            Method::GET,
            format!("/v1/tenants/{t}/search"),
            None,
        ),
        r(
            "restore.list",
            Method::GET,
            format!("/v1/tenants/{t}/restores"),
            None,
        ),
        // Allowed callers get 422 (the tenant has no such account).
        r(
            "export",
            Method::GET,
            format!("/v1/tenants/{t}/export?account=nobody@fix.test&workload=mail&format=mbox"),
            None,
        ),
        r(
            "audit.verify",
            Method::GET,
            format!("/v1/tenants/{t}/audit/verify"),
            None,
        ),
        r(
            "connection.revoke",
            Method::DELETE,
            format!("/v1/connections/{}", id("connection")),
            None,
        ),
        r(
            "principal.disable",
            Method::DELETE,
            format!("/v1/principals/{}", id("principal")),
            None,
        ),
    ]
}

/// What each role may do in its own scope (everything else is denied).
fn allowed_in_own_scope(role: &str, route: &str) -> bool {
    match role {
        "operator" => true,
        "partner-admin" => route != "partner.create",
        "tenant-admin" => !matches!(
            route,
            "partner.create" | "partner.get" | "tenant.create" | "tenant.subscription"
        ),
        "support" => matches!(
            route,
            "tenant.get" | "retention.get" | "connection.list" | "connection.get" | "grant.list"
        ),
        other => panic!("{other}"),
    }
}

#[tokio::test]
async fn every_route_every_role_own_and_foreign_scope() {
    let api = TestApi::start().await;
    let a = api.org("Alpha").await;
    let b = api.org("Beta").await;
    let callers = [
        ("partner-admin", &a.partner_admin),
        ("tenant-admin", &a.tenant_admin),
        ("support", &a.support),
        ("operator", &api.operator),
    ];
    let mut failures = Vec::new();
    let mut checked = 0;
    for (n, (role, token)) in callers.iter().enumerate() {
        for (scope, org) in [("own", &a), ("foreign", &b)] {
            let fx = fixtures(&api, org, n * 2 + usize::from(scope == "foreign")).await;
            for route in routes(org, &fx, n * 10 + usize::from(scope == "foreign")) {
                let expected = if *role == "operator" {
                    true
                } else {
                    scope == "own" && allowed_in_own_scope(role, route.name)
                };
                let (status, body) = api
                    .call(token, route.method.clone(), &route.path, route.body.clone())
                    .await;
                checked += 1;
                assert!(
                    status < 500,
                    "{role} {scope} {}: {status} {body}",
                    route.name
                );
                let denied = status == 404;
                if expected == denied {
                    failures.push(format!(
                        "{role} {scope} {} {} → {status} {body}",
                        route.method, route.name
                    ));
                }
                if denied {
                    assert_eq!(
                        body["type"], "https://arkiv.dev/problems/not-found",
                        "{}",
                        route.name
                    );
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {checked} checks wrong:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[tokio::test]
async fn support_sees_account_addresses_only_while_the_tenant_grants_it() {
    let api = TestApi::start().await;
    let org = api.org("Gamma").await;
    let path = format!("/v1/tenants/{}/accounts", org.tenant);
    assert_eq!(
        api.get(&org.support, &path).await.0,
        404,
        "no grant, no data"
    );
    let grant = api
        .ok(
            &org.tenant_admin,
            &format!("/v1/tenants/{}/support-grants", org.tenant),
            json!({ "hours": 2 }),
        )
        .await;
    assert_eq!(grant["active"], true);
    assert_eq!(api.get(&org.support, &path).await.0, 200, "under the grant");
    // An expired grant no longer counts.
    use arkiv_db::sea_orm::ConnectionTrait;
    api.db.conn.execute_unprepared("UPDATE support_grants SET granted_at = now() - interval '3 hours', expires_at = now() - interval '1 minute'").await.unwrap();
    assert_eq!(
        api.get(&org.support, &path).await.0,
        404,
        "after the grant expired"
    );
    // A support principal of another partner never sees it.
    let other = api.org("Delta").await;
    api.ok(
        &org.tenant_admin,
        &format!("/v1/tenants/{}/support-grants", org.tenant),
        json!({ "hours": 2 }),
    )
    .await;
    assert_eq!(api.get(&other.support, &path).await.0, 404);
    assert_eq!(api.get(&org.support, &path).await.0, 200);
}

#[tokio::test]
async fn unauthenticated_calls_get_401_and_listings_are_scoped() {
    let api = TestApi::start().await;
    let a = api.org("Epsilon").await;
    let b = api.org("Zeta").await;
    let (status, body) = api.get("ark_not_a_real_token", "/v1/tenants").await;
    assert_eq!(status, 401);
    assert_eq!(body["type"], "https://arkiv.dev/problems/unauthenticated");
    let r = reqwest::get(format!("{}/v1/tenants", api.url))
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    let ids = |v: Value| {
        v.as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        ids(api.get(&a.partner_admin, "/v1/tenants").await.1),
        vec![a.tenant.clone()]
    );
    assert_eq!(
        ids(api.get(&a.tenant_admin, "/v1/tenants").await.1),
        vec![a.tenant.clone()]
    );
    let all = ids(api.get(&api.operator, "/v1/tenants").await.1);
    assert!(all.contains(&a.tenant) && all.contains(&b.tenant));
    assert_eq!(
        ids(api.get(&a.partner_admin, "/v1/partners").await.1),
        vec![a.partner.clone()]
    );
    assert!(api
        .get(&a.tenant_admin, "/v1/partners")
        .await
        .1
        .as_array()
        .unwrap()
        .is_empty());
}

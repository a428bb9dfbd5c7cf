//! Admin SDK Directory: `users.list` (paged) and `users.get`, for admins.

use axum::http::{Method, StatusCode};
use axum::response::Response;
use serde_json::{json, Value};

use super::{error, insufficient_scopes, GCtx};
use crate::cursor::Cursor;
use crate::world::GoogleUser;

const SCOPES: &[&str] = &[
    "https://www.googleapis.com/auth/admin.directory.user.readonly",
    "https://www.googleapis.com/auth/admin.directory.user",
];

pub fn user_json(u: &GoogleUser, customer_id: &str) -> Value {
    json!({
        "kind": "admin#directory#user",
        "id": u.id,
        "etag": format!("\"{}\"", &u.id[..8]),
        "primaryEmail": u.email,
        "name": { "givenName": u.given_name, "familyName": u.family_name, "fullName": format!("{} {}", u.given_name, u.family_name) },
        "isAdmin": u.is_admin,
        "isDelegatedAdmin": false,
        "suspended": false,
        "archived": false,
        "isMailboxSetup": true,
        "customerId": customer_id,
        "orgUnitPath": "/",
        "creationTime": "2024-01-15T09:00:00.000Z",
        "lastLoginTime": "2026-11-01T08:00:00.000Z",
        "agreedToTerms": true,
        "changePasswordAtNextLogin": false,
        "includeInGlobalAddressList": true,
    })
}

pub fn route(ctx: &GCtx) -> Response {
    if !ctx.has_scope(SCOPES) {
        return insufficient_scopes();
    }
    let segs: Vec<&str> = ctx.segs.iter().map(String::as_str).collect();
    match (&ctx.method, segs.as_slice()) {
        (&Method::GET, ["users"]) => list(ctx),
        (&Method::GET, ["users", key]) => get(ctx, key),
        _ => error(StatusCode::NOT_FOUND, "notFound", "Not Found"),
    }
}

fn is_admin(ctx: &GCtx) -> bool {
    ctx.sim.world().domain(&ctx.domain).is_some_and(|d| {
        d.users
            .values()
            .any(|u| u.email.eq_ignore_ascii_case(&ctx.subject) && u.is_admin)
    })
}

fn list(ctx: &GCtx) -> Response {
    if !is_admin(ctx) {
        return error(
            StatusCode::FORBIDDEN,
            "forbidden",
            "Not Authorized to access this resource/api",
        );
    }
    let max = match ctx.bounded("maxResults", 100, 500) {
        Ok(m) => m,
        Err(r) => return r,
    };
    let world = ctx.sim.world();
    let Some(domain) = world.domain(&ctx.domain) else {
        return error(StatusCode::NOT_FOUND, "notFound", "Domain not found.");
    };
    match (ctx.param("customer"), ctx.param("domain")) {
        (None, None) => return error(StatusCode::BAD_REQUEST, "badRequest", "Bad Request"),
        (Some(c), _) if c != "my_customer" && c != domain.customer_id => {
            return error(StatusCode::BAD_REQUEST, "badRequest", "Bad Request");
        }
        (_, Some(d)) if !d.eq_ignore_ascii_case(&domain.domain) => {
            return error(
                StatusCode::FORBIDDEN,
                "forbidden",
                "Not Authorized to access this resource/api",
            );
        }
        _ => {}
    }
    let offset = match ctx.param("pageToken") {
        None => 0,
        Some(t) => match Cursor::decode(t) {
            Some(c) if c.collection == "directory" => c.offset as usize,
            _ => {
                return super::param_error(
                    StatusCode::BAD_REQUEST,
                    "invalid",
                    "Invalid Input: pageToken",
                    "pageToken",
                )
            }
        },
    };
    let mut users: Vec<&GoogleUser> = domain.users.values().collect();
    users.sort_by(|a, b| a.email.cmp(&b.email));
    let page: Vec<Value> = users
        .iter()
        .skip(offset)
        .take(max as usize)
        .map(|u| user_json(u, &domain.customer_id))
        .collect();
    let mut body = json!({ "kind": "admin#directory#users", "etag": "\"sim\"", "users": page });
    if offset + (max as usize) < users.len() {
        let c = Cursor {
            collection: "directory".into(),
            offset: (offset + max as usize) as u64,
            ..Cursor::default()
        };
        body["nextPageToken"] = Value::from(c.encode());
    }
    ctx.ok(body)
}

fn get(ctx: &GCtx, key: &str) -> Response {
    // `is_admin` takes the world lock itself, so ask before holding it.
    let admin = is_admin(ctx);
    let world = ctx.sim.world();
    let Some(domain) = world.domain(&ctx.domain) else {
        return error(
            StatusCode::NOT_FOUND,
            "notFound",
            "Resource Not Found: userKey",
        );
    };
    if !admin && !key.eq_ignore_ascii_case(&ctx.subject) {
        return error(
            StatusCode::FORBIDDEN,
            "forbidden",
            "Not Authorized to access this resource/api",
        );
    }
    match domain
        .users
        .values()
        .find(|u| u.id == key || u.email.eq_ignore_ascii_case(key))
    {
        Some(u) => ctx.ok(user_json(u, &domain.customer_id)),
        None => error(
            StatusCode::NOT_FOUND,
            "notFound",
            "Resource Not Found: userKey",
        ),
    }
}

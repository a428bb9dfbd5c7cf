//! `/users`: paging with `$top` and `@odata.nextLink`, `$select`.

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{json, Value};

use super::Ctx;
use crate::cursor::Cursor;
use crate::world::M365User;

pub fn user_json(u: &M365User) -> Value {
    let (given, surname) = u
        .display_name
        .split_once(' ')
        .unwrap_or((u.display_name.as_str(), ""));
    json!({
        "id": u.id,
        "userPrincipalName": u.upn,
        "mail": if u.has_mailbox { Value::from(u.upn.clone()) } else { Value::Null },
        "displayName": u.display_name,
        "givenName": given,
        "surname": surname,
        "businessPhones": [],
        "jobTitle": null,
        "mobilePhone": null,
        "officeLocation": null,
        "preferredLanguage": "en-US",
    })
}

/// Keep only the `$select`ed properties (and `id` and annotations).
pub fn select(mut value: Value, select: Option<&str>) -> Value {
    let Some(select) = select else { return value };
    let keep: Vec<String> = select
        .split(',')
        .map(|s| s.trim().to_ascii_lowercase())
        .collect();
    if let Some(obj) = value.as_object_mut() {
        obj.retain(|k, _| {
            k == "id" || k.starts_with('@') || keep.iter().any(|s| s == &k.to_ascii_lowercase())
        });
    }
    value
}

/// A page size from `$top` (or `Prefer: odata.maxpagesize`), within bounds.
pub fn page_size(ctx: &Ctx, default: u32, max: u32) -> Result<u32, Response> {
    let top = match ctx.param("$top") {
        Some(t) => Some(t.parse::<u32>().map_err(|_| {
            ctx.bad_request(&format!("Invalid value '{t}' for query option $top."))
        })?),
        None => None,
    };
    Ok(top.or(ctx.max_page_size()).unwrap_or(default).clamp(1, max))
}

pub fn list(ctx: &Ctx) -> Response {
    let (offset, size, selected) = match ctx.param("$skiptoken") {
        Some(token) => match Cursor::decode(token) {
            Some(c) if c.collection == "users" && c.epoch == ctx.sim.world().epoch => {
                (c.offset as usize, c.page, c.extra)
            }
            _ => return ctx.error(StatusCode::BAD_REQUEST, "Directory_ExpiredPageToken", "The specified page token value has expired and can no longer be included in your request."),
        },
        None => match page_size(ctx, 100, 999) {
            Ok(size) => (0, size, ctx.param("$select").map(str::to_owned)),
            Err(r) => return r,
        },
    };
    let world = ctx.sim.world();
    let Some(tenant) = world.tenant(&ctx.tenant_id) else {
        return ctx.not_found("tenant");
    };
    let users: Vec<Value> = tenant
        .users
        .values()
        .skip(offset)
        .take(size as usize)
        .map(|u| select(user_json(u), selected.as_deref()))
        .collect();
    let next = offset + users.len();
    let mut body = json!({
        "@odata.context": format!("{}/$metadata#users", ctx.graph_base),
        "value": users,
    });
    if next < tenant.users.len() {
        let cursor = Cursor {
            collection: "users".into(),
            offset: next as u64,
            epoch: world.epoch,
            page: size,
            extra: selected.clone(),
            ..Cursor::default()
        };
        let top = size.to_string();
        let mut query = vec![("$top", top.as_str())];
        if let Some(s) = &selected {
            query.push(("$select", s.as_str()));
        }
        let token = cursor.encode();
        query.push(("$skiptoken", token.as_str()));
        body["@odata.nextLink"] = Value::from(ctx.link("users", &query));
    }
    ctx.ok(body)
}

pub fn get(ctx: &Ctx, user: &str) -> Response {
    let world = ctx.sim.world();
    let tenant = world.tenant(&ctx.tenant_id);
    match tenant.and_then(|t| t.user_key(user).and_then(|k| t.users.get(&k))) {
        Some(u) => ctx.ok(select(user_json(u), ctx.param("$select"))),
        None => ctx.error(
            StatusCode::NOT_FOUND,
            "Request_ResourceNotFound",
            &format!("Resource '{user}' does not exist or one of its queried reference-property objects are not present."),
        ),
    }
}

//! Delta rounds shared by messages, events and drive items.
//!
//! A round starts without a token (everything now present) or from a
//! deltaLink (changes since the previous round). Its pages are a stable
//! list computed from the change logs up to the round's snapshot sequence,
//! so `@odata.nextLink`s can be followed at any pace; the last page carries
//! the `@odata.deltaLink` for the next round.

use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use serde_json::{json, Value};

use super::Ctx;
use crate::cursor::Cursor;

/// How a resource family spells its continuation links.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkStyle {
    /// Outlook: `?$skiptoken=` within a round, `?$deltatoken=` between rounds.
    Outlook,
    /// OneDrive: `?token=` for both.
    Drive,
}

/// What the client asked for: a fresh round, a page of a round, or the
/// next round from a deltaLink.
#[derive(Debug)]
pub struct Round {
    pub cursor: Cursor,
}

impl Round {
    /// Whether this round lists everything (no previous round).
    pub fn is_initial(&self) -> bool {
        self.cursor.since == 0
    }
}

/// Read the round from the request's tokens, or start one. `collection`
/// names what is being tracked; a token for anything else is refused.
pub fn start(
    ctx: &Ctx,
    collection: &str,
    default_page: u32,
    style: LinkStyle,
) -> Result<Round, Response> {
    let (world_seq, epoch) = {
        let world = ctx.sim.world();
        (world.current_seq(), world.epoch)
    };
    let token = match style {
        LinkStyle::Outlook => ctx
            .param("$skiptoken")
            .or_else(|| ctx.param("$deltatoken"))
            .map(str::to_owned),
        LinkStyle::Drive => ctx
            .path
            .function_token
            .clone()
            .or_else(|| ctx.param("token").map(str::to_owned)),
    };
    let page = ctx.max_page_size().unwrap_or(default_page).clamp(1, 1000);
    let Some(token) = token else {
        return Ok(Round {
            cursor: Cursor {
                collection: collection.to_owned(),
                since: 0,
                upto: world_seq,
                offset: 0,
                epoch,
                page,
                extra: ctx.param("$select").map(str::to_owned),
                window: None,
                after: None,
            },
        });
    };
    if style == LinkStyle::Drive && token == "latest" {
        // "Start from now": an empty round whose deltaLink sees later changes.
        return Ok(Round {
            cursor: Cursor {
                collection: collection.to_owned(),
                since: world_seq,
                upto: world_seq,
                offset: u64::MAX,
                epoch,
                page,
                extra: None,
                window: None,
                after: None,
            },
        });
    }
    let Some(mut cursor) = Cursor::decode(&token) else {
        return Err(ctx.error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "The delta token is not valid.",
        ));
    };
    if cursor.collection != collection {
        return Err(ctx.error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "The delta token does not belong to this resource.",
        ));
    }
    if cursor.epoch != epoch {
        return Err(expired(ctx, style));
    }
    if cursor.upto == 0 {
        // A deltaLink: the next round's snapshot is now.
        cursor.upto = world_seq;
        cursor.offset = 0;
        cursor.after = None;
    }
    Ok(Round { cursor })
}

/// The provider's answer to a delta token it no longer knows.
pub fn expired(ctx: &Ctx, style: LinkStyle) -> Response {
    match style {
        LinkStyle::Outlook => ctx.error(
            StatusCode::GONE,
            "SyncStateNotFound",
            "The sync state generation is not found; generation=1;[highest=2][2].",
        ),
        LinkStyle::Drive => {
            let body = json!({
                "error": {
                    "code": "resyncRequired",
                    "message": "Resync required. Replace any local items with the server's version (including deletes) if you're sure that the service was up to date with your local changes when you last sync'd. Upload any local changes that the server doesn't know about.",
                    "innerError": {
                        "code": "resyncChangesApplyDifferences",
                        "request-id": ctx.request_id,
                        "date": chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S").to_string(),
                    }
                }
            });
            let mut r = ctx.json(StatusCode::GONE, body);
            // The Location header starts a fresh enumeration.
            let path = ctx
                .path
                .segs
                .iter()
                .map(|s| s.raw.as_str())
                .collect::<Vec<_>>()
                .join("/");
            if let Ok(v) = HeaderValue::from_str(&ctx.link(&path, &[])) {
                r.headers_mut().insert("location", v);
            }
            r
        }
    }
}

/// One entry of a round's listing: a key that orders the initial listing
/// (ignored in change rounds, which are fixed by their sequence range) and
/// the item's JSON.
pub type Keyed = (String, Value);

/// Answer one page of `round` over `items` (already computed for the whole
/// round); `link_path` is the path of the links to emit.
///
/// An initial round lists what exists *now* on every page, so it pages by
/// key (after the last key served): an item created or deleted between
/// pages cannot shift another out of view. Whatever changed meanwhile has a
/// sequence number past the round's snapshot and comes in the next round.
/// A change round's listing is fixed by its `(since, upto]` range, so an
/// offset is exact there.
pub fn respond(
    ctx: &Ctx,
    round: Round,
    mut items: Vec<Keyed>,
    link_path: &str,
    style: LinkStyle,
    context: &str,
) -> Response {
    let mut cursor = round.cursor;
    let initial = cursor.since == 0;
    let start = if cursor.offset == u64::MAX {
        items.len()
    } else if initial {
        items.sort_by(|a, b| a.0.cmp(&b.0));
        match &cursor.after {
            Some(after) => items.partition_point(|(k, _)| k <= after),
            None => 0,
        }
    } else {
        (cursor.offset as usize).min(items.len())
    };
    let end = start.saturating_add(cursor.page as usize).min(items.len());
    let served = &items[start..end];
    let page: Vec<Value> = served
        .iter()
        .map(|(_, v)| crate::ms::users::select(v.clone(), cursor.extra.as_deref()))
        .collect();
    let mut body = json!({
        "@odata.context": format!("{}/$metadata#{context}", ctx.graph_base),
        "value": page,
    });
    let (next_key, delta_key) = match style {
        LinkStyle::Outlook => ("$skiptoken", "$deltatoken"),
        LinkStyle::Drive => ("token", "token"),
    };
    if end < items.len() {
        if initial {
            cursor.after = served.last().map(|(k, _)| k.clone()).or(cursor.after);
        } else {
            cursor.offset = end as u64;
        }
        body["@odata.nextLink"] = Value::from(ctx.link(link_path, &[(next_key, &cursor.encode())]));
    } else {
        let next_round = Cursor {
            since: cursor.upto,
            upto: 0,
            offset: 0,
            after: None,
            ..cursor
        };
        body["@odata.deltaLink"] =
            Value::from(ctx.link(link_path, &[(delta_key, &next_round.encode())]));
    }
    let page_size = cursor.page;
    let mut response = ctx.ok(body);
    if ctx.max_page_size().is_some() {
        if let Ok(v) = HeaderValue::from_str(&format!("odata.maxpagesize={page_size}")) {
            response.headers_mut().insert("preference-applied", v);
        }
    }
    response
}

/// The `@removed` entry of an item that left the collection.
pub fn removed(id: &str, reason: &str, odata_type: &str) -> Value {
    json!({ "@odata.type": odata_type, "id": id, "@removed": { "reason": reason } })
}

//! Gmail: profile, labels, messages (list, get in every format, import,
//! insert, delete, trash, modify) and history.

use std::sync::Arc;

use axum::body::Bytes;
use axum::http::{Method, StatusCode};
use axum::response::Response;
use base64::Engine;
use chrono::Utc;
use mail_parser::MimeHeaders;
use serde_json::{json, Value};

use super::upload::{self, Upload};
use super::{error, insufficient_scopes, GCtx};
use crate::content::Content;
use crate::cursor::Cursor;
use crate::state::{Sim, UploadTarget};
use crate::world::{GmailLabel, GmailMessage, GoogleUser, HistoryKind, HistoryRecord, World};

const READ: &[&str] = &[
    "https://mail.google.com/",
    "https://www.googleapis.com/auth/gmail.readonly",
    "https://www.googleapis.com/auth/gmail.modify",
    "https://www.googleapis.com/auth/gmail.metadata",
];
const WRITE: &[&str] = &[
    "https://mail.google.com/",
    "https://www.googleapis.com/auth/gmail.modify",
    "https://www.googleapis.com/auth/gmail.insert",
];
const DELETE: &[&str] = &["https://mail.google.com/"];
const LABELS: &[&str] = &[
    "https://mail.google.com/",
    "https://www.googleapis.com/auth/gmail.modify",
    "https://www.googleapis.com/auth/gmail.labels",
];
/// Import and insert accept at most 50 MB (this discovery revision).
const MAX_UPLOAD: usize = 52_428_800;

fn not_found() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "notFound",
        "Requested entity was not found.",
    )
}

fn with_user<T>(
    ctx: &GCtx,
    user_id: &str,
    f: impl FnOnce(&mut World, &str) -> Result<T, Response>,
) -> Result<T, Response> {
    let email = ctx.user(user_id)?;
    let mut world = ctx.sim.world();
    f(&mut world, &email)
}

pub fn mailbox<'w>(world: &'w mut World, domain: &str, email: &str) -> Option<&'w mut GoogleUser> {
    world
        .domain_mut(domain)?
        .users
        .values_mut()
        .find(|u| u.email.eq_ignore_ascii_case(email))
}

pub fn route(ctx: &GCtx) -> Response {
    let segs: Vec<&str> = ctx.segs.iter().map(String::as_str).collect();
    let need = |scopes: &[&str]| {
        if ctx.has_scope(scopes) {
            None
        } else {
            Some(insufficient_scopes())
        }
    };
    use Method as M;
    let result = match (&ctx.method, segs.as_slice()) {
        (&M::GET, ["users", u, "profile"]) => need(READ).map_or_else(|| profile(ctx, u), Err),
        (&M::GET, ["users", u, "labels"]) => need(READ).map_or_else(|| labels(ctx, u), Err),
        (&M::POST, ["users", u, "labels"]) => {
            need(LABELS).map_or_else(|| create_label(ctx, u), Err)
        }
        (&M::GET, ["users", u, "messages"]) => need(READ).map_or_else(|| list(ctx, u), Err),
        (&M::GET, ["users", u, "messages", id]) => need(READ).map_or_else(|| get(ctx, u, id), Err),
        (&M::POST, ["users", u, "messages", "import"]) => {
            need(WRITE).map_or_else(|| add(ctx, u, true), Err)
        }
        (&M::POST, ["users", u, "messages"]) => need(WRITE).map_or_else(|| add(ctx, u, false), Err),
        (&M::DELETE, ["users", u, "messages", id]) => {
            need(DELETE).map_or_else(|| delete(ctx, u, id), Err)
        }
        (&M::POST, ["users", u, "messages", id, "trash"]) => {
            need(WRITE).map_or_else(|| modify(ctx, u, id, &["TRASH"], &[]), Err)
        }
        (&M::POST, ["users", u, "messages", id, "untrash"]) => {
            need(WRITE).map_or_else(|| modify(ctx, u, id, &[], &["TRASH"]), Err)
        }
        (&M::POST, ["users", u, "messages", id, "modify"]) => {
            need(WRITE).map_or_else(|| modify_from_body(ctx, u, id), Err)
        }
        (&M::GET, ["users", u, "history"]) => need(READ).map_or_else(|| history(ctx, u), Err),
        _ => Err(error(StatusCode::NOT_FOUND, "notFound", "Not Found")),
    };
    result.unwrap_or_else(|r| r)
}

fn profile(ctx: &GCtx, user_id: &str) -> Result<Response, Response> {
    let domain = ctx.domain.clone();
    with_user(ctx, user_id, |world, email| {
        let seq = world.current_seq();
        let u = mailbox(world, &domain, email).ok_or_else(not_found)?;
        Ok(ctx.ok(json!({
            "emailAddress": u.email,
            "messagesTotal": u.messages.len(),
            "threadsTotal": u.messages.values().map(|m| &m.thread_id).collect::<std::collections::BTreeSet<_>>().len(),
            "historyId": seq.to_string(),
        })))
    })
}

fn label_json(l: &GmailLabel) -> Value {
    if l.system {
        json!({ "id": l.id, "name": l.name, "type": "system" })
    } else {
        json!({ "id": l.id, "name": l.name, "type": "user", "messageListVisibility": "show", "labelListVisibility": "labelShow" })
    }
}

fn labels(ctx: &GCtx, user_id: &str) -> Result<Response, Response> {
    let domain = ctx.domain.clone();
    with_user(ctx, user_id, |world, email| {
        let u = mailbox(world, &domain, email).ok_or_else(not_found)?;
        Ok(ctx.ok(json!({ "labels": u.labels.values().map(label_json).collect::<Vec<_>>() })))
    })
}

fn create_label(ctx: &GCtx, user_id: &str) -> Result<Response, Response> {
    let body = ctx.json_body()?;
    let name = body["name"]
        .as_str()
        .filter(|n| !n.trim().is_empty())
        .ok_or_else(|| {
            error(
                StatusCode::BAD_REQUEST,
                "invalidArgument",
                "Invalid label name",
            )
        })?
        .to_owned();
    let domain = ctx.domain.clone();
    with_user(ctx, user_id, |world, email| {
        let u = mailbox(world, &domain, email).ok_or_else(not_found)?;
        if u.labels
            .values()
            .any(|l| l.name.eq_ignore_ascii_case(&name))
        {
            return Err(error(
                StatusCode::CONFLICT,
                "alreadyExists",
                "Label name exists or conflicts",
            ));
        }
        let id = format!(
            "Label_{}",
            u.labels.values().filter(|l| !l.system).count() + 100
        );
        let label = GmailLabel {
            id: id.clone(),
            name,
            system: false,
        };
        let json = label_json(&label);
        u.labels.insert(id, label);
        Ok(ctx.ok(json))
    })
}

fn list(ctx: &GCtx, user_id: &str) -> Result<Response, Response> {
    let max = ctx.bounded("maxResults", 100, 500)?;
    // A page token names the last message served (newest first), so a
    // message arriving or leaving between pages shifts nothing.
    let after: Option<(i64, String)> = match ctx.param("pageToken") {
        None => None,
        Some(t) => match Cursor::decode(t).and_then(|c| {
            let key = c.after.filter(|_| c.collection == "gmail-list")?;
            let (date, id) = key.split_once('/')?;
            Some((date.parse::<i64>().ok()?, id.to_owned()))
        }) {
            Some(key) => Some(key),
            _ => {
                return Err(super::param_error(
                    StatusCode::BAD_REQUEST,
                    "invalid",
                    "Invalid pageToken",
                    "pageToken",
                ))
            }
        },
    };
    // Supported search: rfc822msgid:<id> (restore's duplicate check).
    let msgid = match ctx.param("q").map(str::trim).filter(|q| !q.is_empty()) {
        None => None,
        Some(q) => match q.strip_prefix("rfc822msgid:") {
            Some(id) => Some(id.trim().trim_matches(['<', '>']).to_owned()),
            None => {
                return Err(super::param_error(
                    StatusCode::BAD_REQUEST,
                    "invalidArgument",
                    "The simulator supports only the rfc822msgid: search operator.",
                    "q",
                ))
            }
        },
    };
    let label_ids: Vec<String> = ctx
        .params("labelIds")
        .into_iter()
        .map(str::to_owned)
        .collect();
    let include_spam_trash = ctx.flag("includeSpamTrash");
    let domain = ctx.domain.clone();
    with_user(ctx, user_id, |world, email| {
        let u = mailbox(world, &domain, email).ok_or_else(not_found)?;
        let mut matching: Vec<&GmailMessage> = u
            .messages
            .values()
            .filter(|m| {
                include_spam_trash || !m.label_ids.iter().any(|l| l == "SPAM" || l == "TRASH")
            })
            .filter(|m| label_ids.iter().all(|l| m.label_ids.contains(l)))
            .filter(|m| {
                msgid
                    .as_ref()
                    .is_none_or(|id| message_id_of(m).as_deref() == Some(id.as_str()))
            })
            .collect();
        // Newest first, as Gmail lists.
        matching.sort_by(|a, b| {
            b.internal_date_ms
                .cmp(&a.internal_date_ms)
                .then(b.id.cmp(&a.id))
        });
        let start = after.as_ref().map_or(0, |(date, id)| {
            matching.partition_point(|m| (m.internal_date_ms, &m.id) >= (*date, id))
        });
        let served = &matching[start..(start + max as usize).min(matching.len())];
        let page: Vec<Value> = served
            .iter()
            .map(|m| json!({ "id": m.id, "threadId": m.thread_id }))
            .collect();
        let mut body = json!({ "resultSizeEstimate": matching.len() });
        if !page.is_empty() {
            body["messages"] = Value::from(page);
        }
        if let (true, Some(last)) = (start + served.len() < matching.len(), served.last()) {
            let c = Cursor {
                collection: "gmail-list".into(),
                after: Some(format!("{}/{}", last.internal_date_ms, last.id)),
                ..Cursor::default()
            };
            body["nextPageToken"] = Value::from(c.encode());
        }
        Ok(ctx.ok(body))
    })
}

fn message_id_of(m: &GmailMessage) -> Option<String> {
    let raw = m.raw.bytes();
    mail_parser::MessageParser::default()
        .parse_headers(&raw[..])
        .and_then(|p| p.message_id().map(str::to_owned))
}

fn b64url_padded(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE.encode(bytes)
}

/// Part bodies come unpadded, as the real API sends them.
fn b64url_unpadded(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

pub fn message_json(m: &GmailMessage, format: &str, metadata_headers: &[&str]) -> Value {
    let raw = m.raw.bytes();
    let mut v = json!({
        "id": m.id,
        "threadId": m.thread_id,
        "labelIds": m.label_ids,
        "snippet": m.snippet,
        "sizeEstimate": raw.len(),
        "historyId": m.history_id.to_string(),
        "internalDate": m.internal_date_ms.to_string(),
    });
    match format {
        "raw" => v["raw"] = Value::from(b64url_padded(&raw)),
        "minimal" => {}
        "metadata" | "full" => {
            if let Some(parsed) = mail_parser::MessageParser::default().parse(&raw[..]) {
                v["payload"] = payload(&parsed, &raw, format == "full", metadata_headers);
            }
        }
        _ => {}
    }
    v
}

fn payload(parsed: &mail_parser::Message<'_>, raw: &[u8], full: bool, wanted: &[&str]) -> Value {
    let headers = |part: &mail_parser::MessagePart<'_>| -> Vec<Value> {
        part.headers
            .iter()
            .filter(|h| {
                wanted.is_empty()
                    || wanted
                        .iter()
                        .any(|w| w.eq_ignore_ascii_case(h.name.as_str()))
            })
            .map(|h| {
                let value = raw
                    .get(h.offset_start as usize..h.offset_end as usize)
                    .map(|b| String::from_utf8_lossy(b).trim().to_owned())
                    .unwrap_or_default();
                json!({ "name": h.name.as_str(), "value": value })
            })
            .collect()
    };
    let part_json = |i: usize, part: &mail_parser::MessagePart<'_>| -> Value {
        let mime = part
            .content_type()
            .map(|c| format!("{}/{}", c.ctype(), c.subtype().unwrap_or("plain")))
            .unwrap_or_else(|| "text/plain".into());
        let contents = part.contents();
        let mut body = json!({ "size": contents.len() });
        if full && !part.is_multipart() {
            body["data"] = Value::from(b64url_unpadded(contents));
        }
        json!({ "partId": if i == 0 { String::new() } else { (i - 1).to_string() }, "mimeType": mime, "filename": part.attachment_name().unwrap_or(""), "headers": headers(part), "body": body })
    };
    let mut root = match parsed.parts.first() {
        Some(p) => part_json(0, p),
        None => json!({}),
    };
    if full && parsed.parts.len() > 1 {
        root["parts"] = Value::from(
            parsed
                .parts
                .iter()
                .enumerate()
                .skip(1)
                .map(|(i, p)| part_json(i, p))
                .collect::<Vec<_>>(),
        );
    }
    root
}

fn get(ctx: &GCtx, user_id: &str, id: &str) -> Result<Response, Response> {
    let format = ctx.param("format").unwrap_or("full").to_owned();
    if !["full", "raw", "minimal", "metadata"].contains(&format.as_str()) {
        return Err(super::param_error(
            StatusCode::BAD_REQUEST,
            "invalidArgument",
            &format!("Invalid value at 'format' ({format})"),
            "format",
        ));
    }
    let wanted: Vec<String> = ctx
        .params("metadataHeaders")
        .into_iter()
        .map(str::to_owned)
        .collect();
    let domain = ctx.domain.clone();
    let message = with_user(ctx, user_id, |world, email| {
        let u = mailbox(world, &domain, email).ok_or_else(not_found)?;
        u.messages.get(id).cloned().ok_or_else(not_found)
    })?;
    let wanted: Vec<&str> = wanted.iter().map(String::as_str).collect();
    Ok(ctx.ok(message_json(&message, &format, &wanted)))
}

/// Record a history entry and return its id.
fn log(
    world: &mut World,
    domain: &str,
    email: &str,
    message_id: &str,
    kind: HistoryKind,
) -> Option<u64> {
    let seq = world.next_seq();
    let u = mailbox(world, domain, email)?;
    let thread_id = u
        .messages
        .get(message_id)
        .map(|m| m.thread_id.clone())
        .unwrap_or_else(|| message_id.to_owned());
    u.history.push(HistoryRecord {
        id: seq,
        message_id: message_id.to_owned(),
        thread_id,
        kind,
    });
    if let Some(m) = u.messages.get_mut(message_id) {
        m.history_id = seq;
    }
    Some(seq)
}

/// `messages.import` (`import` true) and `messages.insert`, in every upload form.
fn add(ctx: &GCtx, user_id: &str, import: bool) -> Result<Response, Response> {
    let email = ctx.user(user_id)?;
    let source = ctx
        .param("internalDateSource")
        .unwrap_or(if import { "dateHeader" } else { "receivedTime" })
        .to_owned();
    let upload = match upload::read(ctx)? {
        Some(u) => u,
        None => {
            let metadata = ctx.json_body()?;
            return Ok(upload::start_session(
                ctx,
                UploadTarget::Gmail {
                    domain: ctx.domain.clone(),
                    user: email,
                    metadata,
                    import,
                    internal_date_source: source,
                },
            ));
        }
    };
    let Upload {
        metadata, media, ..
    } = upload;
    // Without media, the JSON body carries the message as `raw`.
    let raw = match media {
        Some(m) => m,
        None => {
            let encoded = metadata["raw"].as_str().ok_or_else(|| error(StatusCode::BAD_REQUEST, "invalidArgument", "'raw' RFC822 payload message string or uploading message via /upload/* URL required"))?;
            let decoded = base64::engine::general_purpose::URL_SAFE
                .decode(encoded)
                .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(encoded))
                .or_else(|_| base64::engine::general_purpose::STANDARD.decode(encoded))
                .map_err(|_| {
                    error(
                        StatusCode::BAD_REQUEST,
                        "invalidArgument",
                        "Invalid value for ByteString",
                    )
                })?;
            Bytes::from(decoded)
        }
    };
    finish(
        &ctx.sim,
        &ctx.domain,
        &email,
        metadata,
        import,
        &source,
        raw,
    )
}

pub fn finish_upload(sim: &Arc<Sim>, target: UploadTarget, media: Bytes) -> Response {
    let UploadTarget::Gmail {
        domain,
        user,
        metadata,
        import,
        internal_date_source,
    } = target
    else {
        return error(StatusCode::BAD_REQUEST, "badRequest", "Not a Gmail upload.");
    };
    finish(
        sim,
        &domain,
        &user,
        metadata,
        import,
        &internal_date_source,
        media,
    )
    .unwrap_or_else(|r| r)
}

fn finish(
    sim: &Arc<Sim>,
    domain: &str,
    email: &str,
    metadata: Value,
    import: bool,
    source: &str,
    raw: Bytes,
) -> Result<Response, Response> {
    if raw.len() > MAX_UPLOAD {
        return Err(error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "uploadTooLarge",
            "Request payload size exceeds the limit: 52428800 bytes.",
        ));
    }
    let Some(parsed) = mail_parser::MessageParser::default().parse(&raw[..]) else {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "invalidArgument",
            "Invalid RFC 822 message.",
        ));
    };
    if parsed.headers().is_empty() {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "invalidArgument",
            "Message has no headers.",
        ));
    }
    let internal = if source == "dateHeader" {
        parsed
            .date()
            .map(|d| d.to_timestamp() * 1000)
            .unwrap_or_else(|| Utc::now().timestamp_millis())
    } else {
        Utc::now().timestamp_millis()
    };
    let snippet: String = parsed
        .body_text(0)
        .map(|t| t.chars().take(200).collect())
        .unwrap_or_default();
    let mut labels: Vec<String> = metadata["labelIds"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|l| l.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let mut world = sim.world();
    let u = mailbox(&mut world, domain, email).ok_or_else(not_found)?;
    if let Some(unknown) = labels.iter().find(|l| !u.labels.contains_key(*l)) {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "invalidArgument",
            &format!("Invalid label: {unknown}"),
        ));
    }
    if metadata["deleted"] == true {
        labels.clear();
    }
    let id = format!(
        "{:x}{}",
        internal,
        &uuid::Uuid::new_v4().simple().to_string()[..5]
    );
    let thread_id = metadata["threadId"]
        .as_str()
        .filter(|t| u.messages.values().any(|m| &m.thread_id == t))
        .map(str::to_owned)
        .unwrap_or_else(|| id.clone());
    u.messages.insert(
        id.clone(),
        GmailMessage {
            id: id.clone(),
            thread_id: thread_id.clone(),
            label_ids: labels.clone(),
            internal_date_ms: internal,
            history_id: 0,
            snippet,
            raw: Content::stored(raw),
        },
    );
    log(
        &mut world,
        domain,
        email,
        &id,
        HistoryKind::MessageAdded {
            label_ids: labels.clone(),
        },
    );
    let _ = import;
    Ok(super::json_response(
        StatusCode::OK,
        json!({ "id": id, "threadId": thread_id, "labelIds": labels }),
    ))
}

fn delete(ctx: &GCtx, user_id: &str, id: &str) -> Result<Response, Response> {
    let domain = ctx.domain.clone();
    with_user(ctx, user_id, |world, email| {
        let u = mailbox(world, &domain, email).ok_or_else(not_found)?;
        if !u.messages.contains_key(id) {
            return Err(not_found());
        }
        log(world, &domain, email, id, HistoryKind::MessageDeleted);
        mailbox(world, &domain, email)
            .expect("exists")
            .messages
            .remove(id);
        Ok(crate::ms::empty(StatusCode::NO_CONTENT))
    })
}

fn modify_from_body(ctx: &GCtx, user_id: &str, id: &str) -> Result<Response, Response> {
    let body = ctx.json_body()?;
    let list = |k: &str| -> Vec<String> {
        body[k]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|l| l.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let add = list("addLabelIds");
    let remove = list("removeLabelIds");
    let add: Vec<&str> = add.iter().map(String::as_str).collect();
    let remove: Vec<&str> = remove.iter().map(String::as_str).collect();
    modify(ctx, user_id, id, &add, &remove)
}

fn modify(
    ctx: &GCtx,
    user_id: &str,
    id: &str,
    add: &[&str],
    remove: &[&str],
) -> Result<Response, Response> {
    let domain = ctx.domain.clone();
    with_user(ctx, user_id, |world, email| {
        let u = mailbox(world, &domain, email).ok_or_else(not_found)?;
        if let Some(unknown) = add
            .iter()
            .chain(remove)
            .find(|l| !u.labels.contains_key(**l))
        {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "invalidArgument",
                &format!("Invalid label: {unknown}"),
            ));
        }
        let m = u.messages.get_mut(id).ok_or_else(not_found)?;
        let added: Vec<String> = add
            .iter()
            .filter(|l| !m.label_ids.iter().any(|x| x == *l))
            .map(|l| (*l).to_owned())
            .collect();
        let removed: Vec<String> = remove
            .iter()
            .filter(|l| m.label_ids.iter().any(|x| x == *l))
            .map(|l| (*l).to_owned())
            .collect();
        m.label_ids.extend(added.iter().cloned());
        m.label_ids.retain(|l| !removed.contains(l));
        let now = m.label_ids.clone();
        if !added.is_empty() {
            log(
                world,
                &domain,
                email,
                id,
                HistoryKind::LabelAdded {
                    label_ids: added,
                    now: now.clone(),
                },
            );
        }
        if !removed.is_empty() {
            log(
                world,
                &domain,
                email,
                id,
                HistoryKind::LabelRemoved {
                    label_ids: removed,
                    now,
                },
            );
        }
        let m = mailbox(world, &domain, email)
            .and_then(|u| u.messages.get(id).cloned())
            .ok_or_else(not_found)?;
        Ok(ctx.ok(message_json(&m, "minimal", &[])))
    })
}

fn history(ctx: &GCtx, user_id: &str) -> Result<Response, Response> {
    let start: u64 = match ctx.param("startHistoryId") {
        None => {
            return Err(super::param_error(
                StatusCode::BAD_REQUEST,
                "required",
                "Required parameter: startHistoryId",
                "startHistoryId",
            ))
        }
        Some(s) => s.parse().map_err(|_| {
            super::param_error(
                StatusCode::BAD_REQUEST,
                "invalidArgument",
                &format!("Invalid startHistoryId: {s}"),
                "startHistoryId",
            )
        })?,
    };
    let max = ctx.bounded("maxResults", 100, 500)? as usize;
    let types: Vec<String> = ctx
        .params("historyTypes")
        .into_iter()
        .map(str::to_owned)
        .collect();
    let label = ctx.param("labelId").map(str::to_owned);
    let after = match ctx.param("pageToken") {
        None => start,
        Some(t) => t.parse().map_err(|_| {
            super::param_error(
                StatusCode::BAD_REQUEST,
                "invalid",
                "Invalid pageToken",
                "pageToken",
            )
        })?,
    };
    let domain = ctx.domain.clone();
    with_user(ctx, user_id, |world, email| {
        let current = world.current_seq();
        let u = mailbox(world, &domain, email).ok_or_else(not_found)?;
        if start < u.history_floor || start > current {
            return Err(not_found());
        }
        let wanted = |k: &HistoryKind| {
            let name = match k {
                HistoryKind::MessageAdded { .. } => "messageAdded",
                HistoryKind::MessageDeleted => "messageDeleted",
                HistoryKind::LabelAdded { .. } => "labelAdded",
                HistoryKind::LabelRemoved { .. } => "labelRemoved",
            };
            types.is_empty() || types.iter().any(|t| t == name)
        };
        let records: Vec<&HistoryRecord> = u
            .history
            .iter()
            .filter(|r| r.id > after && wanted(&r.kind))
            .filter(|r| {
                label.as_ref().is_none_or(|l| match &r.kind {
                    HistoryKind::MessageAdded { label_ids }
                    | HistoryKind::LabelAdded { now: label_ids, .. }
                    | HistoryKind::LabelRemoved { now: label_ids, .. } => label_ids.contains(l),
                    HistoryKind::MessageDeleted => true,
                })
            })
            .collect();
        let page: Vec<Value> = records.iter().take(max).map(|r| history_json(r)).collect();
        let mut body = json!({ "historyId": current.to_string() });
        if !page.is_empty() {
            body["history"] = Value::from(page);
        }
        if records.len() > max {
            body["nextPageToken"] = Value::from(records[max - 1].id.to_string());
        }
        Ok(ctx.ok(body))
    })
}

fn history_json(r: &HistoryRecord) -> Value {
    let message = |labels: Option<&Vec<String>>| {
        let mut m = json!({ "id": r.message_id, "threadId": r.thread_id });
        if let Some(l) = labels {
            m["labelIds"] = json!(l);
        }
        m
    };
    let mut v = json!({ "id": r.id.to_string(), "messages": [message(None)] });
    match &r.kind {
        HistoryKind::MessageAdded { label_ids } => {
            v["messagesAdded"] = json!([{ "message": message(Some(label_ids)) }])
        }
        HistoryKind::MessageDeleted => v["messagesDeleted"] = json!([{ "message": message(None) }]),
        HistoryKind::LabelAdded { label_ids, now } => {
            v["labelsAdded"] = json!([{ "message": message(Some(now)), "labelIds": label_ids }])
        }
        HistoryKind::LabelRemoved { label_ids, now } => {
            v["labelsRemoved"] = json!([{ "message": message(Some(now)), "labelIds": label_ids }])
        }
    }
    v
}

//! Mail: folders (with child folders), messages, per-folder messages delta,
//! MIME (`$value`), and the writes restore needs (create from JSON or from
//! base64 MIME, update, move, delete).

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::delta::{self, LinkStyle};
use super::users::{page_size, select};
use super::Ctx;
use crate::content::{Content, MailSpec};
use crate::cursor::Cursor;
use crate::world::{M365User, MailFolder, Message, World};

const MESSAGE_TYPE: &str = "#microsoft.graph.message";

/// The user's mailbox, or the error Graph gives for a missing user or a
/// user without a mailbox.
fn mailbox<'w>(ctx: &Ctx, world: &'w mut World, user: &str) -> Result<&'w mut M365User, Response> {
    let tenant = world
        .tenant_mut(&ctx.tenant_id)
        .ok_or_else(|| ctx.not_found("tenant"))?;
    let key = tenant.user_key(user).ok_or_else(|| {
        ctx.error(
            StatusCode::NOT_FOUND,
            "ErrorInvalidUser",
            &format!("The requested user '{user}' is invalid."),
        )
    })?;
    let user = tenant.users.get_mut(&key).expect("key found above");
    if !user.has_mailbox {
        return Err(ctx.error(
            StatusCode::NOT_FOUND,
            "MailboxNotEnabledForRESTAPI",
            "The mailbox is either inactive, soft-deleted, or is hosted on-premise.",
        ));
    }
    Ok(user)
}

/// A folder id from an id or a well-known name (`inbox`, `msgfolderroot`...).
pub fn folder_id(user: &M365User, id_or_name: &str) -> Option<String> {
    if user.folders.contains_key(id_or_name) {
        return Some(id_or_name.to_owned());
    }
    let name = id_or_name.to_ascii_lowercase();
    user.folders
        .values()
        .find(|f| f.well_known == Some(name.as_str()))
        .map(|f| f.id.clone())
}

fn root_id(user: &M365User) -> String {
    folder_id(user, "msgfolderroot").expect("every mailbox has a root")
}

pub fn folder_json(user: &M365User, f: &MailFolder) -> Value {
    let children = user
        .folders
        .values()
        .filter(|c| c.parent_id == f.id)
        .count();
    let messages: Vec<&Message> = user
        .messages
        .values()
        .filter(|m| m.folder_id == f.id)
        .collect();
    json!({
        "id": f.id,
        "displayName": f.display_name,
        "parentFolderId": f.parent_id,
        "childFolderCount": children,
        "unreadItemCount": messages.iter().filter(|m| !m.is_read).count(),
        "totalItemCount": messages.len(),
        "isHidden": false,
    })
}

fn recipient(name: &str, address: &str) -> Value {
    json!({ "emailAddress": { "name": name, "address": address } })
}

fn stamp(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

pub fn message_json(m: &Message) -> Value {
    json!({
        "@odata.type": MESSAGE_TYPE,
        "@odata.etag": format!("W/\"{}\"", m.change_key),
        "id": m.id,
        "createdDateTime": stamp(&m.created),
        "lastModifiedDateTime": stamp(&m.modified),
        "changeKey": m.change_key,
        "categories": m.categories,
        "receivedDateTime": stamp(&m.received),
        "sentDateTime": stamp(&m.sent),
        "hasAttachments": m.has_attachments,
        "internetMessageId": m.internet_message_id,
        "subject": m.subject,
        "bodyPreview": m.body_preview,
        "importance": "normal",
        "parentFolderId": m.folder_id,
        "conversationId": format!("AAQk{}", &m.id[m.id.len().saturating_sub(12)..]),
        "isRead": m.is_read,
        "isDraft": m.is_draft,
        "from": recipient(&m.from.0, &m.from.1),
        "sender": recipient(&m.from.0, &m.from.1),
        "toRecipients": m.to.iter().map(|(n, a)| recipient(n, a)).collect::<Vec<_>>(),
        "ccRecipients": [],
        "bccRecipients": [],
        "replyTo": [],
        "flag": { "flagStatus": "notFlagged" },
    })
}

fn new_change_key() -> String {
    base64::engine::general_purpose::STANDARD.encode(&uuid::Uuid::new_v4().as_bytes()[..15])
}

pub fn new_message_id() -> String {
    format!("AAMkAD{}=", uuid::Uuid::new_v4().simple())
}

pub fn list_folders(ctx: &Ctx, user: &str, parent: Option<&str>) -> Response {
    let mut world = ctx.sim.world();
    let mailbox = match mailbox(ctx, &mut world, user) {
        Ok(m) => m,
        Err(r) => return r,
    };
    let parent_id = match parent {
        None => root_id(mailbox),
        Some(p) => match folder_id(mailbox, p) {
            Some(id) => id,
            None => return ctx.not_found("folder"),
        },
    };
    let folders: Vec<Value> = mailbox
        .folders
        .values()
        .filter(|f| f.parent_id == parent_id)
        .map(|f| select(folder_json(mailbox, f), ctx.param("$select")))
        .collect();
    ctx.ok(json!({
        "@odata.context": format!("{}/$metadata#users('{user}')/mailFolders", ctx.graph_base),
        "value": folders,
    }))
}

pub fn get_folder(ctx: &Ctx, user: &str, folder: &str) -> Response {
    let mut world = ctx.sim.world();
    let mailbox = match mailbox(ctx, &mut world, user) {
        Ok(m) => m,
        Err(r) => return r,
    };
    match folder_id(mailbox, folder).and_then(|id| mailbox.folders.get(&id)) {
        Some(f) => ctx.ok(select(folder_json(mailbox, f), ctx.param("$select"))),
        None => ctx.not_found("folder"),
    }
}

/// `mailFolders/delta`: every folder of the mailbox, then changes.
pub fn folders_delta(ctx: &Ctx, user: &str) -> Response {
    let collection = format!("folders:{user}");
    let round = match delta::start(ctx, &collection, 100, LinkStyle::Outlook) {
        Ok(r) => r,
        Err(r) => return r,
    };
    let mut world = ctx.sim.world();
    let mailbox = match mailbox(ctx, &mut world, user) {
        Ok(m) => m,
        Err(r) => return r,
    };
    let root = root_id(mailbox);
    let items: Vec<delta::Keyed> = if round.is_initial() {
        mailbox
            .folders
            .values()
            .filter(|f| f.id != root)
            .map(|f| (f.id.clone(), folder_json(mailbox, f)))
            .collect()
    } else {
        mailbox
            .folder_log
            .changes(round.cursor.since, round.cursor.upto)
            .into_iter()
            .map(|(_, id, removed)| match mailbox.folders.get(&id) {
                Some(f) if !removed => (id, folder_json(mailbox, f)),
                _ => {
                    let gone = delta::removed(&id, "deleted", "#microsoft.graph.mailFolder");
                    (id, gone)
                }
            })
            .collect()
    };
    drop(world);
    let link = format!("users/{user}/mailFolders/delta()");
    delta::respond(
        ctx,
        round,
        items,
        &link,
        LinkStyle::Outlook,
        "Collection(mailFolder)",
    )
}

pub fn create_folder(ctx: &Ctx, user: &str, parent: Option<&str>) -> Response {
    let body = match ctx.json_body() {
        Ok(b) => b,
        Err(r) => return r,
    };
    let Some(name) = body
        .get("displayName")
        .and_then(Value::as_str)
        .filter(|n| !n.trim().is_empty())
    else {
        return ctx.error(
            StatusCode::BAD_REQUEST,
            "ErrorInvalidParameter",
            "The value of the parameter 'DisplayName' is empty.",
        );
    };
    let mut world = ctx.sim.world();
    let seq = world.next_seq();
    let mailbox = match mailbox(ctx, &mut world, user) {
        Ok(m) => m,
        Err(r) => return r,
    };
    let parent_id = match parent {
        None => root_id(mailbox),
        Some(p) => match folder_id(mailbox, p) {
            Some(id) => id,
            None => return ctx.not_found("folder"),
        },
    };
    if mailbox
        .folders
        .values()
        .any(|f| f.parent_id == parent_id && f.display_name.eq_ignore_ascii_case(name))
    {
        return ctx.error(
            StatusCode::CONFLICT,
            "ErrorFolderExists",
            "A folder with the specified name already exists.",
        );
    }
    let id = format!("AAMkAF{}=", uuid::Uuid::new_v4().simple());
    mailbox.folders.insert(
        id.clone(),
        MailFolder {
            id: id.clone(),
            display_name: name.to_owned(),
            parent_id,
            well_known: None,
            log: Default::default(),
        },
    );
    mailbox.folder_log.upsert(seq, &id);
    let json = folder_json(mailbox, &mailbox.folders[&id]);
    ctx.json(StatusCode::CREATED, json)
}

/// Delete a folder with its child folders and messages.
pub fn delete_folder(ctx: &Ctx, user: &str, folder: &str) -> Response {
    let mut world = ctx.sim.world();
    let seq = world.next_seq();
    let mailbox = match mailbox(ctx, &mut world, user) {
        Ok(m) => m,
        Err(r) => return r,
    };
    let Some(id) = folder_id(mailbox, folder) else {
        return ctx.not_found("folder");
    };
    if mailbox.folders[&id].well_known.is_some() {
        return ctx.error(
            StatusCode::FORBIDDEN,
            "ErrorDeleteDistinguishedFolder",
            "Distinguished folders cannot be deleted.",
        );
    }
    let mut doomed = vec![id];
    let mut i = 0;
    while i < doomed.len() {
        let parent = doomed[i].clone();
        doomed.extend(
            mailbox
                .folders
                .values()
                .filter(|f| f.parent_id == parent)
                .map(|f| f.id.clone()),
        );
        i += 1;
    }
    for f in &doomed {
        mailbox.folders.remove(f);
        mailbox.folder_log.remove(seq, f);
    }
    mailbox
        .messages
        .retain(|_, m| !doomed.contains(&m.folder_id));
    super::empty(StatusCode::NO_CONTENT)
}

pub fn list_messages(ctx: &Ctx, user: &str, folder: Option<&str>) -> Response {
    let (offset, size) = match ctx.param("$skiptoken") {
        Some(t) => match Cursor::decode(t) {
            Some(c) if c.collection == "messages" => (c.offset as usize, c.page),
            _ => return ctx.bad_request("Invalid $skiptoken."),
        },
        None => match page_size(ctx, 10, 1000) {
            Ok(s) => (0, s),
            Err(r) => return r,
        },
    };
    // Only the filter restore uses: internetMessageId eq '<...>'.
    let filter_id = match ctx.param("$filter") {
        None => None,
        Some(f) => match f.trim().strip_prefix("internetMessageId eq ") {
            Some(v) => Some(v.trim().trim_matches('\'').to_owned()),
            None => {
                return ctx.error(
                    StatusCode::BAD_REQUEST,
                    "ErrorInvalidUrlQueryFilter",
                    "The query filter contains one or more invalid nodes.",
                )
            }
        },
    };
    let mut world = ctx.sim.world();
    let mailbox = match mailbox(ctx, &mut world, user) {
        Ok(m) => m,
        Err(r) => return r,
    };
    let folder_id = match folder {
        None => None,
        Some(f) => match folder_id(mailbox, f) {
            Some(id) => Some(id),
            None => return ctx.not_found("folder"),
        },
    };
    let all: Vec<&Message> = mailbox
        .messages
        .values()
        .filter(|m| folder_id.as_ref().is_none_or(|f| &m.folder_id == f))
        .filter(|m| {
            filter_id
                .as_ref()
                .is_none_or(|id| &m.internet_message_id == id)
        })
        .collect();
    let page: Vec<Value> = all
        .iter()
        .skip(offset)
        .take(size as usize)
        .map(|m| select(message_json(m), ctx.param("$select")))
        .collect();
    let mut body = json!({
        "@odata.context": format!("{}/$metadata#users('{user}')/messages", ctx.graph_base),
        "value": page,
    });
    let next = offset + size as usize;
    if next < all.len() {
        let cursor = Cursor {
            collection: "messages".into(),
            offset: next as u64,
            page: size,
            ..Cursor::default()
        };
        let path = ctx
            .path
            .segs
            .iter()
            .map(|s| s.raw.as_str())
            .collect::<Vec<_>>()
            .join("/");
        let mut query: Vec<(&str, String)> = ctx
            .query
            .iter()
            .filter(|(k, _)| !k.eq_ignore_ascii_case("$skiptoken"))
            .map(|(k, v)| (k.as_str(), v.clone()))
            .collect();
        query.push(("$skiptoken", cursor.encode()));
        let q: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
        body["@odata.nextLink"] = Value::from(ctx.link(&path, &q));
    }
    ctx.ok(body)
}

/// `mailFolders/{id}/messages/delta`
pub fn messages_delta(ctx: &Ctx, user: &str, folder: &str) -> Response {
    // Resolve the folder first: tokens are bound to its id, not its alias.
    let fid = {
        let mut world = ctx.sim.world();
        let mailbox = match mailbox(ctx, &mut world, user) {
            Ok(m) => m,
            Err(r) => return r,
        };
        match folder_id(mailbox, folder) {
            Some(id) => id,
            None => return ctx.not_found("folder"),
        }
    };
    let round = match delta::start(ctx, &format!("mail:{fid}"), 10, LinkStyle::Outlook) {
        Ok(r) => r,
        Err(r) => return r,
    };
    let mut world = ctx.sim.world();
    let mailbox = match mailbox(ctx, &mut world, user) {
        Ok(m) => m,
        Err(r) => return r,
    };
    let Some(f) = mailbox.folders.get(&fid) else {
        return ctx.not_found("folder");
    };
    let items: Vec<delta::Keyed> = if round.is_initial() {
        mailbox
            .messages
            .values()
            .filter(|m| m.folder_id == fid)
            .map(|m| (m.id.clone(), message_json(m)))
            .collect()
    } else {
        f.log
            .changes(round.cursor.since, round.cursor.upto)
            .into_iter()
            .map(|(_, id, removed)| {
                let entry = match mailbox.messages.get(&id) {
                    Some(m) if !removed && m.folder_id == fid => message_json(m),
                    // Moved elsewhere (restorable): "changed"; gone: "deleted".
                    Some(_) => delta::removed(&id, "changed", MESSAGE_TYPE),
                    None => delta::removed(&id, "deleted", MESSAGE_TYPE),
                };
                (id, entry)
            })
            .collect()
    };
    drop(world);
    let user_id = user.to_owned();
    let link = format!("users/{user_id}/mailFolders('{fid}')/messages/delta()");
    delta::respond(
        ctx,
        round,
        items,
        &link,
        LinkStyle::Outlook,
        "Collection(message)",
    )
}

pub fn get_message(ctx: &Ctx, user: &str, id: &str) -> Response {
    let mut world = ctx.sim.world();
    let mailbox = match mailbox(ctx, &mut world, user) {
        Ok(m) => m,
        Err(r) => return r,
    };
    match mailbox.messages.get(id) {
        Some(m) => ctx.ok(select(message_json(m), ctx.param("$select"))),
        None => ctx.not_found("message"),
    }
}

pub fn get_mime(ctx: &Ctx, user: &str, id: &str) -> Response {
    let content = {
        let mut world = ctx.sim.world();
        let mailbox = match mailbox(ctx, &mut world, user) {
            Ok(m) => m,
            Err(r) => return r,
        };
        match mailbox.messages.get(id) {
            Some(m) => m.mime.clone(),
            None => return ctx.not_found("message"),
        }
    };
    ([(header::CONTENT_TYPE, "text/plain")], content.bytes()).into_response()
}

/// Fields parsed out of a MIME message.
struct Parsed {
    message_id: String,
    subject: String,
    from: (String, String),
    to: Vec<(String, String)>,
    date: DateTime<Utc>,
    preview: String,
    has_attachments: bool,
}

fn parse_mime(raw: &[u8]) -> Option<Parsed> {
    let parsed = mail_parser::MessageParser::default().parse(raw)?;
    let first = |a: Option<&mail_parser::Address>| {
        a.and_then(|a| a.first())
            .map(|a| {
                (
                    a.name().unwrap_or_default().to_owned(),
                    a.address().unwrap_or_default().to_owned(),
                )
            })
            .unwrap_or_default()
    };
    let to = parsed
        .to()
        .map(|a| {
            a.iter()
                .map(|a| {
                    (
                        a.name().unwrap_or_default().to_owned(),
                        a.address().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    Some(Parsed {
        message_id: parsed
            .message_id()
            .map(|id| format!("<{id}>"))
            .unwrap_or_else(|| format!("<{}@sim.invalid>", uuid::Uuid::new_v4().simple())),
        subject: parsed.subject().unwrap_or_default().to_owned(),
        from: first(parsed.from()),
        to,
        date: parsed
            .date()
            .and_then(|d| DateTime::from_timestamp(d.to_timestamp(), 0))
            .unwrap_or_else(Utc::now),
        preview: parsed
            .body_text(0)
            .map(|t| t.chars().take(255).collect())
            .unwrap_or_default(),
        has_attachments: parsed.attachment_count() > 0,
    })
}

/// Insert a message into a folder, logging the change.
pub fn insert_message(
    world: &mut World,
    tenant_id: &str,
    user_id: &str,
    message: Message,
) -> Option<Value> {
    let seq = world.next_seq();
    let user = world.tenant_mut(tenant_id)?.users.get_mut(user_id)?;
    let folder = user.folders.get_mut(&message.folder_id)?;
    folder.log.upsert(seq, &message.id);
    let json = message_json(&message);
    user.messages.insert(message.id.clone(), message);
    Some(json)
}

/// `POST .../messages`: JSON, or base64 MIME with `Content-Type: text/plain`.
pub fn create_message(ctx: &Ctx, user: &str, folder: Option<&str>) -> Response {
    let content_type = ctx
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let now = Utc::now();
    let message = if content_type.starts_with("text/plain") {
        let text: String = String::from_utf8_lossy(&ctx.body)
            .split_whitespace()
            .collect();
        let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(text.as_bytes()) else {
            return ctx.error(
                StatusCode::BAD_REQUEST,
                "ErrorMimeContentInvalidBase64String",
                "Invalid base64 string for MIME content.",
            );
        };
        if raw.len() > 150 * 1024 * 1024 {
            return ctx.error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "ErrorMessageSizeExceeded",
                "The message exceeds the maximum supported size.",
            );
        }
        let Some(p) = parse_mime(&raw) else {
            return ctx.error(
                StatusCode::BAD_REQUEST,
                "ErrorMimeContentConversionFailed",
                "The MIME content could not be converted.",
            );
        };
        Message {
            id: new_message_id(),
            folder_id: String::new(),
            internet_message_id: p.message_id,
            subject: p.subject,
            from: p.from,
            to: p.to,
            received: p.date,
            sent: p.date,
            created: now,
            modified: now,
            is_read: true,
            is_draft: true,
            categories: vec![],
            has_attachments: p.has_attachments,
            change_key: new_change_key(),
            body_preview: p.preview,
            mime: Content::stored(raw),
        }
    } else if content_type.starts_with("application/json") {
        let body = match ctx.json_body() {
            Ok(b) => b,
            Err(r) => return r,
        };
        match message_from_json(&body, now) {
            Ok(m) => m,
            Err(msg) => return ctx.error(StatusCode::BAD_REQUEST, "ErrorInvalidProperty", &msg),
        }
    } else {
        return ctx.error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "ErrorUnsupportedMediaType",
            "The Content-Type is not supported: use application/json or text/plain (base64 MIME).",
        );
    };
    let mut world = ctx.sim.world();
    let (user_id, folder_id) = {
        let mailbox = match mailbox(ctx, &mut world, user) {
            Ok(m) => m,
            Err(r) => return r,
        };
        let target = folder.unwrap_or("drafts");
        match folder_id(mailbox, target) {
            Some(f) => (mailbox.id.clone(), f),
            None => return ctx.not_found("folder"),
        }
    };
    let message = Message {
        folder_id,
        ..message
    };
    let tenant_id = ctx.tenant_id.clone();
    match insert_message(&mut world, &tenant_id, &user_id, message) {
        Some(json) => ctx.json(StatusCode::CREATED, json),
        None => ctx.not_found("folder"),
    }
}

fn message_from_json(body: &Value, now: DateTime<Utc>) -> Result<Message, String> {
    let obj = body
        .as_object()
        .ok_or("The request body must be a JSON object.")?;
    let address = |v: &Value| -> (String, String) {
        let e = &v["emailAddress"];
        (
            e["name"].as_str().unwrap_or_default().to_owned(),
            e["address"].as_str().unwrap_or_default().to_owned(),
        )
    };
    let time = |key: &str| -> Result<Option<DateTime<Utc>>, String> {
        match obj.get(key).and_then(Value::as_str) {
            None => Ok(None),
            Some(t) => DateTime::parse_from_rfc3339(t)
                .map(|d| Some(d.with_timezone(&Utc)))
                .map_err(|_| format!("Cannot convert the literal '{t}' to the expected type 'Edm.DateTimeOffset'.")),
        }
    };
    let subject = obj
        .get("subject")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let body_text = obj
        .get("body")
        .and_then(|b| b.get("content"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let from = obj.get("from").map(address).unwrap_or_default();
    let to: Vec<(String, String)> = obj
        .get("toRecipients")
        .and_then(Value::as_array)
        .map(|a| a.iter().map(address).collect())
        .unwrap_or_default();
    // Restores set the original times through extended properties:
    // PidTagClientSubmitTime (0x0039) and PidTagMessageDeliveryTime (0x0E06).
    let props: Vec<&Value> = obj
        .get("singleValueExtendedProperties")
        .and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    let prop = |id: &str| -> Option<&str> {
        props
            .iter()
            .find(|p| p["id"].as_str().is_some_and(|p| p.eq_ignore_ascii_case(id)))
            .and_then(|p| p["value"].as_str())
    };
    let prop_time = |id: &str| -> Result<Option<DateTime<Utc>>, String> {
        prop(id)
            .map(|t| {
                DateTime::parse_from_rfc3339(t)
                    .map(|d| d.with_timezone(&Utc))
                    .map_err(|_| format!("Cannot convert the literal '{t}' to the expected type 'Edm.DateTimeOffset'."))
            })
            .transpose()
    };
    let sent = match prop_time("SystemTime 0x0039")? {
        Some(t) => t,
        None => time("sentDateTime")?.unwrap_or(now),
    };
    let received = match prop_time("SystemTime 0x0E06")? {
        Some(t) => t,
        None => time("receivedDateTime")?.unwrap_or(sent),
    };
    // PidTagMessageFlags (0x0E07): a message is a draft unless the flags
    // say otherwise (bit 0x8 = unsent).
    let flags = prop("Integer 0x0E07").and_then(|v| v.parse::<u32>().ok());
    let is_draft = flags.is_none_or(|f| f & 0x8 != 0);
    let message_id = match obj.get("internetMessageId").and_then(Value::as_str) {
        Some(id) if id.starts_with('<') && id.ends_with('>') && id.contains('@') => id.to_owned(),
        Some(id) => {
            return Err(format!(
                "The internetMessageId '{id}' is not a valid RFC 5322 message id."
            ))
        }
        None => format!("<{}@sim.outlook.invalid>", uuid::Uuid::new_v4().simple()),
    };
    let spec = MailSpec::new(
        message_id.clone(),
        from.clone(),
        to.clone(),
        subject.clone(),
        sent,
        body_text.clone(),
        None,
    );
    Ok(Message {
        id: new_message_id(),
        folder_id: String::new(),
        internet_message_id: message_id,
        subject,
        from,
        to,
        received,
        sent,
        created: now,
        modified: now,
        is_read: obj
            .get("isRead")
            .and_then(Value::as_bool)
            .unwrap_or(!is_draft),
        is_draft,
        categories: vec![],
        has_attachments: false,
        change_key: new_change_key(),
        body_preview: body_text.chars().take(255).collect(),
        mime: Content::Mail(std::sync::Arc::new(spec)),
    })
}

pub fn update_message(ctx: &Ctx, user: &str, id: &str) -> Response {
    let body = match ctx.json_body() {
        Ok(b) => b,
        Err(r) => return r,
    };
    let mut world = ctx.sim.world();
    let seq = world.next_seq();
    let mailbox = match mailbox(ctx, &mut world, user) {
        Ok(m) => m,
        Err(r) => return r,
    };
    let Some(m) = mailbox.messages.get_mut(id) else {
        return ctx.not_found("message");
    };
    for (key, value) in body.as_object().into_iter().flatten() {
        match key.as_str() {
            "isRead" => m.is_read = value.as_bool().unwrap_or(m.is_read),
            "subject" => m.subject = value.as_str().unwrap_or_default().to_owned(),
            "categories" => {
                m.categories = value
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|c| c.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default()
            }
            "flag" | "importance" | "inferenceClassification" => {}
            other => {
                return ctx.error(
                    StatusCode::BAD_REQUEST,
                    "ErrorInvalidPropertyUpdateSentMessage",
                    &format!("Update operation is not supported for property '{other}'."),
                );
            }
        }
    }
    m.modified = Utc::now();
    m.change_key = new_change_key();
    let json = message_json(m);
    let folder = m.folder_id.clone();
    if let Some(f) = mailbox.folders.get_mut(&folder) {
        f.log.upsert(seq, id);
    }
    ctx.ok(json)
}

/// Move a message between folders, logging both.
fn relocate(mailbox: &mut M365User, seq: u64, id: &str, to: &str) -> Option<Value> {
    let m = mailbox.messages.get_mut(id)?;
    let from = std::mem::replace(&mut m.folder_id, to.to_owned());
    m.modified = Utc::now();
    m.change_key = new_change_key();
    let json = message_json(m);
    if let Some(f) = mailbox.folders.get_mut(&from) {
        f.log.remove(seq, id);
    }
    if let Some(f) = mailbox.folders.get_mut(to) {
        f.log.upsert(seq, id);
    }
    Some(json)
}

pub fn move_message(ctx: &Ctx, user: &str, id: &str) -> Response {
    let body = match ctx.json_body() {
        Ok(b) => b,
        Err(r) => return r,
    };
    let Some(dest) = body.get("destinationId").and_then(Value::as_str) else {
        return ctx.error(
            StatusCode::BAD_REQUEST,
            "ErrorInvalidParameter",
            "The value of the parameter 'DestinationId' is empty.",
        );
    };
    let mut world = ctx.sim.world();
    let seq = world.next_seq();
    let mailbox = match mailbox(ctx, &mut world, user) {
        Ok(m) => m,
        Err(r) => return r,
    };
    let Some(to) = folder_id(mailbox, dest) else {
        return ctx.not_found("destination folder");
    };
    match relocate(mailbox, seq, id, &to) {
        Some(json) => ctx.json(StatusCode::CREATED, json),
        None => ctx.not_found("message"),
    }
}

/// DELETE moves to Deleted Items; deleting from Deleted Items removes it.
pub fn delete_message(ctx: &Ctx, user: &str, id: &str) -> Response {
    let mut world = ctx.sim.world();
    let seq = world.next_seq();
    let mailbox = match mailbox(ctx, &mut world, user) {
        Ok(m) => m,
        Err(r) => return r,
    };
    let deleted_items =
        folder_id(mailbox, "deleteditems").expect("every mailbox has Deleted Items");
    match mailbox.messages.get(id).map(|m| m.folder_id.clone()) {
        None => ctx.not_found("message"),
        Some(folder) if folder == deleted_items => {
            remove(mailbox, seq, id);
            super::empty(StatusCode::NO_CONTENT)
        }
        Some(_) => {
            relocate(mailbox, seq, id, &deleted_items);
            super::empty(StatusCode::NO_CONTENT)
        }
    }
}

pub fn hard_delete(ctx: &Ctx, user: &str, id: &str) -> Response {
    let mut world = ctx.sim.world();
    let seq = world.next_seq();
    let mailbox = match mailbox(ctx, &mut world, user) {
        Ok(m) => m,
        Err(r) => return r,
    };
    if remove(mailbox, seq, id) {
        super::empty(StatusCode::NO_CONTENT)
    } else {
        ctx.not_found("message")
    }
}

fn remove(mailbox: &mut M365User, seq: u64, id: &str) -> bool {
    match mailbox.messages.remove(id) {
        Some(m) => {
            if let Some(f) = mailbox.folders.get_mut(&m.folder_id) {
                f.log.remove(seq, id);
            }
            true
        }
        None => false,
    }
}

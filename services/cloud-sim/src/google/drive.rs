//! Drive v3: the change feed (start token, `changes.list` over My Drive and
//! shared drives), files (list with a subset of `q`, get, `alt=media`,
//! export of Google Docs formats, create and update in every upload form,
//! delete) and shared drives.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde_json::{json, Value};

use super::upload::{self, Upload};
use super::{error, insufficient_scopes, param_error, stamp, GCtx};
use crate::content::Content;
use crate::cursor::Cursor;
use crate::state::{Sim, UploadTarget};
use crate::world::{DriveFile, DriveScope, GoogleDomain};

const READ: &[&str] = &[
    "https://www.googleapis.com/auth/drive",
    "https://www.googleapis.com/auth/drive.readonly",
];
const WRITE: &[&str] = &[
    "https://www.googleapis.com/auth/drive",
    "https://www.googleapis.com/auth/drive.file",
];

/// "Note that the exported content is limited to 10 MB."
const EXPORT_LIMIT: u64 = 10 * 1024 * 1024;

fn file_not_found(id: &str) -> Response {
    param_error(
        StatusCode::NOT_FOUND,
        "notFound",
        &format!("File not found: {id}."),
        "fileId",
    )
}

/// Export formats per Google Docs type.
fn export_formats(mime: &str) -> &'static [&'static str] {
    match mime {
        "application/vnd.google-apps.document" => &[
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            "application/vnd.oasis.opendocument.text",
            "application/rtf",
            "application/pdf",
            "text/plain",
            "application/zip",
            "application/epub+zip",
            "text/markdown",
        ],
        "application/vnd.google-apps.spreadsheet" => &[
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "application/vnd.oasis.opendocument.spreadsheet",
            "application/pdf",
            "application/zip",
            "text/csv",
            "text/tab-separated-values",
        ],
        "application/vnd.google-apps.presentation" => &[
            "application/vnd.openxmlformats-officedocument.presentationml.presentation",
            "application/vnd.oasis.opendocument.presentation",
            "application/pdf",
            "text/plain",
            "image/jpeg",
            "image/png",
            "image/svg+xml",
        ],
        "application/vnd.google-apps.drawing" => &[
            "application/pdf",
            "image/jpeg",
            "image/png",
            "image/svg+xml",
        ],
        _ => &[],
    }
}

/// The bytes of a Google Doc exported as `mime`: deterministic per file
/// version and format, so two exports of one version are identical.
pub fn export_content(file: &DriveFile, mime: &str) -> Content {
    let digest = <sha2::Sha256 as sha2::Digest>::digest(
        format!("{}:{}:{mime}", file.id, file.version).as_bytes(),
    );
    let seed = u64::from_le_bytes(digest[..8].try_into().expect("8 bytes"));
    Content::Random {
        seed,
        len: file.content.len(),
    }
}

/// Whether `user` may see `file`: they own it in their My Drive, or belong
/// to its shared drive.
fn visible(d: &GoogleDomain, user: &str, file: &DriveFile) -> bool {
    match &file.drive_id {
        None => file.owner.eq_ignore_ascii_case(user),
        Some(drive) => d
            .shared_drives
            .get(drive)
            .is_some_and(|s| s.members.iter().any(|m| m.eq_ignore_ascii_case(user))),
    }
}

fn root_of(d: &GoogleDomain, user: &str) -> Option<String> {
    d.files
        .values()
        .find(|f| {
            f.parents.is_empty() && f.drive_id.is_none() && f.owner.eq_ignore_ascii_case(user)
        })
        .map(|f| f.id.clone())
}

pub fn file_json(f: &DriveFile, base_url: &str) -> Value {
    let mut v = json!({
        "kind": "drive#file",
        "id": f.id,
        "name": f.name,
        "mimeType": f.mime_type,
        "parents": f.parents,
        "createdTime": stamp(&f.created),
        "modifiedTime": stamp(&f.modified),
        "version": f.version.to_string(),
        "trashed": f.trashed,
        "explicitlyTrashed": f.trashed,
        "ownedByMe": f.drive_id.is_none(),
        "owners": if f.drive_id.is_none() { json!([{ "kind": "drive#user", "emailAddress": f.owner, "me": true }]) } else { Value::Null },
    });
    if !f.app_properties.is_empty() {
        v["appProperties"] = json!(f.app_properties);
    }
    if let Some(drive) = &f.drive_id {
        v["driveId"] = Value::from(drive.clone());
        v["teamDriveId"] = Value::from(drive.clone());
    }
    if f.is_google_doc() {
        let links: BTreeMap<&str, String> = export_formats(&f.mime_type)
            .iter()
            .map(|m| {
                (
                    *m,
                    format!(
                        "{base_url}/drive/v3/files/{}/export?mimeType={}",
                        f.id,
                        url::form_urlencoded::byte_serialize(m.as_bytes()).collect::<String>()
                    ),
                )
            })
            .collect();
        v["exportLinks"] = json!(links);
    } else if !f.is_folder() {
        let hashes = f.content.hashes();
        v["size"] = Value::from(f.content.len().to_string());
        v["quotaBytesUsed"] = Value::from(f.content.len().to_string());
        v["md5Checksum"] = Value::from(hashes.md5_hex);
        v["sha1Checksum"] = Value::from(hashes.sha1_hex);
        v["sha256Checksum"] = Value::from(hashes.sha256_hex);
        v["headRevisionId"] = Value::from(format!(
            "0B{}rev{}",
            &f.id[1..12.min(f.id.len())],
            f.version
        ));
    }
    if v["owners"].is_null() {
        v.as_object_mut().expect("object").remove("owners");
    }
    v
}

pub fn route(ctx: &GCtx) -> Response {
    let segs: Vec<&str> = ctx.segs.iter().map(String::as_str).collect();
    let read = ctx.has_scope(READ);
    let write = ctx.has_scope(WRITE);
    use Method as M;
    let result = match (&ctx.method, segs.as_slice()) {
        (&M::GET, ["changes", "startPageToken"]) if read => start_token(ctx),
        (&M::GET, ["changes"]) if read => changes(ctx),
        (&M::GET, ["files"]) if read => list(ctx),
        (&M::GET, ["files", id]) if read => get(ctx, id),
        (&M::GET, ["files", id, "export"]) if read => export(ctx, id),
        (&M::POST, ["files"]) if write => create(ctx),
        (&M::PATCH | &M::PUT, ["files", id]) if write => update(ctx, id),
        (&M::DELETE, ["files", id]) if write => delete(ctx, id),
        (&M::GET, ["drives"]) if read => drives(ctx),
        (&M::GET, ["changes" | "files" | "drives", ..]) => Err(insufficient_scopes()),
        (&M::POST | &M::PATCH | &M::PUT | &M::DELETE, ["files", ..]) => Err(insufficient_scopes()),
        _ => Err(error(StatusCode::NOT_FOUND, "notFound", "Not Found")),
    };
    result.unwrap_or_else(|r| r)
}

fn with_domain<T>(
    ctx: &GCtx,
    f: impl FnOnce(&mut GoogleDomain, u64) -> Result<T, Response>,
) -> Result<T, Response> {
    let mut world = ctx.sim.world();
    let seq = world.next_seq();
    let d = world
        .domain_mut(&ctx.domain)
        .ok_or_else(|| error(StatusCode::NOT_FOUND, "notFound", "Not Found"))?;
    f(d, seq)
}

/// Page tokens are change sequence numbers, as Drive's own are.
fn start_token(ctx: &GCtx) -> Result<Response, Response> {
    let world = ctx.sim.world();
    let current = world.current_seq();
    if let Some(drive) = ctx.param("driveId") {
        let d = world
            .domain(&ctx.domain)
            .ok_or_else(|| file_not_found(drive))?;
        if !ctx.flag("supportsAllDrives")
            || !d
                .shared_drives
                .get(drive)
                .is_some_and(|s| s.members.contains(&ctx.subject))
        {
            return Err(param_error(
                StatusCode::NOT_FOUND,
                "notFound",
                &format!("Shared drive not found: {drive}"),
                "driveId",
            ));
        }
    }
    Ok(ctx.ok(json!({ "kind": "drive#startPageToken", "startPageToken": current.to_string() })))
}

fn changes(ctx: &GCtx) -> Result<Response, Response> {
    let token = ctx.param("pageToken").ok_or_else(|| {
        param_error(
            StatusCode::BAD_REQUEST,
            "required",
            "Required parameter: pageToken",
            "pageToken",
        )
    })?;
    let page_size = ctx.bounded("pageSize", 100, 1000)? as usize;
    let include_removed = ctx.param("includeRemoved") != Some("false");
    let all_drives = ctx.flag("includeItemsFromAllDrives") || ctx.flag("includeTeamDriveItems");
    if all_drives && !(ctx.flag("supportsAllDrives") || ctx.flag("supportsTeamDrives")) {
        return Err(param_error(StatusCode::FORBIDDEN, "teamDrivesParameterNotSupported", "The includeItemsFromAllDrives parameter is only supported when supportsAllDrives is set to true.", "includeItemsFromAllDrives"));
    }
    let drive_filter = ctx.param("driveId").map(str::to_owned);
    let world = ctx.sim.world();
    let current = world.current_seq();
    let d = world
        .domain(&ctx.domain)
        .ok_or_else(|| error(StatusCode::NOT_FOUND, "notFound", "Not Found"))?;
    let since: u64 = token
        .parse()
        .ok()
        .filter(|t| *t >= d.drive_token_floor && *t <= current)
        .ok_or_else(|| {
            param_error(
                StatusCode::BAD_REQUEST,
                "invalid",
                "Invalid Value",
                "pageToken",
            )
        })?;
    let user = ctx.subject.as_str();
    let in_scope = |scope: &DriveScope| match (scope, &drive_filter) {
        (DriveScope::Shared { drive_id }, Some(f)) => drive_id == f,
        (_, Some(_)) => false,
        (DriveScope::MyDrive { owner }, None) => owner.eq_ignore_ascii_case(user),
        (DriveScope::Shared { drive_id }, None) => {
            all_drives
                && d.shared_drives
                    .get(drive_id)
                    .is_some_and(|s| s.members.iter().any(|m| m.eq_ignore_ascii_case(user)))
        }
    };
    // The latest change of each file after `since`, in change order.
    let mut last: BTreeMap<&str, u64> = BTreeMap::new();
    for (seq, id, scope) in &d.drive_log {
        if *seq > since && in_scope(scope) {
            last.insert(id, *seq);
        }
    }
    let mut entries: Vec<(u64, &str)> = last.into_iter().map(|(id, seq)| (seq, id)).collect();
    entries.sort();
    // The next page token is a sequence number, so a page never ends inside
    // a group of changes that share one (a folder trashed with its files):
    // it stops before the group, or takes the whole group when the group
    // alone is larger than a page.
    let mut take = entries.len().min(page_size);
    if take < entries.len() {
        let cut = entries[take].0;
        while take > 0 && entries[take - 1].0 == cut {
            take -= 1;
        }
        if take == 0 {
            take = entries.partition_point(|(seq, _)| *seq <= cut);
        }
    }
    let mut changes = Vec::new();
    let mut last_seq = since;
    for (seq, id) in &entries[..take] {
        last_seq = *seq;
        let Some(f) = d.files.get(*id) else { continue };
        let removed = f.deleted || !visible(d, user, f);
        if removed && !include_removed {
            continue;
        }
        let mut change = json!({
            "kind": "drive#change",
            "changeType": "file",
            "time": stamp(&f.modified),
            "removed": removed,
            "fileId": f.id,
        });
        if let Some(drive) = &f.drive_id {
            change["driveId"] = Value::from(drive.clone());
        }
        if !removed {
            change["file"] = file_json(f, &ctx.sim.base_url);
        }
        changes.push(change);
    }
    let mut body = json!({ "kind": "drive#changeList", "changes": changes });
    if take < entries.len() {
        body["nextPageToken"] = Value::from(last_seq.to_string());
    } else {
        body["newStartPageToken"] = Value::from(current.to_string());
    }
    Ok(ctx.ok(body))
}

/// The subset of Drive's query language restore and tests use.
fn matches_query(q: &str, f: &DriveFile) -> Result<bool, String> {
    let mut ok = true;
    for clause in q.split(" and ").map(str::trim).filter(|c| !c.is_empty()) {
        let unquote = |s: &str| s.trim().trim_matches('\'').replace("\\'", "'");
        let hit = if let Some(rest) = clause.strip_suffix(" in parents") {
            f.parents.contains(&unquote(rest))
        } else if let Some(v) = clause
            .strip_prefix("trashed =")
            .or_else(|| clause.strip_prefix("trashed="))
        {
            f.trashed == (v.trim() == "true")
        } else if let Some(v) = clause
            .strip_prefix("name =")
            .or_else(|| clause.strip_prefix("name="))
        {
            f.name == unquote(v)
        } else if let Some(v) = clause.strip_prefix("mimeType !=") {
            f.mime_type != unquote(v)
        } else if let Some(v) = clause
            .strip_prefix("mimeType =")
            .or_else(|| clause.strip_prefix("mimeType="))
        {
            f.mime_type == unquote(v)
        } else if let Some(inner) = clause
            .strip_prefix("appProperties has {")
            .and_then(|r| r.strip_suffix('}'))
        {
            let mut key = None;
            let mut value = None;
            for part in inner.split(" and ") {
                if let Some(k) = part
                    .trim()
                    .strip_prefix("key=")
                    .or_else(|| part.trim().strip_prefix("key ="))
                {
                    key = Some(unquote(k));
                } else if let Some(v) = part
                    .trim()
                    .strip_prefix("value=")
                    .or_else(|| part.trim().strip_prefix("value ="))
                {
                    value = Some(unquote(v));
                }
            }
            match (key, value) {
                (Some(k), Some(v)) => f.app_properties.get(&k) == Some(&v),
                _ => return Err(format!("Invalid query: {clause}")),
            }
        } else {
            return Err(format!("Invalid query: {clause}"));
        };
        ok &= hit;
    }
    Ok(ok)
}

fn list(ctx: &GCtx) -> Result<Response, Response> {
    let page_size = ctx.bounded("pageSize", 100, 1000)? as usize;
    let offset = match ctx.param("pageToken") {
        None => 0,
        Some(t) => match Cursor::decode(t) {
            Some(c) if c.collection == "drive-files" => c.offset as usize,
            _ => {
                return Err(param_error(
                    StatusCode::BAD_REQUEST,
                    "invalid",
                    "Invalid Value",
                    "pageToken",
                ))
            }
        },
    };
    let all_drives = ctx.flag("includeItemsFromAllDrives");
    let drive_filter = ctx.param("driveId").map(str::to_owned);
    let q = ctx.param("q").unwrap_or("").to_owned();
    let world = ctx.sim.world();
    let d = world
        .domain(&ctx.domain)
        .ok_or_else(|| error(StatusCode::NOT_FOUND, "notFound", "Not Found"))?;
    let mut files = Vec::new();
    for f in d.files.values() {
        if f.deleted || f.parents.is_empty() || !visible(d, &ctx.subject, f) {
            continue;
        }
        match (&f.drive_id, &drive_filter) {
            (Some(id), Some(want)) if id != want => continue,
            (None, Some(_)) => continue,
            (Some(_), None) if !all_drives => continue,
            _ => {}
        }
        match matches_query(&q, f) {
            Ok(true) => files.push(f),
            Ok(false) => {}
            Err(msg) => return Err(param_error(StatusCode::BAD_REQUEST, "invalid", &msg, "q")),
        }
    }
    let page: Vec<Value> = files
        .iter()
        .skip(offset)
        .take(page_size)
        .map(|f| file_json(f, &ctx.sim.base_url))
        .collect();
    let mut body = json!({ "kind": "drive#fileList", "incompleteSearch": false, "files": page });
    if offset + page_size < files.len() {
        let c = Cursor {
            collection: "drive-files".into(),
            offset: (offset + page_size) as u64,
            ..Cursor::default()
        };
        body["nextPageToken"] = Value::from(c.encode());
    }
    Ok(ctx.ok(body))
}

/// The file, if the user may see it (shared-drive files need
/// `supportsAllDrives=true`, as with the real API).
fn lookup<'d>(ctx: &GCtx, d: &'d GoogleDomain, id: &str) -> Result<&'d DriveFile, Response> {
    let f = lookup_any_drive(ctx, d, id)?;
    if f.drive_id.is_some() && !(ctx.flag("supportsAllDrives") || ctx.flag("supportsTeamDrives")) {
        return Err(file_not_found(id));
    }
    Ok(f)
}

/// The file wherever it lives (`files.export` takes no supportsAllDrives).
fn lookup_any_drive<'d>(
    ctx: &GCtx,
    d: &'d GoogleDomain,
    id: &str,
) -> Result<&'d DriveFile, Response> {
    let id = if id == "root" {
        root_of(d, &ctx.subject).unwrap_or_default()
    } else {
        id.to_owned()
    };
    let f = d
        .files
        .get(&id)
        .filter(|f| !f.deleted && visible(d, &ctx.subject, f))
        .ok_or_else(|| file_not_found(&id))?;
    Ok(f)
}

fn get(ctx: &GCtx, id: &str) -> Result<Response, Response> {
    let (content, mime) = {
        let world = ctx.sim.world();
        let d = world
            .domain(&ctx.domain)
            .ok_or_else(|| file_not_found(id))?;
        let f = lookup(ctx, d, id)?;
        if ctx.param("alt") != Some("media") {
            return Ok(ctx.ok(file_json(f, &ctx.sim.base_url)));
        }
        if f.is_google_doc() || f.is_folder() {
            return Err(error(StatusCode::FORBIDDEN, "fileNotDownloadable", "Only files with binary content can be downloaded. Use Export with Docs Editors files."));
        }
        (f.content.clone(), f.mime_type.clone())
    };
    Ok(media_response(ctx, content, &mime))
}

/// Media bytes, honouring `Range` (206 with `Content-Range`).
fn media_response(ctx: &GCtx, content: Content, mime: &str) -> Response {
    let len = content.len();
    let range = ctx
        .headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.split_once('-'))
        .and_then(|(a, b)| {
            let start: u64 = a.parse().ok()?;
            let end: u64 = if b.is_empty() {
                len.saturating_sub(1)
            } else {
                b.parse().ok()?
            };
            (start <= end && start < len).then_some((start, end.min(len - 1)))
        });
    let mut response = match range {
        Some((start, end)) => {
            let mut r =
                (StatusCode::PARTIAL_CONTENT, content.range(start, end + 1)).into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{end}/{len}")) {
                r.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            r
        }
        None => (StatusCode::OK, content.bytes()).into_response(),
    };
    if let Ok(v) = HeaderValue::from_str(mime) {
        response.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    response
}

fn export(ctx: &GCtx, id: &str) -> Result<Response, Response> {
    let mime = ctx
        .param("mimeType")
        .ok_or_else(|| {
            param_error(
                StatusCode::BAD_REQUEST,
                "required",
                "Required parameter: mimeType",
                "mimeType",
            )
        })?
        .to_owned();
    let content = {
        let world = ctx.sim.world();
        let d = world
            .domain(&ctx.domain)
            .ok_or_else(|| file_not_found(id))?;
        let f = lookup_any_drive(ctx, d, id)?;
        if !f.is_google_doc() {
            return Err(error(
                StatusCode::FORBIDDEN,
                "fileNotExportable",
                "Export only supports Docs Editors files.",
            ));
        }
        if !export_formats(&f.mime_type).contains(&mime.as_str()) {
            return Err(param_error(
                StatusCode::BAD_REQUEST,
                "badRequest",
                "The requested conversion is not supported.",
                "convertTo",
            ));
        }
        if f.content.len() > EXPORT_LIMIT {
            return Err(error(
                StatusCode::FORBIDDEN,
                "exportSizeLimitExceeded",
                "This file is too large to be exported.",
            ));
        }
        export_content(f, &mime)
    };
    Ok(media_response(ctx, content, &mime))
}

fn drives(ctx: &GCtx) -> Result<Response, Response> {
    let world = ctx.sim.world();
    let d = world
        .domain(&ctx.domain)
        .ok_or_else(|| error(StatusCode::NOT_FOUND, "notFound", "Not Found"))?;
    let admin = ctx.flag("useDomainAdminAccess") && d.admin.eq_ignore_ascii_case(&ctx.subject);
    let drives: Vec<Value> = d
        .shared_drives
        .values()
        .filter(|s| admin || s.members.iter().any(|m| m.eq_ignore_ascii_case(&ctx.subject)))
        .map(|s| json!({ "kind": "drive#drive", "id": s.id, "name": s.name, "createdTime": "2024-02-01T09:00:00.000Z", "hidden": false }))
        .collect();
    Ok(ctx.ok(json!({ "kind": "drive#driveList", "drives": drives })))
}

fn create(ctx: &GCtx) -> Result<Response, Response> {
    let target = UploadTarget::Drive {
        domain: ctx.domain.clone(),
        user: ctx.subject.clone(),
        metadata: Value::Null,
        file_id: None,
        supports_all_drives: ctx.flag("supportsAllDrives"),
    };
    write(ctx, target)
}

fn update(ctx: &GCtx, id: &str) -> Result<Response, Response> {
    {
        let world = ctx.sim.world();
        let d = world
            .domain(&ctx.domain)
            .ok_or_else(|| file_not_found(id))?;
        lookup(ctx, d, id)?;
    }
    let target = UploadTarget::Drive {
        domain: ctx.domain.clone(),
        user: ctx.subject.clone(),
        metadata: Value::Null,
        file_id: Some(id.to_owned()),
        supports_all_drives: ctx.flag("supportsAllDrives"),
    };
    write(ctx, target)
}

/// Create or update, from JSON metadata alone or an upload in any form.
fn write(ctx: &GCtx, target: UploadTarget) -> Result<Response, Response> {
    let upload = upload::read(ctx)?;
    let UploadTarget::Drive {
        domain,
        user,
        file_id,
        supports_all_drives,
        ..
    } = target
    else {
        unreachable!("drive target")
    };
    let (add_parents, remove_parents) = (
        ctx.param("addParents").map(str::to_owned),
        ctx.param("removeParents").map(str::to_owned),
    );
    match upload {
        None => {
            let mut metadata = ctx.json_body()?;
            // Without a mimeType in the metadata, Drive takes the media's
            // type from X-Upload-Content-Type.
            let media_type = ctx
                .headers
                .get("x-upload-content-type")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            if let (Some(object), Some(media_type)) = (metadata.as_object_mut(), media_type) {
                object
                    .entry("mimeType")
                    .or_insert_with(|| Value::from(media_type));
            }
            Ok(upload::start_session(
                ctx,
                UploadTarget::Drive {
                    domain,
                    user,
                    metadata,
                    file_id,
                    supports_all_drives,
                },
            ))
        }
        Some(Upload {
            metadata,
            media,
            media_type,
        }) => {
            let mut metadata = metadata;
            if let Some(p) = add_parents {
                metadata["_addParents"] = Value::from(p);
            }
            if let Some(p) = remove_parents {
                metadata["_removeParents"] = Value::from(p);
            }
            if metadata.get("mimeType").is_none() {
                if let Some(t) = media_type.filter(|t| !t.is_empty()) {
                    metadata["_mediaType"] = Value::from(t);
                }
            }
            apply(
                &ctx.sim,
                &domain,
                &user,
                file_id.as_deref(),
                &metadata,
                media,
                supports_all_drives,
            )
        }
    }
}

pub fn finish_upload(sim: &Arc<Sim>, target: UploadTarget, media: Bytes) -> Response {
    let UploadTarget::Drive {
        domain,
        user,
        metadata,
        file_id,
        supports_all_drives,
    } = target
    else {
        return error(StatusCode::BAD_REQUEST, "badRequest", "Not a Drive upload.");
    };
    apply(
        sim,
        &domain,
        &user,
        file_id.as_deref(),
        &metadata,
        Some(media),
        supports_all_drives,
    )
    .unwrap_or_else(|r| r)
}

/// Apply metadata (and media, if any) to a new or existing file.
fn apply(
    sim: &Arc<Sim>,
    domain: &str,
    user: &str,
    file_id: Option<&str>,
    metadata: &Value,
    media: Option<Bytes>,
    supports_all_drives: bool,
) -> Result<Response, Response> {
    let mut world = sim.world();
    let seq = world.next_seq();
    let d = world
        .domain_mut(domain)
        .ok_or_else(|| error(StatusCode::NOT_FOUND, "notFound", "Not Found"))?;
    let str_list = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let now = Utc::now();
    let id = match file_id {
        Some(id) => {
            let f = d
                .files
                .get(id)
                .filter(|f| !f.deleted && visible(d, user, f))
                .ok_or_else(|| file_not_found(id))?;
            if f.drive_id.is_some() && !supports_all_drives {
                return Err(file_not_found(id));
            }
            let mut f = f.clone();
            if let Some(name) = metadata["name"].as_str() {
                f.name = name.to_owned();
            }
            if let Some(t) = metadata["trashed"].as_bool() {
                f.trashed = t;
            }
            if let Some(props) = metadata["appProperties"].as_object() {
                for (k, v) in props {
                    match v.as_str() {
                        Some(v) => f.app_properties.insert(k.clone(), v.to_owned()),
                        None => f.app_properties.remove(k),
                    };
                }
            }
            if let Some(p) = metadata["_removeParents"].as_str() {
                f.parents.retain(|x| !p.split(',').any(|r| r == x));
            }
            if let Some(p) = metadata["_addParents"].as_str() {
                f.parents.extend(p.split(',').map(str::to_owned));
            }
            if let Some(m) = media {
                f.content = Content::stored(m);
            }
            f.version += 1;
            f.modified = now;
            f
        }
        None => {
            let name = metadata["name"].as_str().unwrap_or("Untitled").to_owned();
            let mime = metadata["mimeType"]
                .as_str()
                .or_else(|| metadata["_mediaType"].as_str())
                .unwrap_or("application/octet-stream")
                .to_owned();
            let mut parents = str_list(&metadata["parents"]);
            if parents.is_empty() {
                parents = vec![root_of(d, user).ok_or_else(|| {
                    error(
                        StatusCode::NOT_FOUND,
                        "notFound",
                        "The user has no My Drive.",
                    )
                })?];
            }
            let parent = d
                .files
                .get(&parents[0])
                .filter(|p| p.is_folder() && !p.deleted && visible(d, user, p))
                .cloned();
            // A shared drive's root is the drive itself, not a file.
            let shared_root = d
                .shared_drives
                .get(&parents[0])
                .filter(|s| s.members.iter().any(|m| m.eq_ignore_ascii_case(user)))
                .map(|s| s.id.clone());
            let drive_id = match (parent, shared_root) {
                (Some(p), _) => p.drive_id.clone(),
                (None, Some(drive)) => Some(drive),
                (None, None) => return Err(file_not_found(&parents[0])),
            };
            if drive_id.is_some() && !supports_all_drives {
                return Err(file_not_found(&parents[0]));
            }
            let id = format!(
                "1{}",
                crate::dataset::new_drive_id(&mut rand::thread_rng(), 32)
            );
            let app_properties = metadata["appProperties"]
                .as_object()
                .map(|o| {
                    o.iter()
                        .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned())))
                        .collect()
                })
                .unwrap_or_default();
            DriveFile {
                id,
                name,
                mime_type: mime,
                parents,
                drive_id,
                owner: user.to_owned(),
                content: Content::stored(media.unwrap_or_default()),
                created: now,
                modified: metadata["modifiedTime"]
                    .as_str()
                    .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                    .map(|t| t.with_timezone(&Utc))
                    .unwrap_or(now),
                version: 1,
                trashed: false,
                deleted: false,
                app_properties,
            }
        }
    };
    let scope = match &id.drive_id {
        Some(drive) => DriveScope::Shared {
            drive_id: drive.clone(),
        },
        None => DriveScope::MyDrive {
            owner: id.owner.clone(),
        },
    };
    d.drive_log.push((seq, id.id.clone(), scope));
    let json = file_json(&id, &sim.base_url);
    d.files.insert(id.id.clone(), id);
    Ok(super::json_response(StatusCode::OK, json))
}

fn delete(ctx: &GCtx, id: &str) -> Result<Response, Response> {
    let supports = ctx.flag("supportsAllDrives");
    let user = ctx.subject.clone();
    with_domain(ctx, |d, seq| {
        let f = d
            .files
            .get(id)
            .filter(|f| !f.deleted && visible(d, &user, f))
            .ok_or_else(|| file_not_found(id))?;
        if f.drive_id.is_some() && !supports {
            return Err(file_not_found(id));
        }
        // Deleting a folder deletes what is inside it.
        let mut doomed = vec![id.to_owned()];
        let mut i = 0;
        while i < doomed.len() {
            let parent = doomed[i].clone();
            doomed.extend(
                d.files
                    .values()
                    .filter(|c| !c.deleted && c.parents.contains(&parent))
                    .map(|c| c.id.clone()),
            );
            i += 1;
        }
        for fid in doomed {
            if let Some(f) = d.files.get_mut(&fid) {
                f.deleted = true;
                let scope = match &f.drive_id {
                    Some(drive) => DriveScope::Shared {
                        drive_id: drive.clone(),
                    },
                    None => DriveScope::MyDrive {
                        owner: f.owner.clone(),
                    },
                };
                d.drive_log.push((seq, fid.clone(), scope));
            }
        }
        Ok(crate::ms::empty(StatusCode::NO_CONTENT))
    })
}

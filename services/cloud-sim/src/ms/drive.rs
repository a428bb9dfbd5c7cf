//! OneDrive for Business: root delta with file facets and QuickXorHash,
//! folders and deletions, download by 302 to a pre-authenticated URL,
//! simple upload (PUT content), upload sessions, create, rename, delete.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};

use super::delta::{self, LinkStyle};
use super::users::select;
use super::Ctx;
use crate::content::Content;
use crate::state::{lock, UploadSession, UploadTarget};
use crate::world::{Drive, DriveItem, M365User, World};

const ITEM_TYPE: &str = "#microsoft.graph.driveItem";
/// Simple uploads are limited to 250 MB.
const SIMPLE_UPLOAD_LIMIT: usize = 250 * 1024 * 1024;

/// A drive addressed by its owner or by its id.
#[derive(Clone, Debug)]
pub enum DriveRef {
    User(String),
    Drive(String),
}

fn owner<'w>(
    ctx: &Ctx,
    world: &'w mut World,
    drive: &DriveRef,
) -> Result<&'w mut M365User, Response> {
    let tenant = world
        .tenant_mut(&ctx.tenant_id)
        .ok_or_else(|| ctx.not_found("tenant"))?;
    let key = match drive {
        DriveRef::User(u) => tenant.user_key(u),
        DriveRef::Drive(d) => tenant
            .users
            .values()
            .find(|u| &u.drive.id == d)
            .map(|u| u.id.clone()),
    };
    let key = key.ok_or_else(|| {
        ctx.error(
            StatusCode::NOT_FOUND,
            "itemNotFound",
            "The resource could not be found.",
        )
    })?;
    Ok(tenant.users.get_mut(&key).expect("found above"))
}

fn stamp(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

pub fn mime_type(name: &str) -> &'static str {
    match name
        .rsplit('.')
        .next()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("pdf") => "application/pdf",
        Some("txt") => "text/plain",
        Some("csv") => "text/csv",
        Some("docx") => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        Some("xlsx") => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        Some("pptx") => "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("zip") => "application/zip",
        _ => "application/octet-stream",
    }
}

fn guid(id: &str) -> String {
    let digest = <sha2::Sha256 as sha2::Digest>::digest(id.as_bytes());
    let h = hex::encode_upper(&digest[..16]);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// The item's path below the root, as `/drive/root:/a/b`.
fn parent_path(drive: &Drive, item: &DriveItem) -> Option<String> {
    let mut names = Vec::new();
    let mut cursor = drive.items.get(&item.parent_id)?;
    while !cursor.parent_id.is_empty() {
        names.push(cursor.name.clone());
        cursor = drive.items.get(&cursor.parent_id)?;
    }
    names.reverse();
    Some(format!(
        "/drive/root:{}{}",
        if names.is_empty() { "" } else { "/" },
        names.join("/")
    ))
}

/// A driveItem as Graph returns it; `with_path` for GETs (delta omits it).
pub fn item_json(ctx: &Ctx, drive: &Drive, item: &DriveItem, with_path: bool) -> Value {
    if item.deleted {
        return json!({
            "@odata.type": ITEM_TYPE,
            "id": item.id,
            "parentReference": { "driveId": drive.id, "driveType": "business", "id": item.parent_id },
            "deleted": { "state": "deleted" },
        });
    }
    let g = guid(&item.id);
    let mut v = json!({
        "@odata.type": ITEM_TYPE,
        "id": item.id,
        "name": item.name,
        "eTag": format!("\"{{{g}}},{}\"", item.etag_version),
        "cTag": format!("\"c:{{{g}}},{}\"", item.ctag_version),
        "createdDateTime": stamp(&item.created),
        "lastModifiedDateTime": stamp(&item.modified),
        "fileSystemInfo": { "createdDateTime": stamp(&item.created), "lastModifiedDateTime": stamp(&item.modified) },
    });
    if item.parent_id.is_empty() {
        v["root"] = json!({});
        v["name"] = Value::from("root");
        v["parentReference"] = json!({ "driveId": drive.id, "driveType": "business" });
    } else {
        let mut parent =
            json!({ "driveId": drive.id, "driveType": "business", "id": item.parent_id });
        if with_path {
            if let Some(p) = parent_path(drive, item) {
                parent["path"] = Value::from(p);
            }
        }
        v["parentReference"] = parent;
    }
    if item.folder {
        let children = drive
            .items
            .values()
            .filter(|c| c.parent_id == item.id && !c.deleted)
            .count();
        v["folder"] = json!({ "childCount": children });
        v["size"] = Value::from(
            drive
                .items
                .values()
                .filter(|c| !c.deleted && !c.folder && is_below(drive, c, &item.id))
                .map(|c| c.content.len())
                .sum::<u64>(),
        );
    } else {
        let hashes = item.content.hashes();
        v["size"] = Value::from(item.content.len());
        v["file"] = json!({ "mimeType": mime_type(&item.name), "hashes": { "quickXorHash": hashes.quick_xor } });
        v["@microsoft.graph.downloadUrl"] = Value::from(ctx.sim.add_download(
            item.content.clone(),
            format!("\"{{{g}}},{}\"", item.etag_version),
        ));
    }
    v
}

fn is_below(drive: &Drive, item: &DriveItem, ancestor: &str) -> bool {
    let mut parent = item.parent_id.as_str();
    while !parent.is_empty() {
        if parent == ancestor {
            return true;
        }
        parent = drive.items.get(parent).map_or("", |p| p.parent_id.as_str());
    }
    false
}

fn find_child<'d>(drive: &'d Drive, parent: &str, name: &str) -> Option<&'d DriveItem> {
    drive
        .items
        .values()
        .find(|i| !i.deleted && i.parent_id == parent && i.name.eq_ignore_ascii_case(name))
}

/// Resolve `parent` + `a/b/c` to an item id, if every step exists.
fn resolve_path(drive: &Drive, parent: &str, path: &str) -> Option<String> {
    let mut current = parent.to_owned();
    for part in path.split('/').filter(|p| !p.is_empty()) {
        current = find_child(drive, &current, part)?.id.clone();
    }
    Some(current)
}

fn not_found(ctx: &Ctx) -> Response {
    ctx.error(
        StatusCode::NOT_FOUND,
        "itemNotFound",
        "The resource could not be found.",
    )
}

pub fn route(ctx: &Ctx, drive: DriveRef, rest: &[&str], rest_at: usize) -> Response {
    use axum::http::Method as M;
    let raw = |i: usize| ctx.path.raw(rest_at + i).to_owned();
    match (&ctx.method, rest) {
        (&M::GET, []) => get_drive(ctx, &drive),
        (&M::GET, ["root", "delta"] | ["items", "root", "delta"]) => delta(ctx, &drive),
        (&M::GET, ["root"]) => get_item(ctx, &drive, Target::Root),
        (&M::GET, ["root", "children"]) => children(ctx, &drive, Target::Root),
        (&M::POST, ["root", "children"]) => create_child(ctx, &drive, Target::Root),
        (&M::GET, ["root", p]) if p.starts_with(':') => {
            get_item(ctx, &drive, Target::Path("root".into(), raw(1)))
        }
        (&M::GET, ["root", p, "children"]) if p.starts_with(':') => {
            children(ctx, &drive, Target::Path("root".into(), raw(1)))
        }
        (&M::GET, ["root", p, "content"]) if p.starts_with(':') => {
            download(ctx, &drive, Target::Path("root".into(), raw(1)))
        }
        (&M::PUT, ["root", p, "content"]) if p.starts_with(':') => {
            upload(ctx, &drive, "root", &raw(1))
        }
        (&M::POST, ["root", p, "createuploadsession"]) if p.starts_with(':') => {
            create_session(ctx, &drive, "root", &raw(1))
        }
        (&M::GET, ["items", _]) => get_item(ctx, &drive, Target::Id(raw(1))),
        (&M::GET, ["items", _, "children"]) => children(ctx, &drive, Target::Id(raw(1))),
        (&M::POST, ["items", _, "children"]) => create_child(ctx, &drive, Target::Id(raw(1))),
        (&M::GET, ["items", _, "content"]) => download(ctx, &drive, Target::Id(raw(1))),
        (&M::PUT, ["items", _, "content"]) => replace_content(ctx, &drive, &raw(1)),
        (&M::GET, ["items", _, p]) if p.starts_with(':') => {
            get_item(ctx, &drive, Target::Path(raw(1), raw(2)))
        }
        (&M::GET, ["items", _, p, "content"]) if p.starts_with(':') => {
            download(ctx, &drive, Target::Path(raw(1), raw(2)))
        }
        (&M::PUT, ["items", _, p, "content"]) if p.starts_with(':') => {
            upload(ctx, &drive, &raw(1), &raw(2))
        }
        (&M::POST, ["items", _, p, "createuploadsession"]) if p.starts_with(':') => {
            create_session(ctx, &drive, &raw(1), &raw(2))
        }
        (&M::PATCH, ["items", _]) => update_item(ctx, &drive, &raw(1)),
        (&M::DELETE, ["items", _]) => delete_item(ctx, &drive, &raw(1)),
        _ => ctx.error(StatusCode::BAD_REQUEST, "invalidRequest", "Invalid request"),
    }
}

/// An item by id, by path below an item (`root` for the root), or the root.
#[derive(Clone, Debug)]
enum Target {
    Root,
    Id(String),
    Path(String, String),
}

fn resolve(drive: &Drive, target: &Target) -> Option<String> {
    let live = |id: &str| {
        drive
            .items
            .get(id)
            .filter(|i| !i.deleted)
            .map(|i| i.id.clone())
    };
    match target {
        Target::Root => Some(drive.root_id.clone()),
        Target::Id(id) if id.eq_ignore_ascii_case("root") => Some(drive.root_id.clone()),
        Target::Id(id) => live(id),
        Target::Path(base, path) => {
            let base = if base.eq_ignore_ascii_case("root") {
                drive.root_id.clone()
            } else {
                live(base)?
            };
            resolve_path(drive, &base, path.trim_start_matches(':'))
        }
    }
}

fn get_drive(ctx: &Ctx, drive: &DriveRef) -> Response {
    let mut world = ctx.sim.world();
    let u = match owner(ctx, &mut world, drive) {
        Ok(u) => u,
        Err(r) => return r,
    };
    let used: u64 = u
        .drive
        .items
        .values()
        .filter(|i| !i.deleted && !i.folder)
        .map(|i| i.content.len())
        .sum();
    ctx.ok(json!({
        "id": u.drive.id,
        "driveType": "business",
        "name": "OneDrive",
        "owner": { "user": { "id": u.id, "displayName": u.display_name } },
        "quota": { "total": 1_099_511_627_776u64, "used": used, "remaining": 1_099_511_627_776u64 - used, "state": "normal" },
    }))
}

fn get_item(ctx: &Ctx, drive: &DriveRef, target: Target) -> Response {
    let mut world = ctx.sim.world();
    let u = match owner(ctx, &mut world, drive) {
        Ok(u) => u,
        Err(r) => return r,
    };
    match resolve(&u.drive, &target) {
        Some(id) => ctx.ok(select(
            item_json(ctx, &u.drive, &u.drive.items[&id], true),
            ctx.param("$select"),
        )),
        None => not_found(ctx),
    }
}

fn children(ctx: &Ctx, drive: &DriveRef, target: Target) -> Response {
    let mut world = ctx.sim.world();
    let u = match owner(ctx, &mut world, drive) {
        Ok(u) => u,
        Err(r) => return r,
    };
    let Some(id) = resolve(&u.drive, &target) else {
        return not_found(ctx);
    };
    let items: Vec<Value> = u
        .drive
        .items
        .values()
        .filter(|i| i.parent_id == id && !i.deleted)
        .map(|i| select(item_json(ctx, &u.drive, i, true), ctx.param("$select")))
        .collect();
    ctx.ok(json!({ "@odata.context": format!("{}/$metadata#Collection(driveItem)", ctx.graph_base), "value": items }))
}

/// `root/delta`: the whole drive, then changes; `token=latest` starts now.
fn delta(ctx: &Ctx, drive: &DriveRef) -> Response {
    let drive_id = {
        let mut world = ctx.sim.world();
        match owner(ctx, &mut world, drive) {
            Ok(u) => u.drive.id.clone(),
            Err(r) => return r,
        }
    };
    let round = match delta::start(ctx, &format!("drive:{drive_id}"), 200, LinkStyle::Drive) {
        Ok(r) => r,
        Err(r) => return r,
    };
    let mut world = ctx.sim.world();
    let u = match owner(ctx, &mut world, drive) {
        Ok(u) => u,
        Err(r) => return r,
    };
    let d = &u.drive;
    let items: Vec<delta::Keyed> = if round.is_initial() {
        // Parents before children, as OneDrive lists them: the key orders
        // by depth, then id.
        d.items
            .values()
            .filter(|i| !i.deleted)
            .map(|i| {
                let key = format!("{:04}/{}", depth(d, i), i.id);
                (key, item_json(ctx, d, i, false))
            })
            .collect()
    } else {
        d.log
            .changes(round.cursor.since, round.cursor.upto)
            .into_iter()
            .filter_map(|(_, id, _)| {
                let item = d.items.get(&id)?;
                Some((id, item_json(ctx, d, item, false)))
            })
            .collect()
    };
    drop(world);
    let link = format!("drives/{drive_id}/root/delta");
    delta::respond(
        ctx,
        round,
        items,
        &link,
        LinkStyle::Drive,
        "Collection(driveItem)",
    )
}

fn depth(drive: &Drive, item: &DriveItem) -> usize {
    let mut n = 0;
    let mut parent = item.parent_id.as_str();
    while let Some(p) = drive.items.get(parent) {
        n += 1;
        parent = p.parent_id.as_str();
    }
    n
}

fn download(ctx: &Ctx, drive: &DriveRef, target: Target) -> Response {
    let mut world = ctx.sim.world();
    let u = match owner(ctx, &mut world, drive) {
        Ok(u) => u,
        Err(r) => return r,
    };
    let Some(id) = resolve(&u.drive, &target) else {
        return not_found(ctx);
    };
    let item = &u.drive.items[&id];
    if item.folder {
        return ctx.error(
            StatusCode::BAD_REQUEST,
            "invalidRequest",
            "Cannot download a folder.",
        );
    }
    let g = guid(&item.id);
    let etag = format!("\"{{{g}}},{}\"", item.etag_version);
    let ctag = format!("\"c:{{{g}}},{}\"", item.ctag_version);
    if let Some(inm) = ctx
        .headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
    {
        if inm == etag || inm == ctag {
            return super::empty(StatusCode::NOT_MODIFIED);
        }
    }
    let url = ctx.sim.add_download(item.content.clone(), etag);
    let mut r = super::empty(StatusCode::FOUND);
    if let Ok(v) = HeaderValue::from_str(&url) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

fn conflict_behavior(ctx: &Ctx, body: Option<&Value>, default: &str) -> Result<String, Response> {
    let from_query = ctx
        .param("@microsoft.graph.conflictBehavior")
        .map(str::to_owned);
    let from_body = body
        .and_then(|b| {
            b.get("@microsoft.graph.conflictBehavior").or_else(|| {
                b.get("item")
                    .and_then(|i| i.get("@microsoft.graph.conflictBehavior"))
            })
        })
        .and_then(Value::as_str)
        .map(str::to_owned);
    let behavior = from_query
        .or(from_body)
        .unwrap_or_else(|| default.to_owned());
    match behavior.as_str() {
        "fail" | "replace" | "rename" => Ok(behavior),
        other => Err(ctx.error(
            StatusCode::BAD_REQUEST,
            "invalidRequest",
            &format!("Invalid conflict behavior '{other}'."),
        )),
    }
}

/// `name 1.ext`, `name 2.ext`, ... : the first free name.
fn free_name(drive: &Drive, parent: &str, name: &str) -> String {
    let (stem, ext) = match name.rsplit_once('.') {
        Some((s, e)) if !s.is_empty() => (s.to_owned(), format!(".{e}")),
        _ => (name.to_owned(), String::new()),
    };
    (1..)
        .map(|n| format!("{stem} {n}{ext}"))
        .find(|candidate| find_child(drive, parent, candidate).is_none())
        .expect("an unbounded range finds a free name")
}

pub fn new_item_id() -> String {
    format!(
        "01SIM{}",
        uuid::Uuid::new_v4().simple().to_string().to_uppercase()
    )
}

/// Write `bytes` as `name` under `parent` per the conflict `behavior`.
/// Returns the item id, or Graph's conflict error.
pub fn write_file(
    world: &mut World,
    tenant_id: &str,
    user_id: &str,
    parent: &str,
    name: &str,
    behavior: &str,
    content: Content,
) -> Result<(String, bool), (StatusCode, &'static str, String)> {
    let seq = world.next_seq();
    let u = world
        .tenant_mut(tenant_id)
        .and_then(|t| t.users.get_mut(user_id))
        .ok_or((
            StatusCode::NOT_FOUND,
            "itemNotFound",
            "The resource could not be found.".to_owned(),
        ))?;
    let drive = &mut u.drive;
    let parent_id = if parent.eq_ignore_ascii_case("root") {
        drive.root_id.clone()
    } else {
        parent.to_owned()
    };
    if !drive
        .items
        .get(&parent_id)
        .is_some_and(|p| p.folder && !p.deleted)
    {
        return Err((
            StatusCode::NOT_FOUND,
            "itemNotFound",
            "The parent folder does not exist.".into(),
        ));
    }
    // Missing intermediate folders of a path are created, as OneDrive does.
    let (dirs, file_name) = match name.rsplit_once('/') {
        Some((d, f)) => (d.to_owned(), f.to_owned()),
        None => (String::new(), name.to_owned()),
    };
    let mut parent_id = parent_id;
    for dir in dirs.split('/').filter(|d| !d.is_empty()) {
        parent_id = match find_child(drive, &parent_id, dir) {
            Some(existing) => existing.id.clone(),
            None => {
                let id = new_item_id();
                let now = Utc::now();
                drive.items.insert(
                    id.clone(),
                    DriveItem {
                        id: id.clone(),
                        name: dir.to_owned(),
                        parent_id: parent_id.clone(),
                        folder: true,
                        content: Content::stored(Vec::new()),
                        created: now,
                        modified: now,
                        etag_version: 1,
                        ctag_version: 1,
                        deleted: false,
                    },
                );
                drive.log.upsert(seq, &id);
                id
            }
        };
    }
    let now = Utc::now();
    let existing = find_child(drive, &parent_id, &file_name).map(|i| i.id.clone());
    let (id, final_name, created) = match (existing, behavior) {
        (Some(_), "fail") => {
            return Err((
                StatusCode::CONFLICT,
                "nameAlreadyExists",
                format!("The specified item name already exists. Name: {file_name}"),
            ))
        }
        (Some(id), "replace") => {
            let item = drive.items.get_mut(&id).expect("found above");
            item.content = content;
            item.modified = now;
            item.etag_version += 1;
            item.ctag_version += 1;
            drive.log.upsert(seq, &id);
            return Ok((id, false));
        }
        (Some(_), _) => (
            new_item_id(),
            free_name(drive, &parent_id, &file_name),
            true,
        ),
        (None, _) => (new_item_id(), file_name, true),
    };
    drive.items.insert(
        id.clone(),
        DriveItem {
            id: id.clone(),
            name: final_name,
            parent_id,
            folder: false,
            content,
            created: now,
            modified: now,
            etag_version: 1,
            ctag_version: 1,
            deleted: false,
        },
    );
    drive.log.upsert(seq, &id);
    Ok((id, created))
}

fn item_response(ctx: &Ctx, drive: &DriveRef, id: &str, status: StatusCode) -> Response {
    let mut world = ctx.sim.world();
    let u = match owner(ctx, &mut world, drive) {
        Ok(u) => u,
        Err(r) => return r,
    };
    match u.drive.items.get(id) {
        Some(item) => ctx.json(status, item_json(ctx, &u.drive, item, true)),
        None => not_found(ctx),
    }
}

fn user_id(ctx: &Ctx, drive: &DriveRef) -> Result<String, Response> {
    let mut world = ctx.sim.world();
    owner(ctx, &mut world, drive).map(|u| u.id.clone())
}

fn upload(ctx: &Ctx, drive: &DriveRef, parent: &str, path: &str) -> Response {
    if ctx.body.len() > SIMPLE_UPLOAD_LIMIT {
        return ctx.error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "requestTooLarge",
            "Simple uploads are limited to 250 MB; use an upload session.",
        );
    }
    let behavior = match conflict_behavior(ctx, None, "replace") {
        Ok(b) => b,
        Err(r) => return r,
    };
    let uid = match user_id(ctx, drive) {
        Ok(u) => u,
        Err(r) => return r,
    };
    let written = {
        let mut world = ctx.sim.world();
        write_file(
            &mut world,
            &ctx.tenant_id,
            &uid,
            parent,
            path.trim_start_matches(':'),
            &behavior,
            Content::stored(ctx.body.clone()),
        )
    };
    match written {
        Ok((id, created)) => item_response(
            ctx,
            drive,
            &id,
            if created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            },
        ),
        Err((status, code, msg)) => ctx.error(status, code, &msg),
    }
}

fn replace_content(ctx: &Ctx, drive: &DriveRef, id: &str) -> Response {
    {
        let mut world = ctx.sim.world();
        let seq = world.next_seq();
        let u = match owner(ctx, &mut world, drive) {
            Ok(u) => u,
            Err(r) => return r,
        };
        let Some(item) = u
            .drive
            .items
            .get_mut(id)
            .filter(|i| !i.deleted && !i.folder)
        else {
            return not_found(ctx);
        };
        item.content = Content::stored(ctx.body.clone());
        item.modified = Utc::now();
        item.etag_version += 1;
        item.ctag_version += 1;
        u.drive.log.upsert(seq, id);
    }
    item_response(ctx, drive, id, StatusCode::OK)
}

fn create_child(ctx: &Ctx, drive: &DriveRef, target: Target) -> Response {
    let body = match ctx.json_body() {
        Ok(b) => b,
        Err(r) => return r,
    };
    let Some(name) = body
        .get("name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty() && !n.contains('/'))
    else {
        return ctx.error(
            StatusCode::BAD_REQUEST,
            "invalidRequest",
            "Invalid request: name is missing or invalid.",
        );
    };
    let behavior = match conflict_behavior(ctx, Some(&body), "fail") {
        Ok(b) => b,
        Err(r) => return r,
    };
    let is_folder = body.get("folder").is_some();
    let id = {
        let mut world = ctx.sim.world();
        let seq = world.next_seq();
        let u = match owner(ctx, &mut world, drive) {
            Ok(u) => u,
            Err(r) => return r,
        };
        let Some(parent) = resolve(&u.drive, &target) else {
            return not_found(ctx);
        };
        if !is_folder {
            drop(world);
            let uid = match user_id(ctx, drive) {
                Ok(u) => u,
                Err(r) => return r,
            };
            let mut world = ctx.sim.world();
            return match write_file(
                &mut world,
                &ctx.tenant_id,
                &uid,
                &parent,
                name,
                &behavior,
                Content::stored(Vec::new()),
            ) {
                Ok((id, _)) => {
                    drop(world);
                    item_response(ctx, drive, &id, StatusCode::CREATED)
                }
                Err((s, c, m)) => ctx.error(s, c, &m),
            };
        }
        let name = match (find_child(&u.drive, &parent, name), behavior.as_str()) {
            (Some(_), "fail") => {
                return ctx.error(
                    StatusCode::CONFLICT,
                    "nameAlreadyExists",
                    &format!("The specified item name already exists. Name: {name}"),
                )
            }
            (Some(existing), "replace") => {
                let id = existing.id.clone();
                drop(world);
                return item_response(ctx, drive, &id, StatusCode::OK);
            }
            (Some(_), _) => free_name(&u.drive, &parent, name),
            (None, _) => name.to_owned(),
        };
        let id = new_item_id();
        let now = Utc::now();
        u.drive.items.insert(
            id.clone(),
            DriveItem {
                id: id.clone(),
                name,
                parent_id: parent,
                folder: true,
                content: Content::stored(Vec::new()),
                created: now,
                modified: now,
                etag_version: 1,
                ctag_version: 1,
                deleted: false,
            },
        );
        u.drive.log.upsert(seq, &id);
        id
    };
    item_response(ctx, drive, &id, StatusCode::CREATED)
}

fn update_item(ctx: &Ctx, drive: &DriveRef, id: &str) -> Response {
    let body = match ctx.json_body() {
        Ok(b) => b,
        Err(r) => return r,
    };
    {
        let mut world = ctx.sim.world();
        let seq = world.next_seq();
        let u = match owner(ctx, &mut world, drive) {
            Ok(u) => u,
            Err(r) => return r,
        };
        if u.drive.items.get(id).is_none_or(|i| i.deleted) {
            return not_found(ctx);
        }
        let new_parent = body
            .get("parentReference")
            .and_then(|p| p.get("id"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        if let Some(p) = &new_parent {
            if !u.drive.items.get(p).is_some_and(|i| i.folder && !i.deleted) {
                return ctx.error(
                    StatusCode::BAD_REQUEST,
                    "invalidRequest",
                    "The destination folder does not exist.",
                );
            }
        }
        let item = u.drive.items.get_mut(id).expect("checked above");
        if let Some(name) = body.get("name").and_then(Value::as_str) {
            item.name = name.to_owned();
        }
        if let Some(p) = new_parent {
            item.parent_id = p;
        }
        item.modified = Utc::now();
        item.etag_version += 1;
        u.drive.log.upsert(seq, id);
    }
    item_response(ctx, drive, id, StatusCode::OK)
}

fn delete_item(ctx: &Ctx, drive: &DriveRef, id: &str) -> Response {
    let mut world = ctx.sim.world();
    let seq = world.next_seq();
    let u = match owner(ctx, &mut world, drive) {
        Ok(u) => u,
        Err(r) => return r,
    };
    if !u
        .drive
        .items
        .get(id)
        .is_some_and(|i| !i.deleted && !i.parent_id.is_empty())
    {
        return not_found(ctx);
    }
    let doomed: Vec<String> = u
        .drive
        .items
        .values()
        .filter(|i| i.id == id || is_below(&u.drive, i, id))
        .map(|i| i.id.clone())
        .collect();
    for d in doomed {
        if let Some(item) = u.drive.items.get_mut(&d) {
            item.deleted = true;
            u.drive.log.remove(seq, &d);
        }
    }
    super::empty(StatusCode::NO_CONTENT)
}

fn create_session(ctx: &Ctx, drive: &DriveRef, parent: &str, path: &str) -> Response {
    let body: Value = if ctx.body.is_empty() {
        json!({})
    } else {
        match ctx.json_body() {
            Ok(b) => b,
            Err(r) => return r,
        }
    };
    let behavior = match conflict_behavior(ctx, Some(&body), "fail") {
        Ok(b) => b,
        Err(r) => return r,
    };
    let uid = match user_id(ctx, drive) {
        Ok(u) => u,
        Err(r) => return r,
    };
    let parent_id = {
        let mut world = ctx.sim.world();
        let u = match owner(ctx, &mut world, drive) {
            Ok(u) => u,
            Err(r) => return r,
        };
        let target = if parent.eq_ignore_ascii_case("root") {
            Target::Root
        } else {
            Target::Id(parent.to_owned())
        };
        match resolve(&u.drive, &target) {
            Some(p) => p,
            None => return not_found(ctx),
        }
    };
    let id = uuid::Uuid::new_v4().simple().to_string();
    let expires = Utc::now() + Duration::hours(1);
    lock(&ctx.sim.uploads).insert(
        id.clone(),
        UploadSession {
            target: UploadTarget::Graph {
                tenant_id: ctx.tenant_id.clone(),
                user_id: uid,
                parent_id,
                name: path.trim_start_matches(':').to_owned(),
                conflict: behavior,
            },
            total: None,
            received: Vec::new(),
            expires_at: expires,
        },
    );
    ctx.ok(json!({
        "@odata.context": format!("{}/$metadata#microsoft.graph.uploadSession", ctx.graph_base),
        "uploadUrl": format!("{}/_sim/upload/graph/{id}", ctx.sim.base_url),
        "expirationDateTime": expires.to_rfc3339(),
        "nextExpectedRanges": ["0-"],
    }))
}

/// The JSON of an item after an upload session committed (used by the
/// upload endpoint, which is outside `/v1.0`).
pub fn committed_item(
    sim: &std::sync::Arc<crate::state::Sim>,
    tenant_id: &str,
    user_id: &str,
    id: &str,
) -> Option<Value> {
    let world = sim.world();
    let u = world.tenant(tenant_id)?.users.get(user_id)?;
    let item = u.drive.items.get(id)?;
    // A minimal context for link building.
    let ctx = Ctx {
        sim: sim.clone(),
        tenant_id: tenant_id.to_owned(),
        method: axum::http::Method::GET,
        path: super::GraphPath::default(),
        query: vec![],
        headers: Default::default(),
        body: Default::default(),
        request_id: uuid::Uuid::new_v4().to_string(),
        graph_base: format!("{}/v1.0", sim.base_url),
    };
    Some(item_json(&ctx, &u.drive, item, true))
}

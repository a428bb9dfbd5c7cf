//! Calendar: `calendarView/delta` over a window (series expanded into
//! occurrences and exceptions), `calendarView`, events, and the writes
//! restore needs. Weekly recurrences with a number of occurrences are
//! modelled; an occurrence can be changed (an exception) or cancelled.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Datelike, Duration, NaiveDateTime, Utc};
use serde_json::{json, Value};

use super::delta::{self, LinkStyle};
use super::users::{page_size, select};
use super::Ctx;
use crate::cursor::Cursor;
use crate::world::{Event, EventException, M365User, World};

const EVENT_TYPE: &str = "#microsoft.graph.event";

fn user<'w>(ctx: &Ctx, world: &'w mut World, user: &str) -> Result<&'w mut M365User, Response> {
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
    let u = tenant.users.get_mut(&key).expect("found above");
    if !u.has_mailbox {
        return Err(ctx.error(
            StatusCode::NOT_FOUND,
            "MailboxNotEnabledForRESTAPI",
            "The mailbox is either inactive, soft-deleted, or is hosted on-premise.",
        ));
    }
    Ok(u)
}

fn graph_time(t: &DateTime<Utc>) -> Value {
    // Graph writes seven fractional digits.
    json!({ "dateTime": format!("{}.0000000", t.format("%Y-%m-%dT%H:%M:%S")), "timeZone": "UTC" })
}

fn stamp(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// The id of an occurrence of a series.
fn occurrence_id(master: &str, start: &DateTime<Utc>) -> String {
    format!("{master}_{}", start.format("%Y%m%d%H%M"))
}

fn split_occurrence(id: &str) -> Option<(&str, DateTime<Utc>)> {
    let (master, when) = id.rsplit_once('_')?;
    let t = NaiveDateTime::parse_from_str(when, "%Y%m%d%H%M").ok()?;
    Some((master, t.and_utc()))
}

fn base_json(e: &Event, id: &str, kind: &str, subject: &str, start: DateTime<Utc>) -> Value {
    let duration = e.end - e.start;
    let mut v = json!({
        "@odata.type": EVENT_TYPE,
        "@odata.etag": format!("W/\"{}\"", e.change_key),
        "id": id,
        "createdDateTime": stamp(&e.created),
        "lastModifiedDateTime": stamp(&e.modified),
        "changeKey": e.change_key,
        "iCalUId": e.ical_uid,
        "subject": subject,
        "bodyPreview": e.body_html.chars().take(255).collect::<String>(),
        "body": { "contentType": "html", "content": e.body_html },
        "start": graph_time(&start),
        "end": graph_time(&(start + duration)),
        "isAllDay": false,
        "isCancelled": false,
        "showAs": "busy",
        "type": kind,
        "location": { "displayName": e.location },
        "organizer": { "emailAddress": { "name": e.organizer.0, "address": e.organizer.1 } },
        "attendees": e.attendees.iter().map(|(n, a)| json!({
            "type": "required",
            "status": { "response": "none", "time": "0001-01-01T00:00:00Z" },
            "emailAddress": { "name": n, "address": a },
        })).collect::<Vec<_>>(),
    });
    // Returned only when a client set it, as Graph does.
    if let Some(tid) = &e.transaction_id {
        v["transactionId"] = Value::from(tid.as_str());
    }
    v
}

fn weekday(d: chrono::Weekday) -> &'static str {
    [
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    ][d.num_days_from_monday() as usize]
}

/// The event itself: a single instance or a series master.
pub fn event_json(e: &Event) -> Value {
    match e.weekly_occurrences {
        None => base_json(e, &e.id, "singleInstance", &e.subject, e.start),
        Some(n) => {
            let mut v = base_json(e, &e.id, "seriesMaster", &e.subject, e.start);
            v["recurrence"] = json!({
                "pattern": { "type": "weekly", "interval": 1, "daysOfWeek": [weekday(e.start.weekday())], "firstDayOfWeek": "sunday" },
                "range": { "type": "numbered", "startDate": e.start.format("%Y-%m-%d").to_string(), "numberOfOccurrences": n, "recurrenceTimeZone": "UTC" },
            });
            v
        }
    }
}

/// The instances of `e` that overlap `[from, to)`: itself, or its
/// occurrences and exceptions (cancelled occurrences are left out).
fn instances(e: &Event, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<Value> {
    let duration = e.end - e.start;
    match e.weekly_occurrences {
        None => {
            if e.start < to && e.end > from {
                vec![event_json(e)]
            } else {
                vec![]
            }
        }
        Some(n) => (0..n)
            .map(|i| e.start + Duration::weeks(i64::from(i)))
            .filter(|s| *s < to && *s + duration > from)
            .filter_map(|s| {
                let id = occurrence_id(&e.id, &s);
                match e.exceptions.get(&s) {
                    Some(x) if x.cancelled => None,
                    Some(x) => {
                        let mut v = base_json(
                            e,
                            &id,
                            "exception",
                            x.subject.as_deref().unwrap_or(&e.subject),
                            s,
                        );
                        v["seriesMasterId"] = Value::from(e.id.clone());
                        v["originalStart"] = Value::from(stamp(&s));
                        Some(v)
                    }
                    None => {
                        let mut v = base_json(e, &id, "occurrence", &e.subject, s);
                        v["seriesMasterId"] = Value::from(e.id.clone());
                        Some(v)
                    }
                }
            })
            .collect(),
    }
}

/// Ids of every instance a delta client may have seen of `e` (for removal).
fn instance_ids(e: &Event) -> Vec<String> {
    match e.weekly_occurrences {
        None => vec![e.id.clone()],
        Some(n) => (0..n)
            .map(|i| occurrence_id(&e.id, &(e.start + Duration::weeks(i64::from(i)))))
            .collect(),
    }
}

fn parse_window(ctx: &Ctx) -> Result<(DateTime<Utc>, DateTime<Utc>), Response> {
    let parse = |name: &str| -> Result<DateTime<Utc>, Response> {
        let raw = ctx.param(name).ok_or_else(|| {
            ctx.error(StatusCode::BAD_REQUEST, "ErrorInvalidParameter", &format!("This request requires a time window specified by the query string parameters StartDateTime and EndDateTime. ({name} missing)"))
        })?;
        parse_time(raw).ok_or_else(|| {
            ctx.error(
                StatusCode::BAD_REQUEST,
                "ErrorInvalidParameter",
                &format!("The value '{raw}' of parameter '{name}' is invalid."),
            )
        })
    };
    let from = parse("startDateTime")?;
    let to = parse("endDateTime")?;
    if to <= from {
        return Err(ctx.error(
            StatusCode::BAD_REQUEST,
            "ErrorInvalidParameter",
            "EndDateTime must be after StartDateTime.",
        ));
    }
    Ok((from, to))
}

fn parse_time(raw: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(raw)
        .map(|d| d.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            NaiveDateTime::parse_from_str(raw.trim_end_matches('Z'), "%Y-%m-%dT%H:%M:%S%.f")
                .ok()
                .map(|n| n.and_utc())
        })
}

/// `calendarView/delta`: the window is fixed by the first request and
/// carried in the tokens.
/// The simulator models one calendar per mailbox, the default one. Its id
/// is derived from the user's, so it is stable across resets.
fn calendar_json(u: &M365User) -> Value {
    json!({
        "id": format!("AAMkCal{}", u.id.replace('-', "")),
        "name": "Calendar",
        "color": "auto",
        "isDefaultCalendar": true,
        "canEdit": true,
        "canShare": true,
        "canViewPrivateItems": true,
        "changeKey": "sim",
        "owner": { "name": u.display_name, "address": u.upn },
    })
}

/// `GET /users/{u}/calendars`: the mailbox's calendars.
pub fn calendars(ctx: &Ctx, user_ref: &str) -> Response {
    let mut world = ctx.sim.world();
    match user(ctx, &mut world, user_ref) {
        Ok(u) => ctx.ok(json!({
            "@odata.context": format!("{}/$metadata#users('{user_ref}')/calendars", ctx.graph_base),
            "value": [calendar_json(u)],
        })),
        Err(r) => r,
    }
}

/// `GET /users/{u}/calendar` or `/users/{u}/calendars/{id}`; `None` for
/// the default calendar.
pub fn calendar(ctx: &Ctx, user_ref: &str, id: Option<&str>) -> Response {
    let mut world = ctx.sim.world();
    let u = match user(ctx, &mut world, user_ref) {
        Ok(u) => u,
        Err(r) => return r,
    };
    let cal = calendar_json(u);
    if id.is_some_and(|id| {
        !cal["id"]
            .as_str()
            .is_some_and(|c| c.eq_ignore_ascii_case(id))
    }) {
        return ctx.not_found("calendar");
    }
    ctx.ok(cal)
}

/// Whether `id` names the user's (only) calendar.
pub fn is_calendar(ctx: &Ctx, user_ref: &str, id: &str) -> bool {
    let mut world = ctx.sim.world();
    user(ctx, &mut world, user_ref).is_ok_and(|u| {
        calendar_json(u)["id"]
            .as_str()
            .is_some_and(|c| c.eq_ignore_ascii_case(id))
    })
}

pub fn delta(ctx: &Ctx, user_ref: &str) -> Response {
    let user_id = {
        let mut world = ctx.sim.world();
        match user(ctx, &mut world, user_ref) {
            Ok(u) => u.id.clone(),
            Err(r) => return r,
        }
    };
    let mut round = match delta::start(ctx, &format!("calendar:{user_id}"), 10, LinkStyle::Outlook)
    {
        Ok(r) => r,
        Err(r) => return r,
    };
    // The window is fixed by the first request and rides in the tokens.
    let window = match round.cursor.window.as_deref() {
        Some(w) => w
            .split_once('|')
            .and_then(|(a, b)| Some((parse_time(a)?, parse_time(b)?))),
        None => match parse_window(ctx) {
            Ok(w) => Some(w),
            Err(r) => return r,
        },
    };
    let Some((from, to)) = window else {
        return ctx.bad_request("The delta token is not valid.");
    };
    round.cursor.window = Some(format!("{}|{}", from.to_rfc3339(), to.to_rfc3339()));
    // $select is not supported on calendarView/delta.
    round.cursor.extra = None;
    let mut world = ctx.sim.world();
    let u = match user(ctx, &mut world, user_ref) {
        Ok(u) => u,
        Err(r) => return r,
    };
    let items: Vec<delta::Keyed> = if round.is_initial() {
        u.events
            .values()
            .flat_map(|e| instances(e, from, to))
            .map(|v| (v["id"].as_str().unwrap_or_default().to_owned(), v))
            .collect()
    } else {
        let mut out = Vec::new();
        for (_, id, removed) in u
            .calendar_log
            .changes(round.cursor.since, round.cursor.upto)
        {
            match u.events.get(&id) {
                Some(e) if !removed => {
                    let inside = instances(e, from, to);
                    let inside_ids: Vec<String> = inside
                        .iter()
                        .filter_map(|v| v["id"].as_str().map(str::to_owned))
                        .collect();
                    out.extend(inside);
                    // Instances outside the window (or cancelled) come as removed.
                    for gone in instance_ids(e)
                        .into_iter()
                        .filter(|i| !inside_ids.contains(i))
                    {
                        out.push(delta::removed(&gone, "deleted", EVENT_TYPE));
                    }
                }
                Some(e) => out.extend(
                    instance_ids(e)
                        .iter()
                        .map(|i| delta::removed(i, "deleted", EVENT_TYPE)),
                ),
                None => out.push(delta::removed(&id, "deleted", EVENT_TYPE)),
            }
        }
        out.into_iter().map(|v| (String::new(), v)).collect()
    };
    drop(world);
    let link = format!("users/{user_ref}/calendarView/delta()");
    delta::respond(
        ctx,
        round,
        items,
        &link,
        LinkStyle::Outlook,
        "Collection(event)",
    )
}

/// `calendarView`: the instances in a window, paged.
pub fn view(ctx: &Ctx, user_ref: &str) -> Response {
    let (from, to) = match parse_window(ctx) {
        Ok(w) => w,
        Err(r) => return r,
    };
    let mut world = ctx.sim.world();
    let u = match user(ctx, &mut world, user_ref) {
        Ok(u) => u,
        Err(r) => return r,
    };
    let items: Vec<Value> = u
        .events
        .values()
        .flat_map(|e| instances(e, from, to))
        .map(|v| select(v, ctx.param("$select")))
        .collect();
    ctx.ok(json!({ "@odata.context": format!("{}/$metadata#Collection(event)", ctx.graph_base), "value": items }))
}

pub fn list(ctx: &Ctx, user_ref: &str) -> Response {
    let (offset, size) = match ctx.param("$skiptoken") {
        Some(t) => match Cursor::decode(t) {
            Some(c) if c.collection == "events" => (c.offset as usize, c.page),
            _ => return ctx.bad_request("Invalid $skiptoken."),
        },
        None => match page_size(ctx, 10, 1000) {
            Ok(s) => (0, s),
            Err(r) => return r,
        },
    };
    let mut world = ctx.sim.world();
    let u = match user(ctx, &mut world, user_ref) {
        Ok(u) => u,
        Err(r) => return r,
    };
    let all: Vec<Value> = u.events.values().map(event_json).collect();
    let page: Vec<Value> = all
        .iter()
        .skip(offset)
        .take(size as usize)
        .map(|v| select(v.clone(), ctx.param("$select")))
        .collect();
    let mut body = json!({ "@odata.context": format!("{}/$metadata#users('{user_ref}')/events", ctx.graph_base), "value": page });
    if offset + (size as usize) < all.len() {
        let c = Cursor {
            collection: "events".into(),
            offset: (offset + size as usize) as u64,
            page: size,
            ..Cursor::default()
        };
        body["@odata.nextLink"] = Value::from(ctx.link(
            &format!("users/{user_ref}/events"),
            &[("$skiptoken", &c.encode())],
        ));
    }
    ctx.ok(body)
}

pub fn get(ctx: &Ctx, user_ref: &str, id: &str) -> Response {
    let mut world = ctx.sim.world();
    let u = match user(ctx, &mut world, user_ref) {
        Ok(u) => u,
        Err(r) => return r,
    };
    if let Some(e) = u.events.get(id) {
        return ctx.ok(select(event_json(e), ctx.param("$select")));
    }
    if let Some((master, start)) = split_occurrence(id) {
        if let Some(e) = u.events.get(master) {
            let hit = instances(e, start, start + Duration::seconds(1));
            if let Some(v) = hit.into_iter().find(|v| v["id"] == id) {
                return ctx.ok(select(v, ctx.param("$select")));
            }
        }
    }
    ctx.not_found("event")
}

fn new_change_key() -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(&uuid::Uuid::new_v4().as_bytes()[..12])
}

fn event_from_json(body: &Value, organizer: (String, String)) -> Result<Event, String> {
    let obj = body
        .as_object()
        .ok_or("The request body must be a JSON object.")?;
    let time = |key: &str| -> Result<DateTime<Utc>, String> {
        let raw = obj
            .get(key)
            .and_then(|t| t.get("dateTime"))
            .and_then(Value::as_str)
            .ok_or_else(|| format!("The property '{key}' is required."))?;
        parse_time(raw).ok_or_else(|| {
            format!("Cannot convert the literal '{raw}' to the expected type 'Edm.DateTimeOffset'.")
        })
    };
    let start = time("start")?;
    let end = time("end")?;
    if end < start {
        return Err("The end of the event is before its start.".into());
    }
    let weekly_occurrences = match obj.get("recurrence").filter(|r| !r.is_null()) {
        None => None,
        Some(r) => {
            if r["pattern"]["type"] != "weekly" || r["range"]["type"] != "numbered" {
                return Err(
                    "The simulator models weekly recurrences with a number of occurrences only."
                        .into(),
                );
            }
            Some(
                r["range"]["numberOfOccurrences"]
                    .as_u64()
                    .ok_or("numberOfOccurrences is required.")? as u32,
            )
        }
    };
    let now = Utc::now();
    let id = format!("AAMkAE{}=", uuid::Uuid::new_v4().simple());
    Ok(Event {
        id,
        ical_uid: obj
            .get("iCalUId")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| {
                format!(
                    "040000008200E00074C5B7101A82E008{}",
                    uuid::Uuid::new_v4().simple()
                )
            }),
        subject: obj
            .get("subject")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        body_html: obj
            .get("body")
            .and_then(|b| b.get("content"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        start,
        end,
        location: obj
            .get("location")
            .and_then(|l| l.get("displayName"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        organizer,
        attendees: obj
            .get("attendees")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .map(|x| {
                        let e = &x["emailAddress"];
                        (
                            e["name"].as_str().unwrap_or_default().to_owned(),
                            e["address"].as_str().unwrap_or_default().to_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default(),
        weekly_occurrences,
        exceptions: BTreeMap::new(),
        created: now,
        modified: now,
        change_key: new_change_key(),
        transaction_id: obj
            .get("transactionId")
            .and_then(Value::as_str)
            .map(str::to_owned),
    })
}

pub fn create(ctx: &Ctx, user_ref: &str) -> Response {
    let body = match ctx.json_body() {
        Ok(b) => b,
        Err(r) => return r,
    };
    let mut world = ctx.sim.world();
    let seq = world.next_seq();
    let u = match user(ctx, &mut world, user_ref) {
        Ok(u) => u,
        Err(r) => return r,
    };
    let event = match event_from_json(&body, (u.display_name.clone(), u.upn.clone())) {
        Ok(e) => e,
        Err(msg) => return ctx.error(StatusCode::BAD_REQUEST, "ErrorInvalidRequest", &msg),
    };
    // A retried create with the same transactionId makes no second event.
    if let Some(tid) = &event.transaction_id {
        if let Some(existing) = u
            .events
            .values()
            .find(|e| e.transaction_id.as_ref() == Some(tid))
        {
            return ctx.json(StatusCode::CREATED, event_json(existing));
        }
    }
    u.calendar_log.upsert(seq, &event.id);
    let json = event_json(&event);
    u.events.insert(event.id.clone(), event);
    ctx.json(StatusCode::CREATED, json)
}

pub fn update(ctx: &Ctx, user_ref: &str, id: &str) -> Response {
    let body = match ctx.json_body() {
        Ok(b) => b,
        Err(r) => return r,
    };
    let mut world = ctx.sim.world();
    let seq = world.next_seq();
    let u = match user(ctx, &mut world, user_ref) {
        Ok(u) => u,
        Err(r) => return r,
    };
    // An occurrence: record an exception on its series.
    if !u.events.contains_key(id) {
        if let Some((master, start)) = split_occurrence(id) {
            if let Some(e) = u.events.get_mut(master) {
                e.exceptions.insert(
                    start,
                    EventException {
                        subject: body
                            .get("subject")
                            .and_then(Value::as_str)
                            .map(str::to_owned),
                        cancelled: false,
                    },
                );
                e.modified = Utc::now();
                e.change_key = new_change_key();
                let master_id = e.id.clone();
                let v = instances(e, start, start + Duration::seconds(1))
                    .into_iter()
                    .find(|v| v["id"] == id);
                u.calendar_log.upsert(seq, &master_id);
                return match v {
                    Some(v) => ctx.ok(v),
                    None => ctx.not_found("event"),
                };
            }
        }
        return ctx.not_found("event");
    }
    let e = u.events.get_mut(id).expect("checked above");
    if let Some(s) = body.get("subject").and_then(Value::as_str) {
        e.subject = s.to_owned();
    }
    if let Some(c) = body
        .get("body")
        .and_then(|b| b.get("content"))
        .and_then(Value::as_str)
    {
        e.body_html = c.to_owned();
    }
    if let Some(l) = body
        .get("location")
        .and_then(|l| l.get("displayName"))
        .and_then(Value::as_str)
    {
        e.location = l.to_owned();
    }
    for (key, slot) in [("start", &mut e.start), ("end", &mut e.end)] {
        if let Some(raw) = body
            .get(key)
            .and_then(|t| t.get("dateTime"))
            .and_then(Value::as_str)
        {
            match parse_time(raw) {
                Some(t) => *slot = t,
                None => {
                    return ctx.error(
                        StatusCode::BAD_REQUEST,
                        "ErrorInvalidRequest",
                        &format!("Cannot convert the literal '{raw}'."),
                    )
                }
            }
        }
    }
    e.modified = Utc::now();
    e.change_key = new_change_key();
    let json = event_json(e);
    u.calendar_log.upsert(seq, id);
    ctx.ok(json)
}

pub fn delete(ctx: &Ctx, user_ref: &str, id: &str) -> Response {
    let mut world = ctx.sim.world();
    let seq = world.next_seq();
    let u = match user(ctx, &mut world, user_ref) {
        Ok(u) => u,
        Err(r) => return r,
    };
    if u.events.remove(id).is_some() {
        u.calendar_log.remove(seq, id);
        return super::empty(StatusCode::NO_CONTENT);
    }
    if let Some((master, start)) = split_occurrence(id) {
        if let Some(e) = u.events.get_mut(master) {
            e.exceptions.insert(
                start,
                EventException {
                    subject: None,
                    cancelled: true,
                },
            );
            e.modified = Utc::now();
            e.change_key = new_change_key();
            u.calendar_log.upsert(seq, master);
            return super::empty(StatusCode::NO_CONTENT);
        }
    }
    ctx.not_found("event")
}

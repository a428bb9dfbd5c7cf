//! Calendar v3: calendar lists and events: full sync with `pageToken`,
//! incremental sync with `syncToken` (410 `fullSyncRequired` once expired),
//! `showDeleted`, cancelled events and exceptions of recurring events;
//! insert, import (upsert on iCalUID), patch and delete.

use axum::http::{Method, StatusCode};
use axum::response::Response;
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{json, Value};

use super::{error, insufficient_scopes, param_error, stamp, GCtx};
use crate::cursor::Cursor;
use crate::world::{Calendar, GEvent, GoogleUser, World};

const READ: &[&str] = &[
    "https://www.googleapis.com/auth/calendar",
    "https://www.googleapis.com/auth/calendar.readonly",
    "https://www.googleapis.com/auth/calendar.events",
    "https://www.googleapis.com/auth/calendar.events.readonly",
];
const WRITE: &[&str] = &[
    "https://www.googleapis.com/auth/calendar",
    "https://www.googleapis.com/auth/calendar.events",
];

fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "notFound", "Not Found")
}

fn user<'w>(world: &'w mut World, domain: &str, email: &str) -> Option<&'w mut GoogleUser> {
    super::gmail::mailbox(world, domain, email)
}

fn calendar_key(u: &GoogleUser, id: &str) -> Option<String> {
    if id == "primary" {
        return u
            .calendars
            .values()
            .find(|c| c.primary)
            .map(|c| c.id.clone());
    }
    u.calendars.contains_key(id).then(|| id.to_owned())
}

fn time_json(t: &DateTime<Utc>, all_day: bool, tz: &str) -> Value {
    if all_day {
        json!({ "date": t.format("%Y-%m-%d").to_string() })
    } else {
        json!({ "dateTime": t.format("%Y-%m-%dT%H:%M:%SZ").to_string(), "timeZone": tz })
    }
}

pub fn event_json(c: &Calendar, e: &GEvent) -> Value {
    // A deleted event is only guaranteed its id (and, for an exception,
    // the fields tying it to its series).
    if e.status == "cancelled" && e.recurring_event_id.is_none() {
        return json!({ "kind": "calendar#event", "etag": format!("\"{}\"", e.updated.timestamp_micros()), "id": e.id, "status": "cancelled" });
    }
    let mut v = json!({
        "kind": "calendar#event",
        "etag": format!("\"{}\"", e.updated.timestamp_micros()),
        "id": e.id,
        "status": e.status,
        "htmlLink": format!("https://calendar.google.com/calendar/event?eid={}", e.id),
        "created": stamp(&e.created),
        "updated": stamp(&e.updated),
        "summary": e.summary,
        "description": e.description,
        "creator": { "email": e.organizer },
        "organizer": { "email": e.organizer, "self": true },
        "start": time_json(&e.start, e.all_day, &c.time_zone),
        "end": time_json(&e.end, e.all_day, &c.time_zone),
        "iCalUID": e.ical_uid,
        "sequence": e.sequence,
        "reminders": { "useDefault": true },
        "eventType": e.event_type,
    });
    if !e.recurrence.is_empty() {
        v["recurrence"] = json!(e.recurrence);
    }
    if let Some(r) = &e.recurring_event_id {
        v["recurringEventId"] = Value::from(r.clone());
    }
    if let Some(o) = &e.original_start {
        v["originalStartTime"] = time_json(o, e.all_day, &c.time_zone);
    }
    if !e.attendees.is_empty() {
        v["attendees"] = Value::from(
            e.attendees
                .iter()
                .map(|a| json!({ "email": a, "responseStatus": "needsAction" }))
                .collect::<Vec<_>>(),
        );
    }
    v
}

pub fn route(ctx: &GCtx) -> Response {
    let segs: Vec<&str> = ctx.segs.iter().map(String::as_str).collect();
    use Method as M;
    let read = ctx.has_scope(READ);
    let write = ctx.has_scope(WRITE);
    let result = match (&ctx.method, segs.as_slice()) {
        (&M::GET, ["users", "me", "calendarList"]) if read => calendar_list(ctx),
        (&M::GET, ["calendars", cal, "events"]) if read => list(ctx, cal),
        (&M::GET, ["calendars", cal, "events", id]) if read => get(ctx, cal, id),
        (&M::POST, ["calendars", cal, "events"]) if write => insert(ctx, cal, false),
        (&M::POST, ["calendars", cal, "events", "import"]) if write => insert(ctx, cal, true),
        (&M::PATCH | &M::PUT, ["calendars", cal, "events", id]) if write => patch(ctx, cal, id),
        (&M::DELETE, ["calendars", cal, "events", id]) if write => delete(ctx, cal, id),
        (_, ["users", ..] | ["calendars", ..]) => Err(insufficient_scopes()),
        _ => Err(not_found()),
    };
    result.unwrap_or_else(|r| r)
}

fn calendar_list(ctx: &GCtx) -> Result<Response, Response> {
    let mut world = ctx.sim.world();
    let epoch = world.epoch;
    let current = world.current_seq();
    if let Some(t) = ctx.param("syncToken") {
        if !Cursor::decode(t).is_some_and(|c| c.collection == "calendarList" && c.epoch == epoch) {
            return Err(error(
                StatusCode::GONE,
                "fullSyncRequired",
                "Sync token is no longer valid, a full sync is required.",
            ));
        }
    }
    let u = user(&mut world, &ctx.domain, &ctx.subject).ok_or_else(not_found)?;
    let items: Vec<Value> = u
        .calendars
        .values()
        .map(|c| {
            let mut v = json!({ "kind": "calendar#calendarListEntry", "etag": "\"sim\"", "id": c.id, "summary": c.summary, "timeZone": c.time_zone, "accessRole": "owner", "defaultReminders": [] });
            if c.primary {
                v["primary"] = Value::from(true);
            }
            v
        })
        .collect();
    let token = Cursor {
        collection: "calendarList".into(),
        since: current,
        epoch,
        ..Cursor::default()
    };
    Ok(ctx.ok(json!({ "kind": "calendar#calendarList", "etag": "\"sim\"", "items": items, "nextSyncToken": token.encode() })))
}

fn parse_time(raw: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(raw)
        .map(|d| d.with_timezone(&Utc))
        .ok()
}

fn list(ctx: &GCtx, cal: &str) -> Result<Response, Response> {
    let max = ctx.bounded("maxResults", 250, 2500)?;
    if ctx.param("singleEvents") == Some("true") {
        return Err(param_error(
            StatusCode::BAD_REQUEST,
            "invalid",
            "The simulator does not expand recurring events (singleEvents=true).",
            "singleEvents",
        ));
    }
    let sync = ctx.param("syncToken");
    if sync.is_some() {
        for p in [
            "timeMin",
            "timeMax",
            "q",
            "iCalUID",
            "orderBy",
            "updatedMin",
            "privateExtendedProperty",
            "sharedExtendedProperty",
        ] {
            if ctx.param(p).is_some() {
                return Err(param_error(
                    StatusCode::BAD_REQUEST,
                    "invalid",
                    &format!("The parameter {p} cannot be used with syncToken."),
                    p,
                ));
            }
        }
        if ctx.param("showDeleted") == Some("false") {
            return Err(param_error(
                StatusCode::BAD_REQUEST,
                "invalid",
                "showDeleted=false cannot be used with syncToken.",
                "showDeleted",
            ));
        }
    }
    let show_deleted = ctx.flag("showDeleted") || sync.is_some();
    let (time_min, time_max) = (
        ctx.param("timeMin").and_then(parse_time),
        ctx.param("timeMax").and_then(parse_time),
    );
    let ical = ctx.param("iCalUID").map(str::to_owned);
    let mut world = ctx.sim.world();
    let epoch = world.epoch;
    let current = world.current_seq();
    let u = user(&mut world, &ctx.domain, &ctx.subject).ok_or_else(not_found)?;
    let key = calendar_key(u, cal).ok_or_else(not_found)?;
    let c = &u.calendars[&key];
    let collection = format!("events:{key}");
    // The round: from a page token, a sync token, or a fresh full sync.
    let cursor = match (ctx.param("pageToken"), sync) {
        (Some(t), _) => Cursor::decode(t)
            .filter(|c| c.collection == collection)
            .ok_or_else(|| {
                param_error(
                    StatusCode::BAD_REQUEST,
                    "invalid",
                    "Invalid page token.",
                    "pageToken",
                )
            })?,
        (None, Some(t)) => {
            let mut c = Cursor::decode(t)
                .filter(|c| c.collection == collection)
                .ok_or_else(|| {
                    error(
                        StatusCode::GONE,
                        "fullSyncRequired",
                        "Sync token is no longer valid, a full sync is required.",
                    )
                })?;
            c.upto = current;
            c.offset = 0;
            c.after = None;
            c
        }
        (None, None) => Cursor {
            collection: collection.clone(),
            since: 0,
            upto: current,
            offset: 0,
            epoch,
            page: max,
            ..Cursor::default()
        },
    };
    if cursor.epoch != epoch {
        return Err(error(
            StatusCode::GONE,
            "fullSyncRequired",
            "Sync token is no longer valid, a full sync is required.",
        ));
    }
    let events: Vec<&GEvent> = if cursor.since == 0 {
        c.events
            .values()
            .filter(|e| show_deleted || e.status != "cancelled")
            .filter(|e| time_max.is_none_or(|t| e.start < t) && time_min.is_none_or(|t| e.end > t))
            .filter(|e| ical.as_ref().is_none_or(|i| &e.ical_uid == i))
            .collect()
    } else {
        c.log
            .changes(cursor.since, cursor.upto)
            .into_iter()
            .filter_map(|(_, id, _)| c.events.get(&id))
            .collect()
    };
    // A full sync lists what exists now on every page, so it continues
    // after the last event id served (events are kept in id order); a
    // change round is fixed by its sequence range, so an offset is exact.
    let start = match (&cursor.after, cursor.since) {
        (Some(after), 0) => events.partition_point(|e| &e.id <= after),
        _ => (cursor.offset as usize).min(events.len()),
    };
    let end = (start + max as usize).min(events.len());
    let page: Vec<Value> = events[start..end]
        .iter()
        .map(|e| event_json(c, e))
        .collect();
    let mut body = json!({
        "kind": "calendar#events",
        "etag": format!("\"{current}\""),
        "summary": c.summary,
        "updated": stamp(&Utc::now()),
        "timeZone": c.time_zone,
        "accessRole": "owner",
        "defaultReminders": [{ "method": "popup", "minutes": 10 }],
        "items": page,
    });
    if end < events.len() {
        let next = Cursor {
            offset: end as u64,
            after: events.get(end - 1).map(|e| e.id.clone()),
            ..cursor
        };
        body["nextPageToken"] = Value::from(next.encode());
    } else {
        let next = Cursor {
            since: cursor.upto,
            upto: 0,
            offset: 0,
            after: None,
            ..cursor
        };
        body["nextSyncToken"] = Value::from(next.encode());
    }
    Ok(ctx.ok(body))
}

fn get(ctx: &GCtx, cal: &str, id: &str) -> Result<Response, Response> {
    let mut world = ctx.sim.world();
    let u = user(&mut world, &ctx.domain, &ctx.subject).ok_or_else(not_found)?;
    let key = calendar_key(u, cal).ok_or_else(not_found)?;
    let c = &u.calendars[&key];
    let e = c.events.get(id).ok_or_else(not_found)?;
    Ok(ctx.ok(event_json(c, e)))
}

fn event_time(v: &Value) -> Option<(DateTime<Utc>, bool)> {
    if let Some(dt) = v.get("dateTime").and_then(Value::as_str) {
        return parse_time(dt).map(|t| (t, false));
    }
    let date = v.get("date").and_then(Value::as_str)?;
    NaiveDate::parse_from_str(date, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| (t.and_utc(), true))
}

fn valid_id(id: &str) -> bool {
    (5..=1024).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_digit() || ('a'..='v').contains(&c))
}

fn insert(ctx: &GCtx, cal: &str, import: bool) -> Result<Response, Response> {
    let body = ctx.json_body()?;
    let (start, all_day) = event_time(&body["start"])
        .ok_or_else(|| error(StatusCode::BAD_REQUEST, "required", "Missing start time."))?;
    let (end, _) = event_time(&body["end"])
        .ok_or_else(|| error(StatusCode::BAD_REQUEST, "required", "Missing end time."))?;
    if end < start {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "timeRangeEmpty",
            "The specified time range is empty.",
        ));
    }
    let ical = body["iCalUID"].as_str().map(str::to_owned);
    if import && ical.is_none() {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "required",
            "Missing iCalUID.",
        ));
    }
    if import && body["eventType"].as_str().is_some_and(|t| t != "default") {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "invalidEventType",
            "Only default events can be imported.",
        ));
    }
    let requested_id = body["id"].as_str().map(str::to_owned);
    if requested_id.as_deref().is_some_and(|id| !valid_id(id)) {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "invalid",
            "Invalid resource id value.",
        ));
    }
    let mut world = ctx.sim.world();
    let seq = world.next_seq();
    let subject = ctx.subject.clone();
    let u = user(&mut world, &ctx.domain, &subject).ok_or_else(not_found)?;
    let key = calendar_key(u, cal).ok_or_else(not_found)?;
    let c = u.calendars.get_mut(&key).expect("found above");
    let now = Utc::now();
    // Import of a known iCalUID updates that event instead of adding one:
    // the series (or single event) itself, or, for an exception (which
    // shares its series' iCalUID), the instance at the same original start.
    let original_start = body
        .get("originalStartTime")
        .and_then(event_time)
        .map(|(t, _)| t);
    let is_exception = body["recurringEventId"].is_string();
    let existing = if import {
        c.events
            .values()
            .find(|e| {
                Some(&e.ical_uid) == ical.as_ref()
                    && if is_exception {
                        e.recurring_event_id.is_some() && e.original_start == original_start
                    } else {
                        e.recurring_event_id.is_none()
                    }
            })
            .map(|e| e.id.clone())
    } else {
        None
    };
    if let Some(id) = &requested_id {
        if c.events.contains_key(id) && existing.as_ref() != Some(id) {
            return Err(error(
                StatusCode::CONFLICT,
                "duplicate",
                "The requested identifier already exists.",
            ));
        }
    }
    let id = existing.clone().or(requested_id).unwrap_or_else(|| {
        uuid::Uuid::new_v4()
            .simple()
            .to_string()
            .replace(|c: char| c > 'v', "0")
    });
    let previous = c.events.get(&id).cloned();
    let event = GEvent {
        id: id.clone(),
        ical_uid: ical.unwrap_or_else(|| format!("{id}@google.com")),
        status: body["status"].as_str().unwrap_or("confirmed").to_owned(),
        summary: body["summary"].as_str().unwrap_or_default().to_owned(),
        description: body["description"].as_str().unwrap_or_default().to_owned(),
        start,
        end,
        all_day,
        recurrence: body["recurrence"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|r| r.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default(),
        recurring_event_id: body["recurringEventId"].as_str().map(str::to_owned),
        original_start,
        organizer: subject.clone(),
        attendees: body["attendees"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x["email"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default(),
        created: previous.as_ref().map_or(now, |p| p.created),
        updated: now,
        sequence: previous.as_ref().map_or(0, |p| p.sequence + 1),
        event_type: body["eventType"].as_str().unwrap_or("default").to_owned(),
    };
    c.log.upsert(seq, &id);
    let json = event_json(c, &event);
    c.events.insert(id, event);
    Ok(ctx.ok(json))
}

fn patch(ctx: &GCtx, cal: &str, id: &str) -> Result<Response, Response> {
    let body = ctx.json_body()?;
    let mut world = ctx.sim.world();
    let seq = world.next_seq();
    let u = user(&mut world, &ctx.domain, &ctx.subject).ok_or_else(not_found)?;
    let key = calendar_key(u, cal).ok_or_else(not_found)?;
    let c = u.calendars.get_mut(&key).expect("found above");
    let e = c.events.get_mut(id).ok_or_else(not_found)?;
    if let Some(s) = body["summary"].as_str() {
        e.summary = s.to_owned();
    }
    if let Some(s) = body["description"].as_str() {
        e.description = s.to_owned();
    }
    if let Some(s) = body["status"].as_str() {
        e.status = s.to_owned();
    }
    if let Some((t, all_day)) = body.get("start").and_then(event_time) {
        e.start = t;
        e.all_day = all_day;
    }
    if let Some((t, _)) = body.get("end").and_then(event_time) {
        e.end = t;
    }
    e.updated = Utc::now();
    e.sequence += 1;
    let e = e.clone();
    c.log.upsert(seq, id);
    Ok(ctx.ok(event_json(c, &e)))
}

fn delete(ctx: &GCtx, cal: &str, id: &str) -> Result<Response, Response> {
    let mut world = ctx.sim.world();
    let seq = world.next_seq();
    let u = user(&mut world, &ctx.domain, &ctx.subject).ok_or_else(not_found)?;
    let key = calendar_key(u, cal).ok_or_else(not_found)?;
    let c = u.calendars.get_mut(&key).expect("found above");
    let e = c.events.get_mut(id).ok_or_else(not_found)?;
    if e.status == "cancelled" {
        return Err(error(
            StatusCode::GONE,
            "deleted",
            "Resource has been deleted",
        ));
    }
    e.status = "cancelled".into();
    e.updated = Utc::now();
    c.log.upsert(seq, id);
    Ok(crate::ms::empty(StatusCode::NO_CONTENT))
}

//! Events as iCalendar (RFC 5545). A calendar export is written a piece at
//! a time ([`Calendar::header`], one VEVENT per event, [`Calendar::FOOTER`]),
//! so it never has to be whole in memory.
//!
//! The backup keeps each event exactly as the provider sent it; this
//! module turns Microsoft Graph's event resource into a VEVENT.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use icalendar::{
    Attendee, CalendarDateTime, Component, DatePerhapsTime, Event, EventLike, EventStatus,
    PartStat, Property, Role,
};
use serde_json::Value;

/// The frame of a calendar export.
#[derive(Debug)]
pub struct Calendar;

impl Calendar {
    pub fn header(name: &str) -> String {
        let mut head = icalendar::Calendar::empty();
        head.append_property(("VERSION", "2.0"));
        head.append_property(("PRODID", "-//Arkiv//Backup export//EN"));
        head.append_property(("CALSCALE", "GREGORIAN"));
        head.name(name);
        // The empty calendar's text without its END line.
        let text = head.to_string();
        text.trim_end_matches("END:VCALENDAR\r\n").to_owned()
    }

    pub const FOOTER: &'static str = "END:VCALENDAR\r\n";

    /// One event as a whole calendar.
    pub fn single(name: &str, event: &Event) -> String {
        format!(
            "{}{}{}",
            Self::header(name),
            event.to_string(),
            Self::FOOTER
        )
    }
}

/// Graph's `dateTimeTimeZone`: UTC when the zone is UTC, otherwise the
/// local time with its zone's name.
fn graph_time(v: &Value, all_day: bool) -> Option<DatePerhapsTime> {
    let raw = v["dateTime"].as_str()?;
    let naive = NaiveDateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M:%S%.f").ok()?;
    if all_day {
        return Some(DatePerhapsTime::Date(naive.date()));
    }
    let zone = v["timeZone"].as_str().unwrap_or("UTC");
    Some(DatePerhapsTime::DateTime(
        if zone.eq_ignore_ascii_case("utc") || zone.is_empty() {
            CalendarDateTime::Utc(naive.and_utc())
        } else {
            CalendarDateTime::WithTimezone {
                date_time: naive,
                tzid: zone.to_owned(),
            }
        },
    ))
}

fn utc(v: &Value) -> Option<DateTime<Utc>> {
    v.as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|d| d.with_timezone(&Utc))
}

/// A Graph `patternedRecurrence` as an RRULE value.
fn rrule(recurrence: &Value) -> Option<String> {
    let pattern = &recurrence["pattern"];
    let range = &recurrence["range"];
    let day = |d: &Value| -> Option<&'static str> {
        Some(match d.as_str()? {
            "monday" => "MO",
            "tuesday" => "TU",
            "wednesday" => "WE",
            "thursday" => "TH",
            "friday" => "FR",
            "saturday" => "SA",
            "sunday" => "SU",
            _ => return None,
        })
    };
    let days: Vec<&str> = pattern["daysOfWeek"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(day)
        .collect();
    let position = match pattern["index"].as_str().unwrap_or("first") {
        "second" => "2",
        "third" => "3",
        "fourth" => "4",
        "last" => "-1",
        _ => "1",
    };
    let mut parts = Vec::new();
    match pattern["type"].as_str()? {
        "daily" => parts.push("FREQ=DAILY".to_owned()),
        "weekly" => {
            parts.push("FREQ=WEEKLY".to_owned());
            if !days.is_empty() {
                parts.push(format!("BYDAY={}", days.join(",")));
            }
        }
        "absoluteMonthly" => {
            parts.push("FREQ=MONTHLY".to_owned());
            parts.push(format!("BYMONTHDAY={}", pattern["dayOfMonth"].as_u64()?));
        }
        "relativeMonthly" => {
            parts.push("FREQ=MONTHLY".to_owned());
            let by: Vec<String> = days.iter().map(|d| format!("{position}{d}")).collect();
            parts.push(format!("BYDAY={}", by.join(",")));
        }
        "absoluteYearly" => {
            parts.push("FREQ=YEARLY".to_owned());
            parts.push(format!("BYMONTH={}", pattern["month"].as_u64()?));
            parts.push(format!("BYMONTHDAY={}", pattern["dayOfMonth"].as_u64()?));
        }
        "relativeYearly" => {
            parts.push("FREQ=YEARLY".to_owned());
            parts.push(format!("BYMONTH={}", pattern["month"].as_u64()?));
            let by: Vec<String> = days.iter().map(|d| format!("{position}{d}")).collect();
            parts.push(format!("BYDAY={}", by.join(",")));
        }
        _ => return None,
    }
    if let Some(n) = pattern["interval"].as_u64().filter(|n| *n > 1) {
        parts.push(format!("INTERVAL={n}"));
    }
    match range["type"].as_str() {
        Some("numbered") => parts.push(format!("COUNT={}", range["numberOfOccurrences"].as_u64()?)),
        Some("endDate") => {
            let end = NaiveDate::parse_from_str(range["endDate"].as_str()?, "%Y-%m-%d").ok()?;
            parts.push(format!("UNTIL={}T235959Z", end.format("%Y%m%d")));
        }
        _ => {}
    }
    Some(parts.join(";"))
}

fn mailto(v: &Value) -> Option<(String, Option<String>)> {
    let e = &v["emailAddress"];
    let address = e["address"].as_str().filter(|a| !a.is_empty())?;
    let name = e["name"]
        .as_str()
        .filter(|n| !n.is_empty())
        .map(str::to_owned);
    Some((format!("mailto:{address}"), name))
}

/// A Microsoft Graph event resource as a VEVENT.
pub fn graph_event_to_vevent(v: &Value) -> Result<Event, String> {
    let all_day = v["isAllDay"].as_bool().unwrap_or(false);
    let start = graph_time(&v["start"], all_day).ok_or("the event has no start")?;
    let end = graph_time(&v["end"], all_day).ok_or("the event has no end")?;
    let mut e = Event::new();
    e.uid(
        v["iCalUId"]
            .as_str()
            .or(v["id"].as_str())
            .ok_or("the event has no id")?,
    );
    e.summary(v["subject"].as_str().unwrap_or(""));
    e.starts(start);
    e.ends(end);
    if let Some(stamp) = utc(&v["lastModifiedDateTime"]).or_else(|| utc(&v["createdDateTime"])) {
        e.timestamp(stamp);
    }
    if let Some(created) = utc(&v["createdDateTime"]) {
        e.add_property("CREATED", created.format("%Y%m%dT%H%M%SZ").to_string());
    }
    let body = v["body"]["content"].as_str().unwrap_or_default();
    if v["body"]["contentType"].as_str() == Some("html") {
        if let Some(preview) = v["bodyPreview"].as_str().filter(|p| !p.is_empty()) {
            e.description(preview);
        }
        if !body.is_empty() {
            e.append_property(
                Property::new("X-ALT-DESC", body)
                    .add_parameter("FMTTYPE", "text/html")
                    .done(),
            );
        }
    } else if !body.is_empty() {
        e.description(body);
    }
    if let Some(place) = v["location"]["displayName"]
        .as_str()
        .filter(|l| !l.is_empty())
    {
        e.location(place);
    }
    if let Some((address, name)) = mailto(&v["organizer"]) {
        let mut p = Property::new("ORGANIZER", address);
        if let Some(name) = name {
            p.add_parameter("CN", &name);
        }
        e.append_property(p);
    }
    for a in v["attendees"].as_array().into_iter().flatten() {
        let Some((address, name)) = mailto(a) else {
            continue;
        };
        let mut attendee = Attendee::new(address)
            .role(match a["type"].as_str() {
                Some("optional") => Role::OptParticipant,
                Some("resource") => Role::NonParticipant,
                _ => Role::ReqParticipant,
            })
            .partstat(match a["status"]["response"].as_str() {
                Some("accepted" | "organizer") => PartStat::Accepted,
                Some("declined") => PartStat::Declined,
                Some("tentativelyAccepted") => PartStat::Tentative,
                _ => PartStat::NeedsAction,
            });
        if let Some(name) = name {
            attendee = attendee.cn(name);
        }
        e.attendee(attendee);
    }
    e.status(if v["isCancelled"].as_bool().unwrap_or(false) {
        EventStatus::Cancelled
    } else {
        EventStatus::Confirmed
    });
    match v["type"].as_str() {
        Some("seriesMaster") => {
            if let Some(rule) = rrule(&v["recurrence"]) {
                e.add_property("RRULE", rule);
            }
        }
        // An occurrence or exception of a series: the instance it is.
        Some("occurrence" | "exception") => {
            let original = v
                .get("originalStart")
                .and_then(utc)
                .map(|t| DatePerhapsTime::DateTime(CalendarDateTime::Utc(t)))
                .unwrap_or_else(|| start_of(v, all_day));
            e.append_property(recurrence_id(original));
        }
        _ => {}
    }
    Ok(e.done())
}

/// Google Calendar's `start` / `end`: a `date` (all day) or a `dateTime`
/// with its offset.
fn google_time(v: &Value) -> Option<DatePerhapsTime> {
    if let Some(d) = v["date"].as_str() {
        return NaiveDate::parse_from_str(d, "%Y-%m-%d")
            .ok()
            .map(DatePerhapsTime::Date);
    }
    utc(&v["dateTime"]).map(|t| DatePerhapsTime::DateTime(CalendarDateTime::Utc(t)))
}

/// A Google Calendar event resource as a VEVENT.
pub fn google_event_to_vevent(v: &Value) -> Result<Event, String> {
    let mut e = Event::new();
    e.uid(
        v["iCalUID"]
            .as_str()
            .or(v["id"].as_str())
            .ok_or("the event has no id")?,
    );
    e.summary(v["summary"].as_str().unwrap_or(""));
    // A cancelled instance of a series may carry no times of its own.
    if let Some(start) = google_time(&v["start"]) {
        e.starts(start);
    }
    if let Some(end) = google_time(&v["end"]) {
        e.ends(end);
    }
    if let Some(stamp) = utc(&v["updated"]).or_else(|| utc(&v["created"])) {
        e.timestamp(stamp);
    }
    if let Some(d) = v["description"].as_str().filter(|d| !d.is_empty()) {
        e.description(d);
    }
    if let Some(l) = v["location"].as_str().filter(|l| !l.is_empty()) {
        e.location(l);
    }
    if let Some(address) = v["organizer"]["email"].as_str() {
        let mut p = Property::new("ORGANIZER", format!("mailto:{address}"));
        if let Some(name) = v["organizer"]["displayName"].as_str() {
            p.add_parameter("CN", name);
        }
        e.append_property(p);
    }
    for a in v["attendees"].as_array().into_iter().flatten() {
        let Some(address) = a["email"].as_str() else {
            continue;
        };
        let mut attendee = Attendee::new(format!("mailto:{address}"))
            .role(if a["optional"].as_bool().unwrap_or(false) {
                Role::OptParticipant
            } else {
                Role::ReqParticipant
            })
            .partstat(match a["responseStatus"].as_str() {
                Some("accepted") => PartStat::Accepted,
                Some("declined") => PartStat::Declined,
                Some("tentative") => PartStat::Tentative,
                _ => PartStat::NeedsAction,
            });
        if let Some(name) = a["displayName"].as_str() {
            attendee = attendee.cn(name.to_owned());
        }
        e.attendee(attendee);
    }
    e.status(match v["status"].as_str() {
        Some("cancelled") => EventStatus::Cancelled,
        Some("tentative") => EventStatus::Tentative,
        _ => EventStatus::Confirmed,
    });
    for rule in v["recurrence"].as_array().into_iter().flatten() {
        if let Some((name, value)) = rule.as_str().and_then(|r| r.split_once(':')) {
            if matches!(name, "RRULE" | "EXRULE" | "RDATE" | "EXDATE") {
                e.add_property(name, value);
            }
        }
    }
    if let Some(original) = google_time(&v["originalStartTime"]) {
        e.append_property(recurrence_id(original));
    }
    Ok(e.done())
}

/// `RECURRENCE-ID`: which instance of a series an event is.
fn recurrence_id(at: DatePerhapsTime) -> Property {
    match at {
        DatePerhapsTime::Date(d) => Property::new("RECURRENCE-ID", d.format("%Y%m%d").to_string())
            .add_parameter("VALUE", "DATE")
            .done(),
        DatePerhapsTime::DateTime(CalendarDateTime::Utc(t)) => {
            Property::new("RECURRENCE-ID", t.format("%Y%m%dT%H%M%SZ").to_string())
        }
        DatePerhapsTime::DateTime(CalendarDateTime::WithTimezone { date_time, tzid }) => {
            Property::new(
                "RECURRENCE-ID",
                date_time.format("%Y%m%dT%H%M%S").to_string(),
            )
            .add_parameter("TZID", &tzid)
            .done()
        }
        DatePerhapsTime::DateTime(CalendarDateTime::Floating(t)) => {
            Property::new("RECURRENCE-ID", t.format("%Y%m%dT%H%M%S").to_string())
        }
    }
}

fn start_of(v: &Value, all_day: bool) -> DatePerhapsTime {
    graph_time(&v["start"], all_day).unwrap_or(DatePerhapsTime::Date(NaiveDate::MIN))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event() -> Value {
        json!({
            "id": "AAMk1", "iCalUId": "0400000082", "type": "seriesMaster",
            "subject": "Weekly sync; team, all",
            "bodyPreview": "Agenda", "body": { "contentType": "html", "content": "<p>Agenda</p>" },
            "start": { "dateTime": "2026-11-24T10:00:00.0000000", "timeZone": "UTC" },
            "end": { "dateTime": "2026-11-24T10:30:00.0000000", "timeZone": "UTC" },
            "location": { "displayName": "Room 4" },
            "organizer": { "emailAddress": { "name": "Alice", "address": "alice@example.com" } },
            "attendees": [
                { "type": "required", "status": { "response": "accepted" },
                  "emailAddress": { "name": "Bob", "address": "bob@example.com" } },
                { "type": "optional", "status": { "response": "none" },
                  "emailAddress": { "address": "carol@example.com" } }
            ],
            "recurrence": {
                "pattern": { "type": "weekly", "interval": 1, "daysOfWeek": ["tuesday"] },
                "range": { "type": "numbered", "numberOfOccurrences": 6 }
            },
            "lastModifiedDateTime": "2026-11-20T08:00:00Z",
        })
    }

    #[test]
    fn a_graph_event_becomes_a_vevent_that_parses_back() {
        let e = graph_event_to_vevent(&event()).unwrap();
        let text = Calendar::single("Alice", &e);
        let parsed: icalendar::Calendar = text.parse().expect("valid iCalendar");
        let events: Vec<&Event> = parsed.events().collect();
        assert_eq!(events.len(), 1);
        let back = events[0];
        assert_eq!(back.get_uid(), Some("0400000082"));
        assert_eq!(back.get_summary(), Some("Weekly sync; team, all"));
        assert_eq!(back.get_location(), Some("Room 4"));
        assert_eq!(
            back.get_start(),
            Some(DatePerhapsTime::DateTime(CalendarDateTime::Utc(
                "2026-11-24T10:00:00Z".parse().unwrap()
            )))
        );
        assert_eq!(
            back.property_value("RRULE"),
            Some("FREQ=WEEKLY;BYDAY=TU;COUNT=6")
        );
        let attendees = back.get_attendees();
        assert_eq!(attendees.len(), 2);
        assert_eq!(attendees[0].cal_address, "mailto:bob@example.com");
        assert_eq!(attendees[0].part_stat, Some(PartStat::Accepted));
        assert_eq!(
            back.properties()["ORGANIZER"].value(),
            "mailto:alice@example.com"
        );
    }

    #[test]
    fn all_day_and_cancelled_occurrences_keep_what_they_are() {
        let mut v = event();
        v["type"] = json!("occurrence");
        v["isAllDay"] = json!(true);
        v["isCancelled"] = json!(true);
        v["end"] = json!({ "dateTime": "2026-11-25T00:00:00.0000000", "timeZone": "UTC" });
        let text = Calendar::single("x", &graph_event_to_vevent(&v).unwrap());
        let parsed: icalendar::Calendar = text.parse().unwrap();
        let e = parsed.events().next().unwrap();
        assert_eq!(
            e.get_start(),
            Some(DatePerhapsTime::Date(
                NaiveDate::from_ymd_opt(2026, 11, 24).unwrap()
            ))
        );
        assert_eq!(e.get_status(), Some(EventStatus::Cancelled));
        assert_eq!(e.property_value("RRULE"), None);
        assert!(text.contains("RECURRENCE-ID;VALUE=DATE:20261124"), "{text}");
    }
}

//! Google's upload protocols: `uploadType=media`, `multipart` (a
//! `multipart/related` body of JSON metadata and the media, as
//! google-apis-common writes it: leading CRLF, lowercase part headers) and
//! `resumable` (a session URI, chunks by PUT or POST with Content-Range,
//! 308 until the last chunk).

use std::sync::Arc;

use axum::body::Bytes;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use chrono::{Duration, Utc};
use serde_json::Value;

use super::{error, GCtx};
use crate::state::{lock, Sim, UploadSession, UploadTarget};

/// An upload's metadata and media, whatever protocol carried them.
#[derive(Debug)]
pub struct Upload {
    pub metadata: Value,
    pub media: Option<Bytes>,
    pub media_type: Option<String>,
}

/// Read a simple (`media`) or `multipart` upload from the request; `None`
/// for a resumable start, which the caller turns into a session.
pub fn read(ctx: &GCtx) -> Result<Option<Upload>, Response> {
    let content_type = ctx
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    match ctx.param("uploadType") {
        Some("media") => Ok(Some(Upload { metadata: Value::Object(Default::default()), media: Some(ctx.body.clone()), media_type: Some(content_type) })),
        Some("multipart") => parse_multipart(&content_type, &ctx.body).map(Some),
        Some("resumable") => Ok(None),
        Some(other) => Err(super::param_error(StatusCode::BAD_REQUEST, "invalid", &format!("Invalid upload type: {other}"), "uploadType")),
        None if ctx.upload => Err(super::param_error(StatusCode::BAD_REQUEST, "required", "Upload requests must include an uploadType URL parameter and a URL encoded media body.", "uploadType")),
        None => Ok(Some(Upload { metadata: ctx.json_body()?, media: None, media_type: None })),
    }
}

pub fn parse_multipart(content_type: &str, body: &[u8]) -> Result<Upload, Response> {
    let bad = |m: &str| error(StatusCode::BAD_REQUEST, "badContent", m);
    if !content_type
        .to_ascii_lowercase()
        .starts_with("multipart/related")
    {
        return Err(bad(
            "Multipart uploads need Content-Type: multipart/related.",
        ));
    }
    let boundary = content_type
        .split(';')
        .filter_map(|p| p.trim().strip_prefix("boundary="))
        .next()
        .map(|b| b.trim_matches('"').to_owned())
        .ok_or_else(|| bad("Missing boundary in multipart/related Content-Type."))?;
    let delimiter = format!("--{boundary}");
    let mut parts = Vec::new();
    let mut rest = body;
    // Skip the preamble (google-apis-common starts with a CRLF).
    let Some(start) = find(rest, delimiter.as_bytes()) else {
        return Err(bad("Multipart body has no parts."));
    };
    rest = &rest[start + delimiter.len()..];
    loop {
        if rest.starts_with(b"--") {
            break;
        }
        rest = rest
            .strip_prefix(b"\r\n")
            .or_else(|| rest.strip_prefix(b"\n"))
            .unwrap_or(rest);
        let Some(end) = find(rest, delimiter.as_bytes()) else {
            return Err(bad("Multipart body is not terminated."));
        };
        let part = &rest[..end];
        let part = part
            .strip_suffix(b"\r\n")
            .or_else(|| part.strip_suffix(b"\n"))
            .unwrap_or(part);
        // The header block ends at the first blank line, CRLF or bare LF
        // (Python's email generator writes LF); the media may hold either.
        let crlf = find(part, b"\r\n\r\n").map(|i| (i, 4));
        let lf = find(part, b"\n\n").map(|i| (i, 2));
        let (head, content) = match [crlf, lf].into_iter().flatten().min() {
            Some((i, len)) => (&part[..i], &part[i + len..]),
            None => return Err(bad("A multipart part has no header block.")),
        };
        let head = String::from_utf8_lossy(head);
        let part_type = head
            .lines()
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-type"))
            .map(|(_, v)| v.trim().to_owned());
        parts.push((part_type, Bytes::copy_from_slice(content)));
        rest = &rest[end + delimiter.len()..];
    }
    let mut parts = parts.into_iter();
    let (_, metadata) = parts
        .next()
        .ok_or_else(|| bad("Multipart body has no metadata part."))?;
    let metadata: Value = serde_json::from_slice(&metadata)
        .map_err(|e| bad(&format!("Invalid JSON in the metadata part: {e}")))?;
    let (media_type, media) = parts
        .next()
        .ok_or_else(|| bad("Multipart body has no media part."))?;
    Ok(Upload {
        metadata,
        media: Some(media),
        media_type,
    })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Start a resumable session: 200 with the session URI in `Location`.
pub fn start_session(ctx: &GCtx, target: UploadTarget) -> Response {
    let total = ctx
        .headers
        .get("x-upload-content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let id = uuid::Uuid::new_v4().simple().to_string();
    lock(&ctx.sim.uploads).insert(
        id.clone(),
        UploadSession {
            target,
            total,
            received: Vec::new(),
            expires_at: Utc::now() + Duration::days(7),
        },
    );
    let path: String = ctx.segs.join("/");
    let prefix = match ctx.api {
        super::Api::Gmail => "gmail/v1",
        super::Api::Drive => "drive/v3",
        _ => "",
    };
    let location = format!(
        "{}/upload/{prefix}/{path}?uploadType=resumable&upload_id={id}",
        ctx.sim.base_url
    );
    let mut r = super::json_response(StatusCode::OK, Value::Object(Default::default()));
    if let Ok(v) = HeaderValue::from_str(&location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

/// A chunk (or a status query) of a resumable session.
pub fn continue_session(sim: &Arc<Sim>, id: &str, headers: &HeaderMap, body: Bytes) -> Response {
    let range = headers
        .get(header::CONTENT_RANGE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let (target, complete) = {
        let mut uploads = lock(&sim.uploads);
        let Some(session) = uploads.get_mut(id) else {
            return error(
                StatusCode::NOT_FOUND,
                "notFound",
                "Upload session not found or expired.",
            );
        };
        // `bytes a-b/total`, `bytes */total` (status query) or absent (one shot).
        let spec = range.trim().strip_prefix("bytes ").unwrap_or("");
        let (span, total) = spec.split_once('/').unwrap_or((spec, "*"));
        if let Ok(total) = total.parse::<u64>() {
            session.total = Some(total);
        }
        if span != "*" && !span.is_empty() {
            let Some((a, _)) = span.split_once('-') else {
                return error(
                    StatusCode::BAD_REQUEST,
                    "badContent",
                    "Invalid Content-Range.",
                );
            };
            if a.parse::<u64>().ok() != Some(session.received.len() as u64) {
                return resume_incomplete(session.received.len());
            }
            session.received.extend_from_slice(&body);
        } else if range.is_empty() {
            session.received.extend_from_slice(&body);
            session.total = Some(session.received.len() as u64);
        }
        match session.total {
            Some(total) if session.received.len() as u64 >= total => {
                let session = uploads.remove(id).expect("present");
                (session.target, Bytes::from(session.received))
            }
            _ => return resume_incomplete(session.received.len()),
        }
    };
    match target {
        UploadTarget::Drive { .. } => super::drive::finish_upload(sim, target, complete),
        UploadTarget::Gmail { .. } => super::gmail::finish_upload(sim, target, complete),
        UploadTarget::Graph { .. } => error(
            StatusCode::BAD_REQUEST,
            "badRequest",
            "Not a Google upload session.",
        ),
    }
}

fn resume_incomplete(received: usize) -> Response {
    let mut r = super::json_response(StatusCode::PERMANENT_REDIRECT, Value::Null);
    *r.body_mut() = axum::body::Body::empty();
    if received > 0 {
        if let Ok(v) = HeaderValue::from_str(&format!("bytes=0-{}", received - 1)) {
            r.headers_mut().insert(header::RANGE, v);
        }
    }
    r
}

//! Google OAuth (JWT bearer with domain-wide delegation through
//! yup-oauth2), Directory, Gmail, Drive and Calendar through the
//! google-apis crates pointed at the simulator.

use std::collections::BTreeSet;

use arkiv_cloud_sim::Simulator;
use google_drive3::hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{json, Value};

use super::*;

type Http = google_drive3::common::Client<HttpConnector>;

fn http() -> Http {
    google_drive3::hyper_util::client::legacy::Client::builder(
        google_drive3::hyper_util::rt::TokioExecutor::new(),
    )
    .build(HttpConnector::new())
}

struct Domain {
    domain: String,
    admin: String,
    users: Vec<String>,
    key: yup_oauth2::ServiceAccountKey,
    shared_drive: String,
}

async fn domain(sim: &Simulator) -> Domain {
    let m = manifest(sim).await;
    let d = &m["google"][0];
    Domain {
        domain: d["domain"].as_str().unwrap().to_owned(),
        admin: d["admin"].as_str().unwrap().to_owned(),
        users: d["users"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["primaryEmail"].as_str().unwrap().to_owned())
            .collect(),
        key: yup_oauth2::parse_service_account_key(d["service_account"].to_string()).unwrap(),
        shared_drive: d["shared_drives"][0]["id"].as_str().unwrap().to_owned(),
    }
}

const SCOPES: &[&str] = &[
    "https://mail.google.com/",
    "https://www.googleapis.com/auth/drive",
    "https://www.googleapis.com/auth/calendar",
    "https://www.googleapis.com/auth/admin.directory.user.readonly",
];

/// A token for `subject` by the real JWT-bearer flow of yup-oauth2.
async fn token(d: &Domain, subject: &str, scopes: &[&str]) -> Result<String, yup_oauth2::Error> {
    let auth = yup_oauth2::ServiceAccountAuthenticator::builder(d.key.clone())
        .subject(subject)
        .build()
        .await
        .unwrap();
    Ok(auth.token(scopes).await?.token().unwrap().to_owned())
}

fn gmail(sim: &Simulator, token: &str) -> google_gmail1::Gmail<HttpConnector> {
    let mut hub = google_gmail1::Gmail::new(http(), token.to_owned());
    hub.base_url(format!("{}/", sim.base_url()));
    hub.root_url(format!("{}/", sim.base_url()));
    hub
}

fn drive(sim: &Simulator, token: &str) -> google_drive3::DriveHub<HttpConnector> {
    let mut hub = google_drive3::DriveHub::new(http(), token.to_owned());
    hub.base_url(format!("{}/drive/v3/", sim.base_url()));
    hub.root_url(format!("{}/", sim.base_url()));
    hub
}

fn calendar(sim: &Simulator, token: &str) -> google_calendar3::CalendarHub<HttpConnector> {
    let mut hub = google_calendar3::CalendarHub::new(http(), token.to_owned());
    hub.base_url(format!("{}/calendar/v3/", sim.base_url()));
    hub.root_url(format!("{}/", sim.base_url()));
    hub
}

fn bad_request(e: google_drive3::Error) -> Value {
    match e {
        google_drive3::Error::BadRequest(v) => v,
        other => panic!("expected a Google error body, got {other:?}"),
    }
}

#[tokio::test]
async fn the_jwt_bearer_grant_checks_signature_subject_and_delegation() {
    let sim = start().await;
    let d = domain(&sim).await;
    token(&d, &d.users[1], SCOPES)
        .await
        .expect("delegated token");

    // A user outside the domain.
    let err = token(&d, "someone@elsewhere.example", SCOPES)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("invalid_grant"), "{err}");
    // A scope the admin did not delegate.
    let err = token(
        &d,
        &d.users[1],
        &["https://www.googleapis.com/auth/cloud-platform"],
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(err.contains("unauthorized_client"), "{err}");
    // A forged assertion: same claims, another key.
    let mut forged = d.key.clone();
    let other = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).unwrap();
    forged.private_key =
        rsa::pkcs8::EncodePrivateKey::to_pkcs8_pem(&other, rsa::pkcs8::LineEnding::LF)
            .unwrap()
            .to_string();
    let auth = yup_oauth2::ServiceAccountAuthenticator::builder(forged)
        .subject(d.users[1].clone())
        .build()
        .await
        .unwrap();
    let err = auth.token(SCOPES).await.unwrap_err().to_string();
    assert!(
        err.contains("invalid_grant") && err.contains("Signature"),
        "{err}"
    );
    // Delegation revoked by the admin.
    post_json(
        &format!("{}/_sim/google/delegation", sim.base_url()),
        json!({ "domain": d.domain, "scopes": [] }),
    )
    .await;
    let err = token(&d, &d.users[1], SCOPES)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("unauthorized_client"), "{err}");
    sim.stop().await;
}

#[tokio::test]
async fn directory_users_page_to_the_full_list_for_admins_only() {
    let sim = start().await;
    let d = domain(&sim).await;
    let admin = token(&d, &d.admin, SCOPES).await.unwrap();
    let mut seen = Vec::new();
    let mut page: Option<String> = None;
    loop {
        let mut url = format!(
            "{}/admin/directory/v1/users?customer=my_customer&maxResults=2&orderBy=email",
            sim.base_url()
        );
        if let Some(p) = &page {
            url.push_str(&format!("&pageToken={p}"));
        }
        let body: Value = reqwest::Client::new()
            .get(url)
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        seen.extend(
            body["users"]
                .as_array()
                .unwrap()
                .iter()
                .map(|u| u["primaryEmail"].as_str().unwrap().to_owned()),
        );
        match body["nextPageToken"].as_str() {
            Some(p) => page = Some(p.to_owned()),
            None => break,
        }
    }
    let mut expected = d.users.clone();
    expected.sort();
    assert_eq!(seen, expected);
    let user = token(&d, &d.users[1], SCOPES).await.unwrap();
    let r = reqwest::Client::new()
        .get(format!(
            "{}/admin/directory/v1/users?customer=my_customer",
            sim.base_url()
        ))
        .bearer_auth(&user)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "a non-admin cannot list the directory");
    sim.stop().await;
}

#[tokio::test]
async fn gmail_lists_fetches_raw_imports_and_follows_history() {
    let sim = start().await;
    let d = domain(&sim).await;
    let t = token(&d, &d.users[1], SCOPES).await.unwrap();
    let hub = gmail(&sim, &t);

    // Paging to the end equals the full listing.
    let mut paged = Vec::new();
    let mut page: Option<String> = None;
    loop {
        let mut call = hub.users().messages_list("me").max_results(2);
        if let Some(p) = &page {
            call = call.page_token(p);
        }
        let (_, list) = call.doit().await.unwrap();
        paged.extend(
            list.messages
                .unwrap_or_default()
                .into_iter()
                .map(|m| m.id.unwrap()),
        );
        match list.next_page_token {
            Some(p) => page = Some(p),
            None => break,
        }
    }
    let (_, all) = hub
        .users()
        .messages_list("me")
        .max_results(500)
        .doit()
        .await
        .unwrap();
    let all: Vec<String> = all
        .messages
        .unwrap()
        .into_iter()
        .map(|m| m.id.unwrap())
        .collect();
    assert_eq!(paged, all);

    // raw is the RFC 822 message, padded base64url that the crate decodes.
    let (_, message) = hub
        .users()
        .messages_get("me", &all[0])
        .format("raw")
        .doit()
        .await
        .unwrap();
    let raw = message.raw.unwrap();
    let parsed = mail_parser::MessageParser::default()
        .parse(&raw[..])
        .unwrap();
    assert!(parsed.message_id().is_some());
    assert_eq!(message.size_estimate.unwrap() as usize, raw.len());

    let (_, profile) = hub.users().get_profile("me").doit().await.unwrap();
    let start = profile.history_id.unwrap();

    // Import (multipart upload, as the crate sends it), a label change, a delete.
    let mime = format!("From: ext@example.org\r\nTo: {}\r\nSubject: Imported\r\nMessage-ID: <imp1@example.org>\r\nDate: Tue, 3 Nov 2026 09:00:00 +0000\r\n\r\nbody\r\n", d.users[1]);
    let request = google_gmail1::api::Message {
        label_ids: Some(vec!["INBOX".into(), "Label_1".into()]),
        ..Default::default()
    };
    let (_, imported) = hub
        .users()
        .messages_import(request, "me")
        .internal_date_source("dateHeader")
        .upload(
            std::io::Cursor::new(mime.into_bytes()),
            "message/rfc822".parse().unwrap(),
        )
        .await
        .unwrap();
    let imported = imported.id.unwrap();
    let (_, found) = hub
        .users()
        .messages_list("me")
        .q("rfc822msgid:<imp1@example.org>")
        .doit()
        .await
        .unwrap();
    assert_eq!(
        found.messages.unwrap()[0].id.as_deref(),
        Some(imported.as_str())
    );
    hub.users()
        .messages_modify(
            google_gmail1::api::ModifyMessageRequest {
                add_label_ids: Some(vec!["STARRED".into()]),
                ..Default::default()
            },
            "me",
            &all[1],
        )
        .doit()
        .await
        .unwrap();
    hub.users()
        .messages_delete("me", &all[2])
        .doit()
        .await
        .unwrap();

    let (_, history) = hub
        .users()
        .history_list("me")
        .start_history_id(start)
        .doit()
        .await
        .unwrap();
    let records = history.history.unwrap();
    let added: Vec<_> = records
        .iter()
        .flat_map(|h| h.messages_added.clone().unwrap_or_default())
        .collect();
    assert_eq!(added.len(), 1);
    assert_eq!(
        added[0].message.as_ref().unwrap().id.as_deref(),
        Some(imported.as_str())
    );
    assert!(records.iter().any(|h| h
        .labels_added
        .as_ref()
        .is_some_and(|l| l[0].label_ids.as_deref() == Some(&["STARRED".to_owned()][..]))));
    assert!(records
        .iter()
        .any(|h| h.messages_deleted.as_ref().is_some_and(|l| l[0]
            .message
            .as_ref()
            .unwrap()
            .id
            .as_deref()
            == Some(all[2].as_str()))));
    let only_deletes = hub
        .users()
        .history_list("me")
        .start_history_id(start)
        .add_history_types("messageDeleted")
        .doit()
        .await
        .unwrap()
        .1
        .history
        .unwrap();
    assert_eq!(only_deletes.len(), 1);
    let latest = history.history_id.unwrap();
    let (_, quiet) = hub
        .users()
        .history_list("me")
        .start_history_id(latest)
        .doit()
        .await
        .unwrap();
    assert!(
        quiet.history.is_none(),
        "no changes since the latest history id"
    );

    expire_cursors(&sim).await;
    let err = hub
        .users()
        .history_list("me")
        .start_history_id(latest)
        .doit()
        .await
        .unwrap_err();
    match err {
        google_gmail1::Error::BadRequest(v) => assert_eq!(v["error"]["code"], 404),
        other => panic!("expected 404, got {other:?}"),
    }
    sim.stop().await;
}

#[tokio::test]
async fn drive_changes_cover_my_drive_and_shared_drives_with_downloads_and_exports() {
    let sim = start().await;
    let d = domain(&sim).await;
    let t = token(&d, &d.users[0], SCOPES).await.unwrap();
    let hub = drive(&sim, &t);
    let (_, start) = hub
        .changes()
        .get_start_page_token()
        .supports_all_drives(true)
        .doit()
        .await
        .unwrap();
    let start = start.start_page_token.unwrap();

    // Everything: list with all drives.
    let (_, files) = hub
        .files()
        .list()
        .include_items_from_all_drives(true)
        .supports_all_drives(true)
        .page_size(1000)
        .doit()
        .await
        .unwrap();
    let files = files.files.unwrap();
    assert!(
        files
            .iter()
            .any(|f| f.drive_id.as_deref() == Some(d.shared_drive.as_str())),
        "shared drive files listed"
    );
    let binary = files
        .iter()
        .find(|f| f.md5_checksum.is_some() && f.size.unwrap_or(0) > 0)
        .unwrap();
    let (response, _) = hub
        .files()
        .get(binary.id.as_deref().unwrap())
        .supports_all_drives(true)
        .param("alt", "media")
        .doit()
        .await
        .unwrap();
    let bytes = google_drive3::common::to_bytes(response.into_body())
        .await
        .unwrap();
    assert_eq!(bytes.len() as i64, binary.size.unwrap());
    assert_eq!(
        hex::encode(<md5::Md5 as md5::Digest>::digest(&bytes)),
        binary.md5_checksum.clone().unwrap()
    );

    // Google Docs: not downloadable, exportable, and the huge one over the limit.
    let doc = files
        .iter()
        .find(|f| {
            f.mime_type.as_deref() == Some("application/vnd.google-apps.document")
                && f.name.as_deref() == Some("Meeting notes")
        })
        .unwrap();
    let err = hub
        .files()
        .get(doc.id.as_deref().unwrap())
        .param("alt", "media")
        .doit()
        .await
        .unwrap_err();
    assert_eq!(
        bad_request(err)["error"]["errors"][0]["reason"],
        "fileNotDownloadable"
    );
    let docx = "application/vnd.openxmlformats-officedocument.wordprocessingml.document";
    let a = google_drive3::common::to_bytes(
        hub.files()
            .export(doc.id.as_deref().unwrap(), docx)
            .doit()
            .await
            .unwrap()
            .into_body(),
    )
    .await
    .unwrap();
    let b = google_drive3::common::to_bytes(
        hub.files()
            .export(doc.id.as_deref().unwrap(), docx)
            .doit()
            .await
            .unwrap()
            .into_body(),
    )
    .await
    .unwrap();
    assert!(!a.is_empty());
    assert_eq!(a, b, "an export is stable for one version");
    let huge = files
        .iter()
        .find(|f| f.name.as_deref() == Some("Annual report (huge)"))
        .unwrap();
    let err = hub
        .files()
        .export(huge.id.as_deref().unwrap(), docx)
        .doit()
        .await
        .unwrap_err();
    assert_eq!(
        bad_request(err)["error"]["errors"][0]["reason"],
        "exportSizeLimitExceeded"
    );

    // Changes: a multipart upload, a resumable upload, a deletion in the shared drive.
    let created = hub
        .files()
        .create(google_drive3::api::File {
            name: Some("notes.txt".into()),
            ..Default::default()
        })
        .upload(
            std::io::Cursor::new(b"hello drive".to_vec()),
            "text/plain".parse().unwrap(),
        )
        .await
        .unwrap()
        .1;
    let big = vec![3u8; 600_000];
    let resumable = hub
        .files()
        .create(google_drive3::api::File {
            name: Some("big.bin".into()),
            ..Default::default()
        })
        .upload_resumable(
            std::io::Cursor::new(big.clone()),
            "application/octet-stream".parse().unwrap(),
        )
        .await
        .unwrap()
        .1;
    assert_eq!(resumable.size, Some(600_000));
    let shared = files
        .iter()
        .find(|f| f.drive_id.is_some() && f.md5_checksum.is_some())
        .unwrap();
    hub.files()
        .delete(shared.id.as_deref().unwrap())
        .supports_all_drives(true)
        .doit()
        .await
        .unwrap();

    let mut changes = Vec::new();
    let mut token_now = start;
    let new_start = loop {
        let (_, list) = hub
            .changes()
            .list(&token_now)
            .page_size(1)
            .include_items_from_all_drives(true)
            .supports_all_drives(true)
            .doit()
            .await
            .unwrap();
        changes.extend(list.changes.unwrap_or_default());
        match (list.next_page_token, list.new_start_page_token) {
            (Some(next), _) => token_now = next,
            (None, Some(new_start)) => break new_start,
            _ => panic!("a change list ends with a new start token"),
        }
    };
    let ids: BTreeSet<String> = changes.iter().map(|c| c.file_id.clone().unwrap()).collect();
    assert_eq!(ids.len(), changes.len(), "each file once");
    assert!(
        ids.contains(created.id.as_deref().unwrap())
            && ids.contains(resumable.id.as_deref().unwrap())
    );
    let removed = changes.iter().find(|c| c.file_id == shared.id).unwrap();
    assert_eq!(removed.removed, Some(true));
    let (_, quiet) = hub
        .changes()
        .list(&new_start)
        .include_items_from_all_drives(true)
        .supports_all_drives(true)
        .doit()
        .await
        .unwrap();
    assert!(quiet.changes.unwrap_or_default().is_empty());
    // Page tokens die with /_sim/expire-cursors: the client must start over.
    expire_cursors(&sim).await;
    let err = hub
        .changes()
        .list(&new_start)
        .supports_all_drives(true)
        .doit()
        .await
        .unwrap_err();
    assert_eq!(
        bad_request(err)["error"]["errors"][0]["location"],
        "pageToken"
    );
    // Without supportsAllDrives a shared-drive file is not found.
    let other_shared = files
        .iter()
        .find(|f| f.drive_id.is_some() && f.id != shared.id)
        .unwrap();
    assert!(hub
        .files()
        .get(other_shared.id.as_deref().unwrap())
        .doit()
        .await
        .is_err());
    sim.stop().await;
}

#[tokio::test]
async fn calendar_sync_tokens_deliver_changes_and_expire_with_410() {
    let sim = start().await;
    let d = domain(&sim).await;
    let t = token(&d, &d.users[1], SCOPES).await.unwrap();
    let hub = calendar(&sim, &t);
    let (_, list) = hub.calendar_list().list().doit().await.unwrap();
    assert_eq!(
        list.items.unwrap().len(),
        2,
        "primary and a secondary calendar"
    );

    // Full sync in pages of two, with cancelled exceptions shown.
    let mut events = Vec::new();
    let mut page: Option<String> = None;
    let sync = loop {
        let mut call = hub
            .events()
            .list("primary")
            .show_deleted(true)
            .max_results(2);
        if let Some(p) = &page {
            call = call.page_token(p);
        }
        let (_, e) = call.doit().await.unwrap();
        events.extend(e.items.unwrap_or_default());
        match (e.next_page_token, e.next_sync_token) {
            (Some(p), _) => page = Some(p),
            (None, Some(s)) => break s,
            _ => panic!("the last page has a sync token"),
        }
    };
    assert!(events.iter().any(|e| e.recurrence.is_some()));
    assert!(events
        .iter()
        .any(|e| e.status.as_deref() == Some("cancelled") && e.recurring_event_id.is_some()));
    let (_, without) = hub.events().list("primary").doit().await.unwrap();
    assert_eq!(
        without.items.unwrap().len(),
        events.len() - 1,
        "cancelled instances only with showDeleted"
    );

    let start = google_calendar3::api::EventDateTime {
        date_time: Some(chrono::Utc::now()),
        ..Default::default()
    };
    let end = google_calendar3::api::EventDateTime {
        date_time: Some(chrono::Utc::now() + chrono::Duration::hours(1)),
        ..Default::default()
    };
    let (_, created) = hub
        .events()
        .insert(
            google_calendar3::api::Event {
                summary: Some("Inserted".into()),
                start: Some(start.clone()),
                end: Some(end.clone()),
                ..Default::default()
            },
            "primary",
        )
        .send_updates("none")
        .doit()
        .await
        .unwrap();
    let single = events
        .iter()
        .find(|e| e.recurrence.is_none() && e.recurring_event_id.is_none())
        .unwrap();
    hub.events()
        .delete("primary", single.id.as_deref().unwrap())
        .doit()
        .await
        .unwrap();
    // Import twice with one iCalUID: one event.
    for summary in ["Imported v1", "Imported v2"] {
        hub.events()
            .import(
                google_calendar3::api::Event {
                    i_cal_uid: Some("ext-123@example.org".into()),
                    summary: Some(summary.into()),
                    start: Some(start.clone()),
                    end: Some(end.clone()),
                    ..Default::default()
                },
                "primary",
            )
            .doit()
            .await
            .unwrap();
    }

    let (_, delta) = hub
        .events()
        .list("primary")
        .sync_token(&sync)
        .doit()
        .await
        .unwrap();
    let items = delta.items.unwrap();
    assert_eq!(items.len(), 3, "{items:#?}");
    assert!(items.iter().any(|e| e.id == created.id));
    assert!(items
        .iter()
        .any(|e| e.id == single.id && e.status.as_deref() == Some("cancelled")));
    assert!(items
        .iter()
        .any(|e| e.summary.as_deref() == Some("Imported v2")));

    expire_cursors(&sim).await;
    let err = hub
        .events()
        .list("primary")
        .sync_token(delta.next_sync_token.as_deref().unwrap())
        .doit()
        .await
        .unwrap_err();
    match err {
        google_calendar3::Error::BadRequest(v) => {
            assert_eq!(v["error"]["code"], 410);
            assert_eq!(v["error"]["errors"][0]["reason"], "fullSyncRequired");
        }
        other => panic!("expected 410, got {other:?}"),
    }
    sim.stop().await;
}

#[tokio::test]
async fn per_user_rate_limits_answer_with_googles_error_bodies() {
    let sim = start().await;
    let d = domain(&sim).await;
    let t = token(&d, &d.users[1], SCOPES).await.unwrap();
    set_faults(
        &sim,
        json!({ "user_budget": { "requests": 3, "window_ms": 60000 } }),
    )
    .await;
    let url = format!("{}/gmail/v1/users/me/profile", sim.base_url());
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let r = reqwest::Client::new()
            .get(&url)
            .bearer_auth(&t)
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
        if r.status() == 403 {
            let body: Value = r.json().await.unwrap();
            assert_eq!(
                body["error"]["errors"][0]["reason"],
                "userRateLimitExceeded"
            );
            assert_eq!(body["error"]["errors"][0]["domain"], "usageLimits");
        }
    }
    assert_eq!(&statuses[..3], &[200, 200, 200]);
    assert!(statuses[3..].iter().all(|s| *s == 403), "{statuses:?}");
    set_faults(&sim, json!({ "user_budget": null, "throttle_burst": 1 })).await;
    let r = reqwest::Client::new()
        .get(&url)
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["status"], "RESOURCE_EXHAUSTED");
    assert!(stats(&sim).await["throttled"].as_u64().unwrap() >= 3);
    sim.stop().await;
}

/// Deleting a folder logs its files under one change number; a page of
/// `changes.list` never ends inside such a group, or the next page token
/// (a change number) would skip the rest of it.
#[tokio::test]
async fn changes_sharing_one_change_number_are_never_split_across_pages() {
    let sim = start().await;
    let d = domain(&sim).await;
    let t = token(&d, &d.users[0], SCOPES).await.unwrap();
    let http = reqwest::Client::new();
    let api = format!("{}/drive/v3", sim.base_url());
    let create = |body: Value| {
        let (http, t, api) = (http.clone(), t.clone(), api.clone());
        async move {
            let r: Value = http
                .post(format!("{api}/files"))
                .bearer_auth(t)
                .json(&body)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            r["id"].as_str().expect("created").to_owned()
        }
    };
    let folder =
        create(json!({ "name": "Old stuff", "mimeType": "application/vnd.google-apps.folder" }))
            .await;
    let mut doomed = vec![folder.clone()];
    for n in 0..3 {
        doomed.push(create(json!({ "name": format!("note {n}.txt"), "parents": [folder] })).await);
    }
    let start: Value = http
        .get(format!("{api}/changes/startPageToken"))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut token = start["startPageToken"].as_str().unwrap().to_owned();
    // One change before the group, so a page of two would cut into it.
    let before = create(json!({ "name": "unrelated.txt" })).await;
    let r = http
        .delete(format!("{api}/files/{folder}"))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);

    let mut seen = Vec::new();
    loop {
        let page: Value = http
            .get(format!("{api}/changes?pageToken={token}&pageSize=2"))
            .bearer_auth(&t)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for c in page["changes"].as_array().unwrap() {
            seen.push(c["fileId"].as_str().unwrap().to_owned());
        }
        match page["nextPageToken"].as_str() {
            Some(next) => token = next.to_owned(),
            None => break,
        }
    }
    assert!(seen.contains(&before), "{seen:?}");
    for id in &doomed {
        assert!(
            seen.contains(id),
            "the deletion of {id} was reported: {seen:?}"
        );
    }
    sim.stop().await;
}

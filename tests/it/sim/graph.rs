//! Microsoft identity and Graph through graph-rs-sdk (and reqwest where
//! the SDK cannot reach: tokens, redirects, raw status codes).

use std::collections::BTreeSet;

use base64::Engine;
use graph_rs_sdk::header::{HeaderMap, HeaderValue};
use graph_rs_sdk::ODataQuery;
use serde_json::{json, Value};

use super::*;

fn prefer(size: u32) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        "prefer",
        HeaderValue::from_str(&format!("odata.maxpagesize={size}")).unwrap(),
    );
    h
}

/// Every page's `value` items until the round ends; returns the items and
/// the deltaLink.
async fn drain<E: std::fmt::Debug>(
    pages: std::collections::VecDeque<http::Response<Result<Value, E>>>,
) -> (Vec<Value>, Option<String>) {
    let mut items = Vec::new();
    let mut delta = None;
    for page in pages {
        assert!(
            page.status().is_success(),
            "page failed: {:?}",
            page.status()
        );
        let body = page.into_body().expect("JSON page");
        items.extend(body["value"].as_array().unwrap().iter().cloned());
        if let Some(link) = body["@odata.deltaLink"].as_str() {
            delta = Some(link.to_owned());
        }
    }
    (items, delta)
}

async fn first_user(sim: &arkiv_cloud_sim::Simulator) -> String {
    manifest(sim).await["m365"][0]["users"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn admin_consent_redirects_back_with_the_tenant_or_the_refusal() {
    let sim = start().await;
    let m = manifest(&sim).await;
    let t = &m["m365"][0];
    let url = |tenant: &str| {
        format!(
            "{}/{tenant}/adminconsent?client_id={}&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&state=xyz",
            sim.base_url(),
            t["client_id"].as_str().unwrap()
        )
    };
    // Before consent: a token, but Graph refuses it.
    let early = client_credentials(
        &sim,
        t["tenant_id"].as_str().unwrap(),
        t["client_id"].as_str().unwrap(),
        t["client_secret"].as_str().unwrap(),
    )
    .await
    .unwrap();
    let (status, body) = graph_get(&sim, &early, "users").await;
    assert_eq!(status, 403);
    assert_eq!(body["error"]["code"], "Authorization_RequestDenied");

    // A queued refusal, then approval.
    post_json(
        &format!("{}/_sim/consent", sim.base_url()),
        json!({ "tenant": t["domain"], "decision": "deny" }),
    )
    .await;
    let r = no_redirects()
        .get(url(t["domain"].as_str().unwrap()))
        .send()
        .await
        .unwrap();
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        location.starts_with("https://app.example/cb?"),
        "{location}"
    );
    assert!(
        location.contains("error=access_denied") && location.contains("state=xyz"),
        "{location}"
    );

    let r = no_redirects()
        .get(url("organizations") + "&domain_hint=" + t["domain"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    let location = url::Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
    let q: std::collections::HashMap<_, _> = location.query_pairs().into_owned().collect();
    assert_eq!(q["admin_consent"], "True");
    assert_eq!(q["tenant"], t["tenant_id"].as_str().unwrap());
    assert_eq!(q["state"], "xyz");

    let token = client_credentials(
        &sim,
        t["tenant_id"].as_str().unwrap(),
        t["client_id"].as_str().unwrap(),
        t["client_secret"].as_str().unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(graph_get(&sim, &token, "users").await.0, 200);
    sim.stop().await;
}

#[tokio::test]
async fn the_token_endpoint_refuses_a_wrong_secret_and_bad_requests() {
    let sim = start().await;
    let m = manifest(&sim).await;
    let t = &m["m365"][0];
    let (tenant, client) = (
        t["tenant_id"].as_str().unwrap(),
        t["client_id"].as_str().unwrap(),
    );
    let (status, body) = client_credentials(&sim, tenant, client, "wrong")
        .await
        .unwrap_err();
    assert_eq!(status, 401);
    assert_eq!(body["error"], "invalid_client");
    assert!(body["error_description"]
        .as_str()
        .unwrap()
        .starts_with("AADSTS7000215"));
    assert_eq!(body["error_codes"][0], 7000215);
    let (status, body) = client_credentials(&sim, "no-such-tenant.example", client, "x")
        .await
        .unwrap_err();
    assert_eq!(status, 400);
    assert_eq!(body["error"], "invalid_request");
    // Missing and expired tokens: 401 InvalidAuthenticationToken.
    let (status, body) = graph_get(&sim, "not-a-token", "users").await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], "InvalidAuthenticationToken");
    set_faults(&sim, json!({ "token_lifetime_secs": 0 })).await;
    let token = graph_token(&sim).await;
    assert_eq!(
        graph_get(&sim, &token, "users").await.0,
        401,
        "an expired token is refused"
    );
    sim.stop().await;
}

#[tokio::test]
async fn users_page_with_top_and_next_links_to_the_full_listing() {
    let sim = start().await;
    let token = graph_token(&sim).await;
    let client = graph_client(&sim, &token);
    let pages = client
        .users()
        .list_user()
        .top("2")
        .paging()
        .json::<Value>()
        .await
        .unwrap();
    assert!(pages.len() >= 2, "paged in twos: {} pages", pages.len());
    let (paged, _) = drain(pages).await;
    let (_, all) = graph_get(&sim, &token, "users?$top=999").await;
    let all: Vec<&str> = all["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_str().unwrap())
        .collect();
    let paged: Vec<&str> = paged.iter().map(|u| u["id"].as_str().unwrap()).collect();
    assert_eq!(paged, all);
    let (_, selected) = graph_get(&sim, &token, "users?$select=userPrincipalName").await;
    let first = selected["value"][0].as_object().unwrap();
    assert!(
        first.contains_key("id")
            && first.contains_key("userPrincipalName")
            && !first.contains_key("displayName")
    );
    sim.stop().await;
}

#[tokio::test]
async fn mail_folders_nest_and_messages_delta_reports_each_change_once() {
    let sim = start().await;
    let token = graph_token(&sim).await;
    let client = graph_client(&sim, &token);
    let user = first_user(&sim).await;

    let folders: Value = client
        .user(&user)
        .mail_folders()
        .list_mail_folders()
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let inbox = folders["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["displayName"] == "Inbox")
        .unwrap()
        .clone();
    assert_eq!(inbox["childFolderCount"], 1);
    let children: Value = client
        .user(&user)
        .mail_folder("inbox")
        .child_folders()
        .list_child_folders()
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(children["value"][0]["displayName"], "Projects");

    // A full round in pages of two equals the folder's listing.
    let pages = client
        .user(&user)
        .mail_folder("inbox")
        .messages()
        .delta()
        .headers(prefer(2))
        .paging()
        .json::<Value>()
        .await
        .unwrap();
    assert!(pages.len() > 1);
    let (round, delta_link) = drain(pages).await;
    let listed: Value = client
        .user(&user)
        .mail_folder("inbox")
        .messages()
        .list_messages()
        .top("100")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids = |v: &[Value]| {
        v.iter()
            .map(|m| m["id"].as_str().unwrap().to_owned())
            .collect::<BTreeSet<_>>()
    };
    assert_eq!(ids(&round), ids(listed["value"].as_array().unwrap()));
    let delta_link = delta_link.expect("the last page has a deltaLink");
    assert!(
        delta_link.starts_with(&sim.base_url()),
        "absolute links use the simulator's base URL"
    );

    // Nothing changed: an empty round.
    let mut next = client.user(&user).mail_folder("inbox").messages().delta();
    *next.as_mut() = url::Url::parse(&delta_link).unwrap();
    let (changes, delta_link) = drain(next.paging().json::<Value>().await.unwrap()).await;
    assert!(changes.is_empty());

    // A message created from MIME, one deleted, one read.
    let mime = b"From: a@example.com\r\nTo: b@example.com\r\nSubject: New one\r\nMessage-ID: <new1@example.com>\r\nDate: Mon, 2 Nov 2026 10:00:00 +0000\r\n\r\nhello\r\n";
    let created: Value = reqwest::Client::new()
        .post(format!(
            "{}/v1.0/users/{user}/mailFolders/inbox/messages",
            sim.base_url()
        ))
        .bearer_auth(&token)
        .header("content-type", "text/plain")
        .body(base64::engine::general_purpose::STANDARD.encode(mime))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(created["internetMessageId"], "<new1@example.com>");
    let victim = round[0]["id"].as_str().unwrap();
    let r = client
        .user(&user)
        .message(victim)
        .delete_messages()
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let read = round[1]["id"].as_str().unwrap();
    client
        .user(&user)
        .message(read)
        .update_messages(&json!({ "isRead": true }))
        .send()
        .await
        .unwrap();

    let mut next = client.user(&user).mail_folder("inbox").messages().delta();
    *next.as_mut() = url::Url::parse(delta_link.as_deref().unwrap()).unwrap();
    let (changes, _) = drain(next.paging().json::<Value>().await.unwrap()).await;
    assert_eq!(changes.len(), 3, "{changes:#?}");
    assert!(changes
        .iter()
        .any(|c| c["id"] == created["id"] && c["subject"] == "New one"));
    assert!(
        changes
            .iter()
            .any(|c| c["id"] == victim && c["@removed"]["reason"] == "changed"),
        "moved to Deleted Items"
    );
    assert!(changes
        .iter()
        .any(|c| c["id"] == read && c["isRead"] == true));
    sim.stop().await;
}

#[tokio::test]
async fn mime_content_is_the_message_as_rfc_5322() {
    let sim = start().await;
    let token = graph_token(&sim).await;
    let client = graph_client(&sim, &token);
    let user = first_user(&sim).await;
    let listed: Value = client
        .user(&user)
        .messages()
        .list_messages()
        .top("50")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let with_attachment = listed["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["hasAttachments"] == true)
        .expect("a message with an attachment");
    let bytes = client
        .user(&user)
        .message(with_attachment["id"].as_str().unwrap())
        .get_messages_content()
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let parsed = mail_parser::MessageParser::default()
        .parse(&bytes[..])
        .unwrap();
    assert_eq!(
        format!("<{}>", parsed.message_id().unwrap()),
        with_attachment["internetMessageId"].as_str().unwrap()
    );
    assert_eq!(
        parsed.subject().unwrap(),
        with_attachment["subject"].as_str().unwrap()
    );
    assert_eq!(parsed.attachment_count(), 1);
    // Stable: the same bytes every time.
    let again = client
        .user(&user)
        .message(with_attachment["id"].as_str().unwrap())
        .get_messages_content()
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(bytes, again);
    sim.stop().await;
}

#[tokio::test]
async fn calendar_view_delta_expands_series_and_tracks_changes() {
    let sim = start().await;
    let token = graph_token(&sim).await;
    let client = graph_client(&sim, &token);
    let user = first_user(&sim).await;
    let first = client
        .user(&user)
        .calendar_views()
        .delta()
        .append_query_pair("startDateTime", "2026-01-01T00:00:00Z")
        .append_query_pair("endDateTime", "2027-12-31T00:00:00Z");
    let (events, delta_link) = drain(
        first
            .headers(prefer(3))
            .paging()
            .json::<Value>()
            .await
            .unwrap(),
    )
    .await;
    let kinds: BTreeSet<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert!(
        kinds.contains("occurrence")
            && kinds.contains("exception")
            && kinds.contains("singleInstance"),
        "{kinds:?}"
    );
    assert_eq!(
        events
            .iter()
            .filter(|e| e["type"] == "occurrence" || e["type"] == "exception")
            .count(),
        5,
        "6 weekly, one cancelled"
    );

    let created: Value = client
        .user(&user)
        .events()
        .create_events(&json!({
            "subject": "Restore drill",
            "start": { "dateTime": "2026-12-01T10:00:00", "timeZone": "UTC" },
            "end": { "dateTime": "2026-12-01T11:00:00", "timeZone": "UTC" },
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let single = events
        .iter()
        .find(|e| e["type"] == "singleInstance")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        client
            .user(&user)
            .event(&single)
            .delete_events()
            .send()
            .await
            .unwrap()
            .status(),
        204
    );

    let mut next = client.user(&user).calendar_views().delta();
    *next.as_mut() = url::Url::parse(delta_link.as_deref().unwrap()).unwrap();
    let (changes, _) = drain(next.paging().json::<Value>().await.unwrap()).await;
    assert_eq!(changes.len(), 2, "{changes:#?}");
    assert!(changes
        .iter()
        .any(|c| c["id"] == created["id"] && c["subject"] == "Restore drill"));
    assert!(changes
        .iter()
        .any(|c| c["id"] == single.as_str() && c["@removed"]["reason"] == "deleted"));
    sim.stop().await;
}

#[tokio::test]
async fn onedrive_delta_downloads_uploads_and_deletions() {
    let sim = start().await;
    let token = graph_token(&sim).await;
    let client = graph_client(&sim, &token);
    let user = first_user(&sim).await;
    let drive: Value = client
        .user(&user)
        .drive()
        .get_drive()
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let drive_id = drive["id"].as_str().unwrap().to_owned();
    let (items, delta_link) = drain(
        client
            .drive(&drive_id)
            .delta()
            .headers(prefer(3))
            .paging()
            .json::<Value>()
            .await
            .unwrap(),
    )
    .await;
    assert!(items.iter().any(|i| i.get("root").is_some()));
    assert!(items
        .iter()
        .any(|i| i.get("folder").is_some() && i["name"] == "Reports"));
    let files: Vec<&Value> = items.iter().filter(|i| i.get("file").is_some()).collect();
    assert!(files.iter().any(|f| f["size"] == 0), "an empty file");
    for f in &files {
        // The 302 to the pre-authenticated URL is followed; bytes match size and hash.
        let bytes = client
            .drive(&drive_id)
            .item(f["id"].as_str().unwrap())
            .get_items_content()
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_eq!(bytes.len() as u64, f["size"].as_u64().unwrap());
        let mut qx = quickxorhash::QuickXorHash::new();
        qx.update(&bytes);
        assert_eq!(
            base64::engine::general_purpose::STANDARD.encode(qx.finalize()),
            f["file"]["hashes"]["quickXorHash"].as_str().unwrap()
        );
    }
    let content = format!(
        "{}/v1.0/drives/{drive_id}/items/{}/content",
        sim.base_url(),
        files[1]["id"].as_str().unwrap()
    );
    let r = no_redirects()
        .get(&content)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let ranged = reqwest::Client::new()
        .get(&location)
        .header("range", "bytes=0-9")
        .send()
        .await
        .unwrap();
    assert_eq!(
        ranged.status(),
        206,
        "the download URL honours Range without auth"
    );

    // Simple upload, an upload session in two chunks, and a deletion.
    let put = reqwest::Client::new()
        .put(format!(
            "{}/v1.0/drives/{drive_id}/root:/Docs/new.txt:/content",
            sim.base_url()
        ))
        .bearer_auth(&token)
        .body("fresh bytes")
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 201);
    let session: Value = reqwest::Client::new()
        .post(format!(
            "{}/v1.0/drives/{drive_id}/root:/big.bin:/createUploadSession",
            sim.base_url()
        ))
        .bearer_auth(&token)
        .json(&json!({ "item": { "@microsoft.graph.conflictBehavior": "fail" } }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let upload = session["uploadUrl"].as_str().unwrap();
    let data = vec![7u8; 400_000];
    let first = reqwest::Client::new()
        .put(upload)
        .header("content-range", "bytes 0-327679/400000")
        .body(data[..327_680].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), 202);
    let overlap = reqwest::Client::new()
        .put(upload)
        .header("content-range", "bytes 0-9/400000")
        .body(vec![0u8; 10])
        .send()
        .await
        .unwrap();
    assert_eq!(overlap.status(), 416);
    let last = reqwest::Client::new()
        .put(upload)
        .header("content-range", "bytes 327680-399999/400000")
        .body(data[327_680..].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(last.status(), 201);
    let big: Value = last.json().await.unwrap();
    assert_eq!(big["size"], 400_000);
    assert_eq!(
        client
            .drive(&drive_id)
            .item(files[1]["id"].as_str().unwrap())
            .delete_items()
            .send()
            .await
            .unwrap()
            .status(),
        204
    );

    let mut next = client.drive(&drive_id).delta();
    *next.as_mut() = url::Url::parse(delta_link.as_deref().unwrap()).unwrap();
    let (changes, _) = drain(next.paging().json::<Value>().await.unwrap()).await;
    assert!(changes.iter().any(|c| c["name"] == "new.txt"));
    assert!(
        changes
            .iter()
            .any(|c| c["name"] == "Docs" && c.get("folder").is_some()),
        "the created parent folder"
    );
    assert!(changes.iter().any(|c| c["name"] == "big.bin"));
    assert!(changes
        .iter()
        .any(|c| c["id"] == files[1]["id"] && c.get("deleted").is_some()));
    sim.stop().await;
}

#[tokio::test]
async fn expired_delta_tokens_get_the_resync_errors() {
    let sim = start().await;
    let token = graph_token(&sim).await;
    let client = graph_client(&sim, &token);
    let user = first_user(&sim).await;
    let (_, mail_link) = drain(
        client
            .user(&user)
            .mail_folder("inbox")
            .messages()
            .delta()
            .paging()
            .json::<Value>()
            .await
            .unwrap(),
    )
    .await;
    let drive: Value = client
        .user(&user)
        .drive()
        .get_drive()
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (_, drive_link) = drain(
        client
            .drive(drive["id"].as_str().unwrap())
            .delta()
            .paging()
            .json::<Value>()
            .await
            .unwrap(),
    )
    .await;
    expire_cursors(&sim).await;

    let r = reqwest::Client::new()
        .get(mail_link.unwrap())
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 410);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "SyncStateNotFound");
    let r = reqwest::Client::new()
        .get(drive_link.unwrap())
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 410);
    assert!(r.headers().contains_key("location"));
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "resyncRequired");
    assert_eq!(
        body["error"]["innerError"]["code"],
        "resyncChangesApplyDifferences"
    );
    sim.stop().await;
}

#[tokio::test]
async fn a_fifth_concurrent_request_to_a_mailbox_is_throttled_and_early_retries_are_counted() {
    let sim = start().await;
    let token = graph_token(&sim).await;
    let user = first_user(&sim).await;
    set_faults(&sim, json!({ "latency_ms": 300, "retry_after_secs": 2 })).await;
    let url = format!(
        "{}/v1.0/users/{user}/mailFolders/inbox/messages",
        sim.base_url()
    );
    let requests = (0..8)
        .map(|_| {
            let (url, token) = (url.clone(), token.clone());
            tokio::spawn(async move {
                reqwest::Client::new()
                    .get(url)
                    .bearer_auth(token)
                    .send()
                    .await
                    .unwrap()
            })
        })
        .collect::<Vec<_>>();
    let mut throttled = None;
    let mut ok = 0;
    for r in requests {
        let r = r.await.unwrap();
        match r.status().as_u16() {
            200 => ok += 1,
            429 => throttled = Some(r),
            other => panic!("unexpected {other}"),
        }
    }
    assert!(
        (4..8).contains(&ok),
        "{ok} succeeded; stats {}",
        stats(&sim).await
    );
    let throttled = throttled.expect("at least one 429");
    assert_eq!(throttled.headers()["retry-after"], "2");
    let body: Value = throttled.json().await.unwrap();
    assert!(["ApplicationThrottled", "TooManyRequests"]
        .contains(&body["error"]["code"].as_str().unwrap()));
    let s = stats(&sim).await;
    assert!(s["max_concurrency"]
        .as_object()
        .unwrap()
        .values()
        .all(|v| v.as_u64().unwrap() <= 4));
    assert_eq!(
        s["violations"], 0,
        "requests already in flight are not violations"
    );

    // Coming back before Retry-After elapsed is a violation, and throttled again.
    let early = reqwest::Client::new()
        .get(&url)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(early.status(), 429);
    assert_eq!(stats(&sim).await["violations"], 1);
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let later = reqwest::Client::new()
        .get(&url)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        later.status(),
        200,
        "after Retry-After the mailbox answers again"
    );

    set_faults(
        &sim,
        json!({ "latency_ms": 0, "error_rate": 1.0, "retry_after_secs": 1 }),
    )
    .await;
    let unavailable = reqwest::Client::new()
        .get(format!("{}/v1.0/users/{user}/messages", sim.base_url()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(unavailable.status(), 503);
    assert_eq!(unavailable.headers()["retry-after"], "1");
    sim.stop().await;
}

#[tokio::test]
async fn a_mailbox_over_its_request_budget_is_told_when_to_come_back() {
    let sim = start().await;
    let token = graph_token(&sim).await;
    let user = first_user(&sim).await;
    set_faults(
        &sim,
        json!({ "mailbox_budget": { "requests": 3, "window_ms": 3000 } }),
    )
    .await;
    let url = format!("{}/v1.0/users/{user}/mailFolders", sim.base_url());
    for _ in 0..3 {
        assert_eq!(
            reqwest::Client::new()
                .get(&url)
                .bearer_auth(&token)
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
    }
    let r = reqwest::Client::new()
        .get(&url)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    let wait: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (1..=3).contains(&wait),
        "Retry-After {wait}s: until the window frees a slot"
    );
    // Another mailbox is not affected.
    let other = manifest(&sim).await["m365"][0]["users"][1]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = reqwest::Client::new()
        .get(format!("{}/v1.0/users/{other}/mailFolders", sim.base_url()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    tokio::time::sleep(std::time::Duration::from_secs(wait)).await;
    assert_eq!(
        reqwest::Client::new()
            .get(&url)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        stats(&sim).await["violations"],
        0,
        "Retry-After honoured exactly"
    );
    sim.stop().await;
}

/// An initial round lists what exists now on every page: a message deleted
/// after it was served, and one arriving mid-round, shift nothing, so no
/// other message is skipped. The new one comes in the next round.
#[tokio::test]
async fn an_initial_delta_round_skips_nothing_when_the_folder_changes_between_pages() {
    let sim = start().await;
    let token = graph_token(&sim).await;
    let user = first_user(&sim).await;
    let http = reqwest::Client::new();
    let get = |url: String| {
        let (http, token) = (http.clone(), token.clone());
        async move {
            let r = http
                .get(url)
                .bearer_auth(token)
                .header("prefer", "odata.maxpagesize=2")
                .send()
                .await
                .unwrap();
            assert!(r.status().is_success(), "{}", r.status());
            r.json::<Value>().await.unwrap()
        }
    };
    let inbox = format!("{}/v1.0/users/{user}/mailFolders/inbox", sim.base_url());
    let before: BTreeSet<String> = get(format!("{inbox}/messages?$top=999&$select=id")).await
        ["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect();
    assert!(before.len() >= 4, "the tiny inbox has a few messages");

    let first = get(format!("{inbox}/messages/delta")).await;
    let served: Vec<String> = first["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect();
    let next = first["@odata.nextLink"].as_str().expect("more pages");
    assert!(
        next.contains("?$skiptoken="),
        "Graph spells the option literally: {next}"
    );

    // Between pages: a served message is deleted and a new one arrives.
    let deleted = http
        .delete(format!(
            "{}/v1.0/users/{user}/messages/{}",
            sim.base_url(),
            served[0]
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    let created: Value = http
        .post(format!("{inbox}/messages"))
        .bearer_auth(&token)
        .json(&json!({ "subject": "arrived mid-round" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    let mut seen = served.clone();
    let mut page = get(next.to_owned()).await;
    loop {
        seen.extend(
            page["value"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["id"].as_str().unwrap().to_owned()),
        );
        match page["@odata.nextLink"].as_str() {
            Some(link) => page = get(link.to_owned()).await,
            None => break,
        }
    }
    let unique: BTreeSet<String> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), seen.len(), "nothing is served twice");
    assert!(
        before.is_subset(&unique),
        "every message present at the start is served: missing {:?}",
        before.difference(&unique).collect::<Vec<_>>()
    );

    let delta = page["@odata.deltaLink"]
        .as_str()
        .expect("the round ends with a deltaLink");
    let changes = get(delta.to_owned()).await;
    let ids: Vec<&str> = changes["value"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["id"].as_str())
        .collect();
    assert!(
        ids.contains(&created["id"].as_str().unwrap()),
        "the message that arrived mid-round comes in the next round: {changes}"
    );
    sim.stop().await;
}

#[tokio::test]
async fn the_default_calendar_is_listed_and_its_events_are_reachable_through_it() {
    let sim = start().await;
    let token = graph_token(&sim).await;
    let user = first_user(&sim).await;
    let http = reqwest::Client::new();
    let base = format!("{}/v1.0/users/{user}", sim.base_url());
    let calendars: Value = http
        .get(format!("{base}/calendars"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let list = calendars["value"].as_array().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["isDefaultCalendar"], true);
    let cid = list[0]["id"].as_str().unwrap();
    let direct: Value = http
        .get(format!("{base}/events?$top=999"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let through: Value = http
        .get(format!("{base}/calendars/{cid}/events?$top=999"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(direct["value"], through["value"]);
    let unknown = http
        .get(format!("{base}/calendars/AAMkNope/events"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    sim.stop().await;
}

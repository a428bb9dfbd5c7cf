//! Wire-level behaviour the client crates hide: malformed requests get
//! the provider's own error shapes, never a crash.

use base64::Engine;
use serde_json::{json, Value};

use super::*;

#[tokio::test]
async fn malformed_graph_requests_get_graph_errors() {
    let sim = start().await;
    let token = graph_token(&sim).await;
    let user = manifest(&sim).await["m365"][0]["users"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let client = reqwest::Client::new();
    let base = format!("{}/v1.0/users/{user}", sim.base_url());

    let r = client
        .get(format!("{base}/messages?$bogus=1"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("$bogus"));
    assert!(body["error"]["innerError"]["request-id"].is_string());

    let r = client
        .post(format!("{base}/mailFolders/inbox/messages"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = client
        .post(format!("{base}/mailFolders/inbox/messages"))
        .bearer_auth(&token)
        .header("content-type", "text/plain")
        .body("***not base64***")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "ErrorMimeContentInvalidBase64String");
    let r = client
        .post(format!("{base}/mailFolders/inbox/messages"))
        .bearer_auth(&token)
        .header("content-type", "application/xml")
        .body("<x/>")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    let r = client
        .get(format!("{base}/messages/AAMkNOPE"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "ErrorItemNotFound"
    );
    let r = client
        .get(format!(
            "{}/v1.0/users/nobody@nowhere.example/messages",
            sim.base_url()
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = client
        .get(format!(
            "{base}/mailFolders/inbox/messages/delta?$deltatoken=garbage"
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = client
        .get(format!("{base}/calendarView/delta"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "calendarView needs a window");
    let r = client
        .get(format!("{}/v1.0/me/messages", sim.base_url()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "/me needs delegated auth");
    // A user without a mailbox.
    let m = manifest(&sim).await;
    let room = m["m365"][0]["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["has_mailbox"] == false)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = client
        .get(format!("{}/v1.0/users/{room}/mailFolders", sim.base_url()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "MailboxNotEnabledForRESTAPI"
    );
    // Every response carries a request id.
    let r = client
        .get(format!("{base}/messages"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert!(r.headers().contains_key("request-id"));
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json;odata.metadata=minimal"));
    sim.stop().await;
}

#[tokio::test]
async fn malformed_google_requests_get_google_errors() {
    let sim = start().await;
    let m = manifest(&sim).await;
    let d = &m["google"][0];
    let key = yup_oauth2::parse_service_account_key(d["service_account"].to_string()).unwrap();
    let user = d["users"][1]["primaryEmail"].as_str().unwrap().to_owned();
    let auth = yup_oauth2::ServiceAccountAuthenticator::builder(key)
        .subject(user.clone())
        .build()
        .await
        .unwrap();
    let token = auth
        .token(&[
            "https://mail.google.com/",
            "https://www.googleapis.com/auth/drive",
            "https://www.googleapis.com/auth/calendar",
        ])
        .await
        .unwrap()
        .token()
        .unwrap()
        .to_owned();
    let client = reqwest::Client::new();
    let b = sim.base_url();

    let r = client
        .get(format!("{b}/gmail/v1/users/me/messages/nope"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["errors"][0]["reason"], "notFound");
    assert_eq!(body["error"]["status"], "NOT_FOUND");
    let r = client
        .get(format!("{b}/gmail/v1/users/me/messages?maxResults=9999"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = client
        .get(format!("{b}/gmail/v1/users/me/history"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "startHistoryId is required");
    let r = client
        .get(format!("{b}/gmail/v1/users/other@example.org/profile"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        403,
        "another user's mailbox needs their own token"
    );
    let r = client
        .post(format!("{b}/upload/drive/v3/files?uploadType=multipart"))
        .bearer_auth(&token)
        .header("content-type", "multipart/related; boundary=xyz")
        .body("garbage")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = client
        .get(format!("{b}/drive/v3/changes?pageToken=banana"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["errors"][0]["location"],
        "pageToken"
    );
    let r = client
        .get(format!(
            "{b}/calendar/v3/calendars/primary/events?syncToken=x&timeMin=2026-01-01T00:00:00Z"
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = client
        .get(format!("{b}/drive/v3/files"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["errors"][0]["reason"],
        "authError"
    );

    // int64 fields are JSON strings; raw is padded base64url.
    let list: Value = client
        .get(format!("{b}/gmail/v1/users/me/messages"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = list["messages"][0]["id"].as_str().unwrap();
    let msg: Value = client
        .get(format!("{b}/gmail/v1/users/me/messages/{id}?format=raw"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(msg["historyId"].is_string() && msg["internalDate"].is_string());
    let raw = msg["raw"].as_str().unwrap();
    base64::engine::general_purpose::URL_SAFE
        .decode(raw)
        .expect("padded base64url");
    let full: Value = client
        .get(format!(
            "{b}/gmail/v1/users/me/messages/{id}?format=metadata&metadataHeaders=Subject"
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(full["payload"]["headers"].as_array().unwrap().len(), 1);
    sim.stop().await;
}

#[tokio::test]
async fn reset_restores_the_dataset_and_manifest_is_deterministic() {
    let a = start().await;
    let b = start().await;
    let (ma, mb) = (manifest(&a).await, manifest(&b).await);
    assert_eq!(ma["m365"][0]["tenant_id"], mb["m365"][0]["tenant_id"]);
    assert_eq!(ma["google"][0]["users"], mb["google"][0]["users"]);
    let token = graph_token(&a).await;
    let user = ma["m365"][0]["users"][0]["id"].as_str().unwrap().to_owned();
    let (_, before) = graph_get(&a, &token, &format!("users/{user}/messages?$top=100")).await;
    post_json(&format!("{}/_sim/m365/deliver", a.base_url()), json!({ "tenant": ma["m365"][0]["domain"], "user": user, "from": "x@example.org", "subject": "From outside" })).await;
    let (_, after) = graph_get(&a, &token, &format!("users/{user}/messages?$top=100")).await;
    assert_eq!(
        after["value"].as_array().unwrap().len(),
        before["value"].as_array().unwrap().len() + 1
    );
    post_json(&format!("{}/_sim/reset", a.base_url()), json!({})).await;
    let token = graph_token(&a).await;
    let (_, reset) = graph_get(&a, &token, &format!("users/{user}/messages?$top=100")).await;
    assert_eq!(reset["value"], before["value"]);
    a.stop().await;
    b.stop().await;
}

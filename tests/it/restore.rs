//! Find and restore (Microsoft 365): items deleted in the simulator are
//! found in the backup with `arkiv search --deleted`, restored with
//! `arkiv restore`, and checked through Graph; point-in-time restores,
//! exports, refusals and retries. Real PostgreSQL, RabbitMQ and Garage.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use arkiv_cloud_sim::SimConfig;
use arkiv_db::sea_orm::ConnectionTrait;
use reqwest::Method;
use serde_json::Value;

use crate::stack::*;

/// The CLI, as this test's tenant admin (or another token).
fn cli(stack: &Stack, token: &str, args: &[&str]) -> Result<Value, String> {
    arkiv(&stack.api.url, token, args)
}

/// The first words of a subject, enough to find it.
fn words(s: &str) -> String {
    s.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}

async fn first_message(stack: &Stack, user: &str, folder: &str) -> Value {
    let page = stack
        .graph(
            Method::GET,
            &format!("/users/{user}/mailFolders/{folder}/messages?$top=50"),
            None,
        )
        .await;
    page["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["subject"].as_str().is_some_and(|s| !s.is_empty()))
        .cloned()
        .expect("a message with a subject")
}

/// Messages of a folder with this Message-ID.
async fn copies(stack: &Stack, user: &str, folder: &str, message_id: &str) -> Vec<Value> {
    let filter = format!("internetMessageId eq '{}'", message_id.replace('\'', "''"));
    let url = format!(
        "/users/{user}/mailFolders/{folder}/messages?$filter={}",
        urlencode(&filter)
    );
    stack.graph(Method::GET, &url, None).await["value"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

async fn restore_and_wait(stack: &Stack, token: &str, args: &[&str]) -> Value {
    let mut all = vec!["restore"];
    all.extend_from_slice(args);
    all.push("--wait");
    let stack_url = stack.api.url.clone();
    let token = token.to_owned();
    let all: Vec<String> = all.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = all.iter().map(String::as_str).collect();
        arkiv(&stack_url, &token, &args)
    })
    .await
    .unwrap()
    .unwrap_or_else(|e| panic!("restore failed: {e}"))
}

async fn search(stack: &Stack, args: &[&str]) -> Vec<Value> {
    let mut all = vec!["search", "--tenant", stack.org.tenant.as_str()];
    all.extend_from_slice(args);
    let (url, token) = (stack.api.url.clone(), stack.org.tenant_admin.clone());
    let all: Vec<String> = all.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = all.iter().map(String::as_str).collect();
        arkiv(&url, &token, &args)
    })
    .await
    .unwrap()
    .unwrap()
    .as_array()
    .cloned()
    .unwrap()
}

/// A message, a OneDrive file and an event are deleted in Microsoft 365,
/// found in the backup as deleted, restored with the CLI and are back in
/// Graph: the same MIME in the same folder, the same bytes at the same
/// path, the same event. A retried job makes no second copy; support
/// without a grant is refused and audited.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_mail_files_and_events_come_back_where_they_were() {
    let mut stack = Stack::start(SimConfig::tiny(), |_| {}).await;
    stack.run_services().await;
    let (user, upn) = stack.users()[0].clone();

    // What will be deleted, as it is now.
    let message = first_message(&stack, &user, "inbox").await;
    let message_id = message["id"].as_str().unwrap().to_owned();
    let internet_id = message["internetMessageId"].as_str().unwrap().to_owned();
    let subject = message["subject"].as_str().unwrap().to_owned();
    let mime = stack
        .graph_bytes(&format!("/users/{user}/messages/{message_id}/$value"))
        .await;
    // A file big enough for an upload session, in a folder of its own.
    let big: Vec<u8> = (0..6 * 1024 * 1024u32)
        .map(|i| (i * 31 % 251) as u8)
        .collect();
    let uploaded = reqwest::Client::new()
        .put(format!(
            "{}/v1.0/users/{user}/drive/root:/Projects/Q3/plan%20v2.bin:/content",
            stack.sim()
        ))
        .bearer_auth(&stack.graph_token)
        .body(big.clone())
        .send()
        .await
        .unwrap();
    assert!(
        uploaded.status().is_success(),
        "{}",
        uploaded.text().await.unwrap()
    );
    let file: Value = uploaded.json().await.unwrap();
    let file_id = file["id"].as_str().unwrap().to_owned();
    let events = stack
        .graph(Method::GET, &format!("/users/{user}/events?$top=50"), None)
        .await;
    let event = events["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "singleInstance")
        .cloned()
        .expect("a single event");
    let event_id = event["id"].as_str().unwrap().to_owned();

    let first = stack.backup().await;
    assert_eq!(first["status"], "succeeded", "{first}");
    stack
        .graph(
            Method::POST,
            &format!("/users/{user}/messages/{message_id}/permanentDelete"),
            None,
        )
        .await;
    stack
        .graph(
            Method::DELETE,
            &format!("/users/{user}/drive/items/{file_id}"),
            None,
        )
        .await;
    stack
        .graph(
            Method::DELETE,
            &format!("/users/{user}/events/{event_id}"),
            None,
        )
        .await;
    let second = stack.backup().await;
    assert_eq!(second["status"], "succeeded", "{second}");

    // Found, as deleted, by subject, file name and event title.
    let hits = search(
        &stack,
        &["--deleted", "--text", &words(&subject), "--account", &upn],
    )
    .await;
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert_eq!(hits[0]["title"], subject.as_str());
    assert_eq!(hits[0]["workload"], "mail");
    assert!(hits[0]["deleted_at_source"].is_string());
    let mail_item = hits[0]["item_id"].as_str().unwrap().to_owned();
    // Not found among live items, nor in another workload.
    assert!(
        search(&stack, &["--text", &words(&subject), "--workload", "drive"])
            .await
            .is_empty()
    );
    let files = search(
        &stack,
        &["--deleted", "--workload", "drive", "--text", "plan v2"],
    )
    .await;
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(files[0]["path"], "/Projects/Q3/plan v2.bin");
    let file_item = files[0]["item_id"].as_str().unwrap().to_owned();
    let event_title = event["subject"].as_str().unwrap();
    let found = search(
        &stack,
        &["--deleted", "--workload", "calendar", "--text", event_title],
    )
    .await;
    assert_eq!(found.len(), 1, "{found:?}");
    let event_item = found[0]["item_id"].as_str().unwrap().to_owned();

    // Support without a grant may not restore: refused and audited.
    let denied = cli(
        &stack,
        &stack.org.support,
        &["restore", "--item", &mail_item],
    );
    assert!(denied.is_err(), "support restored without a grant");
    let refused = stack
        .count(
            "SELECT count(*) FROM audit_log WHERE chain = 'global' \
             AND action = 'restore.request' AND outcome = 'denied'",
        )
        .await;
    assert_eq!(refused, 1);
    assert_eq!(stack.count("SELECT count(*) FROM restore_jobs").await, 0);

    // Mail: back in the Inbox with identical MIME, once.
    let job = restore_and_wait(&stack, &stack.org.tenant_admin, &["--item", &mail_item]).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["target"], upn.as_str());
    let back = copies(&stack, &user, "inbox", &internet_id).await;
    assert_eq!(back.len(), 1, "{back:?}");
    let restored_id = back[0]["id"].as_str().unwrap();
    let restored_mime = stack
        .graph_bytes(&format!("/users/{user}/messages/{restored_id}/$value"))
        .await;
    assert!(
        restored_mime == mime,
        "the restored MIME differs from the original"
    );
    assert_eq!(back[0]["isRead"], message["isRead"]);

    // A job carried out again after a crash between Graph's write and
    // its record (the item left `started`) finds its copy: no second.
    let job_id = job["job_id"].as_str().unwrap().to_owned();
    stack
        .api
        .db
        .conn
        .execute_unprepared(&format!(
            "UPDATE restore_items SET state = 'started' WHERE job_id = '{job_id}';
             UPDATE restore_jobs SET state = 'running', finished_at = NULL WHERE id = '{job_id}'"
        ))
        .await
        .unwrap();
    redeliver(&stack, &job_id).await;
    let again = await_job(&stack, &job_id).await;
    assert_eq!(again["status"], "succeeded", "{again}");
    assert_eq!(again["items"][0]["state"], "restored");
    assert_eq!(copies(&stack, &user, "inbox", &internet_id).await.len(), 1);
    // And a second request for the same item skips the copy there.
    let skip = restore_and_wait(&stack, &stack.org.tenant_admin, &["--item", &mail_item]).await;
    assert_eq!(skip["items_skipped"], 1, "{skip}");
    assert_eq!(copies(&stack, &user, "inbox", &internet_id).await.len(), 1);

    // OneDrive: the same bytes at the same path (an upload session).
    let job = restore_and_wait(&stack, &stack.org.tenant_admin, &["--item", &file_item]).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let at_path = stack
        .graph(
            Method::GET,
            &format!("/users/{user}/drive/root:/Projects/Q3/plan%20v2.bin"),
            None,
        )
        .await;
    let restored_file = at_path["id"].as_str().unwrap();
    let bytes = stack
        .graph_bytes(&format!(
            "/users/{user}/drive/items/{restored_file}/content"
        ))
        .await;
    assert!(bytes == big, "the restored file differs");
    // Restoring it again with rename writes a second file beside it.
    let renamed = restore_and_wait(
        &stack,
        &stack.org.tenant_admin,
        &["--item", &file_item, "--collision", "rename"],
    )
    .await;
    assert_eq!(renamed["items_done"], 1, "{renamed}");
    let children = stack
        .graph(
            Method::GET,
            &format!("/users/{user}/drive/root:/Projects/Q3:/children"),
            None,
        )
        .await;
    let names: BTreeSet<String> = children["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names.contains("plan v2.bin"));

    // The event: created again with its subject and times.
    let job = restore_and_wait(&stack, &stack.org.tenant_admin, &["--item", &event_item]).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let events = stack
        .graph(Method::GET, &format!("/users/{user}/events?$top=100"), None)
        .await;
    let recreated: Vec<&Value> = events["value"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["subject"] == event["subject"])
        .collect();
    assert_eq!(recreated.len(), 1, "{recreated:?}");
    assert_eq!(recreated[0]["start"], event["start"]);
    assert_eq!(recreated[0]["end"], event["end"]);

    // Every restore is in the tenant's audit chain with its items.
    let finished = stack
        .count(&format!(
            "SELECT count(*) FROM audit_log WHERE tenant_id = '{}' AND action = 'restore.finish' \
             AND details::text LIKE '%{mail_item}%'",
            stack.org.tenant
        ))
        .await;
    assert!(finished >= 2, "{finished}");
}

/// Put a job's message on the restore queue again, as RabbitMQ does for
/// an unacknowledged delivery when its consumer dies.
async fn redeliver(stack: &Stack, job_id: &str) {
    let settings = stack.api.config.settings();
    let broker = arkiv_queue::Broker::connect(settings.rabbitmq().unwrap())
        .await
        .unwrap();
    let publisher = broker.publisher().await.unwrap();
    let tenant: uuid::Uuid = stack.org.tenant.parse().unwrap();
    let message = arkiv_backup::restore::RestoreMessage {
        job_id: job_id.parse().unwrap(),
        tenant_id: tenant,
    };
    arkiv_backup::restore::publish(&broker, &publisher, arkiv_domain::Provider::M365, &message)
        .await
        .unwrap();
}

async fn await_job(stack: &Stack, job_id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (status, job) = stack
            .api
            .get(&stack.org.tenant_admin, &format!("/v1/restores/{job_id}"))
            .await;
        assert_eq!(status, 200, "{job}");
        if !matches!(job["status"].as_str(), Some("queued" | "running")) {
            return job;
        }
        assert!(Instant::now() < deadline, "job still going: {job}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The Message-IDs of a folder's messages.
async fn message_ids(stack: &Stack, user: &str, folder: &str) -> BTreeSet<String> {
    all_pages(
        stack,
        &format!("/users/{user}/mailFolders/{folder}/messages?$top=200"),
    )
    .await
    .iter()
    .map(|m| m["internetMessageId"].as_str().unwrap().to_owned())
    .collect()
}

/// The Message-IDs of a folder's messages and of its subfolders'.
async fn subtree_ids(stack: &Stack, user: &str, folder: &str) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    let mut pending = vec![folder.to_owned()];
    while let Some(f) = pending.pop() {
        ids.extend(message_ids(stack, user, &f).await);
        for child in all_pages(
            stack,
            &format!("/users/{user}/mailFolders/{f}/childFolders?$top=200"),
        )
        .await
        {
            pending.push(child["id"].as_str().unwrap().to_owned());
        }
    }
    ids
}

/// Every Message-ID of a mailbox.
async fn mailbox_ids(stack: &Stack, user: &str) -> BTreeSet<String> {
    all_pages(stack, &format!("/users/{user}/messages?$top=200"))
        .await
        .iter()
        .map(|m| m["internetMessageId"].as_str().unwrap().to_owned())
        .collect()
}

async fn cli_async(stack: &Stack, args: &[&str]) -> Result<Value, String> {
    let (url, token) = (stack.api.url.clone(), stack.org.tenant_admin.clone());
    let all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = all.iter().map(String::as_str).collect();
        arkiv(&url, &token, &args)
    })
    .await
    .unwrap()
}

/// A folder restored as it was at a point in time holds exactly the
/// messages it held then; exports of mail (MBOX and EML), calendar (ICS)
/// and drive (ZIP) parse with standard parsers and their manifests list
/// every item; bad requests are refused, saying what is wrong, and write
/// nothing; a job refused by the target's permissions writes nothing and
/// succeeds once retried.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn point_in_time_restores_and_exports_hold_what_the_account_held() {
    let mut stack = Stack::start(SimConfig::tiny(), |_| {}).await;
    stack.run_services().await;
    let users = stack.users();
    let ((a, a_upn), (b, b_upn)) = (users[0].clone(), users[1].clone());
    let tenant = stack.org.tenant.clone();

    let first = stack.backup().await;
    assert_eq!(first["status"], "succeeded", "{first}");
    // The Inbox and the folders below it, as they are then.
    let then = subtree_ids(&stack, &a, "inbox").await;
    assert!(then.len() >= 2, "{then:?}");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let at = chrono::Utc::now().to_rfc3339();
    tokio::time::sleep(Duration::from_millis(1100)).await;

    // Since then: one message gone for good, one new.
    let gone = first_message(&stack, &a, "inbox").await;
    let gone_internet = gone["internetMessageId"].as_str().unwrap().to_owned();
    stack
        .graph(
            Method::POST,
            &format!(
                "/users/{a}/messages/{}/permanentDelete",
                gone["id"].as_str().unwrap()
            ),
            None,
        )
        .await;
    stack
        .sim_post(
            "/_sim/m365/deliver",
            serde_json::json!({ "tenant": stack.api.manifest["m365"][0]["tenant_id"], "user": a_upn,
                    "from": "later@example.test", "subject": "Arrived after the point in time" }),
        )
        .await;
    let second = stack.backup().await;
    assert_eq!(second["status"], "succeeded", "{second}");
    let now = subtree_ids(&stack, &a, "inbox").await;
    assert_ne!(now, then);

    // Restored into another mailbox as it was then: exactly those.
    let before_b = mailbox_ids(&stack, &b).await;
    let job = restore_and_wait(
        &stack,
        &stack.org.tenant_admin,
        &[
            "--account",
            &a_upn,
            "--workload",
            "mail",
            "--folder",
            "Inbox",
            "--at",
            &at,
            "--to-account",
            &b_upn,
        ],
    )
    .await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["items_total"], then.len(), "{job}");
    assert_eq!(job["target"], b_upn.as_str());
    let after_b = mailbox_ids(&stack, &b).await;
    let restored: BTreeSet<String> = after_b.difference(&before_b).cloned().collect();
    assert_eq!(restored, then, "the folder as it was at {at}");
    assert!(restored.contains(&gone_internet));

    // Exports. Mail as MBOX: every message of the account now, each one
    // a MIME message a standard parser reads.
    let dir = std::env::temp_dir().join(format!("arkiv-export-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = |name: &str| dir.join(name).to_string_lossy().into_owned();
    let all_mail = mailbox_ids(&stack, &a).await;
    let out = cli_async(
        &stack,
        &[
            "export",
            "--tenant",
            &tenant,
            "--account",
            &a_upn,
            "--workload",
            "mail",
            "--format",
            "mbox",
            "--out",
            &path("a.mbox"),
        ],
    )
    .await
    .unwrap();
    assert_eq!(out["items"], all_mail.len(), "{out}");
    let mbox = std::fs::read(path("a.mbox")).unwrap();
    let mut exported = BTreeSet::new();
    for m in mail_parser::mailbox::mbox::MessageIterator::new(&mbox[..]) {
        let m = m.unwrap();
        let parsed = mail_parser::MessageParser::default()
            .parse(m.contents())
            .expect("a MIME message");
        exported.insert(format!("<{}>", parsed.message_id().expect("a Message-ID")));
    }
    assert_eq!(exported, all_mail);

    // As it was then, as a ZIP of EML with its manifests.
    let out = cli_async(
        &stack,
        &[
            "export",
            "--tenant",
            &tenant,
            "--account",
            &a_upn,
            "--workload",
            "mail",
            "--format",
            "eml",
            "--at",
            &at,
            "--out",
            &path("a.zip"),
        ],
    )
    .await
    .unwrap();
    let mut zip = zip::ZipArchive::new(std::fs::File::open(path("a.zip")).unwrap()).unwrap();
    let mut ids = BTreeSet::new();
    let mut emls = 0;
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i).unwrap();
        let name = entry.name().unwrap().into_owned();
        if !name.ends_with(".eml") {
            continue;
        }
        emls += 1;
        let mut raw = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut raw).unwrap();
        let parsed = mail_parser::MessageParser::default().parse(&raw).unwrap();
        ids.insert(format!("<{}>", parsed.message_id().unwrap()));
    }
    assert_eq!(emls, out["items"].as_u64().unwrap() as usize);
    assert!(
        ids.contains(&gone_internet),
        "the export at {at} has the message since deleted"
    );
    assert!(ids.is_superset(&then));
    let manifest: Value = {
        let mut m = zip.by_name("manifest.json").unwrap();
        serde_json::from_reader(&mut m).unwrap()
    };
    assert_eq!(manifest["items"].as_array().unwrap().len(), emls);
    let csv = {
        let mut m = zip.by_name("manifest.csv").unwrap();
        let mut s = String::new();
        std::io::Read::read_to_string(&mut m, &mut s).unwrap();
        s
    };
    assert_eq!(csv.lines().count(), emls + 1, "a header and a row per item");

    // The calendar as iCalendar: every event of the backup.
    let events = search(
        &stack,
        &[
            "--account",
            &a_upn,
            "--workload",
            "calendar",
            "--limit",
            "1000",
        ],
    )
    .await;
    cli_async(
        &stack,
        &[
            "export",
            "--tenant",
            &tenant,
            "--account",
            &a_upn,
            "--workload",
            "calendar",
            "--format",
            "ics",
            "--out",
            &path("a.ics"),
        ],
    )
    .await
    .unwrap();
    let ics = std::fs::read_to_string(path("a.ics")).unwrap();
    let calendar: icalendar::Calendar = ics.parse().expect("valid iCalendar");
    assert_eq!(calendar.events().count(), events.len());
    assert!(!events.is_empty());

    // The drive as a ZIP of its files, byte for byte.
    let src = source(&stack, &a).await;
    let out = cli_async(
        &stack,
        &[
            "export",
            "--tenant",
            &tenant,
            "--account",
            &a_upn,
            "--workload",
            "drive",
            "--format",
            "zip",
            "--out",
            &path("d.zip"),
        ],
    )
    .await
    .unwrap();
    assert_eq!(
        out["items"].as_u64().unwrap() as usize,
        src.files.len() + src.folders.len()
    );
    let mut zip = zip::ZipArchive::new(std::fs::File::open(path("d.zip")).unwrap()).unwrap();
    let manifest: Value = serde_json::from_reader(zip.by_name("manifest.json").unwrap()).unwrap();
    assert_eq!(manifest["items"].as_array().unwrap().len(), src.files.len());
    for id in &src.files {
        let item = stack
            .graph(Method::GET, &format!("/users/{a}/drive/items/{id}"), None)
            .await;
        let bytes = stack
            .graph_bytes(&format!("/users/{a}/drive/items/{id}/content"))
            .await;
        let row = manifest["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["title"] == item["name"])
            .unwrap_or_else(|| panic!("{} in the manifest", item["name"]));
        let mut entry = zip.by_name(row["path"].as_str().unwrap()).unwrap();
        let mut got = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut got).unwrap();
        assert!(got == bytes, "{} in the export", item["name"]);
    }
    // Every export and search is in the tenant's audit chain with the
    // items it touched, and nothing of the query's words.
    let exports = stack
        .count(&format!(
            "SELECT count(*) FROM audit_log WHERE tenant_id = '{tenant}' AND action = 'export' \
             AND details->>'state' = 'succeeded' AND jsonb_array_length(details->'items') > 0"
        ))
        .await;
    assert_eq!(exports, 4, "mbox, eml, ics and zip");
    let searches = stack
        .count(&format!(
            "SELECT count(*) FROM audit_log WHERE tenant_id = '{tenant}' AND action = 'search' \
             AND jsonb_array_length(details->'items') > 0"
        ))
        .await;
    assert!(searches >= 1, "{searches}");

    // A format that does not suit the workload says which do.
    let err = cli_async(
        &stack,
        &[
            "export",
            "--tenant",
            &tenant,
            "--account",
            &a_upn,
            "--workload",
            "drive",
            "--format",
            "mbox",
            "--out",
            &path("x"),
        ],
    )
    .await
    .unwrap_err();
    assert!(err.contains("format") && err.contains("zip"), "{err}");
    assert!(!std::path::Path::new(&path("x")).exists());

    // Bad restores: each says what is wrong; nothing is recorded.
    let jobs = stack.count("SELECT count(*) FROM restore_jobs").await;
    let unknown = uuid::Uuid::new_v4().to_string();
    let err = cli_async(&stack, &["restore", "--item", &unknown])
        .await
        .unwrap_err();
    assert!(err.contains("item not found"), "{err}");
    let item = search(
        &stack,
        &["--account", &a_upn, "--workload", "mail", "--limit", "1"],
    )
    .await[0]["item_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let err = cli_async(&stack, &["restore", "--item", &item, "--version", "9"])
        .await
        .unwrap_err();
    assert!(
        err.contains("version") && err.contains("arkiv versions"),
        "{err}"
    );
    let err = cli_async(
        &stack,
        &[
            "restore",
            "--item",
            &item,
            "--to-account",
            "nobody@nowhere.test",
        ],
    )
    .await
    .unwrap_err();
    assert!(err.contains("to_account"), "{err}");
    let c_upn = users[2].1.clone();
    stack
        .api
        .db
        .conn
        .execute_unprepared(&format!(
            "UPDATE protected_accounts SET removed_at_source = now() WHERE external_id = '{}'",
            users[2].0
        ))
        .await
        .unwrap();
    let err = cli_async(
        &stack,
        &["restore", "--item", &item, "--to-account", &c_upn],
    )
    .await
    .unwrap_err();
    assert!(err.contains("no longer exists"), "{err}");
    assert_eq!(stack.count("SELECT count(*) FROM restore_jobs").await, jobs);

    // A target the app may not write to: the job fails saying so, with
    // nothing written; retried once access is back, it restores once.
    let versions = cli_async(&stack, &["versions", "--item", &item])
        .await
        .unwrap();
    assert_eq!(versions.as_array().unwrap().len(), 1, "{versions}");
    let b_before = mailbox_ids(&stack, &b).await;
    stack
        .sim_post(
            "/_sim/faults",
            serde_json::json!({ "denied_mailboxes": [b] }),
        )
        .await;
    let refused = cli_async(
        &stack,
        &[
            "restore",
            "--item",
            &item,
            "--to-account",
            &b_upn,
            "--collision",
            "rename",
            "--wait",
        ],
    )
    .await
    .unwrap_err();
    assert!(refused.contains("refused access"), "{refused}");
    stack
        .sim_post(
            "/_sim/faults",
            serde_json::json!({ "denied_mailboxes": [] }),
        )
        .await;
    assert_eq!(
        mailbox_ids(&stack, &b).await,
        b_before,
        "nothing was written"
    );
    let job_id = refused
        .split_whitespace()
        .skip_while(|w| *w != "job")
        .nth(1)
        .unwrap()
        .to_owned();
    let retried = cli_async(&stack, &["restore", "retry", "--job", &job_id, "--wait"])
        .await
        .unwrap();
    assert_eq!(retried["status"], "succeeded", "{retried}");
    assert_eq!(retried["items_done"], 1, "{retried}");
    std::fs::remove_dir_all(&dir).unwrap();
}

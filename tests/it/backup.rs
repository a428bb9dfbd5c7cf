//! Microsoft 365 backup end to end: the API starts a run, connector-m365
//! walks the simulator's Graph deltas, the worker stores what it publishes,
//! on real PostgreSQL, RabbitMQ and Garage.

use std::time::{Duration, Instant};

use arkiv_cloud_sim::SimConfig;
use arkiv_db::sea_orm::{ConnectionTrait, DbBackend, Statement};
use arkiv_tests::canary::{
    assert_absent_from_database, assert_absent_from_rabbitmq, assert_absent_from_store, contains,
};
use serde_json::{json, Value};
use tokio::sync::oneshot;
use uuid::Uuid;

use crate::stack::*;

/// A full backup of the demo tenant holds every message (MIME), event
/// (JSON) and file (bytes) once and byte-identical; a second run with no
/// changes creates nothing and costs requests per folder and account, not
/// per item; changes made through Graph come back as exactly those changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn microsoft_365_full_and_incremental_backups_hold_exactly_the_source() {
    let mut stack = Stack::start(SimConfig::demo(), |_| {}).await;
    stack.run_services().await;

    let run = stack.backup().await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["errors"], 0, "{run}");

    let mut expected_items = 0i64;
    let mut folders_total = 0usize;
    let mut with_mail = Vec::new();
    for (user, upn) in stack.users() {
        let src = source(&stack, &user).await;
        if src.messages.len() >= 3 && !src.events.is_empty() && !src.files.is_empty() {
            with_mail.push((user.clone(), upn.clone()));
        }
        folders_total += src.mail_folders;
        expected_items +=
            (src.messages.len() + src.events.len() + src.files.len() + src.folders.len()) as i64;
        for id in &src.messages {
            let mime = stack
                .graph_bytes(&format!("/users/{user}/messages/{id}/$value"))
                .await;
            assert!(
                stack.stored("mail", id).await == mime,
                "message {id} of {user}"
            );
        }
        for event in &src.events {
            let id = event["id"].as_str().unwrap();
            let stored: Value =
                serde_json::from_slice(&stack.stored("calendar", id).await).unwrap();
            assert_eq!(plain(stored), plain(event.clone()), "event {id}");
        }
        for id in &src.files {
            let bytes = stack
                .graph_bytes(&format!("/users/{user}/drive/items/{id}/content"))
                .await;
            assert!(
                stack.stored("drive", id).await == bytes,
                "file {id} of {user}"
            );
        }
    }
    assert_eq!(
        stack.count("SELECT count(*) FROM items").await,
        expected_items,
        "one item per message, event, file and folder"
    );
    assert_eq!(
        stack.count("SELECT count(*) FROM item_versions").await,
        expected_items,
        "one version each"
    );
    assert_eq!(run["new_versions"], expected_items, "{run}");

    // Nothing changed: no versions, and requests per folder and account.
    let before = stack.stats().await["total_requests"].as_u64().unwrap();
    let again = stack.backup().await;
    assert_eq!(again["status"], "succeeded", "{again}");
    assert_eq!(again["new_versions"], 0, "{again}");
    let requests = stack.stats().await["total_requests"].as_u64().unwrap() - before;
    let accounts = stack.users().len();
    let bound = (folders_total * 2 + accounts * 4 + 4) as u64;
    assert!(
        requests <= bound,
        "a no-change run made {requests} requests; folders {folders_total}, accounts {accounts}"
    );
    assert!(
        requests < expected_items as u64 / 2,
        "{requests} requests for {expected_items} items"
    );

    // Changes through Graph.
    let (a, a_upn) = with_mail[0].clone();
    let (b, _) = with_mail[1].clone();
    stack
        .sim_post(
            "/_sim/m365/deliver",
            json!({ "tenant": stack.api.manifest["m365"][0]["tenant_id"], "user": a_upn,
                    "from": "new.sender@example.test", "subject": "Added between runs", "body": "hello" }),
        )
        .await;
    let b_messages = source(&stack, &b).await.messages;
    let (edited, moved, deleted) = (&b_messages[0], &b_messages[1], &b_messages[2]);
    stack
        .graph(
            reqwest::Method::PATCH,
            &format!("/users/{b}/messages/{edited}"),
            Some(json!({ "isRead": true, "subject": "Edited between runs" })),
        )
        .await;
    let archive = stack
        .graph(
            reqwest::Method::GET,
            &format!("/users/{b}/mailFolders/archive"),
            None,
        )
        .await;
    stack
        .graph(
            reqwest::Method::POST,
            &format!("/users/{b}/messages/{moved}/move"),
            Some(json!({ "destinationId": archive["id"] })),
        )
        .await;
    stack
        .graph(
            reqwest::Method::POST,
            &format!("/users/{b}/messages/{deleted}/permanentDelete"),
            None,
        )
        .await;
    let a_source = source(&stack, &a).await;
    let event = a_source
        .events
        .iter()
        .find(|e| e.get("seriesMasterId").is_none())
        .expect("a single event")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    stack
        .graph(
            reqwest::Method::PATCH,
            &format!("/users/{a}/events/{event}"),
            Some(json!({ "subject": "Moved to Thursday" })),
        )
        .await;
    let gone_file = a_source.files[0].clone();
    stack.delete_drive_item(&a, &gone_file).await;
    let response = reqwest::Client::new()
        .put(format!(
            "{}/v1.0/users/{a}/drive/root:/added-between-runs.txt:/content",
            stack.sim()
        ))
        .bearer_auth(&stack.graph_token)
        .body("a new file")
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
    let added_file: Value = response.json().await.unwrap();

    let third = stack.backup().await;
    assert_eq!(third["status"], "succeeded", "{third}");
    // Added mail, edited mail, moved mail, edited event, added file.
    assert_eq!(third["new_versions"], 5, "{third}");
    assert_eq!(
        stack.version("mail", moved).await.unwrap().1,
        None,
        "a moved message is not deleted"
    );
    assert!(
        stack.version("mail", deleted).await.unwrap().1.is_some(),
        "deleted at source"
    );
    assert!(
        stack
            .version("drive", &gone_file)
            .await
            .unwrap()
            .1
            .is_some(),
        "deleted file"
    );
    assert_eq!(
        stack
            .stored("drive", added_file["id"].as_str().unwrap())
            .await,
        b"a new file"
    );
    let edited_mime = stack
        .graph_bytes(&format!("/users/{b}/messages/{edited}/$value"))
        .await;
    assert!(stack.stored("mail", edited).await == edited_mime);
    assert_eq!(
        stack.count("SELECT count(*) FROM item_versions").await,
        expected_items + 5
    );
    arkiv_tests::seed::assert_refcounts_exact(&stack.api.db.conn).await;
}

/// Expired delta tokens resync without duplicates; a storm of 429s is
/// waited out to the second with no Retry-After violation; bursts of 503s
/// are retried; every run still succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_tokens_throttling_and_server_errors_do_not_break_a_run() {
    let mut stack = Stack::start(SimConfig::tiny(), |_| {}).await;
    stack.run_services().await;
    let (user, _) = stack.users()[0].clone();
    let doomed = stack
        .graph(
            reqwest::Method::POST,
            &format!("/users/{user}/mailFolders"),
            Some(json!({ "displayName": "Doomed" })),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let in_doomed = stack
        .graph(
            reqwest::Method::POST,
            &format!("/users/{user}/mailFolders/{doomed}/messages"),
            Some(json!({ "subject": "In a folder about to go",
                         "body": { "contentType": "text", "content": "soon gone" } })),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let first = stack.backup().await;
    assert_eq!(first["status"], "succeeded", "{first}");
    let versions = stack.count("SELECT count(*) FROM item_versions").await;
    assert!(versions > 20);
    let deleted = "SELECT count(*) FROM items WHERE deleted_at_source IS NOT NULL";
    let deleted_before = stack.count(deleted).await;
    assert_eq!(stack.version("mail", &in_doomed).await.unwrap().1, None);

    // While the delta tokens expire, a folder goes, and with it its
    // message, and a message and a file are deleted for good: no delta
    // will ever report these one by one.
    let source = source(&stack, &user).await;
    let (gone_message, gone_file) = (
        source
            .messages
            .iter()
            .find(|m| **m != in_doomed)
            .unwrap()
            .clone(),
        source.files[0].clone(),
    );
    stack
        .graph(
            reqwest::Method::POST,
            &format!("/users/{user}/messages/{gone_message}/permanentDelete"),
            None,
        )
        .await;
    stack
        .graph(
            reqwest::Method::DELETE,
            &format!("/users/{user}/drive/items/{gone_file}"),
            None,
        )
        .await;
    stack
        .graph(
            reqwest::Method::DELETE,
            &format!("/users/{user}/mailFolders/{doomed}"),
            None,
        )
        .await;

    // Expired cursors: everything is listed again, nothing is new, and
    // what the new listing lacks is marked deleted at source.
    let r = reqwest::Client::new()
        .post(format!("{}/_sim/expire-cursors", stack.sim()))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let resync = stack.backup().await;
    assert_eq!(resync["status"], "succeeded", "{resync}");
    assert_eq!(resync["new_versions"], 0, "{resync}");
    assert!(
        resync["items"].as_i64().unwrap() >= versions - 3,
        "{resync}"
    );
    assert_eq!(
        stack.count("SELECT count(*) FROM item_versions").await,
        versions
    );
    for (workload, id) in [
        ("mail", &in_doomed),
        ("mail", &gone_message),
        ("drive", &gone_file),
    ] {
        assert!(
            stack.version(workload, id).await.unwrap().1.is_some(),
            "{workload} item {id} is marked deleted at source"
        );
    }
    assert_eq!(
        stack.count(deleted).await,
        deleted_before + 3,
        "nothing else is marked deleted"
    );
    assert_eq!(
        stack
            .count(&format!(
                "SELECT count(*) FROM cursors WHERE scope = '{doomed}'"
            ))
            .await,
        0,
        "the gone folder's cursor is dropped once it is swept"
    );

    // A throttling storm.
    stack
        .sim_post(
            "/_sim/faults",
            json!({ "throttle_burst": 25, "retry_after_secs": 1 }),
        )
        .await;
    let (_, upn) = stack.users()[0].clone();
    stack
        .sim_post(
            "/_sim/m365/deliver",
            json!({ "tenant": stack.api.manifest["m365"][0]["tenant_id"], "user": upn,
                    "from": "storm@example.test", "subject": "During the storm" }),
        )
        .await;
    let stormy = stack.backup().await;
    assert_eq!(stormy["status"], "succeeded", "{stormy}");
    assert_eq!(stormy["new_versions"], 1, "{stormy}");
    assert!(stormy["throttled_ms"].as_i64().unwrap() >= 1000, "{stormy}");
    let stats = stack.stats().await;
    assert!(stats["throttled"].as_u64().unwrap() >= 25, "{stats}");
    assert_eq!(stats["violations"], 0, "Retry-After honoured: {stats}");
    for (mailbox, n) in stats["max_concurrency"].as_object().unwrap() {
        assert!(n.as_u64().unwrap() <= 4, "{mailbox}: {n} in flight");
    }

    // 503 bursts.
    stack
        .sim_post(
            "/_sim/faults",
            json!({ "throttle_burst": 0, "error_rate": 0.15, "retry_after_secs": 1 }),
        )
        .await;
    let flaky = stack.backup().await;
    stack
        .sim_post("/_sim/faults", json!({ "error_rate": 0.0 }))
        .await;
    assert_eq!(flaky["status"], "succeeded", "{flaky}");
    assert_eq!(flaky["new_versions"], 0, "{flaky}");
    assert_eq!(stack.stats().await["violations"], 0);
}

/// kill -9 of the worker and, separately, of the connector in the middle
/// of a run: the run still ends with every item present once and every
/// pack whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_worker_and_connector_mid_run_leave_every_item_once() {
    let stack = Stack::start(SimConfig::demo(), |_| {}).await;
    // Slow Graph down so that the run is still going when we strike.
    stack
        .sim_post("/_sim/faults", json!({ "latency_ms": 15 }))
        .await;
    let config = stack.api.config.write();
    let log = arkiv_tests::ConfigFile::with_contents("kill-log", "");
    let mut worker = Process::spawn("arkiv-worker", &config.path, &log.path);
    let mut connector = Process::spawn("arkiv-connector-m365", &config.path, &log.path);

    let started = stack
        .api
        .ok(
            &stack.org.tenant_admin,
            &format!("/v1/tenants/{}/backups", stack.org.tenant),
            json!({}),
        )
        .await;
    let run_id = started["runs"][0]["run_id"].as_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    worker.kill();
    worker = Process::spawn("arkiv-worker", &config.path, &log.path);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    connector.kill();
    connector = Process::spawn("arkiv-connector-m365", &config.path, &log.path);

    let run = stack.await_run(&run_id, Duration::from_secs(300)).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    let items = stack.count("SELECT count(*) FROM items").await;
    let mut expected = 0i64;
    for (user, _) in stack.users() {
        let src = source(&stack, &user).await;
        expected +=
            (src.messages.len() + src.events.len() + src.files.len() + src.folders.len()) as i64;
    }
    assert_eq!(items, expected, "every item: {run}");
    assert_eq!(
        stack.count("SELECT count(*) FROM item_versions").await,
        expected,
        "once"
    );
    let rows = stack
        .api
        .db
        .conn
        .query_all(Statement::from_string(
            DbBackend::Postgres,
            "SELECT region, object_key, size FROM packs",
        ))
        .await
        .unwrap();
    for row in rows {
        let region: String = row.try_get_by_index(0).unwrap();
        let key: String = row.try_get_by_index(1).unwrap();
        let size: i64 = row.try_get_by_index(2).unwrap();
        let body = stack
            .store
            .get(&region.parse().unwrap(), &key)
            .await
            .unwrap();
        assert_eq!(body.len() as i64, size, "pack {key} is whole");
    }
    arkiv_tests::seed::assert_refcounts_exact(&stack.api.db.conn).await;
    worker.kill();
    connector.kill();
}

/// A canary in a subject, a body, an attachment name and a file name is
/// nowhere in S3, PostgreSQL, RabbitMQ's data or the services' logs; and a
/// 1 MB attachment sent to ten users is stored about once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canaries_stay_sealed_and_a_shared_attachment_is_stored_once() {
    let dataset = SimConfig {
        spec: arkiv_cloud_sim::DatasetSpec::bench(12, 2, (2_000, 5_000), 1, (1_000, 2_000)),
        seed: 7,
    };
    let stack = Stack::start(dataset, |c| {
        c.set(
            "log.filter",
            "debug,sqlx=debug,lapin=info,h2=info,hyper=info",
        );
    })
    .await;
    let config = stack.api.config.write();
    let log = arkiv_tests::ConfigFile::with_contents("canary-log", "");
    let worker = Process::spawn("arkiv-worker", &config.path, &log.path);
    let connector = Process::spawn("arkiv-connector-m365", &config.path, &log.path);
    let run = stack.backup().await;
    assert_eq!(run["status"], "succeeded", "{run}");

    let tenant = stack.api.manifest["m365"][0]["tenant_id"].clone();
    let stored_before = stack.count("SELECT sum(size)::bigint FROM packs").await;
    let mut attachment = vec![0u8; 1024 * 1024];
    rand::RngCore::fill_bytes(
        &mut <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(19),
        &mut attachment,
    );
    use base64::Engine as _;
    let attachment = base64::engine::general_purpose::STANDARD.encode(&attachment);
    // Ten users with a mailbox (an unlicensed user has none).
    let mut mailboxes = Vec::new();
    for (user, upn) in stack.users() {
        if mailboxes.len() == 10 {
            break;
        }
        let delivered = stack
            .sim_try(
                "/_sim/m365/deliver",
                json!({ "tenant": tenant, "user": upn, "from": "finance@example.test",
                        "subject": "Quarterly report", "body": "See attached.",
                        "attachment": { "name": "report.bin", "content_type": "application/octet-stream", "content": attachment } }),
            )
            .await;
        if delivered.status().is_success() {
            mailboxes.push((user, upn));
        }
    }
    assert_eq!(mailboxes.len(), 10);
    let shared = stack.backup().await;
    assert_eq!(shared["new_versions"], 10, "{shared}");
    let added = stack.count("SELECT sum(size)::bigint FROM packs").await - stored_before;
    assert!(
        added < 1_300_000,
        "a 1 MB attachment in 10 mailboxes added {added} bytes"
    );

    let canary = format!("CANARY{}", Uuid::new_v4().simple());
    let (user, upn) = mailboxes[3].clone();
    stack
        .sim_post(
            "/_sim/m365/deliver",
            json!({ "tenant": tenant, "user": upn, "from": "someone@example.test",
                    "subject": format!("Subject {canary}"), "body": format!("Body {canary} body"),
                    "attachment": { "name": format!("{canary}.txt"), "content_type": "text/plain",
                                    "content": base64::engine::general_purpose::STANDARD.encode(format!("attached {canary}")) } }),
        )
        .await;
    let response = reqwest::Client::new()
        .put(format!(
            "{}/v1.0/users/{user}/drive/root:/{canary}.docx:/content",
            stack.sim()
        ))
        .bearer_auth(&stack.graph_token)
        .body(format!("file body {canary}"))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
    let uploaded: Value = response.json().await.unwrap();
    let with_canary = stack.backup().await;
    assert_eq!(with_canary["status"], "succeeded", "{with_canary}");
    assert_eq!(with_canary["new_versions"], 2, "{with_canary}");

    // It is all there, sealed: the reader gives the canary back.
    assert_eq!(
        stack
            .stored("drive", uploaded["id"].as_str().unwrap())
            .await,
        format!("file body {canary}").into_bytes()
    );

    let broker = arkiv_queue::Broker::connect(stack.api.config.settings().rabbitmq().unwrap())
        .await
        .unwrap();
    worker.kill();
    connector.kill();

    let objects = assert_absent_from_store(&stack.store, &canary).await;
    assert!(objects > 0, "the packs were listed");
    assert_absent_from_database(&stack.api.db.url, &stack.org.tenant, &canary);
    assert_absent_from_rabbitmq(&broker, &canary).await;
    let logs = std::fs::read(&log.path).unwrap();
    assert!(contains(&logs, b"run finished"), "the services logged");
    assert!(!contains(&logs, canary.as_bytes()), "service logs");
}

/// The scheduler starts a due connection's run once, however many
/// instances run side by side, and sets the next one `schedule_minutes`
/// on; a connection overdue after downtime is given a moment within the
/// catch-up window instead of starting at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scheduler_starts_due_runs_once_and_spreads_overdue_ones() {
    let mut stack = Stack::start(SimConfig::tiny(), |c| {
        c.set("scheduler.tick_secs", 1);
        c.set("scheduler.catch_up_window_secs", 3600);
    })
    .await;
    stack.run_services().await;
    let connection = "(SELECT id FROM connections WHERE provider = 'm365')";
    let db = &stack.api.db.conn;
    let exec = |sql: String| async move {
        db.execute_unprepared(&sql).await.unwrap();
    };
    // Not due yet: nothing happens.
    exec(format!(
        "UPDATE connections SET next_run_at = now() + interval '1 hour' WHERE id = {connection}"
    ))
    .await;
    for _ in 0..2 {
        let settings = stack.api.config.settings();
        let scheduler = arkiv_scheduler::Application::build(&settings)
            .await
            .unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(scheduler.run_until_stopped(async move {
            let _ = rx.await;
        }));
        stack.stops.push(tx);
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let scheduled = "SELECT count(*) FROM runs WHERE trigger = 'schedule'";
    assert_eq!(stack.count(scheduled).await, 0, "nothing was due");

    // Due now: one run, by one of the two instances, and the next in 4 h.
    exec(format!(
        "UPDATE connections SET next_run_at = now() WHERE id = {connection}"
    ))
    .await;
    let deadline = Instant::now() + Duration::from_secs(240);
    let run_id = loop {
        let id = arkiv_tests::seed::text(
            db,
            "SELECT max(id::text) FROM runs WHERE trigger = 'schedule'",
            vec![],
        )
        .await;
        if !id.is_empty() {
            break id;
        }
        assert!(Instant::now() < deadline, "no scheduled run started");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let run = stack.await_run(&run_id, Duration::from_secs(240)).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert!(run["new_versions"].as_i64().unwrap() > 20, "{run}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(stack.count(scheduled).await, 1, "started once");
    let minutes_ahead = format!(
        "SELECT (extract(epoch FROM next_run_at - now()) / 60)::bigint FROM connections WHERE id = {connection}"
    );
    let ahead = stack.count(&minutes_ahead).await;
    assert!((235..=240).contains(&ahead), "next run in {ahead} minutes");

    // Overdue by a day (the scheduler was down): not started at once, but
    // given a moment within the hour.
    exec(format!(
        "UPDATE connections SET next_run_at = now() - interval '1 day' WHERE id = {connection}"
    ))
    .await;
    let seconds_ahead = format!(
        "SELECT extract(epoch FROM next_run_at - now())::bigint FROM connections WHERE id = {connection}"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while stack.count(&seconds_ahead).await < -3600 {
        assert!(
            Instant::now() < deadline,
            "the overdue connection was not seen"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let ahead = stack.count(&seconds_ahead).await;
    assert!((-2..=3600).contains(&ahead), "caught up in {ahead} s");
    assert_eq!(stack.count(scheduled).await, 1, "not started at once");
}

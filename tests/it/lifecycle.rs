//! The data lifecycle (issue 9) on real PostgreSQL, RabbitMQ, Garage and
//! the simulator: retention, purges at subscription end, erasure requests,
//! garbage collection racing a backup, and kill -9 during a purge and
//! during garbage collection.
//!
//! Passes of the lifecycle run in this process at the times a
//! `ManualClock` says (48 hours or 90 days on, in a moment), or as the
//! `arkiv-scheduler` service where a test kills it.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use arkiv_cloud_sim::{DatasetSpec, SimConfig};
use arkiv_db::sea_orm::{ConnectionTrait, DbBackend, Statement};
use arkiv_scheduler::clock::{Clock, ManualClock};
use arkiv_scheduler::gc::{self, Policy};
use arkiv_scheduler::lifecycle::Lifecycle;
use arkiv_tests::seed::scalar;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::sync::oneshot;
use uuid::Uuid;

use crate::stack::{arkiv, source, Process, Stack};

/// The tenant's region, as the store names it.
fn region(stack: &Stack) -> arkiv_domain::Region {
    stack.api.config.settings().regions().unwrap()[0].clone()
}

async fn lifecycle(stack: &Stack) -> Lifecycle {
    Lifecycle::connect(&stack.api.config.settings())
        .await
        .unwrap()
}

fn cli(stack: &Stack, token: &str, args: &[&str]) -> Result<Value, String> {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    arkiv(&stack.api.url, token, &all)
}

async fn ids(stack: &Stack, sql: &str, values: Vec<arkiv_db::sea_orm::Value>) -> Vec<Uuid> {
    stack
        .api
        .db
        .conn
        .query_all(Statement::from_sql_and_values(
            DbBackend::Postgres,
            sql,
            values,
        ))
        .await
        .unwrap()
        .iter()
        .map(|r| r.try_get_by_index::<Uuid>(0).unwrap())
        .collect()
}

/// Every version in the index reads back whole (each chunk's keyed hash
/// and GCM tag verified), and every chunk's count is its references.
async fn everything_reads_back(stack: &Stack) {
    arkiv_tests::seed::assert_refcounts_exact(&stack.api.db.conn).await;
    for version in ids(stack, "SELECT id FROM item_versions", vec![]).await {
        stack
            .reader
            .read_all(version)
            .await
            .unwrap_or_else(|e| panic!("version {version} does not read back: {e}"));
    }
    // And every pack the index names is in S3.
    let region = region(stack);
    for key in arkiv_tests::seed::texts(
        &stack.api.db.conn,
        "SELECT DISTINCT p.object_key FROM packs p JOIN chunks c ON c.pack_id = p.id",
    )
    .await
    {
        assert!(
            stack.store.exists(&region, &key).await.unwrap(),
            "pack {key} is named by the index but not in S3"
        );
    }
}

/// The scheduler started here starts no backup of its own: these tests
/// start theirs.
async fn no_scheduled_runs(stack: &Stack) {
    stack
        .api
        .db
        .conn
        .execute_unprepared("UPDATE connections SET next_run_at = now() + interval '1 day'")
        .await
        .unwrap();
}

/// Include (back up) or exclude an account through the API.
async fn set_included(stack: &Stack, account: impl std::fmt::Display, included: bool) {
    let (status, body) = stack
        .api
        .call(
            &stack.org.tenant_admin,
            reqwest::Method::PATCH,
            &format!("/v1/accounts/{account}"),
            Some(json!({ "included": included })),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

/// Each of `actions` is in the tenant's audit chain.
async fn assert_audited(
    db: &arkiv_db::sea_orm::DatabaseConnection,
    tenant: &str,
    actions: &[&str],
) {
    let logged = arkiv_tests::seed::texts(
        db,
        &format!("SELECT action FROM audit_log WHERE tenant_id = '{tenant}' ORDER BY seq"),
    )
    .await;
    for action in actions {
        assert!(logged.iter().any(|a| a == action), "{action} in {logged:?}");
    }
}

/// A user with at least two messages and two files.
async fn busy_user(stack: &Stack) -> (String, String) {
    for (user, upn) in stack.users() {
        let src = source(stack, &user).await;
        if src.messages.len() >= 2 && src.files.len() >= 2 {
            return (user, upn);
        }
    }
    panic!("no user with two messages and two files");
}

async fn put_file(stack: &Stack, user: &str, item: &str, body: &'static str) {
    let response = reqwest::Client::new()
        .put(format!(
            "{}/v1.0/users/{user}/drive/items/{item}/content",
            stack.sim()
        ))
        .bearer_auth(&stack.graph_token)
        .body(body)
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());
}

/// Retention: a version superseded longer ago than the policy keeps, and an
/// item deleted at the source longer ago than it keeps, leave the index and
/// free their chunks; what the policy keeps still reads back and restores.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_expires_exactly_the_versions_past_the_policy() {
    let mut stack = Stack::start(SimConfig::tiny(), |_| {}).await;
    stack.run_services().await;
    let first = stack.backup().await;
    assert_eq!(first["status"], "succeeded", "{first}");

    let (user, _) = busy_user(&stack).await;
    let src = source(&stack, &user).await;
    let (edited_mail, deleted_mail) = (src.messages[0].clone(), src.messages[1].clone());
    // Files with content (an empty file has no chunk to free).
    let mut files = Vec::new();
    for id in &src.files {
        let item = stack
            .graph(
                reqwest::Method::GET,
                &format!("/users/{user}/drive/items/{id}"),
                None,
            )
            .await;
        if item["size"].as_u64().unwrap_or(0) > 0 {
            files.push(id.clone());
        }
    }
    assert!(files.len() >= 2, "{user} has two files with content");
    let (edited_file, deleted_file) = (files[0].clone(), files[1].clone());
    let deleted_mime = stack.stored("mail", &deleted_mail).await;
    stack
        .graph(
            reqwest::Method::PATCH,
            &format!("/users/{user}/messages/{edited_mail}"),
            Some(json!({ "subject": "Edited before the policy" })),
        )
        .await;
    put_file(&stack, &user, &edited_file, "the file, edited").await;
    stack
        .graph(
            reqwest::Method::POST,
            &format!("/users/{user}/messages/{deleted_mail}/permanentDelete"),
            None,
        )
        .await;
    stack.delete_drive_item(&user, &deleted_file).await;
    let second = stack.backup().await;
    assert_eq!(second["status"], "succeeded", "{second}");
    assert_eq!(second["new_versions"], 2, "{second}");
    let versions_of = |source_id: String| {
        let stack = &stack;
        async move {
            scalar(
                &stack.api.db.conn,
                "SELECT count(*) FROM item_versions v JOIN items i ON i.id = v.item_id
                  WHERE i.source_id = $1",
                vec![source_id.into()],
            )
            .await
        }
    };
    assert_eq!(versions_of(edited_mail.clone()).await, 2);
    assert_eq!(versions_of(edited_file.clone()).await, 2);

    // Mail: versions 30 days, deleted items 90 days. Drive: versions 7
    // days, deleted files forever.
    let policy = json!({ "keep_versions_days": 30, "keep_deleted_days": 90,
        "overrides": { "drive": { "keep_versions_days": 7, "keep_deleted_days": null } } });
    let (status, body) = stack
        .api
        .call(
            &stack.org.tenant_admin,
            reqwest::Method::PUT,
            &format!("/v1/tenants/{}/retention", stack.org.tenant),
            Some(policy),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    let lifecycle = lifecycle(&stack).await;
    let clock = ManualClock::new();
    let versions_total = "SELECT count(*) FROM item_versions";
    let before = stack.count(versions_total).await;
    let pass = lifecycle.pass(clock.now()).await.unwrap();
    assert!(pass.led);
    assert_eq!(pass.expired.versions, 0, "nothing is old yet: {pass:?}");

    // Eight days on: the drive file's first version goes, not the mail's.
    clock.advance(chrono::Duration::days(8));
    let pass = lifecycle.pass(clock.now()).await.unwrap();
    assert_eq!(pass.expired.versions, 1, "{pass:?}");
    assert_eq!(pass.expired.items, 0, "{pass:?}");
    assert_eq!(versions_of(edited_file.clone()).await, 1);
    assert_eq!(versions_of(edited_mail.clone()).await, 2);
    assert_eq!(stack.count(versions_total).await, before - 1);
    let drive_bytes = stack
        .graph_bytes(&format!("/users/{user}/drive/items/{edited_file}/content"))
        .await;
    assert!(
        stack.stored("drive", &edited_file).await == drive_bytes,
        "the current version of the file is kept"
    );
    // Its chunk is freed an hour later (the chunk grace).
    clock.advance(chrono::Duration::hours(2));
    let pass = lifecycle.pass(clock.now()).await.unwrap();
    assert!(pass.collected.chunks_deleted >= 1, "{pass:?}");
    everything_reads_back(&stack).await;

    // Thirty-one days on: the mail's first version goes too.
    clock.advance(chrono::Duration::days(23));
    let pass = lifecycle.pass(clock.now()).await.unwrap();
    assert_eq!(pass.expired.versions, 1, "{pass:?}");
    assert_eq!(versions_of(edited_mail.clone()).await, 1);
    let mime = stack
        .graph_bytes(&format!("/users/{user}/messages/{edited_mail}/$value"))
        .await;
    assert!(stack.stored("mail", &edited_mail).await == mime);
    // The deleted message is still kept, and restores.
    assert!(stack.stored("mail", &deleted_mail).await == deleted_mime);
    let item = ids(
        &stack,
        "SELECT id FROM items WHERE source_id = $1",
        vec![deleted_mail.clone().into()],
    )
    .await[0];
    let job = cli(
        &stack,
        &stack.org.tenant_admin,
        &["restore", "--item", &item.to_string(), "--wait"],
    )
    .unwrap();
    assert_eq!(job["status"], "succeeded", "{job}");

    // Ninety-one days on: the deleted message is gone with its versions;
    // the deleted file (kept forever) is not.
    clock.advance(chrono::Duration::days(60));
    let pass = lifecycle.pass(clock.now()).await.unwrap();
    assert_eq!(pass.expired.items, 1, "{pass:?}");
    assert_eq!(versions_of(deleted_mail.clone()).await, 0);
    assert_eq!(versions_of(deleted_file.clone()).await, 1);
    assert!(stack
        .version("drive", &deleted_file)
        .await
        .unwrap()
        .1
        .is_some());
    clock.advance(chrono::Duration::hours(2));
    lifecycle.pass(clock.now()).await.unwrap();
    everything_reads_back(&stack).await;
    let audited = stack
        .count("SELECT count(*) FROM audit_log WHERE action = 'retention.expire'")
        .await;
    assert_eq!(audited, 3, "each expiring pass is audited");
}

/// Every table with a `tenant_id` column, but the audit log and the
/// tombstones, which outlive the tenant.
async fn tenant_rows(stack: &Stack, tenant: &str) -> Vec<(String, i64)> {
    let tables = arkiv_tests::seed::texts(
        &stack.api.db.conn,
        "SELECT table_name::text FROM information_schema.columns
          WHERE table_schema = 'public' AND column_name = 'tenant_id'
            AND table_name NOT IN ('audit_log', 'tenant_tombstones')
          ORDER BY 1",
    )
    .await;
    assert!(tables.len() > 15, "{tables:?}");
    let mut rows = Vec::new();
    for table in tables {
        let n = stack
            .count(&format!(
                "SELECT count(*) FROM {table} WHERE tenant_id = '{tenant}'"
            ))
            .await;
        rows.push((table, n));
    }
    rows
}

/// Subscription end: refused purges, reactivation cancelling a purge, and
/// the purge itself: keys first, then every object and every row, messages
/// in flight discarded, a tombstone and the audit trail kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ended_subscription_is_purged_after_its_grace_and_nothing_is_left() {
    let mut stack = Stack::start(SimConfig::tiny(), |_| {}).await;
    stack.run_services().await;
    let run = stack.backup().await;
    assert_eq!(run["status"], "succeeded", "{run}");
    let tenant = stack.org.tenant.clone();
    let partner = stack.org.partner_admin.clone();
    let region = region(&stack);

    // An excluded account's data is purged 48 hours on, unless it is
    // included again before then.
    let lifecycle = lifecycle(&stack).await;
    let account = ids(
        &stack,
        "SELECT account_id FROM items GROUP BY account_id ORDER BY count(*) DESC LIMIT 1",
        vec![],
    )
    .await[0];
    let items_of = format!("SELECT count(*) FROM items WHERE account_id = '{account}'");
    let items = stack.count(&items_of).await;
    assert!(items > 0);
    let exclusion = ManualClock::new();
    set_included(&stack, account, false).await;
    exclusion.advance(chrono::Duration::hours(47));
    let pass = lifecycle.pass(exclusion.now()).await.unwrap();
    assert_eq!(pass.account_versions_purged, 0, "{pass:?}");
    set_included(&stack, account, true).await;
    exclusion.advance(chrono::Duration::hours(2));
    let pass = lifecycle.pass(exclusion.now()).await.unwrap();
    assert_eq!(pass.account_versions_purged, 0, "included again: {pass:?}");
    assert_eq!(stack.count(&items_of).await, items);
    // Excluded again: the grace counts from this exclusion (a clock at the
    // system's time again, since the API records it by the system's).
    set_included(&stack, account, false).await;
    let exclusion = ManualClock::new();
    exclusion.advance(chrono::Duration::hours(47));
    lifecycle.pass(exclusion.now()).await.unwrap();
    assert_eq!(stack.count(&items_of).await, items, "within the grace");
    exclusion.advance(chrono::Duration::hours(2));
    let pass = lifecycle.pass(exclusion.now()).await.unwrap();
    assert!(pass.account_versions_purged > 0, "{pass:?}");
    assert_eq!(stack.count(&items_of).await, 0);
    set_included(&stack, account, true).await;
    let run = stack.backup().await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(stack.count(&items_of).await, items, "backed up anew");

    // An active subscription is not purged without --purge-now.
    let refused = cli(&stack, &partner, &["tenant", "purge", "--tenant", &tenant]).unwrap_err();
    assert!(refused.contains("--purge-now"), "{refused}");
    assert!(
        refused.contains("active") || refused.contains("trial"),
        "{refused}"
    );

    // Ended: purged 48 hours on, unless reactivated before.
    let ended = cli(&stack, &partner, &["tenant", "end", "--tenant", &tenant]).unwrap();
    assert_eq!(ended["subscription_state"], "ended", "{ended}");
    let purge_after: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(ended["purge_after"].clone()).unwrap();
    let hours = (purge_after - chrono::Utc::now()).num_minutes() as f64 / 60.0;
    assert!((47.9..=48.0).contains(&hours), "purged in {hours} h");
    let clock = ManualClock::new();
    clock.advance(chrono::Duration::hours(47));
    let pass = lifecycle.pass(clock.now()).await.unwrap();
    assert!(pass.tenants_purged.is_empty(), "{pass:?}");
    let back = cli(
        &stack,
        &partner,
        &["tenant", "reactivate", "--tenant", &tenant],
    )
    .unwrap();
    assert_eq!(back["subscription_state"], "active", "{back}");
    assert_eq!(back["purge_after"], Value::Null);
    clock.advance(chrono::Duration::hours(2));
    let pass = lifecycle.pass(clock.now()).await.unwrap();
    assert!(pass.tenants_purged.is_empty(), "reactivated: {pass:?}");
    assert!(stack.count("SELECT count(*) FROM item_versions").await > 0);

    // What a purge must leave unreadable: an object and the wrapped keys.
    let pack_key = arkiv_tests::seed::text(
        &stack.api.db.conn,
        "SELECT min(object_key) FROM packs",
        vec![],
    )
    .await;
    let saved = stack.store.get(&region, &pack_key).await.unwrap();
    assert!(!saved.is_empty());
    let wrapped = arkiv_tests::seed::text(
        &stack.api.db.conn,
        "SELECT encode(wrapped_data_key, 'hex') FROM tenant_keys",
        vec![],
    )
    .await;
    // A message of the tenant's in the parking lot, and one of another
    // tenant's that must stay.
    let settings = stack.api.config.settings();
    let transport =
        arkiv_crypto::TransportKey::from_secret(&settings.keys().unwrap().transport_key().unwrap());
    let broker = arkiv_queue::Broker::connect(settings.rabbitmq().unwrap())
        .await
        .unwrap();
    let queues = arkiv_queue::topology::RegionQueues::new(&broker, &region);
    let publisher = broker.publisher().await.unwrap();
    let other_tenant = Uuid::now_v7();
    for t in [tenant.parse::<Uuid>().unwrap(), other_tenant] {
        let sealed = arkiv_tests::seed::deleted_work_item(t).seal(&transport);
        publisher
            .publish("", &queues.parking, &sealed, Default::default())
            .await
            .unwrap();
    }

    // Ended again, and 48 hours on: purged.
    cli(&stack, &partner, &["tenant", "end", "--tenant", &tenant]).unwrap();
    clock.advance(chrono::Duration::hours(49));
    let pass = lifecycle.pass(clock.now()).await.unwrap();
    assert_eq!(pass.tenants_purged, vec![tenant.parse::<Uuid>().unwrap()]);

    // Nothing under its prefix, no row of its data anywhere.
    let left = stack
        .store
        .list(
            &region,
            &arkiv_vault::tenant_prefix(tenant.parse().unwrap()),
        )
        .await
        .unwrap();
    assert!(left.is_empty(), "objects left: {left:?}");
    for (table, n) in tenant_rows(&stack, &tenant).await {
        assert_eq!(n, 0, "{n} rows of the purged tenant in {table}");
    }
    for table in ["cursors", "run_items", "version_chunks", "tenant_keys"] {
        assert_eq!(
            stack.count(&format!("SELECT count(*) FROM {table}")).await,
            0,
            "{table}"
        );
    }
    assert_eq!(
        stack
            .count("SELECT count(*) FROM login_events WHERE principal_id IS NULL")
            .await,
        0
    );
    // The object saved before cannot be decrypted with anything left: the
    // tenant's wrapped keys are nowhere in the database.
    let dump = std::process::Command::new("pg_dump")
        .args(["--data-only", "--no-owner", &stack.api.db.url])
        .output()
        .unwrap();
    assert!(dump.status.success());
    let dump = String::from_utf8_lossy(&dump.stdout);
    assert!(!dump.contains(&wrapped), "the wrapped data key survived");
    let master =
        arkiv_crypto::MasterKey::from_secret(&settings.keys().unwrap().master_key().unwrap());
    let keyring = arkiv_vault::keyring::KeyRing::new(
        stack.api.db.conn.clone(),
        master,
        Duration::from_secs(1),
    );
    assert!(matches!(
        keyring.get(tenant.parse().unwrap()).await,
        Err(arkiv_vault::VaultError::UnknownTenant(_))
    ));
    // Its parked message was discarded; the other tenant's stays.
    assert_eq!(broker.queue_depth(&queues.parking).await.unwrap(), 1);
    // A work item of the purged tenant still in flight is dropped by the
    // worker, not stored, not parked.
    let sealed = arkiv_tests::seed::deleted_work_item(tenant.parse().unwrap()).seal(&transport);
    publisher
        .publish("", &queues.work, &sealed, Default::default())
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while broker.queue_depth(&queues.work).await.unwrap() > 0
        || broker.queue_depth(&queues.retry).await.unwrap() > 0
    {
        assert!(
            Instant::now() < deadline,
            "the stray work item was not consumed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(broker.queue_depth(&queues.parking).await.unwrap(), 1);

    // A tombstone with ids, dates and counts; the audit trail intact.
    let counts = arkiv_tests::seed::text(
        &stack.api.db.conn,
        "SELECT counts::text FROM tenant_tombstones WHERE tenant_id = $1",
        vec![tenant.parse::<Uuid>().unwrap().into()],
    )
    .await;
    let counts: Value = serde_json::from_str(&counts).unwrap();
    assert!(counts["versions"].as_i64().unwrap() > 0, "{counts}");
    assert_eq!(counts["parked_discarded"], 1, "{counts}");
    assert_audited(
        &stack.api.db.conn,
        &tenant,
        &[
            "tenant.end",
            "tenant.reactivate",
            "tenant.purge",
            "tenant.purged",
        ],
    )
    .await;
    let chain = arkiv_db::audit::verify(&stack.api.db.conn, Some(tenant.parse().unwrap()))
        .await
        .unwrap();
    assert!(chain.is_intact(), "{chain:?}");
    // The API no longer knows the tenant.
    let (status, _) = stack
        .api
        .get(&partner, &format!("/v1/tenants/{tenant}"))
        .await;
    assert_eq!(status, 404);
    let _ = saved;
}

/// An erasure request: every version of the account goes, from the index
/// and from storage, while another account's copy of a shared attachment
/// stays whole; the certificate names what went; unknown accounts are
/// refused. Carried out by the scheduler service's own loop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erasure_removes_one_account_and_leaves_the_others_whole() {
    let mut stack = Stack::start(SimConfig::tiny(), |c| {
        c.set("lifecycle.tick_secs", 1);
    })
    .await;
    stack.run_services().await;
    no_scheduled_runs(&stack).await;
    let settings = stack.api.config.settings();
    let scheduler = arkiv_scheduler::Application::build(&settings)
        .await
        .unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    tokio::spawn(scheduler.run_until_stopped(async move {
        let _ = rx.await;
    }));
    stack.stops.push(tx);

    // A 1 MB attachment sent to two mailboxes.
    let mut attachment = vec![0u8; 1024 * 1024];
    rand::RngCore::fill_bytes(
        &mut <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(23),
        &mut attachment,
    );
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(&attachment);
    let tenant_ms = stack.api.manifest["m365"][0]["tenant_id"].clone();
    let mut mailboxes = Vec::new();
    for (user, upn) in stack.users() {
        let src = source(&stack, &user).await;
        if src.messages.is_empty() || mailboxes.len() == 2 {
            continue;
        }
        stack
            .sim_post(
                "/_sim/m365/deliver",
                json!({ "tenant": tenant_ms, "user": upn, "from": "finance@example.test",
                        "subject": "Shared report", "body": "See attached.",
                        "attachment": { "name": "report.bin", "content_type": "application/octet-stream", "content": encoded } }),
            )
            .await;
        mailboxes.push((user, upn));
    }
    assert_eq!(mailboxes.len(), 2);
    let run = stack.backup().await;
    assert_eq!(run["status"], "succeeded", "{run}");
    let ((erased, erased_upn), (kept, _)) = (mailboxes[0].clone(), mailboxes[1].clone());
    let tenant = stack.org.tenant.clone();
    let account: Uuid = ids(
        &stack,
        "SELECT DISTINCT account_id FROM items i WHERE i.source_id = ANY($1)",
        vec![source(&stack, &erased).await.messages.into()],
    )
    .await[0];
    let versions_before = ids(
        &stack,
        "SELECT id FROM item_versions WHERE account_id = $1",
        vec![account.into()],
    )
    .await;
    let items_before = stack
        .count(&format!(
            "SELECT count(*) FROM items WHERE account_id = '{account}'"
        ))
        .await;
    assert!(items_before > 3);
    // Chunks only the erased account references, and the packs holding them.
    let own_chunks = format!(
        "SELECT count(*) FROM chunks c WHERE c.refcount > 0 AND NOT EXISTS (
             SELECT 1 FROM version_chunks vc JOIN item_versions v ON v.id = vc.version_id
              WHERE vc.chunk_id = c.id AND v.account_id <> '{account}')"
    );
    assert!(stack.count(&own_chunks).await > 0);
    let packs_before =
        arkiv_tests::seed::texts(&stack.api.db.conn, "SELECT object_key FROM packs").await;

    // An unknown account is refused, and nothing is recorded.
    let refused = cli(
        &stack,
        &stack.org.tenant_admin,
        &[
            "erase",
            "--tenant",
            &tenant,
            "--account",
            "nobody@example.test",
        ],
    )
    .unwrap_err();
    assert!(refused.contains("no protected account"), "{refused}");
    assert_eq!(
        stack.count("SELECT count(*) FROM erasure_requests").await,
        0
    );

    let started = Instant::now();
    let erasure = cli(
        &stack,
        &stack.org.tenant_admin,
        &[
            "erase",
            "--tenant",
            &tenant,
            "--account",
            &erased_upn,
            "--wait",
        ],
    )
    .unwrap();
    assert_eq!(erasure["state"], "succeeded", "{erasure}");
    assert!(started.elapsed() < Duration::from_secs(120));
    assert_eq!(
        erasure["deleted_items"].as_i64().unwrap(),
        items_before,
        "{erasure}"
    );

    // Nothing of the account in the index, nor its cursors; excluded.
    for sql in [
        format!("SELECT count(*) FROM items WHERE account_id = '{account}'"),
        format!("SELECT count(*) FROM item_versions WHERE account_id = '{account}'"),
        format!("SELECT count(*) FROM cursors WHERE account_id = '{account}'"),
        own_chunks.clone(),
        "SELECT count(*) FROM chunks WHERE refcount = 0".to_owned(),
    ] {
        assert_eq!(stack.count(&sql).await, 0, "{sql}");
    }
    assert_eq!(
        stack
            .count(&format!(
                "SELECT count(*) FROM protected_accounts WHERE id = '{account}' AND NOT included"
            ))
            .await,
        1
    );
    // Every pack that held its chunks was rewritten without them, and its
    // old object is gone from S3.
    let region = region(&stack);
    let packs_after: BTreeSet<String> =
        arkiv_tests::seed::texts(&stack.api.db.conn, "SELECT object_key FROM packs")
            .await
            .into_iter()
            .collect();
    let mut gone = 0;
    for key in &packs_before {
        if !packs_after.contains(key) {
            gone += 1;
            assert!(
                !stack.store.exists(&region, key).await.unwrap(),
                "{key} is still in S3"
            );
        }
    }
    assert!(gone > 0, "no pack was rewritten or deleted");

    // The other mailbox is whole, shared attachment included.
    for id in source(&stack, &kept).await.messages {
        let mime = stack
            .graph_bytes(&format!("/users/{kept}/messages/{id}/$value"))
            .await;
        assert!(
            stack.stored("mail", &id).await == mime,
            "message {id} of {kept}"
        );
    }
    everything_reads_back(&stack).await;

    // The certificate: what went, when, and the hash of the list.
    let id = erasure["id"].as_str().unwrap();
    let file = arkiv_tests::ConfigFile::with_contents("certificate", "");
    cli(
        &stack,
        &stack.org.tenant_admin,
        &[
            "erasure",
            "certificate",
            "--id",
            id,
            "--output",
            file.path.to_str().unwrap(),
        ],
    )
    .unwrap();
    let certificate: Value =
        serde_json::from_str(&std::fs::read_to_string(&file.path).unwrap()).unwrap();
    let mut sorted = versions_before.clone();
    sorted.sort();
    let list: String = sorted.iter().map(|v| format!("{v}\n")).collect();
    assert_eq!(
        certificate["list_hash"],
        hex::encode(Sha256::digest(list.as_bytes())),
        "{certificate}"
    );
    assert_eq!(certificate["deleted"]["versions"], versions_before.len());
    assert_eq!(certificate["deleted"]["items"], items_before);
    assert!(
        certificate["storage"]["chunks_deleted"].as_i64().unwrap() > 0,
        "{certificate}"
    );
    assert!(certificate["completed_at"].is_string());
    assert!(
        !certificate.to_string().contains(&erased_upn),
        "no address in the certificate"
    );
    for action in ["erasure.request", "erasure.index", "erasure.complete"] {
        assert_eq!(
            stack
                .count(&format!(
                    "SELECT count(*) FROM audit_log WHERE action = '{action}' AND outcome = 'success'"
                ))
                .await,
            1,
            "{action}"
        );
    }

    // The next backup leaves the erased account alone.
    let run = stack.backup().await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(
        stack
            .count(&format!(
                "SELECT count(*) FROM items WHERE account_id = '{account}'"
            ))
            .await,
        0
    );
}

/// Garbage collection racing a backup: an account's data is purged (its
/// chunks now unreferenced), then it is included again and backed up from
/// scratch, deduplicating against those very chunks, while garbage
/// collection deletes them as fast as it can. Nothing is lost: every item
/// is back once, byte-identical, and every chunk the index names exists.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_collection_racing_a_backup_loses_nothing() {
    let dataset = SimConfig {
        spec: DatasetSpec::bench(2, 120, (2_000, 30_000), 12, (1_000, 60_000)),
        seed: 5,
    };
    let mut stack = Stack::start(dataset, |c| {
        c.set("lifecycle.account_purge_grace_hours", 0);
    })
    .await;
    stack.run_services().await;
    let run = stack.backup().await;
    assert_eq!(run["status"], "succeeded", "{run}");
    let lifecycle = lifecycle(&stack).await;
    let (user, upn) = stack.users()[0].clone();
    let src = source(&stack, &user).await;
    let account = ids(
        &stack,
        "SELECT DISTINCT account_id FROM items WHERE source_id = $1",
        vec![src.messages[0].clone().into()],
    )
    .await[0];
    let region = region(&stack);
    let mut raced = 0;
    for round in 0..3 {
        // Excluded, and (no grace) purged by the next pass: its chunks are
        // now unreferenced, but not yet deleted.
        set_included(&stack, account, false).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        let tenant = stack.org.tenant.parse().unwrap();
        let pass_time = chrono::Utc::now();
        let purged =
            arkiv_scheduler::tenants::purge_excluded_accounts(&stack.api.db.conn, pass_time)
                .await
                .unwrap();
        assert!(purged > 0, "round {round}: nothing purged");
        assert!(
            stack
                .count("SELECT count(*) FROM chunks WHERE refcount = 0")
                .await
                > 0
        );

        // Included again and backed up, while garbage collection runs.
        set_included(&stack, account, true).await;
        let run_id = stack.start_backup().await;
        // From the moment the worker starts settling the run's items.
        let deadline = Instant::now() + Duration::from_secs(60);
        while stack
            .count(&format!("SELECT settled FROM runs WHERE id = '{run_id}'"))
            .await
            == 0
        {
            assert!(Instant::now() < deadline, "the run does not start");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let mut deleted_while_running = 0;
        loop {
            let state = arkiv_tests::seed::text(
                &stack.api.db.conn,
                &format!("SELECT state FROM runs WHERE id = '{run_id}'"),
                vec![],
            )
            .await;
            let now = chrono::Utc::now();
            let policy = Policy {
                chunks_dead_before: now + chrono::Duration::days(1),
                rewrite_below: 0.9,
                retired_before: now + chrono::Duration::days(1),
                uploads_abandoned_before: now - chrono::Duration::days(1),
                orphans_before: now - chrono::Duration::hours(1),
                sweep_orphans: true,
                now,
            };
            let collected = gc::collect(&stack.api.db.conn, &stack.store, tenant, &region, &policy)
                .await
                .unwrap();
            if state != "queued" && state != "running" {
                break;
            }
            deleted_while_running += collected.chunks_deleted;
        }
        raced += deleted_while_running;
        let run = stack.await_run(&run_id, Duration::from_secs(60)).await;
        assert_eq!(run["status"], "succeeded", "round {round}: {run}");

        // Every item of the account once, byte-identical to the source.
        let src = source(&stack, &user).await;
        for id in &src.messages {
            let mime = stack
                .graph_bytes(&format!("/users/{user}/messages/{id}/$value"))
                .await;
            assert!(
                stack.stored("mail", id).await == mime,
                "round {round}: message {id}"
            );
        }
        for id in &src.files {
            let bytes = stack
                .graph_bytes(&format!("/users/{user}/drive/items/{id}/content"))
                .await;
            assert!(
                stack.stored("drive", id).await == bytes,
                "round {round}: file {id}"
            );
        }
        let expected =
            (src.messages.len() + src.events.len() + src.files.len() + src.folders.len()) as i64;
        assert_eq!(
            stack
                .count(&format!(
                    "SELECT count(*) FROM items WHERE account_id = '{account}'"
                ))
                .await,
            expected,
            "round {round}"
        );
        everything_reads_back(&stack).await;
    }
    // Parked: nothing.
    let settings = stack.api.config.settings();
    let broker = arkiv_queue::Broker::connect(settings.rabbitmq().unwrap())
        .await
        .unwrap();
    let queues = arkiv_queue::topology::RegionQueues::new(&broker, &region);
    assert_eq!(broker.queue_depth(&queues.parking).await.unwrap(), 0);
    println!("chunks deleted while the backups ran: {raced} (account {upn})");
    assert!(raced > 0, "garbage collection never overlapped a backup");
    let _ = lifecycle;
}

/// kill -9 of the scheduler in the middle of a purge, and in the middle of
/// garbage collection: the restarted scheduler completes both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_scheduler_completes_purges_and_garbage_collection_when_restarted() {
    let dataset = SimConfig {
        spec: DatasetSpec::bench(4, 60, (2_000, 20_000), 10, (1_000, 40_000)),
        seed: 11,
    };
    let mut stack = Stack::start(dataset, |c| {
        c.set("lifecycle.tick_secs", 1);
        // A killed holder's lease is taken over within seconds.
        c.set("lifecycle.lease_secs", 3);
        c.set("lifecycle.account_purge_grace_hours", 0);
        c.set("lifecycle.chunk_grace_secs", 0);
        c.set("lifecycle.retired_pack_grace_secs", 0);
        // Any pack with a dead byte is rewritten.
        c.set("lifecycle.pack_rewrite_below", 1.5);
        c.set("worker.pack_target_bytes", 64 * 1024);
    })
    .await;
    stack.run_services().await;
    let run = stack.backup().await;
    assert_eq!(run["status"], "succeeded", "{run}");
    let config = stack.api.config.write();
    let log = arkiv_tests::ConfigFile::with_contents("scheduler-kill-log", "");

    // Garbage: half the accounts excluded, purged at once; their chunks are
    // spread over most packs, which are then rewritten.
    let accounts = ids(
        &stack,
        "SELECT DISTINCT account_id FROM items ORDER BY 1",
        vec![],
    )
    .await;
    for account in &accounts[..accounts.len() / 2] {
        set_included(&stack, account, false).await;
    }
    let packs = stack.count("SELECT count(*) FROM packs").await;
    assert!(packs > 10, "{packs} packs");
    no_scheduled_runs(&stack).await;
    let scheduler = Process::spawn("arkiv-scheduler", &config.path, &log.path);
    // Killed once the first rewrite has committed, with more to do.
    let deadline = Instant::now() + Duration::from_secs(120);
    while stack
        .count("SELECT count(*) FROM packs WHERE retired_at IS NOT NULL")
        .await
        == 0
    {
        assert!(
            Instant::now() < deadline,
            "garbage collection did not start"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    scheduler.kill();
    let sparse = "SELECT count(*) FROM packs WHERE retired_at IS NULL AND live_bytes < size";
    println!(
        "killed with {} sparse packs and {} dead chunks left",
        stack.count(sparse).await,
        stack
            .count("SELECT count(*) FROM chunks WHERE refcount = 0")
            .await
    );
    let scheduler = Process::spawn("arkiv-scheduler", &config.path, &log.path);
    let deadline = Instant::now() + Duration::from_secs(120);
    while stack.count(sparse).await > 0
        || stack
            .count("SELECT count(*) FROM chunks WHERE refcount = 0")
            .await
            > 0
        || stack
            .count("SELECT count(*) FROM packs WHERE retired_at IS NOT NULL")
            .await
            > 0
    {
        assert!(
            Instant::now() < deadline,
            "garbage collection was not completed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    everything_reads_back(&stack).await;
    // Stored bytes are what the kept accounts reference, no more.
    let stored = stack
        .count("SELECT coalesce(sum(size), 0)::bigint FROM packs")
        .await;
    let live = stack
        .count("SELECT coalesce(sum(stored_size), 0)::bigint FROM chunks")
        .await;
    assert_eq!(stored, live, "every pack holds only live chunks");
    let region = region(&stack);
    let prefix = arkiv_vault::tenant_prefix(stack.org.tenant.parse().unwrap());
    let objects = stack.store.list(&region, &prefix).await.unwrap().len() as i64;
    assert_eq!(objects, stack.count("SELECT count(*) FROM packs").await);

    // The purge, killed once the keys are destroyed, before the rows go.
    let tenant = stack.org.tenant.clone();
    cli(
        &stack,
        &stack.org.partner_admin,
        &["tenant", "end", "--tenant", &tenant, "--purge-now"],
    )
    .unwrap();
    let state = format!("SELECT (SELECT subscription_state FROM tenants WHERE id = '{tenant}')");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let s = arkiv_tests::seed::text(&stack.api.db.conn, &state, vec![]).await;
        if s == "purged" || s.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "the purge did not start");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    scheduler.kill();
    let caught = arkiv_tests::seed::text(&stack.api.db.conn, &state, vec![]).await;
    println!(
        "purge killed with the tenant {}",
        if caught.is_empty() {
            "gone"
        } else {
            "half purged"
        }
    );
    assert_eq!(
        stack.count("SELECT count(*) FROM tenant_keys").await,
        0,
        "keys first"
    );
    let _scheduler = Process::spawn("arkiv-scheduler", &config.path, &log.path);
    let deadline = Instant::now() + Duration::from_secs(60);
    while stack
        .count(&format!(
            "SELECT count(*) FROM tenants WHERE id = '{tenant}'"
        ))
        .await
        > 0
    {
        if Instant::now() > deadline {
            let log = std::fs::read_to_string(&log.path).unwrap_or_default();
            let tail: Vec<&str> = log
                .lines()
                .filter(|l| l.contains("WARN") || l.contains("ERROR"))
                .collect();
            panic!(
                "the purge was not completed: {}",
                tail[tail.len().saturating_sub(5)..].join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(stack.store.list(&region, &prefix).await.unwrap().is_empty());
    for (table, n) in tenant_rows(&stack, &tenant).await {
        assert_eq!(n, 0, "{n} rows of the purged tenant in {table}");
    }
    assert_eq!(
        stack
            .count(&format!(
                "SELECT count(*) FROM tenant_tombstones WHERE tenant_id = '{tenant}'"
            ))
            .await,
        1
    );
}

/// A tenant with no admin login and no successful run for six months: its
/// admins are notified, it is ended 14 days later if still inactive, and
/// purged 48 hours after that. A tenant active meanwhile is left alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inactive_tenant_is_notified_then_ended_then_purged() {
    let api = crate::api::TestApi::start().await;
    let quiet = api.org("Quiet").await;
    let busy = api.org("Busy").await;
    let lifecycle = Lifecycle::connect(&api.config.settings()).await.unwrap();
    let clock = ManualClock::new();
    let db = &api.db.conn;
    let state = |tenant: String| async move {
        arkiv_tests::seed::text(
            db,
            "SELECT (SELECT subscription_state FROM tenants WHERE id = $1)",
            vec![tenant.parse::<Uuid>().unwrap().into()],
        )
        .await
    };

    let pass = lifecycle.pass(clock.now()).await.unwrap();
    assert_eq!(pass.tenants_notified, 0, "{pass:?}");
    clock.advance(chrono::Duration::days(184));
    // The busy tenant had a successful run a day ago (in the clock's time).
    arkiv_tests::seed::exec(
        db,
        "UPDATE tenants SET last_successful_run_at = $2 WHERE id = $1",
        vec![
            busy.tenant.parse::<Uuid>().unwrap().into(),
            (clock.now() - chrono::Duration::days(1)).into(),
        ],
    )
    .await;
    let pass = lifecycle.pass(clock.now()).await.unwrap();
    assert_eq!(pass.tenants_notified, 1, "{pass:?}");
    let notified = scalar(
        db,
        "SELECT count(*) FROM tenant_notifications WHERE tenant_id = $1 AND kind = 'inactive'",
        vec![quiet.tenant.parse::<Uuid>().unwrap().into()],
    )
    .await;
    assert_eq!(notified, 1);
    // Told once, not at every pass.
    let pass = lifecycle.pass(clock.now()).await.unwrap();
    assert_eq!(pass.tenants_notified, 0, "{pass:?}");

    clock.advance(chrono::Duration::days(13));
    let pass = lifecycle.pass(clock.now()).await.unwrap();
    assert_eq!(pass.tenants_ended, 0, "within the notice: {pass:?}");
    assert_eq!(state(quiet.tenant.clone()).await, "trial");
    clock.advance(chrono::Duration::days(2));
    let pass = lifecycle.pass(clock.now()).await.unwrap();
    assert_eq!(pass.tenants_ended, 1, "{pass:?}");
    assert_eq!(state(quiet.tenant.clone()).await, "ended");
    assert_eq!(state(busy.tenant.clone()).await, "trial");

    clock.advance(chrono::Duration::hours(49));
    let pass = lifecycle.pass(clock.now()).await.unwrap();
    assert_eq!(
        pass.tenants_purged,
        vec![quiet.tenant.parse::<Uuid>().unwrap()],
        "{pass:?}"
    );
    assert_eq!(state(quiet.tenant.clone()).await, "");
    assert_eq!(state(busy.tenant.clone()).await, "trial");
    assert_audited(
        db,
        &quiet.tenant,
        &[
            "tenant.notify_inactive",
            "tenant.end",
            "tenant.purge",
            "tenant.purged",
        ],
    )
    .await;
}

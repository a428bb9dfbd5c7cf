//! The encryption-and-storage pipeline on real RabbitMQ, PostgreSQL and
//! Garage: work items published with confirms come out as sealed,
//! deduplicated packs in the tenant's region bucket and index rows, exactly
//! once, with poison messages parked.

use std::sync::Arc;
use std::time::Duration;

use arkiv_config::Settings;
use arkiv_crypto::{MasterKey, TransportKey};
use arkiv_db::sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use arkiv_domain::{Provider, Workload};
use arkiv_queue::{Broker, ItemKey, Metadata, WorkItem, WorkPublisher};
use arkiv_store::ObjectStore;
use arkiv_tests::{TestConfig, TestDb};
use arkiv_vault::keyring::KeyRing;
use arkiv_vault::reader::Reader;
use rand::{Rng, RngCore, SeedableRng};
use uuid::Uuid;

/// A database, an isolated queue and key prefix, and one tenant with one
/// account, in `region`.
struct Fixture {
    db: TestDb,
    config: TestConfig,
    settings: Settings,
    store: ObjectStore,
    tenants: Vec<TenantFixture>,
}

type TenantFixture = arkiv_tests::seed::SeededTenant;

impl Fixture {
    async fn new(label: &str, regions: &[&str], tune: impl FnOnce(&mut TestConfig)) -> Self {
        let db = TestDb::create().await;
        let mut config = TestConfig::isolated(label);
        config.set("database.url", db.url.clone());
        config.set("worker.pack_max_age_ms", 100);
        tune(&mut config);
        let settings = config.settings();
        let store = ObjectStore::new(settings.s3().unwrap());
        let master = MasterKey::from_secret(&settings.keys().unwrap().master_key().unwrap());
        let mut tenants = Vec::new();
        let partner = arkiv_tests::seed::partner(&db.conn).await;
        for region in regions {
            tenants.push(arkiv_tests::seed::tenant(&db.conn, &master, partner, region).await);
        }
        Self {
            db,
            config,
            settings,
            store,
            tenants,
        }
    }

    fn conn(&self) -> &DatabaseConnection {
        &self.db.conn
    }

    async fn publisher(&self) -> (Broker, WorkPublisher) {
        let broker = Broker::connect(self.settings.rabbitmq().unwrap())
            .await
            .unwrap();
        for region in ["eu", "uk", "us"] {
            arkiv_queue::topology::declare(
                &broker,
                &region.parse().unwrap(),
                Duration::from_millis(self.settings.worker.retry_delay_ms),
            )
            .await
            .unwrap();
        }
        let key =
            TransportKey::from_secret(&self.settings.keys().unwrap().transport_key().unwrap());
        let publisher = WorkPublisher::new(&broker, key).await.unwrap();
        (broker, publisher)
    }

    /// The worker, in this process, until the returned sender is dropped.
    async fn worker(&self) -> tokio::sync::oneshot::Sender<()> {
        let app = arkiv_worker::Application::build(&self.settings)
            .await
            .expect("the worker starts");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(app.run_until_stopped(async move {
            let _ = rx.await;
        }));
        tx
    }

    fn reader(&self) -> Reader {
        let master = MasterKey::from_secret(&self.settings.keys().unwrap().master_key().unwrap());
        let keys = Arc::new(KeyRing::new(
            self.db.conn.clone(),
            master,
            Duration::from_secs(60),
        ));
        Reader::new(self.db.conn.clone(), self.store.clone(), keys)
    }
}

use arkiv_tests::canary::{
    assert_absent_from_database, assert_absent_from_rabbitmq, assert_absent_from_store, contains,
};
use arkiv_tests::seed::scalar;

fn key_of(t: &TenantFixture, workload: Workload, source_id: &str) -> ItemKey {
    ItemKey {
        tenant_id: t.tenant,
        connection_id: t.connection,
        account_id: t.account,
        provider: Provider::M365,
        workload,
        source_id: source_id.to_owned(),
    }
}

fn random_bytes(rng: &mut impl RngCore, len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    rng.fill_bytes(&mut v);
    v
}

async fn publish(
    publisher: &WorkPublisher,
    t: &TenantFixture,
    source_id: &str,
    content: &[u8],
    metadata: Metadata,
) {
    publish_as(publisher, t, Workload::Mail, source_id, content, metadata).await
}

async fn publish_as(
    publisher: &WorkPublisher,
    t: &TenantFixture,
    workload: Workload,
    source_id: &str,
    content: &[u8],
    metadata: Metadata,
) {
    let mut window = arkiv_queue::ConfirmWindow::new(8);
    arkiv_vault::upload::publish_item(
        publisher,
        &mut window,
        &t.region,
        arkiv_vault::upload::ItemState {
            item: key_of(t, workload, source_id),
            change_marker: Some("ck-1".into()),
            metadata,
            origin: Default::default(),
        },
        content,
    )
    .await
    .expect("published");
    window.drain().await.expect("confirmed");
}

/// Wait until the tenant has `n` versions indexed.
async fn await_versions(db: &DatabaseConnection, tenant: Uuid, n: i64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let have = scalar(
            db,
            "SELECT count(*) FROM item_versions WHERE tenant_id = $1",
            vec![tenant.into()],
        )
        .await;
        if have >= n {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {have} of {n} versions indexed after 120 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn version_of(db: &DatabaseConnection, t: &TenantFixture, source_id: &str) -> Uuid {
    let row = db
        .query_one(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT v.id FROM item_versions v JOIN items i ON i.id = v.item_id
              WHERE i.account_id = $1 AND i.source_id = $2 ORDER BY v.version DESC LIMIT 1",
            vec![t.account.into(), source_id.into()],
        ))
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("{source_id} is indexed"));
    row.try_get_by_index(0).unwrap()
}

async fn stored_bytes(db: &DatabaseConnection, tenant: Uuid) -> i64 {
    scalar(
        db,
        "SELECT sum(stored_size)::bigint FROM chunks WHERE tenant_id = $1",
        vec![tenant.into()],
    )
    .await
}

/// Base64 in lines of 76, as MIME writes it.
fn base64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
    encoded
        .as_bytes()
        .chunks(76)
        .map(|line| format!("{}\r\n", std::str::from_utf8(line).unwrap()))
        .collect()
}

/// Message `i`: its own headers, boundary and text, and `attachment`.
fn mime_with_attachment(i: usize, text: &str, attachment: &str) -> Vec<u8> {
    let boundary = format!("=_boundary_{i}_{}", "x".repeat(i));
    format!(
        "From: sender{i}@example.com\r\nTo: user{i}@example.com\r\nSubject: Report {i}\r\n\
         Message-ID: <m{i}@example.com>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"{boundary}\"\r\n\r\n\
         --{boundary}\r\nContent-Type: text/plain\r\n\r\n{text}\r\n\
         --{boundary}\r\nContent-Type: application/pdf; name=\"report.pdf\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{attachment}--{boundary}--\r\n"
    )
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn items_from_empty_to_50_mb_come_back_byte_identical_from_their_regions_bucket() {
    let f = Fixture::new("pipe-roundtrip", &["eu"], |_| {}).await;
    let t = f.tenants[0].clone();
    let (_broker, publisher) = f.publisher().await;
    let _worker = f.worker().await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let sizes = [
        0usize,
        1,
        1000,
        256 * 1024,
        256 * 1024 + 1,
        3_000_000,
        50 * 1024 * 1024,
    ];
    let mut items = Vec::new();
    for (i, size) in sizes.iter().enumerate() {
        let content = random_bytes(&mut rng, *size);
        publish(
            &publisher,
            &t,
            &format!("item-{i}"),
            &content,
            Metadata::default(),
        )
        .await;
        items.push((format!("item-{i}"), content));
    }
    await_versions(f.conn(), t.tenant, sizes.len() as i64).await;
    let reader = f.reader();
    for (source_id, content) in &items {
        let version = version_of(f.conn(), &t, source_id).await;
        let back = reader.read_all(version).await.unwrap();
        assert_eq!(back.len(), content.len(), "{source_id}");
        assert!(back == *content, "{source_id} comes back byte-identical");
    }

    // Everything is in the eu bucket under the tenant's prefix, as packs
    // (not one object per item), and nothing in the other regions.
    let prefix = arkiv_vault::tenant_prefix(t.tenant);
    let eu = f.store.list(&"eu".parse().unwrap(), &prefix).await.unwrap();
    let packs = scalar(
        f.conn(),
        "SELECT count(*) FROM packs WHERE tenant_id = $1",
        vec![t.tenant.into()],
    )
    .await;
    assert_eq!(eu.len() as i64, packs);
    assert!(packs < 100, "{packs} packs for {} items", sizes.len());
    for region in ["uk", "us"] {
        assert!(f
            .store
            .list(&region.parse().unwrap(), &prefix)
            .await
            .unwrap()
            .is_empty());
    }

    // A redelivered item (published again, unchanged) adds no version and
    // no stored bytes; a changed one adds exactly one version.
    let before = stored_bytes(f.conn(), t.tenant).await;
    publish(&publisher, &t, "item-2", &items[2].1, Metadata::default()).await;
    let changed = Metadata {
        subject: Some("renamed".into()),
        ..Metadata::default()
    };
    publish(&publisher, &t, "item-3", &items[3].1, changed).await;
    await_versions(f.conn(), t.tenant, sizes.len() as i64 + 1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        scalar(
            f.conn(),
            "SELECT count(*) FROM item_versions WHERE tenant_id = $1",
            vec![t.tenant.into()]
        )
        .await,
        sizes.len() as i64 + 1
    );
    assert_eq!(
        stored_bytes(f.conn(), t.tenant).await,
        before,
        "metadata changed, content did not"
    );

    // Corruption is an error naming the pack and chunk, never wrong bytes.
    // A pack may hold other items' chunks too: flip a byte inside one of
    // this version's own.
    let version = version_of(f.conn(), &t, "item-5").await;
    let row = f
        .conn()
        .query_one(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT p.object_key, c.pack_offset, c.stored_size FROM version_chunks vc
               JOIN chunks c ON c.tenant_id = vc.tenant_id AND c.id = vc.chunk_id
               JOIN packs p ON p.id = c.pack_id WHERE vc.version_id = $1 ORDER BY vc.seq LIMIT 1",
            vec![version.into()],
        ))
        .await
        .unwrap()
        .unwrap();
    let pack_key: String = row.try_get_by_index(0).unwrap();
    let offset: i64 = row.try_get_by_index(1).unwrap();
    let stored: i32 = row.try_get_by_index(2).unwrap();
    let mut body = f.store.get(&t.region, &pack_key).await.unwrap().to_vec();
    body[offset as usize + stored as usize / 2] ^= 0xff;
    f.store
        .put(&t.region, &pack_key, body.into())
        .await
        .unwrap();
    let err = match f.reader().read_all(version).await {
        Ok(bytes) => panic!("a corrupt chunk was read back as {} bytes", bytes.len()),
        Err(e) => e.to_string(),
    };
    assert!(err.contains(&pack_key) && err.contains("chunk"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identical_content_is_stored_once_per_tenant_and_a_shared_block_or_attachment_once() {
    let f = Fixture::new("pipe-dedup", &["eu", "eu"], |_| {}).await;
    let (a, b) = (f.tenants[0].clone(), f.tenants[1].clone());
    let (_broker, publisher) = f.publisher().await;
    let _worker = f.worker().await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(2);

    // The same 2 MB five times in tenant a, and once in tenant b.
    let same = random_bytes(&mut rng, 2_000_000);
    for i in 0..5 {
        publish(
            &publisher,
            &a,
            &format!("copy-{i}"),
            &same,
            Metadata::default(),
        )
        .await;
    }
    publish(&publisher, &b, "copy-0", &same, Metadata::default()).await;
    await_versions(f.conn(), a.tenant, 5).await;
    await_versions(f.conn(), b.tenant, 1).await;
    let stored_a = stored_bytes(f.conn(), a.tenant).await;
    let stored_b = stored_bytes(f.conn(), b.tenant).await;
    assert!(
        stored_a < 2_100_000,
        "five copies stored once in tenant a: {stored_a} bytes"
    );
    assert!(
        stored_b >= 2_000_000,
        "tenant b stores its own copy: {stored_b}"
    );
    let shared_ids = scalar(
        f.conn(),
        "SELECT count(*) FROM chunks x JOIN chunks y ON x.id = y.id
          WHERE x.tenant_id = $1 AND y.tenant_id = $2",
        vec![a.tenant.into(), b.tenant.into()],
    )
    .await;
    assert_eq!(shared_ids, 0, "chunk ids are keyed per tenant");

    // A 1 MB block inside ten otherwise different files...
    let block = random_bytes(&mut rng, 1_000_000);
    let before = stored_bytes(f.conn(), a.tenant).await;
    let mut unique = 0usize;
    for i in 0..10 {
        let head = random_bytes(&mut rng, 100_000 + i * 7_919);
        let tail = random_bytes(&mut rng, 50_000 + i * 3_001);
        unique += head.len() + tail.len();
        let content = [head, block.clone(), tail].concat();
        publish_as(
            &publisher,
            &a,
            Workload::Drive,
            &format!("shared-{i}"),
            &content,
            Metadata::default(),
        )
        .await;
    }
    await_versions(f.conn(), a.tenant, 15).await;
    let added = stored_bytes(f.conn(), a.tenant).await - before;
    let for_the_block = added - unique as i64;
    assert!(
        for_the_block < 1_300_000,
        "the shared block cost {for_the_block} bytes over ten files"
    );

    // ...and attached to ten otherwise different messages (base64, which
    // stores as about 1.03 MB once compressed).
    let before = stored_bytes(f.conn(), a.tenant).await;
    let mut unique = 0usize;
    for i in 0..10 {
        let text = base64(&random_bytes(&mut rng, 30_000 + i * 4_001));
        let message = mime_with_attachment(i, &text, &base64(&block));
        unique += message.len() - base64(&block).len();
        publish(
            &publisher,
            &a,
            &format!("attached-{i}"),
            &message,
            Metadata::default(),
        )
        .await;
    }
    await_versions(f.conn(), a.tenant, 25).await;
    let added = stored_bytes(f.conn(), a.tenant).await - before;
    let for_the_attachment = added - unique as i64;
    assert!(
        for_the_attachment < 1_300_000,
        "the shared attachment cost {for_the_attachment} bytes over ten messages"
    );
    arkiv_tests::seed::assert_refcounts_exact(f.conn()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_messages_are_parked_with_their_reason_and_the_stream_keeps_flowing() {
    let f = Fixture::new("pipe-poison", &["eu"], |c| {
        c.set("worker.retry_delay_ms", 200);
        c.set("worker.max_attempts", 2);
    })
    .await;
    let t = f.tenants[0].clone();
    let (broker, publisher) = f.publisher().await;
    let _worker = f.worker().await;
    let queues = arkiv_queue::RegionQueues::new(&broker, &t.region);
    let raw = broker.publisher().await.unwrap();
    let key = TransportKey::from_secret(&f.settings.keys().unwrap().transport_key().unwrap());
    let props = arkiv_queue::lapin::BasicProperties::default;

    // Undecryptable, an unknown schema version, and an unknown tenant.
    let mut garbage = vec![arkiv_queue::work::SCHEMA_VERSION];
    garbage.extend(random_bytes(&mut rand::thread_rng(), 200));
    raw.publish("", &queues.work, &garbage, props())
        .await
        .unwrap();
    let mut future = WorkItem::Deleted {
        item: key_for_unknown(),
        change_marker: None,
        deleted_at: chrono::Utc::now(),
        origin: Default::default(),
    }
    .seal(&key);
    future[0] = 99;
    raw.publish("", &queues.work, &future, props())
        .await
        .unwrap();
    let stranger = WorkItem::Upsert {
        item: key_for_unknown(),
        change_marker: None,
        metadata: Metadata::default(),
        content: arkiv_queue::Content::Inline(b"hello".to_vec().into()),
        origin: Default::default(),
    };
    publisher.publish(&t.region, &stranger).await.unwrap();
    // And good items behind them.
    for i in 0..20 {
        publish(
            &publisher,
            &t,
            &format!("good-{i}"),
            format!("message {i}").as_bytes(),
            Metadata::default(),
        )
        .await;
    }
    await_versions(f.conn(), t.tenant, 20).await;

    let mut parking = broker.consume(&queues.parking, 10).await.unwrap();
    let mut reasons = Vec::new();
    for _ in 0..3 {
        let d = tokio::time::timeout(Duration::from_secs(30), parking.next())
            .await
            .expect("three deliveries parked within 30 s")
            .unwrap();
        assert_eq!(arkiv_queue::topology::attempts(&d.properties), 2);
        reasons.push(arkiv_queue::topology::reason(&d.properties).unwrap());
        arkiv_queue::ack(&d).await.unwrap();
    }
    reasons.sort();
    assert!(
        reasons.iter().any(|r| r.contains("transport key")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.contains("schema version 99")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.contains("unknown tenant")),
        "{reasons:?}"
    );
    assert!(
        tokio::time::timeout(Duration::from_secs(1), parking.next())
            .await
            .is_err(),
        "nothing else is parked"
    );
}

fn key_for_unknown() -> ItemKey {
    ItemKey {
        tenant_id: Uuid::now_v7(),
        connection_id: Uuid::now_v7(),
        account_id: Uuid::now_v7(),
        provider: Provider::Google,
        workload: Workload::Drive,
        source_id: "x".into(),
    }
}

/// kill -9 of the worker process at random moments while items flow:
/// after the last restart every item is indexed exactly once, readable,
/// and every pack the index names is wholly in S3.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_again_and_again_stores_every_item_exactly_once() {
    let f = Fixture::new("pipe-kill", &["eu"], |c| {
        c.set("worker.retry_delay_ms", 200);
        c.set("worker.max_attempts", 50);
        c.set("worker.prefetch", 50);
    })
    .await;
    let t = f.tenants[0].clone();
    let (_broker, publisher) = f.publisher().await;
    let config = f.config.write();
    let spawn = || {
        std::process::Command::new(arkiv_tests::bin_path("arkiv-worker"))
            .arg("--config")
            .arg(&config.path)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("the worker binary starts")
    };
    const ITEMS: usize = 400;
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    let contents: Vec<Vec<u8>> = (0..ITEMS)
        .map(|i| {
            let len = if i % 50 == 0 {
                400_000
            } else {
                rng.gen_range(1_000..60_000)
            };
            random_bytes(&mut rng, len)
        })
        .collect();
    let feeder = {
        let contents = contents.clone();
        let t = t.clone();
        tokio::spawn(async move {
            for (i, content) in contents.iter().enumerate() {
                publish(
                    &publisher,
                    &t,
                    &format!("k-{i}"),
                    content,
                    Metadata::default(),
                )
                .await;
            }
        })
    };
    let mut kills = 0;
    let mut worker = spawn();
    while kills < 6 {
        let pause = rng.gen_range(300..1200);
        tokio::time::sleep(Duration::from_millis(pause)).await;
        worker.kill().expect("SIGKILL");
        worker.wait().unwrap();
        kills += 1;
        worker = spawn();
    }
    feeder.await.unwrap();
    await_versions(f.conn(), t.tenant, ITEMS as i64).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    worker.kill().unwrap();
    worker.wait().unwrap();

    assert_eq!(
        scalar(
            f.conn(),
            "SELECT count(*) FROM item_versions WHERE tenant_id = $1",
            vec![t.tenant.into()]
        )
        .await,
        ITEMS as i64,
        "every item once, no duplicate versions"
    );
    assert_eq!(
        scalar(
            f.conn(),
            "SELECT count(*) FROM items WHERE tenant_id = $1 AND latest_version <> 1",
            vec![t.tenant.into()]
        )
        .await,
        0
    );
    let reader = f.reader();
    for i in (0..ITEMS).step_by(37) {
        let version = version_of(f.conn(), &t, &format!("k-{i}")).await;
        assert!(
            reader.read_all(version).await.unwrap() == contents[i],
            "k-{i}"
        );
    }
    let rows = f
        .conn()
        .query_all(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT object_key, size FROM packs WHERE tenant_id = $1",
            vec![t.tenant.into()],
        ))
        .await
        .unwrap();
    for row in rows {
        let key: String = row.try_get_by_index(0).unwrap();
        let size: i64 = row.try_get_by_index(1).unwrap();
        let body = f.store.get(&t.region, &key).await.unwrap();
        assert_eq!(body.len() as i64, size, "pack {key} is whole");
    }
    arkiv_tests::seed::assert_refcounts_exact(f.conn()).await;
}

/// A canary string in the metadata and content of stored items appears in
/// no S3 object (key or body), no row of a PostgreSQL dump, nowhere in
/// RabbitMQ's data directory and in none of the worker's logs. Each place
/// is first shown to be searchable: a control string written there in
/// plaintext on purpose is found.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_in_items_is_found_nowhere_in_plaintext() {
    let f = Fixture::new("pipe-canary", &["eu"], |c| {
        c.set("log.filter", "debug,sqlx=debug");
        c.set("log.format", "json");
    })
    .await;
    let t = f.tenants[0].clone();
    let canary = format!("CANARY-{}", Uuid::new_v4().simple());
    let (broker, publisher) = f.publisher().await;

    let logs = arkiv_tests::ConfigFile::with_contents("worker-log", "");
    let config = f.config.write();
    let mut worker = std::process::Command::new(arkiv_tests::bin_path("arkiv-worker"))
        .arg("--config")
        .arg(&config.path)
        .stdout(std::fs::File::create(&logs.path).unwrap())
        .stderr(
            std::fs::OpenOptions::new()
                .append(true)
                .open(&logs.path)
                .unwrap(),
        )
        .spawn()
        .expect("the worker binary starts");

    // Mail, a file and an event; small (inline) and large (chunked), text
    // that compresses and attachment-like bytes that do not.
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let mut bodies = Vec::new();
    for (i, size) in [2_000usize, 90_000, 3_000_000].into_iter().enumerate() {
        let mut body =
            format!("Subject: {canary}\r\n\r\nHello {canary}, see attached.\r\n").into_bytes();
        while body.len() < size {
            body.extend_from_slice(canary.as_bytes());
            body.extend_from_slice(&random_bytes(&mut rng, 64));
        }
        let metadata = Metadata {
            subject: Some(format!("Re: {canary}")),
            from: Some(format!("{canary}@example.test")),
            to: vec![format!("to-{canary}@example.test")],
            folder_path: Some(format!("Inbox/{canary}")),
            file_name: Some(format!("{canary}.docx")),
            file_path: Some(format!("/Documents/{canary}.docx")),
            event_title: Some(format!("Meeting {canary}")),
            labels: vec![canary.clone()],
            ..Metadata::default()
        };
        publish(&publisher, &t, &format!("canary-{i}"), &body, metadata).await;
        bodies.push(body);
    }
    await_versions(f.conn(), t.tenant, 3).await;

    // The data is really there: the reader gives the canary back.
    let version = version_of(f.conn(), &t, "canary-2").await;
    assert_eq!(f.reader().read_all(version).await.unwrap(), bodies[2]);

    worker.kill().unwrap();
    worker.wait().unwrap();

    // S3: every object under this test's prefix, keys and bodies.
    let objects = assert_absent_from_store(&f.store, &canary).await;
    assert!(objects > 0, "the packs were listed");

    // PostgreSQL: a dump of the whole database.
    assert_absent_from_database(&f.db.url, &t.tenant.to_string(), &canary);

    // RabbitMQ's data directory.
    assert_absent_from_rabbitmq(&broker, &canary).await;

    // The worker's logs, at debug level.
    let log = std::fs::read(&logs.path).unwrap();
    assert!(
        contains(
            &log,
            f.config
                .get_str("rabbitmq.queue_prefix")
                .unwrap()
                .as_bytes()
        ),
        "the log was written"
    );
    assert!(!contains(&log, canary.as_bytes()), "worker log");
}

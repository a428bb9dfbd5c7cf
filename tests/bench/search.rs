//! `BENCH search`: search latency through the API on a tenant with
//! 1,000,000 indexed versions (20 accounts; mail-like subjects drawn from
//! a 5,000-word vocabulary with a Zipf-like spread; 2,000 senders; dates
//! over three years; 2% deleted at the source).
//!
//! The versions are written as the worker writes them (sealed metadata,
//! blind term and sender indexes under the tenant's keys) but straight
//! into PostgreSQL with COPY, since running a million items through the
//! pipeline would measure the pipeline. Then a release-built arkiv-api
//! answers a mix of queries over HTTP, each as `arkiv search` asks it:
//! a text search, a sender, an account's date range, an account's deleted
//! items, and the newest of the tenant. Prints p50 and p95 overall and per
//! kind, in milliseconds.

use std::io::Write as _;
use std::time::Instant;

use arkiv_crypto::MasterKey;
use arkiv_db::accounts::{AccountKeys, SourceUser};
use arkiv_queue::Metadata;
use arkiv_tests::seed;
use arkiv_tests::{TestConfig, TestDb};
use arkiv_vault::keyring::KeyRing;
use arkiv_vault::metadata::{self, BlindIndex};
use chrono::{Duration, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use uuid::Uuid;

use crate::process::Service;

#[derive(clap::Args, Debug, Clone)]
pub struct Options {
    #[arg(long, default_value_t = 1_000_000)]
    pub versions: u64,
    /// Queries per kind.
    #[arg(long, default_value_t = 60)]
    pub queries: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            versions: 1_000_000,
            queries: 60,
        }
    }
}

const ACCOUNTS: usize = 20;
const WORDS: usize = 5_000;
const SENDERS: usize = 2_000;

/// A word of the vocabulary, the low ranks far more often (roughly 1/rank).
fn zipf_word(rng: &mut StdRng) -> usize {
    let u: f64 = rng.gen_range(0.0..1.0);
    ((WORDS as f64).powf(u) as usize)
        .saturating_sub(1)
        .min(WORDS - 1)
}

fn word(n: usize) -> String {
    // Pronounceable and distinct: w0 .. w4999 spelled with letters.
    let syllables = ["ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "xe", "zu"];
    let mut s = String::new();
    let mut k = n + WORDS;
    while k > 0 {
        s.push_str(syllables[k % 10]);
        k /= 10;
    }
    s
}

fn sender(n: usize) -> String {
    format!("{}.{}@partner{}.example", word(n), word(n / 7), n % 40)
}

fn pg(bytes: &[u8]) -> String {
    format!("\\x{}", hex::encode(bytes))
}

pub async fn run(options: Options) {
    let db = TestDb::create().await;
    let mut config = TestConfig::isolated("bench-search");
    config
        .set("database.url", db.url.clone())
        .set("log.filter", "warn");
    let settings = config.settings();
    let master = MasterKey::from_secret(&settings.keys().unwrap().master_key().unwrap());
    let partner = seed::partner(&db.conn).await;
    let t = seed::tenant(&db.conn, &master, partner, "eu").await;
    let (blind, seal) = (master.blind_index_key(), master.service_key());
    let users: Vec<SourceUser> = (0..ACCOUNTS)
        .map(|i| SourceUser {
            external_id: format!("user-{i}"),
            email: format!("user{i}@bench.example"),
        })
        .collect();
    arkiv_db::accounts::sync(
        &db.conn,
        &AccountKeys {
            blind: &blind,
            seal: &seal,
        },
        t.tenant,
        t.connection,
        &users,
        true,
    )
    .await
    .unwrap();
    let accounts: Vec<Uuid> = {
        let mut ids = Vec::new();
        for i in 0..ACCOUNTS {
            let id = seed::text(
                &db.conn,
                "SELECT id::text FROM protected_accounts WHERE external_id = $1",
                vec![format!("user-{i}").into()],
            )
            .await;
            ids.push(id.parse().unwrap());
        }
        ids
    };
    let keys = KeyRing::new(
        db.conn.clone(),
        MasterKey::from_secret(&settings.keys().unwrap().master_key().unwrap()),
        std::time::Duration::from_secs(600),
    );
    let ctx = keys.get(t.tenant).await.unwrap();

    // The index, as COPY input.
    let started = Instant::now();
    eprintln!("writing {} versions", options.versions);
    let mut rng = StdRng::seed_from_u64(11);
    let now = Utc::now();
    let mut items_csv = Vec::with_capacity(options.versions as usize * 160);
    let mut versions_csv = Vec::with_capacity(options.versions as usize * 700);
    for n in 0..options.versions {
        let item = Uuid::now_v7();
        let version = Uuid::now_v7();
        let account = accounts[n as usize % ACCOUNTS];
        let words: Vec<String> = (0..rng.gen_range(3..8))
            .map(|_| word(zipf_word(&mut rng)))
            .collect();
        let from = sender(rng.gen_range(0..SENDERS));
        let date = now - Duration::seconds(rng.gen_range(0..3 * 365 * 86_400));
        let deleted = rng.gen_bool(0.02).then(|| date + Duration::days(3));
        let m = Metadata {
            subject: Some(words.join(" ")),
            from: Some(from),
            to: vec![format!("user{}@bench.example", n as usize % ACCOUNTS)],
            date: Some(date),
            folder_path: Some("Inbox".into()),
            content_type: Some("message/rfc822".into()),
            ..Metadata::default()
        };
        let plain = metadata::encode(&m);
        let sealed = metadata::seal(&ctx.keys.data, t.tenant, version, &plain);
        let index = BlindIndex::of(&ctx.search, &m);
        let terms: Vec<String> = index.terms.iter().map(i64::to_string).collect();
        let deleted_text = deleted.map(|d| d.to_rfc3339()).unwrap_or_default();
        writeln!(
            items_csv,
            "{item},{},{account},mail,msg-{n},1,{deleted_text}",
            t.tenant
        )
        .unwrap();
        writeln!(
            versions_csv,
            "{version},{item},{},{account},mail,1,{},{},{deleted_text},,{},{},{},{},\"{{{}}}\",{}",
            t.tenant,
            date.to_rfc3339(),
            date.to_rfc3339(),
            rng.gen_range(2_000..200_000),
            pg(&blake3::hash(version.as_bytes()).as_bytes()[..]),
            pg(&blake3::hash(&plain).as_bytes()[..]),
            pg(&sealed),
            terms.join(","),
            pg(index.from_hash.as_deref().unwrap_or_default()),
        )
        .unwrap();
        if n > 0 && n % 200_000 == 0 {
            eprintln!("  {n} sealed ({:.0}s)", started.elapsed().as_secs_f64());
        }
    }
    // The secondary indexes are built after the load, as a restore of a
    // dump would: the migrations' own definitions, read back.
    let indexes: Vec<(String, String)> = {
        use arkiv_db::sea_orm::{ConnectionTrait, DbBackend, Statement};
        db.conn
            .query_all(Statement::from_string(
                DbBackend::Postgres,
                "SELECT indexname, indexdef FROM pg_indexes
                  WHERE tablename IN ('items', 'item_versions')
                    AND indexname NOT IN (SELECT conname FROM pg_constraint)",
            ))
            .await
            .unwrap()
            .into_iter()
            .map(|r| {
                (
                    r.try_get_by_index(0).unwrap(),
                    r.try_get_by_index(1).unwrap(),
                )
            })
            .collect()
    };
    let drops: Vec<String> = indexes
        .iter()
        .map(|(name, _)| format!("DROP INDEX {name}"))
        .collect();
    psql(
        &db.url,
        &drops.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    copy(
        &db.url,
        "items (id, tenant_id, account_id, workload, source_id, latest_version, deleted_at_source)",
        &items_csv,
    );
    copy(
        &db.url,
        "item_versions (id, item_id, tenant_id, account_id, workload, version, captured_at, item_date, \
         deleted_at_source, change_marker, size, content_id, metadata_hash, metadata_sealed, terms, from_hash)",
        &versions_csv,
    );
    drop((items_csv, versions_csv));
    eprintln!(
        "loaded in {:.0}s; indexing",
        started.elapsed().as_secs_f64()
    );
    let mut rebuild: Vec<&str> = indexes.iter().map(|(_, def)| def.as_str()).collect();
    rebuild.extend(["VACUUM ANALYZE items", "VACUUM ANALYZE item_versions"]);
    psql(&db.url, &rebuild);
    eprintln!("ready in {:.0}s", started.elapsed().as_secs_f64());

    let api = Service::start(&config, "arkiv-api", "api.listen").await;
    let base = api.url();
    let token = crate::operator_token(&db, &master).await;
    let http = reqwest::Client::new();

    let mut rng = StdRng::seed_from_u64(12);
    type Query = Box<dyn Fn(&mut StdRng) -> String>;
    let kinds: Vec<(&str, Query)> = vec![
        (
            "text",
            Box::new(|r: &mut StdRng| {
                format!(
                    "text={}+{}",
                    word(r.gen_range(0..50)),
                    word(r.gen_range(100..2_000))
                )
            }),
        ),
        (
            "from",
            Box::new(|r: &mut StdRng| format!("from={}", sender(r.gen_range(0..SENDERS)))),
        ),
        (
            "account_dates",
            Box::new(|r: &mut StdRng| {
                let days = r.gen_range(30..1_000);
                format!(
                    "account=user{}%40bench.example&workload=mail&after={}&before={}",
                    r.gen_range(0..ACCOUNTS),
                    (Utc::now() - Duration::days(days + 30)).format("%Y-%m-%d"),
                    (Utc::now() - Duration::days(days)).format("%Y-%m-%d"),
                )
            }),
        ),
        (
            "deleted",
            Box::new(|r: &mut StdRng| {
                format!(
                    "account=user{}%40bench.example&deleted=true",
                    r.gen_range(0..ACCOUNTS)
                )
            }),
        ),
        ("newest", Box::new(|_: &mut StdRng| String::new())),
    ];
    let mut all = Vec::new();
    let mut per_kind = Vec::new();
    let mut hits_total = 0usize;
    for (name, make) in &kinds {
        let mut times = Vec::new();
        for _ in 0..options.queries {
            let query = make(&mut rng);
            let url = format!("{base}/v1/tenants/{}/search?limit=100&{query}", t.tenant);
            let started = Instant::now();
            let response = http.get(&url).bearer_auth(&token).send().await.unwrap();
            assert!(
                response.status().is_success(),
                "{url}: {}",
                response.status()
            );
            let hits: serde_json::Value = response.json().await.unwrap();
            times.push(started.elapsed().as_secs_f64() * 1000.0);
            hits_total += hits.as_array().map_or(0, Vec::len);
        }
        times.sort_by(f64::total_cmp);
        per_kind.push(format!(
            "p95_{name}_ms={:.0}",
            times[(times.len() * 95 / 100).min(times.len() - 1)]
        ));
        all.extend(times);
    }
    all.sort_by(f64::total_cmp);
    let pct = |p: usize| all[(all.len() * p / 100).min(all.len() - 1)];
    println!(
        "BENCH search versions={} queries={} p50_ms={:.0} p95_ms={:.0} max_ms={:.0} hits_per_query={:.0} {}",
        options.versions,
        all.len(),
        pct(50),
        pct(95),
        all.last().copied().unwrap_or(0.0),
        hits_total as f64 / all.len() as f64,
        per_kind.join(" ")
    );
    api.stop();
    db.drop_database().await;
}

/// Each statement on its own (VACUUM may not run in a transaction).
fn psql(url: &str, statements: &[&str]) {
    let mut command = std::process::Command::new("psql");
    command.args([url, "-v", "ON_ERROR_STOP=1", "-q"]);
    for sql in statements {
        command.args(["-c", sql]);
    }
    let status = command.status().expect("psql runs");
    assert!(status.success(), "psql: {statements:?}");
}

fn copy(url: &str, table: &str, csv: &[u8]) {
    let mut child = std::process::Command::new("psql")
        .args([
            url,
            "-v",
            "ON_ERROR_STOP=1",
            "-q",
            "-c",
            &format!("\\copy {table} FROM STDIN WITH (FORMAT csv)"),
        ])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("psql runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(csv)
        .expect("psql takes the rows");
    assert!(child.wait().unwrap().success(), "COPY {table}");
}

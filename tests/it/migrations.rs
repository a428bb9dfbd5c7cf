use arkiv_db::entity::*;
use arkiv_db::sea_orm::{ConnectionTrait, EntityTrait, QuerySelect, Statement};
use arkiv_tests::TestDb;

async fn table_count(db: &TestDb) -> i64 {
    let row = db
        .conn
        .query_one(Statement::from_string(
            db.conn.get_database_backend(),
            "SELECT count(*) AS n FROM information_schema.tables \
             WHERE table_schema = 'public' AND table_name <> 'seaql_migrations'",
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get("", "n").unwrap()
}

#[tokio::test]
async fn migrations_go_up_down_and_up_again_on_an_empty_database() {
    let db = TestDb::create_empty().await;
    assert_eq!(table_count(&db).await, 0);

    let status = arkiv_db::migrate::status(&db.conn).await.unwrap();
    assert!(!status.is_empty() && status.iter().all(|m| !m.applied));
    assert!(arkiv_db::ensure_migrated(&db.conn).await.is_err());

    let applied = arkiv_db::migrate::up(&db.conn).await.unwrap();
    assert_eq!(applied.len(), status.len());
    // The 24 tables of DESIGN.md §3, the staging of chunked uploads, the
    // items of runs in flight, the items of restore jobs, the scheduler's
    // leases and tenants' notifications.
    assert_eq!(table_count(&db).await, 29, "every table of the schema");
    arkiv_db::ensure_migrated(&db.conn).await.unwrap();

    let rolled_back = arkiv_db::migrate::down(&db.conn, None).await.unwrap();
    assert_eq!(rolled_back.len(), status.len());
    assert_eq!(table_count(&db).await, 0, "down removes everything up made");

    arkiv_db::migrate::up(&db.conn).await.unwrap();
    assert_eq!(table_count(&db).await, 29);
    assert!(arkiv_db::migrate::status(&db.conn)
        .await
        .unwrap()
        .iter()
        .all(|m| m.applied));
}

#[tokio::test]
async fn an_unmigrated_database_is_refused_with_the_command_to_run() {
    let db = TestDb::create_empty().await;
    let err = arkiv_db::ensure_migrated(&db.conn).await.unwrap_err();
    assert!(err.to_string().contains("arkiv migrate up"), "{err}");
}

/// Every entity's columns exist with the names the entity expects: a SELECT
/// of all columns fails otherwise.
#[tokio::test]
async fn every_entity_matches_its_table() {
    let db = TestDb::create().await;
    let c = &db.conn;
    macro_rules! probe {
        ($($m:ident),+) => {$(
            $m::Entity::find().limit(1).all(c).await
                .unwrap_or_else(|e| panic!("entity {} does not match: {e}", stringify!($m)));
        )+};
    }
    probe!(
        partners,
        tenants,
        tenant_keys,
        principals,
        api_tokens,
        login_events,
        connections,
        consent_states,
        protected_accounts,
        cursors,
        runs,
        run_errors,
        packs,
        chunks,
        items,
        item_versions,
        version_chunks,
        retention_policies,
        support_grants,
        erasure_requests,
        restore_jobs,
        restore_items,
        export_jobs,
        audit_log,
        tenant_tombstones,
        upload_chunks
    );
}

#[tokio::test]
async fn the_schema_refuses_values_outside_the_domain_vocabulary() {
    let db = TestDb::create().await;
    let c = &db.conn;
    c.execute_unprepared("INSERT INTO partners (id, name) VALUES (gen_random_uuid(), 'P')")
        .await
        .unwrap();
    let bad_region = c
        .execute_unprepared(
            "INSERT INTO tenants (id, partner_id, name, region) \
             SELECT gen_random_uuid(), id, 'T', 'EU West' FROM partners",
        )
        .await;
    assert!(bad_region.is_err(), "a malformed region must be refused");
    let bad_state = c
        .execute_unprepared(
            "INSERT INTO tenants (id, partner_id, name, region, subscription_state) \
             SELECT gen_random_uuid(), id, 'T', 'eu', 'paused' FROM partners",
        )
        .await;
    assert!(
        bad_state.is_err(),
        "an unknown subscription state must be refused"
    );
}

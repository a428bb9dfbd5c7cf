//! Rows a test or benchmark needs before the pipeline can store anything: a
//! partner, and tenants with wrapped keys, a connection and one included
//! account, written straight to the database.

use arkiv_crypto::{MasterKey, TenantKeys};
use arkiv_db::sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement, Value};
use arkiv_domain::Region;
use uuid::Uuid;

/// A tenant with keys, an active Microsoft 365 connection and one account.
#[derive(Clone, Debug)]
pub struct SeededTenant {
    pub tenant: Uuid,
    pub connection: Uuid,
    pub account: Uuid,
    pub region: Region,
}

/// A new partner's id.
pub async fn partner(db: &DatabaseConnection) -> Uuid {
    let partner = Uuid::now_v7();
    exec(
        db,
        "INSERT INTO partners (id, name) VALUES ($1, $2)",
        vec![partner.into(), format!("Partner {partner}").into()],
    )
    .await;
    partner
}

/// A new tenant of `partner` in `region`, its keys wrapped by `master`.
pub async fn tenant(
    db: &DatabaseConnection,
    master: &MasterKey,
    partner: Uuid,
    region: &str,
) -> SeededTenant {
    let (tenant, connection, account) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    exec(
        db,
        "INSERT INTO tenants (id, partner_id, name, region) VALUES ($1, $2, $3, $4)",
        vec![
            tenant.into(),
            partner.into(),
            format!("Tenant {tenant}").into(),
            region.into(),
        ],
    )
    .await;
    let wrapped = TenantKeys::generate().wrap(master, tenant.as_bytes());
    exec(
        db,
        "INSERT INTO tenant_keys (tenant_id, wrapped_data_key, wrapped_dedup_key) VALUES ($1, $2, $3)",
        vec![tenant.into(), wrapped.data.into(), wrapped.dedup.into()],
    )
    .await;
    exec(
        db,
        "INSERT INTO connections (id, tenant_id, provider, status) VALUES ($1, $2, 'm365', 'active')",
        vec![connection.into(), tenant.into()],
    )
    .await;
    exec(
        db,
        "INSERT INTO protected_accounts (id, tenant_id, connection_id, external_id, email_hash, email_sealed, included)
         VALUES ($1, $2, $3, $4, $5, $6, true)",
        vec![
            account.into(),
            tenant.into(),
            connection.into(),
            account.to_string().into(),
            vec![1u8; 32].into(),
            vec![2u8; 40].into(),
        ],
    )
    .await;
    SeededTenant {
        tenant,
        connection,
        account,
        region: region.parse().expect("a known region"),
    }
}

/// Run one statement, panicking with it on failure.
pub async fn exec(db: &DatabaseConnection, sql: &str, values: Vec<Value>) {
    db.execute(Statement::from_sql_and_values(
        DbBackend::Postgres,
        sql,
        values,
    ))
    .await
    .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// The first column of a one-row query as an integer (0 for NULL).
pub async fn scalar(db: &DatabaseConnection, sql: &str, values: Vec<Value>) -> i64 {
    first_column::<i64>(db, sql, values).await.unwrap_or(0)
}

/// The first column of a one-row query as text ("" for NULL).
pub async fn text(db: &DatabaseConnection, sql: &str, values: Vec<Value>) -> String {
    first_column::<String>(db, sql, values)
        .await
        .unwrap_or_default()
}

/// The first column of every row of a query, as text.
pub async fn texts(db: &DatabaseConnection, sql: &str) -> Vec<String> {
    db.query_all(Statement::from_string(DbBackend::Postgres, sql))
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .iter()
        .map(|row| {
            row.try_get_by_index::<String>(0)
                .unwrap_or_else(|e| panic!("{sql}: {e}"))
        })
        .collect()
}

/// A work item of `tenant` (a deletion of an item nobody has), for the
/// queues' tests.
pub fn deleted_work_item(tenant: Uuid) -> arkiv_queue::WorkItem {
    arkiv_queue::WorkItem::Deleted {
        item: arkiv_queue::ItemKey {
            tenant_id: tenant,
            connection_id: Uuid::now_v7(),
            account_id: Uuid::now_v7(),
            provider: arkiv_domain::Provider::M365,
            workload: arkiv_domain::Workload::Mail,
            source_id: format!("stray-{}", Uuid::new_v4().simple()),
        },
        change_marker: None,
        deleted_at: chrono::Utc::now(),
        origin: Default::default(),
    }
}

async fn first_column<T: arkiv_db::sea_orm::TryGetable>(
    db: &DatabaseConnection,
    sql: &str,
    values: Vec<Value>,
) -> Option<T> {
    let row = db
        .query_one(Statement::from_sql_and_values(
            DbBackend::Postgres,
            sql,
            values,
        ))
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .unwrap_or_else(|| panic!("{sql}: no row"));
    row.try_get_by_index::<Option<T>>(0)
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// The index's reference counts are exact: every chunk's `refcount` equals
/// the number of version chunks naming it (garbage collection trusts them).
pub async fn assert_refcounts_exact(db: &DatabaseConnection) {
    let wrong = scalar(
        db,
        "SELECT count(*) FROM chunks c
          WHERE c.refcount <> (SELECT count(*) FROM version_chunks v
                                WHERE v.tenant_id = c.tenant_id AND v.chunk_id = c.id)",
        vec![],
    )
    .await;
    let chunks = scalar(db, "SELECT count(*) FROM chunks", vec![]).await;
    assert!(chunks > 0, "the index holds chunks");
    assert_eq!(wrong, 0, "chunks whose refcount is not their references");
}

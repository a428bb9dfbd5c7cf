//! Cursors: where each account's workload (and scope: a mail folder, a
//! calendar, a shared drive) continues next time.

use arkiv_domain::Workload;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement};
use uuid::Uuid;

pub async fn get(
    db: &DatabaseConnection,
    account: Uuid,
    workload: Workload,
    scope: &str,
) -> Result<Option<String>, DbErr> {
    let row = db
        .query_one(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT value FROM cursors WHERE account_id = $1 AND workload = $2 AND scope = $3",
            [account.into(), workload.as_str().into(), scope.into()],
        ))
        .await?;
    row.map(|r| r.try_get_by_index::<String>(0)).transpose()
}

/// The scopes of an account's workload that have a cursor.
pub async fn scopes(
    db: &DatabaseConnection,
    account: Uuid,
    workload: Workload,
) -> Result<Vec<String>, DbErr> {
    db.query_all(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT scope FROM cursors WHERE account_id = $1 AND workload = $2 ORDER BY scope",
        [account.into(), workload.as_str().into()],
    ))
    .await?
    .into_iter()
    .map(|r| r.try_get_by_index::<String>(0))
    .collect()
}

/// Store a cursor. Call only once every work item before it is confirmed.
pub async fn set(
    db: &DatabaseConnection,
    account: Uuid,
    workload: Workload,
    scope: &str,
    value: &str,
) -> Result<(), DbErr> {
    db.execute(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "INSERT INTO cursors (account_id, workload, scope, value) VALUES ($1, $2, $3, $4)
         ON CONFLICT (account_id, workload, scope)
         DO UPDATE SET value = EXCLUDED.value, updated_at = now()",
        [
            account.into(),
            workload.as_str().into(),
            scope.into(),
            value.into(),
        ],
    ))
    .await?;
    Ok(())
}

/// Forget a cursor: the next walk of that scope starts from scratch.
pub async fn clear(
    db: &DatabaseConnection,
    account: Uuid,
    workload: Workload,
    scope: &str,
) -> Result<(), DbErr> {
    db.execute(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "DELETE FROM cursors WHERE account_id = $1 AND workload = $2 AND scope = $3",
        [account.into(), workload.as_str().into(), scope.into()],
    ))
    .await?;
    Ok(())
}

/// Which of `accounts` hold a cursor for `scope` of a workload (who walked
/// a shared drive before, say).
pub async fn holders(
    db: &DatabaseConnection,
    accounts: Vec<Uuid>,
    workload: Workload,
    scope: &str,
) -> Result<std::collections::HashSet<Uuid>, DbErr> {
    db.query_all(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT account_id FROM cursors WHERE account_id = ANY($1) AND workload = $2 AND scope = $3",
        [accounts.into(), workload.as_str().into(), scope.into()],
    ))
    .await?
    .into_iter()
    .map(|r| r.try_get_by_index::<Uuid>(0))
    .collect()
}

use arkiv_db::audit::{self, Entry, Outcome};
use arkiv_db::sea_orm::{ConnectionTrait, TransactionTrait};
use arkiv_tests::TestDb;
use serde_json::json;

async fn append(db: &TestDb, action: &str) {
    let txn = db.conn.begin().await.unwrap();
    audit::append(
        &txn,
        Entry {
            details: json!({ "n": action.len(), "z": [1, 2], "a": "x" }),
            ..Entry::new(action, Outcome::Success)
        },
    )
    .await
    .unwrap();
    txn.commit().await.unwrap();
}

#[tokio::test]
async fn the_audit_chain_verifies_and_shows_tampering() {
    let db = TestDb::create().await;
    for action in ["a.one", "a.two", "a.three"] {
        append(&db, action).await;
    }
    let report = audit::verify(&db.conn, None).await.unwrap();
    assert_eq!(report.entries, 3);
    assert!(report.is_intact(), "{report:?}");

    // Rows are append-only...
    let update = db
        .conn
        .execute_unprepared("UPDATE audit_log SET action = 'x' WHERE seq = 2")
        .await;
    assert!(update.is_err(), "the trigger must refuse updates");

    // ...and if someone with superuser rights edits one anyway, it shows.
    db.conn
        .execute_unprepared(
            "ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update; \
             UPDATE audit_log SET action = 'a.forged' WHERE seq = 2; \
             ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_update;",
        )
        .await
        .unwrap();
    let report = audit::verify(&db.conn, None).await.unwrap();
    assert_eq!(report.first_broken, Some(2));
}

#[tokio::test]
async fn concurrent_appends_keep_one_unbroken_chain() {
    let db = TestDb::create().await;
    let mut tasks = Vec::new();
    for i in 0..16 {
        let conn = db.conn.clone();
        tasks.push(tokio::spawn(async move {
            let txn = conn.begin().await.unwrap();
            audit::append(
                &txn,
                Entry::new(format!("concurrent.{i}"), Outcome::Success),
            )
            .await
            .unwrap();
            txn.commit().await.unwrap();
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let report = audit::verify(&db.conn, None).await.unwrap();
    assert_eq!(report.entries, 16);
    assert!(report.is_intact(), "{report:?}");
}

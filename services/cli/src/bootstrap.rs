//! `arkiv bootstrap`: the first operator of a fresh installation.
//!
//! This is the one way in that does not go through the API, so it is
//! limited: it works only while no operator exists, unless `--reissue` is
//! given, which issues a new token to the first operator (for an operator
//! with database access who has lost every token). Both are audited.

use std::path::Path;

use anyhow::{bail, Context};
use arkiv_config::Settings;
use arkiv_crypto::MasterKey;
use arkiv_db::audit::{self, Actor, Entry, Outcome};
use arkiv_db::principals::{self, NewPrincipal, PrincipalKeys};
use arkiv_db::sea_orm::{ConnectionTrait, Statement, TransactionTrait};
use arkiv_domain::{PrincipalId, Role};
use serde_json::json;

use crate::output::Output;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The operator's e-mail address.
    #[arg(long, default_value = "operator@arkiv.local")]
    email: String,
    /// If an operator exists, issue a new token to the first one instead of failing.
    #[arg(long)]
    reissue: bool,
    /// Days until the token expires.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u16).range(1..=365))]
    days: u16,
}

pub async fn run(config: Option<&Path>, args: Args, out: &Output) -> anyhow::Result<()> {
    let settings = Settings::load(config)?;
    let master = MasterKey::from_secret(&settings.keys()?.master_key()?);
    let (blind, seal) = (master.blind_index_key(), master.service_key());
    let keys = PrincipalKeys {
        blind: &blind,
        seal: &seal,
    };
    let db = arkiv_db::connect(settings.database()?).await?;
    arkiv_db::ensure_migrated(&db).await?;

    let txn = db.begin().await?;
    // Two bootstraps at once must not both create an operator.
    txn.execute(Statement::from_string(
        txn.get_database_backend(),
        "SELECT pg_advisory_xact_lock(7301001)",
    ))
    .await?;
    let (operator, created) = match principals::first_operator(&txn).await? {
        None => {
            let new = NewPrincipal {
                role: Role::Operator,
                partner_id: None,
                tenant_id: None,
                email: args.email.clone(),
            };
            (principals::create(&txn, &keys, new).await?, true)
        }
        Some(_) if !args.reissue => bail!(
            "an operator already exists: use its API token, or `arkiv bootstrap --reissue` \
             to issue a new one with direct database access"
        ),
        Some(existing) => (existing, false),
    };
    let principal = PrincipalId::from_uuid(operator.id);
    let ttl = chrono::Duration::days(i64::from(args.days));
    let (token_row, token) = principals::issue_token(&txn, principal, "bootstrap", ttl)
        .await
        .context("issuing the token")?;
    let action = if created {
        "bootstrap.operator_created"
    } else {
        "bootstrap.token_reissued"
    };
    audit::append(
        &txn,
        Entry {
            actor: Actor {
                id: Some(operator.id),
                role: Some("cli".into()),
            },
            target: Some(operator.id.to_string()),
            details: json!({ "token_id": token_row.id }),
            ..Entry::new(action, Outcome::Success)
        },
    )
    .await?;
    txn.commit().await?;

    let value = json!({
        "token": token.expose(),
        "principal_id": operator.id,
        "created": created,
        "expires_at": token_row.expires_at,
    });
    let rows = vec![vec![
        operator.id.to_string(),
        token.expose().to_owned(),
        token_row.expires_at.to_rfc3339(),
    ]];
    out.print(&value, &["operator", "token (shown once)", "expires"], rows);
    Ok(())
}

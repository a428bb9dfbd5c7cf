//! The commands that talk to the API.

use anyhow::Context;
use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::{json, Value};

use crate::api::Api;
use crate::output::Output;

fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn rows(items: &Value, cols: &[&str]) -> Vec<Vec<String>> {
    items
        .as_array()
        .into_iter()
        .flatten()
        .map(|item| cols.iter().map(|c| s(&item[*c])).collect())
        .collect()
}

fn one(item: &Value, cols: &[&str]) -> Vec<Vec<String>> {
    vec![cols.iter().map(|c| s(&item[*c])).collect()]
}

#[derive(Debug, Subcommand)]
pub enum Partner {
    /// Create a partner (operators).
    Create {
        #[arg(long)]
        name: String,
    },
    List,
}

pub async fn partner(api: &Api, cmd: Partner, out: &Output) -> anyhow::Result<()> {
    let cols = ["id", "name", "created_at"];
    match cmd {
        Partner::Create { name } => {
            let p = api.post("/v1/partners", json!({ "name": name })).await?;
            out.print(&p, &cols, one(&p, &cols));
        }
        Partner::List => {
            let list = api.get("/v1/partners").await?;
            out.print(&list, &cols, rows(&list, &cols));
        }
    }
    Ok(())
}

#[derive(Debug, Subcommand)]
pub enum Tenant {
    /// Onboard a customer tenant under a partner (starts a 14-day trial).
    Create {
        #[arg(long)]
        partner: String,
        #[arg(long)]
        name: String,
        /// Where its data lives: one of the deployment's regions.
        #[arg(long)]
        region: String,
        #[arg(long)]
        plan: Option<String>,
    },
    List,
    Show {
        #[arg(long)]
        tenant: String,
    },
    /// Activate a trial (partners and operators).
    Activate {
        #[arg(long)]
        tenant: String,
    },
    /// End the subscription: backups stop and the data is purged after the
    /// grace period (48 h by default) unless reactivated first.
    End {
        #[arg(long)]
        tenant: String,
        /// Purge at once (the customer asked for immediate deletion).
        #[arg(long)]
        purge_now: bool,
    },
    /// Reactivate an ended subscription before its purge.
    Reactivate {
        #[arg(long)]
        tenant: String,
    },
    /// Purge an ended tenant now; an active one only with --purge-now.
    Purge {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        purge_now: bool,
    },
}

pub async fn tenant(api: &Api, cmd: Tenant, out: &Output) -> anyhow::Result<()> {
    let cols = [
        "id",
        "name",
        "region",
        "subscription_state",
        "plan",
        "purge_after",
    ];
    let t = match cmd {
        Tenant::Create {
            partner,
            name,
            region,
            plan,
        } => {
            api.post(
                "/v1/tenants",
                json!({ "partner_id": partner, "name": name, "region": region, "plan": plan }),
            )
            .await?
        }
        Tenant::List => {
            let list = api.get("/v1/tenants").await?;
            out.print(&list, &cols, rows(&list, &cols));
            return Ok(());
        }
        Tenant::Show { tenant } => api.get(&format!("/v1/tenants/{tenant}")).await?,
        Tenant::Activate { tenant } => {
            api.call(
                Method::PATCH,
                &format!("/v1/tenants/{tenant}"),
                Some(json!({ "subscription_state": "active" })),
            )
            .await?
        }
        Tenant::End { tenant, purge_now } => {
            api.post(
                &format!("/v1/tenants/{tenant}/end"),
                json!({ "purge_now": purge_now }),
            )
            .await?
        }
        Tenant::Reactivate { tenant } => {
            api.post(&format!("/v1/tenants/{tenant}/reactivate"), json!({}))
                .await?
        }
        Tenant::Purge { tenant, purge_now } => {
            api.post(
                &format!("/v1/tenants/{tenant}/purge"),
                json!({ "purge_now": purge_now }),
            )
            .await?
        }
    };
    out.print(&t, &cols, one(&t, &cols));
    Ok(())
}

#[derive(Debug, Subcommand)]
pub enum Connect {
    /// Start the Microsoft 365 admin consent; prints the URL to send the
    /// tenant admin to.
    M365 {
        #[arg(long)]
        tenant: String,
        /// The customer's Microsoft 365 domain, if known.
        #[arg(long)]
        domain: Option<String>,
    },
    /// Connect a Google Workspace domain whose admin has authorised
    /// Arkiv's service account for domain-wide delegation.
    Google {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        domain: String,
        #[arg(long)]
        admin: String,
    },
}

pub async fn connect(api: &Api, cmd: Connect, out: &Output) -> anyhow::Result<()> {
    match cmd {
        Connect::M365 { tenant, domain } => {
            let r = api
                .post(
                    &format!("/v1/tenants/{tenant}/connections/m365"),
                    json!({ "domain": domain }),
                )
                .await?;
            out.print(&r, &["id", "consent_url"], one(&r, &["id", "consent_url"]));
        }
        Connect::Google {
            tenant,
            domain,
            admin,
        } => {
            let r = api
                .post(
                    &format!("/v1/tenants/{tenant}/connections/google"),
                    json!({ "domain": domain, "admin_email": admin }),
                )
                .await?;
            out.print(
                &r,
                &["id", "status", "accounts", "detail"],
                one(&r, &["id", "status", "accounts", "detail"]),
            );
        }
    }
    Ok(())
}

#[derive(Debug, Subcommand)]
pub enum Connection {
    List {
        #[arg(long)]
        tenant: String,
    },
    /// Check a pending Google connection again.
    Verify {
        #[arg(long)]
        connection: String,
    },
    Revoke {
        #[arg(long)]
        connection: String,
    },
    /// How often scheduled backups run (60 minutes to a week).
    Schedule {
        #[arg(long)]
        connection: String,
        #[arg(long, value_name = "MINUTES")]
        every_minutes: i32,
    },
}

pub async fn connection(api: &Api, cmd: Connection, out: &Output) -> anyhow::Result<()> {
    let cols = ["id", "provider", "status", "external_id", "status_detail"];
    match cmd {
        Connection::List { tenant } => {
            let list = api
                .get(&format!("/v1/tenants/{tenant}/connections"))
                .await?;
            out.print(&list, &cols, rows(&list, &cols));
        }
        Connection::Verify { connection } => {
            let r = api
                .post(&format!("/v1/connections/{connection}/verify"), json!({}))
                .await?;
            out.print(
                &r,
                &["id", "status", "detail"],
                one(&r, &["id", "status", "detail"]),
            );
        }
        Connection::Schedule {
            connection,
            every_minutes,
        } => {
            let c = api
                .call(
                    Method::PATCH,
                    &format!("/v1/connections/{connection}"),
                    Some(json!({ "schedule_minutes": every_minutes })),
                )
                .await?;
            let cols = ["id", "provider", "status", "schedule_minutes"];
            out.print(&c, &cols, one(&c, &cols));
        }
        Connection::Revoke { connection } => {
            api.call(
                Method::DELETE,
                &format!("/v1/connections/{connection}"),
                None,
            )
            .await?;
            out.print(
                &json!({ "id": connection, "status": "revoked" }),
                &["id", "status"],
                vec![vec![connection, "revoked".into()]],
            );
        }
    }
    Ok(())
}

#[derive(Debug, Subcommand)]
pub enum Account {
    List {
        #[arg(long)]
        tenant: String,
    },
    /// Back an account up.
    Include {
        #[arg(long)]
        account: String,
    },
    /// Stop backing an account up (its data is purged after 48 hours).
    Exclude {
        #[arg(long)]
        account: String,
    },
}

pub async fn account(api: &Api, cmd: Account, out: &Output) -> anyhow::Result<()> {
    let cols = ["id", "email", "included", "purge_after"];
    let (id, included) = match cmd {
        Account::List { tenant } => {
            let list = api.get(&format!("/v1/tenants/{tenant}/accounts")).await?;
            out.print(&list, &cols, rows(&list, &cols));
            return Ok(());
        }
        Account::Include { account } => (account, true),
        Account::Exclude { account } => (account, false),
    };
    let a = api
        .call(
            Method::PATCH,
            &format!("/v1/accounts/{id}"),
            Some(json!({ "included": included })),
        )
        .await?;
    out.print(&a, &cols, one(&a, &cols));
    Ok(())
}

#[derive(Debug, Subcommand)]
pub enum Principal {
    Create {
        /// operator, partner-admin, tenant-admin or support.
        #[arg(long)]
        role: String,
        #[arg(long)]
        email: String,
        #[arg(long)]
        partner: Option<String>,
        #[arg(long)]
        tenant: Option<String>,
    },
    List,
    Disable {
        #[arg(long)]
        principal: String,
    },
    /// Set a console password (read from stdin) and print a new TOTP secret.
    Credentials {
        #[arg(long)]
        principal: String,
    },
}

pub async fn principal(api: &Api, cmd: Principal, out: &Output) -> anyhow::Result<()> {
    let cols = ["id", "role", "email", "partner_id", "tenant_id", "disabled"];
    match cmd {
        Principal::Create {
            role,
            email,
            partner,
            tenant,
        } => {
            let p = api.post("/v1/principals", json!({ "role": role, "email": email, "partner_id": partner, "tenant_id": tenant })).await?;
            out.print(&p, &cols, one(&p, &cols));
        }
        Principal::List => {
            let list = api.get("/v1/principals").await?;
            out.print(&list, &cols, rows(&list, &cols));
        }
        Principal::Disable { principal } => {
            api.call(Method::DELETE, &format!("/v1/principals/{principal}"), None)
                .await?;
            out.print(
                &json!({ "id": principal, "disabled": true }),
                &["id", "disabled"],
                vec![vec![principal, "true".into()]],
            );
        }
        Principal::Credentials { principal } => {
            let mut password = String::new();
            std::io::stdin()
                .read_line(&mut password)
                .context("reading the password from stdin")?;
            let c = api
                .call(
                    Method::PUT,
                    &format!("/v1/principals/{principal}/credentials"),
                    Some(json!({ "password": password.trim_end_matches(['\r', '\n']) })),
                )
                .await?;
            out.print(
                &c,
                &["totp_secret", "otpauth_url"],
                one(&c, &["totp_secret", "otpauth_url"]),
            );
        }
    }
    Ok(())
}

#[derive(Debug, Subcommand)]
pub enum Token {
    /// Issue an API token (shown once).
    Create {
        #[arg(long)]
        principal: String,
        #[arg(long)]
        label: Option<String>,
        #[arg(long)]
        days: Option<i64>,
    },
    List {
        #[arg(long)]
        principal: String,
    },
    Revoke {
        #[arg(long)]
        token: String,
    },
}

pub async fn token(api: &Api, cmd: Token, out: &Output) -> anyhow::Result<()> {
    match cmd {
        Token::Create {
            principal,
            label,
            days,
        } => {
            let t = api
                .post(
                    &format!("/v1/principals/{principal}/tokens"),
                    json!({ "label": label, "days": days }),
                )
                .await?;
            out.print(
                &t,
                &["id", "token", "expires_at"],
                one(&t, &["id", "token", "expires_at"]),
            );
        }
        Token::List { principal } => {
            let cols = ["id", "label", "expires_at", "revoked_at", "last_used_at"];
            let list = api
                .get(&format!("/v1/principals/{principal}/tokens"))
                .await?;
            out.print(&list, &cols, rows(&list, &cols));
        }
        Token::Revoke { token } => {
            api.call(Method::DELETE, &format!("/v1/tokens/{token}"), None)
                .await?;
            out.print(
                &json!({ "id": token, "revoked": true }),
                &["id", "revoked"],
                vec![vec![token, "true".into()]],
            );
        }
    }
    Ok(())
}

#[derive(Debug, Subcommand)]
pub enum Grant {
    /// Give support time-limited access to the tenant's backup data.
    Support {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        hours: i64,
    },
    List {
        #[arg(long)]
        tenant: String,
    },
    Revoke {
        #[arg(long)]
        grant: String,
    },
}

pub async fn grant(api: &Api, cmd: Grant, out: &Output) -> anyhow::Result<()> {
    let cols = ["id", "expires_at", "active"];
    match cmd {
        Grant::Support { tenant, hours } => {
            let g = api
                .post(
                    &format!("/v1/tenants/{tenant}/support-grants"),
                    json!({ "hours": hours }),
                )
                .await?;
            out.print(&g, &cols, one(&g, &cols));
        }
        Grant::List { tenant } => {
            let list = api
                .get(&format!("/v1/tenants/{tenant}/support-grants"))
                .await?;
            out.print(&list, &cols, rows(&list, &cols));
        }
        Grant::Revoke { grant } => {
            api.call(Method::DELETE, &format!("/v1/support-grants/{grant}"), None)
                .await?;
            out.print(
                &json!({ "id": grant, "revoked": true }),
                &["id", "revoked"],
                vec![vec![grant, "true".into()]],
            );
        }
    }
    Ok(())
}

#[derive(Debug, Subcommand)]
pub enum Retention {
    Show {
        #[arg(long)]
        tenant: String,
    },
    /// Set the tenant default (omit a value to keep forever).
    Set {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        keep_versions_days: Option<i32>,
        #[arg(long)]
        keep_deleted_days: Option<i32>,
    },
}

pub async fn retention(api: &Api, cmd: Retention, out: &Output) -> anyhow::Result<()> {
    let cols = ["keep_versions_days", "keep_deleted_days"];
    let r = match cmd {
        Retention::Show { tenant } => api.get(&format!("/v1/tenants/{tenant}/retention")).await?,
        Retention::Set {
            tenant,
            keep_versions_days,
            keep_deleted_days,
        } => {
            let body = json!({ "keep_versions_days": keep_versions_days, "keep_deleted_days": keep_deleted_days });
            api.call(
                Method::PUT,
                &format!("/v1/tenants/{tenant}/retention"),
                Some(body),
            )
            .await?
        }
    };
    out.print(&r, &cols, one(&r, &cols));
    Ok(())
}

#[derive(Debug, Subcommand)]
pub enum Audit {
    /// Print the tenant's audit log as CSV or JSON.
    Export {
        #[arg(long)]
        tenant: String,
        #[arg(long, value_parser = ["csv", "json"], default_value = "json")]
        format: String,
    },
    /// Check the tenant's hash chain; non-zero exit if broken.
    Verify {
        #[arg(long)]
        tenant: String,
    },
}

pub async fn audit(api: &Api, cmd: Audit, out: &Output) -> anyhow::Result<()> {
    match cmd {
        Audit::Export { tenant, format } => {
            let response = api
                .send(
                    Method::GET,
                    &format!("/v1/tenants/{tenant}/audit?format={format}"),
                    None,
                )
                .await?;
            print!("{}", response.text().await?);
        }
        Audit::Verify { tenant } => {
            let v = api
                .get(&format!("/v1/tenants/{tenant}/audit/verify"))
                .await?;
            out.print(
                &v,
                &["entries", "intact", "first_broken"],
                one(&v, &["entries", "intact", "first_broken"]),
            );
            if v["intact"] != true {
                anyhow::bail!(
                    "the audit chain is broken at entry {}",
                    s(&v["first_broken"])
                );
            }
        }
    }
    Ok(())
}

#[derive(Debug, Args)]
pub struct Login {
    #[arg(long)]
    pub email: String,
    /// The current TOTP code; the password is read from stdin.
    #[arg(long)]
    pub totp: String,
}

pub async fn login(base: Option<String>, args: Login, out: &Output) -> anyhow::Result<()> {
    let base = base
        .or_else(|| std::env::var("ARKIV_API").ok())
        .context("no API address: set ARKIV_API (or --api)")?;
    let mut password = String::new();
    std::io::stdin()
        .read_line(&mut password)
        .context("reading the password from stdin")?;
    let response = reqwest::Client::new()
        .post(format!("{}/v1/auth/login", base.trim_end_matches('/')))
        .json(&json!({ "email": args.email, "password": password.trim_end_matches(['\r', '\n']), "totp": args.totp }))
        .send()
        .await?;
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        anyhow::bail!("{}: {}", s(&body["title"]), s(&body["detail"]));
    }
    out.print(
        &body,
        &["principal_id", "token", "expires_at"],
        one(&body, &["principal_id", "token", "expires_at"]),
    );
    Ok(())
}

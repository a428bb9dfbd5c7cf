//! Carrying out one backup run of a Google Workspace connection: the
//! directory into protected accounts, every included account's Gmail,
//! My Drive and calendars, then each shared drive of the domain once,
//! under a custodian account that is a member of it. The lease, settling
//! and sweeps are `arkiv_backup::run`'s.

use std::sync::Arc;
use std::time::Duration;

use arkiv_backup::record::{RunErrorEntry, RunRecord};
use arkiv_backup::request::RunRequest;
use arkiv_backup::restore::RestoreError;
use arkiv_backup::run::{Backup, RunError, Runner, Walked};
use arkiv_config::ConnectorSettings;
use arkiv_crypto::{BlindIndexKey, ServiceKey};
use arkiv_db::accounts::{AccountKeys, SourceUser};
use arkiv_db::entity::{connections, protected_accounts, tenants};
use arkiv_db::sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder};
use arkiv_domain::{Provider, Workload};
use arkiv_provider::google::ServiceAccount;
use arkiv_provider::secrets::ConnectionSecrets;
use arkiv_queue::WorkPublisher;
use futures::stream::FuturesUnordered;
use futures::StreamExt;
use tokio::sync::watch;
use url::Url;

use crate::google::{Google, GoogleError, Limits};
use crate::walk::{Account, RunScope, SharedDrive, WalkError};

/// Everything a connector instance shares between its runs.
#[derive(Debug)]
pub struct Connector {
    pub db: DatabaseConnection,
    pub publisher: Arc<WorkPublisher>,
    pub service: ServiceKey,
    pub blind: BlindIndexKey,
    pub api_root: Url,
    /// Arkiv's own service account, for connections without their own.
    pub account: Option<ServiceAccount>,
    pub settings: ConnectorSettings,
    pub keys: Arc<arkiv_vault::keyring::KeyRing>,
    pub reader: arkiv_vault::reader::Reader,
    /// This instance's name in leases and runs.
    pub instance: String,
}

/// A connection, ready to be worked on.
#[derive(Debug)]
pub struct Connected {
    pub google: Google,
    pub domain: String,
    pub admin: String,
}

impl Connector {
    pub async fn carry_out(
        &self,
        request: &RunRequest,
        stop: watch::Receiver<bool>,
    ) -> Result<(), RunError> {
        Runner {
            db: &self.db,
            publisher: &self.publisher,
            provider: Provider::Google,
            instance: &self.instance,
            lease_ttl: Duration::from_secs(self.settings.lease_ttl_secs),
            settle_timeout: Duration::from_secs(self.settings.settle_timeout_secs),
        }
        .carry_out(request, stop, self)
        .await
    }

    fn account_keys(&self) -> AccountKeys<'_> {
        AccountKeys {
            blind: &self.blind,
            seal: &self.service,
        }
    }

    /// A Google client for an active connection, with its own service
    /// account or Arkiv's; `Err` says what is wrong with it.
    pub fn connect(
        &self,
        connection: &connections::Model,
        record: Option<Arc<RunRecord>>,
    ) -> Result<Connected, String> {
        let (domain, secrets) = ConnectionSecrets::of_active(
            &self.service,
            connection.id,
            &connection.status,
            connection.external_id.as_deref(),
            connection.credentials_sealed.as_deref(),
            "the connection has no Workspace domain",
        )?;
        let admin = secrets
            .google_admin
            .ok_or("the connection names no admin to act as: connect it again")?;
        let account = match secrets.google_key {
            Some(json) => ServiceAccount::parse(&json)?,
            None => self.account.clone().ok_or(
                "no service account: this deployment has no google.service_account_file and the connection none of its own",
            )?,
        };
        let google = Google::new(
            self.api_root.clone(),
            account,
            Limits {
                user_concurrency: self.settings.mailbox_concurrency,
                requests_per_second: self.settings.requests_per_second,
                max_attempts: self.settings.max_attempts,
                max_throttled: Duration::from_secs(900),
            },
            record,
        );
        Ok(Connected {
            google,
            domain,
            admin,
        })
    }

    /// The run's work; `Err` is why it failed as a whole.
    async fn backup(&self, record: &Arc<RunRecord>) -> Result<Walked, String> {
        let connection = connections::Entity::find_by_id(record.connection_id)
            .one(&self.db)
            .await
            .map_err(|e| e.to_string())?
            .ok_or("the connection no longer exists")?;
        let tenant = tenants::Entity::find_by_id(record.tenant_id)
            .one(&self.db)
            .await
            .map_err(|e| e.to_string())?
            .ok_or("the tenant no longer exists")?;
        let Connected {
            google,
            domain,
            admin,
        } = self.connect(&connection, Some(record.clone()))?;
        let google = Arc::new(google);
        let region = tenant
            .region
            .parse()
            .map_err(|e| format!("tenant region: {e}"))?;

        // The directory first: new users become protected accounts.
        let users = directory(&google, &admin, &domain)
            .await
            .map_err(|e| match e {
                GoogleError::Token(e) => format!("Google refused Arkiv's access: {e}"),
                other => format!("the directory could not be read: {other}"),
            })?;
        arkiv_db::accounts::sync(
            &self.db,
            &self.account_keys(),
            tenant.id,
            connection.id,
            &users,
            tenant.include_new_accounts,
        )
        .await
        .map_err(|e| e.to_string())?;
        let keys = self.account_keys();
        let accounts: Vec<Account> = protected_accounts::Entity::find()
            .filter(protected_accounts::Column::ConnectionId.eq(connection.id))
            .filter(protected_accounts::Column::Included.eq(true))
            .filter(protected_accounts::Column::RemovedAtSource.is_null())
            .order_by_asc(protected_accounts::Column::DiscoveredAt)
            .all(&self.db)
            .await
            .map_err(|e| e.to_string())?
            .into_iter()
            .filter_map(|a| {
                Some(Account {
                    email: arkiv_db::accounts::email(&keys, &a)?,
                    id: a.id,
                })
            })
            .collect();

        let scope = RunScope {
            db: self.db.clone(),
            google: google.clone(),
            publisher: self.publisher.clone(),
            region,
            record: record.clone(),
            page_size: self.settings.page_size,
            fetch_concurrency: self.settings.mailbox_concurrency,
            sweeps: Arc::default(),
        };
        let every_account = async {
            let mut queue = accounts.iter();
            let mut running = FuturesUnordered::new();
            loop {
                while running.len() < self.settings.accounts_in_parallel.max(1) {
                    match queue.next() {
                        Some(account) => running.push(account_backup(&scope, account)),
                        None => break,
                    }
                }
                match running.next().await {
                    Some(result) => result?,
                    None => return Ok::<(), String>(()),
                }
            }
        };
        // Shared drives alongside the accounts, not after them: each runs
        // under its custodian's lane, so the per-user limits still hold.
        let (accounts_done, drives_done) =
            tokio::join!(every_account, self.shared_drives(&scope, &admin, &accounts));
        accounts_done?;
        drives_done?;
        let sweeps = std::mem::take(&mut *scope.sweeps.lock().expect("sweeps lock"));
        Ok(Walked {
            region: scope.region,
            sweeps,
        })
    }

    /// Every shared drive of the domain, once, under a custodian: the
    /// account that walked it before if it is still a member, otherwise
    /// the first included account that is one.
    async fn shared_drives(
        &self,
        scope: &RunScope,
        admin: &str,
        accounts: &[Account],
    ) -> Result<(), String> {
        let google = &scope.google;
        let drives = match google
            .get_json(
                admin,
                "drive/v3/drives",
                &[("useDomainAdminAccess", "true"), ("pageSize", "100")],
            )
            .await
        {
            Ok(d) => d,
            Err(e) => {
                return record_error(scope, None, Workload::Drive, &e).await;
            }
        };
        let drives: Vec<SharedDrive> = drives["drives"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|d| {
                Some(SharedDrive {
                    id: d["id"].as_str()?.to_owned(),
                    name: d["name"].as_str().unwrap_or_default().to_owned(),
                })
            })
            .collect();
        // A few drives at once; each keeps to its custodian's limits.
        let mut walks = futures::stream::iter(
            drives
                .into_iter()
                .map(|drive| self.shared_drive(scope, accounts, drive)),
        )
        .buffer_unordered(4);
        while let Some(result) = walks.next().await {
            result?;
        }
        Ok(())
    }

    /// One shared drive, under the account that walked it before if it is
    /// still a member, otherwise the first included account that is one.
    async fn shared_drive(
        &self,
        scope: &RunScope,
        accounts: &[Account],
        drive: SharedDrive,
    ) -> Result<(), String> {
        let google = &scope.google;
        let id = drive.id.clone();
        let walked_by = arkiv_backup::cursor::holders(
            &self.db,
            accounts.iter().map(|a| a.id).collect(),
            Workload::Drive,
            &format!("shared:{id}"),
        )
        .await
        .map_err(|e| e.to_string())?;
        let mut candidates: Vec<&Account> = accounts
            .iter()
            .filter(|a| walked_by.contains(&a.id))
            .collect();
        candidates.extend(accounts.iter().filter(|a| !walked_by.contains(&a.id)));
        let mut custodian = None;
        for a in candidates {
            let member = google
                .get_json(
                    &a.email,
                    "drive/v3/changes/startPageToken",
                    &[("driveId", id.as_str()), ("supportsAllDrives", "true")],
                )
                .await;
            match member {
                Ok(_) => {
                    custodian = Some(a);
                    break;
                }
                Err(e) if e.status() == Some(404) => {}
                Err(e) => return record_error(scope, Some(a.id), Workload::Drive, &e).await,
            }
        }
        let Some(custodian) = custodian else {
            return scope
                .record
                .error(RunErrorEntry {
                    workload: Some(Workload::Drive),
                    item_ref: Some(id),
                    code: "sharedDriveUnreachable".into(),
                    message: "no included account is a member of this shared drive: add one, or include a member, to back it up".into(),
                    ..RunErrorEntry::default()
                })
                .await
                .map_err(|e| e.to_string());
        };
        match scope.shared_drive(custodian, drive).await {
            Ok(()) => Ok(()),
            Err(WalkError::Google(e)) => {
                record_error(scope, Some(custodian.id), Workload::Drive, &e).await
            }
            Err(e) => Err(e.to_string()),
        }
    }

    /// Carry out a restore job (see `restore.rs`).
    pub async fn restore(&self, job_id: uuid::Uuid) -> Result<(), RestoreError> {
        let Some(connection) = arkiv_backup::restore::connection_of(&self.db, job_id).await? else {
            return Ok(());
        };
        let connected = match self.connect(&connection, None) {
            Ok(c) => c,
            Err(why) => {
                arkiv_backup::restore::refuse(&self.db, job_id, crate::SERVICE, &why).await?;
                return Ok(());
            }
        };
        let target =
            crate::restore::GoogleRestore::new(Arc::new(connected.google), self.reader.clone());
        arkiv_backup::restore::carry_out(
            &self.db,
            &self.service,
            &self.keys,
            crate::SERVICE,
            job_id,
            &target,
        )
        .await?;
        Ok(())
    }
}

impl Backup for Connector {
    async fn walk(&self, record: &Arc<RunRecord>) -> Result<Walked, String> {
        self.backup(record).await
    }
}

impl arkiv_backup::jobs::Connector for Connector {
    async fn run(&self, request: RunRequest, stop: watch::Receiver<bool>) -> Result<(), RunError> {
        self.carry_out(&request, stop).await
    }

    async fn restore(&self, job: uuid::Uuid) -> Result<(), RestoreError> {
        Connector::restore(self, job).await
    }
}

/// Every user of the domain, as its admin sees the directory.
async fn directory(
    google: &Google,
    admin: &str,
    domain: &str,
) -> Result<Vec<SourceUser>, GoogleError> {
    let mut users = Vec::new();
    let mut page: Option<String> = None;
    loop {
        let mut query = vec![
            ("customer", "my_customer"),
            ("maxResults", "500"),
            ("orderBy", "email"),
        ];
        if let Some(p) = &page {
            query.push(("pageToken", p.as_str()));
        }
        let body = google
            .get_json(admin, "admin/directory/v1/users", &query)
            .await?;
        let (listed, next) = arkiv_provider::google::users_page(&body);
        let suffix = format!("@{domain}");
        users.extend(
            listed
                .into_iter()
                .filter(|u| u.email.ends_with(&suffix))
                .map(|u| SourceUser {
                    external_id: u.id,
                    email: u.email,
                }),
        );
        match next {
            Some(p) => page = Some(p),
            None => return Ok(users),
        }
    }
}

/// One account's three workloads, side by side. A workload Google refuses
/// is recorded against the account; the others carry on. `Err` only when
/// our side fails (database, RabbitMQ).
async fn account_backup(scope: &RunScope, account: &Account) -> Result<(), String> {
    let (mail, drive, calendar) = tokio::join!(
        scope.gmail(account),
        scope.drive(account),
        scope.calendar(account)
    );
    for (workload, result) in [
        (Workload::Mail, mail),
        (Workload::Drive, drive),
        (Workload::Calendar, calendar),
    ] {
        match result {
            Ok(()) => {}
            Err(WalkError::Google(e)) => {
                record_error(scope, Some(account.id), workload, &e).await?
            }
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(())
}

async fn record_error(
    scope: &RunScope,
    account: Option<uuid::Uuid>,
    workload: Workload,
    e: &GoogleError,
) -> Result<(), String> {
    scope
        .record
        .error(RunErrorEntry {
            account_id: account,
            workload: Some(workload),
            code: e.reason(),
            message: e.to_string(),
            ..RunErrorEntry::default()
        })
        .await
        .map_err(|e| e.to_string())
}

//! `items`: A backed-up item across its versions.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "items")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub account_id: Uuid,
    pub workload: String,
    pub source_id: String,
    pub latest_version: i32,
    pub deleted_at_source: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// Keyed hash of the container (mail folder) the item was last seen in.
    pub container_hash: Option<Vec<u8>>,
    /// The last backup run that saw the item, changed or not.
    pub last_seen_run: Option<Uuid>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::tenants::Entity",
        from = "Column::TenantId",
        to = "super::tenants::Column::Id"
    )]
    Tenants,
    #[sea_orm(
        belongs_to = "super::protected_accounts::Entity",
        from = "Column::AccountId",
        to = "super::protected_accounts::Column::Id"
    )]
    ProtectedAccounts,
}

impl Related<super::tenants::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Tenants.def()
    }
}

impl Related<super::protected_accounts::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::ProtectedAccounts.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}

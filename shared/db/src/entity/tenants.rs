//! `tenants`: A customer organisation.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "tenants")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub partner_id: Uuid,
    pub name: String,
    pub region: String,
    pub plan: String,
    pub subscription_state: String,
    pub trial_ends_at: Option<DateTimeUtc>,
    pub ended_at: Option<DateTimeUtc>,
    pub purge_after: Option<DateTimeUtc>,
    pub include_new_accounts: bool,
    pub last_login_at: Option<DateTimeUtc>,
    pub last_successful_run_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub inactive_notified_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::partners::Entity",
        from = "Column::PartnerId",
        to = "super::partners::Column::Id"
    )]
    Partners,
}

impl Related<super::partners::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Partners.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}

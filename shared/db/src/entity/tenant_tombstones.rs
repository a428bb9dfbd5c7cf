//! `tenant_tombstones`: What remains of a purged tenant: ids, dates, counts.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "tenant_tombstones")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: Uuid,
    pub partner_id: Uuid,
    pub region: String,
    pub created_at: DateTimeUtc,
    pub ended_at: Option<DateTimeUtc>,
    pub purged_at: DateTimeUtc,
    #[sea_orm(column_type = "JsonBinary")]
    pub counts: Json,
    pub final_sweep_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

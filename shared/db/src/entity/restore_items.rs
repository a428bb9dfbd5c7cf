//! `restore_items`: each version a restore job writes back, and its outcome.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "restore_items")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub job_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub version_id: Uuid,
    pub tenant_id: Uuid,
    pub seq: i32,
    /// pending, started, restored, skipped or failed.
    pub state: String,
    pub target_ref: Option<String>,
    pub error: Option<String>,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::restore_jobs::Entity",
        from = "Column::JobId",
        to = "super::restore_jobs::Column::Id"
    )]
    RestoreJobs,
}

impl Related<super::restore_jobs::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::RestoreJobs.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}

//! `erasure_requests`: A GDPR art. 17 erasure request for one account.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "erasure_requests")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub account_id: Option<Uuid>,
    pub account_hash: Vec<u8>,
    pub requested_by: Option<Uuid>,
    pub requested_at: DateTimeUtc,
    pub state: String,
    pub completed_at: Option<DateTimeUtc>,
    pub deleted_items: i64,
    pub deleted_versions: i64,
    pub deleted_chunks: i64,
    pub list_hash: Option<Vec<u8>>,
    #[sea_orm(column_type = "JsonBinary")]
    pub certificate: Option<Json>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::tenants::Entity",
        from = "Column::TenantId",
        to = "super::tenants::Column::Id"
    )]
    Tenants,
}

impl Related<super::tenants::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Tenants.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}

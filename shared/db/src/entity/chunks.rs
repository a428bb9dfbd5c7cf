//! `chunks`: A content-addressed, sealed chunk, in a pack or standalone.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "chunks")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Vec<u8>,
    pub pack_id: Option<Uuid>,
    pub pack_offset: Option<i64>,
    pub stored_size: i32,
    pub plain_size: i32,
    pub refcount: i32,
    pub deletable_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
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
        belongs_to = "super::packs::Entity",
        from = "Column::PackId",
        to = "super::packs::Column::Id"
    )]
    Packs,
}

impl Related<super::tenants::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Tenants.def()
    }
}

impl Related<super::packs::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Packs.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}

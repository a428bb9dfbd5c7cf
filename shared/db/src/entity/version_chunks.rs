//! `version_chunks`: The ordered chunk list of a version.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "version_chunks")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub version_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub seq: i32,
    pub tenant_id: Uuid,
    pub chunk_id: Vec<u8>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::item_versions::Entity",
        from = "Column::VersionId",
        to = "super::item_versions::Column::Id"
    )]
    ItemVersions,
}

impl Related<super::item_versions::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::ItemVersions.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}

//! `item_versions`: One captured version of an item; its metadata is sealed.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "item_versions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub item_id: Uuid,
    pub tenant_id: Uuid,
    pub account_id: Uuid,
    pub workload: String,
    pub version: i32,
    pub captured_at: DateTimeUtc,
    pub item_date: Option<DateTimeUtc>,
    pub deleted_at_source: Option<DateTimeUtc>,
    pub change_marker: Option<String>,
    pub size: i64,
    pub content_id: Vec<u8>,
    pub metadata_hash: Vec<u8>,
    pub metadata_sealed: Vec<u8>,
    /// Blind indexes of the title's words and the addresses (search).
    pub terms: Vec<i64>,
    /// Blind index of the sender's address.
    pub from_hash: Option<Vec<u8>>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::items::Entity",
        from = "Column::ItemId",
        to = "super::items::Column::Id"
    )]
    Items,
}

impl Related<super::items::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Items.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}

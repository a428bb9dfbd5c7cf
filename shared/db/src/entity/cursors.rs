//! `cursors`: A stored delta position per account, workload and scope.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "cursors")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub account_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub workload: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub scope: String,
    pub value: String,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::protected_accounts::Entity",
        from = "Column::AccountId",
        to = "super::protected_accounts::Column::Id"
    )]
    ProtectedAccounts,
}

impl Related<super::protected_accounts::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::ProtectedAccounts.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}

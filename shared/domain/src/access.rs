//! Who may do what: a pure function of the principal, the action and where
//! the resource sits, tested as a table. The API calls it for every route;
//! it returns why it refuses, and the API turns every refusal into a 404 so
//! that nothing leaks whether a resource outside one's scope exists.

use crate::{PartnerId, PrincipalId, Role, TenantId};

/// The caller, as authenticated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub id: PrincipalId,
    pub role: Role,
    pub partner: Option<PartnerId>,
    pub tenant: Option<TenantId>,
}

/// Where a resource sits: a partner, or a tenant of a partner.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// The whole service (creating partners, listing everything).
    Service,
    Partner(PartnerId),
    Tenant {
        partner: PartnerId,
        tenant: TenantId,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// Create a partner.
    CreatePartner,
    ReadPartner,
    /// Create a customer tenant under a partner.
    CreateTenant,
    /// A tenant's own record: name, region, state, connections' status.
    ReadTenant,
    /// Rename, change inclusion defaults and retention.
    ManageTenant,
    /// Activate, end or reactivate a subscription.
    ManageSubscription,
    /// Create, list and disable principals, and issue their tokens.
    ManagePrincipals,
    /// Connect or disconnect Microsoft 365 and Google Workspace.
    ManageConnections,
    /// Personal data held for the tenant: protected accounts' addresses
    /// and, later, backup content (search, restore, export).
    ReadTenantData,
    /// Include or exclude accounts, start runs.
    ManageTenantData,
    /// Write backed-up items back to the tenant's Microsoft 365 or Google
    /// Workspace (restore): support may, under the tenant's grant.
    RestoreTenantData,
    /// Grant or revoke support's time-limited access.
    ManageSupportGrant,
    /// Read and export the tenant's audit log.
    ReadAudit,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Deny(&'static str),
}

impl Decision {
    pub fn is_allowed(&self) -> bool {
        matches!(self, Decision::Allow)
    }
}

/// The tenant-level facts a decision may need.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Context {
    /// The tenant has granted support access that has not expired.
    pub support_grant_active: bool,
}

pub fn authorize(p: &Principal, action: Action, scope: Scope, ctx: Context) -> Decision {
    use Action::*;
    let in_partner = |partner: PartnerId| p.partner == Some(partner);
    match p.role {
        Role::Operator => Decision::Allow,
        Role::PartnerAdmin => match scope {
            Scope::Service => Decision::Deny("only operators act service-wide"),
            Scope::Partner(partner) if in_partner(partner) => match action {
                CreatePartner => Decision::Deny("only operators create partners"),
                _ => Decision::Allow,
            },
            Scope::Tenant { partner, .. } if in_partner(partner) => match action {
                CreatePartner | CreateTenant => Decision::Deny("not a tenant-level action"),
                _ => Decision::Allow,
            },
            _ => Decision::Deny("outside the partner's tenants"),
        },
        Role::TenantAdmin => match scope {
            Scope::Tenant { tenant, .. } if p.tenant == Some(tenant) => match action {
                ReadTenant | ManageTenant | ManagePrincipals | ManageConnections
                | ReadTenantData | ManageTenantData | RestoreTenantData | ManageSupportGrant
                | ReadAudit => Decision::Allow,
                ManageSubscription => Decision::Deny("the partner manages the subscription"),
                CreatePartner | ReadPartner | CreateTenant => {
                    Decision::Deny("not a tenant-level action")
                }
            },
            _ => Decision::Deny("outside the tenant"),
        },
        Role::Support => {
            let partner_ok = |partner: PartnerId| p.partner.is_none_or(|own| own == partner);
            match (scope, action) {
                (Scope::Tenant { partner, .. }, ReadTenant) if partner_ok(partner) => {
                    Decision::Allow
                }
                (Scope::Tenant { partner, .. }, ReadTenantData | RestoreTenantData)
                    if partner_ok(partner) =>
                {
                    if ctx.support_grant_active {
                        Decision::Allow
                    } else {
                        Decision::Deny("the tenant has not granted support access")
                    }
                }
                _ => Decision::Deny(
                    "support reads, and reads and restores tenant data only under a grant",
                ),
            }
        }
    }
}

/// Whether `p` may create a principal with `role` in `scope`.
pub fn may_create_principal(p: &Principal, role: Role, scope: Scope) -> Decision {
    match (p.role, role, scope) {
        (Role::Operator, _, _) => Decision::Allow,
        (Role::PartnerAdmin, Role::PartnerAdmin | Role::Support, Scope::Partner(partner))
        | (Role::PartnerAdmin, Role::TenantAdmin, Scope::Tenant { partner, .. })
            if p.partner == Some(partner) =>
        {
            Decision::Allow
        }
        (Role::TenantAdmin, Role::TenantAdmin, Scope::Tenant { tenant, .. })
            if p.tenant == Some(tenant) =>
        {
            Decision::Allow
        }
        _ => Decision::Deny("cannot create that principal there"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Action::*;

    struct World {
        p1: PartnerId,
        p2: PartnerId,
        t1: TenantId,
        t2: TenantId,
    }

    fn world() -> World {
        World {
            p1: PartnerId::new(),
            p2: PartnerId::new(),
            t1: TenantId::new(),
            t2: TenantId::new(),
        }
    }

    fn principal(role: Role, partner: Option<PartnerId>, tenant: Option<TenantId>) -> Principal {
        Principal {
            id: PrincipalId::new(),
            role,
            partner,
            tenant,
        }
    }

    const ALL: [Action; 13] = [
        CreatePartner,
        ReadPartner,
        CreateTenant,
        ReadTenant,
        ManageTenant,
        ManageSubscription,
        ManagePrincipals,
        ManageConnections,
        ReadTenantData,
        ManageTenantData,
        RestoreTenantData,
        ManageSupportGrant,
        ReadAudit,
    ];

    #[test]
    fn operators_may_do_everything_everywhere() {
        let w = world();
        let op = principal(Role::Operator, None, None);
        for action in ALL {
            for scope in [
                Scope::Service,
                Scope::Partner(w.p2),
                Scope::Tenant {
                    partner: w.p2,
                    tenant: w.t2,
                },
            ] {
                assert!(authorize(&op, action, scope, Context::default()).is_allowed());
            }
        }
    }

    #[test]
    fn partner_admins_act_on_their_own_partner_and_tenants_only() {
        let w = world();
        let pa = principal(Role::PartnerAdmin, Some(w.p1), None);
        let own = Scope::Tenant {
            partner: w.p1,
            tenant: w.t1,
        };
        let foreign = Scope::Tenant {
            partner: w.p2,
            tenant: w.t2,
        };
        // (action, scope, allowed)
        let table = [
            (CreateTenant, Scope::Partner(w.p1), true),
            (CreateTenant, Scope::Partner(w.p2), false),
            (CreatePartner, Scope::Service, false),
            (ReadPartner, Scope::Partner(w.p1), true),
            (ReadPartner, Scope::Partner(w.p2), false),
            (ManageSubscription, own, true),
            (ReadTenantData, own, true),
            (RestoreTenantData, own, true),
            (ReadAudit, own, true),
        ];
        for (action, scope, allowed) in table {
            assert_eq!(
                authorize(&pa, action, scope, Context::default()).is_allowed(),
                allowed,
                "{action:?} {scope:?}"
            );
        }
        for action in ALL {
            assert!(
                !authorize(&pa, action, foreign, Context::default()).is_allowed(),
                "{action:?} on a foreign tenant"
            );
        }
    }

    #[test]
    fn tenant_admins_act_on_their_tenant_but_not_its_subscription() {
        let w = world();
        let ta = principal(Role::TenantAdmin, Some(w.p1), Some(w.t1));
        let own = Scope::Tenant {
            partner: w.p1,
            tenant: w.t1,
        };
        let sibling = Scope::Tenant {
            partner: w.p1,
            tenant: w.t2,
        };
        for action in [
            ReadTenant,
            ManageTenant,
            ManageConnections,
            ReadTenantData,
            RestoreTenantData,
            ManageSupportGrant,
            ReadAudit,
            ManagePrincipals,
        ] {
            assert!(
                authorize(&ta, action, own, Context::default()).is_allowed(),
                "{action:?}"
            );
        }
        assert!(!authorize(&ta, ManageSubscription, own, Context::default()).is_allowed());
        assert!(
            !authorize(&ta, ReadPartner, Scope::Partner(w.p1), Context::default()).is_allowed()
        );
        for action in ALL {
            assert!(
                !authorize(&ta, action, sibling, Context::default()).is_allowed(),
                "{action:?} on a sibling tenant"
            );
        }
    }

    #[test]
    fn support_reads_tenant_data_only_under_an_active_grant() {
        let w = world();
        let support = principal(Role::Support, Some(w.p1), None);
        let own = Scope::Tenant {
            partner: w.p1,
            tenant: w.t1,
        };
        let granted = Context {
            support_grant_active: true,
        };
        assert!(authorize(&support, ReadTenant, own, Context::default()).is_allowed());
        assert!(!authorize(&support, ReadTenantData, own, Context::default()).is_allowed());
        assert!(authorize(&support, ReadTenantData, own, granted).is_allowed());
        assert!(!authorize(&support, RestoreTenantData, own, Context::default()).is_allowed());
        assert!(authorize(&support, RestoreTenantData, own, granted).is_allowed());
        assert!(!authorize(
            &support,
            ReadTenantData,
            Scope::Tenant {
                partner: w.p2,
                tenant: w.t2
            },
            granted
        )
        .is_allowed());
        for action in [
            ManageTenant,
            ManageConnections,
            ManageTenantData,
            ManageSupportGrant,
            ReadAudit,
            ManagePrincipals,
        ] {
            assert!(
                !authorize(&support, action, own, granted).is_allowed(),
                "{action:?}"
            );
        }
        // The provider's own support (no partner) reads any tenant under a grant.
        let provider = principal(Role::Support, None, None);
        assert!(authorize(
            &provider,
            ReadTenantData,
            Scope::Tenant {
                partner: w.p2,
                tenant: w.t2
            },
            granted
        )
        .is_allowed());
    }

    #[test]
    fn who_may_create_which_principal() {
        let w = world();
        let op = principal(Role::Operator, None, None);
        let pa = principal(Role::PartnerAdmin, Some(w.p1), None);
        let ta = principal(Role::TenantAdmin, Some(w.p1), Some(w.t1));
        let own_tenant = Scope::Tenant {
            partner: w.p1,
            tenant: w.t1,
        };
        let table = [
            (&op, Role::Operator, Scope::Service, true),
            (&pa, Role::Operator, Scope::Service, false),
            (&pa, Role::PartnerAdmin, Scope::Partner(w.p1), true),
            (&pa, Role::Support, Scope::Partner(w.p1), true),
            (&pa, Role::PartnerAdmin, Scope::Partner(w.p2), false),
            (&pa, Role::TenantAdmin, own_tenant, true),
            (
                &pa,
                Role::TenantAdmin,
                Scope::Tenant {
                    partner: w.p2,
                    tenant: w.t2,
                },
                false,
            ),
            (&ta, Role::TenantAdmin, own_tenant, true),
            (
                &ta,
                Role::TenantAdmin,
                Scope::Tenant {
                    partner: w.p1,
                    tenant: w.t2,
                },
                false,
            ),
            (&ta, Role::PartnerAdmin, Scope::Partner(w.p1), false),
            (&ta, Role::Support, Scope::Partner(w.p1), false),
        ];
        for (who, role, scope, allowed) in table {
            assert_eq!(
                may_create_principal(who, role, scope).is_allowed(),
                allowed,
                "{:?} creating {role:?} in {scope:?}",
                who.role
            );
        }
    }
}

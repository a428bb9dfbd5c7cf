//! Arkiv's domain vocabulary.
//!
//! This crate owns the small types every other crate speaks in: typed ids
//! ([`TenantId`], [`ConnectionId`], ...), the [`Region`] a tenant's data lives
//! in, the [`Provider`] and [`Workload`] of an item, principal [`Role`]s and
//! the [`SubscriptionState`] of a tenant.
//!
//! It must not do I/O and must not depend on any Arkiv crate: it is the root
//! of the dependency graph. Values are parsed here once, at the edge, so that
//! the rest of the code never handles an unchecked string.
//!
//! ```
//! use arkiv_domain::{Region, Workload};
//! let region: Region = "eu".parse().unwrap();
//! assert_eq!(region.as_str(), "eu");
//! assert_eq!("mail".parse::<Workload>().unwrap(), Workload::Mail);
//! assert!("EU West".parse::<Region>().is_err());
//! ```

pub mod access;
mod ids;
mod kinds;
mod region;

pub use ids::*;
pub use kinds::*;
pub use region::{Region, RegionError};

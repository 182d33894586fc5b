//! The adapter kit: what every adapter needs, in one place, so that an adapter is its
//! vendor's knowledge and little else.
//!
//! - [`context`]: what a constructor receives (the system's entry, its secrets, its
//!   limiter and timeouts), so adapters need not know the registry that builds them.
//! - [`settings`]: `[systems.NAME.settings]` declared once, as a serde struct.
//! - [`errors`]: each vendor's error and rate-limit dialect ([`errors::VendorProfile`]) and
//!   the error-class mapping table.
//! - [`paging`]: Link headers, cursors and page tokens, SCIM startIndex; `collect_all`.
//! - [`names`]: the name → id cache.
//! - [`testkit`]: stand-ins for the keychain that tests and benchmarks share.
//! - [`watch`]: what an adapter notices of its vendor (deprecation signals, last success,
//!   credential expiry, granted scopes) for the API-version watch and credential hygiene.
//!
//! Auth providers live beside the kit in [`crate::adapters::auth`].

pub mod context;
pub mod errors;
pub mod names;
pub mod paging;
pub mod settings;
pub mod testkit;
pub mod watch;

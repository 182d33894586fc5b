//! The adapter kit: what every adapter needs, in one place, so that an adapter is its
//! vendor's knowledge and little else.
//!
//! - [`context`]: what a constructor receives (the system's entry, its secrets, its
//!   limiter and timeouts), so adapters need not know the registry that builds them.
//! - [`settings`]: `[systems.NAME.settings]` declared once, as a serde struct.
//! - [`testkit`]: stand-ins for the keychain that tests and benchmarks share.

pub mod context;
pub mod settings;
pub mod testkit;

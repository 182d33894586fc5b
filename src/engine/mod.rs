//! The provisioning engine: plan (diff intended against actual), a durable queue in
//! SQLite, and dependency-ordered workers that drive the adapters.

pub mod admin;
pub mod apply;
pub mod findings;
pub mod hygiene;
pub mod identity;
pub mod observe;
pub mod plan;
pub mod reconcile;
pub mod status;
pub mod workers;

//! Configuration: the home directory and the files in it.
//!
//! A home holds `systems.toml` (target systems, their credentials, dependencies and
//! entitlement catalogue), `policies.toml` (birthright rules; parsed by [`crate::policy`])
//! and `accessdesk.db`. Loading validates everything; each problem names the file, line,
//! key and a hint.

pub mod home;
pub mod systems;
pub mod toml_errors;

pub use home::Home;
pub use systems::{Catalog, ImportMapping, SystemEntry, SystemsConfig};

//! The adapter kit: what every adapter needs, in one place, so that an adapter is its
//! vendor's knowledge and little else.
//!
//! - [`settings`]: `[systems.NAME.settings]` declared once, as a serde struct.

pub mod settings;

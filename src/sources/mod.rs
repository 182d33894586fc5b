//! HR sources: how HR data reaches the engine besides a CSV import. Today: the mapping
//! from a source's record format to the canonical person ([`mapping`]) and webhook
//! signature verification per vendor ([`signatures`]); the sources themselves (pollers,
//! the webhook endpoint, the API proxy) follow.

pub mod bamboohr;
pub mod config;
pub mod events;
pub mod ingest;
pub mod mapping;
pub mod poll;
pub mod signatures;

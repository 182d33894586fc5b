//! HR sources: how HR data reaches the engine besides a CSV import. Today: the mapping
//! from a source's record format to the canonical person ([`mapping`]); the sources
//! themselves (pollers, webhooks, the API proxy) follow.

pub mod mapping;

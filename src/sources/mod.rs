//! HR sources: how HR data reaches the engine besides a CSV import. `sources.toml`
//! ([`config`]); the mapping from a source's record format to the canonical person
//! ([`mapping`]); webhook signature verification per vendor ([`signatures`]) and payload
//! parsing ([`events`]); polling ([`poll`]) with the vendors' clients ([`bamboohr`],
//! [`workday`]); and [`ingest`], where a mapped person is planned, guarded and queued.
//! Serve runs them (`crate::serve`: the webhook endpoint, the pollers, the API proxy).

pub mod bamboohr;
pub mod config;
pub mod events;
pub mod ingest;
pub mod mapping;
pub mod poll;
pub mod signatures;
pub mod workday;

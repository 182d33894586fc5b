//! accessdesk: policy-based access provisioning.
//!
//! Data flows one way: HR records become [`model::Person`]s, the [`policy`] engine turns
//! them into intended grants, and (in later layers) the engine provisions them through
//! adapters. Everything durable lives in the [`store`]. See ARCHITECTURE.md.

// Adapter errors carry the vendor status, code, redacted excerpt and request line so that
// triage needs nothing else; they are on the failure path, so their size does not matter.
#![allow(clippy::result_large_err)]

pub mod adapters;
pub mod bench;
pub mod cli;
pub mod config;
pub mod demo;
pub mod engine;
pub mod error;
pub mod import;
pub mod logging;
pub mod model;
pub mod policy;
pub mod redact;
pub mod report;
pub mod secrets;
pub mod serve;
pub mod sim;
pub mod sources;
pub mod store;
pub mod text;
pub mod tui;

pub use error::{Error, Result};

//! Builds adapters from systems.toml.

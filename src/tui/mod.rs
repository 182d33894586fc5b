//! The terminal console: state, reducer, keymap, views and the event loop.
//!
//! Data flows one way: the loader reads snapshots from the store off the UI thread; the
//! reducer turns keys and snapshots into state and effects; the views draw the state. Jobs
//! (approve, retry, verify, test a connection) run in tasks and report back through a
//! channel, so the UI never waits on the network or the database.

pub mod app;
pub mod core;
pub mod data;
pub mod keymap;
pub mod reducer;
pub mod state;
pub mod theme;
pub mod views;

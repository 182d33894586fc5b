//! The terminal console: state, reducer, keymap, views and the event loop.

pub mod theme;

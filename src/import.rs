//! People import from HR CSV exports.

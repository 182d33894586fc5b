//! Logging: tracing to stderr (and optionally a file). Secrets never reach a log: they are
//! carried in [`crate::secrets::Secret`], whose Debug and Display are redacted.

use std::path::Path;
use tracing_subscriber::{EnvFilter, fmt, prelude::*};

/// Keeps the log file writer alive.
pub struct LogGuard;

pub fn init(verbose: u8, file: Option<&Path>) -> LogGuard {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter =
        || EnvFilter::try_from_env("ACCESSDESK_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let stderr = fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_filter(filter());
    let file_layer = file.and_then(|p| {
        let f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .ok()?;
        Some(
            fmt::layer()
                .with_writer(std::sync::Mutex::new(f))
                .with_ansi(false)
                .with_filter(filter()),
        )
    });
    let _ = tracing_subscriber::registry()
        .with(stderr)
        .with(file_layer)
        .try_init();
    LogGuard
}

//! Logging: tracing to stderr (and optionally a file). Secrets never reach a log: they are
//! carried in [`crate::secrets::Secret`], whose Debug and Display are redacted.

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::{EnvFilter, fmt, prelude::*};

/// While the console owns the terminal, nothing may be written to stderr (it would tear
/// the screen): logs then go only to `--log-file`.
static STDERR_PAUSED: AtomicBool = AtomicBool::new(false);

pub fn pause_stderr(paused: bool) {
    STDERR_PAUSED.store(paused, Ordering::SeqCst);
}

struct StderrUnlessPaused;

impl<'a> MakeWriter<'a> for StderrUnlessPaused {
    type Writer = Box<dyn Write + 'a>;
    fn make_writer(&'a self) -> Self::Writer {
        if STDERR_PAUSED.load(Ordering::SeqCst) {
            Box::new(std::io::sink())
        } else {
            Box::new(std::io::stderr())
        }
    }
}

/// Keeps the log file writer alive.
pub struct LogGuard;

pub fn init(verbose: u8, file: Option<&Path>) -> LogGuard {
    init_as(verbose, file, false)
}

/// As [`init`], with every line a JSON object (`accessdesk serve`: for log collectors).
pub fn init_json(verbose: u8, file: Option<&Path>) -> LogGuard {
    init_as(verbose, file, true)
}

fn init_as(verbose: u8, file: Option<&Path>, json: bool) -> LogGuard {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter =
        || EnvFilter::try_from_env("ACCESSDESK_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let stderr = fmt::layer()
        .with_writer(StderrUnlessPaused)
        .with_target(false);
    let stderr = if json {
        stderr.json().with_filter(filter()).boxed()
    } else {
        stderr.with_filter(filter()).boxed()
    };
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

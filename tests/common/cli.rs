//! Running the `accessdesk` binary in a home, for end-to-end CLI tests.

use std::path::Path;
use std::process::{Command, Output};

/// `accessdesk --home HOME ARGS` with `env` set, stdin closed (no terminal: bulk actions
/// must be confirmed with --yes), as user `tester`.
pub fn run(home: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_accessdesk"))
        .arg("--home")
        .arg(home)
        .args(args)
        .env_remove("ACCESSDESK_HOME")
        .env("USER", "tester")
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
}

/// stdout then stderr, for assertion messages.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// stdout as JSON, or a panic showing what was printed.
pub fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(o)))
}

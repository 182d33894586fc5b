//! Helpers shared by the keychain integration tests: homes in temp dirs, running the built
//! binary, random values and a scanner for leaked secret bytes.
#![allow(dead_code)]

use std::hash::{BuildHasher, RandomState};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};

pub const BIN: &str = env!("CARGO_BIN_EXE_accessdesk");

/// `n` random bytes as lowercase hex (std's randomly keyed hasher; good enough for names
/// and test values that must not collide or be guessable by a fixed string).
pub fn random_hex(n: usize) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut out = String::with_capacity(n * 2);
    while out.len() < n * 2 {
        let x = RandomState::new().hash_one((
            std::process::id(),
            std::time::SystemTime::now(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
        ));
        out.push_str(&format!("{x:016x}"));
    }
    out.truncate(n * 2);
    out
}

/// A home directory as `accessdesk init` would leave it: a systems.toml (an empty file is
/// valid), a policies.toml with no rules, and no database yet (the first command creates it).
pub fn make_home(dir: &Path, systems_toml: &str) -> PathBuf {
    let home = dir.join("home");
    std::fs::create_dir_all(&home).expect("create home dir");
    std::fs::write(home.join("systems.toml"), systems_toml).expect("write systems.toml");
    std::fs::write(home.join("policies.toml"), "# no rules\n").expect("write policies.toml");
    home
}

/// Run a command with `stdin` piped in (empty input when `None`: stdin is then not a
/// terminal, which is what the tests want).
pub fn run(mut cmd: Command, stdin: Option<&[u8]>) -> Output {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn accessdesk");
    {
        let mut pipe = child.stdin.take().expect("stdin pipe");
        if let Some(bytes) = stdin {
            // The child may exit before reading (e.g. on a bad name); that is not our error.
            let _ = pipe.write_all(bytes);
        }
    }
    child.wait_with_output().expect("wait for accessdesk")
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Human-readable summary of an output for assertion messages.
pub fn show(o: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        o.status.code(),
        text(&o.stdout),
        text(&o.stderr)
    )
}

/// The forms in which a secret could plausibly leak: its bytes, their hex, their Rust
/// `Debug` form as a byte list (what `keyring_core::Error::BadEncoding(bytes)` would print)
/// and, separately, its random part (in case a prefix were stripped or re-quoted).
pub fn leak_patterns(secret: &str, random_part: &str) -> Vec<Vec<u8>> {
    vec![
        secret.as_bytes().to_vec(),
        random_part.as_bytes().to_vec(),
        hex::encode(secret.as_bytes()).into_bytes(),
        format!("{:?}", secret.as_bytes()).into_bytes(),
    ]
}

/// Every regular file under `root`, recursively.
pub fn files_under(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("read {dir:?}: {e}"));
        for entry in entries {
            let path = entry.expect("dir entry").path();
            let meta = std::fs::symlink_metadata(&path).expect("metadata");
            if meta.is_dir() {
                stack.push(path);
            } else if meta.is_file() {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// Files under `root` containing any of `patterns`, with the index of the pattern found.
pub fn scan_for(root: &Path, patterns: &[Vec<u8>]) -> Vec<(PathBuf, usize)> {
    let mut hits = Vec::new();
    for path in files_under(root) {
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("read {path:?}: {e}"));
        for (i, p) in patterns.iter().enumerate() {
            if contains(&bytes, p) {
                hits.push((path.clone(), i));
            }
        }
    }
    hits
}

pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

//! A moto server (AWS IAM, STS, identity store) for one test: started on a free loopback
//! port from the repo's peer venv, stopped by its PID when dropped.
//!
//! The venv is `.peers/venv` under the repo root, or `$ACCESSDESK_PEERS_VENV`. A missing
//! moto fails the test with the install command; it is never skipped.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const INSTALL: &str = "bash .ci/test-all (it installs the pinned peers from .ci/peers-requirements.txt into .peers/venv)";

pub struct Moto {
    pub url: String,
    child: Child,
    _dir: tempfile::TempDir,
}

fn venv() -> PathBuf {
    match std::env::var_os("ACCESSDESK_PEERS_VENV") {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".peers/venv"),
    }
}

/// The peers venv's Python (boto3 is installed beside moto).
#[allow(dead_code)] // not every test that shares this file drives boto3
pub fn python() -> PathBuf {
    venv().join("bin/python")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind an ephemeral loopback port")
}

impl Moto {
    /// Start moto and wait until `GET /moto-api/` answers 200.
    pub async fn start() -> Moto {
        accessdesk::adapters::http::install_crypto_provider();
        let bin = venv().join("bin/moto_server");
        assert!(
            bin.exists(),
            "moto_server not found at {}.\nThe AWS peer tests need it; install it from the repo root with:\n  {INSTALL}\n(or point ACCESSDESK_PEERS_VENV at a venv that has it)",
            bin.display()
        );
        let mut last_log = String::new();
        for _ in 0..3 {
            let dir = tempfile::tempdir().expect("temp dir for moto");
            let log = std::fs::File::create(dir.path().join("moto.log")).expect("moto log file");
            let port = free_port();
            let child = Command::new(&bin)
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .current_dir(dir.path())
                .env("MOTO_ALLOW_NONEXISTENT_REGION", "true")
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("dup log"))
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
            let mut moto = Moto {
                url: format!("http://127.0.0.1:{port}"),
                child,
                _dir: dir,
            };
            if moto.wait_ready(Duration::from_secs(30)).await {
                return moto;
            }
            last_log =
                std::fs::read_to_string(moto._dir.path().join("moto.log")).unwrap_or_default();
            // Dropping stops it; try another port.
        }
        panic!("moto_server did not become ready; its log:\n{last_log}");
    }

    async fn wait_ready(&mut self, within: Duration) -> bool {
        let client = reqwest::Client::new();
        let started = Instant::now();
        while started.elapsed() < within {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false; // exited (port taken?)
            }
            if let Ok(r) = client.get(format!("{}/moto-api/", self.url)).send().await
                && r.status().as_u16() == 200
            {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    }

    /// `POST /moto-api/reset-auth`: the next `n` requests go unchecked, every later one has
    /// its SigV4 signature verified and its IAM permissions checked.
    pub async fn check_signatures_after(&self, n: u32) {
        let r = reqwest::Client::new()
            .post(format!("{}/moto-api/reset-auth", self.url))
            .header("content-type", "text/plain")
            .body(n.to_string())
            .send()
            .await
            .expect("reset-auth request");
        assert_eq!(r.status().as_u16(), 200, "reset-auth: {:?}", r.text().await);
    }

    /// `POST /moto-api/reset`: wipe all state.
    pub async fn reset(&self) {
        let r = reqwest::Client::new()
            .post(format!("{}/moto-api/reset", self.url))
            .send()
            .await
            .expect("reset request");
        assert_eq!(r.status().as_u16(), 200);
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        // Child::kill signals exactly this PID.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

//! One scim2-server per test on loopback: a free port, a bearer token, its own temp dir
//! (request log, optional ServiceProviderConfig file); ready when
//! `GET /v2/ServiceProviderConfig` answers 200; killed by its PID when dropped.
//!
//! The server comes from the peers venv: `.peers/venv/bin/scim2-server` under the repo root,
//! or `$ACCESSDESK_PEERS_VENV/bin/scim2-server`. When it is missing the test fails and says
//! how to install it. It never skips.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const INSTALL: &str = "bash .ci/test-all (it installs the pinned peers from .ci/peers-requirements.txt into .peers/venv)";

pub struct ScimServer {
    child: Child,
    pub port: u16,
    pub token: String,
    dir: tempfile::TempDir,
}

/// The peers venv: `$ACCESSDESK_PEERS_VENV`, else `.peers/venv` in the repo.
pub fn venv_dir() -> PathBuf {
    match std::env::var_os("ACCESSDESK_PEERS_VENV") {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".peers/venv"),
    }
}

pub fn binary() -> PathBuf {
    let bin = venv_dir().join("bin/scim2-server");
    if !bin.is_file() {
        panic!(
            "scim2-server is not installed at {}.\n\
             These peer tests need it; install it from the repo root with:\n    {INSTALL}\n\
             (or point ACCESSDESK_PEERS_VENV at a venv that has it)",
            bin.display()
        );
    }
    bin
}

/// 16 random hex digits (std's randomly keyed hasher), so the token is findable in a leak scan.
fn random_hex() -> String {
    use std::hash::{BuildHasher, RandomState};
    let x = RandomState::new().hash_one((std::process::id(), Instant::now()));
    format!("{x:016x}")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind an ephemeral loopback port")
}

impl ScimServer {
    /// scim2-server with its default configuration (every feature but cursor paging).
    pub async fn start() -> ScimServer {
        Self::start_with(None).await
    }

    /// scim2-server announcing (and enforcing) the given ServiceProviderConfig.
    pub async fn start_with(service_provider_config: Option<serde_json::Value>) -> ScimServer {
        let bin = binary();
        let token = format!("scim-peer-{}", random_hex());
        // A port picked by binding :0 can be taken again before the server binds it; try a
        // few ports before giving up.
        let mut last_log = String::new();
        for _ in 0..3 {
            let dir = tempfile::tempdir().expect("temp dir");
            let port = free_port();
            let log = std::fs::File::create(dir.path().join("server.log")).expect("log file");
            let mut cmd = Command::new(&bin);
            cmd.args(["--hostname", "127.0.0.1", "--port", &port.to_string()])
                .args(["--bearer-token", &token])
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("log file"))
                .stderr(log);
            if let Some(spc) = &service_provider_config {
                let path = dir.path().join("spc.json");
                std::fs::write(&path, serde_json::to_vec_pretty(spc).unwrap()).unwrap();
                cmd.arg("--service-provider-config").arg(&path);
            }
            let child = cmd
                .spawn()
                .unwrap_or_else(|e| panic!("start {}: {e}", bin.display()));
            let mut server = ScimServer {
                child,
                port,
                token: token.clone(),
                dir,
            };
            if server.wait_ready(Duration::from_secs(30)).await {
                return server;
            }
            last_log = server.log();
            // Dropping `server` kills it if it is still running.
        }
        panic!("scim2-server did not become ready; its last log:\n{last_log}");
    }

    async fn wait_ready(&mut self, within: Duration) -> bool {
        accessdesk::adapters::http::install_crypto_provider();
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(2))
            .build()
            .expect("reqwest client");
        let url = format!("{}/ServiceProviderConfig", self.base_url());
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false; // exited (port taken, bad arguments)
            }
            let ok = client
                .get(&url)
                .bearer_auth(&self.token)
                .send()
                .await
                .is_ok_and(|r| r.status().as_u16() == 200);
            if ok {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }

    /// The SCIM root: `http://127.0.0.1:PORT/v2`.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}/v2", self.port)
    }

    /// Scheme, host and port only (the fault proxy's upstream).
    pub fn origin(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the server has logged (one line per request: method, path, status). wsgiref
    /// writes a request's line after the response has gone out, so this waits until the log
    /// has stopped growing (100 ms without change, at most 3 s).
    pub fn log(&self) -> String {
        let read =
            || std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default();
        let deadline = Instant::now() + Duration::from_secs(3);
        let mut last = read();
        loop {
            std::thread::sleep(Duration::from_millis(100));
            let now = read();
            if now == last || Instant::now() > deadline {
                return now;
            }
            last = now;
        }
    }

    /// The request lines of the log (`"PATCH /v2/Groups/... HTTP/1.1" 204 0`).
    pub fn requests(&self) -> Vec<String> {
        self.log()
            .lines()
            .filter_map(|l| l.split_once('"').map(|(_, r)| r.to_string()))
            .collect()
    }
}

impl Drop for ScimServer {
    fn drop(&mut self) {
        // Child::kill signals this child's own PID (SIGKILL); then reap it.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

//! Stoplight Prism in proxy mode (`--errors`) between a client and a simulator, with a
//! recorder in front that keeps every exchange and what Prism objected to.
//!
//! client --> recorder --> Prism (validates requests and responses) --> simulator
//!
//! Prism answers an invalid request with 422 (not forwarded) and marks a response that
//! breaks the spec with an `sl-violations` header (with `--errors`, a 500); its own answers
//! are `application/problem+json`. [`Exchange::violation`] holds any of these.
//!
//! Prism is required, never skipped: `.peers/prism/node_modules/.bin/prism` under the repo
//! root (installed by .ci/test-all), or `ACCESSDESK_PRISM`.
#![allow(dead_code)]

use accessdesk::sim::SimServer;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const INSTALL: &str =
    "npm install --prefix .peers/prism --no-audit --no-fund @stoplight/prism-cli";

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn prism_path() -> PathBuf {
    match std::env::var_os("ACCESSDESK_PRISM") {
        Some(p) => PathBuf::from(p),
        None => repo_root().join(".peers/prism/node_modules/.bin/prism"),
    }
}

pub fn spec_path(rel: &str) -> PathBuf {
    let specs = match std::env::var_os("ACCESSDESK_SPECS") {
        Some(p) => PathBuf::from(p),
        None => repo_root().join("tests/specs"),
    };
    specs.join(rel)
}

/// Prism, killed by its PID when dropped.
pub struct Prism {
    child: Child,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Prism {
    pub fn start(bin: &Path, spec: &Path, port: u16, upstream: &str) -> Prism {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = dir.path().join("prism.log");
        let out = std::fs::File::create(&log).expect("prism log");
        let err = out.try_clone().expect("prism log");
        let child = Command::new(bin)
            .args([
                "proxy",
                "-h",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "--errors",
            ])
            .arg(spec)
            .arg(upstream)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
        Prism {
            child,
            log,
            _dir: dir,
        }
    }

    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    pub async fn wait_ready(&mut self, port: u16, probe: &str) {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "Prism exited ({status}) before it was ready:\n{}",
                    self.log_tail()
                );
            }
            let probe = client
                .get(format!("http://127.0.0.1:{port}{probe}"))
                .timeout(Duration::from_secs(2))
                .send()
                .await;
            if probe.is_ok() {
                return;
            }
            if Instant::now() > deadline {
                panic!("Prism was not ready after 120 s:\n{}", self.log_tail());
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

impl Drop for Prism {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// One exchange as the recorder saw it.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub method: String,
    pub path: String,
    pub status: u16,
    /// Prism's `sl-violations` header, its 422 / problem+json body: anything Prism objected to.
    pub violation: Option<String>,
}

#[derive(Clone)]
pub struct Recorder {
    upstream: String,
    client: reqwest::Client,
    log: Arc<Mutex<Vec<Exchange>>>,
}

async fn record(State(rec): State<Recorder>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let bytes = axum::body::to_bytes(body, 16 * 1024 * 1024)
        .await
        .unwrap_or_default();
    let mut rb = rec
        .client
        .request(parts.method.clone(), format!("{}{path}", rec.upstream));
    for (k, v) in parts.headers.iter() {
        if k != "host" && k != "content-length" {
            rb = rb.header(k, v);
        }
    }
    let (status, headers, body) = match rb.body(bytes).send().await {
        Ok(r) => {
            let status = r.status();
            let headers = r.headers().clone();
            (status, headers, r.bytes().await.unwrap_or_default())
        }
        Err(e) => {
            let mut out = Response::new(Body::from(format!("recorder: {e}")));
            *out.status_mut() = axum::http::StatusCode::BAD_GATEWAY;
            return out;
        }
    };
    let problem = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("application/problem+json"));
    let sl = headers
        .get("sl-violations")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let violation = match (sl, problem || status.as_u16() == 422) {
        (Some(v), true) => Some(format!("{v} | {}", String::from_utf8_lossy(&body))),
        (Some(v), false) => Some(v),
        (None, true) => Some(String::from_utf8_lossy(&body).to_string()),
        (None, false) => None,
    };
    rec.log.lock().unwrap().push(Exchange {
        method: parts.method.to_string(),
        path: path.clone(),
        status: status.as_u16(),
        violation,
    });
    let mut out = Response::new(Body::from(body));
    *out.status_mut() = status;
    for (k, v) in headers.iter() {
        if k != "transfer-encoding" && k != "content-length" && k != "connection" {
            out.headers_mut().append(k, v.clone());
        }
    }
    out
}

impl Recorder {
    pub async fn spawn(upstream: String) -> (SimServer, Recorder) {
        let rec = Recorder {
            upstream,
            client: reqwest::Client::builder().no_proxy().build().unwrap(),
            log: Arc::new(Mutex::new(Vec::new())),
        };
        let app = axum::Router::new().fallback(record).with_state(rec.clone());
        (SimServer::spawn(app).await.expect("recorder"), rec)
    }

    pub fn exchanges(&self) -> Vec<Exchange> {
        self.log.lock().unwrap().clone()
    }
}

/// Prism on a free port in front of `upstream`, with the recorder in front of Prism.
pub struct PrismRig {
    pub prism: Prism,
    pub recorder: Recorder,
    server: SimServer,
}

impl PrismRig {
    /// Start Prism with the description at `tests/specs/<spec_rel>`, wait until it answers
    /// `probe` (any answer), and put a recorder in front. Panics with the install command
    /// when Prism or the description is missing: a missing peer fails, never skips.
    pub async fn start(spec_rel: &str, upstream: &str, probe: &str) -> PrismRig {
        accessdesk::adapters::http::install_crypto_provider();
        let bin = prism_path();
        assert!(
            bin.exists(),
            "Prism is required for the conformance tests and was not found at {}.\n\
             Install it from the repository root ({}) with:\n    {INSTALL}\n\
             or point ACCESSDESK_PRISM at a prism binary.",
            bin.display(),
            repo_root().display()
        );
        let spec = spec_path(spec_rel);
        assert!(
            spec.exists(),
            "the API description was not found at {} (set ACCESSDESK_SPECS to the specs directory)",
            spec.display()
        );
        let port = free_port();
        let mut prism = Prism::start(&bin, &spec, port, upstream);
        prism.wait_ready(port, probe).await;
        let (server, recorder) = Recorder::spawn(format!("http://127.0.0.1:{port}")).await;
        PrismRig {
            prism,
            recorder,
            server,
        }
    }

    /// Where the client should send its requests.
    pub fn base(&self) -> String {
        self.server.base_url()
    }

    pub fn exchanges(&self) -> Vec<Exchange> {
        self.recorder.exchanges()
    }

    /// Every exchange Prism objected to, one line each, unless `allowed` says it is a known
    /// gap in the vendor's description.
    pub fn violations(&self, allowed: impl Fn(&Exchange) -> bool) -> Vec<String> {
        violations(&self.exchanges(), allowed)
    }

    pub async fn stop(self) {
        drop(self.prism);
        self.server.stop().await;
    }
}

/// The exchanges among `exchanges` that Prism objected to, one line each, unless `allowed`
/// says it is a known gap in the vendor's description.
pub fn violations(exchanges: &[Exchange], allowed: impl Fn(&Exchange) -> bool) -> Vec<String> {
    exchanges
        .iter()
        .filter(|x| !allowed(x))
        .filter_map(|x| {
            x.violation
                .as_ref()
                .map(|v| format!("{} {} -> {}: {v}", x.method, x.path, x.status))
        })
        .collect()
}

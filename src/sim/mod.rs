//! Stateful vendor simulators for the demo and the tests, with fault injection.
//!
//! Each simulator is an axum app on 127.0.0.1 on an ephemeral port. It keeps its state in
//! memory, enforces the vendor's documented rate limits with the vendor's own headers and
//! status codes ([`ratelimit`]), and can inject faults ([`fault`], [`rules`]); it records
//! every request ([`log`]). [`proxy`] puts the same fault profile in front of any real peer
//! (moto, scim2-server).
//!
//! One simulator per adapter: [`okta`], [`scim`], [`aws`] (IAM, STS and the identity
//! store of one account on one endpoint), [`google`] (the Admin SDK Directory API behind
//! Google's service-account token endpoint), [`entra`] (Microsoft Graph v1.0 behind the
//! client-credentials token endpoint), [`github`] (one organisation's members, invitations
//! and teams; tokens and GitHub App auth), [`slack`] (SCIM plus the Web API's channels).
//! Beside them, for HR sources: [`bamboohr`] (one company's employees, `changed` since a
//! time, signed webhooks) and [`workday`] (one tenant's workers behind its OAuth token
//! endpoint: the Workers REST API and a RaaS report).

pub mod aws;
pub mod bamboohr;
pub mod entra;
pub mod fault;
pub mod filter;
pub mod github;
pub mod google;
pub mod log;
pub mod memory;
pub mod okta;
pub mod proxy;
pub mod ratelimit;
pub mod rules;
pub mod scim;
pub mod slack;
pub mod tcp_proxy;
pub mod workday;

use std::collections::HashMap;
use std::net::SocketAddr;

/// What a simulator actually did, for "nothing happened twice" assertions: how often each
/// account was created (by its case-folded login) and each membership added.
#[derive(Debug, Default, Clone)]
pub struct WriteCounts {
    creates: HashMap<String, u32>,
    adds: HashMap<(String, String), u32>,
}

impl WriteCounts {
    /// An account with this login was created.
    pub fn created(&mut self, login: &str) {
        *self.creates.entry(login.to_lowercase()).or_insert(0) += 1;
    }

    /// `member` became a member of `group` (it was not one before).
    pub fn added(&mut self, group: &str, member: &str) {
        *self
            .adds
            .entry((group.to_string(), member.to_string()))
            .or_insert(0) += 1;
    }

    pub fn creates_for(&self, login: &str) -> u32 {
        self.creates
            .get(&login.to_lowercase())
            .copied()
            .unwrap_or(0)
    }

    /// The highest create count of any login (more than 1 is a duplicate account).
    pub fn max_creates(&self) -> u32 {
        self.creates.values().copied().max().unwrap_or(0)
    }

    pub fn adds_for(&self, group: &str, member: &str) -> u32 {
        self.adds
            .get(&(group.to_string(), member.to_string()))
            .copied()
            .unwrap_or(0)
    }

    /// The highest add count of any membership (more than 1: added twice).
    pub fn max_adds(&self) -> u32 {
        self.adds.values().copied().max().unwrap_or(0)
    }
}

/// The user and password of an HTTP Basic `Authorization` (the password empty when the
/// decoded text has no `:`); None for any other scheme or a malformed value.
pub fn basic_credentials(headers: &axum::http::HeaderMap) -> Option<(String, String)> {
    use base64::Engine as _;
    let v = headers.get("authorization")?.to_str().ok()?;
    let (scheme, cred) = v.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(cred.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    Some(match text.split_once(':') {
        Some((u, p)) => (u.to_string(), p.to_string()),
        None => (text, String::new()),
    })
}

/// A running simulator or proxy. Dropping it stops the server.
pub struct SimServer {
    pub addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl SimServer {
    /// Serve `app` on 127.0.0.1 on an ephemeral port.
    pub async fn spawn(app: axum::Router) -> std::io::Result<SimServer> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await;
        });
        Ok(SimServer {
            addr,
            shutdown: Some(tx),
            task: Some(task),
        })
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stop and wait for the server to finish.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            t.abort();
            let _ = t.await;
        }
    }
}

impl Drop for SimServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

//! A fault-injecting TCP proxy, for peers that do not speak HTTP (OpenLDAP's slapd): the
//! bytes are relayed untouched, and each chunk the client sends (an LDAP request, as
//! clients write one message at a time) may be
//! - **dropped** with its connection before it reaches the peer (nothing was done),
//! - **carried out, its answer lost**: forwarded, then the connection is cut before the
//!   peer's answer gets back (the peer did it; the client cannot know),
//! - **held back** for a while before it is forwarded.
//!
//! The proxy listens on an ephemeral loopback port; its handle stops it when dropped.

use rand::{Rng, SeedableRng};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How often each fault happens, per chunk the client sends (0.0-1.0).
#[derive(Debug, Clone, PartialEq)]
pub struct TcpFaultProfile {
    pub drop_rate: f64,
    pub lost_answer_rate: f64,
    pub slow_rate: f64,
    pub slow_delay: Duration,
    pub seed: u64,
}

impl TcpFaultProfile {
    pub fn none() -> Self {
        TcpFaultProfile {
            drop_rate: 0.0,
            lost_answer_rate: 0.0,
            slow_rate: 0.0,
            slow_delay: Duration::from_millis(200),
            seed: 7,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    Drop,
    LostAnswer,
    Slow,
}

/// What the proxy has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TcpFaultCounts {
    pub connections: u64,
    pub chunks: u64,
    pub dropped: u64,
    pub lost_answers: u64,
    pub slowed: u64,
}

impl TcpFaultCounts {
    pub fn injected(&self) -> u64 {
        self.dropped + self.lost_answers + self.slowed
    }
}

struct Faults {
    profile: Mutex<TcpFaultProfile>,
    rng: Mutex<rand::rngs::StdRng>,
    connections: AtomicU64,
    chunks: AtomicU64,
    dropped: AtomicU64,
    lost: AtomicU64,
    slowed: AtomicU64,
}

impl Faults {
    fn profile(&self) -> TcpFaultProfile {
        self.profile
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn decide(&self) -> Option<Fault> {
        self.chunks.fetch_add(1, Ordering::Relaxed);
        let p = self.profile();
        let r: f64 = self.rng.lock().unwrap_or_else(|p| p.into_inner()).random();
        let mut acc = 0.0;
        for (rate, fault, counter) in [
            (p.drop_rate, Fault::Drop, &self.dropped),
            (p.lost_answer_rate, Fault::LostAnswer, &self.lost),
            (p.slow_rate, Fault::Slow, &self.slowed),
        ] {
            acc += rate;
            if r < acc {
                counter.fetch_add(1, Ordering::Relaxed);
                return Some(fault);
            }
        }
        None
    }
}

/// A running proxy.
pub struct TcpProxy {
    addr: SocketAddr,
    faults: Arc<Faults>,
    task: tokio::task::JoinHandle<()>,
}

impl TcpProxy {
    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `scheme://127.0.0.1:PORT`.
    pub fn url(&self, scheme: &str) -> String {
        format!("{scheme}://{}", self.addr)
    }

    pub fn set_profile(&self, p: TcpFaultProfile) {
        *self
            .faults
            .profile
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = p;
    }

    pub fn counts(&self) -> TcpFaultCounts {
        let f = &self.faults;
        TcpFaultCounts {
            connections: f.connections.load(Ordering::Relaxed),
            chunks: f.chunks.load(Ordering::Relaxed),
            dropped: f.dropped.load(Ordering::Relaxed),
            lost_answers: f.lost.load(Ordering::Relaxed),
            slowed: f.slowed.load(Ordering::Relaxed),
        }
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Start a proxy to `upstream` on an ephemeral loopback port.
pub async fn spawn(upstream: SocketAddr, profile: TcpFaultProfile) -> std::io::Result<TcpProxy> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let faults = Arc::new(Faults {
        rng: Mutex::new(rand::rngs::StdRng::seed_from_u64(profile.seed)),
        profile: Mutex::new(profile),
        connections: AtomicU64::new(0),
        chunks: AtomicU64::new(0),
        dropped: AtomicU64::new(0),
        lost: AtomicU64::new(0),
        slowed: AtomicU64::new(0),
    });
    let f = faults.clone();
    let task = tokio::spawn(async move {
        loop {
            let Ok((client, _)) = listener.accept().await else {
                continue;
            };
            f.connections.fetch_add(1, Ordering::Relaxed);
            let f = f.clone();
            tokio::spawn(async move {
                // A refused upstream connection closes the client's: a dropped connection.
                if let Ok(server) = TcpStream::connect(upstream).await {
                    relay(client, server, f).await;
                }
            });
        }
    });
    Ok(TcpProxy { addr, faults, task })
}

/// Relay both ways until either side closes or a fault cuts the connection; returning
/// drops both sockets, which closes them.
async fn relay(client: TcpStream, server: TcpStream, faults: Arc<Faults>) {
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    // Set while a forwarded request's answer is to be lost: nothing more reaches the client.
    let losing = Arc::new(AtomicBool::new(false));
    let mute = losing.clone();
    let up = async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match cr.read(&mut buf).await {
                Ok(0) | Err(_) => {
                    let _ = sw.shutdown().await;
                    return false;
                }
                Ok(n) => n,
            };
            match faults.decide() {
                Some(Fault::Drop) => return true,
                Some(Fault::LostAnswer) => {
                    losing.store(true, Ordering::SeqCst);
                    let _ = sw.write_all(&buf[..n]).await;
                    // Give the peer time to carry it out before the cut.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    return true;
                }
                Some(Fault::Slow) => tokio::time::sleep(faults.profile().slow_delay).await,
                None => {}
            }
            if sw.write_all(&buf[..n]).await.is_err() {
                return true;
            }
        }
    };
    let down = async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match sr.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            if mute.load(Ordering::SeqCst) {
                continue;
            }
            if cw.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    };
    tokio::pin!(up, down);
    tokio::select! {
        cut = &mut up => {
            if !cut {
                // The client finished sending; its last answers still come back.
                down.await;
            }
        }
        () = &mut down => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn echo() -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    while let Ok(n) = s.read(&mut buf).await {
                        if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        addr
    }

    async fn ask(proxy: &TcpProxy, msg: &[u8]) -> Option<Vec<u8>> {
        let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
        s.write_all(msg).await.ok()?;
        let mut buf = vec![0u8; msg.len()];
        match tokio::time::timeout(Duration::from_secs(2), s.read_exact(&mut buf)).await {
            Ok(Ok(_)) => Some(buf),
            _ => None,
        }
    }

    #[tokio::test]
    async fn relays_untouched_and_cuts_where_told() {
        let proxy = spawn(echo().await, TcpFaultProfile::none()).await.unwrap();
        assert_eq!(ask(&proxy, b"hello").await.as_deref(), Some(&b"hello"[..]));
        proxy.set_profile(TcpFaultProfile {
            drop_rate: 1.0,
            ..TcpFaultProfile::none()
        });
        assert_eq!(ask(&proxy, b"dropped").await, None);
        proxy.set_profile(TcpFaultProfile {
            lost_answer_rate: 1.0,
            ..TcpFaultProfile::none()
        });
        assert_eq!(ask(&proxy, b"lost").await, None);
        let c = proxy.counts();
        assert_eq!(
            (c.connections, c.dropped, c.lost_answers),
            (3, 1, 1),
            "{c:?}"
        );
        assert_eq!(c.injected(), 2);
    }
}

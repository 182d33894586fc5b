//! Stateful vendor simulators for the demo and the tests, with fault injection.
//!
//! Each simulator is an axum app on 127.0.0.1 on an ephemeral port. It keeps its state in
//! memory, enforces the vendor's documented rate limits with the vendor's own headers and
//! status codes ([`ratelimit`]), and can inject faults ([`fault`]). [`proxy`] puts the same
//! fault profile in front of any real peer (moto, scim2-server).

pub mod fault;
pub mod filter;
pub mod log;
pub mod okta;
pub mod proxy;
pub mod ratelimit;
pub mod rules;

use std::net::SocketAddr;

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

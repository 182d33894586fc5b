//! A generic fault-injecting reverse proxy: put a [`FaultProfile`] in front of any real
//! peer (moto, scim2-server). Requests are forwarded byte for byte, headers included, so
//! signatures (SigV4) still verify at the peer.

use super::SimServer;
use super::fault::{Faults, inject};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

#[derive(Clone)]
struct ProxyState {
    upstream: String,
    client: reqwest::Client,
}

/// Start a proxy on an ephemeral loopback port forwarding to `upstream` (http://host:port).
pub async fn spawn(upstream: &str, faults: Arc<Faults>) -> std::io::Result<SimServer> {
    crate::adapters::http::install_crypto_provider();
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let state = ProxyState {
        upstream: upstream.trim_end_matches('/').to_string(),
        client,
    };
    let app = axum::Router::new()
        .fallback(forward)
        .with_state(state)
        .layer(axum::middleware::from_fn_with_state(faults, inject));
    SimServer::spawn(app).await
}

async fn forward(State(st): State<ProxyState>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let url = format!("{}{}", st.upstream, path);
    let bytes = match axum::body::to_bytes(body, 64 * 1024 * 1024).await {
        Ok(b) => b,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                format!("proxy: reading request body: {e}"),
            )
                .into_response();
        }
    };
    let mut rb = st.client.request(parts.method.clone(), &url);
    for (k, v) in parts.headers.iter() {
        // Host is set by the client for the upstream; SigV4 signs the host we were asked
        // for, so keep it as the caller sent it.
        if k == axum::http::header::CONTENT_LENGTH || k == axum::http::header::TRANSFER_ENCODING {
            continue;
        }
        rb = rb.header(k, v);
    }
    let resp = match rb.body(bytes).send().await {
        Ok(r) => r,
        Err(e) => {
            return (
                StatusCode::BAD_GATEWAY,
                format!("proxy: upstream {}: {e}", st.upstream),
            )
                .into_response();
        }
    };
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = match resp.bytes().await {
        Ok(b) => b,
        Err(e) => {
            return (
                StatusCode::BAD_GATEWAY,
                format!("proxy: upstream body: {e}"),
            )
                .into_response();
        }
    };
    let mut out = Response::new(Body::from(body));
    *out.status_mut() = status;
    for (k, v) in headers.iter() {
        if k == axum::http::header::TRANSFER_ENCODING
            || k == axum::http::header::CONNECTION
            || k == axum::http::header::CONTENT_LENGTH
        {
            continue;
        }
        out.headers_mut().append(k, v.clone());
    }
    out
}

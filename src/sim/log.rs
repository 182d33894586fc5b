//! Every request a simulator saw, in order, with the status it answered (injected faults
//! included: the recorder is the outermost layer).

use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

/// One request as the simulator saw it.
#[derive(Debug, Clone)]
pub struct LoggedRequest {
    pub method: Method,
    pub path: String,
    /// The raw (still percent-encoded) query string.
    pub query: String,
    pub status: u16,
    pub at: SystemTime,
}

impl LoggedRequest {
    /// `GET /v2/Users?count=1 HTTP/1.1" 200`: the request line and status, the shape of a
    /// web server's access log (what the peer tests read from scim2-server's log).
    pub fn access_line(&self) -> String {
        let q = if self.query.is_empty() {
            String::new()
        } else {
            format!("?{}", self.query)
        };
        format!(
            "{} {}{q} HTTP/1.1\" {} -",
            self.method, self.path, self.status
        )
    }
}

#[derive(Debug, Default)]
pub struct RequestLog(Mutex<Vec<LoggedRequest>>);

impl RequestLog {
    fn lock(&self) -> MutexGuard<'_, Vec<LoggedRequest>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn entries(&self) -> Vec<LoggedRequest> {
        self.lock().clone()
    }

    pub fn count(&self, f: impl Fn(&LoggedRequest) -> bool) -> usize {
        self.lock().iter().filter(|r| f(r)).count()
    }

    pub fn clear(&self) {
        self.lock().clear();
    }
}

/// axum middleware: `layer(from_fn_with_state(log, record))`, outermost.
pub async fn record(State(log): State<Arc<RequestLog>>, req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let resp = next.run(req).await;
    log.lock().push(LoggedRequest {
        method,
        path,
        query,
        status: resp.status().as_u16(),
        at: SystemTime::now(),
    });
    resp
}

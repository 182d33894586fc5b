//! A stateful Workday simulator: one tenant's workers behind Workday's OAuth 2.0 token
//! endpoint, read through the REST API's `workers` collection or a RaaS (Reports as a
//! Service) JSON report, as an identity integration reads them.
//!
//! Workday publishes no API description outside its login-gated community site, so the
//! shapes follow what Workday's public material shows (the `View API Clients` task's REST
//! API and token endpoints; `GET /workers` with `limit`/`offset` answering
//! `{"total", "data"}`; RaaS URLs under `/ccx/service/customreport2`), and the traffic is
//! not checked with Prism (there is nothing official to check it against).
//!
//! Routes (`{tenant}` is the tenant's name, `northwind` by default):
//! - `POST /ccx/oauth2/{tenant}/token`: the client authenticates by HTTP Basic
//!   (`client_id:client_secret`; in the form as `client_id`/`client_secret` is accepted
//!   too); `grant_type=refresh_token` with a refresh token issued to that client (an API
//!   client for integrations), or `grant_type=client_credentials` for a client allowed it.
//!   Answers RFC 6749 §5.1 (`access_token`, `token_type: Bearer`, `expires_in`) or §5.2
//!   (`invalid_client` 401, `invalid_grant`/`unsupported_grant_type`/`invalid_request`
//!   400).
//! - `GET /ccx/api/v1/{tenant}/workers?limit=&offset=`: the tenant's current workers
//!   (hired, and not past their termination date), by employee id; `limit` defaults to
//!   20 and may be at most 100, as Workday's REST APIs say; `{"total", "data": [worker]}`.
//!   A worker: `id` (the WID), `descriptor` (the preferred or legal full name), `href`,
//!   `workerId` (the employee id), `workerType`, `primaryWorkEmail`, `businessTitle`,
//!   `primarySupervisoryOrganization` and `location` (references `{id, descriptor,
//!   href}`), `manager` (the manager's worker reference), `isManager`, `hireDate` and
//!   `terminationDate` (a termination entered ahead of its date). Fields without a value
//!   are left out, as Workday leaves them out.
//! - `GET /ccx/api/v1/{tenant}/workers/{id}`: one current worker by WID; 404 otherwise.
//! - `GET /ccx/service/customreport2/{tenant}/{owner}/{report}?format=json`: the report
//!   the options name (`ISU_Identity/Identity_Feed` by default), `{"Report_Entry": [...]}`
//!   with every worker, pre-hires and terminated ones too (`Active_Status` `0`), fields named as a
//!   report's aliases usually are: `WID`, `Employee_ID`, `Legal_First_Name`,
//!   `Legal_Last_Name`, `Preferred_Name`, `Work_Email`, `Business_Title`,
//!   `Supervisory_Organization`, `Location`, `Manager_Employee_ID`, `Worker_Type`,
//!   `Hire_Date`, `Termination_Date`, `Active_Status`; dates `YYYY-MM-DD`, empty fields
//!   left out. Without `format=json` it is 400 (the simulator does not speak XML).
//!
//! Errors are JSON `{"error": "...", "errors": [{"error", "field"}]}`; a refused or
//! expired bearer token is 401 `{"error": "invalid access token"}` with
//! `WWW-Authenticate: Bearer`.
//!
//! Limits: Workday publishes none (throttling is per tenant, reported as 429 with
//! `Retry-After`); the simulator keeps one fixed window per tenant
//! ([`WorkdaySimOptions::rate_limit`] per [`WorkdaySimOptions::rate_window`]) and refuses
//! with 429, `Retry-After` and a JSON error. Faults from a [`FaultProfile`] (the shared
//! injector, 429 style) and [`FailRule`]s (a page cut off, a wrong shape, a refusal); every
//! request is logged.
//!
//! The tenant changes only through [`WorkdayHandle`] (hire, change, terminate), on the
//! simulator's clock ([`WorkdayHandle::set_now`]; by default real time).

mod handle;

pub use self::handle::WorkdayHandle;
use super::SimServer;
use super::fault::{FaultProfile, Faults, ThrottleStyle, inject};
use super::log::{RequestLog, record};
use super::ratelimit::RateWindows;
use super::rules::{self, Rules, VendorBodies};
pub use super::rules::{BodyFault, FailRule};
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The API client every simulator knows unless told otherwise.
pub const DEFAULT_CLIENT_ID: &str = "sim-workday-client";
pub const DEFAULT_CLIENT_SECRET: &str = "sim-workday-client-secret-0001";
pub const DEFAULT_REFRESH_TOKEN: &str = "sim-workday-refresh-token-0001";
/// The RaaS report every simulator serves unless told otherwise (`owner/name`).
pub const DEFAULT_REPORT: &str = "ISU_Identity/Identity_Feed";
/// The most workers one page may ask for.
pub const MAX_LIMIT: usize = 100;

/// An employee or a contingent worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerType {
    Employee,
    Contingent,
}

impl WorkerType {
    pub fn as_str(self) -> &'static str {
        match self {
            WorkerType::Employee => "Employee",
            WorkerType::Contingent => "Contingent Worker",
        }
    }
}

/// One worker as the simulator keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct SimWorker {
    /// The Workday ID (32 hex digits); empty when hiring: the simulator assigns one.
    pub wid: String,
    pub employee_id: String,
    pub first_name: String,
    pub last_name: String,
    pub preferred_name: Option<String>,
    pub email: Option<String>,
    pub business_title: Option<String>,
    /// The primary supervisory organisation (a department, as most tenants use it).
    pub organization: Option<String>,
    pub location: Option<String>,
    /// The manager's employee id.
    pub manager: Option<String>,
    pub worker_type: WorkerType,
    pub hire_date: Option<NaiveDate>,
    /// The last day of work: the worker is current up to and including it.
    pub termination_date: Option<NaiveDate>,
}

impl SimWorker {
    /// A current employee with a work e-mail and nothing else set.
    pub fn new(employee_id: &str, first: &str, last: &str, email: &str) -> SimWorker {
        SimWorker {
            wid: String::new(),
            employee_id: employee_id.into(),
            first_name: first.into(),
            last_name: last.into(),
            preferred_name: None,
            email: Some(email.into()),
            business_title: None,
            organization: None,
            location: None,
            manager: None,
            worker_type: WorkerType::Employee,
            hire_date: None,
            termination_date: None,
        }
    }

    pub fn descriptor(&self) -> String {
        let first = self.preferred_name.as_deref().unwrap_or(&self.first_name);
        format!("{first} {}", self.last_name)
    }

    /// Whether the worker is current on `day` (hired by then, not past their last day).
    pub fn current_on(&self, day: NaiveDate) -> bool {
        self.hire_date.is_none_or(|h| h <= day) && self.termination_date.is_none_or(|t| day <= t)
    }
}

/// An API client registered in the tenant.
#[derive(Debug, Clone)]
pub struct SimClient {
    pub id: String,
    pub secret: String,
    /// Refresh tokens issued to it (an API client for integrations).
    pub refresh_tokens: Vec<String>,
    /// Whether it may use the client-credentials grant.
    pub client_credentials: bool,
}

impl Default for SimClient {
    fn default() -> Self {
        SimClient {
            id: DEFAULT_CLIENT_ID.into(),
            secret: DEFAULT_CLIENT_SECRET.into(),
            refresh_tokens: vec![DEFAULT_REFRESH_TOKEN.into()],
            client_credentials: true,
        }
    }
}

#[derive(Debug, Clone)]
pub struct WorkdaySimOptions {
    pub tenant: String,
    pub clients: Vec<SimClient>,
    pub workers: Vec<SimWorker>,
    /// The RaaS report served, `owner/name`.
    pub report: String,
    /// How long an access token lives.
    pub token_lifetime: Duration,
    /// Requests per window (Workday publishes no number).
    pub rate_limit: u32,
    pub rate_window: Duration,
    pub faults: FaultProfile,
    /// The simulator's clock at start (None: real time).
    pub now: Option<DateTime<Utc>>,
}

impl Default for WorkdaySimOptions {
    fn default() -> Self {
        WorkdaySimOptions {
            tenant: "northwind".into(),
            clients: vec![SimClient::default()],
            workers: Vec::new(),
            report: DEFAULT_REPORT.into(),
            token_lifetime: Duration::from_secs(3600),
            rate_limit: 1000,
            rate_window: Duration::from_secs(60),
            faults: FaultProfile::none(),
            now: None,
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct Tenant {
    /// By employee id.
    workers: BTreeMap<String, SimWorker>,
    next_wid: u64,
    /// The simulator's clock: real time plus this.
    offset: chrono::Duration,
    clients: Vec<SimClient>,
    /// Issued access tokens: when each expires, and for which client.
    tokens: HashMap<String, (Instant, String)>,
    token_lifetime: Duration,
    /// Token requests answered with a token, by grant type.
    issued: BTreeMap<String, u64>,
}

impl Tenant {
    fn today(&self) -> NaiveDate {
        (Utc::now() + self.offset).date_naive()
    }

    fn by_wid(&self, wid: &str) -> Option<&SimWorker> {
        self.workers.values().find(|w| w.wid == wid)
    }
}

pub(crate) struct Inner {
    state: Mutex<Tenant>,
    faults: Arc<Faults>,
    windows: RateWindows,
    log: Arc<RequestLog>,
    rules: Arc<Rules>,
    tenant: String,
    report: String,
    base: Mutex<String>,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, Tenant> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Workday's JSON error: `{"error", "errors": [{"error", "field"}]}`.
fn error(status: StatusCode, message: &str, field: Option<&str>) -> Response {
    let mut errors = json!({"error": message});
    if let Some(f) = field {
        errors["field"] = json!(f);
    }
    (
        status,
        axum::Json(json!({"error": message, "errors": [errors]})),
    )
        .into_response()
}

/// An RFC 6749 §5.2 error from the token endpoint.
fn oauth_error(status: StatusCode, code: &str, description: &str) -> Response {
    let mut r = (
        status,
        axum::Json(json!({"error": code, "error_description": description})),
    )
        .into_response();
    if status == StatusCode::UNAUTHORIZED {
        r.headers_mut().insert(
            "www-authenticate",
            HeaderValue::from_static("Basic realm=\"workday\""),
        );
    }
    r
}

struct WorkdayBodies;

impl VendorBodies for WorkdayBodies {
    fn malformed(&self, _req: &HeaderMap) -> Response {
        let mut r = (StatusCode::OK, "{\"total\":3,\"data\":[{\"id\":\"").into_response();
        r.headers_mut()
            .insert("content-type", HeaderValue::from_static("application/json"));
        r
    }

    fn unexpected_shape(&self, _req: &HeaderMap) -> Response {
        axum::Json(json!({"total": "many", "data": {"id": 1}, "Report_Entry": 7})).into_response()
    }

    fn error(&self, _req: &HeaderMap, status: StatusCode, _code: &str, message: &str) -> Response {
        error(status, message, None)
    }

    fn server_error(&self, _req: &HeaderMap) -> Response {
        error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "An internal error occurred.",
            None,
        )
    }
}

/// Start the simulator on 127.0.0.1 (ephemeral port).
pub async fn spawn(opts: WorkdaySimOptions) -> std::io::Result<(SimServer, WorkdayHandle)> {
    crate::adapters::http::install_crypto_provider();
    let mut tenant = Tenant {
        next_wid: 1,
        clients: opts.clients.clone(),
        token_lifetime: opts.token_lifetime,
        ..Default::default()
    };
    if let Some(now) = opts.now {
        tenant.offset = now - Utc::now();
    }
    let inner = Arc::new(Inner {
        state: Mutex::new(tenant),
        faults: Faults::new(opts.faults.clone(), ThrottleStyle::RetryAfter429),
        windows: RateWindows::new(opts.rate_limit, opts.rate_window),
        log: Arc::new(RequestLog::default()),
        rules: Rules::new(WorkdayBodies, 0.0, opts.faults.seed ^ 0x3dd4),
        tenant: opts.tenant.clone(),
        report: opts.report.clone(),
        base: Mutex::new(String::new()),
    });
    let handle = WorkdayHandle {
        inner: inner.clone(),
    };
    for w in opts.workers {
        handle
            .hire(w)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    }
    let server = SimServer::spawn(router(inner.clone())).await?;
    *inner.base.lock().unwrap_or_else(|p| p.into_inner()) = server.base_url();
    Ok((server, handle))
}

fn router(inner: Arc<Inner>) -> axum::Router {
    let api = axum::Router::new()
        .route("/ccx/api/v1/{tenant}/workers", get(workers))
        .route("/ccx/api/v1/{tenant}/workers/{id}", get(worker))
        .route(
            "/ccx/service/customreport2/{tenant}/{owner}/{report}",
            get(report),
        )
        .layer(from_fn_with_state(inner.clone(), bearer));
    axum::Router::new()
        .route("/ccx/oauth2/{tenant}/token", post(token))
        .merge(api)
        .fallback(|| async { error(StatusCode::NOT_FOUND, "Resource not found.", None) })
        .layer(from_fn_with_state(inner.rules.clone(), rules::apply))
        .layer(from_fn_with_state(inner.clone(), limit))
        .layer(from_fn_with_state(inner.faults.clone(), inject))
        .layer(from_fn_with_state(inner.log.clone(), record))
        .with_state(inner)
}

async fn limit(State(inner): State<Arc<Inner>>, req: Request, next: Next) -> Response {
    let w = inner.windows.hit("tenant");
    if w.allowed {
        return next.run(req).await;
    }
    let mut r = error(
        StatusCode::TOO_MANY_REQUESTS,
        "The tenant's request limit was exceeded; retry after the time in Retry-After.",
        None,
    );
    r.headers_mut()
        .insert("retry-after", HeaderValue::from(w.retry_after_secs));
    r
}

/// A valid, unexpired bearer token issued by the token endpoint.
async fn bearer(State(inner): State<Arc<Inner>>, req: Request, next: Next) -> Response {
    let token = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().split_once(' '))
        .filter(|(s, _)| s.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim().to_string());
    let ok = token.is_some_and(|t| {
        inner
            .lock()
            .tokens
            .get(&t)
            .is_some_and(|(expires, _)| Instant::now() < *expires)
    });
    if ok {
        return next.run(req).await;
    }
    let mut r = error(StatusCode::UNAUTHORIZED, "invalid access token", None);
    r.headers_mut().insert(
        "www-authenticate",
        HeaderValue::from_static("Bearer error=\"invalid_token\""),
    );
    r
}

async fn token(
    State(inner): State<Arc<Inner>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if tenant != inner.tenant {
        return error(StatusCode::NOT_FOUND, "Resource not found.", None);
    }
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    let client = super::basic_credentials(&headers).or_else(|| {
        Some((
            form.get("client_id")?.clone(),
            form.get("client_secret")?.clone(),
        ))
    });
    let mut t = inner.lock();
    let Some(client) = client.and_then(|(id, secret)| {
        t.clients
            .iter()
            .find(|c| c.id == id && c.secret == secret)
            .cloned()
    }) else {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Client authentication failed.",
        );
    };
    let grant = form.get("grant_type").map(String::as_str).unwrap_or("");
    match grant {
        "refresh_token" => {
            let given = form.get("refresh_token").map(String::as_str).unwrap_or("");
            if !client.refresh_tokens.iter().any(|r| r == given) {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "The refresh token is invalid or was revoked.",
                );
            }
        }
        "client_credentials" if client.client_credentials => {}
        "client_credentials" => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unauthorized_client",
                "The client may not use the client credentials grant.",
            );
        }
        "" => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "grant_type is required.",
            );
        }
        _ => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "The grant type is not supported.",
            );
        }
    }
    let value = format!("wd-at-{:032x}", rand::random::<u128>());
    let lifetime = t.token_lifetime;
    t.tokens.insert(
        value.clone(),
        (Instant::now() + lifetime, client.id.clone()),
    );
    *t.issued.entry(grant.to_string()).or_insert(0) += 1;
    axum::Json(json!({
        "access_token": value,
        "token_type": "Bearer",
        "expires_in": lifetime.as_secs().max(1),
    }))
    .into_response()
}

impl Inner {
    fn reference(&self, kind: &str, name: &str) -> Value {
        let id = hex::encode(sha2_prefix(&format!("{kind}:{name}")));
        json!({"id": id, "descriptor": name, "href": format!("{}/ccx/api/v1/{}/{kind}/{id}", self.base(), self.tenant)})
    }

    fn base(&self) -> String {
        self.base.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// A worker as `GET /workers` answers it.
    fn worker_json(&self, t: &Tenant, w: &SimWorker) -> Value {
        let mut o = Map::new();
        o.insert("id".into(), json!(w.wid));
        o.insert("descriptor".into(), json!(w.descriptor()));
        o.insert(
            "href".into(),
            json!(format!(
                "{}/ccx/api/v1/{}/workers/{}",
                self.base(),
                self.tenant,
                w.wid
            )),
        );
        o.insert("workerId".into(), json!(w.employee_id));
        o.insert(
            "workerType".into(),
            self.reference("workerTypes", w.worker_type.as_str()),
        );
        if let Some(e) = &w.email {
            o.insert("primaryWorkEmail".into(), json!(e));
        }
        if let Some(b) = &w.business_title {
            o.insert("businessTitle".into(), json!(b));
        }
        if let Some(org) = &w.organization {
            o.insert(
                "primarySupervisoryOrganization".into(),
                self.reference("supervisoryOrganizations", org),
            );
        }
        if let Some(l) = &w.location {
            o.insert("location".into(), self.reference("locations", l));
        }
        if let Some(m) = w.manager.as_ref().and_then(|m| t.workers.get(m)) {
            o.insert(
                "manager".into(),
                json!({"id": m.wid, "descriptor": m.descriptor(), "workerId": m.employee_id}),
            );
        }
        let manages = t
            .workers
            .values()
            .any(|o| o.manager.as_deref() == Some(&w.employee_id));
        o.insert("isManager".into(), json!(manages));
        if let Some(h) = w.hire_date {
            o.insert("hireDate".into(), json!(h.to_string()));
        }
        if let Some(d) = w.termination_date {
            o.insert("terminationDate".into(), json!(d.to_string()));
        }
        Value::Object(o)
    }

    /// A worker as the RaaS report lists it.
    fn report_entry(&self, t: &Tenant, w: &SimWorker, today: NaiveDate) -> Value {
        let mut o = Map::new();
        let mut put = |k: &str, v: Option<String>| {
            if let Some(v) = v.filter(|v| !v.is_empty()) {
                o.insert(k.into(), Value::String(v));
            }
        };
        put("WID", Some(w.wid.clone()));
        put("Employee_ID", Some(w.employee_id.clone()));
        put("Legal_First_Name", Some(w.first_name.clone()));
        put("Legal_Last_Name", Some(w.last_name.clone()));
        put("Preferred_Name", w.preferred_name.clone());
        put("Work_Email", w.email.clone());
        put("Business_Title", w.business_title.clone());
        put("Supervisory_Organization", w.organization.clone());
        put("Location", w.location.clone());
        put(
            "Manager_Employee_ID",
            w.manager.clone().filter(|m| t.workers.contains_key(m)),
        );
        put("Worker_Type", Some(w.worker_type.as_str().into()));
        put("Hire_Date", w.hire_date.map(|d| d.to_string()));
        put(
            "Termination_Date",
            w.termination_date.map(|d| d.to_string()),
        );
        let active = w.termination_date.is_none_or(|d| today <= d);
        put("Active_Status", Some(if active { "1" } else { "0" }.into()));
        Value::Object(o)
    }
}

/// 16 bytes of SHA-256: stable reference ids.
fn sha2_prefix(s: &str) -> [u8; 16] {
    use sha2::Digest;
    let d = sha2::Sha256::digest(s.as_bytes());
    let mut out = [0u8; 16];
    out.copy_from_slice(&d[..16]);
    out
}

fn paging(q: &HashMap<String, String>) -> Result<(usize, usize), Response> {
    let num = |name: &str, default: usize| match q.get(name) {
        None => Ok(default),
        Some(v) => v.parse::<usize>().map_err(|_| {
            error(
                StatusCode::BAD_REQUEST,
                &format!("{name}: {v:?} is not a whole number"),
                Some(name),
            )
        }),
    };
    let limit = num("limit", 20)?;
    let offset = num("offset", 0)?;
    if limit == 0 || limit > MAX_LIMIT {
        return Err(error(
            StatusCode::BAD_REQUEST,
            &format!("limit: must be between 1 and {MAX_LIMIT}"),
            Some("limit"),
        ));
    }
    Ok((limit, offset))
}

async fn workers(
    State(inner): State<Arc<Inner>>,
    Path(tenant): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if tenant != inner.tenant {
        return error(StatusCode::NOT_FOUND, "Resource not found.", None);
    }
    let (limit, offset) = match paging(&q) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let t = inner.lock();
    let today = t.today();
    let current: Vec<&SimWorker> = t.workers.values().filter(|w| w.current_on(today)).collect();
    let data: Vec<Value> = current
        .iter()
        .skip(offset)
        .take(limit)
        .map(|w| inner.worker_json(&t, w))
        .collect();
    axum::Json(json!({"total": current.len(), "data": data})).into_response()
}

async fn worker(
    State(inner): State<Arc<Inner>>,
    Path((tenant, id)): Path<(String, String)>,
) -> Response {
    let t = inner.lock();
    let today = t.today();
    match t.by_wid(&id).filter(|w| w.current_on(today)) {
        Some(w) if tenant == inner.tenant => axum::Json(inner.worker_json(&t, w)).into_response(),
        _ => error(StatusCode::NOT_FOUND, "Resource not found.", None),
    }
}

async fn report(
    State(inner): State<Arc<Inner>>,
    Path((tenant, owner, name)): Path<(String, String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if tenant != inner.tenant || format!("{owner}/{name}") != inner.report {
        return error(StatusCode::NOT_FOUND, "The report was not found.", None);
    }
    if !q
        .get("format")
        .is_some_and(|f| f.eq_ignore_ascii_case("json"))
    {
        return error(
            StatusCode::BAD_REQUEST,
            "format: the simulator serves RaaS reports as format=json only",
            Some("format"),
        );
    }
    let t = inner.lock();
    let today = t.today();
    let entries: Vec<Value> = t
        .workers
        .values()
        .map(|w| inner.report_entry(&t, w, today))
        .collect();
    axum::Json(json!({"Report_Entry": entries})).into_response()
}

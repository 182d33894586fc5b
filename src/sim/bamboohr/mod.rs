//! A stateful BambooHR simulator: one company's employees on the paths and shapes of
//! BambooHR's published description (`tests/specs/bamboohr/public.yaml`, server
//! `https://{companyDomain}.bamboohr.com`), checked through Stoplight Prism in proxy mode
//! (`tests/sim_bamboohr.rs`).
//!
//! Routes (read-only; the company changes through [`BambooHandle`]):
//! - `GET /api/v1/employees/directory`: `fields` (id, type, name) and `employees`, only
//!   `Active` employees, and by default (`onlyCurrent=true`) only those hired by today;
//!   404 when nobody is listed, as the description says.
//! - `GET /api/v1/employees/changed?since=…[&type=inserted|updated|deleted|all]`:
//!   `{"latest", "employees": {"ID": {"id", "action", "lastChanged"}}}` for every employee
//!   whose last change is after `since`. The action is `Deleted` for an employee deleted
//!   after `since`, `Inserted` for one hired after `since` (even if changed again since),
//!   otherwise `Updated`. 400 for a `since` that is not an ISO 8601 date-time or an unknown
//!   `type`.
//! - `GET /api/v1/employees/{id}?fields=a,b`: `id` and the requested fields (default
//!   `firstName,lastName`; unknown names are left out, as fields the caller may not see
//!   are; more than 400 names is 400); 404 for an unknown or deleted id.
//!
//! Values are strings, as BambooHR sends them: `status` `Active`/`Inactive`, dates
//! `YYYY-MM-DD` or `0000-00-00` when there is none, `lastChanged` RFC 3339 with `+00:00`.
//! Changes are stamped from the simulator's clock ([`BambooHandle::set_now`],
//! [`BambooHandle::advance`]; by default real time) to the second, strictly increasing (a
//! change within the same second as the previous one is stamped a second later), so that
//! `since = latest` never misses or repeats a change.
//!
//! Auth: HTTP Basic with an API key as the user name and any password (BambooHR's
//! documented scheme); anything else is 401 with `WWW-Authenticate: Basic` and the reason
//! in `X-BambooHR-Error-Message` (the description declares no 401 on these operations).
//!
//! Limits: one fixed window per company ([`BambooSimOptions::rate_limit`] per
//! [`BambooSimOptions::rate_window`]); a refusal is 429 with `Retry-After` (seconds until
//! the window ends) and `X-BambooHR-Error-Message`, or, as BambooHR answered before
//! 2026-09-16, 503 with the same headers ([`BambooSimOptions::throttle_status`]). Faults
//! from a [`FaultProfile`] (bursts of the same refusal, 500s, outages answered 503
//! without `Retry-After`, timeouts, resets, slow answers) and test-steered [`FailRule`]s
//! (a cut-off body, a 200 of the wrong shape, a lost response, a refusal with BambooHR's
//! error header: [`BambooHandle::fail`]); every request is logged.
//!
//! Webhooks (`webhooks.rs`): registered on the handle with a URL, a private key and the
//! monitored fields; each change POSTs BambooHR's payload, signed
//! `X-BambooHR-Signature: hex(HMAC-SHA256(private key, body ‖ X-BambooHR-Timestamp))` with
//! the timestamp in Unix seconds, from a background task (the change never waits for it).
//!
//! Simplifications (deliberate): JSON only (BambooHR answers XML unless asked for JSON;
//! the simulator always answers JSON); employee id `0` (the key's own employee) is not
//! modelled (404); no access levels (every key sees every field); `latest` with no change
//! after `since` echoes `since` (the description requires a date-time there and says
//! nothing of that case); the directory's fieldset is fixed.

mod handle;
mod webhooks;

pub use self::handle::BambooHandle;
pub use self::webhooks::{Delivery, WebhookFormat, WebhookSpec};
use super::SimServer;
use super::fault::{Fault, FaultProfile, Faults, ThrottleStyle, reset_response};
use super::log::{RequestLog, record};
use super::ratelimit::RateWindows;
use super::rules::{self, Rules, VendorBodies};
pub use super::rules::{BodyFault, FailRule};
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// The API key every simulator accepts unless told otherwise.
pub const DEFAULT_API_KEY: &str = "sim-bamboohr-api-key-0001";

/// The most field names one `GET /api/v1/employees/{id}` may ask for.
pub const MAX_FIELDS: usize = 400;

/// An employee's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmployeeStatus {
    Active,
    Inactive,
}

impl EmployeeStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            EmployeeStatus::Active => "Active",
            EmployeeStatus::Inactive => "Inactive",
        }
    }
}

/// One employee as the simulator keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct SimEmployee {
    /// 0 when hiring: the simulator assigns the next id.
    pub id: u64,
    pub employee_number: String,
    pub first_name: String,
    pub last_name: String,
    pub preferred_name: Option<String>,
    pub work_email: Option<String>,
    pub department: Option<String>,
    pub division: Option<String>,
    pub job_title: Option<String>,
    pub location: Option<String>,
    /// The supervisor's employee id.
    pub supervisor_eid: Option<u64>,
    pub status: EmployeeStatus,
    pub hire_date: Option<NaiveDate>,
    pub termination_date: Option<NaiveDate>,
    /// Set by the simulator on every change (a seed may bring its own).
    pub last_changed: Option<DateTime<Utc>>,
}

impl SimEmployee {
    /// An active employee with a work e-mail and nothing else set.
    pub fn new(id: u64, first: &str, last: &str, email: &str) -> SimEmployee {
        SimEmployee {
            id,
            employee_number: if id == 0 {
                String::new()
            } else {
                format!("E{id:04}")
            },
            first_name: first.into(),
            last_name: last.into(),
            preferred_name: None,
            work_email: Some(email.into()),
            department: None,
            division: None,
            job_title: None,
            location: None,
            supervisor_eid: None,
            status: EmployeeStatus::Active,
            hire_date: None,
            termination_date: None,
            last_changed: None,
        }
    }

    pub fn display_name(&self) -> String {
        let first = self.preferred_name.as_deref().unwrap_or(&self.first_name);
        format!("{first} {}", self.last_name)
    }
}

#[derive(Debug, Clone)]
pub struct BambooSimOptions {
    /// The company's subdomain (`northwind` in `https://northwind.bamboohr.com`).
    pub company_domain: String,
    /// The company's id (event-based webhook payloads carry it).
    pub company_id: String,
    /// API keys accepted as the Basic user name.
    pub api_keys: Vec<String>,
    /// The employees the company starts with (id 0: assigned).
    pub employees: Vec<SimEmployee>,
    /// Requests per window (BambooHR publishes no number).
    pub rate_limit: u32,
    pub rate_window: Duration,
    /// 429 (BambooHR from 2026-09-16) or 503 (before) for a rate-limit refusal.
    pub throttle_status: u16,
    pub faults: FaultProfile,
    /// The simulator's clock at start (None: real time).
    pub now: Option<DateTime<Utc>>,
}

impl Default for BambooSimOptions {
    fn default() -> Self {
        BambooSimOptions {
            company_domain: "northwind".into(),
            company_id: "12345".into(),
            api_keys: vec![DEFAULT_API_KEY.into()],
            employees: Vec::new(),
            rate_limit: 1000,
            rate_window: Duration::from_secs(60),
            throttle_status: 429,
            faults: FaultProfile::none(),
            now: None,
        }
    }
}

/// A change as `changed` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeAction {
    Inserted,
    Updated,
    Deleted,
}

impl ChangeAction {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeAction::Inserted => "Inserted",
            ChangeAction::Updated => "Updated",
            ChangeAction::Deleted => "Deleted",
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct Company {
    employees: BTreeMap<u64, SimEmployee>,
    /// When each employee (present or deleted) was inserted.
    inserted: HashMap<u64, DateTime<Utc>>,
    /// Deleted employees: when.
    deleted: BTreeMap<u64, DateTime<Utc>>,
    next_id: u64,
    last_stamp: Option<DateTime<Utc>>,
    /// The simulator's clock: real time plus this.
    offset: chrono::Duration,
    api_keys: BTreeSet<String>,
}

impl Company {
    fn now(&self) -> DateTime<Utc> {
        Utc::now() + self.offset
    }

    /// The next change's stamp: now to the second, strictly after the previous one.
    fn stamp(&mut self) -> DateTime<Utc> {
        let now = self.now();
        let now = DateTime::from_timestamp(now.timestamp(), 0).unwrap_or(now);
        let t = match self.last_stamp {
            Some(last) if now <= last => last + chrono::Duration::seconds(1),
            _ => now,
        };
        self.last_stamp = Some(t);
        t
    }

    fn today(&self) -> NaiveDate {
        self.now().date_naive()
    }

    /// One field's value as BambooHR answers it (None: no such field).
    fn field(&self, e: &SimEmployee, name: &str) -> Option<Value> {
        let opt = |v: &Option<String>| v.clone().map(Value::String).unwrap_or(Value::Null);
        let date = |d: Option<NaiveDate>| {
            Value::String(
                d.map(|d| d.format("%Y-%m-%d").to_string())
                    .unwrap_or_else(|| "0000-00-00".into()),
            )
        };
        let supervisor = e.supervisor_eid.and_then(|s| self.employees.get(&s));
        Some(match name {
            "id" => Value::String(e.id.to_string()),
            "employeeNumber" => Value::String(e.employee_number.clone()),
            "firstName" => Value::String(e.first_name.clone()),
            "lastName" => Value::String(e.last_name.clone()),
            "preferredName" => opt(&e.preferred_name),
            "displayName" => Value::String(e.display_name()),
            "workEmail" => opt(&e.work_email),
            "department" => opt(&e.department),
            "division" => opt(&e.division),
            "jobTitle" | "jobTitleName" => opt(&e.job_title),
            "location" => opt(&e.location),
            "supervisorEid" | "reportsToId" => opt(&e.supervisor_eid.map(|s| s.to_string())),
            "supervisorEmail" => opt(&supervisor.and_then(|s| s.work_email.clone())),
            "supervisor" | "reportsToName" => opt(&supervisor.map(|s| s.display_name())),
            "status" => Value::String(e.status.as_str().into()),
            "hireDate" => date(e.hire_date),
            "terminationDate" => date(e.termination_date),
            "lastChanged" => opt(&e.last_changed.map(fmt_time)),
            _ => return None,
        })
    }

    /// Every field of [`FIELD_NAMES`], for diffs and webhook payloads.
    fn snapshot(&self, e: &SimEmployee) -> BTreeMap<&'static str, Value> {
        FIELD_NAMES
            .iter()
            .filter_map(|f| self.field(e, f).map(|v| (*f, v)))
            .collect()
    }
}

/// The fields [`BambooHandle`] changes are compared by (and webhooks may monitor).
pub const FIELD_NAMES: &[&str] = &[
    "employeeNumber",
    "firstName",
    "lastName",
    "preferredName",
    "displayName",
    "workEmail",
    "department",
    "division",
    "jobTitle",
    "location",
    "supervisorEid",
    "supervisorEmail",
    "status",
    "hireDate",
    "terminationDate",
];

/// The directory's fieldset: (id, type, name).
const DIRECTORY_FIELDS: &[(&str, &str, &str)] = &[
    ("displayName", "text", "Display name"),
    ("firstName", "text", "First name"),
    ("lastName", "text", "Last name"),
    ("preferredName", "text", "Preferred name"),
    ("jobTitle", "list", "Job title"),
    ("workEmail", "email", "Work Email"),
    ("department", "list", "Department"),
    ("location", "list", "Location"),
    ("division", "list", "Division"),
    ("supervisor", "employee", "Supervisor"),
];

/// `2026-01-31T18:42:00+00:00`: how BambooHR writes `lastChanged` and `latest`.
pub fn fmt_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, false)
}

/// An ISO 8601 date-time as `since` may carry it: RFC 3339, or a `+0000` offset.
pub fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    DateTime::parse_from_rfc3339(s)
        .or_else(|_| DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%z"))
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

pub(crate) struct Inner {
    state: Mutex<Company>,
    faults: Arc<Faults>,
    windows: RateWindows,
    throttle_status: AtomicU16,
    log: Arc<RequestLog>,
    rules: Arc<Rules>,
    hooks: webhooks::Hooks,
    company_domain: String,
    company_id: String,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, Company> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// An answer with no body and BambooHR's error header.
fn refuse(status: StatusCode, message: &str) -> Response {
    let mut r = status.into_response();
    if let Ok(v) = HeaderValue::from_str(message) {
        r.headers_mut().insert("x-bamboohr-error-message", v);
    }
    r
}

/// A rate-limit refusal: 429 (or 503) with Retry-After.
fn throttled(status: u16, retry_after_secs: u64) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::TOO_MANY_REQUESTS);
    let mut r = refuse(
        status,
        "Rate limit exceeded; retry after the time in Retry-After.",
    );
    r.headers_mut()
        .insert("retry-after", HeaderValue::from(retry_after_secs));
    r
}

/// BambooHR's bodies for [`FailRule`]s: errors carry no body, their detail is in
/// `X-BambooHR-Error-Message`.
struct BambooBodies;

impl VendorBodies for BambooBodies {
    fn malformed(&self, _req: &HeaderMap) -> Response {
        let mut r = (StatusCode::OK, "{\"fields\":[{\"id\":\"displayName\",").into_response();
        r.headers_mut()
            .insert("content-type", HeaderValue::from_static("application/json"));
        r
    }

    /// Wrong for every route: no `id` (employee), no `latest` and `employees` not a map
    /// (changed), `employees` not a list (directory).
    fn unexpected_shape(&self, _req: &HeaderMap) -> Response {
        axum::Json(json!({"employees": "unexpected", "fields": 42})).into_response()
    }

    fn error(&self, _req: &HeaderMap, status: StatusCode, _code: &str, message: &str) -> Response {
        refuse(status, message)
    }

    fn server_error(&self, _req: &HeaderMap) -> Response {
        refuse(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error")
    }
}

/// Start the simulator on 127.0.0.1 (ephemeral port).
pub async fn spawn(opts: BambooSimOptions) -> std::io::Result<(SimServer, BambooHandle)> {
    crate::adapters::http::install_crypto_provider();
    let mut company = Company {
        next_id: 1,
        api_keys: opts.api_keys.iter().cloned().collect(),
        ..Default::default()
    };
    if let Some(now) = opts.now {
        company.offset = now - Utc::now();
    }
    // ThrottleStyle only matters to the shared `inject`, which this simulator does not use.
    let faults = Faults::new(opts.faults.clone(), ThrottleStyle::RetryAfter429);
    let inner = Arc::new(Inner {
        state: Mutex::new(company),
        faults,
        windows: RateWindows::new(opts.rate_limit, opts.rate_window),
        throttle_status: AtomicU16::new(opts.throttle_status),
        log: Arc::new(RequestLog::default()),
        rules: Rules::new(BambooBodies, 0.0, opts.faults.seed ^ 0xba3b),
        hooks: webhooks::Hooks::start(),
        company_domain: opts.company_domain.clone(),
        company_id: opts.company_id.clone(),
    });
    let handle = BambooHandle {
        inner: inner.clone(),
    };
    handle
        .seed(opts.employees)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let server = SimServer::spawn(router(inner)).await?;
    Ok((server, handle))
}

fn router(inner: Arc<Inner>) -> axum::Router {
    axum::Router::new()
        .route("/api/v1/employees/directory", get(directory))
        .route("/api/v1/employees/changed", get(changed))
        .route("/api/v1/employees/{id}", get(employee))
        .fallback(|| async { refuse(StatusCode::NOT_FOUND, "Not found") })
        .layer(from_fn_with_state(inner.rules.clone(), rules::apply))
        .layer(from_fn_with_state(inner.clone(), limit))
        .layer(from_fn_with_state(inner.clone(), authenticate))
        .layer(from_fn_with_state(inner.clone(), inject))
        .layer(from_fn_with_state(inner.log.clone(), record))
        .with_state(inner)
}

/// The API key of a Basic `Authorization` (the user name; the password is ignored).
fn basic_user(headers: &HeaderMap) -> Option<String> {
    super::basic_credentials(headers).map(|(user, _)| user)
}

async fn authenticate(State(inner): State<Arc<Inner>>, req: Request, next: Next) -> Response {
    let why = match basic_user(req.headers()) {
        None => "Authentication required: HTTP Basic with the API key as the user name.",
        Some(key) if inner.lock().api_keys.contains(&key) => return next.run(req).await,
        Some(_) => "Invalid API key.",
    };
    let mut r = refuse(StatusCode::UNAUTHORIZED, why);
    r.headers_mut().insert(
        "www-authenticate",
        HeaderValue::from_static("Basic realm=\"BambooHR API\""),
    );
    r
}

async fn limit(State(inner): State<Arc<Inner>>, req: Request, next: Next) -> Response {
    let w = inner.windows.hit("company");
    if w.allowed {
        next.run(req).await
    } else {
        throttled(
            inner.throttle_status.load(Ordering::Relaxed),
            w.retry_after_secs,
        )
    }
}

/// The shared [`FaultProfile`], answered as BambooHR would.
async fn inject(State(inner): State<Arc<Inner>>, req: Request, next: Next) -> Response {
    let faults = &inner.faults;
    if let Some(d) = faults.latency() {
        tokio::time::sleep(d).await;
    }
    let server_error = || refuse(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error");
    match faults.decide() {
        None => next.run(req).await,
        Some(Fault::Throttle) => throttled(
            inner.throttle_status.load(Ordering::Relaxed),
            faults.profile().burst_retry_after_secs,
        ),
        Some(Fault::ServerError) => server_error(),
        Some(Fault::Down) => refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "The service is temporarily unavailable.",
        ),
        Some(Fault::Timeout) => {
            tokio::time::sleep(faults.profile().timeout_delay).await;
            server_error()
        }
        Some(Fault::Reset) => reset_response(),
        Some(Fault::Slow) => {
            tokio::time::sleep(faults.profile().slow_delay).await;
            next.run(req).await
        }
    }
}

fn flag(q: &HashMap<String, String>, name: &str, default: bool) -> Result<bool, Response> {
    match q.get(name).map(|s| s.to_ascii_lowercase()) {
        None => Ok(default),
        Some(v) if v == "true" || v == "1" => Ok(true),
        Some(v) if v == "false" || v == "0" => Ok(false),
        Some(_) => Err(refuse(
            StatusCode::BAD_REQUEST,
            &format!("{name} must be true or false"),
        )),
    }
}

async fn directory(
    State(inner): State<Arc<Inner>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let only_current = match flag(&q, "onlyCurrent", true) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let c = inner.lock();
    let today = c.today();
    let listed: Vec<Value> = c
        .employees
        .values()
        .filter(|e| e.status == EmployeeStatus::Active)
        .filter(|e| !only_current || e.hire_date.is_none_or(|d| d <= today))
        .map(|e| {
            let mut o = Map::new();
            o.insert("id".into(), Value::String(e.id.to_string()));
            for (f, _, _) in DIRECTORY_FIELDS {
                o.insert((*f).into(), c.field(e, f).unwrap_or(Value::Null));
            }
            o.insert("photoUploaded".into(), Value::Bool(false));
            o.insert("canUploadPhoto".into(), json!(0));
            Value::Object(o)
        })
        .collect();
    if listed.is_empty() {
        return refuse(StatusCode::NOT_FOUND, "The directory is empty.");
    }
    let fields: Vec<Value> = DIRECTORY_FIELDS
        .iter()
        .map(|(id, t, name)| json!({"id": id, "type": t, "name": name}))
        .collect();
    axum::Json(json!({"fields": fields, "employees": listed})).into_response()
}

async fn changed(
    State(inner): State<Arc<Inner>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let Some(since_text) = q.get("since") else {
        return refuse(StatusCode::BAD_REQUEST, "The since parameter is required.");
    };
    let Some(since) = parse_time(since_text) else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "The since parameter is not a valid ISO 8601 date-time.",
        );
    };
    let wanted = match q.get("type").map(|t| t.to_ascii_lowercase()).as_deref() {
        None | Some("all") => None,
        Some("inserted") => Some(ChangeAction::Inserted),
        Some("updated") => Some(ChangeAction::Updated),
        Some("deleted") => Some(ChangeAction::Deleted),
        Some(_) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                "type must be inserted, updated, deleted or all.",
            );
        }
    };
    let c = inner.lock();
    let changes = c.changes_since(since);
    let mut latest = None::<DateTime<Utc>>;
    let mut out = Map::new();
    for (id, action, at) in changes {
        if wanted.is_some_and(|w| w != action) {
            continue;
        }
        latest = latest.max(Some(at));
        out.insert(
            id.to_string(),
            json!({"id": id.to_string(), "action": action.as_str(), "lastChanged": fmt_time(at)}),
        );
    }
    let latest = fmt_time(latest.unwrap_or(since));
    axum::Json(json!({"latest": latest, "employees": out})).into_response()
}

impl Company {
    /// (id, action, when) of every employee changed after `since`, by id.
    fn changes_since(&self, since: DateTime<Utc>) -> Vec<(u64, ChangeAction, DateTime<Utc>)> {
        let mut out: Vec<_> = self
            .employees
            .values()
            .filter_map(|e| {
                let at = e.last_changed?;
                (at > since).then(|| {
                    let inserted = self.inserted.get(&e.id).is_some_and(|t| *t > since);
                    let action = if inserted {
                        ChangeAction::Inserted
                    } else {
                        ChangeAction::Updated
                    };
                    (e.id, action, at)
                })
            })
            .collect();
        out.extend(
            self.deleted
                .iter()
                .filter(|(_, at)| **at > since)
                .map(|(id, at)| (*id, ChangeAction::Deleted, *at)),
        );
        out.sort_by_key(|(id, _, _)| *id);
        out
    }
}

async fn employee(
    State(inner): State<Arc<Inner>>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Err(r) = flag(&q, "onlyCurrent", true) {
        return r;
    }
    let names: Vec<&str> = q
        .get("fields")
        .map(|s| s.as_str())
        .unwrap_or("firstName,lastName")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if names.len() > MAX_FIELDS {
        return refuse(
            StatusCode::BAD_REQUEST,
            &format!("At most {MAX_FIELDS} fields may be requested."),
        );
    }
    let c = inner.lock();
    let Some(e) = id.parse::<u64>().ok().and_then(|id| c.employees.get(&id)) else {
        return refuse(StatusCode::NOT_FOUND, "Employee not found.");
    };
    let mut o = Map::new();
    o.insert("id".into(), Value::String(e.id.to_string()));
    for name in names {
        if let Some(v) = c.field(e, name) {
            o.insert(name.to_string(), v);
        }
    }
    axum::Json(Value::Object(o)).into_response()
}

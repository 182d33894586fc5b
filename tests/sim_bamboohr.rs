//! The BambooHR simulator and client.
//!
//! - `conformance_through_prism`: a walk over the directory, changed and employee routes
//!   (with hires, moves, terminations and deletions between the reads, so that every
//!   `changed` action and the empty directory's 404 are seen), then the client's own
//!   calls, all through Stoplight Prism in proxy mode (`--errors`) with BambooHR's
//!   published description (`tests/specs/bamboohr/public.yaml`): no violation in either
//!   direction. What the description does not declare, or what Prism answers itself (a
//!   401, 429 and 503, a malformed `since` or `type`, which Prism refuses before the
//!   simulator sees them), is checked straight at the simulator in the other tests.
//! - auth (Basic, the key as user name), the rate window (429 + Retry-After, the historic
//!   503), injected faults, `changed` semantics, signed webhooks and replays, the client.
//!
//! Prism is required, never skipped (`ACCESSDESK_PRISM` or `.peers/prism`).

#[path = "common/prism.rs"]
mod prism;

use accessdesk::adapters::error::ErrorClass;
use accessdesk::adapters::http::RetryPolicy;
use accessdesk::secrets::Secret;
use accessdesk::sim::SimServer;
use accessdesk::sim::bamboohr::{
    self, BambooHandle, BambooSimOptions, BodyFault, DEFAULT_API_KEY, EmployeeStatus, FailRule,
    SimEmployee, WebhookFormat, WebhookSpec,
};
use accessdesk::sources::bamboohr::{BambooClient, ChangeAction};
use accessdesk::sources::signatures::{Rejection, Scheme, verify};
use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SOURCE: &str = "keyring:bamboohr-api-key";
const WRONG_KEY: &str = "wrong-key-7f3a9c1d5e";
const HOOK_KEY: &str = "webhook-private-key-for-tests";

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

/// The company at 2026-03-01 09:00 UTC: five employees last changed a month before, one
/// of them inactive and one hired in the future.
fn company() -> BambooSimOptions {
    let before = t("2026-02-01T08:00:00Z");
    let mut people = vec![
        SimEmployee::new(1, "Ada", "Lovelace", "ada@northwind.example"),
        SimEmployee::new(2, "Grace", "Hopper", "grace@northwind.example"),
        SimEmployee::new(3, "Alan", "Turing", "alan@northwind.example"),
        SimEmployee::new(4, "Edsger", "Dijkstra", "edsger@northwind.example"),
        SimEmployee::new(5, "Barbara", "Liskov", "barbara@northwind.example"),
    ];
    for (i, e) in people.iter_mut().enumerate() {
        e.department = Some("Engineering".into());
        e.division = Some("R&D".into());
        e.job_title = Some("Engineer".into());
        e.location = Some("Lisbon".into());
        e.hire_date = Some(date("2020-01-06"));
        e.supervisor_eid = (e.id != 1).then_some(1);
        e.last_changed = Some(before + chrono::Duration::seconds(i as i64));
    }
    people[0].job_title = Some("CTO".into());
    people[1].preferred_name = Some("Amazing Grace".into());
    people[3].status = EmployeeStatus::Inactive;
    people[3].termination_date = Some(date("2025-12-31"));
    people[4].hire_date = Some(date("2026-04-01"));
    BambooSimOptions {
        employees: people,
        now: Some(t("2026-03-01T09:00:00Z")),
        ..Default::default()
    }
}

async fn start(opts: BambooSimOptions) -> (SimServer, BambooHandle) {
    accessdesk::adapters::http::install_crypto_provider();
    bamboohr::spawn(opts).await.expect("simulator")
}

struct Resp {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The ids of a directory or `changed` answer.
    fn ids(&self) -> BTreeSet<String> {
        match &self.body["employees"] {
            Value::Array(list) => list
                .iter()
                .map(|e| e["id"].as_str().unwrap_or("").to_string())
                .collect(),
            Value::Object(map) => map.keys().cloned().collect(),
            _ => BTreeSet::new(),
        }
    }

    /// `changed`: id → action.
    fn actions(&self) -> BTreeMap<String, String> {
        let map = self.body["employees"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        map.into_iter()
            .map(|(k, v)| (k, v["action"].as_str().unwrap_or("").to_string()))
            .collect()
    }
}

#[derive(Clone)]
struct Api {
    http: reqwest::Client,
    base: String,
    /// (user, password) for Basic; None: no Authorization.
    basic: Option<(String, String)>,
}

impl Api {
    fn new(base: &str) -> Api {
        Api {
            http: reqwest::Client::builder().no_proxy().build().unwrap(),
            base: base.to_string(),
            basic: Some((DEFAULT_API_KEY.into(), "x".into())),
        }
    }

    fn with_basic(&self, basic: Option<(&str, &str)>) -> Api {
        let mut a = self.clone();
        a.basic = basic.map(|(u, p)| (u.to_string(), p.to_string()));
        a
    }

    async fn send(&self, path: &str, extra: Option<(&str, &str)>) -> Resp {
        let mut rb = self
            .http
            .get(format!("{}{path}", self.base))
            .header("accept", "application/json");
        if let Some((u, p)) = &self.basic {
            rb = rb.basic_auth(u, Some(p));
        }
        if let Some((k, v)) = extra {
            rb = rb.header(k, v);
        }
        let r = rb.send().await.unwrap_or_else(|e| panic!("{path}: {e}"));
        let (status, headers) = (r.status().as_u16(), r.headers().clone());
        let bytes = r.bytes().await.unwrap();
        Resp {
            status,
            headers,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        }
    }

    async fn get(&self, path: &str) -> Resp {
        self.send(path, None).await
    }

    /// GET and check the status.
    async fn x(&self, path: &str, status: u16) -> Resp {
        let r = self.get(path).await;
        assert_eq!(r.status, status, "GET {path}: {}", r.body);
        r
    }
}

fn changed_path(since: &str) -> String {
    format!(
        "/api/v1/employees/changed?since={}",
        since.replace(':', "%3A").replace('+', "%2B")
    )
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn client(base: &str, key: &str) -> BambooClient {
    let mut c = BambooClient::new("hr", base, Secret::new(key), SOURCE).expect("client");
    c.set_retry(RetryPolicy {
        max_attempts: 4,
        max_elapsed: Duration::from_secs(20),
        base: Duration::from_millis(50),
        cap: Duration::from_millis(500),
    });
    c
}

/// The walk: reads of every route, with the company changing between them. Returns
/// nothing; asserts what each answer says.
async fn walk(api: &Api, sim: &BambooHandle) {
    // The directory: Active employees hired by today; with onlyCurrent=false, the future
    // hire too.
    let r = api.x("/api/v1/employees/directory", 200).await;
    assert_eq!(r.ids(), set(&["1", "2", "3"]));
    let fields: Vec<&str> = r.body["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap())
        .collect();
    assert!(fields.contains(&"workEmail") && fields.contains(&"department"));
    let grace = &r.body["employees"][1];
    assert_eq!(grace["displayName"], "Amazing Grace Hopper");
    assert_eq!(grace["supervisor"], "Ada Lovelace");
    let r = api
        .x("/api/v1/employees/directory?onlyCurrent=false", 200)
        .await;
    assert_eq!(r.ids(), set(&["1", "2", "3", "5"]));

    // One employee: the requested fields, as strings; dates 0000-00-00 when none.
    let all = "employeeNumber,firstName,lastName,preferredName,displayName,workEmail,\
               department,division,jobTitle,location,supervisorEid,supervisorEmail,status,\
               hireDate,terminationDate,lastChanged";
    let r = api
        .x(&format!("/api/v1/employees/2?fields={all}"), 200)
        .await;
    let want = json!({
        "id": "2", "employeeNumber": "E0002", "firstName": "Grace", "lastName": "Hopper",
        "preferredName": "Amazing Grace", "displayName": "Amazing Grace Hopper",
        "workEmail": "grace@northwind.example", "department": "Engineering",
        "division": "R&D", "jobTitle": "Engineer", "location": "Lisbon",
        "supervisorEid": "1", "supervisorEmail": "ada@northwind.example",
        "status": "Active", "hireDate": "2020-01-06", "terminationDate": "0000-00-00",
        "lastChanged": "2026-02-01T08:00:01+00:00",
    });
    assert_eq!(r.body, want);
    let r = api
        .x("/api/v1/employees/4?fields=status,terminationDate", 200)
        .await;
    assert_eq!(
        r.body,
        json!({"id": "4", "status": "Inactive", "terminationDate": "2025-12-31"})
    );
    let r = api.x("/api/v1/employees/1", 200).await;
    assert_eq!(
        r.body,
        json!({"id": "1", "firstName": "Ada", "lastName": "Lovelace"})
    );
    let r = api
        .x("/api/v1/employees/1?fields=firstName,noSuchField", 200)
        .await;
    assert_eq!(r.body, json!({"id": "1", "firstName": "Ada"}));
    api.x("/api/v1/employees/999", 404).await;

    // Nothing changed in the last day: no employees, `latest` is `since`.
    let r = api.x(&changed_path("2026-02-28T09:00:00+00:00"), 200).await;
    assert!(r.ids().is_empty());
    assert_eq!(r.body["latest"], "2026-02-28T09:00:00+00:00");

    // A hire, a move, a termination, a deletion: every action.
    let hired = sim
        .hire(SimEmployee::new(
            0,
            "Katherine",
            "Johnson",
            "kj@northwind.example",
        ))
        .unwrap();
    sim.move_to(2, Some("Research"), Some("Rear Admiral"), None)
        .unwrap();
    sim.terminate(3, date("2026-03-01")).unwrap();
    sim.delete(4).unwrap();
    let r = api.x(&changed_path("2026-02-28T09:00:00Z"), 200).await;
    let want: BTreeMap<String, String> = [
        ("2", "Updated"),
        ("3", "Updated"),
        ("4", "Deleted"),
        (hired.to_string().as_str(), "Inserted"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(r.actions(), want);
    for (action, ids) in [
        ("inserted", vec![hired.to_string()]),
        ("updated", vec!["2".into(), "3".into()]),
        ("deleted", vec!["4".into()]),
        (
            "all",
            vec!["2".into(), "3".into(), "4".into(), hired.to_string()],
        ),
    ] {
        let path = format!("{}&type={action}", changed_path("2026-02-28T09:00:00Z"));
        let r = api.x(&path, 200).await;
        let want: BTreeSet<String> = ids.into_iter().collect();
        assert_eq!(r.ids(), want, "type={action}");
    }
    let r = api.x("/api/v1/employees/directory", 200).await;
    assert_eq!(r.ids(), set(&["1", "2", &hired.to_string()]));
    api.x("/api/v1/employees/4?fields=firstName", 404).await;

    // Everyone gone: the directory is empty, 404.
    for id in [1, 2, hired] {
        sim.terminate(id, date("2026-03-02")).unwrap();
    }
    sim.update(5, |e| e.status = EmployeeStatus::Inactive)
        .unwrap();
    api.x("/api/v1/employees/directory", 404).await;
    api.x("/api/v1/employees/directory?onlyCurrent=false", 404)
        .await;
}

/// The client's calls, on a company seeded by [`company`].
async fn client_calls(base: &str) {
    let c = client(base, DEFAULT_API_KEY);
    let dir = c.directory().await.expect("directory");
    let names: BTreeSet<String> = dir
        .iter()
        .map(|e| e["displayName"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        names,
        set(&["Ada Lovelace", "Amazing Grace Hopper", "Alan Turing"])
    );
    let ch = c
        .changed_since(t("2026-02-01T08:00:01Z"))
        .await
        .expect("changed");
    let ids: Vec<(&str, ChangeAction)> = ch
        .employees
        .iter()
        .map(|e| (e.id.as_str(), e.action.clone()))
        .collect();
    assert_eq!(
        ids,
        // Seeded after `since`: inserted then.
        vec![
            ("3", ChangeAction::Inserted),
            ("4", ChangeAction::Inserted),
            ("5", ChangeAction::Inserted)
        ]
    );
    assert_eq!(ch.latest, Some(t("2026-02-01T08:00:04Z")));
    assert_eq!(
        ch.employees[0].last_changed,
        Some(t("2026-02-01T08:00:02Z"))
    );
    let e = c
        .employee("2", &["workEmail", "supervisorEmail", "terminationDate"])
        .await
        .expect("employee");
    assert_eq!(
        e,
        json!({"id": "2", "workEmail": "grace@northwind.example",
               "supervisorEmail": "ada@northwind.example", "terminationDate": "0000-00-00"})
    );
    let missing = c.employee("999", &["firstName"]).await.unwrap_err();
    assert_eq!(missing.class, ErrorClass::NotFound);
    assert!(missing.to_string().contains("HTTP 404"), "{missing}");
    let ok = c.test_connection().await.expect("connection");
    assert!(ok.contains(SOURCE), "{ok}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_through_prism() {
    let (server, sim) = start(company()).await;
    let started = Instant::now();
    let rig = prism::PrismRig::start(
        "bamboohr/public.yaml",
        &server.base_url(),
        "/api/v1/employees/directory",
    )
    .await;
    let ready = started.elapsed().as_secs_f64();
    let api = Api::new(&rig.base());
    client_calls(&rig.base()).await;
    let by_client = rig.exchanges().len();
    walk(&api, &sim).await;
    let contract = rig.exchanges().len();

    // Self-check: answers of the wrong shape from each route, and requests that break the
    // description (Prism refuses them before the simulator sees them), must be reported.
    for path in [
        "/api/v1/employees/directory",
        "/api/v1/employees/changed",
        "/api/v1/employees/2",
    ] {
        sim.fail(FailRule::new(None, path, BodyFault::UnexpectedShape, 1));
    }
    sim.update(2, |e| e.status = EmployeeStatus::Active)
        .unwrap();
    api.x("/api/v1/employees/directory", 500).await;
    api.x(&changed_path("2026-02-28T09:00:00Z"), 500).await;
    api.x("/api/v1/employees/2?fields=firstName", 500).await;
    api.x(&changed_path("not-a-date"), 422).await;
    api.x(
        &format!("{}&type=renamed", changed_path("2026-02-28T09:00:00Z")),
        422,
    )
    .await;
    api.with_basic(None)
        .x("/api/v1/employees/directory", 401)
        .await;
    let probes = rig.exchanges().split_off(contract);
    assert_eq!(probes.len(), 6);
    assert!(
        probes.iter().all(|p| p.violation.is_some()),
        "the recorder missed a violation: {probes:?}"
    );

    let exchanges = rig.exchanges()[..contract].to_vec();
    let violations = prism::violations(&exchanges, |_| false);
    assert!(
        violations.is_empty(),
        "Prism reported {} violation(s):\n{}\n\nPrism log:\n{}",
        violations.len(),
        violations.join("\n"),
        rig.prism.log_tail()
    );
    assert!(by_client >= 5, "the client's calls went through Prism");
    let statuses: BTreeSet<u16> = exchanges.iter().map(|x| x.status).collect();
    assert_eq!(statuses, BTreeSet::from([200, 404]));
    for route in [
        "/api/v1/employees/directory",
        "/api/v1/employees/changed?",
        "/api/v1/employees/2?",
    ] {
        assert!(
            exchanges.iter().any(|x| x.path.starts_with(route)),
            "{route} never went through Prism"
        );
    }
    // Prism forwarded what it validated: the simulator saw the walk and the broken
    // answers, not the refused requests.
    assert_eq!(sim.count(|r| r.status == 401), 0);
    assert_eq!(sim.requests().len(), contract + 3);
    eprintln!(
        "bamboohr conformance: Prism ready after {ready:.1} s; {} exchanges ({by_client} by \
         the client), statuses {statuses:?}; no violations",
        exchanges.len()
    );
    rig.stop().await;
    server.stop().await;
}

#[tokio::test]
async fn auth_is_basic_with_the_api_key_as_user_name() {
    let (server, sim) = start(company()).await;
    let api = Api::new(&server.base_url());
    let path = "/api/v1/employees/1?fields=firstName";
    api.with_basic(Some((DEFAULT_API_KEY, "anything at all")))
        .x(path, 200)
        .await;
    for who in [None, Some((WRONG_KEY, "x")), Some(("", DEFAULT_API_KEY))] {
        let r = api.with_basic(who).x(path, 401).await;
        assert_eq!(
            r.header("www-authenticate"),
            Some("Basic realm=\"BambooHR API\"")
        );
        assert!(r.header("x-bamboohr-error-message").is_some());
    }
    let bearer = api
        .with_basic(None)
        .send(
            path,
            Some(("authorization", &format!("Bearer {DEFAULT_API_KEY}"))),
        )
        .await;
    assert_eq!(bearer.status, 401);
    sim.add_api_key("second-key");
    api.with_basic(Some(("second-key", "x"))).x(path, 200).await;
    sim.revoke_api_key("second-key");
    api.with_basic(Some(("second-key", "x"))).x(path, 401).await;
    assert_eq!(sim.count(|r| r.status == 401), 5);
    server.stop().await;
}

#[tokio::test]
async fn rate_window_refuses_with_429_or_503_and_retry_after() {
    let (server, sim) = start(BambooSimOptions {
        rate_limit: 3,
        // Windows are aligned to their length: an hour makes crossing one mid-test unlikely.
        rate_window: Duration::from_secs(3600),
        ..company()
    })
    .await;
    let api = Api::new(&server.base_url());
    let path = "/api/v1/employees/directory";
    for _ in 0..3 {
        api.x(path, 200).await;
    }
    let r = api.x(path, 429).await;
    let wait: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=3600).contains(&wait), "{wait}");
    assert!(r.header("x-bamboohr-error-message").is_some());
    sim.set_throttle_status(503);
    let r = api.x(path, 503).await;
    assert!(
        r.header("retry-after").is_some(),
        "the historic 503 says when"
    );
    assert_eq!(sim.refused(), 2);
    // A refused request changes nothing and a new limit takes effect at once.
    sim.set_rate_limit(100);
    sim.set_throttle_status(429);
    api.x(path, 200).await;

    // Injected faults: a burst of the same refusal, an outage without Retry-After.
    let faults = sim.faults();
    let mut p = faults.profile();
    p.burst_retry_after_secs = 4;
    faults.set_profile(p);
    faults.throttle_next(2);
    for _ in 0..2 {
        let r = api.x(path, 429).await;
        assert_eq!(r.header("retry-after"), Some("4"));
    }
    faults.set_down(true);
    let r = api.x(path, 503).await;
    assert_eq!(r.header("retry-after"), None);
    faults.set_down(false);
    api.x(path, 200).await;
    assert_eq!(faults.counts().1, 3);
    server.stop().await;
}

#[tokio::test]
async fn changed_since_reports_inserted_updated_deleted_after_since() {
    let (server, sim) = start(company()).await;
    let api = Api::new(&server.base_url());
    // Malformed `since` and `type`: 400 with BambooHR's error header.
    for path in [
        changed_path("yesterday"),
        "/api/v1/employees/changed".to_string(),
        format!("{}&type=renamed", changed_path("2026-02-28T09:00:00Z")),
    ] {
        let r = api.x(&path, 400).await;
        assert!(r.header("x-bamboohr-error-message").is_some(), "{path}");
    }

    let t0 = sim.now();
    let hired = sim
        .hire(SimEmployee::new(
            0,
            "Mary",
            "Jackson",
            "mj@northwind.example",
        ))
        .unwrap();
    // Changes within one second are stamped a second apart: strictly increasing.
    sim.update(hired, |e| e.job_title = Some("Engineer".into()))
        .unwrap();
    sim.update(1, |e| e.location = Some("Porto".into()))
        .unwrap();
    assert!(
        sim.update(1, |e| e.location = Some("Porto".into()))
            .unwrap()
            .is_empty()
    );
    sim.delete(3).unwrap();
    let stamps: Vec<DateTime<Utc>> = [hired, 1]
        .iter()
        .map(|id| sim.employee(*id).unwrap().last_changed.unwrap())
        .collect();
    assert!(stamps[0] < stamps[1], "{stamps:?}");

    let since = |at: DateTime<Utc>| changed_path(&at.to_rfc3339());
    let r = api.x(&since(t0 - chrono::Duration::seconds(1)), 200).await;
    let want: BTreeMap<String, String> = [
        (hired.to_string(), "Inserted"),
        ("1".to_string(), "Updated"),
        ("3".to_string(), "Deleted"),
    ]
    .into_iter()
    .map(|(k, v)| (k, v.to_string()))
    .collect();
    assert_eq!(r.actions(), want, "a hire changed again is still Inserted");
    let latest = r.body["latest"].as_str().unwrap().to_string();
    let entries: Vec<String> = r.body["employees"]
        .as_object()
        .unwrap()
        .values()
        .map(|e| e["lastChanged"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(Some(&latest), entries.iter().max(), "latest is the newest");
    assert_eq!(r.body["employees"]["3"]["id"], "3");

    // `since = latest` lists nothing; a change after it is listed alone; since the hire's
    // own stamp, the hire is an update.
    let latest_t = DateTime::parse_from_rfc3339(&latest)
        .unwrap()
        .with_timezone(&Utc);
    assert!(api.x(&since(latest_t), 200).await.ids().is_empty());
    // Strictly after: a change stamped at `since` itself is not listed again.
    let r = api.x(&since(stamps[1]), 200).await;
    assert_eq!(r.ids(), set(&["3"]));
    sim.advance(Duration::from_secs(3600));
    sim.move_to(2, Some("Sales"), None, Some(hired)).unwrap();
    let r = api.x(&since(latest_t), 200).await;
    assert_eq!(r.ids(), set(&["2"]));
    assert_eq!(
        r.body["employees"]["2"]["lastChanged"], r.body["latest"],
        "latest follows the clock"
    );
    let hire_stamp = sim.employee(hired).unwrap().last_changed.unwrap();
    let r = api
        .x(&since(hire_stamp - chrono::Duration::seconds(2)), 200)
        .await;
    assert_eq!(r.actions()[&hired.to_string()], "Inserted");
    let r = api
        .x(&since(stamps[0] - chrono::Duration::seconds(1)), 200)
        .await;
    assert_eq!(r.actions()[&hired.to_string()], "Updated");
    // The moved employee's supervisor fields follow the new supervisor.
    let r = api
        .x(
            "/api/v1/employees/2?fields=department,supervisorEid,supervisorEmail",
            200,
        )
        .await;
    assert_eq!(r.body["supervisorEid"], hired.to_string());
    assert_eq!(r.body["supervisorEmail"], "mj@northwind.example");
    assert_eq!(r.body["department"], "Sales");
    server.stop().await;
}

/// One delivery as received: its headers and raw body.
type Received = (HeaderMap, Vec<u8>);

/// A webhook receiver: every delivery's headers and raw body; answers `status`, after
/// `delay_ms`.
#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<Received>>>,
    status: Arc<AtomicU16>,
    delay_ms: Arc<AtomicU64>,
}

async fn receive(
    axum::extract::State(rx): axum::extract::State<Receiver>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> StatusCode {
    let delay = rx.delay_ms.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(delay)).await;
    rx.got.lock().unwrap().push((headers, body.to_vec()));
    StatusCode::from_u16(rx.status.load(Ordering::Relaxed)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_are_signed_over_body_and_timestamp_and_can_be_replayed() {
    let (server, sim) = start(company()).await;
    let rx = Receiver::default();
    rx.status.store(200, Ordering::Relaxed);
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(receive))
        .with_state(rx.clone());
    let receiver = SimServer::spawn(app).await.unwrap();
    let url = format!("{}/hook", receiver.base_url());
    let monitored = vec!["department".to_string(), "jobTitle".into(), "status".into()];
    sim.register_webhook(WebhookSpec {
        url: url.clone(),
        private_key: HOOK_KEY.into(),
        monitor_fields: monitored.clone(),
        ..Default::default()
    });

    let hired = sim
        .hire(SimEmployee::new(
            0,
            "Dorothy",
            "Vaughan",
            "dv@northwind.example",
        ))
        .unwrap();
    sim.update(1, |e| e.preferred_name = Some("Countess".into()))
        .unwrap(); // not monitored: nothing sent
    sim.move_to(2, Some("Research"), None, Some(hired)).unwrap();
    sim.delete(3).unwrap();
    let all = sim.wait_deliveries(3, Duration::from_secs(10)).await;
    assert_eq!(all.len(), 3, "{all:?}");
    assert!(all.iter().all(|d| d.outcome == Some(Ok(200))), "{all:?}");
    let got = rx.got.lock().unwrap().clone();
    assert_eq!(got.len(), 3);

    let now = Utc::now().timestamp();
    let bodies: Vec<Value> = got
        .iter()
        .map(|(_, b)| serde_json::from_slice(b).unwrap())
        .collect();
    let created = &bodies[0]["employees"][0];
    assert_eq!(created["action"], "Created");
    assert_eq!(created["id"], hired.to_string());
    assert_eq!(created["changedFields"], json!([]));
    assert_eq!(created["fields"], json!({}));
    let updated = &bodies[1]["employees"][0];
    assert_eq!(updated["action"], "Updated");
    assert_eq!(updated["id"], "2");
    assert_eq!(updated["changedFields"], json!(["department"]));
    assert_eq!(
        updated["fields"],
        json!({"department": "Research", "jobTitle": "Engineer", "status": "Active"})
    );
    let ts = updated["timestamp"].as_str().unwrap();
    assert!(ts.ends_with("+0000") && ts.len() == 24, "{ts}");
    assert_eq!(bodies[2]["employees"][0]["action"], "Deleted");

    for (headers, body) in &got {
        assert_eq!(
            verify(Scheme::BambooHr, headers, body, HOOK_KEY, now),
            Ok(accessdesk::sources::signatures::Verified { delivery_id: None })
        );
        let stamp: i64 = headers["x-bamboohr-timestamp"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((now - stamp).abs() < 60, "Unix seconds: {stamp}");
        assert_eq!(
            verify(Scheme::BambooHr, headers, body, "another-key", now),
            Err(Rejection::BadSignature)
        );
        let mut tampered = body.clone();
        tampered[body.len() / 2] ^= 0x01;
        assert_eq!(
            verify(Scheme::BambooHr, headers, &tampered, HOOK_KEY, now),
            Err(Rejection::BadSignature)
        );
    }

    // A replay is the same bytes with the same headers; a receiver's failure is reported.
    rx.status.store(500, Ordering::Relaxed);
    let again = sim
        .replay(all[1].id, Duration::from_secs(10))
        .await
        .expect("a delivery");
    assert_eq!(again.replay_of, Some(all[1].id));
    assert_eq!(again.outcome, Some(Ok(500)));
    let got = rx.got.lock().unwrap().clone();
    assert_eq!(got.len(), 4);
    assert_eq!(got[3].1, got[1].1);
    for h in ["x-bamboohr-timestamp", "x-bamboohr-signature"] {
        assert_eq!(got[3].0[h], got[1].0[h]);
    }

    // Sending never holds up the change: a slow receiver is still being waited for when
    // the change returns, and an unreachable one is an outcome like any other.
    rx.delay_ms.store(1500, Ordering::Relaxed);
    let dead = sim.register_webhook(WebhookSpec {
        url: "http://127.0.0.1:1/hook".into(),
        private_key: HOOK_KEY.into(),
        monitor_fields: monitored.clone(),
        ..Default::default()
    });
    let started = Instant::now();
    sim.terminate(5, date("2026-03-01")).unwrap();
    assert!(started.elapsed() < Duration::from_millis(300));
    let pending = sim.deliveries();
    assert_eq!(pending.len(), 6);
    assert_eq!(pending[4].outcome, None, "still being sent");
    let all = sim.wait_deliveries(6, Duration::from_secs(20)).await;
    assert_eq!(all[4].outcome, Some(Ok(500)));
    assert!(matches!(all[5].outcome, Some(Err(_))), "{:?}", all[5]);
    assert!(sim.remove_webhook(dead));
    rx.delay_ms.store(0, Ordering::Relaxed);

    // The event-based shape (the description's EmployeeUpdatedWebhookPayload).
    let rx2 = Receiver::default();
    rx2.status.store(204, Ordering::Relaxed);
    let app = axum::Router::new()
        .route("/events", axum::routing::post(receive))
        .with_state(rx2.clone());
    let receiver2 = SimServer::spawn(app).await.unwrap();
    sim.register_webhook(WebhookSpec {
        url: format!("{}/events", receiver2.base_url()),
        private_key: "event-key".into(),
        monitor_fields: vec!["jobTitle".into()],
        format: WebhookFormat::EventBased,
        ..Default::default()
    });
    sim.move_to(1, None, Some("Chief Scientist"), None).unwrap();
    let all = sim.wait_deliveries(8, Duration::from_secs(20)).await;
    assert_eq!(all.len(), 8, "one to each live webhook");
    let got = rx2.got.lock().unwrap().clone();
    assert_eq!(got.len(), 1);
    let v: Value = serde_json::from_slice(&got[0].1).unwrap();
    assert_eq!(v["type"], "employee.updated");
    assert_eq!(
        v["data"],
        json!({"companyId": "12345", "employeeId": "1", "changedFields": ["jobTitle"]})
    );
    assert!(DateTime::parse_from_rfc3339(v["timestamp"].as_str().unwrap()).is_ok());
    assert!(
        verify(
            Scheme::BambooHr,
            &got[0].0,
            &got[0].1,
            "event-key",
            Utc::now().timestamp()
        )
        .is_ok()
    );
    receiver2.stop().await;
    receiver.stop().await;
    server.stop().await;
}

#[tokio::test]
async fn client_retries_throttles_and_never_shows_the_key() {
    let (server, sim) = start(company()).await;
    let base = server.base_url();
    client_calls(&base).await;

    // A 429 with Retry-After 1 is waited out, then retried.
    let faults = sim.faults();
    let mut p = faults.profile();
    p.burst_retry_after_secs = 1;
    faults.set_profile(p);
    let c = client(&base, DEFAULT_API_KEY);
    sim.set_throttle_status(429);
    faults.throttle_next(1);
    let started = Instant::now();
    let dir = c.directory().await.expect("retried after the 429");
    assert_eq!(dir.len(), 3);
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "{:?}",
        started.elapsed()
    );
    // The historic 503 + Retry-After is retried the same way.
    sim.set_throttle_status(503);
    faults.throttle_next(1);
    c.employee("1", &["firstName"])
        .await
        .expect("retried after the 503");
    let statuses: Vec<u16> = sim.requests().iter().map(|r| r.status).collect();
    let tail = &statuses[statuses.len() - 4..];
    assert_eq!(tail, &[429, 200, 503, 200]);
    // An outage (503 without Retry-After) is retried as a transient failure, then given up.
    let before = sim.requests().len();
    faults.set_down(true);
    let down = c.employee("1", &["firstName"]).await.unwrap_err();
    faults.set_down(false);
    assert_eq!(down.class, ErrorClass::Transient);
    assert!(down.to_string().contains("HTTP 503"), "{down}");
    assert_eq!(
        sim.requests().len() - before,
        4,
        "retried up to max_attempts"
    );

    // A wrong key: refused, named by its reference, never shown.
    let wrong = client(&base, WRONG_KEY);
    let before = sim.requests().len();
    let e = wrong.test_connection().await.unwrap_err();
    assert_eq!(e.class, ErrorClass::Unauthorized);
    assert_eq!(
        sim.requests().len() - before,
        1,
        "a refused key is not retried"
    );
    let text = e.to_string();
    for want in ["refused the API key", SOURCE, "HTTP 401", "Invalid API key"] {
        assert!(text.contains(want), "{want:?} missing from {text}");
    }
    let shown = format!("{text} {e:?} {wrong:?}");
    assert!(!shown.contains(WRONG_KEY), "{shown}");
    let e = wrong.directory().await.unwrap_err();
    assert_eq!(e.class, ErrorClass::Unauthorized);
    assert!(!format!("{e} {e:?}").contains(WRONG_KEY));

    // An empty directory (404) stays an error that says why.
    for e in sim.employees() {
        sim.update(e.id, |e| e.status = EmployeeStatus::Inactive)
            .unwrap();
    }
    let e = c.directory().await.unwrap_err();
    assert_eq!(e.class, ErrorClass::NotFound);
    assert!(e.to_string().contains("empty directory"), "{e}");
    server.stop().await;
}

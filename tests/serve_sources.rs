//! HR sources through `accessdesk serve` end to end: the real binary on a home whose one
//! system is the SCIM simulator, with a Standard Webhooks source whose mapping reshapes
//! the HR system's records (a nested name, a department code, an active flag).
//!
//! - A signed joiner is stored, answered 200, mapped, and provisioned (account and
//!   groups); a mover loses the old department's group; a terminated person's account is
//!   deactivated. The same delivery again is a replay (401), and unsigned, wrongly signed
//!   and stale deliveries are 401 and only counted; an unknown source 404; a body over
//!   1 MiB 413; `/metrics` counts each refusal by reason.
//! - A record the mapping cannot read is stored (it verified) and fails, naming the
//!   source, the record and the field.
//! - The API proxy: a joiner answered 200 once provisioned (per system); 401 without the
//!   token; 422 naming the field; a person's intended and actual access.
//! - kill -9 during a stream of deliveries: every delivery answered 200 is processed
//!   exactly once after a restart (one account each, nobody created twice).

#[path = "common/cli.rs"]
mod cli;
#[path = "common/serve.rs"]
mod serve;
#[path = "common/tmux.rs"]
mod tmux;

use accessdesk::sim::scim::{self, ScimHandle, ScimSimOptions};
use accessdesk::store::Store;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use serve::{client, get, serve_with};
use std::path::Path;
use std::time::{Duration, Instant};

const SCIM_VAR: &str = "ACCESSDESK_TEST_SCIM_TOKEN";
const SCIM_TOKEN: &str = "scim-sources-test-token-0123456789";
const SECRET_VAR: &str = "ACCESSDESK_TEST_HR_SECRET";
/// whsec_ + base64 of 32 bytes (test-only).
const SECRET: &str = "whsec_dGVzdC1vbmx5LXNlY3JldC1mb3ItdGhlLWhyLXdlYmhvb2s=";
const API_VAR: &str = "ACCESSDESK_TEST_HR_API_TOKEN";
const API_TOKEN: &str = "hr-api-token-for-the-serve-sources-test";

fn env() -> Vec<(&'static str, &'static str)> {
    vec![
        (SCIM_VAR, SCIM_TOKEN),
        (SECRET_VAR, SECRET),
        (API_VAR, API_TOKEN),
    ]
}

fn setup(home: &Path, base: &str) {
    assert!(cli::run(home, &["init"], &env()).status.success());
    std::fs::write(
        home.join("systems.toml"),
        format!(
            "[systems.app]\nkind = \"scim\"\nbase_url = \"{base}\"\ncredential = \"env:{SCIM_VAR}\"\n\
             [[systems.app.entitlements]]\nkind = \"group\"\nname = \"everyone\"\n\
             [[systems.app.entitlements]]\nkind = \"group\"\nname = \"eng\"\n"
        ),
    )
    .unwrap();
    std::fs::write(
        home.join("policies.toml"),
        "[[rule]]\nname = \"all\"\nwhen = \"person.status == 'active'\"\ngrant = [\"app:group:everyone\"]\n\
         [[rule]]\nname = \"eng\"\nwhen = \"person.status == 'active' && person.department == 'Engineering'\"\ngrant = [\"app:group:eng\"]\n",
    )
    .unwrap();
    std::fs::write(
        home.join("sources.toml"),
        format!(
            "[sources.hr]\nkind = \"webhook\"\ncredential = \"env:{SECRET_VAR}\"\napi_token = \"env:{API_VAR}\"\n\
             [sources.hr.mapping]\nemployee_id = \"record.id\"\nfirst_name = \"record.name.given\"\n\
             last_name = \"record.name.family\"\nemail = \"record.email\"\n\
             department = \"{{'ENG': 'Engineering', 'FIN': 'Finance'}}[record.dept]\"\n\
             status = \"record.active ? 'active' : 'terminated'\"\n"
        ),
    )
    .unwrap();
}

fn record(id: &str, given: &str, family: &str, dept: &str, active: bool) -> Value {
    json!({"id": id, "name": {"given": given, "family": family},
           "email": format!("{}@example.com", id.to_lowercase()), "dept": dept, "active": active})
}

/// A Standard Webhooks delivery's headers: id, timestamp, `v1,` signature.
fn sign(id: &str, ts: i64, body: &[u8], secret: &str) -> Vec<(String, String)> {
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.trim_start_matches("whsec_"))
        .unwrap();
    let mut m = <Hmac<sha2::Sha256> as Mac>::new_from_slice(&key).unwrap();
    m.update(format!("{id}.{ts}.").as_bytes());
    m.update(body);
    let sig = base64::engine::general_purpose::STANDARD.encode(m.finalize().into_bytes());
    vec![
        ("webhook-id".into(), id.into()),
        ("webhook-timestamp".into(), ts.to_string()),
        ("webhook-signature".into(), format!("v1,{sig}")),
    ]
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

async fn post(url: &str, headers: &[(String, String)], body: Vec<u8>) -> (u16, Value) {
    let mut r = client().post(url).body(body);
    for (k, v) in headers {
        r = r.header(k, v);
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// Deliver `event` signed with the source's secret under delivery id `id`.
async fn deliver(url: &str, id: &str, event: &Value) -> (u16, Value) {
    let body = event.to_string().into_bytes();
    post(
        &format!("{url}/webhooks/hr"),
        &sign(id, now(), &body, SECRET),
        body,
    )
    .await
}

/// What the home's inbox and queue hold, for a failure's message.
fn state(home: &Path) -> String {
    let Ok(store) = Store::open(&home.join("accessdesk.db")) else {
        return "(no store)".into();
    };
    let mut out = String::new();
    for r in store.inbox_recent(None, 20).unwrap_or_default() {
        out.push_str(&format!(
            "inbox {} {} {} {:?}\n",
            r.delivery_id, r.status, r.attempts, r.outcome
        ));
    }
    let mut stmt = store
        .conn()
        .prepare("SELECT id, kind, person_id, entitlement, status, last_error_message FROM operations ORDER BY id DESC LIMIT 20")
        .unwrap();
    let rows = stmt
        .query_map([], |r| {
            Ok(format!(
                "op {} {} {} {:?} {} {:?}",
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, Option<String>>(5)?
            ))
        })
        .unwrap();
    for r in rows.flatten() {
        out.push_str(&r);
        out.push('\n');
    }
    let mut stmt = store
        .conn()
        .prepare("SELECT status, count(*) FROM operations GROUP BY 1")
        .unwrap();
    let counts = stmt
        .query_map([], |r| {
            Ok(format!(
                "{}={} ",
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?
            ))
        })
        .unwrap();
    out.extend(counts.flatten());
    out.push('\n');
    for e in std::fs::read_dir(home).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if name.starts_with("serve-") {
            let text = std::fs::read_to_string(e.path()).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(8).collect();
            out.push_str(&format!("--- {name}\n{}\n", tail.join("\n")));
        }
    }
    out
}

async fn until<T>(what: &str, secs: u64, mut f: impl FnMut() -> Option<T>) -> T {
    until_in(None, what, secs, &mut f).await
}

async fn until_in<T>(
    home: Option<&Path>,
    what: &str,
    secs: u64,
    f: &mut dyn FnMut() -> Option<T>,
) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            start.elapsed() < Duration::from_secs(secs),
            "timed out waiting for {what}\n{}",
            home.map(state).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Add `text` to the end of the home's `file`.
fn append(home: &Path, file: &str, text: &str) {
    let mut t = std::fs::read_to_string(home.join(file)).unwrap();
    t.push_str(text);
    std::fs::write(home.join(file), t).unwrap();
}

fn in_group(sim: &ScimHandle, group: &str, user: &str) -> bool {
    let (Some(g), Some(u)) = (sim.group_by_name(group), sim.user_by_name(user)) else {
        return false;
    };
    sim.members(&g.id).contains(&u.id)
}

async fn sim() -> (accessdesk::sim::SimServer, ScimHandle) {
    let (server, sim) = scim::spawn(ScimSimOptions::default()).await.unwrap();
    sim.add_token(SCIM_TOKEN);
    sim.seed_group("everyone");
    sim.seed_group("eng");
    (server, sim)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_webhooks_provision_joiners_movers_and_leavers_and_everything_else_is_refused() {
    let (server, sim) = sim().await;
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    setup(home, &format!("{}/scim/v2", server.base_url()));
    let (serve, url) = serve_with(home, &env());

    // A joiner with a non-Latin name, by a signed delivery.
    let joiner =
        json!({"type": "person.upserted", "data": record("E7", "Zoë", "Ødegård", "ENG", true)});
    let (status, body) = deliver(&url, "msg_1", &joiner).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["delivery"], "msg_1");
    let user = "e7@example.com";
    until("the joiner's account and groups", 60, || {
        (in_group(&sim, "eng", user) && in_group(&sim, "everyone", user)).then_some(())
    })
    .await;
    let u = sim.user_by_name(user).unwrap();
    assert_eq!(u.display_name(), Some("Zoë Ødegård"));

    // The same delivery again: a replay.
    let (status, body) = deliver(&url, "msg_1", &joiner).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("replayed")),
        "{body}"
    );

    // A mover: Engineering to Finance loses eng, keeps everyone.
    let mover =
        json!({"type": "person.upserted", "data": record("E7", "Zoë", "Ødegård", "FIN", true)});
    assert_eq!(deliver(&url, "msg_2", &mover).await.0, 200);
    until("the mover's old group removed", 60, || {
        (!in_group(&sim, "eng", user) && in_group(&sim, "everyone", user)).then_some(())
    })
    .await;

    // Refusals: unsigned, wrongly signed, stale; unknown source; too large.
    let body = mover.to_string().into_bytes();
    let (s, b) = post(&format!("{url}/webhooks/hr"), &[], body.clone()).await;
    assert_eq!((s, b["error"].as_str()), (401, Some("unsigned")), "{b}");
    let other = "whsec_b3RoZXItc2VjcmV0LW9mLTMyLWJ5dGVzLWxvbmctLS0tLS0=";
    let (s, b) = post(
        &format!("{url}/webhooks/hr"),
        &sign("msg_3", now(), &body, other),
        body.clone(),
    )
    .await;
    assert_eq!(
        (s, b["error"].as_str()),
        (401, Some("bad_signature")),
        "{b}"
    );
    let (s, b) = post(
        &format!("{url}/webhooks/hr"),
        &sign("msg_4", now() - 600, &body, SECRET),
        body.clone(),
    )
    .await;
    assert_eq!((s, b["error"].as_str()), (401, Some("stale")), "{b}");
    let (s, _) = post(
        &format!("{url}/webhooks/nope"),
        &sign("msg_5", now(), &body, SECRET),
        body.clone(),
    )
    .await;
    assert_eq!(s, 404);
    let big = vec![b' '; (1 << 20) + 1];
    let (s, _) = post(
        &format!("{url}/webhooks/hr"),
        &sign("msg_6", now(), &big, SECRET),
        big,
    )
    .await;
    assert_eq!(s, 413);
    // A signed body that is not an event of this kind: 400, naming where.
    let odd = json!({"type": "person.promoted", "data": {}})
        .to_string()
        .into_bytes();
    let (s, b) = post(
        &format!("{url}/webhooks/hr"),
        &sign("msg_7", now(), &odd, SECRET),
        odd,
    )
    .await;
    assert_eq!((s, b["at"].as_str()), (400, Some("$.type")), "{b}");

    // A record the mapping cannot read: stored (it verified), then failed naming the field.
    let broken = json!({"type": "person.upserted", "data": {"id": "E8", "name": "Ada", "dept": "ENG", "active": true}});
    assert_eq!(deliver(&url, "msg_8", &broken).await.0, 200);

    // A leaver: the account is deactivated.
    let leaver = json!({"type": "person.terminated", "data": {"id": "E7"}});
    assert_eq!(deliver(&url, "msg_9", &leaver).await.0, 200);
    until_in(
        Some(home),
        "the leaver's account deactivated",
        60,
        &mut || sim.user_by_name(user).filter(|u| !u.active()).map(|_| ()),
    )
    .await;

    let store = Store::open(&home.join("accessdesk.db")).unwrap();
    let rows = store.inbox_recent(Some("hr"), 50).unwrap();
    let by_id = |id: &str| rows.iter().find(|r| r.delivery_id == id).cloned().unwrap();
    // Refused deliveries stored nothing: only the five that were accepted.
    assert_eq!(rows.len(), 4, "{rows:?}");
    let failed = until("the broken record's outcome", 30, || {
        let r = Store::open(&home.join("accessdesk.db"))
            .unwrap()
            .inbox_recent(Some("hr"), 50)
            .unwrap()
            .into_iter()
            .find(|r| r.delivery_id == "msg_8")
            .unwrap();
        (r.status != "pending").then_some(r)
    })
    .await;
    assert_eq!(failed.status, "failed");
    let outcome: Value = serde_json::from_str(failed.outcome.as_deref().unwrap()).unwrap();
    let e = &outcome["events"][0];
    assert_eq!(e["source"], "hr", "{outcome}");
    assert_eq!(e["record"], "data", "{outcome}");
    assert_eq!(e["field"], "first_name", "{outcome}");
    assert_eq!(by_id("msg_2").status, "done");
    assert_eq!(
        store.find_person("E7").unwrap().unwrap().status.as_str(),
        "terminated"
    );

    let (_, metrics) = get(&format!("{url}/metrics")).await;
    for reason in [
        "unsigned",
        "bad_signature",
        "stale",
        "replayed",
        "too_large",
        "bad_payload",
    ] {
        let line =
            format!("accessdesk_webhook_rejections_total{{source=\"hr\",reason=\"{reason}\"}} 1");
        assert!(metrics.contains(&line), "no {line:?} in:\n{metrics}");
    }
    assert!(
        metrics.contains("accessdesk_source_deliveries_total{source=\"hr\"} 4"),
        "{metrics}"
    );
    // No secret in the metrics, the database or serve's log.
    assert!(!metrics.contains("dGVzdC1vbmx5"));
    let db = std::fs::read(home.join("accessdesk.db")).unwrap();
    for s in [&SECRET[6..], API_TOKEN, SCIM_TOKEN] {
        assert!(
            !db.windows(s.len()).any(|w| w == s.as_bytes()),
            "a secret is in the database"
        );
        assert!(!serve.log().contains(s), "a secret is in serve's log");
    }
    assert!(
        serve.log().contains("webhook delivery refused"),
        "{}",
        serve.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_proxy_answers_with_the_outcome_per_system_and_refuses_what_it_must() {
    let (server, sim) = sim().await;
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    setup(home, &format!("{}/scim/v2", server.base_url()));
    let (_serve, url) = serve_with(home, &env());
    let people = format!("{url}/api/v1/sources/hr/people");
    let send = |token: Option<&str>, body: Value, wait: &str| {
        let mut r = client().post(format!("{people}{wait}")).json(&body);
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        async move {
            let r = r.send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };

    let (s, b) = send(None, record("P1", "Ada", "Lovelace", "ENG", true), "").await;
    assert_eq!(s, 401, "{b}");
    let (s, _) = send(
        Some("wrong"),
        record("P1", "Ada", "Lovelace", "ENG", true),
        "",
    )
    .await;
    assert_eq!(s, 401);

    let (s, b) = send(
        Some(API_TOKEN),
        record("P1", "Ada", "Lovelace", "ENG", true),
        "?wait=30",
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["change"], "joiner");
    assert_eq!(b["settled"], true);
    let ops = b["systems"]["app"].as_array().unwrap();
    assert_eq!(ops.len(), 3, "an account and two groups: {b}");
    assert!(ops.iter().all(|o| o["status"] == "succeeded"), "{b}");
    assert!(in_group(&sim, "eng", "p1@example.com"));

    // The same record again: nothing to do, settled at once.
    let (s, b) = send(
        Some(API_TOKEN),
        record("P1", "Ada", "Lovelace", "ENG", true),
        "",
    )
    .await;
    assert_eq!((s, b["change"].as_str()), (200, Some("unchanged")), "{b}");
    assert_eq!(b["operations"], json!([]));

    // A record the mapping cannot read: 422 naming the field.
    let (s, b) = send(
        Some(API_TOKEN),
        json!({"id": "P2", "name": "x", "active": true}),
        "",
    )
    .await;
    assert_eq!((s, b["field"].as_str()), (422, Some("first_name")), "{b}");
    // A valid mapping but an invalid person: 422 naming the field.
    let mut bad = record("P3", "Bo", "Li", "ENG", true);
    bad["email"] = json!("not-an-address");
    let (s, b) = send(Some(API_TOKEN), bad, "").await;
    assert_eq!(s, 422, "{b}");
    assert_eq!(b["problems"][0]["field"], "email", "{b}");
    // wait=0: 202 with the operation ids.
    let (s, b) = send(
        Some(API_TOKEN),
        record("P4", "Cy", "Ng", "FIN", true),
        "?wait=0",
    )
    .await;
    assert_eq!(s, 202, "{b}");
    assert_eq!(b["operations"].as_array().unwrap().len(), 2, "{b}");

    // A person's access: intended versus actual, per system.
    let r = client()
        .get(format!("{url}/api/v1/people/P1/access"))
        .bearer_auth(API_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let a: Value = r.json().await.unwrap();
    let app = &a["systems"]["app"];
    assert_eq!(
        app["intended"],
        json!(["app:group:eng", "app:group:everyone"]),
        "{a}"
    );
    assert_eq!(app["actual"].as_array().unwrap().len(), 2, "{a}");
    assert_eq!(app["account"]["active"], true, "{a}");
    let r = client()
        .get(format!("{url}/api/v1/people/P1/access"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_delivery_is_processed_exactly_once_across_a_kill_9() {
    let (server, sim) = sim().await;
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    setup(home, &format!("{}/scim/v2", server.base_url()));
    let (mut serve, url) = serve_with(home, &env());

    // 300 joiners, 8 at a time; serve is killed while they arrive.
    let acked = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let sender = {
        let (url, acked) = (url.clone(), acked.clone());
        tokio::spawn(async move {
            let ids: Vec<usize> = (0..300).collect();
            for chunk in ids.chunks(8) {
                let mut tasks = Vec::new();
                for i in chunk {
                    let url = url.clone();
                    let id = format!("K{i}");
                    tasks.push(tokio::spawn(async move {
                        let ev = json!({"type": "person.upserted",
                                        "data": record(&id, "Kim", &format!("Stream{id}"), "ENG", true)});
                        let body = ev.to_string().into_bytes();
                        let mut r = client().post(format!("{url}/webhooks/hr")).body(body.clone());
                        for (k, v) in sign(&format!("d-{id}"), now(), &body, SECRET) {
                            r = r.header(k, v);
                        }
                        match r.send().await {
                            Ok(resp) if resp.status().as_u16() == 200 => Some(id),
                            _ => None,
                        }
                    }));
                }
                for t in tasks {
                    if let Ok(Some(id)) = t.await {
                        acked.lock().unwrap().push(id);
                    }
                }
            }
        })
    };
    until("some deliveries acknowledged", 60, || {
        (acked.lock().unwrap().len() >= 120).then_some(())
    })
    .await;
    serve.kill().unwrap();
    serve.wait().unwrap();
    sender.await.unwrap();
    let acked: Vec<String> = acked.lock().unwrap().clone();
    assert!(
        acked.len() >= 120 && acked.len() < 300,
        "killed too late: {}",
        acked.len()
    );

    // Restart: everything acknowledged is processed, once.
    let (_serve, url) = serve_with(home, &env());
    until_in(Some(home), "the inbox drained and the queue settled", 180, &mut || {
        let store = Store::open(&home.join("accessdesk.db")).ok()?;
        let pending = store.inbox_pending(1).ok()?.len();
        let open: i64 = store
            .conn()
            .query_row(
                "SELECT count(*) FROM operations WHERE status NOT IN ('succeeded','failed','cancelled')",
                [],
                |r| r.get(0),
            )
            .ok()?;
        (pending == 0 && open == 0).then_some(())
    })
    .await;
    let _ = url;
    let store = Store::open(&home.join("accessdesk.db")).unwrap();
    for id in &acked {
        let row = store
            .inbox_recent(Some("hr"), 1000)
            .unwrap()
            .into_iter()
            .find(|r| r.delivery_id == format!("d-{id}"))
            .unwrap_or_else(|| panic!("acknowledged delivery d-{id} is not in the inbox"));
        assert_eq!(row.status, "done", "{row:?}");
        let creates: i64 = store
            .conn()
            .query_row(
                "SELECT count(*) FROM operations WHERE person_id = ?1 AND kind = 'create_account'",
                [id],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(creates, 1, "{id} has {creates} create operations");
        let user = format!("{}@example.com", id.to_lowercase());
        assert!(sim.user_by_name(&user).is_some(), "{user} was not created");
        assert!(sim.creates_for(&user) <= 1, "{user} was created twice");
    }
    assert_eq!(sim.max_creates_per_user(), 1);
}

const BAMBOO_VAR: &str = "ACCESSDESK_TEST_BAMBOO_KEY";
const BAMBOO_KEY: &str = "bamboo-cli-test-key-0123456789";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bamboohr_is_tested_previewed_polled_from_the_cli_and_polled_by_serve() {
    use accessdesk::sim::bamboohr::{self, BambooSimOptions, SimEmployee};
    let (server, sim) = sim().await;
    let (bserver, bamboo) = bamboohr::spawn(BambooSimOptions {
        api_keys: vec![BAMBOO_KEY.into()],
        employees: vec![
            SimEmployee::new(1, "Ada", "Lovelace", "ada@northwind.example"),
            SimEmployee::new(2, "Иван", "Иванов", "ivan@northwind.example"),
            SimEmployee::new(3, "Alan", "Turing", "alan@northwind.example"),
        ],
        ..Default::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    setup(home, &format!("{}/scim/v2", server.base_url()));
    append(
        home,
        "sources.toml",
        &format!(
            "\n[sources.bamboo]\nkind = \"bamboohr\"\nbase_url = \"{}\"\ncredential = \"env:{BAMBOO_VAR}\"\npoll_every = \"1s\"\n\
         [sources.bamboo.mapping]\nemployee_id = \"record.employeeNumber\"\nfirst_name = \"record.firstName\"\n\
         last_name = \"record.lastName\"\nemail = \"record.workEmail\"\n\
         status = \"record.status == 'Active' ? 'active' : 'terminated'\"\n",
            bserver.base_url()
        ),
    );
    let mut env = env();
    env.push((BAMBOO_VAR, BAMBOO_KEY));

    let o = cli::run(home, &["source", "test", "bamboo"], &env);
    assert!(o.status.success(), "{}", cli::text(&o));
    assert!(cli::text(&o).contains("accepted"), "{}", cli::text(&o));
    let wrong = [(SCIM_VAR, SCIM_TOKEN), (BAMBOO_VAR, "not-the-key")];
    let o = cli::run(home, &["source", "test", "bamboo"], &wrong);
    assert_eq!(o.status.code(), Some(1), "{}", cli::text(&o));
    assert!(
        cli::text(&o).contains(&format!("env:{BAMBOO_VAR}")),
        "{}",
        cli::text(&o)
    );
    assert!(!cli::text(&o).contains("not-the-key"));

    let o = cli::run(home, &["source", "preview", "bamboo", "--limit", "2"], &env);
    assert!(o.status.success(), "{}", cli::text(&o));
    let t = cli::text(&o);
    assert_eq!(t.lines().filter(|l| l.contains("joiner")).count(), 2, "{t}");
    assert!(t.contains("nothing was applied"), "{t}");
    let sample = home.join("sample.json");
    std::fs::write(
        &sample,
        json!([record("S1", "Zoë", "Ødegård", "ENG", true), {"id": "S2", "name": "x"}]).to_string(),
    )
    .unwrap();
    let o = cli::run(
        home,
        &[
            "--json",
            "source",
            "preview",
            "hr",
            "--file",
            sample.to_str().unwrap(),
        ],
        &env,
    );
    assert_eq!(o.status.code(), Some(3), "{}", cli::text(&o));
    let v = cli::json(&o);
    assert_eq!(v[0]["person"]["last_name"], "Ødegård");
    assert_eq!(v[1]["refused"]["field"], "first_name");
    assert!(
        Store::open(&home.join("accessdesk.db"))
            .unwrap()
            .all_people()
            .unwrap()
            .is_empty(),
        "a preview applied something"
    );

    let o = cli::run(home, &["source", "poll", "bamboo"], &env);
    assert!(o.status.success(), "{}", cli::text(&o));
    assert!(cli::text(&o).contains("applied 3"), "{}", cli::text(&o));

    // serve polls every second: a hire shows up as a person and an account.
    let (_serve, _url) = serve_with(home, &env);
    bamboo
        .hire(SimEmployee::new(
            0,
            "Grace",
            "Hopper",
            "grace@northwind.example",
        ))
        .unwrap();
    until_in(Some(home), "the polled hire's account", 60, &mut || {
        sim.user_by_name("grace@northwind.example").map(|_| ())
    })
    .await;
}

const WORKDAY_VAR: &str = "ACCESSDESK_TEST_WORKDAY_CLIENT";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workday_is_tested_previewed_polled_from_the_cli_and_its_leaver_deprovisioned_by_serve() {
    use accessdesk::sim::workday::{
        self, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_REFRESH_TOKEN, SimWorker,
        WorkdaySimOptions,
    };
    let (server, sim) = sim().await;
    let w = |id: &str, first: &str, last: &str| {
        let mut w = SimWorker::new(
            id,
            first,
            last,
            &format!("{}@northwind.example", first.to_lowercase()),
        );
        w.organization = Some("Engineering".into());
        w
    };
    let (_wserver, wd) = workday::spawn(WorkdaySimOptions {
        workers: vec![
            w("31001", "Ada", "Lovelace"),
            w("31002", "Иван", "Иванов"),
            w("31003", "Alan", "Turing"),
        ],
        ..Default::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    setup(home, &format!("{}/scim/v2", server.base_url()));
    append(
        home,
        "sources.toml",
        &format!(
            "\n[sources.workday]\nkind = \"workday\"\nbase_url = \"{}\"\ncredential = \"env:{WORKDAY_VAR}\"\npoll_every = \"1s\"\n\
         [sources.workday.mapping]\nemployee_id = \"record.workerId\"\n\
         first_name = \"record.descriptor.split(' ')[0]\"\n\
         last_name = \"record.descriptor.substring(record.descriptor.indexOf(' ') + 1)\"\n\
         email = \"record.primaryWorkEmail\"\nstatus = \"'active'\"\n",
            wd.rest_endpoint()
        ),
    );
    let cred = format!(
        r#"{{"client_id":"{DEFAULT_CLIENT_ID}","client_secret":"{DEFAULT_CLIENT_SECRET}","refresh_token":"{DEFAULT_REFRESH_TOKEN}"}}"#
    );
    let cred: &'static str = Box::leak(cred.into_boxed_str());
    let mut env = env();
    env.push((WORKDAY_VAR, cred));

    let o = cli::run(home, &["source", "test", "workday"], &env);
    let t = cli::text(&o);
    assert!(o.status.success(), "{t}");
    assert!(t.contains("3 current workers"), "{t}");
    let wrong = r#"{"client_id":"sim-workday-client","client_secret":"NOT-THE-SECRET"}"#;
    let o = cli::run(
        home,
        &["source", "test", "workday"],
        &[(SCIM_VAR, SCIM_TOKEN), (WORKDAY_VAR, wrong)],
    );
    let t = cli::text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(t.contains(&format!("env:{WORKDAY_VAR}")), "{t}");
    assert!(t.contains("invalid_client"), "{t}");
    assert!(!t.contains("NOT-THE-SECRET"), "{t}");

    let o = cli::run(
        home,
        &["source", "preview", "workday", "--limit", "2"],
        &env,
    );
    let t = cli::text(&o);
    assert!(o.status.success(), "{t}");
    assert_eq!(t.lines().filter(|l| l.contains("joiner")).count(), 2, "{t}");
    assert!(t.contains("nothing was applied"), "{t}");

    let o = cli::run(home, &["source", "poll", "workday"], &env);
    assert!(o.status.success(), "{}", cli::text(&o));
    assert!(cli::text(&o).contains("applied 3"), "{}", cli::text(&o));

    // serve polls every second: a joiner gets an account; a worker terminated in Workday
    // (gone from /workers) loses theirs.
    let (_serve, _url) = serve_with(home, &env);
    until_in(Some(home), "the polled people's accounts", 60, &mut || {
        active(&sim.user_by_name("alan@northwind.example")?).then_some(())
    })
    .await;
    wd.hire(w("31004", "Grace", "Hopper")).unwrap();
    wd.terminate("31003", wd.today() - chrono::Duration::days(1))
        .unwrap();
    until_in(Some(home), "the joiner's account", 60, &mut || {
        sim.user_by_name("grace@northwind.example").map(|_| ())
    })
    .await;
    until_in(
        Some(home),
        "the leaver's account deactivated",
        60,
        &mut || (!active(&sim.user_by_name("alan@northwind.example")?)).then_some(()),
    )
    .await;
    assert!(active(&sim.user_by_name("ada@northwind.example").unwrap()));
}

fn active(u: &accessdesk::sim::scim::ScimResource) -> bool {
    u.attributes.get("active").and_then(Value::as_bool) != Some(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_membership_event_from_a_system_has_it_reconciled_within_seconds() {
    let (server, sim) = sim().await;
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    setup(home, &format!("{}/scim/v2", server.base_url()));
    append(
        home,
        "sources.toml",
        &format!(
            "\n[sources.app-events]\nkind = \"github_events\"\ncredential = \"env:{SECRET_VAR}\"\nsystem = \"app\"\n"
        ),
    );
    let (serve, url) = serve_with(home, &env());
    // A person provisioned by accessdesk.
    let r = client()
        .post(format!("{url}/api/v1/sources/hr/people?wait=20"))
        .bearer_auth(API_TOKEN)
        .json(&record("P1", "Ada", "Lovelace", "ENG", true))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "{}", r.text().await.unwrap());
    let event = |id: &str, login: &str| {
        let body =
            format!(r#"{{"action":"member_added","membership":{{"user":{{"login":"{login}"}}}}}}"#)
                .into_bytes();
        let mut m = <Hmac<sha2::Sha256> as Mac>::new_from_slice(SECRET.as_bytes()).unwrap();
        m.update(&body);
        let sig = format!("sha256={}", hex::encode(m.finalize().into_bytes()));
        let headers = vec![
            ("X-Hub-Signature-256".to_string(), sig),
            ("X-GitHub-Event".to_string(), "organization".to_string()),
            ("X-GitHub-Delivery".to_string(), id.to_string()),
        ];
        let url = format!("{url}/webhooks/app-events");
        async move { post(&url, &headers, body).await }
    };
    let runs = || -> i64 {
        let store = Store::open(&home.join("accessdesk.db")).unwrap();
        store
            .conn()
            .query_row("SELECT count(*) FROM observe_runs", [], |r| r.get(0))
            .unwrap()
    };
    let findings_about = |sql: &str| -> i64 {
        let store = Store::open(&home.join("accessdesk.db")).unwrap();
        store.conn().query_row(sql, [], |r| r.get(0)).unwrap_or(0)
    };

    // Somebody adds an account by hand in the system, and the system says so: a look at
    // it finds an account accessdesk has not seen, so the system is read and reconciled.
    sim.seed_user("intruder@example.com", "In", "Truder");
    let (s, b) = event("gh-1", "intruder@example.com").await;
    assert_eq!(s, 200, "{b}");
    // Without the event, nothing would read the system (no reconcile_every).
    let orphan = until_in(Some(home), "the hand-made account found", 60, &mut || {
        let n = findings_about(
            "SELECT count(*) FROM findings WHERE system = 'app' AND class IN ('orphan', 'unmanaged')",
        );
        (n > 0).then_some(n)
    })
    .await;
    assert_eq!(orphan, 1);
    assert_eq!(runs(), 1);
    let store = Store::open(&home.join("accessdesk.db")).unwrap();
    let row = store
        .inbox_recent(Some("app-events"), 5)
        .unwrap()
        .into_iter()
        .next()
        .unwrap();
    assert_eq!(row.status, "done");
    assert!(row.outcome.unwrap().contains("organization.member_added"));

    // The echo of accessdesk's own change: the account reads as the store holds it, so
    // the system is not read again.
    let (s, b) = event("gh-echo", "p1@example.com").await;
    assert_eq!(s, 200, "{b}");
    until_in(Some(home), "the targeted look at p1", 30, &mut || {
        serve
            .log()
            .contains("the account reads as accessdesk holds it")
            .then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(runs(), 1, "an echo made the system be read again");

    // A change made by hand to a managed account (taken out of a group policy grants):
    // the look sees it, the system is read, the drift is a finding.
    let p1 = sim.user_by_name("p1@example.com").unwrap();
    let eng = sim.group_by_name("eng").unwrap();
    let r = client()
        .patch(format!("{}/scim/v2/Groups/{}", server.base_url(), eng.id))
        .bearer_auth(SCIM_TOKEN)
        .json(&json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "remove", "path": format!("members[value eq \"{}\"]", p1.id)}]
        }))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    assert!(!in_group(&sim, "eng", "p1@example.com"));
    let (s, b) = event("gh-3", "p1@example.com").await;
    assert_eq!(s, 200, "{b}");
    until_in(Some(home), "the hand-deactivated account found", 60, &mut || {
        (runs() == 2
            && findings_about(
                "SELECT count(*) FROM findings WHERE system = 'app' AND person_id = 'P1' AND run_id = (SELECT max(id) FROM observe_runs)",
            ) > 0)
            .then_some(())
    })
    .await;
    assert!(
        serve
            .log()
            .contains("memberships differ from what accessdesk holds"),
        "{}",
        serve.log()
    );
    // A ping is accepted and asks for nothing.
    let ping = br#"{"zen":"Keep it logically awesome."}"#.to_vec();
    let mut m = <Hmac<sha2::Sha256> as Mac>::new_from_slice(SECRET.as_bytes()).unwrap();
    m.update(&ping);
    let headers = vec![
        (
            "X-Hub-Signature-256".to_string(),
            format!("sha256={}", hex::encode(m.finalize().into_bytes())),
        ),
        ("X-GitHub-Event".to_string(), "ping".to_string()),
        ("X-GitHub-Delivery".to_string(), "gh-2".to_string()),
    ];
    assert_eq!(
        post(&format!("{url}/webhooks/app-events"), &headers, ping)
            .await
            .0,
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_beside_serve_leaves_the_workers_to_serve_and_its_approval_reaches_them() {
    let (server, sim) = sim().await;
    sim.seed_group("admins");
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    setup(home, &format!("{}/scim/v2", server.base_url()));
    // A privileged group that needs an approver.
    append(
        home,
        "systems.toml",
        "[[systems.app.entitlements]]\nkind = \"group\"\nname = \"admins\"\nrequires_approval = true\n",
    );
    append(
        home,
        "policies.toml",
        "[[rule]]\nname = \"admins\"\nwhen = \"person.status == 'active' && person.department == 'Engineering'\"\ngrant = [\"app:group:admins\"]\n",
    );

    let (serve, url) = serve_with(home, &env());
    let lock = home.join("accessdesk.db.workers");
    until_in(
        Some(home),
        "serve to take the workers lock",
        30,
        &mut || {
            std::fs::read_to_string(&lock)
                .ok()
                .filter(|t| t.contains("serve"))
        },
    )
    .await;
    // A joiner through serve: provisioned, the privileged group waiting for an approver.
    let r = client()
        .post(format!("{url}/api/v1/sources/hr/people?wait=20"))
        .bearer_auth(API_TOKEN)
        .json(&record("P7", "Grace", "Hopper", "ENG", true))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let body: Value = r.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(in_group(&sim, "eng", "p7@example.com"), "{body}");
    assert!(!in_group(&sim, "admins", "p7@example.com"));

    // `accessdesk run` beside serve leaves the queue to serve's workers and says so.
    let o = cli::run(home, &["run"], &env());
    let t = cli::text(&o);
    assert_eq!(o.status.code(), Some(2), "{t}");
    assert!(
        t.contains("another process runs this home's workers (pid")
            && t.contains("accessdesk serve"),
        "{t}"
    );

    // The console on the same home, in a real terminal.
    let bin = env!("CARGO_BIN_EXE_accessdesk");
    let err = home.join("console-stderr.txt");
    let after = home.join("console-after.txt");
    let cmd = format!(
        "USER=approver ACCESSDESK_KEYCHAIN=memory {SCIM_VAR}={SCIM_TOKEN} {bin} --home {home} console 2>{err}; echo EXIT=$? > {after}; sleep 600",
        home = home.display(),
        err = err.display(),
        after = after.display()
    );
    let t = tmux::start(
        &format!("accessdesk-beside-serve-{}", std::process::id()),
        200,
        50,
        &cmd,
    );
    let long = Duration::from_secs(60);
    let screen = t.wait("the console's overview", long, |s| s.contains("Overview"));
    assert!(
        screen.contains("another process runs this home's workers (pid"),
        "the console did not see serve's workers:\n{screen}"
    );
    t.keys(&["4"]);
    t.wait_text("Pending approvals (1", long);
    t.keys(&["a"]);
    t.wait_text("Reason for approving 1 grant(s)", long);
    t.text("beside serve: on-call");
    t.keys(&["Enter"]);
    t.wait_text("Approve 1 grant(s)?", long);
    t.keys(&["y"]);
    t.wait_text("approved 1 grant(s)", long);
    // serve's workers carry it out (the console's own engine is waiting for the lock).
    until_in(
        Some(home),
        "serve to add the approved membership",
        60,
        &mut || in_group(&sim, "admins", "p7@example.com").then_some(()),
    )
    .await;
    assert!(
        std::fs::read_to_string(&lock).unwrap().contains("serve"),
        "the console took the workers over"
    );
    t.keys(&["q"]);
    let start = Instant::now();
    let done = loop {
        let s = std::fs::read_to_string(&after).unwrap_or_default();
        if s.contains("EXIT=") || start.elapsed() > Duration::from_secs(30) {
            break s;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        done.contains("EXIT=0"),
        "{done}\n{}",
        std::fs::read_to_string(&err).unwrap_or_default()
    );
    // serve never lost its store to the console: healthy, nothing locked.
    let (code, health) = get(&format!("{url}/healthz")).await;
    assert_eq!(code, 200, "{health}");
    assert!(
        !serve.log().contains("database is locked"),
        "{}",
        serve.log()
    );
    let store = Store::open(&home.join("accessdesk.db")).unwrap();
    let approved = store
        .audit_events(None, None)
        .unwrap()
        .into_iter()
        .find(|e| e.action == "approval.approved")
        .expect("no approval in the audit log");
    assert!(approved.details.to_string().contains("beside serve"));
    assert_eq!(approved.actor, "cli:approver");
}

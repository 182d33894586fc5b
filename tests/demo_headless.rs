//! `accessdesk demo --headless`: the real binary on a machine with no keychain runs the
//! seeded scenario, shows the in-memory fallback, rides through the situations, keeps the
//! invariants and cleans up after itself. Plus triage through the library API: the
//! injected failures form one root cause, and a retry after the fix succeeds.

use accessdesk::demo::{Demo, DemoOptions};
use accessdesk::engine::admin::{self, Action};
use accessdesk::model::OperationStatus;
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// The binary with no keychain it may use: the Secret Service is asked for explicitly
/// (the demo never keeps its credentials there: they would outlive it on disk), so the
/// demo must fall back to memory.
fn demo(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_accessdesk"))
        .arg("demo")
        .args(args)
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .env_remove("ACCESSDESK_HOME")
        .env_remove("ACCESSDESK_KEYRING_SERVICE")
        .env_remove("ACCESSDESK_LOG")
        .env("ACCESSDESK_KEYCHAIN", "secret-service")
        .output()
        .expect("running accessdesk demo")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn headless_demo_rides_through_the_scenario_and_cleans_up() {
    // 30 s covers Zoom's first two outages (from T+8 s, 12-18 s apart). On a loaded
    // machine the 429 storm at T+3-4 s can starve Zoom of work during the first one, so a
    // single outage does not reliably outlast an in-flight request's HTTP retries.
    let out = demo(&["--headless", "--for", "30s", "--json"]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let s: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    let ctx = format!("{s:#}\nstderr:\n{stderr}");

    // The keychain fallback is visible: in the summary and as it happens.
    let notices = s["notices"].to_string();
    assert!(
        notices.contains("No session keyring for the demo")
            && notices.contains("on disk")
            && notices.contains("demo credentials are kept in memory only"),
        "{ctx}"
    );
    assert!(
        stderr.contains("notice: No session keyring for the demo"),
        "{ctx}"
    );
    assert_eq!(s["keychain"]["backend"], "memory", "{ctx}");
    assert_eq!(s["keychain"]["service"], "accessdesk-demo", "{ctx}");
    assert_eq!(s["keychain"]["fallback"], true, "{ctx}");

    // 429s were served, and some outlasted the HTTP retries: the engine retried them.
    assert!(s["throttled"].as_u64().unwrap() > 0, "{ctx}");
    assert!(s["retries"]["rate_limited"].as_i64().unwrap() > 0, "{ctx}");
    assert!(
        s["retries"]["by_cause"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["class"] == "rate_limited" && c["http_status"] == 429),
        "{ctx}"
    );
    // Transient errors (the outage's 503s) were retried too.
    assert!(s["retries"]["transient"].as_i64().unwrap() > 0, "{ctx}");
    // The flaky system's outage began.
    assert_eq!(s["flaky"]["began"], true, "{ctx}");
    assert!(s["flaky"]["outages_begun"].as_u64().unwrap() >= 1, "{ctx}");
    // Privileged grants wait for an approver.
    assert!(s["pending_approvals"].as_u64().unwrap() > 0, "{ctx}");
    // The injected permanent failures form one root cause.
    assert!(
        s["failure_groups"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["count"].as_u64().unwrap() >= 3 && g["class"] == "permanent"),
        "{ctx}"
    );
    // The leaver was deactivated.
    assert_eq!(s["leaver"]["status"], "succeeded", "{ctx}");
    assert!(
        s["leaver"]["deactivated_after_ms"].as_u64().is_some(),
        "{ctx}"
    );
    // The HR source: BambooHR's joiner came by poll, the mover and the leaver by signed
    // webhook (the polls then found them unchanged); nothing was refused.
    let hr = &s["hr_source"];
    for (k, n) in [
        ("changes:joiner", 1),
        ("changes:mover", 1),
        ("changes:leaver", 1),
    ] {
        assert_eq!(hr[k].as_i64(), Some(n), "{k}: {ctx}");
    }
    assert!(hr["received"].as_i64().unwrap_or(0) >= 2, "{ctx}");
    assert!(hr["polls"].as_i64().unwrap_or(0) >= 3, "{ctx}");
    assert!(hr.get("failed").is_none(), "{ctx}");
    // Workday: the contractor joined from one snapshot and left by leaving a later one.
    let wd = &s["workday_source"];
    for (k, n) in [("changes:joiner", 1), ("changes:leaver", 1)] {
        assert_eq!(wd[k].as_i64(), Some(n), "workday {k}: {ctx}");
    }
    assert!(wd.get("failed").is_none(), "{ctx}");
    // The invariants.
    assert_eq!(s["duplicate_creates"], 0, "{ctx}");
    assert_eq!(s["audit"]["verified"], true, "{ctx}");
    assert_eq!(s["invariants_hold"], true, "{ctx}");

    // Progress lines went to stderr (stdout is the JSON alone).
    assert!(stderr.contains("operations:"), "{ctx}");
    // No credential in any output (the demo's tokens start with 00demo).
    assert!(
        !stdout.contains("00demo") && !stderr.contains("00demo"),
        "{ctx}"
    );

    // The temporary home is gone.
    let home = s["home"].as_str().unwrap();
    assert_eq!(s["home_kept"], false);
    assert!(!Path::new(home).exists(), "{home} was not removed");
}

#[test]
fn keep_home_leaves_a_home_the_cli_can_read() {
    let out = demo(&[
        "--headless",
        "--for",
        "2s",
        "--keep-home",
        "--json",
        "--seed",
        "7",
    ]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let s: Value = serde_json::from_str(&stdout).unwrap();
    let home = s["home"].as_str().unwrap().to_string();
    assert_eq!(s["home_kept"], true);
    assert_eq!(s["seed"], 7);
    for f in ["systems.toml", "policies.toml", "accessdesk.db"] {
        assert!(Path::new(&home).join(f).exists(), "{f} missing from {home}");
    }
    let cli = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_accessdesk"))
            .arg("--home")
            .arg(&home)
            .args(args)
            .output()
            .unwrap()
    };
    let verify = cli(&["audit", "verify"]);
    assert_eq!(verify.status.code(), Some(0), "{}", text(&verify.stderr));
    let check = cli(&["policy", "check"]);
    assert_eq!(check.status.code(), Some(0), "{}", text(&check.stderr));
    std::fs::remove_dir_all(&home).unwrap();
}

#[test]
fn a_bad_duration_is_a_usage_error() {
    let out = demo(&["--headless", "--for", "30x"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(
            "\"30x\" is not a duration: write a number followed by s, m or h, e.g. 30s or 2m"
        ),
        "{stderr}"
    );
}

/// Wait up to `limit` for `f` to hold, checking every 100 ms.
async fn eventually(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    f()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn triage_retry_succeeds_once_the_injected_failures_are_cleared() {
    let demo = Demo::start(DemoOptions {
        seed: 5,
        keep_home: false,
    })
    .await
    .unwrap();
    let triage = demo.timeline().triage.clone().expect("a triage situation");
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    // The engine alone (no storms or outages): the wave reaches the payroll team quickly.
    let engine = demo.spawn_engine(stop_rx);

    let group = |demo: &Demo| {
        let store = demo.store.lock().unwrap();
        admin::failure_groups(&store)
            .unwrap()
            .into_iter()
            .find(|(rc, _)| rc.system == triage.system && rc.class == "permanent")
            .map(|(rc, ops)| (rc.key(), ops))
    };
    assert!(
        eventually(Duration::from_secs(20), || group(&demo)
            .is_some_and(|(_, ops)| ops.len() == triage.people.len()))
        .await,
        "the payroll memberships did not all fail: {:?}",
        group(&demo).map(|(k, ops)| (k, ops.len()))
    );
    let (key, ops) = group(&demo).unwrap();
    let mut people: Vec<String> = ops.iter().map(|o| o.person_id.clone()).collect();
    people.sort();
    assert_eq!(people, triage.people);
    assert!(
        ops.iter()
            .all(|o| o.entitlement.as_deref() == Some(triage.entitlement.as_str()))
    );

    // Retrying before the fix fails again, the same way.
    {
        let mut store = demo.store.lock().unwrap();
        let n = admin::act_on_group(&mut store, &key, Action::Retry, "test", "try again").unwrap();
        assert_eq!(n, ops.len());
    }
    assert!(
        eventually(Duration::from_secs(10), || group(&demo)
            .is_some_and(|(_, o)| o.len() == ops.len()))
        .await
    );

    // The fix, then a retry: every one succeeds.
    assert!(demo.clear_injected_failures() >= 1);
    {
        let mut store = demo.store.lock().unwrap();
        let n =
            admin::act_on_group(&mut store, &key, Action::Retry, "test", "gateway fixed").unwrap();
        assert_eq!(n, ops.len());
    }
    let ids: Vec<i64> = ops.iter().map(|o| o.id).collect();
    assert!(
        eventually(Duration::from_secs(10), || {
            let store = demo.store.lock().unwrap();
            ids.iter().all(|id| {
                store.op(*id).unwrap().map(|o| o.status) == Some(OperationStatus::Succeeded)
            })
        })
        .await,
        "the retried memberships did not succeed"
    );
    assert!(group(&demo).is_none());

    stop_tx.send(true).unwrap();
    engine.await.unwrap().unwrap();
    let summary = demo.summary().await.unwrap();
    assert!(summary.invariants_hold, "{summary:#?}");
    let home = demo.home.clone();
    demo.shutdown().await;
    assert!(!home.exists());
}

/// The scenario drifts the targets at T+50 s (an orphan in Okta and one in Google, a
/// privileged AWS group and a Google group added by hand, a leaver still active in Zoom,
/// a department changed in Zoom); the
/// headless demo then reconciles: every one of them is found, and enforcing fixes them
/// all (the orphan is deactivated; the API token's own admin is left alone).
#[test]
fn a_reconciliation_session_finds_the_seeded_drift_and_enforcing_fixes_it() {
    let out = demo(&["--headless", "--for", "55s", "--json"]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let v: serde_json::Value = serde_json::from_str(&stdout).expect("summary JSON");
    let r = &v["reconcile"];
    let n = |side: &str, class: &str| r[side][class].as_u64().unwrap_or(0);
    for class in ["orphan", "excess", "leaver_with_access", "attribute_drift"] {
        assert!(
            n("found", class) >= 1,
            "{class} not found: {r}\nstderr:\n{stderr}"
        );
    }
    assert!(stderr.contains("still active in zoom"), "{stderr}");
    assert!(stderr.contains("privileged group"), "{stderr}");
    for class in ["excess", "leaver_with_access", "attribute_drift", "missing"] {
        assert_eq!(n("after", class), 0, "{class} left after enforcing: {r}");
    }
    // The seeded orphans are deactivated; what is left are the accounts accessdesk's own
    // credentials act as, which it never deactivates: the Okta API token's admin and the
    // admin the Google service account acts as.
    assert!(n("found", "orphan") >= 3, "{r}");
    assert_eq!(n("after", "orphan"), 2, "{r}");
    assert!(r["enforced"].as_u64().unwrap_or(0) >= 4, "{r}");
}

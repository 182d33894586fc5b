//! `accessdesk serve` end to end: the real binary on a home whose one system is the SCIM
//! simulator. It prints where it listens; `/healthz` answers 200; the CLI, beside it on
//! the same home, imports people and applies a plan without running it, and serve's
//! workers carry the queue out; `/metrics` shows the finished operations in Prometheus
//! form; the scheduled reconciliation (`reconcile_every`) finds an account made by hand;
//! logs are JSON lines; SIGTERM stops it with exit 0 within the grace period.

#[path = "common/cli.rs"]
mod cli;
#[path = "common/serve.rs"]
mod serve;

use accessdesk::sim::scim::{self, ScimSimOptions};
use serve::{Serve, get, serve_with};
use std::path::Path;
use std::time::{Duration, Instant};

const TOKEN_VAR: &str = "ACCESSDESK_TEST_SCIM_TOKEN";
const TOKEN: &str = "scim-serve-test-token-0123456789";
const HEADER: &str = "employee_id,first_name,last_name,preferred_name,email,department,title,manager_id,location,cost_center,status,start_date,end_date\n";

fn setup(home: &Path, base: &str) {
    let env = [(TOKEN_VAR, TOKEN)];
    assert!(cli::run(home, &["init"], &env).status.success());
    std::fs::write(
        home.join("systems.toml"),
        format!(
            "[systems.app]\nkind = \"scim\"\nbase_url = \"{base}\"\ncredential = \"env:{TOKEN_VAR}\"\nreconcile_every = \"1s\"\n\
             [[systems.app.entitlements]]\nkind = \"group\"\nname = \"everyone\"\n"
        ),
    )
    .unwrap();
    std::fs::write(
        home.join("policies.toml"),
        "[[rule]]\nname = \"all\"\nwhen = \"person.status == 'active'\"\ngrant = [\"app:group:everyone\"]\n",
    )
    .unwrap();
}

/// Start serve on a free port; returns the process and its base URL.
fn serve(home: &Path) -> (Serve, String) {
    serve_with(home, &[(TOKEN_VAR, TOKEN)])
}

/// With the CLI: import `n` active people, plan, and apply without running (the queue
/// is left to serve).
fn enqueue(home: &Path, n: usize) {
    let env = [(TOKEN_VAR, TOKEN)];
    let mut csv = HEADER.to_string();
    for i in 0..n {
        csv.push_str(&format!(
            "E{i},Ada,Serve{i},,ada.serve{i}@example.com,Eng,T,,L,C,active,,\n"
        ));
    }
    let csv_path = home.join("hr.csv");
    std::fs::write(&csv_path, csv).unwrap();
    let o = cli::run(
        home,
        &["people", "import", csv_path.to_str().unwrap()],
        &env,
    );
    assert!(o.status.success(), "{}", cli::text(&o));
    let plan = cli::json(&cli::run(home, &["--json", "plan"], &env));
    let id = plan["id"].as_str().unwrap().to_string();
    let o = cli::run(home, &["apply", &id, "--no-run"], &env);
    assert!(o.status.success(), "{}", cli::text(&o));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_runs_the_queue_the_cli_fills_reports_health_and_metrics_and_stops_on_sigterm() {
    let (server, sim) = scim::spawn(ScimSimOptions::default()).await.unwrap();
    sim.add_token(TOKEN);
    sim.seed_group("everyone");
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    setup(home, &format!("{}/scim/v2", server.base_url()));
    let (mut child, url) = serve(home);

    let (status, body) = get(&format!("{url}/healthz")).await;
    assert_eq!((status, body.as_str()), (200, "ok\n"));
    assert_eq!(get(&format!("{url}/nope")).await.0, 404);

    // The CLI beside serve, on the same home: import, plan, apply without running.
    let env = [(TOKEN_VAR, TOKEN)];
    enqueue(home, 5);

    // Serve's workers pick the operations up: 5 accounts and 5 memberships.
    let deadline = Instant::now() + Duration::from_secs(30);
    let metrics = loop {
        let (status, text) = get(&format!("{url}/metrics")).await;
        assert_eq!(status, 200);
        if text.contains("accessdesk_queue_operations{system=\"app\",status=\"succeeded\"} 10") {
            break text;
        }
        if Instant::now() >= deadline {
            let failures = cli::run(home, &["queue", "failures"], &env);
            panic!("the queue did not drain:\n{text}\n{}", cli::text(&failures));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(sim.users().len(), 5, "one account each");
    assert!(
        metrics.contains(
            "accessdesk_operation_duration_seconds_count{system=\"app\",kind=\"create_account\"} 5"
        ),
        "{metrics}"
    );
    assert!(metrics.contains("accessdesk_workers_alive 1"), "{metrics}");
    for line in metrics.lines().filter(|l| !l.starts_with('#')) {
        assert!(line.starts_with("accessdesk_"), "{line}");
    }
    assert!(!metrics.contains(TOKEN));

    // Scheduled reconciliation (reconcile_every = "1s"): an account made by hand in the
    // target is found without anyone asking.
    sim.seed_user("stray@example.com", "Stray", "Account");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, text) = get(&format!("{url}/metrics")).await;
        if text.contains("accessdesk_findings_open{system=\"app\",class=\"orphan\"} 1") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the scheduled reconciliation found no orphan:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    // SIGTERM: exit 0 within the grace period, logs as JSON lines, no secret in them.
    let asked = Instant::now();
    let pid = child.id() as i32;
    // SAFETY: sending a signal to our own child process.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "exit status {status:?}");
    assert!(
        asked.elapsed() < Duration::from_secs(10),
        "{:?}",
        asked.elapsed()
    );
    let stderr = child.log();
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty(), "serve logged nothing");
    for l in &lines {
        let v: serde_json::Value =
            serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON log line ({e}): {l}"));
        assert!(v.get("level").is_some(), "{l}");
    }
    assert!(stderr.contains("\"serving\""), "{stderr}");
    assert!(stderr.contains("stopped"), "{stderr}");
    assert!(stderr.contains("scheduled reconciliation"), "{stderr}");
    assert!(!stderr.contains(TOKEN), "a secret in the logs");
    server.stop().await;
}

/// kill -9 in the middle of the queue (every answer takes 50-150 ms, so operations are in
/// flight), then a new serve on the same home: crash recovery finishes the work, and
/// nobody's account is created twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_killed_mid_queue_finishes_after_a_restart_with_nothing_done_twice() {
    let (server, sim) = scim::spawn(ScimSimOptions {
        faults: accessdesk::sim::fault::FaultProfile {
            latency: Some((Duration::from_millis(50), Duration::from_millis(150))),
            ..accessdesk::sim::fault::FaultProfile::none()
        },
        ..ScimSimOptions::default()
    })
    .await
    .unwrap();
    sim.add_token(TOKEN);
    sim.seed_group("everyone");
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    setup(home, &format!("{}/scim/v2", server.base_url()));
    enqueue(home, 12);
    let (mut child, url) = serve(home);
    // Wait until some, not all, operations are done.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let users = sim.users().len();
        if users >= 3 {
            assert!(users < 12, "the queue finished before the kill");
            break;
        }
        assert!(Instant::now() < deadline, "nothing happened");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let (mut child, url2) = serve(home);
    assert_ne!(url, url2, "a new process");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, text) = get(&format!("{url2}/metrics")).await;
        if text.contains("accessdesk_queue_operations{system=\"app\",status=\"succeeded\"} 24") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the queue did not finish after the restart:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(sim.users().len(), 12);
    assert_eq!(
        sim.max_creates_per_user(),
        1,
        "an account was created twice"
    );
    assert!(
        sim.max_membership_adds() <= 1,
        "a membership was added twice"
    );
    // SAFETY: sending a signal to our own child process.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    assert_eq!(child.wait().unwrap().code(), Some(0));
    server.stop().await;
}

/// `accessdesk source list`: what sources.toml holds, and a bad file reported with
/// file:line and the key, never echoing a pasted secret.
#[test]
fn source_list_reads_sources_toml_and_locates_its_mistakes() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    assert!(cli::run(home, &["init"], &[]).status.success());
    let none = cli::run(home, &["source", "list"], &[]);
    assert!(
        cli::text(&none).contains("no sources"),
        "{}",
        cli::text(&none)
    );
    std::fs::write(
        home.join("sources.toml"),
        "[sources.hr]\nkind = \"webhook\"\ncredential = \"keyring:hr-secret\"\n\
         [sources.bamboo]\nkind = \"bamboohr\"\nbase_url = \"http://127.0.0.1:9\"\n\
         credential = \"env:BAMBOO_KEY\"\npoll_every = \"5m\"\n",
    )
    .unwrap();
    let v = cli::json(&cli::run(home, &["--json", "source", "list"], &[]));
    assert_eq!(v[0]["name"], "bamboo");
    assert_eq!(v[0]["poll_every_secs"], 300);
    assert_eq!(v[1]["webhook"], "/webhooks/hr");
    std::fs::write(
        home.join("sources.toml"),
        "[sources.hr]\nkind = \"webhook\"\ncredential = \"whsec_PASTEDSECRET\"\n",
    )
    .unwrap();
    let o = cli::run(home, &["source", "list"], &[]);
    assert_eq!(o.status.code(), Some(2), "{}", cli::text(&o));
    let t = cli::text(&o);
    assert!(
        t.contains("sources.toml:3:") && t.contains("sources.hr.credential"),
        "{t}"
    );
    assert!(!t.contains("PASTEDSECRET"), "{t}");
}

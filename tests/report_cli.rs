//! `accessdesk report reconcile|verify` end to end against the Okta simulator: a home
//! with a reconciled run (a privileged group added behind accessdesk's back, enforced; a
//! first removal refused by Okta, then retried; orphans accepted), reports in HTML, CSV
//! and JSON with the run, dispositions, operations with vendor answers and intended vs
//! actual access; each audited as report.written; verify accepts the untouched file and
//! names the findings section after one byte in it changes.

#[path = "common/cli.rs"]
mod cli;

use accessdesk::sim::okta::{BodyFault, FailRule, OktaSimOptions, spawn};
use axum::http::Method;
use cli::{json, text};
use sha2::{Digest, Sha256};
use std::path::Path;
use std::process::Output;

const TOKEN: &str = "00sim-report-cli";
const HEADER: &str = "employee_id,first_name,last_name,preferred_name,email,department,title,manager_id,location,cost_center,status,start_date,end_date\n";
const ARABIC_GIVEN: &str = "نور";
const ARABIC_FAMILY: &str = "الهدى";
const CJK_GIVEN: &str = "太郎";
const CJK_FAMILY: &str = "山田";
const VENDOR_MESSAGE: &str = "Api validation failed: group membership is locked";

fn run(home: &Path, args: &[&str]) -> Output {
    cli::run(home, args, &[("REPORT_OKTA_TOKEN", TOKEN)])
}

fn ok(o: Output) -> Output {
    assert!(o.status.success(), "{}", text(&o));
    o
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn set_up(h: &Path, base: &str) {
    ok(run(h, &["init"]));
    std::fs::write(
        h.join("systems.toml"),
        format!(
            "[systems.okta]\nkind = \"okta\"\nbase_url = \"{base}\"\ncredential = \"env:REPORT_OKTA_TOKEN\"\n\
             [[systems.okta.entitlements]]\nkind = \"group\"\nname = \"everyone\"\n\
             [[systems.okta.entitlements]]\nkind = \"group\"\nname = \"admins\"\nrisk = \"privileged\"\n"
        ),
    )
    .unwrap();
    std::fs::write(
        h.join("policies.toml"),
        "[[rule]]\nname = \"everyone\"\nwhen = 'person.status == \"active\"'\ngrant = [\"okta:group:everyone\"]\n",
    )
    .unwrap();
    let csv = h.join("hr.csv");
    std::fs::write(
        &csv,
        format!(
            "{HEADER}E1,{ARABIC_GIVEN},{ARABIC_FAMILY},,nour@example.com,Eng,Engineer,,Cairo,CC1,active,,\n\
             E2,{CJK_GIVEN},{CJK_FAMILY},,taro@example.com,Eng,Engineer,,Tokyo,CC1,active,,\n\
             E3,\"Zoë <b>&\",\"O'Brien \"\"Q\"\"\",,zoe@example.com,Eng,Engineer,,Dublin,CC1,active,,\n"
        ),
    )
    .unwrap();
    ok(run(h, &["people", "import", csv.to_str().unwrap()]));
    let plan = json(&run(h, &["--json", "plan"]));
    let id = plan["id"].as_str().unwrap().to_string();
    ok(run(h, &["apply", &id]));
}

/// Reconcile, accept the orphans, enforce the excess; Okta refuses the first removal
/// (a vendor answer to report), the retry succeeds.
fn reconcile_and_remediate(h: &Path, okta: &accessdesk::sim::okta::OktaHandle) {
    let o = run(h, &["--json", "reconcile"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let classes: Vec<String> = json(&o)["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["class"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(classes, ["excess", "orphan", "orphan"], "{}", text(&o));
    ok(run(
        h,
        &[
            "findings",
            "accept",
            "--class",
            "orphan",
            "--yes",
            "--reason",
            "service users & <bots>",
            "--until",
            "2099-01-01",
        ],
    ));
    okta.fail(FailRule::new(
        Some(Method::DELETE),
        "/users/",
        BodyFault::reject(400, "E0000001", VENDOR_MESSAGE),
        1,
    ));
    let o = ok(run(
        h,
        &[
            "--json", "findings", "enforce", "--class", "excess", "--yes",
        ],
    ));
    let op = json(&o)[0]["ops"][0].as_i64().unwrap();
    let o = run(h, &["run"]);
    assert!(
        text(&o).contains("E0000001") || !o.status.success(),
        "{}",
        text(&o)
    );
    ok(run(
        h,
        &["queue", "retry", &op.to_string(), "--reason", "lock lifted"],
    ));
    ok(run(h, &["run"]));
}

/// Add a group member in Okta directly, as an administrator would by hand.
async fn okta_put(base: &str, path: &str) {
    accessdesk::adapters::http::install_crypto_provider();
    let r = reqwest::Client::new()
        .put(format!("{base}{path}"))
        .header("Authorization", format!("SSWS {TOKEN}"))
        .header("Accept", "application/json")
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{path}: {}", r.status());
}

/// The HTML with every table cell's content removed: what is left is the report's own
/// markup, which must reference nothing outside the file.
fn markup_only(html: &str) -> String {
    let mut out = String::new();
    let mut rest = html;
    while let Some(i) = rest.find("<td") {
        out.push_str(&rest[..i]);
        let Some(j) = rest[i..].find("</td>") else {
            break;
        };
        rest = &rest[i + j + 5..];
    }
    out.push_str(rest);
    out
}

fn check_html(html: &str) {
    assert!(html.starts_with("<!DOCTYPE html>") && html.contains("@media print"));
    for section in ["header", "systems", "access", "findings", "operations"] {
        assert!(
            html.contains(&format!("<section id=\"{section}\">")),
            "{section}"
        );
    }
    let markup = markup_only(html);
    for banned in ["http://", "https://", "<link", "src=", "url("] {
        assert!(!markup.contains(banned), "{banned} outside data values");
    }
    // Names as HR spells them, escaped where they carry markup.
    assert!(html.contains(&format!("{ARABIC_GIVEN} {ARABIC_FAMILY}")));
    assert!(html.contains(&format!("{CJK_GIVEN} {CJK_FAMILY}")));
    assert!(
        html.contains("Zoë &lt;b&gt;&amp; O&#39;Brien &quot;Q&quot;"),
        "escaped name"
    );
    assert!(!html.contains("<b>&"));
    assert!(
        html.contains("service users &amp; &lt;bots&gt;"),
        "accepted reason"
    );
    assert_eq!(html.matches("<script>").count(), 1);
}

fn check_json(v: &serde_json::Value, run_id: i64, policy: &str) {
    let h = &v["header"];
    assert_eq!(h["run_id"], run_id);
    assert_eq!(h["run_status"], "complete");
    assert!(h["run_started_at"].as_str().is_some() && h["run_finished_at"].as_str().is_some());
    assert_eq!(h["policy_version_sha256"], policy, "{h}");
    assert!(
        h["policy_version_covers"]
            .as_str()
            .unwrap()
            .contains("policies.toml followed by the bytes of systems.toml")
    );
    assert_eq!(h["audit_head_hash"].as_str().unwrap().len(), 64);
    assert_eq!(h["observations"][0]["system"], "okta");
    assert!(h["observations"][0]["observed_at"].as_str().is_some());
    let s = &v["systems"][0];
    assert_eq!(
        s["integration_pattern"],
        "pull: full read of accounts and memberships through the vendor API, on demand"
    );
    let delay = s["expected_delay"].as_str().unwrap();
    assert!(
        delay.starts_with("until the next observation; the last full read of this system took "),
        "{delay}"
    );
    assert!(
        delay.contains(s["last_full_read_completed_at"].as_str().unwrap()),
        "{delay}"
    );
    // Intended vs actual: E1 held admins when the run read Okta; E2 matched.
    let access = v["access"].as_array().unwrap();
    let row = |p: &str| {
        access
            .iter()
            .find(|r| r["person"] == p)
            .unwrap_or_else(|| panic!("{p}: {access:?}"))
    };
    assert_eq!(row("E1")["status"], "differs");
    assert_eq!(
        row("E1")["intended"],
        serde_json::json!(["okta:group:everyone"])
    );
    assert_eq!(
        row("E1")["actual"],
        serde_json::json!(["okta:group:admins", "okta:group:everyone"])
    );
    assert_eq!(
        row("E1")["not_intended"],
        serde_json::json!(["okta:group:admins"])
    );
    assert_eq!(row("E1")["name"], format!("{ARABIC_GIVEN} {ARABIC_FAMILY}"));
    assert_eq!(row("E2")["status"], "matches");
    assert!(
        access
            .iter()
            .any(|r| r["person"].is_null() && r["status"] == "differs"),
        "orphan accounts listed"
    );
    // Findings with dispositions.
    let findings = v["findings"].as_array().unwrap();
    let excess = findings.iter().find(|f| f["class"] == "excess").unwrap();
    assert_eq!(excess["disposition"], "enforced");
    assert_eq!(excess["decided_by"], "cli:tester");
    assert!(excess["decided_at"].as_str().is_some());
    let orphan = findings.iter().find(|f| f["class"] == "orphan").unwrap();
    assert_eq!(orphan["disposition"], "accepted");
    assert_eq!(orphan["reason"], "service users & <bots>");
    assert!(orphan["until"].as_str().unwrap().starts_with("2099-01-01"));
    // The operation with the vendor's answers: refused, then done.
    let ops = v["operations"].as_array().unwrap();
    assert_eq!(ops.len(), 2, "{ops:?}");
    assert_eq!(ops[0]["finding"], excess["finding"]);
    assert_eq!(ops[0]["kind"], "remove_membership");
    assert_eq!(ops[0]["http_status"], 400);
    assert_eq!(ops[0]["vendor_code"], "E0000001");
    assert!(
        ops[0]["message"].as_str().unwrap().contains(VENDOR_MESSAGE),
        "{ops:?}"
    );
    assert!(
        ops[0]["request"].as_str().unwrap().starts_with("DELETE "),
        "{ops:?}"
    );
    assert_eq!(ops[1]["outcome"], "ok");
    assert_eq!(ops[1]["operation_status"], "succeeded");
}

fn check_csv(raw: &[u8]) {
    let mut rd = csv::ReaderBuilder::new()
        .flexible(true)
        .has_headers(false)
        .from_reader(raw);
    let rows: Vec<Vec<String>> = rd
        .records()
        .map(|r| r.unwrap().iter().map(str::to_string).collect())
        .collect();
    let sections: Vec<&str> = rows
        .iter()
        .filter(|r| r[0] == "section")
        .map(|r| r[1].as_str())
        .collect();
    assert_eq!(
        sections,
        ["header", "systems", "access", "findings", "operations"]
    );
    assert!(
        rows.iter()
            .any(|r| r.contains(&"Zoë <b>& O'Brien \"Q\"".to_string())),
        "names round-trip"
    );
    assert!(rows.iter().any(|r| r.contains(&"E0000001".to_string())));
}

/// The audit events whose action is report.written.
fn report_events(h: &Path) -> Vec<serde_json::Value> {
    let events = json(&ok(run(h, &["audit", "export"])));
    events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "report.written")
        .cloned()
        .collect()
}

fn check_verify(h: &Path, html_path: &Path) {
    let o = run(h, &["report", "verify", html_path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("audit chain intact"), "{}", text(&o));
    // One byte inside the findings section changed.
    let mut bytes = std::fs::read(html_path).unwrap();
    let html = String::from_utf8(bytes.clone()).unwrap();
    let at =
        html.find("<section id=\"findings\">").unwrap() + "<section id=\"findings\">\n<h2>".len();
    bytes[at] = b'f';
    let changed = h.join("changed.html");
    std::fs::write(&changed, &bytes).unwrap();
    let o = run(h, &["report", "verify", changed.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let t = text(&o);
    assert!(t.contains("no recorded report has this digest"), "{t}");
    assert!(t.contains("first difference: the findings section"), "{t}");
    assert!(
        t.contains("findings DIFFERS") && t.contains("operations matches"),
        "{t}"
    );
    let o = run(
        h,
        &["--json", "report", "verify", changed.to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        json(&o)["resembles"]["first_difference"]["section"],
        "findings"
    );
    // Not a report at all, and no file.
    let junk = h.join("junk.bin");
    std::fs::write(&junk, [0u8, 159, 146, 150, 255]).unwrap();
    assert_eq!(
        run(h, &["report", "verify", junk.to_str().unwrap()])
            .status
            .code(),
        Some(1)
    );
    let o = run(
        h,
        &["report", "verify", h.join("absent.html").to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("absent.html"), "{}", text(&o));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_carry_the_evidence_and_verify_names_a_changed_section() {
    let (server, okta) = spawn(OktaSimOptions::default()).await.unwrap();
    okta.add_api_token(TOKEN);
    okta.seed_group("everyone");
    let admins = okta.seed_group("admins");
    okta.seed_user("stray@example.com", "Stray", "Account");
    let home = tempfile::tempdir().unwrap();
    let h = home.path().to_path_buf();
    let base = server.base_url();
    let rt = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        set_up(&h, &base);
        // Behind accessdesk's back: E1 is made an admin.
        let uid = okta.user_by_login("nour@example.com").unwrap().id;
        rt.block_on(okta_put(
            &base,
            &format!("/api/v1/groups/{admins}/users/{uid}"),
        ));
        reconcile_and_remediate(&h, &okta);

        let mut policy = std::fs::read(h.join("policies.toml")).unwrap();
        policy.extend(std::fs::read(h.join("systems.toml")).unwrap());
        let policy = sha256(&policy);
        let html_path = h.join("evidence.html");
        let o = ok(run(
            &h,
            &[
                "report",
                "reconcile",
                "--format",
                "html",
                "-o",
                html_path.to_str().unwrap(),
            ],
        ));
        assert!(
            text(&o).contains("recorded as audit event #"),
            "{}",
            text(&o)
        );
        let html = std::fs::read_to_string(&html_path).unwrap();
        check_html(&html);
        let o = ok(run(&h, &["report", "reconcile", "--format", "json"]));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let run_id = v["header"]["run_id"].as_i64().unwrap();
        check_json(&v, run_id, &policy);
        let csv_path = h.join("evidence.csv");
        ok(run(
            &h,
            &[
                "report",
                "reconcile",
                "--run",
                &run_id.to_string(),
                "--format",
                "csv",
                "-o",
                csv_path.to_str().unwrap(),
            ],
        ));
        check_csv(&std::fs::read(&csv_path).unwrap());

        // Each report is an audit event with its digest, run, format, length and sections.
        let events = report_events(&h);
        assert_eq!(events.len(), 3, "{events:?}");
        let d = &events[0]["details"];
        assert_eq!(d["sha256"], sha256(html.as_bytes()));
        assert_eq!(d["run"], run_id);
        assert_eq!(d["format"], "html");
        assert_eq!(d["bytes"], html.len());
        let names: Vec<&str> = d["sections"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            ["header", "systems", "access", "findings", "operations"]
        );
        // The head the report states is the one its own event follows.
        assert!(
            html.contains(events[0]["prev_hash"].as_str().unwrap()),
            "audit head in the header"
        );
        assert_eq!(
            events[1]["details"]["sha256"],
            sha256(&o.stdout),
            "stdout report recorded too"
        );

        check_verify(&h, &html_path);
        // An unknown run is bad input naming it.
        let o = run(
            &h,
            &["report", "reconcile", "--run", "999", "--format", "csv"],
        );
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        assert!(text(&o).contains("no observation run 999"), "{}", text(&o));
    })
    .await
    .unwrap();
    drop(server);
}

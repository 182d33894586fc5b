//! The plan/apply/queue/approvals commands end to end (without touching any target system:
//! `apply --no-run` only enqueues).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

struct Home(tempfile::TempDir);

impl Home {
    fn new() -> Home {
        let h = Home(tempfile::tempdir().unwrap());
        assert!(h.run(&["init"]).status.success());
        h
    }
    fn path(&self) -> &Path {
        self.0.path()
    }
    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_accessdesk"))
            .arg("--home")
            .arg(self.path())
            .args(args)
            .env_remove("ACCESSDESK_HOME")
            .env("USER", "tester")
            .output()
            .unwrap()
    }
    fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut a = vec!["--json"];
        a.extend_from_slice(args);
        let o = self.run(&a);
        assert!(o.status.success(), "{args:?}: {}", text(&o));
        serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{args:?}: {e}: {}", text(&o)))
    }
    fn write(&self, name: &str, body: &str) -> PathBuf {
        let p = self.path().join(name);
        std::fs::write(&p, body).unwrap();
        p
    }
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

const HEADER: &str = "employee_id,first_name,last_name,preferred_name,email,department,title,manager_id,location,cost_center,status,start_date,end_date\n";

#[test]
fn plan_apply_queue_and_approvals() {
    let h = Home::new();
    let csv = h.write("hr.csv", &format!("{HEADER}E1,Ada,L,,ada@example.com,Engineering,Engineering Manager,,London,CC1,active,,\nE2,Bo,M,,bo@example.com,Sales,Rep,,Berlin,CC2,active,,\n"));
    assert!(
        h.run(&["people", "import", csv.to_str().unwrap()])
            .status
            .success()
    );

    let plan = h.json(&["plan"]);
    let ops = plan["ops"].as_array().unwrap();
    let kinds: Vec<(String, String, String)> = ops
        .iter()
        .map(|o| {
            (
                o["kind"].as_str().unwrap().to_string(),
                o["system"].as_str().unwrap().to_string(),
                o["person_id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    // Ada: okta + github accounts, everyone + engineering groups, eng team, and org-admins (approval).
    assert_eq!(
        kinds.iter().filter(|k| k.0 == "create_account").count(),
        3,
        "{kinds:?}"
    );
    assert_eq!(ops.len(), 3 + 5, "{kinds:?}");
    assert!(plan["held_reason"].is_null());
    let id = plan["id"].as_str().unwrap().to_string();

    // The text form names the plan and how to apply it.
    let o = h.run(&["plan", "--person", "bo@example.com"]);
    assert!(
        text(&o).contains("okta:group:everyone") && text(&o).contains("accessdesk apply"),
        "{}",
        text(&o)
    );

    let o = h.run(&["apply", &id, "--no-run"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("7 queued, 1 waiting for approval"),
        "{}",
        text(&o)
    );
    // Applying twice is refused.
    assert_eq!(h.run(&["apply", &id, "--no-run"]).status.code(), Some(2));

    // Everything is now in flight: a new plan is empty.
    assert_eq!(h.json(&["plan"])["ops"].as_array().unwrap().len(), 0);

    // Memberships wait on their account's creation.
    let queued = h.json(&["queue", "list"]);
    let add = queued
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["kind"] == "add_membership" && o["system"] == "github")
        .unwrap();
    let shown = h.json(&["queue", "show", &add["id"].to_string()]);
    assert_eq!(shown["depends_on"].as_array().unwrap().len(), 1);

    let pending = h.json(&["approvals", "list"]);
    let p = &pending.as_array().unwrap()[0];
    assert_eq!(p["entitlement"], "github:team:org-admins");
    assert_eq!(p["rule"], "org-admins");
    let pid = p["id"].to_string();
    assert_eq!(
        h.run(&["approvals", "approve", &pid, "--reason", ""])
            .status
            .code(),
        Some(2)
    );
    assert!(
        h.run(&[
            "approvals",
            "approve",
            &pid,
            "--reason",
            "manager confirmed"
        ])
        .status
        .success()
    );
    assert_eq!(h.json(&["approvals", "list"]).as_array().unwrap().len(), 0);
    let audit = h.json(&["audit", "export"]);
    let approved = audit
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "approval.approved")
        .expect("approval audited");
    assert_eq!(approved["actor"], "cli:tester");
    assert_eq!(approved["details"]["reason"], "manager confirmed");
    assert!(h.run(&["audit", "verify"]).status.success());
}

#[test]
fn a_stale_plan_is_refused() {
    let h = Home::new();
    let csv = h.write(
        "hr.csv",
        &format!("{HEADER}E1,Ada,L,,ada@example.com,Engineering,Engineer,,London,CC1,active,,\n"),
    );
    assert!(
        h.run(&["people", "import", csv.to_str().unwrap()])
            .status
            .success()
    );
    let id = h.json(&["plan"])["id"].as_str().unwrap().to_string();
    // HR moves Ada to Sales: the plan no longer matches the world.
    let csv = h.write(
        "hr.csv",
        &format!("{HEADER}E1,Ada,L,,ada@example.com,Sales,Rep,,London,CC1,active,,\n"),
    );
    assert!(
        h.run(&["people", "import", csv.to_str().unwrap()])
            .status
            .success()
    );
    let o = h.run(&["apply", &id, "--no-run"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).contains("the world changed since plan"),
        "{}",
        text(&o)
    );
}

#[test]
fn mass_leavers_are_held_with_the_reason() {
    let h = Home::new();
    let mut rows = String::from(HEADER);
    for i in 0..20 {
        rows.push_str(&format!(
            "E{i},P{i},L,,p{i}@example.com,Sales,Rep,,Berlin,CC2,terminated,,\n"
        ));
    }
    let csv = h.write("hr.csv", &rows);
    assert!(
        h.run(&["people", "import", csv.to_str().unwrap()])
            .status
            .success()
    );
    // Pretend all 20 still have active okta accounts.
    let db = rusqlite::Connection::open(h.path().join("accessdesk.db")).unwrap();
    for i in 0..20 {
        db.execute("INSERT INTO accounts (system, person_id, login, external_id, active) VALUES ('okta', ?1, ?2, ?2, 1)", rusqlite::params![format!("E{i}"), format!("p{i}@example.com")]).unwrap();
    }
    drop(db);
    let plan = h.json(&["plan"]);
    let reason = plan["held_reason"].as_str().expect("held");
    assert!(
        reason.contains("okta: the plan would deactivate 20 accounts (100% of its 20 accounts)"),
        "{reason}"
    );
    let id = plan["id"].as_str().unwrap();
    let o = h.run(&["apply", id, "--no-run"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).contains("held by the mass-change guard"),
        "{}",
        text(&o)
    );
    assert_eq!(
        h.run(&["apply", id, "--no-run", "--approve-mass-change"])
            .status
            .code(),
        Some(2)
    );
    let o = h.run(&[
        "apply",
        id,
        "--no-run",
        "--approve-mass-change",
        "--reason",
        "office closed",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    // Leavers jump the queue.
    let q = h.json(&["queue", "list"]);
    assert!(
        q.as_array()
            .unwrap()
            .iter()
            .all(|o| o["kind"] == "deactivate" && o["priority"] == 0)
    );
}

#[test]
fn a_feed_that_suddenly_loses_many_people_is_held() {
    let h = Home::new();
    let mut rows = String::from(HEADER);
    for i in 0..30 {
        rows.push_str(&format!(
            "E{i},P{i},L,,p{i}@example.com,Sales,Rep,,Berlin,CC2,active,,\n"
        ));
    }
    let csv = h.write("hr.csv", &rows);
    assert!(
        h.run(&["people", "import", csv.to_str().unwrap()])
            .status
            .success()
    );
    // A truncated export that marks 12 of 30 (40%) as leavers.
    let mut rows = String::from(HEADER);
    for i in 0..30 {
        let status = if i < 12 { "terminated" } else { "active" };
        rows.push_str(&format!(
            "E{i},P{i},L,,p{i}@example.com,Sales,Rep,,Berlin,CC2,{status},,\n"
        ));
    }
    let csv = h.write("hr2.csv", &rows);
    let o = h.run(&["people", "import", csv.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("would make 12 of 30 active people leavers (40%)"),
        "{}",
        text(&o)
    );
    let p = h.json(&["people", "show", "E0"]);
    assert_eq!(
        p["person"]["status"], "active",
        "a held feed changed people"
    );
    let o = h.run(&[
        "people",
        "import",
        csv.to_str().unwrap(),
        "--approve-mass-change",
        "--reason",
        "site closure",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        h.json(&["people", "show", "E0"])["person"]["status"],
        "terminated"
    );
    let audit = h.json(&["audit", "export"]);
    assert!(
        audit
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "import.mass_change_approved"
                && e["details"]["why"] == "site closure")
    );
}

/// A credential that cannot be resolved stops `apply` and `run` before any work: exit 1,
/// naming the system and the credential reference, and nothing enqueued.
#[test]
fn an_unresolvable_credential_stops_apply_and_run_before_any_work() {
    let h = Home::new();
    h.write(
        "systems.toml",
        "[systems.aws]\nkind = \"aws_iam\"\nbase_url = \"http://127.0.0.1:9\"\ncredential = \"env:ACCESSDESK_TEST_UNSET_CRED\"\nsettings = { region = \"us-east-1\" }\n[[systems.aws.entitlements]]\nkind = \"group\"\nname = \"everyone\"\n",
    );
    h.write(
        "policies.toml",
        "[[rule]]\nname = \"all\"\nwhen = \"person.status == 'active'\"\ngrant = [\"aws:group:everyone\"]\n",
    );
    let csv = h.write(
        "hr.csv",
        &format!("{HEADER}E1,Ada,L,,ada@example.com,Eng,T,,L,C,active,,\n"),
    );
    assert!(
        h.run(&["people", "import", csv.to_str().unwrap()])
            .status
            .success()
    );
    let plan = h.json(&["plan"]);
    let id = plan["id"].as_str().unwrap().to_string();
    assert!(!plan["ops"].as_array().unwrap().is_empty());
    for args in [vec!["apply", id.as_str()], vec!["run"]] {
        let o = h.run(&args);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", text(&o));
        let t = text(&o);
        assert!(
            t.contains("system aws") && t.contains("env:ACCESSDESK_TEST_UNSET_CRED"),
            "{args:?}: {t}"
        );
    }
    // Nothing was enqueued: the plan can still be applied once the credential is there.
    let q = h.json(&["queue", "list"]);
    assert!(q.as_array().unwrap().is_empty(), "{q}");
}

/// A rejected grant is not requested again on every plan: it stays rejected until the
/// rule's inputs change (an attribute the rule reads), or an admin reopens it.
#[test]
fn a_rejected_grant_sticks_until_its_inputs_change() {
    let h = Home::new();
    h.write(
        "systems.toml",
        "[systems.okta]\nkind = \"okta\"\ncredential = \"env:UNUSED\"\n[[systems.okta.entitlements]]\nkind = \"group\"\nname = \"admins\"\nrequires_approval = true\n",
    );
    h.write(
        "policies.toml",
        "[[rule]]\nname = \"engineering-admins\"\nwhen = \"person.department == 'Engineering' || person.title == 'Admin'\"\ngrant = [\"okta:group:admins\"]\n",
    );
    let import = |title: &str, location: &str| {
        let csv = h.write(
            "hr.csv",
            &format!(
                "{HEADER}E1,Ada,L,,ada@example.com,Engineering,{title},,{location},C,active,,\n"
            ),
        );
        let o = h.run(&["people", "import", csv.to_str().unwrap()]);
        assert!(o.status.success(), "{}", text(&o));
    };
    let adds = |h: &Home| -> usize {
        h.json(&["plan"])["ops"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|o| o["kind"] == "add_membership")
            .count()
    };
    let request_and_reject = |h: &Home| -> String {
        let plan = h.json(&["plan"]);
        let id = plan["id"].as_str().unwrap().to_string();
        assert!(h.run(&["apply", &id, "--no-run"]).status.success());
        let pending = h.json(&["approvals", "list"]);
        let aid = pending[0]["id"].as_i64().unwrap().to_string();
        let o = h.run(&[
            "approvals",
            "reject",
            &aid,
            "--reason",
            "not without a ticket",
        ]);
        assert!(o.status.success(), "{}", text(&o));
        aid
    };
    import("Engineer", "London");
    let aid = request_and_reject(&h);
    // Asked once, answered: the next plans do not ask again.
    assert_eq!(adds(&h), 0);
    // An attribute the rule does not read changes: still rejected.
    import("Engineer", "Berlin");
    assert_eq!(adds(&h), 0);
    assert_eq!(
        h.json(&["approvals", "list", "--rejected"])
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // An admin reopens it: requested again.
    let o = h.run(&["approvals", "reopen", &aid, "--reason", "ticket filed"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(adds(&h), 1);
    // Rejected again; then an attribute the rule reads changes (the title): asked again.
    request_and_reject(&h);
    assert_eq!(adds(&h), 0);
    import("Admin", "Berlin");
    assert_eq!(adds(&h), 1, "the rule's inputs changed");
    assert!(h.run(&["audit", "verify"]).status.success());
}

/// Operations that could not run are reported, not only those that did: `apply --json`
/// and `run --json` list each system the engine has no adapter for (no adapter for its
/// kind, no credential configured) with the reason, how many of its operations stay
/// queued and their first ids; the exit code is 1.
#[test]
fn run_and_apply_report_the_operations_that_could_not_run() {
    let h = Home::new();
    h.write(
        "systems.toml",
        "[systems.gh]\nkind = \"github\"\ncredential = \"env:ACCESSDESK_TEST_GH_TOKEN\"\n[[systems.gh.entitlements]]\nkind = \"team\"\nname = \"eng\"\n\
         [systems.okta]\nkind = \"okta\"\nbase_url = \"http://127.0.0.1:9\"\n[[systems.okta.entitlements]]\nkind = \"group\"\nname = \"everyone\"\n",
    );
    h.write(
        "policies.toml",
        "[[rule]]\nname = \"all\"\nwhen = \"person.status == 'active'\"\ngrant = [\"gh:team:eng\", \"okta:group:everyone\"]\n",
    );
    let mut csv = HEADER.to_string();
    for i in 0..15 {
        csv.push_str(&format!(
            "E{i},Ada,L{i},,ada{i}@example.com,Eng,T,,L,C,active,,\n"
        ));
    }
    let csv = h.write("hr.csv", &csv);
    assert!(
        h.run(&["people", "import", csv.to_str().unwrap()])
            .status
            .success()
    );
    let plan = h.json(&["plan"]);
    let id = plan["id"].as_str().unwrap().to_string();
    let with_token = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_accessdesk"))
            .arg("--home")
            .arg(h.path())
            .args(args)
            .env_remove("ACCESSDESK_HOME")
            .env("USER", "tester")
            .env("ACCESSDESK_TEST_GH_TOKEN", "t0ken")
            .output()
            .unwrap()
    };
    let check = |o: &Output, what: &str| -> serde_json::Value {
        assert_eq!(o.status.code(), Some(1), "{what}: {}", text(o));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout)
            .unwrap_or_else(|e| panic!("{what}: {e}: {}", text(o)));
        assert_eq!(v["ran"], true, "{what}: {v}");
        assert_eq!(v["succeeded"], 0, "{what}: {v}");
        let not_run = v["not_run"].as_array().unwrap();
        assert_eq!(not_run.len(), 2, "{what}: {v}");
        let by = |s: &str| not_run.iter().find(|n| n["system"] == s).unwrap();
        let gh = by("gh");
        assert!(
            gh["reason"]
                .as_str()
                .unwrap()
                .contains("[systems.gh.settings]: missing field `org`"),
            "{what}: {gh}"
        );
        let okta = by("okta");
        assert!(
            okta["reason"]
                .as_str()
                .unwrap()
                .contains("okta has no credential"),
            "{what}: {okta}"
        );
        for n in [gh, okta] {
            // 15 accounts and 15 memberships each; the ids are capped, the count is not.
            assert_eq!(n["operations"], 30, "{what}: {n}");
            assert_eq!(n["ids"].as_array().unwrap().len(), 20, "{what}: {n}");
            assert_eq!(n["more"], 10, "{what}: {n}");
        }
        v
    };
    let v = check(&with_token(&["--json", "apply", &id]), "apply");
    assert_eq!(v["applied"]["queued"], 60, "{v}");
    let v = check(&with_token(&["--json", "run"]), "run");
    assert!(v.get("applied").is_none(), "{v}");
    // The queue still holds every one of them.
    let q = h.json(&["queue", "list"]);
    assert_eq!(q.as_array().unwrap().len(), 60);
    // In text, too.
    let o = with_token(&["run"]);
    assert_eq!(o.status.code(), Some(1));
    let t = text(&o);
    assert!(
        t.contains("not run: 30 operation(s) for gh stay queued"),
        "{t}"
    );

    // A credential that cannot be resolved stops the run before any work; --json still
    // says which system and how much waits for it.
    let o = h.run(&["--json", "run"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["ran"], false, "{v}");
    let not_run = v["not_run"].as_array().unwrap();
    assert_eq!(not_run.len(), 1, "{v}");
    assert_eq!(not_run[0]["system"], "gh");
    assert!(
        not_run[0]["reason"]
            .as_str()
            .unwrap()
            .contains("env:ACCESSDESK_TEST_GH_TOKEN"),
        "{v}"
    );
    assert_eq!(not_run[0]["operations"], 30, "{v}");
}

/// A leaver whose return was applied shows as a rehire in `plan`: their reactivations
/// carry the note, in text and JSON.
#[test]
fn a_rehire_shows_in_the_plan() {
    let h = Home::new();
    let import = |name: &str, status: &str, start: &str, end: &str| {
        let csv = h.write(
            name,
            &format!("{HEADER}E1,Ada,L,,ada@example.com,Engineering,Engineer,,London,CC1,{status},{start},{end}\n"),
        );
        let o = h.run(&["people", "import", csv.to_str().unwrap()]);
        assert!(o.status.success(), "{}", text(&o));
        text(&o)
    };
    import("1.csv", "active", "2020-01-06", "");
    import("2.csv", "terminated", "2020-01-06", "2026-01-31");
    // Their okta account was deactivated when they left.
    {
        let mut store = accessdesk::store::Store::open(&h.path().join("accessdesk.db")).unwrap();
        store
            .write(|tx| {
                tx.upsert_account(
                    &accessdesk::store::access::AccountRow {
                        system: "okta".into(),
                        person_id: Some("E1".into()),
                        login: "ada@example.com".into(),
                        external_id: Some("00u1".into()),
                        active: false,
                    },
                    "t",
                )
            })
            .unwrap();
    }
    let out = import("3.csv", "active", "2026-03-02", "");
    assert!(out.contains("rehire E1"), "{out}");
    let plan = h.json(&["plan"]);
    let ops = plan["ops"].as_array().unwrap();
    let re = ops
        .iter()
        .find(|o| o["kind"] == "reactivate")
        .unwrap_or_else(|| panic!("{ops:?}"));
    assert!(
        re["detail"]
            .as_str()
            .unwrap()
            .starts_with("rehire (rehired "),
        "{re}"
    );
    // Only the reactivation carries it.
    assert_eq!(ops.iter().filter(|o| o["detail"].is_string()).count(), 1);
    let o = h.run(&["plan"]);
    let t = text(&o);
    assert!(
        t.lines().any(|l| l.contains("reactivate")
            && l.contains("okta")
            && l.contains("rehire (rehired ")),
        "{t}"
    );
}

/// `people import --snapshot`: the file is the whole population. Whoever is missing from it
/// becomes a leaver (and the plan deactivates them); a snapshot missing most people is held
/// by the mass-change guard; without --snapshot, nobody is terminated.
#[test]
fn a_snapshot_makes_the_missing_leavers_through_the_guard() {
    let h = Home::new();
    let rows = |ids: std::ops::Range<usize>| {
        let mut s = String::from(HEADER);
        for i in ids {
            s.push_str(&format!(
                "E{i},P{i},L,,p{i}@example.com,Sales,Rep,,Berlin,CC2,active,,\n"
            ));
        }
        s
    };
    let all = h.write("all.csv", &rows(0..10));
    assert!(
        h.run(&["people", "import", all.to_str().unwrap()])
            .status
            .success()
    );
    {
        let mut store = accessdesk::store::Store::open(&h.path().join("accessdesk.db")).unwrap();
        store
            .write(|tx| {
                for i in 0..10 {
                    tx.upsert_account(
                        &accessdesk::store::access::AccountRow {
                            system: "okta".into(),
                            person_id: Some(format!("E{i}")),
                            login: format!("p{i}@example.com"),
                            external_id: Some(format!("00u{i}")),
                            active: true,
                        },
                        "t",
                    )?;
                }
                Ok(())
            })
            .unwrap();
    }
    let status = |id: &str| h.json(&["people", "show", id])["person"]["status"].clone();

    // Without --snapshot the import is an upsert: the missing are untouched.
    let most = h.write("most.csv", &rows(0..8));
    let o = h.run(&["people", "import", most.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(!text(&o).contains("missing"), "{}", text(&o));
    assert_eq!(status("E9"), "active");

    // A snapshot missing 8 of 10 is held; nothing changes.
    let few = h.write("few.csv", &rows(0..2));
    let o = h.run(&["people", "import", few.to_str().unwrap(), "--snapshot"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("would make 8 of 10 active people leavers")
            && text(&o).contains("8 of them because they are missing from this snapshot"),
        "{}",
        text(&o)
    );
    assert_eq!(status("E5"), "active");

    // A snapshot missing 2 of 10: those two leave, and the plan deactivates them.
    let o = h.run(&["people", "import", most.to_str().unwrap(), "--snapshot"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("2 people missing from the snapshot: became leavers"),
        "{}",
        text(&o)
    );
    assert_eq!(status("E8"), "terminated");
    assert_eq!(status("E9"), "terminated");
    assert_eq!(status("E7"), "active");
    let today = chrono::Utc::now().date_naive().to_string();
    assert_eq!(
        h.json(&["people", "show", "E9"])["person"]["end_date"],
        today
    );
    let plan = h.json(&["plan"]);
    let mut deactivated: Vec<String> = plan["ops"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["kind"] == "deactivate")
        .map(|o| o["person_id"].as_str().unwrap().to_string())
        .collect();
    deactivated.sort();
    assert_eq!(deactivated, ["E8", "E9"]);
    let audit = h.json(&["audit", "export"]);
    assert!(
        audit
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "import.snapshot_leavers" && e["details"]["count"] == 2)
    );
    // Already-terminated people missing from the next snapshot are left alone.
    let o = h.run(&[
        "--json",
        "people",
        "import",
        most.to_str().unwrap(),
        "--snapshot",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["left_missing"].as_array().unwrap().len(), 0, "{r}");
}

/// An export older than the last one imported is refused unless forced with a reason; its
/// age is its generation time (`# generated:` line or generated_at column), else its newest
/// change (updated_at); a file with neither is accepted with a note.
#[test]
fn an_older_export_is_refused_unless_forced() {
    let h = Home::new();
    let row = "E1,Ada,L,,ada@example.com,Engineering,Engineer,,London,CC1,active,,\n";
    let import = |name: &str, body: String, extra: &[&str]| {
        let csv = h.write(name, &body);
        let mut args = vec!["people", "import", csv.to_str().unwrap()];
        args.extend_from_slice(extra);
        h.run(&args)
    };
    let o = import(
        "dec.csv",
        format!("# generated: 2026-12-01T10:00:00Z\n{HEADER}{row}"),
        &[],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(!text(&o).contains("could not be judged"), "{}", text(&o));

    let nov = format!("# generated: 2026-11-30T10:00:00Z\n{HEADER}{row}");
    let o = import("nov.csv", nov.clone(), &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let t = text(&o);
    assert!(
        t.contains("generated 2026-11-30T10:00:00Z")
            && t.contains("the last import was as of 2026-12-01T10:00:00Z")
            && t.contains("--force-older --reason"),
        "{t}"
    );
    let o = import("nov.csv", nov.clone(), &["--force-older"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("--force-older needs --reason"),
        "{}",
        text(&o)
    );
    let o = import(
        "nov.csv",
        nov,
        &["--force-older", "--reason", "redo after rollback"],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("forced"), "{}", text(&o));
    let audit = h.json(&["audit", "export"]);
    assert!(
        audit
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "import.older_forced"
                && e["details"]["why"] == "redo after rollback"
                && e["details"]["last_as_of"] == "2026-12-01T10:00:00Z")
    );

    // Without a generation time, the newest change judges it.
    let hdr = HEADER.replace('\n', ",updated_at\n");
    let body = format!(
        "{hdr}{}2026-10-01T00:00:00Z\nE2,Bo,M,,bo@example.com,Sales,Rep,,Berlin,CC2,active,,,2026-11-15\n",
        row.trim_end().to_string() + ","
    );
    let o = import("upd.csv", body, &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("its newest change is from 2026-11-15T00:00:00Z"),
        "{}",
        text(&o)
    );
    // A bad time is a bad row, named by line and field.
    let o = import(
        "bad.csv",
        format!("{hdr}{}yesterday\n", row.trim_end().to_string() + ","),
        &[],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("bad.csv:2: updated_at"), "{}", text(&o));

    // Neither: accepted, saying its age could not be judged.
    let o = import("plain.csv", format!("{HEADER}{row}"), &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("age could not be judged"), "{}", text(&o));
}

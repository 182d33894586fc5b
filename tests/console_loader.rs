//! The console's loader against a real store: what each access-matrix cell says, failure
//! groups, approvals, the guard's hold, and the credential probe (never the value).

use accessdesk::config::SystemsConfig;
use accessdesk::model::{Grant, OperationKind, OperationStatus, Person};
use accessdesk::store::Store;
use accessdesk::store::access::AccountRow;
use accessdesk::store::queue::{Change, ErrorInfo, NewOp, PRIORITY_NORMAL};
use accessdesk::tui::data::{CellState, CredentialProbe, Loader, Query};
use chrono::Utc;
use std::path::Path;
use std::sync::Arc;

const SYSTEMS: &str = r#"
[systems.okta]
kind = "okta"
base_url = "https://acme.okta.example"
credential = "keyring:okta-token"

[systems.zoom]
kind = "scim"
base_url = "https://zoom.example/scim?token=abc"
credential = "env:ZOOM_TOKEN_FOR_TEST"
"#;

struct Probe;
impl CredentialProbe for Probe {
    fn present(&self, r: &accessdesk::config::systems::CredentialRef) -> Result<bool, String> {
        Ok(r.to_string() == "keyring:okta-token")
    }
}

fn grant(p: &str, e: &str) -> Grant {
    Grant {
        person_id: p.into(),
        entitlement: e.parse().unwrap(),
        rule: "r".into(),
        requires_approval: false,
        expires_at: None,
    }
}

fn enqueue(store: &mut Store, kind: OperationKind, sys: &str, p: &str, e: Option<&str>) -> i64 {
    store
        .write(|tx| {
            tx.enqueue(
                &NewOp {
                    kind,
                    system: sys,
                    person_id: p,
                    entitlement: e,
                    status: OperationStatus::Queued,
                    priority: PRIORITY_NORMAL,
                    plan_id: None,
                    cause: "test",
                    depends_on: &[],
                    not_before: None,
                    counted_as: None,
                },
                "t",
            )
        })
        .unwrap()
}

fn move_to(store: &mut Store, id: i64, to: OperationStatus, err: Option<&ErrorInfo>) {
    store
        .write(|tx| {
            tx.transition(
                id,
                &[OperationStatus::Queued],
                to,
                Change {
                    error: err,
                    ..Default::default()
                },
                "t",
            )
        })
        .unwrap();
}

#[test]
fn the_matrix_failure_groups_and_credentials_come_from_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("a.db")).unwrap();
    let cfg = SystemsConfig::parse(Path::new("systems.toml"), SYSTEMS).unwrap();
    store
        .write(|tx| {
            tx.upsert_person(&Person::new("E1", "Ada", "Lovelace", "ada@x.io"), "t")?;
            tx.upsert_person(&Person::new("E2", "Alan", "Turing", "alan@x.io"), "t")?;
            tx.replace_intended_grants(
                "E1",
                &[
                    grant("E1", "okta:group:eng"),
                    grant("E1", "okta:group:oncall"),
                    grant("E1", "okta:group:new"),
                    grant("E1", "zoom:group:users"),
                ],
                "t",
            )?;
            tx.upsert_account(
                &AccountRow {
                    system: "okta".into(),
                    person_id: Some("E1".into()),
                    login: "ada@x.io".into(),
                    external_id: Some("00u1".into()),
                    active: true,
                },
                "t",
            )?;
            tx.set_observed("okta", "ada@x.io", Some("E1"), "okta:group:eng", true, "t")?;
            tx.set_observed(
                "okta",
                "ada@x.io",
                Some("E1"),
                "okta:group:legacy",
                true,
                "t",
            )?;
            Ok(())
        })
        .unwrap();
    let bad = ErrorInfo {
        class: "permanent".into(),
        status: Some(400),
        code: Some("invalidValue".into()),
        message: "userName is not valid".into(),
        excerpt: String::new(),
        request: "POST /Users".into(),
    };
    let create = enqueue(&mut store, OperationKind::CreateAccount, "zoom", "E1", None);
    move_to(&mut store, create, OperationStatus::Failed, Some(&bad));
    let other = enqueue(&mut store, OperationKind::CreateAccount, "zoom", "E2", None);
    move_to(&mut store, other, OperationStatus::Failed, Some(&bad));
    let oncall = enqueue(
        &mut store,
        OperationKind::AddMembership,
        "okta",
        "E1",
        Some("okta:group:oncall"),
    );
    move_to(&mut store, oncall, OperationStatus::Running, None);
    let users = enqueue(
        &mut store,
        OperationKind::AddMembership,
        "zoom",
        "E1",
        Some("zoom:group:users"),
    );
    move_to(&mut store, users, OperationStatus::Blocked, None);

    let mut loader = Loader::new(
        Store::open(&dir.path().join("a.db")).unwrap(),
        Arc::new(cfg.catalog.clone()),
        None,
        None,
        Some(Arc::new(Probe)),
    );
    let snap = loader
        .load(
            &Query {
                people: true,
                person: Some("E1".into()),
                credentials: true,
                ..Default::default()
            },
            Utc::now(),
        )
        .unwrap();
    let m = snap.matrix.expect("matrix");
    assert_eq!(m.systems, vec!["okta", "zoom"]);
    let cell = |label: &str, sys: usize| {
        m.rows
            .iter()
            .find(|r| r.label == label)
            .unwrap_or_else(|| panic!("no row {label}: {:?}", m.rows))
            .cells[sys]
    };
    use CellState::*;
    assert_eq!(cell("account", 0), Some(InSync));
    assert_eq!(
        cell("account", 1),
        Some(Failed),
        "create failed, account intended"
    );
    assert_eq!(cell("group:eng", 0), Some(InSync));
    assert_eq!(cell("group:new", 0), Some(Missing));
    assert_eq!(cell("group:legacy", 0), Some(Excess));
    assert_eq!(cell("group:oncall", 0), Some(Running));
    assert_eq!(cell("group:users", 1), Some(Blocked));
    assert_eq!(cell("group:eng", 1), None, "nothing either way");

    assert_eq!(snap.groups.len(), 1);
    assert_eq!(snap.groups[0].key, "zoom/permanent/invalidValue");
    assert_eq!(snap.groups[0].op_ids.len(), 2);
    assert_eq!(snap.people_count, 2);
    assert!(snap.people.is_some(), "first load sends everyone");
    let zoom = snap.systems.iter().find(|s| s.name == "zoom").unwrap();
    assert_eq!(zoom.counts.get(OperationStatus::Failed), 2);
    assert_eq!(zoom.failed_last_hour, 2);
    assert_eq!(snap.credentials["okta"].present, Some(true));
    assert_eq!(snap.credentials["zoom"].present, Some(false));
    assert_eq!(
        snap.credentials["zoom"].reference.as_deref(),
        Some("env:ZOOM_TOKEN_FOR_TEST")
    );

    // A second load does not re-send unchanged people, and marks changed operations.
    let again = loader
        .load(
            &Query {
                people: true,
                ..Default::default()
            },
            Utc::now(),
        )
        .unwrap();
    assert!(again.people.is_none());
    assert!(again.changed.is_empty());
    assert!(again.names.is_empty(), "names only when asked for");

    // The Queue page asks for the names of the people on its rows, and gets only those.
    let named = loader
        .load(
            &Query {
                names: vec!["E2".into(), "E404".into()],
                ..Default::default()
            },
            Utc::now(),
        )
        .unwrap();
    assert_eq!(
        named.names,
        std::collections::HashMap::from([("E2".to_string(), "Alan Turing".to_string())])
    );
    let mut w = Store::open(&dir.path().join("a.db")).unwrap();
    w.write(|tx| {
        tx.transition(
            oncall,
            &[OperationStatus::Running],
            OperationStatus::Succeeded,
            Change::default(),
            "t",
        )
    })
    .unwrap();
    let third = loader.load(&Query::default(), Utc::now()).unwrap();
    assert!(
        !third.queue.iter().any(|o| o.id == oncall),
        "done work leaves the live queue"
    );

    // Explaining a cell lists the operation and its attempts.
    let why = loader
        .load(
            &Query {
                cell: Some(("E1".into(), "zoom".into(), None)),
                ..Default::default()
            },
            Utc::now(),
        )
        .unwrap()
        .cell
        .unwrap();
    assert_eq!(why.state, Some(Failed));
    assert_eq!(why.ops.len(), 1);
    assert!(
        why.policy[0].contains("An account is intended"),
        "{:?}",
        why.policy
    );
}

/// An idle console reads only what moves with the clock: while nobody writes, the loader
/// hands back the last snapshot marked `unchanged`; the moment another connection commits,
/// it reads everything again and shows the change.
#[test]
fn an_idle_console_rereads_only_after_a_write() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("a.db");
    let mut writer = Store::open(&db).unwrap();
    writer
        .write(|tx| tx.upsert_person(&Person::new("E1", "Ada", "L", "ada@x.io"), "t"))
        .unwrap();
    enqueue(
        &mut writer,
        OperationKind::CreateAccount,
        "okta",
        "E1",
        None,
    );
    let cfg = SystemsConfig::parse(Path::new("systems.toml"), SYSTEMS).unwrap();
    let mut loader = Loader::new(
        Store::open(&db).unwrap(),
        Arc::new(cfg.catalog.clone()),
        None,
        None,
        None,
    );
    let q = Query::default();
    let first = loader.load(&q, Utc::now()).unwrap();
    assert!(!first.unchanged);
    assert_eq!(first.totals.get(OperationStatus::Queued), 1);
    let again = loader.load(&q, Utc::now()).unwrap();
    assert!(
        again.unchanged,
        "nothing was written: the last read is reused"
    );
    assert_eq!(again.totals.get(OperationStatus::Queued), 1);
    // A different page asks for different things: read again.
    let other = Query {
        person: Some("E1".into()),
        ..Default::default()
    };
    assert!(!loader.load(&other, Utc::now()).unwrap().unchanged);
    // Another connection commits: everything is read again.
    enqueue(
        &mut writer,
        OperationKind::CreateAccount,
        "zoom",
        "E1",
        None,
    );
    let after = loader.load(&other, Utc::now()).unwrap();
    assert!(!after.unchanged);
    assert_eq!(after.totals.get(OperationStatus::Queued), 2);
}

#[allow(clippy::too_many_arguments)]
fn new_finding(
    class: &'static str,
    severity: &'static str,
    rank: i64,
    system: &str,
    person: Option<&str>,
    account: &str,
    entitlement: Option<&str>,
    detail: &str,
) -> accessdesk::store::reconcile::NewFinding {
    accessdesk::store::reconcile::NewFinding {
        class,
        severity,
        rank,
        system: system.into(),
        person: person.map(str::to_string),
        account: Some(account.into()),
        account_id: Some(format!("ext-{account}")),
        entitlement: entitlement.map(str::to_string),
        detail: detail.into(),
    }
}

#[test]
fn the_reconcile_view_reads_the_newest_run_its_reads_and_findings() {
    use accessdesk::store::reconcile::{Checkpoint, ObservedAccount};
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("a.db");
    let mut store = Store::open(&db).unwrap();
    let cfg = SystemsConfig::parse(Path::new("systems.toml"), SYSTEMS).unwrap();
    let systems = vec!["okta".to_string(), "zoom".to_string()];
    let run = store
        .write(|tx| {
            tx.upsert_person(&Person::new("E1", "Ada", "Lovelace", "ada@x.io"), "t")?;
            tx.upsert_person(&Person::new("E2", "山田", "太郎", "taro@x.io"), "t")?;
            let run = tx.start_run(None, &systems, "t")?;
            let cp = Checkpoint {
                system: "okta".into(),
                status: "running".into(),
                phase: "accounts".into(),
                ent_index: 0,
                cursor: Some("page-2".into()),
                accounts: 1,
                memberships: 0,
                pages: 1,
                all_groups: false,
                started_at: "2026-11-26T09:00:00Z".into(),
                observed_at: None,
                error: None,
            };
            let acct = ObservedAccount {
                external_id: "00u1".into(),
                login: "ada@x.io".into(),
                email: Some("ada@x.io".into()),
                active: true,
                hris_id: None,
                attributes: Default::default(),
                late: false,
            };
            tx.save_page(run, &cp, &[acct], &[], &[])?;
            Ok(run)
        })
        .unwrap();
    let mut loader = Loader::new(
        Store::open(&db).unwrap(),
        Arc::new(cfg.catalog.clone()),
        None,
        None,
        None,
    );
    // While the run reads, its checkpoints show how far each system is.
    let q = Query {
        reconcile: true,
        names: vec!["E1".into(), "E2".into()],
        ..Default::default()
    };
    let snap = loader.load(&q, Utc::now()).unwrap();
    let r = snap.reconcile.expect("the Reconcile view's data");
    assert_eq!(r.run.as_ref().map(|r| r.id), Some(run));
    assert_eq!(r.run.as_ref().unwrap().status, "running");
    let okta = r.systems.iter().find(|c| c.system == "okta").unwrap();
    assert_eq!((okta.status.as_str(), okta.accounts), ("running", 1));
    assert!(r.findings.is_empty());

    store
        .write(|tx| {
            let cp = Checkpoint {
                system: "okta".into(),
                status: "complete".into(),
                phase: "done".into(),
                ent_index: 0,
                cursor: None,
                accounts: 1,
                memberships: 0,
                pages: 2,
                all_groups: true,
                started_at: "2026-11-26T09:00:00Z".into(),
                observed_at: Some("2026-11-26T09:01:00Z".into()),
                error: None,
            };
            tx.save_page(run, &cp, &[], &[], &[])?;
            tx.save_checkpoint(
                run,
                &Checkpoint {
                    system: "zoom".into(),
                    status: "incomplete".into(),
                    error: Some("zoom: 503 after 5 attempts".into()),
                    ..cp.clone()
                },
            )?;
            tx.finish_run(run, "t")?;
            tx.store_findings(
                run,
                &[
                    new_finding(
                        "excess",
                        "medium",
                        20,
                        "okta",
                        Some("E1"),
                        "ada@x.io",
                        Some("okta:group:legacy"),
                        "not granted",
                    ),
                    new_finding(
                        "orphan",
                        "high",
                        10,
                        "okta",
                        None,
                        "ghost@x.io",
                        None,
                        "matches nobody, \"ghost\", in HR",
                    ),
                    new_finding(
                        "attribute_drift",
                        "low",
                        60,
                        "okta",
                        Some("E2"),
                        "taro@x.io",
                        None,
                        "department",
                    ),
                    new_finding(
                        "leaver_with_access",
                        "critical",
                        0,
                        "okta",
                        Some("E2"),
                        "taro@x.io",
                        None,
                        "left, still active",
                    ),
                ],
                "t",
            )?;
            Ok(())
        })
        .unwrap();
    let snap = loader.load(&q, Utc::now()).unwrap();
    let r = snap.reconcile.expect("the Reconcile view's data");
    assert_eq!(r.run.as_ref().unwrap().status, "incomplete");
    let zoom = r.systems.iter().find(|c| c.system == "zoom").unwrap();
    assert_eq!(zoom.error.as_deref(), Some("zoom: 503 after 5 attempts"));
    let classes: Vec<&str> = r.findings.iter().map(|f| f.class.as_str()).collect();
    assert_eq!(
        classes,
        ["leaver_with_access", "orphan", "excess", "attribute_drift"],
        "grouped by class, leavers first"
    );
    assert_eq!(r.total, 4);
    assert_eq!(
        snap.names.get("E1").map(String::as_str),
        Some("Ada Lovelace")
    );
    assert_eq!(snap.names.get("E2").map(String::as_str), Some("山田 太郎"));
    // Other pages do not read it.
    let other = loader.load(&Query::default(), Utc::now()).unwrap();
    assert!(other.reconcile.is_none());

    // The CSV export: the view's order, RFC 4180 quoting, beside the database.
    let said = accessdesk::tui::core::reconcile::export(&db, run).unwrap();
    let path = dir.path().join(format!("reconcile-run-{run}.csv"));
    assert!(said.contains(&path.display().to_string()), "{said}");
    let csv = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = csv.split("\r\n").collect();
    assert_eq!(
        lines[0],
        "class,severity,system,person,account,entitlement,status,decided_by,decided_at,reason,until,detail"
    );
    assert!(lines[1].starts_with("leaver_with_access,critical,okta,E2,taro@x.io,,open,"));
    assert!(
        lines[2].ends_with(",\"matches nobody, \"\"ghost\"\", in HR\""),
        "{}",
        lines[2]
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "only its owner reads it");
    }
}

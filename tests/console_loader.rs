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

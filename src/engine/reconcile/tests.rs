//! Unit tests of correlation and classification on small in-memory worlds.

use super::classify::attribute_drift;
use super::*;
use crate::config::systems::Correlate;
use crate::config::{SystemEntry, SystemsConfig};
use crate::model::Person;
use crate::store::reconcile::{AccountRow, Checkpoint, ObservedAccount};
use chrono::Utc;
use std::path::Path;

fn world() -> World {
    let mut w = World::new(Utc::now());
    for (id, given, email) in [
        ("E1", "Ann", "ann@x.io"),
        ("E2", "Bob", "bob@x.io"),
        ("E3", "Bob", "bob@x.io"),
        ("E4", "Cy", "cy@x.io"),
    ] {
        w.add_person(Person::new(id, given, "Smith", email));
    }
    w.link("okta", "ann@x.io", "E1");
    w.assign_login("okta", "cy.smith", "E4");
    w
}

fn acct_row(login: &str, email: Option<&str>, hris: Option<&str>) -> AccountRow<'static> {
    let a: &'static ObservedAccount = Box::leak(Box::new(acct(login, email, hris)));
    a.as_row()
}

fn acct(login: &str, email: Option<&str>, hris: Option<&str>) -> ObservedAccount {
    ObservedAccount {
        external_id: format!("id-{login}"),
        login: login.into(),
        email: email.map(str::to_string),
        active: true,
        hris_id: hris.map(str::to_string),
        attributes: std::collections::BTreeMap::new(),
        late: false,
    }
}

#[test]
fn the_targets_own_hr_id_outranks_weaker_rules() {
    let w = world();
    let rules = Correlate::DEFAULT;
    // Linked to E1 but carrying E2's HR id: flagged, never guessed.
    let m = correlate(&w, "okta", &rules, &acct_row("ann@x.io", None, Some("E2")));
    assert!(matches!(m, Match::Ambiguous { .. }), "{m:?}");
    // An HR id nobody has: an orphan, although the e-mail names someone.
    let m = correlate(
        &w,
        "okta",
        &rules,
        &acct_row("z", Some("cy@x.io"), Some("E9")),
    );
    assert!(matches!(m, Match::Orphan { .. }), "{m:?}");
    // The HR id proves it.
    let m = correlate(&w, "okta", &rules, &acct_row("whatever", None, Some("E4")));
    assert_eq!(
        m,
        Match::Linked {
            person: "E4",
            by: Correlate::HrisId
        }
    );
}

#[test]
fn weak_matches_are_reported_as_weak_and_homonyms_are_ambiguous() {
    let w = world();
    let rules = Correlate::DEFAULT;
    // Two people share bob@x.io: ambiguous.
    let m = correlate(
        &w,
        "okta",
        &rules,
        &acct_row("bob@x.io", Some("bob@x.io"), None),
    );
    assert!(
        matches!(&m, Match::Ambiguous { candidates, .. } if candidates.len() == 2),
        "{m:?}"
    );
    // By e-mail: linked, but not proof.
    let m = correlate(
        &w,
        "okta",
        &rules,
        &acct_row("cy@x.io", Some("cy@x.io"), None),
    );
    assert!(
        matches!(
            m,
            Match::Linked {
                by: Correlate::Email,
                ..
            }
        ),
        "{m:?}"
    );
    assert!(!Correlate::Email.proves() && !Correlate::Login.proves());
    // By the assigned login, case-insensitively.
    let m = correlate(&w, "okta", &rules, &acct_row("Cy.Smith", None, None));
    assert_eq!(
        m,
        Match::Linked {
            person: "E4",
            by: Correlate::Login
        }
    );
    // A system that only trusts HR ids leaves the same account an orphan.
    let m = correlate(
        &w,
        "okta",
        &[Correlate::HrisId],
        &acct_row("cy@x.io", Some("cy@x.io"), None),
    );
    assert!(matches!(m, Match::Orphan { .. }), "{m:?}");
}

fn entry() -> SystemEntry {
    let cfg = SystemsConfig::parse(
        Path::new("s.toml"),
        "[systems.okta]\nkind = \"okta\"\n[[systems.okta.entitlements]]\nkind = \"group\"\nname = \"eng\"\n[[systems.okta.entitlements]]\nkind = \"group\"\nname = \"admins\"\nrisk = \"privileged\"\n",
    )
    .unwrap();
    cfg.catalog.systems["okta"].clone()
}

fn obs(status: &str, phase: &str, ent_index: i64) -> SystemObservation {
    SystemObservation {
        read: Checkpoint {
            system: "okta".into(),
            status: status.into(),
            phase: phase.into(),
            ent_index,
            cursor: None,
            accounts: 1,
            memberships: 1,
            pages: 1,
            all_groups: true,
            started_at: String::new(),
            observed_at: None,
            error: None,
        },
        accounts: vec![
            acct("ann@x.io", Some("ann@x.io"), Some("E1")),
            acct("nobody@x.io", None, None),
        ],
        groups: vec![
            ("okta:group:admins".into(), "g1".into(), true),
            ("okta:group:eng".into(), "g2".into(), true),
        ],
        members: vec![("okta:group:admins".into(), "id-ann@x.io".into())],
    }
}

#[test]
fn an_incomplete_read_concludes_nothing_about_what_it_did_not_read() {
    let mut w = world();
    w.intend("E1", "okta:group:eng");
    let e = entry();
    let classes = |o: &SystemObservation| {
        classify(&w, &e, o)
            .into_iter()
            .map(|f| (f.class, f.entitlement))
            .collect::<Vec<_>>()
    };
    // Complete: excess admins (privileged), missing eng, one orphan.
    let all = classes(&obs("complete", "done", 2));
    assert!(
        all.contains(&("excess", Some("okta:group:admins".into()))),
        "{all:?}"
    );
    assert!(
        all.contains(&("missing", Some("okta:group:eng".into()))),
        "{all:?}"
    );
    assert!(all.contains(&("orphan", None)), "{all:?}");
    // Stopped while reading eng's members: admins was read (excess stands), eng was
    // not (no missing).
    let part = classes(&obs("incomplete", "members", 1));
    assert!(
        part.contains(&("excess", Some("okta:group:admins".into()))),
        "{part:?}"
    );
    assert!(!part.iter().any(|f| f.0 == "missing"), "{part:?}");
    // Stopped in the account listing: nothing at all.
    assert!(classes(&obs("incomplete", "accounts", 0)).is_empty());
    // An account that appeared during the read is left for the next one.
    let mut late = obs("complete", "done", 2);
    late.accounts[1].late = true;
    assert!(!classes(&late).iter().any(|f| f.0 == "orphan"));
}

#[test]
fn attributes_compare_as_the_adapter_writes_them() {
    let mut p = Person::new("E1", "Ann", "Smith", "ann@x.io");
    p.department = "R&D".into();
    let mut a = acct("ann", None, Some("E1"));
    a.attributes.insert("department".into(), "RD".into());
    let iam =
        SystemsConfig::parse(Path::new("s.toml"), "[systems.aws]\nkind = \"aws_iam\"\n").unwrap();
    let okta =
        SystemsConfig::parse(Path::new("s.toml"), "[systems.okta]\nkind = \"okta\"\n").unwrap();
    // IAM cannot hold "&": "RD" is what was written, not drift.
    let mut w = World::new(Utc::now());
    w.add_person(p);
    assert!(attribute_drift(&w, 0, &iam.catalog.systems["aws"], &a.as_row()).is_empty());
    // Okta can: "RD" there is drift.
    let d = attribute_drift(&w, 0, &okta.catalog.systems["okta"], &a.as_row());
    assert_eq!(d, vec!["department: target \"RD\", HR \"R&D\"".to_string()]);
    // Only what the target reported is compared.
    a.attributes.clear();
    assert!(attribute_drift(&w, 0, &okta.catalog.systems["okta"], &a.as_row()).is_empty());
    // What accessdesk never writes (GitHub's membership state and role) is not drift.
    a.attributes.insert("state".into(), "active".into());
    a.attributes.insert("role".into(), "member".into());
    assert!(attribute_drift(&w, 0, &okta.catalog.systems["okta"], &a.as_row()).is_empty());
}

#[test]
fn work_already_in_flight_is_not_drift() {
    let mut w = world();
    w.intend("E1", "okta:group:eng");
    let e = entry();
    let o = obs("complete", "done", 2);
    let classes = |w: &World| {
        classify(w, &e, &o)
            .into_iter()
            .map(|f| f.class)
            .collect::<Vec<_>>()
    };
    assert!(classes(&w).contains(&"missing") && classes(&w).contains(&"excess"));
    w.in_flight("E1", "okta", Some("okta:group:eng"));
    w.in_flight("E1", "okta", Some("okta:group:admins"));
    assert!(!classes(&w).contains(&"missing") && !classes(&w).contains(&"excess"));
}

#[test]
fn intended_grants_added_in_any_order_stay_each_persons_own() {
    let mut w = world();
    for (p, e) in [
        ("E1", "okta:group:a"),
        ("E2", "okta:group:b"),
        ("E1", "okta:group:c"),
        ("E4", "okta:group:a"),
        ("E2", "okta:group:d"),
        ("E9", "okta:group:z"), // nobody in HR: ignored
    ] {
        w.intend(p, e);
    }
    let names = |w: &World, id: &str| -> Vec<String> {
        let i = w.index_of(id).unwrap();
        w.intended(i)
            .iter()
            .map(|&e| w.ents[e as usize].clone())
            .collect()
    };
    assert_eq!(names(&w, "E1"), ["okta:group:a", "okta:group:c"]);
    assert_eq!(names(&w, "E2"), ["okta:group:b", "okta:group:d"]);
    assert_eq!(names(&w, "E3"), Vec::<String>::new());
    assert_eq!(names(&w, "E4"), ["okta:group:a"]);
}

#[test]
fn leavers_come_first_and_get_no_other_findings() {
    let mut w = world();
    let mut ann = Person::new("E1", "Ann", "Smith", "ann@x.io");
    ann.status = crate::model::EmploymentStatus::Terminated;
    w.add_person(ann);
    w.intend("E1", "okta:group:eng");
    let f = classify(&w, &entry(), &obs("complete", "done", 2));
    let ann: Vec<_> = f
        .iter()
        .filter(|f| f.person.as_deref() == Some("E1"))
        .collect();
    assert_eq!(ann.len(), 1, "{f:#?}");
    assert_eq!(ann[0].class, "leaver_with_access");
    assert_eq!(ann[0].severity, "critical");
    assert!(f.iter().all(|x| x.rank >= ann[0].rank));
}

#[test]
fn an_account_switched_off_by_hand_for_a_person_policy_still_grants_is_missing() {
    let mut w = world();
    w.intend("E1", "okta:group:eng");
    w.intend("E1", "okta:group:admins");
    let e = entry();
    let mut o = obs("complete", "done", 2);
    o.members
        .push(("okta:group:eng".into(), "id-ann@x.io".into()));
    let account_findings = |w: &World, o: &SystemObservation| {
        classify(w, &e, o)
            .into_iter()
            .filter(|f| f.person.as_deref() == Some("E1") && f.entitlement.is_none())
            .map(|f| (f.class, f.detail))
            .collect::<Vec<_>>()
    };
    // Active, holding what policy grants: nothing about the account.
    assert!(account_findings(&w, &o).is_empty());
    // Deactivated in the system by hand: she cannot use what she holds.
    o.accounts[0].active = false;
    let f = account_findings(&w, &o);
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0].0, "missing");
    assert!(f[0].1.contains("ann@x.io is inactive"), "{f:?}");
    // Its reactivation already queued: not drift.
    w.in_flight("E1", "okta", None);
    assert!(account_findings(&w, &o).is_empty());
    // Nobody is owed an active account where policy grants nothing.
    let mut bare = world();
    bare.intend("E1", "zoom:group:x");
    assert!(account_findings(&bare, &o).is_empty());
}

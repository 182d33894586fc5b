//! The Reconcile view: leavers first, the confirmation flow (blast radius, esc, y),
//! marks, the accept dialogs, drilling, export and observation sessions.

use super::*;

/// The Reconcile view open on the fixture's run.
pub(super) fn reconcile_state(w: u16, h: u16) -> AppState {
    let mut s = state(w, h);
    ch(&mut s, '7');
    let mut snap = snapshot();
    snap.people = None;
    snap.reconcile = Some(reconcile_data());
    update(&mut s, Msg::Data(Box::new(snap)), t0());
    s
}

fn selected_finding(s: &AppState) -> i64 {
    s.cursor(PageKey::Findings).key.unwrap().parse().unwrap()
}

#[test]
fn the_reconcile_view_lists_leavers_first_and_reads_the_run() {
    let mut s = state(120, 40);
    let e = ch(&mut s, '7');
    assert_eq!(s.page(), &Page::View(ViewId::Reconcile));
    let Some(Effect::Load(q)) = e.first() else {
        panic!("no load: {e:?}")
    };
    assert!(q.reconcile, "the view asks for the run");
    let s = reconcile_state(120, 40);
    let classes: Vec<&str> = s.finding_rows().iter().map(|f| f.class.as_str()).collect();
    assert_eq!(&classes[..2], ["leaver_with_access", "leaver_with_access"]);
    assert_eq!(classes.last(), Some(&"attribute_drift"));
    // The next load reads the names of the people in view.
    let q = accessdesk::tui::reducer::query(&s);
    assert!(q.reconcile);
    assert!(q.names.contains(&"E006".to_string()), "{:?}", q.names);
    // `:reconcile` opens it too.
    let mut s = state(120, 40);
    ch(&mut s, ':');
    typed(&mut s, "rec");
    press(&mut s, KeyCode::Enter);
    assert_eq!(s.page(), &Page::View(ViewId::Reconcile));
}

#[test]
fn enforcing_a_group_asks_with_its_blast_radius_esc_cancels_and_y_runs() {
    let mut s = reconcile_state(120, 40);
    // Down to the first medium excess in okta (a group of two).
    for _ in 0..4 {
        ch(&mut s, 'j');
    }
    assert_eq!(selected_finding(&s), 19);
    let e = ch(&mut s, 'E');
    assert!(runs(&e).is_empty(), "nothing runs before the confirmation");
    let Some(Modal::Confirm { title, lines, job }) = &s.modal else {
        panic!("no confirmation: {:?}", s.modal)
    };
    assert!(title.contains("every open excess in okta"), "{title}");
    assert_eq!(lines[0], "2 finding(s) · 2 people · 1 system(s): okta 2");
    assert_eq!(
        job,
        &Job::Findings {
            ids: vec![19, 15],
            verb: FindingVerb::Enforce,
            reason: None,
            until: None
        }
    );
    let e = press(&mut s, KeyCode::Esc);
    assert!(e.is_empty());
    assert!(s.modal.is_none());
    assert_eq!(
        s.status.as_ref().unwrap().text,
        "cancelled; nothing was changed"
    );
    ch(&mut s, 'E');
    let e = ch(&mut s, 'y');
    assert_eq!(
        runs(&e),
        vec![Job::Findings {
            ids: vec![19, 15],
            verb: FindingVerb::Enforce,
            reason: None,
            until: None
        }]
    );
    // The result goes to the events and the status line.
    let e = update(
        &mut s,
        Msg::Done {
            job: runs(&e)[0].clone(),
            result: Ok("enforce: 2 of 2 finding(s) enforced, queued #40 #41".into()),
        },
        t0(),
    );
    assert!(matches!(e.as_slice(), [Effect::Load(_)]));
    assert!(s.events.iter().any(|(_, t)| t.contains("queued #40 #41")));
    assert!(s.status.as_ref().unwrap().text.contains("queued #40 #41"));
}

#[test]
fn enforcing_an_orphan_asks_without_a_refusal() {
    let mut s = reconcile_state(120, 40);
    ch(&mut s, 'j');
    ch(&mut s, 'j');
    assert_eq!(selected_finding(&s), 11);
    ch(&mut s, 'e');
    let Some(Modal::Confirm { lines, .. }) = &s.modal else {
        panic!("no confirmation")
    };
    // An orphan is deactivated when enforced: nothing in the selection is refused.
    assert!(
        !lines.iter().any(|l| l.contains("cannot be enforced")),
        "{lines:?}"
    );
}

#[test]
fn marked_findings_are_what_ignore_acts_on() {
    let mut s = reconcile_state(120, 40);
    ch(&mut s, ' ');
    ch(&mut s, 'j');
    ch(&mut s, ' ');
    assert_eq!(s.marks(ViewId::Reconcile).len(), 2);
    ch(&mut s, 'i');
    let Some(Modal::Confirm { title, lines, .. }) = &s.modal else {
        panic!("no confirmation")
    };
    assert!(title.contains("2 marked"), "{title}");
    assert!(lines[0].starts_with("2 finding(s) · 1 people · 2 system(s)"));
    let e = ch(&mut s, 'y');
    assert_eq!(
        runs(&e),
        vec![Job::Findings {
            ids: vec![11, 17],
            verb: FindingVerb::Ignore,
            reason: None,
            until: None
        }]
    );
    assert!(
        s.marks(ViewId::Reconcile).is_empty(),
        "acted-on marks clear"
    );
}

#[test]
fn accepting_asks_a_reason_then_an_expiry_defaulting_to_ninety_days() {
    let mut s = reconcile_state(120, 40);
    ch(&mut s, 'a');
    assert!(matches!(s.modal, Some(Modal::Input { .. })));
    press(&mut s, KeyCode::Enter);
    assert_eq!(s.status.as_ref().unwrap().text, "a reason is required");
    typed(&mut s, "break-glass account, reviewed");
    press(&mut s, KeyCode::Enter);
    let Some(Modal::Input { input, .. }) = &s.modal else {
        panic!("no expiry dialog")
    };
    assert_eq!(input.value(), "2027-02-24", "t0 + 90 days");
    // A date in the past is refused, and the dialog stays.
    for _ in 0..10 {
        press(&mut s, KeyCode::Backspace);
    }
    typed(&mut s, "2020-01-01");
    press(&mut s, KeyCode::Enter);
    assert!(matches!(s.modal, Some(Modal::Input { .. })));
    assert!(s.status.as_ref().unwrap().text.contains("in the past"));
    for _ in 0..10 {
        press(&mut s, KeyCode::Backspace);
    }
    typed(&mut s, "2027-01-31");
    press(&mut s, KeyCode::Enter);
    let Some(Modal::Confirm { lines, .. }) = &s.modal else {
        panic!("no confirmation")
    };
    assert!(lines.contains(&"reason: break-glass account, reviewed".to_string()));
    let e = ch(&mut s, 'y');
    assert_eq!(
        runs(&e),
        vec![Job::Findings {
            ids: vec![17],
            verb: FindingVerb::Accept,
            reason: Some("break-glass account, reviewed".into()),
            until: Some("2027-01-31".into())
        }]
    );
}

#[test]
fn enter_opens_the_person_or_the_account_and_x_exports_the_run() {
    let mut s = reconcile_state(120, 40);
    press(&mut s, KeyCode::Enter);
    assert_eq!(s.page(), &Page::Person("E006".into()));
    assert_eq!(
        accessdesk::tui::reducer::query(&s).person.as_deref(),
        Some("E006")
    );
    press(&mut s, KeyCode::Esc);
    ch(&mut s, 'j');
    ch(&mut s, 'j');
    press(&mut s, KeyCode::Enter);
    assert_eq!(s.page(), &Page::Finding(11));
    assert!(!render(&s).contains("Not enforceable"));
    press(&mut s, KeyCode::Esc);
    let e = ch(&mut s, 'x');
    assert_eq!(runs(&e), vec![Job::ExportFindings { run: 7 }]);
}

#[test]
fn observing_confirms_runs_once_at_a_time_and_shows_progress() {
    let mut s = reconcile_state(120, 40);
    ch(&mut s, 'r');
    assert!(matches!(s.modal, Some(Modal::Confirm { .. })));
    let e = ch(&mut s, 'y');
    assert_eq!(runs(&e), vec![Job::Observe { system: None }]);
    assert!(s.observing);
    let e = ch(&mut s, 'r');
    assert!(e.is_empty() && s.modal.is_none(), "one session at a time");
    update(
        &mut s,
        Msg::Progress(accessdesk::engine::observe::Progress {
            system: "aws".into(),
            phase: "members".into(),
            accounts: 212,
            memberships: 455,
            expected: Some(900),
            eta_secs: Some(12.0),
        }),
        t0(),
    );
    assert_eq!(
        s.status.as_ref().unwrap().text,
        "observe aws: 212 accounts, 455 memberships of ~900 objects (members, ETA 12 s)"
    );
    assert!(render(&s).contains("ETA 12 s"));
    update(
        &mut s,
        Msg::Done {
            job: Job::Observe { system: None },
            result: Ok("observation run 8 reconciled: 3 finding(s)".into()),
        },
        t0(),
    );
    assert!(!s.observing);
    // R observes the cursor's finding's system.
    ch(&mut s, 'R');
    let Some(Modal::Confirm { job, .. }) = &s.modal else {
        panic!("no confirmation")
    };
    assert_eq!(
        job,
        &Job::Observe {
            system: Some("aws".into())
        }
    );
    // Read-only consoles neither observe nor remediate.
    let mut s = reconcile_state(120, 40);
    s.readonly = true;
    for c in ['r', 'R', 'e', 'a', 'i', 'E', 'A', 'I'] {
        assert!(ch(&mut s, c).is_empty());
        assert!(s.modal.is_none(), "{c} acted read-only");
    }
}

#[test]
fn an_orphan_is_accepted_from_its_own_page() {
    let mut s = reconcile_state(120, 40);
    ch(&mut s, 'j');
    ch(&mut s, 'j');
    press(&mut s, KeyCode::Enter);
    assert_eq!(s.page(), &Page::Finding(11));
    assert!(
        keymap::hints(PageKind::Finding, false)
            .iter()
            .any(|(k, d)| k == "a" && *d == "accept")
    );
    ch(&mut s, 'a');
    typed(&mut s, "service account of the print server");
    press(&mut s, KeyCode::Enter);
    press(&mut s, KeyCode::Enter);
    let Some(Modal::Confirm { lines, job, .. }) = &s.modal else {
        panic!("no confirmation: {:?}", s.modal)
    };
    assert_eq!(lines[0], "1 finding(s) · 0 people · 1 system(s): okta 1");
    assert_eq!(
        job,
        &Job::Findings {
            ids: vec![11],
            verb: FindingVerb::Accept,
            reason: Some("service account of the print server".into()),
            until: Some("2027-02-24".into())
        }
    );
}

//! The console without a terminal: keys → reducer → state and effects (with an injected
//! clock), and every view drawn into a TestBackend, snapshotted with the monochrome theme.

mod console_support;

use accessdesk::model::OperationStatus;
use accessdesk::tui::data::Snapshot;
use accessdesk::tui::keymap;
use accessdesk::tui::reducer::{Effect, Msg, update};
use accessdesk::tui::state::*;
use accessdesk::tui::views;
use console_support::*;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use std::sync::Arc;

fn press(s: &mut AppState, code: KeyCode) -> Vec<Effect> {
    update(s, Msg::Key(KeyEvent::new(code, KeyModifiers::NONE)), t0())
}

fn ch(s: &mut AppState, c: char) -> Vec<Effect> {
    press(s, KeyCode::Char(c))
}

fn typed(s: &mut AppState, text: &str) {
    for c in text.chars() {
        ch(s, c);
    }
}

fn runs(effects: &[Effect]) -> Vec<Job> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Run(j) => Some(j.clone()),
            _ => None,
        })
        .collect()
}

fn render(s: &AppState) -> String {
    render_with_hits(s).0
}

/// Draw into a TestBackend; the screen and the layout `draw` returned.
fn render_with_hits(s: &AppState) -> (String, HitMap) {
    let mut t = Terminal::new(TestBackend::new(s.size.0, s.size.1)).unwrap();
    let mut hits = HitMap::default();
    t.draw(|f| hits = views::draw(f, s)).unwrap();
    (format!("{}", t.backend()), hits)
}

/// Draw, and keep the layout as the app does after every frame.
fn draw_frame(s: &mut AppState) -> String {
    let (screen, hits) = render_with_hits(s);
    s.hits = hits;
    screen
}

fn selected_person(s: &AppState) -> String {
    let c = s.cursor(PageKey::People);
    s.people.rows[s.people_view[c.index] as usize].id.clone()
}

// ---------------------------------------------------------------------------------------
// Reducer
// ---------------------------------------------------------------------------------------

#[path = "console/reconcile.rs"]
mod reconcile;

#[test]
fn the_cursor_follows_the_selected_operation_when_live_updates_reorder_rows() {
    let mut s = state(120, 40);
    ch(&mut s, '3');
    ch(&mut s, 'j');
    ch(&mut s, 'j');
    let chosen = s.cursor(PageKey::Queue).key.clone().unwrap();
    let before = s.cursor(PageKey::Queue).index;
    // A live update puts two new operations in front of it.
    let mut snap = snapshot();
    snap.people = None;
    let mut q = (*snap.queue).clone();
    q.insert(
        0,
        op(
            1,
            "okta",
            accessdesk::model::OperationKind::CreateAccount,
            "E009",
            None,
            OperationStatus::Running,
        ),
    );
    q.insert(
        0,
        op(
            2,
            "okta",
            accessdesk::model::OperationKind::CreateAccount,
            "E010",
            None,
            OperationStatus::Running,
        ),
    );
    snap.queue = Arc::new(q);
    update(&mut s, Msg::Data(Box::new(snap)), t0());
    let c = s.cursor(PageKey::Queue);
    assert_eq!(c.key.as_deref(), Some(chosen.as_str()), "selection moved");
    assert_eq!(
        c.index,
        before + 2,
        "the row moved down and the cursor with it"
    );
    // When the selected operation leaves the queue, the cursor stays at its position.
    let mut snap = snapshot();
    snap.people = None;
    let q: Vec<_> = snap
        .queue
        .iter()
        .filter(|o| o.id.to_string() != chosen)
        .cloned()
        .collect();
    snap.queue = Arc::new(q);
    update(&mut s, Msg::Data(Box::new(snap)), t0());
    let c = s.cursor(PageKey::Queue);
    assert_eq!(c.index, before + 2, "the position is kept");
    assert_ne!(c.key.as_deref(), Some(chosen.as_str()));
}

#[test]
fn approving_asks_for_a_reason_then_confirms_the_listed_items() {
    let mut s = state(120, 40);
    ch(&mut s, '4');
    assert_eq!(s.page(), &Page::View(ViewId::Approvals));
    let e = ch(&mut s, 'a');
    assert!(e.is_empty());
    assert!(matches!(s.modal, Some(Modal::Input { .. })));
    // An empty reason is refused, and the dialog stays.
    let e = press(&mut s, KeyCode::Enter);
    assert!(runs(&e).is_empty());
    assert!(matches!(s.modal, Some(Modal::Input { .. })));
    assert_eq!(s.status.as_ref().unwrap().text, "a reason is required");
    assert_eq!(
        s.status.as_ref().unwrap().at,
        t0(),
        "the injected clock stamps messages"
    );
    typed(&mut s, "on-call rota");
    press(&mut s, KeyCode::Enter);
    let Some(Modal::Confirm { title, lines, .. }) = &s.modal else {
        panic!("no confirmation");
    };
    assert_eq!(title, "Approve 1 grant(s)?");
    assert!(
        lines[0].contains("Alan Turing (E002) → okta:group:prod-admins"),
        "{lines:?}"
    );
    assert!(lines.iter().any(|l| l == "reason: on-call rota"));
    let e = ch(&mut s, 'y');
    assert_eq!(
        runs(&e),
        vec![Job::Decide {
            ids: vec![1],
            approve: true,
            reason: "on-call rota".into()
        }]
    );
    assert!(s.modal.is_none());
    assert_eq!(s.busy, 1);
    // The result comes back as a message, and the data is re-read.
    let e = update(
        &mut s,
        Msg::Done {
            job: Job::VerifyAudit,
            result: Ok("approved 1 grant(s)".into()),
        },
        t0(),
    );
    assert_eq!(s.busy, 0);
    assert!(matches!(e[0], Effect::Load(_)));
}

#[test]
fn bulk_rejection_covers_exactly_the_marked_rows() {
    let mut s = state(120, 40);
    ch(&mut s, '4');
    ch(&mut s, ' '); // marks #1, moves to #2
    ch(&mut s, 'j'); // skips #2
    ch(&mut s, ' '); // marks #3
    assert_eq!(
        s.marks(ViewId::Approvals).into_iter().collect::<Vec<_>>(),
        vec![1, 3]
    );
    ch(&mut s, 'x');
    typed(&mut s, "not needed");
    press(&mut s, KeyCode::Enter);
    let Some(Modal::Confirm { lines, .. }) = &s.modal else {
        panic!("no confirmation");
    };
    assert_eq!(lines.len(), 3, "two items and the reason: {lines:?}");
    let e = ch(&mut s, 'y');
    assert_eq!(
        runs(&e),
        vec![Job::Decide {
            ids: vec![1, 3],
            approve: false,
            reason: "not needed".into()
        }]
    );
    assert!(
        s.marks(ViewId::Approvals).is_empty(),
        "marks cleared after acting"
    );
}

#[test]
fn declining_a_confirmation_changes_nothing() {
    let mut s = state(120, 40);
    ch(&mut s, '3');
    ch(&mut s, 'r');
    assert!(matches!(s.modal, Some(Modal::Confirm { .. })));
    let e = press(&mut s, KeyCode::Esc);
    assert!(runs(&e).is_empty());
    assert!(s.modal.is_none());
    assert_eq!(
        s.status.as_ref().unwrap().text,
        "cancelled; nothing was changed"
    );
}

#[test]
fn a_failure_group_is_retried_as_a_whole() {
    let mut s = state(120, 40);
    ch(&mut s, '3');
    ch(&mut s, 'g');
    assert_eq!(s.queue_pane, QueuePane::Groups);
    ch(&mut s, 'r');
    let Some(Modal::Confirm { title, lines, .. }) = &s.modal else {
        panic!("no confirmation");
    };
    assert_eq!(title, "Retry the whole group?");
    assert!(lines[0].contains("zoom · permanent · invalidValue — 2 operation(s)"));
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("#105 zoom create_account E005"))
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("#106 zoom create_account E003"))
    );
    let e = ch(&mut s, 'y');
    assert_eq!(
        runs(&e),
        vec![Job::Group {
            key: "zoom/permanent/invalidValue".into(),
            verb: OpVerb::Retry
        }]
    );
}

#[test]
fn readonly_hides_and_ignores_every_dangerous_action() {
    let mut s = state(120, 40);
    s.readonly = true;
    ch(&mut s, '4');
    assert!(ch(&mut s, 'a').is_empty());
    assert!(s.modal.is_none());
    ch(&mut s, '3');
    for c in ['r', 's', 'c'] {
        ch(&mut s, c);
        assert!(s.modal.is_none(), "{c} opened a dialog in read-only mode");
    }
    let screen = render(&s);
    assert!(screen.contains("READ-ONLY"));
    assert!(!screen.contains(" retry "), "{screen}");
    for page in PageKind::ALL {
        assert!(keymap::for_page(page, true).iter().all(|b| !b.dangerous));
    }
}

#[test]
fn filters_narrow_invert_and_fuzzy_match_and_esc_restores() {
    let mut s = state(120, 40);
    ch(&mut s, '2');
    assert_eq!(s.people_view.len(), 8);
    ch(&mut s, '/');
    typed(&mut s, "engineering");
    assert_eq!(s.people_view.len(), 3, "live while typing");
    press(&mut s, KeyCode::Enter);
    assert_eq!(s.filter(ViewId::People).text, "engineering");
    ch(&mut s, '/');
    press(&mut s, KeyCode::Backspace);
    typed(&mut s, "XYZ");
    press(&mut s, KeyCode::Esc);
    assert_eq!(s.filter(ViewId::People).text, "engineering", "esc restores");
    assert_eq!(s.people_view.len(), 3);
    // Inverse.
    ch(&mut s, '/');
    for _ in 0..20 {
        press(&mut s, KeyCode::Backspace);
    }
    typed(&mut s, "!engineering");
    press(&mut s, KeyCode::Enter);
    assert_eq!(s.people_view.len(), 5);
    // Fuzzy: letters in order, best match first.
    ch(&mut s, '/');
    for _ in 0..20 {
        press(&mut s, KeyCode::Backspace);
    }
    typed(&mut s, "~grhp");
    press(&mut s, KeyCode::Enter);
    assert_eq!(s.people_view.len(), 1);
    assert_eq!(selected_person(&s), "E004");
    // Esc on the list clears the filter.
    press(&mut s, KeyCode::Esc);
    assert_eq!(s.people_view.len(), 8);
}

#[test]
fn command_mode_completes_remembers_and_reports_unknown_commands() {
    let mut s = state(120, 40);
    ch(&mut s, ':');
    typed(&mut s, "ap");
    press(&mut s, KeyCode::Tab);
    let Some(Prompt::Command { input, .. }) = &s.prompt else {
        panic!("no prompt");
    };
    assert_eq!(input.value(), "approvals");
    press(&mut s, KeyCode::Enter);
    assert_eq!(s.page(), &Page::View(ViewId::Approvals));
    ch(&mut s, ':');
    press(&mut s, KeyCode::Up);
    let Some(Prompt::Command { input, .. }) = &s.prompt else {
        panic!("no prompt");
    };
    assert_eq!(input.value(), "approvals", "history");
    press(&mut s, KeyCode::Esc);
    ch(&mut s, ':');
    typed(&mut s, "peopel");
    press(&mut s, KeyCode::Enter);
    let msg = &s.status.as_ref().unwrap().text;
    assert!(
        msg.contains("unknown command \"peopel\"") && msg.contains("did you mean people"),
        "{msg}"
    );
    // Every view has a command.
    for v in ViewId::ALL {
        ch(&mut s, ':');
        typed(&mut s, v.command());
        press(&mut s, KeyCode::Enter);
        assert_eq!(s.view(), v);
    }
    ch(&mut s, ':');
    typed(&mut s, "people ada");
    press(&mut s, KeyCode::Enter);
    assert_eq!(s.people_view.len(), 1);
}

#[test]
fn freezing_stops_live_reads_until_resumed() {
    let mut s = state(120, 40);
    assert!(matches!(
        update(&mut s, Msg::Tick, t0())[..],
        [Effect::Load(_)]
    ));
    ch(&mut s, 'f');
    assert!(s.frozen);
    assert!(update(&mut s, Msg::Tick, t0()).is_empty());
    assert!(render(&s).contains("FROZEN"));
    let e = ch(&mut s, 'f');
    assert!(matches!(e[..], [Effect::Load(_)]));
    assert!(!update(&mut s, Msg::Tick, t0()).is_empty());
}

#[test]
fn a_persons_page_never_shows_or_opens_another_persons_matrix() {
    // The snapshot still holds the list pane's matrix (Ada's) when Grace's page opens:
    // her page says loading, and enter opens no cell of Ada's under Grace's name.
    let mut s = state(120, 40);
    ch(&mut s, '2');
    press(&mut s, KeyCode::Enter);
    let mut snap = snapshot();
    snap.people = None;
    snap.matrix = Some(matrix());
    update(&mut s, Msg::Data(Box::new(snap)), t0());
    s.stack.push(Page::Person("E002".into()));
    let screen = render(&s);
    assert!(screen.contains("loading"), "{screen}");
    assert!(
        !screen.contains("group:billing"),
        "Ada's matrix on Grace's page:\n{screen}"
    );
    ch(&mut s, 'j');
    let e = press(&mut s, KeyCode::Enter);
    assert!(e.is_empty(), "{e:?}");
    assert_eq!(s.page(), &Page::Person("E002".into()));
}

#[test]
fn enter_drills_down_and_esc_walks_the_breadcrumbs_back() {
    let mut s = state(120, 40);
    ch(&mut s, '2');
    let e = press(&mut s, KeyCode::Enter);
    assert_eq!(s.page(), &Page::Person("E001".into()));
    let Effect::Load(q) = &e[0] else { panic!() };
    assert_eq!(q.person.as_deref(), Some("E001"));
    let mut snap = snapshot();
    snap.people = None;
    snap.matrix = Some(matrix());
    update(&mut s, Msg::Data(Box::new(snap)), t0());
    ch(&mut s, 'j'); // group:billing
    let e = press(&mut s, KeyCode::Enter);
    assert_eq!(
        s.page(),
        &Page::Cell {
            person: "E001".into(),
            system: "aws".into(),
            entitlement: Some("aws:group:billing".into())
        }
    );
    let Effect::Load(q) = &e[0] else { panic!() };
    assert_eq!(
        q.cell,
        Some((
            "E001".into(),
            "aws".into(),
            Some("aws:group:billing".into())
        ))
    );
    assert!(render(&s).contains("People › Ada Lovelace › aws:group:billing"));
    press(&mut s, KeyCode::Esc);
    assert_eq!(s.page(), &Page::Person("E001".into()));
    press(&mut s, KeyCode::Esc);
    assert_eq!(s.page(), &Page::View(ViewId::People));
}

#[test]
fn the_help_lists_the_same_bindings_as_the_hints_bar() {
    let mut s = state(200, 60);
    ch(&mut s, '3');
    let bar = render(&s);
    let hints = keymap::hints(PageKind::Queue, false);
    for (k, d) in &hints {
        assert!(bar.contains(&format!("{k} {d}")), "hint {k} {d} missing");
    }
    ch(&mut s, '?');
    let help = render(&s);
    for b in keymap::for_page(PageKind::Queue, false) {
        assert!(help.contains(b.desc), "help lacks {}", b.desc);
    }
    press(&mut s, KeyCode::Esc);
    assert!(s.modal.is_none());
}

/// Where `text` first appears on screen: (column, row), counted in cells.
fn find_on_screen(screen: &str, text: &str) -> (u16, u16) {
    for (row, line) in screen.lines().enumerate() {
        // The TestBackend prints each row quoted.
        let line = line.strip_prefix('"').unwrap_or(line);
        if let Some(i) = line.find(text) {
            let col = unicode_width::UnicodeWidthStr::width(&line[..i]);
            return (col as u16, row as u16);
        }
    }
    panic!("{text:?} is not on screen:\n{screen}");
}

#[test]
fn clicking_a_tab_opens_it_and_clicking_a_row_selects_it() {
    let mut s = state(120, 40);
    s.mouse = true;
    // Notices push the lists down; the tabs carry counts ("3 Queue (5)"): the clicks are
    // hit-tested against the layout the frame was drawn with, whatever it is.
    s.notices = vec!["one notice".into(), "another".into()];
    let click = |(col, row): (u16, u16)| {
        Msg::Mouse(MouseEvent {
            kind: MouseEventKind::Down(MouseButton::Left),
            column: col,
            row,
            modifiers: KeyModifiers::NONE,
        })
    };
    let screen = draw_frame(&mut s);
    update(
        &mut s,
        click(find_on_screen(&screen, "Approvals (3)")),
        t0(),
    );
    assert_eq!(s.view(), ViewId::Approvals);
    let screen = draw_frame(&mut s);
    update(&mut s, click(find_on_screen(&screen, "#3")), t0());
    assert_eq!(s.cursor(PageKey::Approvals).key.as_deref(), Some("3"));

    // The Queue: its operations are drawn below the ETAs and the failure groups.
    let screen = draw_frame(&mut s);
    update(&mut s, click(find_on_screen(&screen, "Queue (5)")), t0());
    assert_eq!(s.view(), ViewId::Queue);
    let screen = draw_frame(&mut s);
    update(&mut s, click(find_on_screen(&screen, "107")), t0());
    assert_eq!(s.queue_pane, QueuePane::Ops);
    assert_eq!(s.cursor(PageKey::Queue).key.as_deref(), Some("107"));
    // A click on a failure group focuses that pane and selects the group.
    let screen = draw_frame(&mut s);
    update(&mut s, click(find_on_screen(&screen, "E0000006")), t0());
    assert_eq!(s.queue_pane, QueuePane::Groups);
    assert_eq!(
        s.cursor(PageKey::Groups).key.as_deref(),
        Some("okta/unauthorized/E0000006")
    );
    // Below the last row, on a border, or on the title: nothing changes.
    let before = s.cursors.clone();
    for at in [(5, 38), (0, 12), (3, 0)] {
        update(&mut s, click(at), t0());
    }
    assert_eq!(s.cursors, before);
    assert_eq!(s.view(), ViewId::Queue);
}

#[test]
fn outside_events_show_in_the_status_bar_and_the_overview() {
    let mut s = state(120, 40);
    update(
        &mut s,
        Msg::Event("T+12s Paweł Kowalski leaves".into()),
        t0(),
    );
    assert_eq!(
        s.status.as_ref().unwrap().text,
        "T+12s Paweł Kowalski leaves"
    );
    let screen = render(&s);
    assert!(screen.contains("Recent events"), "{screen}");
    for i in 0..60 {
        update(&mut s, Msg::Event(format!("event {i}")), t0());
    }
    assert_eq!(s.events.len(), 50, "the event list is bounded");
}

#[test]
fn a_jobs_result_outlasts_the_events_that_follow_it_for_half_a_minute() {
    let mut s = state(120, 40);
    let done = |r: Result<String, String>| Msg::Done {
        job: Job::VerifyAudit,
        result: r,
    };
    update(
        &mut s,
        done(Ok("Retry: 5 operation(s) in okta".into())),
        t0(),
    );
    let later = |secs| t0() + chrono::Duration::seconds(secs);
    update(
        &mut s,
        Msg::Event("T+90s the storm is over".into()),
        later(20),
    );
    assert_eq!(
        s.status.as_ref().unwrap().text,
        "Retry: 5 operation(s) in okta"
    );
    update(&mut s, Msg::Event("T+100s next".into()), later(31));
    assert_eq!(s.status.as_ref().unwrap().text, "T+100s next");
    // Both events are in the overview's list either way.
    assert_eq!(s.events.len(), 2);
}

#[test]
fn the_overview_shows_each_source_with_its_lag_errors_and_rejections() {
    use accessdesk::tui::data::SourceRow;
    let mut s = state(140, 40);
    let now = s.snapshot.taken_at.unwrap_or_else(chrono::Utc::now);
    s.snapshot.taken_at = Some(now);
    s.snapshot.sources = vec![
        SourceRow {
            name: "bamboo".into(),
            kind: "bamboohr".into(),
            last_event: Some(now - chrono::Duration::seconds(30)),
            last_poll: Some(now - chrono::Duration::seconds(120)),
            pending: 2,
            lag_secs: 95,
            errors: 1,
            last_error: Some("HTTP 401: the API key was refused".into()),
            rejected: 4,
        },
        SourceRow {
            name: "hr".into(),
            kind: "webhook".into(),
            ..Default::default()
        },
    ];
    let screen = render(&s);
    assert!(screen.contains("Sources (2)"), "{screen}");
    let line = screen.lines().find(|l| l.contains("bamboohr")).unwrap();
    for want in [
        "bamboo",
        "30s ago",
        "2m00s ago",
        "2 waiting, 1m35s",
        "HTTP 401",
    ] {
        assert!(line.contains(want), "{want:?} not in {line:?}");
    }
    assert!(line.contains(" 4 "), "{line}");
    let hr = screen.lines().find(|l| l.contains("webhook")).unwrap();
    assert!(hr.contains("never") && hr.contains("none"), "{hr}");
}

#[test]
fn the_loader_reads_sources_from_sources_toml_and_the_store() {
    use accessdesk::store::inbox::NewDelivery;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("sources.toml"),
        "[sources.hr]\nkind = \"webhook\"\ncredential = \"env:X\"\n",
    )
    .unwrap();
    let mut store = accessdesk::store::Store::open(&dir.path().join("accessdesk.db")).unwrap();
    store
        .write(|tx| {
            tx.inbox_put(&[NewDelivery {
                source: "hr".into(),
                delivery_id: "a".into(),
                event_type: None,
                body: b"{}".to_vec(),
            }])?;
            tx.bump_source_stat("hr", "rejected:stale", 3)?;
            tx.bump_source_stat("old", "received", 1)
        })
        .unwrap();
    let catalog = std::sync::Arc::new(accessdesk::config::Catalog::default());
    let mut loader = accessdesk::tui::data::Loader::new(
        accessdesk::store::Store::open(&dir.path().join("accessdesk.db")).unwrap(),
        catalog,
        None,
        None,
        None,
    );
    let snap = loader
        .load(&Default::default(), chrono::Utc::now())
        .unwrap();
    let hr = snap.sources.iter().find(|r| r.name == "hr").unwrap();
    assert_eq!(
        (hr.kind.as_str(), hr.pending, hr.rejected),
        ("webhook", 1, 3)
    );
    assert!(hr.last_event.is_some());
    // A source the store knows and sources.toml no longer names is still shown.
    let old = snap.sources.iter().find(|r| r.name == "old").unwrap();
    assert_eq!(old.kind, "?");
}

#[test]
fn the_theme_key_cycles_through_the_available_themes() {
    let mut s = state(80, 24);
    let e = ch(&mut s, 'T');
    assert_eq!(e, vec![Effect::LoadTheme("default".into())]);
}

#[test]
fn eta_comes_from_measured_throughput_capped_by_the_limiter() {
    use accessdesk::tui::data::Eta;
    use std::time::Duration;
    let s = state(80, 24);
    let okta = s
        .snapshot
        .systems
        .iter()
        .find(|r| r.name == "okta")
        .unwrap();
    let secs = |e: Eta| match e {
        Eta::In(d) => d.as_secs(),
        other => panic!("no ETA: {other:?}"),
    };
    // 127 to do at 30/min measured (0.5/s) = 254 s.
    assert_eq!(secs(okta.eta()), 254);
    // The first completions of a wave say nothing about its pace: 2 in the first second
    // would promise 127 / (2/60 s) = over an hour. Until a few have been measured over a
    // few seconds, the ETA is being measured.
    let mut early = okta.clone();
    early.succeeded_last_minute = 2;
    early.measured_over = Duration::from_secs(1);
    assert_eq!(early.eta(), Eta::Measuring);
    early.succeeded_last_minute = 20;
    assert_eq!(early.eta(), Eta::Measuring, "one second is too short");
    early.measured_over = Duration::from_secs(4);
    assert_eq!(early.eta(), Eta::Measuring);
    // 20 in 5 s: 4/s, capped by nothing (the limiter allows 8.5/s): 127 / 4 = 31 s.
    early.measured_over = Duration::from_secs(5);
    assert_eq!(secs(early.eta()), 31);
    // Running, nothing finished yet: measuring. Nothing moving at all: unknown.
    let mut idle = okta.clone();
    idle.succeeded_last_minute = 0;
    assert_eq!(idle.eta(), Eta::Measuring);
    idle.counts.0[0] = 0; // running
    idle.counts.0[2] = 0; // verifying
    assert_eq!(idle.eta(), Eta::Unknown);
    let zoom = s
        .snapshot
        .systems
        .iter()
        .find(|r| r.name == "zoom")
        .unwrap();
    assert_eq!(zoom.eta(), Eta::Done, "nothing left");
}

/// Column widths come from what the visible rows hold (the Kind column is as wide as
/// "aws_identity_store", not a fixed 10); the Queue names people; an ETA that has not been
/// measured long enough says so.
#[test]
fn columns_fit_content_the_queue_names_people_and_an_early_eta_is_measuring() {
    use std::time::Duration;
    let mut s = state(120, 40);
    let mut sso = s.snapshot.systems[0].clone();
    sso.name = "aws-sso".into();
    sso.kind = "aws_identity_store".into();
    // A wave just started: two done in its first second.
    sso.succeeded_last_minute = 2;
    sso.measured_over = Duration::from_secs(1);
    s.snapshot.systems.insert(1, sso);
    let screen = render(&s);
    let row = screen
        .lines()
        .find(|l| l.contains("aws-sso"))
        .unwrap_or_else(|| panic!("{screen}"));
    assert!(row.contains(" aws_identity_store "), "{row}");
    assert!(row.contains(" measuring "), "{row}");
    // The header lines up with it.
    let header = screen.lines().find(|l| l.contains("Kind")).unwrap();
    assert_eq!(
        header.find("Kind"),
        row.find("aws_identity_store"),
        "{screen}"
    );

    // The Queue shows who each operation is for, by name.
    ch(&mut s, '3');
    let screen = render(&s);
    let row = screen.lines().find(|l| l.contains("101")).unwrap();
    assert!(row.contains("Grace Hopper"), "{row}");
    assert!(
        screen.contains("aws-sso") && screen.contains("ETA measuring"),
        "{screen}"
    );
}

/// The Queue asks the loader for the names of the people on its page (and a page either
/// side), never the whole queue's.
#[test]
fn the_queue_reads_names_for_its_page_only() {
    let mut s = state(120, 40);
    let mut snap = snapshot();
    let ops: Vec<_> = (0..5_000)
        .map(|i| {
            op(
                1000 + i,
                "okta",
                accessdesk::model::OperationKind::CreateAccount,
                &format!("P{i:05}"),
                None,
                OperationStatus::Queued,
            )
        })
        .collect();
    snap.queue = Arc::new(ops);
    snap.groups.clear();
    update(&mut s, Msg::Data(Box::new(snap)), t0());
    ch(&mut s, '3');
    for _ in 0..3 {
        press(&mut s, KeyCode::PageDown);
    }
    let (screen, hits) = render_with_hits(&s);
    s.hits = hits;
    let list = s
        .hits
        .lists
        .iter()
        .find(|l| l.key == PageKey::Queue)
        .unwrap();
    let (first, height) = (list.first, list.rows.height as usize);
    assert!(first > 0, "scrolled");
    let q = accessdesk::tui::reducer::query(&s);
    assert_eq!(
        q.names.len(),
        3 * height,
        "a page either side: {:?}",
        q.names
    );
    let shown = s.queue_rows()[first].person_id.clone();
    assert!(screen.contains(&shown), "{screen}");
    assert!(q.names.contains(&shown));
    assert!(
        !q.names.contains(&"P00000".to_string()),
        "not the whole queue"
    );
}

// ---------------------------------------------------------------------------------------
// Snapshots: every view at 80×24 and 120×40, monochrome.
// ---------------------------------------------------------------------------------------

/// A rehire (a leaver whose return was applied) is named as such in the People list and
/// in the person's header.
#[test]
fn a_rehire_shows_in_the_people_list_and_the_person_header() {
    let mut s = state(120, 40);
    ch(&mut s, '2');
    let mut snap: Snapshot = snapshot();
    let mut rows = people();
    rows[1].rehired = Some("2026-03-02".into());
    snap.people = Some(Arc::new(accessdesk::tui::data::PeopleIndex { rows }));
    let mut m = matrix();
    m.person.rehired = Some("2026-03-02".into());
    snap.matrix = Some(m);
    update(&mut s, Msg::Data(Box::new(snap)), t0());
    let screen = render(&s);
    let alan = screen
        .lines()
        .find(|l| l.contains("Alan Turing"))
        .unwrap_or_else(|| panic!("{screen}"));
    assert!(alan.contains("active · rehire"), "{alan}");
    let ada = screen
        .lines()
        .find(|l| l.contains("Anke van der Berg"))
        .unwrap();
    assert!(!ada.contains("rehire"), "{ada}");
    s.stack = vec![Page::View(ViewId::People), Page::Person("E001".into())];
    let screen = render(&s);
    assert!(
        screen.contains("active · rehire (rehired 2026-03-02)"),
        "{screen}"
    );
}

fn pages(w: u16, h: u16) -> Vec<(&'static str, AppState)> {
    let mut out = Vec::new();
    for (name, key) in [
        ("overview", '1'),
        ("people", '2'),
        ("queue", '3'),
        ("approvals", '4'),
        ("audit", '5'),
        ("systems", '6'),
    ] {
        let mut s = state(w, h);
        ch(&mut s, key);
        if name == "people" {
            let mut snap: Snapshot = snapshot();
            snap.people = None;
            snap.matrix = Some(matrix());
            update(&mut s, Msg::Data(Box::new(snap)), t0());
        }
        out.push((name, s));
    }
    let mut s = state(w, h);
    ch(&mut s, '3');
    ch(&mut s, 'g');
    out.push(("queue_groups", s));
    let mut s = state(w, h);
    s.snapshot.matrix = Some(matrix());
    s.stack = vec![Page::View(ViewId::People), Page::Person("E001".into())];
    s.matrix_at = (3, 1);
    out.push(("matrix", s));
    let mut s = state(w, h);
    s.snapshot.matrix = Some(matrix());
    s.snapshot.cell = Some(cell());
    s.stack = vec![
        Page::View(ViewId::People),
        Page::Person("E001".into()),
        Page::Cell {
            person: "E001".into(),
            system: "okta".into(),
            entitlement: Some("okta:group:finance".into()),
        },
    ];
    out.push(("cell", s));
    let mut s = state(w, h);
    s.snapshot.op = Some(op_detail());
    s.stack = vec![Page::View(ViewId::Queue), Page::Operation(107)];
    out.push(("operation", s));
    let mut s = state(w, h);
    ch(&mut s, '3');
    ch(&mut s, '?');
    out.push(("help", s));
    let mut s = state(w, h);
    ch(&mut s, '4');
    ch(&mut s, 'a');
    typed(&mut s, "quarterly access review");
    out.push(("reason", s));
    press(&mut out.last_mut().unwrap().1, KeyCode::Enter);
    let mut s = state(w, h);
    ch(&mut s, '4');
    ch(&mut s, 'a');
    typed(&mut s, "quarterly access review");
    press(&mut s, KeyCode::Enter);
    out.push(("confirm", s));
    let mut s = state(w, h);
    ch(&mut s, ':');
    typed(&mut s, "au");
    press(&mut s, KeyCode::Tab);
    out.push(("command", s));
    let mut s = state(w, h);
    s.notices = vec!["No OS keychain available; demo credentials are kept in memory only".into()];
    s.frozen = true;
    update(
        &mut s,
        Msg::Event("T+3s 429 storm: okta refuses every request".into()),
        t0(),
    );
    update(
        &mut s,
        Msg::Event("T+8s zoom turns flaky for 60 s".into()),
        t0(),
    );
    out.push(("notice_frozen", s));
    out.push(("reconcile", reconcile::reconcile_state(w, h)));
    let mut s = reconcile::reconcile_state(w, h);
    s.stack.push(Page::Finding(11));
    out.push(("finding", s));
    let mut s = reconcile::reconcile_state(w, h);
    for _ in 0..4 {
        ch(&mut s, 'j');
    }
    ch(&mut s, 'E');
    out.push(("reconcile_confirm", s));
    out
}

#[test]
fn every_view_at_80x24() {
    for (name, s) in pages(80, 24) {
        insta::assert_snapshot!(format!("{name}_80x24"), render(&s));
    }
}

#[test]
fn every_view_at_120x40() {
    for (name, s) in pages(120, 40) {
        insta::assert_snapshot!(format!("{name}_120x40"), render(&s));
    }
}

#[test]
fn no_view_panics_on_tiny_or_empty_screens() {
    for (w, h) in [(1, 1), (10, 3), (20, 6), (40, 10)] {
        for (_, s) in pages(w, h) {
            render(&s);
        }
    }
    let mut s = AppState::new(accessdesk::tui::theme::Theme::none(), false);
    for v in ViewId::ALL {
        accessdesk::tui::reducer::act(&mut s, keymap::Action::Go(v), t0());
        let screen = render(&s);
        assert!(screen.contains("loading…") || !screen.is_empty());
    }
}

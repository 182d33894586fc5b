//! The reducer: messages (keys, mouse, data, job results, ticks) change the state and
//! return effects (load data, run a job, quit). Pure apart from the clock it is handed, so
//! every interaction is testable without a terminal.

use super::data::{AuditQuery, Query, Snapshot};
use super::keymap::{self, Action};
use super::state::*;
use chrono::{DateTime, Utc};
use crossterm::event::{
    Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseButton, MouseEvent, MouseEventKind,
};
use tui_input::Input;
use tui_input::backend::crossterm::EventHandler;

pub mod reconcile;

#[derive(Debug)]
pub enum Msg {
    Key(KeyEvent),
    Mouse(MouseEvent),
    Resize(u16, u16),
    Data(Box<Snapshot>),
    LoadFailed(String),
    Done {
        job: Job,
        result: std::result::Result<String, String>,
    },
    /// The theme the console asked for, loaded (or why not).
    Theme(Box<std::result::Result<super::theme::Theme, String>>),
    Tick,
    /// Something happened outside the store (a scenario event).
    Event(String),
    /// How far a system's read in the console's observation session is.
    Progress(crate::engine::observe::Progress),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    Load(Query),
    Run(Job),
    LoadTheme(String),
    Suspend,
    Quit,
}

/// How many audit events the Audit view reads at a time.
pub const AUDIT_PAGE: usize = 5_000;

pub fn update(s: &mut AppState, msg: Msg, now: DateTime<Utc>) -> Vec<Effect> {
    match msg {
        Msg::Key(k) if k.kind != KeyEventKind::Release => on_key(s, k, now),
        Msg::Key(_) => vec![],
        Msg::Mouse(m) => on_mouse(s, m, now),
        Msg::Resize(w, h) => {
            s.size = (w, h);
            let hgt = s.list_height();
            for c in s.cursors.values_mut() {
                c.scroll_into_view(hgt);
            }
            vec![]
        }
        Msg::Data(snap) => {
            on_data(s, *snap);
            vec![]
        }
        Msg::LoadFailed(e) => {
            say(
                s,
                Level::Error,
                format!("could not read the store: {e}"),
                now,
            );
            vec![]
        }
        Msg::Done { job, result } => {
            s.busy = s.busy.saturating_sub(1);
            reconcile::on_done(s, &job, &result, now);
            match result {
                Ok(text) => say(s, Level::Ok, text, now),
                Err(e) => say(
                    s,
                    Level::Error,
                    format!("{} failed: {e}", job.describe()),
                    now,
                ),
            }
            if matches!(job, Job::TestConnection(_)) {
                return vec![Effect::Load(query_with_credentials(s))];
            }
            vec![Effect::Load(query(s))]
        }
        Msg::Theme(t) => match *t {
            Ok(t) => {
                say(s, Level::Info, format!("theme {}", t.name), now);
                s.theme = t;
                vec![]
            }
            Err(e) => {
                say(s, Level::Error, e, now);
                vec![]
            }
        },
        Msg::Event(text) => {
            s.events.push((now, text.clone()));
            if s.events.len() > 50 {
                s.events.remove(0);
            }
            // A job's result stays readable for half a minute (on a busy demo, events
            // arrive every second or two); events do not push it away.
            let keep = s.status.as_ref().is_some_and(|m| {
                m.level != Level::Info && (now - m.at) < chrono::Duration::seconds(30)
            });
            if !keep {
                say(s, Level::Info, text, now);
            }
            vec![]
        }
        Msg::Progress(p) => {
            reconcile::on_progress(s, p, now);
            vec![]
        }
        Msg::Tick => {
            if s.frozen {
                vec![]
            } else {
                vec![Effect::Load(query(s))]
            }
        }
    }
}

fn say(s: &mut AppState, level: Level, text: String, now: DateTime<Utc>) {
    s.status = Some(StatusMessage {
        text,
        level,
        at: now,
    });
}

/// What the current page needs from the store.
pub fn query(s: &AppState) -> Query {
    let mut q = Query {
        people: s.view() == ViewId::People,
        ..Query::default()
    };
    if s.stack.len() == 1 && s.view() == ViewId::People {
        // The detail pane shows the selected person's access matrix.
        q.person = key_at(s, PageKey::People, s.cursor(PageKey::People).index);
    }
    if s.stack.len() == 1 && s.view() == ViewId::Queue {
        q.names = queue_people_in_view(s);
    }
    if s.view() == ViewId::Reconcile {
        q.reconcile = true;
        q.names = reconcile::people_in_view(s);
    }
    if s.view() == ViewId::Audit {
        let f = s.filter(ViewId::Audit);
        q.audit = Some(AuditQuery {
            filter: if f.inverse || f.fuzzy {
                String::new()
            } else {
                f.text
            },
            limit: AUDIT_PAGE,
        });
    }
    for p in &s.stack {
        match p {
            Page::Person(id) => q.person = Some(id.clone()),
            Page::Cell {
                person,
                system,
                entitlement,
            } => {
                q.cell = Some((person.clone(), system.clone(), entitlement.clone()));
            }
            Page::Operation(id) => q.op = Some(*id),
            Page::View(_) | Page::Finding(_) => {}
        }
    }
    q
}

/// The people on the Queue's rows on screen, and a page either side (so that scrolling
/// shows names at once), each once: the loader reads only their names.
fn queue_people_in_view(s: &AppState) -> Vec<String> {
    let (first, height) = match s.hits.lists.iter().find(|l| l.key == PageKey::Queue) {
        Some(l) => (l.first, l.rows.height as usize),
        // Not drawn yet: where the cursor says the page is.
        None => (s.cursor(PageKey::Queue).offset, s.list_height()),
    };
    let rows = s.queue_rows();
    let start = first.saturating_sub(height).min(rows.len());
    let end = first.saturating_add(2 * height).min(rows.len());
    let mut seen = std::collections::HashSet::new();
    rows[start..end]
        .iter()
        .filter(|o| seen.insert(o.person_id.as_str()))
        .map(|o| o.person_id.clone())
        .take(super::data::MAX_NAMES)
        .collect()
}

fn query_with_credentials(s: &AppState) -> Query {
    Query {
        credentials: true,
        ..query(s)
    }
}

fn on_data(s: &mut AppState, mut snap: Snapshot) {
    if snap.unchanged {
        // The rows are the ones already shown: keep cursors and derived views as they are.
        s.last_updated = snap.taken_at;
        s.snapshot.taken_at = snap.taken_at;
        s.snapshot.systems = snap.systems;
        s.snapshot.load_time = snap.load_time;
        return;
    }
    let people_changed = snap.people.is_some();
    if let Some(p) = snap.people.take() {
        s.people = p;
    }
    s.last_updated = snap.taken_at;
    s.snapshot = snap;
    if people_changed {
        s.rebuild_people_view();
        sync_people(s);
    }
    sync_all(s);
}

fn sync_people(s: &mut AppState) {
    let rows = &s.people.rows;
    let keys = s.people_view.iter().map(|&i| rows[i as usize].id.as_str());
    let c = s.cursors.entry(PageKey::People).or_default();
    c.sync(keys);
    let h = s.list_height();
    if let Some(c) = s.cursors.get_mut(&PageKey::People) {
        c.scroll_into_view(h);
    }
}

/// Re-find every selected id after the data changed.
fn sync_all(s: &mut AppState) {
    let h = s.list_height();
    let systems: Vec<String> = s.snapshot.systems.iter().map(|r| r.name.clone()).collect();
    s.cursors
        .entry(PageKey::Overview)
        .or_default()
        .sync(systems.iter().map(String::as_str));
    let names: Vec<String> = s.system_names().into_iter().map(str::to_string).collect();
    s.cursors
        .entry(PageKey::Systems)
        .or_default()
        .sync(names.iter().map(String::as_str));
    // The queue can hold tens of thousands of rows: find the selected id without
    // formatting every row's.
    let ids: Vec<i64> = s.queue_rows().iter().map(|o| o.id).collect();
    let c = s.cursors.entry(PageKey::Queue).or_default();
    let want = c.key.as_deref().and_then(|k| k.parse::<i64>().ok());
    match want.and_then(|w| ids.iter().position(|&id| id == w)) {
        Some(i) => c.index = i,
        None if ids.is_empty() => {
            c.index = 0;
            c.offset = 0;
        }
        None => {
            c.index = c.index.min(ids.len() - 1);
            c.key = Some(ids[c.index].to_string());
        }
    }
    let g: Vec<String> = s.snapshot.groups.iter().map(|g| g.key.clone()).collect();
    s.cursors
        .entry(PageKey::Groups)
        .or_default()
        .sync(g.iter().map(String::as_str));
    let a: Vec<String> = s.approval_rows().iter().map(|a| a.id.to_string()).collect();
    s.cursors
        .entry(PageKey::Approvals)
        .or_default()
        .sync(a.iter().map(String::as_str));
    reconcile::sync(s);
    let au: Vec<String> = s.audit_rows().iter().map(|a| a.seq.to_string()).collect();
    s.cursors
        .entry(PageKey::Audit)
        .or_default()
        .sync(au.iter().map(String::as_str));
    // Marks of rows that are gone (done, decided) are dropped.
    let live_ops: std::collections::HashSet<i64> = s.snapshot.queue.iter().map(|o| o.id).collect();
    if let Some(m) = s.marks.get_mut(&ViewId::Queue) {
        m.retain(|id| live_ops.contains(id));
    }
    let live_appr: std::collections::HashSet<i64> =
        s.snapshot.approvals.iter().map(|a| a.id).collect();
    if let Some(m) = s.marks.get_mut(&ViewId::Approvals) {
        m.retain(|id| live_appr.contains(id));
    }
    if let Some(m) = &s.snapshot.matrix {
        let rows = m.rows.len().max(1);
        let cols = m.systems.len().max(1);
        s.matrix_at = (s.matrix_at.0.min(rows - 1), s.matrix_at.1.min(cols - 1));
    }
    for c in s.cursors.values_mut() {
        c.scroll_into_view(h);
    }
}

/// The list the cursor moves in on the current page.
pub fn list_key(s: &AppState) -> PageKey {
    match s.page() {
        Page::View(ViewId::Overview) => PageKey::Overview,
        Page::View(ViewId::People) => PageKey::People,
        Page::View(ViewId::Queue) => match s.queue_pane {
            QueuePane::Ops => PageKey::Queue,
            QueuePane::Groups => PageKey::Groups,
        },
        Page::View(ViewId::Approvals) => PageKey::Approvals,
        Page::View(ViewId::Audit) => PageKey::Audit,
        Page::View(ViewId::Systems) => PageKey::Systems,
        Page::View(ViewId::Reconcile) => PageKey::Findings,
        _ => PageKey::Detail,
    }
}

fn list_len(s: &AppState, k: PageKey) -> usize {
    match k {
        PageKey::Overview => s.snapshot.systems.len(),
        PageKey::People => s.people_view.len(),
        PageKey::Queue => s.queue_rows().len(),
        PageKey::Groups => s.snapshot.groups.len(),
        PageKey::Approvals => s.approval_rows().len(),
        PageKey::Audit => s.audit_rows().len(),
        PageKey::Systems => s.system_names().len(),
        PageKey::Findings => s.finding_rows().len(),
        PageKey::Detail => usize::MAX / 2,
    }
}

fn key_at(s: &AppState, k: PageKey, i: usize) -> Option<String> {
    match k {
        PageKey::Overview => s.snapshot.systems.get(i).map(|r| r.name.clone()),
        PageKey::People => s
            .people_view
            .get(i)
            .map(|&ix| s.people.rows[ix as usize].id.clone()),
        PageKey::Queue => s.queue_rows().get(i).map(|o| o.id.to_string()),
        PageKey::Groups => s.snapshot.groups.get(i).map(|g| g.key.clone()),
        PageKey::Approvals => s.approval_rows().get(i).map(|a| a.id.to_string()),
        PageKey::Audit => s.audit_rows().get(i).map(|a| a.seq.to_string()),
        PageKey::Systems => s.system_names().get(i).map(|n| n.to_string()),
        PageKey::Findings => s.finding_rows().get(i).map(|f| f.id.to_string()),
        PageKey::Detail => None,
    }
}

fn move_cursor(s: &mut AppState, delta: isize, absolute: Option<usize>) {
    if s.page().kind() == PageKind::Person {
        if let Some(m) = &s.snapshot.matrix {
            let rows = m.rows.len().max(1) as isize;
            let r = match absolute {
                Some(0) => 0,
                Some(_) => rows - 1,
                None => (s.matrix_at.0 as isize + delta).clamp(0, rows - 1),
            };
            s.matrix_at.0 = r as usize;
        }
        return;
    }
    let k = list_key(s);
    let len = list_len(s, k);
    let h = s.list_height();
    let c = s.cursors.entry(k).or_default();
    if k == PageKey::Detail {
        // Detail pages scroll.
        let o = match absolute {
            Some(0) => 0,
            Some(_) => usize::MAX / 4,
            None => (c.offset as isize + delta).max(0) as usize,
        };
        c.offset = o;
        c.index = o;
        return;
    }
    if len == 0 {
        return;
    }
    let i = match absolute {
        Some(a) => a.min(len - 1),
        None => (c.index as isize + delta).clamp(0, len as isize - 1) as usize,
    };
    c.index = i;
    c.scroll_into_view(h);
    let key = key_at(s, k, i);
    if let Some(c) = s.cursors.get_mut(&k) {
        c.key = key;
    }
}

fn selected_key(s: &AppState, k: PageKey) -> Option<String> {
    let c = s.cursor(k);
    key_at(s, k, c.index)
}

fn selected_id(s: &AppState, k: PageKey) -> Option<i64> {
    selected_key(s, k).and_then(|k| k.parse().ok())
}

fn go(s: &mut AppState, v: ViewId) -> Vec<Effect> {
    s.stack = vec![Page::View(v)];
    s.modal = None;
    let mut q = query(s);
    if v == ViewId::Systems {
        q.credentials = true;
    }
    vec![Effect::Load(q)]
}

fn push(s: &mut AppState, p: Page) -> Vec<Effect> {
    if matches!(p, Page::Cell { .. } | Page::Operation(_) | Page::Finding(_)) {
        s.cursors.insert(PageKey::Detail, Cursor::default());
    }
    if let Page::Person(_) = p {
        s.matrix_at = (0, 0);
    }
    s.stack.push(p);
    vec![Effect::Load(query(s))]
}

fn on_key(s: &mut AppState, k: KeyEvent, now: DateTime<Utc>) -> Vec<Effect> {
    if s.prompt.is_some() {
        return on_prompt_key(s, k, now);
    }
    if s.modal.is_some() {
        return on_modal_key(s, k, now);
    }
    let Some(b) = keymap::lookup(&k, s.page().kind(), s.readonly) else {
        return vec![];
    };
    act(s, b.action, now)
}

/// Carry out one keymap action.
pub fn act(s: &mut AppState, a: Action, now: DateTime<Utc>) -> Vec<Effect> {
    let h = s.list_height() as isize;
    match a {
        Action::Quit => {
            s.quit = true;
            vec![Effect::Quit]
        }
        Action::Help => {
            s.modal = Some(Modal::Help { scroll: 0 });
            vec![]
        }
        Action::CommandMode => {
            s.prompt = Some(Prompt::Command {
                input: Input::default(),
                history: None,
                completions: Vec::new(),
                completion: 0,
            });
            vec![]
        }
        Action::FilterMode => {
            let v = s.view();
            let before = s.filter(v);
            s.prompt = Some(Prompt::Filter {
                input: Input::new(before.raw()),
                before,
            });
            vec![]
        }
        Action::Back => {
            if s.stack.len() > 1 {
                s.stack.pop();
                vec![Effect::Load(query(s))]
            } else if !s.filter(s.view()).is_empty() {
                let v = s.view();
                set_filter(s, v, Filter::default());
                vec![Effect::Load(query(s))]
            } else if !s.marks(s.view()).is_empty() {
                s.marks.remove(&s.view());
                vec![]
            } else {
                vec![]
            }
        }
        Action::Go(v) => go(s, v),
        Action::Up => {
            move_cursor(s, -1, None);
            vec![]
        }
        Action::Down => {
            move_cursor(s, 1, None);
            vec![]
        }
        Action::PageUp => {
            move_cursor(s, -h, None);
            vec![]
        }
        Action::PageDown => {
            move_cursor(s, h, None);
            vec![]
        }
        Action::Top => {
            move_cursor(s, 0, Some(0));
            vec![]
        }
        Action::Bottom => {
            move_cursor(s, 0, Some(usize::MAX));
            vec![]
        }
        Action::Left | Action::Right => {
            if s.page().kind() == PageKind::Person
                && let Some(m) = &s.snapshot.matrix
            {
                let cols = m.systems.len().max(1) as isize;
                let d = if a == Action::Left { -1 } else { 1 };
                s.matrix_at.1 = (s.matrix_at.1 as isize + d).clamp(0, cols - 1) as usize;
            } else if s.page().kind() == PageKind::Queue {
                return act(s, Action::ToggleGroups, now);
            }
            vec![]
        }
        Action::Open => open(s),
        Action::Mark => {
            let v = s.view();
            if s.stack.len() == 1
                && matches!(v, ViewId::Queue | ViewId::Approvals | ViewId::Reconcile)
                && list_key(s) != PageKey::Groups
                && let Some(id) = selected_id(s, list_key(s))
            {
                let m = s.marks.entry(v).or_default();
                if !m.remove(&id) {
                    m.insert(id);
                }
                move_cursor(s, 1, None);
            }
            vec![]
        }
        Action::MarkAll => {
            let v = s.view();
            let ids: Vec<i64> = match v {
                ViewId::Queue => s.queue_rows().iter().map(|o| o.id).collect(),
                ViewId::Approvals => s.approval_rows().iter().map(|a| a.id).collect(),
                ViewId::Reconcile if s.stack.len() == 1 => {
                    s.finding_rows().iter().map(|f| f.id).collect()
                }
                _ => vec![],
            };
            if !ids.is_empty() {
                s.marks.entry(v).or_default().extend(ids);
            }
            vec![]
        }
        Action::ClearMarks => {
            s.marks.remove(&s.view());
            vec![]
        }
        Action::Freeze => {
            s.frozen = !s.frozen;
            let text = if s.frozen {
                "frozen: live updates paused (f to resume)"
            } else {
                "live updates resumed"
            };
            say(s, Level::Info, text.into(), now);
            if s.frozen {
                vec![]
            } else {
                vec![Effect::Load(query(s))]
            }
        }
        Action::Refresh => vec![Effect::Load(query_with_credentials(s))],
        Action::Approve | Action::Reject => {
            let approve = a == Action::Approve;
            let ids = targets(s, ViewId::Approvals, PageKey::Approvals);
            if ids.is_empty() {
                say(s, Level::Warn, "no pending approval selected".into(), now);
                return vec![];
            }
            let verb = if approve { "approving" } else { "rejecting" };
            s.modal = Some(Modal::Input {
                title: format!("Reason for {verb} {} grant(s)", ids.len()),
                input: Input::default(),
                purpose: InputPurpose::Reason { ids, approve },
            });
            vec![]
        }
        Action::Retry | Action::Skip | Action::Cancel => {
            let verb = match a {
                Action::Retry => OpVerb::Retry,
                Action::Skip => OpVerb::Skip,
                _ => OpVerb::Cancel,
            };
            confirm_ops(s, verb, now);
            vec![]
        }
        Action::ToggleGroups => {
            s.queue_pane = match s.queue_pane {
                QueuePane::Ops => QueuePane::Groups,
                QueuePane::Groups => QueuePane::Ops,
            };
            vec![]
        }
        Action::VerifyAudit => run(s, Job::VerifyAudit),
        Action::TestConnection => match selected_key(s, PageKey::Systems) {
            Some(sys) => run(s, Job::TestConnection(sys)),
            None => vec![],
        },
        Action::Sort => {
            s.people_sort = s.people_sort.next();
            s.rebuild_people_view();
            sync_people(s);
            say(
                s,
                Level::Info,
                format!("people sorted by {}", s.people_sort.label()),
                now,
            );
            vec![]
        }
        Action::NextTheme => {
            if s.themes.is_empty() {
                return vec![];
            }
            let i = s
                .themes
                .iter()
                .position(|t| *t == s.theme.name)
                .map(|i| (i + 1) % s.themes.len())
                .unwrap_or(0);
            vec![Effect::LoadTheme(s.themes[i].clone())]
        }
        Action::Suspend => vec![Effect::Suspend],
        Action::ObserveAll
        | Action::ObserveSystem
        | Action::Enforce
        | Action::Accept
        | Action::Ignore
        | Action::EnforceGroup
        | Action::AcceptGroup
        | Action::IgnoreGroup
        | Action::Export => reconcile::act(s, a, now),
    }
}

fn run(s: &mut AppState, job: Job) -> Vec<Effect> {
    s.busy += 1;
    if let Job::Observe { .. } = job {
        s.observing = true;
    }
    vec![Effect::Run(job)]
}

/// Marked rows if any, else the selected one.
fn targets(s: &AppState, v: ViewId, k: PageKey) -> Vec<i64> {
    let marks = s.marks(v);
    if !marks.is_empty() {
        return marks.into_iter().collect();
    }
    selected_id(s, k).into_iter().collect()
}

fn confirm_ops(s: &mut AppState, verb: OpVerb, now: DateTime<Utc>) {
    let (title, lines, job) = match s.page().clone() {
        Page::Operation(id) => {
            let line = s
                .snapshot
                .op
                .as_ref()
                .filter(|d| d.op.id == id)
                .map(|d| describe_op(&d.op))
                .unwrap_or_else(|| format!("#{id}"));
            (
                format!("{} operation #{id}?", verb.word()),
                vec![line],
                Job::Ops {
                    ids: vec![id],
                    verb,
                },
            )
        }
        Page::View(ViewId::Queue) if s.queue_pane == QueuePane::Groups => {
            let c = s.cursor(PageKey::Groups);
            let Some(g) = s.snapshot.groups.get(c.index).cloned() else {
                say(s, Level::Warn, "no failure group selected".into(), now);
                return;
            };
            let mut lines = vec![format!(
                "{} · {} · {} — {} operation(s)",
                g.system,
                g.class,
                g.code_or_message,
                g.op_ids.len()
            )];
            lines.extend(list_ops(s, &g.op_ids));
            (
                format!("{} the whole group?", verb.word()),
                lines,
                Job::Group { key: g.key, verb },
            )
        }
        Page::View(ViewId::Queue) => {
            let ids = targets(s, ViewId::Queue, PageKey::Queue);
            if ids.is_empty() {
                say(s, Level::Warn, "no operation selected".into(), now);
                return;
            }
            (
                format!("{} {} operation(s)?", verb.word(), ids.len()),
                list_ops(s, &ids),
                Job::Ops { ids, verb },
            )
        }
        _ => return,
    };
    s.modal = Some(Modal::Confirm { title, lines, job });
}

fn describe_op(o: &crate::store::queue::OpRow) -> String {
    format!(
        "#{} {} {} {}{} [{}]",
        o.id,
        o.system,
        o.kind.as_str(),
        o.person_id,
        o.entitlement
            .as_deref()
            .map(|e| format!(" {e}"))
            .unwrap_or_default(),
        o.status.as_str()
    )
}

/// The affected operations, one line each (at most 12, then a count).
fn list_ops(s: &AppState, ids: &[i64]) -> Vec<String> {
    let by_id: std::collections::HashMap<i64, &crate::store::queue::OpRow> =
        s.snapshot.queue.iter().map(|o| (o.id, o)).collect();
    let mut out: Vec<String> = ids
        .iter()
        .take(12)
        .map(|id| {
            by_id
                .get(id)
                .map(|o| describe_op(o))
                .unwrap_or_else(|| format!("#{id}"))
        })
        .collect();
    if ids.len() > 12 {
        out.push(format!("… and {} more", ids.len() - 12));
    }
    out
}

fn open(s: &mut AppState) -> Vec<Effect> {
    match s.page().clone() {
        Page::View(ViewId::Overview) => {
            if let Some(sys) = selected_key(s, PageKey::Overview) {
                s.stack = vec![Page::View(ViewId::Queue)];
                set_filter(s, ViewId::Queue, Filter::parse(&sys));
                return vec![Effect::Load(query(s))];
            }
            vec![]
        }
        Page::View(ViewId::People) => match selected_key(s, PageKey::People) {
            Some(id) => push(s, Page::Person(id)),
            None => vec![],
        },
        Page::View(ViewId::Queue) => {
            let id = match s.queue_pane {
                QueuePane::Ops => selected_id(s, PageKey::Queue),
                QueuePane::Groups => s
                    .snapshot
                    .groups
                    .get(s.cursor(PageKey::Groups).index)
                    .and_then(|g| g.op_ids.first().copied()),
            };
            match id {
                Some(id) => push(s, Page::Operation(id)),
                None => vec![],
            }
        }
        Page::View(ViewId::Approvals) => {
            let c = s.cursor(PageKey::Approvals);
            match s.approval_rows().get(c.index).map(|a| a.person_id.clone()) {
                Some(p) => push(s, Page::Person(p)),
                None => vec![],
            }
        }
        Page::Person(person) => {
            // Until the page's own matrix has loaded, the snapshot may hold another
            // person's (the list's detail pane): never open a cell from it.
            let Some(m) = s.snapshot.matrix.as_ref().filter(|m| m.person.id == person) else {
                return vec![];
            };
            let (r, c) = s.matrix_at;
            match m.entitlement_at(r, c) {
                Some((system, entitlement)) => push(
                    s,
                    Page::Cell {
                        person,
                        system,
                        entitlement,
                    },
                ),
                None => vec![],
            }
        }
        Page::View(ViewId::Reconcile) => reconcile::open(s),
        Page::Cell { .. } => {
            // Open the newest operation behind the cell.
            let id = s
                .snapshot
                .cell
                .as_ref()
                .and_then(|c| c.ops.first())
                .map(|o| o.op.id);
            match id {
                Some(id) => push(s, Page::Operation(id)),
                None => vec![],
            }
        }
        _ => vec![],
    }
}

fn set_filter(s: &mut AppState, v: ViewId, f: Filter) {
    if f.is_empty() {
        s.filters.remove(&v);
    } else {
        s.filters.insert(v, f);
    }
    if v == ViewId::People {
        s.rebuild_people_view();
        sync_people(s);
    }
    sync_all(s);
}

fn on_prompt_key(s: &mut AppState, k: KeyEvent, now: DateTime<Utc>) -> Vec<Effect> {
    let Some(prompt) = s.prompt.take() else {
        return vec![];
    };
    match prompt {
        Prompt::Filter { mut input, before } => {
            let v = s.view();
            match k.code {
                KeyCode::Esc => {
                    set_filter(s, v, before);
                    vec![Effect::Load(query(s))]
                }
                KeyCode::Enter => {
                    let f = Filter::parse(input.value());
                    set_filter(s, v, f);
                    vec![Effect::Load(query(s))]
                }
                _ => {
                    input.handle_event(&Event::Key(k));
                    let f = Filter::parse(input.value());
                    s.prompt = Some(Prompt::Filter { input, before });
                    set_filter(s, v, f);
                    if v == ViewId::Audit {
                        vec![Effect::Load(query(s))]
                    } else {
                        vec![]
                    }
                }
            }
        }
        Prompt::Command {
            mut input,
            mut history,
            mut completions,
            mut completion,
        } => match k.code {
            KeyCode::Esc => vec![],
            KeyCode::Enter => {
                let line = input.value().trim().to_string();
                if !line.is_empty() {
                    s.history.retain(|h| *h != line);
                    s.history.push(line.clone());
                }
                command(s, &line, now)
            }
            KeyCode::Tab => {
                let value = input.value().to_string();
                if completions.is_empty() || !completions.contains(&value.as_str()) {
                    completions = keymap::complete(value.trim());
                    completion = 0;
                } else {
                    completion = (completion + 1) % completions.len();
                }
                if let Some(c) = completions.get(completion) {
                    input = Input::new(c.to_string());
                }
                s.prompt = Some(Prompt::Command {
                    input,
                    history,
                    completions,
                    completion,
                });
                vec![]
            }
            KeyCode::Up | KeyCode::Down => {
                if !s.history.is_empty() {
                    let last = s.history.len() - 1;
                    let pos = match (history, k.code) {
                        (None, KeyCode::Up) => Some(last),
                        (None, _) => None,
                        (Some(p), KeyCode::Up) => Some(p.saturating_sub(1)),
                        (Some(p), _) if p >= last => None,
                        (Some(p), _) => Some(p + 1),
                    };
                    history = pos;
                    input = Input::new(pos.map(|p| s.history[p].clone()).unwrap_or_default());
                }
                s.prompt = Some(Prompt::Command {
                    input,
                    history,
                    completions,
                    completion,
                });
                vec![]
            }
            _ => {
                input.handle_event(&Event::Key(k));
                s.prompt = Some(Prompt::Command {
                    input,
                    history: None,
                    completions: Vec::new(),
                    completion: 0,
                });
                vec![]
            }
        },
    }
}

/// Run a `:` command line.
pub fn command(s: &mut AppState, line: &str, now: DateTime<Utc>) -> Vec<Effect> {
    let mut words = line.split_whitespace();
    let Some(word) = words.next() else {
        return vec![];
    };
    let rest: Vec<&str> = words.collect();
    let arg = rest.join(" ");
    let Some(cmd) = keymap::resolve(word) else {
        let near = keymap::complete(&word[..word.len().min(2)]);
        let hint = if near.is_empty() {
            "type :help for the list".to_string()
        } else {
            format!("did you mean {}?", near.join(", "))
        };
        say(
            s,
            Level::Error,
            format!("unknown command {word:?}; {hint}"),
            now,
        );
        return vec![];
    };
    match cmd {
        "overview" => go(s, ViewId::Overview),
        "people" => {
            let mut e = go(s, ViewId::People);
            if !arg.is_empty() {
                set_filter(s, ViewId::People, Filter::parse(&arg));
                e = vec![Effect::Load(query(s))];
            }
            e
        }
        "queue" | "failures" => {
            let e = go(s, ViewId::Queue);
            s.queue_pane = if cmd == "failures" {
                QueuePane::Groups
            } else {
                QueuePane::Ops
            };
            if !arg.is_empty() {
                set_filter(s, ViewId::Queue, Filter::parse(&arg));
            }
            e
        }
        "approvals" => go(s, ViewId::Approvals),
        "audit" => {
            if !arg.is_empty() {
                set_filter(s, ViewId::Audit, Filter::parse(&arg));
            }
            go(s, ViewId::Audit)
        }
        "systems" => go(s, ViewId::Systems),
        "reconcile" => {
            if !arg.is_empty() {
                set_filter(s, ViewId::Reconcile, Filter::parse(&arg));
            }
            go(s, ViewId::Reconcile)
        }
        "verify" => run(s, Job::VerifyAudit),
        "theme" => {
            if arg.is_empty() {
                say(
                    s,
                    Level::Info,
                    format!("themes: {} (now {})", s.themes.join(", "), s.theme.name),
                    now,
                );
                vec![]
            } else {
                vec![Effect::LoadTheme(arg)]
            }
        }
        "freeze" => act(s, Action::Freeze, now),
        "help" => act(s, Action::Help, now),
        "quit" => act(s, Action::Quit, now),
        _ => vec![],
    }
}

fn on_modal_key(s: &mut AppState, k: KeyEvent, now: DateTime<Utc>) -> Vec<Effect> {
    let Some(modal) = s.modal.take() else {
        return vec![];
    };
    match modal {
        Modal::Help { scroll } => {
            match k.code {
                KeyCode::Esc | KeyCode::Char('?') | KeyCode::Char('q') | KeyCode::Enter => {}
                KeyCode::Down | KeyCode::Char('j') => {
                    s.modal = Some(Modal::Help {
                        scroll: scroll.saturating_add(1),
                    })
                }
                KeyCode::Up | KeyCode::Char('k') => {
                    s.modal = Some(Modal::Help {
                        scroll: scroll.saturating_sub(1),
                    })
                }
                _ => s.modal = Some(Modal::Help { scroll }),
            }
            vec![]
        }
        Modal::Confirm { title, lines, job } => match k.code {
            KeyCode::Char('y') | KeyCode::Char('Y') => {
                if let Job::Ops { .. } | Job::Decide { .. } | Job::Findings { .. } = job {
                    // The rows acted on are no longer marked.
                    s.marks.remove(&s.view());
                }
                run(s, job)
            }
            KeyCode::Esc | KeyCode::Char('n') | KeyCode::Char('N') | KeyCode::Char('q') => {
                say(s, Level::Info, "cancelled; nothing was changed".into(), now);
                vec![]
            }
            _ => {
                s.modal = Some(Modal::Confirm { title, lines, job });
                vec![]
            }
        },
        Modal::Input {
            title,
            mut input,
            purpose,
        } => match k.code {
            KeyCode::Esc => {
                say(s, Level::Info, "cancelled; nothing was changed".into(), now);
                vec![]
            }
            KeyCode::Enter if !matches!(purpose, InputPurpose::Reason { .. }) => {
                reconcile::on_input(s, title, input, purpose, now)
            }
            KeyCode::Enter => {
                let reason = input.value().trim().to_string();
                if reason.is_empty() {
                    say(s, Level::Warn, "a reason is required".into(), now);
                    s.modal = Some(Modal::Input {
                        title,
                        input,
                        purpose,
                    });
                    return vec![];
                }
                let InputPurpose::Reason { ids, approve } = purpose else {
                    return vec![];
                };
                let by_id: std::collections::HashMap<i64, &super::data::ApprovalRow> =
                    s.snapshot.approvals.iter().map(|a| (a.id, a)).collect();
                let mut lines: Vec<String> = ids
                    .iter()
                    .take(12)
                    .map(|id| match by_id.get(id) {
                        Some(a) => format!(
                            "#{} {} ({}) → {} · rule {} · risk {}",
                            a.id, a.person_name, a.person_id, a.entitlement, a.rule, a.risk
                        ),
                        None => format!("#{id}"),
                    })
                    .collect();
                if ids.len() > 12 {
                    lines.push(format!("… and {} more", ids.len() - 12));
                }
                lines.push(format!("reason: {reason}"));
                s.modal = Some(Modal::Confirm {
                    title: format!(
                        "{} {} grant(s)?",
                        if approve { "Approve" } else { "Reject" },
                        ids.len()
                    ),
                    lines,
                    job: Job::Decide {
                        ids,
                        approve,
                        reason,
                    },
                });
                vec![]
            }
            _ => {
                input.handle_event(&Event::Key(k));
                s.modal = Some(Modal::Input {
                    title,
                    input,
                    purpose,
                });
                vec![]
            }
        },
    }
}

/// Mouse: the wheel moves the cursor, a click on a tab opens it, a click on a row selects it
/// (and, on the Queue, focuses its pane). Clicks are hit-tested against the layout the
/// last frame was drawn with (`s.hits`).
fn on_mouse(s: &mut AppState, m: MouseEvent, now: DateTime<Utc>) -> Vec<Effect> {
    if !s.mouse || s.modal.is_some() || s.prompt.is_some() {
        return vec![];
    }
    match m.kind {
        MouseEventKind::ScrollDown => act(s, Action::Down, now),
        MouseEventKind::ScrollUp => act(s, Action::Up, now),
        MouseEventKind::Down(MouseButton::Left) => {
            if let Some(v) = s.hits.tab_at(m.column, m.row) {
                return go(s, v);
            }
            if let Some((k, i)) = s.hits.row_at(m.column, m.row) {
                select_row(s, k, i);
            }
            vec![]
        }
        _ => vec![],
    }
}

/// Select row `i` of list `k`, if that list is on the page shown and has such a row.
fn select_row(s: &mut AppState, k: PageKey, i: usize) {
    let queue = *s.page() == Page::View(ViewId::Queue);
    let shown = k == list_key(s) || (queue && matches!(k, PageKey::Queue | PageKey::Groups));
    if !shown || k == PageKey::Detail || i >= list_len(s, k) {
        return;
    }
    if queue {
        s.queue_pane = if k == PageKey::Groups {
            QueuePane::Groups
        } else {
            QueuePane::Ops
        };
    }
    let key = key_at(s, k, i);
    let c = s.cursors.entry(k).or_default();
    c.index = i;
    c.key = key;
}

/// Keys for tests and the e2e driver: a plain key press.
pub fn key(code: KeyCode) -> Msg {
    Msg::Key(KeyEvent::new(code, KeyModifiers::NONE))
}

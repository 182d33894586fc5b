//! The console's state: which page is open, where each cursor is (by id, never by row
//! number, so live updates do not move it), filters, marks, dialogs and the last snapshot.
//! Changed only by the reducer; drawn by the views.

use super::data::{ApprovalRow, AuditRow, PeopleIndex, Snapshot};
use super::theme::Theme;
use crate::store::queue::OpRow;
use chrono::{DateTime, Utc};
use ratatui::layout::{Position, Rect};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use tui_input::Input;

mod reconcile;
pub use reconcile::FindingVerb;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ViewId {
    Overview,
    People,
    Queue,
    Approvals,
    Audit,
    Systems,
    Reconcile,
}

impl ViewId {
    pub const ALL: [ViewId; 7] = [
        ViewId::Overview,
        ViewId::People,
        ViewId::Queue,
        ViewId::Approvals,
        ViewId::Audit,
        ViewId::Systems,
        ViewId::Reconcile,
    ];

    pub fn title(self) -> &'static str {
        match self {
            ViewId::Overview => "Overview",
            ViewId::People => "People",
            ViewId::Queue => "Queue",
            ViewId::Approvals => "Approvals",
            ViewId::Audit => "Audit",
            ViewId::Systems => "Systems",
            ViewId::Reconcile => "Reconcile",
        }
    }

    pub fn command(self) -> &'static str {
        match self {
            ViewId::Overview => "overview",
            ViewId::People => "people",
            ViewId::Queue => "queue",
            ViewId::Approvals => "approvals",
            ViewId::Audit => "audit",
            ViewId::Systems => "systems",
            ViewId::Reconcile => "reconcile",
        }
    }
}

/// What kind of page is on top; keys are bound per kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PageKind {
    Overview,
    People,
    Queue,
    Approvals,
    Audit,
    Systems,
    Reconcile,
    Person,
    Cell,
    Operation,
    Finding,
}

impl PageKind {
    pub const ALL: [PageKind; 11] = [
        PageKind::Overview,
        PageKind::People,
        PageKind::Queue,
        PageKind::Approvals,
        PageKind::Audit,
        PageKind::Systems,
        PageKind::Reconcile,
        PageKind::Person,
        PageKind::Cell,
        PageKind::Operation,
        PageKind::Finding,
    ];

    /// Every page has rows to move through.
    pub fn is_list(self) -> bool {
        true
    }
}

/// One entry of the breadcrumb stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Page {
    View(ViewId),
    /// A person's access matrix.
    Person(String),
    /// Why one cell of the matrix is what it is.
    Cell {
        person: String,
        system: String,
        entitlement: Option<String>,
    },
    Operation(i64),
    /// One finding of the Reconcile view (one without a person to open).
    Finding(i64),
}

impl Page {
    pub fn kind(&self) -> PageKind {
        match self {
            Page::View(ViewId::Overview) => PageKind::Overview,
            Page::View(ViewId::People) => PageKind::People,
            Page::View(ViewId::Queue) => PageKind::Queue,
            Page::View(ViewId::Approvals) => PageKind::Approvals,
            Page::View(ViewId::Audit) => PageKind::Audit,
            Page::View(ViewId::Systems) => PageKind::Systems,
            Page::View(ViewId::Reconcile) => PageKind::Reconcile,
            Page::Person(_) => PageKind::Person,
            Page::Cell { .. } => PageKind::Cell,
            Page::Operation(_) => PageKind::Operation,
            Page::Finding(_) => PageKind::Finding,
        }
    }
}

/// A list cursor. `key` is the selected row's id; `index` follows it when rows move.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cursor {
    pub key: Option<String>,
    pub index: usize,
    pub offset: usize,
}

impl Cursor {
    /// Re-find the selected id among `keys`. If it is gone, stay at the same position.
    pub fn sync<'a>(&mut self, keys: impl ExactSizeIterator<Item = &'a str>) {
        let len = keys.len();
        if len == 0 {
            self.index = 0;
            self.offset = 0;
            return;
        }
        let mut at_index = None;
        let mut found = None;
        let want = self.key.as_deref();
        let clamp = self.index.min(len - 1);
        for (i, k) in keys.enumerate() {
            if Some(k) == want {
                found = Some(i);
                break;
            }
            if i == clamp {
                at_index = Some(k.to_string());
            }
        }
        match found {
            Some(i) => self.index = i,
            None => {
                self.index = clamp;
                self.key = at_index;
            }
        }
    }

    /// Keep the cursor on screen in a window of `height` rows.
    pub fn scroll_into_view(&mut self, height: usize) {
        let h = height.max(1);
        if self.index < self.offset {
            self.offset = self.index;
        } else if self.index >= self.offset + h {
            self.offset = self.index + 1 - h;
        }
    }
}

/// A `/` filter: plain substring, `!` inverse, `~` fuzzy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub text: String,
    pub inverse: bool,
    pub fuzzy: bool,
}

impl Filter {
    pub fn parse(raw: &str) -> Filter {
        let mut t = raw.trim_start();
        let mut inverse = false;
        let mut fuzzy = false;
        loop {
            if let Some(rest) = t.strip_prefix('!') {
                inverse = true;
                t = rest;
            } else if let Some(rest) = t.strip_prefix('~') {
                fuzzy = true;
                t = rest;
            } else {
                break;
            }
        }
        Filter {
            text: t.to_lowercase(),
            inverse,
            fuzzy,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    pub fn raw(&self) -> String {
        format!(
            "{}{}{}",
            if self.inverse { "!" } else { "" },
            if self.fuzzy { "~" } else { "" },
            self.text
        )
    }

    /// Whether any of `fields` matches (and the filter is not inverted), or none does (and
    /// it is). Case-insensitive.
    pub fn matches(&self, fields: &[&str]) -> bool {
        if self.text.is_empty() {
            return true;
        }
        let hit = fields.iter().any(|f| {
            if self.fuzzy {
                fuzzy_score(&self.text, f).is_some()
            } else {
                contains_ci(f, &self.text)
            }
        });
        hit != self.inverse
    }
}

fn contains_ci(hay: &str, needle_lower: &str) -> bool {
    if hay.is_ascii() && needle_lower.is_ascii() {
        hay.as_bytes()
            .windows(needle_lower.len().max(1))
            .any(|w| w.eq_ignore_ascii_case(needle_lower.as_bytes()))
            || needle_lower.is_empty()
    } else {
        hay.to_lowercase().contains(needle_lower)
    }
}

/// A subsequence match: every character of `needle` in order. Lower scores are better
/// (tighter matches).
pub fn fuzzy_score(needle: &str, hay: &str) -> Option<usize> {
    let mut chars = needle.chars().peekable();
    let mut first = None;
    let mut last = 0;
    for (i, c) in hay.chars().enumerate() {
        let Some(&n) = chars.peek() else { break };
        if c.to_lowercase().eq(n.to_lowercase()) {
            first.get_or_insert(i);
            last = i;
            chars.next();
        }
    }
    if chars.peek().is_some() {
        return None;
    }
    Some(last - first.unwrap_or(0))
}

/// How the people list is ordered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PeopleSort {
    #[default]
    Name,
    Department,
    Status,
    Id,
}

impl PeopleSort {
    pub fn next(self) -> PeopleSort {
        match self {
            PeopleSort::Name => PeopleSort::Department,
            PeopleSort::Department => PeopleSort::Status,
            PeopleSort::Status => PeopleSort::Id,
            PeopleSort::Id => PeopleSort::Name,
        }
    }
    pub fn label(self) -> &'static str {
        match self {
            PeopleSort::Name => "name",
            PeopleSort::Department => "department",
            PeopleSort::Status => "status",
            PeopleSort::Id => "id",
        }
    }
}

/// What an admin does to operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpVerb {
    Retry,
    Skip,
    Cancel,
}

impl OpVerb {
    pub fn word(self) -> &'static str {
        match self {
            OpVerb::Retry => "Retry",
            OpVerb::Skip => "Skip",
            OpVerb::Cancel => "Cancel",
        }
    }
}

/// Work the console asks the engine side to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Job {
    Decide {
        ids: Vec<i64>,
        approve: bool,
        reason: String,
    },
    Ops {
        ids: Vec<i64>,
        verb: OpVerb,
    },
    Group {
        key: String,
        verb: OpVerb,
    },
    VerifyAudit,
    TestConnection(String),
    /// Observe (all systems, or one) and reconcile the run.
    Observe {
        system: Option<String>,
    },
    /// Enforce, accept or ignore findings.
    Findings {
        ids: Vec<i64>,
        verb: FindingVerb,
        /// Accept: the reason and the expiry (YYYY-MM-DD).
        reason: Option<String>,
        until: Option<String>,
    },
    /// Write a run's findings as CSV into the home directory.
    ExportFindings {
        run: i64,
    },
}

impl Job {
    pub fn describe(&self) -> String {
        match self {
            Job::Decide { ids, approve, .. } => format!(
                "{} {} grant(s)",
                if *approve { "approving" } else { "rejecting" },
                ids.len()
            ),
            Job::Ops { ids, verb } => {
                format!("{} {} operation(s)", verb.word().to_lowercase(), ids.len())
            }
            Job::Group { key, verb } => format!("{} group {key}", verb.word().to_lowercase()),
            Job::VerifyAudit => "verifying the audit chain".into(),
            Job::TestConnection(s) => format!("testing the connection to {s}"),
            Job::Observe { system: None } => "observing every system".into(),
            Job::Observe { system: Some(s) } => format!("observing {s}"),
            Job::Findings { ids, verb, .. } => {
                format!("{} {} finding(s)", verb.word().to_lowercase(), ids.len())
            }
            Job::ExportFindings { run } => format!("exporting the findings of run {run}"),
        }
    }
}

/// What a text input is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputPurpose {
    /// The reason for approving or rejecting these approvals.
    Reason { ids: Vec<i64>, approve: bool },
    /// The reason for accepting these findings (the expiry is asked next).
    AcceptReason { ids: Vec<i64> },
    /// The expiry of accepting these findings, for `reason`.
    AcceptUntil { ids: Vec<i64>, reason: String },
}

#[derive(Debug, Clone)]
pub enum Modal {
    Help {
        scroll: u16,
    },
    Confirm {
        title: String,
        lines: Vec<String>,
        job: Job,
    },
    Input {
        title: String,
        input: Input,
        purpose: InputPurpose,
    },
}

/// The bottom line while typing a `:` command or a `/` filter.
#[derive(Debug, Clone)]
pub enum Prompt {
    Command {
        input: Input,
        /// Position in the history while browsing it with ↑/↓.
        history: Option<usize>,
        /// Completion candidates cycled with Tab.
        completions: Vec<&'static str>,
        completion: usize,
    },
    Filter {
        input: Input,
        /// The filter before typing started (Esc restores it).
        before: Filter,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Ok,
    Warn,
    Error,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusMessage {
    pub text: String,
    pub level: Level,
    pub at: DateTime<Utc>,
}

/// Which pane of the Queue view has the cursor.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum QueuePane {
    #[default]
    Ops,
    Groups,
}

pub struct AppState {
    pub stack: Vec<Page>,
    pub cursors: HashMap<PageKey, Cursor>,
    /// The access matrix cursor: (row label, system).
    pub matrix_at: (usize, usize),
    pub filters: HashMap<ViewId, Filter>,
    pub marks: HashMap<ViewId, BTreeSet<i64>>,
    pub queue_pane: QueuePane,
    pub people_sort: PeopleSort,
    pub frozen: bool,
    pub snapshot: Snapshot,
    pub people: Arc<PeopleIndex>,
    /// Indices into `people.rows`, filtered and sorted.
    pub people_view: Vec<u32>,
    pub last_updated: Option<DateTime<Utc>>,
    pub status: Option<StatusMessage>,
    pub readonly: bool,
    pub theme: Theme,
    pub themes: Vec<String>,
    pub history: Vec<String>,
    pub modal: Option<Modal>,
    pub prompt: Option<Prompt>,
    pub size: (u16, u16),
    pub quit: bool,
    /// Jobs sent and not yet answered.
    pub busy: usize,
    /// Shown on every page until dismissed (e.g. "credentials kept in memory").
    pub notices: Vec<String>,
    pub mouse: bool,
    pub actor: String,
    /// Recent events from outside the store (newest last).
    pub events: Vec<(DateTime<Utc>, String)>,
    /// Static facts about each configured system, from systems.toml.
    pub system_info: std::collections::BTreeMap<String, SystemInfo>,
    /// The console shows local time; stored times are UTC.
    pub utc_offset: chrono::FixedOffset,
    /// Where the last frame drew what a click can land on (from `views::draw`).
    pub hits: HitMap,
    /// An observation session is running (started from this console).
    pub observing: bool,
    /// The newest progress of each system's read in that session.
    pub observe_progress: std::collections::BTreeMap<String, crate::engine::observe::Progress>,
}

/// The layout a frame was drawn with, as far as the mouse cares: `views::draw` returns it
/// and the reducer hit-tests clicks against it, so nothing recomputes the layout.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HitMap {
    /// Each view tab and the cells its label covers.
    pub tabs: Vec<(ViewId, Rect)>,
    /// Each list on screen.
    pub lists: Vec<ListHit>,
}

/// One list as drawn: its rows' area (one screen row each) and the first row shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListHit {
    pub key: PageKey,
    pub rows: Rect,
    /// Index (into the list) of the row drawn at the top of `rows`.
    pub first: usize,
}

impl HitMap {
    /// The tab at a screen cell.
    pub fn tab_at(&self, column: u16, row: u16) -> Option<ViewId> {
        let at = Position::new(column, row);
        self.tabs
            .iter()
            .find(|(_, r)| r.contains(at))
            .map(|(v, _)| *v)
    }

    /// The list and the index of its row at a screen cell (which may be past its end).
    pub fn row_at(&self, column: u16, row: u16) -> Option<(PageKey, usize)> {
        let at = Position::new(column, row);
        self.lists
            .iter()
            .find(|l| l.rows.contains(at))
            .map(|l| (l.key, l.first + (row - l.rows.y) as usize))
    }

    /// Record a list drawn in `rows` starting at row `first`.
    pub fn list(&mut self, key: PageKey, rows: Rect, first: usize) {
        self.lists.push(ListHit { key, rows, first });
    }
}

/// Cursors are kept per list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PageKey {
    Overview,
    People,
    Queue,
    Groups,
    Approvals,
    Audit,
    Systems,
    Findings,
    /// Scroll position of a detail page.
    Detail,
}

impl AppState {
    pub fn new(theme: Theme, readonly: bool) -> AppState {
        AppState {
            stack: vec![Page::View(ViewId::Overview)],
            cursors: HashMap::new(),
            matrix_at: (0, 0),
            filters: HashMap::new(),
            marks: HashMap::new(),
            queue_pane: QueuePane::Ops,
            people_sort: PeopleSort::Name,
            frozen: false,
            snapshot: Snapshot::default(),
            people: Arc::new(PeopleIndex::default()),
            people_view: Vec::new(),
            last_updated: None,
            status: None,
            readonly,
            theme,
            themes: Vec::new(),
            history: Vec::new(),
            modal: None,
            prompt: None,
            size: (80, 24),
            quit: false,
            busy: 0,
            notices: Vec::new(),
            mouse: false,
            actor: "console".into(),
            utc_offset: chrono::FixedOffset::east_opt(0).expect("zero offset"),
            system_info: Default::default(),
            events: Vec::new(),
            hits: HitMap::default(),
            observing: false,
            observe_progress: Default::default(),
        }
    }

    pub fn page(&self) -> &Page {
        self.stack.last().unwrap_or(&Page::View(ViewId::Overview))
    }

    /// The view the breadcrumb stack starts from.
    pub fn view(&self) -> ViewId {
        match self.stack.first() {
            Some(Page::View(v)) => *v,
            _ => ViewId::Overview,
        }
    }

    pub fn filter(&self, v: ViewId) -> Filter {
        self.filters.get(&v).cloned().unwrap_or_default()
    }

    pub fn cursor(&self, k: PageKey) -> Cursor {
        self.cursors.get(&k).cloned().unwrap_or_default()
    }

    pub fn marks(&self, v: ViewId) -> BTreeSet<i64> {
        self.marks.get(&v).cloned().unwrap_or_default()
    }

    /// The queue as the Queue view shows it (filtered).
    pub fn queue_rows(&self) -> Vec<&OpRow> {
        let f = self.filter(ViewId::Queue);
        self.snapshot
            .queue
            .iter()
            .filter(|o| {
                f.matches(&[
                    &o.system,
                    &o.person_id,
                    o.kind.as_str(),
                    o.status.as_str(),
                    o.entitlement.as_deref().unwrap_or(""),
                    o.last_error_message.as_deref().unwrap_or(""),
                    o.last_error_code.as_deref().unwrap_or(""),
                ])
            })
            .collect()
    }

    pub fn approval_rows(&self) -> Vec<&ApprovalRow> {
        let f = self.filter(ViewId::Approvals);
        self.snapshot
            .approvals
            .iter()
            .filter(|a| {
                f.matches(&[
                    &a.person_id,
                    &a.person_name,
                    &a.entitlement,
                    &a.rule,
                    &a.risk,
                ])
            })
            .collect()
    }

    pub fn audit_rows(&self) -> Vec<&AuditRow> {
        let f = self.filter(ViewId::Audit);
        // The loader already applied a plain filter in SQL; inverse and fuzzy apply here.
        let local = Filter {
            text: if f.inverse || f.fuzzy {
                f.text.clone()
            } else {
                String::new()
            },
            ..f
        };
        self.snapshot
            .audit
            .iter()
            .flatten()
            .filter(|a| local.matches(&[&a.actor, &a.action, &a.subject, &a.details]))
            .collect()
    }

    pub fn system_names(&self) -> Vec<&str> {
        let f = self.filter(ViewId::Systems);
        self.snapshot
            .systems
            .iter()
            .filter(|s| f.matches(&[&s.name, &s.kind]))
            .map(|s| s.name.as_str())
            .collect()
    }

    /// Rebuild the filtered, sorted people list.
    pub fn rebuild_people_view(&mut self) {
        let f = self.filter(ViewId::People);
        let rows = &self.people.rows;
        let mut scored: Vec<(usize, u32)> = rows
            .iter()
            .enumerate()
            .filter_map(|(i, p)| {
                let fields = [
                    p.name.as_str(),
                    &p.email,
                    &p.id,
                    &p.department,
                    &p.title,
                    &p.status,
                ];
                if f.fuzzy && !f.inverse && !f.is_empty() {
                    fields
                        .iter()
                        .filter_map(|x| fuzzy_score(&f.text, x))
                        .min()
                        .map(|s| (s, i as u32))
                } else if f.matches(&fields) {
                    Some((0, i as u32))
                } else {
                    None
                }
            })
            .collect();
        let key = |i: u32| &rows[i as usize];
        match self.people_sort {
            PeopleSort::Name => scored.sort_by_key(|(s, i)| (*s, *i)),
            PeopleSort::Department => scored.sort_by(|a, b| {
                a.0.cmp(&b.0)
                    .then_with(|| key(a.1).department.cmp(&key(b.1).department))
                    .then(a.1.cmp(&b.1))
            }),
            PeopleSort::Status => scored.sort_by(|a, b| {
                a.0.cmp(&b.0)
                    .then_with(|| key(a.1).status.cmp(&key(b.1).status))
                    .then(a.1.cmp(&b.1))
            }),
            PeopleSort::Id => {
                scored.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| key(a.1).id.cmp(&key(b.1).id)))
            }
        }
        self.people_view = scored.into_iter().map(|(_, i)| i).collect();
    }

    /// How many list rows fit on screen (the body minus chrome, headers and borders).
    pub fn list_height(&self) -> usize {
        (self.size.1 as usize).saturating_sub(7).max(1)
    }
}

/// What the Systems view shows about a system's configuration (never a secret).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SystemInfo {
    pub base_url: String,
    pub limits: String,
    pub depends_on: Vec<String>,
}

impl SystemInfo {
    pub fn from_catalog(
        catalog: &crate::config::Catalog,
    ) -> std::collections::BTreeMap<String, SystemInfo> {
        catalog
            .systems
            .iter()
            .map(|(name, e)| {
                let limits = match e.rate_limit {
                    Some(r) => format!(
                        "{} requests/min, {} at a time{}",
                        r.requests_per_minute,
                        r.concurrency,
                        if e.verify { ", writes verified" } else { "" }
                    ),
                    None => format!(
                        "vendor limits only{}",
                        if e.verify { ", writes verified" } else { "" }
                    ),
                };
                (
                    name.clone(),
                    SystemInfo {
                        base_url: e
                            .base_url
                            .as_deref()
                            .map(crate::redact::redact_url)
                            .unwrap_or_else(|| "—".into()),
                        limits,
                        depends_on: e.system.depends_on.clone(),
                    },
                )
            })
            .collect()
    }
}

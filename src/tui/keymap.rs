//! Every key binding, listed once. The reducer looks keys up here, and both the hints bar
//! and the `?` help are generated from this same table, so they cannot disagree.

use super::state::{PageKind, ViewId};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// What a key asks for. The reducer decides what that means on the current page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Quit,
    Help,
    CommandMode,
    FilterMode,
    Back,
    Go(ViewId),
    Up,
    Down,
    Left,
    Right,
    PageUp,
    PageDown,
    Top,
    Bottom,
    Open,
    Mark,
    MarkAll,
    ClearMarks,
    Freeze,
    Refresh,
    Approve,
    Reject,
    Retry,
    Skip,
    Cancel,
    ToggleGroups,
    VerifyAudit,
    TestConnection,
    Sort,
    NextTheme,
    Suspend,
    /// Reconcile: observe every system / the cursor's finding's system.
    ObserveAll,
    ObserveSystem,
    /// Reconcile: remediate the cursor's (or the marked) findings...
    Enforce,
    Accept,
    Ignore,
    /// ...or the whole group (class × system) of the cursor's finding.
    EnforceGroup,
    AcceptGroup,
    IgnoreGroup,
    /// Reconcile: write the run's findings as CSV.
    Export,
}

/// Where a binding applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Global,
    /// Any list page (moving, marking, opening).
    Lists,
    Page(PageKind),
}

#[derive(Debug, Clone, Copy)]
pub struct Binding {
    pub keys: &'static [Key],
    pub action: Action,
    pub scope: Scope,
    /// Shown in the hints bar and the help.
    pub desc: &'static str,
    /// Changes something outside the console: needs a confirmation, hidden by --readonly.
    pub dangerous: bool,
    /// Shown in the hints bar (the help shows everything).
    pub hint: bool,
}

/// A key with modifiers, written the way the help shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key {
    pub code: KeyCode,
    pub ctrl: bool,
}

const fn k(c: char) -> Key {
    Key {
        code: KeyCode::Char(c),
        ctrl: false,
    }
}
const fn ctrl(c: char) -> Key {
    Key {
        code: KeyCode::Char(c),
        ctrl: true,
    }
}
const fn code(code: KeyCode) -> Key {
    Key { code, ctrl: false }
}

impl Key {
    pub fn matches(&self, ev: &KeyEvent) -> bool {
        let ctrl = ev.modifiers.contains(KeyModifiers::CONTROL);
        if ctrl != self.ctrl {
            return false;
        }
        match (self.code, ev.code) {
            (KeyCode::Char(a), KeyCode::Char(b)) => a == b,
            (a, b) => a == b,
        }
    }

    pub fn label(&self) -> String {
        let base = match self.code {
            KeyCode::Char(' ') => "space".to_string(),
            KeyCode::Char(c) => c.to_string(),
            KeyCode::Enter => "enter".into(),
            KeyCode::Esc => "esc".into(),
            KeyCode::Up => "↑".into(),
            KeyCode::Down => "↓".into(),
            KeyCode::Left => "←".into(),
            KeyCode::Right => "→".into(),
            KeyCode::PageUp => "pgup".into(),
            KeyCode::PageDown => "pgdn".into(),
            KeyCode::Home => "home".into(),
            KeyCode::End => "end".into(),
            KeyCode::Tab => "tab".into(),
            other => format!("{other:?}").to_lowercase(),
        };
        if self.ctrl {
            format!("ctrl-{base}")
        } else {
            base
        }
    }
}

use Action::*;
use PageKind as P;
use Scope::*;

macro_rules! b {
    ($keys:expr, $action:expr, $scope:expr, $desc:expr) => {
        Binding {
            keys: $keys,
            action: $action,
            scope: $scope,
            desc: $desc,
            dangerous: false,
            hint: true,
        }
    };
    ($keys:expr, $action:expr, $scope:expr, $desc:expr, danger) => {
        Binding {
            keys: $keys,
            action: $action,
            scope: $scope,
            desc: $desc,
            dangerous: true,
            hint: true,
        }
    };
    ($keys:expr, $action:expr, $scope:expr, $desc:expr, quiet) => {
        Binding {
            keys: $keys,
            action: $action,
            scope: $scope,
            desc: $desc,
            dangerous: false,
            hint: false,
        }
    };
}

/// The keymap. Page bindings come before global ones so a page can reuse a key.
pub const BINDINGS: &[Binding] = &[
    // Approvals
    b!(&[k('a')], Approve, Page(P::Approvals), "approve", danger),
    b!(&[k('x')], Reject, Page(P::Approvals), "reject", danger),
    // Queue
    b!(&[k('r')], Retry, Page(P::Queue), "retry", danger),
    b!(&[k('s')], Skip, Page(P::Queue), "skip", danger),
    b!(&[k('c')], Cancel, Page(P::Queue), "cancel", danger),
    b!(
        &[k('g'), code(KeyCode::Tab)],
        ToggleGroups,
        Page(P::Queue),
        "ops/groups"
    ),
    b!(&[k('r')], Retry, Page(P::Operation), "retry", danger),
    b!(&[k('s')], Skip, Page(P::Operation), "skip", danger),
    b!(&[k('c')], Cancel, Page(P::Operation), "cancel", danger),
    // Audit, Systems, People
    b!(&[k('v')], VerifyAudit, Page(P::Audit), "verify chain"),
    b!(
        &[k('t')],
        TestConnection,
        Page(P::Systems),
        "test connection"
    ),
    b!(&[k('o')], Sort, Page(P::People), "sort"),
    // Reconcile
    b!(
        &[k('r')],
        ObserveAll,
        Page(P::Reconcile),
        "observe all",
        danger
    ),
    b!(
        &[k('R')],
        ObserveSystem,
        Page(P::Reconcile),
        "observe this system",
        danger
    ),
    b!(&[k('e')], Enforce, Page(P::Reconcile), "enforce", danger),
    b!(&[k('a')], Accept, Page(P::Reconcile), "accept", danger),
    b!(&[k('i')], Ignore, Page(P::Reconcile), "ignore", danger),
    Binding {
        keys: &[k('E')],
        action: EnforceGroup,
        scope: Page(P::Reconcile),
        desc: "enforce the group (class × system)",
        dangerous: true,
        hint: false,
    },
    Binding {
        keys: &[k('A')],
        action: AcceptGroup,
        scope: Page(P::Reconcile),
        desc: "accept the group (class × system)",
        dangerous: true,
        hint: false,
    },
    Binding {
        keys: &[k('I')],
        action: IgnoreGroup,
        scope: Page(P::Reconcile),
        desc: "ignore the group (class × system)",
        dangerous: true,
        hint: false,
    },
    b!(&[k('x')], Export, Page(P::Reconcile), "export CSV"),
    b!(&[k('e')], Enforce, Page(P::Finding), "enforce", danger),
    b!(&[k('a')], Accept, Page(P::Finding), "accept", danger),
    b!(&[k('i')], Ignore, Page(P::Finding), "ignore", danger),
    // Lists
    b!(&[k('k'), code(KeyCode::Up)], Up, Lists, "up", quiet),
    b!(&[k('j'), code(KeyCode::Down)], Down, Lists, "down", quiet),
    b!(&[k('h'), code(KeyCode::Left)], Left, Lists, "left", quiet),
    b!(
        &[k('l'), code(KeyCode::Right)],
        Right,
        Lists,
        "right",
        quiet
    ),
    b!(
        &[code(KeyCode::PageUp), ctrl('b')],
        PageUp,
        Lists,
        "page up",
        quiet
    ),
    b!(
        &[code(KeyCode::PageDown), ctrl('f')],
        PageDown,
        Lists,
        "page down",
        quiet
    ),
    b!(&[code(KeyCode::Home)], Top, Lists, "first row", quiet),
    b!(
        &[code(KeyCode::End), k('G')],
        Bottom,
        Lists,
        "last row",
        quiet
    ),
    b!(&[code(KeyCode::Enter)], Open, Lists, "open"),
    b!(&[k(' ')], Mark, Lists, "mark"),
    b!(&[ctrl('a')], MarkAll, Lists, "mark all", quiet),
    b!(&[k('u')], ClearMarks, Lists, "unmark all", quiet),
    // Global
    b!(&[k('1')], Go(ViewId::Overview), Global, "overview", quiet),
    b!(&[k('2')], Go(ViewId::People), Global, "people", quiet),
    b!(&[k('3')], Go(ViewId::Queue), Global, "queue", quiet),
    b!(&[k('4')], Go(ViewId::Approvals), Global, "approvals", quiet),
    b!(&[k('5')], Go(ViewId::Audit), Global, "audit", quiet),
    b!(&[k('6')], Go(ViewId::Systems), Global, "systems", quiet),
    b!(&[k('7')], Go(ViewId::Reconcile), Global, "reconcile", quiet),
    b!(&[k(':')], CommandMode, Global, "command"),
    b!(&[k('/')], FilterMode, Global, "filter"),
    b!(&[code(KeyCode::Esc)], Back, Global, "back"),
    b!(&[k('f')], Freeze, Global, "freeze"),
    b!(&[ctrl('r')], Refresh, Global, "refresh now", quiet),
    b!(&[k('T')], NextTheme, Global, "next theme", quiet),
    b!(&[ctrl('z')], Suspend, Global, "suspend", quiet),
    b!(&[k('?')], Help, Global, "help"),
    b!(&[k('q'), ctrl('c')], Quit, Global, "quit"),
];

fn applies(b: &Binding, page: PageKind) -> bool {
    match b.scope {
        Global => true,
        Lists => page.is_list(),
        Page(p) => p == page,
    }
}

/// The binding for a key on a page (dangerous ones are absent when read-only).
pub fn lookup(ev: &KeyEvent, page: PageKind, readonly: bool) -> Option<&'static Binding> {
    BINDINGS.iter().find(|b| {
        applies(b, page) && !(readonly && b.dangerous) && b.keys.iter().any(|k| k.matches(ev))
    })
}

/// The bindings that apply on a page, in keymap order (page first), as the help lists them.
pub fn for_page(page: PageKind, readonly: bool) -> Vec<&'static Binding> {
    let mut seen: Vec<Action> = Vec::new();
    BINDINGS
        .iter()
        .filter(|b| applies(b, page) && !(readonly && b.dangerous))
        .filter(|b| {
            // A page binding hides a global one with the same action.
            if seen.contains(&b.action) {
                return false;
            }
            seen.push(b.action);
            true
        })
        .collect()
}

/// The short hints for the bar: `key desc` pairs.
pub fn hints(page: PageKind, readonly: bool) -> Vec<(String, &'static str)> {
    for_page(page, readonly)
        .into_iter()
        .filter(|b| b.hint)
        .map(|b| (b.keys[0].label(), b.desc))
        .collect()
}

/// The `:` commands, with their aliases, for completion and the help.
pub const COMMANDS: &[(&str, &[&str], &str)] = &[
    ("overview", &["o", "ov"], "one row per system"),
    ("people", &["p", "person"], "people; `:people NAME` filters"),
    ("queue", &["qu", "ops"], "the live provisioning queue"),
    (
        "failures",
        &["fail", "groups"],
        "failures grouped by root cause",
    ),
    ("approvals", &["a", "ap"], "pending grants"),
    ("audit", &["au", "log"], "the audit log"),
    (
        "systems",
        &["s", "sys"],
        "configured systems and credentials",
    ),
    (
        "reconcile",
        &["rec", "findings"],
        "the newest observation run and its findings",
    ),
    ("verify", &[], "verify the audit chain"),
    ("theme", &[], "`:theme NAME` switches theme"),
    ("freeze", &[], "pause or resume live updates"),
    ("help", &["h"], "keys and commands"),
    ("quit", &["q", "q!", "exit"], "leave the console"),
];

/// Commands starting with `prefix` (full names and aliases).
pub fn complete(prefix: &str) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = COMMANDS
        .iter()
        .filter(|(name, _, _)| name.starts_with(prefix))
        .map(|(name, _, _)| *name)
        .collect();
    for (name, aliases, _) in COMMANDS {
        if !out.contains(name)
            && aliases
                .iter()
                .any(|a| a.starts_with(prefix) && !prefix.is_empty())
        {
            out.push(name);
        }
    }
    out
}

/// The command a word names (full name or alias).
pub fn resolve(word: &str) -> Option<&'static str> {
    COMMANDS
        .iter()
        .find(|(name, aliases, _)| *name == word || aliases.contains(&word))
        .map(|(name, _, _)| *name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(c: char) -> KeyEvent {
        KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)
    }

    #[test]
    fn page_bindings_win_over_global_ones_and_readonly_hides_dangerous_ones() {
        assert_eq!(lookup(&key('r'), P::Queue, false).unwrap().action, Retry);
        assert!(lookup(&key('r'), P::Queue, true).is_none());
        assert!(lookup(&key('a'), P::Approvals, true).is_none());
        assert_eq!(lookup(&key('q'), P::Queue, true).unwrap().action, Quit);
        assert!(
            hints(P::Approvals, true)
                .iter()
                .all(|(_, d)| *d != "approve" && *d != "reject")
        );
        assert!(
            hints(P::Approvals, false)
                .iter()
                .any(|(k, d)| k == "a" && *d == "approve")
        );
    }

    #[test]
    fn no_key_is_bound_twice_on_one_page() {
        for page in PageKind::ALL {
            let bs = for_page(page, false);
            let mut keys = Vec::new();
            for b in &bs {
                for k in b.keys {
                    assert!(!keys.contains(k), "{page:?}: {} bound twice", k.label());
                    keys.push(*k);
                }
            }
        }
    }

    #[test]
    fn commands_complete_by_prefix_and_alias() {
        assert_eq!(complete("ap"), vec!["approvals"]);
        assert_eq!(complete("au"), vec!["audit"]);
        assert_eq!(resolve("qu"), Some("queue"));
        assert_eq!(resolve("q"), Some("quit"));
        assert_eq!(resolve("q!"), Some("quit"));
        assert_eq!(resolve("nope"), None);
    }
}

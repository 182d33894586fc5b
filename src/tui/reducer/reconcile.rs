//! The Reconcile view's keys: start an observation session, remediate findings (the
//! cursor's, the marked ones, or the cursor's group: class × system) after a confirmation
//! naming the blast radius, open a finding, export the run as CSV.

use super::{push, run, say, selected_key};
use crate::engine::observe::Progress;
use crate::store::reconcile::FindingRow;
use crate::tui::keymap::Action;
use crate::tui::state::*;
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use tui_input::Input;

/// How long an accepted finding stays accepted unless the admin says otherwise.
pub const DEFAULT_ACCEPT_DAYS: i64 = 90;

/// The people on the findings in view, and a page either side (their names are read).
pub(super) fn people_in_view(s: &AppState) -> Vec<String> {
    let (first, height) = match s.hits.lists.iter().find(|l| l.key == PageKey::Findings) {
        Some(l) => (l.first, l.rows.height as usize),
        None => (s.cursor(PageKey::Findings).offset, s.list_height()),
    };
    let rows = s.finding_rows();
    let start = first.saturating_sub(height).min(rows.len());
    let end = first.saturating_add(2 * height).min(rows.len());
    let mut seen = HashSet::new();
    rows[start..end]
        .iter()
        .filter_map(|f| f.person.as_deref())
        .filter(|p| seen.insert(*p))
        .map(str::to_string)
        .take(crate::tui::data::MAX_NAMES)
        .collect()
}

/// Re-find the selected finding and drop marks of findings no longer shown.
pub(super) fn sync(s: &mut AppState) {
    let ids: Vec<String> = s.finding_rows().iter().map(|f| f.id.to_string()).collect();
    s.cursors
        .entry(PageKey::Findings)
        .or_default()
        .sync(ids.iter().map(String::as_str));
    if let Some(r) = &s.snapshot.reconcile {
        let live: HashSet<i64> = r.findings.iter().map(|f| f.id).collect();
        if let Some(m) = s.marks.get_mut(&ViewId::Reconcile) {
            m.retain(|id| live.contains(id));
        }
    }
}

/// A job's result: an observation session ends; remediation results go to the events.
pub(super) fn on_done(
    s: &mut AppState,
    job: &Job,
    result: &std::result::Result<String, String>,
    now: DateTime<Utc>,
) {
    if !matches!(
        job,
        Job::Observe { .. } | Job::Findings { .. } | Job::ExportFindings { .. }
    ) {
        return;
    }
    if let Job::Observe { .. } = job {
        s.observing = false;
        s.observe_progress.clear();
    }
    let text = match result {
        Ok(t) => t.clone(),
        Err(e) => format!("{} failed: {e}", job.describe()),
    };
    push_event(s, text, now);
}

fn push_event(s: &mut AppState, text: String, now: DateTime<Utc>) {
    s.events.push((now, text));
    if s.events.len() > 50 {
        s.events.remove(0);
    }
}

/// One system's progress: kept for the view, shown in the status line; a finished read
/// is also an event.
pub(super) fn on_progress(s: &mut AppState, p: Progress, now: DateTime<Utc>) {
    let line = progress_line(&p);
    if p.phase == "done" {
        push_event(s, line.clone(), now);
    }
    say(s, Level::Info, line, now);
    s.observe_progress.insert(p.system.clone(), p);
}

/// `observe okta: 120 accounts, 340 memberships of ~500 objects (members, ETA 12 s)`.
pub fn progress_line(p: &Progress) -> String {
    let total = p
        .expected
        .map(|e| format!(" of ~{e} objects"))
        .unwrap_or_default();
    if p.phase == "done" {
        return format!(
            "observe {}: done, {} accounts, {} memberships",
            p.system, p.accounts, p.memberships
        );
    }
    let eta = match p.eta_secs {
        Some(secs) if secs.is_finite() && secs >= 0.0 => format!(
            "ETA {}",
            crate::text::duration_short(std::time::Duration::from_secs_f64(secs.min(1e9)))
        ),
        _ => "ETA measuring".to_string(),
    };
    format!(
        "observe {}: {} accounts, {} memberships{total} ({}, {eta})",
        p.system, p.accounts, p.memberships, p.phase
    )
}

fn finding(s: &AppState, id: i64) -> Option<&FindingRow> {
    s.snapshot
        .reconcile
        .as_ref()?
        .findings
        .iter()
        .find(|f| f.id == id)
}

fn cursor_finding(s: &AppState) -> Option<FindingRow> {
    let id: i64 = selected_key(s, PageKey::Findings)?.parse().ok()?;
    finding(s, id).cloned()
}

/// A person's name as the view shows it: the name read, else the id; "—" without one.
pub fn person_label(s: &AppState, person: Option<&str>) -> String {
    match person {
        Some(p) => s
            .snapshot
            .names
            .get(p)
            .filter(|n| !n.trim().is_empty())
            .cloned()
            .unwrap_or_else(|| p.to_string()),
        None => "—".into(),
    }
}

/// What one key press acts on: the marked findings, else the cursor's; with `group`, every
/// open finding of the cursor's class and system. With the scope's words.
fn targets(s: &AppState, group: bool) -> Option<(Vec<i64>, String)> {
    if let Page::Finding(id) = s.page() {
        return finding(s, *id).map(|f| (vec![f.id], format!("finding #{}", f.id)));
    }
    if group {
        let f = cursor_finding(s)?;
        let ids: Vec<i64> = s
            .snapshot
            .reconcile
            .as_ref()?
            .findings
            .iter()
            .filter(|x| x.class == f.class && x.system == f.system && x.status == "open")
            .map(|x| x.id)
            .collect();
        return Some((ids, format!("every open {} in {}", f.class, f.system)));
    }
    let marks = s.marks(ViewId::Reconcile);
    if !marks.is_empty() {
        let n = marks.len();
        return Some((marks.into_iter().collect(), format!("{n} marked")));
    }
    cursor_finding(s).map(|f| (vec![f.id], format!("finding #{}", f.id)))
}

/// The confirmation's lines: how many findings, people and systems, then the findings.
pub fn blast_radius(s: &AppState, ids: &[i64], verb: FindingVerb) -> Vec<String> {
    let rows: Vec<&FindingRow> = ids.iter().filter_map(|id| finding(s, *id)).collect();
    let people: BTreeSet<&str> = rows.iter().filter_map(|f| f.person.as_deref()).collect();
    let mut systems: BTreeMap<&str, usize> = BTreeMap::new();
    let mut classes: BTreeMap<(usize, &str), usize> = BTreeMap::new();
    for f in &rows {
        *systems.entry(f.system.as_str()).or_default() += 1;
        *classes
            .entry((crate::tui::data::class_order(&f.class), f.class.as_str()))
            .or_default() += 1;
    }
    let mut lines = vec![
        format!(
            "{} finding(s) · {} people · {} system(s): {}",
            ids.len(),
            people.len(),
            systems.len(),
            systems
                .iter()
                .map(|(sys, n)| format!("{sys} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        format!(
            "classes: {}",
            classes
                .iter()
                .map(|((_, c), n)| format!("{n} {c}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    ];
    if verb == FindingVerb::Enforce {
        let refused = rows
            .iter()
            .filter(|f| crate::engine::findings::not_enforceable(&f.class).is_some())
            .count();
        if refused > 0 {
            lines.push(format!(
                "{refused} cannot be enforced (ambiguous or unmanaged): they stay open and the result says what to do instead"
            ));
        }
        let decided = rows.iter().filter(|f| f.status != "open").count();
        if decided > 0 {
            lines.push(format!("{decided} already decided: left as they are"));
        }
    }
    for f in rows.iter().take(8) {
        lines.push(format!(
            "#{} {} {} {} · {} · {}{}",
            f.id,
            f.severity,
            f.class,
            f.system,
            person_label(s, f.person.as_deref()),
            f.account.as_deref().unwrap_or("—"),
            f.entitlement
                .as_deref()
                .map(|e| format!(" · {e}"))
                .unwrap_or_default()
        ));
    }
    if rows.len() > 8 {
        lines.push(format!("… and {} more", rows.len() - 8));
    }
    lines
}

pub(super) fn act(s: &mut AppState, a: Action, now: DateTime<Utc>) -> Vec<super::Effect> {
    let on_list = s.stack.len() == 1 && s.view() == ViewId::Reconcile;
    let on_finding = matches!(s.page(), Page::Finding(_));
    let remediating = matches!(a, Action::Enforce | Action::Accept | Action::Ignore);
    if !(on_list || (on_finding && remediating)) {
        return vec![];
    }
    match a {
        Action::ObserveAll | Action::ObserveSystem => {
            if s.observing {
                say(
                    s,
                    Level::Warn,
                    "an observation is already running; its progress shows here".into(),
                    now,
                );
                return vec![];
            }
            let system = if a == Action::ObserveSystem {
                match cursor_finding(s) {
                    Some(f) => Some(f.system),
                    None => {
                        say(
                            s,
                            Level::Warn,
                            "no finding selected (r observes every system)".into(),
                            now,
                        );
                        return vec![];
                    }
                }
            } else {
                None
            };
            let (title, what) = match &system {
                Some(sys) => (format!("Observe {sys}?"), sys.clone()),
                None => (
                    "Observe every system?".to_string(),
                    format!("all {} system(s)", s.snapshot.systems.len()),
                ),
            };
            s.modal = Some(Modal::Confirm {
                title,
                lines: vec![
                    format!("Reads every account, group and membership of {what},"),
                    "page by page within each system's rate limit, then reconciles the run.".into(),
                    "Nothing is changed in the systems; an interrupted read resumes.".into(),
                ],
                job: Job::Observe { system },
            });
            vec![]
        }
        Action::Enforce
        | Action::Accept
        | Action::Ignore
        | Action::EnforceGroup
        | Action::AcceptGroup
        | Action::IgnoreGroup => {
            let verb = match a {
                Action::Enforce | Action::EnforceGroup => FindingVerb::Enforce,
                Action::Accept | Action::AcceptGroup => FindingVerb::Accept,
                _ => FindingVerb::Ignore,
            };
            let group = matches!(
                a,
                Action::EnforceGroup | Action::AcceptGroup | Action::IgnoreGroup
            );
            let Some((ids, scope)) = targets(s, group).filter(|(ids, _)| !ids.is_empty()) else {
                say(
                    s,
                    Level::Warn,
                    if group {
                        "no open finding in the cursor's group".into()
                    } else {
                        "no finding selected".into()
                    },
                    now,
                );
                return vec![];
            };
            if verb == FindingVerb::Accept {
                s.modal = Some(Modal::Input {
                    title: format!("Reason for accepting {scope} ({} finding(s))", ids.len()),
                    input: Input::default(),
                    purpose: InputPurpose::AcceptReason { ids },
                });
                return vec![];
            }
            s.modal = Some(Modal::Confirm {
                title: format!("{} {scope} ({} finding(s))?", verb.word(), ids.len()),
                lines: blast_radius(s, &ids, verb),
                job: Job::Findings {
                    ids,
                    verb,
                    reason: None,
                    until: None,
                },
            });
            vec![]
        }
        Action::Export => match s.snapshot.reconcile.as_ref().and_then(|r| r.run.as_ref()) {
            Some(r) => run(s, Job::ExportFindings { run: r.id }),
            None => {
                say(
                    s,
                    Level::Warn,
                    "no observation run yet (r observes every system)".into(),
                    now,
                );
                vec![]
            }
        },
        _ => vec![],
    }
}

/// `enter` on a finding: the person's access matrix, or (no person) the finding itself.
pub(super) fn open(s: &mut AppState) -> Vec<super::Effect> {
    match cursor_finding(s) {
        Some(f) => match f.person {
            Some(p) => push(s, Page::Person(p)),
            None => push(s, Page::Finding(f.id)),
        },
        None => vec![],
    }
}

/// `enter` in the accept dialogs: the reason, then the expiry, then the confirmation.
pub(super) fn on_input(
    s: &mut AppState,
    title: String,
    input: Input,
    purpose: InputPurpose,
    now: DateTime<Utc>,
) -> Vec<super::Effect> {
    match purpose {
        InputPurpose::AcceptReason { ids } => {
            let reason = input.value().trim().to_string();
            if reason.is_empty() {
                say(s, Level::Warn, "a reason is required".into(), now);
                s.modal = Some(Modal::Input {
                    title,
                    input,
                    purpose: InputPurpose::AcceptReason { ids },
                });
                return vec![];
            }
            let default = (now + chrono::Duration::days(DEFAULT_ACCEPT_DAYS))
                .format("%Y-%m-%d")
                .to_string();
            s.modal = Some(Modal::Input {
                title: format!(
                    "Accept {} finding(s) until (YYYY-MM-DD; default {DEFAULT_ACCEPT_DAYS} days)",
                    ids.len()
                ),
                input: Input::new(default),
                purpose: InputPurpose::AcceptUntil { ids, reason },
            });
            vec![]
        }
        InputPurpose::AcceptUntil { ids, reason } => {
            let raw = input.value().trim().to_string();
            let problem = match crate::engine::findings::parse_until(&raw) {
                Ok(t) if t <= now => Some(format!("{raw} is in the past: give a future date")),
                Ok(_) => None,
                Err(_) => Some(format!("{raw:?} is not a date: write YYYY-MM-DD")),
            };
            if let Some(p) = problem {
                say(s, Level::Warn, p, now);
                s.modal = Some(Modal::Input {
                    title,
                    input,
                    purpose: InputPurpose::AcceptUntil { ids, reason },
                });
                return vec![];
            }
            let mut lines = blast_radius(s, &ids, FindingVerb::Accept);
            lines.push(format!("reason: {reason}"));
            lines.push(format!("until: {raw} (the drift is reported again after)"));
            s.modal = Some(Modal::Confirm {
                title: format!("Accept {} finding(s)?", ids.len()),
                lines,
                job: Job::Findings {
                    ids,
                    verb: FindingVerb::Accept,
                    reason: Some(reason),
                    until: Some(raw),
                },
            });
            vec![]
        }
        InputPurpose::Reason { .. } => vec![],
    }
}

//! The Reconcile view: the newest observation run (each system's read: complete,
//! incomplete with its error, or running with its counts and phase) over the run's
//! findings, grouped by class (leavers first) then severity; and one finding's page.

use super::*;
use crate::engine::observe::Progress;
use crate::store::reconcile::{Checkpoint, FindingRow};
use crate::text;
use crate::tui::reducer::reconcile::person_label;

/// A running read's estimate: "ETA 12 s · ~900 objects expected".
fn progress_note(p: &Progress) -> String {
    let eta = match p.eta_secs {
        Some(secs) if secs.is_finite() && secs >= 0.0 => format!(
            "ETA {}",
            text::duration_short(std::time::Duration::from_secs_f64(secs.min(1e9)))
        ),
        _ => "ETA measuring".to_string(),
    };
    match p.expected {
        Some(e) => format!("{eta} · ~{e} objects expected"),
        None => eta,
    }
}

/// The detail column is cut to this many cells before the table fits it to the screen.
const DETAIL_MAX: usize = 160;

fn severity_role(sev: &str) -> Role {
    match sev {
        "critical" => Role::AlertError,
        "high" => Role::AlertWarn,
        "medium" => Role::AccessExcess,
        _ => Role::Base,
    }
}

fn status_role_of(status: &str) -> Role {
    match status {
        "open" => Role::AlertWarn,
        "enforced" => Role::AlertOk,
        _ => Role::Muted,
    }
}

fn read_cells(s: &AppState, c: &Checkpoint) -> Vec<Line<'static>> {
    let t = &s.theme;
    let status = match c.status.as_str() {
        "complete" => Span::styled("complete", t.style(Role::AlertOk)),
        "running" => Span::styled("running", t.style(Role::AlertInfo)),
        other => Span::styled(other.to_string(), t.style(Role::AlertError)),
    };
    let note = match c.status.as_str() {
        "complete" => Line::from(
            c.observed_at
                .as_deref()
                .map(|at| format!("observed {}", local(s, at)))
                .unwrap_or_default(),
        ),
        "running" => match s.observe_progress.get(&c.system) {
            Some(p) => Line::styled(progress_note(p), t.style(Role::Muted)),
            None => Line::styled(
                format!("started {}", local(s, &c.started_at)),
                t.style(Role::Muted),
            ),
        },
        _ => Line::styled(
            c.error.clone().unwrap_or_else(|| "stopped".into()),
            t.style(Role::AlertError),
        ),
    };
    vec![
        Line::from(c.system.clone()),
        Line::from(status),
        Line::from(c.phase.clone()),
        Line::from(c.accounts.to_string()),
        Line::from(c.memberships.to_string()),
        Line::from(c.pages.to_string()),
        note,
    ]
}

fn finding_cells(s: &AppState, f: &FindingRow, marked: bool) -> Vec<Line<'static>> {
    let t = &s.theme;
    vec![
        Line::from(if marked { "●" } else { " " }),
        Line::styled(f.severity.clone(), t.style(severity_role(&f.severity))),
        Line::from(f.class.clone()),
        Line::from(f.system.clone()),
        Line::from(person_label(s, f.person.as_deref())),
        Line::from(f.account.clone().unwrap_or_else(|| "—".into())),
        Line::from(f.entitlement.clone().unwrap_or_else(|| "—".into())),
        Line::styled(f.status.clone(), t.style(status_role_of(&f.status))),
        Line::from(text::cut(&f.detail, DETAIL_MAX).into_owned()),
    ]
}

/// The counts per class, in the view's order: "2 leaver_with_access · 1 orphan".
fn class_counts(rows: &[&FindingRow]) -> String {
    let mut counts: Vec<(usize, &str, usize)> = Vec::new();
    for f in rows {
        let order = crate::tui::data::class_order(&f.class);
        match counts.iter_mut().find(|(_, c, _)| *c == f.class) {
            Some(e) => e.2 += 1,
            None => counts.push((order, &f.class, 1)),
        }
    }
    counts.sort();
    counts
        .iter()
        .map(|(_, c, n)| format!("{n} {c}"))
        .collect::<Vec<_>>()
        .join(" · ")
}

pub fn view(f: &mut Frame, s: &AppState, area: Rect, hits: &mut HitMap) {
    let Some(data) = &s.snapshot.reconcile else {
        let b = block(s, " Reconcile ".into(), true);
        let inner = b.inner(area);
        f.render_widget(b, area);
        empty(f, s, inner, "loading…");
        return;
    };
    let Some(run) = &data.run else {
        let b = block(s, " Reconcile ".into(), true);
        let inner = b.inner(area);
        f.render_widget(b, area);
        empty(
            f,
            s,
            inner,
            "No observation run yet: r observes every system and reconciles what it reads.",
        );
        return;
    };
    let want = data.systems.len() as u16 + 3;
    let reads_h = want.min(area.height / 3).max(3.min(area.height));
    let [reads, list] =
        Layout::vertical([Constraint::Length(reads_h), Constraint::Min(3)]).areas(area);
    let state = if s.observing {
        "observing…".to_string()
    } else {
        run.status.clone()
    };
    let title = format!(
        " Run #{} · {} · started {} by {} ",
        run.id,
        state,
        local(s, &run.started_at),
        run.actor
    );
    let shown = reads.height.saturating_sub(3) as usize;
    let rows: Vec<(Vec<Line>, Style)> = data
        .systems
        .iter()
        .take(shown)
        .map(|c| (read_cells(s, c), Style::default()))
        .collect();
    let cols = [
        col("System"),
        col("Read"),
        col("Phase"),
        col("Accounts"),
        col("Members"),
        col("Pages"),
        fill("Observed / error"),
    ];
    f.render_widget(
        columns::table(s, reads, &cols, rows).block(block(s, title, false)),
        reads,
    );

    let all = s.finding_rows();
    let marks = s.marks(ViewId::Reconcile);
    let c = s.cursor(PageKey::Findings);
    let height = list.height.saturating_sub(3) as usize;
    let (start, end) = window(&c, all.len(), height);
    let more = if data.total > data.findings.len() {
        format!(", first {} shown", data.findings.len())
    } else {
        String::new()
    };
    let title = if all.is_empty() {
        format!(" Findings (0{more}) ")
    } else {
        format!(" Findings ({}{more}): {} ", all.len(), class_counts(&all))
    };
    if all.is_empty() {
        let b = block(s, title, true);
        let inner = b.inner(list);
        f.render_widget(b, list);
        empty(
            f,
            s,
            inner,
            if run.finished_at.is_none() || s.observing {
                "Still reading: findings come once every system has been read."
            } else if data.findings.is_empty() {
                "No findings: what the systems hold matches intended access."
            } else {
                "No finding matches the filter."
            },
        );
        return;
    }
    let rows: Vec<(Vec<Line>, Style)> = all[start..end]
        .iter()
        .enumerate()
        .map(|(i, x)| {
            let marked = marks.contains(&x.id);
            (
                finding_cells(s, x, marked),
                row_style(s, start + i == c.index, marked, false),
            )
        })
        .collect();
    let cols = [
        col(""),
        col("Severity"),
        col("Class"),
        col("System"),
        col("Person"),
        col("Account"),
        col("Entitlement"),
        col("Status"),
        fill("Detail"),
    ];
    f.render_widget(
        columns::table(s, list, &cols, rows).block(block(s, title, true)),
        list,
    );
    hits.list(PageKey::Findings, table_rows(list), start);
}

/// One finding, for findings without a person to open (orphans).
pub fn finding_page(f: &mut Frame, s: &AppState, area: Rect, id: i64) {
    let t = &s.theme;
    let Some(x) = s
        .snapshot
        .reconcile
        .as_ref()
        .and_then(|r| r.findings.iter().find(|f| f.id == id))
    else {
        detail_page(
            f,
            s,
            area,
            vec![Line::styled(
                "This finding is no longer in the newest run.",
                t.style(Role::Muted),
            )],
            &format!(" Finding #{id} "),
        );
        return;
    };
    let field = |k: &str, v: String| {
        Line::from(vec![
            Span::styled(format!("{:<12}", k), t.style(Role::Muted)),
            Span::raw(v),
        ])
    };
    let mut lines = vec![
        Line::from(vec![
            Span::styled(format!("{:<12}", "severity"), t.style(Role::Muted)),
            Span::styled(x.severity.clone(), t.style(severity_role(&x.severity))),
        ]),
        field("class", x.class.clone()),
        field("system", x.system.clone()),
        field(
            "person",
            match &x.person {
                Some(p) => format!("{} ({p})", person_label(s, Some(p))),
                None => "—".into(),
            },
        ),
        field(
            "account",
            format!(
                "{}{}",
                x.account.as_deref().unwrap_or("—"),
                x.account_id
                    .as_deref()
                    .map(|i| format!(" (id {i})"))
                    .unwrap_or_default()
            ),
        ),
        field(
            "entitlement",
            x.entitlement.clone().unwrap_or_else(|| "—".into()),
        ),
        Line::from(vec![
            Span::styled(format!("{:<12}", "status"), t.style(Role::Muted)),
            Span::styled(x.status.clone(), t.style(status_role_of(&x.status))),
        ]),
    ];
    if let Some(by) = &x.decided_by {
        lines.push(field(
            "decided",
            format!(
                "by {by}{}",
                x.decided_at
                    .as_deref()
                    .map(|a| format!(" at {}", local(s, a)))
                    .unwrap_or_default()
            ),
        ));
    }
    if let Some(r) = &x.reason {
        lines.push(field("reason", r.clone()));
    }
    if let Some(u) = &x.until {
        lines.push(field("until", local(s, u)));
    }
    lines.push(Line::raw(""));
    lines.push(Line::raw(x.detail.clone()));
    if let Some(why) = crate::engine::findings::not_enforceable(&x.class) {
        lines.push(Line::raw(""));
        lines.push(Line::styled(
            format!("Not enforceable: {why}."),
            t.style(Role::AlertWarn),
        ));
    } else if x.class == "orphan" && x.status == "open" {
        lines.push(Line::raw(""));
        lines.push(Line::raw(
            "Enforcing deactivates this account (never deletes it), unless by then it proves to be somebody's or is the one accessdesk's credentials act as. If it is someone's, link it instead (`accessdesk account link`).",
        ));
    }
    detail_page(f, s, area, lines, &format!(" Finding #{id} "));
}

//! Overview, Approvals, Audit and Systems.

use super::*;
use crate::tui::data::Eta;
use crate::tui::data::{AuthState, SystemRow};
use crate::tui::reducer::list_key;

fn gauge(s: &AppState, r: &SystemRow) -> Vec<Span<'static>> {
    let t = &s.theme;
    match &r.rate {
        Some(rate) if rate.limit.is_some() => {
            let limit = rate.limit.unwrap_or(0).max(1);
            let remaining = rate.remaining.unwrap_or(limit).min(limit);
            let used = limit - remaining;
            let filled = ((used as f64 / limit as f64) * 8.0).round() as usize;
            let role = if used * 10 >= limit * 8 {
                Role::GaugeHigh
            } else {
                Role::Gauge
            };
            let reset = rate
                .reset_in
                .map(|d| format!(" {}", duration(d.as_secs())))
                .unwrap_or_default();
            vec![
                Span::styled("▰".repeat(filled), t.style(role)),
                Span::styled("▱".repeat(8 - filled.min(8)), t.style(Role::Muted)),
                Span::raw(format!(" {used}/{limit}{reset}")),
            ]
        }
        Some(rate) if rate.rate_per_sec.is_finite() => {
            vec![Span::raw(format!("{:.1}/s", rate.rate_per_sec))]
        }
        _ => match r.budget_per_minute {
            Some(b) => vec![Span::styled(format!("≤{b}/min"), t.style(Role::Muted))],
            None => vec![Span::styled("—", t.style(Role::Muted))],
        },
    }
}

fn eta(r: &SystemRow) -> String {
    match r.eta() {
        Eta::Done => "done".into(),
        Eta::Measuring => "measuring".into(),
        Eta::In(d) => duration(d.as_secs()),
        Eta::Unknown => "?".into(),
    }
}

/// The HR sources: kind, last delivery and poll, inbox lag, errors, refused deliveries.
fn sources(f: &mut Frame, s: &AppState, area: Rect) {
    let t = &s.theme;
    let ago = |at: Option<chrono::DateTime<chrono::Utc>>| match (at, s.snapshot.taken_at) {
        (Some(at), Some(now)) => {
            format!("{} ago", duration((now - at).num_seconds().max(0) as u64))
        }
        _ => "never".into(),
    };
    let rows: Vec<(Vec<Line>, Style)> = s
        .snapshot
        .sources
        .iter()
        .map(|r| {
            let lag = if r.pending > 0 {
                Span::styled(
                    format!("{} waiting, {}", r.pending, duration(r.lag_secs as u64)),
                    t.style(if r.lag_secs > 60 {
                        Role::AlertWarn
                    } else {
                        Role::Muted
                    }),
                )
            } else {
                Span::styled("none", t.style(Role::Muted))
            };
            let count = |n: i64| {
                if n > 0 {
                    Span::styled(n.to_string(), t.style(Role::AlertError))
                } else {
                    Span::styled("0", t.style(Role::Muted))
                }
            };
            let problem = r.last_error.as_deref().unwrap_or("");
            let cells = vec![
                Line::from(r.name.clone()),
                Line::from(r.kind.clone()),
                Line::from(ago(r.last_event)),
                Line::from(ago(r.last_poll)),
                Line::from(lag),
                Line::from(count(r.errors)),
                Line::from(count(r.rejected)),
                Line::from(Span::styled(
                    crate::text::cut(problem, 60),
                    t.style(Role::AlertError),
                )),
            ];
            (cells, Style::default())
        })
        .collect();
    let cols = [
        col("Source"),
        col("Kind"),
        col("Last event"),
        col("Last poll"),
        col("Lag"),
        col("Errors"),
        col("Rejected"),
        col("Problem"),
    ];
    let n = s.snapshot.sources.len();
    let table =
        columns::table(s, area, &cols, rows).block(block(s, format!(" Sources ({n}) "), false));
    f.render_widget(table, area);
}

pub fn overview(f: &mut Frame, s: &AppState, area: Rect, hits: &mut HitMap) {
    let t = &s.theme;
    let held: Vec<&SystemRow> = s
        .snapshot
        .systems
        .iter()
        .filter(|r| r.held.is_some())
        .collect();
    let events_h = if s.events.is_empty() {
        0
    } else {
        (s.events.len() as u16 + 2).min(7)
    };
    let sources_h = if s.snapshot.sources.is_empty() {
        0
    } else {
        (s.snapshot.sources.len() as u16 + 3).min(8)
    };
    let [table_area, sources_area, events_area, foot] = Layout::vertical([
        Constraint::Min(3),
        Constraint::Length(sources_h),
        Constraint::Length(events_h),
        Constraint::Length(3 + 2 * held.len() as u16),
    ])
    .areas(area);
    if sources_h > 0 {
        sources(f, s, sources_area);
    }
    if events_h > 0 {
        let shown = (events_h - 2) as usize;
        let lines: Vec<Line> = s
            .events
            .iter()
            .rev()
            .take(shown)
            .map(|(at, e)| {
                Line::from(vec![
                    Span::styled(format!("{} ", clock(s, *at)), t.style(Role::Muted)),
                    Span::raw(e.clone()),
                ])
            })
            .collect();
        f.render_widget(
            Paragraph::new(lines).block(block(s, " Recent events ".into(), false)),
            events_area,
        );
    }
    let c = s.cursor(PageKey::Overview);
    let height = table_area.height.saturating_sub(3) as usize;
    let len = s.snapshot.systems.len();
    let (start, end) = window(&c, len, height);
    let wide = area.width >= 110;
    let rows: Vec<(Vec<Line>, Style)> = s.snapshot.systems[start..end]
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let auth = match &r.auth {
                AuthState::Ok => Span::styled("ok", t.style(Role::AlertOk)),
                AuthState::Failed(_) => Span::styled("FAILED", t.style(Role::AlertError)),
                AuthState::Unknown => Span::styled("—", t.style(Role::Muted)),
            };
            let q = &r.counts;
            // Only the statuses that have operations: "1▶ 12… 3✗", or "idle".
            let mut parts: Vec<Span> = [
                (OperationStatus::Running, "▶"),
                (OperationStatus::Queued, "…"),
                (OperationStatus::RetryWait, "↻"),
                (OperationStatus::Verifying, "◌"),
                (OperationStatus::PendingApproval, "?"),
                (OperationStatus::Blocked, "⊘"),
                (OperationStatus::Failed, "✗"),
            ]
            .into_iter()
            .filter(|(st, _)| q.get(*st) > 0)
            .map(|(st, sym)| Span::styled(format!("{}{sym} ", q.get(st)), t.style(status_role(st))))
            .collect();
            if parts.is_empty() {
                parts.push(Span::styled("idle", t.style(Role::Muted)));
            }
            let queue = Line::from(parts);
            let fail = if r.failed_last_hour > 0 {
                Span::styled(r.failed_last_hour.to_string(), t.style(Role::AlertError))
            } else {
                Span::styled("0", t.style(Role::Muted))
            };
            let state = match &r.held {
                Some(_) => Span::styled("HELD", t.style(Role::AlertError)),
                None => Span::styled("live", t.style(Role::Muted)),
            };
            let mut cells = vec![Line::from(r.name.clone())];
            if wide {
                cells.push(Line::from(r.kind.clone()));
            }
            cells.extend([
                Line::from(auth),
                Line::from(gauge(s, r)),
                queue,
                Line::from(fail),
                Line::from(eta(r)),
            ]);
            if wide {
                cells.push(Line::from(
                    r.last_observed
                        .as_deref()
                        .map(|l| age(s, l))
                        .unwrap_or_else(|| "never".into()),
                ));
                cells.push(Line::from(if r.open_findings > 0 {
                    Span::styled(r.open_findings.to_string(), t.style(Role::AlertError))
                } else if r.last_observed.is_some() {
                    Span::styled("0", t.style(Role::Muted))
                } else {
                    Span::styled("—", t.style(Role::Muted))
                }));
            }
            cells.push(Line::from(state));
            (cells, row_style(s, start + i == c.index, false, false))
        })
        .collect();
    let mut cols = vec![col("System")];
    if wide {
        cols.push(col("Kind"));
    }
    cols.extend([
        col("Auth"),
        col("Rate limit"),
        col("Queue"),
        col("Fail 1h"),
        col("ETA"),
    ]);
    if wide {
        cols.push(col("Observed"));
        cols.push(col("Findings"));
    }
    cols.push(col("Guard"));
    let table = columns::table(s, table_area, &cols, rows).block(block(
        s,
        format!(" Systems ({len}) "),
        true,
    ));
    f.render_widget(table, table_area);
    hits.list(PageKey::Overview, table_rows(table_area), start);
    let tot = &s.snapshot.totals;
    let mut lines = vec![Line::from(vec![
        Span::styled(" Queue: ", t.style(Role::Header)),
        Span::styled(
            format!("{} running ", tot.get(OperationStatus::Running)),
            t.style(Role::OpRunning),
        ),
        Span::styled(
            format!("{} queued ", tot.get(OperationStatus::Queued)),
            t.style(Role::OpQueued),
        ),
        Span::styled(
            format!("{} retrying ", tot.get(OperationStatus::RetryWait)),
            t.style(Role::OpRetryWait),
        ),
        Span::styled(
            format!("{} verifying ", tot.get(OperationStatus::Verifying)),
            t.style(Role::OpVerifying),
        ),
        Span::styled(
            format!(
                "{} awaiting approval ",
                tot.get(OperationStatus::PendingApproval)
            ),
            t.style(Role::OpPendingApproval),
        ),
        Span::styled(
            format!("{} blocked ", tot.get(OperationStatus::Blocked)),
            t.style(Role::OpBlocked),
        ),
        Span::styled(
            format!("{} failed ", tot.get(OperationStatus::Failed)),
            t.style(Role::OpFailed),
        ),
        Span::styled(
            format!("{} done", tot.get(OperationStatus::Succeeded)),
            t.style(Role::OpSucceeded),
        ),
    ])];
    lines.push(Line::styled(
        format!(
            " {} people · {} failure group(s) · {} pending approval(s)",
            s.snapshot.people_count,
            s.snapshot.groups.len(),
            s.snapshot.approvals.len()
        ),
        t.style(Role::Muted),
    ));
    for r in held {
        lines.push(Line::styled(
            format!(
                " HELD by the mass-change guard: {} (approve with `accessdesk apply PLAN --approve-mass-change --reason ...`)",
                r.held.as_deref().unwrap_or_default()
            ),
            t.style(Role::AlertError),
        ));
    }
    f.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), foot);
}

pub fn approvals(f: &mut Frame, s: &AppState, area: Rect, hits: &mut HitMap) {
    let t = &s.theme;
    let rows_all = s.approval_rows();
    let marks = s.marks(ViewId::Approvals);
    let c = s.cursor(PageKey::Approvals);
    let height = area.height.saturating_sub(3) as usize;
    let (start, end) = window(&c, rows_all.len(), height);
    if rows_all.is_empty() {
        let b = block(s, " Pending approvals (0) ".into(), true);
        let inner = b.inner(area);
        f.render_widget(b, area);
        empty(f, s, inner, "Nothing is waiting for approval.");
        return;
    }
    let rows: Vec<(Vec<Line>, Style)> = rows_all[start..end]
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let marked = marks.contains(&a.id);
            let risk_role = match a.risk.as_str() {
                "high" | "privileged" => Role::AlertError,
                "medium" => Role::AlertWarn,
                _ => Role::Base,
            };
            let cells = vec![
                Line::from(if marked { "●" } else { " " }),
                Line::from(format!("#{}", a.id)),
                Line::from(format!("{} ({})", a.person_name, a.person_id)),
                Line::from(a.entitlement.clone()),
                Line::from(a.rule.clone()),
                Line::styled(a.risk.clone(), t.style(risk_role)),
                Line::from(age(s, &a.requested_at)),
            ];
            (cells, row_style(s, start + i == c.index, marked, false))
        })
        .collect();
    let cols = [
        col(""),
        col("Id"),
        col("Requester"),
        col("Entitlement"),
        col("Rule"),
        col("Risk"),
        col("Age"),
    ];
    let table = columns::table(s, area, &cols, rows).block(block(
        s,
        format!(" Pending approvals ({}) ", rows_all.len()),
        true,
    ));
    f.render_widget(table, area);
    hits.list(PageKey::Approvals, table_rows(area), start);
}

pub fn audit(f: &mut Frame, s: &AppState, area: Rect, hits: &mut HitMap) {
    let rows_all = s.audit_rows();
    let [list, detail] = Layout::vertical([Constraint::Min(3), Constraint::Length(5)]).areas(area);
    let c = s.cursor(PageKey::Audit);
    let height = list.height.saturating_sub(3) as usize;
    let (start, end) = window(&c, rows_all.len(), height);
    let rows: Vec<(Vec<Line>, Style)> = rows_all[start..end]
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let cells = vec![
                Line::from(a.seq.to_string()),
                Line::from(local(s, &a.ts)),
                Line::from(a.actor.clone()),
                Line::from(a.action.clone()),
                Line::from(a.subject.clone()),
            ];
            (cells, row_style(s, start + i == c.index, false, false))
        })
        .collect();
    let cols = [
        col("Seq"),
        col("Time"),
        col("Actor"),
        col("Action"),
        fill("Subject"),
    ];
    let shown = if s.snapshot.audit_total as usize > rows_all.len() {
        format!(
            " Audit log ({} shown of {}, newest first) ",
            rows_all.len(),
            s.snapshot.audit_total
        )
    } else {
        format!(" Audit log ({}) ", rows_all.len())
    };
    let table =
        columns::table(s, list, &cols, rows).block(block(s, shown, list_key(s) == PageKey::Audit));
    f.render_widget(table, list);
    hits.list(PageKey::Audit, table_rows(list), start);
    let text = rows_all
        .get(c.index.min(rows_all.len().saturating_sub(1)))
        .map(|a| a.details.clone())
        .unwrap_or_default();
    f.render_widget(
        Paragraph::new(text).wrap(Wrap { trim: false }).block(block(
            s,
            " Details (v: verify the chain) ".into(),
            false,
        )),
        detail,
    );
}

pub fn systems(f: &mut Frame, s: &AppState, area: Rect, hits: &mut HitMap) {
    let t = &s.theme;
    let names = s.system_names();
    let c = s.cursor(PageKey::Systems);
    // Room for the selected system's hygiene lines (at most six) in the detail pane.
    let extra = names
        .get(c.index.min(names.len().saturating_sub(1)))
        .and_then(|n| s.snapshot.credentials.get(*n))
        .and_then(|cred| cred.hygiene.as_ref())
        .map(|h| h.lines().len().min(6) as u16)
        .unwrap_or(0);
    let [list, detail] =
        Layout::vertical([Constraint::Min(3), Constraint::Length(9 + extra)]).areas(area);
    let height = list.height.saturating_sub(3) as usize;
    let (start, end) = window(&c, names.len(), height);
    let rows: Vec<(Vec<Line>, Style)> = names[start..end]
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let cred = s
                .snapshot
                .credentials
                .get(*name)
                .cloned()
                .unwrap_or_default();
            let present = match cred.present {
                Some(true) => Span::styled("present", t.style(Role::AlertOk)),
                Some(false) => Span::styled("MISSING", t.style(Role::AlertError)),
                None => Span::styled(
                    if cred.reference.is_some() {
                        "unknown"
                    } else {
                        "none"
                    },
                    t.style(Role::Muted),
                ),
            };
            let kind = s
                .snapshot
                .systems
                .iter()
                .find(|r| r.name == *name)
                .map(|r| r.kind.clone())
                .unwrap_or_default();
            let cells = vec![
                Line::from(name.to_string()),
                Line::from(kind),
                Line::from(cred.reference.clone().unwrap_or_else(|| "—".into())),
                Line::from(present),
                Line::from(
                    cred.set_at
                        .as_deref()
                        .map(|x| local(s, x))
                        .unwrap_or_default(),
                ),
                Line::from(
                    cred.last_auth_ok_at
                        .as_deref()
                        .map(|x| local(s, x))
                        .unwrap_or_else(|| "never".into()),
                ),
                Line::from(match cred.hygiene.as_ref().map(|h| h.status()) {
                    Some("error") => Span::styled("error", t.style(Role::AlertError)),
                    Some("warning") => Span::styled("warning", t.style(Role::AlertWarn)),
                    Some(_) => Span::styled("ok", t.style(Role::AlertOk)),
                    None => Span::styled("—", t.style(Role::Muted)),
                }),
            ];
            (cells, row_style(s, start + i == c.index, false, false))
        })
        .collect();
    let cols = [
        col("System"),
        col("Kind"),
        col("Credential"),
        col("Keychain"),
        col("Set"),
        col("Last auth ok"),
        col("Health"),
    ];
    let table = columns::table(s, list, &cols, rows).block(block(
        s,
        format!(" Systems ({}) ", names.len()),
        true,
    ));
    f.render_widget(table, list);
    hits.list(PageKey::Systems, table_rows(list), start);
    let selected = names.get(c.index.min(names.len().saturating_sub(1)));
    let lines = match selected.and_then(|n| s.system_info.get(*n)) {
        Some(info) => {
            let mut l = vec![
                Line::from(vec![
                    Span::styled("base_url ", t.style(Role::Muted)),
                    Span::raw(info.base_url.clone()),
                ]),
                Line::from(vec![
                    Span::styled("limits   ", t.style(Role::Muted)),
                    Span::raw(info.limits.clone()),
                ]),
            ];
            if let Some(cred) = selected.and_then(|n| s.snapshot.credentials.get(*n)) {
                if let Some(d) = &cred.detail {
                    l.push(Line::styled(
                        format!("keychain: {d}"),
                        t.style(Role::AlertWarn),
                    ));
                }
                // Credential hygiene and the vendor's deprecation signals, worst first.
                if let Some(h) = &cred.hygiene {
                    let role = match h.status() {
                        "error" => Role::AlertError,
                        _ => Role::AlertWarn,
                    };
                    for line in h.lines() {
                        l.push(Line::styled(line, t.style(role)));
                    }
                }
            }
            l.push(Line::styled("depends on", t.style(Role::Muted)));
            for line in dependency_tree(s, selected.map(|x| x.to_string()).unwrap_or_default()) {
                l.push(Line::raw(line));
            }
            l
        }
        None => vec![Line::raw("")],
    };
    f.render_widget(
        Paragraph::new(lines).block(block(
            s,
            " Configuration (t: test connection) ".into(),
            false,
        )),
        detail,
    );
}

/// The selected system and what it depends on, as a small tree.
fn dependency_tree(s: &AppState, root: String) -> Vec<String> {
    fn walk(s: &AppState, name: &str, prefix: &str, out: &mut Vec<String>, depth: usize) {
        let deps = s
            .system_info
            .get(name)
            .map(|i| i.depends_on.clone())
            .unwrap_or_default();
        for (i, d) in deps.iter().enumerate() {
            let last = i + 1 == deps.len();
            out.push(format!("{prefix}{}{d}", if last { "└─ " } else { "├─ " }));
            if depth < 6 {
                let next = format!("{prefix}{}", if last { "   " } else { "│  " });
                walk(s, d, &next, out, depth + 1);
            }
        }
    }
    let mut out = vec![root.clone()];
    walk(s, &root, "", &mut out, 0);
    if out.len() == 1 {
        out.push("(no dependencies)".into());
    }
    out
}

//! The live queue, failures grouped by root cause, and one operation with its attempts.

use super::*;
use crate::tui::data::{AttemptRow, Eta};

pub fn queue(f: &mut Frame, s: &AppState, area: Rect, hits: &mut HitMap) {
    let t = &s.theme;
    let groups = &s.snapshot.groups;
    let busy: Vec<&crate::tui::data::SystemRow> = s
        .snapshot
        .systems
        .iter()
        .filter(|r| r.counts.depth() > 0)
        .collect();
    let group_h = if groups.is_empty() {
        0
    } else {
        (groups.len() as u16 + 3).min(area.height / 3).max(4)
    };
    let [eta_area, groups_area, ops_area] = Layout::vertical([
        Constraint::Length(busy.len().clamp(1, 4) as u16),
        Constraint::Length(group_h),
        Constraint::Min(3),
    ])
    .areas(area);
    // Per-system ETA from depth and the rate actually achieved (or allowed).
    let mut eta_lines = Vec::new();
    if busy.is_empty() {
        eta_lines.push(Line::styled(
            " Nothing left to do: the queue is drained.",
            t.style(Role::Muted),
        ));
    }
    for r in busy.iter().take(4) {
        let rate = match r.measured_rate() {
            Some(x) => format!("{x:.1} ops/s measured"),
            None => match r
                .rate
                .as_ref()
                .map(|x| x.rate_per_sec)
                .filter(|x| x.is_finite())
            {
                Some(x) => format!("{x:.1} req/s allowed"),
                None => "no rate yet".into(),
            },
        };
        let eta = match r.eta() {
            Eta::Done => "done".into(),
            Eta::Measuring => "ETA measuring".into(),
            Eta::In(d) => format!("ETA {}", duration(d.as_secs())),
            Eta::Unknown => "ETA unknown".into(),
        };
        eta_lines.push(Line::from(vec![
            Span::styled(format!(" {:<12}", r.name), t.style(Role::Header)),
            Span::raw(format!("{:>6} left  ", r.counts.depth())),
            Span::styled(format!("{eta:<14}"), t.style(Role::AlertInfo)),
            Span::styled(rate, t.style(Role::Muted)),
        ]));
    }
    f.render_widget(Paragraph::new(eta_lines), eta_area);

    if !groups.is_empty() {
        let c = s.cursor(PageKey::Groups);
        let height = groups_area.height.saturating_sub(3) as usize;
        let (start, end) = window(&c, groups.len(), height);
        let focused = s.queue_pane == QueuePane::Groups;
        let rows: Vec<(Vec<Line>, Style)> = groups[start..end]
            .iter()
            .enumerate()
            .map(|(i, g)| {
                let cells = vec![
                    Line::styled(g.op_ids.len().to_string(), t.style(Role::OpFailed)),
                    Line::from(g.system.clone()),
                    Line::from(g.class.clone()),
                    Line::from(g.code_or_message.clone()),
                    Line::styled(g.message.clone(), t.style(Role::Muted)),
                ];
                (
                    cells,
                    row_style(s, focused && start + i == c.index, false, false),
                )
            })
            .collect();
        let cols = [
            col("Count"),
            col("System"),
            col("Class"),
            col("Code"),
            fill("Message"),
        ];
        let table = columns::table(s, groups_area, &cols, rows).block(block(
            s,
            format!(" Failures by root cause ({}) ", groups.len()),
            focused,
        ));
        f.render_widget(table, groups_area);
        hits.list(PageKey::Groups, table_rows(groups_area), start);
    }

    let ops = s.queue_rows();
    let marks = s.marks(ViewId::Queue);
    let c = s.cursor(PageKey::Queue);
    let height = ops_area.height.saturating_sub(3) as usize;
    let (start, end) = window(&c, ops.len(), height);
    let focused = s.queue_pane == QueuePane::Ops;
    let rows: Vec<(Vec<Line>, Style)> = ops[start..end]
        .iter()
        .enumerate()
        .map(|(i, o)| {
            let marked = marks.contains(&o.id);
            let why = o
                .last_error_message
                .clone()
                .or_else(|| o.blocked_reason.clone())
                .unwrap_or_default();
            // The loader reads the names of the people on this page only.
            let person = s
                .snapshot
                .names
                .get(&o.person_id)
                .unwrap_or(&o.person_id)
                .clone();
            let cells = vec![
                Line::from(if marked { "●" } else { " " }),
                Line::from(o.id.to_string()),
                Line::styled(status_word(o.status), t.style(status_role(o.status))),
                Line::from(o.system.clone()),
                Line::from(kind_word(o.kind)),
                Line::from(person),
                Line::from(
                    o.entitlement
                        .as_deref()
                        .and_then(|e| e.split_once(':').map(|(_, r)| r.to_string()))
                        .unwrap_or_default(),
                ),
                Line::from(o.attempts.to_string()),
                Line::styled(why, t.style(Role::Muted)),
            ];
            let style = row_style(
                s,
                focused && start + i == c.index,
                marked,
                s.snapshot.changed.contains(&o.id),
            );
            (cells, style)
        })
        .collect();
    let total = s.snapshot.queue.len();
    let title = if ops.len() == total {
        format!(" Operations ({total}) ")
    } else {
        format!(" Operations ({} of {total}) ", ops.len())
    };
    let cols = [
        col(""),
        col("Id"),
        col("Status"),
        col("System"),
        col("Kind"),
        col("Person"),
        col("Entitlement"),
        col("Try"),
        fill("Why"),
    ];
    let table = columns::table(s, ops_area, &cols, rows).block(block(s, title, focused));
    f.render_widget(table, ops_area);
    hits.list(PageKey::Queue, table_rows(ops_area), start);
}

/// One attempt, on one line.
pub(super) fn attempt_line(a: &AttemptRow) -> String {
    let outcome = a.outcome.clone().unwrap_or_else(|| "in flight".into());
    let mut parts = vec![format!("attempt {} {}", a.attempt, outcome)];
    if let Some(c) = &a.error_class {
        parts.push(c.clone());
    }
    if let Some(st) = a.http_status {
        parts.push(format!("HTTP {st}"));
    }
    if let Some(v) = &a.vendor_code {
        parts.push(v.clone());
    }
    if let Some(m) = &a.message {
        parts.push(m.clone());
    }
    parts.join(" · ")
}

pub fn operation(f: &mut Frame, s: &AppState, area: Rect) {
    let t = &s.theme;
    let Some(d) = &s.snapshot.op else {
        let b = block(s, " Operation ".into(), true);
        let inner = b.inner(area);
        f.render_widget(b, area);
        empty(f, s, inner, "loading…");
        return;
    };
    let o = &d.op;
    let kv = |k: &str, v: String| {
        Line::from(vec![
            Span::styled(format!("{k:<12}"), t.style(Role::Muted)),
            Span::raw(v),
        ])
    };
    let mut lines = vec![
        Line::from(vec![
            Span::styled(format!("#{} ", o.id), t.style(Role::Title)),
            Span::styled(o.status.as_str(), t.style(status_role(o.status))),
        ]),
        kv("request", d.request.clone()),
        kv("system", o.system.clone()),
        kv("person", o.person_id.clone()),
        kv(
            "entitlement",
            o.entitlement.clone().unwrap_or_else(|| "—".into()),
        ),
        kv("cause", o.cause.clone().unwrap_or_default()),
        kv("attempts", o.attempts.to_string()),
        kv("updated", local(s, &o.updated_at)),
    ];
    if let Some(n) = &o.next_attempt_at {
        lines.push(kv("next try", local(s, n)));
    }
    if let Some(b) = &o.blocked_reason {
        lines.push(kv("blocked", b.clone()));
    }
    if !d.depends_on.is_empty() {
        let deps: Vec<String> = d.depends_on.iter().map(|i| format!("#{i}")).collect();
        lines.push(kv("after", deps.join(", ")));
    }
    lines.push(Line::raw(""));
    lines.push(Line::styled(
        "Attempts (request and response, redacted)",
        t.style(Role::Header),
    ));
    if d.attempts.is_empty() {
        lines.push(Line::styled("  not attempted yet", t.style(Role::Muted)));
    }
    for a in &d.attempts {
        lines.extend(attempt_lines(s, a, "  "));
    }
    detail_page(
        f,
        s,
        area,
        lines,
        " Operation (r retry · s skip · c cancel) ",
    );
}

/// One attempt: its outcome, when, the request line and the (redacted) response.
pub(super) fn attempt_lines(s: &AppState, a: &AttemptRow, indent: &str) -> Vec<Line<'static>> {
    let t = &s.theme;
    let role = match a.outcome.as_deref() {
        Some("ok") => Role::AlertOk,
        Some(_) => Role::AlertError,
        None => Role::AlertInfo,
    };
    let mut lines = vec![
        Line::styled(format!("{indent}{}", attempt_line(a)), t.style(role)),
        Line::styled(
            format!(
                "{indent}  started {}{}",
                local(s, &a.started_at),
                a.finished_at
                    .as_deref()
                    .map(|x| format!(", finished {}", local(s, x)))
                    .unwrap_or_default()
            ),
            t.style(Role::Muted),
        ),
    ];
    if let Some(x) = a.request.as_deref() {
        lines.push(Line::styled(
            format!("{indent}  request:  {x}"),
            t.style(Role::Muted),
        ));
    }
    if let Some(x) = a.excerpt.as_deref().filter(|x| !x.is_empty()) {
        lines.push(Line::styled(
            format!("{indent}  response: {x}"),
            t.style(Role::Muted),
        ));
    }
    lines
}

//! People, a person's access matrix, and why a cell is what it is.

use super::*;
use crate::tui::data::Matrix;
use ratatui::widgets::{Row, Table};

pub fn list(f: &mut Frame, s: &AppState, area: Rect, hits: &mut HitMap) {
    let t = &s.theme;
    let [left, right] =
        Layout::horizontal([Constraint::Percentage(45), Constraint::Percentage(55)]).areas(area);
    let c = s.cursor(PageKey::People);
    let height = left.height.saturating_sub(3) as usize;
    let len = s.people_view.len();
    let (start, end) = window(&c, len, height);
    // Only the visible rows are built.
    let rows: Vec<(Vec<Line>, Style)> = s.people_view[start..end]
        .iter()
        .enumerate()
        .map(|(i, &ix)| {
            let p = &s.people.rows[ix as usize];
            let status_role = match p.status.as_str() {
                "terminated" => Role::AlertError,
                "pending" => Role::AlertInfo,
                "leave" => Role::AlertWarn,
                _ => Role::Base,
            };
            let cells = vec![
                Line::from(p.name.clone()),
                Line::from(p.department.clone()),
                Line::styled(
                    match &p.rehired {
                        Some(_) => format!("{} · rehire", p.status),
                        None => p.status.clone(),
                    },
                    t.style(status_role),
                ),
            ];
            (cells, row_style(s, start + i == c.index, false, false))
        })
        .collect();
    let title = if len == s.people.rows.len() {
        format!(" People ({len}, by {}) ", s.people_sort.label())
    } else {
        format!(
            " People ({len} of {}, by {}) ",
            s.people.rows.len(),
            s.people_sort.label()
        )
    };
    let cols = [fill("Name"), col("Department"), col("Status")];
    let table = columns::table(s, left, &cols, rows).block(block(s, title, true));
    f.render_widget(table, left);
    hits.list(PageKey::People, table_rows(left), start);
    let selected = s
        .people_view
        .get(c.index)
        .map(|&i| &s.people.rows[i as usize]);
    match (&s.snapshot.matrix, selected) {
        (Some(m), Some(p)) if m.person.id == p.id => {
            matrix(f, s, right, m, None, " Access (enter: open) ")
        }
        (_, Some(p)) => {
            let b = block(s, format!(" {} ", p.name), false);
            let inner = b.inner(right);
            f.render_widget(b, right);
            empty(f, s, inner, "loading…");
        }
        _ => {
            let b = block(s, " Access ".into(), false);
            let inner = b.inner(right);
            f.render_widget(b, right);
            empty(
                f,
                s,
                inner,
                if s.people.rows.is_empty() {
                    "No people yet: import an HR file (accessdesk people import FILE)."
                } else {
                    "No one matches the filter."
                },
            );
        }
    }
}

/// The matrix page of `person`: only their matrix, never another's still in the
/// snapshot while theirs loads.
pub fn matrix_page(f: &mut Frame, s: &AppState, area: Rect, person: &str) {
    match s.snapshot.matrix.as_ref().filter(|m| m.person.id == person) {
        Some(m) => matrix(
            f,
            s,
            area,
            m,
            Some(s.matrix_at),
            " Access matrix (enter: explain the cell) ",
        ),
        None => {
            let b = block(s, " Access matrix ".into(), true);
            let inner = b.inner(area);
            f.render_widget(b, area);
            empty(f, s, inner, "loading…");
        }
    }
}

/// Entitlements down the side, systems across the top; each cell a symbol and a colour.
fn matrix(
    f: &mut Frame,
    s: &AppState,
    area: Rect,
    m: &Matrix,
    cursor: Option<(usize, usize)>,
    title: &str,
) {
    let t = &s.theme;
    let p = &m.person;
    let b = block(s, title.to_string(), cursor.is_some());
    let inner = b.inner(area);
    f.render_widget(b, area);
    let [head, grid, legend] = Layout::vertical([
        Constraint::Length(3),
        Constraint::Min(1),
        Constraint::Length(1),
    ])
    .areas(inner);
    f.render_widget(
        Paragraph::new(vec![
            Line::from(vec![
                Span::styled(p.name.clone(), t.style(Role::Title)),
                Span::styled(format!("  {} · {}", p.id, p.email), t.style(Role::Muted)),
            ]),
            Line::styled(
                match &p.rehired {
                    Some(day) => format!(
                        "{} · {} · {} · rehire (rehired {day})",
                        p.department, p.title, p.status
                    ),
                    None => format!("{} · {} · {}", p.department, p.title, p.status),
                },
                t.style(Role::Muted),
            ),
            Line::styled(
                format!(
                    "observed: {}",
                    m.systems
                        .iter()
                        .zip(&m.observed)
                        .map(|(sys, at)| format!(
                            "{sys} {}",
                            at.as_deref()
                                .map(|a| age(s, a))
                                .unwrap_or_else(|| "never".into())
                        ))
                        .collect::<Vec<_>>()
                        .join(" · ")
                ),
                t.style(Role::Muted),
            ),
        ]),
        head,
    );
    let label_w = m
        .rows
        .iter()
        .map(|r| r.label.chars().count())
        .max()
        .unwrap_or(8)
        .clamp(8, 32) as u16;
    let col_w: Vec<u16> = m
        .systems
        .iter()
        .map(|sys| (sys.chars().count() as u16).clamp(5, 14))
        .collect();
    let mut widths = vec![Constraint::Length(label_w)];
    widths.extend(col_w.iter().map(|w| Constraint::Length(*w)));
    let height = grid.height.saturating_sub(1) as usize;
    let sel_row = cursor.map(|c| c.0).unwrap_or(0);
    let start = if sel_row >= height {
        sel_row + 1 - height
    } else {
        0
    };
    let end = (start + height).min(m.rows.len());
    let rows: Vec<Row> = m.rows[start..end]
        .iter()
        .enumerate()
        .map(|(ri, r)| {
            let ri = start + ri;
            let mut cells = vec![Line::styled(r.label.clone(), t.style(Role::Base))];
            for (ci, cell) in r.cells.iter().enumerate() {
                let selected = cursor == Some((ri, ci));
                let recorded = r.recorded.get(ci).copied().unwrap_or(false);
                let (text, style) = match cell {
                    Some(c) => (
                        format!(" {}{}", c.symbol(), if recorded { "*" } else { " " }),
                        t.style(cell_role(*c)),
                    ),
                    None => (" · ".to_string(), t.style(Role::Muted)),
                };
                let style = if selected {
                    style.patch(t.style(Role::Selected))
                } else {
                    style
                };
                cells.push(Line::styled(text, style));
            }
            Row::new(cells)
        })
        .collect();
    let mut header = vec![Line::from("")];
    header.extend(
        m.systems
            .iter()
            .map(|sys| Line::styled(sys.clone(), t.style(Role::Header))),
    );
    f.render_widget(Table::new(rows, widths).header(Row::new(header)), grid);
    let mut spans = Vec::new();
    for c in crate::tui::data::CellState::ALL {
        spans.push(Span::styled(c.symbol().to_string(), t.style(cell_role(c))));
        spans.push(Span::styled(
            format!(" {}  ", c.label()),
            t.style(Role::Muted),
        ));
    }
    spans.push(Span::styled("* not yet observed", t.style(Role::Muted)));
    f.render_widget(Paragraph::new(Line::from(spans)), legend);
}

pub fn cell(f: &mut Frame, s: &AppState, area: Rect) {
    let t = &s.theme;
    let Some(c) = &s.snapshot.cell else {
        let b = block(s, " Explain ".into(), true);
        let inner = b.inner(area);
        f.render_widget(b, area);
        empty(f, s, inner, "loading…");
        return;
    };
    let what = c
        .entitlement
        .clone()
        .unwrap_or_else(|| format!("{} account", c.system));
    let mut lines = vec![Line::from(vec![
        Span::styled(
            format!("{what} for {}: ", c.person_id),
            t.style(Role::Title),
        ),
        match c.state {
            Some(st) => Span::styled(
                format!("{} {}", st.symbol(), st.label()),
                t.style(cell_role(st)),
            ),
            None => Span::styled("not intended, not present", t.style(Role::Muted)),
        },
    ])];
    lines.push(Line::raw(""));
    lines.push(Line::styled("Policy", t.style(Role::Header)));
    for l in &c.policy {
        lines.push(Line::raw(format!("  {l}")));
    }
    lines.push(Line::raw(""));
    lines.push(Line::styled(
        format!("Operations ({}; enter opens the newest)", c.ops.len()),
        t.style(Role::Header),
    ));
    if c.ops.is_empty() {
        lines.push(Line::styled("  none", t.style(Role::Muted)));
    }
    for d in &c.ops {
        lines.push(Line::from(vec![
            Span::raw(format!("  #{} {} ", d.op.id, d.op.kind.as_str())),
            Span::styled(d.op.status.as_str(), t.style(status_role(d.op.status))),
            Span::styled(
                format!(
                    "  {} attempt(s), updated {}",
                    d.op.attempts,
                    local(s, &d.op.updated_at)
                ),
                t.style(Role::Muted),
            ),
        ]));
        for a in &d.attempts {
            lines.extend(super::queue::attempt_lines(s, a, "    "));
        }
    }
    detail_page(f, s, area, lines, " Why ");
}

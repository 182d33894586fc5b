//! Drawing. `draw` is a pure function of the state: it reads the last snapshot, builds
//! only the rows that are on screen, and returns where it put what a click can land on
//! ([`HitMap`]), so that the reducer hit-tests against the layout actually drawn.

mod columns;
mod lists;
mod people;
mod queue;
mod reconcile;

use super::data::CellState;
use super::keymap;
use super::state::*;
use super::theme::Role;
use crate::model::OperationStatus;
use chrono::{DateTime, Utc};
use columns::{col, fill};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};
use unicode_width::UnicodeWidthStr;

fn notice_lines(s: &AppState) -> usize {
    s.notices.len().min(2)
}

/// A tab's label, its title cut to `max` cells (the current tab's never is).
fn tab_label(v: ViewId, count: Option<usize>, max: usize) -> String {
    let n = ViewId::ALL.iter().position(|x| *x == v).unwrap_or(0) + 1;
    let title = crate::text::cut(v.title(), max);
    match count {
        Some(c) if c > 0 => format!(" {n} {title} ({c}) "),
        _ => format!(" {n} {title} "),
    }
}

/// Every tab's label: whole when they fit, else the other tabs' titles cut evenly (the
/// longest that fits), so that every tab stays on screen.
fn tab_labels(current: ViewId, counts: &[(ViewId, Option<usize>)], room: usize) -> Vec<String> {
    let labels = |max: usize| -> Vec<String> {
        counts
            .iter()
            .map(|(v, c)| tab_label(*v, *c, if *v == current { usize::MAX } else { max }))
            .collect()
    };
    let total = |l: &[String]| l.iter().map(|x| x.width() + 1).sum::<usize>();
    let longest = ViewId::ALL
        .iter()
        .map(|v| v.title().width())
        .max()
        .unwrap_or(0);
    for max in (2..=longest).rev() {
        let l = labels(max);
        if total(&l) <= room {
            return l;
        }
    }
    labels(2)
}

/// Draw the state into the frame; returns the layout drawn, for mouse hit-testing.
pub fn draw(f: &mut Frame, s: &AppState) -> HitMap {
    let mut hits = HitMap::default();
    let area = f.area();
    let base = s.theme.style(Role::Base);
    f.render_widget(Block::default().style(base), area);
    let notices = notice_lines(s) as u16;
    let [title, tabs, notice, body, status, hints] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Length(notices),
        Constraint::Min(3),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(area);
    draw_title(f, s, title);
    draw_tabs(f, s, tabs, &mut hits);
    if notices > 0 {
        let lines: Vec<Line> = s
            .notices
            .iter()
            .take(2)
            .map(|n| Line::styled(format!(" ! {n}"), s.theme.style(Role::AlertWarn)))
            .collect();
        f.render_widget(Paragraph::new(lines), notice);
    }
    match s.page() {
        Page::View(ViewId::Overview) => lists::overview(f, s, body, &mut hits),
        Page::View(ViewId::People) => people::list(f, s, body, &mut hits),
        Page::View(ViewId::Queue) => queue::queue(f, s, body, &mut hits),
        Page::View(ViewId::Approvals) => lists::approvals(f, s, body, &mut hits),
        Page::View(ViewId::Audit) => lists::audit(f, s, body, &mut hits),
        Page::View(ViewId::Systems) => lists::systems(f, s, body, &mut hits),
        Page::View(ViewId::Reconcile) => reconcile::view(f, s, body, &mut hits),
        Page::Person(id) => people::matrix_page(f, s, body, id),
        Page::Cell { .. } => people::cell(f, s, body),
        Page::Operation(_) => queue::operation(f, s, body),
        Page::Finding(id) => reconcile::finding_page(f, s, body, *id),
    }
    draw_status(f, s, status);
    draw_hints(f, s, hints);
    match &s.modal {
        Some(Modal::Help { scroll }) => help(f, s, area, *scroll),
        Some(Modal::Confirm { title, lines, .. }) => confirm(f, s, area, title, lines),
        Some(Modal::Input { title, input, .. }) => input_dialog(f, s, area, title, input),
        None => {}
    }
    // A dialog covers the lists: clicks go nowhere until it is closed.
    if s.modal.is_some() {
        hits.lists.clear();
    }
    hits
}

fn crumb(s: &AppState, p: &Page) -> String {
    match p {
        Page::View(v) => v.title().to_string(),
        Page::Person(id) => s
            .snapshot
            .matrix
            .as_ref()
            .filter(|m| &m.person.id == id)
            .map(|m| m.person.name.clone())
            .unwrap_or_else(|| id.clone()),
        Page::Cell {
            system,
            entitlement,
            ..
        } => entitlement
            .clone()
            .unwrap_or_else(|| format!("{system} account")),
        Page::Operation(id) => format!("#{id}"),
        Page::Finding(id) => format!("finding #{id}"),
    }
}

fn draw_title(f: &mut Frame, s: &AppState, area: Rect) {
    let t = &s.theme;
    let mut spans = vec![Span::styled(" accessdesk ", t.style(Role::Title))];
    for (i, p) in s.stack.iter().enumerate() {
        spans.push(Span::styled(" › ", t.style(Role::Muted)));
        let role = if i + 1 == s.stack.len() {
            Role::Breadcrumb
        } else {
            Role::Muted
        };
        spans.push(Span::styled(crumb(s, p), t.style(role)));
    }
    let mut right: Vec<Span> = Vec::new();
    if s.readonly {
        right.push(Span::styled(" READ-ONLY ", t.style(Role::AlertWarn)));
    }
    if s.busy > 0 {
        right.push(Span::styled(" working… ", t.style(Role::AlertInfo)));
    }
    if s.frozen {
        right.push(Span::styled(" FROZEN ", t.style(Role::AlertWarn)));
    }
    let updated = match s.last_updated {
        Some(at) => format!(" updated {} ", clock(s, at)),
        None => " loading… ".to_string(),
    };
    right.push(Span::styled(updated, t.style(Role::Muted)));
    let [l, r] = Layout::horizontal([
        Constraint::Min(10),
        Constraint::Length(right.iter().map(|s| s.width() as u16).sum()),
    ])
    .areas(area);
    f.render_widget(Paragraph::new(Line::from(spans)), l);
    f.render_widget(Paragraph::new(Line::from(right)), r);
}

fn draw_tabs(f: &mut Frame, s: &AppState, area: Rect, hits: &mut HitMap) {
    let t = &s.theme;
    let current = s.view();
    let mut spans = Vec::new();
    let mut x = area.x;
    let counts: Vec<(ViewId, Option<usize>)> = ViewId::ALL
        .into_iter()
        .map(|v| {
            let count = match v {
                ViewId::Approvals => Some(s.snapshot.approvals.len()),
                ViewId::Queue => Some(s.snapshot.totals.get(OperationStatus::Failed) as usize),
                ViewId::Reconcile => Some(
                    s.snapshot
                        .systems
                        .iter()
                        .map(|r| r.open_findings as usize)
                        .sum(),
                ),
                _ => None,
            };
            (v, count)
        })
        .collect();
    let labels = tab_labels(current, &counts, area.width as usize);
    for ((v, _), label) in counts.into_iter().zip(labels) {
        let w = (label.width() as u16).min(area.right().saturating_sub(x));
        if w > 0 {
            hits.tabs
                .push((v, Rect::new(x, area.y, w, area.height.min(1))));
        }
        x = x.saturating_add(label.width() as u16 + 1);
        let role = if v == current {
            Role::Selected
        } else {
            Role::Header
        };
        spans.push(Span::styled(label, t.style(role)));
        spans.push(Span::raw(" "));
    }
    f.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn draw_status(f: &mut Frame, s: &AppState, area: Rect) {
    let t = &s.theme;
    let line = match &s.status {
        Some(m) => {
            let role = match m.level {
                Level::Info => Role::AlertInfo,
                Level::Ok => Role::AlertOk,
                Level::Warn => Role::AlertWarn,
                Level::Error => Role::AlertError,
            };
            Line::styled(format!(" {} {}", clock(s, m.at), m.text), t.style(role))
        }
        None => {
            let f = s.filter(s.view());
            let mut spans = Vec::new();
            if !f.is_empty() {
                spans.push(Span::styled(
                    format!(" filter /{} ", f.raw()),
                    t.style(Role::AlertInfo),
                ));
            }
            let marks = s.marks(s.view()).len();
            if marks > 0 {
                spans.push(Span::styled(
                    format!(" {marks} marked "),
                    t.style(Role::Marked),
                ));
            }
            Line::from(spans)
        }
    };
    f.render_widget(Paragraph::new(line), area);
}

fn draw_hints(f: &mut Frame, s: &AppState, area: Rect) {
    let t = &s.theme;
    match &s.prompt {
        Some(Prompt::Command {
            input, completions, ..
        }) => {
            let mut spans = vec![
                Span::styled(":", t.style(Role::HintKey)),
                Span::styled(input.value().to_string(), t.style(Role::Input)),
            ];
            if completions.len() > 1 {
                spans.push(Span::styled(
                    format!("   tab: {}", completions.join(" ")),
                    t.style(Role::Muted),
                ));
            }
            f.render_widget(Paragraph::new(Line::from(spans)), area);
            f.set_cursor_position((area.x + 1 + input.visual_cursor() as u16, area.y));
        }
        Some(Prompt::Filter { input, .. }) => {
            let spans = vec![
                Span::styled("/", t.style(Role::HintKey)),
                Span::styled(input.value().to_string(), t.style(Role::Input)),
                Span::styled(
                    "   (!text inverse, ~text fuzzy, enter keep, esc undo)",
                    t.style(Role::Muted),
                ),
            ];
            f.render_widget(Paragraph::new(Line::from(spans)), area);
            f.set_cursor_position((area.x + 1 + input.visual_cursor() as u16, area.y));
        }
        None => {
            let mut spans = Vec::new();
            for (key, desc) in keymap::hints(s.page().kind(), s.readonly) {
                spans.push(Span::styled(format!(" {key}"), t.style(Role::HintKey)));
                spans.push(Span::styled(format!(" {desc} "), t.style(Role::Hint)));
            }
            f.render_widget(Paragraph::new(Line::from(spans)), area);
        }
    }
}

/// Where a bordered table with a one-line header, drawn in `area`, puts its rows.
pub(super) fn table_rows(area: Rect) -> Rect {
    let inner = Block::default().borders(Borders::ALL).inner(area);
    Rect {
        y: inner.y.saturating_add(1).min(inner.bottom()),
        height: inner.height.saturating_sub(1),
        ..inner
    }
}

/// A bordered block with a title; focused blocks use the focused border.
pub(super) fn block<'a>(s: &AppState, title: String, focused: bool) -> Block<'a> {
    let t = &s.theme;
    Block::default()
        .borders(Borders::ALL)
        .border_style(t.style(if focused {
            Role::BorderFocused
        } else {
            Role::Border
        }))
        .title(Span::styled(title, t.style(Role::Title)))
}

/// Local wall-clock time.
pub(super) fn clock(s: &AppState, t: DateTime<Utc>) -> String {
    t.with_timezone(&s.utc_offset)
        .format("%H:%M:%S")
        .to_string()
}

/// A stored RFC 3339 time as local date and time.
pub(super) fn local(s: &AppState, stored: &str) -> String {
    match DateTime::parse_from_rfc3339(stored) {
        Ok(t) => t
            .with_timezone(&s.utc_offset)
            .format("%Y-%m-%d %H:%M:%S")
            .to_string(),
        Err(_) => stored.to_string(),
    }
}

/// How long ago, compactly ("42s", "5m", "3h", "2d").
pub(super) fn age(s: &AppState, stored: &str) -> String {
    let Some(now) = s.snapshot.taken_at else {
        return String::new();
    };
    match DateTime::parse_from_rfc3339(stored) {
        Ok(t) => duration((now - t.with_timezone(&Utc)).num_seconds().max(0) as u64),
        Err(_) => String::new(),
    }
}

pub(super) fn duration(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m{:02}s", s / 60, s % 60),
        s if s < 86_400 => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
        s => format!("{}d{}h", s / 86_400, (s % 86_400) / 3600),
    }
}

pub(super) fn status_role(st: OperationStatus) -> Role {
    match st {
        OperationStatus::PendingApproval => Role::OpPendingApproval,
        OperationStatus::Scheduled | OperationStatus::Queued => Role::OpQueued,
        OperationStatus::Running => Role::OpRunning,
        OperationStatus::RetryWait => Role::OpRetryWait,
        OperationStatus::Verifying => Role::OpVerifying,
        OperationStatus::Blocked => Role::OpBlocked,
        OperationStatus::Succeeded => Role::OpSucceeded,
        OperationStatus::Failed => Role::OpFailed,
        OperationStatus::Cancelled => Role::OpCancelled,
    }
}

pub(super) fn cell_role(c: CellState) -> Role {
    match c {
        CellState::InSync => Role::AccessInSync,
        CellState::Missing => Role::AccessMissing,
        CellState::Excess => Role::AccessExcess,
        CellState::Queued => Role::AccessQueued,
        CellState::Running => Role::AccessRunning,
        CellState::Failed => Role::AccessFailed,
        CellState::AwaitingApproval => Role::AccessAwaitingApproval,
        CellState::Blocked => Role::AccessBlocked,
    }
}

/// The row style: selected, marked, just changed, or plain.
pub(super) fn row_style(s: &AppState, selected: bool, marked: bool, changed: bool) -> Style {
    let t = &s.theme;
    if selected {
        t.style(Role::Selected)
    } else if marked {
        t.style(Role::Marked)
    } else if changed {
        t.style(Role::Changed)
    } else {
        Style::default()
    }
}

/// The visible window of a list: (offset, end).
pub(super) fn window(c: &Cursor, len: usize, height: usize) -> (usize, usize) {
    let mut c = c.clone();
    c.index = c.index.min(len.saturating_sub(1));
    c.scroll_into_view(height);
    let start = c.offset.min(len);
    (start, (start + height).min(len))
}

/// An empty-list message in the middle of an area.
pub(super) fn empty(f: &mut Frame, s: &AppState, area: Rect, text: &str) {
    f.render_widget(
        Paragraph::new(Line::styled(text.to_string(), s.theme.style(Role::Muted))),
        area,
    );
}

fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width.saturating_sub(2)).max(10.min(area.width));
    let h = h.min(area.height.saturating_sub(2)).max(3.min(area.height));
    Rect {
        x: area.x + (area.width.saturating_sub(w)) / 2,
        y: area.y + (area.height.saturating_sub(h)) / 2,
        width: w,
        height: h,
    }
}

fn help(f: &mut Frame, s: &AppState, area: Rect, scroll: u16) {
    let t = &s.theme;
    let mut lines = vec![Line::styled(
        format!("Keys on this page ({})", crumb(s, s.page())),
        t.style(Role::Header),
    )];
    for b in keymap::for_page(s.page().kind(), s.readonly) {
        let keys: Vec<String> = b.keys.iter().map(|k| k.label()).collect();
        lines.push(Line::from(vec![
            Span::styled(format!("  {:<14}", keys.join(" ")), t.style(Role::HintKey)),
            Span::styled(
                format!(
                    "{}{}",
                    b.desc,
                    if b.dangerous {
                        " (asks to confirm)"
                    } else {
                        ""
                    }
                ),
                t.style(Role::Base),
            ),
        ]));
    }
    lines.push(Line::raw(""));
    lines.push(Line::styled("Commands (:)", t.style(Role::Header)));
    for (name, aliases, desc) in keymap::COMMANDS {
        let a = if aliases.is_empty() {
            String::new()
        } else {
            format!(" ({})", aliases.join(", "))
        };
        lines.push(Line::from(vec![
            Span::styled(format!("  :{name}{a}"), t.style(Role::HintKey)),
            Span::styled(format!("  {desc}"), t.style(Role::Base)),
        ]));
    }
    lines.push(Line::raw(""));
    lines.push(Line::styled(
        "Filter (/): text matches anywhere; !text inverts; ~text is fuzzy.",
        t.style(Role::Muted),
    ));
    lines.push(Line::styled(
        "Access matrix: ✓ in sync  + missing  − excess  … queued  ▶ running  ✗ failed  ? awaiting approval  ⊘ blocked",
        t.style(Role::Muted),
    ));
    let h = (lines.len() as u16 + 2).min(area.height);
    let r = centered(area, 86, h);
    f.render_widget(Clear, r);
    f.render_widget(
        Paragraph::new(lines)
            .block(block(s, " Help (esc to close) ".into(), true))
            .scroll((scroll, 0))
            .wrap(Wrap { trim: false }),
        r,
    );
}

fn confirm(f: &mut Frame, s: &AppState, area: Rect, title: &str, lines: &[String]) {
    let t = &s.theme;
    let mut text: Vec<Line> = lines
        .iter()
        .map(|l| Line::styled(format!(" {l}"), t.style(Role::Base)))
        .collect();
    text.push(Line::raw(""));
    text.push(Line::from(vec![
        Span::styled(" y", t.style(Role::HintKey)),
        Span::styled(" confirm   ", t.style(Role::Hint)),
        Span::styled("n/esc", t.style(Role::HintKey)),
        Span::styled(" cancel", t.style(Role::Hint)),
    ]));
    let w = 90.min(area.width.saturating_sub(2)).max(10);
    let inner = w.saturating_sub(2).max(1) as usize;
    let h = text
        .iter()
        .map(|l| l.width().div_ceil(inner).max(1) as u16)
        .sum::<u16>()
        + 2;
    let r = centered(area, w, h);
    f.render_widget(Clear, r);
    f.render_widget(
        Paragraph::new(text)
            .block(block(s, format!(" {title} "), true).border_style(t.style(Role::AlertWarn)))
            .wrap(Wrap { trim: false }),
        r,
    );
}

fn input_dialog(f: &mut Frame, s: &AppState, area: Rect, title: &str, input: &tui_input::Input) {
    let t = &s.theme;
    let r = centered(area, 70, 5);
    f.render_widget(Clear, r);
    let inner_w = r.width.saturating_sub(2) as usize;
    let scroll = input.visual_scroll(inner_w.saturating_sub(1));
    let text = vec![
        Line::styled(input.value().to_string(), t.style(Role::Input)),
        Line::styled(
            "enter: continue (you confirm next) · esc: cancel",
            t.style(Role::Muted),
        ),
    ];
    f.render_widget(
        Paragraph::new(text)
            .scroll((0, scroll as u16))
            .block(block(s, format!(" {title} "), true)),
        r,
    );
    f.set_cursor_position((
        r.x + 1 + (input.visual_cursor().saturating_sub(scroll)) as u16,
        r.y + 1,
    ));
}

/// A short word for a status, for narrow columns.
pub(super) fn status_word(st: OperationStatus) -> &'static str {
    match st {
        OperationStatus::PendingApproval => "approval",
        OperationStatus::Scheduled => "scheduled",
        OperationStatus::Queued => "queued",
        OperationStatus::Running => "running",
        OperationStatus::RetryWait => "retrying",
        OperationStatus::Verifying => "verifying",
        OperationStatus::Blocked => "blocked",
        OperationStatus::Succeeded => "done",
        OperationStatus::Failed => "failed",
        OperationStatus::Cancelled => "cancelled",
    }
}

/// A short word for an operation kind.
pub(super) fn kind_word(k: crate::model::OperationKind) -> &'static str {
    use crate::model::OperationKind::*;
    match k {
        CreateAccount => "create",
        UpdateAttributes => "update",
        AddMembership => "add",
        RemoveMembership => "remove",
        Deactivate => "deactivate",
        Reactivate => "reactivate",
        DeactivateOrphan => "disable orphan",
    }
}

/// A scrollable detail page (`j`/`k` scroll it).
pub(super) fn detail_page(f: &mut Frame, s: &AppState, area: Rect, lines: Vec<Line>, title: &str) {
    let scroll = s
        .cursor(PageKey::Detail)
        .offset
        .min(lines.len().saturating_sub(1));
    f.render_widget(
        Paragraph::new(lines)
            .scroll((scroll as u16, 0))
            .wrap(Wrap { trim: false })
            .block(block(s, title.to_string(), true)),
        area,
    );
}

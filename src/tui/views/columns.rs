//! Table columns sized from what they show: the header and the visible rows' content,
//! measured in terminal cells. When everything does not fit, the widest columns give way
//! first, down to a common cap, so that one long value cannot starve the others; a cell
//! cut to its column ends in `…`.

use super::*;
use crate::text;
use ratatui::widgets::{Row, Table};

/// One column of a table.
#[derive(Debug, Clone, Copy)]
pub(super) struct Col {
    pub header: &'static str,
    /// Takes the room the others leave (a free-text column: a message, a subject).
    pub fill: bool,
}

/// A column as wide as its content.
pub(super) const fn col(header: &'static str) -> Col {
    Col {
        header,
        fill: false,
    }
}

/// A column that also takes the room left over.
pub(super) const fn fill(header: &'static str) -> Col {
    Col { header, fill: true }
}

/// The narrowest a column is cut to (a few characters and the ellipsis).
const MIN_CUT: usize = 4;

/// The space `Table` leaves between columns.
const SPACING: usize = 1;

/// Widths for columns wanting `want` cells (their widest cell, header included) in `room`
/// cells. When they fit, each gets what it wants and the first `fill` column the rest.
/// When they do not, each column wider than a cap is cut to it, the cap as large as fits
/// (never below [`MIN_CUT`]): narrow columns keep their width, wide ones give way evenly.
pub(super) fn fit_widths(want: &[usize], fill: &[bool], room: usize) -> Vec<usize> {
    let total: usize = want.iter().sum();
    if total <= room {
        let mut w = want.to_vec();
        if let Some(i) = fill.iter().position(|f| *f) {
            w[i] += room - total;
        }
        return w;
    }
    let capped =
        |cap: usize| -> Vec<usize> { want.iter().map(|&x| x.min(cap.max(MIN_CUT))).collect() };
    // The largest cap that fits: widths only grow with the cap.
    let (mut lo, mut hi) = (0, want.iter().copied().max().unwrap_or(0));
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        if capped(mid).iter().sum::<usize>() <= room {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    let mut w = capped(lo);
    // The cells one more step of the cap would overflow with go to the cut columns.
    let mut spare = room.saturating_sub(w.iter().sum());
    for (w, &x) in w.iter_mut().zip(want) {
        if spare == 0 {
            break;
        }
        if *w < x {
            *w += 1;
            spare -= 1;
        }
    }
    w
}

/// `line` cut to `max` cells, ending in `…` (styled as the span it cuts) when it was wider.
fn cut_line(line: Line<'_>, max: usize) -> Line<'_> {
    if line.width() <= max {
        return line;
    }
    if max == 0 {
        return Line::default();
    }
    let style = line.style;
    let mut out = Vec::new();
    let mut used = 0;
    for span in line.spans {
        let (head, w) = text::head_before_ellipsis(&span.content, max - used);
        if head.len() == span.content.len() {
            used += w;
            out.push(span);
            continue;
        }
        out.push(Span::styled(format!("{head}…"), span.style));
        break;
    }
    Line::from(out).style(style)
}

/// A table of `rows` (cells and the row's style) under `cols`' headers, to be drawn in
/// `area` inside a bordered block: column widths come from the header and these rows.
pub(super) fn table<'a>(
    s: &AppState,
    area: Rect,
    cols: &[Col],
    rows: Vec<(Vec<Line<'a>>, Style)>,
) -> Table<'a> {
    let inner = Block::default().borders(Borders::ALL).inner(area).width as usize;
    let room = inner.saturating_sub(SPACING * cols.len().saturating_sub(1));
    let mut want: Vec<usize> = cols.iter().map(|c| text::width(c.header)).collect();
    for (cells, _) in &rows {
        for (w, cell) in want.iter_mut().zip(cells) {
            *w = (*w).max(cell.width());
        }
    }
    let fills: Vec<bool> = cols.iter().map(|c| c.fill).collect();
    let widths = fit_widths(&want, &fills, room);
    let header = Row::new(
        cols.iter()
            .zip(&widths)
            .map(|(c, &w)| Line::from(text::cut(c.header, w).into_owned())),
    )
    .style(s.theme.style(Role::Header));
    let rows: Vec<Row> = rows
        .into_iter()
        .map(|(cells, style)| {
            Row::new(
                cells
                    .into_iter()
                    .zip(&widths)
                    .map(|(cell, &w)| cut_line(cell, w)),
            )
            .style(style)
        })
        .collect();
    Table::new(rows, widths.iter().map(|&w| Constraint::Length(w as u16)))
        .column_spacing(SPACING as u16)
        .header(header)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_get_their_content_or_give_way_evenly() {
        // Everything fits: each column its content, the fill column the rest.
        assert_eq!(
            fit_widths(&[6, 18, 4], &[false, false, true], 40),
            vec![6, 18, 16]
        );
        // One long column cannot starve the others: it is cut first.
        assert_eq!(
            fit_widths(&[6, 60, 4, 8], &[false, true, false, false], 40),
            vec![6, 22, 4, 8]
        );
        // Two wide ones share what is left evenly.
        assert_eq!(fit_widths(&[30, 30, 4], &[false; 3], 30), vec![13, 13, 4]);
        // Below the floor, columns keep the floor (the table is cut on screen).
        assert_eq!(fit_widths(&[10, 10], &[false; 2], 4), vec![4, 4]);
    }

    #[test]
    fn cut_cells_end_in_an_ellipsis_in_their_style() {
        let line = Line::from(vec![
            Span::raw("ab"),
            Span::styled("cdef", Style::new().bold()),
        ]);
        let cut = cut_line(line.clone(), 5);
        assert_eq!(cut.width(), 5);
        assert_eq!(cut.spans[1].content, "cd…");
        assert_eq!(cut.spans[1].style, Style::new().bold());
        assert_eq!(cut_line(line.clone(), 6), line);
        assert_eq!(
            cut_line(Line::from("山田太郎"), 5).spans[0].content,
            "山田…"
        );
    }
}

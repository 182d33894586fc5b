//! The JSON report: one object whose members are the sections, in order (`header`,
//! `systems`, `access`, `findings`, `operations`), each table an array with one row per
//! line. Keys keep a stable order: the header's field order and each table's column
//! order. Lists are arrays, counts and durations numbers, missing values null.

use super::tables::{self, Cell, Table};
use super::{Section, data::Evidence};

/// Identifies the shape, for readers.
pub const SCHEMA: &str = "accessdesk.report.reconcile/1";

fn string(s: &str) -> String {
    // Serialising a str cannot fail.
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

fn value(c: &Cell) -> String {
    match c {
        Cell::Text(s) => string(s),
        Cell::Int(i) => i.to_string(),
        Cell::Secs(s) if s.is_finite() => format!("{s:.3}"),
        Cell::Secs(_) | Cell::Null => "null".into(),
        Cell::List(l) => {
            let items: Vec<String> = l.iter().map(|i| string(i)).collect();
            format!("[{}]", items.join(","))
        }
    }
}

fn object<'a>(pairs: impl Iterator<Item = (&'a str, &'a Cell)>) -> String {
    let members: Vec<String> = pairs
        .map(|(k, v)| format!("{}:{}", string(k), value(v)))
        .collect();
    format!("{{{}}}", members.join(","))
}

fn rows(t: &Table) -> String {
    if t.rows.is_empty() {
        return "[]".into();
    }
    let lines: Vec<String> = t
        .rows
        .iter()
        .map(|r| object(t.columns.iter().copied().zip(r.iter())))
        .collect();
    format!("[\n{}\n]", lines.join(",\n"))
}

fn header(ev: &Evidence) -> String {
    let h = tables::header(ev);
    let mut members = vec![
        format!("{}:{}", string("schema"), string(SCHEMA)),
        format!("{}:{}", string("title"), string(&h.title)),
    ];
    for (k, v) in &h.fields {
        members.push(format!("{}:{}", string(k), value(v)));
    }
    members.push(format!(
        "{}:{}",
        string("observations"),
        rows(&h.observations)
    ));
    format!("{{\n\"header\":{{\n{}\n}},\n", members.join(",\n"))
}

fn body_section(t: &Table, last: bool) -> String {
    format!(
        "{}:{}{}",
        string(t.name),
        rows(t),
        if last { "\n}\n" } else { ",\n" }
    )
}

pub fn render(ev: &Evidence) -> Vec<Section> {
    let mut out = vec![Section::new("header", header(ev))];
    let body = tables::body(ev);
    let n = body.len();
    for (i, t) in body.iter().enumerate() {
        out.push(Section::new(t.name, body_section(t, i + 1 == n)));
    }
    out
}

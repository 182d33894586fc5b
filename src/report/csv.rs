//! The CSV report: one file with sections. Each section starts with a `section,NAME`
//! record, then its column names, then its rows, and ends with an empty line. Fields are
//! quoted per RFC 4180 (when they hold a comma, a quote, CR or LF; quotes doubled),
//! records end with CRLF. A list (entitlements, accounts) is one field, one item a line.
//! The header section holds `field,value` records, then a `subsection,observations`
//! record and each system's observation.

use super::tables::{self, Cell, Table};
use super::{Section, data::Evidence};

fn writer() -> csv::Writer<Vec<u8>> {
    csv::WriterBuilder::new()
        .flexible(true)
        .terminator(csv::Terminator::CRLF)
        .quote_style(csv::QuoteStyle::Necessary)
        .from_writer(Vec::new())
}

fn finish(w: csv::Writer<Vec<u8>>) -> String {
    // Writing to a Vec cannot fail; the bytes are UTF-8 because every field is a &str.
    let mut bytes = w.into_inner().unwrap_or_default();
    bytes.extend_from_slice(b"\r\n");
    String::from_utf8(bytes).unwrap_or_default()
}

fn record<I, S>(w: &mut csv::Writer<Vec<u8>>, fields: I)
where
    I: IntoIterator<Item = S>,
    S: AsRef<[u8]>,
{
    // Writing to memory does not fail.
    let _ = w.write_record(fields);
}

fn value(c: &Cell) -> String {
    c.plain("\n")
}

fn table(w: &mut csv::Writer<Vec<u8>>, t: &Table) {
    record(w, t.columns.iter());
    for row in &t.rows {
        record(w, row.iter().map(value));
    }
}

fn header(ev: &Evidence) -> String {
    let h = tables::header(ev);
    let mut w = writer();
    record(&mut w, ["section", "header"]);
    record(&mut w, ["field", "value"]);
    record(&mut w, ["title", h.title.as_str()]);
    for (k, v) in &h.fields {
        record(&mut w, [k.to_string(), value(v)]);
    }
    record(&mut w, ["subsection", "observations"]);
    table(&mut w, &h.observations);
    finish(w)
}

fn body_section(t: &Table) -> String {
    let mut w = writer();
    record(&mut w, ["section", t.name]);
    table(&mut w, t);
    finish(w)
}

pub fn render(ev: &Evidence) -> Vec<Section> {
    let mut out = vec![Section::new("header", header(ev))];
    for t in tables::body(ev) {
        out.push(Section::new(t.name, body_section(&t)));
    }
    out
}

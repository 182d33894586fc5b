//! The HTML report: one self-contained file (inline CSS and a small inline sort script;
//! no external scripts, fonts, stylesheets or images), readable offline, printable, with
//! every value escaped.

use super::tables::{self, Cell, Header, Table};
use super::{Section, data::Evidence};
use std::fmt::Write;

const STYLE: &str = r#"<style>
:root{color-scheme:light}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans","Noto Sans Arabic","Noto Sans CJK SC",sans-serif;margin:24px;color:#1b1f24;background:#fff}
h1{font-size:22px;margin:0 0 4px}
h2{font-size:18px;margin:28px 0 6px;border-bottom:2px solid #d0d7de;padding-bottom:4px}
h3{font-size:15px;margin:18px 0 6px}
p.note{margin:4px 0 10px;color:#57606a;max-width:70em}
table{border-collapse:collapse;margin:6px 0 14px;font-size:13px}
th,td{border:1px solid #d0d7de;padding:4px 7px;text-align:start;vertical-align:top}
td{white-space:pre-wrap;overflow-wrap:anywhere}
th{background:#f6f8fa;position:sticky;top:0;cursor:pointer;user-select:none;white-space:nowrap}
th:focus{outline:2px solid #0969da}
th[aria-sort=ascending]::after{content:" \25B2"}
th[aria-sort=descending]::after{content:" \25BC"}
td.num{text-align:end;font-variant-numeric:tabular-nums}
td.null{color:#8c959f}
table.kv th{text-align:start;cursor:default;position:static}
tr.v-differs td,td.v-differs{background:#fff1e5}
td.v-matches{color:#1a7f37}
td.v-not_read_in_full{background:#fff8c5}
span.ctl{color:#cf222e;font-family:ui-monospace,monospace}
code,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
footer{margin-top:28px;color:#57606a;font-size:12px}
@media print{
body{margin:0;font-size:9pt}
h2{break-after:avoid}
table{font-size:8pt;width:100%}
thead{display:table-header-group}
tr{break-inside:avoid}
th{position:static;cursor:auto;background:#eee}
th::after{content:""!important}
tr.v-differs td,td.v-differs{background:#f3f3f3}
}
</style>
"#;

/// Click (or Enter on) a header cell to sort by it; again to reverse. Numbers sort as
/// numbers when every cell of the column is one.
const SCRIPT: &str = r#"<script>
document.addEventListener('DOMContentLoaded',function(){
  document.querySelectorAll('table.sortable').forEach(function(t){
    t.querySelectorAll('thead th').forEach(function(th,i){
      th.tabIndex=0;
      var go=function(){sortTable(t,i,th);};
      th.addEventListener('click',go);
      th.addEventListener('keydown',function(e){if(e.key==='Enter'||e.key===' '){e.preventDefault();go();}});
    });
  });
});
function sortTable(t,i,th){
  var body=t.tBodies[0];if(!body){return;}
  var asc=th.getAttribute('aria-sort')!=='ascending';
  t.querySelectorAll('thead th').forEach(function(h){h.removeAttribute('aria-sort');});
  th.setAttribute('aria-sort',asc?'ascending':'descending');
  var rows=Array.prototype.slice.call(body.rows);
  var key=function(r){var c=r.cells[i];return c?c.textContent.trim():'';};
  var num=rows.every(function(r){var k=key(r);return k===''||!isNaN(Number(k));});
  rows.sort(function(a,b){
    var x=key(a),y=key(b);
    var d=num?(Number(x||0)-Number(y||0)):x.localeCompare(y);
    return asc?d:-d;
  });
  rows.forEach(function(r){body.appendChild(r);});
}
</script>
"#;

/// Escape text for HTML content and attribute values. Control and bidirectional
/// formatting characters are shown as `[U+XXXX]` so that nothing hides or reorders text.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\n' | '\t' => out.push(c),
            c if hidden(c) => {
                let _ = write!(out, "<span class=\"ctl\">[U+{:04X}]</span>", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// Characters that would be invisible, break the markup, or reorder what is shown.
fn hidden(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
        || matches!(c, '\u{FEFF}' | '\u{2028}' | '\u{2029}')
}

/// A class-safe form of a value (`not read in full` → `not_read_in_full`).
fn slug(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect()
}

fn cell(out: &mut String, column: &str, c: &Cell) {
    match c {
        Cell::Null => out.push_str("<td class=\"null\"></td>"),
        Cell::Int(_) | Cell::Secs(_) => {
            let _ = write!(out, "<td class=\"num\">{}</td>", esc(&c.plain("")));
        }
        Cell::List(items) => {
            let joined: Vec<String> = items.iter().map(|i| esc(i)).collect();
            let _ = write!(out, "<td dir=\"auto\">{}</td>", joined.join("<br>"));
        }
        Cell::Text(s) if column == "status" || column == "disposition" => {
            let _ = write!(out, "<td class=\"v-{}\">{}</td>", slug(s), esc(s));
        }
        Cell::Text(s) => {
            let _ = write!(out, "<td dir=\"auto\">{}</td>", esc(s));
        }
    }
}

fn table(out: &mut String, t: &Table) {
    out.push_str("<table class=\"sortable\">\n<thead><tr>");
    for c in t.columns {
        let _ = write!(out, "<th scope=\"col\">{}</th>", esc(c));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for row in &t.rows {
        let differs = t
            .columns
            .iter()
            .zip(row)
            .any(|(c, v)| *c == "status" && *v == Cell::text(super::data::DIFFERS));
        out.push_str(if differs {
            "<tr class=\"v-differs\">"
        } else {
            "<tr>"
        });
        for (col, v) in t.columns.iter().zip(row) {
            cell(out, col, v);
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n");
}

fn header(out: &mut String, ev: &Evidence, h: &Header) {
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{} (run {})</title>\n",
        esc(&h.title),
        ev.run.id
    );
    out.push_str(STYLE);
    out.push_str(SCRIPT);
    out.push_str("</head>\n<body>\n<section id=\"header\">\n");
    let _ = writeln!(out, "<h1>{}</h1>", esc(&h.title));
    let _ = writeln!(
        out,
        "<p class=\"note\">Observation run {} ({}). Sections: header, systems, access, findings, operations. Click a column heading to sort.</p>",
        ev.run.id,
        esc(&ev.run.status)
    );
    out.push_str("<table class=\"kv\">\n<tbody>\n");
    for (k, v) in &h.fields {
        let _ = write!(out, "<tr><th scope=\"row\">{}</th>", esc(k));
        cell(out, k, v);
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n");
    let _ = writeln!(out, "<h3>{}</h3>", esc(h.observations.title));
    table(out, &h.observations);
    out.push_str("</section>\n");
}

fn body_section(t: &Table, last: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "<section id=\"{}\">", t.name);
    let _ = writeln!(out, "<h2>{}</h2>", esc(t.title));
    if !t.note.is_empty() {
        let _ = writeln!(out, "<p class=\"note\">{}</p>", esc(&t.note));
    }
    if t.rows.is_empty() {
        out.push_str("<p class=\"note\">None.</p>\n");
    }
    table(&mut out, t);
    out.push_str("</section>\n");
    if last {
        out.push_str("<footer>Written by accessdesk. `accessdesk report verify FILE` checks this file against the audit log.</footer>\n</body>\n</html>\n");
    }
    out
}

pub fn render(ev: &Evidence) -> Vec<Section> {
    let mut head = String::new();
    header(&mut head, ev, &tables::header(ev));
    let mut out = vec![Section::new("header", head)];
    let body = tables::body(ev);
    let n = body.len();
    for (i, t) in body.iter().enumerate() {
        out.push(Section::new(t.name, body_section(t, i + 1 == n)));
    }
    out
}

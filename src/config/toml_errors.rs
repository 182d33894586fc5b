//! Turning TOML and serde errors into [`InputProblem`]s with file:line:column and the key.
//!
//! [`parse_toml`] parses in two steps so that the two kinds of mistake are told apart: the
//! TOML syntax first ([`syntax_problem`]), then the file's schema ([`from_toml_error`]).
//! Either way the problem names the dotted key being defined where it went wrong
//! (`systems.okta.depends_on`), read from the text around the error's position
//! ([`key_at`]), never the parser's guess of a token. A syntax error the parser only
//! notices lines later (an array or multi-line string left open, found when the next key
//! or table starts) is reported where the unclosed construct opens.
//!
//! Messages quote keys and positions, never values: a value may be a pasted secret.

use crate::error::{InputProblem, Location, line_col};
use serde::de::DeserializeOwned;
use std::path::Path;

/// Build an input problem at a byte span of `text`.
pub fn problem_at(
    path: &Path,
    text: &str,
    span: Option<std::ops::Range<usize>>,
    key: impl Into<String>,
    message: impl Into<String>,
    hint: impl Into<String>,
) -> InputProblem {
    let (line, column) = span.map(|s| line_col(text, s.start)).unwrap_or((1, 0));
    InputProblem {
        location: Location {
            file: path.to_path_buf(),
            line,
            column,
        },
        key: key.into(),
        message: message.into(),
        hint: hint.into(),
    }
}

/// Parse `text` as `T`: a syntax error is reported by [`syntax_problem`], a schema error
/// (a missing or unknown field, a wrong type) by [`from_toml_error`].
pub fn parse_toml<T: DeserializeOwned>(
    path: &Path,
    text: &str,
    hint: &str,
) -> std::result::Result<T, InputProblem> {
    if let Err(e) = toml::de::DeTable::parse(text) {
        return Err(syntax_problem(path, text, &e, hint));
    }
    toml::from_str(text).map_err(|e| from_toml_error(path, text, &e, hint))
}

/// A TOML syntax error: the parser's message, at the line of the real mistake, with the
/// key being defined there.
pub fn syntax_problem(path: &Path, text: &str, err: &toml::de::Error, hint: &str) -> InputProblem {
    let first = first_line(err);
    let at = err
        .span()
        .map(|s| s.start)
        .unwrap_or(text.len())
        .min(text.len());
    let ctx = context_at(text, at);
    let key = ctx.key.join(".");
    let (noticed_line, _) = line_col(text, at);
    if let Some((what, start)) = ctx.open {
        let (open_line, _) = line_col(text, start);
        if open_line < noticed_line && (text[at..].trim().is_empty() || starts_statement(text, at))
        {
            let message = format!(
                "the {what} opened here is not closed (noticed at line {noticed_line}: {first})"
            );
            return problem_at(path, text, Some(start..start), key, message, hint);
        }
    }
    problem_at(path, text, Some(at..at), key, first, hint)
}

/// Convert a `toml` deserialisation (schema) error into an input problem with its
/// position and the dotted key it is about.
pub fn from_toml_error(path: &Path, text: &str, err: &toml::de::Error, hint: &str) -> InputProblem {
    let message = first_line(err);
    let mut key = match err.span() {
        Some(s) => context_at(text, s.start.min(text.len())).key,
        None => Vec::new(),
    };
    if let Some(field) = field_from_message(&message)
        && key.last().map(String::as_str) != Some(field.as_str())
    {
        key.push(field);
    }
    problem_at(path, text, err.span(), key.join("."), message, hint)
}

/// toml's message is multi-line with a source excerpt; keep the first meaningful line.
fn first_line(err: &toml::de::Error) -> String {
    err.message()
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("invalid TOML")
        .to_string()
}

/// The field a serde message is about: "missing field `kind`", "unknown field `foo`,
/// expected ...", "duplicate field `x`". (Other messages quote values, not fields.)
fn field_from_message(msg: &str) -> Option<String> {
    let rest = ["missing field `", "unknown field `", "duplicate field `"]
        .iter()
        .find_map(|p| msg.strip_prefix(p))?;
    let end = rest.find('`')?;
    Some(rest[..end].to_string())
}

/// The dotted key being defined at byte `at` of `text` (the table in force, the key of
/// the statement, the keys of enclosing inline tables; at the start of a line, the key or
/// table header that begins there).
pub fn key_at(text: &str, at: usize) -> String {
    context_at(text, at.min(text.len())).key.join(".")
}

#[derive(Debug, Default)]
struct Context {
    key: Vec<String>,
    /// The outermost construct still open at the offset: what it is, and where it opens.
    open: Option<(&'static str, usize)>,
}

enum Frame {
    Array,
    /// An inline table, and the key being defined in it (None: a key comes next).
    Inline(Option<Vec<String>>),
}

/// Whether the line holding `at` starts a key/value or a table header: where the parser
/// lands after running past an unclosed construct.
fn starts_statement(text: &str, at: usize) -> bool {
    let b = text.as_bytes();
    let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let first = skip_blanks(b, line_start);
    if b.get(first) == Some(&b'[') {
        let inner = first
            + if b.get(first + 1) == Some(&b'[') {
                2
            } else {
                1
            };
        let (path, end) = parse_key(b, inner);
        return !path.is_empty() && b.get(end) == Some(&b']');
    }
    let (path, end) = parse_key(b, first);
    !path.is_empty() && b.get(skip_blanks(b, end)) == Some(&b'=')
}

fn is_bare(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'-'
}

fn skip_blanks(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
        i += 1;
    }
    i
}

/// A dotted key starting at `i` (bare or quoted parts): its parts and where it ends.
fn parse_key(b: &[u8], mut i: usize) -> (Vec<String>, usize) {
    let mut parts = Vec::new();
    loop {
        i = skip_blanks(b, i);
        match b.get(i) {
            Some(&q @ (b'"' | b'\'')) => {
                let start = i + 1;
                let mut j = start;
                while j < b.len() && b[j] != q && b[j] != b'\n' {
                    j += if b[j] == b'\\' && q == b'"' { 2 } else { 1 };
                }
                let j = j.min(b.len());
                parts.push(String::from_utf8_lossy(&b[start..j]).into_owned());
                i = if b.get(j) == Some(&q) { j + 1 } else { j };
            }
            Some(c) if is_bare(*c) => {
                let start = i;
                while i < b.len() && is_bare(b[i]) {
                    i += 1;
                }
                parts.push(String::from_utf8_lossy(&b[start..i]).into_owned());
            }
            _ => return (parts, i),
        }
        let after = skip_blanks(b, i);
        if b.get(after) == Some(&b'.') {
            i = after + 1;
        } else {
            return (parts, after);
        }
    }
}

/// Where the string opening at `i` ends (just past its closing quote), and whether it is
/// a multi-line one; None when it is not closed before `limit`.
fn string_end(b: &[u8], i: usize, limit: usize) -> (Option<usize>, bool) {
    let q = b[i];
    let triple = b.get(i + 1) == Some(&q) && b.get(i + 2) == Some(&q);
    let mut j = if triple { i + 3 } else { i + 1 };
    while j < limit {
        let c = b[j];
        if c == b'\\' && q == b'"' {
            j += 2;
            continue;
        }
        if c == q {
            if !triple {
                return (Some(j + 1), false);
            }
            if b.get(j + 1) == Some(&q) && b.get(j + 2) == Some(&q) {
                // A closing run may hold up to two more quotes of the content.
                let mut k = j + 3;
                while k < b.len() && b[k] == q && k < j + 5 {
                    k += 1;
                }
                return (Some(k), true);
            }
        }
        if c == b'\n' && !triple {
            return (None, false);
        }
        j += 1;
    }
    (None, triple)
}

/// Read `text` up to byte `at`, tracking tables, keys and open brackets and strings.
fn context_at(text: &str, at: usize) -> Context {
    let b = text.as_bytes();
    let mut table: Vec<String> = Vec::new();
    let mut stmt: Vec<String> = Vec::new();
    let mut stack: Vec<(Frame, usize)> = Vec::new();
    let mut open_string: Option<(&'static str, usize)> = None;
    // At depth 0: expecting a key or a table header (true at the start of each line).
    let mut line_start = true;
    let mut i = 0;
    while i < at {
        let c = b[i];
        match c {
            b'\n' => {
                if stack.is_empty() {
                    line_start = true;
                }
                i += 1;
                continue;
            }
            b' ' | b'\t' | b'\r' => {
                i += 1;
                continue;
            }
            b'#' => {
                while i < at && b[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            _ => {}
        }
        if stack.is_empty() && line_start {
            line_start = false;
            if c == b'[' {
                let double = b.get(i + 1) == Some(&b'[');
                let (path, end) = parse_key(b, i + if double { 2 } else { 1 });
                table = path;
                stmt.clear();
                i = end.max(i + 1);
                while i < at && b[i] == b']' {
                    i += 1;
                }
            } else {
                let (path, end) = parse_key(b, i);
                stmt = path;
                let eq = skip_blanks(b, end);
                i = if b.get(eq) == Some(&b'=') {
                    eq + 1
                } else {
                    end.max(i + 1)
                };
            }
            continue;
        }
        if let Some((Frame::Inline(key @ None), _)) = stack.last_mut()
            && c != b'}'
        {
            let (path, end) = parse_key(b, i);
            *key = Some(path);
            let eq = skip_blanks(b, end);
            i = if b.get(eq) == Some(&b'=') {
                eq + 1
            } else {
                end.max(i + 1)
            };
            continue;
        }
        match c {
            b'"' | b'\'' => {
                let (end, multi) = string_end(b, i, at);
                match end {
                    Some(e) => i = e,
                    None => {
                        let what = if multi { "multi-line string" } else { "string" };
                        open_string = Some((what, i));
                        break;
                    }
                }
                continue;
            }
            b'[' => stack.push((Frame::Array, i)),
            b'{' => stack.push((Frame::Inline(None), i)),
            b']' | b'}' => {
                stack.pop();
            }
            b',' => {
                if let Some((Frame::Inline(key), _)) = stack.last_mut() {
                    *key = None;
                }
            }
            _ => {}
        }
        i += 1;
    }
    let mut key = table.clone();
    if stack.is_empty() && open_string.is_none() && line_start {
        // At the start of a statement: the key or header that begins at `at`.
        if b.get(at) == Some(&b'[') {
            let double = b.get(at + 1) == Some(&b'[');
            key = parse_key(b, at + if double { 2 } else { 1 }).0;
        } else {
            key.extend(parse_key(b, at).0);
        }
    } else {
        key.extend(stmt);
        for (frame, _) in &stack {
            if let Frame::Inline(Some(k)) = frame {
                key.extend(k.iter().cloned());
            }
        }
    }
    let open = match stack.first() {
        Some((Frame::Array, start)) => Some(("array", *start)),
        Some((Frame::Inline(_), start)) => Some(("inline table", *start)),
        None => open_string.filter(|(what, _)| *what == "multi-line string"),
    };
    Context { key, open }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Any {
        #[serde(flatten)]
        rest: std::collections::BTreeMap<String, toml::Value>,
    }

    fn syntax(text: &str) -> String {
        parse_toml::<Any>(Path::new("f.toml"), text, "")
            .unwrap_err()
            .to_string()
    }

    const HEAD: &str = "# systems\n\n[systems.okta]\nkind = \"okta\"\nbase_url = \"https://x\"\n\n";

    #[test]
    fn an_unclosed_array_is_reported_where_it_opens() {
        let e = syntax(&format!(
            "{HEAD}depends_on = [\"a\",\n\n[systems.b]\nkind = \"scim\"\n"
        ));
        assert!(
            e.starts_with("f.toml:7:14: systems.okta.depends_on: the array opened here is not closed (noticed at line 10"),
            "{e}"
        );
        let e = syntax(&format!("{HEAD}depends_on = [\"a\",\nkind = \"x\"\n"));
        assert!(
            e.starts_with("f.toml:7:14: systems.okta.depends_on:"),
            "{e}"
        );
    }

    #[test]
    fn an_unclosed_multi_line_string_is_reported_where_it_opens() {
        let e = syntax(&format!("{HEAD}description = \"\"\"abc\n\nkind = 1\n"));
        assert!(
            e.starts_with("f.toml:7:15: systems.okta.description: the multi-line string opened here is not closed"),
            "{e}"
        );
    }

    #[test]
    fn a_mistake_on_its_own_line_keeps_its_position_and_names_the_key() {
        for (tail, want) in [
            (
                "rate_limit = { requests_per_minute = 600\n",
                "f.toml:7:41: systems.okta.rate_limit.requests_per_minute: unclosed inline table",
            ),
            (
                "credential = \"keyring:a\n",
                "f.toml:7:24: systems.okta.credential: invalid basic string",
            ),
            (
                "credential keyring\n",
                "f.toml:7:12: systems.okta.credential: key with no value",
            ),
            (
                "kind = \"scim\"\n",
                "f.toml:7:1: systems.okta.kind: duplicate key",
            ),
            (
                "verify = yes\n",
                "f.toml:7:10: systems.okta.verify: string values must be quoted",
            ),
            (
                "[systems.zoom\n",
                "f.toml:7:14: systems.zoom: unclosed table",
            ),
            (
                "depends_on = [\n  \"a\"\n  \"b\",\n]\n",
                "f.toml:9:3: systems.okta.depends_on: missing comma between array elements",
            ),
        ] {
            let e = syntax(&format!("{HEAD}{tail}"));
            assert!(e.starts_with(want), "{tail:?}: {e}");
        }
    }

    #[test]
    fn schema_errors_name_the_dotted_key() {
        #[derive(serde::Deserialize, Debug)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Sys {
            kind: String,
            #[serde(default)]
            n: Option<u32>,
        }
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct File {
            systems: std::collections::BTreeMap<String, Sys>,
        }
        let e = |t: &str| {
            parse_toml::<File>(Path::new("f.toml"), t, "")
                .unwrap_err()
                .to_string()
        };
        let t = e("[systems.a]\nkind = \"okta\"\nbogus = 1\n");
        assert!(
            t.starts_with("f.toml:3:1: systems.a.bogus: unknown field"),
            "{t}"
        );
        let t = e("[systems.a]\nn = 1\n");
        assert!(
            t.starts_with("f.toml:1:1: systems.a.kind: missing field"),
            "{t}"
        );
        let t = e("[systems.a]\nkind = 5\n");
        assert!(
            t.starts_with("f.toml:2:8: systems.a.kind: invalid type"),
            "{t}"
        );
    }

    #[test]
    fn key_at_reads_quoted_and_dotted_keys() {
        let t = "[a.\"b c\"]\nx.y = [1, { z = 2 }]\n";
        assert_eq!(key_at(t, t.find("2").unwrap()), "a.b c.x.y.z");
        assert_eq!(key_at(t, 0), "a.b c");
        assert_eq!(key_at(t, t.len()), "a.b c");
    }
}

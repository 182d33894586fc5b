//! The filter expression language the simulators understand: Okta's `filter` / `search`
//! and SCIM's `filter` (RFC 7644 §3.4.2.2) share it.
//!
//! `path op "value"` and `path pr`, combined with `and` / `or` / `not (...)` and
//! parentheses; operators `eq ne co sw ew gt ge lt le pr`; values are JSON strings, numbers,
//! `true`, `false` or `null`. SCIM's value paths (`emails[type eq "work"]`, some element of
//! a multi-valued attribute matches the inner filter) and schema-qualified paths
//! (`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department`) are parsed too.
//!
//! How names and strings compare differs by vendor, so it is a parameter ([`Semantics`]):
//! Okta compares attribute names exactly and string values case-insensitively only for
//! `search`; SCIM compares attribute names case-insensitively and string values by each
//! attribute's `caseExact`.

use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Cmp {
        path: String,
        op: String,
        value: Option<Value>,
    },
    /// `attr[filter]`: some element of the multi-valued `attr` matches `filter`, whose paths
    /// are relative to the element.
    ValuePath {
        path: String,
        filter: Box<Expr>,
    },
}

const OPERATORS: &[&str] = &["eq", "ne", "sw", "ew", "co", "gt", "ge", "lt", "le", "pr"];

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Str(String),
    Open,
    Close,
    OpenBracket,
    CloseBracket,
}

fn lex(s: &str) -> Result<Vec<Tok>, String> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '(' | ')' | '[' | ']' => {
                chars.next();
                out.push(match c {
                    '(' => Tok::Open,
                    ')' => Tok::Close,
                    '[' => Tok::OpenBracket,
                    _ => Tok::CloseBracket,
                });
            }
            '"' => {
                // A JSON string literal, escapes included (RFC 7644: compValue is JSON).
                let mut raw = String::from('"');
                chars.next();
                loop {
                    match chars.next() {
                        Some('\\') => match chars.next() {
                            Some(e) => {
                                raw.push('\\');
                                raw.push(e);
                            }
                            None => return Err("unterminated string".into()),
                        },
                        Some('"') => break,
                        Some(x) => raw.push(x),
                        None => return Err("unterminated string".into()),
                    }
                }
                raw.push('"');
                let v = serde_json::from_str::<String>(&raw)
                    .map_err(|_| format!("bad string literal {raw}"))?;
                out.push(Tok::Str(v));
            }
            _ => {
                let mut w = String::new();
                while let Some(&x) = chars.peek() {
                    if x.is_whitespace() || "()[]\"".contains(x) {
                        break;
                    }
                    w.push(x);
                    chars.next();
                }
                out.push(Tok::Word(w));
            }
        }
    }
    Ok(out)
}

pub fn parse(s: &str) -> Result<Expr, String> {
    let toks = lex(s)?;
    let mut pos = 0;
    let e = parse_or(&toks, &mut pos)?;
    if pos != toks.len() {
        return Err("trailing input".into());
    }
    Ok(e)
}

fn keyword(t: Option<&Tok>, k: &str) -> bool {
    matches!(t, Some(Tok::Word(w)) if w.eq_ignore_ascii_case(k))
}

fn parse_or(t: &[Tok], pos: &mut usize) -> Result<Expr, String> {
    let mut left = parse_and(t, pos)?;
    while keyword(t.get(*pos), "or") {
        *pos += 1;
        let right = parse_and(t, pos)?;
        left = Expr::Or(Box::new(left), Box::new(right));
    }
    Ok(left)
}

fn parse_and(t: &[Tok], pos: &mut usize) -> Result<Expr, String> {
    let mut left = parse_primary(t, pos)?;
    while keyword(t.get(*pos), "and") {
        *pos += 1;
        let right = parse_primary(t, pos)?;
        left = Expr::And(Box::new(left), Box::new(right));
    }
    Ok(left)
}

fn parse_primary(t: &[Tok], pos: &mut usize) -> Result<Expr, String> {
    match t.get(*pos) {
        Some(Tok::Open) => {
            *pos += 1;
            let e = parse_or(t, pos)?;
            if t.get(*pos) != Some(&Tok::Close) {
                return Err("missing )".into());
            }
            *pos += 1;
            Ok(e)
        }
        Some(Tok::Word(w))
            if w.eq_ignore_ascii_case("not") && t.get(*pos + 1) == Some(&Tok::Open) =>
        {
            *pos += 1;
            Ok(Expr::Not(Box::new(parse_primary(t, pos)?)))
        }
        Some(Tok::Word(path)) => {
            let path = path.clone();
            if t.get(*pos + 1) == Some(&Tok::OpenBracket) {
                *pos += 2;
                let inner = parse_or(t, pos)?;
                if t.get(*pos) != Some(&Tok::CloseBracket) {
                    return Err("missing ]".into());
                }
                *pos += 1;
                return Ok(Expr::ValuePath {
                    path,
                    filter: Box::new(inner),
                });
            }
            let op = match t.get(*pos + 1) {
                Some(Tok::Word(o)) => o.to_ascii_lowercase(),
                _ => return Err("missing operator".into()),
            };
            if !OPERATORS.contains(&op.as_str()) {
                return Err(format!("unknown operator {op}"));
            }
            *pos += 2;
            if op == "pr" {
                return Ok(Expr::Cmp {
                    path,
                    op,
                    value: None,
                });
            }
            let value = match t.get(*pos) {
                Some(Tok::Str(s)) => Value::String(s.clone()),
                Some(Tok::Word(w)) if w == "true" => Value::Bool(true),
                Some(Tok::Word(w)) if w == "false" => Value::Bool(false),
                Some(Tok::Word(w)) if w == "null" => Value::Null,
                Some(Tok::Word(w)) => match w.parse::<f64>() {
                    Ok(n) => serde_json::json!(n),
                    Err(_) => return Err(format!("bad value {w}")),
                },
                _ => return Err("missing value".into()),
            };
            *pos += 1;
            Ok(Expr::Cmp {
                path,
                op,
                value: Some(value),
            })
        }
        _ => Err("expected a condition".into()),
    }
}

/// How a vendor compares names and values.
pub struct Semantics<'a> {
    /// Attribute names match whatever their case (SCIM); Okta's must match exactly.
    pub names_ci: bool,
    /// Whether string values at this (full, dotted) path compare case-insensitively.
    pub values_ci: &'a dyn Fn(&str) -> bool,
}

fn key<'a>(obj: &'a serde_json::Map<String, Value>, k: &str, ci: bool) -> Option<&'a Value> {
    obj.get(k).or_else(|| {
        if ci {
            obj.iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(k))
                .map(|(_, v)| v)
        } else {
            None
        }
    })
}

/// Every value at `path` in `v`: multi-valued attributes on the way (and at the end)
/// contribute each of their elements. A schema-qualified path (`urn:...:attr.sub`) starts
/// in that schema's extension object, or at the top for a core schema.
pub fn lookup<'a>(v: &'a Value, path: &str, names_ci: bool) -> Vec<&'a Value> {
    let mut start = v;
    let mut rest = path;
    if path
        .get(..4)
        .is_some_and(|p| p.eq_ignore_ascii_case("urn:"))
    {
        let lower = path.to_ascii_lowercase();
        let ext = v.as_object().and_then(|o| {
            o.iter()
                .filter(|(k, _)| lower.starts_with(&format!("{}:", k.to_ascii_lowercase())))
                .max_by_key(|(k, _)| k.len())
        });
        match ext {
            Some((k, inner)) => {
                start = inner;
                rest = &path[k.len() + 1..];
            }
            // A core-schema URN (or an extension this resource does not have): the last
            // segment names the attribute at the top level.
            None => {
                let is_extension = lower.contains(":extension:");
                if is_extension {
                    return Vec::new();
                }
                rest = path.rsplit(':').next().unwrap_or(path);
            }
        }
    }
    let mut cur: Vec<&Value> = vec![start];
    for seg in rest.split('.') {
        let mut next = Vec::new();
        for c in cur {
            match c {
                Value::Object(o) => next.extend(key(o, seg, names_ci)),
                Value::Array(items) => {
                    for i in items {
                        if let Value::Object(o) = i {
                            next.extend(key(o, seg, names_ci));
                        }
                    }
                }
                _ => {}
            }
        }
        cur = next;
    }
    cur.into_iter()
        .flat_map(|x| match x {
            Value::Array(items) => items.iter().collect::<Vec<_>>(),
            other => vec![other],
        })
        .filter(|x| !x.is_null())
        .collect()
}

fn compare(got: &Value, op: &str, want: &Value, ci: bool) -> bool {
    let norm = |x: &Value| match x {
        Value::String(s) if ci => Value::String(s.to_lowercase()),
        other => other.clone(),
    };
    let (got, want) = (norm(got), norm(want));
    let strs = match (&got, &want) {
        (Value::String(g), Value::String(w)) => Some((g.as_str(), w.as_str())),
        _ => None,
    };
    match op {
        "eq" => got == want,
        "ne" => got != want,
        "sw" => strs.is_some_and(|(g, w)| g.starts_with(w)),
        "ew" => strs.is_some_and(|(g, w)| g.ends_with(w)),
        "co" => strs.is_some_and(|(g, w)| g.contains(w)),
        cmp => {
            let ord = match (&got, &want) {
                (Value::String(g), Value::String(w)) => g.partial_cmp(w),
                (Value::Number(g), Value::Number(w)) => g.as_f64().partial_cmp(&w.as_f64()),
                _ => None,
            };
            match (cmp, ord) {
                ("gt", Some(o)) => o.is_gt(),
                ("ge", Some(o)) => o.is_ge(),
                ("lt", Some(o)) => o.is_lt(),
                ("le", Some(o)) => o.is_le(),
                _ => false,
            }
        }
    }
}

impl Expr {
    /// Okta semantics: exact attribute names; `ci` compares strings case-insensitively
    /// (search).
    pub fn matches(&self, v: &Value, ci: bool) -> bool {
        self.matches_with(
            v,
            &Semantics {
                names_ci: false,
                values_ci: &|_| ci,
            },
        )
    }

    pub fn matches_with(&self, v: &Value, sem: &Semantics<'_>) -> bool {
        self.matches_at(v, sem, "")
    }

    fn matches_at(&self, v: &Value, sem: &Semantics<'_>, prefix: &str) -> bool {
        match self {
            Expr::And(a, b) => a.matches_at(v, sem, prefix) && b.matches_at(v, sem, prefix),
            Expr::Or(a, b) => a.matches_at(v, sem, prefix) || b.matches_at(v, sem, prefix),
            Expr::Not(a) => !a.matches_at(v, sem, prefix),
            Expr::ValuePath { path, filter } => {
                let full = join(prefix, path);
                lookup(v, path, sem.names_ci)
                    .into_iter()
                    .any(|el| filter.matches_at(el, sem, &full))
            }
            Expr::Cmp { path, op, value } => {
                let got = lookup(v, path, sem.names_ci);
                if got.is_empty() {
                    return op == "ne";
                }
                if op == "pr" {
                    return true;
                }
                let Some(want) = value else { return false };
                let ci = (sem.values_ci)(&join(prefix, path));
                if op == "ne" {
                    return got.iter().all(|g| compare(g, op, want, ci));
                }
                got.iter().any(|g| compare(g, op, want, ci))
            }
        }
    }
}

fn join(prefix: &str, path: &str) -> String {
    if prefix.is_empty() {
        path.to_string()
    } else {
        format!("{prefix}.{path}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_and_evaluates_okta_expressions() {
        let u = json!({"id": "00u1", "status": "ACTIVE", "profile": {"login": "A@x.com", "department": "Eng"}});
        let e = parse(r#"status eq "ACTIVE" or status eq "DEPROVISIONED""#).unwrap();
        assert!(e.matches(&u, false));
        let e = parse(r#"profile.login eq "a@x.com""#).unwrap();
        assert!(!e.matches(&u, false) && e.matches(&u, true));
        let e = parse(r#"(profile.department sw "E" and id pr) and not_there pr"#).unwrap();
        assert!(!e.matches(&u, true));
        assert!(parse(r#"status eq"#).is_err());
        assert!(parse(r#"status zz "x""#).is_err());
        assert!(parse(r#"status eq "x"#).is_err());
        let e = parse(r#"Status eq "ACTIVE""#).unwrap();
        assert!(!e.matches(&u, true), "Okta attribute names are exact");
    }

    #[test]
    fn scim_value_paths_urns_not_and_escapes() {
        let u = json!({
            "id": "u1", "userName": "Ada@Example.com", "active": true,
            "emails": [{"value": "home@x.org", "type": "home"}, {"value": "ada@example.com", "type": "work"}],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "R&D"},
            "members": [{"value": "a"}, {"value": "b"}]
        });
        let ci_except_id = |p: &str| !matches!(p, "id" | "members.value");
        let sem = Semantics {
            names_ci: true,
            values_ci: &ci_except_id,
        };
        let m = |f: &str| parse(f).unwrap().matches_with(&u, &sem);
        assert!(m(r#"username eq "ada@example.com""#));
        assert!(!m(r#"id eq "U1""#), "id is caseExact");
        assert!(m(r#"emails[type eq "work" and value ew "@example.com"]"#));
        assert!(!m(r#"emails[type eq "work" and value co "home"]"#));
        assert!(m(r#"emails.value eq "HOME@x.org""#), "any element");
        assert!(m(r#"members.value eq "b""#));
        assert!(m(
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "r&d""#
        ));
        assert!(m(
            r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "ada""#
        ));
        assert!(!m(
            r#"urn:ietf:params:scim:schemas:extension:other:2.0:User:x pr"#
        ));
        assert!(m(r#"not (active eq false) and id eq "u1""#));
        assert!(m(r#"userName eq "Ada@Example.com" or userName eq "x\"y""#));
        let e = parse(r#"displayName eq "Eng \"core\" \\ ops""#).unwrap();
        let g = json!({"displayName": "Eng \"core\" \\ ops"});
        assert!(e.matches_with(&g, &sem));
        assert!(parse("emails[type eq \"work\"").is_err());
        assert!(parse("").is_err());
    }

    proptest::proptest! {
        #[test]
        fn any_input_parses_or_errs_and_never_panics(f in "\\PC{0,60}", path in "[a-zü:.\\[\\] \"]{0,20}") {
            let v = json!({"a": [{"b": "x"}], "urn:x:y": {"c": 1}, "ü": "é"});
            if let Ok(e) = parse(&f) {
                let _ = e.matches(&v, true);
            }
            let _ = lookup(&v, &path, true);
            let _ = lookup(&v, &format!("urn:{path}"), false);
        }
    }
}

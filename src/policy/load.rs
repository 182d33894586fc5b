//! Reading and validating policies.toml. Every problem is collected (not just the first)
//! and located at file:line:col; problems inside a `when` condition point at the offending
//! token inside the TOML string.

use super::check::{self, TExpr};
use super::schema::{Schema, Ty};
use crate::config::systems::{IMPORT_FIELDS, person_attribute};
use crate::config::toml_errors::{parse_toml, problem_at};
use crate::config::{Catalog, ImportMapping};
use crate::error::InputProblem;
use crate::model::EntitlementRef;
use crate::{Error, Result};
use serde::Deserialize;
use serde_spanned::Spanned;
use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::path::Path;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    attributes: BTreeMap<Spanned<String>, Spanned<String>>,
    #[serde(default)]
    rule: Vec<RawRule>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    name: Spanned<String>,
    #[serde(default)]
    description: Option<String>,
    when: Spanned<String>,
    grant: Spanned<Vec<Spanned<String>>>,
    #[serde(default)]
    requires_approval: bool,
    #[serde(default)]
    duration: Option<Spanned<String>>,
}

/// One rule as loaded, before the engine is built.
pub struct LoadedRule {
    pub name: String,
    pub description: Option<String>,
    pub when: String,
    pub condition: TExpr,
    pub grants: Vec<EntitlementRef>,
    pub requires_approval: bool,
    pub duration: Option<(chrono::TimeDelta, String)>,
    pub line: usize,
}

/// The longest time bound a rule may give (about 100 years).
const MAX_DURATION_DAYS: i64 = 36_600;

const FORMAT_HINT: &str = "each rule is a [[rule]] table with name, when, grant and optional \
    description, requires_approval and duration";

/// Parse and validate policies.toml text against the catalogue. Conditions may also name
/// a field by the HR export's own column name (`columns`, systems.toml's
/// `[import.columns]`) or by its import field name (`person.employee_id`).
pub fn parse(
    path: &Path,
    text: &str,
    catalog: &Catalog,
    columns: &ImportMapping,
) -> Result<(Schema, Vec<LoadedRule>)> {
    let raw: RawFile = parse_toml(path, text, FORMAT_HINT).map_err(|p| Error::input(vec![p]))?;
    let mut problems: Vec<InputProblem> = Vec::new();
    let at = |span: Range<usize>, key: &str, msg: String, hint: &str| {
        problem_at(path, text, Some(span), key, msg, hint)
    };

    // Custom attributes.
    let mut custom = Vec::new();
    for (name, ty) in &raw.attributes {
        let key = format!("attributes.{}", name.get_ref());
        if !valid_ident(name.get_ref()) {
            problems.push(at(
                name.span(),
                &key,
                format!(
                    "attribute name {:?} cannot be used in a condition",
                    name.get_ref()
                ),
                "use letters, digits and _ (not starting with a digit)",
            ));
            continue;
        }
        match Ty::parse_attribute_type(ty.get_ref()) {
            Some(t) => custom.push((name.get_ref().clone(), t)),
            None => problems.push(at(
                ty.span(),
                &key,
                format!("unknown attribute type {:?}", ty.get_ref()),
                "types are string, int, bool and date",
            )),
        }
    }
    let mut schema = Schema::new(&custom);
    add_import_aliases(&mut schema, columns);

    let mut rules = Vec::new();
    let mut seen: HashMap<String, (usize, usize)> = HashMap::new();
    for (i, r) in raw.rule.iter().enumerate() {
        let key = format!("rule[{i}]");
        let name = r.name.get_ref();
        let line = crate::error::line_col(text, r.name.span().start).0;
        let mut ok = true;
        if name.trim().is_empty() {
            problems.push(at(
                r.name.span(),
                &format!("{key}.name"),
                "rule name is empty".into(),
                "give every rule a unique name; grants record it as their provenance",
            ));
            ok = false;
        } else if let Some((j, first_line)) = seen.get(name) {
            problems.push(at(
                r.name.span(),
                &format!("{key}.name"),
                format!("duplicate rule name {name:?}: rule[{j}] on line {first_line} has it too"),
                "rule names must be unique; grants record the rule that produced them",
            ));
            ok = false;
        } else {
            seen.insert(name.clone(), (i, line));
        }

        let condition = match check::check_condition(&schema, r.when.get_ref()) {
            Ok(t) => Some(t),
            Err(ps) => {
                let positions = string_positions(text, r.when.span(), r.when.get_ref());
                for p in ps {
                    let off = positions
                        .get(p.offset)
                        .or(positions.last())
                        .copied()
                        .unwrap_or(r.when.span().start);
                    problems.push(at(off..off, &format!("{key}.when"), p.message, &p.hint));
                }
                None
            }
        };

        let mut grants: Vec<EntitlementRef> = Vec::new();
        if r.grant.get_ref().is_empty() {
            problems.push(at(
                r.grant.span(),
                &format!("{key}.grant"),
                "the rule grants nothing".into(),
                "list entitlements as \"system:kind:name\", e.g. grant = [\"okta:group:engineering\"]",
            ));
            ok = false;
        }
        for g in r.grant.get_ref() {
            match check_grant(g.get_ref(), catalog) {
                Ok(e) => {
                    if grants.contains(&e) {
                        problems.push(at(
                            g.span(),
                            &format!("{key}.grant"),
                            format!("{e} is granted twice by this rule"),
                            "remove one of them",
                        ));
                        ok = false;
                    } else {
                        grants.push(e);
                    }
                }
                Err((msg, hint)) => {
                    problems.push(at(g.span(), &format!("{key}.grant"), msg, &hint));
                    ok = false;
                }
            }
        }

        let duration = match &r.duration {
            None => None,
            Some(d) => match parse_duration(d.get_ref()) {
                Ok(td) => Some((td, d.get_ref().trim().to_string())),
                Err(msg) => {
                    problems.push(at(
                        d.span(),
                        &format!("{key}.duration"),
                        msg,
                        "write a whole number followed by h (hours), d (days) or w (weeks), e.g. \"90d\"",
                    ));
                    ok = false;
                    None
                }
            },
        };

        if let (Some(condition), true) = (condition, ok) {
            rules.push(LoadedRule {
                name: name.clone(),
                description: r.description.clone(),
                when: r.when.get_ref().clone(),
                condition,
                grants,
                requires_approval: r.requires_approval,
                duration,
                line,
            });
        }
    }
    if !problems.is_empty() {
        problems.sort_by_key(|p| (p.location.line, p.location.column));
        return Err(Error::input(problems));
    }
    Ok((schema, rules))
}

/// `person.FIELD` for every HR import field (`person.employee_id` is `person.hris_id`), and
/// `person.HEADER` for every column header the mapping names that a condition can spell.
fn add_import_aliases(schema: &mut Schema, columns: &ImportMapping) {
    let target = |field: &str| format!("person.{}", person_attribute(field));
    for field in IMPORT_FIELDS {
        schema.add_alias(field, &target(field));
    }
    for (field, header) in &columns.columns {
        let header = header.trim();
        // Columns about the export (generated_at, updated_at) are not person attributes.
        if crate::config::systems::FEED_FIELDS.contains(&field.as_str()) {
            continue;
        }
        if valid_ident(header) {
            schema.add_alias(header, &target(field));
        }
    }
}

fn valid_ident(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Validate one `grant` entry against the catalogue. Err: (message, hint).
fn check_grant(
    s: &str,
    catalog: &Catalog,
) -> std::result::Result<EntitlementRef, (String, String)> {
    let e: EntitlementRef = s.parse().map_err(|m: String| {
        (
            m,
            "write system:kind:name, e.g. okta:group:engineering".into(),
        )
    })?;
    let Some(system) = catalog.systems.get(&e.system) else {
        let guess = catalog
            .systems
            .keys()
            .min_by_key(|k| super::schema::levenshtein(k, &e.system))
            .filter(|k| super::schema::levenshtein(k, &e.system) <= 2);
        let message = match guess {
            Some(g) => format!("unknown system {:?} in {e}; did you mean {g:?}?", e.system),
            None => format!("unknown system {:?} in {e}", e.system),
        };
        let known: Vec<&str> = catalog.systems.keys().map(String::as_str).collect();
        let hint = if known.is_empty() {
            "no systems are configured; add a [systems.NAME] table to systems.toml".to_string()
        } else {
            format!("systems in systems.toml: {}", known.join(", "))
        };
        return Err((message, hint));
    };
    // A system that declares no entitlements accepts any name.
    if !system.entitlements.is_empty()
        && !system.entitlements.contains_key(&(e.kind, e.name.clone()))
    {
        let full = e.to_string();
        let guess = system
            .entitlements
            .keys()
            .map(|(kind, name)| format!("{}:{kind}:{name}", e.system))
            .min_by_key(|d| super::schema::levenshtein(d, &full))
            .filter(|d| super::schema::levenshtein(d, &full) <= 3);
        let message = match guess {
            Some(g) => format!(
                "{full} is not in the {} catalogue; did you mean {g}?",
                e.system
            ),
            None => format!("{full} is not in the {} catalogue", e.system),
        };
        return Err((
            message,
            format!(
                "declare it in systems.toml under [[systems.{}.entitlements]], or fix the name",
                e.system
            ),
        ));
    }
    Ok(e)
}

/// `Nh`, `Nd` or `Nw` with N a positive whole number.
pub fn parse_duration(s: &str) -> std::result::Result<chrono::TimeDelta, String> {
    let t = s.trim();
    let unit = t.chars().last().unwrap_or(' ');
    let digits = &t[..t.len() - unit.len_utf8().min(t.len())];
    let n: i64 = match digits.parse() {
        Ok(n) if n > 0 && !digits.starts_with('+') => n,
        _ => return Err(format!("invalid duration {s:?}")),
    };
    let days = match unit {
        'h' => n / 24,
        'd' => n,
        'w' => n.saturating_mul(7),
        _ => return Err(format!("invalid duration {s:?}: unknown unit")),
    };
    if days > MAX_DURATION_DAYS {
        return Err(format!("duration {s:?} is longer than 100 years"));
    }
    Ok(match unit {
        'h' => chrono::TimeDelta::hours(n),
        'd' => chrono::TimeDelta::days(n),
        _ => chrono::TimeDelta::weeks(n),
    })
}

/// Byte offset in the file of each character of a TOML string value (plus one past its
/// end), so that an offset inside the decoded value can be reported at file:line:col.
/// Falls back to the string's opening quote if the raw text cannot be followed.
pub fn string_positions(text: &str, span: Range<usize>, value: &str) -> Vec<usize> {
    let fallback = || vec![span.start; value.chars().count() + 1];
    let Some(raw) = text.get(span.clone()) else {
        return fallback();
    };
    let (delim, literal) = if raw.starts_with("'''") {
        ("'''", true)
    } else if raw.starts_with("\"\"\"") {
        ("\"\"\"", false)
    } else if raw.starts_with('\'') {
        ("'", true)
    } else if raw.starts_with('"') {
        ("\"", false)
    } else {
        return fallback();
    };
    if raw.len() < 2 * delim.len() {
        return fallback();
    }
    let mut start = span.start + delim.len();
    let end = span.end - delim.len();
    if delim.len() == 3 {
        if text[start..].starts_with("\r\n") {
            start += 2;
        } else if text[start..].starts_with('\n') {
            start += 1;
        }
    }
    let Some(body) = text.get(start..end) else {
        return fallback();
    };
    let mut positions = Vec::with_capacity(value.len() + 1);
    let mut decoded = String::with_capacity(value.len());
    let mut chars = body.char_indices().peekable();
    while let Some((off, c)) = chars.next() {
        if literal || c != '\\' {
            positions.push(start + off);
            decoded.push(c);
            continue;
        }
        let Some((_, e)) = chars.next() else {
            return fallback();
        };
        let simple = match e {
            'n' => Some('\n'),
            't' => Some('\t'),
            'r' => Some('\r'),
            'b' => Some('\u{8}'),
            'f' => Some('\u{c}'),
            'e' => Some('\u{1b}'),
            '"' => Some('"'),
            '\\' => Some('\\'),
            _ => None,
        };
        if let Some(ch) = simple {
            positions.push(start + off);
            decoded.push(ch);
        } else if e == 'u' || e == 'U' || e == 'x' {
            let n = match e {
                'u' => 4,
                'U' => 8,
                _ => 2,
            };
            let mut hex = String::new();
            for _ in 0..n {
                match chars.next() {
                    Some((_, h)) => hex.push(h),
                    None => return fallback(),
                }
            }
            match u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                Some(ch) => {
                    positions.push(start + off);
                    decoded.push(ch);
                }
                None => return fallback(),
            }
        } else if e.is_whitespace() {
            // Line-ending backslash: skip all whitespace up to the next content.
            while chars.peek().is_some_and(|(_, c)| c.is_whitespace()) {
                chars.next();
            }
        } else {
            return fallback();
        }
    }
    positions.push(end);
    if decoded != value {
        return fallback();
    }
    positions
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90d"), Ok(chrono::TimeDelta::days(90)));
        assert_eq!(parse_duration("12h"), Ok(chrono::TimeDelta::hours(12)));
        assert_eq!(parse_duration("2w"), Ok(chrono::TimeDelta::weeks(2)));
        for bad in [
            "",
            "d",
            "0d",
            "-1d",
            "+3d",
            "3",
            "3m",
            "1.5d",
            "99999999w",
            "é",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn positions_follow_escapes_and_delimiters() {
        for (text, value) in [
            (r#"when = "a \"b\" c""#, "a \"b\" c"),
            ("when = 'a \"b\" c'", "a \"b\" c"),
            ("when = '''\nab\ncd'''", "ab\ncd"),
            ("when = \"\"\"\nab \\\n   cd\"\"\"", "ab cd"),
            (r#"when = "\u00e9x""#, "éx"),
        ] {
            let span = 7..text.len();
            let pos = string_positions(text, span, value);
            assert_eq!(pos.len(), value.chars().count() + 1, "{text}");
            let last = value.chars().last().unwrap();
            let lastpos = pos[pos.len() - 2];
            assert!(text[lastpos..].starts_with(last), "{text}: {lastpos}");
        }
    }
}

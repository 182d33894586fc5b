//! The person attributes a condition can read, their static types, and how a [`Person`]
//! is turned into values of those types.
//!
//! Every attribute has one of four types. How each appears to CEL (and to the cel crate's
//! interpreter, which the tests use as the reference) is fixed here:
//!
//! | type     | CEL value                         | absent or unreadable value   |
//! |----------|-----------------------------------|------------------------------|
//! | `string` | string                            | `""`                         |
//! | `int`    | int                               | `0`                          |
//! | `bool`   | bool (`true`, `yes`, `y`, `1`)    | `false`                      |
//! | `date`   | string `"YYYY-MM-DD"`             | `""` (sorts before any date) |
//!
//! Dates are ISO strings, so `<`, `<=`, `>`, `>=` order them correctly; the checker only
//! lets a date be compared with another date or a `"YYYY-MM-DD"` literal (or `""` with `==`
//! and `!=`, the test for "no date"). The fast evaluator compares them as day numbers,
//! which agrees with the string order for years 0000-9999.

use crate::model::Person;
use chrono::{Datelike, NaiveDate};
use std::collections::HashMap;
use std::fmt;

/// The static type of an attribute or expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ty {
    Bool,
    Int,
    Str,
    Date,
    /// A list literal (only as the right side of `in`, or in `size`).
    List,
}

impl Ty {
    pub fn name(self) -> &'static str {
        match self {
            Ty::Bool => "bool",
            Ty::Int => "int",
            Ty::Str => "string",
            Ty::Date => "date",
            Ty::List => "list",
        }
    }

    /// Parse a type name as written in `[attributes]`.
    pub fn parse_attribute_type(s: &str) -> Option<Ty> {
        match s {
            "string" => Some(Ty::Str),
            "int" => Some(Ty::Int),
            "bool" => Some(Ty::Bool),
            "date" => Some(Ty::Date),
            _ => None,
        }
    }
}

impl fmt::Display for Ty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The built-in person fields, in slot order.
const BUILTIN_STRINGS: [&str; 12] = [
    "hris_id",
    "given_name",
    "family_name",
    "preferred_name",
    "display_name",
    "email",
    "department",
    "title",
    "manager_id",
    "location",
    "cost_center",
    "status",
];
const BUILTIN_DATES: [&str; 2] = ["start_date", "end_date"];

/// Slot of `person.status` among the string slots.
pub const STATUS_SLOT: u16 = 11;

/// Where an attribute's value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Builtin,
    /// `person.custom[key]`.
    Custom(String),
}

/// One attribute a condition can name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// As written in a condition: `person.department`, `person.custom.clearance`.
    pub path: String,
    pub ty: Ty,
    /// Index among the attributes of the same type (see [`Record`]).
    pub slot: u16,
    pub source: Source,
}

/// The attributes visible to conditions: the built-in fields plus declared custom ones.
#[derive(Debug, Clone)]
pub struct Schema {
    pub fields: Vec<Field>,
    by_path: HashMap<String, usize>,
    /// Other names for attributes (`person.dept` for `person.department`), in the order
    /// added: (alias path, field index).
    aliases: Vec<(String, usize)>,
    /// Custom attributes by type, in slot order: (key in `person.custom`).
    custom_strs: Vec<String>,
    custom_dates: Vec<String>,
    custom_ints: Vec<String>,
    custom_bools: Vec<String>,
}

impl Default for Schema {
    fn default() -> Self {
        Schema::new(&[])
    }
}

impl Schema {
    /// The built-in fields plus `custom` (name, type) in the order given.
    pub fn new(custom: &[(String, Ty)]) -> Schema {
        let mut fields = Vec::new();
        for (i, name) in BUILTIN_STRINGS.iter().enumerate() {
            fields.push(Field {
                path: format!("person.{name}"),
                ty: Ty::Str,
                slot: i as u16,
                source: Source::Builtin,
            });
        }
        for (i, name) in BUILTIN_DATES.iter().enumerate() {
            fields.push(Field {
                path: format!("person.{name}"),
                ty: Ty::Date,
                slot: i as u16,
                source: Source::Builtin,
            });
        }
        let mut s = Schema {
            fields,
            by_path: HashMap::new(),
            aliases: Vec::new(),
            custom_strs: Vec::new(),
            custom_dates: Vec::new(),
            custom_ints: Vec::new(),
            custom_bools: Vec::new(),
        };
        for (name, ty) in custom {
            let (list, base) = match ty {
                Ty::Str => (&mut s.custom_strs, BUILTIN_STRINGS.len()),
                Ty::Date => (&mut s.custom_dates, BUILTIN_DATES.len()),
                Ty::Int => (&mut s.custom_ints, 0),
                Ty::Bool => (&mut s.custom_bools, 0),
                Ty::List => continue,
            };
            let slot = (base + list.len()) as u16;
            list.push(name.clone());
            s.fields.push(Field {
                path: format!("person.custom.{name}"),
                ty: *ty,
                slot,
                source: Source::Custom(name.clone()),
            });
        }
        s.by_path = s
            .fields
            .iter()
            .enumerate()
            .map(|(i, f)| (f.path.clone(), i))
            .collect();
        s
    }

    /// Let conditions name the attribute written `path` as `person.ALIAS` too (the HR
    /// export's own column names). Ignored, returning false, when `person.ALIAS` already
    /// names an attribute (an attribute's own name always wins, and the first alias) or
    /// `path` names none.
    pub fn add_alias(&mut self, alias: &str, path: &str) -> bool {
        let alias_path = format!("person.{alias}");
        match (self.by_path.get(&alias_path), self.by_path.get(path)) {
            (None, Some(&id)) => {
                self.by_path.insert(alias_path.clone(), id);
                self.aliases.push((alias_path, id));
                true
            }
            _ => false,
        }
    }

    /// The aliases added with [`Schema::add_alias`]: (alias path, the attribute's path).
    pub fn aliases(&self) -> impl Iterator<Item = (&str, &str)> {
        self.aliases
            .iter()
            .map(|(a, id)| (a.as_str(), self.fields[*id].path.as_str()))
    }

    /// The attribute written `path` (`person.department`, or an alias), if there is one.
    pub fn lookup(&self, path: &str) -> Option<(usize, &Field)> {
        self.by_path.get(path).map(|&i| (i, &self.fields[i]))
    }

    pub fn field(&self, id: usize) -> &Field {
        &self.fields[id]
    }

    /// Number of slots of each type: (strings, dates, ints, bools).
    pub fn slot_counts(&self) -> (usize, usize, usize, usize) {
        (
            BUILTIN_STRINGS.len() + self.custom_strs.len(),
            BUILTIN_DATES.len() + self.custom_dates.len(),
            self.custom_ints.len(),
            self.custom_bools.len(),
        )
    }

    /// The closest attribute path to a misspelt one, for "did you mean".
    pub fn suggest(&self, path: &str) -> Option<&str> {
        let last = path.rsplit('.').next().unwrap_or(path);
        let mut best: Option<(usize, &str)> = None;
        let names = self
            .fields
            .iter()
            .map(|f| f.path.as_str())
            .chain(self.aliases.iter().map(|(a, _)| a.as_str()));
        for name in names {
            let flast = name.rsplit('.').next().unwrap_or(name);
            // Compare the whole path and the last segment: `person.clearance` should find
            // `person.custom.clearance`, and `person.departmnt` `person.department`.
            let d = levenshtein(path, name).min(levenshtein(last, flast) + 1);
            if best.is_none_or(|(bd, _)| d < bd) {
                best = Some((d, name));
            }
        }
        let limit = (last.chars().count() / 3).max(2);
        best.filter(|(d, _)| *d <= limit).map(|(_, p)| p)
    }

    /// Read a person into typed slots for the fast evaluator. Strings borrow from `p`.
    pub fn record<'p>(&self, p: &'p Person) -> Record<'p> {
        let (ns, _, _, _) = self.slot_counts();
        let mut strs: Vec<&'p str> = Vec::with_capacity(ns);
        strs.extend_from_slice(&[
            p.hris_id.as_str(),
            p.given_name.as_str(),
            p.family_name.as_str(),
            p.preferred_name.as_deref().unwrap_or(""),
            p.display_name.as_deref().unwrap_or(""),
            p.email.as_str(),
            p.department.as_str(),
            p.title.as_str(),
            p.manager_id.as_deref().unwrap_or(""),
            p.location.as_str(),
            p.cost_center.as_str(),
            p.status.as_str(),
        ]);
        for key in &self.custom_strs {
            strs.push(p.custom.get(key).map(String::as_str).unwrap_or(""));
        }
        let mut dates = vec![date_days(p.start_date), date_days(p.end_date)];
        for key in &self.custom_dates {
            dates.push(date_days(
                p.custom.get(key).and_then(|v| parse_custom_date(v)),
            ));
        }
        let ints = self
            .custom_ints
            .iter()
            .map(|key| p.custom.get(key).map(|v| parse_custom_int(v)).unwrap_or(0))
            .collect();
        let bools = self
            .custom_bools
            .iter()
            .map(|key| p.custom.get(key).is_some_and(|v| parse_custom_bool(v)))
            .collect();
        Record {
            strs,
            syms: Vec::new(),
            dates,
            ints,
            bools,
        }
    }

    /// The value of one attribute for a person, as CEL sees it.
    pub fn value(&self, id: usize, p: &Person) -> AttrValue {
        let f = &self.fields[id];
        let custom = |key: &str| p.custom.get(key).map(String::as_str);
        match (&f.source, f.ty) {
            (Source::Builtin, Ty::Str) => {
                AttrValue::Str(builtin_str(p, f.slot).unwrap_or("").to_string())
            }
            (Source::Builtin, _) => AttrValue::Date(if f.slot == 0 {
                p.start_date
            } else {
                p.end_date
            }),
            (Source::Custom(k), Ty::Str) => AttrValue::Str(custom(k).unwrap_or("").to_string()),
            (Source::Custom(k), Ty::Int) => AttrValue::Int(custom(k).map_or(0, parse_custom_int)),
            (Source::Custom(k), Ty::Bool) => {
                AttrValue::Bool(custom(k).is_some_and(parse_custom_bool))
            }
            (Source::Custom(k), _) => AttrValue::Date(custom(k).and_then(parse_custom_date)),
        }
    }
}

fn builtin_str(p: &Person, slot: u16) -> Option<&str> {
    Some(match slot {
        0 => &p.hris_id,
        1 => &p.given_name,
        2 => &p.family_name,
        3 => p.preferred_name.as_deref().unwrap_or(""),
        4 => p.display_name.as_deref().unwrap_or(""),
        5 => &p.email,
        6 => &p.department,
        7 => &p.title,
        8 => p.manager_id.as_deref().unwrap_or(""),
        9 => &p.location,
        10 => &p.cost_center,
        11 => p.status.as_str(),
        _ => return None,
    })
}

/// A custom int: the trimmed text as a decimal i64, else 0.
pub fn parse_custom_int(v: &str) -> i64 {
    v.trim().parse().unwrap_or(0)
}

/// A custom bool: `true`, `yes`, `y` or `1` (any case) are true; anything else is false.
pub fn parse_custom_bool(v: &str) -> bool {
    matches!(
        v.trim().to_ascii_lowercase().as_str(),
        "true" | "yes" | "y" | "1"
    )
}

/// A custom date: `YYYY-MM-DD`, else absent.
pub fn parse_custom_date(v: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(v.trim(), "%Y-%m-%d").ok()
}

/// Day number of a date for the fast evaluator; absent sorts before every date.
pub fn date_days(d: Option<NaiveDate>) -> i32 {
    d.map_or(ABSENT_DATE, |d| d.num_days_from_ce())
}

pub const ABSENT_DATE: i32 = i32::MIN;

/// A person read into typed slots (see [`Schema::record`]).
#[derive(Debug, Clone)]
pub struct Record<'p> {
    pub strs: Vec<&'p str>,
    /// Interned ids of the string slots the rules compare by equality (filled by the engine).
    pub syms: Vec<u32>,
    pub dates: Vec<i32>,
    pub ints: Vec<i64>,
    pub bools: Vec<bool>,
}

/// An attribute value as shown by explain and given to the cel interpreter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttrValue {
    Str(String),
    Int(i64),
    Bool(bool),
    Date(Option<NaiveDate>),
}

impl AttrValue {
    /// The CEL value: dates become `"YYYY-MM-DD"` strings, absent dates `""`.
    pub fn to_cel(&self) -> cel::Value {
        match self {
            AttrValue::Str(s) => cel::Value::from(s.clone()),
            AttrValue::Int(i) => cel::Value::Int(*i),
            AttrValue::Bool(b) => cel::Value::Bool(*b),
            AttrValue::Date(d) => cel::Value::from(date_text(*d)),
        }
    }
}

/// A date as CEL sees it.
pub fn date_text(d: Option<NaiveDate>) -> String {
    d.map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

impl fmt::Display for AttrValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AttrValue::Str(s) => write!(f, "{s:?}"),
            AttrValue::Int(i) => write!(f, "{i}"),
            AttrValue::Bool(b) => write!(f, "{b}"),
            AttrValue::Date(Some(d)) => write!(f, "\"{}\"", d.format("%Y-%m-%d")),
            AttrValue::Date(None) => write!(f, "\"\" (no date)"),
        }
    }
}

pub use crate::error::levenshtein;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_near_names() {
        let s = Schema::new(&[("clearance".into(), Ty::Str)]);
        assert_eq!(s.suggest("person.departmnt"), Some("person.department"));
        assert_eq!(
            s.suggest("person.clearance"),
            Some("person.custom.clearance")
        );
        assert_eq!(s.suggest("person.zzzzzzzzz"), None);
    }

    #[test]
    fn aliases_name_the_same_attribute_and_are_suggested() {
        let mut s = Schema::new(&[("clearance".into(), Ty::Str)]);
        assert!(s.add_alias("dept", "person.department"));
        assert!(s.add_alias("Clearance", "person.custom.clearance"));
        // An attribute's own name wins; an alias of nothing is ignored.
        assert!(!s.add_alias("title", "person.department"));
        assert!(!s.add_alias("dept", "person.title"));
        assert!(!s.add_alias("team", "person.custom.team"));
        assert_eq!(s.lookup("person.dept"), s.lookup("person.department"));
        assert_eq!(s.lookup("person.title").unwrap().1.path, "person.title");
        assert_eq!(
            s.lookup("person.Clearance").unwrap().1.path,
            "person.custom.clearance"
        );
        assert_eq!(s.suggest("person.detp"), Some("person.dept"));
        assert_eq!(s.suggest("person.departmnt"), Some("person.department"));
    }

    #[test]
    fn custom_values_are_typed() {
        let s = Schema::new(&[
            ("level".into(), Ty::Int),
            ("vip".into(), Ty::Bool),
            ("since".into(), Ty::Date),
        ]);
        let mut p = Person::new("E1", "A", "B", "a@x");
        p.custom.insert("level".into(), " 7 ".into());
        p.custom.insert("vip".into(), "Yes".into());
        p.custom.insert("since".into(), "not a date".into());
        let r = s.record(&p);
        assert_eq!(r.ints, vec![7]);
        assert_eq!(r.bools, vec![true]);
        assert_eq!(r.dates[2], ABSENT_DATE);
        let (id, _) = s.lookup("person.custom.level").unwrap();
        assert_eq!(s.value(id, &p), AttrValue::Int(7));
        let (id, _) = s.lookup("person.status").unwrap();
        assert_eq!(s.value(id, &p), AttrValue::Str("active".into()));
    }
}

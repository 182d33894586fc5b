//! Mapping a source's HR record (a JSON object, whatever the vendor) to the canonical
//! person's fields: one CEL expression per field, evaluated with the record bound to
//! `record`, e.g.
//!
//! ```toml
//! [sources.bamboo.mapping]
//! employee_id = "record.id"
//! first_name  = "record.fullName.split(' ')[0]"
//! last_name   = "record.fullName.substring(record.fullName.indexOf(' ') + 1)"
//! department  = "{'ENG': 'Engineering', 'SLS': 'Sales'}[record.dept]"
//! status      = "record.terminated ? 'terminated' : 'active'"
//! ```
//!
//! The canonical fields are the CSV import's ([`IMPORT_FIELDS`], plus `custom.NAME`). A
//! field the mapping does not name reads the record's key of the same name (the CSV
//! import's default columns), and is empty when the record has none. CEL's standard
//! library and its strings extension (`split`, `trim`, `lowerAscii`, `replace`, `join`,
//! `substring`, ...) are available. A value must come out as text, a number, a boolean
//! or null (empty); anything else, or an evaluation error, names the source, the
//! record and the field.

use crate::config::systems::IMPORT_FIELDS;
use cel::{Context, Env, Program, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

/// A mapping error: where, and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappingError {
    pub source: String,
    /// The record's id where it has one, else its position.
    pub record: String,
    pub field: String,
    pub message: String,
}

impl std::fmt::Display for MappingError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "source {}, record {}, field {}: {}",
            self.source, self.record, self.field, self.message
        )
    }
}

struct FieldMap {
    field: String,
    expr: String,
    program: Program,
    /// Named in the source's mapping (not a default expression).
    explicit: bool,
}

/// A source's compiled mapping.
pub struct Mapping {
    source: String,
    fields: Vec<FieldMap>,
    env: Arc<Env>,
}

impl std::fmt::Debug for Mapping {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mapping")
            .field("source", &self.source)
            .field(
                "fields",
                &self
                    .fields
                    .iter()
                    .map(|m| (&m.field, &m.expr))
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

fn env() -> Arc<Env> {
    let mut env = Env::stdlib();
    // Registering a built-in extension on a fresh environment cannot clash.
    let _ = env.add_extension(cel::extensions::strings);
    let _ = env.add_extension(cel::extensions::lists);
    Arc::new(env)
}

/// Whether `field` is a canonical field a mapping may name.
fn known(field: &str) -> bool {
    IMPORT_FIELDS.contains(&field)
        || field.strip_prefix("custom.").is_some_and(|n| {
            !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
}

/// The expression for a field the mapping does not name: the record's key of that name.
fn default_expr(field: &str) -> String {
    format!("has(record.{field}) ? record.{field} : null")
}

impl Mapping {
    /// Compile `exprs` (field → CEL). Every problem is returned, each naming its field.
    pub fn compile(
        source: &str,
        exprs: &BTreeMap<String, String>,
    ) -> Result<Mapping, Vec<MappingError>> {
        let env = env();
        let err = |field: &str, message: String| MappingError {
            source: source.to_string(),
            record: "-".into(),
            field: field.to_string(),
            message,
        };
        let mut problems = Vec::new();
        for field in exprs.keys().filter(|f| !known(f)) {
            let close = IMPORT_FIELDS
                .iter()
                .min_by_key(|k| crate::error::levenshtein(k, field))
                .copied()
                .unwrap_or("employee_id");
            problems.push(err(
                field,
                format!(
                    "not a field of the person (did you mean {close}? the fields: {}, custom.NAME)",
                    IMPORT_FIELDS.join(", ")
                ),
            ));
        }
        let mut fields = Vec::new();
        for f in IMPORT_FIELDS {
            let expr = exprs.get(*f).cloned().unwrap_or_else(|| default_expr(f));
            match env.compile(&expr) {
                Ok(program) => fields.push(FieldMap {
                    field: f.to_string(),
                    expr,
                    program,
                    explicit: exprs.contains_key(*f),
                }),
                Err(e) => problems.push(err(f, format!("{expr:?} is not valid CEL: {e}"))),
            }
        }
        for (f, expr) in exprs
            .iter()
            .filter(|(f, _)| f.starts_with("custom.") && known(f))
        {
            match env.compile(expr) {
                Ok(program) => fields.push(FieldMap {
                    field: f.clone(),
                    expr: expr.clone(),
                    program,
                    explicit: true,
                }),
                Err(e) => problems.push(err(f, format!("{expr:?} is not valid CEL: {e}"))),
            }
        }
        if problems.is_empty() {
            Ok(Mapping {
                source: source.to_string(),
                fields,
                env,
            })
        } else {
            Err(problems)
        }
    }

    /// The canonical fields it fills, with their expressions.
    pub fn fields(&self) -> Vec<(&str, &str)> {
        self.fields
            .iter()
            .map(|m| (m.field.as_str(), m.expr.as_str()))
            .collect()
    }

    /// The fields the source owns: those its mapping names (a field it names and a record
    /// leaves empty is cleared), or, for a source that names none, every field (its records
    /// are whole, like a CSV row). Fields it does not own are only filled when a record
    /// carries them under their default names.
    pub fn owned(&self) -> Vec<&str> {
        let any = self.fields.iter().any(|m| m.explicit);
        self.fields
            .iter()
            .filter(|m| m.explicit || !any)
            .map(|m| m.field.as_str())
            .collect()
    }

    /// The mapping of a source that names no fields: the CSV import's column names.
    pub fn default_for(source: &str) -> Mapping {
        match Mapping::compile(source, &BTreeMap::new()) {
            Ok(m) => m,
            // The default expressions are fixed and valid.
            Err(_) => Mapping {
                source: source.to_string(),
                fields: Vec::new(),
                env: env(),
            },
        }
    }

    /// The canonical fields of one record (empty ones left out). `record_ref` names the
    /// record in errors.
    pub fn apply(
        &self,
        record: &serde_json::Value,
        record_ref: &str,
    ) -> Result<BTreeMap<String, String>, MappingError> {
        self.apply_with(record, record_ref, false)
    }

    /// [`Mapping::apply`] for a record that carries only some fields (a webhook's changed
    /// fields, a termination naming only the person): a field whose expression reads a
    /// key the record lacks is left out instead of failing.
    pub fn apply_partial(
        &self,
        record: &serde_json::Value,
        record_ref: &str,
    ) -> Result<BTreeMap<String, String>, MappingError> {
        self.apply_with(record, record_ref, true)
    }

    fn apply_with(
        &self,
        record: &serde_json::Value,
        record_ref: &str,
        partial: bool,
    ) -> Result<BTreeMap<String, String>, MappingError> {
        let err = |field: &str, message: String| MappingError {
            source: self.source.clone(),
            record: record_ref.to_string(),
            field: field.to_string(),
            message,
        };
        if !record.is_object() {
            return Err(err("-", "the record is not a JSON object".into()));
        }
        let mut ctx = Context::with_env(self.env.clone());
        ctx.add_variable("record", record.clone())
            .map_err(|e| err("-", format!("the record cannot be read: {e}")))?;
        let mut out = BTreeMap::new();
        for m in &self.fields {
            let v = match m.program.execute(&ctx) {
                Ok(v) => v,
                Err(cel::ExecutionError::NoSuchKey(_)) if partial => continue,
                Err(e) => return Err(err(&m.field, format!("{:?} failed: {e}", m.expr))),
            };
            let text = match v {
                Value::Null => continue,
                Value::String(s) => s.to_string(),
                Value::Int(i) => i.to_string(),
                Value::UInt(u) => u.to_string(),
                Value::Float(f) => f.to_string(),
                Value::Bool(b) => b.to_string(),
                other => {
                    return Err(err(
                        &m.field,
                        format!("{:?} gave {}, not text", m.expr, kind_of(&other)),
                    ));
                }
            };
            let text = text.trim().to_string();
            if !text.is_empty() {
                out.insert(m.field.clone(), text);
            }
        }
        Ok(out)
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::List(_) => "a list",
        Value::Map(_) => "a map",
        Value::Bytes(_) => "bytes",
        _ => "a value of another type",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn mapping(pairs: &[(&str, &str)]) -> Mapping {
        let exprs = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Mapping::compile("bamboo", &exprs).unwrap()
    }

    #[test]
    fn a_full_name_a_department_code_and_a_flag_are_mapped() {
        let m = mapping(&[
            ("employee_id", "string(record.id)"),
            ("first_name", "record.fullName.split(' ')[0]"),
            (
                "last_name",
                "record.fullName.split(' ').slice(1, size(record.fullName.split(' '))).join(' ')",
            ),
            (
                "department",
                "{'ENG': 'Engineering', 'SLS': 'Sales'}[record.dept]",
            ),
            ("status", "record.terminated ? 'terminated' : 'active'"),
            ("custom.badge", "record.badge"),
        ]);
        let out = m
            .apply(
                &json!({"id": 42, "fullName": "Ada King Lovelace", "dept": "ENG", "terminated": false,
                        "workEmail": "ada@example.com", "email": "ada@example.com", "badge": 7}),
                "42",
            )
            .unwrap();
        assert_eq!(out["employee_id"], "42");
        assert_eq!(out["first_name"], "Ada");
        assert_eq!(out["last_name"], "King Lovelace");
        assert_eq!(out["department"], "Engineering");
        assert_eq!(out["status"], "active");
        assert_eq!(
            out["email"], "ada@example.com",
            "unnamed fields read the same key"
        );
        assert_eq!(out["custom.badge"], "7");
        assert!(!out.contains_key("title"), "absent is empty");
    }

    #[test]
    fn a_partial_record_leaves_out_what_it_lacks_but_still_fails_on_wrong_types() {
        let m = mapping(&[
            ("employee_id", "record.id"),
            ("first_name", "record.name.given"),
            ("department", "record.dept"),
        ]);
        let out = m
            .apply_partial(&serde_json::json!({"id": "E1", "dept": "Ops"}), "r")
            .unwrap();
        assert_eq!(out.len(), 2, "{out:?}");
        assert_eq!(out["department"], "Ops");
        // The whole-record form fails on the same record, naming the field.
        let e = m
            .apply(&serde_json::json!({"id": "E1", "dept": "Ops"}), "r")
            .unwrap_err();
        assert_eq!(e.field, "first_name");
        // A key that is there with the wrong type is still an error.
        let e = m
            .apply_partial(&serde_json::json!({"id": "E1", "name": "Ada"}), "r")
            .unwrap_err();
        assert_eq!(e.field, "first_name");
    }

    #[test]
    fn the_default_mapping_reads_the_csv_column_names() {
        let m = Mapping::default_for("feed");
        let out = m
            .apply(
                &json!({"employee_id": "E1", "first_name": "Bo", "email": "bo@x.io", "status": "active", "other": 1}),
                "E1",
            )
            .unwrap();
        assert_eq!(out.len(), 4, "{out:?}");
        assert_eq!(out["first_name"], "Bo");
    }

    #[test]
    fn errors_name_the_source_the_record_and_the_field() {
        let bad = Mapping::compile(
            "bamboo",
            &BTreeMap::from([
                ("frist_name".to_string(), "record.x".to_string()),
                ("title".to_string(), "record.(".to_string()),
            ]),
        )
        .unwrap_err();
        assert_eq!(bad.len(), 2, "{bad:?}");
        let text: Vec<String> = bad.iter().map(|e| e.to_string()).collect();
        assert!(
            text[0]
                .contains("field frist_name: not a field of the person (did you mean first_name?"),
            "{text:?}"
        );
        assert!(
            text.iter()
                .any(|t| t.contains("field title") && t.contains("not valid CEL")),
            "{text:?}"
        );

        let m = mapping(&[
            ("department", "{'ENG': 'Engineering'}[record.dept]"),
            ("title", "record.titles"),
        ]);
        let e = m.apply(&json!({"dept": "XXX"}), "E7").unwrap_err();
        assert_eq!(
            (e.source.as_str(), e.record.as_str(), e.field.as_str()),
            ("bamboo", "E7", "department")
        );
        let e = m
            .apply(&json!({"dept": "ENG", "titles": ["a", "b"]}), "E8")
            .unwrap_err();
        assert_eq!(e.field, "title");
        assert!(e.message.contains("gave a list, not text"), "{e}");
        assert!(
            m.apply(&json!([1, 2]), "3")
                .unwrap_err()
                .message
                .contains("not a JSON object")
        );
    }

    fn json_value() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(serde_json::Value::from),
            ".{0,12}".prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(3, 24, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
                prop::collection::btree_map("[a-z_]{1,8}", inner, 0..5)
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        /// Any record, and any expression text: a clear result or a clear error, never a
        /// panic.
        #[test]
        fn any_record_and_any_expression_map_or_fail_cleanly(
            record in json_value(),
            expr in prop_oneof![
                Just("record.first_name".to_string()),
                Just("record.a.split(' ')[0]".to_string()),
                Just("string(record.id) + '-' + string(record.n)".to_string()),
                Just("{'x': 'y'}[record.k]".to_string()),
                Just("record.list.join(',')".to_string()),
                "[a-z.()' \\[\\]0-9+]{0,24}",
            ],
        ) {
            let exprs = BTreeMap::from([("first_name".to_string(), expr)]);
            if let Ok(m) = Mapping::compile("fuzz", &exprs) {
                match m.apply(&record, "r") {
                    Ok(out) => prop_assert!(out.values().all(|v| !v.is_empty())),
                    Err(e) => prop_assert!(!e.field.is_empty() && e.source == "fuzz"),
                }
            }
        }
    }
}

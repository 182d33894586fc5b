//! PATCH (RFC 7644 §3.5.2): paths, filters in paths, and the operations on a resource.

use super::{Kind, MULTI_VALUED, SCHEMA_ENTERPRISE, ScimError, canonical, scim_semantics};
use crate::sim::filter::{self, Expr};
use serde_json::{Map, Value, json};

/// Where a path points.
#[derive(Debug)]
struct Target {
    /// The extension object the attribute lives in (None: the top level).
    ext: Option<String>,
    attr: String,
    filter: Option<Expr>,
    sub: Option<String>,
}

fn invalid_path(path: &str) -> ScimError {
    ScimError::bad("invalidPath", format!("The path {path:?} is not valid"))
}

fn parse(kind: Kind, path: &str) -> Result<Target, ScimError> {
    let lower = path.to_ascii_lowercase();
    let core = format!("{}:", kind.schema().to_ascii_lowercase());
    let ext_prefix = format!("{}:", SCHEMA_ENTERPRISE.to_ascii_lowercase());
    let (ext, rest) = if lower.starts_with(&core) {
        (None, &path[core.len()..])
    } else if lower.starts_with(&ext_prefix) {
        (
            Some(SCHEMA_ENTERPRISE.to_string()),
            &path[ext_prefix.len()..],
        )
    } else if lower == SCHEMA_ENTERPRISE.to_ascii_lowercase() && kind == Kind::User {
        // The whole extension object (its URN contains a '.', so not split below).
        return Ok(Target {
            ext: None,
            attr: SCHEMA_ENTERPRISE.to_string(),
            filter: None,
            sub: None,
        });
    } else if lower.starts_with("urn:") {
        return Err(invalid_path(path));
    } else {
        (None, path)
    };
    let (attr, filter, sub) = match rest.find('[') {
        Some(open) => {
            let close = rest.rfind(']').ok_or_else(|| invalid_path(path))?;
            if close < open {
                return Err(invalid_path(path));
            }
            let inner = &rest[open + 1..close];
            let expr = filter::parse(inner).map_err(|why| {
                ScimError::bad(
                    "invalidFilter",
                    format!("The path filter is not valid: {why}"),
                )
            })?;
            let after = &rest[close + 1..];
            let sub = match after.strip_prefix('.') {
                Some(s) if !s.is_empty() => Some(s.to_string()),
                None if after.is_empty() => None,
                _ => return Err(invalid_path(path)),
            };
            (rest[..open].to_string(), Some(expr), sub)
        }
        None => match rest.split_once('.') {
            Some((a, s)) if !s.is_empty() => (a.to_string(), None, Some(s.to_string())),
            Some(_) => return Err(invalid_path(path)),
            None => (rest.to_string(), None, None),
        },
    };
    let name_ok = |n: &str| {
        !n.is_empty()
            && n.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '$')
    };
    if !name_ok(&attr) || sub.as_deref().is_some_and(|s| !name_ok(s)) {
        return Err(invalid_path(path));
    }
    let attr = if ext.is_some() {
        attr
    } else {
        canonical(kind, &attr)
    };
    if ext.is_none() && matches!(attr.as_str(), "id" | "meta" | "groups" | "schemas") {
        return Err(ScimError::bad(
            "mutability",
            format!("The attribute {attr} is read-only"),
        ));
    }
    Ok(Target {
        ext,
        attr,
        filter,
        sub,
    })
}

fn multi(attr: &str) -> bool {
    MULTI_VALUED.iter().any(|a| a.eq_ignore_ascii_case(attr))
}

fn key_in(obj: &Map<String, Value>, name: &str) -> String {
    obj.keys()
        .find(|k| k.eq_ignore_ascii_case(name))
        .cloned()
        .unwrap_or_else(|| name.to_string())
}

/// The same multi-valued element: same `value` when both have one, else equal.
fn same(a: &Value, b: &Value) -> bool {
    match (a.get("value"), b.get("value")) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

/// `add` / `replace` of one attribute in `container`.
fn set(container: &mut Map<String, Value>, attr: &str, value: Value, add: bool) {
    let key = key_in(container, attr);
    if multi(attr) {
        let items = match value {
            Value::Array(a) => a,
            other => vec![other],
        };
        if add {
            let list = container.entry(key).or_insert_with(|| json!([]));
            if !list.is_array() {
                *list = json!([]);
            }
            if let Some(list) = list.as_array_mut() {
                for v in items {
                    if !list.iter().any(|x| same(x, &v)) {
                        list.push(v);
                    }
                }
            }
        } else {
            container.insert(key, Value::Array(items));
        }
        return;
    }
    match (container.get_mut(&key), value) {
        // A complex attribute: the given sub-attributes replace or add; others stay.
        (Some(Value::Object(existing)), Value::Object(new)) => {
            for (k, v) in new {
                let k = key_in(existing, &k);
                existing.insert(k, v);
            }
        }
        (_, v) => {
            container.insert(key, v);
        }
    }
}

fn container<'a>(
    attrs: &'a mut Map<String, Value>,
    ext: &Option<String>,
    create: bool,
) -> Option<&'a mut Map<String, Value>> {
    match ext {
        None => Some(attrs),
        Some(e) => {
            if create {
                let slot = attrs.entry(e.clone()).or_insert_with(|| json!({}));
                if !slot.is_object() {
                    *slot = json!({});
                }
            }
            attrs.get_mut(e).and_then(Value::as_object_mut)
        }
    }
}

fn matching(list: &[Value], f: &Expr, attr: &str) -> Vec<usize> {
    let sem = scim_semantics();
    let wrap_attr = attr.to_string();
    list.iter()
        .enumerate()
        .filter(|(_, el)| {
            // Paths inside the filter are relative to the element; the semantics see the
            // full path (`members.value`) through a wrapper object.
            let mut wrapped = Map::new();
            wrapped.insert(wrap_attr.clone(), json!([el]));
            let wrapped = Value::Object(wrapped);
            let e = Expr::ValuePath {
                path: wrap_attr.clone(),
                filter: Box::new(f.clone()),
            };
            e.matches_with(&wrapped, &sem)
        })
        .map(|(i, _)| i)
        .collect()
}

fn no_target(path: &str) -> ScimError {
    ScimError::bad(
        "noTarget",
        format!("The path {path:?} did not match any value"),
    )
}

/// Apply one operation to a copy of the resource's attributes.
pub fn apply(
    kind: Kind,
    attrs: &mut Map<String, Value>,
    op: &str,
    path: Option<&str>,
    value: Option<Value>,
) -> Result<(), ScimError> {
    let op = op.to_ascii_lowercase();
    match op.as_str() {
        "add" | "replace" => {
            let add = op == "add";
            let Some(value) = value else {
                return Err(ScimError::bad(
                    "invalidValue",
                    format!("A {op} operation needs a \"value\""),
                ));
            };
            let Some(path) = path else {
                let Value::Object(obj) = value else {
                    return Err(ScimError::bad(
                        "invalidValue",
                        format!("A {op} operation without a path needs an object value"),
                    ));
                };
                for (k, v) in obj {
                    let k = canonical(kind, &k);
                    if matches!(k.as_str(), "id" | "meta" | "groups" | "schemas") {
                        continue;
                    }
                    set(attrs, &k, v, add);
                }
                return Ok(());
            };
            let t = parse(kind, path)?;
            let Some(c) = container(attrs, &t.ext, true) else {
                return Err(no_target(path));
            };
            match (&t.filter, &t.sub) {
                (Some(f), sub) => {
                    if add {
                        return Err(ScimError::bad(
                            "invalidPath",
                            "A value filter is for replace and remove, not add",
                        ));
                    }
                    let key = key_in(c, &t.attr);
                    let Some(list) = c.get_mut(&key).and_then(Value::as_array_mut) else {
                        return Err(no_target(path));
                    };
                    let hits = matching(list, f, &t.attr);
                    if hits.is_empty() {
                        return Err(no_target(path));
                    }
                    for i in hits {
                        match (sub, list.get_mut(i)) {
                            (Some(s), Some(Value::Object(el))) => {
                                let k = key_in(el, s);
                                el.insert(k, value.clone());
                            }
                            (None, Some(el)) => match (el.as_object_mut(), &value) {
                                (Some(el), Value::Object(new)) => {
                                    for (k, v) in new {
                                        let k = key_in(el, k);
                                        el.insert(k, v.clone());
                                    }
                                }
                                (_, v) => *el = v.clone(),
                            },
                            _ => return Err(no_target(path)),
                        }
                    }
                }
                (None, Some(sub)) => {
                    if multi(&t.attr) {
                        return Err(ScimError::bad(
                            "invalidPath",
                            format!(
                                "{path:?} names a sub-attribute of a multi-valued attribute without a filter"
                            ),
                        ));
                    }
                    let key = key_in(c, &t.attr);
                    let slot = c.entry(key).or_insert_with(|| json!({}));
                    if !slot.is_object() {
                        *slot = json!({});
                    }
                    if let Some(obj) = slot.as_object_mut() {
                        let k = key_in(obj, sub);
                        obj.insert(k, value);
                    }
                }
                (None, None) => set(c, &t.attr, value, add),
            }
            Ok(())
        }
        "remove" => {
            let Some(path) = path else {
                return Err(ScimError::bad(
                    "noTarget",
                    "A remove operation needs a \"path\"",
                ));
            };
            let t = parse(kind, path)?;
            let Some(c) = container(attrs, &t.ext, false) else {
                return Ok(()); // nothing there to remove
            };
            let key = key_in(c, &t.attr);
            match (&t.filter, &t.sub) {
                (Some(f), sub) => {
                    let Some(list) = c.get_mut(&key).and_then(Value::as_array_mut) else {
                        return Ok(());
                    };
                    let hits = matching(list, f, &t.attr);
                    // No match: nothing to change, and a success (RFC 7644 §3.5.2.2's
                    // example of removing someone who is not a member).
                    for i in hits.into_iter().rev() {
                        match sub {
                            Some(s) => {
                                if let Some(el) = list.get_mut(i).and_then(Value::as_object_mut) {
                                    el.retain(|k, _| !k.eq_ignore_ascii_case(s));
                                }
                            }
                            None => {
                                list.remove(i);
                            }
                        }
                    }
                    if list.is_empty() {
                        c.remove(&key);
                    }
                }
                (None, Some(sub)) => {
                    if let Some(obj) = c.get_mut(&key).and_then(Value::as_object_mut) {
                        obj.retain(|k, _| !k.eq_ignore_ascii_case(sub));
                    }
                }
                (None, None) => match (value, c.get_mut(&key)) {
                    // Some clients name the values to remove in "value" instead of a
                    // filter: {"op": "remove", "path": "members", "value": [{"value": "id"}]}
                    (Some(Value::Array(gone)), Some(Value::Array(list))) if multi(&t.attr) => {
                        list.retain(|x| !gone.iter().any(|g| same(x, g)));
                        if list.is_empty() {
                            c.remove(&key);
                        }
                    }
                    _ => {
                        c.remove(&key);
                    }
                },
            }
            if t.ext.is_none()
                && t.filter.is_none()
                && t.sub.is_none()
                && key.eq_ignore_ascii_case(kind.required())
            {
                return Err(ScimError::bad(
                    "mutability",
                    format!("The attribute {key} is required and cannot be removed"),
                ));
            }
            Ok(())
        }
        other => Err(ScimError::bad(
            "invalidSyntax",
            format!("Unknown PATCH operation {other:?} (add, remove or replace)"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> Map<String, Value> {
        json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": "ada", "active": true, "name": {"givenName": "Ada", "familyName": "L"},
                "emails": [{"value": "a@x", "type": "work", "primary": true}, {"value": "h@x", "type": "home"}]
            })
            .as_object()
            .cloned()
            .unwrap_or_default()
    }

    #[test]
    fn replace_add_remove_by_path_and_filter() {
        let mut u = user();
        apply(
            Kind::User,
            &mut u,
            "replace",
            Some("active"),
            Some(json!(false)),
        )
        .unwrap();
        assert_eq!(u["active"], false);
        apply(
            Kind::User,
            &mut u,
            "Replace",
            Some("name.familyName"),
            Some(json!("Lovelace")),
        )
        .unwrap();
        assert_eq!(
            u["name"],
            json!({"givenName": "Ada", "familyName": "Lovelace"})
        );
        apply(
            Kind::User,
            &mut u,
            "replace",
            Some("emails[type eq \"work\"].value"),
            Some(json!("ada@x")),
        )
        .unwrap();
        assert_eq!(u["emails"][0]["value"], "ada@x");
        let e = apply(
            Kind::User,
            &mut u,
            "replace",
            Some("emails[type eq \"other\"].value"),
            Some(json!("z")),
        )
        .unwrap_err();
        assert_eq!(e.scim_type.as_deref(), Some("noTarget"));
        apply(
            Kind::User,
            &mut u,
            "remove",
            Some("emails[type eq \"home\"]"),
            None,
        )
        .unwrap();
        assert_eq!(u["emails"].as_array().map(Vec::len), Some(1));
        apply(
            Kind::User,
            &mut u,
            "add",
            Some("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"),
            Some(json!("R&D")),
        )
        .unwrap();
        assert_eq!(u[SCHEMA_ENTERPRISE]["department"], "R&D");
        apply(
            Kind::User,
            &mut u,
            "add",
            None,
            Some(json!({"displayName": "Ada L", "emails": [{"value": "ada@x"}]})),
        )
        .unwrap();
        assert_eq!(u["displayName"], "Ada L");
        assert_eq!(
            u["emails"].as_array().map(Vec::len),
            Some(1),
            "an existing value is not added again"
        );
        let e = apply(Kind::User, &mut u, "remove", Some("userName"), None).unwrap_err();
        assert_eq!(e.scim_type.as_deref(), Some("mutability"));
        let e = apply(Kind::User, &mut u, "remove", None, None).unwrap_err();
        assert_eq!(e.scim_type.as_deref(), Some("noTarget"));
        for bad in ["emails[type eq", "urn:x:y:z", "a..b", "meta"] {
            assert!(
                apply(Kind::User, &mut u, "replace", Some(bad), Some(json!(1))).is_err(),
                "{bad}"
            );
        }
        assert!(
            apply(
                Kind::User,
                &mut u,
                "frobnicate",
                Some("active"),
                Some(json!(1))
            )
            .is_err()
        );
    }

    proptest::proptest! {
        #[test]
        fn any_operation_is_applied_or_refused_never_panics(
            op in "(add|remove|replace|x)",
            path in proptest::option::of("[a-zA-Z.:\\[\\]\" 0-9ü$]{0,40}"),
            value in proptest::option::of(proptest::prop_oneof![
                proptest::strategy::Just(json!(null)),
                proptest::strategy::Just(json!({"value": "u1"})),
                proptest::strategy::Just(json!([{"value": "u1"}, 3])),
                proptest::strategy::Just(json!("text")),
            ]),
        ) {
            let mut u = user();
            let _ = apply(Kind::User, &mut u, &op, path.as_deref(), value.clone());
            let mut g = json!({"displayName": "g", "members": [{"value": "u1"}]}).as_object().cloned().unwrap_or_default();
            let _ = apply(Kind::Group, &mut g, &op, path.as_deref(), value);
        }
    }

    #[test]
    fn members_add_once_and_remove_by_filter_or_value() {
        let mut g = json!({"displayName": "eng"})
            .as_object()
            .cloned()
            .unwrap_or_default();
        for _ in 0..2 {
            apply(
                Kind::Group,
                &mut g,
                "add",
                Some("members"),
                Some(json!([{"value": "u1"}, {"value": "u2"}])),
            )
            .unwrap();
        }
        assert_eq!(g["members"], json!([{"value": "u1"}, {"value": "u2"}]));
        apply(
            Kind::Group,
            &mut g,
            "remove",
            Some("members[value eq \"u1\"]"),
            None,
        )
        .unwrap();
        // Not a member: no change, no error.
        apply(
            Kind::Group,
            &mut g,
            "remove",
            Some("members[value eq \"u9\"]"),
            None,
        )
        .unwrap();
        assert_eq!(g["members"], json!([{"value": "u2"}]));
        apply(
            Kind::Group,
            &mut g,
            "remove",
            Some("members"),
            Some(json!([{"value": "u2"}])),
        )
        .unwrap();
        assert!(g.get("members").is_none());
        // Member values are case-exact.
        apply(
            Kind::Group,
            &mut g,
            "add",
            Some("members"),
            Some(json!({"value": "U1"})),
        )
        .unwrap();
        apply(
            Kind::Group,
            &mut g,
            "remove",
            Some("members[value eq \"u1\"]"),
            None,
        )
        .unwrap();
        assert_eq!(g["members"], json!([{"value": "U1"}]));
    }
}

//! Resources: their shapes as the provider answers them.

use super::*;

// ---------------------------------------------------------------------------------------
// Resources: shapes
// ---------------------------------------------------------------------------------------

/// What one request needs to know besides the state.
pub(super) struct Ctx<'a> {
    pub(super) opts: &'a ScimSimOptions,
    pub(super) base: String,
    pub(super) now: Instant,
    pub(super) visibility: Duration,
}

pub(super) fn new_id(seq: u64) -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    let r: u64 = rng.random();
    // UUID-shaped; the counter keeps ids unique, the random part keeps them opaque.
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        (r >> 32) as u32,
        (r >> 16) as u16,
        (r & 0xfff) as u16,
        (seq >> 48) & 0xfff,
        seq & 0xffff_ffff_ffff
    )
}

pub(super) fn insert_new(
    p: &mut Provider,
    kind: Kind,
    attrs: Map<String, Value>,
    visible_at: Instant,
) -> String {
    p.seq += 1;
    let seq = p.seq;
    let id = match (p.id_style, kind) {
        (IdStyle::Uuid, _) => new_id(seq),
        (IdStyle::Slack, Kind::User) => format!("U{seq:010X}"),
        (IdStyle::Slack, Kind::Group) => format!("S{seq:010X}"),
    };
    let now = Utc::now();
    let member_visible_at = member_values(&attrs)
        .into_iter()
        .map(|m| (m, visible_at))
        .collect();
    for m in member_values(&attrs) {
        p.counts.added(&id, &m);
    }
    p.table_mut(kind).insert(
        id.clone(),
        ScimResource {
            id: id.clone(),
            kind,
            attributes: attrs,
            created: now,
            last_modified: now,
            version: 1,
            seq,
            visible_at,
            member_visible_at,
        },
    );
    id
}

pub(super) fn meta(r: &ScimResource, base: &str) -> Value {
    json!({
        "resourceType": r.kind.name(),
        "created": ts(r.created),
        "lastModified": ts(r.last_modified),
        "location": format!("{base}/{}/{}", r.kind.endpoint(), r.id),
        "version": r.etag(),
    })
}

/// A resource as reads see it: members and group links only once visible; `password`
/// never returned; `groups` computed.
pub(super) fn view(p: &Provider, r: &ScimResource, base: &str, now: Instant) -> Value {
    let mut out = Map::new();
    out.insert("id".into(), json!(r.id));
    for (k, v) in &r.attributes {
        if k == "password" {
            continue;
        }
        out.insert(k.clone(), v.clone());
    }
    match r.kind {
        Kind::Group => {
            let members: Vec<Value> = member_objects(&r.attributes)
                .into_iter()
                .filter(|m| {
                    m.get("value")
                        .and_then(Value::as_str)
                        .and_then(|v| r.member_visible_at.get(v))
                        .is_none_or(|at| *at <= now)
                })
                .map(|mut m| {
                    if let Some(obj) = m.as_object_mut() {
                        let v = obj
                            .get("value")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_string();
                        let kind = if p.users.contains_key(&v) {
                            Kind::User
                        } else {
                            Kind::Group
                        };
                        obj.entry("type").or_insert_with(|| json!(kind.name()));
                        obj.entry("$ref")
                            .or_insert_with(|| json!(format!("{base}/{}/{v}", kind.endpoint())));
                    }
                    m
                })
                .collect();
            if members.is_empty() {
                out.remove("members");
            } else {
                out.insert("members".into(), Value::Array(members));
            }
        }
        Kind::User => {
            let groups: Vec<Value> = p
                .groups
                .values()
                .filter(|g| g.visible_at <= now)
                .filter(|g| g.member_visible_at.get(&r.id).is_some_and(|at| *at <= now))
                .map(|g| {
                    json!({
                        "value": g.id,
                        "$ref": format!("{base}/Groups/{}", g.id),
                        "display": g.display_name().unwrap_or(""),
                        "type": "direct",
                    })
                })
                .collect();
            if !groups.is_empty() {
                out.insert("groups".into(), Value::Array(groups));
            }
        }
    }
    out.insert("meta".into(), meta(r, base));
    Value::Object(out)
}

pub(super) fn member_objects(attrs: &Map<String, Value>) -> Vec<Value> {
    attrs
        .get("members")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// `attributes` / `excludedAttributes` (RFC 7644 §3.4.2.5). `id` and `schemas` are always
/// returned. Extension attributes may be named with their schema URN.
pub(super) fn project(v: Value, attributes: Option<&str>, excluded: Option<&str>) -> Value {
    let Value::Object(obj) = v else { return v };
    let names = |list: &str| -> Vec<String> {
        list.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    };
    let find_key = |obj: &Map<String, Value>, name: &str| {
        obj.keys().find(|k| k.eq_ignore_ascii_case(name)).cloned()
    };
    // (top-level key, optional sub-attribute of it)
    let resolve = |obj: &Map<String, Value>, name: &str| -> Option<(String, Option<String>)> {
        if let Some(k) = find_key(obj, name) {
            return Some((k, None));
        }
        let lower = name.to_ascii_lowercase();
        if let Some(k) = obj
            .keys()
            .filter(|k| {
                k.starts_with("urn:") && lower.starts_with(&format!("{}:", k.to_ascii_lowercase()))
            })
            .max_by_key(|k| k.len())
        {
            let sub = name[k.len() + 1..]
                .split('.')
                .next()
                .unwrap_or("")
                .to_string();
            return Some((k.clone(), Some(sub)));
        }
        let plain = if lower.starts_with("urn:") {
            name.rsplit(':').next().unwrap_or(name)
        } else {
            name
        };
        let top = plain.split('.').next().unwrap_or(plain);
        find_key(obj, top).map(|k| (k, None))
    };
    let mut out = obj.clone();
    if let Some(list) = attributes.filter(|l| !l.trim().is_empty()) {
        out = Map::new();
        for always in ["schemas", "id"] {
            if let Some(v) = obj.get(always) {
                out.insert(always.to_string(), v.clone());
            }
        }
        for name in names(list) {
            let Some((key, sub)) = resolve(&obj, &name) else {
                continue;
            };
            match sub {
                None => {
                    if let Some(v) = obj.get(&key) {
                        out.insert(key, v.clone());
                    }
                }
                Some(sub) => {
                    let src = obj.get(&key).and_then(Value::as_object);
                    if let Some((sk, sv)) =
                        src.and_then(|s| s.iter().find(|(k, _)| k.eq_ignore_ascii_case(&sub)))
                    {
                        let slot = out.entry(key).or_insert_with(|| json!({}));
                        if let Some(m) = slot.as_object_mut() {
                            m.insert(sk.clone(), sv.clone());
                        }
                    }
                }
            }
        }
    }
    if let Some(list) = excluded {
        for name in names(list) {
            if let Some((key, sub)) = resolve(&out, &name) {
                if key == "id" || key == "schemas" {
                    continue;
                }
                match sub {
                    None => {
                        out.remove(&key);
                    }
                    Some(sub) => {
                        if let Some(m) = out.get_mut(&key).and_then(Value::as_object_mut) {
                            m.retain(|k, _| !k.eq_ignore_ascii_case(&sub));
                        }
                    }
                }
            }
        }
    }
    Value::Object(out)
}

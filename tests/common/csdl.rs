//! A checker of JSON objects against Microsoft Graph's CSDL
//! (`tests/specs/msgraph/v1.0-Prod.csdl`): declared properties (on the type or its bases),
//! EDM value types, enum members and `Nullable="false"`.

use serde_json::Value;
use std::collections::{BTreeSet, HashMap};
use std::sync::OnceLock;

#[derive(Debug, Default)]
struct TypeDef {
    base: Option<String>,
    /// name -> (EDM type, nullable)
    props: HashMap<String, (String, bool)>,
    nav: BTreeSet<String>,
}

/// Entity and complex types (by qualified name), enum types and their members.
#[derive(Debug, Default)]
pub(crate) struct Csdl {
    types: HashMap<String, TypeDef>,
    enums: HashMap<String, BTreeSet<String>>,
    aliases: HashMap<String, String>,
}

fn specs_dir() -> String {
    std::env::var("ACCESSDESK_SPECS")
        .unwrap_or_else(|_| format!("{}/tests/specs", env!("CARGO_MANIFEST_DIR")))
}

pub(crate) fn csdl() -> &'static Csdl {
    static CSDL: OnceLock<Csdl> = OnceLock::new();
    CSDL.get_or_init(|| {
        let path = format!("{}/msgraph/v1.0-Prod.csdl", specs_dir());
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
        Csdl::parse(&text)
    })
}

impl Csdl {
    fn parse(text: &str) -> Csdl {
        let doc = roxmltree::Document::parse_with_options(
            text,
            roxmltree::ParsingOptions {
                allow_dtd: true,
                ..Default::default()
            },
        )
        .expect("the CSDL is XML");
        let mut c = Csdl::default();
        for schema in doc.descendants().filter(|n| n.has_tag_name("Schema")) {
            let ns = schema.attribute("Namespace").unwrap_or("").to_string();
            if let Some(a) = schema.attribute("Alias") {
                c.aliases.insert(a.to_string(), ns.clone());
            }
            for t in schema.children().filter(|n| n.is_element()) {
                let name = format!("{ns}.{}", t.attribute("Name").unwrap_or(""));
                match t.tag_name().name() {
                    "EnumType" => {
                        let members = t
                            .children()
                            .filter_map(|m| m.attribute("Name"))
                            .map(str::to_string);
                        c.enums.insert(name, members.collect());
                    }
                    "EntityType" | "ComplexType" => {
                        let mut def = TypeDef {
                            base: t.attribute("BaseType").map(str::to_string),
                            ..Default::default()
                        };
                        for p in t.children().filter(|n| n.is_element()) {
                            let pname = p.attribute("Name").unwrap_or("").to_string();
                            match p.tag_name().name() {
                                "Property" => {
                                    let ty = p.attribute("Type").unwrap_or("").to_string();
                                    let nullable = p.attribute("Nullable") != Some("false");
                                    def.props.insert(pname, (ty, nullable));
                                }
                                "NavigationProperty" => {
                                    def.nav.insert(pname);
                                }
                                _ => {}
                            }
                        }
                        c.types.insert(name, def);
                    }
                    _ => {}
                }
            }
        }
        // Bases named by alias (`graph.entity`) resolve to their namespace.
        let resolved: Vec<(String, String)> = c
            .types
            .iter()
            .filter_map(|(n, d)| d.base.as_ref().map(|b| (n.clone(), c.resolve(b))))
            .collect();
        for (n, b) in resolved {
            if let Some(d) = c.types.get_mut(&n) {
                d.base = Some(b);
            }
        }
        c
    }

    /// `graph.user` -> `microsoft.graph.user`.
    fn resolve(&self, name: &str) -> String {
        match name.rsplit_once('.') {
            Some((ns, n)) => match self.aliases.get(ns) {
                Some(full) => format!("{full}.{n}"),
                None => name.to_string(),
            },
            None => name.to_string(),
        }
    }

    /// A property of `ty` or of one of its bases: (EDM type, nullable), or None with
    /// `Some(nav)` telling whether it is a navigation property.
    fn property(&self, ty: &str, name: &str) -> Result<(String, bool), bool> {
        let mut cur = Some(ty.to_string());
        let mut nav = false;
        while let Some(t) = cur {
            let Some(def) = self.types.get(&t) else { break };
            if let Some((pt, n)) = def.props.get(name) {
                return Ok((self.resolve(pt), *n));
            }
            nav |= def.nav.contains(name);
            cur = def.base.clone();
        }
        Err(nav)
    }

    pub(crate) fn derives_from(&self, ty: &str, base: &str) -> bool {
        let mut cur = Some(ty.to_string());
        while let Some(t) = cur {
            if t == base {
                return true;
            }
            cur = self.types.get(&t).and_then(|d| d.base.clone());
        }
        false
    }

    /// Every problem with `v` as an instance of the entity or complex type `ty`.
    pub(crate) fn check_object(&self, ty: &str, v: &Value, at: &str, out: &mut Vec<String>) {
        let Some(obj) = v.as_object() else {
            out.push(format!("{at}: not an object: {v}"));
            return;
        };
        let mut ty = ty.to_string();
        if let Some(t) = obj.get("@odata.type") {
            let named = t.as_str().unwrap_or("").trim_start_matches('#').to_string();
            if self.types.contains_key(&named) && self.derives_from(&named, &ty) {
                ty = named;
            } else {
                out.push(format!("{at}: @odata.type {t} is not a {ty}"));
            }
        }
        if !self.types.contains_key(&ty) {
            out.push(format!("{at}: no type {ty} in the CSDL"));
            return;
        }
        for (k, val) in obj {
            if k.starts_with("@odata.") || k.contains("@odata.") {
                continue;
            }
            match self.property(&ty, k) {
                Ok((pt, nullable)) => {
                    self.check_value(&pt, nullable, val, &format!("{at}.{k}"), out)
                }
                Err(true) => out.push(format!("{at}.{k}: a navigation property of {ty} inline")),
                Err(false) => out.push(format!("{at}.{k}: no such property on {ty}")),
            }
        }
    }

    fn check_value(&self, ty: &str, nullable: bool, v: &Value, at: &str, out: &mut Vec<String>) {
        if v.is_null() {
            if !nullable {
                out.push(format!("{at}: null, but {ty} is not nullable"));
            }
            return;
        }
        if let Some(inner) = ty
            .strip_prefix("Collection(")
            .and_then(|t| t.strip_suffix(')'))
        {
            match v.as_array() {
                Some(items) => {
                    let inner = self.resolve(inner);
                    for (i, item) in items.iter().enumerate() {
                        self.check_value(&inner, nullable, item, &format!("{at}[{i}]"), out);
                    }
                }
                None => out.push(format!("{at}: {ty} wants an array, got {v}")),
            }
            return;
        }
        let ok = match ty {
            "Edm.String" => v.is_string(),
            "Edm.Boolean" => v.is_boolean(),
            "Edm.Int16" | "Edm.Int32" | "Edm.Int64" | "Edm.Byte" => v.is_i64() || v.is_u64(),
            "Edm.Double" | "Edm.Single" | "Edm.Decimal" => v.is_number(),
            "Edm.DateTimeOffset" => v
                .as_str()
                .is_some_and(|s| chrono::DateTime::parse_from_rfc3339(s).is_ok()),
            "Edm.Date" => v
                .as_str()
                .is_some_and(|s| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok()),
            "Edm.Guid" => v.as_str().is_some_and(is_guid),
            "Edm.Duration" => v.as_str().is_some_and(|s| s.starts_with('P')),
            "Edm.Binary" => v.as_str().is_some_and(|s| {
                s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+/=-_".contains(c))
            }),
            t if self.enums.contains_key(t) => v
                .as_str()
                .is_some_and(|s| s.split(',').all(|m| self.enums[t].contains(m.trim()))),
            t if self.types.contains_key(t) => {
                self.check_object(t, v, at, out);
                true
            }
            t => {
                out.push(format!("{at}: the checker does not know the type {t}"));
                true
            }
        };
        if !ok {
            out.push(format!("{at}: {v} is not a {ty}"));
        }
    }
}

fn is_guid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.iter().map(|p| p.len()).eq([8, 4, 4, 4, 12])
        && parts
            .iter()
            .all(|p| p.chars().all(|c| c.is_ascii_hexdigit()))
}

//! Adapter settings, declared once as data.
//!
//! Each adapter declares its `[systems.NAME.settings]` as one serde struct with
//! `#[serde(deny_unknown_fields)]`, a doc comment on each field, and defaults where a
//! setting may be left out. [`parse`] reads it, and every adapter then refuses settings
//! in the same words:
//! - an unknown key names the system, the key and the closest known one, and lists them
//!   all (the names come from the struct itself, so the list cannot drift from it);
//! - a value of the wrong type or out of range names the key and what it must be.
//!
//! Helpers for shapes systems.toml commonly uses: integers in a range ([`optional_in`],
//! over [`Bounded`]), [`words`] (an array of strings, or one space-separated string) and
//! [`non_empty`] strings.

use crate::config::SystemEntry;
use crate::{Error, Result};
use serde::de::{self, DeserializeOwned, Deserializer, Visitor};
use serde::{Deserialize, Serialize};

/// Read a system's `[systems.NAME.settings]` into `T`.
pub fn parse<T: DeserializeOwned>(entry: &SystemEntry) -> Result<T> {
    let name = &entry.system.name;
    let kind = entry.system.kind;
    let known = fields_of::<T>();
    for key in entry.settings.keys() {
        if !known.contains(&key.as_str()) {
            let near = known
                .iter()
                .map(|k| (crate::error::levenshtein(key, k), *k))
                .min()
                .filter(|(d, _)| *d <= (key.chars().count() / 3).max(2))
                .map(|(_, k)| format!("did you mean {k:?}? "))
                .unwrap_or_default();
            return Err(Error::usage(
                format!("system {name}: unknown setting {key:?} for kind {kind}"),
                format!(
                    "{near}{kind} settings are {} (in [systems.{name}.settings])",
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                ),
            ));
        }
    }
    serde_path_to_error::deserialize(toml::Value::Table(
        entry.settings.clone().into_iter().collect(),
    ))
    .map_err(|e: serde_path_to_error::Error<toml::de::Error>| {
        let path = e.path().to_string();
        let inner = e.inner().message().trim().to_string();
        let msg = if path == "." {
            // The table as a whole: a required setting is missing.
            format!("system {name}: [systems.{name}.settings]: {inner}")
        } else if inner.starts_with("must ") {
            format!("system {name}: setting {path} {inner}")
        } else {
            format!("system {name}: setting {path}: {inner}")
        };
        Error::usage(
            msg,
            format!("fix [systems.{name}.settings] in systems.toml"),
        )
    })
}

/// The field names a derived `Deserialize` struct accepts (serde hands them to
/// `deserialize_struct`; this deserializer only records them).
pub fn fields_of<T: DeserializeOwned>() -> &'static [&'static str] {
    struct Probe<'a>(&'a mut &'static [&'static str]);
    #[derive(Debug)]
    struct Stop;
    impl std::fmt::Display for Stop {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("probe")
        }
    }
    impl std::error::Error for Stop {}
    impl de::Error for Stop {
        fn custom<M: std::fmt::Display>(_: M) -> Self {
            Stop
        }
    }
    impl<'de> Deserializer<'de> for Probe<'_> {
        type Error = Stop;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> std::result::Result<V::Value, Stop> {
            Err(Stop)
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> std::result::Result<V::Value, Stop> {
            *self.0 = fields;
            Err(Stop)
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
            byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map
            enum identifier ignored_any
        }
    }
    let mut fields: &'static [&'static str] = &[];
    let _ = T::deserialize(Probe(&mut fields));
    fields
}

/// An integer setting from `LO` to `HI`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Bounded<const LO: u32, const HI: u32>(pub u32);

impl<'de, const LO: u32, const HI: u32> Deserialize<'de> for Bounded<LO, HI> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let n = i64::deserialize(d)
            .map_err(|_| de::Error::custom(format!("must be an integer from {LO} to {HI}")))?;
        if n < i64::from(LO) || n > i64::from(HI) {
            return Err(de::Error::custom(format!(
                "must be an integer from {LO} to {HI}, not {n}"
            )));
        }
        Ok(Bounded(n as u32))
    }
}

/// An optional integer setting from `LO` to `HI`, for a field of type `Option<u32>`:
/// `#[serde(default, deserialize_with = "settings::optional_in::<_, 1, 1000>")]`.
pub fn optional_in<'de, D: Deserializer<'de>, const LO: u32, const HI: u32>(
    d: D,
) -> std::result::Result<Option<u32>, D::Error> {
    Bounded::<LO, HI>::deserialize(d).map(|b| Some(b.0))
}

/// A string setting where `""` means none; surrounding spaces are dropped.
pub fn non_empty<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<String>, D::Error> {
    let s = String::deserialize(d).map_err(|_| de::Error::custom("must be a string"))?;
    let s = s.trim();
    Ok((!s.is_empty()).then(|| s.to_string()))
}

/// A list of words: `["a", "b"]` or `"a b"`.
pub fn words<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Words {
        One(String),
        Many(Vec<String>),
    }
    match Words::deserialize(d) {
        Ok(Words::One(s)) => Ok(s.split_whitespace().map(str::to_string).collect()),
        Ok(Words::Many(v)) => Ok(v),
        Err(_) => Err(de::Error::custom(
            "must be an array of strings or one space-separated string",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SystemsConfig;
    use std::path::Path;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Example {
        /// How many per page.
        page_size: Option<Bounded<1, 200>>,
        #[serde(default, deserialize_with = "words")]
        scopes: Vec<String>,
        #[serde(default)]
        use_patch: bool,
    }

    fn entry(settings: &str) -> crate::config::SystemEntry {
        let cfg = SystemsConfig::parse(
            Path::new("systems.toml"),
            &format!("[systems.idp]\nkind = \"okta\"\n[systems.idp.settings]\n{settings}\n"),
        )
        .unwrap();
        cfg.catalog.systems["idp"].clone()
    }

    #[test]
    fn the_field_list_comes_from_the_struct() {
        assert_eq!(
            fields_of::<Example>(),
            &["page_size", "scopes", "use_patch"]
        );
    }

    #[test]
    fn settings_parse_with_their_shapes() {
        let e: Example =
            parse(&entry("page_size = 50\nscopes = \"a b\"\nuse_patch = true")).unwrap();
        assert_eq!(
            e,
            Example {
                page_size: Some(Bounded(50)),
                scopes: vec!["a".into(), "b".into()],
                use_patch: true
            }
        );
        let e: Example = parse(&entry("scopes = [\"x\"]")).unwrap();
        assert_eq!(e.scopes, vec!["x".to_string()]);
        assert_eq!(e.page_size, None);
    }

    #[test]
    fn bad_settings_name_the_system_the_key_and_what_is_wanted() {
        let e = parse::<Example>(&entry("pagesize = 5")).unwrap_err();
        assert!(
            e.to_string()
                .contains("system idp: unknown setting \"pagesize\" for kind okta"),
            "{e}"
        );
        let hint = e.hint().unwrap();
        assert!(hint.contains("did you mean \"page_size\"?"), "{hint}");
        assert!(hint.contains("page_size, scopes, use_patch"), "{hint}");
        let e = parse::<Example>(&entry("page_size = 500")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "system idp: setting page_size must be an integer from 1 to 200, not 500"
        );
        let e = parse::<Example>(&entry("page_size = \"ten\"")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "system idp: setting page_size must be an integer from 1 to 200"
        );
        let e = parse::<Example>(&entry("scopes = 3")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "system idp: setting scopes must be an array of strings or one space-separated string"
        );
        let e = parse::<Example>(&entry("use_patch = \"yes\"")).unwrap_err();
        assert!(
            e.to_string().starts_with("system idp: setting use_patch: "),
            "{e}"
        );
    }
}

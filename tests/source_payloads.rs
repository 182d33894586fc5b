//! Fuzzing what a webhook sender controls: the payload parsers of every source kind, the
//! signature verification of every scheme (headers and body), and mapping plus
//! validation of whatever a payload carries. Any input gives events, a located error
//! (`$.path: message`), a rejection by reason, or a refused record naming its field;
//! never a panic. Findings are kept below as regression cases.

use accessdesk::sources::config::{KINDS, SourcesConfig};
use accessdesk::sources::events::{self, Event};
use accessdesk::sources::ingest;
use accessdesk::sources::signatures::{self, Scheme};
use proptest::prelude::*;
use serde_json::{Value, json};
use std::path::Path;

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        ".{0,10}".prop_map(Value::from),
        Just(Value::from("person.upserted")),
        Just(Value::from("person.terminated")),
        Just(Value::from("event_callback")),
        Just(Value::from("url_verification")),
        Just(Value::from("Deleted")),
    ];
    leaf.prop_recursive(4, 40, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map(
                prop_oneof![
                    Just("type".to_string()),
                    Just("data".to_string()),
                    Just("employees".to_string()),
                    Just("id".to_string()),
                    Just("action".to_string()),
                    Just("fields".to_string()),
                    Just("events".to_string()),
                    Just("target".to_string()),
                    Just("event".to_string()),
                    Just("user".to_string()),
                    Just("challenge".to_string()),
                    "[a-z_]{1,8}",
                ],
                inner,
                0..5
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn mapped_source() -> accessdesk::sources::config::Source {
    let mut c = SourcesConfig::parse(
        Path::new("sources.toml"),
        "[sources.hr]\nkind = \"webhook\"\ncredential = \"env:X\"\n\
         [sources.hr.mapping]\nemployee_id = \"string(record.id)\"\n\
         first_name = \"record.name.split(' ')[0]\"\nlast_name = \"record.name.split(' ')[1]\"\n\
         email = \"record.email\"\nstatus = \"record.active ? 'active' : 'terminated'\"\n",
    )
    .unwrap();
    c.sources.remove("hr").unwrap()
}

fn located(e: &events::BadPayload) -> bool {
    e.at.starts_with('$') && !e.message.is_empty()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    /// A Workday credential (the keychain entry's JSON, whatever was pasted there):
    /// parsed, or an error naming where it came from and never echoing what it holds.
    #[test]
    fn workday_credentials_parse_or_fail_without_echoing(
        text in prop_oneof![
            "[ -~]{0,60}",
            json_value().prop_map(|v| v.to_string()),
            ("[A-Za-z0-9]{1,12}", "[A-Za-z0-9]{0,12}", prop::option::of("[A-Za-z0-9]{0,12}"))
                .prop_map(|(id, secret, refresh)| {
                    let mut v = json!({"client_id": id, "client_secret": format!("{secret}QQSECRETQQ")});
                    if let Some(r) = refresh {
                        v["refresh_token"] = json!(format!("{r}QQSECRETQQ"));
                    }
                    v.to_string()
                }),
        ]
    ) {
        use accessdesk::sources::workday::WorkdayCredential;
        let secret = accessdesk::secrets::Secret::new(text.clone());
        match WorkdayCredential::parse(&secret, "keyring:wd") {
            Ok(c) => prop_assert!(!c.client_id.is_empty()),
            Err(e) => {
                prop_assert!(e.contains("keyring:wd"), "{e}");
                prop_assert!(!e.contains("QQSECRETQQ"), "{e}");
                if text.len() >= 8 {
                    prop_assert!(!e.contains(text.as_str()), "the input echoed: {e}");
                }
            }
        }
    }

    /// Whatever a Workday page or report holds, its records' ids are found or missing,
    /// never a panic.
    #[test]
    fn workday_record_ids_never_panic(v in json_value()) {
        let _ = accessdesk::sources::workday::record_id(&v);
    }

    /// Any bytes, for every kind: events or a located error.
    #[test]
    fn any_bytes_parse_or_fail_located(body in prop::collection::vec(any::<u8>(), 0..200),
                                       header in prop::option::of("[a-z]{0,12}")) {
        for (_, kind) in KINDS {
            if let Err(e) = events::parse(kind, &body, header.as_deref()) {
                prop_assert!(located(&e), "{e}");
            }
        }
    }

    /// Any JSON shaped like the vendors' payloads, for every kind.
    #[test]
    fn any_json_parses_or_fails_located(v in json_value(),
                                        header in prop::option::of(prop_oneof![
                                            Just("organization".to_string()),
                                            Just("membership".to_string()),
                                            Just("member".to_string()),
                                            Just("ping".to_string())])) {
        let body = v.to_string().into_bytes();
        for (_, kind) in KINDS {
            match events::parse(kind, &body, header.as_deref()) {
                Ok(evs) => {
                    for e in evs {
                        if let Event::Observe { account, .. } = e {
                            prop_assert!(!account.trim().is_empty());
                        }
                    }
                }
                Err(e) => prop_assert!(located(&e), "{e}"),
            }
            let _ = events::body_delivery_id(kind, &body);
        }
    }

    /// Any headers and body against every scheme: a rejection, never a panic; a wrong
    /// secret never verifies.
    #[test]
    fn any_headers_verify_or_are_rejected(
        id in ".{0,20}", ts in prop_oneof![".{0,12}", Just("1700000000".to_string())],
        sig in ".{0,60}", body in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let headers = [
            ("webhook-id", id.as_str()), ("webhook-timestamp", ts.as_str()),
            ("webhook-signature", sig.as_str()), ("x-hub-signature-256", sig.as_str()),
            ("x-github-delivery", id.as_str()), ("x-slack-signature", sig.as_str()),
            ("x-slack-request-timestamp", ts.as_str()), ("x-bamboohr-signature", sig.as_str()),
            ("x-bamboohr-timestamp", ts.as_str()), ("authorization", sig.as_str()),
        ];
        for scheme in [Scheme::StandardWebhooks, Scheme::GitHub, Scheme::Slack,
                       Scheme::BambooHr, Scheme::OktaEventHook] {
            let r = signatures::verify(scheme, &headers[..], &body, "whsec_c2VjcmV0LXNlY3JldA==", 1_700_000_000);
            if scheme == Scheme::OktaEventHook {
                prop_assert_eq!(r.is_ok(), sig == "whsec_c2VjcmV0LXNlY3JldA==");
            } else {
                prop_assert!(r.is_err(), "{scheme:?} verified a random signature");
            }
        }
    }

    /// Whatever a record holds, mapping and validation give a person or a refusal that
    /// names its field.
    #[test]
    fn any_record_maps_to_a_person_or_names_the_field(v in json_value()) {
        let source = mapped_source();
        let store = accessdesk::store::Store::open_in_memory().unwrap();
        for intent in [ingest::Intent::Upsert, ingest::Intent::Patch, ingest::Intent::Terminate] {
            let today = chrono::NaiveDate::from_ymd_opt(2026, 12, 5).unwrap();
            match ingest::to_person(&source, &v, "data", intent, &store, today) {
                Ok(p) => prop_assert!(!p.hris_id.is_empty() && p.email.contains('@')),
                Err(r) => {
                    let j = r.to_json();
                    prop_assert!(j.get("field").is_some() || j.get("problems").is_some(), "{j}");
                }
            }
        }
    }
}

/// Regression cases: shapes that once were (or could be) mishandled.
#[test]
fn regressions() {
    let kinds = KINDS.map(|(_, k)| k);
    for body in [
        &b""[..],
        b"null",
        b"[]",
        b"{\"type\":\"person.upserted\"}",
        b"{\"employees\":[{\"id\":null}]}",
        b"{\"data\":{\"events\":[{\"target\":\"x\"}]}}",
        b"{\"type\":\"event_callback\",\"event\":{\"type\":\"team_join\",\"user\":{}}}",
        b"\xEF\xBB\xBF{}",
    ] {
        for k in kinds {
            if let Err(e) = events::parse(k, body, Some("organization")) {
                assert!(located(&e), "{e}");
            }
        }
    }
    // A termination naming nobody the store knows is refused on employee_id.
    let store = accessdesk::store::Store::open_in_memory().unwrap();
    let r = ingest::to_person(
        &mapped_source(),
        &json!({"id": "E404"}),
        "data",
        ingest::Intent::Terminate,
        &store,
        chrono::NaiveDate::from_ymd_opt(2026, 12, 5).unwrap(),
    )
    .unwrap_err();
    assert_eq!(r.to_json()["problems"][0]["field"], "employee_id");
}

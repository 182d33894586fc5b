//! Property tests: the loaders that take outside input never panic, and every error they
//! return carries a file position.

use accessdesk::config::{ImportMapping, SystemsConfig};
use accessdesk::import::parse_people_csv;
use proptest::prelude::*;
use std::path::Path;

const SYSTEMS_SEED: &str = "[systems.okta]\nkind = \"okta\"\ncredential = \"keyring:x\"\ndepends_on = [\"gh\"]\n[[systems.okta.entitlements]]\nkind = \"group\"\nname = \"eng\"\n[systems.gh]\nkind = \"github\"\n[import.columns]\nemployee_id = \"id\"\n";
const CSV_SEED: &str = "employee_id,first_name,last_name,preferred_name,email,department,title,manager_id,location,cost_center,status,start_date,end_date\nE1,Ada,L,,ada@example.com,Eng,,,,,active,2024-01-01,\n";

/// Mutate a seed: overwrite, insert and delete bytes at random places.
fn mutated(seed: &'static str) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec((any::<usize>(), any::<u8>(), 0u8..3), 0..12).prop_map(move |edits| {
        let mut b = seed.as_bytes().to_vec();
        for (pos, byte, op) in edits {
            let i = if b.is_empty() { 0 } else { pos % b.len() };
            match op {
                0 if !b.is_empty() => b[i] = byte,
                1 => b.insert(i, byte),
                _ if !b.is_empty() => {
                    b.remove(i);
                }
                _ => {}
            }
        }
        b
    })
}

fn assert_located(e: &accessdesk::Error, file: &str) {
    let s = e.to_string();
    assert!(
        s.starts_with(&format!("{file}:")),
        "error lacks a position: {s}"
    );
    assert_eq!(e.exit_code(), 2, "{s}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn systems_toml_never_panics(bytes in mutated(SYSTEMS_SEED)) {
        let text = String::from_utf8_lossy(&bytes);
        if let Err(e) = SystemsConfig::parse(Path::new("systems.toml"), &text) {
            assert_located(&e, "systems.toml");
        }
    }

    #[test]
    fn systems_toml_arbitrary_text_never_panics(text in "\\PC{0,200}") {
        if let Err(e) = SystemsConfig::parse(Path::new("systems.toml"), &text) {
            assert_located(&e, "systems.toml");
        }
    }

    #[test]
    fn people_csv_never_panics(bytes in mutated(CSV_SEED)) {
        if let Err(e) = parse_people_csv(Path::new("hr.csv"), &bytes, &ImportMapping::default()) {
            assert_located(&e, "hr.csv");
        }
    }

    #[test]
    fn people_csv_arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        if let Err(e) = parse_people_csv(Path::new("hr.csv"), &bytes, &ImportMapping::default()) {
            assert_located(&e, "hr.csv");
        }
    }
}

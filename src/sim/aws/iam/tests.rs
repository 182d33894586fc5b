//! Unit tests of `aws_iam`.

use super::*;

fn params(pairs: &[(&str, &str)]) -> Params {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn names_paths_and_tags_are_checked() {
    assert!(
        name(
            &params(&[("UserName", "ada.l+x=y,z@w-v_u")]),
            "UserName",
            64
        )
        .is_ok()
    );
    for bad in ["", "has space", "ünï", &"a".repeat(65)] {
        let e = name(&params(&[("UserName", bad)]), "UserName", 64).unwrap_err();
        assert_eq!(e.code, "ValidationError", "{bad}");
    }
    assert_eq!(
        name(&params(&[]), "UserName", 64).unwrap_err().code,
        "MissingParameter"
    );
    assert_eq!(path(&params(&[]), "Path", "/").unwrap(), "/");
    assert!(path(&params(&[("Path", "/staff/")]), "Path", "/").is_ok());
    for bad in ["staff", "/staff", "/a b/"] {
        assert!(
            path(&params(&[("Path", bad)]), "Path", "/").is_err(),
            "{bad}"
        );
    }
    let t = tags(&params(&[
        ("Tags.member.1.Key", "accessdesk:hris-id"),
        ("Tags.member.1.Value", "E 001"),
        ("Tags.member.2.Key", "k"),
        ("Tags.member.3.Key", "skipped: no member 3 value is fine"),
    ]))
    .unwrap();
    assert_eq!(t.len(), 3);
    assert_eq!(t[1], ("k".to_string(), String::new()));
    assert!(tags(&params(&[("Tags.member.1.Key", "a,b")])).is_err());
    assert_eq!(
        tags(&params(&[
            ("Tags.member.1.Key", "K"),
            ("Tags.member.2.Key", "k")
        ]))
        .unwrap_err()
        .code,
        "InvalidInput"
    );
}

#[test]
fn pages_resume_from_the_marker() {
    let items: BTreeMap<String, u32> = (0..5).map(|i| (format!("u{i}"), i)).collect();
    let p = params(&[("MaxItems", "2")]);
    let (a, next) = page(&items, &p, |_| true).unwrap();
    assert_eq!(a, [&0, &1]);
    let next = next.unwrap();
    let p = params(&[("MaxItems", "2"), ("Marker", &next)]);
    let (b, next) = page(&items, &p, |_| true).unwrap();
    assert_eq!(b, [&2, &3]);
    let p = params(&[("MaxItems", "2"), ("Marker", &next.unwrap())]);
    assert_eq!(page(&items, &p, |_| true).unwrap(), (vec![&4], None));
    assert!(page(&items, &params(&[("Marker", "zz")]), |_| true).is_err());
    assert!(page(&items, &params(&[("MaxItems", "0")]), |_| true).is_err());
    assert!(page(&items, &params(&[("MaxItems", "1001")]), |_| true).is_err());
}

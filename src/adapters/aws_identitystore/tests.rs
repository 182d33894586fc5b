//! Unit tests of `aws_identitystore`.

use super::*;

/// Build either AWS adapter from a systems.toml snippet; the error text if it fails.
fn build(kind: &str, extra: &str, settings: &str, secret: &'static str) -> Option<String> {
    let text = format!(
        "[systems.a]\nkind = \"{kind}\"\ncredential = \"keyring:aws-x\"\n{extra}\n[systems.a.settings]\n{settings}\n"
    );
    let cfg = crate::config::SystemsConfig::parse(std::path::Path::new("systems.toml"), &text)
        .expect("parses");
    let entry = &cfg.catalog.systems["a"];
    let secrets = crate::adapters::kit::testkit::FixedSecret::new(secret);
    let ctx = || AdapterContext {
        entry,
        secrets: &secrets,
        limiter: crate::adapters::kit::context::limiter_for(entry),
        timeouts: Default::default(),
    };
    let r = if kind == "aws_iam" {
        super::super::aws_iam::from_config(ctx()).map(|_| ())
    } else {
        from_config(ctx()).map(|_| ())
    };
    r.err().map(|e| match e {
        crate::Error::Usage { message, hint } => format!("{message} | {hint}"),
        other => other.to_string(),
    })
}

#[test]
fn configuration_errors_say_what_to_fix() {
    const OK: &str = "AKIAIOSFODNN7EXAMPLE:s3cr3tS3CR3T";
    const STORE: &str = "identity_store_id = \"d-1234567890\"";
    assert_eq!(build("aws_identity_store", "", STORE, OK), None);
    assert_eq!(build("aws_iam", "", "path = \"/staff/\"", OK), None);
    for (kind, extra, settings, secret, expect) in [
        (
            "aws_identity_store",
            "",
            "",
            OK,
            "identity_store_id is missing",
        ),
        (
            "aws_identity_store",
            "",
            "identity_store_id = \"x\"",
            OK,
            "not an identity store id",
        ),
        (
            "aws_identity_store",
            "",
            "identity_store_id = \"d-1234567890\"\ndeactivate = \"wipe\"",
            OK,
            "remove_memberships",
        ),
        (
            "aws_identity_store",
            "",
            "identity_store_id = \"d-1234567890\"\npage_size = 500",
            OK,
            "page_size",
        ),
        (
            "aws_identity_store",
            "api_version = \"2019-01-01\"",
            STORE,
            OK,
            "not supported",
        ),
        (
            "aws_iam",
            "",
            "region = \"Mars 1\"",
            OK,
            "not an AWS region",
        ),
        ("aws_iam", "", "path = \"staff\"", OK, "not an IAM path"),
        // A misspelt setting was once ignored silently; now it is named, with the
        // closest known one.
        (
            "aws_iam",
            "",
            "pathh = \"/staff/\"",
            OK,
            "unknown setting \"pathh\" for kind aws_iam | did you mean \"path\"?",
        ),
        (
            "aws_identity_store",
            "",
            "identity_store_id = \"d-1234567890\"\nidentity_store = \"d-1\"",
            OK,
            "unknown setting \"identity_store\"",
        ),
        (
            "aws_iam",
            "",
            "",
            "secretwithoutkeyid",
            "accessdesk secret set aws-x",
        ),
    ] {
        let e = build(kind, extra, settings, secret).expect("refused");
        assert!(e.contains(expect), "{e}");
        assert!(
            !e.contains("s3cr3t") && !e.contains("secretwithoutkeyid"),
            "{e}"
        );
    }
}

#[test]
fn store_ids() {
    assert!(valid_store_id("d-1234567890"));
    assert!(valid_store_id("d-90670abcde"));
    assert!(valid_store_id("0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b"));
    assert!(!valid_store_id("d-12345"));
    assert!(!valid_store_id("d-ABCDEF0123"));
    assert!(!valid_store_id(""));
}

#[test]
fn decodes_users_with_nulls_and_rejects_bad_bodies() {
    let body = br#"{"Users": [{"UserId": "u1", "IdentityStoreId": "d-1234567890", "UserName": "ada",
            "Name": {"GivenName": "Ada", "FamilyName": null}, "DisplayName": "Ada", "NickName": null,
            "Emails": [{"Value": "a@x", "Primary": null}, {"Value": "ada@x", "Primary": true}],
            "Addresses": null, "ExternalIds": [{"Issuer": "accessdesk", "Id": "E001"}]}], "NextToken": null}"#;
    let out: ListUsersOut = decode("s", "ListUsers", 200, body).unwrap();
    let a = out.users[0].to_remote();
    assert_eq!(a.external_id, "u1");
    assert_eq!(a.email.as_deref(), Some("ada@x"));
    assert_eq!(a.hris_id.as_deref(), Some("E001"));
    assert_eq!(out.next_token, None);
    for bad in [
        &br#"{"Users": [{"UserId": "u1""#[..],
        b"<html><body>502 Bad Gateway</body></html>",
        br#"{"Groups": []}"#,
        br#"{"Users": "nope"}"#,
    ] {
        let e = decode::<ListUsersOut>("s", "ListUsers", 200, bad).unwrap_err();
        assert_eq!(e.class, ErrorClass::Transient, "{bad:?}");
        assert_eq!(e.status, Some(200));
        assert!(
            e.message.contains("ListUsers") || e.message.contains("HTML"),
            "{}",
            e.message
        );
    }
    // Void operations answer {} (or nothing).
    let _: Value = decode("s", "DeleteGroupMembership", 200, b"").unwrap();
}

#[test]
fn request_bodies() {
    let spec = AccountSpec {
        login: "ada".into(),
        email: "ada@example.com".into(),
        given_name: "Ada".into(),
        family_name: "Lovelace".into(),
        display_name: "Ada Lovelace".into(),
        attributes: [("title".to_string(), "Engineer".to_string())].into(),
        ..Default::default()
    };
    let b = create_user_body("d-1234567890", &spec);
    assert_eq!(b["Name"]["FamilyName"], "Lovelace");
    assert_eq!(b["Emails"][0]["Primary"], true);
    assert_eq!(b["Title"], "Engineer");
    let ops = update_operations(&spec, "ada");
    let paths: Vec<&str> = ops
        .iter()
        .filter_map(|o| o["AttributePath"].as_str())
        .collect();
    assert_eq!(
        paths,
        [
            "displayName",
            "name.givenName",
            "name.familyName",
            "title",
            "emails"
        ]
    );
    assert_eq!(ops[4]["AttributeValue"][0]["Value"], "ada@example.com");
    let ops = update_operations(&spec, "ada.old");
    assert_eq!(ops[0]["AttributePath"], "userName");
    assert_eq!(ops[0]["AttributeValue"], "ada");
}

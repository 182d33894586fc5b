//! Unit tests of `aws_iam`.

use super::*;

const NS: &str = "xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\"";

#[test]
fn parses_users_with_and_without_tags() {
    let body = format!(
        "<GetUserResponse {NS}><GetUserResult><User><Path>/staff/</Path><UserName>ada</UserName>\
             <UserId>AIDA1</UserId><Arn>arn:aws:iam::123456789012:user/staff/ada</Arn>\
             <CreateDate>2024-01-01T00:00:00Z</CreateDate><Tags><member><Key>accessdesk:hris-id</Key>\
             <Value>E001</Value></member><member><Key>accessdesk:deactivated</Key><Value>2024-02-02T00:00:00Z</Value>\
             </member></Tags></User></GetUserResult><ResponseMetadata><RequestId>r</RequestId>\
             </ResponseMetadata></GetUserResponse>"
    );
    let u = parse_user_result("iam", "GetUser", 200, body.as_bytes()).unwrap();
    assert_eq!(u.path, "/staff/");
    let a = u.to_remote();
    assert_eq!(a.external_id, "ada");
    assert_eq!(a.hris_id.as_deref(), Some("E001"));
    assert!(!a.active);
    let body = format!(
        "<GetUserResponse {NS}><GetUserResult><User><UserName>bob</UserName></User></GetUserResult></GetUserResponse>"
    );
    let u = parse_user_result("iam", "GetUser", 200, body.as_bytes()).unwrap();
    assert_eq!(u.tags, None);
    assert!(u.to_remote().active);
}

#[test]
fn parses_pages_and_markers() {
    let body = format!(
        "<ListUsersResponse {NS}><ListUsersResult><Users><member><UserName>a</UserName></member>\
             <member><UserName>b</UserName></member></Users><IsTruncated>true</IsTruncated>\
             <Marker>m2</Marker></ListUsersResult></ListUsersResponse>"
    );
    let (users, next) = parse_user_page("iam", "ListUsers", 200, body.as_bytes()).unwrap();
    assert_eq!(users.len(), 2);
    assert_eq!(next.as_deref(), Some("m2"));
    let body = format!(
        "<ListGroupsForUserResponse {NS}><ListGroupsForUserResult><Groups><member><GroupName>g1</GroupName>\
             </member></Groups><IsTruncated>false</IsTruncated></ListGroupsForUserResult></ListGroupsForUserResponse>"
    );
    let p = parse_groups_page("iam", 200, body.as_bytes()).unwrap();
    assert_eq!(p.items, vec!["g1".to_string()]);
    assert_eq!(p.next, None);
    let body = format!(
        "<ListAccessKeysResponse {NS}><ListAccessKeysResult><AccessKeyMetadata><member><UserName>a</UserName>\
             <AccessKeyId>AKIA1</AccessKeyId><Status>Active</Status></member></AccessKeyMetadata>\
             </ListAccessKeysResult></ListAccessKeysResponse>"
    );
    let p = parse_keys_page("iam", 200, body.as_bytes()).unwrap();
    assert_eq!(p.items, vec![("AKIA1".to_string(), "Active".to_string())]);
}

#[test]
fn bad_bodies_are_classified_errors() {
    // A 200 with an unexpected shape: the user has no name.
    let body = format!(
        "<GetUserResponse {NS}><GetUserResult><User><Arn>x</Arn></User></GetUserResult></GetUserResponse>"
    );
    let e = parse_user_result("iam", "GetUser", 200, body.as_bytes()).unwrap_err();
    assert_eq!(e.class, ErrorClass::Transient);
    assert_eq!(e.status, Some(200));
    assert!(e.message.contains("GetUserResponse"), "{}", e.message);
    // A truncated page says "more" but has no marker.
    let body = format!(
        "<ListUsersResponse {NS}><ListUsersResult><Users/><IsTruncated>true</IsTruncated></ListUsersResult></ListUsersResponse>"
    );
    assert!(parse_user_page("iam", "ListUsers", 200, body.as_bytes()).is_err());
    // A list with a member missing its name.
    let body = format!(
        "<ListGroupsForUserResponse {NS}><ListGroupsForUserResult><Groups><member/></Groups></ListGroupsForUserResult></ListGroupsForUserResponse>"
    );
    assert!(parse_groups_page("iam", 200, body.as_bytes()).is_err());
    // No list element at all.
    let body = format!("<ListUsersResponse {NS}><ListUsersResult/></ListUsersResponse>");
    assert!(parse_user_page("iam", "ListUsers", 200, body.as_bytes()).is_err());
    // A body cut off mid-element, HTML, and JSON where XML was expected.
    for body in [
        &b"<ListUsersResponse><ListUsersResult><Users><member><UserName>a"[..],
        b"<!DOCTYPE html><html><head><title>502</title></head></html>",
        b"{\"Users\": []}",
    ] {
        let e = parse_user_page("iam", "ListUsers", 200, body).unwrap_err();
        assert_eq!(e.class, ErrorClass::Transient, "{body:?}");
        assert!(!e.excerpt.is_empty());
    }
}

#[test]
fn names_and_tags() {
    assert!(valid_user_name("ada.lovelace"));
    assert!(valid_user_name("a+b=c,d.e@f-g_h"));
    assert!(!valid_user_name(""));
    assert!(!valid_user_name("has space"));
    assert!(!valid_user_name("ünï"));
    assert!(!valid_user_name(&"a".repeat(65)));
    assert!(valid_group_name(&"g".repeat(128)));
    assert!(valid_tag_value("E-001 / x@y.z"));
    assert!(!valid_tag_value("a,b"));
    assert_eq!(tag_value("Sales, EMEA (North)"), "Sales EMEA North");
    assert_eq!(tag_value("Иван Петров"), "Иван Петров");
    let spec = AccountSpec {
        hris_id: "E001".into(),
        login: "ada".into(),
        email: "ada@example.com".into(),
        display_name: "Ada L.".into(),
        attributes: [("department".to_string(), "R&D".to_string())].into(),
        ..Default::default()
    };
    let tags = spec_tags("iam", &spec).unwrap();
    assert!(tags.contains(&(HRIS_TAG.to_string(), "E001".to_string())));
    assert!(tags.contains(&("accessdesk:department".to_string(), "RD".to_string())));
    let bad = AccountSpec {
        hris_id: "E,001".into(),
        ..spec
    };
    assert_eq!(
        spec_tags("iam", &bad).unwrap_err().class,
        ErrorClass::Permanent
    );
    assert_eq!(
        tag_params(&[("k".into(), "v".into())]),
        vec![
            ("Tags.member.1.Key".to_string(), "k".to_string()),
            ("Tags.member.1.Value".to_string(), "v".to_string())
        ]
    );
}

#[test]
fn group_ids() {
    assert_eq!(group_name_from_id("eng"), "eng");
    assert_eq!(
        group_name_from_id("arn:aws:iam::123456789012:group/division/eng"),
        "eng"
    );
    assert_eq!(
        group_name_from_id("arn:aws:iam::123456789012:group/ops"),
        "ops"
    );
}

#[test]
fn partitions() {
    assert_eq!(partition_endpoint("eu-west-1").1, "us-east-1");
    assert_eq!(partition_endpoint("cn-northwest-1").1, "cn-north-1");
    assert_eq!(partition_endpoint("us-gov-east-1").1, "us-gov-west-1");
}

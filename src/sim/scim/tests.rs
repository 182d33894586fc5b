//! Unit tests of `scim`.

use super::*;

#[test]
fn projection_keeps_id_and_schemas_and_reads_urns() {
    let v = json!({"schemas": [SCHEMA_USER], "id": "1", "userName": "a", "emails": [], "meta": {},
                       SCHEMA_ENTERPRISE: {"department": "D", "costCenter": "C"}});
    let p = project(
        v.clone(),
        Some("userName,urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"),
        None,
    );
    assert_eq!(
        p,
        json!({"schemas": [SCHEMA_USER], "id": "1", "userName": "a", SCHEMA_ENTERPRISE: {"department": "D"}})
    );
    let p = project(v, None, Some("emails,meta,id"));
    assert!(p.get("emails").is_none() && p.get("meta").is_none() && p.get("id").is_some());
}

#[test]
fn case_exactness_follows_rfc_7643() {
    assert!(case_exact("id") && case_exact("externalId") && case_exact("members.value"));
    assert!(case_exact("meta.created"));
    assert!(!case_exact("userName") && !case_exact("displayName") && !case_exact("emails.value"));
}

#[test]
fn ids_are_unique_and_uuid_shaped() {
    let a = new_id(1);
    let b = new_id(2);
    assert_ne!(a, b);
    assert_eq!(a.len(), 36);
    assert_eq!(a.matches('-').count(), 4);
}

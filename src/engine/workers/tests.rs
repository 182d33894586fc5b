//! Unit tests of the workers' pure helpers.

use super::execute::is_own_account;
use super::*;

fn acct(id: &str, login: &str) -> RemoteAccount {
    RemoteAccount {
        external_id: id.into(),
        login: login.into(),
        email: None,
        active: true,
        hris_id: None,
        attributes: Default::default(),
    }
}

fn me(principal: &str, details: &[(&str, &str)]) -> crate::adapters::Identity {
    crate::adapters::Identity {
        principal: principal.into(),
        scopes: Vec::new(),
        details: details
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

#[test]
fn the_credentials_own_account_is_recognised_however_the_vendor_names_it() {
    // Okta: the token's admin by login, or by user id.
    let okta = me("Admin@Example.com", &[("user_id", "00u1")]);
    assert!(is_own_account(&okta, &acct("00u9", "admin@example.com")));
    assert!(is_own_account(&okta, &acct("00u1", "renamed@example.com")));
    assert!(!is_own_account(&okta, &acct("00u2", "stray@example.com")));
    // IAM: an ARN whose last part is the user name, and the user name itself.
    let iam = me(
        "arn:aws:iam::123456789012:user/accessdesk-admin",
        &[("user_name", "accessdesk-admin")],
    );
    assert!(is_own_account(
        &iam,
        &acct("accessdesk-admin", "accessdesk-admin")
    ));
    assert!(!is_own_account(&iam, &acct("hand.made", "hand.made")));
    // Nothing known: nothing matches (an empty user id is not a match).
    let none = me("", &[("user_id", "")]);
    assert!(!is_own_account(&none, &acct("", "")));
}

//! The AWS adapters against a real peer: moto in server mode with SigV4 signature checking
//! turned on (see tests/common/moto.rs; a missing moto fails with the install command).
//!
//! Each test starts its own moto, bootstraps an admin IAM user and access key while moto
//! still accepts anything, then switches checking on (`/moto-api/reset-auth` 0): from then
//! on every request must carry a valid signature from a known key whose policies allow it.

#[path = "common/aws_contract.rs"]
mod contract;
#[path = "common/moto.rs"]
mod moto;

use accessdesk::adapters::collect_all;
use accessdesk::adapters::prelude::*;
use contract::{MotoTarget, SLOW, all_accounts, iam, person};

#[tokio::test]
async fn iam_contract_signed_with_checking_on() {
    contract::iam_contract(&MotoTarget::start().await).await;
}

#[tokio::test]
async fn wrong_secret_is_unauthorized_naming_the_system_and_entry_and_is_not_retried() {
    contract::wrong_secret(&MotoTarget::start().await).await;
}

#[tokio::test]
async fn deactivation_removes_login_keys_and_groups_and_reactivation_restores_keys() {
    contract::deactivation(&MotoTarget::start().await).await;
}

/// moto's ListUsers ignores MaxItems and Marker (it always answers with one page), so the
/// Marker loop is proven against a small stand-in that pages the way IAM documents; moto
/// proves the adapter copes with its single page.
#[tokio::test]
async fn list_users_pages_with_markers() {
    use axum::body::Bytes;
    use axum::routing::post;
    let t = MotoTarget::start().await;
    let a = iam(&t.moto.url, &t.admin.credential(), "page_size = 2", SLOW);
    for i in 0..7 {
        a.create_account(&person(
            &format!("P{i}"),
            &format!("user{i}"),
            "U",
            &format!("N{i}"),
        ))
        .await
        .unwrap();
    }
    let all = all_accounts(&a, 0).await;
    assert_eq!(all.len(), 8, "7 users and the admin");
    assert_eq!(all.iter().filter(|x| x.hris_id.is_some()).count(), 7);

    // The stand-in: five users, pages of MaxItems with an opaque Marker.
    const NS: &str = "xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\"";
    let app = axum::Router::new().route(
        "/",
        post(|body: Bytes| async move {
            let form: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
            let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
            let user = |i: usize, tags: bool| {
                let t = if tags {
                    format!("<Tags><member><Key>accessdesk:hris-id</Key><Value>H{i}</Value></member></Tags>")
                } else {
                    String::new()
                };
                format!("<UserName>u{i}</UserName><UserId>AIDA{i}</UserId><Arn>arn:aws:iam::1:user/u{i}</Arn><Path>/</Path>{t}")
            };
            match get("Action").as_deref() {
                Some("ListUsers") => {
                    let max: usize = get("MaxItems").and_then(|m| m.parse().ok()).unwrap_or(100);
                    let start: usize = get("Marker")
                        .and_then(|m| m.strip_prefix("opaque-").and_then(|n| n.parse().ok()))
                        .unwrap_or(0);
                    let end = (start + max).min(5);
                    let members: String = (start..end).map(|i| format!("<member>{}</member>", user(i, false))).collect();
                    let more = if end < 5 {
                        format!("<IsTruncated>true</IsTruncated><Marker>opaque-{end}</Marker>")
                    } else {
                        "<IsTruncated>false</IsTruncated>".into()
                    };
                    format!("<ListUsersResponse {NS}><ListUsersResult><Users>{members}</Users>{more}</ListUsersResult></ListUsersResponse>")
                }
                Some("GetUser") => {
                    let i: usize = get("UserName").and_then(|n| n.trim_start_matches('u').parse().ok()).unwrap_or(0);
                    format!("<GetUserResponse {NS}><GetUserResult><User>{}</User></GetUserResult></GetUserResponse>", user(i, true))
                }
                _ => String::from("<unexpected/>"),
            }
        }),
    );
    let stub = accessdesk::sim::SimServer::spawn(app).await.unwrap();
    let s = iam(
        &stub.base_url(),
        &t.admin.credential(),
        "page_size = 2",
        SLOW,
    );
    let first = s.list_accounts(None).await.unwrap();
    assert_eq!(first.items.len(), 2);
    assert_eq!(first.next.as_deref(), Some("opaque-2"));
    assert_eq!(first.items[1].hris_id.as_deref(), Some("H1"));
    // Resuming from a cursor continues where that page ended.
    let rest = collect_all(|c| s.list_accounts(c.or_else(|| first.next.clone())), 0)
        .await
        .unwrap();
    assert_eq!(
        rest.iter().map(|x| x.login.as_str()).collect::<Vec<_>>(),
        ["u2", "u3", "u4"]
    );
    let all = all_accounts(&s, 0).await;
    assert_eq!(
        all.iter().map(|x| x.login.as_str()).collect::<Vec<_>>(),
        ["u0", "u1", "u2", "u3", "u4"]
    );
}

#[tokio::test]
async fn identitystore_contract_as_far_as_moto_goes() {
    contract::identitystore_contract(&MotoTarget::start().await).await;
}

/// moto answers ListGroups in one page whatever MaxItems says, so IAM's group paging is
/// proven against the simulator (tests/sim_aws.rs); here, every group once.
#[tokio::test]
async fn iam_reconciliation_reads() {
    contract::iam_reconciliation_reads(&MotoTarget::start().await, false).await;
}

#[tokio::test]
async fn identitystore_reconciliation_reads() {
    contract::identitystore_reconciliation_reads(&MotoTarget::start().await).await;
}

#[tokio::test]
async fn operations_through_the_fault_proxy_converge_without_duplicates() {
    contract::faults_converge(&MotoTarget::start().await, true).await;
}

/// IAM's Throttling (HTTP 400, no Retry-After) is rate limiting: retried with backoff, and
/// each refusal halves the system's request rate (AIMD) until answers come back.
#[tokio::test]
async fn throttling_is_retried_and_slows_the_limiter() {
    contract::throttling(&MotoTarget::start().await).await;
}

//! The AWS adapters against a real peer: moto in server mode with SigV4 signature checking
//! turned on (see tests/common/moto.rs; a missing moto fails with the install command).
//!
//! Each test starts its own moto, bootstraps an admin IAM user and access key while moto
//! still accepts anything, then switches checking on (`/moto-api/reset-auth` 0): from then
//! on every request must carry a valid signature from a known key whose policies allow it.

#[path = "common/moto.rs"]
mod moto;

use accessdesk::adapters::aws_iam::AwsIam;
use accessdesk::adapters::aws_identitystore::AwsIdentityStore;
use accessdesk::adapters::http::{RetryPolicy, Timeouts};
use accessdesk::adapters::registry::{AdapterContext, SecretSource, limiter_for};
use accessdesk::adapters::{
    AResult, AccountSpec, Adapter, EntitlementTarget, ErrorClass, RemoteAccount, collect_all,
};
use accessdesk::config::SystemsConfig;
use accessdesk::config::systems::CredentialRef;
use accessdesk::model::EntitlementKind;
use accessdesk::secrets::Secret;
use accessdesk::sim::fault::{FaultProfile, Faults, ThrottleStyle};
use moto::Moto;
use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

const SYSTEM: &str = "aws-prod";
const ENTRY: &str = "aws-test";
const STORE: &str = "d-1234567890";
const ACCOUNT: &str = "123456789012";
const ADMIN: &str = "accessdesk-admin";
const ALLOW_ALL: &str =
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;

/// The keychain, as far as these tests need one: a single entry.
struct OneSecret(String);

impl SecretSource for OneSecret {
    fn resolve(&self, cred: &CredentialRef) -> accessdesk::Result<Secret> {
        match cred {
            CredentialRef::Keyring(n) if n == ENTRY => Ok(Secret::new(self.0.clone())),
            other => Err(accessdesk::Error::usage(format!("no secret {other}"), "")),
        }
    }
}

fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 8,
        max_elapsed: Duration::from_secs(30),
        base: Duration::from_millis(20),
        cap: Duration::from_millis(300),
    }
}

fn entry_toml(kind: &str, base_url: &str, settings: &str) -> String {
    format!(
        "[systems.{SYSTEM}]\nkind = \"{kind}\"\nbase_url = \"{base_url}\"\ncredential = \"keyring:{ENTRY}\"\n\
         rate_limit = {{ requests_per_minute = 6000, concurrency = 4 }}\n\
         [systems.{SYSTEM}.settings]\nregion = \"us-east-1\"\n{settings}\n"
    )
}

fn with_ctx<T>(
    kind: &str,
    base_url: &str,
    credential: &str,
    settings: &str,
    request_timeout: Duration,
    build: impl FnOnce(AdapterContext<'_>) -> accessdesk::Result<T>,
) -> T {
    let cfg = SystemsConfig::parse(
        Path::new("systems.toml"),
        &entry_toml(kind, base_url, settings),
    )
    .expect("systems.toml");
    let entry = &cfg.catalog.systems[SYSTEM];
    let secrets = OneSecret(credential.to_string());
    let ctx = AdapterContext {
        entry,
        secrets: &secrets,
        limiter: limiter_for(entry),
        timeouts: Timeouts {
            connect: Duration::from_secs(2),
            request: request_timeout,
        },
    };
    match build(ctx) {
        Ok(a) => a,
        Err(e) => panic!("building the adapter: {e}"),
    }
}

fn iam(base_url: &str, credential: &str, settings: &str, timeout: Duration) -> AwsIam {
    let mut a = with_ctx(
        "aws_iam",
        base_url,
        credential,
        settings,
        timeout,
        AwsIam::from_context,
    );
    a.set_retry(fast_retry());
    a
}

fn idstore(
    base_url: &str,
    credential: &str,
    settings: &str,
    timeout: Duration,
) -> AwsIdentityStore {
    let settings = format!("identity_store_id = \"{STORE}\"\n{settings}");
    let mut a = with_ctx(
        "aws_identity_store",
        base_url,
        credential,
        &settings,
        timeout,
        AwsIdentityStore::from_context,
    );
    a.set_retry(fast_retry());
    a
}

const SLOW: Duration = Duration::from_secs(10);

fn xml_all(body: &[u8], tag: &str) -> Vec<String> {
    let text = std::str::from_utf8(body).expect("utf-8 body");
    let doc = roxmltree::Document::parse(text).expect("xml body");
    doc.descendants()
        .filter(|n| n.is_element() && n.tag_name().name() == tag)
        .map(|n| n.text().unwrap_or("").to_string())
        .collect()
}

struct Admin {
    key_id: String,
    secret: String,
}

impl Admin {
    fn credential(&self) -> String {
        format!("{}:{}", self.key_id, self.secret)
    }
}

/// Create the admin user, its allow-all policy and access key while moto checks nothing
/// (requests must still be signed for moto to route them; any key does), then turn
/// signature and permission checking on for every later request.
async fn bootstrap(moto: &Moto) -> Admin {
    let boot = iam(
        &moto.url,
        "AKIAIOSFODNN7EXAMPLE:bootstrap-unchecked",
        "",
        SLOW,
    );
    boot.call("CreateUser", &[("UserName", ADMIN)])
        .await
        .expect("CreateUser admin");
    boot.call(
        "PutUserPolicy",
        &[
            ("UserName", ADMIN),
            ("PolicyName", "all"),
            ("PolicyDocument", ALLOW_ALL),
        ],
    )
    .await
    .expect("PutUserPolicy");
    let r = boot
        .call("CreateAccessKey", &[("UserName", ADMIN)])
        .await
        .expect("CreateAccessKey");
    let admin = Admin {
        key_id: xml_all(&r.body, "AccessKeyId").remove(0),
        secret: xml_all(&r.body, "SecretAccessKey").remove(0),
    };
    moto.check_signatures_after(0).await;
    // Checking is on: the bootstrap key is now unknown.
    let e = boot.call("ListUsers", &[]).await.unwrap_err();
    assert_eq!(e.class, ErrorClass::Unauthorized, "{e}");
    admin
}

fn person(hris: &str, login: &str, given: &str, family: &str) -> AccountSpec {
    AccountSpec {
        hris_id: hris.into(),
        login: login.into(),
        email: format!("{login}@example.com"),
        given_name: given.into(),
        family_name: family.into(),
        display_name: format!("{given} {family}"),
        attributes: [("department".to_string(), "Engineering".to_string())].into(),
    }
}

fn group(name: &str) -> EntitlementTarget {
    EntitlementTarget {
        kind: EntitlementKind::Group,
        name: name.into(),
        external_id: name.into(),
    }
}

fn names(ms: Vec<accessdesk::adapters::RemoteMembership>) -> Vec<String> {
    let mut v: Vec<String> = ms.into_iter().map(|m| m.name).collect();
    v.sort();
    v
}

async fn all_accounts(a: &dyn Adapter, page_retries: u32) -> Vec<RemoteAccount> {
    collect_all(|c| a.list_accounts(c), page_retries)
        .await
        .expect("list all accounts")
}

#[tokio::test]
async fn iam_contract_signed_with_checking_on() {
    let t = Instant::now();
    let moto = Moto::start().await;
    let admin = bootstrap(&moto).await;
    let a = iam(&moto.url, &admin.credential(), "", SLOW);

    let id = a.authenticate().await.expect("authenticate");
    assert_eq!(id.principal, format!("arn:aws:iam::{ACCOUNT}:user/{ADMIN}"));
    assert_eq!(id.details["account"], ACCOUNT);
    assert_eq!(a.api_version(), "2010-05-08");

    for g in ["eng", "ops"] {
        a.call("CreateGroup", &[("GroupName", g)])
            .await
            .expect("CreateGroup");
    }
    let spec = person("E001", "ada.lovelace", "Ada", "Lovelace");
    let acct = a.create_account(&spec).await.expect("create");
    assert_eq!(acct.external_id, "ada.lovelace");
    assert_eq!(acct.hris_id.as_deref(), Some("E001"));
    assert!(acct.active);

    // (c) A second CreateUser for the same login is a Conflict, not a failure.
    let e = a.create_account(&spec).await.unwrap_err();
    assert_eq!(e.class, ErrorClass::Conflict, "{e}");
    assert_eq!(e.vendor_code.as_deref(), Some("EntityAlreadyExists"));
    assert_eq!(e.status, Some(409));

    let got = a
        .get_account_by_login("ada.lovelace")
        .await
        .unwrap()
        .expect("found");
    assert_eq!(got.hris_id.as_deref(), Some("E001"));
    assert_eq!(got.email.as_deref(), Some("ada.lovelace@example.com"));
    assert!(a.get_account("nobody").await.unwrap().is_none());
    assert!(
        a.get_account_by_login("not a valid name!")
            .await
            .unwrap()
            .is_none()
    );

    // Memberships: adding twice is fine, removing what is not there is fine.
    for g in ["eng", "eng", "ops"] {
        a.add_membership("ada.lovelace", &group(g))
            .await
            .expect("add");
    }
    assert_eq!(
        names(a.list_memberships("ada.lovelace").await.unwrap()),
        ["eng", "ops"]
    );
    let eng = group("eng");
    let members = collect_all(|c| a.list_members(&eng, c), 0).await.unwrap();
    assert_eq!(members.len(), 1);
    assert_eq!(members[0].hris_id.as_deref(), Some("E001"));
    for _ in 0..2 {
        a.remove_membership("ada.lovelace", &group("eng"))
            .await
            .expect("remove");
    }
    assert_eq!(
        names(a.list_memberships("ada.lovelace").await.unwrap()),
        ["ops"]
    );
    let e = a
        .add_membership("ada.lovelace", &group("no-such-group"))
        .await
        .unwrap_err();
    assert_eq!(e.class, ErrorClass::NotFound, "{e}");
    let role = EntitlementTarget {
        kind: EntitlementKind::Role,
        ..group("admins")
    };
    assert_eq!(
        a.add_membership("ada.lovelace", &role)
            .await
            .unwrap_err()
            .class,
        ErrorClass::Permanent
    );

    // Update: tags follow the person.
    let mut moved = spec.clone();
    moved
        .attributes
        .insert("department".into(), "Research".into());
    let upd = a
        .update_account("ada.lovelace", &moved)
        .await
        .expect("update");
    assert_eq!(upd.hris_id.as_deref(), Some("E001"));
    let r = a
        .call("ListUserTags", &[("UserName", "ada.lovelace")])
        .await
        .unwrap();
    let keys = xml_all(&r.body, "Key");
    let values = xml_all(&r.body, "Value");
    let dept = keys
        .iter()
        .position(|k| k == "accessdesk:department")
        .expect("tag");
    assert_eq!(values[dept], "Research");

    // A login IAM cannot hold is refused before any request.
    let bad = person("E002", "has space", "A", "B");
    assert_eq!(
        a.create_account(&bad).await.unwrap_err().class,
        ErrorClass::Permanent
    );
    eprintln!("iam contract: {:.1} s", t.elapsed().as_secs_f64());
}

#[tokio::test]
async fn wrong_secret_is_unauthorized_naming_the_system_and_entry_and_is_not_retried() {
    let moto = Moto::start().await;
    let admin = bootstrap(&moto).await;
    let faults = Faults::new(FaultProfile::none(), ThrottleStyle::AwsQuery);
    let px = accessdesk::sim::proxy::spawn(&moto.url, faults.clone())
        .await
        .unwrap();

    let wrong_secret = "wrongSECRETwrongSECRETwrongSECRET0000000";
    let a = iam(
        &px.base_url(),
        &format!("{}:{wrong_secret}", admin.key_id),
        "",
        SLOW,
    );
    let e = a.authenticate().await.unwrap_err();
    assert_eq!(e.class, ErrorClass::Unauthorized, "{e}");
    assert_eq!(e.vendor_code.as_deref(), Some("SignatureDoesNotMatch"));
    assert_eq!(e.status, Some(403));
    let shown = e.to_string();
    assert!(shown.contains(SYSTEM), "{shown}");
    assert!(shown.contains(&format!("keyring:{ENTRY}")), "{shown}");
    assert!(
        !shown.contains(wrong_secret) && !e.excerpt.contains(wrong_secret),
        "{shown}"
    );
    assert_eq!(
        faults.counts().0,
        1,
        "one request: a refused credential is not retried"
    );

    let e = a
        .create_account(&person("E1", "x", "X", "Y"))
        .await
        .unwrap_err();
    assert_eq!(e.class, ErrorClass::Unauthorized);
    assert_eq!(faults.counts().0, 2);

    // An access key moto has never seen.
    let a = iam(&px.base_url(), "AKIAUNKNOWNUNKNOWN00:whatever", "", SLOW);
    let e = a.authenticate().await.unwrap_err();
    assert_eq!(e.class, ErrorClass::Unauthorized, "{e}");
    assert_eq!(e.vendor_code.as_deref(), Some("InvalidClientTokenId"));

    // The identity store refuses the wrong secret the same way.
    let s = idstore(
        &px.base_url(),
        &format!("{}:{wrong_secret}", admin.key_id),
        "",
        SLOW,
    );
    let before = faults.counts().0;
    let e = s
        .get_account("00000000-0000-0000-0000-000000000000")
        .await
        .unwrap_err();
    assert_eq!(e.class, ErrorClass::Unauthorized, "{e}");
    assert_eq!(faults.counts().0, before + 1);

    // The right secret through the same proxy verifies: the proxy keeps the signed bytes.
    let ok = iam(&px.base_url(), &admin.credential(), "", SLOW);
    assert!(ok.authenticate().await.is_ok());
}

#[tokio::test]
async fn deactivation_removes_login_keys_and_groups_and_reactivation_restores_keys() {
    let moto = Moto::start().await;
    let admin = bootstrap(&moto).await;
    let a = iam(&moto.url, &admin.credential(), "", SLOW);
    let user = "grace.hopper";
    a.create_account(&person("E010", user, "Grace", "Hopper"))
        .await
        .unwrap();
    for g in ["eng", "ops"] {
        a.call("CreateGroup", &[("GroupName", g)]).await.unwrap();
        a.add_membership(user, &group(g)).await.unwrap();
    }
    a.call(
        "CreateLoginProfile",
        &[("UserName", user), ("Password", "Correct-Horse-9!")],
    )
    .await
    .unwrap();
    let mut keys = Vec::new();
    for _ in 0..2 {
        let r = a
            .call("CreateAccessKey", &[("UserName", user)])
            .await
            .unwrap();
        keys.push(xml_all(&r.body, "AccessKeyId").remove(0));
    }
    // An admin had already turned the second key off: reactivation must leave it off.
    a.call(
        "UpdateAccessKey",
        &[
            ("UserName", user),
            ("AccessKeyId", &keys[1]),
            ("Status", "Inactive"),
        ],
    )
    .await
    .unwrap();

    let key_status = || async {
        let r = a
            .call("ListAccessKeys", &[("UserName", user)])
            .await
            .unwrap();
        let ids = xml_all(&r.body, "AccessKeyId");
        let st = xml_all(&r.body, "Status");
        keys.iter()
            .map(|k| st[ids.iter().position(|i| i == k).unwrap()].clone())
            .collect::<Vec<_>>()
    };

    a.deactivate_account(user).await.expect("deactivate");
    let e = a
        .call("GetLoginProfile", &[("UserName", user)])
        .await
        .unwrap_err();
    assert_eq!(e.class, ErrorClass::NotFound, "login profile is gone: {e}");
    assert_eq!(key_status().await, ["Inactive", "Inactive"]);
    assert!(a.list_memberships(user).await.unwrap().is_empty());
    let acct = a.get_account(user).await.unwrap().unwrap();
    assert!(!acct.active);
    assert_eq!(acct.hris_id.as_deref(), Some("E010"));
    // Listing reports the state too.
    let listed = all_accounts(&a, 0).await;
    assert!(!listed.iter().find(|x| x.login == user).unwrap().active);

    // Again (a retried deactivation): still fine, and the record of which key to restore
    // survives.
    a.deactivate_account(user).await.expect("deactivate again");

    a.reactivate_account(user).await.expect("reactivate");
    assert_eq!(key_status().await, ["Active", "Inactive"]);
    assert!(a.get_account(user).await.unwrap().unwrap().active);
    // The console password is not restored (IAM needs a new one).
    let e = a
        .call("GetLoginProfile", &[("UserName", user)])
        .await
        .unwrap_err();
    assert_eq!(e.class, ErrorClass::NotFound);
    // Reactivating an active user changes nothing.
    a.reactivate_account(user).await.expect("reactivate again");
    assert_eq!(key_status().await, ["Active", "Inactive"]);

    assert_eq!(
        a.deactivate_account("nobody").await.unwrap_err().class,
        ErrorClass::NotFound
    );
}

/// moto's ListUsers ignores MaxItems and Marker (it always answers with one page), so the
/// Marker loop is proven against a small stand-in that pages the way IAM documents; moto
/// proves the adapter copes with its single page.
#[tokio::test]
async fn list_users_pages_with_markers() {
    use axum::body::Bytes;
    use axum::routing::post;
    let moto = Moto::start().await;
    let admin = bootstrap(&moto).await;
    let a = iam(&moto.url, &admin.credential(), "page_size = 2", SLOW);
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
    let s = iam(&stub.base_url(), &admin.credential(), "page_size = 2", SLOW);
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
    let t = Instant::now();
    let moto = Moto::start().await;
    let admin = bootstrap(&moto).await;
    let s = idstore(&moto.url, &admin.credential(), "page_size = 2", SLOW);

    let id = s.authenticate().await.expect("authenticate");
    assert_eq!(id.principal, format!("arn:aws:iam::{ACCOUNT}:user/{ADMIN}"));
    assert_eq!(id.details["identity_store_id"], STORE);
    assert_eq!(s.api_version(), "2020-06-15");

    for g in ["eng", "ops"] {
        s.call("CreateGroup", serde_json::json!({"DisplayName": g}))
            .await
            .expect("CreateGroup");
    }
    let spec = person("E001", "ada", "Ada", "Lovelace");
    let ada = s.create_account(&spec).await.expect("create");
    assert!(!ada.external_id.is_empty());
    let e = s.create_account(&spec).await.unwrap_err();
    assert_eq!(e.class, ErrorClass::Conflict, "{e}");
    assert_eq!(e.vendor_code.as_deref(), Some("ConflictException"));

    let by_login = s.get_account_by_login("ada").await.unwrap().expect("found");
    assert_eq!(by_login.external_id, ada.external_id);
    assert_eq!(by_login.email.as_deref(), Some("ada@example.com"));
    assert!(s.get_account_by_login("nobody").await.unwrap().is_none());
    assert!(s.get_account(&ada.external_id).await.unwrap().is_some());
    assert!(
        s.get_account("00000000-0000-0000-0000-000000000000")
            .await
            .unwrap()
            .is_none()
    );

    // Memberships: a repeated add creates no second membership (moto itself would).
    for g in ["eng", "eng", "ops"] {
        s.add_membership(&ada.external_id, &group(g))
            .await
            .expect("add");
    }
    let eng_id = s.group_id(&group("eng")).await.unwrap();
    let r = s
        .call(
            "ListGroupMemberships",
            serde_json::json!({"GroupId": eng_id}),
        )
        .await
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["GroupMemberships"].as_array().unwrap().len(), 1);
    assert_eq!(
        names(s.list_memberships(&ada.external_id).await.unwrap()),
        ["eng", "ops"]
    );
    let eng = group("eng");
    let members = collect_all(|c| s.list_members(&eng, c), 0).await.unwrap();
    assert_eq!(
        members.iter().map(|m| m.login.as_str()).collect::<Vec<_>>(),
        ["ada"]
    );
    for _ in 0..2 {
        s.remove_membership(&ada.external_id, &group("eng"))
            .await
            .expect("remove");
    }
    assert_eq!(
        names(s.list_memberships(&ada.external_id).await.unwrap()),
        ["ops"]
    );
    let e = s
        .add_membership(&ada.external_id, &group("no-such-group"))
        .await
        .unwrap_err();
    assert_eq!(e.class, ErrorClass::Permanent, "{e}");
    assert!(e.message.contains("no-such-group"), "{e}");

    // Pagination over NextToken (moto pages these), two at a time.
    for i in 0..4 {
        s.create_account(&person(
            &format!("E1{i}"),
            &format!("user{i}"),
            "U",
            &format!("N{i}"),
        ))
        .await
        .unwrap();
    }
    let mut pages = 0;
    let mut cursor = None;
    let mut seen = BTreeSet::new();
    loop {
        let p = s.list_accounts(cursor).await.unwrap();
        pages += 1;
        assert!(p.items.len() <= 2);
        for a in p.items {
            assert!(seen.insert(a.login), "no user twice");
        }
        match p.next {
            Some(n) => cursor = Some(n),
            None => break,
        }
    }
    assert_eq!(seen.len(), 5);
    assert!(pages >= 3, "{pages} pages");

    // Deactivation (default mode): memberships go, the user stays.
    s.add_membership(&ada.external_id, &group("eng"))
        .await
        .unwrap();
    s.deactivate_account(&ada.external_id)
        .await
        .expect("deactivate");
    assert!(
        s.list_memberships(&ada.external_id)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(s.get_account(&ada.external_id).await.unwrap().is_some());
    s.reactivate_account(&ada.external_id)
        .await
        .expect("reactivate");

    // Deactivation by deletion, where configured: irreversible, and reactivation says so.
    let d = idstore(
        &moto.url,
        &admin.credential(),
        "deactivate = \"delete_user\"",
        SLOW,
    );
    let u0 = d.get_account_by_login("user0").await.unwrap().unwrap();
    d.add_membership(&u0.external_id, &group("ops"))
        .await
        .unwrap();
    d.deactivate_account(&u0.external_id)
        .await
        .expect("deactivate (delete)");
    assert!(d.get_account(&u0.external_id).await.unwrap().is_none());
    let e = d.reactivate_account(&u0.external_id).await.unwrap_err();
    assert_eq!(e.class, ErrorClass::Permanent);
    assert!(e.message.contains("deleted"), "{e}");
    let ops_id = d.group_id(&group("ops")).await.unwrap();
    let r = d
        .call(
            "ListGroupMemberships",
            serde_json::json!({"GroupId": ops_id}),
        )
        .await
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert!(
        v["GroupMemberships"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["MemberId"]["UserId"] != u0.external_id.as_str()),
        "no membership left behind for the deleted user"
    );
    eprintln!("identitystore contract: {:.1} s", t.elapsed().as_secs_f64());
}

/// What the engine does with one operation: Conflict counts as done, retryable errors are
/// tried again a few times (on top of the adapter's own retries).
async fn converge<T>(what: &str, mut op: impl AsyncFnMut() -> AResult<T>) -> Option<T> {
    for round in 0..4 {
        match op().await {
            Ok(v) => return Some(v),
            Err(e) if e.class == ErrorClass::Conflict => return None,
            Err(e) if e.class.is_retryable() && round < 3 => {
                eprintln!("{what}: {e} (again)");
            }
            Err(e) => panic!("{what}: {e}"),
        }
    }
    unreachable!()
}

#[tokio::test]
async fn operations_through_the_fault_proxy_converge_without_duplicates() {
    let t = Instant::now();
    let moto = Moto::start().await;
    let admin = bootstrap(&moto).await;
    let direct = iam(&moto.url, &admin.credential(), "", SLOW);
    let direct_s = idstore(&moto.url, &admin.credential(), "", SLOW);
    for g in ["eng", "ops"] {
        direct
            .call("CreateGroup", &[("GroupName", g)])
            .await
            .unwrap();
        direct_s
            .call("CreateGroup", serde_json::json!({"DisplayName": g}))
            .await
            .unwrap();
    }

    let faults = Faults::new(
        FaultProfile::mixed(0.10, 20_260_501),
        ThrottleStyle::AwsQuery,
    );
    let px = accessdesk::sim::proxy::spawn(&moto.url, faults.clone())
        .await
        .unwrap();
    let timeout = Duration::from_millis(1500);
    let a = iam(
        &px.base_url(),
        &admin.credential(),
        "page_size = 3",
        timeout,
    );
    let s = idstore(
        &px.base_url(),
        &admin.credential(),
        "page_size = 3",
        timeout,
    );

    let people: Vec<AccountSpec> = (0..12)
        .map(|i| {
            person(
                &format!("F{i:03}"),
                &format!("f.user{i}"),
                "F",
                &format!("User{i}"),
            )
        })
        .collect();
    // Four people at a time, each: create, join two groups (one twice), read back.
    for chunk in people.chunks(4) {
        futures::future::join_all(chunk.iter().map(|p| {
            let a = &a;
            async move {
                converge("create", async || a.create_account(p).await).await;
                for g in ["eng", "ops", "eng"] {
                    converge("add", async || a.add_membership(&p.login, &group(g)).await).await;
                }
                let ms = converge("memberships", async || a.list_memberships(&p.login).await)
                    .await
                    .unwrap();
                assert_eq!(names(ms), ["eng", "ops"]);
            }
        }))
        .await;
    }
    for p in &people[..3] {
        converge("deactivate", async || a.deactivate_account(&p.login).await).await;
    }
    converge("reactivate", async || {
        a.reactivate_account(&people[0].login).await
    })
    .await;
    let listed = collect_all(|c| a.list_accounts(c), 5)
        .await
        .expect("list through faults");
    let logins: BTreeSet<&str> = listed.iter().map(|x| x.login.as_str()).collect();
    assert_eq!(logins.len(), listed.len(), "no account listed twice");
    assert_eq!(listed.len(), 13);

    // Read back directly from moto.
    let r = direct.call("ListUsers", &[]).await.unwrap();
    let users = xml_all(&r.body, "UserName");
    assert_eq!(
        users.len(),
        13,
        "12 people and the admin, no duplicates: {users:?}"
    );
    for g in ["eng", "ops"] {
        let r = direct.call("GetGroup", &[("GroupName", g)]).await.unwrap();
        let members: Vec<String> = xml_all(&r.body, "UserName");
        let unique: BTreeSet<&String> = members.iter().collect();
        assert_eq!(members.len(), unique.len(), "{g}: {members:?}");
        assert_eq!(
            members.len(),
            9,
            "{g}: the three deactivated left: {members:?}"
        );
    }
    let deactivated = listed.iter().filter(|x| !x.active).count();
    assert_eq!(deactivated, 2, "three deactivated, one reactivated");

    // The identity store through the same faults.
    let mut ids = Vec::new();
    for p in &people[..6] {
        let id = match converge("store create", async || s.create_account(p).await).await {
            Some(a) => a.external_id,
            None => {
                s.get_account_by_login(&p.login)
                    .await
                    .unwrap()
                    .unwrap()
                    .external_id
            }
        };
        for g in ["eng", "eng", "ops"] {
            converge("store add", async || s.add_membership(&id, &group(g)).await).await;
        }
        ids.push(id);
    }
    let users = collect_all(|c| s.list_accounts(c), 5)
        .await
        .expect("store listing");
    assert_eq!(users.len(), 6);
    for g in ["eng", "ops"] {
        let gid = direct_s.group_id(&group(g)).await.unwrap();
        let r = direct_s
            .call("ListGroupMemberships", serde_json::json!({"GroupId": gid}))
            .await
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        let members: Vec<&str> = v["GroupMemberships"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["MemberId"]["UserId"].as_str().unwrap())
            .collect();
        let unique: BTreeSet<&&str> = members.iter().collect();
        assert_eq!(members.len(), 6, "{g}: {members:?}");
        assert_eq!(unique.len(), 6, "{g}: no duplicate memberships");
    }

    let (requests, injected) = faults.counts();
    assert!(
        injected > 0,
        "faults were injected ({injected} of {requests})"
    );
    let snap = a.http().limiter.snapshot();
    eprintln!(
        "fault run: {requests} requests, {injected} faults injected, {} throttled, {:.1} s",
        snap.throttled,
        t.elapsed().as_secs_f64()
    );
}

/// IAM's Throttling (HTTP 400, no Retry-After) is rate limiting: retried with backoff, and
/// each refusal halves the system's request rate (AIMD) until answers come back.
#[tokio::test]
async fn throttling_is_retried_and_slows_the_limiter() {
    let moto = Moto::start().await;
    let admin = bootstrap(&moto).await;
    let always = FaultProfile {
        burst_429_rate: 1.0,
        burst_429_len: 1,
        ..FaultProfile::none()
    };
    let faults = Faults::new(always, ThrottleStyle::AwsQuery);
    let px = accessdesk::sim::proxy::spawn(&moto.url, faults.clone())
        .await
        .unwrap();
    let mut a = iam(&px.base_url(), &admin.credential(), "", SLOW);
    a.set_retry(RetryPolicy {
        max_attempts: 4,
        ..fast_retry()
    });
    let before = a.http().limiter.snapshot().rate_per_sec;
    let e = a.authenticate().await.unwrap_err();
    assert!(
        matches!(e.class, ErrorClass::RateLimited { retry_after: None }),
        "{e}"
    );
    assert_eq!(e.vendor_code.as_deref(), Some("Throttling"));
    assert!(e.message.contains("gave up after 4 attempts"), "{e}");
    let snap = a.http().limiter.snapshot();
    assert_eq!(snap.throttled, 4);
    assert!(
        snap.rate_per_sec <= before / 8.0,
        "rate {} -> {}",
        before,
        snap.rate_per_sec
    );
    assert_eq!(faults.counts(), (4, 4));
    // The vendor recovers: the next call goes through and the rate starts to climb back.
    faults.set_profile(FaultProfile::none());
    a.authenticate().await.expect("after throttling");
    assert!(a.http().limiter.snapshot().rate_per_sec > snap.rate_per_sec);
}

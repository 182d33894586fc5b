//! The AWS adapters' contract, one test body for every AWS endpoint the tests run
//! against: moto with signature checking on (tests/aws_peer.rs) and our simulator
//! (tests/sim_aws.rs). An endpoint is an [`AwsTarget`]: where it is and the admin's key.
#![allow(dead_code)]

use accessdesk::adapters::aws_iam::AwsIam;
use accessdesk::adapters::aws_identitystore::AwsIdentityStore;
use accessdesk::adapters::http::{RetryPolicy, Timeouts};
use accessdesk::adapters::prelude::*;
use accessdesk::adapters::registry::{AdapterContext, SecretSource, limiter_for};
use accessdesk::adapters::{
    AResult, AccountSpec, Adapter, EntitlementTarget, ErrorClass, RemoteAccount, collect_all,
};
use accessdesk::config::SystemsConfig;
use accessdesk::config::systems::CredentialRef;
use accessdesk::model::EntitlementKind;
use accessdesk::secrets::Secret;
use accessdesk::sim::fault::{FaultProfile, Faults, ThrottleStyle};
use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

/// An AWS endpoint under test, with an admin access key.
pub trait AwsTarget {
    fn url(&self) -> String;
    fn key_id(&self) -> String;
    fn secret(&self) -> String;
    /// The admin's key as the keychain holds it.
    fn credential(&self) -> String {
        format!("{}:{}", self.key_id(), self.secret())
    }
}

/// moto with an admin user, its key and an allow-all policy; signature checking on.
pub struct MotoTarget {
    pub moto: crate::moto::Moto,
    pub admin: Admin,
}

impl MotoTarget {
    pub async fn start() -> MotoTarget {
        let moto = crate::moto::Moto::start().await;
        let admin = bootstrap(&moto).await;
        MotoTarget { moto, admin }
    }
}

impl AwsTarget for MotoTarget {
    fn url(&self) -> String {
        self.moto.url.clone()
    }
    fn key_id(&self) -> String {
        self.admin.key_id.clone()
    }
    fn secret(&self) -> String {
        self.admin.secret.clone()
    }
}

/// Our AWS simulator (its admin user and key are there from the start).
pub struct SimAws {
    pub server: accessdesk::sim::SimServer,
    pub handle: accessdesk::sim::aws::AwsHandle,
}

impl SimAws {
    pub async fn start(opts: accessdesk::sim::aws::AwsSimOptions) -> SimAws {
        let (server, handle) = accessdesk::sim::aws::spawn(opts)
            .await
            .expect("start the AWS simulator");
        SimAws { server, handle }
    }
}

impl AwsTarget for SimAws {
    fn url(&self) -> String {
        self.handle.base_url()
    }
    fn key_id(&self) -> String {
        self.handle.options().access_key_id.clone()
    }
    fn secret(&self) -> String {
        self.handle.options().secret_access_key.clone()
    }
}

pub const SYSTEM: &str = "aws-prod";
pub const ENTRY: &str = "aws-test";
pub const STORE: &str = "d-1234567890";
pub const ACCOUNT: &str = "123456789012";
pub const ADMIN: &str = "accessdesk-admin";
pub const ALLOW_ALL: &str =
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;

/// The keychain, as far as these tests need one: a single entry.
pub struct OneSecret(pub String);

impl SecretSource for OneSecret {
    fn resolve(&self, cred: &CredentialRef) -> accessdesk::Result<Secret> {
        match cred {
            CredentialRef::Keyring(n) if n == ENTRY => Ok(Secret::new(self.0.clone())),
            other => Err(accessdesk::Error::usage(format!("no secret {other}"), "")),
        }
    }
}

pub fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 8,
        max_elapsed: Duration::from_secs(30),
        base: Duration::from_millis(20),
        cap: Duration::from_millis(300),
    }
}

pub fn entry_toml(kind: &str, base_url: &str, settings: &str) -> String {
    format!(
        "[systems.{SYSTEM}]\nkind = \"{kind}\"\nbase_url = \"{base_url}\"\ncredential = \"keyring:{ENTRY}\"\n\
         rate_limit = {{ requests_per_minute = 6000, concurrency = 4 }}\n\
         [systems.{SYSTEM}.settings]\nregion = \"us-east-1\"\n{settings}\n"
    )
}

pub fn with_ctx<T>(
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

pub fn iam(base_url: &str, credential: &str, settings: &str, timeout: Duration) -> AwsIam {
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

pub fn idstore(
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

pub const SLOW: Duration = Duration::from_secs(10);

pub fn xml_all(body: &[u8], tag: &str) -> Vec<String> {
    let text = std::str::from_utf8(body).expect("utf-8 body");
    let doc = roxmltree::Document::parse(text).expect("xml body");
    doc.descendants()
        .filter(|n| n.is_element() && n.tag_name().name() == tag)
        .map(|n| n.text().unwrap_or("").to_string())
        .collect()
}

pub struct Admin {
    pub key_id: String,
    pub secret: String,
}

impl Admin {
    pub fn credential(&self) -> String {
        format!("{}:{}", self.key_id, self.secret)
    }
}

/// Create the admin user, its allow-all policy and access key while moto checks nothing
/// (requests must still be signed for moto to route them; any key does), then turn
/// signature and permission checking on for every later request.
pub async fn bootstrap(moto: &crate::moto::Moto) -> Admin {
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

pub fn person(hris: &str, login: &str, given: &str, family: &str) -> AccountSpec {
    AccountSpec {
        hris_id: hris.into(),
        login: login.into(),
        email: format!("{login}@example.com"),
        given_name: given.into(),
        family_name: family.into(),
        display_name: format!("{given} {family}"),
        attributes: [("department".to_string(), "Engineering".to_string())].into(),
        manager_account: None,
    }
}

pub fn group(name: &str) -> EntitlementTarget {
    EntitlementTarget {
        kind: EntitlementKind::Group,
        name: name.into(),
        external_id: name.into(),
    }
}

pub fn names(ms: Vec<accessdesk::adapters::RemoteMembership>) -> Vec<String> {
    let mut v: Vec<String> = ms.into_iter().map(|m| m.name).collect();
    v.sort();
    v
}

pub async fn all_accounts(a: &dyn Adapter, page_retries: u32) -> Vec<RemoteAccount> {
    collect_all(|c| a.list_accounts(c), page_retries)
        .await
        .expect("list all accounts")
}

/// The IAM adapter's contract: authenticate, create (and a duplicate), lookups,
/// memberships both ways, update (tags), refusals of what IAM cannot hold.
pub async fn iam_contract<T: AwsTarget>(t: &T) {
    let started = Instant::now();
    let a = iam(&t.url(), &t.credential(), "", SLOW);

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
    eprintln!("iam contract: {:.1} s", started.elapsed().as_secs_f64());
}

/// A wrong secret and an unknown key: Unauthorized with the vendor's code, naming the
/// system and keychain entry, never the secret, and sent once.
pub async fn wrong_secret<T: AwsTarget>(t: &T) {
    let faults = Faults::new(FaultProfile::none(), ThrottleStyle::AwsQuery);
    let px = accessdesk::sim::proxy::spawn(&t.url(), faults.clone())
        .await
        .unwrap();

    let wrong_secret = "wrongSECRETwrongSECRETwrongSECRET0000000";
    let a = iam(
        &px.base_url(),
        &format!("{}:{wrong_secret}", t.key_id()),
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
        &format!("{}:{wrong_secret}", t.key_id()),
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
    let ok = iam(&px.base_url(), &t.credential(), "", SLOW);
    assert!(ok.authenticate().await.is_ok());
}

/// Deactivation turns off login, keys and groups and records what to restore;
/// reactivation restores exactly the keys it turned off.
pub async fn deactivation<T: AwsTarget>(t: &T) {
    let a = iam(&t.url(), &t.credential(), "", SLOW);
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

    // A user who is gone is already deactivated: the adapter owns idempotency
    // (adapters::error::already_done), the engine takes every error as a failure.
    a.deactivate_account("nobody")
        .await
        .expect("deactivating a user who is gone is done");
}

/// The identity store adapter's contract (as far as moto goes, which is as far as the
/// adapter goes).
pub async fn identitystore_contract<T: AwsTarget>(t: &T) {
    let started = Instant::now();
    let s = idstore(&t.url(), &t.credential(), "page_size = 2", SLOW);

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
        &t.url(),
        &t.credential(),
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
    eprintln!(
        "identitystore contract: {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// What the engine does with one operation: Conflict counts as done, retryable errors are
/// tried again a few times (on top of the adapter's own retries).
pub async fn converge<T>(what: &str, mut op: impl AsyncFnMut() -> AResult<T>) -> Option<T> {
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

/// Operations through the generic fault proxy (10% mixed faults) converge with no
/// duplicate users or memberships, read back directly. `with_store`: the identity store
/// too.
pub async fn faults_converge<T: AwsTarget>(t: &T, with_store: bool) {
    let started = Instant::now();
    let direct = iam(&t.url(), &t.credential(), "", SLOW);
    let direct_s = idstore(&t.url(), &t.credential(), "", SLOW);
    for g in ["eng", "ops"] {
        direct
            .call("CreateGroup", &[("GroupName", g)])
            .await
            .unwrap();
        if with_store {
            direct_s
                .call("CreateGroup", serde_json::json!({"DisplayName": g}))
                .await
                .unwrap();
        }
    }

    let faults = Faults::new(
        FaultProfile::mixed(0.10, 20_260_501),
        ThrottleStyle::AwsQuery,
    );
    let px = accessdesk::sim::proxy::spawn(&t.url(), faults.clone())
        .await
        .unwrap();
    let timeout = Duration::from_millis(1500);
    let a = iam(&px.base_url(), &t.credential(), "page_size = 3", timeout);
    let s = idstore(&px.base_url(), &t.credential(), "page_size = 3", timeout);

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
    if !with_store {
        return;
    }
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
        started.elapsed().as_secs_f64()
    );
}

/// IAM's Throttling (HTTP 400, no Retry-After) is rate limiting: retried with backoff, and
/// each refusal halves the system's request rate (AIMD) until answers come back.
pub async fn throttling<T: AwsTarget>(t: &T) {
    let always = FaultProfile {
        burst_429_rate: 1.0,
        burst_429_len: 1,
        ..FaultProfile::none()
    };
    let faults = Faults::new(always, ThrottleStyle::AwsQuery);
    let px = accessdesk::sim::proxy::spawn(&t.url(), faults.clone())
        .await
        .unwrap();
    let mut a = iam(&px.base_url(), &t.credential(), "", SLOW);
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

/// Every entitlement of a listing, page by page: (pages, items), no page longer than
/// `max`.
pub async fn entitlement_pages(
    a: &dyn Adapter,
    max: usize,
) -> (usize, Vec<accessdesk::adapters::RemoteEntitlement>) {
    let mut pages = 0;
    let mut cursor = None;
    let mut seen = Vec::new();
    loop {
        let p = a.list_entitlements(cursor.clone()).await.expect("groups");
        pages += 1;
        assert!(p.items.len() <= max, "{} on a page of {max}", p.items.len());
        seen.extend(p.items);
        match p.next {
            Some(n) => cursor = Some(n),
            None => return (pages, seen),
        }
    }
}

/// A person with a title too (department comes with `person`).
pub fn titled(hris: &str, login: &str) -> AccountSpec {
    let mut s = person(hris, login, "Tit", "Led");
    s.attributes.insert("title".into(), "Engineer".into());
    s
}

/// Reconciliation's reads in IAM: ListGroups lists every group once (over several pages
/// where the endpoint pages: moto answers ListGroups in one page whatever MaxItems says);
/// accounts and group members carry their HR id and the attributes kept in tags.
pub async fn iam_reconciliation_reads<T: AwsTarget>(t: &T, groups_page: bool) {
    let a = iam(&t.url(), &t.credential(), "page_size = 2", SLOW);
    let mut want = BTreeSet::new();
    for i in 0..7 {
        let g = format!("recon-{i}");
        a.call("CreateGroup", &[("GroupName", &g)]).await.unwrap();
        want.insert(g);
    }
    let (pages, seen) = entitlement_pages(&a, if groups_page { 2 } else { usize::MAX }).await;
    if groups_page {
        assert!(pages >= 4, "7 groups at 2 a page: {pages}");
    }
    let got: BTreeSet<String> = seen.iter().map(|e| e.name.clone()).collect();
    assert_eq!(got.len(), seen.len(), "no group twice: {seen:?}");
    assert_eq!(got, want);
    assert!(
        seen.iter()
            .all(|e| e.kind == EntitlementKind::Group && e.external_id == e.name)
    );

    for i in 0..3 {
        a.create_account(&titled(&format!("R{i}"), &format!("recon.{i}")))
            .await
            .unwrap();
        a.add_membership(&format!("recon.{i}"), &seen[0].target())
            .await
            .unwrap();
    }
    let check = |x: &RemoteAccount| {
        let i = x.login.strip_prefix("recon.").expect("a recon user");
        assert_eq!(
            x.hris_id.as_deref(),
            Some(format!("R{i}").as_str()),
            "{x:?}"
        );
        let attr = |k: &str| x.attributes.get(k).map(String::as_str);
        assert_eq!(attr("department"), Some("Engineering"), "{x:?}");
        assert_eq!(attr("title"), Some("Engineer"), "{x:?}");
        assert_eq!(
            attr("email"),
            Some(format!("{}@example.com", x.login).as_str())
        );
        assert_eq!(attr("displayName"), Some("Tit Led"));
        // Never written (no IAM field) or written only when set (no tag): not known.
        for k in [
            "givenName",
            "familyName",
            "costCenter",
            "location",
            "manager",
        ] {
            assert_eq!(attr(k), None, "{k}: {x:?}");
        }
    };
    let all = all_accounts(&a, 0).await;
    let listed: Vec<&RemoteAccount> = all
        .iter()
        .filter(|x| x.login.starts_with("recon."))
        .collect();
    assert_eq!(listed.len(), 3);
    listed.into_iter().for_each(check);
    let first = seen[0].target();
    let members = collect_all(|c| a.list_members(&first, c), 0).await.unwrap();
    assert_eq!(members.len(), 3);
    members.iter().for_each(check);
    check(&a.get_account("recon.1").await.unwrap().expect("found"));
}

/// Reconciliation's reads in the identity store: ListGroups over NextToken pages, every
/// group once; accounts and members read back with the attributes the adapter writes.
pub async fn identitystore_reconciliation_reads<T: AwsTarget>(t: &T) {
    let s = idstore(&t.url(), &t.credential(), "page_size = 2", SLOW);
    let mut want = BTreeSet::new();
    for i in 0..7 {
        let name = format!("recon-{i}");
        let r = s
            .call("CreateGroup", serde_json::json!({"DisplayName": name}))
            .await
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        want.insert((v["GroupId"].as_str().unwrap().to_string(), name));
    }
    let (pages, seen) = entitlement_pages(&s, 2).await;
    assert!(pages >= 4, "7 groups at 2 a page: {pages}");
    let got: BTreeSet<(String, String)> = seen
        .iter()
        .map(|e| (e.external_id.clone(), e.name.clone()))
        .collect();
    assert_eq!(got.len(), seen.len(), "no group twice: {seen:?}");
    assert_eq!(got, want);

    let mut ids = Vec::new();
    for i in 0..3 {
        let acc = s
            .create_account(&titled(&format!("R{i}"), &format!("recon.{i}")))
            .await
            .unwrap();
        assert_eq!(acc.attributes["title"], "Engineer");
        s.add_membership(&acc.external_id, &seen[0].target())
            .await
            .unwrap();
        ids.push(acc.external_id);
    }
    let check = |x: &RemoteAccount| {
        let attr = |k: &str| x.attributes.get(k).map(String::as_str);
        assert_eq!(attr("title"), Some("Engineer"), "{x:?}");
        assert_eq!(
            attr("email"),
            Some(format!("{}@example.com", x.login).as_str())
        );
        assert_eq!(attr("givenName"), Some("Tit"), "{x:?}");
        assert_eq!(attr("familyName"), Some("Led"), "{x:?}");
        assert_eq!(attr("displayName"), Some("Tit Led"), "{x:?}");
        // Not written to the identity store: not known.
        for k in ["department", "costCenter", "location", "manager"] {
            assert_eq!(attr(k), None, "{k}: {x:?}");
        }
    };
    let all = all_accounts(&s, 0).await;
    let listed: Vec<&RemoteAccount> = all
        .iter()
        .filter(|x| x.login.starts_with("recon."))
        .collect();
    assert_eq!(listed.len(), 3);
    listed.into_iter().for_each(check);
    let first = seen[0].target();
    let members = collect_all(|c| s.list_members(&first, c), 0).await.unwrap();
    assert_eq!(
        members
            .iter()
            .map(|m| m.external_id.clone())
            .collect::<BTreeSet<_>>(),
        ids.iter().cloned().collect::<BTreeSet<_>>()
    );
    members.iter().for_each(check);
    check(&s.get_account(&ids[1]).await.unwrap().expect("found"));
}

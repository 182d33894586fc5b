//! The SCIM adapter's contract, one test body for every SCIM service provider the tests
//! run against: the real peer (scim2-server, tests/scim_peer.rs) and our simulator
//! (tests/sim_scim.rs). A provider is a [`ScimTarget`]: where its SCIM root is, the bearer
//! token it accepts, and the requests it has seen.
#![allow(dead_code)]

use accessdesk::adapters::http::{RateLimiter, RetryPolicy, Timeouts};
use accessdesk::adapters::prelude::*;
use accessdesk::adapters::registry::{AdapterContext, SecretSource};
use accessdesk::adapters::scim::{SCHEMA_ENTERPRISE_USER, ScimAdapter};
use accessdesk::adapters::{
    AccountSpec, EntitlementTarget, ErrorClass, RemoteAccount, collect_all,
};
use accessdesk::config::SystemsConfig;
use accessdesk::config::systems::CredentialRef;
use accessdesk::model::EntitlementKind;
use accessdesk::secrets::Secret;
use accessdesk::sim::fault::{FaultProfile, Faults, ThrottleStyle};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub const SYSTEM: &str = "scim-peer";
pub const CREDENTIAL: &str = "scim-peer-token";
/// Injects 13 faults (5xx, resets, held requests, a 429 burst) in about 100 requests.
pub const DEFAULT_FAULT_SEED: u64 = 20_260_101;

/// A SCIM service provider under test.
pub trait ScimTarget {
    /// The SCIM root (what systems.toml's base_url names).
    fn base_url(&self) -> String;
    /// Scheme, host and port only (where a fault proxy forwards to).
    fn origin(&self) -> String;
    /// The bearer token it accepts.
    fn token(&self) -> String;
    /// One line per request seen: `METHOD /path?query HTTP/1.1" STATUS ...`.
    fn requests(&self) -> Vec<String>;
}

impl ScimTarget for crate::scim_server::ScimServer {
    fn base_url(&self) -> String {
        crate::scim_server::ScimServer::base_url(self)
    }
    fn origin(&self) -> String {
        crate::scim_server::ScimServer::origin(self)
    }
    fn token(&self) -> String {
        self.token.clone()
    }
    fn requests(&self) -> Vec<String> {
        crate::scim_server::ScimServer::requests(self)
    }
}

/// Our SCIM simulator with one accepted token.
pub struct SimScim {
    pub server: accessdesk::sim::SimServer,
    pub handle: accessdesk::sim::scim::ScimHandle,
    pub token: String,
}

impl SimScim {
    pub async fn start(opts: accessdesk::sim::scim::ScimSimOptions) -> SimScim {
        let (server, handle) = accessdesk::sim::scim::spawn(opts)
            .await
            .expect("start the SCIM simulator");
        let token = "scim-sim-token-3b9e0c".to_string();
        handle.add_token(&token);
        SimScim {
            server,
            handle,
            token,
        }
    }
}

impl ScimTarget for SimScim {
    fn base_url(&self) -> String {
        self.handle.base_url()
    }
    fn origin(&self) -> String {
        self.server.base_url()
    }
    fn token(&self) -> String {
        self.token.clone()
    }
    fn requests(&self) -> Vec<String> {
        self.handle.log().iter().map(|r| r.access_line()).collect()
    }
}

/// The token the keychain "holds" for CREDENTIAL.
pub struct Keychain(pub String);

impl SecretSource for Keychain {
    fn resolve(&self, cred: &CredentialRef) -> accessdesk::Result<Secret> {
        assert_eq!(cred, &CredentialRef::Keyring(CREDENTIAL.into()));
        Ok(Secret::new(self.0.clone()))
    }
}

pub fn config(base_url: &str, settings: &str) -> SystemsConfig {
    let text = format!(
        "[systems.{SYSTEM}]\nkind = \"scim\"\nbase_url = \"{base_url}\"\n\
         credential = \"keyring:{CREDENTIAL}\"\n[systems.{SYSTEM}.settings]\n{settings}\n"
    );
    SystemsConfig::parse(Path::new("systems.toml"), &text).expect("systems.toml")
}

pub fn short_timeouts() -> Timeouts {
    Timeouts {
        connect: Duration::from_secs(1),
        request: Duration::from_millis(800),
    }
}

pub fn short_retries() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 8,
        max_elapsed: Duration::from_secs(20),
        base: Duration::from_millis(20),
        cap: Duration::from_millis(300),
    }
}

pub fn adapter_with(base_url: &str, token: &str, settings: &str) -> ScimAdapter {
    let cfg = config(base_url, settings);
    let keychain = Keychain(token.to_string());
    let ctx = AdapterContext {
        entry: &cfg.catalog.systems[SYSTEM],
        secrets: &keychain,
        limiter: RateLimiter::new(SYSTEM, None, 4),
        timeouts: short_timeouts(),
    };
    ScimAdapter::new(&ctx)
        .expect("build the scim adapter")
        .with_retry(short_retries())
}

pub fn adapter<T: ScimTarget>(server: &T, settings: &str) -> ScimAdapter {
    adapter_with(&server.base_url(), &server.token(), settings)
}

pub fn spec(i: usize, tag: &str) -> AccountSpec {
    let mut attributes = BTreeMap::new();
    attributes.insert("department".to_string(), "Engineering".to_string());
    attributes.insert("costCenter".to_string(), format!("CC-{i}"));
    attributes.insert("title".to_string(), "Engineer".to_string());
    AccountSpec {
        hris_id: format!("E{i:04}"),
        login: format!("{tag}.user{i}@example.com"),
        email: format!("{tag}.user{i}@example.com"),
        given_name: format!("Given{i}"),
        family_name: format!("Family{i}"),
        display_name: format!("Given{i} Family{i}"),
        attributes,
        manager_account: None,
    }
}

pub fn group(name: &str) -> EntitlementTarget {
    EntitlementTarget {
        kind: EntitlementKind::Group,
        name: name.to_string(),
        external_id: name.to_string(),
    }
}

pub fn raw_client() -> reqwest::Client {
    accessdesk::adapters::http::install_crypto_provider();
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// Straight to the server (not through the adapter): the ground truth.
pub async fn raw_get<T: ScimTarget>(server: &T, path: &str) -> Value {
    let r = raw_client()
        .get(format!("{}{path}", server.base_url()))
        .bearer_auth(server.token())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "GET {path}");
    r.json().await.unwrap()
}

/// Groups are not created by accessdesk (they are catalogue entries); the test makes them.
pub async fn create_group<T: ScimTarget>(server: &T, name: &str) -> String {
    let r = raw_client()
        .post(format!("{}/Groups", server.base_url()))
        .bearer_auth(server.token())
        .json(&json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": name}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let v: Value = r.json().await.unwrap();
    v["id"].as_str().unwrap().to_string()
}

pub async fn raw_members<T: ScimTarget>(server: &T, group_id: &str) -> Vec<String> {
    let g = raw_get(server, &format!("/Groups/{group_id}")).await;
    g.get("members")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|m| m["value"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

pub fn logins(accounts: &[RemoteAccount]) -> BTreeSet<String> {
    accounts.iter().map(|a| a.login.clone()).collect()
}

/// Which methods the server saw, and whether any request carried a filter.
pub fn methods_seen<T: ScimTarget>(server: &T) -> (BTreeSet<String>, bool) {
    let reqs = server.requests();
    let methods = reqs
        .iter()
        .filter_map(|r| r.split(' ').next().map(str::to_string))
        .collect();
    let filtered = reqs.iter().any(|r| r.contains("filter="));
    (methods, filtered)
}

pub async fn lifecycle<T: ScimTarget>(server: &T, a: &ScimAdapter) {
    let s = spec(1, "life");
    let created = a.create_account(&s).await.expect("create");
    assert_eq!(created.login, s.login);
    assert_eq!(created.hris_id.as_deref(), Some("E0001"));
    assert_eq!(created.email.as_deref(), Some(s.email.as_str()));
    assert!(created.active);
    let id = created.external_id.clone();

    // What the provider stored, read directly.
    let raw = raw_get(server, &format!("/Users/{id}")).await;
    assert_eq!(raw["name"]["givenName"], "Given1");
    assert_eq!(raw["displayName"], "Given1 Family1");
    assert_eq!(raw["title"], "Engineer");
    assert_eq!(raw["emails"][0]["primary"], true);
    assert_eq!(raw[SCHEMA_ENTERPRISE_USER]["department"], "Engineering");
    assert_eq!(raw[SCHEMA_ENTERPRISE_USER]["costCenter"], "CC-1");

    // Lookups: by id, by login (userName is case-insensitive), misses.
    assert_eq!(a.get_account(&id).await.unwrap(), Some(created.clone()));
    let upper = s.login.to_uppercase();
    assert_eq!(
        a.get_account_by_login(&upper).await.unwrap(),
        Some(created.clone())
    );
    assert_eq!(a.get_account("no-such-id").await.unwrap(), None);
    assert_eq!(
        a.get_account_by_login("nobody@example.com").await.unwrap(),
        None
    );

    // Partial update: only the given fields change.
    let change = AccountSpec {
        display_name: "Countess Lovelace".into(),
        email: "countess@example.com".into(),
        attributes: [("department".to_string(), "Mathematics".to_string())].into(),
        ..Default::default()
    };
    let updated = a.update_account(&id, &change).await.expect("update");
    assert_eq!(updated.login, s.login);
    assert_eq!(updated.email.as_deref(), Some("countess@example.com"));
    let raw = raw_get(server, &format!("/Users/{id}")).await;
    assert_eq!(raw["displayName"], "Countess Lovelace");
    assert_eq!(raw[SCHEMA_ENTERPRISE_USER]["department"], "Mathematics");
    assert_eq!(
        raw[SCHEMA_ENTERPRISE_USER]["costCenter"], "CC-1",
        "untouched"
    );
    assert_eq!(raw["name"]["givenName"], "Given1", "untouched");
    assert_eq!(
        raw["emails"],
        json!([{"value": "countess@example.com", "type": "work", "primary": true}])
    );

    // Deactivate (twice: idempotent), reactivate.
    a.deactivate_account(&id).await.expect("deactivate");
    a.deactivate_account(&id).await.expect("deactivate again");
    assert!(!a.get_account(&id).await.unwrap().unwrap().active);
    a.reactivate_account(&id).await.expect("reactivate");
    assert!(a.get_account(&id).await.unwrap().unwrap().active);

    // Unknown ids are NotFound for an update, not panics or successes; deactivating an
    // account that is gone is done (the adapter owns idempotency: already_done).
    let e = a.update_account("no-such-id", &change).await.unwrap_err();
    assert_eq!(e.class, ErrorClass::NotFound, "{e}");
    a.deactivate_account("no-such-id")
        .await
        .expect("deactivating an account that is gone is done");

    // Renaming onto a taken userName is not "already done".
    let other = a.create_account(&spec(2, "life")).await.unwrap();
    let rename = AccountSpec {
        login: s.login.clone(),
        ..Default::default()
    };
    let e = a
        .update_account(&other.external_id, &rename)
        .await
        .unwrap_err();
    assert_eq!(e.class, ErrorClass::Permanent, "{e}");
    assert_eq!(e.vendor_code.as_deref(), Some("uniqueness"));
}

/// A second create of the same userName (in any case) is a Conflict with `uniqueness`.
pub async fn duplicate_create<T: ScimTarget>(server: &T) {
    let a = adapter(server, "");
    let first = a.create_account(&spec(1, "dup")).await.unwrap();
    let mut again = spec(1, "dup");
    again.hris_id = "E9999".into();
    let e = a.create_account(&again).await.unwrap_err();
    assert_eq!(e.class, ErrorClass::Conflict, "{e}");
    assert_eq!(
        (e.status, e.vendor_code.as_deref()),
        (Some(409), Some("uniqueness"))
    );
    assert!(e.message.contains(&again.login), "{}", e.message);
    assert_eq!(e.system, SYSTEM);
    // userName is case-insensitive: a different case is the same account.
    again.login = again.login.to_uppercase();
    let e = a.create_account(&again).await.unwrap_err();
    assert_eq!(e.class, ErrorClass::Conflict, "{e}");
    let all = collect_all(|c| a.list_accounts(c), 2).await.unwrap();
    assert_eq!(all, vec![first]);
}

pub async fn memberships<T: ScimTarget>(server: &T, a: &ScimAdapter) {
    let u1 = a.create_account(&spec(1, "m")).await.unwrap().external_id;
    let u2 = a.create_account(&spec(2, "m")).await.unwrap().external_id;
    let eng = create_group(server, "Engineering").await;
    // Quotes and a backslash in the name go through the filter escaping.
    let core_name = r#"Eng "core" \ ops"#;
    let core = create_group(server, core_name).await;
    let empty = create_group(server, "Empty").await;

    a.add_membership(&u1, &group("Engineering")).await.unwrap();
    a.add_membership(&u2, &group("Engineering")).await.unwrap();
    a.add_membership(&u1, &group(core_name)).await.unwrap();
    // Adding again is a success and adds nothing.
    a.add_membership(&u1, &group("Engineering")).await.unwrap();
    let mut members = raw_members(server, &eng).await;
    members.sort();
    let mut want = vec![u1.clone(), u2.clone()];
    want.sort();
    assert_eq!(members, want, "no duplicate member entries");

    // Account -> groups (from /Groups, not User.groups).
    let m = a.list_memberships(&u1).await.unwrap();
    let names: Vec<(&str, &str)> = m
        .iter()
        .map(|m| (m.name.as_str(), m.external_id.as_str()))
        .collect();
    // Sorted by name ("Eng " sorts before "Engi").
    assert_eq!(
        names,
        vec![(core_name, core.as_str()), ("Engineering", eng.as_str())]
    );
    assert!(m.iter().all(|m| m.kind == EntitlementKind::Group));

    // Group -> accounts.
    let (eng_t, empty_t) = (group("Engineering"), group("Empty"));
    let list = collect_all(|c| a.list_members(&eng_t, c), 2).await.unwrap();
    assert_eq!(
        logins(&list),
        [spec(1, "m").login, spec(2, "m").login].into()
    );
    assert!(
        collect_all(|c| a.list_members(&empty_t, c), 2)
            .await
            .unwrap()
            .is_empty(),
        "a group without members attribute has no members"
    );
    // A configured external_id is used as the id directly.
    let by_id = EntitlementTarget {
        external_id: empty.clone(),
        ..group("catalogue-name-for-empty")
    };
    a.add_membership(&u2, &by_id).await.unwrap();
    assert_eq!(raw_members(server, &empty).await, vec![u2.clone()]);

    // Remove, and remove again (not a member any more: still a success).
    a.remove_membership(&u1, &group("Engineering"))
        .await
        .unwrap();
    a.remove_membership(&u1, &group("Engineering"))
        .await
        .unwrap();
    assert_eq!(raw_members(server, &eng).await, vec![u2.clone()]);
    let m = a.list_memberships(&u1).await.unwrap();
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].name, core_name);
    assert!(a.list_memberships("nobody").await.unwrap().is_empty());

    let e = a
        .add_membership(&u1, &group("No Such Group"))
        .await
        .unwrap_err();
    assert_eq!(e.class, ErrorClass::NotFound, "{e}");
    assert!(e.message.contains("No Such Group"), "{e}");
    let role = EntitlementTarget {
        kind: EntitlementKind::Role,
        ..group("Engineering")
    };
    let e = a.add_membership(&u1, &role).await.unwrap_err();
    assert_eq!(e.class, ErrorClass::Permanent, "{e}");
}

pub async fn paging<T: ScimTarget>(server: &T, a: &ScimAdapter, page: usize) {
    let n = 25;
    let mut ids = Vec::new();
    for i in 0..n {
        ids.push(
            a.create_account(&spec(i, "page"))
                .await
                .unwrap()
                .external_id,
        );
    }
    create_group(server, "Everyone").await;
    for id in &ids {
        a.add_membership(id, &group("Everyone")).await.unwrap();
    }

    let pages = AtomicU32::new(0);
    let all = collect_all(
        |c| {
            pages.fetch_add(1, Ordering::SeqCst);
            a.list_accounts(c)
        },
        2,
    )
    .await
    .unwrap();
    assert_eq!(all.len(), n);
    assert_eq!(logins(&all).len(), n, "no account twice");
    assert_eq!(pages.load(Ordering::SeqCst) as usize, n.div_ceil(page));

    // Resuming from a cursor gives the rest.
    let first = a.list_accounts(None).await.unwrap();
    assert_eq!(first.items.len(), page);
    let rest = collect_all(|c| a.list_accounts(c.or_else(|| first.next.clone())), 2)
        .await
        .unwrap();
    assert_eq!(rest.len(), n - page);

    let everyone = group("Everyone");
    let member_pages = AtomicU32::new(0);
    let members = collect_all(
        |c| {
            member_pages.fetch_add(1, Ordering::SeqCst);
            a.list_members(&everyone, c)
        },
        2,
    )
    .await
    .unwrap();
    assert_eq!(logins(&members), logins(&all));
    assert_eq!(
        member_pages.load(Ordering::SeqCst) as usize,
        n.div_ceil(page)
    );
}

/// A wrong token: Unauthorized, naming the keychain entry, one request per call.
pub async fn wrong_token<T: ScimTarget>(server: &T) {
    let wrong = "definitely-not-the-token-7d1f";
    let a = adapter_with(&server.base_url(), wrong, "");
    let t = Instant::now();
    let e = a.authenticate().await.unwrap_err();
    assert_eq!(e.class, ErrorClass::Unauthorized, "{e}");
    assert_eq!(e.status, Some(401));
    let shown = e.to_string();
    assert!(
        shown.starts_with(&format!("{SYSTEM}: unauthorized")),
        "{shown}"
    );
    assert!(shown.contains(&format!("keyring:{CREDENTIAL}")), "{shown}");
    assert!(!shown.contains(wrong) && !format!("{e:?}").contains(wrong));
    let e = a.list_accounts(None).await.unwrap_err();
    assert_eq!(e.class, ErrorClass::Unauthorized);
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    let refused = server
        .requests()
        .iter()
        .filter(|r| r.contains(" 401 "))
        .count();
    assert_eq!(
        refused,
        2,
        "one refusal per call, no retries: {:?}",
        server.requests()
    );
}

/// What the engine does with an operation's outcome: retryable errors are tried again
/// later; Conflict counts as done.
pub async fn converge<T, F, Fut>(what: &str, mut op: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = accessdesk::adapters::AResult<T>>,
{
    for _ in 0..10 {
        match op().await {
            Ok(v) => return Some(v),
            Err(e) if e.class == ErrorClass::Conflict => return None,
            Err(e) if e.class.is_retryable() => {
                eprintln!("{what}: engine-level retry after {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("{what}: {e}"),
        }
    }
    panic!("{what}: did not converge");
}

/// Operations through the generic fault proxy at a 10% fault rate converge, with no
/// duplicate accounts or members (ground truth read straight from the provider).
pub async fn faults_converge<T: ScimTarget>(server: &T) {
    let t = Instant::now();
    // ACCESSDESK_FAULT_SEED replays (or soaks) other fault sequences.
    let seed = std::env::var("ACCESSDESK_FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_FAULT_SEED);
    let mut profile = FaultProfile::mixed(0.10, seed);
    // A held request outlives the client's 800 ms timeout without costing 3 s each.
    profile.timeout_delay = Duration::from_millis(1200);
    let faults = Faults::new(profile, ThrottleStyle::RetryAfter429);
    let proxy = accessdesk::sim::proxy::spawn(&server.origin(), faults.clone())
        .await
        .unwrap();
    let a = adapter_with(
        &server
            .base_url()
            .replacen(&server.origin(), &proxy.base_url(), 1),
        &server.token(),
        "page_size = 5",
    );
    let groups = ["alpha", "beta"];
    let mut group_ids = BTreeMap::new();
    for g in groups {
        group_ids.insert(g, create_group(server, g).await);
    }
    converge("authenticate", || a.authenticate()).await;

    let n = 20;
    let mut ids = Vec::new();
    for i in 0..n {
        let s = spec(i, "fault");
        let id = match converge("create", || a.create_account(&s)).await {
            Some(acc) => acc.external_id,
            // Created by an attempt whose answer was lost: look it up, as the engine does.
            None => {
                converge("lookup", || a.get_account_by_login(&s.login))
                    .await
                    .flatten()
                    .expect("created account exists")
                    .external_id
            }
        };
        ids.push(id);
    }
    let (alpha_t, beta_t) = (group("alpha"), group("beta"));
    for (i, id) in ids.iter().enumerate() {
        converge("add alpha", || a.add_membership(id, &alpha_t)).await;
        if i % 2 == 0 {
            converge("add beta", || a.add_membership(id, &beta_t)).await;
        }
    }
    for (i, id) in ids.iter().enumerate() {
        if i % 3 == 0 {
            converge("remove alpha", || a.remove_membership(id, &alpha_t)).await;
            converge("deactivate", || a.deactivate_account(id)).await;
        }
        if i % 4 == 1 {
            let change = AccountSpec {
                display_name: format!("Renamed {i}"),
                ..Default::default()
            };
            converge("update", || a.update_account(id, &change)).await;
        }
    }
    // Reads through the faults, too.
    let listed = converge("list", || collect_all(|c| a.list_accounts(c), 3))
        .await
        .unwrap();
    let beta_members = converge("members", || collect_all(|c| a.list_members(&beta_t, c), 3))
        .await
        .unwrap();
    let (requests, injected) = faults.counts();
    if seed == DEFAULT_FAULT_SEED {
        // The default sequence is not a quiet one (other seeds may be; they soak).
        assert!(
            injected >= 5,
            "the proxy injected faults: {injected} of {requests}"
        );
    }

    // The ground truth, straight from the server.
    let direct = adapter(server, "");
    let all = collect_all(|c| direct.list_accounts(c), 0).await.unwrap();
    assert_eq!(all.len(), n, "no duplicate accounts: {:?}", logins(&all));
    assert_eq!(logins(&all).len(), n);
    assert_eq!(logins(&listed), logins(&all));
    for (i, id) in ids.iter().enumerate() {
        let acc = all.iter().find(|a| &a.external_id == id).unwrap();
        assert_eq!(acc.active, i % 3 != 0, "account {i}");
        let raw = raw_get(server, &format!("/Users/{id}")).await;
        if i % 4 == 1 {
            assert_eq!(raw["displayName"], format!("Renamed {i}"));
        }
    }
    let alpha = raw_members(server, &group_ids["alpha"]).await;
    let beta = raw_members(server, &group_ids["beta"]).await;
    let want_alpha: Vec<&String> = ids
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 3 != 0)
        .map(|(_, id)| id)
        .collect();
    let want_beta: Vec<&String> = ids.iter().step_by(2).collect();
    assert_eq!(
        alpha.len(),
        want_alpha.len(),
        "no duplicate members: {alpha:?}"
    );
    assert_eq!(
        alpha.iter().collect::<BTreeSet<_>>(),
        want_alpha.into_iter().collect::<BTreeSet<_>>()
    );
    assert_eq!(
        beta.len(),
        want_beta.len(),
        "no duplicate members: {beta:?}"
    );
    assert_eq!(
        beta.iter().collect::<BTreeSet<_>>(),
        want_beta.into_iter().collect::<BTreeSet<_>>()
    );
    assert_eq!(beta_members.len(), beta.len());
    eprintln!(
        "faults (seed {seed}): {injected} injected in {requests} requests; converged in {:?}",
        t.elapsed()
    );
    drop(proxy);
}

/// What `spec(i, tag)` must read back as from a provider with the enterprise extension.
pub fn assert_spec_attributes(a: &RemoteAccount, i: usize, tag: &str) {
    let s = spec(i, tag);
    let attr = |k: &str| a.attributes.get(k).map(String::as_str);
    assert_eq!(attr("department"), Some("Engineering"), "{a:?}");
    assert_eq!(
        attr("costCenter"),
        Some(format!("CC-{i}").as_str()),
        "{a:?}"
    );
    assert_eq!(attr("title"), Some("Engineer"), "{a:?}");
    assert_eq!(attr("email"), Some(s.email.as_str()), "{a:?}");
    assert_eq!(attr("givenName"), Some(s.given_name.as_str()), "{a:?}");
    assert_eq!(attr("familyName"), Some(s.family_name.as_str()), "{a:?}");
    assert_eq!(attr("displayName"), Some(s.display_name.as_str()), "{a:?}");
    // No SCIM attribute holds them (manager.value is a SCIM id, not an HR id): not known.
    assert_eq!(attr("location"), None, "{a:?}");
    assert_eq!(attr("manager"), None, "{a:?}");
    assert_eq!(a.hris_id.as_deref(), Some(s.hris_id.as_str()), "{a:?}");
}

/// Reconciliation's reads: every group listed once over several pages (members left out),
/// accounts and group members read back with their HR id and synced attributes. `a` pages
/// by 2 at most (`page_size = 2`).
pub async fn reconciliation_reads<T: ScimTarget>(server: &T, a: &ScimAdapter) {
    let mut want = BTreeSet::new();
    for i in 0..7 {
        let name = format!("Recon {i}");
        want.insert((create_group(server, &name).await, name));
    }
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(
            a.create_account(&spec(i, "recon"))
                .await
                .unwrap()
                .external_id,
        );
    }
    for id in &ids {
        a.add_membership(id, &group("Recon 0")).await.unwrap();
    }

    let mut pages = 0;
    let mut cursor = None;
    let mut seen = Vec::new();
    loop {
        let p = a.list_entitlements(cursor.clone()).await.expect("groups");
        pages += 1;
        assert!(p.items.len() <= 2, "{p:?}");
        seen.extend(p.items);
        match p.next {
            Some(n) => cursor = Some(n),
            None => break,
        }
    }
    assert!(pages >= 4, "7 groups at 2 a page: {pages} pages");
    let got: BTreeSet<(String, String)> = seen
        .iter()
        .map(|e| (e.external_id.clone(), e.name.clone()))
        .collect();
    assert_eq!(got.len(), seen.len(), "no group twice: {seen:?}");
    assert_eq!(got, want);
    assert!(seen.iter().all(|e| e.kind == EntitlementKind::Group));
    assert!(
        server
            .requests()
            .iter()
            .any(|r| r.contains("/Groups?") && r.contains("excludedAttributes=members")),
        "groups are listed without their members: {:?}",
        server.requests()
    );

    // Accounts, as listed and as read one by one.
    let all = collect_all(|c| a.list_accounts(c), 0).await.unwrap();
    for (i, id) in ids.iter().enumerate() {
        let listed = all.iter().find(|x| &x.external_id == id).expect("listed");
        assert_spec_attributes(listed, i, "recon");
        assert_eq!(a.get_account(id).await.unwrap().as_ref(), Some(listed));
    }
    let by_login = a
        .get_account_by_login(&spec(1, "recon").login)
        .await
        .unwrap()
        .expect("found");
    assert_spec_attributes(&by_login, 1, "recon");

    // A listed group's members, by the listed id.
    let recon0 = seen.iter().find(|e| e.name == "Recon 0").unwrap().target();
    let members = collect_all(|c| a.list_members(&recon0, c), 0)
        .await
        .unwrap();
    assert_eq!(members.len(), 3);
    for (i, id) in ids.iter().enumerate() {
        let m = members
            .iter()
            .find(|x| &x.external_id == id)
            .expect("member");
        assert_spec_attributes(m, i, "recon");
    }

    // An update is read back; a cleared-by-omission attribute stays as the provider holds it.
    let change = AccountSpec {
        attributes: [("department".to_string(), "Mathematics".to_string())].into(),
        ..Default::default()
    };
    let updated = a.update_account(&ids[0], &change).await.unwrap();
    assert_eq!(updated.attributes["department"], "Mathematics");
    assert_eq!(updated.attributes["costCenter"], "CC-0");
    let listed = collect_all(|c| a.list_accounts(c), 0).await.unwrap();
    let acc = listed.iter().find(|x| x.external_id == ids[0]).unwrap();
    assert_eq!(acc.attributes["department"], "Mathematics");
}

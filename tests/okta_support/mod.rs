//! Helpers shared by the Okta adapter tests: building the adapter the way the registry
//! does (systems.toml entry + secret source), test keys and account specs.
#![allow(dead_code)]

use accessdesk::adapters::http::{RateLimiter, RetryPolicy, Timeouts};
use accessdesk::adapters::okta::{OktaAdapter, options_from_config};
use accessdesk::adapters::registry::{AdapterContext, SecretSource};
use accessdesk::adapters::{AccountSpec, EntitlementTarget};
use accessdesk::config::SystemEntry;
use accessdesk::config::systems::CredentialRef;
use accessdesk::model::{EntitlementKind, System, SystemKind};
use accessdesk::secrets::Secret;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::Duration;

/// The SSWS token the tests register with the simulator. Test-only.
pub const SSWS_TOKEN: &str = "00simTestTokenNotARealOktaToken0000000000";
/// The keychain entry the tests pretend the credential comes from.
pub const KEYRING_ENTRY: &str = "okta-token";

/// Secrets from a map instead of the OS keychain.
pub struct MapSecrets(pub HashMap<String, Secret>);

impl SecretSource for MapSecrets {
    fn resolve(&self, cred: &CredentialRef) -> accessdesk::Result<Secret> {
        let name = match cred {
            CredentialRef::Keyring(n) | CredentialRef::Env(n) => n,
        };
        self.0
            .get(name)
            .cloned()
            .ok_or_else(|| accessdesk::Error::usage(format!("no test secret {name}"), ""))
    }
}

/// A test key from tests/fixtures/okta (test-only keys; see the README there).
pub fn fixture(name: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/okta")
        .join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display()))
}

pub fn entry(base_url: &str, settings: &[(&str, toml::Value)]) -> SystemEntry {
    SystemEntry {
        system: System {
            name: "okta".into(),
            kind: SystemKind::Okta,
            depends_on: vec![],
            api_version: "v1".into(),
        },
        base_url: Some(base_url.to_string()),
        credential: Some(CredentialRef::Keyring(KEYRING_ENTRY.into())),
        rate_limit: None,
        settings: settings
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect::<BTreeMap<_, _>>(),
        entitlements: BTreeMap::new(),
        guard: None,
        verify: false,
        line: 1,
        login: accessdesk::model::login::LoginTemplate::default_for(SystemKind::Okta),
        on_leave: accessdesk::config::systems::OnLeave::Deactivate,
        correlate: accessdesk::config::systems::Correlate::DEFAULT.to_vec(),
        rotate_after_days: None,
        reconcile_every: None,
    }
}

/// Quick retries so that fault tests finish in seconds.
pub fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        max_elapsed: Duration::from_secs(20),
        base: Duration::from_millis(20),
        cap: Duration::from_millis(300),
    }
}

pub fn timeouts() -> Timeouts {
    Timeouts {
        connect: Duration::from_secs(2),
        request: Duration::from_secs(5),
    }
}

/// Build the adapter through `options_from_config`, as the registry would, then tune
/// retries and timeouts for tests.
pub fn adapter_with(
    base_url: &str,
    credential: &str,
    settings: &[(&str, toml::Value)],
    tune: impl FnOnce(&mut accessdesk::adapters::okta::OktaOptions),
) -> OktaAdapter {
    let e = entry(base_url, settings);
    let secrets = MapSecrets(HashMap::from([(
        KEYRING_ENTRY.to_string(),
        Secret::new(credential),
    )]));
    let ctx = AdapterContext {
        entry: &e,
        secrets: &secrets,
        limiter: RateLimiter::new("okta", None, 4),
        timeouts: timeouts(),
    };
    let mut opts = options_from_config(&ctx).expect("options from config");
    opts.retry = fast_retry();
    tune(&mut opts);
    OktaAdapter::new(opts).expect("adapter")
}

pub fn ssws_adapter(base_url: &str, page_size: i64) -> OktaAdapter {
    adapter_with(
        base_url,
        SSWS_TOKEN,
        &[("page_size", toml::Value::Integer(page_size))],
        |_| {},
    )
}

pub fn jwt_settings(
    client_id: &str,
    scopes: &str,
    token_url: Option<&str>,
) -> Vec<(&'static str, toml::Value)> {
    let mut s = vec![
        ("auth", toml::Value::String("private_key_jwt".into())),
        ("client_id", toml::Value::String(client_id.into())),
        (
            "scopes",
            toml::Value::Array(
                scopes
                    .split_whitespace()
                    .map(|s| toml::Value::String(s.into()))
                    .collect(),
            ),
        ),
        ("key_id", toml::Value::String("test-key-1".into())),
        ("page_size", toml::Value::Integer(2)),
    ];
    if let Some(t) = token_url {
        s.push(("token_url", toml::Value::String(t.into())));
    }
    s
}

pub fn spec(i: usize) -> AccountSpec {
    let mut attributes = BTreeMap::new();
    attributes.insert("department".to_string(), "Engineering".to_string());
    attributes.insert("title".to_string(), format!("Engineer {i}"));
    AccountSpec {
        hris_id: format!("E{i:04}"),
        login: format!("person{i}@example.com"),
        email: format!("person{i}@example.com"),
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

//! The demo's systems: each is a simulator plus a table in demo/systems.toml.
//!
//! [`SIMULATORS`] is the one list of systems the demo runs. An entry names the system (its
//! table in demo/systems.toml) and a function that starts its simulator, seeds it with the
//! system's catalogue, issues the credential it accepts, and hands back a vendor-neutral
//! [`DemoSim`] for the scenario to steer. Adding a simulator to the demo is one entry here:
//! its systems.toml table and its policies are already in demo/ and are kept as soon as
//! the entry exists ([`keep_present_systems`], [`keep_present_grants`]).

use crate::config::SystemEntry;
use crate::model::EntitlementKind;
use crate::secrets::Secret;
use crate::sim::SimServer;
use crate::sim::fault::{FaultProfile, Faults};
use crate::{Error, Result};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

/// What the simulators answered, for the summary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Served {
    pub requests: u64,
    /// 429s (and AWS's Throttling 400s), injected bursts and rate windows together.
    pub throttled: u64,
    /// Of those, refused by the simulator's own rate windows.
    pub rate_window_refusals: u64,
    /// 5xx answers: injected errors, outages and held requests.
    pub server_errors: u64,
}

/// A running simulator as the scenario steers it, whatever the vendor.
pub trait DemoSim: Send + Sync {
    /// The fault profile, outages and bursts of this simulator.
    fn faults(&self) -> Arc<Faults>;
    fn served(&self) -> Served;
    /// Accounts created more than once (a login created N times counts N - 1).
    fn duplicate_creates(&self) -> u64;
    /// Make every change to one entitlement's membership fail permanently (a gateway in
    /// front of the vendor refusing it), until [`DemoSim::clear_injected_failures`].
    /// Returns false when the simulator has no such entitlement.
    fn break_entitlement(&self, kind: EntitlementKind, name: &str) -> bool;
    fn clear_injected_failures(&self);
    /// Change the target behind accessdesk's back, the way people do in a vendor's own
    /// console, so a reconciliation session has something to find. `entry` is the
    /// system's table; `leaver` someone HR says has left. Returns what was done, one line
    /// each (nothing for simulators without a story).
    fn seed_drift(
        &self,
        _entry: &SystemEntry,
        _leaver: Option<&crate::model::Person>,
    ) -> Vec<String> {
        Vec::new()
    }
}

/// The catalogue's most privileged group of a system (for drift: access added by hand).
fn privileged_group(entry: &SystemEntry) -> Option<String> {
    entry
        .entitlements
        .iter()
        .filter(|((k, _), _)| *k == EntitlementKind::Group)
        .max_by_key(|(_, e)| e.risk)
        .map(|((_, name), _)| name.clone())
}

/// A gateway in front of the vendor refusing every `method` request on paths containing
/// `path` with an HTML page (what [`DemoSim::break_entitlement`] arranges).
fn gateway_refusal(method: axum::http::Method, path: &str) -> crate::sim::rules::FailRule {
    crate::sim::rules::FailRule::new(
        Some(method),
        path,
        crate::sim::rules::BodyFault::Html(400),
        u32::MAX,
    )
}

/// What [`SimulatorSpec::spawn`] is given.
pub struct SimSetup {
    /// The system's table from demo/systems.toml (its catalogue is seeded into the sim).
    pub entry: SystemEntry,
    pub faults: FaultProfile,
    /// The simulator's rate windows: this many requests per bucket per `window`.
    pub window: Duration,
    pub window_limit: u32,
    pub seed: u64,
}

/// A started simulator.
pub struct Spawned {
    pub server: SimServer,
    pub sim: Box<dyn DemoSim>,
    /// The credential the simulator accepts, to be stored in the keychain.
    pub credential: Secret,
    /// Where the adapter points (the server, or its API root on it).
    pub base_url: String,
}

type SpawnFuture = Pin<Box<dyn Future<Output = Result<Spawned>> + Send>>;

/// One system the demo can run.
pub struct SimulatorSpec {
    /// The system's name: its `[systems.NAME]` table in demo/systems.toml.
    pub system: &'static str,
    pub spawn: fn(SimSetup) -> SpawnFuture,
}

/// Every system the demo runs, in start order: every adapter that exists has one.
pub const SIMULATORS: &[SimulatorSpec] = &[
    SimulatorSpec {
        system: "okta",
        spawn: |setup| Box::pin(okta::spawn(setup)),
    },
    SimulatorSpec {
        system: "zoom",
        spawn: |setup| Box::pin(scim::spawn(setup)),
    },
    SimulatorSpec {
        system: "aws",
        spawn: |setup| Box::pin(aws::spawn(setup, aws::Service::Iam)),
    },
    SimulatorSpec {
        system: "aws-sso",
        spawn: |setup| Box::pin(aws::spawn(setup, aws::Service::IdentityStore)),
    },
    SimulatorSpec {
        system: "gworkspace",
        spawn: |setup| Box::pin(google::spawn(setup)),
    },
    SimulatorSpec {
        system: "slack",
        spawn: |setup| Box::pin(slack::spawn(setup)),
    },
    SimulatorSpec {
        system: "entra",
        spawn: |setup| Box::pin(entra::spawn(setup)),
    },
    SimulatorSpec {
        system: "github",
        spawn: |setup| Box::pin(github::spawn(setup)),
    },
];

mod entra;
mod github;
mod google;
mod slack;

/// The names of the systems the demo runs.
pub fn present() -> Vec<&'static str> {
    SIMULATORS.iter().map(|s| s.system).collect()
}

/// A random credential value: `prefix` plus `len` letters and digits.
pub fn random_credential(prefix: &str, len: usize) -> Secret {
    use rand::Rng;
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    let tail: String = (0..len)
        .map(|_| CHARS[rng.random_range(0..CHARS.len())] as char)
        .collect();
    Secret::new(format!("{prefix}{tail}"))
}

/// demo/systems.toml with only the systems in `present`: other tables are dropped, and so
/// are dependencies on them; `base_url` is set from `urls`. The result is what the demo
/// home's systems.toml holds.
pub fn keep_present_systems(
    template: &str,
    present: &[&str],
    urls: &[(&str, String)],
) -> Result<String> {
    let mut doc: toml::Table = template
        .parse()
        .map_err(|e| Error::Failed(format!("demo/systems.toml does not parse: {e}")))?;
    if let Some(toml::Value::Table(systems)) = doc.get_mut("systems") {
        systems.retain(|name, _| present.contains(&name));
        for (name, table) in systems.iter_mut() {
            let Some(t) = table.as_table_mut() else {
                continue;
            };
            if let Some(url) = urls.iter().find(|(n, _)| *n == name).map(|(_, u)| u) {
                t.insert("base_url".into(), toml::Value::String(url.clone()));
            }
            if let Some(toml::Value::Array(deps)) = t.get_mut("depends_on") {
                deps.retain(|d| d.as_str().is_some_and(|d| present.contains(&d)));
            }
        }
    }
    let body = toml::to_string(&doc)
        .map_err(|e| Error::Failed(format!("writing the demo systems.toml: {e}")))?;
    Ok(format!(
        "# Written by `accessdesk demo` from demo/systems.toml for the simulators running now\n# ({}).\n\n{body}",
        present.join(", ")
    ))
}

/// demo/policies.toml with grants only in the systems in `present`; a rule left with
/// nothing to grant is dropped.
pub fn keep_present_grants(template: &str, present: &[&str]) -> Result<String> {
    let mut doc: toml::Table = template
        .parse()
        .map_err(|e| Error::Failed(format!("demo/policies.toml does not parse: {e}")))?;
    if let Some(toml::Value::Array(rules)) = doc.get_mut("rule") {
        for rule in rules.iter_mut() {
            if let Some(toml::Value::Array(grants)) =
                rule.as_table_mut().and_then(|t| t.get_mut("grant"))
            {
                grants.retain(|g| {
                    g.as_str()
                        .and_then(|g| g.split(':').next())
                        .is_some_and(|sys| present.contains(&sys))
                });
            }
        }
        rules.retain(|r| {
            r.get("grant")
                .and_then(|g| g.as_array())
                .is_some_and(|g| !g.is_empty())
        });
    }
    let body = toml::to_string(&doc)
        .map_err(|e| Error::Failed(format!("writing the demo policies.toml: {e}")))?;
    Ok(format!(
        "# Written by `accessdesk demo` from demo/policies.toml: the grants in the systems\n# running now ({}).\n\n{body}",
        present.join(", ")
    ))
}

mod okta {
    use super::*;
    use crate::sim::okta::{OktaHandle, OktaSimOptions};

    struct OktaSim(OktaHandle);

    pub(super) async fn spawn(setup: SimSetup) -> Result<Spawned> {
        let (server, handle) = crate::sim::okta::spawn(OktaSimOptions {
            faults: setup.faults,
            rate_window: setup.window,
            rate_limit: Some(setup.window_limit),
            // A few writes are carried out but their answer is lost: the retry must find
            // the account rather than create it twice.
            lost_response_rate: 0.003,
            seed: setup.seed,
            ..Default::default()
        })
        .await
        .map_err(|e| Error::io("starting the Okta simulator", e))?;
        for (kind, name) in setup.entry.entitlements.keys() {
            if *kind == EntitlementKind::Group {
                handle.seed_group(name);
            }
        }
        let credential = random_credential("00demo", 36);
        handle.add_api_token(credential.expose());
        Ok(Spawned {
            base_url: server.base_url(),
            server,
            sim: Box::new(OktaSim(handle)),
            credential,
        })
    }

    impl DemoSim for OktaSim {
        fn faults(&self) -> Arc<Faults> {
            self.0.faults()
        }

        fn served(&self) -> Served {
            served(
                |f| self.0.count(f),
                self.0.limits().refused(),
                |r| r.status == 429,
            )
        }

        fn duplicate_creates(&self) -> u64 {
            duplicates(self.0.users().iter().map(|u| self.0.creates_for(u.login())))
        }

        fn break_entitlement(&self, kind: EntitlementKind, name: &str) -> bool {
            if kind != EntitlementKind::Group {
                return false;
            }
            let Some(group) = self.0.group_by_name(name) else {
                return false;
            };
            self.0.fail(gateway_refusal(
                axum::http::Method::PUT,
                &format!("/groups/{}/users/", group.id),
            ));
            true
        }

        fn clear_injected_failures(&self) {
            self.0.clear_rules();
        }

        fn seed_drift(
            &self,
            entry: &SystemEntry,
            _leaver: Option<&crate::model::Person>,
        ) -> Vec<String> {
            let login = "temp.contractor@northwind.example";
            self.0.seed_user(login, "Temp", "Contractor");
            vec![format!(
                "someone made an account in {} by hand: {login}, owned by nobody in HR",
                entry.system.name
            )]
        }
    }
}

/// Accounts created more than once, given how often each login was created.
fn duplicates(creates: impl IntoIterator<Item = u32>) -> u64 {
    creates
        .into_iter()
        .map(|n| u64::from(n.saturating_sub(1)))
        .sum()
}

/// What a simulator served, from its request log (`count`) and its rate windows.
fn served(
    count: impl Fn(&dyn Fn(&crate::sim::log::LoggedRequest) -> bool) -> usize,
    rate_window_refusals: u64,
    throttled: impl Fn(&crate::sim::log::LoggedRequest) -> bool,
) -> Served {
    Served {
        requests: count(&|_| true) as u64,
        throttled: count(&throttled) as u64,
        rate_window_refusals,
        server_errors: count(&|r| r.status >= 500) as u64,
    }
}

mod scim {
    use super::*;
    use crate::sim::rules::{BodyFault, FailRule};
    use crate::sim::scim::{ScimHandle, ScimSimOptions};

    struct ScimSim(ScimHandle);

    pub(super) async fn spawn(setup: SimSetup) -> Result<Spawned> {
        let (server, handle) = crate::sim::scim::spawn(ScimSimOptions {
            faults: setup.faults,
            rate_limit: Some(setup.window_limit),
            rate_window: setup.window,
            lost_response_rate: 0.003,
            seed: setup.seed,
            ..Default::default()
        })
        .await
        .map_err(|e| Error::io("starting the SCIM simulator", e))?;
        for (kind, name) in setup.entry.entitlements.keys() {
            if *kind == EntitlementKind::Group {
                handle.seed_group(name);
            }
        }
        let credential = random_credential("scim-demo-", 32);
        handle.add_token(credential.expose());
        Ok(Spawned {
            base_url: handle.base_url(),
            server,
            sim: Box::new(ScimSim(handle)),
            credential,
        })
    }

    impl DemoSim for ScimSim {
        fn faults(&self) -> Arc<Faults> {
            self.0.faults()
        }

        fn served(&self) -> Served {
            served(
                |f| self.0.count(f),
                self.0.limits().refused(),
                |r| r.status == 429,
            )
        }

        fn duplicate_creates(&self) -> u64 {
            let users = self.0.users();
            duplicates(
                users
                    .iter()
                    .filter_map(|u| u.user_name())
                    .map(|n| self.0.creates_for(n)),
            )
        }

        fn break_entitlement(&self, kind: EntitlementKind, name: &str) -> bool {
            let Some(group) = (kind == EntitlementKind::Group)
                .then(|| self.0.group_by_name(name))
                .flatten()
            else {
                return false;
            };
            self.0.fail(
                FailRule::new(
                    None,
                    &format!("/Groups/{}", group.id),
                    BodyFault::Html(400),
                    1,
                )
                .always(),
            );
            true
        }

        fn clear_injected_failures(&self) {
            self.0.clear_rules();
        }

        fn seed_drift(
            &self,
            entry: &SystemEntry,
            leaver: Option<&crate::model::Person>,
        ) -> Vec<String> {
            let name = &entry.system.name;
            let mut done = Vec::new();
            // Someone who left before accessdesk took over, still active here.
            if let Some(p) = leaver
                && self.0.user_by_name(&p.email).is_none()
            {
                let id = self.0.seed_user(&p.email, &p.given_name, &p.family_name);
                self.0
                    .set_user_attribute(&id, "externalId", serde_json::json!(p.hris_id));
                done.push(format!(
                    "{} {} left ({}) but is still active in {name}: provisioned by hand years ago",
                    p.given_name,
                    p.family_name,
                    p.end_date
                        .map(|d| d.to_string())
                        .unwrap_or_else(|| "terminated".into())
                ));
            }
            // An admin edits someone's department in the app.
            if let Some(u) = self.0.users().into_iter().find(|u| {
                u.external_id().is_some() && u.user_name() != leaver.map(|l| l.email.as_str())
            }) {
                self.0.set_user_attribute(
                    &u.id,
                    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
                    serde_json::json!("Temporary Projects"),
                );
                done.push(format!(
                    "an admin changed {}'s department in {name} to \"Temporary Projects\"",
                    u.user_name().unwrap_or("?")
                ));
            }
            done
        }
    }
}

mod aws {
    use super::*;
    use crate::sim::aws::{AwsHandle, AwsSimOptions};
    use crate::sim::rules::{BodyFault, FailRule};

    /// Which service of the simulated account the demo system uses.
    #[derive(Clone, Copy, PartialEq, Eq)]
    pub(super) enum Service {
        Iam,
        IdentityStore,
    }

    struct AwsSim(AwsHandle, Service);

    pub(super) async fn spawn(setup: SimSetup, service: Service) -> Result<Spawned> {
        let mut opts = AwsSimOptions {
            faults: setup.faults,
            rate_limit: Some(setup.window_limit),
            rate_window: setup.window,
            lost_response_rate: 0.003,
            seed: setup.seed,
            ..Default::default()
        };
        let setting = |k: &str| {
            setup
                .entry
                .settings
                .get(k)
                .and_then(|v| v.as_str())
                .map(str::to_string)
        };
        if let Some(id) = setting("identity_store_id") {
            opts.identity_store_id = id;
        }
        if let Some(r) = setting("region") {
            opts.region = r;
        }
        let (server, handle) = crate::sim::aws::spawn(opts)
            .await
            .map_err(|e| Error::io("starting the AWS simulator", e))?;
        for (kind, name) in setup.entry.entitlements.keys() {
            if *kind == EntitlementKind::Group {
                match service {
                    Service::Iam => handle.seed_iam_group(name),
                    Service::IdentityStore => {
                        handle.seed_store_group(name);
                    }
                }
            }
        }
        let credential = Secret::new(handle.credential());
        Ok(Spawned {
            base_url: handle.base_url(),
            server,
            sim: Box::new(AwsSim(handle, service)),
            credential,
        })
    }

    impl DemoSim for AwsSim {
        fn faults(&self) -> Arc<Faults> {
            self.0.faults()
        }

        fn served(&self) -> Served {
            // AWS throttles with 400 (Throttling / ThrottlingException); the demo injects
            // no other 400s into AWS, so these are the throttled requests.
            served(
                |f| self.0.count(f),
                self.0.limits().refused(),
                |r| r.status == 400 || r.status == 429,
            )
        }

        fn duplicate_creates(&self) -> u64 {
            match self.1 {
                Service::Iam => {
                    let counts = self.0.iam_counts();
                    duplicates(
                        self.0
                            .iam_users()
                            .iter()
                            .map(|u| counts.creates_for(&u.user_name)),
                    )
                }
                Service::IdentityStore => {
                    let counts = self.0.store_counts();
                    duplicates(
                        self.0
                            .store_users()
                            .iter()
                            .map(|u| counts.creates_for(&u.user_name)),
                    )
                }
            }
        }

        fn break_entitlement(&self, kind: EntitlementKind, name: &str) -> bool {
            if kind != EntitlementKind::Group {
                return false;
            }
            let body = match self.1 {
                Service::Iam => format!("GroupName={name}"),
                Service::IdentityStore => name.to_string(),
            };
            self.0.fail(
                FailRule::new(None, "/", BodyFault::Html(400), 1)
                    .with_body(&body)
                    .always(),
            );
            true
        }

        fn clear_injected_failures(&self) {
            self.0.clear_rules();
        }

        fn seed_drift(
            &self,
            entry: &SystemEntry,
            _leaver: Option<&crate::model::Person>,
        ) -> Vec<String> {
            if self.1 != Service::Iam {
                return Vec::new();
            }
            let Some(group) = privileged_group(entry) else {
                return Vec::new();
            };
            // Someone provisioned by accessdesk (their user carries the HR id tag) gets a
            // privileged group by hand.
            let members = self.0.iam_group_members(&group);
            let Some(user) =
                self.0.iam_users().into_iter().find(|u| {
                    u.tag("accessdesk:hris-id").is_some() && !members.contains(&u.user_name)
                })
            else {
                return Vec::new();
            };
            if !self.0.iam_add_to_group(&group, &user.user_name) {
                return Vec::new();
            }
            vec![format!(
                "someone added {} to the privileged group {group} in {} by hand",
                user.user_name, entry.system.name
            )]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SYSTEMS: &str = include_str!("../../demo/systems.toml");
    const POLICIES: &str = include_str!("../../demo/policies.toml");

    /// The demo home's files for `present`, loaded as the demo loads them.
    fn load(
        present: &[&str],
    ) -> (
        crate::config::SystemsConfig,
        crate::policy::PolicySet,
        String,
    ) {
        let urls: Vec<(&str, String)> = present
            .iter()
            .map(|s| (*s, "http://127.0.0.1:9".to_string()))
            .collect();
        let systems = keep_present_systems(SYSTEMS, present, &urls).unwrap();
        let cfg =
            crate::config::SystemsConfig::parse(std::path::Path::new("s.toml"), &systems).unwrap();
        let policies = keep_present_grants(POLICIES, present).unwrap();
        let set = crate::policy::PolicySet::parse(
            std::path::Path::new("p.toml"),
            &policies,
            &cfg.catalog,
        )
        .unwrap();
        (cfg, set, policies)
    }

    #[tokio::test]
    async fn every_demo_world_gets_fresh_aws_keys() {
        let (cfg, _, _) = load(&["aws"]);
        let setup = || SimSetup {
            entry: cfg.catalog.systems["aws"].clone(),
            faults: FaultProfile::none(),
            window: Duration::from_secs(10),
            window_limit: 100,
            seed: 42,
        };
        // Same seed, same configuration: still different keys.
        let a = aws::spawn(setup(), aws::Service::Iam).await.unwrap();
        let b = aws::spawn(setup(), aws::Service::Iam).await.unwrap();
        let (ka, kb) = (a.credential.expose(), b.credential.expose());
        assert_ne!(ka, kb);
        for k in [ka, kb] {
            let (id, secret) = k.split_once(':').expect("ACCESS_KEY_ID:SECRET");
            assert!(id.starts_with("AKIA") && id.len() == 20, "{id}");
            assert_ne!(id, "AKIASIMULATOR0ADMIN1", "not the old fixed key");
            assert_eq!(secret.len(), 40);
        }
        a.server.stop().await;
        b.server.stop().await;
    }

    #[test]
    fn absent_systems_and_their_grants_are_dropped() {
        let (cfg, set, policies) = load(&["okta"]);
        assert_eq!(cfg.catalog.systems.keys().collect::<Vec<_>>(), vec!["okta"]);
        assert_eq!(
            cfg.catalog.systems["okta"].base_url.as_deref(),
            Some("http://127.0.0.1:9")
        );
        assert!(set.entitlements().all(|e| e.system == "okta"));
        assert!(set.rules().iter().any(|r| r.name == "payroll"));
        assert!(!policies.contains("aws"), "{policies}");
    }

    #[test]
    fn with_every_system_the_templates_load_whole() {
        let (cfg, set, _) = load(&["okta", "zoom", "aws", "aws-sso"]);
        assert_eq!(cfg.catalog.systems.len(), 4);
        assert_eq!(cfg.catalog.systems["zoom"].system.depends_on, vec!["okta"]);
        let raw: toml::Table = POLICIES.parse().unwrap();
        assert_eq!(
            set.rules().len(),
            raw["rule"].as_array().unwrap().len(),
            "every rule is kept when every system runs"
        );
    }
}

//! Driving the engine end to end against simulators or peers: a systems.toml built from
//! entries, a store in a temp dir, a team of people with intended grants (everyone in
//! `everyone`, every second person in `engineering`), plan + apply, and an engine whose
//! adapters come from the registry.
#![allow(dead_code)]

use accessdesk::adapters::http::{RateLimiter, Timeouts};
use accessdesk::adapters::registry::{AdapterContext, build_with};
use accessdesk::config::SystemsConfig;
use accessdesk::config::systems::GuardThresholds;
use accessdesk::engine::apply::{apply_plan, make_plan};
use accessdesk::engine::plan::Scope;
use accessdesk::engine::workers::{Engine, EngineConfig, SystemRuntime};
use accessdesk::model::{Grant, OperationStatus, Person};
use accessdesk::store::Store;
use accessdesk::store::queue::OpRow;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One `[systems.NAME]` entry.
pub struct Entry {
    pub name: String,
    pub kind: String,
    pub base_url: String,
    /// The keychain entry (`keyring:NAME`) the credential comes from.
    pub credential: String,
    pub depends_on: Vec<String>,
    pub verify: bool,
    /// Lines of `[systems.NAME.settings]`.
    pub settings: String,
    /// Extra lines of the `[systems.NAME]` table itself (`login = "..."`, ...).
    pub top: String,
}

impl Entry {
    pub fn new(name: &str, kind: &str, base_url: &str, credential: &str) -> Entry {
        Entry {
            name: name.into(),
            kind: kind.into(),
            base_url: base_url.into(),
            credential: credential.into(),
            depends_on: Vec::new(),
            verify: false,
            settings: String::new(),
            top: String::new(),
        }
    }
    pub fn top(mut self, lines: &str) -> Entry {
        self.top = lines.into();
        self
    }
    pub fn verify(mut self, on: bool) -> Entry {
        self.verify = on;
        self
    }
    pub fn depends_on(mut self, systems: &[&str]) -> Entry {
        self.depends_on = systems.iter().map(|s| s.to_string()).collect();
        self
    }
    pub fn settings(mut self, lines: &str) -> Entry {
        self.settings = lines.into();
        self
    }
}

pub fn systems_toml(entries: &[Entry]) -> String {
    let mut t = String::new();
    for e in entries {
        let deps: Vec<String> = e.depends_on.iter().map(|d| format!("\"{d}\"")).collect();
        t.push_str(&format!(
            "[systems.{}]\nkind = \"{}\"\nbase_url = \"{}\"\ncredential = \"keyring:{}\"\ndepends_on = [{}]\nverify = {}\n{}\n[systems.{}.settings]\n{}\n",
            e.name,
            e.kind,
            e.base_url,
            e.credential,
            deps.join(", "),
            e.verify,
            e.top,
            e.name,
            e.settings
        ));
    }
    t
}

/// Secrets by keychain entry name.
pub use accessdesk::adapters::kit::testkit::NamedSecrets as Secrets;

/// Short retries, polls and verification deadlines.
pub fn fast() -> EngineConfig {
    EngineConfig {
        retry_window: Duration::from_secs(90),
        retry_base: Duration::from_millis(50),
        retry_cap: Duration::from_millis(600),
        verify_deadline: Duration::from_secs(10),
        verify_poll: Duration::from_millis(200),
        idle_poll: Duration::from_millis(10),
        ..EngineConfig::default()
    }
}

/// Person `i` of [`Run::intend`]'s team.
pub fn person(i: usize) -> Person {
    let mut p = Person::new(
        &format!("E{i:03}"),
        &format!("Given{i}"),
        "Faulty",
        &format!("f{i}@example.com"),
    );
    p.department = if i.is_multiple_of(2) {
        "Engineering"
    } else {
        "Sales"
    }
    .into();
    p
}

pub struct Run {
    pub cfg: SystemsConfig,
    pub store: Arc<Mutex<Store>>,
    /// The adapters' request timeout.
    pub request_timeout: Duration,
    secrets: Secrets,
    _dir: tempfile::TempDir,
}

impl Run {
    pub fn new(entries: &[Entry], secrets: &[(&str, &str)]) -> Run {
        let cfg = SystemsConfig::parse(Path::new("systems.toml"), &systems_toml(entries))
            .expect("systems.toml");
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(&dir.path().join("accessdesk.db")).expect("store");
        Run {
            cfg,
            store: Arc::new(Mutex::new(store)),
            request_timeout: Duration::from_millis(1500),
            secrets: Secrets(
                secrets
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            _dir: dir,
        }
    }

    /// `n` people (`E000`.., `f0@example.com`.., Engineering for even i, Sales for odd),
    /// each granted `everyone` in every system and `engineering` where in Engineering;
    /// then a plan, applied.
    pub fn intend(&self, n: usize, systems: &[&str]) {
        let mut s = self.store.lock().unwrap();
        s.write(|tx| {
            for i in 0..n {
                let p = person(i);
                tx.upsert_person(&p, "test")?;
                let mut grants = Vec::new();
                for sys in systems {
                    let mut names = vec![("everyone", "everyone")];
                    if i % 2 == 0 {
                        names.push(("engineering", "eng"));
                    }
                    for (group, rule) in names {
                        grants.push(Grant {
                            person_id: p.hris_id.clone(),
                            entitlement: format!("{sys}:group:{group}").parse().unwrap(),
                            rule: rule.into(),
                            requires_approval: false,
                            expires_at: None,
                        });
                    }
                }
                tx.replace_intended_grants(&p.hris_id, &grants, "test")?;
            }
            Ok(())
        })
        .unwrap();
        drop(s);
        self.plan_apply();
    }

    /// Store these people with exactly these intended entitlements each
    /// (`system:kind:name`), then plan and apply. Returns how many operations the plan had.
    pub fn set_people(&self, people: &[(Person, Vec<&str>)]) -> usize {
        let mut s = self.store.lock().unwrap();
        s.write(|tx| {
            for (p, ents) in people {
                tx.upsert_person(p, "test")?;
                let grants: Vec<Grant> = ents
                    .iter()
                    .map(|e| Grant {
                        person_id: p.hris_id.clone(),
                        entitlement: e.parse().unwrap(),
                        rule: "test".into(),
                        requires_approval: false,
                        expires_at: None,
                    })
                    .collect();
                tx.replace_intended_grants(&p.hris_id, &grants, "test")?;
            }
            Ok(())
        })
        .unwrap();
        drop(s);
        self.plan_apply()
    }

    /// Plan everything and apply it; the number of operations planned.
    pub fn plan_apply(&self) -> usize {
        let mut s = self.store.lock().unwrap();
        let plan = make_plan(
            &mut s,
            &self.cfg.catalog,
            &GuardThresholds::default(),
            &Scope::default(),
            "test",
        )
        .unwrap();
        let n = plan.ops.len();
        if n > 0 {
            // Tests make mass changes on purpose (many leavers at once in small systems).
            let approval = plan.held_reason.as_ref().map(|_| "test: intended");
            apply_plan(&mut s, &self.cfg.catalog, &plan.id, "test", approval).unwrap();
        }
        n
    }

    /// An engine over every configured system, adapters built by the registry.
    pub fn engine(&self, ec: EngineConfig) -> Arc<Engine> {
        let mut systems = HashMap::new();
        for (name, entry) in &self.cfg.catalog.systems {
            let ctx = AdapterContext {
                entry,
                secrets: &self.secrets,
                limiter: RateLimiter::new(name, None, 4),
                timeouts: Timeouts {
                    connect: Duration::from_millis(500),
                    request: self.request_timeout,
                },
            };
            let adapter = build_with(ctx).expect("the registry builds the adapter");
            systems.insert(
                name.clone(),
                SystemRuntime::new(adapter, entry.system.kind, 4, entry.verify),
            );
        }
        Arc::new(Engine::new(
            self.store.clone(),
            Arc::new(self.cfg.catalog.clone()),
            systems,
            ec,
        ))
    }

    /// Run the engine until idle (fast settings) where exactly one create is refused for
    /// good by the vendor: it fails Permanent with `why` in its message; the rest converges
    /// (`succeeded` operations). The refused person's memberships stay blocked.
    pub async fn run_with_one_refusal(&self, succeeded: usize, why: &str) {
        let summary = self.engine(fast()).run_until_idle(None).await.unwrap();
        let failed = self.failed();
        assert_eq!(summary.failed, 1, "{summary:?} {failed:#?}");
        assert_eq!(summary.succeeded, succeeded, "{summary:?}");
        assert_eq!(failed[0].last_error_class.as_deref(), Some("permanent"));
        assert!(
            failed[0]
                .last_error_message
                .as_deref()
                .unwrap_or("")
                .contains(why),
            "{failed:#?}"
        );
        self.audit_ok();
    }

    pub fn failed(&self) -> Vec<OpRow> {
        self.store
            .lock()
            .unwrap()
            .ops_with_status(&[OperationStatus::Failed], 1000)
            .unwrap()
    }

    /// Every retried attempt is on record with its cause; the audit chain verifies.
    pub fn audit_ok(&self) {
        let s = self.store.lock().unwrap();
        let unexplained: i64 = s
            .conn()
            .query_row(
                "SELECT count(*) FROM op_attempts WHERE outcome = 'retry' AND (error_class IS NULL OR message IS NULL OR message = '')",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(unexplained, 0, "a retried attempt has no recorded cause");
        assert_eq!(s.audit_verify().unwrap().map(|_| ()), Ok(()));
    }
}

/// People 0..n with their intended grants: everyone `all`, every second person (0, 2, …)
/// also `evens`.
pub fn all_and_evens<'a>(n: usize, all: &'a str, evens: &'a str) -> Vec<(Person, Vec<&'a str>)> {
    (0..n)
        .map(|i| {
            let mut ents = vec![all];
            if i % 2 == 0 {
                ents.push(evens);
            }
            (person(i), ents)
        })
        .collect()
}

/// The adapters' convergence tests' fault mix, 10% of requests: 6% server errors, 2% rate
/// limit bursts (two long, come back in a second), 1% held past a 700 ms client timeout,
/// 1% connections reset.
pub fn ten_percent_faults(seed: u64) -> accessdesk::sim::fault::FaultProfile {
    accessdesk::sim::fault::FaultProfile {
        error_5xx_rate: 0.06,
        burst_429_rate: 0.02,
        burst_429_len: 2,
        burst_retry_after_secs: 1,
        timeout_rate: 0.01,
        reset_rate: 0.01,
        timeout_delay: Duration::from_secs(2),
        seed,
        ..accessdesk::sim::fault::FaultProfile::none()
    }
}

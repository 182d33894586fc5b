//! Property: for any set of people (homonyms, diacritic twins, names differing only in
//! case, non-Latin names, leavers followed by joiners with the same name), no two people
//! ever share an account in any system, and nobody gets two.
//!
//! Each case runs the real engine against our Okta, SCIM and AWS (IAM and identity store)
//! simulators with colliding login templates, in two waves (joiners; then leavers and
//! same-named joiners), and then reads every system back through its adapter's listing:
//! what the targets answer, not what accessdesk remembers doing.

#[path = "common/engine.rs"]
mod engine;

use accessdesk::adapters::http::{RateLimiter, Timeouts};
use accessdesk::adapters::prelude::*;
use accessdesk::adapters::registry::{AdapterContext, build_with};
use accessdesk::adapters::{RemoteAccount, collect_all};
use accessdesk::model::{EmploymentStatus, Person};
use accessdesk::sim::aws::AwsSimOptions;
use accessdesk::sim::okta::OktaSimOptions;
use accessdesk::sim::scim::ScimSimOptions;
use engine::{Entry, Run, fast};
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

/// Names that collide in a login once folded to ASCII, in case, or not at all.
const NAMES: &[(&str, &str)] = &[
    ("John", "Smith"),
    ("john", "SMITH"),
    ("José", "Ñúñez"),
    ("Jose", "Nunez"),
    ("محمد", "العلي"),
    ("Иван", "Петров"),
    ("Ivan", "Petrov"),
    ("小明", "王"),
    ("Mary", "Major"),
    ("Zoë", "Ørsted"),
];

const SYSTEMS: &[&str] = &["okta", "scim", "iam", "sso"];

#[derive(Debug, Clone)]
struct Case {
    /// (name index, leaves in wave 2, a same-named joiner follows the leaver)
    people: Vec<(usize, bool, bool)>,
}

fn cases() -> impl Strategy<Value = Case> {
    proptest::collection::vec((0..NAMES.len(), any::<bool>(), any::<bool>()), 2..8)
        .prop_map(|people| Case { people })
}

/// E-mails are made from the folded name too, so people with colliding names also
/// collide in Okta and SCIM, whose logins are e-mails by default.
fn person(id: usize, name: usize) -> Person {
    let (g, f) = NAMES[name];
    let fold = |s: &str| accessdesk::model::names::ascii_fold(s);
    let local = format!("{}.{}", fold(g), fold(f));
    Person::new(&format!("P{id:02}"), g, f, &format!("{local}@example.com"))
}

fn grants() -> Vec<&'static str> {
    vec![
        "okta:group:everyone",
        "scim:group:everyone",
        "iam:group:everyone",
        "sso:group:everyone",
    ]
}

struct World {
    run: Run,
    adapters: BTreeMap<&'static str, Arc<dyn Adapter>>,
    /// Accounts each system had before any person arrived (the API users).
    baseline: BTreeMap<&'static str, BTreeSet<String>>,
    _servers: Vec<accessdesk::sim::SimServer>,
}

async fn world() -> World {
    let (okta_s, okta) = accessdesk::sim::okta::spawn(OktaSimOptions::default())
        .await
        .unwrap();
    okta.add_api_token("okta-token");
    okta.seed_group("everyone");
    let (scim_s, scim) = accessdesk::sim::scim::spawn(ScimSimOptions::default())
        .await
        .unwrap();
    scim.add_token("scim-token");
    scim.seed_group("everyone");
    let opts = AwsSimOptions::default();
    let aws_cred = format!("{}:{}", opts.access_key_id, opts.secret_access_key);
    let store_id = opts.identity_store_id.clone();
    let (aws_s, aws) = accessdesk::sim::aws::spawn(opts).await.unwrap();
    aws.seed_iam_group("everyone");
    aws.seed_store_group("everyone");
    let run = Run::new(
        &[
            Entry::new("okta", "okta", &okta_s.base_url(), "okta"),
            Entry::new("scim", "scim", &scim.base_url(), "scim"),
            // Colliding on purpose: homonyms, twins and case twins render the same login.
            Entry::new("iam", "aws_iam", &aws.base_url(), "aws")
                .top("login = \"{given}.{family}\"")
                .settings("region = \"us-east-1\""),
            Entry::new("sso", "aws_identity_store", &aws.base_url(), "aws")
                .top("login = \"{given_initial}{family}\"")
                .settings(&format!(
                    "region = \"us-east-1\"\nidentity_store_id = \"{store_id}\""
                )),
        ],
        &[
            ("okta", "okta-token"),
            ("scim", "scim-token"),
            ("aws", &aws_cred),
        ],
    );
    let mut adapters = BTreeMap::new();
    for name in SYSTEMS {
        let entry = &run.cfg.catalog.systems[*name];
        let secrets = engine::Secrets(
            [
                ("okta".to_string(), "okta-token".to_string()),
                ("scim".to_string(), "scim-token".to_string()),
                ("aws".to_string(), aws_cred.clone()),
            ]
            .into(),
        );
        let a = build_with(AdapterContext {
            entry,
            secrets: &secrets,
            limiter: RateLimiter::new(name, None, 4),
            timeouts: Timeouts {
                connect: Duration::from_secs(1),
                request: Duration::from_secs(5),
            },
        })
        .unwrap();
        adapters.insert(*name, a);
    }
    let mut w = World {
        run,
        adapters,
        baseline: BTreeMap::new(),
        _servers: vec![okta_s, scim_s, aws_s],
    };
    for sys in SYSTEMS {
        let ids = w
            .remote(sys)
            .await
            .into_iter()
            .map(|a| a.external_id)
            .collect();
        w.baseline.insert(*sys, ids);
    }
    w
}

impl World {
    async fn remote(&self, sys: &str) -> Vec<RemoteAccount> {
        let adapter = &self.adapters[sys];
        collect_all(|c| adapter.list_accounts(c), 2).await.unwrap()
    }

    fn set(&self, people: &[Person]) {
        let rows: Vec<(Person, Vec<&str>)> = people
            .iter()
            .map(|p| {
                let g = if p.status == EmploymentStatus::Terminated {
                    vec![]
                } else {
                    grants()
                };
                (p.clone(), g)
            })
            .collect();
        self.run.set_people(&rows);
    }

    async fn settle(&self) {
        let s = self.run.engine(fast()).run_until_idle(None).await.unwrap();
        assert_eq!(s.failed, 0, "{s:?} {:#?}", self.run.failed());
    }

    /// The invariant, checked against what each system answers.
    async fn check(&self, people: &[Person]) {
        for sys in SYSTEMS {
            let remote: Vec<RemoteAccount> = self
                .remote(sys)
                .await
                .into_iter()
                .filter(|a| !self.baseline[sys].contains(&a.external_id))
                .collect();
            let by_id: BTreeMap<&str, &RemoteAccount> =
                remote.iter().map(|a| (a.external_id.as_str(), a)).collect();
            // No HR id on two accounts: nobody was created twice.
            let mut hr: BTreeMap<&str, usize> = BTreeMap::new();
            for a in &remote {
                if let Some(h) = &a.hris_id {
                    *hr.entry(h).or_default() += 1;
                }
            }
            assert!(hr.values().all(|n| *n == 1), "{sys}: {remote:#?}");
            // Each person's linked account exists, is theirs, and is nobody else's.
            let store = self.run.store.lock().unwrap();
            let mut linked: BTreeMap<String, String> = BTreeMap::new();
            for p in people {
                let Some(acc) = store.account_for(sys, &p.hris_id).unwrap() else {
                    continue;
                };
                let ext = acc.external_id.clone().expect("linked accounts have an id");
                let r = by_id.get(ext.as_str()).unwrap_or_else(|| {
                    panic!("{sys}: {}'s account {ext} is not in the target", p.hris_id)
                });
                if let Some(h) = &r.hris_id {
                    assert_eq!(
                        h, &p.hris_id,
                        "{sys}: {} is linked to {}'s account",
                        p.hris_id, h
                    );
                }
                if let Some(other) = linked.insert(ext.clone(), p.hris_id.clone()) {
                    panic!("{sys}: {other} and {} share account {ext}", p.hris_id);
                }
                // Logins are unique per system, case-insensitively.
                let l = store.login_of(sys, &p.hris_id).unwrap().unwrap().login;
                assert!(
                    l.eq_ignore_ascii_case(&r.login),
                    "{sys}: {l} vs {}",
                    r.login
                );
            }
            let logins: BTreeSet<String> = people
                .iter()
                .filter_map(|p| store.login_of(sys, &p.hris_id).unwrap())
                .map(|l| l.login.to_lowercase())
                .collect();
            let assigned = people
                .iter()
                .filter(|p| store.login_of(sys, &p.hris_id).unwrap().is_some())
                .count();
            assert_eq!(logins.len(), assigned, "{sys}: two people share a login");
            // Every account in the target is accounted for by exactly one person.
            assert_eq!(
                remote.len(),
                linked.len(),
                "{sys}: {remote:#?} vs {linked:#?}"
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    #[test]
    fn no_two_people_ever_share_an_account(case in cases()) {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let w = world().await;
            let mut people: Vec<Person> = case
                .people
                .iter()
                .enumerate()
                .map(|(i, (n, _, _))| person(i, *n))
                .collect();
            w.set(&people);
            w.settle().await;
            w.check(&people).await;
            // Wave 2: leavers go; same-named joiners arrive.
            let mut next = people.len();
            for (i, (n, leaves, rehire_name)) in case.people.iter().enumerate() {
                if *leaves {
                    people[i].status = EmploymentStatus::Terminated;
                    if *rehire_name {
                        people.push(person(next, *n));
                        next += 1;
                    }
                }
            }
            w.set(&people);
            w.settle().await;
            w.check(&people).await;
            // Nothing left to do.
            assert_eq!(w.run.plan_apply(), 0);
        });
    }
}

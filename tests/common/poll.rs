//! The store side of a polled HR source, shared by the pollers' tests: one source from a
//! sources.toml text, an in-memory store, no systems or policies, the default guard; poll
//! through any [`Feed`] and read back people and changes.
#![allow(dead_code)]

use accessdesk::config::SystemsConfig;
use accessdesk::config::systems::GuardThresholds;
use accessdesk::model::Person;
use accessdesk::policy::PolicySet;
use accessdesk::sources::config::{Source, SourcesConfig};
use accessdesk::sources::ingest::Context;
use accessdesk::sources::poll::{Feed, FeedPage, PollReport, apply_page, poll_once};
use accessdesk::store::Store;
use std::path::Path;
use std::sync::Mutex;

pub struct PollRig {
    pub store: Mutex<Store>,
    pub source: Source,
    pub cfg: SystemsConfig,
    pub policies: PolicySet,
    pub guard: GuardThresholds,
    actor: String,
}

impl PollRig {
    /// The source `name` of `sources_toml`.
    pub fn new(sources_toml: &str, name: &str) -> PollRig {
        let mut sources = SourcesConfig::parse(Path::new("sources.toml"), sources_toml).unwrap();
        let source = sources.sources.remove(name).unwrap();
        let cfg = SystemsConfig::parse(Path::new("systems.toml"), "").unwrap();
        let policies = PolicySet::parse(Path::new("policies.toml"), "", &cfg.catalog).unwrap();
        PollRig {
            store: Mutex::new(Store::open_in_memory().unwrap()),
            source,
            cfg,
            policies,
            guard: GuardThresholds::default(),
            actor: format!("source:{name}"),
        }
    }

    pub fn ctx(&self) -> Context<'_> {
        Context {
            catalog: &self.cfg.catalog,
            policies: &self.policies,
            guard: &self.guard,
            actor: &self.actor,
        }
    }

    pub async fn try_poll(
        &self,
        feed: &dyn Feed,
        approval: Option<&str>,
    ) -> accessdesk::Result<PollReport> {
        poll_once(feed, &self.store, &self.ctx(), &self.source, approval).await
    }

    /// Apply a page read earlier (a poll's store side alone).
    pub fn apply(&self, page: &FeedPage) -> PollReport {
        apply_page(
            &mut self.store.lock().unwrap(),
            &self.ctx(),
            &self.source,
            page,
            None,
        )
        .unwrap()
    }

    pub fn person(&self, id: &str) -> Option<Person> {
        self.store.lock().unwrap().find_person(id).unwrap()
    }

    /// A person's status, empty when unknown.
    pub fn status(&self, id: &str) -> String {
        self.person(id)
            .map(|p| p.status.as_str().to_string())
            .unwrap_or_default()
    }

    pub fn people(&self) -> Vec<Person> {
        self.store.lock().unwrap().all_people().unwrap()
    }

    /// `PERSON CHANGE` for each applied record, sorted.
    pub fn changes(r: &PollReport) -> Vec<String> {
        let mut v: Vec<String> = r
            .applied
            .iter()
            .map(|a| {
                format!(
                    "{} {}",
                    a["person"].as_str().unwrap(),
                    a["change"].as_str().unwrap()
                )
            })
            .collect();
        v.sort();
        v
    }
}

//! The demo's reconciliation session: after the targets drifted behind accessdesk's back
//! (scenario `Drift`), observe every system, classify, enforce what can be enforced, let
//! the engine carry it out, and observe again. The headless summary reports both reads,
//! so the story "drift found, then fixed" is checked on every run.

use super::Demo;
use crate::Result;
use crate::engine::observe::{Observer, observe_all, run_for};
use crate::engine::reconcile::reconcile_run;
use crate::store::reconcile::FindingFilter;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// What a reconciliation session in the demo found and fixed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReconcileStory {
    /// Open findings by class, before enforcing.
    pub found: BTreeMap<String, usize>,
    /// Findings enforced (operations queued for them).
    pub enforced: usize,
    /// Findings that cannot be enforced (unmanaged, ambiguous): left open.
    pub refused: usize,
    /// Open findings by class after the engine carried out the enforcement.
    pub after: BTreeMap<String, usize>,
}

impl Demo {
    async fn observe_and_classify(&self) -> Result<(i64, BTreeMap<String, usize>)> {
        let systems: Vec<String> = self.config.catalog.systems.keys().cloned().collect();
        let adapters: HashMap<String, std::sync::Arc<dyn crate::adapters::Adapter>> = systems
            .iter()
            .filter_map(|s| self.engine.adapter(s).map(|a| (s.clone(), a.clone())))
            .collect();
        let run = {
            let mut s = self.store.lock().unwrap_or_else(|p| p.into_inner());
            run_for(&mut s, &systems, None, true, super::ACTOR)?.0
        };
        let unavailable = HashMap::new();
        let o = Observer {
            store: &self.store,
            adapters: &adapters,
            catalog: &self.config.catalog,
            unavailable: &unavailable,
            actor: super::ACTOR,
        };
        observe_all(&o, run, &systems, &|_| {}).await?;
        let mut s = self.store.lock().unwrap_or_else(|p| p.into_inner());
        reconcile_run(&mut s, &self.config.catalog, run, super::ACTOR)?;
        let mut by_class = BTreeMap::new();
        for f in s.findings(&FindingFilter {
            run: Some(run),
            open_only: true,
            ..Default::default()
        })? {
            *by_class.entry(f.class).or_default() += 1;
        }
        Ok((run, by_class))
    }

    /// Observe, classify, enforce, carry out, observe again. The engine must not be
    /// running (the headless demo calls this after stopping it).
    pub async fn reconcile_session(&self) -> Result<ReconcileStory> {
        let (run, found) = self.observe_and_classify().await?;
        let outcomes = {
            let mut s = self.store.lock().unwrap_or_else(|p| p.into_inner());
            let open = s.findings(&FindingFilter {
                run: Some(run),
                open_only: true,
                ..Default::default()
            })?;
            crate::engine::findings::enforce(&mut s, &self.config.catalog, &open, super::ACTOR)?
        };
        let enforced = outcomes.iter().filter(|o| o.status == "enforced").count();
        let refused = outcomes.len() - enforced;
        self.engine.run_until_idle(None).await?;
        let (_, after) = self.observe_and_classify().await?;
        Ok(ReconcileStory {
            found,
            enforced,
            refused,
            after,
        })
    }
}

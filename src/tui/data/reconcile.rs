//! What the Reconcile view reads: the newest observation run, each system's checkpoint
//! (written per page, so a running read shows its progress), and the run's findings,
//! grouped by class (leavers first) then severity. Names are read like the Queue's: only
//! for the people on the rows in view (`Query::names`).

use super::Loader;
use crate::Result;
use crate::engine::reconcile::Class;
use crate::store::reconcile::{Checkpoint, FindingFilter, FindingRow, RunRow};

/// At most this many findings of a run are shown (the newest run's, in order).
pub const FINDINGS_LIMIT: usize = 20_000;

/// The Reconcile view's data.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReconcileData {
    pub run: Option<RunRow>,
    /// Each system's read in that run.
    pub systems: Vec<Checkpoint>,
    /// The run's findings: class (leavers first), then severity, then system, person.
    pub findings: Vec<FindingRow>,
    /// How many findings the run has (more than `findings` holds past the limit).
    pub total: usize,
}

/// A class's place in the list (unknown classes last).
pub fn class_order(class: &str) -> usize {
    Class::parse(class).map_or(Class::ALL.len(), |c| c as usize)
}

/// A severity's place in the list (unknown severities last).
pub fn severity_order(severity: &str) -> usize {
    ["critical", "high", "medium", "low"]
        .iter()
        .position(|s| *s == severity)
        .unwrap_or(4)
}

/// Sort findings as the view groups them.
pub fn sort_findings(findings: &mut [FindingRow]) {
    findings.sort_by(|a, b| {
        class_order(&a.class)
            .cmp(&class_order(&b.class))
            .then(severity_order(&a.severity).cmp(&severity_order(&b.severity)))
            .then_with(|| a.system.cmp(&b.system))
            .then_with(|| a.person.cmp(&b.person))
            .then_with(|| a.account.cmp(&b.account))
            .then_with(|| a.entitlement.cmp(&b.entitlement))
            .then(a.id.cmp(&b.id))
    });
}

impl Loader {
    /// The newest run, its checkpoints and findings.
    pub(super) fn reconcile(&self) -> Result<ReconcileData> {
        let Some(id) = self.store.latest_run()? else {
            return Ok(ReconcileData::default());
        };
        let run = self.store.run(id)?;
        let systems = self.store.checkpoints(id)?;
        let mut findings = self.store.findings(&FindingFilter {
            run: Some(id),
            ..Default::default()
        })?;
        let total = findings.len();
        sort_findings(&mut findings);
        findings.truncate(FINDINGS_LIMIT);
        Ok(ReconcileData {
            run,
            systems,
            findings,
            total,
        })
    }
}

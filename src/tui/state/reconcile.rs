//! The Reconcile view's part of the state: what is done to findings, and the findings
//! as the view shows them.

use super::{AppState, ViewId};
use crate::store::reconcile::FindingRow;

/// What an admin does to findings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FindingVerb {
    Enforce,
    Accept,
    Ignore,
}

impl FindingVerb {
    pub fn word(self) -> &'static str {
        match self {
            FindingVerb::Enforce => "Enforce",
            FindingVerb::Accept => "Accept",
            FindingVerb::Ignore => "Ignore",
        }
    }
}

impl AppState {
    /// The newest run's findings as the Reconcile view shows them (filtered).
    pub fn finding_rows(&self) -> Vec<&FindingRow> {
        let f = self.filter(ViewId::Reconcile);
        let Some(r) = &self.snapshot.reconcile else {
            return Vec::new();
        };
        r.findings
            .iter()
            .filter(|x| {
                f.matches(&[
                    &x.class,
                    &x.severity,
                    &x.system,
                    &x.status,
                    x.person.as_deref().unwrap_or(""),
                    x.person
                        .as_deref()
                        .and_then(|p| self.snapshot.names.get(p))
                        .map_or("", String::as_str),
                    x.account.as_deref().unwrap_or(""),
                    x.entitlement.as_deref().unwrap_or(""),
                    &x.detail,
                ])
            })
            .collect()
    }
}

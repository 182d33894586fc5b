//! Reconcile: correlate what a run observed with people, classify the drift into
//! findings, and make complete observations the actual access the planner diffs against.
//!
//! **Correlation.** Each observed account is matched to people by the system's rules
//! (`correlate` in systems.toml, default link → hris_id → email → login), tried in order;
//! the first rule that names anyone decides. One candidate: linked. None: orphan. More
//! than one: ambiguous, flagged, never guessed. An account that carries an HR id is never
//! matched to anyone else by a weaker rule: if the link names someone else it is
//! ambiguous, and if the HR id is nobody's it is an orphan. Only a match by link or HR id
//! *proves* the account is the person's; matches by e-mail or login are reported as such,
//! and the observed access on such an account is not attached to the person (identity
//! before access: the engine would stop at an identity conflict before acting on it).
//!
//! **Classification** (`Class`): leavers with access first, then by severity. A grant or
//! removal with an operation already in flight (queued, running, retrying, verifying,
//! scheduled, awaiting approval, blocked) is work in progress, not drift. Nothing is
//! concluded from what a read did not cover: an incomplete read reports orphans and
//! attribute drift only once its account listing finished, and memberships only for the
//! groups it read in full. Accounts that appeared during the read are left for the next.
//!
//! **Reality drives the plan.** A complete read replaces the system's rows of `accounts`
//! and `observed_access` (marked `observed`), except what accessdesk changed since the
//! read started: a membership added or removed, or an account written, by an operation
//! that succeeded after the read began stays as the operation left it.

mod adopt;
mod classify;
mod correlate;
mod run;
#[cfg(test)]
mod tests;
mod world;

pub use classify::{SystemClassifier, SystemObservation, classify, has_sign_in_state};
pub use correlate::{Match, correlate};
pub use run::{
    Classified, Reconciled, SystemSummary, classify_run, classify_system, reconcile_run,
};
pub use world::World;

use crate::model::RiskLevel;
use crate::store::reconcile::{AccountRow, NewFinding};
use serde::Serialize;
use std::borrow::Cow;
use std::collections::HashMap;

/// Finding classes, in the order they are listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    LeaverWithAccess,
    Orphan,
    Excess,
    Unmanaged,
    Ambiguous,
    Missing,
    AttributeDrift,
}

impl Class {
    pub const ALL: [Class; 7] = [
        Class::LeaverWithAccess,
        Class::Orphan,
        Class::Excess,
        Class::Unmanaged,
        Class::Ambiguous,
        Class::Missing,
        Class::AttributeDrift,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Class::LeaverWithAccess => "leaver_with_access",
            Class::Orphan => "orphan",
            Class::Excess => "excess",
            Class::Unmanaged => "unmanaged",
            Class::Ambiguous => "ambiguous",
            Class::Missing => "missing",
            Class::AttributeDrift => "attribute_drift",
        }
    }

    pub fn parse(s: &str) -> Option<Class> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// Severity: critical, high, medium, low.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Critical,
    High,
    Medium,
    Low,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        ["critical", "high", "medium", "low"][self as usize]
    }
}

/// A finding's severity, from its class and the entitlement's risk. A leaver still
/// holding access is always critical; so is excess privileged access.
pub fn severity(class: Class, risk: Option<RiskLevel>, active: bool) -> Severity {
    match class {
        Class::LeaverWithAccess => Severity::Critical,
        Class::Excess => match risk {
            Some(RiskLevel::Privileged) => Severity::Critical,
            Some(RiskLevel::High) => Severity::High,
            Some(RiskLevel::Medium) => Severity::Medium,
            _ => Severity::Low,
        },
        Class::Orphan => match (active, risk) {
            (false, _) => Severity::Low,
            (true, Some(RiskLevel::Privileged | RiskLevel::High)) => Severity::High,
            (true, _) => Severity::Medium,
        },
        Class::Unmanaged | Class::Ambiguous => Severity::Medium,
        Class::Missing | Class::AttributeDrift => Severity::Low,
    }
}

fn finding(
    class: Class,
    sev: Severity,
    system: &str,
    person: Option<&str>,
    acct: Option<&AccountRow<'_>>,
    entitlement: Option<&str>,
    detail: String,
) -> NewFinding {
    let leaver = class == Class::LeaverWithAccess;
    NewFinding {
        class: class.as_str(),
        severity: sev.as_str(),
        // Leavers first; then by severity; then by class (the order of `Class`).
        rank: if leaver { 0 } else { 100 } + 10 * sev as i64 + class as i64,
        system: system.to_string(),
        person: person.map(str::to_string),
        account: acct.map(|a| a.login.to_string()),
        account_id: acct.map(|a| a.external_id.to_string()),
        entitlement: entitlement.map(str::to_string),
        detail,
    }
}

/// Maps over many keys (people, logins, entitlements): a fast seeded hash.
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// `s` lower-cased, borrowed when it already is.
fn lower(s: &str) -> Cow<'_, str> {
    if s.is_ascii() {
        if s.bytes().any(|b| b.is_ascii_uppercase()) {
            Cow::Owned(s.to_ascii_lowercase())
        } else {
            Cow::Borrowed(s)
        }
    } else {
        Cow::Owned(s.to_lowercase())
    }
}

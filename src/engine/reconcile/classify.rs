//! Classification: one system's accounts judged as they stream past ([`SystemClassifier`])
//! into findings (leavers, orphans, excess, unmanaged, ambiguous, missing, attribute drift).

use super::correlate::{SystemMaps, correlate_at};
use super::world::{HR_FIELDS, World};
use super::{Class, Match, Severity, finding, severity};
use crate::config::SystemEntry;
use crate::config::systems::OnLeave;
use crate::model::RiskLevel;
use crate::store::reconcile::{AccountRow, Checkpoint, NewFinding, ObservedAccount};
use std::collections::HashMap;

/// One system's observation held in memory (tests and small reads; runs stream theirs
/// from the store through [`SystemClassifier`]).
#[derive(Debug, Clone)]
pub struct SystemObservation {
    pub read: Checkpoint,
    pub accounts: Vec<ObservedAccount>,
    /// (entitlement, vendor id, catalogued), in the order the read went through them.
    pub groups: Vec<(String, String, bool)>,
    /// (entitlement, account external id).
    pub members: Vec<(String, String)>,
}

pub(super) fn complete(read: &Checkpoint) -> bool {
    read.status == "complete"
}

/// How many of `groups` (in read order) had their members read in full.
fn groups_read(read: &Checkpoint, groups: usize) -> usize {
    if complete(read) {
        groups
    } else if read.phase == "members" {
        (read.ent_index.max(0) as usize).min(groups)
    } else {
        0
    }
}

/// The attributes the target reported that differ from what accessdesk would write for
/// the person now (as [`crate::adapters::AccountSpec::synced_attributes`] has them). HR's
/// own fields are compared directly; names are shaped only when the target reported one.
pub(super) fn attribute_drift(
    w: &World,
    pi: usize,
    entry: &SystemEntry,
    a: &AccountRow<'_>,
) -> Vec<String> {
    let mut differs = Vec::new();
    let mut shaped: Option<(String, String, String)> = None;
    a.attributes.for_each(|k, have| {
        if k == "manager" {
            return;
        }
        let direct = HR_FIELDS
            .iter()
            .position(|f| *f == k)
            .map(|f| w.hot.field(pi, f));
        let should: &str = match (direct, k) {
            (Some(v), _) => v,
            (None, "givenName" | "familyName" | "displayName") => {
                let (given, family, display) = shaped.get_or_insert_with(|| {
                    crate::model::names::shape_names(&w.hot.names(pi), entry.system.kind)
                });
                match k {
                    "givenName" => given,
                    "familyName" => family,
                    _ => display,
                }
            }
            // Nothing accessdesk writes (GitHub's membership `state` and `role`, say):
            // the vendor's own, never drift.
            (None, _) => return,
        };
        // Compare with what the adapter would have written: IAM drops characters a tag
        // value cannot hold ("R&D" is stored as "RD").
        let same = match entry.system.kind {
            crate::model::SystemKind::AwsIam => {
                have.trim() == crate::adapters::aws_iam::tag_value(should)
            }
            _ => have == should || have.trim() == should.trim(),
        };
        if !same {
            differs.push(format!("{k}: target {have:?}, HR {should:?}"));
        }
    });
    differs
}

/// Classifies one system's accounts as they stream past, then the people it never saw.
/// Pure: the same inputs give the same findings.
pub struct SystemClassifier<'a> {
    w: &'a World,
    maps: SystemMaps<'a>,
    entry: &'a SystemEntry,
    system: &'a str,
    groups: &'a [(String, String, bool)],
    /// Per group: its members were read in full.
    read: Vec<bool>,
    risk: Vec<Option<RiskLevel>>,
    /// Per interned entitlement: `None` when it belongs to another system, else the
    /// index of the group the read saw for it (if any).
    local: Vec<Option<Option<u32>>>,
    accounts_read: bool,
    /// Per person: an account here was matched to them (by any rule).
    with_account: Vec<bool>,
    /// Per person (and one past the last): where their intended groups start in
    /// `intended`, and how many entitlements policy grants them here (seen or not).
    intended_at: Vec<(u32, u32)>,
    /// The groups the read saw that policy grants, person after person (sorted each).
    intended: Vec<u32>,
    out: Vec<NewFinding>,
}

impl<'a> SystemClassifier<'a> {
    pub fn new(
        w: &'a World,
        entry: &'a SystemEntry,
        read: &Checkpoint,
        groups: &'a [(String, String, bool)],
    ) -> Self {
        let system = entry.system.name.as_str();
        let n_read = groups_read(read, groups.len());
        let by_name: HashMap<&str, u32> = groups
            .iter()
            .enumerate()
            .map(|(i, g)| (g.0.as_str(), i as u32))
            .collect();
        let prefix = format!("{system}:");
        SystemClassifier {
            w,
            maps: SystemMaps::of(w, system),
            entry,
            system,
            groups,
            read: (0..groups.len()).map(|i| i < n_read).collect(),
            risk: groups
                .iter()
                .map(|g| {
                    let r: crate::model::EntitlementRef = g.0.parse().ok()?;
                    entry.entitlements.get(&(r.kind, r.name)).map(|e| e.risk)
                })
                .collect(),
            local: w
                .ents
                .iter()
                .map(|e| {
                    e.starts_with(&prefix)
                        .then(|| by_name.get(e.as_str()).copied())
                })
                .collect(),
            // Orphans, attributes and missing accounts need the whole account listing.
            accounts_read: complete(read) || read.phase != "accounts",
            with_account: vec![false; w.len()],
            intended_at: Vec::new(),
            intended: Vec::new(),
            out: Vec::new(),
        }
        .with_intended()
    }

    /// Index what policy grants each person in this system (one pass over the grants).
    fn with_intended(mut self) -> Self {
        self.intended_at.reserve(self.w.len() + 1);
        for ids in (0..self.w.len()).map(|i| self.w.intended(i)) {
            let start = self.intended.len();
            let mut here = 0u32;
            for &e in ids {
                if let Some(g) = self.local[e as usize] {
                    here += 1;
                    self.intended.extend(g);
                }
            }
            self.intended[start..].sort_unstable();
            self.intended_at.push((start as u32, here));
        }
        self.intended_at.push((self.intended.len() as u32, 0));
        self
    }

    /// One account and the groups (indices into the read's groups) it holds.
    pub fn account(&mut self, a: &AccountRow<'_>, held: &[u32]) {
        if !self.accounts_read || a.late {
            // Accounts that appeared during the read are left for the next one.
            return;
        }
        let (w, system, groups) = (self.w, self.system, self.groups);
        let top_risk = held.iter().filter_map(|&g| self.risk[g as usize]).max();
        let (matched, at) = correlate_at(&self.maps, &self.entry.correlate, a);
        let person = match matched {
            // An orphan that can neither sign in nor holds anything (deactivated, say, by
            // an enforced finding) gives nobody access: not drift.
            Match::Orphan { .. }
                if !(if has_sign_in_state(self.entry.system.kind) {
                    a.active
                } else {
                    !held.is_empty()
                }) =>
            {
                return;
            }
            Match::Orphan { why } => {
                self.out.push(finding(
                    Class::Orphan,
                    severity(Class::Orphan, top_risk, a.active),
                    system,
                    None,
                    Some(a),
                    None,
                    format!(
                        "{} account {} ({why}); {} entitlements",
                        if a.active { "active" } else { "inactive" },
                        a.login,
                        held.len()
                    ),
                ));
                return;
            }
            Match::Ambiguous { why, .. } => {
                self.out.push(finding(
                    Class::Ambiguous,
                    severity(Class::Ambiguous, None, a.active),
                    system,
                    None,
                    Some(a),
                    None,
                    format!(
                        "account {}: {why}; link it with `accessdesk account link`",
                        a.login
                    ),
                ));
                return;
            }
            Match::Linked { person, by } => (person, by),
        };
        let (person, by) = person;
        let Some(pi) = at.or_else(|| w.index_of(person)) else {
            return;
        };
        let pid = w.hot.id(pi);
        self.with_account[pi] = true;
        let by_note = if by.proves() {
            String::new()
        } else {
            format!(" (matched by {} only, not proven)", by.as_str())
        };
        if w.hot.leaver[pi] {
            let keeps = held.iter().filter(|&&g| self.read[g as usize]).count();
            // Where accounts have no sign-in state (the identity store), what a leaver
            // keeps is their memberships.
            let stateless = !has_sign_in_state(self.entry.system.kind);
            let groups_matter = stateless || self.entry.on_leave != OnLeave::Deactivate;
            let active = a.active && !stateless;
            if active || (groups_matter && keeps > 0) {
                let what = if active {
                    format!("account {} still active", a.login)
                } else {
                    format!(
                        "account {} inactive but holds {keeps} entitlements",
                        a.login
                    )
                };
                self.out.push(finding(
                    Class::LeaverWithAccess,
                    Severity::Critical,
                    system,
                    Some(pid),
                    Some(a),
                    None,
                    format!(
                        "{} left ({}); {what}{by_note}",
                        w.hot.display(pi),
                        w.hot.left_on(pi)
                    ),
                ));
            }
            return;
        }
        // An account disabled in the system while policy still grants the person access
        // there (switched off by hand): they cannot use what they hold.
        let granted_here = self.intended_at[pi].1;
        if !a.active
            && granted_here > 0
            && inactive_means_disabled(self.entry.system.kind)
            && !w.moving(pid, system, None)
        {
            self.out.push(finding(
                Class::Missing,
                Severity::Low,
                system,
                Some(pid),
                Some(a),
                None,
                format!(
                    "{} should have an active account in {system} (policy grants {granted_here} entitlements there); {} is inactive{by_note}",
                    w.hot.display(pi),
                    a.login
                ),
            ));
        }
        // The groups policy grants this person here that the read saw (sorted).
        let (from, to) = (
            self.intended_at[pi].0 as usize,
            self.intended_at[pi + 1].0 as usize,
        );
        for &g in held {
            if !self.read[g as usize] || self.intended[from..to].contains(&g) {
                continue;
            }
            let (ent, _, catalogued) = &groups[g as usize];
            if *catalogued && w.moving(pid, system, Some(ent)) {
                continue;
            }
            self.out.push(if *catalogued {
                finding(
                    Class::Excess,
                    severity(Class::Excess, self.risk[g as usize], a.active),
                    system,
                    Some(pid),
                    Some(a),
                    Some(ent),
                    format!("{} holds {ent}, which no policy grants{by_note}", w.hot.display(pi)),
                )
            } else {
                finding(
                    Class::Unmanaged,
                    Severity::Medium,
                    system,
                    Some(pid),
                    Some(a),
                    Some(ent),
                    format!(
                        "{} holds {ent}, which the catalogue does not list (reported, never changed)",
                        w.hot.display(pi)
                    ),
                )
            });
        }
        // Groups are in entitlement order, so the findings are too.
        for i in from..to {
            let g = self.intended[i];
            let ent = groups[g as usize].0.as_str();
            if !self.read[g as usize] || held.contains(&g) || w.moving(pid, system, Some(ent)) {
                continue;
            }
            self.out.push(finding(
                Class::Missing,
                Severity::Low,
                system,
                Some(pid),
                Some(a),
                Some(ent),
                format!(
                    "{} should hold {ent} (policy), the target does not show it{by_note}",
                    w.hot.display(pi)
                ),
            ));
        }
        // Attributes: only those the target reported, against what HR says.
        if a.active {
            let differs = attribute_drift(w, pi, self.entry, a);
            if !differs.is_empty() {
                self.out.push(finding(
                    Class::AttributeDrift,
                    Severity::Low,
                    system,
                    Some(pid),
                    Some(a),
                    None,
                    format!("{}: {}{by_note}", w.hot.display(pi), differs.join("; ")),
                ));
            }
        }
    }

    /// The findings, after intended access for people with no account here at all.
    pub fn finish(mut self) -> Vec<NewFinding> {
        if !self.accounts_read {
            return self.out;
        }
        let (w, system) = (self.w, self.system);
        for pi in 0..w.len() {
            let n = self.intended_at[pi].1;
            if n == 0 || self.with_account[pi] || w.hot.leaver[pi] {
                continue;
            }
            let pid = w.hot.id(pi);
            if w.moving(pid, system, None) {
                continue;
            }
            self.out.push(finding(
                Class::Missing,
                Severity::Low,
                system,
                Some(pid),
                None,
                None,
                format!(
                    "{} has no account in {system}; policy grants {n} entitlements there",
                    w.hot.display(pi)
                ),
            ));
        }
        self.out
    }
}

/// Classify one system's observation held in memory.
pub fn classify(w: &World, entry: &SystemEntry, obs: &SystemObservation) -> Vec<NewFinding> {
    let index: HashMap<&str, u32> = obs
        .groups
        .iter()
        .enumerate()
        .map(|(i, g)| (g.0.as_str(), i as u32))
        .collect();
    let mut held: HashMap<&str, Vec<u32>> = HashMap::new();
    for (ent, acct) in &obs.members {
        if let Some(&g) = index.get(ent.as_str()) {
            held.entry(acct.as_str()).or_default().push(g);
        }
    }
    let mut c = SystemClassifier::new(w, entry, &obs.read, &obs.groups);
    for a in &obs.accounts {
        let h = held
            .get(a.external_id.as_str())
            .map_or(&[][..], Vec::as_slice);
        c.account(&a.as_row(), h);
    }
    c.finish()
}

/// Whether accounts of this kind can be disabled (sign-in stopped) while they exist. The
/// AWS identity store has no such state: deactivating there removes the memberships.
pub fn has_sign_in_state(kind: crate::model::SystemKind) -> bool {
    kind != crate::model::SystemKind::AwsIdentityStore
}

/// Whether an inactive account here is one whose sign-in was switched off. Not on
/// GitHub, where an inactive account is an invitation not yet accepted (its own state,
/// not drift), nor in the identity store, which has no such state.
pub fn inactive_means_disabled(kind: crate::model::SystemKind) -> bool {
    !matches!(
        kind,
        crate::model::SystemKind::AwsIdentityStore | crate::model::SystemKind::Github
    )
}

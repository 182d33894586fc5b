//! Correlation: match an observed account to people by the system's rules, the
//! target's own HR id first; several candidates are ambiguous, never guessed.

use super::World;
use super::{FastMap, lower};
use crate::config::systems::Correlate;
use crate::store::reconcile::AccountRow;

/// How an account was matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Match<'w> {
    Linked {
        person: &'w str,
        by: Correlate,
    },
    Orphan {
        why: String,
    },
    Ambiguous {
        candidates: Vec<String>,
        why: String,
    },
}

/// Match one account to people by the system's rules.
pub fn correlate<'w>(
    w: &'w World,
    system: &str,
    rules: &[Correlate],
    a: &AccountRow<'_>,
) -> Match<'w> {
    correlate_at(&SystemMaps::of(w, system), rules, a).0
}

/// One system's share of the world's login maps, looked up once per system instead of
/// once per account.
pub(super) struct SystemMaps<'w> {
    w: &'w World,
    links: Option<&'w FastMap<String, String>>,
    linked_login: Option<&'w FastMap<String, String>>,
    logins: Option<&'w FastMap<String, String>>,
}

impl<'w> SystemMaps<'w> {
    pub(super) fn of(w: &'w World, system: &str) -> Self {
        SystemMaps {
            w,
            links: w.links.get(system),
            linked_login: w.linked_login.get(system),
            logins: w.logins.get(system),
        }
    }
}

/// [`correlate`], with the matched person's index in the world when the match found
/// them by HR id (saving a second lookup for the commonest match).
pub(super) fn correlate_at<'w>(
    maps: &SystemMaps<'w>,
    rules: &[Correlate],
    a: &AccountRow<'_>,
) -> (Match<'w>, Option<usize>) {
    let w = maps.w;
    let login = lower(a.login);
    let linked: Option<&'w str> = maps
        .links
        .and_then(|m| m.get(login.as_ref()))
        .map(String::as_str);
    // The target's own claim comes first: an account carrying an HR id is that person's
    // or nobody's, whatever a weaker rule would say.
    if let Some(h) = a.hris_id.filter(|h| !h.is_empty()) {
        if let Some(l) = linked
            && l != h
            && rules.contains(&Correlate::Link)
        {
            let why = format!("linked to {l}, but the account carries HR id {h}");
            let candidates = vec![l.to_string(), h.to_string()];
            return (Match::Ambiguous { candidates, why }, None);
        }
        // An account carrying the HR id of someone accessdesk already links to another
        // account here: two accounts claim one person. Nobody's until an admin says.
        if let Some(other) = maps.linked_login.and_then(|m| m.get(h))
            && linked.is_none()
            && rules.contains(&Correlate::Link)
        {
            let why = format!(
                "carries HR id {h}, but {h}'s account here is {other}: two accounts claim one person"
            );
            return (
                Match::Ambiguous {
                    candidates: vec![h.to_string()],
                    why,
                },
                None,
            );
        }
        if rules.contains(&Correlate::HrisId) {
            return match w.index_of(h) {
                Some(i) => (
                    Match::Linked {
                        person: w.hot.id(i),
                        by: if linked.is_some() {
                            Correlate::Link
                        } else {
                            Correlate::HrisId
                        },
                    },
                    Some(i),
                ),
                None => (
                    Match::Orphan {
                        why: format!("carries HR id {h}, which is nobody in HR"),
                    },
                    None,
                ),
            };
        }
    }
    for rule in rules {
        let candidates: Vec<&'w str> = match rule {
            Correlate::Link => linked.into_iter().collect(),
            Correlate::HrisId => Vec::new(), // handled above
            Correlate::Email => a
                .email
                .or_else(|| a.login.contains('@').then_some(a.login))
                .map(|e| w.with_email(e).into_iter().map(|i| w.hot.id(i)).collect())
                .unwrap_or_default(),
            Correlate::Login => maps
                .logins
                .and_then(|m| m.get(login.as_ref()))
                .map(String::as_str)
                .into_iter()
                .collect(),
        };
        match candidates.len() {
            0 => continue,
            1 => {
                let m = Match::Linked {
                    person: candidates[0],
                    by: *rule,
                };
                return (m, None);
            }
            _ => {
                let m = Match::Ambiguous {
                    why: format!(
                        "{} people match by {}: {}",
                        candidates.len(),
                        rule.as_str(),
                        candidates.join(", ")
                    ),
                    candidates: candidates.into_iter().map(str::to_string).collect(),
                };
                return (m, None);
            }
        }
    }
    let why = "no person matches it".into();
    (Match::Orphan { why }, None)
}

//! Credential hygiene and the API-version watch, per system, as `system list` and the
//! console's Systems view show them: when the credential was set and last worked, when it
//! expires where the vendor says, whether rotation is due (`rotate_after`), the scopes
//! granted against those the adapter needs, and the deprecation signals the vendor sent.
//!
//! Everything here is read from the store (what adapters noticed, persisted by the engine
//! in `system_signals`; the keychain index) and the catalogue: no keychain or vendor call.

use crate::Result;
use crate::adapters::kit::watch::{Deprecation, ScopeCheck, check_scopes};
use crate::config::Catalog;
use crate::config::systems::CredentialRef;
use crate::store::Store;
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

/// An expiry this close is a warning.
pub const EXPIRY_WARNING_DAYS: i64 = 14;

/// One system's credential and API health.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hygiene {
    pub system: String,
    pub kind: String,
    pub api_version: String,
    /// `keyring:NAME` or `env:VAR`; never the value.
    pub credential: Option<String>,
    /// When the keychain entry was set with `accessdesk secret set` (keyring only).
    pub set_at: Option<String>,
    /// The last answer that proved the credential works (a 2xx from the vendor, a
    /// successful `system test`, or an operation that succeeded).
    pub last_used_ok_at: Option<String>,
    pub expires_at: Option<String>,
    pub expiry_source: Option<String>,
    /// `ok`, `soon` (within [`EXPIRY_WARNING_DAYS`]), `expired`, or `unknown`.
    pub expiry: &'static str,
    pub rotate_after_days: Option<u32>,
    pub rotation_due_at: Option<String>,
    /// `ok`, `due`, `unknown` (no set date: an environment variable, or never set through
    /// accessdesk), or `off` (no `rotate_after`).
    pub rotation: &'static str,
    /// How long the OAuth access tokens it yields live, in seconds.
    pub token_lifetime_secs: Option<u64>,
    pub scopes_granted: Option<Vec<String>>,
    pub scopes_needed: Vec<String>,
    /// None until the vendor has said which scopes the credential has.
    pub scopes: Option<ScopeCheck>,
    pub deprecations: Vec<Deprecation>,
}

impl Hygiene {
    /// Worst first: `error` (expired, missing scopes), `warning` (rotation due, expiring
    /// soon, more scopes than needed, a deprecation signal), else `ok`.
    pub fn status(&self) -> &'static str {
        let scope = self.scopes.as_ref().map(|s| s.status).unwrap_or("ok");
        if self.expiry == "expired" || scope == "error" {
            "error"
        } else if self.rotation == "due"
            || self.expiry == "soon"
            || scope == "warning"
            || !self.deprecations.is_empty()
        {
            "warning"
        } else {
            "ok"
        }
    }

    /// The hygiene findings worth a line of their own (nothing when all is well or unknown).
    pub fn lines(&self) -> Vec<String> {
        let h = self;
        let mut out = Vec::new();
        match (h.expiry, &h.expires_at) {
            ("expired", Some(t)) => out.push(format!("credential EXPIRED at {t}")),
            ("soon", Some(t)) => out.push(format!("credential expires {t}")),
            _ => {}
        }
        if let ("due", Some(t)) = (h.rotation, &h.rotation_due_at) {
            out.push(format!(
                "rotation due since {t} (rotate_after = {} days)",
                h.rotate_after_days.unwrap_or_default()
            ));
        }
        if let Some(c) = &h.scopes {
            if !c.missing.is_empty() {
                out.push(format!("scopes MISSING: {}", c.missing.join(" ")));
            }
            if !c.extra.is_empty() {
                out.push(format!("more scopes than needed: {}", c.extra.join(" ")));
            }
        }
        for d in &h.deprecations {
            out.push(format!(
                "{} {}{} on {} (first seen {})",
                d.signal,
                d.value,
                d.date
                    .as_ref()
                    .map(|x| format!(" [{x}]"))
                    .unwrap_or_default(),
                d.request,
                d.first_seen
            ));
        }
        out
    }
}

fn parse(t: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(t)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Every configured system's hygiene, in name order.
pub fn hygiene(store: &Store, catalog: &Catalog, now: DateTime<Utc>) -> Result<Vec<Hygiene>> {
    let signals = store.all_signals()?;
    let index = store.secrets_index()?;
    let mut out = Vec::new();
    for (name, entry) in &catalog.systems {
        let sig = signals.get(name).cloned().unwrap_or_default();
        let key = match &entry.credential {
            Some(CredentialRef::Keyring(k)) => index.iter().find(|r| &r.name == k),
            _ => None,
        };
        let set_at = key.map(|r| r.set_at.clone());
        let last_used_ok_at = [
            sig.last_success_at.clone(),
            key.and_then(|r| r.last_auth_ok_at.clone()),
        ]
        .into_iter()
        .flatten()
        .max_by_key(|t| parse(t));
        let expiry = match sig.credential_expires_at.as_deref().and_then(parse) {
            None => "unknown",
            Some(t) if t <= now => "expired",
            Some(t) if t - now <= Duration::days(EXPIRY_WARNING_DAYS) => "soon",
            Some(_) => "ok",
        };
        let due = match (entry.rotate_after_days, set_at.as_deref().and_then(parse)) {
            (Some(d), Some(set)) => Some(set + Duration::days(i64::from(d))),
            _ => None,
        };
        let rotation = match (entry.rotate_after_days, due) {
            (None, _) => "off",
            (Some(_), None) => "unknown",
            (Some(_), Some(d)) if d <= now => "due",
            (Some(_), Some(_)) => "ok",
        };
        let scopes = sig
            .scopes_granted
            .as_ref()
            .filter(|_| !sig.scopes_needed.is_empty())
            .map(|g| check_scopes(g, &sig.scopes_needed));
        out.push(Hygiene {
            system: name.clone(),
            kind: entry.system.kind.to_string(),
            api_version: entry.system.api_version.clone(),
            credential: entry.credential.as_ref().map(|c| c.to_string()),
            set_at,
            last_used_ok_at,
            expires_at: sig.credential_expires_at.clone(),
            expiry_source: sig.credential_expiry_source.clone(),
            expiry,
            rotate_after_days: entry.rotate_after_days,
            rotation_due_at: due.map(|d| d.to_rfc3339()),
            rotation,
            token_lifetime_secs: sig.token_lifetime_secs,
            scopes_granted: sig.scopes_granted.clone(),
            scopes_needed: sig.scopes_needed.clone(),
            scopes,
            deprecations: sig.deprecations.clone(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::kit::watch::Signals;
    use crate::config::SystemsConfig;
    use std::path::Path;

    #[test]
    fn expiry_rotation_scopes_and_deprecations_are_judged() {
        let cfg = SystemsConfig::parse(
            Path::new("systems.toml"),
            "[systems.gh]\nkind = \"scim\"\ncredential = \"keyring:gh-token\"\nrotate_after = \"30d\"\n\
             [systems.quiet]\nkind = \"scim\"\ncredential = \"env:QUIET\"\n",
        )
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("s.db")).unwrap();
        store
            .write(|tx| tx.record_secret_set("gh-token", "keyutils", "test"))
            .unwrap();
        let now = Utc::now();
        let sig = Signals {
            last_success_at: Some(now.to_rfc3339()),
            credential_expires_at: Some((now + Duration::days(3)).to_rfc3339()),
            credential_expiry_source: Some("github-authentication-token-expiration".into()),
            scopes_granted: Some(vec!["admin:org".into(), "repo".into()]),
            scopes_needed: vec!["read:org".into()],
            token_lifetime_secs: None,
            deprecations: vec![],
        };
        store.write(|tx| tx.save_signals("gh", &sig)).unwrap();
        let h = hygiene(&store, &cfg.catalog, now).unwrap();
        let gh = &h[0];
        assert_eq!(gh.system, "gh");
        assert_eq!(gh.expiry, "soon");
        assert_eq!(gh.rotation, "ok");
        assert_eq!(gh.scopes.as_ref().unwrap().extra, vec!["repo".to_string()]);
        assert_eq!(gh.status(), "warning");
        assert!(gh.last_used_ok_at.is_some());
        // Thirty-one days on: rotation is due and the token has expired.
        let later = hygiene(&store, &cfg.catalog, now + Duration::days(31)).unwrap();
        assert_eq!((later[0].rotation, later[0].expiry), ("due", "expired"));
        assert_eq!(later[0].status(), "error");
        // A system nobody has heard from: nothing known, nothing claimed.
        let quiet = &h[1];
        assert_eq!(
            (quiet.expiry, quiet.rotation, quiet.scopes.is_none()),
            ("unknown", "off", true)
        );
        assert_eq!(quiet.status(), "ok");
    }
}

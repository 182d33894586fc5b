//! `sources.toml` in the home: one `[sources.NAME]` table per HR source, with its kind,
//! its credential (`keyring:NAME` or `env:VAR`; for a webhook source, its signing secret),
//! and its mapping ([`super::mapping`]). Every problem is reported with file:line:column
//! and the key, all at once, as systems.toml's are.
//!
//! ```toml
//! [sources.hr]
//! kind = "webhook"                     # Standard Webhooks, pushed to POST /webhooks/hr
//! credential = "keyring:hr-webhook-secret"
//!
//! [sources.bamboo]
//! kind = "bamboohr"
//! base_url = "https://api.bamboohr.com/api/gateway.php/northwind"
//! credential = "keyring:bamboohr-api-key"
//! poll_every = "5m"
//! [sources.bamboo.mapping]
//! first_name = "record.firstName"
//!
//! [sources.workday]
//! kind = "workday"
//! base_url = "https://wd2-impl-services1.workday.com/ccx/api/v1/northwind"  # REST API endpoint
//! credential = "keyring:workday-api-client"   # JSON: client_id, client_secret, refresh_token
//! report = "ISU_Identity/Identity_Feed"       # optional: a RaaS report instead of /workers
//! ```

use super::mapping::Mapping;
use super::signatures::Scheme;
use crate::config::systems::CredentialRef;
use crate::config::toml_errors::{parse_toml, problem_at};
use crate::error::InputProblem;
use crate::{Error, Result};
use serde::Deserialize;
use serde_spanned::Spanned;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// What kind of source a table is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    /// Standard Webhooks deliveries of `person.upserted` / `person.terminated`.
    Webhook,
    /// BambooHR: polled (directory, changed-since) and its webhooks.
    BambooHr,
    /// Workday: polled (Workers REST or a RaaS report).
    Workday,
    /// Okta event hooks (user lifecycle events: a targeted observe).
    OktaEvents,
    /// GitHub organisation webhooks (membership changes: a targeted observe).
    GitHubEvents,
    /// Slack Events API (channel membership changes: a targeted observe).
    SlackEvents,
}

pub const KINDS: [(&str, SourceKind); 6] = [
    ("webhook", SourceKind::Webhook),
    ("bamboohr", SourceKind::BambooHr),
    ("workday", SourceKind::Workday),
    ("okta_events", SourceKind::OktaEvents),
    ("github_events", SourceKind::GitHubEvents),
    ("slack_events", SourceKind::SlackEvents),
];

impl SourceKind {
    pub fn as_str(self) -> &'static str {
        KINDS
            .iter()
            .find(|(_, k)| *k == self)
            .map_or("webhook", |(n, _)| n)
    }

    /// How its pushed deliveries are signed (None: it is only polled).
    pub fn scheme(self) -> Option<Scheme> {
        match self {
            SourceKind::Webhook => Some(Scheme::StandardWebhooks),
            SourceKind::BambooHr => Some(Scheme::BambooHr),
            SourceKind::OktaEvents => Some(Scheme::OktaEventHook),
            SourceKind::GitHubEvents => Some(Scheme::GitHub),
            SourceKind::SlackEvents => Some(Scheme::Slack),
            SourceKind::Workday => None,
        }
    }

    /// Whether it is polled (and so needs `base_url`).
    pub fn polled(self) -> bool {
        matches!(self, SourceKind::BambooHr | SourceKind::Workday)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    sources: BTreeMap<Spanned<String>, RawSource>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSource {
    kind: Spanned<String>,
    credential: Spanned<String>,
    #[serde(default)]
    base_url: Option<Spanned<String>>,
    #[serde(default)]
    poll_every: Option<Spanned<String>>,
    #[serde(default)]
    webhook_secret: Option<Spanned<String>>,
    #[serde(default)]
    api_token: Option<Spanned<String>>,
    #[serde(default)]
    system: Option<Spanned<String>>,
    #[serde(default)]
    report: Option<Spanned<String>>,
    #[serde(default)]
    token_url: Option<Spanned<String>>,
    #[serde(default)]
    mapping: BTreeMap<String, Spanned<String>>,
}

/// One configured source.
#[derive(Debug)]
pub struct Source {
    pub name: String,
    pub kind: SourceKind,
    pub credential: CredentialRef,
    pub base_url: Option<String>,
    pub poll_every: Option<Duration>,
    /// A polled source's webhook signing secret (`bamboohr`: the webhook's private key),
    /// when it also pushes.
    pub webhook_secret: Option<CredentialRef>,
    /// The bearer token callers of the API proxy present for this source; without one,
    /// the proxy refuses the source.
    pub api_token: Option<CredentialRef>,
    /// For `okta_events`, `github_events` and `slack_events`: the system (systems.toml)
    /// whose changes the events report.
    pub system: Option<String>,
    /// For `workday`: a RaaS report to read (`OWNER/REPORT_NAME`) instead of `/workers`.
    pub report: Option<String>,
    /// For `workday`: the token endpoint, when it is not the one derived from `base_url`.
    pub token_url: Option<String>,
    pub mapping: Mapping,
    /// The line of its table in sources.toml.
    pub line: usize,
}

impl Source {
    /// The secret its webhook deliveries are verified with: the credential, except for a
    /// polled source, whose credential is for its API and whose signing secret is
    /// `webhook_secret`.
    pub fn signing_secret(&self) -> Option<&CredentialRef> {
        if self.kind.polled() {
            self.webhook_secret.as_ref()
        } else {
            Some(&self.credential)
        }
    }
}

/// The sources of a home.
#[derive(Debug, Default)]
pub struct SourcesConfig {
    pub sources: BTreeMap<String, Source>,
}

impl SourcesConfig {
    /// Read `path`; a home without sources.toml has no sources.
    pub fn load(path: &Path) -> Result<SourcesConfig> {
        match std::fs::read_to_string(path) {
            Ok(text) => SourcesConfig::parse(path, &text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(SourcesConfig::default()),
            Err(e) => Err(Error::io(format!("reading {}", path.display()), e)),
        }
    }

    pub fn parse(path: &Path, text: &str) -> Result<SourcesConfig> {
        let raw: RawFile = parse_toml(path, text, "see the sources.toml section of the README")
            .map_err(|p| Error::input(vec![p]))?;
        let mut problems: Vec<InputProblem> = Vec::new();
        let mut out = SourcesConfig::default();
        for (name, rs) in &raw.sources {
            let key = format!("sources.{}", name.get_ref());
            let at = |span: std::ops::Range<usize>, field: &str, msg: String, hint: &str| {
                problem_at(path, text, Some(span), format!("{key}{field}"), msg, hint)
            };
            let name_ok = !name.get_ref().is_empty()
                && name
                    .get_ref()
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if !name_ok {
                problems.push(at(
                    name.span(),
                    "",
                    format!("{:?} is not a source name", name.get_ref()),
                    "letters, digits, - and _ (it is part of the webhook URL)",
                ));
            }
            let kind = KINDS
                .iter()
                .find(|(n, _)| *n == rs.kind.get_ref())
                .map(|(_, k)| *k);
            if kind.is_none() {
                let known: Vec<&str> = KINDS.iter().map(|(n, _)| *n).collect();
                problems.push(at(
                    rs.kind.span(),
                    ".kind",
                    format!("{:?} is not a kind of source", rs.kind.get_ref()),
                    &format!("one of {}", known.join(", ")),
                ));
            }
            let mut cred =
                |v: &Spanned<String>, field: &str| match CredentialRef::parse(v.get_ref()) {
                    Ok(c) => Some(c),
                    Err(msg) => {
                        problems.push(at(
                            v.span(),
                            field,
                            msg,
                            &format!(
                                "{} = \"keyring:NAME\" (see `accessdesk secret set`)",
                                &field[1..]
                            ),
                        ));
                        None
                    }
                };
            let credential = cred(&rs.credential, ".credential");
            let webhook_secret = rs
                .webhook_secret
                .as_ref()
                .and_then(|v| cred(v, ".webhook_secret"));
            let api_token = rs.api_token.as_ref().and_then(|v| cred(v, ".api_token"));
            let observes = matches!(
                kind,
                Some(SourceKind::OktaEvents | SourceKind::GitHubEvents | SourceKind::SlackEvents)
            );
            if observes && rs.system.is_none() {
                problems.push(at(
                    rs.kind.span(),
                    ".system",
                    format!(
                        "a {} source reports changes in a system and needs system",
                        rs.kind.get_ref()
                    ),
                    "system = \"okta\" (a system of systems.toml)",
                ));
            }
            if let Some(w) = &rs.webhook_secret
                && kind.is_some_and(|k| !k.polled())
            {
                problems.push(at(
                    w.span(),
                    ".webhook_secret",
                    format!(
                        "a {} source signs with its credential; webhook_secret is for polled sources",
                        rs.kind.get_ref()
                    ),
                    "remove webhook_secret",
                ));
            }
            for (v, field, example) in [
                (
                    &rs.report,
                    ".report",
                    "report = \"ISU_Identity/Identity_Feed\"",
                ),
                (
                    &rs.token_url,
                    ".token_url",
                    "token_url = \"https://HOST/ccx/oauth2/TENANT/token\"",
                ),
            ] {
                if let Some(v) = v
                    && kind.is_some_and(|k| k != SourceKind::Workday)
                {
                    problems.push(at(
                        v.span(),
                        field,
                        format!(
                            "{} is for workday sources, not {}",
                            &field[1..],
                            rs.kind.get_ref()
                        ),
                        &format!("remove it, or use it on a workday source ({example})"),
                    ));
                }
            }
            if let Some(r) = &rs.report {
                let ok = r
                    .get_ref()
                    .split_once('/')
                    .is_some_and(|(o, n)| !o.is_empty() && !n.is_empty() && !n.contains('/'));
                if !ok {
                    problems.push(at(
                        r.span(),
                        ".report",
                        format!("{:?} is not OWNER/REPORT_NAME", r.get_ref()),
                        "as in the report's RaaS URL: report = \"ISU_Identity/Identity_Feed\"",
                    ));
                }
            }
            let poll_every = match &rs.poll_every {
                None => None,
                Some(v) => match crate::text::parse_duration(v.get_ref()) {
                    Ok(d) => Some(d),
                    Err(msg) => {
                        problems.push(at(v.span(), ".poll_every", msg, "poll_every = \"5m\""));
                        None
                    }
                },
            };
            if let Some(k) = kind
                && k.polled()
                && rs.base_url.is_none()
            {
                problems.push(at(
                    rs.kind.span(),
                    ".base_url",
                    format!("a {} source is polled and needs base_url", k.as_str()),
                    "base_url = \"https://...\"",
                ));
            }
            let exprs: BTreeMap<String, String> = rs
                .mapping
                .iter()
                .map(|(k, v)| (k.clone(), v.get_ref().clone()))
                .collect();
            let mapping = match Mapping::compile(name.get_ref(), &exprs) {
                Ok(m) => Some(m),
                Err(errs) => {
                    for e in errs {
                        let span = rs.mapping.get(&e.field).map_or(name.span(), |v| v.span());
                        problems.push(at(
                            span,
                            &format!(".mapping.{}", e.field),
                            e.message,
                            "a CEL expression over `record`",
                        ));
                    }
                    None
                }
            };
            if let (Some(kind), Some(credential), Some(mapping)) = (kind, credential, mapping) {
                out.sources.insert(
                    name.get_ref().clone(),
                    Source {
                        name: name.get_ref().clone(),
                        kind,
                        credential,
                        base_url: rs.base_url.as_ref().map(|u| u.get_ref().clone()),
                        poll_every,
                        webhook_secret,
                        api_token,
                        system: rs.system.as_ref().map(|v| v.get_ref().clone()),
                        report: rs.report.as_ref().map(|v| v.get_ref().clone()),
                        token_url: rs.token_url.as_ref().map(|v| v.get_ref().clone()),
                        mapping,
                        line: crate::error::line_col(text, name.span().start).0,
                    },
                );
            }
        }
        if problems.is_empty() {
            Ok(out)
        } else {
            Err(Error::input(problems))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(t: &str) -> Result<SourcesConfig> {
        SourcesConfig::parse(Path::new("sources.toml"), t)
    }

    fn err(t: &str) -> String {
        parse(t).unwrap_err().to_string()
    }

    #[test]
    fn a_good_file_loads() {
        let c = parse(
            "[sources.hr]\nkind = \"webhook\"\ncredential = \"keyring:hr-secret\"\n\n\
             [sources.bamboo]\nkind = \"bamboohr\"\nbase_url = \"http://127.0.0.1:9\"\n\
             credential = \"env:BAMBOO_KEY\"\npoll_every = \"5m\"\n\
             [sources.bamboo.mapping]\nfirst_name = \"record.firstName\"\n",
        )
        .unwrap();
        let hr = &c.sources["hr"];
        assert_eq!((hr.kind, hr.line), (SourceKind::Webhook, 1));
        assert_eq!(hr.kind.scheme(), Some(Scheme::StandardWebhooks));
        let b = &c.sources["bamboo"];
        assert_eq!(b.poll_every, Some(Duration::from_secs(300)));
        assert_eq!(b.credential, CredentialRef::Env("BAMBOO_KEY".into()));
        let out = b
            .mapping
            .apply(&serde_json::json!({"firstName": "Ada"}), "1")
            .unwrap();
        assert_eq!(out["first_name"], "Ada");
        assert!(
            SourcesConfig::load(Path::new("/nonexistent/sources.toml"))
                .unwrap()
                .sources
                .is_empty()
        );
    }

    #[test]
    fn every_problem_is_located_and_no_secret_is_echoed() {
        let e = err(
            "[sources.hr]\nkind = \"webhok\"\ncredential = \"whsec_SECRETVALUE\"\n\
             [sources.b]\nkind = \"workday\"\ncredential = \"keyring:w\"\npoll_every = \"often\"\n\
             [sources.b.mapping]\nfrist_name = \"record.x\"\n",
        );
        assert!(e.contains("sources.toml:2:"), "{e}");
        assert!(e.contains("sources.hr.kind"), "{e}");
        assert!(e.contains("sources.hr.credential"), "{e}");
        assert!(!e.contains("SECRETVALUE"), "a pasted secret is echoed: {e}");
        assert!(e.contains("sources.b.poll_every"), "{e}");
        assert!(e.contains("needs base_url"), "{e}");
        assert!(e.contains("sources.b.mapping.frist_name"), "{e}");
        assert!(e.contains("did you mean first_name"), "{e}");
        let e = err("[sources.hr]\nkind = \"webhook\"\ncredential = \"keyring:x\"\nsecret = 1\n");
        assert!(e.contains("sources.toml:4:"), "{e}");
    }
}

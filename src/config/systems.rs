//! systems.toml: target systems, credentials, dependencies, rate budgets and the
//! entitlement catalogue; plus the optional HR CSV column mapping.

use super::toml_errors::{parse_toml, problem_at};
use crate::error::InputProblem;
use crate::model::{Entitlement, EntitlementKind, RiskLevel, System, SystemKind};
use crate::{Error, Result};
use serde::Deserialize;
use serde_spanned::Spanned;
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    systems: BTreeMap<Spanned<String>, RawSystem>,
    #[serde(default)]
    import: Option<RawImport>,
    #[serde(default)]
    guard: Option<GuardThresholds>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawImport {
    #[serde(default)]
    columns: BTreeMap<Spanned<String>, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSystem {
    kind: Spanned<String>,
    #[serde(default)]
    base_url: Option<String>,
    #[serde(default)]
    credential: Option<Spanned<String>>,
    #[serde(default)]
    api_version: Option<String>,
    #[serde(default)]
    depends_on: Vec<Spanned<String>>,
    #[serde(default)]
    rate_limit: Option<RateBudget>,
    #[serde(default)]
    settings: BTreeMap<String, toml::Value>,
    #[serde(default)]
    entitlements: Vec<RawEntitlement>,
    #[serde(default)]
    guard: Option<GuardThresholds>,
    /// Poll after each write until its effect is observed (eventually consistent systems).
    #[serde(default)]
    verify: bool,
    /// The login template (`"{email_local}"`, `"{given}.{family}"`, ...).
    #[serde(default)]
    login: Option<Spanned<String>>,
    /// What happens to a leaver's account here.
    #[serde(default)]
    on_leave: Option<Spanned<String>>,
    /// How reconciliation finds an account's person, rules tried in order.
    #[serde(default)]
    correlate: Option<Vec<Spanned<String>>>,
    /// Rotate the credential this long after it was set (`"90d"`, `"12w"`).
    #[serde(default)]
    rotate_after: Option<Spanned<String>>,
    /// `accessdesk serve` observes and reconciles the system this often (`"6h"`).
    #[serde(default)]
    reconcile_every: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntitlement {
    kind: Spanned<String>,
    name: Spanned<String>,
    #[serde(default)]
    external_id: Option<String>,
    #[serde(default)]
    risk: Option<Spanned<String>>,
    #[serde(default)]
    requires_approval: bool,
}

/// Mass-change guard thresholds: a plan that would deactivate accounts or remove
/// memberships above these in one system is held as a whole for explicit approval.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GuardThresholds {
    /// Share of the system's accounts a plan may deactivate (percent).
    pub max_deactivate_percent: f64,
    /// An absolute limit instead of the share.
    pub max_deactivate: Option<usize>,
    /// Share of the system's accounts that may lose memberships (percent).
    pub max_remove_percent: f64,
    pub max_remove: Option<usize>,
    /// High-risk and privileged memberships a plan may remove.
    pub max_privileged_remove: usize,
    /// The share never holds fewer operations than this (small systems).
    pub min_ops: usize,
}

impl Default for GuardThresholds {
    fn default() -> Self {
        GuardThresholds {
            max_deactivate_percent: 10.0,
            max_deactivate: None,
            max_remove_percent: 10.0,
            max_remove: None,
            max_privileged_remove: 5,
            min_ops: 5,
        }
    }
}

/// A configured request budget for one system, shared by all its workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateBudget {
    pub requests_per_minute: u32,
    #[serde(default = "default_concurrency")]
    pub concurrency: u32,
}

fn default_concurrency() -> u32 {
    4
}

/// Where a credential comes from. Never holds the secret itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialRef {
    /// `keyring:NAME`: the OS keychain.
    Keyring(String),
    /// `env:VAR`: an environment variable (headless servers).
    Env(String),
}

impl CredentialRef {
    pub fn parse(s: &str) -> std::result::Result<Self, String> {
        if let Some(name) = s.strip_prefix("keyring:") {
            if crate::secrets::valid_name(name) {
                return Ok(CredentialRef::Keyring(name.to_string()));
            }
        } else if let Some(var) = s.strip_prefix("env:")
            && !var.is_empty()
            && var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Ok(CredentialRef::Env(var.to_string()));
        }
        Err(format!(
            "credential must be `keyring:NAME` or `env:VAR`, got {:?}",
            redact_credential_literal(s)
        ))
    }
}

/// A credential field holding something other than a reference may be a pasted secret.
/// Show only its shape.
fn redact_credential_literal(s: &str) -> String {
    if s.contains(':') {
        let scheme = s.split(':').next().unwrap_or("");
        format!("{scheme}:…")
    } else {
        format!("<{} characters, not shown>", s.chars().count())
    }
}

impl std::fmt::Display for CredentialRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CredentialRef::Keyring(n) => write!(f, "keyring:{n}"),
            CredentialRef::Env(v) => write!(f, "env:{v}"),
        }
    }
}

/// One configured system with everything loaded about it.
#[derive(Debug, Clone)]
pub struct SystemEntry {
    pub system: System,
    pub base_url: Option<String>,
    pub credential: Option<CredentialRef>,
    pub rate_limit: Option<RateBudget>,
    pub settings: BTreeMap<String, toml::Value>,
    /// Declared entitlements, by (kind, name).
    pub entitlements: BTreeMap<(EntitlementKind, String), Entitlement>,
    /// 1-based line of the `[systems.NAME]` header in systems.toml.
    pub line: usize,
    /// This system's own guard thresholds, if it overrides the defaults.
    pub guard: Option<GuardThresholds>,
    /// Writes are verified by polling until their effect is observed.
    pub verify: bool,
    /// How a person's login here is made, once (model/login.rs).
    pub login: crate::model::login::LoginTemplate,
    /// What happens to a leaver's account here.
    pub on_leave: OnLeave,
    /// How reconciliation finds an account's person (`correlate`), in order.
    pub correlate: Vec<Correlate>,
    /// Days after a credential is set that it is due for rotation (`rotate_after`).
    pub rotate_after_days: Option<u32>,
    /// How often `accessdesk serve` observes and reconciles the system
    /// (`reconcile_every`); None: only when asked.
    pub reconcile_every: Option<std::time::Duration>,
}

/// `rotate_after`: a whole number of days (`"90d"`) or weeks (`"12w"`), at least one day.
pub fn parse_rotate_after(v: &str) -> std::result::Result<u32, String> {
    let v = v.trim();
    let (n, unit) = v.split_at(v.len().saturating_sub(1));
    let n: u32 = n
        .parse()
        .map_err(|_| format!("rotate_after {v:?} is not a number of days or weeks"))?;
    let days = match unit {
        "d" => n,
        "w" => n.saturating_mul(7),
        _ => return Err(format!("rotate_after {v:?} has no unit")),
    };
    if days == 0 {
        return Err("rotate_after must be at least one day".into());
    }
    Ok(days)
}

/// A correlation rule: how reconciliation decides whose an account is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Correlate {
    /// The link accessdesk holds: an account it created or adopted with proof, or one an
    /// admin linked.
    Link,
    /// The HR id the target holds on the account.
    HrisId,
    /// The account's e-mail is a person's work e-mail.
    Email,
    /// The account's login is the login accessdesk assigned a person here.
    Login,
}

impl Correlate {
    pub const NAMES: [&'static str; 4] = ["link", "hris_id", "email", "login"];
    /// The default order, for every kind.
    pub const DEFAULT: [Correlate; 4] = [
        Correlate::Link,
        Correlate::HrisId,
        Correlate::Email,
        Correlate::Login,
    ];

    pub fn as_str(self) -> &'static str {
        Self::NAMES[self as usize]
    }

    /// Whether a match by this rule proves the account is the person's (so actual
    /// access read from it may be attached to them). E-mail and login only suggest it.
    pub fn proves(self) -> bool {
        matches!(self, Correlate::Link | Correlate::HrisId)
    }
}

impl std::str::FromStr for Correlate {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        Self::NAMES
            .iter()
            .position(|n| *n == s)
            .map(|i| Self::DEFAULT[i])
            .ok_or_else(|| {
                format!(
                    "unknown correlation rule {s:?}; expected some of {}",
                    Self::NAMES.join(", ")
                )
            })
    }
}

/// A system's leaver policy (`on_leave` in systems.toml).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OnLeave {
    /// Deactivate the account; memberships stay (sign-in is what stops).
    Deactivate,
    /// Deactivate, and remove every membership the account holds.
    DeactivateAndRemoveGroups,
    /// Deactivate, remove memberships, then delete the account where the vendor allows it.
    Delete,
}

impl OnLeave {
    pub const NAMES: [&'static str; 3] = ["deactivate", "deactivate_and_remove_groups", "delete"];

    /// Safe defaults per kind. SCIM apps often keep group-granted access for inactive
    /// users, so SCIM removes memberships too; AWS IAM's and the identity store's
    /// deactivation already remove group memberships themselves.
    pub fn default_for(kind: SystemKind) -> OnLeave {
        match kind {
            SystemKind::Scim => OnLeave::DeactivateAndRemoveGroups,
            _ => OnLeave::Deactivate,
        }
    }

    pub fn as_str(self) -> &'static str {
        Self::NAMES[self as usize]
    }

    /// Kinds whose adapter can delete an account.
    pub fn can_delete(kind: SystemKind) -> bool {
        matches!(kind, SystemKind::Scim | SystemKind::AwsIdentityStore)
    }

    pub fn removes_memberships(self) -> bool {
        self != OnLeave::Deactivate
    }
}

impl std::str::FromStr for OnLeave {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "deactivate" => Ok(OnLeave::Deactivate),
            "deactivate_and_remove_groups" => Ok(OnLeave::DeactivateAndRemoveGroups),
            "delete" => Ok(OnLeave::Delete),
            other => Err(format!(
                "unknown on_leave {other:?}; expected one of {}",
                Self::NAMES.join(", ")
            )),
        }
    }
}

/// The systems and entitlements a policy may refer to.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    pub systems: BTreeMap<String, SystemEntry>,
}

impl Catalog {
    /// A system's leaver policy (its kind's default for systems not configured here).
    pub fn on_leave(&self, system: &str) -> OnLeave {
        self.systems
            .get(system)
            .map(|e| e.on_leave)
            .unwrap_or(OnLeave::Deactivate)
    }

    pub fn entitlement(
        &self,
        system: &str,
        kind: EntitlementKind,
        name: &str,
    ) -> Option<&Entitlement> {
        self.systems
            .get(system)?
            .entitlements
            .get(&(kind, name.to_string()))
    }
}

/// Column mapping for HR CSV imports: canonical field -> CSV header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportMapping {
    pub columns: BTreeMap<String, String>,
    /// Read columns the mapping does not name as custom attributes (`person.custom.HEADER`).
    /// Off for HR imports; on for policy-test fixtures.
    pub extra_columns_as_custom: bool,
}

/// The canonical fields a CSV column can map to.
pub const IMPORT_FIELDS: &[&str] = &[
    "employee_id",
    "first_name",
    "last_name",
    "preferred_name",
    "display_name",
    "email",
    "department",
    "title",
    "manager_id",
    "location",
    "cost_center",
    "status",
    "start_date",
    "end_date",
];

/// Columns about the export rather than the person, which `[import.columns]` may also
/// name: `generated_at`, when the HR system produced the file (the same on every row), and
/// `updated_at`, when each row last changed. They judge the export's age (src/import.rs).
pub const FEED_FIELDS: &[&str] = &["generated_at", "updated_at"];

/// The person attribute an import field fills, as conditions name it: `employee_id` is
/// `hris_id`, `first_name` `given_name`, `last_name` `family_name`; the others (and
/// `custom.NAME`) keep their names.
pub fn person_attribute(field: &str) -> &str {
    match field {
        "employee_id" => "hris_id",
        "first_name" => "given_name",
        "last_name" => "family_name",
        other => other,
    }
}

impl Default for ImportMapping {
    fn default() -> Self {
        // The default reads a typical HRIS export, whose headers equal our field names.
        let columns = IMPORT_FIELDS
            .iter()
            .chain(FEED_FIELDS)
            .filter(|f| **f != "display_name")
            .map(|f| (f.to_string(), f.to_string()))
            .collect();
        ImportMapping {
            columns,
            extra_columns_as_custom: false,
        }
    }
}

/// Everything in systems.toml.
#[derive(Debug, Clone, Default)]
pub struct SystemsConfig {
    pub catalog: Catalog,
    pub import: ImportMapping,
    /// Default guard thresholds (`[guard]`).
    pub guard: GuardThresholds,
}

impl SystemsConfig {
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
        Self::parse(path, &text)
    }

    /// Parse and validate. Collects every problem it can find rather than stopping at the first.
    pub fn parse(path: &Path, text: &str) -> Result<Self> {
        let raw: RawFile = parse_toml(
            path,
            text,
            "see the comments in the file written by `accessdesk init`",
        )
        .map_err(|p| Error::input(vec![p]))?;
        let mut problems: Vec<InputProblem> = Vec::new();
        let mut catalog = Catalog::default();
        for (name, rs) in &raw.systems {
            let key = format!("systems.{}", name.get_ref());
            if !valid_system_name(name.get_ref()) {
                problems.push(problem_at(path, text, Some(name.span()), &key,
                    format!("system name {:?} is not allowed", name.get_ref()),
                    "use lowercase letters, digits, '-' and '_' (it appears in entitlements as system:kind:name)"));
            }
            let kind: SystemKind = match rs.kind.get_ref().parse() {
                Ok(k) => k,
                Err(msg) => {
                    problems.push(problem_at(
                        path,
                        text,
                        Some(rs.kind.span()),
                        format!("{key}.kind"),
                        msg,
                        "",
                    ));
                    continue;
                }
            };
            let credential = match &rs.credential {
                None => None,
                Some(c) => match CredentialRef::parse(c.get_ref()) {
                    Ok(c) => Some(c),
                    Err(msg) => {
                        problems.push(problem_at(path, text, Some(c.span()), format!("{key}.credential"), msg,
                            "store the secret with `accessdesk secret set NAME` and write credential = \"keyring:NAME\""));
                        None
                    }
                },
            };
            if let Some(rl) = rs.rate_limit
                && (rl.requests_per_minute == 0 || rl.concurrency == 0)
            {
                problems.push(problem_at(
                    path,
                    text,
                    Some(name.span()),
                    format!("{key}.rate_limit"),
                    "requests_per_minute and concurrency must be at least 1",
                    "",
                ));
            }
            let mut entitlements = BTreeMap::new();
            for (i, re) in rs.entitlements.iter().enumerate() {
                let ekey = format!("{key}.entitlements[{i}]");
                let ekind: EntitlementKind = match re.kind.get_ref().parse() {
                    Ok(k) => k,
                    Err(msg) => {
                        problems.push(problem_at(
                            path,
                            text,
                            Some(re.kind.span()),
                            format!("{ekey}.kind"),
                            msg,
                            "",
                        ));
                        continue;
                    }
                };
                let risk = match &re.risk {
                    None => RiskLevel::Low,
                    Some(r) => match r.get_ref().parse() {
                        Ok(r) => r,
                        Err(msg) => {
                            problems.push(problem_at(
                                path,
                                text,
                                Some(r.span()),
                                format!("{ekey}.risk"),
                                msg,
                                "",
                            ));
                            RiskLevel::Low
                        }
                    },
                };
                let ename = re.name.get_ref().clone();
                if ename.is_empty() {
                    problems.push(problem_at(
                        path,
                        text,
                        Some(re.name.span()),
                        format!("{ekey}.name"),
                        "entitlement name is empty",
                        "",
                    ));
                    continue;
                }
                let ent = Entitlement {
                    system: name.get_ref().clone(),
                    kind: ekind,
                    external_id: re.external_id.clone().unwrap_or_else(|| ename.clone()),
                    risk,
                    requires_approval: re.requires_approval,
                };
                if entitlements.insert((ekind, ename.clone()), ent).is_some() {
                    problems.push(problem_at(
                        path,
                        text,
                        Some(re.name.span()),
                        format!("{ekey}.name"),
                        format!("entitlement {ekind}:{ename} is declared twice"),
                        "remove one of them",
                    ));
                }
            }
            let login = match &rs.login {
                None => crate::model::login::LoginTemplate::default_for(kind),
                Some(t) => match t.get_ref().parse() {
                    Ok(t) => t,
                    Err(msg) => {
                        problems.push(problem_at(
                            path,
                            text,
                            Some(t.span()),
                            format!("{key}.login"),
                            msg,
                            "for example login = \"{email_local}\" or \"{given}.{family}\"",
                        ));
                        crate::model::login::LoginTemplate::default_for(kind)
                    }
                },
            };
            let on_leave = match &rs.on_leave {
                None => OnLeave::default_for(kind),
                Some(v) => match v.get_ref().parse::<OnLeave>() {
                    Ok(OnLeave::Delete) if !OnLeave::can_delete(kind) => {
                        problems.push(problem_at(
                            path,
                            text,
                            Some(v.span()),
                            format!("{key}.on_leave"),
                            format!("on_leave = \"delete\" is not supported for {kind} systems"),
                            "use \"deactivate\" or \"deactivate_and_remove_groups\"",
                        ));
                        OnLeave::default_for(kind)
                    }
                    Ok(p) => p,
                    Err(msg) => {
                        problems.push(problem_at(
                            path,
                            text,
                            Some(v.span()),
                            format!("{key}.on_leave"),
                            msg,
                            "",
                        ));
                        OnLeave::default_for(kind)
                    }
                },
            };
            let mut correlate = Vec::new();
            for rule in rs.correlate.iter().flatten() {
                match rule.get_ref().parse::<Correlate>() {
                    Ok(c) if !correlate.contains(&c) => correlate.push(c),
                    Ok(_) => problems.push(problem_at(
                        path,
                        text,
                        Some(rule.span()),
                        format!("{key}.correlate"),
                        format!("correlation rule {:?} is listed twice", rule.get_ref()),
                        "list each rule once, in the order to try them",
                    )),
                    Err(msg) => problems.push(problem_at(
                        path,
                        text,
                        Some(rule.span()),
                        format!("{key}.correlate"),
                        msg,
                        "for example correlate = [\"link\", \"hris_id\", \"email\"]",
                    )),
                }
            }
            if rs.correlate.is_none() {
                correlate = Correlate::DEFAULT.to_vec();
            } else if correlate.is_empty() && rs.correlate.as_ref().is_some_and(|c| c.is_empty()) {
                problems.push(problem_at(
                    path,
                    text,
                    Some(name.span()),
                    format!("{key}.correlate"),
                    "correlate is empty: no account could ever be matched to a person".to_string(),
                    "remove it for the default [\"link\", \"hris_id\", \"email\", \"login\"]",
                ));
            }
            let mut located = |v: &Option<Spanned<String>>,
                               field: &str,
                               example: &str,
                               msg: std::result::Result<(), String>| {
                if let (Some(v), Err(msg)) = (v, msg) {
                    problems.push(problem_at(
                        path,
                        text,
                        Some(v.span()),
                        format!("{key}.{field}"),
                        msg,
                        example,
                    ));
                }
            };
            let rotate = rs
                .rotate_after
                .as_ref()
                .map(|v| parse_rotate_after(v.get_ref()));
            let rotate_after_days = rotate.clone().and_then(|r| r.ok());
            located(
                &rs.rotate_after,
                "rotate_after",
                "for example rotate_after = \"90d\" or \"12w\"",
                rotate.map_or(Ok(()), |r| r.map(|_| ())),
            );
            let every = rs
                .reconcile_every
                .as_ref()
                .map(|v| crate::text::parse_duration(v.get_ref()));
            let reconcile_every = every.clone().and_then(|r| r.ok());
            located(
                &rs.reconcile_every,
                "reconcile_every",
                "for example reconcile_every = \"6h\"",
                every.map_or(Ok(()), |r| r.map(|_| ())),
            );
            let api_version = rs
                .api_version
                .clone()
                .unwrap_or_else(|| default_api_version(kind).to_string());
            catalog.systems.insert(
                name.get_ref().clone(),
                SystemEntry {
                    system: System {
                        name: name.get_ref().clone(),
                        kind,
                        depends_on: rs.depends_on.iter().map(|d| d.get_ref().clone()).collect(),
                        api_version,
                    },
                    base_url: rs.base_url.clone(),
                    credential,
                    rate_limit: rs.rate_limit,
                    settings: rs.settings.clone(),
                    entitlements,
                    line: crate::error::line_col(text, name.span().start).0,
                    guard: rs.guard,
                    verify: rs.verify,
                    login,
                    on_leave,
                    correlate,
                    rotate_after_days,
                    reconcile_every,
                },
            );
        }
        // Dependencies must name configured systems, and must not form a cycle.
        for (name, rs) in &raw.systems {
            for dep in &rs.depends_on {
                if !raw.systems.keys().any(|k| k.get_ref() == dep.get_ref()) {
                    problems.push(problem_at(
                        path,
                        text,
                        Some(dep.span()),
                        format!("systems.{}.depends_on", name.get_ref()),
                        format!(
                            "depends on {:?}, which is not a configured system",
                            dep.get_ref()
                        ),
                        "add a [systems.NAME] table for it or remove it from depends_on",
                    ));
                } else if dep.get_ref() == name.get_ref() {
                    problems.push(problem_at(
                        path,
                        text,
                        Some(dep.span()),
                        format!("systems.{}.depends_on", name.get_ref()),
                        "a system cannot depend on itself",
                        "",
                    ));
                }
            }
        }
        if problems.is_empty()
            && let Some(cycle) = find_cycle(&catalog)
        {
            let first = &cycle[0];
            let span = raw
                .systems
                .iter()
                .find(|(k, _)| k.get_ref() == first)
                .map(|(k, _)| k.span());
            problems.push(problem_at(path, text, span, format!("systems.{first}.depends_on"),
                    format!("dependency cycle: {}", cycle.join(" -> ")),
                    "a system's account must exist before its dependants are touched; remove one edge of the cycle"));
        }
        let mut import = ImportMapping::default();
        if let Some(ri) = raw.import {
            for (field, header) in ri.columns {
                if !IMPORT_FIELDS.contains(&field.get_ref().as_str())
                    && !FEED_FIELDS.contains(&field.get_ref().as_str())
                    && !field.get_ref().starts_with("custom.")
                {
                    problems.push(problem_at(
                        path,
                        text,
                        Some(field.span()),
                        format!("import.columns.{}", field.get_ref()),
                        format!("unknown person field {:?}", field.get_ref()),
                        format!(
                            "fields are {}, {} or custom.NAME",
                            IMPORT_FIELDS.join(", "),
                            FEED_FIELDS.join(", ")
                        ),
                    ));
                    continue;
                }
                import.columns.insert(field.get_ref().clone(), header);
            }
        }
        if !problems.is_empty() {
            return Err(Error::input(problems));
        }
        Ok(SystemsConfig {
            catalog,
            import,
            guard: raw.guard.unwrap_or_default(),
        })
    }
}

fn valid_system_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// The vendor API version each adapter is pinned to unless systems.toml says otherwise.
pub fn default_api_version(kind: SystemKind) -> &'static str {
    match kind {
        SystemKind::Okta => "v1",
        SystemKind::Scim => "2.0",
        SystemKind::AwsIam => "2010-05-08",
        SystemKind::AwsIdentityStore => "2020-06-15",
        SystemKind::GoogleWorkspace => "directory_v1",
        SystemKind::Slack => "web",
        SystemKind::Github => "2022-11-28",
        SystemKind::Ldap => "v3",
        SystemKind::Entra => "v1.0",
    }
}

/// Find a dependency cycle, returned as the path that closes it (A, B, A).
pub fn find_cycle(catalog: &Catalog) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Active,
        Done,
    }
    let names: Vec<&String> = catalog.systems.keys().collect();
    let mut mark: BTreeMap<&str, Mark> = names.iter().map(|n| (n.as_str(), Mark::New)).collect();
    fn visit<'a>(
        n: &'a str,
        cat: &'a Catalog,
        mark: &mut BTreeMap<&'a str, Mark>,
        stack: &mut Vec<&'a str>,
    ) -> Option<Vec<String>> {
        mark.insert(n, Mark::Active);
        stack.push(n);
        if let Some(entry) = cat.systems.get(n) {
            for d in &entry.system.depends_on {
                match mark.get(d.as_str()).copied() {
                    Some(Mark::Active) => {
                        let start = stack.iter().position(|s| *s == d.as_str()).unwrap_or(0);
                        let mut cycle: Vec<String> =
                            stack[start..].iter().map(|s| s.to_string()).collect();
                        cycle.push(d.clone());
                        return Some(cycle);
                    }
                    Some(Mark::New) => {
                        if let Some(c) = visit(d.as_str(), cat, mark, stack) {
                            return Some(c);
                        }
                    }
                    _ => {}
                }
            }
        }
        stack.pop();
        mark.insert(n, Mark::Done);
        None
    }
    for n in names {
        if mark.get(n.as_str()) == Some(&Mark::New) {
            let mut stack = Vec::new();
            if let Some(c) = visit(n.as_str(), catalog, &mut mark, &mut stack) {
                return Some(c);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<SystemsConfig> {
        SystemsConfig::parse(Path::new("systems.toml"), text)
    }

    fn err_text(text: &str) -> String {
        match parse(text) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("expected an error for:\n{text}"),
        }
    }

    const GOOD: &str = r#"
[systems.okta]
kind = "okta"
base_url = "https://example.okta.com"
credential = "keyring:okta-token"
rate_limit = { requests_per_minute = 600, concurrency = 8 }

[[systems.okta.entitlements]]
kind = "group"
name = "engineering"
risk = "medium"

[systems.github]
kind = "github"
credential = "env:GITHUB_TOKEN"
depends_on = ["okta"]

[[systems.github.entitlements]]
kind = "team"
name = "admins"
risk = "privileged"
requires_approval = true
"#;

    #[test]
    fn loads_a_good_file() {
        let c = parse(GOOD).unwrap();
        let gh = &c.catalog.systems["github"];
        assert_eq!(gh.system.depends_on, vec!["okta".to_string()]);
        assert_eq!(
            gh.credential,
            Some(CredentialRef::Env("GITHUB_TOKEN".into()))
        );
        assert_eq!(gh.system.api_version, "2022-11-28");
        let admins = c
            .catalog
            .entitlement("github", EntitlementKind::Team, "admins")
            .unwrap();
        assert!(admins.requires_approval);
        assert_eq!(admins.risk, RiskLevel::Privileged);
        assert_eq!(c.catalog.systems["okta"].line, 2);
        assert_eq!(c.import, ImportMapping::default());
    }

    #[test]
    fn reconcile_every_is_a_duration_and_a_bad_one_is_located() {
        let ok = parse("[systems.a]\nkind = \"okta\"\nreconcile_every = \"1h30m\"\n").unwrap();
        assert_eq!(
            ok.catalog.systems["a"].reconcile_every,
            Some(std::time::Duration::from_secs(5400))
        );
        assert_eq!(
            parse(GOOD).unwrap().catalog.systems["okta"].reconcile_every,
            None
        );
        let e = err_text("[systems.a]\nkind = \"okta\"\nreconcile_every = \"daily\"\n");
        assert!(e.starts_with("systems.toml:3:"), "{e}");
        assert!(e.contains("systems.a.reconcile_every"), "{e}");
        assert!(e.contains("\"daily\" is not a duration"), "{e}");
        let e = err_text("[systems.a]\nkind = \"okta\"\n\nrotate_after = \"soon\"\n");
        assert!(e.starts_with("systems.toml:4:"), "{e}");
        assert!(e.contains("systems.a.rotate_after"), "{e}");
    }

    #[test]
    fn cycle_is_named() {
        let t = r#"
[systems.a]
kind = "okta"
depends_on = ["b"]
[systems.b]
kind = "scim"
depends_on = ["c"]
[systems.c]
kind = "slack"
depends_on = ["a"]
"#;
        let e = err_text(t);
        assert!(e.contains("dependency cycle: a -> b -> c -> a"), "{e}");
        assert!(e.starts_with("systems.toml:2:"), "{e}");
    }

    #[test]
    fn unknown_dependency_and_kind_are_located() {
        let t =
            "[systems.a]\nkind = \"okta\"\ndepends_on = [\"zz\"]\n[systems.b]\nkind = \"oktaa\"\n";
        let e = err_text(t);
        assert!(
            e.contains("systems.toml:3:15: systems.a.depends_on: depends on \"zz\""),
            "{e}"
        );
        assert!(
            e.contains("systems.toml:5:8: systems.b.kind: unknown system kind \"oktaa\""),
            "{e}"
        );
    }

    #[test]
    fn typo_in_key_names_the_key_and_line() {
        let e = err_text("[systems.a]\nkind = \"okta\"\ncredentail = \"keyring:x\"\n");
        assert!(e.starts_with("systems.toml:3:"), "{e}");
        assert!(e.contains("credentail"), "{e}");
    }

    #[test]
    fn pasted_secret_in_credential_is_not_echoed() {
        let e = err_text("[systems.a]\nkind = \"okta\"\ncredential = \"00abcSECRETtoken\"\n");
        assert!(!e.contains("SECRET"), "{e}");
        assert!(e.contains("keyring:NAME"), "{e}");
    }

    #[test]
    fn bad_import_field_is_reported() {
        let e = err_text("[import.columns]\nemployee_idd = \"Emp ID\"\n");
        assert!(
            e.contains("systems.toml:2:1: import.columns.employee_idd"),
            "{e}"
        );
    }

    #[test]
    fn a_syntax_error_names_its_real_line_and_key() {
        // Line 7 leaves an array open; the parser only notices at line 10, where the next
        // table's key begins.
        let t = "# accessdesk systems\n\n[systems.okta]\nkind = \"okta\"\nbase_url = \"https://example.okta.com\"\n\ndepends_on = [\"zoom\",\n\n[systems.zoom]\nkind = \"scim\"\n";
        let e = err_text(t);
        assert!(
            e.starts_with(
                "systems.toml:7:14: systems.okta.depends_on: the array opened here is not closed"
            ),
            "{e}"
        );
        // A mistake on line 7 itself: its own position, and the key rather than a token.
        let t = "# accessdesk systems\n\n[systems.okta]\nkind = \"okta\"\nbase_url = \"https://example.okta.com\"\n\nverify = yes\n";
        let e = err_text(t);
        assert!(
            e.starts_with("systems.toml:7:10: systems.okta.verify: string values must be quoted"),
            "{e}"
        );
        // A duplicate key says which.
        let t = "# accessdesk systems\n\n[systems.okta]\nkind = \"okta\"\nbase_url = \"https://example.okta.com\"\n\nkind = \"scim\"\n";
        let e = err_text(t);
        assert!(
            e.starts_with("systems.toml:7:1: systems.okta.kind: duplicate key"),
            "{e}"
        );
    }

    #[test]
    fn malformed_toml_has_position() {
        let e = err_text("[systems.a\nkind = 1\n");
        assert!(e.starts_with("systems.toml:1:"), "{e}");
    }
}

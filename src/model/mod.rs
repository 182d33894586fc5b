//! The canonical model every other module speaks: people, systems, accounts,
//! entitlements, grants and operations. Pure data; no I/O.

pub mod login;
pub mod names;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// Employment status as HR reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EmploymentStatus {
    Pending,
    Active,
    Leave,
    Terminated,
}

impl EmploymentStatus {
    pub const ALL: [EmploymentStatus; 4] = [
        EmploymentStatus::Pending,
        EmploymentStatus::Active,
        EmploymentStatus::Leave,
        EmploymentStatus::Terminated,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EmploymentStatus::Pending => "pending",
            EmploymentStatus::Active => "active",
            EmploymentStatus::Leave => "leave",
            EmploymentStatus::Terminated => "terminated",
        }
    }
}

impl fmt::Display for EmploymentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EmploymentStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "pending" => Ok(EmploymentStatus::Pending),
            "active" => Ok(EmploymentStatus::Active),
            "leave" => Ok(EmploymentStatus::Leave),
            "terminated" => Ok(EmploymentStatus::Terminated),
            other => Err(format!(
                "unknown employment status {other:?}; expected one of pending, active, leave, terminated"
            )),
        }
    }
}

/// A person as HR knows them. Names are full Unicode and stored as given (NFC-normalised).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Person {
    pub hris_id: String,
    pub given_name: String,
    pub family_name: String,
    #[serde(default)]
    pub preferred_name: Option<String>,
    #[serde(default)]
    pub display_name: Option<String>,
    pub email: String,
    #[serde(default)]
    pub department: String,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub manager_id: Option<String>,
    #[serde(default)]
    pub location: String,
    #[serde(default)]
    pub cost_center: String,
    pub status: EmploymentStatus,
    #[serde(default)]
    pub start_date: Option<NaiveDate>,
    #[serde(default)]
    pub end_date: Option<NaiveDate>,
    /// Custom attributes from HR, by name.
    #[serde(default)]
    pub custom: BTreeMap<String, String>,
}

/// When someone with this status and end date stops working here (see
/// [`Person::leaves_at`]): for readers that hold the two fields, not a whole person.
pub fn leaves_at(status: EmploymentStatus, end_date: Option<NaiveDate>) -> Option<DateTime<Utc>> {
    if status == EmploymentStatus::Terminated {
        return Some(DateTime::<Utc>::MIN_UTC);
    }
    end_date?
        .succ_opt()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
}

impl Person {
    /// When this person stops working here: now-or-earlier for a terminated status, else
    /// the start of the day after their `end_date` (UTC). None: not leaving.
    pub fn leaves_at(&self) -> Option<DateTime<Utc>> {
        leaves_at(self.status, self.end_date)
    }

    /// A leaver: terminated in HR, or past their end date.
    pub fn is_leaver(&self, now: DateTime<Utc>) -> bool {
        self.leaves_at().is_some_and(|t| t <= now)
    }

    /// A minimal active person, for tests and fixtures.
    pub fn new(hris_id: &str, given: &str, family: &str, email: &str) -> Self {
        Person {
            hris_id: hris_id.to_string(),
            given_name: given.to_string(),
            family_name: family.to_string(),
            preferred_name: None,
            display_name: None,
            email: email.to_string(),
            department: String::new(),
            title: String::new(),
            manager_id: None,
            location: String::new(),
            cost_center: String::new(),
            status: EmploymentStatus::Active,
            start_date: None,
            end_date: None,
            custom: BTreeMap::new(),
        }
    }
}

/// The kinds of target system accessdesk knows how to talk to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SystemKind {
    Okta,
    Scim,
    AwsIam,
    AwsIdentityStore,
    GoogleWorkspace,
    Slack,
    Github,
    Ldap,
    Entra,
}

impl SystemKind {
    pub const ALL: [SystemKind; 9] = [
        SystemKind::Okta,
        SystemKind::Scim,
        SystemKind::AwsIam,
        SystemKind::AwsIdentityStore,
        SystemKind::GoogleWorkspace,
        SystemKind::Slack,
        SystemKind::Github,
        SystemKind::Ldap,
        SystemKind::Entra,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SystemKind::Okta => "okta",
            SystemKind::Scim => "scim",
            SystemKind::AwsIam => "aws_iam",
            SystemKind::AwsIdentityStore => "aws_identity_store",
            SystemKind::GoogleWorkspace => "google_workspace",
            SystemKind::Slack => "slack",
            SystemKind::Github => "github",
            SystemKind::Ldap => "ldap",
            SystemKind::Entra => "entra",
        }
    }

    /// Why accessdesk does not rename a user's login in this kind of system, or None
    /// where it does (Okta `profile.login`, SCIM `userName`). A login that cannot be
    /// renamed stays as assigned; the other attributes (the e-mail among them) are still
    /// updated.
    pub fn rename_refusal(self) -> Option<&'static str> {
        match self {
            SystemKind::Okta | SystemKind::Scim => None,
            SystemKind::AwsIam => Some(
                "AWS IAM user names are the users' ids (in ARNs, policies and access keys); accessdesk does not rename IAM users",
            ),
            SystemKind::AwsIdentityStore => {
                Some("the AWS Identity Store does not allow renaming users (UserName is immutable)")
            }
            _ => Some("accessdesk does not rename users in this kind of system"),
        }
    }
}

impl fmt::Display for SystemKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SystemKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SystemKind::ALL
            .iter()
            .copied()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = SystemKind::ALL.iter().map(|k| k.as_str()).collect();
                format!(
                    "unknown system kind {s:?}; expected one of {}",
                    names.join(", ")
                )
            })
    }
}

/// A configured target system.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct System {
    pub name: String,
    pub kind: SystemKind,
    /// Systems that must have the person's account before this one is touched.
    pub depends_on: Vec<String>,
    /// The vendor API version this system is pinned to.
    pub api_version: String,
}

/// A person's identity in one system.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub system: String,
    pub person_id: Option<String>,
    pub login: String,
    pub external_id: Option<String>,
    pub active: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntitlementKind {
    Group,
    Team,
    Channel,
    Role,
}

impl EntitlementKind {
    pub const ALL: [EntitlementKind; 4] = [
        EntitlementKind::Group,
        EntitlementKind::Team,
        EntitlementKind::Channel,
        EntitlementKind::Role,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EntitlementKind::Group => "group",
            EntitlementKind::Team => "team",
            EntitlementKind::Channel => "channel",
            EntitlementKind::Role => "role",
        }
    }
}

impl fmt::Display for EntitlementKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EntitlementKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EntitlementKind::ALL
            .iter()
            .copied()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown entitlement kind {s:?}; expected one of group, team, channel, role"
                )
            })
    }
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "lowercase")]
pub enum RiskLevel {
    #[default]
    Low,
    Medium,
    High,
    Privileged,
}

impl RiskLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            RiskLevel::Low => "low",
            RiskLevel::Medium => "medium",
            RiskLevel::High => "high",
            RiskLevel::Privileged => "privileged",
        }
    }
}

impl FromStr for RiskLevel {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "low" => Ok(RiskLevel::Low),
            "medium" => Ok(RiskLevel::Medium),
            "high" => Ok(RiskLevel::High),
            "privileged" => Ok(RiskLevel::Privileged),
            _ => Err(format!(
                "unknown risk level {s:?}; expected one of low, medium, high, privileged"
            )),
        }
    }
}

/// A reference to an entitlement, written `system:kind:name`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EntitlementRef {
    pub system: String,
    pub kind: EntitlementKind,
    pub name: String,
}

impl fmt::Display for EntitlementRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.system, self.kind, self.name)
    }
}

impl FromStr for EntitlementRef {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut parts = s.splitn(3, ':');
        let (Some(system), Some(kind), Some(name)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(format!(
                "entitlement {s:?} is not of the form system:kind:name (for example okta:group:engineering)"
            ));
        };
        if system.is_empty() || name.is_empty() {
            return Err(format!(
                "entitlement {s:?} has an empty system or name; write system:kind:name"
            ));
        }
        Ok(EntitlementRef {
            system: system.to_string(),
            kind: kind.parse()?,
            name: name.to_string(),
        })
    }
}

impl TryFrom<String> for EntitlementRef {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<EntitlementRef> for String {
    fn from(e: EntitlementRef) -> String {
        e.to_string()
    }
}

/// An entitlement in a system's catalogue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entitlement {
    pub system: String,
    pub kind: EntitlementKind,
    /// The vendor's identifier for it (group id, team slug, role ARN, ...).
    pub external_id: String,
    pub risk: RiskLevel,
    pub requires_approval: bool,
}

impl Entitlement {
    pub fn reference(&self) -> EntitlementRef {
        EntitlementRef {
            system: self.system.clone(),
            kind: self.kind,
            name: self.external_id.clone(),
        }
    }
}

/// Intended access: one person should hold one entitlement, because of one rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub person_id: String,
    pub entitlement: EntitlementRef,
    /// The rule that produced it (provenance).
    pub rule: String,
    pub requires_approval: bool,
    pub expires_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OperationKind {
    CreateAccount,
    UpdateAttributes,
    AddMembership,
    RemoveMembership,
    Deactivate,
    Reactivate,
    /// Deactivate an account no person owns (an orphan, by a reconciliation finding).
    /// Its `person_id` holds the account's external id in the target, not a person; it
    /// is never deleted, whatever the system's leaver policy, so it can be restored.
    DeactivateOrphan,
}

impl OperationKind {
    pub const ALL: [OperationKind; 7] = [
        OperationKind::CreateAccount,
        OperationKind::UpdateAttributes,
        OperationKind::AddMembership,
        OperationKind::RemoveMembership,
        OperationKind::Deactivate,
        OperationKind::Reactivate,
        OperationKind::DeactivateOrphan,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OperationKind::CreateAccount => "create_account",
            OperationKind::UpdateAttributes => "update_attributes",
            OperationKind::AddMembership => "add_membership",
            OperationKind::RemoveMembership => "remove_membership",
            OperationKind::Deactivate => "deactivate",
            OperationKind::Reactivate => "reactivate",
            OperationKind::DeactivateOrphan => "deactivate_orphan",
        }
    }

    /// Whether running it gives the person something (an account, access, attributes):
    /// the kinds a leaver must never get.
    pub fn grants(self) -> bool {
        matches!(
            self,
            OperationKind::CreateAccount
                | OperationKind::AddMembership
                | OperationKind::Reactivate
                | OperationKind::UpdateAttributes
        )
    }

    /// Whether it acts on an account by its id rather than on a person's account.
    pub fn on_account(self) -> bool {
        self == OperationKind::DeactivateOrphan
    }
}

impl FromStr for OperationKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        OperationKind::ALL
            .iter()
            .copied()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| format!("unknown operation kind {s:?}"))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OperationStatus {
    PendingApproval,
    /// Waiting for its time (a leaver's deactivation on their end date).
    Scheduled,
    Queued,
    Running,
    RetryWait,
    Verifying,
    Blocked,
    Succeeded,
    Failed,
    Cancelled,
}

impl OperationStatus {
    pub const ALL: [OperationStatus; 10] = [
        OperationStatus::PendingApproval,
        OperationStatus::Scheduled,
        OperationStatus::Queued,
        OperationStatus::Running,
        OperationStatus::RetryWait,
        OperationStatus::Verifying,
        OperationStatus::Blocked,
        OperationStatus::Succeeded,
        OperationStatus::Failed,
        OperationStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OperationStatus::PendingApproval => "pending_approval",
            OperationStatus::Scheduled => "scheduled",
            OperationStatus::Queued => "queued",
            OperationStatus::Running => "running",
            OperationStatus::RetryWait => "retry_wait",
            OperationStatus::Verifying => "verifying",
            OperationStatus::Blocked => "blocked",
            OperationStatus::Succeeded => "succeeded",
            OperationStatus::Failed => "failed",
            OperationStatus::Cancelled => "cancelled",
        }
    }
}

impl FromStr for OperationStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        OperationStatus::ALL
            .iter()
            .copied()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = OperationStatus::ALL.iter().map(|k| k.as_str()).collect();
                format!("unknown status {s:?}; expected one of {}", names.join(", "))
            })
    }
}

/// One unit of provisioning work.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Operation {
    pub id: i64,
    pub idempotency_key: String,
    pub kind: OperationKind,
    pub system: String,
    pub person_id: String,
    pub entitlement: Option<EntitlementRef>,
    pub status: OperationStatus,
    pub attempts: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entitlement_ref_round_trips() {
        let e: EntitlementRef = "okta:group:eng:platform".parse().unwrap();
        assert_eq!(e.system, "okta");
        assert_eq!(e.kind, EntitlementKind::Group);
        assert_eq!(e.name, "eng:platform");
        assert_eq!(e.to_string(), "okta:group:eng:platform");
    }

    #[test]
    fn entitlement_ref_rejects_bad_forms() {
        for bad in [
            "okta",
            "okta:group",
            "okta:widget:x",
            ":group:x",
            "okta:group:",
        ] {
            assert!(bad.parse::<EntitlementRef>().is_err(), "{bad} should fail");
        }
    }

    #[test]
    fn leavers_by_status_or_past_end_date() {
        let now = "2026-06-10T12:00:00Z".parse::<DateTime<Utc>>().unwrap();
        let mut p = Person::new("E1", "A", "B", "a@x.io");
        assert!(!p.is_leaver(now));
        p.end_date = NaiveDate::from_ymd_opt(2026, 6, 10);
        assert!(!p.is_leaver(now), "their last day is today");
        assert_eq!(
            p.leaves_at().unwrap().to_rfc3339(),
            "2026-06-11T00:00:00+00:00"
        );
        p.end_date = NaiveDate::from_ymd_opt(2026, 6, 9);
        assert!(p.is_leaver(now));
        let mut t = Person::new("E2", "A", "B", "a@x.io");
        t.status = EmploymentStatus::Terminated;
        assert!(t.is_leaver(now));
        for k in OperationKind::ALL {
            assert_eq!(k.as_str().parse::<OperationKind>(), Ok(k));
        }
        for st in OperationStatus::ALL {
            assert_eq!(st.as_str().parse::<OperationStatus>(), Ok(st));
        }
    }

    #[test]
    fn status_parses_case_insensitively() {
        assert_eq!(
            " Active ".parse::<EmploymentStatus>(),
            Ok(EmploymentStatus::Active)
        );
        assert!("retired".parse::<EmploymentStatus>().is_err());
    }
}

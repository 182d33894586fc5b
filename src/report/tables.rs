//! The report's content as format-neutral tables: each renderer (HTML, CSV, JSON) writes
//! the same header fields and the same four tables, so the formats never disagree.

use super::data::{self, Evidence};

/// One value. Lists are entitlements or accounts; `Secs` is a duration in seconds.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Text(String),
    Int(i64),
    Secs(f64),
    List(Vec<String>),
    Null,
}

impl Cell {
    pub fn text(s: impl Into<String>) -> Cell {
        Cell::Text(s.into())
    }

    pub fn opt(s: Option<&str>) -> Cell {
        s.map_or(Cell::Null, Cell::text)
    }

    pub fn int(i: Option<i64>) -> Cell {
        i.map_or(Cell::Null, Cell::Int)
    }

    /// The value as one line of text (lists joined by `sep`).
    pub fn plain(&self, sep: &str) -> String {
        match self {
            Cell::Text(s) => s.clone(),
            Cell::Int(i) => i.to_string(),
            Cell::Secs(s) => format!("{s:.3}"),
            Cell::List(l) => l.join(sep),
            Cell::Null => String::new(),
        }
    }

    pub fn is_number(&self) -> bool {
        matches!(self, Cell::Int(_) | Cell::Secs(_))
    }
}

/// A section's table.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// The section's name (`systems`, `access`, `findings`, `operations`).
    pub name: &'static str,
    pub title: &'static str,
    /// What the table shows and where it comes from.
    pub note: String,
    pub columns: &'static [&'static str],
    pub rows: Vec<Vec<Cell>>,
}

/// The header: a title, then fields, then each system's observation.
#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    pub title: String,
    pub fields: Vec<(&'static str, Cell)>,
    pub observations: Table,
}

pub const TITLE: &str = "accessdesk access reconciliation evidence (SOC 2 CC6.1, CC6.2, CC6.3)";

pub fn header(ev: &Evidence) -> Header {
    let r = &ev.run;
    let (head_seq, head_hash) = match &ev.audit_head.recorded {
        Some((s, h)) => (Cell::Int(*s), Cell::text(h)),
        None => (Cell::Null, Cell::Null),
    };
    let mut fields = vec![
        ("report", Cell::text("reconciliation evidence")),
        ("generated_at", Cell::text(&ev.generated_at)),
        ("generated_by", Cell::text(&ev.generated_by)),
        ("run_id", Cell::Int(r.id)),
        ("run_started_at", Cell::text(&r.started_at)),
        ("run_finished_at", Cell::opt(r.finished_at.as_deref())),
        ("run_status", Cell::text(&r.status)),
        (
            "run_scope",
            Cell::text(r.scope.as_deref().unwrap_or("all systems")),
        ),
        ("run_actor", Cell::text(&r.actor)),
        ("policy_version_sha256", Cell::text(&ev.policy_sha256)),
        (
            "policy_version_covers",
            Cell::text(data::POLICY_VERSION_COVERS),
        ),
        ("audit_head_seq", head_seq),
        ("audit_head_hash", head_hash),
    ];
    if ev.audit_head.last_event.as_ref() != ev.audit_head.recorded.as_ref() {
        let (s, h) = match &ev.audit_head.last_event {
            Some((s, h)) => (Cell::Int(*s), Cell::text(h)),
            None => (Cell::Null, Cell::Null),
        };
        fields.push(("audit_last_event_seq", s));
        fields.push(("audit_last_event_hash", h));
    }
    fields.push((
        "audit_head_note",
        Cell::text("meta.audit_head when the report was rendered; this report's own report.written event follows it"),
    ));
    fields.push((
        "intended_access_source",
        Cell::text("intended_grants as the policy computes them at report time"),
    ));
    fields.push((
        "actual_access_source",
        Cell::text(format!(
            "memberships observed by run {}; accounts tied to people by accessdesk's accounts table (proven owners), else by the run's findings",
            r.id
        )),
    ));
    Header {
        title: TITLE.into(),
        fields,
        observations: observations(ev),
    }
}

fn observations(ev: &Evidence) -> Table {
    Table {
        name: "header",
        title: "Observation per system",
        note: String::new(),
        columns: &[
            "system",
            "status",
            "read_started_at",
            "observed_at",
            "accounts",
            "memberships",
            "pages",
            "error",
        ],
        rows: ev
            .reads
            .iter()
            .map(|c| {
                vec![
                    Cell::text(&c.system),
                    Cell::text(&c.status),
                    Cell::text(&c.started_at),
                    Cell::opt(c.observed_at.as_deref()),
                    Cell::Int(c.accounts),
                    Cell::Int(c.memberships),
                    Cell::Int(c.pages),
                    Cell::opt(c.error.as_deref()),
                ]
            })
            .collect(),
    }
}

pub fn systems(ev: &Evidence) -> Table {
    Table {
        name: "systems",
        title: "Systems: integration pattern and delay",
        note: format!(
            "Integration pattern of every system today: {}. Trigger: {}.",
            data::PATTERN,
            data::TRIGGER
        ),
        columns: &[
            "system",
            "kind",
            "api_version",
            "read_in_this_run",
            "integration_pattern",
            "trigger",
            "expected_delay",
            "last_full_read_run",
            "last_full_read_started_at",
            "last_full_read_completed_at",
            "last_full_read_seconds",
        ],
        rows: ev
            .systems
            .iter()
            .map(|s| {
                let last = s.last_full_read.as_ref();
                vec![
                    Cell::text(&s.name),
                    Cell::text(s.kind.as_deref().unwrap_or("(no longer configured)")),
                    Cell::opt(s.api_version.as_deref()),
                    Cell::text(&s.read_status),
                    Cell::text(data::PATTERN),
                    Cell::text(data::TRIGGER),
                    Cell::text(s.expected_delay()),
                    Cell::int(last.map(|l| l.run)),
                    Cell::opt(last.map(|l| l.started_at.as_str())),
                    Cell::opt(last.map(|l| l.completed_at.as_str())),
                    last.and_then(|l| l.seconds).map_or(Cell::Null, Cell::Secs),
                ]
            })
            .collect(),
    }
}

pub fn access(ev: &Evidence) -> Table {
    Table {
        name: "access",
        title: "Intended versus actual access",
        note: format!(
            "One row per person with intended entitlements or an observed account in a system, and one per account nobody owns. Intended: the policy's grants at report time. Actual: the memberships run {} observed.",
            ev.run.id
        ),
        columns: &[
            "system",
            "person",
            "name",
            "hr_status",
            "accounts",
            "linked_by",
            "intended",
            "actual",
            "not_observed",
            "not_intended",
            "status",
            "note",
        ],
        rows: ev
            .access
            .iter()
            .map(|a| {
                vec![
                    Cell::text(&a.system),
                    Cell::opt(a.person.as_deref()),
                    Cell::opt(a.name.as_deref()),
                    Cell::opt(a.hr_status.as_deref()),
                    Cell::List(a.accounts.clone()),
                    Cell::List(a.linked_by.clone()),
                    Cell::List(a.intended.clone()),
                    Cell::List(a.actual.clone()),
                    Cell::List(a.not_observed()),
                    Cell::List(a.not_intended()),
                    Cell::text(a.status),
                    Cell::text(&a.note),
                ]
            })
            .collect(),
    }
}

pub fn findings(ev: &Evidence) -> Table {
    Table {
        name: "findings",
        title: "Findings and their dispositions",
        note: format!(
            "Every finding of run {}, leavers first, then by severity.",
            ev.run.id
        ),
        columns: &[
            "finding",
            "class",
            "severity",
            "system",
            "person",
            "account",
            "entitlement",
            "detail",
            "disposition",
            "decided_by",
            "decided_at",
            "reason",
            "until",
            "operations",
        ],
        rows: ev
            .findings
            .iter()
            .map(|f| {
                let ops = ev.finding_ops.get(&f.id).cloned().unwrap_or_default();
                vec![
                    Cell::Int(f.id),
                    Cell::text(&f.class),
                    Cell::text(&f.severity),
                    Cell::text(&f.system),
                    Cell::opt(f.person.as_deref()),
                    Cell::opt(f.account.as_deref()),
                    Cell::opt(f.entitlement.as_deref()),
                    Cell::text(&f.detail),
                    Cell::text(&f.status),
                    Cell::opt(f.decided_by.as_deref()),
                    Cell::opt(f.decided_at.as_deref()),
                    Cell::opt(f.reason.as_deref()),
                    Cell::opt(f.until.as_deref()),
                    Cell::List(ops.iter().map(|o| format!("#{o}")).collect()),
                ]
            })
            .collect(),
    }
}

pub fn operations(ev: &Evidence) -> Table {
    Table {
        name: "operations",
        title: "Remediating operations and vendor responses",
        note: "Each operation an enforced finding queued, one row per attempt, with what the vendor answered (a successful attempt records outcome ok and no error).".into(),
        columns: &[
            "finding",
            "operation",
            "kind",
            "system",
            "person",
            "entitlement",
            "operation_status",
            "created_at",
            "updated_at",
            "attempt",
            "attempt_started_at",
            "attempt_finished_at",
            "outcome",
            "http_status",
            "vendor_code",
            "error_class",
            "message",
            "request",
        ],
        rows: ev
            .operations
            .iter()
            .map(|o| {
                vec![
                    Cell::Int(o.finding),
                    Cell::Int(o.op),
                    Cell::text(o.kind.as_deref().unwrap_or("(not in the queue)")),
                    Cell::opt(o.system.as_deref()),
                    Cell::opt(o.person.as_deref()),
                    Cell::opt(o.entitlement.as_deref()),
                    Cell::opt(o.status.as_deref()),
                    Cell::opt(o.created_at.as_deref()),
                    Cell::opt(o.updated_at.as_deref()),
                    Cell::int(o.attempt),
                    Cell::opt(o.started_at.as_deref()),
                    Cell::opt(o.finished_at.as_deref()),
                    Cell::text(o.outcome.as_deref().unwrap_or(if o.attempt.is_none() {
                        "(not attempted yet)"
                    } else {
                        ""
                    })),
                    Cell::int(o.http_status),
                    Cell::opt(o.vendor_code.as_deref()),
                    Cell::opt(o.error_class.as_deref()),
                    Cell::opt(o.message.as_deref()),
                    Cell::opt(o.request.as_deref()),
                ]
            })
            .collect(),
    }
}

/// The four tables after the header, in section order.
pub fn body(ev: &Evidence) -> [Table; 4] {
    [systems(ev), access(ev), findings(ev), operations(ev)]
}

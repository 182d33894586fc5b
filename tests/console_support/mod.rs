//! A fixed, hand-built console snapshot (no clock, no database), shared by the reducer
//! tests, the snapshot tests and the draw benchmark.
#![allow(dead_code)]

use accessdesk::adapters::http::LimiterSnapshot;
use accessdesk::model::{OperationKind, OperationStatus};
use accessdesk::store::queue::OpRow;
use accessdesk::tui::data::*;
use accessdesk::tui::state::{AppState, SystemInfo};
use accessdesk::tui::theme::Theme;
use chrono::{DateTime, TimeZone, Utc};
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 26, 9, 30, 0).unwrap()
}

pub fn ts(secs_before: i64) -> String {
    (t0() - chrono::Duration::seconds(secs_before))
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

pub fn op(
    id: i64,
    system: &str,
    kind: OperationKind,
    person: &str,
    ent: Option<&str>,
    status: OperationStatus,
) -> OpRow {
    OpRow {
        id,
        idempotency_key: format!("k{id}"),
        kind,
        system: system.into(),
        person_id: person.into(),
        entitlement: ent.map(str::to_string),
        status,
        attempts: if status == OperationStatus::Queued {
            0
        } else {
            1
        },
        next_attempt_at: None,
        priority: 5,
        last_error_class: None,
        last_error_status: None,
        last_error_code: None,
        last_error_message: None,
        blocked_reason: None,
        cause: Some("plan:p-1".into()),
        plan_id: Some("p-1".into()),
        verify_until: None,
        updated_at: ts(30),
    }
}

fn failed(mut o: OpRow, class: &str, status: u16, code: &str, msg: &str) -> OpRow {
    o.status = OperationStatus::Failed;
    o.last_error_class = Some(class.into());
    o.last_error_status = Some(status);
    o.last_error_code = Some(code.into());
    o.last_error_message = Some(msg.into());
    o.attempts = 3;
    o
}

pub fn person(id: &str, name: &str, dept: &str, status: &str) -> PersonRow {
    let email = format!("{}@example.com", name.to_lowercase().replace(' ', "."));
    PersonRow {
        id: id.into(),
        name: name.into(),
        email,
        department: dept.into(),
        title: "Engineer".into(),
        status: status.into(),
        rehired: None,
    }
}

pub fn people() -> Vec<PersonRow> {
    vec![
        person("E001", "Ada Lovelace", "Engineering", "active"),
        person("E002", "Alan Turing", "Engineering", "active"),
        person("E003", "Anke van der Berg", "Sales", "active"),
        person("E004", "Grace Hopper", "Engineering", "pending"),
        person("E005", "Juan de la Cruz", "Finance", "active"),
        person("E006", "Mary Smith-Jones", "Finance", "terminated"),
        person("E007", "Иван Петров", "Support", "active"),
        person("E008", "山田 太郎", "Support", "leave"),
    ]
}

fn system(name: &str, kind: &str, counts: [u64; 9], rate: Option<LimiterSnapshot>) -> SystemRow {
    SystemRow {
        name: name.into(),
        kind: kind.into(),
        counts: StatusCounts({
            let mut all = [0; 10];
            all[..9].copy_from_slice(&counts);
            all
        }),
        failed_last_hour: counts[6],
        succeeded_last_minute: 30,
        measured_over: Duration::from_secs(60),
        last_sync: Some(ts(120)),
        last_observed: Some(ts(300)),
        open_findings: 2,
        auth: AuthState::Ok,
        rate,
        held: None,
        budget_per_minute: Some(600),
    }
}

pub fn snapshot() -> Snapshot {
    use OperationKind::*;
    use OperationStatus::*;
    let mut systems = vec![
        system(
            "aws",
            "aws_iam",
            [1, 0, 0, 12, 0, 0, 0, 40, 0],
            Some(LimiterSnapshot {
                limit: None,
                remaining: None,
                reset_in: None,
                rate_per_sec: 5.0,
                in_flight: 1,
                throttled: 0,
            }),
        ),
        system(
            "okta",
            "okta",
            [4, 2, 1, 120, 2, 3, 3, 300, 0],
            Some(LimiterSnapshot {
                limit: Some(600),
                remaining: Some(90),
                reset_in: Some(Duration::from_secs(42)),
                rate_per_sec: 8.5,
                in_flight: 4,
                throttled: 7,
            }),
        ),
        system("zoom", "scim", [0, 0, 0, 0, 1, 0, 2, 80, 0], None),
    ];
    systems[2].auth = AuthState::Failed("invalid token".into());
    systems[2].held = Some(
        "zoom: the plan would deactivate 40 accounts (50% of its 80 accounts); the limit is 8"
            .into(),
    );
    let mut totals = StatusCounts::default();
    for s in &systems {
        for i in 0..9 {
            totals.0[i] += s.counts.0[i];
        }
    }
    let mut queue = vec![
        op(101, "okta", CreateAccount, "E004", None, Running),
        op(
            102,
            "okta",
            AddMembership,
            "E004",
            Some("okta:group:engineering"),
            Queued,
        ),
        op(103, "aws", CreateAccount, "E004", None, Queued),
        op(
            104,
            "okta",
            AddMembership,
            "E002",
            Some("okta:group:prod-admins"),
            PendingApproval,
        ),
        failed(
            op(105, "zoom", CreateAccount, "E005", None, Failed),
            "permanent",
            400,
            "invalidValue",
            "userName is not valid",
        ),
        failed(
            op(106, "zoom", CreateAccount, "E003", None, Failed),
            "permanent",
            400,
            "invalidValue",
            "userName is not valid",
        ),
        failed(
            op(
                107,
                "okta",
                AddMembership,
                "E001",
                Some("okta:group:finance"),
                Failed,
            ),
            "unauthorized",
            403,
            "E0000006",
            "You do not have permission",
        ),
    ];
    let mut blocked = op(
        108,
        "zoom",
        AddMembership,
        "E005",
        Some("zoom:group:users"),
        Blocked,
    );
    blocked.blocked_reason = Some("depends on #105, which failed".into());
    queue.push(blocked);
    let mut retry = op(
        109,
        "okta",
        AddMembership,
        "E007",
        Some("okta:group:support"),
        RetryWait,
    );
    retry.last_error_class = Some("rate_limited".into());
    retry.last_error_status = Some(429);
    retry.last_error_message = Some("rate limited; retrying at the reset".into());
    retry.next_attempt_at = Some(ts(-20));
    queue.push(retry);
    let groups = vec![
        FailureGroup {
            key: "zoom/permanent/invalidValue".into(),
            system: "zoom".into(),
            class: "permanent".into(),
            code_or_message: "invalidValue".into(),
            message: "userName is not valid".into(),
            op_ids: vec![105, 106],
        },
        FailureGroup {
            key: "okta/unauthorized/E0000006".into(),
            system: "okta".into(),
            class: "unauthorized".into(),
            code_or_message: "E0000006".into(),
            message: "You do not have permission".into(),
            op_ids: vec![107],
        },
    ];
    let approvals = vec![
        ApprovalRow {
            id: 1,
            op_id: Some(104),
            person_id: "E002".into(),
            person_name: "Alan Turing".into(),
            entitlement: "okta:group:prod-admins".into(),
            rule: "sre-prod".into(),
            risk: "privileged".into(),
            requested_at: ts(3600),
        },
        ApprovalRow {
            id: 2,
            op_id: None,
            person_id: "E001".into(),
            person_name: "Ada Lovelace".into(),
            entitlement: "aws:group:billing".into(),
            rule: "finance-leads".into(),
            risk: "high".into(),
            requested_at: ts(600),
        },
        ApprovalRow {
            id: 3,
            op_id: None,
            person_id: "E007".into(),
            person_name: "Иван Петров".into(),
            entitlement: "zoom:group:webinar-hosts".into(),
            rule: "support-hosts".into(),
            risk: "medium".into(),
            requested_at: ts(90),
        },
    ];
    let audit = (1..=12)
        .rev()
        .map(|i| AuditRow {
            seq: i,
            ts: ts(1000 - i * 10),
            actor: if i % 3 == 0 {
                "alice".into()
            } else {
                "engine".into()
            },
            action: match i % 4 {
                0 => "op.status".into(),
                1 => "person.created".into(),
                2 => "approval.approved".into(),
                _ => "grant.added".into(),
            },
            subject: format!("E00{}", i % 8 + 1),
            details: format!("{{\"n\":{i}}}"),
        })
        .collect();
    let mut credentials = BTreeMap::new();
    credentials.insert(
        "okta".into(),
        CredentialInfo {
            reference: Some("keyring:okta-token".into()),
            present: Some(true),
            detail: None,
            set_at: Some(ts(86_400)),
            last_auth_ok_at: Some(ts(5)),
            hygiene: Some(accessdesk::engine::hygiene::Hygiene {
                system: "okta".into(),
                kind: "okta".into(),
                api_version: "v1".into(),
                credential: Some("keyring:okta-token".into()),
                set_at: Some(ts(86_400)),
                last_used_ok_at: Some(ts(5)),
                expires_at: None,
                expiry_source: None,
                expiry: "unknown",
                rotate_after_days: Some(90),
                rotation_due_at: None,
                rotation: "ok",
                token_lifetime_secs: None,
                scopes_granted: None,
                scopes_needed: vec![],
                scopes: None,
                deprecations: vec![accessdesk::adapters::kit::watch::Deprecation {
                    signal: "Sunset".into(),
                    value: "Wed, 01 Sep 2027 00:00:00 GMT".into(),
                    date: Some("2027-09-01T00:00:00+00:00".into()),
                    request: "GET /api/v1/users".into(),
                    first_seen: ts(3_600),
                    last_seen: ts(5),
                }],
            }),
        },
    );
    credentials.insert(
        "zoom".into(),
        CredentialInfo {
            reference: Some("keyring:zoom-scim".into()),
            present: Some(false),
            detail: None,
            set_at: None,
            last_auth_ok_at: None,
            hygiene: None,
        },
    );
    credentials.insert(
        "aws".into(),
        CredentialInfo {
            reference: Some("env:AWS_SECRET".into()),
            present: Some(true),
            detail: None,
            set_at: None,
            last_auth_ok_at: Some(ts(60)),
            hygiene: None,
        },
    );
    Snapshot {
        taken_at: Some(t0()),
        unchanged: false,
        systems,
        totals,
        people: Some(Arc::new(PeopleIndex { rows: people() })),
        people_count: 8,
        queue: Arc::new(queue),
        changed: Arc::new(HashSet::from([102])),
        groups,
        approvals,
        audit: None,
        audit_total: 0,
        matrix: None,
        op: None,
        cell: None,
        credentials,
        // The loader reads the names of the people on the Queue's page.
        names: people().into_iter().map(|p| (p.id, p.name)).collect(),
        load_time: Duration::from_millis(3),
        reconcile: None,
        sources: Vec::new(),
    }
    .with_audit(audit)
}

trait WithAudit {
    fn with_audit(self, a: Vec<AuditRow>) -> Self;
}
impl WithAudit for Snapshot {
    fn with_audit(mut self, a: Vec<AuditRow>) -> Self {
        self.audit_total = 40;
        self.audit = Some(a);
        self
    }
}

pub fn matrix() -> Matrix {
    use CellState::*;
    Matrix {
        person: person("E001", "Ada Lovelace", "Engineering", "active"),
        systems: vec!["aws".into(), "okta".into(), "zoom".into()],
        observed: vec![Some(ts(300)), Some(ts(300)), None],
        rows: vec![
            MatrixRow {
                label: "account".into(),
                cells: vec![Some(InSync), Some(InSync), Some(Failed)],
                recorded: vec![false, false, true],
            },
            MatrixRow {
                label: "group:billing".into(),
                cells: vec![Some(AwaitingApproval), None, None],
                recorded: vec![false, false, true],
            },
            MatrixRow {
                label: "group:engineering".into(),
                cells: vec![None, Some(InSync), Some(Blocked)],
                recorded: vec![false, false, true],
            },
            MatrixRow {
                label: "group:finance".into(),
                cells: vec![None, Some(Excess), None],
                recorded: vec![false, false, true],
            },
            MatrixRow {
                label: "group:oncall".into(),
                cells: vec![None, Some(Queued), Some(Missing)],
                recorded: vec![false, false, true],
            },
            MatrixRow {
                label: "group:readers".into(),
                cells: vec![Some(Running), None, None],
                recorded: vec![false, false, true],
            },
        ],
    }
}

pub fn op_detail() -> OpDetail {
    let mut o = op(
        107,
        "okta",
        OperationKind::AddMembership,
        "E001",
        Some("okta:group:finance"),
        OperationStatus::Failed,
    );
    o.attempts = 2;
    o.last_error_class = Some("unauthorized".into());
    OpDetail {
        op: o,
        request: "add to okta:group:finance of E001 at https://acme.okta.example".into(),
        attempts: vec![
            AttemptRow {
                attempt: 1,
                started_at: ts(100),
                finished_at: Some(ts(99)),
                outcome: Some("retry".into()),
                error_class: Some("rate_limited".into()),
                http_status: Some(429),
                vendor_code: Some("E0000047".into()),
                message: Some("API call exceeded rate limit".into()),
                request: Some("PUT /api/v1/groups/00g1/users/00u1".into()),
                excerpt: Some("{\"errorCode\":\"E0000047\",\"errorSummary\":\"API call exceeded rate limit due to too many requests.\"}".into()),
            },
            AttemptRow {
                attempt: 2,
                started_at: ts(50),
                finished_at: Some(ts(49)),
                outcome: Some("failed".into()),
                error_class: Some("unauthorized".into()),
                http_status: Some(403),
                vendor_code: Some("E0000006".into()),
                message: Some("You do not have permission to perform the requested action".into()),
                request: Some("PUT /api/v1/groups/00g1/users/00u1".into()),
                excerpt: Some("{\"errorCode\":\"E0000006\",\"errorSummary\":\"You do not have permission\",\"token\":\"[redacted]\"}".into()),
            },
        ],
        depends_on: vec![99],
    }
}

pub fn cell() -> CellExplain {
    CellExplain {
        person_id: "E001".into(),
        system: "okta".into(),
        entitlement: Some("okta:group:finance".into()),
        state: Some(CellState::Excess),
        policy: vec![
            "No rule grants okta:group:finance to E001.".into(),
            "  rule \"finance\" did not match: person.department == \"Finance\"".into(),
            "    false: person.department == \"Finance\" (person.department = \"Engineering\")"
                .into(),
        ],
        ops: vec![op_detail()],
    }
}

pub fn system_info() -> BTreeMap<String, SystemInfo> {
    let mut m = BTreeMap::new();
    m.insert(
        "okta".into(),
        SystemInfo {
            base_url: "https://acme.okta.example".into(),
            limits: "600 requests/min, 8 at a time".into(),
            depends_on: vec![],
        },
    );
    m.insert(
        "aws".into(),
        SystemInfo {
            base_url: "https://iam.amazonaws.com".into(),
            limits: "vendor limits only".into(),
            depends_on: vec!["okta".into()],
        },
    );
    m.insert(
        "zoom".into(),
        SystemInfo {
            base_url: "https://api.zoom.example/scim".into(),
            limits: "300 requests/min, 4 at a time, writes verified".into(),
            depends_on: vec!["aws".into(), "okta".into()],
        },
    );
    m
}

/// A console state holding the fixture, as if the loader had just answered.
pub fn state(w: u16, h: u16) -> AppState {
    // The shipped monochrome theme, as `--theme none` loads it.
    let theme = Theme::load("none", None).expect("themes/none.toml loads");
    let mut s = AppState::new(theme, false);
    s.size = (w, h);
    s.system_info = system_info();
    s.themes = vec!["default".into(), "none".into()];
    s.actor = "alice".into();
    accessdesk::tui::reducer::update(
        &mut s,
        accessdesk::tui::reducer::Msg::Data(Box::new(snapshot())),
        t0(),
    );
    s
}

#[allow(clippy::too_many_arguments)]
fn finding(
    id: i64,
    class: &str,
    severity: &str,
    system: &str,
    person: Option<&str>,
    account: &str,
    entitlement: Option<&str>,
    detail: &str,
) -> accessdesk::store::reconcile::FindingRow {
    accessdesk::store::reconcile::FindingRow {
        id,
        run_id: 7,
        key: format!("{class}|{system}|{account}|{}", entitlement.unwrap_or("-")),
        class: class.into(),
        severity: severity.into(),
        system: system.into(),
        person: person.map(str::to_string),
        account: Some(account.into()),
        account_id: Some(format!("ext-{id}")),
        entitlement: entitlement.map(str::to_string),
        detail: detail.into(),
        status: "open".into(),
        decided_by: None,
        decided_at: None,
        reason: None,
        until: None,
    }
}

fn checkpoint(
    system: &str,
    status: &str,
    phase: &str,
    accounts: i64,
    members: i64,
) -> accessdesk::store::reconcile::Checkpoint {
    accessdesk::store::reconcile::Checkpoint {
        system: system.into(),
        status: status.into(),
        phase: phase.into(),
        ent_index: 0,
        cursor: None,
        accounts,
        memberships: members,
        pages: accounts / 100 + members / 100 + 1,
        all_groups: true,
        started_at: ts(600),
        observed_at: (status == "complete").then(|| ts(540)),
        error: (status == "incomplete").then(|| {
            "zoom: 503 Service Unavailable after 5 attempts (GET /scim/v2/Groups?startIndex=201)".to_string()
        }),
    }
}

/// The newest observation run: okta read in full, zoom incomplete, aws still reading;
/// findings of several classes, given out of order (the loader sorts them).
pub fn reconcile_data() -> ReconcileData {
    let mut findings = vec![
        finding(
            11,
            "orphan",
            "high",
            "okta",
            None,
            "old.contractor@example.com",
            None,
            "account old.contractor@example.com matches nobody in HR (no link, HR id, e-mail or login match)",
        ),
        finding(
            12,
            "excess",
            "critical",
            "aws",
            Some("E002"),
            "alan.turing",
            Some("aws:group:admins"),
            "alan.turing is in aws:group:admins, which no rule grants Alan Turing",
        ),
        finding(
            13,
            "leaver_with_access",
            "critical",
            "okta",
            Some("E006"),
            "mary.smith-jones@example.com",
            None,
            "Mary Smith-Jones left on 2026-10-31 and the account is still active",
        ),
        finding(
            14,
            "attribute_drift",
            "low",
            "okta",
            Some("E008"),
            "taro.yamada@example.com",
            None,
            "department: okta has \"Sales\", HR has \"Support\"",
        ),
        finding(
            15,
            "excess",
            "medium",
            "okta",
            Some("E007"),
            "ivan.petrov@example.com",
            Some("okta:group:finance"),
            "ivan.petrov@example.com is in okta:group:finance, which no rule grants Иван Петров",
        ),
        finding(
            16,
            "missing",
            "medium",
            "okta",
            Some("E001"),
            "ada.lovelace@example.com",
            Some("okta:group:oncall"),
            "Ada Lovelace should be in okta:group:oncall",
        ),
        finding(
            17,
            "leaver_with_access",
            "critical",
            "aws",
            Some("E006"),
            "mary.smith-jones",
            Some("aws:group:billing"),
            "Mary Smith-Jones left on 2026-10-31 and is still in aws:group:billing",
        ),
        finding(
            18,
            "unmanaged",
            "low",
            "okta",
            Some("E003"),
            "anke@example.com",
            Some("okta:group:legacy-vpn"),
            "okta:group:legacy-vpn is not in the catalogue; accessdesk never changes it",
        ),
        finding(
            19,
            "excess",
            "medium",
            "okta",
            Some("E005"),
            "juan@example.com",
            Some("okta:group:finance"),
            "juan@example.com is in okta:group:finance, which no rule grants Juan de la Cruz",
        ),
    ];
    findings[5].status = "enforced".into();
    findings[5].decided_by = Some("alice".into());
    findings[5].decided_at = Some(ts(60));
    sort_findings(&mut findings);
    ReconcileData {
        run: Some(accessdesk::store::reconcile::RunRow {
            id: 7,
            started_at: ts(600),
            finished_at: None,
            scope: None,
            status: "running".into(),
            actor: "alice".into(),
        }),
        systems: vec![
            checkpoint("aws", "running", "members", 212, 455),
            checkpoint("okta", "complete", "done", 1204, 3310),
            checkpoint("zoom", "incomplete", "groups", 388, 0),
        ],
        total: findings.len(),
        findings,
    }
}

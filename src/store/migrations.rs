//! Versioned schema migrations, tracked in SQLite's `user_version`.
//! Append new migrations; never edit a released one.

pub const MIGRATIONS: &[&str] = &[
    // 1: the foundation schema.
    r#"
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE people (
    hris_id        TEXT PRIMARY KEY,
    given_name     TEXT NOT NULL,
    family_name    TEXT NOT NULL,
    preferred_name TEXT,
    display_name   TEXT,
    email          TEXT NOT NULL,
    department     TEXT NOT NULL DEFAULT '',
    title          TEXT NOT NULL DEFAULT '',
    manager_id     TEXT,
    location       TEXT NOT NULL DEFAULT '',
    cost_center    TEXT NOT NULL DEFAULT '',
    status         TEXT NOT NULL CHECK (status IN ('pending','active','leave','terminated')),
    start_date     TEXT,
    end_date       TEXT,
    custom         TEXT NOT NULL DEFAULT '{}',
    updated_at     TEXT NOT NULL
);
CREATE INDEX people_email ON people(email COLLATE NOCASE);

CREATE TABLE systems (
    name        TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,
    api_version TEXT NOT NULL,
    depends_on  TEXT NOT NULL DEFAULT '[]'
);

CREATE TABLE entitlements (
    id                INTEGER PRIMARY KEY,
    system            TEXT NOT NULL REFERENCES systems(name) ON DELETE CASCADE,
    kind              TEXT NOT NULL,
    name              TEXT NOT NULL,
    external_id       TEXT NOT NULL,
    risk              TEXT NOT NULL,
    requires_approval INTEGER NOT NULL,
    UNIQUE (system, kind, name)
);

CREATE TABLE accounts (
    id          INTEGER PRIMARY KEY,
    system      TEXT NOT NULL,
    person_id   TEXT REFERENCES people(hris_id) ON DELETE SET NULL,
    login       TEXT NOT NULL,
    external_id TEXT,
    active      INTEGER NOT NULL,
    observed_at TEXT,
    UNIQUE (system, login)
);

-- Intended access, computed from policy. One row per person and entitlement.
CREATE TABLE intended_grants (
    person_id         TEXT NOT NULL REFERENCES people(hris_id) ON DELETE CASCADE,
    entitlement       TEXT NOT NULL,
    rule              TEXT NOT NULL,
    requires_approval INTEGER NOT NULL,
    expires_at        TEXT,
    PRIMARY KEY (person_id, entitlement)
) WITHOUT ROWID;

-- Actual access, as last read from each system.
CREATE TABLE observed_access (
    system        TEXT NOT NULL,
    account_login TEXT NOT NULL,
    person_id     TEXT,
    entitlement   TEXT NOT NULL,
    observed_at   TEXT NOT NULL,
    PRIMARY KEY (system, account_login, entitlement)
) WITHOUT ROWID;

CREATE TABLE operations (
    id                 INTEGER PRIMARY KEY,
    idempotency_key    TEXT NOT NULL UNIQUE,
    kind               TEXT NOT NULL,
    system             TEXT NOT NULL,
    person_id          TEXT NOT NULL,
    entitlement        TEXT,
    status             TEXT NOT NULL,
    attempts           INTEGER NOT NULL DEFAULT 0,
    next_attempt_at    TEXT,
    last_error_class   TEXT,
    last_error_status  INTEGER,
    last_error_message TEXT,
    cause              TEXT,
    created_at         TEXT NOT NULL,
    updated_at         TEXT NOT NULL
);
CREATE INDEX operations_status ON operations(status, next_attempt_at);

CREATE TABLE approvals (
    id           INTEGER PRIMARY KEY,
    person_id    TEXT NOT NULL,
    entitlement  TEXT NOT NULL,
    rule         TEXT NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('pending','approved','rejected')),
    requested_at TEXT NOT NULL,
    decided_at   TEXT,
    decided_by   TEXT,
    reason       TEXT
);

-- Append-only, hash-chained audit log. See store/audit.rs.
CREATE TABLE audit_events (
    seq       INTEGER PRIMARY KEY,
    ts        TEXT NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    subject   TEXT NOT NULL,
    details   TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL
);
CREATE INDEX audit_ts ON audit_events(ts);
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit_events
    BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit_events
    BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END;

-- Names and set dates of keychain secrets; never values.
CREATE TABLE secrets_index (
    name            TEXT PRIMARY KEY,
    backend         TEXT NOT NULL,
    set_at          TEXT NOT NULL,
    last_auth_ok_at TEXT
);
"#,
    // 2: the engine: plans, richer operations, attempts, and indexes the planner reads by.
    r#"
ALTER TABLE operations ADD COLUMN plan_id TEXT;
ALTER TABLE operations ADD COLUMN priority INTEGER NOT NULL DEFAULT 5;
ALTER TABLE operations ADD COLUMN blocked_reason TEXT;
ALTER TABLE operations ADD COLUMN last_error_code TEXT;
ALTER TABLE operations ADD COLUMN verify_until TEXT;
CREATE INDEX operations_person ON operations(person_id, system);
-- The scheduler asks each system for its next runnable operations.
CREATE INDEX operations_ready ON operations(system, status, priority, person_id, id);
CREATE INDEX operations_plan ON operations(plan_id);
ALTER TABLE operations ADD COLUMN external_ref TEXT;
ALTER TABLE approvals ADD COLUMN op_id INTEGER REFERENCES operations(id);

-- An operation runs only after every operation it depends on has succeeded.
CREATE TABLE op_deps (
    op_id      INTEGER NOT NULL REFERENCES operations(id) ON DELETE CASCADE,
    depends_on INTEGER NOT NULL REFERENCES operations(id) ON DELETE CASCADE,
    PRIMARY KEY (op_id, depends_on)
) WITHOUT ROWID;
CREATE INDEX op_deps_reverse ON op_deps(depends_on);

CREATE TABLE op_attempts (
    op_id       INTEGER NOT NULL REFERENCES operations(id) ON DELETE CASCADE,
    attempt     INTEGER NOT NULL,
    started_at  TEXT NOT NULL,
    finished_at TEXT,
    outcome     TEXT,
    error_class TEXT,
    http_status INTEGER,
    vendor_code TEXT,
    message     TEXT,
    excerpt     TEXT,
    PRIMARY KEY (op_id, attempt)
) WITHOUT ROWID;

CREATE TABLE plans (
    id          TEXT PRIMARY KEY,
    created_at  TEXT NOT NULL,
    scope       TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('planned','held','applied','refused')),
    held_reason TEXT,
    summary     TEXT NOT NULL
);

CREATE TABLE plan_ops (
    plan_id           TEXT NOT NULL REFERENCES plans(id) ON DELETE CASCADE,
    seq               INTEGER NOT NULL,
    kind              TEXT NOT NULL,
    system            TEXT NOT NULL,
    person_id         TEXT NOT NULL,
    entitlement       TEXT,
    requires_approval INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (plan_id, seq)
) WITHOUT ROWID;

-- The planner reads observed access and accounts by person; covering indexes keep those
-- reads sequential.
CREATE INDEX observed_by_person ON observed_access(person_id, entitlement);
CREATE INDEX accounts_by_person ON accounts(person_id, system, active);
"#,
    r#"
-- The console reads each system's last sync and recent completions every tick; these keep
-- those reads to an index seek however much history there is.
CREATE INDEX accounts_last_sync ON accounts(system, observed_at);
CREATE INDEX operations_recent ON operations(status, updated_at);
-- Each attempt keeps the request line (method and redacted path) beside the response.
ALTER TABLE op_attempts ADD COLUMN request TEXT;
"#,
    r#"
-- Assigned logins: a person's login in a system is made once and kept (model/login.rs).
-- A leaver's row stays, so the login stays reserved. `create_sent_at` is our record of
-- having sent the create for this login (proof of identity where the target cannot hold
-- an HR id). Uniqueness is case-insensitive, through `login_key`.
CREATE TABLE logins (
    system         TEXT NOT NULL,
    person_id      TEXT NOT NULL,
    login          TEXT NOT NULL,
    login_key      TEXT NOT NULL,
    assigned_at    TEXT NOT NULL,
    create_sent_at TEXT,
    PRIMARY KEY (system, person_id),
    UNIQUE (system, login_key)
);
INSERT OR IGNORE INTO logins (system, person_id, login, login_key, assigned_at)
    SELECT system, person_id, login, lower(login), COALESCE(observed_at, '')
    FROM accounts WHERE person_id IS NOT NULL ORDER BY id;
CREATE INDEX accounts_login_key ON accounts(system, lower(login));
-- Accounts found in a target that would have been attached to a person without proof
-- that they are theirs: reported, never used.
CREATE TABLE identity_conflicts (
    id            INTEGER PRIMARY KEY,
    system        TEXT NOT NULL,
    person_id     TEXT NOT NULL,
    login         TEXT NOT NULL,
    external_id   TEXT,
    owner_hris_id TEXT,
    detected_at   TEXT NOT NULL,
    resolved_at   TEXT,
    resolution    TEXT,
    UNIQUE (system, person_id, login)
);
-- A planned operation may wait for its time (a leaver's deactivation on their end date),
-- and an attribute update says what changes (old -> new).
ALTER TABLE plan_ops ADD COLUMN not_before TEXT;
ALTER TABLE plan_ops ADD COLUMN detail TEXT;
-- The attributes accessdesk last wrote to each account, and when: a person changed since
-- then (a mover) is compared against them to plan an update.
ALTER TABLE accounts ADD COLUMN attrs TEXT;
ALTER TABLE accounts ADD COLUMN attrs_at TEXT;
-- What an approval-needing grant rests on (policy/mod.rs grant_inputs), and the same at
-- the time an approval was rejected: a rejection sticks while the two are equal.
ALTER TABLE intended_grants ADD COLUMN inputs TEXT;
ALTER TABLE approvals ADD COLUMN inputs TEXT;
CREATE INDEX approvals_by_grant ON approvals(person_id, entitlement, status);
"#,
    r#"
-- Readiness kept incrementally: how many of an operation's dependencies have not yet
-- succeeded. Enqueue sets it; the transition into `succeeded` decrements its dependents'.
-- The scheduler then reads only runnable rows (unmet_deps = 0) instead of testing every
-- queued row's dependencies on every turn.
ALTER TABLE operations ADD COLUMN unmet_deps INTEGER NOT NULL DEFAULT 0;
UPDATE operations SET unmet_deps = (
    SELECT count(*) FROM op_deps d JOIN operations p ON p.id = d.depends_on
    WHERE d.op_id = operations.id AND p.status != 'succeeded')
WHERE id IN (SELECT op_id FROM op_deps);
-- The audit chain's head when a plan was stored: applying it while the head is still there
-- (nothing was written since) needs no recompute to know the world did not change.
ALTER TABLE plans ADD COLUMN audit_seq INTEGER;
-- Operations per (system, status), so the console's overview reads a handful of rows
-- however long the queue is (it used to count a million on every refresh). Enqueue and
-- transition keep them (store/queue.rs; a trigger on INSERT made applying a
-- 700,000-operation plan twice as slow); a trigger follows deletions.
CREATE TABLE op_counts (
    system TEXT NOT NULL,
    status TEXT NOT NULL,
    n      INTEGER NOT NULL,
    PRIMARY KEY (system, status)
) WITHOUT ROWID;
INSERT INTO op_counts (system, status, n)
    SELECT system, status, count(*) FROM operations GROUP BY system, status;
CREATE TRIGGER op_counts_delete AFTER DELETE ON operations BEGIN
    UPDATE op_counts SET n = n - 1 WHERE system = OLD.system AND status = OLD.status;
END;
DROP INDEX operations_ready;
CREATE INDEX operations_runnable ON operations(system, status, unmet_deps, priority, person_id, id);
"#,
    r#"
-- When a leaver's return (terminated -> active) was last applied by an import; NULL for
-- everyone else, and cleared when they leave again (store/people.rs). The planner marks
-- their reactivations as a rehire and the console shows it.
ALTER TABLE people ADD COLUMN rehired_at TEXT;
"#,
    r#"
-- Reconciliation (store/reconcile.rs, engine/observe.rs, engine/reconcile.rs).
-- A run reads every account and membership of one system or all of them. Each system's
-- read keeps a checkpoint (phase, entitlement, cursor) after every page, so an
-- interrupted run resumes; a system not read in full is `incomplete`, never empty.
CREATE TABLE observe_runs (
    id          INTEGER PRIMARY KEY,
    started_at  TEXT NOT NULL,
    finished_at TEXT,
    scope       TEXT,
    status      TEXT NOT NULL CHECK (status IN ('running','complete','incomplete')),
    actor       TEXT NOT NULL
);
CREATE TABLE observe_systems (
    run_id      INTEGER NOT NULL REFERENCES observe_runs(id) ON DELETE CASCADE,
    system      TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('running','complete','incomplete')),
    phase       TEXT NOT NULL,
    ent_index   INTEGER NOT NULL DEFAULT 0,
    cursor      TEXT,
    accounts    INTEGER NOT NULL DEFAULT 0,
    memberships INTEGER NOT NULL DEFAULT 0,
    pages       INTEGER NOT NULL DEFAULT 0,
    all_groups  INTEGER NOT NULL DEFAULT 0,
    started_at  TEXT NOT NULL,
    observed_at TEXT,
    error       TEXT,
    PRIMARY KEY (run_id, system)
) WITHOUT ROWID;
-- What a run read: accounts, the groups it listed, and who is in each.
CREATE TABLE observed_accounts (
    run_id      INTEGER NOT NULL REFERENCES observe_runs(id) ON DELETE CASCADE,
    system      TEXT NOT NULL,
    external_id TEXT NOT NULL,
    login       TEXT NOT NULL,
    email       TEXT,
    active      INTEGER NOT NULL,
    hris_id     TEXT,
    attributes  TEXT,
    -- 'accounts': from the account listing; 'members': only seen in a group's listing
    -- (it appeared while the run read).
    seen_in     TEXT NOT NULL DEFAULT 'accounts',
    PRIMARY KEY (run_id, system, external_id)
) WITHOUT ROWID;
CREATE TABLE observed_groups (
    run_id      INTEGER NOT NULL REFERENCES observe_runs(id) ON DELETE CASCADE,
    system      TEXT NOT NULL,
    entitlement TEXT NOT NULL,
    external_id TEXT NOT NULL,
    catalogued  INTEGER NOT NULL,
    PRIMARY KEY (run_id, system, entitlement)
) WITHOUT ROWID;
CREATE TABLE observed_members (
    run_id      INTEGER NOT NULL REFERENCES observe_runs(id) ON DELETE CASCADE,
    system      TEXT NOT NULL,
    entitlement TEXT NOT NULL,
    account_id  TEXT NOT NULL,
    PRIMARY KEY (run_id, system, entitlement, account_id)
) WITHOUT ROWID;
-- Drift found by a run. `key` names the same drift across runs (class, system, account,
-- entitlement), so an accepted exception covers it until it expires.
CREATE TABLE findings (
    id            INTEGER PRIMARY KEY,
    run_id        INTEGER NOT NULL REFERENCES observe_runs(id) ON DELETE CASCADE,
    key           TEXT NOT NULL,
    class         TEXT NOT NULL,
    severity      TEXT NOT NULL,
    rank          INTEGER NOT NULL,
    system        TEXT NOT NULL,
    person_id     TEXT,
    account       TEXT,
    account_id    TEXT,
    entitlement   TEXT,
    detail        TEXT NOT NULL,
    status        TEXT NOT NULL DEFAULT 'open'
                  CHECK (status IN ('open','enforced','accepted','ignored')),
    decided_by    TEXT,
    decided_at    TEXT,
    reason        TEXT,
    until         TEXT,
    UNIQUE (run_id, key)
);
CREATE INDEX findings_by_run ON findings(run_id, rank, system);
CREATE INDEX findings_by_status ON findings(status, class, system);
-- The operations an enforced finding queued (their attempts hold the vendor's answers).
CREATE TABLE finding_ops (
    finding_id INTEGER NOT NULL REFERENCES findings(id) ON DELETE CASCADE,
    op_id      INTEGER NOT NULL,
    PRIMARY KEY (finding_id, op_id)
) WITHOUT ROWID;
-- Accepted drift: comes back when it expires.
CREATE TABLE finding_exceptions (
    key        TEXT PRIMARY KEY,
    reason     TEXT NOT NULL,
    approver   TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    created_at TEXT NOT NULL,
    finding_id INTEGER
);
-- Whether a row of actual access was read from the target ('observed') or is only our
-- record of an operation that succeeded since ('recorded').
ALTER TABLE observed_access ADD COLUMN source TEXT NOT NULL DEFAULT 'recorded';
ALTER TABLE accounts ADD COLUMN source TEXT NOT NULL DEFAULT 'recorded';
"#,
    // 8: memberships keyed by account first, so classification streams a system's
    // accounts and their memberships side by side (a merge join) instead of loading both.
    r#"
CREATE TABLE observed_members_by_account (
    run_id      INTEGER NOT NULL REFERENCES observe_runs(id) ON DELETE CASCADE,
    system      TEXT NOT NULL,
    account_id  TEXT NOT NULL,
    entitlement TEXT NOT NULL,
    PRIMARY KEY (run_id, system, account_id, entitlement)
) WITHOUT ROWID;
INSERT INTO observed_members_by_account (run_id, system, account_id, entitlement)
    SELECT run_id, system, account_id, entitlement FROM observed_members;
DROP TABLE observed_members;
ALTER TABLE observed_members_by_account RENAME TO observed_members;
"#,
    // 9: complete reads packed for reconciliation (store/pack.rs): a few large blobs per
    // system instead of three rows per account.
    r#"
CREATE TABLE observed_packs (
    run_id   INTEGER NOT NULL REFERENCES observe_runs(id) ON DELETE CASCADE,
    system   TEXT NOT NULL,
    seq      INTEGER NOT NULL,
    groups   INTEGER NOT NULL,
    accounts INTEGER NOT NULL,
    unlisted INTEGER NOT NULL,
    data     BLOB NOT NULL,
    PRIMARY KEY (run_id, system, seq)
);
"#,
    // 10: applying a plan is O(1) in its size (store/backlog.rs). Planned operations are
    // kept by person, so an applied plan's operations become queue rows person by person
    // as the workers reach them; `materialised` marks a person taken out of turn (a
    // leaver's cancelled grants). `plan_backlog` is each applied plan's cursor (the last
    // person made rows), `backlog_counts` what is left per system.
    r#"
CREATE TABLE plan_ops_by_person (
    plan_id           TEXT NOT NULL REFERENCES plans(id) ON DELETE CASCADE,
    person_id         TEXT NOT NULL,
    seq               INTEGER NOT NULL,
    kind              TEXT NOT NULL,
    system            TEXT NOT NULL,
    entitlement       TEXT,
    requires_approval INTEGER NOT NULL DEFAULT 0,
    not_before        TEXT,
    detail            TEXT,
    materialised      INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (plan_id, person_id, seq)
) WITHOUT ROWID;
INSERT INTO plan_ops_by_person (plan_id, person_id, seq, kind, system, entitlement, requires_approval, not_before, detail)
    SELECT plan_id, person_id, seq, kind, system, entitlement, requires_approval, not_before, detail FROM plan_ops;
DROP TABLE plan_ops;
ALTER TABLE plan_ops_by_person RENAME TO plan_ops;
CREATE TABLE plan_backlog (
    plan_id    TEXT PRIMARY KEY REFERENCES plans(id) ON DELETE CASCADE,
    cursor     TEXT NOT NULL DEFAULT '',
    applied_at TEXT NOT NULL
);
CREATE TABLE backlog_counts (
    system TEXT PRIMARY KEY,
    n      INTEGER NOT NULL
) WITHOUT ROWID;
"#,
    // 11: what each system's adapter noticed of its vendor (adapters/kit/watch.rs):
    // deprecation signals, last success, credential expiry and granted scopes, as JSON.
    r#"
CREATE TABLE system_signals (
    system     TEXT PRIMARY KEY,
    signals    TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
"#,
    // 12: HR sources (store/inbox.rs): webhook deliveries stored before they are answered
    // and processed from here (one row per (source, delivery id): a replay finds its row);
    // counters per source (deliveries, rejections by reason, polls); each source's state
    // (a poller's cursor and its snapshot digest per record).
    r#"
CREATE TABLE inbox (
    id           INTEGER PRIMARY KEY,
    source       TEXT NOT NULL,
    delivery_id  TEXT NOT NULL,
    received_at  TEXT NOT NULL,
    event_type   TEXT,
    body         BLOB NOT NULL,
    status       TEXT NOT NULL DEFAULT 'pending',
    attempts     INTEGER NOT NULL DEFAULT 0,
    processed_at TEXT,
    outcome      TEXT,
    UNIQUE (source, delivery_id)
);
CREATE INDEX inbox_pending ON inbox (id) WHERE status = 'pending';
CREATE TABLE source_stats (
    source TEXT NOT NULL,
    name   TEXT NOT NULL,
    value  INTEGER NOT NULL DEFAULT 0,
    at     TEXT NOT NULL,
    PRIMARY KEY (source, name)
) WITHOUT ROWID;
CREATE TABLE source_state (
    source     TEXT PRIMARY KEY,
    state      TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE source_records (
    source    TEXT NOT NULL,
    record_id TEXT NOT NULL,
    digest    TEXT NOT NULL,
    seen_at   TEXT NOT NULL,
    PRIMARY KEY (source, record_id)
) WITHOUT ROWID;
"#,
    // 13: which person each polled record last mapped to, so that a record the source
    // deletes (or that leaves a snapshot) names its leaver even when all that is left of
    // it is the source's own id.
    r#"
ALTER TABLE source_records ADD COLUMN person_id TEXT;
"#,
];

/// The schema version this build writes.
pub fn latest() -> i64 {
    MIGRATIONS.len() as i64
}

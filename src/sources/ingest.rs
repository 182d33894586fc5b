//! What one HR record does once it has arrived (by webhook, poll or the API proxy):
//! mapped ([`super::mapping`]), validated as the CSV import validates a row
//! ([`crate::import::validate_record`]), upserted through the import's path (rehires held,
//! a leaver's pending grants cancelled, intended grants recomputed), planned for that one
//! person, guarded, and queued. The queueing and the delivery's `done` commit in one
//! transaction, so a delivery processed again after a crash queues nothing twice (the
//! upsert finds the person unchanged; the planner sees the operations in flight).

use super::config::Source;
use super::mapping::MappingError;
use crate::config::Catalog;
use crate::config::systems::GuardThresholds;
use crate::engine::apply::{ApplyReport, Origin, enqueue_planned, guard, make_plan};
use crate::engine::plan::{PlannedOp, Scope, Settings, compute};
use crate::import::{Approvals, FeedOptions, FieldProblem, import_feed, validate_record};
use crate::model::{EmploymentStatus, Person};
use crate::policy::PolicySet;
use crate::store::{NewAuditEvent, Store};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// What a person's record changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    Joiner,
    Mover,
    Leaver,
    Rehire,
    Unchanged,
}

impl Change {
    pub fn as_str(self) -> &'static str {
        match self {
            Change::Joiner => "joiner",
            Change::Mover => "mover",
            Change::Leaver => "leaver",
            Change::Rehire => "rehire",
            Change::Unchanged => "unchanged",
        }
    }

    /// What `new` is to `old` (None: not known before).
    pub fn of(old: Option<&Person>, new: &Person, now: chrono::DateTime<chrono::Utc>) -> Change {
        match old {
            None => Change::Joiner,
            Some(o) if o == new => Change::Unchanged,
            Some(o) if !o.is_leaver(now) && new.is_leaver(now) => Change::Leaver,
            Some(o) if o.is_leaver(now) && !new.is_leaver(now) => Change::Rehire,
            Some(_) => Change::Mover,
        }
    }
}

/// What processing a record did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Applied {
    pub person: String,
    pub change: Change,
    /// The operations queued for it (none when nothing needed doing).
    pub ops: Vec<i64>,
}

/// Why a record did nothing.
#[derive(Debug)]
pub enum Refused {
    /// The mapping failed on a field.
    Mapping(MappingError),
    /// The mapped record is not a valid person: each field's problem.
    Invalid {
        record: String,
        problems: Vec<FieldProblem>,
    },
    /// A guard held it (a rehire without a new start date, the mass-change guard): why,
    /// and what lets it through.
    Held { person: String, why: String },
    /// The store or the planner failed.
    Failed(crate::Error),
}

impl Refused {
    /// The HTTP status the API proxy answers with.
    pub fn status(&self) -> u16 {
        match self {
            Refused::Mapping(_) | Refused::Invalid { .. } => 422,
            Refused::Held { .. } => 409,
            Refused::Failed(_) => 500,
        }
    }

    /// As JSON, for an answer or a delivery's outcome.
    pub fn to_json(&self) -> Value {
        match self {
            Refused::Mapping(e) => json!({"error": "mapping", "source": e.source,
                "record": e.record, "field": e.field, "message": e.message}),
            Refused::Invalid { record, problems } => json!({"error": "invalid", "record": record,
                "problems": problems.iter().map(|p| json!({"field": p.field, "message": p.message}))
                    .collect::<Vec<_>>()}),
            Refused::Held { person, why } => json!({"error": "held", "person": person, "why": why}),
            Refused::Failed(e) => json!({"error": "failed", "message": e.to_string()}),
        }
    }
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::Mapping(e) => write!(f, "{e}"),
            Refused::Invalid { record, problems } => {
                write!(f, "record {record}: ")?;
                let parts: Vec<String> = problems
                    .iter()
                    .map(|p| format!("{}: {}", p.field, p.message))
                    .collect();
                f.write_str(&parts.join("; "))
            }
            Refused::Held { person, why } => write!(f, "{person} held: {why}"),
            Refused::Failed(e) => write!(f, "{e}"),
        }
    }
}

impl From<crate::Error> for Refused {
    fn from(e: crate::Error) -> Self {
        Refused::Failed(e)
    }
}

/// A person's record as the canonical fields (what [`validate_record`] reads).
pub fn person_fields(p: &Person) -> BTreeMap<String, String> {
    let mut f = BTreeMap::new();
    let mut put = |k: &str, v: &str| {
        if !v.is_empty() {
            f.insert(k.to_string(), v.to_string());
        }
    };
    put("employee_id", &p.hris_id);
    put("first_name", &p.given_name);
    put("last_name", &p.family_name);
    put("preferred_name", p.preferred_name.as_deref().unwrap_or(""));
    put("display_name", p.display_name.as_deref().unwrap_or(""));
    put("email", &p.email);
    put("department", &p.department);
    put("title", &p.title);
    put("manager_id", p.manager_id.as_deref().unwrap_or(""));
    put("location", &p.location);
    put("cost_center", &p.cost_center);
    put("status", p.status.as_str());
    put(
        "start_date",
        &p.start_date.map(|d| d.to_string()).unwrap_or_default(),
    );
    put(
        "end_date",
        &p.end_date.map(|d| d.to_string()).unwrap_or_default(),
    );
    for (k, v) in &p.custom {
        f.insert(format!("custom.{k}"), v.clone());
    }
    f
}

/// Validate canonical fields into a person.
pub fn validate(fields: &BTreeMap<String, String>, record: &str) -> Result<Person, Refused> {
    let pairs: Vec<(&str, &str)> = fields
        .iter()
        .filter(|(k, _)| *k != "generated_at" && *k != "updated_at")
        .map(|(k, v)| (k.as_str(), v.trim()))
        .collect();
    validate_record(&pairs, &[], &mut |_, _| None)
        .map(|v| v.person)
        .map_err(|problems| Refused::Invalid {
            record: record.to_string(),
            problems,
        })
}

/// How a record arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intent {
    /// The whole record (a joiner, a mover, or a leaver by its status).
    Upsert,
    /// Only some fields: laid over the stored person (a webhook's changed fields).
    Patch,
    /// The person has left: the stored person (with any fields given), terminated, their
    /// end date the record's or today.
    Terminate,
}

/// Map one record of `source` into a person. The store's record of them fills what the
/// record does not say: for [`Intent::Upsert`] the fields the source's mapping does not
/// define, for [`Intent::Patch`] and [`Intent::Terminate`] every field the record lacks.
/// `record_ref` names the record in errors.
pub fn to_person(
    source: &Source,
    record: &Value,
    record_ref: &str,
    intent: Intent,
    store: &Store,
    today: chrono::NaiveDate,
) -> Result<Person, Refused> {
    let mapped = match intent {
        Intent::Upsert => source.mapping.apply(record, record_ref),
        Intent::Patch | Intent::Terminate => source.mapping.apply_partial(record, record_ref),
    }
    .map_err(Refused::Mapping)?;
    if intent == Intent::Upsert {
        // A source owns the fields its mapping defines: for a person already known, the
        // fields it does not map (another source's, or set by hand) are kept.
        let id = mapped.get("employee_id").cloned().unwrap_or_default();
        let mut fields = match store.find_person(&id)? {
            Some(p) if !id.is_empty() => {
                let defined: std::collections::HashSet<&str> =
                    source.mapping.owned().into_iter().collect();
                let mut f = person_fields(&p);
                f.retain(|k, _| !defined.contains(k.as_str()));
                f
            }
            _ => BTreeMap::new(),
        };
        fields.extend(mapped);
        return validate(&fields, record_ref);
    }
    let id = mapped.get("employee_id").cloned().unwrap_or_default();
    let mut fields = match store.find_person(&id)? {
        Some(p) if !id.is_empty() => person_fields(&p),
        _ if intent == Intent::Patch => BTreeMap::new(),
        _ => {
            return Err(Refused::Invalid {
                record: record_ref.to_string(),
                problems: vec![FieldProblem {
                    field: "employee_id".into(),
                    message: if id.is_empty() {
                        "the record has no employee_id".into()
                    } else {
                        format!("no person {id:?} is known, so they cannot leave")
                    },
                    hint: String::new(),
                }],
            });
        }
    };
    fields.extend(mapped);
    if intent == Intent::Terminate {
        fields.insert(
            "status".into(),
            EmploymentStatus::Terminated.as_str().into(),
        );
        fields
            .entry("end_date".into())
            .or_insert_with(|| today.to_string());
    }
    validate(&fields, record_ref)
}

/// [`to_person`], except that a leaver whose record the source names by its own id
/// (`record_id`) is first looked up among the records a poll mapped
/// ([`leaver_by_record`]): a deletion carries no HR fields.
pub fn to_person_by_record(
    source: &Source,
    record: &Value,
    record_id: Option<&str>,
    record_ref: &str,
    intent: Intent,
    store: &Store,
    today: chrono::NaiveDate,
) -> Result<Person, Refused> {
    if intent == Intent::Terminate
        && let Some(id) = record_id
        && let Some(p) = leaver_by_record(source, id, record_ref, store, today)?
    {
        return Ok(p);
    }
    to_person(source, record, record_ref, intent, store, today)
}

/// A leaver the source names only by its own record id (BambooHR's `Deleted`, a worker
/// gone from a Workday snapshot): the person that record last mapped to (a poll records
/// it), terminated with an end date no later than today. None when no poll has mapped
/// the record to a person known here.
pub fn leaver_by_record(
    source: &Source,
    record_id: &str,
    record_ref: &str,
    store: &Store,
    today: chrono::NaiveDate,
) -> Result<Option<Person>, Refused> {
    let Some(id) = store.record_person(&source.name, record_id)? else {
        return Ok(None);
    };
    let Some(p) = store.find_person(&id)? else {
        return Ok(None);
    };
    let mut fields = person_fields(&p);
    fields.insert(
        "status".into(),
        EmploymentStatus::Terminated.as_str().into(),
    );
    let end = p.end_date.filter(|d| *d <= today).unwrap_or(today);
    fields.insert("end_date".into(), end.to_string());
    validate(&fields, record_ref).map(Some)
}

/// What the workers need to act on a person: the catalogue, the policies and the guard.
pub struct Context<'a> {
    pub catalog: &'a Catalog,
    pub policies: &'a PolicySet,
    pub guard: &'a GuardThresholds,
    /// `source:NAME`.
    pub actor: &'a str,
}

/// Upsert `person`, plan for them and queue what the plan says, unless a guard holds it.
/// `cause` names where it came from (`source:NAME:DELIVERY`); `finish`, when given, is an
/// inbox row marked `done` in the transaction that queues.
pub fn apply_person(
    store: &mut Store,
    ctx: &Context<'_>,
    person: &Person,
    cause: &str,
    finish: Option<i64>,
) -> Result<Applied, Refused> {
    let now = chrono::Utc::now();
    let old = store.find_person(&person.hris_id)?;
    let change = Change::of(old.as_ref(), person, now);
    let report = import_feed(
        store,
        std::slice::from_ref(person),
        Some(ctx.policies),
        ctx.actor,
        false,
        ctx.guard,
        &Approvals::default(),
        &FeedOptions::default(),
    )
    .map_err(|e| match e {
        // The import's own guards (the mass-change guard) hold it.
        crate::Error::Failed(why) => Refused::Held {
            person: person.hris_id.clone(),
            why,
        },
        e => Refused::Failed(e),
    })?;
    if let Some(r) = report.rehires.iter().find(|r| !r.applied) {
        return Err(Refused::Held {
            person: person.hris_id.clone(),
            why: r.why.clone(),
        });
    }
    // Planned whether or not the record changed: a delivery processed again after a crash
    // between the upsert and the queueing still queues its operations (once: the planner
    // sees what is in flight).
    let scope = Scope {
        system: None,
        person: Some(person.hris_id.clone()),
    };
    let settings = Settings::from_catalog(ctx.catalog);
    let (planned, inputs, _) = compute(store, &scope, &settings)?;
    let reasons = guard(&planned, &inputs.account_counts(), ctx.catalog, ctx.guard);
    if !reasons.is_empty() {
        let plan = make_plan(store, ctx.catalog, ctx.guard, &scope, ctx.actor)?;
        return Err(Refused::Held {
            person: person.hris_id.clone(),
            why: format!(
                "{}; the held plan is {} (`accessdesk apply {} --approve-mass-change --reason ...`)",
                reasons.join("; "),
                plan.id,
                plan.id
            ),
        });
    }
    let refs: Vec<&PlannedOp> = planned.iter().collect();
    let ops = store.write(|tx| {
        let mut report = ApplyReport::default();
        let ids = enqueue_planned(
            tx,
            ctx.catalog,
            &refs,
            Origin {
                plan_id: None,
                cause,
                counted_as: None,
            },
            &mut report,
            |_, _| {},
        )?;
        tx.audit(NewAuditEvent {
            actor: ctx.actor,
            action: "source.applied",
            subject: &person.hris_id,
            details: json!({"cause": cause, "change": change.as_str(), "operations": ids}),
        })?;
        if let Some(id) = finish {
            tx.inbox_finish(
                id,
                "done",
                &json!({"person": person.hris_id, "change": change.as_str(), "operations": ids}),
            )?;
        }
        Ok(ids)
    })?;
    Ok(Applied {
        person: person.hris_id.clone(),
        change,
        ops,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person(status: EmploymentStatus) -> Person {
        Person {
            hris_id: "E1".into(),
            given_name: "Ada".into(),
            family_name: "Lovelace".into(),
            preferred_name: None,
            display_name: None,
            email: "ada@example.com".into(),
            department: String::new(),
            title: String::new(),
            manager_id: None,
            location: String::new(),
            cost_center: String::new(),
            status,
            start_date: None,
            end_date: None,
            custom: Default::default(),
        }
    }

    #[test]
    fn changes_are_classified() {
        let now = chrono::Utc::now();
        let a = person(EmploymentStatus::Active);
        let t = person(EmploymentStatus::Terminated);
        let mut moved = a.clone();
        moved.department = "Finance".into();
        assert_eq!(Change::of(None, &a, now), Change::Joiner);
        assert_eq!(Change::of(Some(&a), &a, now), Change::Unchanged);
        assert_eq!(Change::of(Some(&a), &t, now), Change::Leaver);
        assert_eq!(Change::of(Some(&t), &a, now), Change::Rehire);
        assert_eq!(Change::of(Some(&a), &moved, now), Change::Mover);
    }

    #[test]
    fn a_persons_fields_validate_back_into_the_same_person() {
        let mut p = person(EmploymentStatus::Active);
        p.preferred_name = Some("Addie".into());
        p.manager_id = Some("E0".into());
        p.start_date = chrono::NaiveDate::from_ymd_opt(2026, 1, 5);
        p.custom.insert("badge".into(), "42".into());
        assert_eq!(validate(&person_fields(&p), "r").unwrap(), p);
        let mut f = person_fields(&p);
        f.insert("email".into(), "nope".into());
        let Err(Refused::Invalid { problems, .. }) = validate(&f, "r") else {
            panic!("an invalid e-mail passed");
        };
        assert_eq!(problems[0].field, "email");
    }
}

#[cfg(test)]
mod merge_tests {
    use super::*;
    use crate::sources::config::SourcesConfig;

    #[test]
    fn a_source_overwrites_only_the_fields_its_mapping_defines() {
        let mut c = SourcesConfig::parse(
            std::path::Path::new("sources.toml"),
            "[sources.s]\nkind = \"webhook\"\ncredential = \"env:X\"\n[sources.s.mapping]\n\
             employee_id = \"record.id\"\nfirst_name = \"record.f\"\nlast_name = \"record.l\"\n\
             email = \"record.e\"\nstatus = \"'active'\"\ndepartment = \"record.d\"\n",
        )
        .unwrap();
        let source = c.sources.remove("s").unwrap();
        let mut store = Store::open_in_memory().unwrap();
        let mut known = crate::model::Person::new("E1", "Ada", "L", "ada@x.io");
        known.cost_center = "CC-9".into();
        known.title = "Engineer".into();
        known.department = "Eng".into();
        store
            .write(|tx| tx.upsert_person(&known, "t").map(|_| ()))
            .unwrap();
        let today = chrono::NaiveDate::from_ymd_opt(2026, 12, 5).unwrap();
        let rec =
            serde_json::json!({"id": "E1", "f": "Ada", "l": "L", "e": "ada@x.io", "d": "Finance"});
        let p = to_person(&source, &rec, "r", Intent::Upsert, &store, today).unwrap();
        assert_eq!(p.department, "Finance", "a mapped field is the source's");
        assert_eq!(
            (p.cost_center.as_str(), p.title.as_str()),
            ("CC-9", "Engineer")
        );
        // A field the mapping defines and the record leaves empty is cleared.
        let rec = serde_json::json!({"id": "E1", "f": "Ada", "l": "L", "e": "ada@x.io", "d": ""});
        let p = to_person(&source, &rec, "r", Intent::Upsert, &store, today).unwrap();
        assert_eq!(p.department, "");
        // Somebody new: only what the record says.
        let rec = serde_json::json!({"id": "E2", "f": "Bo", "l": "M", "e": "bo@x.io", "d": "Ops"});
        let p = to_person(&source, &rec, "r", Intent::Upsert, &store, today).unwrap();
        assert_eq!((p.title.as_str(), p.department.as_str()), ("", "Ops"));
    }
}

//! People import from HR CSV exports.
//!
//! The whole file is read and validated before anything is written: a file with any bad
//! row is rejected whole, with every bad row reported by line number and reason. Valid
//! files are upserted in one transaction; people whose record did not change are not
//! touched, so importing the same file twice changes nothing the second time.

use crate::config::ImportMapping;
use crate::config::systems::GuardThresholds;
use crate::error::{InputProblem, Location};
use crate::model::names::clean;
use crate::model::{EmploymentStatus, Person};
use crate::policy::PolicySet;
use crate::store::Store;
use crate::store::people::Upsert;
use crate::{Error, Result};
use chrono::NaiveDate;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// Report no more than this many bad rows; say how many more there were.
const MAX_PROBLEMS: usize = 50;

/// Fields the file must have a column for.
const REQUIRED: &[&str] = &["employee_id", "email", "status"];

/// The longest value each HR field may hold, in characters (after trimming). A longer
/// value makes its row bad, reported with the line and the field like every other
/// problem. Generous for real people (names from any script, long job titles) and well
/// below what would bloat the store, the console or a target system's field.
pub const FIELD_LIMITS: &[(&str, usize)] = &[
    ("employee_id", 128),
    ("manager_id", 128),
    // RFC 5321 §4.5.3.1.3: a path is at most 256 octets including the angle brackets.
    ("email", 254),
    ("first_name", 256),
    ("last_name", 256),
    ("preferred_name", 256),
    ("display_name", 256),
    ("department", 512),
    ("title", 512),
    ("location", 512),
    ("cost_center", 128),
    ("status", 64),
    ("start_date", 64),
    ("end_date", 64),
    ("generated_at", 64),
    ("updated_at", 64),
];

/// The limit for custom attributes (`custom.*` columns, and extra columns kept as custom).
pub const CUSTOM_FIELD_LIMIT: usize = 1024;

/// The longest value `field` may hold (see [`FIELD_LIMITS`]).
pub fn field_limit(field: &str) -> usize {
    FIELD_LIMITS
        .iter()
        .find(|(f, _)| *f == field)
        .map_or(CUSTOM_FIELD_LIMIT, |(_, n)| *n)
}

/// The length of `value` in characters when it is over `limit`.
fn over_limit(value: &str, limit: usize) -> Option<usize> {
    if value.len() <= limit {
        return None; // bytes bound characters
    }
    let n = value.chars().count();
    (n > limit).then_some(n)
}

const LIMIT_HINT: &str =
    "shorten it in the HR export; the limits are in FIELD_LIMITS (src/import.rs)";

/// Read and validate a whole CSV file. Nothing is written.
pub fn read_people_csv(path: &Path, mapping: &ImportMapping) -> Result<Vec<Person>> {
    Ok(read_hr_file(path, mapping)?.people)
}

/// Read and validate a whole CSV file, with what it says about its own age.
pub fn read_hr_file(path: &Path, mapping: &ImportMapping) -> Result<HrFile> {
    let bytes =
        std::fs::read(path).map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
    parse_hr_file(path, &bytes, mapping)
}

/// Parse and validate CSV bytes; `path` is only used in messages.
pub fn parse_people_csv(path: &Path, bytes: &[u8], mapping: &ImportMapping) -> Result<Vec<Person>> {
    Ok(parse_hr_file(path, bytes, mapping)?.people)
}

/// A validated HR export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HrFile {
    pub people: Vec<Person>,
    /// How recent the export is, when it says: see [`AsOf`].
    pub as_of: Option<AsOf>,
}

/// An export's age, judged by its generation time where the source gives one (a
/// `# generated: TIME` line before the header, or a `generated_at` column), else by the
/// newest change it contains (an `updated_at` column). Neither: the age is unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct AsOf {
    pub at: chrono::DateTime<chrono::Utc>,
    /// `generated` or `newest_change`.
    pub by: &'static str,
}

/// Keys a leading `# KEY: TIME` line may use for the generation time.
const GENERATED_KEYS: &[&str] = &["generated", "generated_at", "exported_at"];

/// A timestamp as exports write them: RFC 3339, `YYYY-MM-DD HH:MM[:SS]` (UTC), or a date
/// (its start, UTC).
fn parse_time(v: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    let v = v.trim();
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(v) {
        return Some(t.with_timezone(&chrono::Utc));
    }
    for f in ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(v, f) {
            return Some(t.and_utc());
        }
    }
    NaiveDate::parse_from_str(v, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
}

/// Parse and validate CSV bytes, with the export's age; `path` is only used in messages.
pub fn parse_hr_file(path: &Path, bytes: &[u8], mapping: &ImportMapping) -> Result<HrFile> {
    let at = |line: usize| Location {
        file: path.to_path_buf(),
        line,
        column: 0,
    };
    let problem = |line: usize, key: &str, message: String, hint: &str| InputProblem {
        location: at(line),
        key: key.to_string(),
        message,
        hint: hint.to_string(),
    };
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes); // Excel's UTF-8 BOM
    // `#` lines before the header are comments; `# generated: TIME` gives the export's
    // generation time. They are blanked (not removed) so line numbers stay the file's.
    let mut generated: Option<chrono::DateTime<chrono::Utc>> = None;
    let mut blanked: Vec<u8> = Vec::new();
    let mut rest = bytes;
    let mut line_no = 0usize;
    let mut comment_problems = Vec::new();
    while rest.first() == Some(&b'#') {
        line_no += 1;
        let end = rest
            .iter()
            .position(|b| *b == b'\n')
            .map_or(rest.len(), |i| i + 1);
        let text = String::from_utf8_lossy(&rest[1..end]);
        if let Some((k, v)) = text.split_once(':')
            && GENERATED_KEYS.contains(&k.trim().to_ascii_lowercase().as_str())
        {
            match parse_time(v) {
                Some(t) => generated = Some(t),
                None => comment_problems.push(problem(
                    line_no,
                    "generated",
                    format!("{:?} is not a time", v.trim()),
                    "write it as RFC 3339, e.g. # generated: 2026-12-01T10:00:00Z",
                )),
            }
        }
        blanked.push(b'\n');
        rest = &rest[end..];
    }
    if !comment_problems.is_empty() {
        return Err(Error::input(comment_problems));
    }
    let joined: Vec<u8>;
    let bytes: &[u8] = if blanked.is_empty() {
        bytes
    } else {
        joined = [blanked.as_slice(), rest].concat();
        &joined
    };
    let mut newest_change: Option<chrono::DateTime<chrono::Utc>> = None;
    let mut rdr = csv::ReaderBuilder::new().flexible(false).from_reader(bytes);
    let headers = match rdr.headers() {
        Ok(h) => h.clone(),
        Err(e) => return Err(Error::input(vec![csv_problem(path, &e)])),
    };
    if headers.is_empty() || (headers.len() == 1 && headers[0].trim().is_empty()) {
        return Err(Error::input(vec![problem(
            1,
            "",
            "the file is empty; a header row is required".into(),
            "the first line must name the columns, e.g. employee_id,first_name,last_name,email,status",
        )]));
    }
    // Resolve each mapped field to a column index.
    let index: HashMap<&str, usize> = headers
        .iter()
        .enumerate()
        .map(|(i, h)| (h.trim(), i))
        .collect();
    let mut col: BTreeMap<&str, usize> = BTreeMap::new();
    let mut problems = Vec::new();
    for (field, header) in &mapping.columns {
        match index.get(header.as_str()) {
            Some(i) => {
                col.insert(field.as_str(), *i);
            }
            None if REQUIRED.contains(&field.as_str()) => problems.push(problem(
                1,
                header,
                format!("required column {header:?} (for {field}) is missing from the header"),
                "rename the column, or map it in systems.toml under [import.columns]",
            )),
            None => {}
        }
    }
    if !col.contains_key("first_name") && !col.contains_key("last_name") {
        problems.push(problem(
            1,
            "",
            "no first_name or last_name column".into(),
            "map at least one name column under [import.columns]",
        ));
    }
    if !problems.is_empty() {
        return Err(Error::input(problems));
    }

    let mapped: Vec<usize> = col.values().copied().collect();
    let extra_cols: Vec<(usize, &str)> = if mapping.extra_columns_as_custom {
        headers
            .iter()
            .enumerate()
            .filter(|(i, h)| !mapped.contains(i) && !h.trim().is_empty())
            .map(|(i, h)| (i, h.trim()))
            .collect()
    } else {
        Vec::new()
    };
    let mut people = Vec::new();
    let mut seen_ids: HashMap<String, usize> = HashMap::new();
    let mut seen_emails: HashMap<String, usize> = HashMap::new();
    let mut bad_rows = 0usize;
    let mut record = csv::StringRecord::new();
    loop {
        match rdr.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                bad_rows += 1;
                if problems.len() < MAX_PROBLEMS {
                    problems.push(csv_problem(path, &e));
                }
                // Unequal field counts leave the reader usable; anything else (bad UTF-8
                // is reported per record too) also continues, so every bad row is listed.
                continue;
            }
        }
        let line = record.position().map(|p| p.line() as usize).unwrap_or(0);
        if record.iter().all(|f| f.trim().is_empty()) {
            continue; // a blank line at the end of an export
        }
        let fields: Vec<(&str, &str)> = col
            .iter()
            .map(|(f, i)| (*f, record.get(*i).map(str::trim).unwrap_or("")))
            .collect();
        let extra: Vec<(&str, &str)> = extra_cols
            .iter()
            .map(|(i, h)| (*h, record.get(*i).map(str::trim).unwrap_or("")))
            .collect();
        // Each person once per file: the same employee_id or e-mail on two lines.
        let mut once = |field: &str, value: &str| -> Option<String> {
            match field {
                "employee_id" => seen_ids
                    .insert(value.to_string(), line)
                    .map(|first| format!("employee_id {value:?} also appears on line {first}")),
                "email" => seen_emails
                    .insert(value.to_ascii_lowercase(), line)
                    .map(|first| format!("email {value:?} also appears on line {first}")),
                _ => None,
            }
        };
        match validate_record(&fields, &extra, &mut once) {
            Ok(v) => {
                generated = generated.max(v.generated_at);
                newest_change = newest_change.max(v.updated_at);
                people.push(v.person);
            }
            Err(row_problems) => {
                bad_rows += 1;
                let room = MAX_PROBLEMS.saturating_sub(problems.len());
                problems.extend(
                    row_problems
                        .into_iter()
                        .take(room)
                        .map(|p| problem(line, &p.field, p.message, &p.hint)),
                );
            }
        }
    }
    if !problems.is_empty() {
        if bad_rows > MAX_PROBLEMS {
            problems.push(problem(
                0,
                "",
                format!(
                    "{} bad rows in all; only the first {MAX_PROBLEMS} problems are shown",
                    bad_rows
                ),
                "",
            ));
        }
        return Err(Error::input(problems));
    }
    let as_of = match (generated, newest_change) {
        (Some(at), _) => Some(AsOf {
            at,
            by: "generated",
        }),
        (None, Some(at)) => Some(AsOf {
            at,
            by: "newest_change",
        }),
        (None, None) => None,
    };
    Ok(HrFile { people, as_of })
}

/// A problem with one field of one HR record; the CSV import adds the line, a source the
/// record it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldProblem {
    pub field: String,
    pub message: String,
    pub hint: String,
}

/// One HR record, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidRecord {
    pub person: Person,
    /// The record's `generated_at` and `updated_at`, when it has them.
    pub generated_at: Option<chrono::DateTime<chrono::Utc>>,
    pub updated_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// Validate one HR record given as canonical fields (the CSV import's default column
/// names: `employee_id`, `first_name`, ..., `custom.NAME`) with their trimmed values, plus
/// `extra` custom attributes (name, value). Every problem is returned, each naming its
/// field. `once` is asked about `employee_id` and `email` once their own checks pass, and
/// answers a problem when the value was already seen (the CSV import's duplicates).
///
/// The CSV import and every HR source use this, so a record means the same whichever way
/// it arrives.
pub fn validate_record(
    fields: &[(&str, &str)],
    extra: &[(&str, &str)],
    once: &mut dyn FnMut(&str, &str) -> Option<String>,
) -> std::result::Result<ValidRecord, Vec<FieldProblem>> {
    let get = |field: &str| {
        fields
            .iter()
            .find(|(f, _)| *f == field)
            .map_or("", |(_, v)| *v)
    };
    let opt = |field: &str| {
        Some(get(field))
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    let mut problems: Vec<FieldProblem> = Vec::new();
    let mut problem = |field: &str, message: String, hint: &str| {
        problems.push(FieldProblem {
            field: field.to_string(),
            message,
            hint: hint.to_string(),
        })
    };
    // Lengths first: an over-long value is reported by its length alone (never quoted)
    // and skips the other checks of its field.
    let mut too_long: Vec<&str> = Vec::new();
    for (field, v) in fields {
        let limit = field_limit(field);
        if let Some(n) = over_limit(v, limit) {
            problem(
                field,
                format!("{field} is {n} characters long; the limit is {limit}"),
                LIMIT_HINT,
            );
            too_long.push(field);
        }
    }
    for (h, v) in extra {
        if let Some(n) = over_limit(v, CUSTOM_FIELD_LIMIT) {
            problem(
                h,
                format!("{h} is {n} characters long; the limit is {CUSTOM_FIELD_LIMIT}"),
                LIMIT_HINT,
            );
        }
    }
    let checked = |field: &str| !too_long.contains(&field);
    let id = get("employee_id");
    if !checked("employee_id") {
        // Reported by its length.
    } else if id.is_empty() {
        problem("employee_id", "employee_id is empty".into(), "");
    } else if let Some(msg) = once("employee_id", id) {
        problem("employee_id", msg, "each person must appear once");
    }
    let email = get("email");
    if !checked("email") {
        // Reported by its length.
    } else if !valid_email(email) {
        problem(
            "email",
            format!("{email:?} is not a valid email address"),
            "",
        );
    } else if let Some(msg) = once("email", email) {
        problem("email", msg, "");
    }
    let status = match get("status").parse::<EmploymentStatus>() {
        _ if !checked("status") => None,
        Ok(s) => Some(s),
        Err(msg) => {
            problem("status", msg, "");
            None
        }
    };
    let mut date = |field: &str| -> Option<NaiveDate> {
        let v = get(field);
        if v.is_empty() || !checked(field) {
            return None;
        }
        match NaiveDate::parse_from_str(v, "%Y-%m-%d") {
            Ok(d) => Some(d),
            Err(_) => {
                problem(
                    field,
                    format!("{v:?} is not a date"),
                    "write dates as YYYY-MM-DD",
                );
                None
            }
        }
    };
    let start_date = date("start_date");
    let end_date = date("end_date");
    let mut time = |field: &str| -> Option<chrono::DateTime<chrono::Utc>> {
        let v = get(field);
        if v.is_empty() || !checked(field) {
            return None;
        }
        let t = parse_time(v);
        if t.is_none() {
            problem(
                field,
                format!("{v:?} is not a time"),
                "write times as RFC 3339 (2026-12-01T10:00:00Z) or YYYY-MM-DD",
            );
        }
        t
    };
    let generated_at = time("generated_at");
    let updated_at = time("updated_at");
    if let (Some(s), Some(e)) = (start_date, end_date)
        && e < s
    {
        problem(
            "end_date",
            format!("end_date {e} is before start_date {s}"),
            "",
        );
    }
    let given = clean(get("first_name"));
    let family = clean(get("last_name"));
    if given.is_empty() && family.is_empty() {
        problem(
            "first_name",
            "both first_name and last_name are empty".into(),
            "",
        );
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let mut custom: BTreeMap<String, String> = fields
        .iter()
        .filter_map(|(f, v)| f.strip_prefix("custom.").map(|name| (name, *v)))
        .filter(|(_, v)| !v.is_empty())
        .map(|(name, v)| (name.to_string(), v.to_string()))
        .collect();
    for (h, v) in extra {
        if !v.is_empty() {
            custom.insert(h.to_string(), v.to_string());
        }
    }
    Ok(ValidRecord {
        person: Person {
            hris_id: id.to_string(),
            given_name: given,
            family_name: family,
            preferred_name: opt("preferred_name").map(|s| clean(&s)),
            display_name: opt("display_name").map(|s| clean(&s)),
            email: email.to_string(),
            department: get("department").to_string(),
            title: get("title").to_string(),
            manager_id: opt("manager_id"),
            location: get("location").to_string(),
            cost_center: get("cost_center").to_string(),
            status: status.unwrap_or(EmploymentStatus::Pending),
            start_date,
            end_date,
            custom,
        },
        generated_at,
        updated_at,
    })
}

fn csv_problem(path: &Path, e: &csv::Error) -> InputProblem {
    let line = e.position().map(|p| p.line() as usize).unwrap_or(0);
    let message = match e.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => {
            format!("row has {len} fields but the header has {expected_len}")
        }
        csv::ErrorKind::Utf8 { .. } => "row is not valid UTF-8".to_string(),
        _ => e.to_string(),
    };
    let hint = match e.kind() {
        csv::ErrorKind::Utf8 { .. } => "export the file as UTF-8",
        csv::ErrorKind::UnequalLengths { .. } => "quote fields that contain commas",
        _ => "",
    };
    InputProblem {
        location: Location {
            file: path.to_path_buf(),
            line,
            column: 0,
        },
        key: String::new(),
        message,
        hint: hint.into(),
    }
}

fn valid_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !s.contains(char::is_whitespace)
        && !domain.contains('@')
}

/// What an import did (or, for a dry run, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    pub rows: usize,
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
    /// Intended grants added and withdrawn by re-evaluating policy for changed people.
    pub grants_added: usize,
    pub grants_removed: usize,
    /// HRIS ids of people created or updated.
    #[serde(skip)]
    pub changed_ids: Vec<String>,
    pub dry_run: bool,
    /// Leavers this file makes active again: applied when the record carries a new start
    /// date after their end date, or an admin approved it; otherwise held (not applied).
    pub rehires: Vec<Rehire>,
    /// With `--snapshot`: people in the store but missing from the file, made leavers
    /// (HRIS ids). Already-terminated people missing from it are not counted.
    pub left_missing: Vec<String>,
    /// The export's age, when it says (see [`AsOf`]); None: it could not be judged.
    pub as_of: Option<AsOf>,
    /// Set when an export older than the last one imported was forced in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub older_than: Option<String>,
}

/// How to read a feed beyond its rows.
#[derive(Debug, Clone, Copy, Default)]
pub struct FeedOptions {
    /// The file is the whole population: whoever is missing from it has left.
    pub snapshot: bool,
    /// The export's age ([`HrFile::as_of`]): one older than the last imported is refused
    /// unless forced ([`Approvals::force_older`]).
    pub as_of: Option<AsOf>,
}

/// With a snapshot, the people the store has and the file lacks become leavers: status
/// terminated, end date the day of the import (UTC), or their own end date when it is
/// earlier. People already terminated are left as they are.
fn missing_as_leavers(store: &Store, people: &[Person], today: NaiveDate) -> Result<Vec<Person>> {
    let present: std::collections::HashSet<&str> =
        people.iter().map(|p| p.hris_id.as_str()).collect();
    Ok(store
        .all_people()?
        .into_iter()
        .filter(|p| !present.contains(p.hris_id.as_str()))
        .filter(|p| p.status != EmploymentStatus::Terminated)
        .map(|mut p| {
            p.status = EmploymentStatus::Terminated;
            p.end_date = Some(p.end_date.map_or(today, |e| e.min(today)));
            p
        })
        .collect())
}

/// A terminated person the file makes active again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rehire {
    pub person: String,
    pub name: String,
    pub applied: bool,
    /// Why it was applied, or what would let it through.
    pub why: String,
}

/// Whether `new` brings back a leaver (`old`), and if so on what grounds.
/// What an admin approved for one import, each with their reason.
#[derive(Debug, Clone, Copy, Default)]
pub struct Approvals<'a> {
    /// Go ahead with a feed the mass-change guard holds.
    pub mass_change: Option<&'a str>,
    /// Leavers (HRIS id or e-mail) allowed back without a new start date, and why.
    pub rehires: &'a [String],
    pub rehire_reason: Option<&'a str>,
    /// Import an export older than the last one imported, and why.
    pub force_older: Option<&'a str>,
}

fn rehire_of(
    old: &Person,
    new: &Person,
    approvals: &Approvals<'_>,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<Rehire> {
    let approved = approvals.rehires;
    if !old.is_leaver(now) || new.is_leaver(now) {
        return None;
    }
    let name = format!("{} {}", new.given_name, new.family_name);
    let fresh_start = match (new.start_date, old.end_date) {
        (Some(s), Some(e)) => s > e,
        (Some(s), None) => old.start_date.is_none_or(|o| s > o),
        _ => false,
    };
    let (applied, why) = if fresh_start {
        (
            true,
            format!(
                "new start date {} after the end of their last employment",
                new.start_date.map(|d| d.to_string()).unwrap_or_default()
            ),
        )
    } else if approved
        .iter()
        .any(|a| a == &new.hris_id || a.eq_ignore_ascii_case(&new.email))
    {
        (
            true,
            format!(
                "approved by an admin: {}",
                approvals.rehire_reason.unwrap_or("")
            ),
        )
    } else {
        (
            false,
            format!(
                "held: {} was a leaver and this record has no new start date after their end date{}; if this is a rehire, give them a new start date or re-run with --approve-rehire {} --reason \"...\"; if this is an old export, do not import it",
                new.hris_id,
                old.end_date.map(|d| format!(" ({d})")).unwrap_or_default(),
                new.hris_id
            ),
        )
    };
    Some(Rehire {
        person: new.hris_id.clone(),
        name,
        applied,
        why,
    })
}

/// Upsert validated people in one transaction. With `dry_run`, report without writing.
///
/// With `policies`, the intended grants of every created or updated person are recomputed
/// in the same transaction.
pub fn import_people(
    store: &mut Store,
    people: &[Person],
    policies: Option<&PolicySet>,
    actor: &str,
    dry_run: bool,
) -> Result<ImportReport> {
    import_people_guarded(
        store,
        people,
        policies,
        actor,
        dry_run,
        &GuardThresholds::default(),
        &Approvals::default(),
    )
}

/// A feed that would suddenly turn many active people into leavers (a truncated export
/// marking the missing as terminated, say) is held: the reason, or None when it is fine.
fn leaver_surge(
    store: &Store,
    people: &[Person],
    guard: &GuardThresholds,
) -> Result<Option<String>> {
    let active = store.active_people_count()?;
    let mut leavers = 0usize;
    for p in people {
        if p.status == EmploymentStatus::Terminated
            && let Some(old) = store.find_person(&p.hris_id)?
            && old.status != EmploymentStatus::Terminated
        {
            leavers += 1;
        }
    }
    let limit = ((guard.max_deactivate_percent / 100.0) * active as f64)
        .floor()
        .max(guard.min_ops as f64) as usize;
    Ok((leavers > limit).then(|| {
        format!(
            "this file would make {leavers} of {active} active people leavers ({:.0}%); the limit is {limit} ({}% of active people, at least {})",
            100.0 * leavers as f64 / active.max(1) as f64,
            guard.max_deactivate_percent,
            guard.min_ops
        )
    }))
}

/// [`import_people`] with the mass-change guard's thresholds and, for a held feed, the
/// admin's reason to go ahead anyway.
pub fn import_people_guarded(
    store: &mut Store,
    people: &[Person],
    policies: Option<&PolicySet>,
    actor: &str,
    dry_run: bool,
    guard: &GuardThresholds,
    approvals: &Approvals<'_>,
) -> Result<ImportReport> {
    import_feed(
        store,
        people,
        policies,
        actor,
        dry_run,
        guard,
        approvals,
        &FeedOptions::default(),
    )
}

/// [`import_people_guarded`] with how to read the feed (`--snapshot`).
#[allow(clippy::too_many_arguments)]
pub fn import_feed(
    store: &mut Store,
    people: &[Person],
    policies: Option<&PolicySet>,
    actor: &str,
    dry_run: bool,
    guard: &GuardThresholds,
    approvals: &Approvals<'_>,
    feed: &FeedOptions,
) -> Result<ImportReport> {
    let mass_change_approval = approvals.mass_change;
    let mut report = ImportReport {
        rows: people.len(),
        dry_run,
        as_of: feed.as_of,
        ..Default::default()
    };
    // An export older than the last one imported would undo newer changes: refused unless
    // an admin forces it, with a reason.
    let last = store.import_as_of()?;
    if let (Some(as_of), Some(last)) = (feed.as_of, last)
        && as_of.at < last
    {
        let fmt =
            |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let judged = if as_of.by == "generated" {
            "generated"
        } else {
            "its newest change is from"
        };
        match approvals.force_older.filter(|r| !r.trim().is_empty()) {
            Some(_) => report.older_than = Some(fmt(last)),
            None => {
                return Err(Error::usage(
                    format!(
                        "this export is older than the last one imported: {judged} {}, the last import was as of {}",
                        fmt(as_of.at),
                        fmt(last)
                    ),
                    "import a newer export; if this older one is really meant, re-run with --force-older --reason \"...\"",
                ));
            }
        }
    }
    // A snapshot's missing people join the feed as leavers, so the mass-change guard counts
    // them and `upsert_person` cancels their pending grants like any other leaver's.
    let with_missing: Vec<Person>;
    let people: &[Person] = if feed.snapshot {
        let missing = missing_as_leavers(store, people, chrono::Utc::now().date_naive())?;
        report.left_missing = missing.iter().map(|p| p.hris_id.clone()).collect();
        with_missing = people.iter().cloned().chain(missing).collect();
        &with_missing
    } else {
        people
    };
    // A leaver comes back only on purpose: terminated -> active is a rehire, applied only
    // with a new start date after the end date, or an admin's approval.
    let now = chrono::Utc::now();
    let mut held: std::collections::HashSet<&str> = std::collections::HashSet::new();
    for p in people {
        if let Some(old) = store.find_person(&p.hris_id)?
            && let Some(r) = rehire_of(&old, p, approvals, now)
        {
            if !r.applied {
                held.insert(p.hris_id.as_str());
            }
            report.rehires.push(r);
        }
    }
    if let Some(mut problem) = leaver_surge(store, people, guard)? {
        if !report.left_missing.is_empty() {
            problem.push_str(&format!(
                " ({} of them because they are missing from this snapshot)",
                report.left_missing.len()
            ));
        }
        match mass_change_approval {
            Some(why) if !why.trim().is_empty() => {
                store.write(|tx| {
                    tx.audit(crate::store::NewAuditEvent {
                        actor,
                        action: "import.mass_change_approved",
                        subject: "people",
                        details: serde_json::json!({"held_reason": problem, "why": why}),
                    })
                })?;
            }
            _ => {
                return Err(Error::Failed(format!(
                    "import held by the mass-change guard: {problem}. If this is real, re-run with --approve-mass-change --reason \"...\"; if the export was cut short, fix it first"
                )));
            }
        }
    }
    if dry_run {
        for p in people {
            if held.contains(p.hris_id.as_str()) {
                report.unchanged += 1;
                continue;
            }
            match store.find_person(&p.hris_id)? {
                None => report.created += 1,
                Some(old) if old == *p => report.unchanged += 1,
                Some(_) => report.updated += 1,
            }
        }
        return Ok(report);
    }
    store.write(|tx| {
        if let (Some(last), Some(as_of)) = (&report.older_than, &report.as_of) {
            tx.audit(crate::store::NewAuditEvent {
                actor,
                action: "import.older_forced",
                subject: "people",
                details: serde_json::json!({"as_of": as_of.at.to_rfc3339(), "by": as_of.by,
                    "last_as_of": last, "why": approvals.force_older}),
            })?;
        }
        if let Some(as_of) = &report.as_of {
            tx.note_import_as_of(as_of.at)?;
        }
        if !report.left_missing.is_empty() {
            tx.audit(crate::store::NewAuditEvent {
                actor,
                action: "import.snapshot_leavers",
                subject: "people",
                details: serde_json::json!({"count": report.left_missing.len(), "people": report.left_missing}),
            })?;
        }
        for r in &report.rehires {
            tx.audit(crate::store::NewAuditEvent {
                actor,
                action: if r.applied {
                    "person.rehired"
                } else {
                    "person.rehire_held"
                },
                subject: &r.person,
                details: serde_json::json!({"why": r.why}),
            })?;
        }
        for p in people {
            if held.contains(p.hris_id.as_str()) {
                report.unchanged += 1;
                continue;
            }
            match tx.upsert_person(p, actor)? {
                Upsert::Created => report.created += 1,
                Upsert::Updated(_) => report.updated += 1,
                Upsert::Unchanged => {
                    report.unchanged += 1;
                    continue;
                }
            }
            if report
                .rehires
                .iter()
                .any(|r| r.applied && r.person == p.hris_id)
            {
                tx.mark_rehired(&p.hris_id)?;
            }
            report.changed_ids.push(p.hris_id.clone());
            if let Some(policies) = policies {
                let grants = policies.evaluate(p, tx.now);
                let (added, removed) = tx.replace_intended_grants(&p.hris_id, &grants, actor)?;
                tx.set_grant_inputs(policies, p, &grants)?;
                report.grants_added += added;
                report.grants_removed += removed;
            }
        }
        Ok(())
    })?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "employee_id,first_name,last_name,preferred_name,email,department,title,manager_id,location,cost_center,status,start_date,end_date\n";

    fn parse(body: &str) -> Result<Vec<Person>> {
        parse_people_csv(
            Path::new("hr.csv"),
            format!("{HEADER}{body}").as_bytes(),
            &ImportMapping::default(),
        )
    }

    #[test]
    fn reads_a_typical_export() {
        let people = parse("E1, Ada ,Lovelace,,ada@example.com,Engineering,Engineer,,London,CC1,active,2024-01-02,\n\
                            E2,Иван,Петров,Ваня,ivan@example.com,Sales,Rep,E1,Berlin,CC2,Leave,2023-05-01,2025-01-01\n").unwrap();
        assert_eq!(people.len(), 2);
        assert_eq!(people[0].given_name, "Ada");
        assert_eq!(people[0].status, EmploymentStatus::Active);
        assert_eq!(people[1].preferred_name.as_deref(), Some("Ваня"));
        assert_eq!(people[1].manager_id.as_deref(), Some("E1"));
        assert_eq!(people[1].end_date, NaiveDate::from_ymd_opt(2025, 1, 1));
    }

    #[test]
    fn every_bad_row_is_reported_with_its_line() {
        let err = parse(
            "E1,Ada,L,,ada@example.com,Eng,,,,,active,,\n\
                         E2,Bob,M,,not-an-email,Eng,,,,,active,,\n\
                         E3,Cy,N,,cy@example.com,Eng,,,,,retired,,\n\
                         E1,Di,O,,di@example.com,Eng,,,,,active,2024-13-01,\n\
                         E5,Ed,P,,ed@example.com\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("hr.csv:3: email: \"not-an-email\" is not a valid email address"),
            "{err}"
        );
        assert!(
            err.contains("hr.csv:4: status: unknown employment status \"retired\""),
            "{err}"
        );
        assert!(
            err.contains("hr.csv:5: employee_id: employee_id \"E1\" also appears on line 2"),
            "{err}"
        );
        assert!(
            err.contains("hr.csv:5: start_date: \"2024-13-01\" is not a date"),
            "{err}"
        );
        assert!(
            err.contains("hr.csv:6: row has 5 fields but the header has 13"),
            "{err}"
        );
    }

    #[test]
    fn over_long_fields_are_bad_rows_named_by_line_and_field() {
        let title = "T".repeat(1 << 20);
        let email = format!("{}@example.com", "a".repeat(300));
        let err = parse(&format!(
            "E1,Ada,L,,ada@example.com,Eng,{title},,,,active,,\n\
             E2,Bo,M,,{email},Eng,,,,,active,,\n\
             E3,Cy,N,,cy@example.com,Eng,,,,,retired,,\n\
             E4,Di,O,,di@example.com,Eng,{},,,,active,,\n",
            "é".repeat(512)
        ))
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("hr.csv:2: title: title is 1048576 characters long; the limit is 512"),
            "{}",
            &err[..err.len().min(2000)]
        );
        assert!(
            err.contains("hr.csv:3: email: email is 312 characters long; the limit is 254"),
            "{err}"
        );
        // The whole file is still validated: the other bad row is reported too.
        assert!(err.contains("hr.csv:4: status"), "{err}");
        // Limits count characters, not bytes: 512 two-byte characters are fine.
        assert!(!err.contains("hr.csv:5"), "{err}");
        // Over-long values are never quoted back.
        assert!(err.len() < 2000, "{} bytes", err.len());

        let mut m = ImportMapping::default();
        m.columns.insert("custom.note".into(), "note".into());
        let e = parse_people_csv(
            Path::new("x.csv"),
            format!(
                "employee_id,first_name,email,status,note\nE1,A,a@x.io,active,{}\n",
                "n".repeat(CUSTOM_FIELD_LIMIT + 1)
            )
            .as_bytes(),
            &m,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains(
                "x.csv:2: custom.note: custom.note is 1025 characters long; the limit is 1024"
            ),
            "{e}"
        );
    }

    #[test]
    fn missing_required_column_is_named() {
        let e = parse_people_csv(
            Path::new("x.csv"),
            b"employee_id,first_name,email\nE1,A,a@x.io\n",
            &ImportMapping::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("x.csv:1: status: required column \"status\""),
            "{e}"
        );
    }

    #[test]
    fn custom_mapping_and_custom_attributes() {
        let mut m = ImportMapping {
            extra_columns_as_custom: false,
            columns: BTreeMap::new(),
        };
        for (f, h) in [
            ("employee_id", "Emp #"),
            ("first_name", "Given"),
            ("last_name", "Surname"),
            ("email", "Mail"),
            ("status", "State"),
            ("custom.clearance", "Clearance"),
        ] {
            m.columns.insert(f.into(), h.into());
        }
        let p = parse_people_csv(
            Path::new("x.csv"),
            "Emp #,Given,Surname,Mail,State,Clearance\n7,A,B,a@b.io,active,top\n".as_bytes(),
            &m,
        )
        .unwrap();
        assert_eq!(p[0].hris_id, "7");
        assert_eq!(
            p[0].custom.get("clearance").map(String::as_str),
            Some("top")
        );
    }

    #[test]
    fn bad_file_writes_nothing_and_second_import_changes_nothing() {
        let mut s = Store::open_in_memory().unwrap();
        assert!(parse("E1,Ada,L,,bad,Eng,,,,,active,,\n").is_err());
        assert_eq!(s.people_count().unwrap(), 0);
        let people = parse("E1,Ada,L,,ada@example.com,Eng,,,,,active,,\nE2,Bo,M,,bo@example.com,Eng,,,,,pending,,\n").unwrap();
        let r1 = import_people(&mut s, &people, None, "t", false).unwrap();
        assert_eq!((r1.created, r1.updated, r1.unchanged), (2, 0, 0));
        let audit = s.audit_count().unwrap();
        let r2 = import_people(&mut s, &people, None, "t", false).unwrap();
        assert_eq!((r2.created, r2.updated, r2.unchanged), (0, 0, 2));
        assert_eq!(s.audit_count().unwrap(), audit);
    }

    #[test]
    fn bom_and_blank_trailing_lines_are_fine() {
        let data =
            format!("\u{feff}{HEADER}E1,Ada,L,,ada@example.com,Eng,,,,,active,,\n,,,,,,,,,,,,\n");
        assert_eq!(
            parse_people_csv(Path::new("x"), data.as_bytes(), &ImportMapping::default())
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn invalid_utf8_is_located() {
        let mut data = HEADER.as_bytes().to_vec();
        data.extend_from_slice(b"E1,Ad\xff,L,,a@example.com,Eng,,,,,active,,\n");
        let e = parse_people_csv(Path::new("x.csv"), &data, &ImportMapping::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("x.csv:2") && e.contains("UTF-8"), "{e}");
    }

    #[test]
    fn the_generation_line_gives_the_age_and_keeps_line_numbers() {
        let f = parse_hr_file(
            Path::new("x.csv"),
            format!("# generated: 2026-12-01T10:00:00+01:00\n{HEADER}E1,Ada,L,,ada@example.com,Eng,,,,,active,,\n")
                .as_bytes(),
            &ImportMapping::default(),
        )
        .unwrap();
        assert_eq!(f.people.len(), 1);
        let a = f.as_of.unwrap();
        assert_eq!(
            (a.at.to_rfc3339(), a.by),
            ("2026-12-01T09:00:00+00:00".into(), "generated")
        );
        // A bad row after the comment is still named by its line in the file.
        let e = parse_people_csv(
            Path::new("x.csv"),
            format!("# exported by HRIS\n{HEADER}E1,Ada,L,,bad,Eng,,,,,active,,\n").as_bytes(),
            &ImportMapping::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("x.csv:3: email"), "{e}");
        let e = parse_people_csv(
            Path::new("x.csv"),
            format!("# generated: soon\n{HEADER}").as_bytes(),
            &ImportMapping::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("x.csv:1: generated: \"soon\" is not a time"),
            "{e}"
        );
        // No time at all: the age is unknown.
        let f = parse_hr_file(
            Path::new("x.csv"),
            format!("{HEADER}E1,Ada,L,,ada@example.com,Eng,,,,,active,,\n").as_bytes(),
            &ImportMapping::default(),
        )
        .unwrap();
        assert_eq!(f.as_of, None);
    }

    /// An older export (or a mistaken row) must not silently bring a leaver back: a
    /// terminated -> active change is a rehire, held unless the record has a new start date
    /// after the end date or an admin approves it.
    #[test]
    fn a_leaver_comes_back_only_on_purpose() {
        let mut store = Store::open_in_memory().unwrap();
        let mut left = Person::new("E5", "Ada", "Lovelace", "ada@example.com");
        left.status = EmploymentStatus::Terminated;
        left.start_date = chrono::NaiveDate::from_ymd_opt(2020, 1, 6);
        left.end_date = chrono::NaiveDate::from_ymd_opt(2026, 1, 31);
        import_people(&mut store, std::slice::from_ref(&left), None, "t", false).unwrap();

        // Yesterday's file: active again, same dates. Held; nothing changes.
        let mut stale = left.clone();
        stale.status = EmploymentStatus::Active;
        stale.end_date = None;
        let r = import_people(&mut store, std::slice::from_ref(&stale), None, "t", false).unwrap();
        assert_eq!(r.rehires.len(), 1);
        assert!(!r.rehires[0].applied);
        assert!(
            r.rehires[0].why.contains("--approve-rehire E5"),
            "{:?}",
            r.rehires
        );
        assert_eq!(r.unchanged, 1);
        let now = store.find_person("E5").unwrap().unwrap();
        assert_eq!(now.status, EmploymentStatus::Terminated);

        // Approved by an admin: applied, with the reason on record.
        let approvals = Approvals {
            rehires: &["ada@example.com".to_string()],
            rehire_reason: Some("returning contractor, HR ticket 42"),
            ..Default::default()
        };
        let r = import_people_guarded(
            &mut store,
            std::slice::from_ref(&stale),
            None,
            "admin",
            false,
            &GuardThresholds::default(),
            &approvals,
        )
        .unwrap();
        assert!(r.rehires[0].applied, "{:?}", r.rehires);
        assert!(r.rehires[0].why.contains("HR ticket 42"));
        assert_eq!(
            store.find_person("E5").unwrap().unwrap().status,
            EmploymentStatus::Active
        );

        assert!(store.rehired_at("E5").unwrap().is_some(), "marked a rehire");

        // Leaves again (the mark goes); comes back with a new start date after the end
        // date: no approval needed.
        import_people(&mut store, std::slice::from_ref(&left), None, "t", false).unwrap();
        assert_eq!(store.rehired_at("E5").unwrap(), None);
        let mut rehired = stale.clone();
        rehired.start_date = chrono::NaiveDate::from_ymd_opt(2026, 3, 2);
        let r =
            import_people(&mut store, std::slice::from_ref(&rehired), None, "t", false).unwrap();
        assert!(r.rehires[0].applied, "{:?}", r.rehires);
        assert!(r.rehires[0].why.contains("new start date 2026-03-02"));
        let actions: Vec<String> = store
            .conn()
            .prepare("SELECT action FROM audit_events WHERE subject = 'E5' AND action LIKE 'person.rehire%' ORDER BY seq")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(
            actions,
            ["person.rehire_held", "person.rehired", "person.rehired"]
        );
    }
}

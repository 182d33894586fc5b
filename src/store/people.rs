//! People: upsert from HR, and queries.

use super::{NewAuditEvent, Store, Tx};
use crate::Result;
use crate::model::{EmploymentStatus, Person};
use rusqlite::{OptionalExtension, params};
use serde_json::json;

/// What an upsert did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Upsert {
    Created,
    /// The names of the fields that changed.
    Updated(Vec<&'static str>),
    Unchanged,
}

const COLUMNS: &str = "hris_id, given_name, family_name, preferred_name, display_name, email, department, \
    title, manager_id, location, cost_center, status, start_date, end_date, custom";

fn row_to_person(r: &rusqlite::Row<'_>) -> rusqlite::Result<Person> {
    let status: String = r.get(11)?;
    let custom: String = r.get(14)?;
    Ok(Person {
        hris_id: r.get(0)?,
        given_name: r.get(1)?,
        family_name: r.get(2)?,
        preferred_name: r.get(3)?,
        display_name: r.get(4)?,
        email: r.get(5)?,
        department: r.get(6)?,
        title: r.get(7)?,
        manager_id: r.get(8)?,
        location: r.get(9)?,
        cost_center: r.get(10)?,
        // The CHECK constraint keeps this to the four known values.
        status: status.parse().unwrap_or(EmploymentStatus::Pending),
        start_date: r.get(12)?,
        end_date: r.get(13)?,
        custom: serde_json::from_str(&custom).unwrap_or_default(),
    })
}

/// Fields that differ between two versions of a person, by name.
pub fn changed_fields(a: &Person, b: &Person) -> Vec<&'static str> {
    let mut out = Vec::new();
    macro_rules! cmp {
        ($($f:ident),*) => { $( if a.$f != b.$f { out.push(stringify!($f)); } )* };
    }
    cmp!(
        given_name,
        family_name,
        preferred_name,
        display_name,
        email,
        department,
        title,
        manager_id,
        location,
        cost_center,
        status,
        start_date,
        end_date,
        custom
    );
    out
}

impl Tx<'_> {
    /// Insert or update a person; audits what changed. An identical record writes nothing.
    pub fn upsert_person(&mut self, p: &Person, actor: &str) -> Result<Upsert> {
        let existing = self
            .tx
            .query_row(
                &format!("SELECT {COLUMNS} FROM people WHERE hris_id = ?1"),
                [&p.hris_id],
                row_to_person,
            )
            .optional()?;
        let outcome = match &existing {
            None => Upsert::Created,
            Some(old) => {
                let changed = changed_fields(old, p);
                if changed.is_empty() {
                    return Ok(Upsert::Unchanged);
                }
                Upsert::Updated(changed)
            }
        };
        let custom = serde_json::to_string(&p.custom).unwrap_or_else(|_| "{}".into());
        self.tx.execute(
            &format!(
                "INSERT INTO people ({COLUMNS}, updated_at) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16)
                 ON CONFLICT(hris_id) DO UPDATE SET given_name=excluded.given_name, family_name=excluded.family_name,
                 preferred_name=excluded.preferred_name, display_name=excluded.display_name, email=excluded.email,
                 department=excluded.department, title=excluded.title, manager_id=excluded.manager_id,
                 location=excluded.location, cost_center=excluded.cost_center, status=excluded.status,
                 start_date=excluded.start_date, end_date=excluded.end_date, custom=excluded.custom,
                 updated_at=excluded.updated_at"
            ),
            params![
                p.hris_id, p.given_name, p.family_name, p.preferred_name, p.display_name, p.email,
                p.department, p.title, p.manager_id, p.location, p.cost_center, p.status.as_str(),
                p.start_date, p.end_date, custom, self.now.to_rfc3339()
            ],
        )?;
        let details = match (&outcome, &existing) {
            (Upsert::Updated(fields), Some(old)) => {
                let mut changes = serde_json::Map::new();
                let (o, n) = (
                    serde_json::to_value(old).unwrap_or_default(),
                    serde_json::to_value(p).unwrap_or_default(),
                );
                for f in fields {
                    changes.insert((*f).into(), json!({"from": o[*f], "to": n[*f]}));
                }
                json!({ "changes": changes })
            }
            _ => json!({ "status": p.status.as_str(), "department": p.department }),
        };
        let action = if matches!(outcome, Upsert::Created) {
            "person.created"
        } else {
            "person.updated"
        };
        self.audit(NewAuditEvent {
            actor,
            action,
            subject: &p.hris_id,
            details,
        })?;
        // A leaver's onboarding must never run: whatever would still give them something
        // is cancelled in this same transaction (the workers also re-check before running).
        if p.is_leaver(self.now) {
            // Leaving again ends the rehire mark (see `mark_rehired`).
            self.tx.execute(
                "UPDATE people SET rehired_at = NULL WHERE hris_id = ?1 AND rehired_at IS NOT NULL",
                [&p.hris_id],
            )?;
            self.cancel_granting_ops(
                &p.hris_id,
                "cancelled: the person is a leaver (terminated, or past their end date)",
                actor,
            )?;
        }
        Ok(outcome)
    }
}

impl Tx<'_> {
    /// Keep `at` as the "as of" time of the newest export imported (`meta.import_as_of`),
    /// unless a newer one is already kept.
    pub fn note_import_as_of(&mut self, at: chrono::DateTime<chrono::Utc>) -> Result<()> {
        let at = at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        self.tx.execute(
            "INSERT INTO meta (key, value) VALUES ('import_as_of', ?1)
             ON CONFLICT(key) DO UPDATE SET value = excluded.value WHERE excluded.value > meta.value",
            [at],
        )?;
        Ok(())
    }

    /// Record that a leaver's return was applied (`people.rehired_at` = now).
    ///
    /// This is how the store knows someone is a rehire: the import sets it when it applies
    /// a terminated -> active change (audited there as `person.rehired`), and
    /// [`Tx::upsert_person`] clears it when they become a leaver again. While it is set,
    /// the planner marks their reactivations "rehire" (they appear only until their access
    /// is back) and the console shows "rehire" beside their status.
    pub fn mark_rehired(&mut self, hris_id: &str) -> Result<()> {
        self.tx.execute(
            "UPDATE people SET rehired_at = ?2 WHERE hris_id = ?1",
            params![hris_id, self.now.to_rfc3339()],
        )?;
        Ok(())
    }

    /// A person by HRIS id, read in this transaction.
    pub fn person_by_id(&self, hris_id: &str) -> Result<Option<Person>> {
        Ok(self
            .tx
            .prepare_cached(&format!("SELECT {COLUMNS} FROM people WHERE hris_id = ?1"))?
            .query_row([hris_id], row_to_person)
            .optional()?)
    }
}

impl Store {
    /// Whether someone with this HR id is in HR.
    pub fn has_person(&self, hris_id: &str) -> Result<bool> {
        Ok(self
            .conn
            .prepare_cached("SELECT 1 FROM people WHERE hris_id = ?1")?
            .exists([hris_id])?)
    }

    /// Look a person up by HRIS id, or by work email (case-insensitive).
    pub fn find_person(&self, key: &str) -> Result<Option<Person>> {
        let by_id = self
            .conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM people WHERE hris_id = ?1"),
                [key],
                row_to_person,
            )
            .optional()?;
        if by_id.is_some() {
            return Ok(by_id);
        }
        Ok(self
            .conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM people WHERE email = ?1 COLLATE NOCASE LIMIT 1"),
                [key],
                row_to_person,
            )
            .optional()?)
    }

    /// Every person, ordered by id.
    pub fn all_people(&self) -> Result<Vec<Person>> {
        let mut stmt = self
            .conn
            .prepare(&format!("SELECT {COLUMNS} FROM people ORDER BY hris_id"))?;
        let rows = stmt.query_map([], row_to_person)?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// When the person's return as a rehire was applied, if they are one (see
    /// [`Tx::mark_rehired`]).
    pub fn rehired_at(&self, hris_id: &str) -> Result<Option<String>> {
        Ok(self
            .conn
            .query_row(
                "SELECT rehired_at FROM people WHERE hris_id = ?1",
                [hris_id],
                |r| r.get::<_, Option<String>>(0),
            )
            .optional()?
            .flatten())
    }

    /// The "as of" time of the newest export imported so far (see [`Tx::note_import_as_of`]).
    pub fn import_as_of(&self) -> Result<Option<chrono::DateTime<chrono::Utc>>> {
        let v: Option<String> = self
            .conn
            .query_row(
                "SELECT value FROM meta WHERE key = 'import_as_of'",
                [],
                |r| r.get(0),
            )
            .optional()?;
        Ok(
            v.and_then(|v| chrono::DateTime::parse_from_rfc3339(&v).ok())
                .map(|t| t.with_timezone(&chrono::Utc)),
        )
    }

    pub fn active_people_count(&self) -> Result<i64> {
        Ok(self.conn.query_row(
            "SELECT count(*) FROM people WHERE status != 'terminated'",
            [],
            |r| r.get(0),
        )?)
    }

    pub fn people_count(&self) -> Result<i64> {
        Ok(self
            .conn
            .query_row("SELECT count(*) FROM people", [], |r| r.get(0))?)
    }
}

impl Tx<'_> {
    /// Insert many new people at once (initial load). Audited as one event with the count.
    pub fn bulk_insert_people(&mut self, people: &[Person], actor: &str) -> Result<usize> {
        let now = self.now.to_rfc3339();
        {
            let mut stmt = self.tx.prepare_cached(&format!(
                "INSERT INTO people ({COLUMNS}, updated_at) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16)"
            ))?;
            for p in people {
                let custom = serde_json::to_string(&p.custom).unwrap_or_else(|_| "{}".into());
                stmt.execute(params![
                    p.hris_id,
                    p.given_name,
                    p.family_name,
                    p.preferred_name,
                    p.display_name,
                    p.email,
                    p.department,
                    p.title,
                    p.manager_id,
                    p.location,
                    p.cost_center,
                    p.status.as_str(),
                    p.start_date,
                    p.end_date,
                    custom,
                    now
                ])?;
            }
        }
        self.audit(NewAuditEvent {
            actor,
            action: "people.bulk_loaded",
            subject: "people",
            details: json!({"count": people.len()}),
        })?;
        Ok(people.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upsert_creates_updates_and_skips_identical() {
        let mut s = Store::open_in_memory().unwrap();
        let mut p = Person::new("E1", "Ada", "Lovelace", "ada@example.com");
        assert_eq!(
            s.write(|tx| tx.upsert_person(&p, "t")).unwrap(),
            Upsert::Created
        );
        assert_eq!(
            s.write(|tx| tx.upsert_person(&p, "t")).unwrap(),
            Upsert::Unchanged
        );
        p.department = "Engineering".into();
        p.custom.insert("clearance".into(), "secret".into());
        assert_eq!(
            s.write(|tx| tx.upsert_person(&p, "t")).unwrap(),
            Upsert::Updated(vec!["department", "custom"])
        );
        assert_eq!(s.audit_count().unwrap(), 2);
        assert_eq!(s.find_person("ADA@example.com").unwrap().unwrap(), p);
        let ev = s.audit_events(None, None).unwrap();
        assert_eq!(ev[1].details["changes"]["department"]["to"], "Engineering");
    }
}

//! The world classification compares against: people packed into arenas by index,
//! their intended grants interned, accessdesk's links and logins, and work in flight.

use super::{FastMap, lower};
use crate::model::Person;
use crate::store::Store;
use crate::store::reconcile::{bytes, opt_text, text};
use crate::{Error, Result};
use chrono::{DateTime, Utc};
use rusqlite::OptionalExtension;
use std::collections::HashSet;

/// Everything classification needs that is not the observation itself. People are held
/// by index, packed into arenas (never as a quarter of a million [`Person`]s); intended
/// entitlements are interned, so a run over a million accounts compares integers, not
/// strings.
#[derive(Debug)]
pub struct World {
    /// HR id → index. A table of bare indices whose keys live in one arena (`hot`), so a
    /// lookup touches a few small arrays, not each person's heap.
    index: hashbrown::HashTable<u32>,
    hasher: foldhash::fast::RandomState,
    /// Everyone in HR (in HR id order when loaded from the store), packed.
    pub(super) hot: Hot,
    /// Lower-cased work e-mail → people (one entry per person; homonyms share a hash).
    by_email: hashbrown::HashTable<u32>,
    /// The entitlements intended grants name; an entitlement's id is its index.
    pub(super) ents: Vec<String>,
    ent_ids: FastMap<String, u32>,
    /// Per person (by index): where the ids of their intended entitlements (in every
    /// system) lie in `intended_ids`. One flat array, not a vector per person.
    intended_at: Vec<(u32, u32)>,
    intended_ids: Vec<u32>,
    /// system → lower-cased login → the person accessdesk's accounts table links it to.
    pub(super) links: FastMap<String, FastMap<String, String>>,
    /// system → person → a login linked to them there (the reverse of `links`).
    pub(super) linked_login: FastMap<String, FastMap<String, String>>,
    /// system → lower-cased login → the person accessdesk assigned that login.
    pub(super) logins: FastMap<String, FastMap<String, String>>,
    /// (person, system, entitlement or None for the account) with an operation still in
    /// flight: a grant or removal already on its way is not drift.
    in_flight: HashSet<(String, String, Option<String>)>,
    pub now: DateTime<Utc>,
}

/// The HR fields attribute drift compares, in this order.
pub(super) const HR_FIELDS: [&str; 5] = ["department", "title", "costCenter", "location", "email"];
/// Where `HR_FIELDS` keeps the work e-mail.
const EMAIL: usize = 4;
/// The names shaping needs, kept after `HR_FIELDS`: given, family, preferred, display.
const GIVEN: usize = HR_FIELDS.len();
const FAMILY: usize = GIVEN + 1;
const PREFERRED: usize = GIVEN + 2;
const DISPLAY: usize = GIVEN + 3;
const TEXT_FIELDS: usize = GIVEN + 4;

/// Per person, packed into arenas: their HR id, whether and when they left, and the text
/// classification reads. A million accounts in random order then hit a few megabytes
/// instead of scattered `Person`s, and 250,000 people cost tens of megabytes, not
/// hundreds.
#[derive(Debug, Default)]
pub(super) struct Hot {
    /// HR ids, back to back, and each person's span of it: kept apart from the fields so
    /// the index's key checks stay within a small, cache-resident arena.
    ids: String,
    id_spans: Vec<(u32, u32)>,
    /// The `TEXT_FIELDS`, back to back, and each person's spans of them.
    fields: String,
    field_spans: Vec<[(u32, u32); TEXT_FIELDS]>,
    pub(super) leaver: Vec<bool>,
    end_date: Vec<Option<chrono::NaiveDate>>,
}

/// One person as [`Hot`] keeps them, borrowed from a [`Person`] or a row of `people`.
struct PersonParts<'a> {
    id: &'a str,
    text: [&'a str; TEXT_FIELDS],
    status: crate::model::EmploymentStatus,
    end_date: Option<chrono::NaiveDate>,
}

impl<'a> PersonParts<'a> {
    fn of(p: &'a Person) -> Self {
        PersonParts {
            id: &p.hris_id,
            text: [
                &p.department,
                &p.title,
                &p.cost_center,
                &p.location,
                &p.email,
                &p.given_name,
                &p.family_name,
                p.preferred_name.as_deref().unwrap_or_default(),
                p.display_name.as_deref().unwrap_or_default(),
            ],
            status: p.status,
            end_date: p.end_date,
        }
    }
}

fn push_text(arena: &mut String, s: &str) -> (u32, u32) {
    let start = arena.len() as u32;
    arena.push_str(s);
    (start, arena.len() as u32)
}

impl Hot {
    fn len(&self) -> usize {
        self.id_spans.len()
    }

    /// Set person `i` (the next index appends; a known one is replaced).
    fn set(&mut self, i: usize, p: &PersonParts<'_>, now: DateTime<Utc>) {
        let id = push_text(&mut self.ids, p.id);
        let spans = p.text.map(|t| push_text(&mut self.fields, t));
        let leaver = crate::model::leaves_at(p.status, p.end_date).is_some_and(|t| t <= now);
        if i == self.len() {
            self.id_spans.push(id);
            self.field_spans.push(spans);
            self.leaver.push(leaver);
            self.end_date.push(p.end_date);
        } else {
            self.id_spans[i] = id;
            self.field_spans[i] = spans;
            self.leaver[i] = leaver;
            self.end_date[i] = p.end_date;
        }
    }

    /// Person `i`'s text field `field` (an index into `HR_FIELDS`, or `GIVEN`...).
    pub(super) fn field(&self, i: usize, field: usize) -> &str {
        let (a, b) = self.field_spans[i][field];
        &self.fields[a as usize..b as usize]
    }

    pub(super) fn id(&self, i: usize) -> &str {
        let (a, b) = self.id_spans[i];
        &self.ids[a as usize..b as usize]
    }

    /// "Given Family (HR id)", as findings name people.
    pub(super) fn display(&self, i: usize) -> String {
        format!(
            "{} {} ({})",
            self.field(i, GIVEN),
            self.field(i, FAMILY),
            self.id(i)
        )
    }

    /// When person `i` left, as a finding says it.
    pub(super) fn left_on(&self, i: usize) -> String {
        match self.end_date[i] {
            Some(d) => format!("end date {d}"),
            None => "terminated in HR".into(),
        }
    }

    pub(super) fn names(&self, i: usize) -> crate::model::names::NameParts<'_> {
        let opt = |f| Some(self.field(i, f)).filter(|s| !s.is_empty());
        crate::model::names::NameParts {
            given: self.field(i, GIVEN),
            family: self.field(i, FAMILY),
            preferred: opt(PREFERRED),
            display: opt(DISPLAY),
        }
    }
}

/// Intended grants as loaded: the interned entitlements, and per person (in HR id order)
/// their HR id and the ids of their entitlements, packed flat.
struct IntendedRows {
    ents: Vec<String>,
    /// HR ids back to back, and per person: their id's end, and their ids' end.
    people: String,
    ends: Vec<(u32, u32)>,
    ids: Vec<u32>,
}

impl IntendedRows {
    /// (person, their entitlement ids), in order.
    fn iter(&self) -> impl Iterator<Item = (&str, &[u32])> {
        let mut from = (0usize, 0usize);
        self.ends.iter().map(move |&(p, e)| {
            let (p, e) = (p as usize, e as usize);
            let out = (&self.people[from.0..p], &self.ids[from.1..e]);
            from = (p, e);
            out
        })
    }
}

fn load_intended(
    c: &rusqlite::Connection,
    from: Option<&str>,
    to: Option<&str>,
) -> Result<IntendedRows> {
    let mut out = IntendedRows {
        ents: Vec::new(),
        people: String::new(),
        ends: Vec::new(),
        ids: Vec::new(),
    };
    // Matched on bytes; text is checked (UTF-8) once per person and entitlement.
    let mut ent_ids: FastMap<Vec<u8>, u32> = FastMap::default();
    // The primary key orders rows by person: each person's grants arrive together.
    // Bounds spelled out (not `?1 IS NULL OR ...`), so SQLite seeks to the range.
    let (sql, args): (&str, Vec<&str>) = match (from, to) {
        (Some(f), Some(t)) => (
            "SELECT person_id, entitlement FROM intended_grants WHERE person_id >= ?1 AND person_id < ?2 ORDER BY person_id",
            vec![f, t],
        ),
        (Some(f), None) => (
            "SELECT person_id, entitlement FROM intended_grants WHERE person_id >= ?1 ORDER BY person_id",
            vec![f],
        ),
        (None, Some(t)) => (
            "SELECT person_id, entitlement FROM intended_grants WHERE person_id < ?1 ORDER BY person_id",
            vec![t],
        ),
        (None, None) => (
            "SELECT person_id, entitlement FROM intended_grants ORDER BY person_id",
            vec![],
        ),
    };
    let mut st = c.prepare(sql)?;
    let mut rows = st.query(rusqlite::params_from_iter(args))?;
    let mut last_start = 0usize;
    while let Some(r) = rows.next()? {
        let ent = bytes(r, 1)?;
        let id = match ent_ids.get(ent) {
            Some(id) => *id,
            None => {
                let id = out.ents.len() as u32;
                out.ents.push(text(r, 1)?.to_string());
                ent_ids.insert(ent.to_vec(), id);
                id
            }
        };
        let person = bytes(r, 0)?;
        let same = !out.ends.is_empty() && out.people.as_bytes()[last_start..] == *person;
        if !same {
            last_start = out.people.len();
            out.people.push_str(text(r, 0)?);
            out.ends
                .push((out.people.len() as u32, out.ids.len() as u32));
        }
        out.ids.push(id);
        if let Some(last) = out.ends.last_mut() {
            last.1 = out.ids.len() as u32;
        }
    }
    Ok(out)
}

impl World {
    pub fn new(now: DateTime<Utc>) -> World {
        World {
            index: hashbrown::HashTable::new(),
            hasher: foldhash::fast::RandomState::default(),
            hot: Hot::default(),
            by_email: hashbrown::HashTable::new(),
            ents: Vec::new(),
            ent_ids: FastMap::default(),
            intended_at: Vec::new(),
            intended_ids: Vec::new(),
            links: FastMap::default(),
            linked_login: FastMap::default(),
            logins: FastMap::default(),
            in_flight: HashSet::new(),
            now,
        }
    }

    /// How many people.
    pub(super) fn len(&self) -> usize {
        self.hot.len()
    }

    fn hash(&self, s: &str) -> u64 {
        std::hash::BuildHasher::hash_one(&self.hasher, s)
    }

    pub(super) fn index_of(&self, id: &str) -> Option<usize> {
        self.index
            .find(self.hash(id), |&i| self.hot.id(i as usize) == id)
            .map(|&i| i as usize)
    }

    /// The people whose work e-mail is `email` (any case), in the order they were added.
    pub(super) fn with_email(&self, email: &str) -> Vec<usize> {
        let key = lower(email);
        let mut out: Vec<usize> = self
            .by_email
            .iter_hash(self.hash(&key))
            .map(|&i| i as usize)
            .filter(|&i| lower(self.hot.field(i, EMAIL)) == key)
            .collect();
        out.sort_unstable();
        out
    }

    /// Add a person (or replace the one with the same HR id).
    pub fn add_person(&mut self, p: Person) {
        self.add_parts(&PersonParts::of(&p));
    }

    fn add_parts(&mut self, p: &PersonParts<'_>) {
        let i = match self.index_of(p.id) {
            Some(i) => {
                // Replaced: out of the old e-mail's entries (back in below).
                let old = self.hash(&lower(self.hot.field(i, EMAIL)));
                if let Ok(e) = self.by_email.find_entry(old, |&j| j as usize == i) {
                    e.remove();
                }
                i
            }
            None => {
                let i = self.hot.len();
                let hash = self.hash(p.id);
                let (hot, hasher) = (&self.hot, &self.hasher);
                self.index.insert_unique(hash, i as u32, |&j| {
                    std::hash::BuildHasher::hash_one(hasher, hot.id(j as usize))
                });
                self.intended_at.push((0, 0));
                i
            }
        };
        self.hot.set(i, p, self.now);
        let hash = self.hash(&lower(p.text[EMAIL]));
        let (hot, hasher) = (&self.hot, &self.hasher);
        self.by_email.insert_unique(hash, i as u32, |&j| {
            std::hash::BuildHasher::hash_one(hasher, lower(hot.field(j as usize, EMAIL)).as_ref())
        });
    }

    fn ent_id(&mut self, ent: &str) -> u32 {
        if let Some(&id) = self.ent_ids.get(ent) {
            return id;
        }
        let id = self.ents.len() as u32;
        self.ents.push(ent.to_string());
        self.ent_ids.insert(ent.to_string(), id);
        id
    }

    /// Record that policy grants `person` the entitlement (ignored for someone not in HR).
    pub fn intend(&mut self, person: &str, ent: &str) {
        let id = self.ent_id(ent);
        if let Some(i) = self.index_of(person) {
            self.set_intended(i, |ids| ids.push(id));
        }
    }

    /// Person `i`'s intended entitlement ids.
    pub(super) fn intended(&self, i: usize) -> &[u32] {
        let (start, len) = self.intended_at[i];
        &self.intended_ids[start as usize..(start + len) as usize]
    }

    /// Change person `i`'s intended ids: their span moves to the end of the flat array
    /// unless it is there already (loading appends each person once; `intend` is for
    /// small worlds).
    fn set_intended(&mut self, i: usize, f: impl FnOnce(&mut Vec<u32>)) {
        let (start, len) = self.intended_at[i];
        let (start, len) = (start as usize, len as usize);
        if start + len != self.intended_ids.len() || len == 0 {
            let old = start..start + len;
            let at = self.intended_ids.len();
            self.intended_ids.extend_from_within(old);
            self.intended_at[i] = (at as u32, len as u32);
        }
        let at = self.intended_at[i].0 as usize;
        let mut tail = self.intended_ids.split_off(at);
        f(&mut tail);
        self.intended_at[i] = (at as u32, tail.len() as u32);
        self.intended_ids.extend_from_slice(&tail);
    }

    /// Record accessdesk's link of a login in a system to a person.
    pub fn link(&mut self, system: &str, login: &str, person: &str) {
        self.links
            .entry(system.to_string())
            .or_default()
            .insert(login.to_lowercase(), person.to_string());
        self.linked_login
            .entry(system.to_string())
            .or_default()
            .insert(person.to_string(), login.to_string());
    }

    /// Record a login accessdesk assigned a person in a system.
    pub fn assign_login(&mut self, system: &str, login: &str, person: &str) {
        self.logins
            .entry(system.to_string())
            .or_default()
            .insert(login.to_lowercase(), person.to_string());
    }

    /// Record an operation in flight for a person's account (`None`) or entitlement.
    pub fn in_flight(&mut self, person: &str, system: &str, ent: Option<&str>) {
        self.in_flight.insert((
            person.to_string(),
            system.to_string(),
            ent.map(str::to_string),
        ));
    }

    pub(super) fn moving(&self, person: &str, system: &str, ent: Option<&str>) -> bool {
        !self.in_flight.is_empty()
            && self.in_flight.contains(&(
                person.to_string(),
                system.to_string(),
                ent.map(str::to_string),
            ))
    }

    /// Load people, intended grants, links, assigned logins and work in flight. The
    /// intended grants (the largest part) load meanwhile on two readers of their own,
    /// each taking half of the people. People are read straight into the arenas, row by
    /// row, never as a list of [`Person`]s.
    pub fn load(store: &Store, now: DateTime<Utc>) -> Result<World> {
        let c = store.conn();
        let mode = store.read_mode();
        // The HR id that splits the grants in two (by the primary key's order).
        let middle: Option<String> = c
            .query_row(
                "SELECT hris_id FROM people ORDER BY hris_id LIMIT 1 OFFSET (SELECT count(*) / 2 FROM people)",
                [],
                |r| r.get(0),
            )
            .optional()?;
        let readers = match (
            &middle,
            store.open_reader_in(mode)?,
            store.open_reader_in(mode)?,
        ) {
            (Some(m), Some(a), Some(b)) => {
                Some(((a, None, Some(m.clone())), (b, Some(m.clone()), None)))
            }
            _ => None,
        };
        std::thread::scope(|scope| {
            let halves = readers.map(|(lo, hi)| {
                let spawn =
                    |(conn, from, to): (rusqlite::Connection, Option<String>, Option<String>)| {
                        scope.spawn(move || load_intended(&conn, from.as_deref(), to.as_deref()))
                    };
                (spawn(lo), spawn(hi))
            });
            let mut w = World::new(now);
            let people: i64 = c.query_row("SELECT count(*) FROM people", [], |r| r.get(0))?;
            let people = people as usize;
            w.hot.id_spans.reserve(people);
            w.hot.field_spans.reserve(people);
            w.intended_at.reserve(people);
            w.index.reserve(people, |_| 0);
            let mut st = c.prepare(
                "SELECT hris_id, department, title, cost_center, location, email, given_name,
                        family_name, preferred_name, display_name, status, end_date
                 FROM people ORDER BY hris_id",
            )?;
            let mut rows = st.query([])?;
            while let Some(r) = rows.next()? {
                let t = |k| text(r, k);
                let o = |k| opt_text(r, k).map(Option::unwrap_or_default);
                let status = t(10)?;
                let parts = PersonParts {
                    id: t(0)?,
                    text: [
                        t(1)?,
                        t(2)?,
                        t(3)?,
                        t(4)?,
                        t(5)?,
                        t(6)?,
                        t(7)?,
                        o(8)?,
                        o(9)?,
                    ],
                    // The CHECK constraint keeps this to the four known values.
                    status: status
                        .parse()
                        .unwrap_or(crate::model::EmploymentStatus::Pending),
                    end_date: r.get(11)?,
                };
                w.add_parts(&parts);
            }
            let mut st = c.prepare(
                "SELECT system, login, person_id FROM accounts WHERE person_id IS NOT NULL",
            )?;
            let mut rows = st.query([])?;
            while let Some(r) = rows.next()? {
                w.link(text(r, 0)?, text(r, 1)?, text(r, 2)?);
            }
            let mut st = c.prepare(&format!(
                "SELECT person_id, system, entitlement FROM operations
                 WHERE status IN ('queued','running','retry_wait','verifying','scheduled','pending_approval','blocked')
                 UNION ALL SELECT person_id, system, entitlement FROM ({})",
                crate::store::backlog::BACKLOG_OPS
            ))?;
            let mut rows = st.query([])?;
            while let Some(r) = rows.next()? {
                w.in_flight(text(r, 0)?, text(r, 1)?, opt_text(r, 2)?);
            }
            let mut st = c.prepare("SELECT system, login_key, person_id FROM logins")?;
            let mut rows = st.query([])?;
            while let Some(r) = rows.next()? {
                w.assign_login(text(r, 0)?, text(r, 1)?, text(r, 2)?);
            }
            let join = |h: std::thread::ScopedJoinHandle<'_, Result<IntendedRows>>| {
                h.join().unwrap_or_else(|_| {
                    Err(Error::Failed("loading intended grants panicked".into()))
                })
            };
            let parts = match halves {
                Some((lo, hi)) => vec![join(lo)?, join(hi)?],
                None => vec![load_intended(c, None, None)?],
            };
            for rows in parts {
                // This part's entitlement ids → the world's.
                let ids_here: Vec<u32> = rows.ents.iter().map(|e| w.ent_id(e)).collect();
                for (person, ids) in rows.iter() {
                    let Some(i) = w.index_of(person) else {
                        continue;
                    };
                    let at = w.intended_ids.len();
                    w.intended_ids
                        .extend(ids.iter().map(|e| ids_here[*e as usize]));
                    w.intended_at[i] = (at as u32, ids.len() as u32);
                }
            }
            Ok(w)
        })
    }
}

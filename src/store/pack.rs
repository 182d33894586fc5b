//! Packed observations: a system's complete read, kept for reconciliation as a few large
//! blobs (`observed_packs`) beside the rows it was stored as.
//!
//! Classification reads every account of every system with the groups it holds. From the
//! rows that is three SQLite rows per account (the account and two memberships, say) and
//! nine column reads; a million accounts spent most of their time in SQLite's row
//! machinery. A pack holds the same accounts, in external-id order, with the ordinals of
//! their groups, 2,048 to a blob: reading it is a walk over bytes.
//!
//! The rows stay the record: a pack is built from them (through the same merge join
//! the row reader uses) when a system's read is saved as complete, and dropped whenever
//! the rows of that read change. A read without a pack (incomplete, or stored by an
//! older accessdesk) is read from its rows. Group ordinals index the read's groups in
//! entitlement order ([`super::reconcile::observed_groups_in`]); a pack made for another
//! number of groups is not used.
//!
//! Layout of one blob, per account: a flag byte (active, appeared late, has e-mail, has
//! HR id, has attributes), then each text present as a LEB128 length and its UTF-8
//! bytes (external id, login, e-mail, HR id, attributes JSON), then the number of groups
//! held and each group's ordinal, as LEB128.

use super::reconcile::{AccountRow, Attrs};
use crate::{Error, Result};
use rusqlite::{Connection, params};

/// Accounts per blob: large enough that SQLite's per-row cost vanishes, small enough
/// that a blob is a few hundred kilobytes.
const CHUNK: usize = 2048;

const ACTIVE: u8 = 1;
const LATE: u8 = 2;
const EMAIL: u8 = 4;
const HRIS: u8 = 8;
const ATTRS: u8 = 16;

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_text(out: &mut Vec<u8>, s: &str) {
    put_varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

/// Append one account to a blob being built.
fn encode(out: &mut Vec<u8>, a: &AccountRow<'_>, attrs: Option<&str>, held: &[u32]) {
    let mut flags = 0;
    for (on, bit) in [
        (a.active, ACTIVE),
        (a.late, LATE),
        (a.email.is_some(), EMAIL),
        (a.hris_id.is_some(), HRIS),
        (attrs.is_some(), ATTRS),
    ] {
        if on {
            flags |= bit;
        }
    }
    out.push(flags);
    put_text(out, a.external_id);
    put_text(out, a.login);
    for t in [a.email, a.hris_id, attrs].into_iter().flatten() {
        put_text(out, t);
    }
    put_varint(out, held.len() as u64);
    for &g in held {
        put_varint(out, u64::from(g));
    }
}

/// What was wrong with a blob, and where.
#[derive(Debug, PartialEq, Eq)]
pub struct Damage {
    pub at: usize,
    pub what: &'static str,
}

/// Reads one blob account by account.
pub struct Decoder<'a> {
    data: &'a [u8],
    pos: usize,
    groups: usize,
    held: Vec<u32>,
}

impl<'a> Decoder<'a> {
    pub fn new(data: &'a [u8], groups: usize) -> Self {
        Decoder {
            data,
            pos: 0,
            groups,
            held: Vec::new(),
        }
    }

    fn damage(&self, what: &'static str) -> Damage {
        Damage { at: self.pos, what }
    }

    fn byte(&mut self) -> std::result::Result<u8, Damage> {
        let b = *self
            .data
            .get(self.pos)
            .ok_or_else(|| self.damage("ends inside an account"))?;
        self.pos += 1;
        Ok(b)
    }

    fn varint(&mut self) -> std::result::Result<u64, Damage> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(self.damage("a number longer than 64 bits"))
    }

    fn text(&mut self) -> std::result::Result<&'a str, Damage> {
        let len = self.varint()?;
        let end = usize::try_from(len)
            .ok()
            .and_then(|l| self.pos.checked_add(l))
            .filter(|&e| e <= self.data.len())
            .ok_or_else(|| self.damage("a text longer than the blob"))?;
        let data: &'a [u8] = self.data;
        let s = std::str::from_utf8(&data[self.pos..end])
            .map_err(|_| self.damage("a text that is not UTF-8"))?;
        self.pos = end;
        Ok(s)
    }

    /// The next account and the groups it holds; None at the end of the blob.
    #[allow(clippy::type_complexity)]
    pub fn next_account(
        &mut self,
    ) -> std::result::Result<Option<(AccountRow<'a>, &[u32])>, Damage> {
        if self.pos == self.data.len() {
            return Ok(None);
        }
        let flags = self.byte()?;
        if flags & !(ACTIVE | LATE | EMAIL | HRIS | ATTRS) != 0 {
            return Err(self.damage("unknown flags"));
        }
        let external_id = self.text()?;
        let login = self.text()?;
        let opt = |bit: u8, d: &mut Self| -> std::result::Result<Option<&'a str>, Damage> {
            if flags & bit != 0 {
                d.text().map(Some)
            } else {
                Ok(None)
            }
        };
        let email = opt(EMAIL, self)?;
        let hris_id = opt(HRIS, self)?;
        let attrs = opt(ATTRS, self)?;
        let n = self.varint()?;
        if n > self.groups as u64 {
            return Err(self.damage("more groups than the read has"));
        }
        self.held.clear();
        for _ in 0..n {
            let g = self.varint()?;
            if g >= self.groups as u64 {
                return Err(self.damage("a group the read does not have"));
            }
            self.held.push(g as u32);
        }
        let row = AccountRow {
            external_id,
            login,
            email,
            active: flags & ACTIVE != 0,
            hris_id,
            attributes: Attrs::Json(attrs),
            late: flags & LATE != 0,
        };
        Ok(Some((row, &self.held)))
    }
}

/// Build the pack of one system's read from its rows, replacing any before. Returns the
/// number of accounts packed.
pub fn build(conn: &Connection, run: i64, system: &str) -> Result<usize> {
    drop_pack(conn, run, system)?;
    let groups = super::reconcile::observed_groups_in(conn, run, system)?;
    let mut ins = conn.prepare_cached(
        "INSERT INTO observed_packs (run_id, system, seq, groups, accounts, unlisted, data)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    let mut blob = Vec::with_capacity(256 * CHUNK);
    let (mut seq, mut in_blob) = (0usize, 0usize);
    let mut flush = |blob: &mut Vec<u8>, in_blob: usize, seq: usize, unlisted: usize| {
        ins.execute(params![
            run,
            system,
            seq as i64,
            groups.len() as i64,
            in_blob as i64,
            unlisted as i64,
            blob.as_slice()
        ])?;
        blob.clear();
        Ok::<_, Error>(())
    };
    let unlisted =
        super::reconcile::for_each_observed_row(conn, run, system, &groups, |a, held| {
            let attrs = match a.attributes {
                Attrs::Json(j) => j,
                Attrs::Map(_) => None,
            };
            encode(&mut blob, a, attrs, held);
            in_blob += 1;
            if in_blob == CHUNK {
                flush(&mut blob, in_blob, seq, 0)?;
                seq += 1;
                in_blob = 0;
            }
            Ok(())
        })?;
    // The last blob, even empty: it carries the count of memberships without an account,
    // and marks the read as packed.
    flush(&mut blob, in_blob, seq, unlisted)?;
    Ok(seq * CHUNK + in_blob)
}

/// Forget a read's pack (its rows changed).
pub fn drop_pack(conn: &Connection, run: i64, system: &str) -> Result<()> {
    conn.prepare_cached("DELETE FROM observed_packs WHERE run_id = ?1 AND system = ?2")?
        .execute(params![run, system])?;
    Ok(())
}

/// Stream a read from its pack, as [`super::reconcile::for_each_observed_account`] does.
/// None when the read has no pack for `groups` groups (then read the rows).
pub fn for_each(
    conn: &Connection,
    run: i64,
    system: &str,
    groups: usize,
    mut f: impl FnMut(&AccountRow<'_>, &[u32]) -> Result<()>,
) -> Result<Option<usize>> {
    let mut st = conn.prepare_cached(
        "SELECT seq, groups, unlisted, data FROM observed_packs WHERE run_id = ?1 AND system = ?2 ORDER BY seq",
    )?;
    let mut rows = st.query(params![run, system])?;
    let mut unlisted = 0usize;
    let mut first = true;
    while let Some(r) = rows.next()? {
        let seq: i64 = r.get(0)?;
        let made_for: i64 = r.get(1)?;
        let damaged = |what: String| {
            Error::Failed(format!(
                "the stored observation of {system} in run {run} is damaged (pack {seq}: {what}); \
                 run `accessdesk observe --system {system}` again"
            ))
        };
        if made_for != groups as i64 {
            if first {
                return Ok(None);
            }
            return Err(damaged(format!("made for {made_for} groups, not {groups}")));
        }
        first = false;
        unlisted += usize::try_from(r.get::<_, i64>(2)?).unwrap_or(0);
        let data = r
            .get_ref(3)?
            .as_blob()
            .map_err(|e| damaged(format!("not a blob: {e}")))?;
        let mut d = Decoder::new(data, groups);
        loop {
            match d.next_account() {
                Ok(Some((row, held))) => f(&row, held)?,
                Ok(None) => break,
                Err(Damage { at, what }) => return Err(damaged(format!("byte {at}: {what}"))),
            }
        }
    }
    Ok((!first).then_some(unlisted))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn row<'a>(
        id: &'a str,
        login: &'a str,
        email: Option<&'a str>,
        hris: Option<&'a str>,
        attrs: Option<&'a str>,
        flags: (bool, bool),
    ) -> AccountRow<'a> {
        AccountRow {
            external_id: id,
            login,
            email,
            active: flags.0,
            hris_id: hris,
            attributes: Attrs::Json(attrs),
            late: flags.1,
        }
    }

    type Plain = (
        String,
        String,
        Option<String>,
        Option<String>,
        Option<String>,
        bool,
        bool,
        Vec<u32>,
    );

    fn plain(a: &AccountRow<'_>, held: &[u32]) -> Plain {
        let attrs = match a.attributes {
            Attrs::Json(j) => j.map(str::to_string),
            Attrs::Map(_) => None,
        };
        (
            a.external_id.into(),
            a.login.into(),
            a.email.map(Into::into),
            a.hris_id.map(Into::into),
            attrs,
            a.active,
            a.late,
            held.to_vec(),
        )
    }

    proptest! {
        /// What is encoded is what is decoded, for any text (non-Latin, empty, long).
        #[test]
        fn accounts_survive_the_round_trip(accounts in proptest::collection::vec((
            ".{0,40}", ".{0,40}", proptest::option::of(".{0,40}"), proptest::option::of(".{0,12}"),
            proptest::option::of(".{0,300}"), any::<bool>(), any::<bool>(),
            proptest::collection::vec(0u32..200, 0..8)), 0..30)) {
            let mut blob = Vec::new();
            let mut want = Vec::new();
            for (id, login, email, hris, attrs, active, late, held) in &accounts {
                let r = row(id, login, email.as_deref(), hris.as_deref(), attrs.as_deref(), (*active, *late));
                encode(&mut blob, &r, attrs.as_deref(), held);
                want.push(plain(&r, held));
            }
            let mut d = Decoder::new(&blob, 200);
            let mut got = Vec::new();
            while let Some((r, held)) = d.next_account().unwrap() {
                got.push(plain(&r, held));
            }
            prop_assert_eq!(got, want);
        }

        /// Damaged bytes are an error naming where, never a panic or a wrong group.
        #[test]
        fn any_bytes_decode_or_fail_cleanly(data in proptest::collection::vec(any::<u8>(), 0..400)) {
            let mut d = Decoder::new(&data, 4);
            loop {
                match d.next_account() {
                    Ok(Some((_, held))) => prop_assert!(held.iter().all(|&g| g < 4)),
                    Ok(None) => break,
                    Err(e) => { prop_assert!(e.at <= data.len()); break; }
                }
            }
        }
    }

    #[test]
    fn a_truncated_blob_says_where_it_ends() {
        let mut blob = Vec::new();
        encode(
            &mut blob,
            &row("00u1", "ann@x.io", None, Some("E1"), None, (true, false)),
            None,
            &[0, 2],
        );
        blob.truncate(blob.len() - 1);
        let mut d = Decoder::new(&blob, 3);
        let e = d.next_account().unwrap_err();
        assert_eq!(e.what, "ends inside an account");
        assert_eq!(e.at, blob.len());
    }

    #[test]
    fn a_group_beyond_the_read_is_refused() {
        let mut blob = Vec::new();
        encode(
            &mut blob,
            &row("00u1", "ann@x.io", None, None, None, (true, false)),
            None,
            &[5],
        );
        let e = Decoder::new(&blob, 3).next_account().unwrap_err();
        assert_eq!(e.what, "a group the read does not have");
    }
}

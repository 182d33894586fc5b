//! `report verify FILE`: is this file a report accessdesk wrote, unchanged, and does the
//! audit log that says so still verify?
//!
//! The file is hashed as a stream (any size, any bytes). Its SHA-256 is looked up among
//! the `report.written` events. When none has it, the recorded report it most resembles
//! is found by walking each candidate's recorded section lengths over the file, in order
//! and from the end (so a section that only moved still counts as matching), and the
//! first section that differs is named with its byte range and lines.

use super::{ACTION, Format, SectionDigest};
use crate::store::{AuditProblem, Store};
use crate::{Error, Result};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// How many recorded reports are compared section by section (the newest ones).
const MAX_CANDIDATES: usize = 64;
/// How much of the file is read to guess its format and run.
const SNIFF_BYTES: u64 = 64 * 1024;

/// A report as its `report.written` event records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Recorded {
    pub seq: i64,
    pub ts: String,
    pub actor: String,
    pub run: Option<i64>,
    pub format: Option<String>,
    pub sha256: String,
    pub bytes: Option<u64>,
    pub output: Option<String>,
    pub sections: Vec<SectionDigest>,
}

impl Recorded {
    fn describe(&self) -> String {
        format!(
            "the {} report of run {} written {} by {} to {} (audit event #{}, {} bytes)",
            self.format.as_deref().unwrap_or("?"),
            self.run.map_or("?".to_string(), |r| r.to_string()),
            self.ts,
            self.actor,
            self.output.as_deref().unwrap_or("?"),
            self.seq,
            self.bytes.map_or("?".to_string(), |b| b.to_string())
        )
    }
}

/// What is known about the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileFacts {
    pub path: String,
    pub bytes: u64,
    pub sha256: String,
    /// Guessed from its first bytes.
    pub format: Option<Format>,
    /// Guessed from its header.
    pub run: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SectionState {
    /// Same bytes where the recorded layout puts it.
    Matches,
    /// Same bytes, but moved (counted from the end of the file).
    Moved,
    Differs,
    /// The file ends before this section would.
    Missing,
}

/// One recorded section laid over the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SectionCheck {
    pub name: String,
    /// Byte range in the file (end exclusive), by the recorded lengths from the start.
    pub start: u64,
    pub end: u64,
    pub state: SectionState,
}

/// The recorded report a file most resembles.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Resemblance {
    pub recorded: Recorded,
    pub matching: usize,
    pub sections: Vec<SectionCheck>,
    /// The first section that differs: its name, byte range in this file and lines.
    pub first_difference: Option<Difference>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Difference {
    pub section: String,
    pub start: u64,
    pub end: u64,
    pub first_line: u64,
    pub last_line: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainState {
    pub ok: bool,
    pub events: Option<u64>,
    pub first_bad_event: Option<i64>,
    pub reason: Option<String>,
}

/// The verdict on a file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verification {
    pub ok: bool,
    pub file: FileFacts,
    /// The event that recorded exactly this file.
    pub recorded: Option<Recorded>,
    pub recorded_reports: usize,
    pub resembles: Option<Resemblance>,
    pub audit_chain: ChainState,
}

/// Verify the file at `path` against the store's audit log.
pub fn verify(store: &Store, path: &Path) -> Result<Verification> {
    let mut file = open(path)?;
    let (bytes, sha256) = hash_all(&mut file, path)?;
    let head = read_head(&mut file, bytes, path)?;
    let facts = FileFacts {
        path: path.display().to_string(),
        bytes,
        sha256,
        format: sniff_format(&head),
        run: sniff_run(&head),
    };
    let reports = recorded_reports(store)?;
    let recorded = reports.iter().find(|r| r.sha256 == facts.sha256).cloned();
    let resembles = match recorded {
        Some(_) => None,
        None => resemblance(&mut file, path, &facts, &reports)?,
    };
    let audit_chain = match store.audit_verify()? {
        Ok(n) => ChainState {
            ok: true,
            events: Some(n),
            first_bad_event: None,
            reason: None,
        },
        Err(AuditProblem { seq, reason }) => ChainState {
            ok: false,
            events: None,
            first_bad_event: Some(seq),
            reason: Some(reason),
        },
    };
    Ok(Verification {
        ok: recorded.is_some() && audit_chain.ok,
        file: facts,
        recorded,
        recorded_reports: reports.len(),
        resembles,
        audit_chain,
    })
}

fn open(path: &Path) -> Result<File> {
    let bad = |what: String| {
        Error::usage(
            format!("{}: {what}", path.display()),
            "give the path of a report written by `accessdesk report reconcile -o FILE`",
        )
    };
    let meta = std::fs::metadata(path).map_err(|e| bad(format!("cannot read it: {e}")))?;
    if !meta.is_file() {
        return Err(bad("not a regular file".into()));
    }
    File::open(path).map_err(|e| bad(format!("cannot open it: {e}")))
}

fn io_err(path: &Path, e: std::io::Error) -> Error {
    Error::io(format!("reading {}", path.display()), e)
}

/// Stream the whole file through SHA-256.
fn hash_all(file: &mut File, path: &Path) -> Result<(u64, String)> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut n = 0u64;
    loop {
        let got = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(g) => g,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_err(path, e)),
        };
        h.update(&buf[..got]);
        n += got as u64;
    }
    Ok((n, hex::encode(h.finalize())))
}

fn read_head(file: &mut File, len: u64, path: &Path) -> Result<Vec<u8>> {
    let mut head = Vec::new();
    file.seek(SeekFrom::Start(0))
        .and_then(|_| {
            (&mut *file)
                .take(SNIFF_BYTES.min(len))
                .read_to_end(&mut head)
        })
        .map_err(|e| io_err(path, e))?;
    Ok(head)
}

fn sniff_format(head: &[u8]) -> Option<Format> {
    let start = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    if start.starts_with(b"<!DOCTYPE html") {
        Some(Format::Html)
    } else if start.starts_with(b"{") {
        Some(Format::Json)
    } else if start.starts_with(b"section,header") {
        Some(Format::Csv)
    } else {
        None
    }
}

/// The run id a report's header names, in any of the three formats.
fn sniff_run(head: &[u8]) -> Option<i64> {
    let text = String::from_utf8_lossy(head);
    let re = regex::Regex::new(
        r#"(?:"run_id":|\nrun_id,|<th scope="row">run_id</th><td class="num">)(\d{1,18})"#,
    )
    .ok()?;
    re.captures(&text)?.get(1)?.as_str().parse().ok()
}

/// Every `report.written` event, newest first. Events whose details do not have the
/// expected shape are skipped.
pub fn recorded_reports(store: &Store) -> Result<Vec<Recorded>> {
    let mut st = store.conn().prepare(
        "SELECT seq, ts, actor, details FROM audit_events WHERE action = ?1 ORDER BY seq DESC",
    )?;
    let rows = st.query_map([ACTION], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (seq, ts, actor, details) = row?;
        let Ok(d) = serde_json::from_str::<serde_json::Value>(&details) else {
            continue;
        };
        let Some(sha256) = d["sha256"].as_str() else {
            continue;
        };
        out.push(Recorded {
            seq,
            ts,
            actor,
            run: d["run"].as_i64(),
            format: d["format"].as_str().map(str::to_string),
            sha256: sha256.to_string(),
            bytes: d["bytes"].as_u64(),
            output: d["output"].as_str().map(str::to_string),
            sections: serde_json::from_value(d["sections"].clone()).unwrap_or_default(),
        });
    }
    Ok(out)
}

/// Hashes byte ranges of the file, remembering each.
struct Ranges<'a> {
    file: &'a mut File,
    path: &'a Path,
    len: u64,
    seen: HashMap<(u64, u64), String>,
}

impl Ranges<'_> {
    fn sha256(&mut self, start: u64, n: u64) -> Result<String> {
        if let Some(h) = self.seen.get(&(start, n)) {
            return Ok(h.clone());
        }
        let mut h = Sha256::new();
        self.file
            .seek(SeekFrom::Start(start))
            .map_err(|e| io_err(self.path, e))?;
        let mut left = n;
        let mut buf = vec![0u8; 64 * 1024];
        while left > 0 {
            let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
            let got = match self.file.read(&mut buf[..want]) {
                Ok(0) => break,
                Ok(g) => g,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(io_err(self.path, e)),
            };
            h.update(&buf[..got]);
            left -= got as u64;
        }
        let out = hex::encode(h.finalize());
        self.seen.insert((start, n), out.clone());
        Ok(out)
    }

    /// Whether `s` is at `start` in the file.
    fn holds(&mut self, start: u64, s: &SectionDigest) -> Result<bool> {
        match start.checked_add(s.bytes) {
            Some(end) if end <= self.len => Ok(self.sha256(start, s.bytes)? == s.sha256),
            _ => Ok(false),
        }
    }

    /// Lay `sections` over the file: from the start by the recorded lengths, and from
    /// the end for whatever did not match in place.
    fn lay(&mut self, sections: &[SectionDigest]) -> Result<Vec<SectionCheck>> {
        let mut out = Vec::with_capacity(sections.len());
        let mut at = 0u64;
        for s in sections {
            let end = at.saturating_add(s.bytes);
            let state = if end > self.len {
                SectionState::Missing
            } else if self.holds(at, s)? {
                SectionState::Matches
            } else {
                SectionState::Differs
            };
            out.push(SectionCheck {
                name: s.name.clone(),
                start: at,
                end,
                state,
            });
            at = end;
        }
        let mut from_end = 0u64;
        for (i, s) in sections.iter().enumerate().rev() {
            from_end = from_end.saturating_add(s.bytes);
            if from_end > self.len {
                break;
            }
            if out[i].state != SectionState::Matches {
                if !self.holds(self.len - from_end, s)? {
                    break;
                }
                out[i].state = SectionState::Moved;
            }
        }
        Ok(out)
    }

    /// 1-based line of byte `offset`.
    fn line_of(&mut self, offset: u64) -> Result<u64> {
        self.file
            .seek(SeekFrom::Start(0))
            .map_err(|e| io_err(self.path, e))?;
        let mut left = offset.min(self.len);
        let mut lines = 1u64;
        let mut buf = vec![0u8; 64 * 1024];
        while left > 0 {
            let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
            let got = match self.file.read(&mut buf[..want]) {
                Ok(0) => break,
                Ok(g) => g,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(io_err(self.path, e)),
            };
            lines += buf[..got].iter().filter(|b| **b == b'\n').count() as u64;
            left -= got as u64;
        }
        Ok(lines)
    }
}

/// How alike a recorded report is: sections in common, same run, same format, closeness
/// of length, newness.
type Rank = (usize, bool, bool, std::cmp::Reverse<u64>, i64);

/// The recorded report this file most resembles: most sections in common, then the same
/// run, the same format, the closest length, the newest.
fn resemblance(
    file: &mut File,
    path: &Path,
    facts: &FileFacts,
    reports: &[Recorded],
) -> Result<Option<Resemblance>> {
    let fmt = facts.format.map(|f| f.as_str());
    let mut pool: Vec<&Recorded> = reports
        .iter()
        .filter(|r| fmt.is_none() || r.format.as_deref() == fmt)
        .take(MAX_CANDIDATES)
        .collect();
    if pool.is_empty() {
        pool = reports.iter().take(MAX_CANDIDATES).collect();
    }
    let mut ranges = Ranges {
        file,
        path,
        len: facts.bytes,
        seen: HashMap::new(),
    };
    let mut best: Option<(Resemblance, Rank)> = None;
    for r in pool {
        let sections = ranges.lay(&r.sections)?;
        let matching = sections
            .iter()
            .filter(|s| matches!(s.state, SectionState::Matches | SectionState::Moved))
            .count();
        let rank = (
            matching,
            facts.run.is_some() && r.run == facts.run,
            fmt.is_some() && r.format.as_deref() == fmt,
            std::cmp::Reverse(r.bytes.unwrap_or(0).abs_diff(facts.bytes)),
            r.seq,
        );
        if best.as_ref().is_none_or(|(_, b)| rank > *b) {
            best = Some((
                Resemblance {
                    recorded: r.clone(),
                    matching,
                    sections,
                    first_difference: None,
                },
                rank,
            ));
        }
    }
    // Nothing in common, and neither the run nor the format: it resembles none of them.
    let Some((mut res, _)) = best.filter(|(_, r)| r.0 > 0 || r.1 || r.2) else {
        return Ok(None);
    };
    res.first_difference = first_difference(&mut ranges, &res.sections)?;
    Ok(Some(res))
}

/// The first section not found in the file, with the bytes it takes there: from where
/// the recorded layout puts it to where the sections after it (found from the end) begin.
fn first_difference(
    ranges: &mut Ranges<'_>,
    checks: &[SectionCheck],
) -> Result<Option<Difference>> {
    let Some(i) = checks
        .iter()
        .position(|s| matches!(s.state, SectionState::Differs | SectionState::Missing))
    else {
        return Ok(None);
    };
    let c = &checks[i];
    let start = c.start.min(ranges.len);
    let after: Option<u64> = checks[i + 1..]
        .iter()
        .all(|s| s.state == SectionState::Moved)
        .then(|| checks[i + 1..].iter().map(|s| s.end - s.start).sum::<u64>());
    let end = match after {
        Some(tail) if i + 1 < checks.len() => ranges.len.saturating_sub(tail).max(start),
        _ if i + 1 == checks.len() => ranges.len.max(start),
        _ => c.end.min(ranges.len).max(start),
    };
    Ok(Some(Difference {
        section: c.name.clone(),
        start,
        end,
        first_line: ranges.line_of(start)?,
        last_line: ranges.line_of(end.saturating_sub(1).max(start))?,
    }))
}

impl Verification {
    /// What to tell the user, one line each.
    pub fn lines(&self) -> Vec<String> {
        let f = &self.file;
        let mut out = Vec::new();
        match &self.recorded {
            Some(r) => out.push(format!(
                "{}: SHA-256 {} matches {}",
                f.path,
                f.sha256,
                r.describe()
            )),
            None => out.extend(self.mismatch_lines()),
        }
        let c = &self.audit_chain;
        if c.ok {
            out.push(format!(
                "audit chain intact: {} events",
                c.events.unwrap_or(0)
            ));
        } else {
            out.push(format!(
                "audit chain BROKEN: first bad event #{}: {}",
                c.first_bad_event.unwrap_or(0),
                c.reason.as_deref().unwrap_or("?")
            ));
            if let (Some(r), Some(bad)) = (&self.recorded, c.first_bad_event)
                && r.seq >= bad
            {
                out.push(format!(
                    "the event recording this report (#{}) comes at or after the break, so the record itself cannot be trusted",
                    r.seq
                ));
            }
        }
        out.push(if self.ok {
            "verified".into()
        } else {
            "NOT verified".into()
        });
        out
    }

    fn mismatch_lines(&self) -> Vec<String> {
        let f = &self.file;
        let mut out = vec![format!(
            "{}: no recorded report has this digest (SHA-256 {}, {} bytes{}); {} reports recorded in this home",
            f.path,
            f.sha256,
            f.bytes,
            if f.bytes == 0 {
                ", the file is empty"
            } else {
                ""
            },
            self.recorded_reports
        )];
        let Some(res) = &self.resembles else {
            out.push(if self.recorded_reports == 0 {
                "no report.written event exists: no report was ever written in this home".into()
            } else {
                "it resembles none of them: no recorded section is in this file, and neither its format nor its run is a recorded report's".into()
            });
            return out;
        };
        out.push(format!(
            "it most resembles {}; {} of {} sections match",
            res.recorded.describe(),
            res.matching,
            res.sections.len()
        ));
        let states: Vec<String> = res
            .sections
            .iter()
            .map(|s| {
                let st = match s.state {
                    SectionState::Matches => "matches",
                    SectionState::Moved => "matches (moved)",
                    SectionState::Differs => "DIFFERS",
                    SectionState::Missing => "MISSING (the file ends before it)",
                };
                format!("{} {st}", s.name)
            })
            .collect();
        out.push(format!("sections: {}", states.join(", ")));
        if let Some(d) = &res.first_difference {
            let cut = res
                .sections
                .iter()
                .find(|s| s.name == d.section)
                .filter(|s| s.state == SectionState::Missing);
            out.push(match cut {
                Some(s) => format!(
                    "first difference: the file ends inside the {} section, at byte {} (line {}); the recorded section runs to byte {}",
                    d.section, f.bytes, d.last_line, s.end
                ),
                None => format!(
                    "first difference: the {} section, bytes {}..{} of this file (lines {}-{})",
                    d.section, d.start, d.end, d.first_line, d.last_line
                ),
            });
        }
        if let Some(b) = res.recorded.bytes
            && b != f.bytes
        {
            out.push(format!(
                "the file is {} bytes; the recorded report was {b}",
                f.bytes
            ));
        }
        out
    }
}

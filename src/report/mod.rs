//! The audit-evidence report of a reconciliation run (SOC 2 CC6.1–CC6.3), in HTML, CSV or
//! JSON, and its verification.
//!
//! A report is the concatenation of five named sections: `header` (the run, each system's
//! observation time, the policy version, the audit chain's head), `systems` (integration
//! pattern and expected delay), `access` (intended against actual, per person per
//! system), `findings` (with dispositions) and `operations` (what remediated each finding,
//! with the vendors' answers). Writing one is audited (`report.written`) with the SHA-256
//! and byte length of the whole file and of each section, so `verify` can say whether a
//! file is a report accessdesk wrote and, if not, which section changed.
//!
//! `data.rs` reads the evidence; `tables.rs` turns it into format-neutral tables;
//! `html.rs`, `csv.rs` and `json.rs` render them; `verify.rs` checks a file.

pub mod csv;
pub mod data;
pub mod html;
pub mod json;
pub mod tables;
pub mod verify;

use crate::store::{NewAuditEvent, Store};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::Path;

pub use data::{Evidence, gather};

/// The audit action of a written report.
pub const ACTION: &str = "report.written";

/// The sections of every report, in order.
pub const SECTIONS: [&str; 5] = ["header", "systems", "access", "findings", "operations"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Html,
    Csv,
    Json,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Html => "html",
            Format::Csv => "csv",
            Format::Json => "json",
        }
    }

    pub fn parse(s: &str) -> Option<Format> {
        [Format::Html, Format::Csv, Format::Json]
            .into_iter()
            .find(|f| f.as_str() == s)
    }
}

/// One named part of a rendered report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub name: &'static str,
    pub text: String,
}

impl Section {
    pub fn new(name: &'static str, text: String) -> Section {
        Section { name, text }
    }
}

/// A section's length and digest, as `report.written` records them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SectionDigest {
    pub name: String,
    pub bytes: u64,
    pub sha256: String,
}

/// A rendered report: its sections, whose concatenation is the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub format: Format,
    pub run: i64,
    pub audit_head: Option<(i64, String)>,
    pub sections: Vec<Section>,
}

impl Rendered {
    pub fn bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len() as usize);
        for s in &self.sections {
            out.extend_from_slice(s.text.as_bytes());
        }
        out
    }

    pub fn len(&self) -> u64 {
        self.sections.iter().map(|s| s.text.len() as u64).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn sha256(&self) -> String {
        let mut h = Sha256::new();
        for s in &self.sections {
            h.update(s.text.as_bytes());
        }
        hex::encode(h.finalize())
    }

    pub fn digests(&self) -> Vec<SectionDigest> {
        self.sections
            .iter()
            .map(|s| SectionDigest {
                name: s.name.to_string(),
                bytes: s.text.len() as u64,
                sha256: hex::encode(Sha256::digest(s.text.as_bytes())),
            })
            .collect()
    }
}

/// Render the evidence in `format`.
pub fn render(ev: &Evidence, format: Format) -> Rendered {
    Rendered {
        format,
        run: ev.run.id,
        audit_head: ev.audit_head.recorded.clone(),
        sections: match format {
            Format::Html => html::render(ev),
            Format::Csv => csv::render(ev),
            Format::Json => json::render(ev),
        },
    }
}

/// What writing a report recorded.
#[derive(Debug, Clone, Serialize)]
pub struct Written {
    pub run: i64,
    pub format: Format,
    pub output: String,
    pub bytes: u64,
    pub sha256: String,
    pub sections: Vec<SectionDigest>,
    /// The `report.written` event.
    pub audit_seq: i64,
}

/// Record `r` as written to `output` (audited `report.written`).
fn record(store: &mut Store, r: &Rendered, output: &str, actor: &str) -> Result<Written> {
    let w = Written {
        run: r.run,
        format: r.format,
        output: output.to_string(),
        bytes: r.len(),
        sha256: r.sha256(),
        sections: r.digests(),
        audit_seq: 0,
    };
    let details = serde_json::json!({
        "sha256": w.sha256,
        "run": w.run,
        "format": w.format.as_str(),
        "bytes": w.bytes,
        "sections": w.sections,
        "output": w.output,
        "audit_head_in_report": r.audit_head.as_ref().map(|(s, h)| format!("{s}:{h}")),
    });
    let seq = store.write(|tx| {
        tx.audit(NewAuditEvent {
            actor,
            action: ACTION,
            subject: &format!("run:{}", r.run),
            details,
        })
    })?;
    Ok(Written {
        audit_seq: seq,
        ..w
    })
}

/// Write `r` to `output` (a file, replaced atomically) or to stdout, and audit it. A file
/// is in place before its event is recorded and removed again if recording fails, so the
/// log never names a file that was not written.
pub fn write(
    store: &mut Store,
    r: &Rendered,
    output: Option<&Path>,
    actor: &str,
) -> Result<Written> {
    let Some(path) = output else {
        let w = record(store, r, "stdout", actor)?;
        let mut out = std::io::stdout().lock();
        out.write_all(&r.bytes())
            .and_then(|_| out.flush())
            .map_err(|e| Error::io("writing the report to stdout", e))?;
        return Ok(w);
    };
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let what = |e: std::io::Error| Error::io(format!("writing {}", path.display()), e);
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(what)?;
    tmp.write_all(&r.bytes()).map_err(what)?;
    tmp.as_file().sync_all().map_err(what)?;
    tmp.persist(path).map_err(|e| what(e.error))?;
    match record(store, r, &path.display().to_string(), actor) {
        Ok(w) => Ok(w),
        Err(e) => {
            let _ = std::fs::remove_file(path);
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests;

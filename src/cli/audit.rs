//! `accessdesk audit verify|export`.

use super::{AuditCmd, Ctx, ExportFormat};
use crate::store::AuditEvent;
use crate::{Error, Result};
use chrono::{DateTime, NaiveDate, Utc};
use std::io::Write;

pub fn run(ctx: &Ctx, cmd: AuditCmd) -> Result<i32> {
    let store = ctx.store()?;
    match cmd {
        AuditCmd::Verify => match store.audit_verify()? {
            Ok(n) => {
                if ctx.json {
                    ctx.print_json(&serde_json::json!({"ok": true, "events": n}))?;
                } else {
                    println!("audit chain intact: {n} events");
                }
                Ok(0)
            }
            Err(p) => {
                if ctx.json {
                    ctx.print_json(&serde_json::json!({"ok": false, "first_bad_event": p.seq, "reason": p.reason}))?;
                } else {
                    println!("audit chain BROKEN: {p}");
                }
                Ok(1)
            }
        },
        AuditCmd::Export {
            since,
            until,
            format,
            output,
        } => {
            let since = since
                .as_deref()
                .map(|s| parse_time("--since", s))
                .transpose()?;
            let until = until
                .as_deref()
                .map(|s| parse_time("--until", s))
                .transpose()?;
            let events = store.audit_events(since, until)?;
            let mut out: Box<dyn Write> = match &output {
                Some(p) => Box::new(
                    std::fs::File::create(p)
                        .map_err(|e| Error::io(format!("creating {}", p.display()), e))?,
                ),
                None => Box::new(std::io::stdout().lock()),
            };
            let io = |e: std::io::Error| Error::io("writing the export", e);
            match format {
                ExportFormat::Json => {
                    serde_json::to_writer_pretty(&mut out, &events)
                        .map_err(|e| Error::Failed(format!("encoding JSON: {e}")))?;
                    writeln!(out).map_err(io)?;
                }
                ExportFormat::Csv => write_csv(&mut out, &events)?,
            }
            out.flush().map_err(io)?;
            if let Some(p) = output {
                eprintln!("exported {} events to {}", events.len(), p.display());
            }
            Ok(0)
        }
    }
}

fn write_csv(out: &mut dyn Write, events: &[AuditEvent]) -> Result<()> {
    let mut w = csv::Writer::from_writer(out);
    let err = |e: csv::Error| Error::Failed(format!("writing CSV: {e}"));
    w.write_record([
        "seq",
        "ts",
        "actor",
        "action",
        "subject",
        "details",
        "prev_hash",
        "hash",
    ])
    .map_err(err)?;
    for e in events {
        w.write_record([
            &e.seq.to_string(),
            &e.ts,
            &e.actor,
            &e.action,
            &e.subject,
            &e.details.to_string(),
            &e.prev_hash,
            &e.hash,
        ])
        .map_err(err)?;
    }
    w.flush().map_err(|e| Error::io("writing CSV", e))?;
    Ok(())
}

/// RFC 3339, or a plain date (midnight UTC).
pub fn parse_time(flag: &str, s: &str) -> Result<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d")
        && let Some(t) = d.and_hms_opt(0, 0, 0)
    {
        return Ok(t.and_utc());
    }
    Err(Error::usage(
        format!("{flag} {s:?} is not a time"),
        "use RFC 3339 (2026-01-31T09:00:00Z) or a date (2026-01-31)",
    ))
}

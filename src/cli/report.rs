//! `accessdesk report reconcile|verify`: the audit-evidence report of a reconciliation run,
//! and the check that a file is one accessdesk wrote, unchanged.

use super::Ctx;
use crate::Result;
use crate::report::{self, Format};
use clap::Subcommand;
use std::path::PathBuf;

#[derive(Debug, Subcommand)]
pub enum ReportCmd {
    /// Audit evidence of a reconciliation run (SOC 2 CC6.1-CC6.3): the run, each system's
    /// integration pattern, intended against actual access, findings with dispositions,
    /// and the operations that remediated them with the vendors' answers. Audited as
    /// report.written with the file's and each section's SHA-256.
    Reconcile {
        /// The observation run (default: the newest).
        #[arg(long)]
        run: Option<i64>,
        #[arg(long, value_enum)]
        format: Format,
        /// Write to this file instead of stdout.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Check a report file against the audit log: exit 0 when its SHA-256 is a recorded
    /// report's and the audit chain verifies; 1 naming what differs.
    Verify { file: PathBuf },
}

pub fn run(ctx: &Ctx, cmd: ReportCmd) -> Result<i32> {
    match cmd {
        ReportCmd::Reconcile {
            run,
            format,
            output,
        } => write(ctx, run, format, output),
        ReportCmd::Verify { file } => verify(ctx, &file),
    }
}

fn write(ctx: &Ctx, run: Option<i64>, format: Format, output: Option<PathBuf>) -> Result<i32> {
    let actor = super::actor();
    let mut store = ctx.store()?;
    let evidence = report::gather(&store, &ctx.home, run, &actor)?;
    let rendered = report::render(&evidence, format);
    let w = report::write(&mut store, &rendered, output.as_deref(), &actor)?;
    if output.is_some() && ctx.json {
        ctx.print_json(&w)?;
    } else {
        eprintln!(
            "wrote the {} report of run {} to {} ({} bytes, SHA-256 {}); recorded as audit event #{}",
            w.format.as_str(),
            w.run,
            w.output,
            w.bytes,
            w.sha256,
            w.audit_seq
        );
    }
    Ok(0)
}

fn verify(ctx: &Ctx, file: &std::path::Path) -> Result<i32> {
    let store = ctx.store()?;
    let v = report::verify::verify(&store, file)?;
    if ctx.json {
        ctx.print_json(&v)?;
    } else {
        for line in v.lines() {
            println!("{line}");
        }
    }
    Ok(if v.ok { 0 } else { 1 })
}

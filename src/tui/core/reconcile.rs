//! The Reconcile view's jobs: an observation session (observe through the engine's
//! adapters, so reads share the workers' rate limiters, then correlate and classify),
//! remediation of findings (engine::findings, which audits each disposition), and the
//! CSV export of a run's findings.

use super::{Backend, blocking};
use crate::engine::findings::{self, Outcome};
use crate::engine::observe::{Observer, Progress, observe_all, run_for};
use crate::engine::reconcile::reconcile_run;
use crate::store::Store;
use crate::store::reconcile::{FindingFilter, FindingRow};
use crate::tui::reducer::Msg;
use crate::tui::state::FindingVerb;
use crate::{Error, Result};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc::UnboundedSender;

/// Progress is reported at most this often per system (and always when a read ends).
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// Observe `system` (or every system) into a run (resuming an interrupted one over the
/// same systems), then reconcile it. Progress goes to `out`.
pub async fn observe(
    b: &Backend,
    system: Option<String>,
    out: Option<UnboundedSender<Msg>>,
) -> Result<String> {
    let Some(engine) = b.engine.clone() else {
        return Err(Error::Failed(
            "this console is not running the engine (read-only view): run `accessdesk reconcile`"
                .into(),
        ));
    };
    let systems: Vec<String> = match &system {
        Some(s) if !b.catalog.systems.contains_key(s) => {
            return Err(Error::Failed(format!("no system named {s:?}")));
        }
        Some(s) => vec![s.clone()],
        None => b.catalog.systems.keys().cloned().collect(),
    };
    if systems.is_empty() {
        return Err(Error::Failed("no system is configured".into()));
    }
    let (db, actor, catalog) = (b.db_path.clone(), b.actor.clone(), b.catalog.clone());
    let (want, scope) = (systems.clone(), system.clone());
    let (store, run, resumed) = blocking(move || {
        let mut store = Store::open(&db)?;
        store.write(|tx| tx.sync_catalog(&catalog, &actor))?;
        let (run, resumed) = run_for(&mut store, &want, scope.as_deref(), false, &actor)?;
        Ok((store, run, resumed))
    })
    .await?;
    if let Some(o) = &out {
        let how = if resumed {
            "resumed from its checkpoints"
        } else {
            "started"
        };
        let _ = o.send(Msg::Event(format!(
            "observation run {run} {how}: {}",
            systems.join(", ")
        )));
    }
    let adapters: HashMap<_, _> = systems
        .iter()
        .filter_map(|s| engine.adapter(s).map(|a| (s.clone(), a.clone())))
        .collect();
    let unavailable: HashMap<String, String> = systems
        .iter()
        .filter(|s| !adapters.contains_key(*s))
        .map(|s| {
            (
                s.clone(),
                format!("{s}: the console has no adapter for it (see the notices)"),
            )
        })
        .collect();
    let last = Mutex::new(HashMap::<String, Instant>::new());
    let progress = move |p: &Progress| {
        let Some(o) = &out else { return };
        let mut last = last.lock().unwrap_or_else(|e| e.into_inner());
        let due = last
            .get(&p.system)
            .is_none_or(|t| t.elapsed() >= PROGRESS_EVERY);
        if !due && p.phase != "done" {
            return;
        }
        last.insert(p.system.clone(), Instant::now());
        let _ = o.send(Msg::Progress(p.clone()));
    };
    let store = Arc::new(Mutex::new(store));
    // Awaited in this task (not on a blocking thread), so that quitting the console
    // cancels the read between pages instead of waiting for it; the run resumes from its
    // checkpoints next time. The store's writes between pages are short.
    let observer = Observer {
        store: &store,
        adapters: &adapters,
        catalog: &b.catalog,
        unavailable: &unavailable,
        actor: &b.actor,
    };
    let reads = observe_all(&observer, run, &systems, &progress).await?;
    let (db, actor, catalog) = (b.db_path.clone(), b.actor.clone(), b.catalog.clone());
    let r = blocking(move || {
        let mut store = Store::open(&db)?;
        reconcile_run(&mut store, &catalog, run, &actor)
    })
    .await?;
    let incomplete: Vec<String> = reads
        .iter()
        .filter(|r| !r.complete)
        .map(|r| {
            format!(
                "{} incomplete: {}",
                r.system,
                r.error.as_deref().unwrap_or("stopped")
            )
        })
        .collect();
    let mut text = format!(
        "observation run {} reconciled: {} finding(s); {} of {} system(s) read in full",
        r.run,
        r.findings,
        r.systems.iter().filter(|s| s.complete).count(),
        r.systems.len()
    );
    if !incomplete.is_empty() {
        text.push_str(&format!(
            " ({}; nothing is concluded from what was not read)",
            incomplete.join("; ")
        ));
    }
    Ok(text)
}

/// Enforce, accept or ignore findings by id; refusals go to `out` one by one.
pub async fn remediate(
    b: &Backend,
    ids: Vec<i64>,
    verb: FindingVerb,
    reason: Option<String>,
    until: Option<String>,
    out: Option<UnboundedSender<Msg>>,
) -> Result<String> {
    let (db, actor, catalog) = (b.db_path.clone(), b.actor.clone(), b.catalog.clone());
    let outcomes = blocking(move || {
        let mut store = Store::open(&db)?;
        let mut rows: Vec<FindingRow> = Vec::with_capacity(ids.len());
        for id in &ids {
            rows.extend(store.findings(&FindingFilter {
                id: Some(*id),
                ..Default::default()
            })?);
        }
        if rows.is_empty() {
            return Err(Error::Failed(
                "none of these findings is stored any more".into(),
            ));
        }
        match verb {
            FindingVerb::Enforce => findings::enforce(&mut store, &catalog, &rows, &actor),
            FindingVerb::Accept => findings::accept(
                &mut store,
                &rows,
                reason.as_deref().unwrap_or(""),
                until.as_deref().unwrap_or(""),
                &actor,
            ),
            FindingVerb::Ignore => findings::ignore(&mut store, &rows, None, &actor),
        }
    })
    .await?;
    if let Some(o) = &out {
        for x in outcomes.iter().filter(|x| x.note.is_some()).take(20) {
            let _ = o.send(Msg::Event(format!(
                "finding #{} {} left {}: {}",
                x.finding,
                x.class,
                x.status,
                x.note.as_deref().unwrap_or_default()
            )));
        }
    }
    Ok(summary(verb, &outcomes))
}

/// "enforce: 3 enforced, queued #12 #13 #14; 1 left open (#7 unmanaged)".
pub fn summary(verb: FindingVerb, outcomes: &[Outcome]) -> String {
    let done_word = match verb {
        FindingVerb::Enforce => "enforced",
        FindingVerb::Accept => "accepted",
        FindingVerb::Ignore => "ignored",
    };
    let done = outcomes.iter().filter(|o| o.note.is_none()).count();
    let ops: Vec<i64> = outcomes
        .iter()
        .flat_map(|o| o.ops.iter().copied())
        .collect();
    let mut text = format!(
        "{}: {done} of {} finding(s) {done_word}",
        verb.word().to_lowercase(),
        outcomes.len()
    );
    if !ops.is_empty() {
        let shown: Vec<String> = ops.iter().take(10).map(|i| format!("#{i}")).collect();
        text.push_str(&format!(
            ", queued {}{}",
            shown.join(" "),
            if ops.len() > 10 {
                format!(" … ({} operations)", ops.len())
            } else {
                String::new()
            }
        ));
    }
    let left: Vec<String> = outcomes
        .iter()
        .filter(|o| o.note.is_some())
        .take(5)
        .map(|o| format!("#{} {}", o.finding, o.class))
        .collect();
    if !left.is_empty() {
        let n = outcomes.iter().filter(|o| o.note.is_some()).count();
        text.push_str(&format!(
            "; {n} left as they were ({}{}; see the events)",
            left.join(", "),
            if n > left.len() { ", …" } else { "" }
        ));
    }
    text
}

/// The CSV's columns.
pub const CSV_COLUMNS: [&str; 12] = [
    "class",
    "severity",
    "system",
    "person",
    "account",
    "entitlement",
    "status",
    "decided_by",
    "decided_at",
    "reason",
    "until",
    "detail",
];

/// A run's findings as CSV (RFC 4180: quoted when needed, quotes doubled, CRLF), in the
/// view's order. `person` is the person's HR id.
pub fn findings_csv(rows: &[FindingRow]) -> Result<Vec<u8>> {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .quote_style(csv::QuoteStyle::Necessary)
        .from_writer(Vec::new());
    let csv_err = |e: csv::Error| Error::Failed(format!("writing CSV: {e}"));
    w.write_record(CSV_COLUMNS).map_err(csv_err)?;
    for f in rows {
        let o = |v: &Option<String>| v.clone().unwrap_or_default();
        w.write_record([
            f.class.clone(),
            f.severity.clone(),
            f.system.clone(),
            o(&f.person),
            o(&f.account),
            o(&f.entitlement),
            f.status.clone(),
            o(&f.decided_by),
            o(&f.decided_at),
            o(&f.reason),
            o(&f.until),
            f.detail.clone(),
        ])
        .map_err(csv_err)?;
    }
    w.into_inner()
        .map_err(|e| Error::Failed(format!("writing CSV: {e}")))
}

/// Where a run's CSV goes: `reconcile-run-N.csv` beside the database (the home).
pub fn export_path(db_path: &Path, run: i64) -> PathBuf {
    db_path
        .parent()
        .unwrap_or_else(|| Path::new("."))
        .join(format!("reconcile-run-{run}.csv"))
}

/// Write run `run`'s findings as CSV into the home; readable by its owner only (it names
/// people). Returns what to tell the admin.
pub fn export(db_path: &Path, run: i64) -> Result<String> {
    let store = Store::open(db_path)?;
    let mut rows = store.findings(&FindingFilter {
        run: Some(run),
        ..Default::default()
    })?;
    crate::tui::data::sort_findings(&mut rows);
    let bytes = findings_csv(&rows)?;
    let path = export_path(db_path, run);
    let tmp = path.with_extension("csv.tmp");
    write_private(&tmp, &bytes).map_err(|e| Error::io(format!("writing {}", tmp.display()), e))?;
    std::fs::rename(&tmp, &path)
        .map_err(|e| Error::io(format!("moving {} into place", path.display()), e))?;
    Ok(format!(
        "wrote {} finding(s) of run {run} to {}",
        rows.len(),
        path.display()
    ))
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    let mut f = o.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

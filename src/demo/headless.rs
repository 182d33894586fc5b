//! `accessdesk demo --headless --for 30s`: the demo without the console, for scripts and CI.
//! A progress line every 5 s (operations by status), the scenario's events as they happen,
//! then the summary (text, or JSON with `--json`). Exit 0 when the invariants hold.
//!
//! With `--json`, stdout carries only the summary; progress and notices go to stderr.

use super::{Demo, DemoSummary};
use crate::Result;
use std::io::Write;
use std::time::Duration;

/// How long the headless demo runs unless told otherwise: the whole scenario (the flaky
/// minute ends at T+68 s; the wave takes about two minutes).
pub const DEFAULT_RUN_FOR: Duration = Duration::from_secs(120);
const PROGRESS_EVERY: Duration = Duration::from_secs(5);
/// How long in-flight work may take to settle after the run ends.
const SETTLE: Duration = Duration::from_secs(20);

#[derive(Debug, Clone)]
pub struct HeadlessOptions {
    pub run_for: Duration,
    pub json: bool,
}

/// Run the demo for `run_for`, print the summary, shut down. Returns the exit code.
pub async fn run(demo: Demo, opts: HeadlessOptions) -> Result<i32> {
    let out = Output { json: opts.json };
    for n in &demo.notices {
        out.info(&format!("notice: {n}"));
    }
    out.info(&format!(
        "demo home {} ({}); {} operations in the onboarding wave, {} waiting for approval; running for {:.0} s",
        demo.home.display(),
        if demo.keep_home { "kept" } else { "removed on exit" },
        demo.wave.operations,
        demo.wave.pending_approval,
        opts.run_for.as_secs_f64()
    ));
    // Nobody reads the event stream here; dropping it stops the buffering.
    drop(demo.take_events());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let engine = demo.spawn_engine(stop_rx.clone());
    let scenario = demo.spawn_scenario(stop_rx);
    let mut seen = 0;
    let mut next_progress = PROGRESS_EVERY;
    loop {
        let elapsed = demo.elapsed();
        if elapsed >= opts.run_for {
            break;
        }
        let wake = next_progress.min(opts.run_for).saturating_sub(elapsed);
        tokio::time::sleep(wake.min(Duration::from_millis(250))).await;
        for e in demo.scenario_events_since(seen) {
            seen += 1;
            out.info(&format!("T+{:>5.1}s  {}", e.at_secs, e.what));
        }
        if demo.elapsed() >= next_progress && demo.elapsed() < opts.run_for {
            out.info(&progress_line(&demo)?);
            next_progress += PROGRESS_EVERY;
        }
    }
    let _ = stop_tx.send(true);
    let _ = scenario.await;
    let run = match tokio::time::timeout(SETTLE, engine).await {
        Ok(Ok(Ok(run))) => Some(run),
        Ok(Ok(Err(e))) => {
            out.info(&format!("the engine stopped with an error: {e}"));
            None
        }
        Ok(Err(e)) => {
            out.info(&format!("the engine task failed: {e}"));
            None
        }
        Err(_) => {
            out.info(&format!(
                "in-flight work did not settle within {} s; stopping anyway",
                SETTLE.as_secs()
            ));
            None
        }
    };
    for e in demo.scenario_events_since(seen) {
        out.info(&format!("T+{:>5.1}s  {}", e.at_secs, e.what));
    }
    // After the targets drifted: a reconciliation session (observe, classify, enforce,
    // carry out, observe again), with the engine stopped.
    let story = if demo.elapsed().as_secs_f64() >= super::scenario::DRIFT_AT_SECS {
        out.info("reconciling: reading every system, classifying the drift, enforcing it");
        match demo.reconcile_session().await {
            Ok(s) => Some(s),
            Err(e) => {
                out.info(&format!("the reconciliation session failed: {e}"));
                None
            }
        }
    } else {
        None
    };
    let mut summary: DemoSummary = demo.summary().await?;
    summary.engine = run;
    summary.reconcile = story;
    if opts.json {
        let text = serde_json::to_string_pretty(&summary)
            .map_err(|e| crate::Error::Failed(format!("encoding the summary: {e}")))?;
        println!("{text}");
    } else {
        println!();
        print!("{}", summary.render());
    }
    let _ = std::io::stdout().flush();
    demo.shutdown().await;
    Ok(if summary.invariants_hold { 0 } else { 1 })
}

/// `T+ 10s  ops: 412 succeeded, 1590 queued, ...`
fn progress_line(demo: &Demo) -> Result<String> {
    let counts = {
        let store = demo.store.lock().unwrap_or_else(|p| p.into_inner());
        super::summary::ops_by_status(&store)?
    };
    let parts: Vec<String> = counts.iter().map(|(s, n)| format!("{n} {s}")).collect();
    Ok(format!(
        "T+{:>5.1}s  operations: {}",
        demo.elapsed().as_secs_f64(),
        parts.join(", ")
    ))
}

/// Progress goes to stdout, or to stderr when stdout carries JSON.
struct Output {
    json: bool,
}

impl Output {
    fn info(&self, line: &str) {
        if self.json {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
    }
}

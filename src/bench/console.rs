//! `accessdesk bench console`: the console's first frame and memory with 100,000 people and
//! 1,000,000 grants, its draw times at 200×60 while the queue completes 1,000 operations a
//! second, and the CPU an idle console uses with 1,000,000 operations queued.
//!
//! The first frame and the memory are measured in a fresh child process (`bench
//! console-frame`), so nothing the bench built beforehand counts: the child opens the
//! store, reads the first snapshot, draws it, then opens the People view and a person's
//! matrix, and reports its peak RSS.

use super::{BenchReport, median};
use crate::config::SystemsConfig;
use crate::model::{OperationKind, OperationStatus};
use crate::store::Store;
use crate::store::queue::{Change, NewOp, PRIORITY_NORMAL};
use crate::tui::data::{Loader, Query};
use crate::tui::reducer::{self, Msg};
use crate::tui::state::{AppState, ViewId};
use crate::tui::theme::Theme;
use crate::{Error, Result};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Where the child finds the database.
pub const ENV_DB: &str = "ACCESSDESK_BENCH_DB";

fn catalog() -> Result<Arc<crate::config::Catalog>> {
    let mut text = String::new();
    for s in super::plan::SYSTEMS {
        text.push_str(&format!("[systems.{s}]\nkind = \"scim\"\n\n"));
    }
    Ok(Arc::new(
        SystemsConfig::parse(Path::new("bench-systems.toml"), &text)?.catalog,
    ))
}

/// Peak resident memory of this process, in MiB (Linux: VmHWM).
pub fn peak_rss_mib() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn draw(term: &mut Terminal<TestBackend>, s: &AppState) -> Result<Duration> {
    let t = Instant::now();
    term.draw(|f| {
        crate::tui::views::draw(f, s);
    })
    .map_err(|e| Error::Failed(format!("drawing: {e}")))?;
    Ok(t.elapsed())
}

/// The child: time from opening the store to the first frame drawn, then peak RSS after
/// the People view and a matrix were shown. Prints one JSON object.
pub fn frame_child() -> Result<()> {
    let db =
        std::env::var_os(ENV_DB).ok_or_else(|| Error::Failed(format!("{ENV_DB} is not set")))?;
    let t0 = Instant::now();
    let store = Store::open(Path::new(&db))?;
    let mut loader = Loader::new(store, catalog()?, None, None, None);
    let mut s = AppState::new(Theme::none(), false);
    s.size = (200, 60);
    let snap = loader.load(&Query::default(), chrono::Utc::now())?;
    reducer::update(&mut s, Msg::Data(Box::new(snap)), chrono::Utc::now());
    let mut term = Terminal::new(TestBackend::new(200, 60))
        .map_err(|e| Error::Failed(format!("terminal: {e}")))?;
    draw(&mut term, &s)?;
    let first_ms = t0.elapsed().as_secs_f64() * 1000.0;
    // Then the People view with a person's matrix, as an admin would open next.
    reducer::act(
        &mut s,
        crate::tui::keymap::Action::Go(ViewId::People),
        chrono::Utc::now(),
    );
    let q = reducer::query(&s);
    let snap = loader.load(&q, chrono::Utc::now())?;
    reducer::update(&mut s, Msg::Data(Box::new(snap)), chrono::Utc::now());
    let people_draw = draw(&mut term, &s)?;
    println!(
        "{}",
        serde_json::json!({
            "first_frame_ms": first_ms,
            "people_draw_ms": people_draw.as_secs_f64() * 1000.0,
            "peak_rss_mib": peak_rss_mib(),
        })
    );
    Ok(())
}

pub fn run(people: usize, runs: usize, seconds: u64) -> Result<BenchReport> {
    let dir = tempfile::tempdir().map_err(|e| Error::io("creating a temp dir", e))?;
    let db = dir.path().join("console.db");
    {
        let mut store = Store::open(&db)?;
        super::plan::build_world(&mut store, people, 0.02)?;
    }
    let mut report = BenchReport::new("console");
    // 1. First frame and memory, each in a fresh process.
    let exe = std::env::current_exe().map_err(|e| Error::io("finding our own binary", e))?;
    let mut firsts = Vec::new();
    let mut rss = Vec::new();
    for _ in 0..runs.max(1) {
        let out = std::process::Command::new(&exe)
            .args(["bench", "console-frame"])
            .env(ENV_DB, &db)
            .output()
            .map_err(|e| Error::io("running the first-frame child", e))?;
        if !out.status.success() {
            return Err(Error::Failed(format!(
                "the first-frame child failed: {}",
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        let v: serde_json::Value = serde_json::from_slice(&out.stdout)
            .map_err(|e| Error::Failed(format!("the first-frame child printed bad JSON: {e}")))?;
        firsts.push(v["first_frame_ms"].as_f64().unwrap_or(f64::NAN));
        if let Some(r) = v["peak_rss_mib"].as_f64() {
            rss.push(r);
        }
    }
    report.push(
        &format!(
            "first frame with {people} people (median of {})",
            firsts.len()
        ),
        median(&mut firsts),
        "ms",
        Some(300.0),
        "lower",
    );
    if !rss.is_empty() {
        report.push(
            "peak RSS after overview, people and a matrix",
            median(&mut rss),
            "MiB",
            Some(200.0),
            "lower",
        );
    }

    // 2. Draw times while the queue completes 1,000 operations a second.
    let per_sec = 1000u64;
    let total = (seconds * per_sec + 2000) as usize;
    {
        let mut store = Store::open(&db)?;
        let ids: Vec<String> = (0..total)
            .map(|i| format!("E{:06}", i % people.max(1)))
            .collect();
        store.write(|tx| {
            for (i, pid) in ids.iter().enumerate() {
                let ent = format!("{}:group:wave{i}", super::plan::SYSTEMS[i % 10]);
                tx.enqueue(
                    &NewOp {
                        kind: OperationKind::AddMembership,
                        system: super::plan::SYSTEMS[i % 10],
                        person_id: pid,
                        entitlement: Some(&ent),
                        status: OperationStatus::Queued,
                        priority: PRIORITY_NORMAL,
                        plan_id: None,
                        cause: "bench",
                        depends_on: &[],
                        not_before: None,
                        counted_as: None,
                    },
                    "bench",
                )?;
            }
            Ok(())
        })?;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let writer = {
        let db = db.clone();
        let stop = stop.clone();
        let done = done.clone();
        std::thread::spawn(move || -> Result<()> {
            let mut store = Store::open(&db)?;
            let mut next: i64 =
                store
                    .conn()
                    .query_row("SELECT min(id) FROM operations", [], |r| r.get(0))?;
            let started = Instant::now();
            let step = Duration::from_millis(50);
            let batch = (per_sec / 20) as i64;
            let mut tick = 0u32;
            while !stop.load(Ordering::SeqCst) {
                let from = next;
                store.write(|tx| {
                    for id in from..from + batch {
                        tx.transition(
                            id,
                            &[OperationStatus::Queued],
                            OperationStatus::Running,
                            Change {
                                count_attempt: true,
                                ..Default::default()
                            },
                            "bench",
                        )?;
                        tx.transition(
                            id,
                            &[OperationStatus::Running],
                            OperationStatus::Succeeded,
                            Change::default(),
                            "bench",
                        )?;
                    }
                    Ok(())
                })?;
                next += batch;
                done.fetch_add(batch as u64, Ordering::SeqCst);
                tick += 1;
                let due = step * tick;
                if let Some(wait) = due.checked_sub(started.elapsed()) {
                    std::thread::sleep(wait);
                }
            }
            Ok(())
        })
    };
    // The console side: the loader on its own thread (as in the app), draws at ~60 fps.
    let QueueConsole {
        queries,
        mut rx,
        mut s,
        mut term,
    } = queue_console(&db)?;
    let mut draws = Vec::new();
    let mut updates = Vec::new();
    let mut loads = Vec::new();
    let started = Instant::now();
    let mut last_query = Instant::now() - Duration::from_secs(1);
    let frame = Duration::from_millis(16);
    while started.elapsed() < Duration::from_secs(seconds) {
        let t = Instant::now();
        if last_query.elapsed() >= crate::tui::app::TICK {
            let _ = queries.send(reducer::query(&s));
            last_query = Instant::now();
        }
        while let Ok(m) = rx.try_recv() {
            if let Msg::Data(d) = &m {
                loads.push(d.load_time.as_secs_f64() * 1000.0);
            }
            let u = Instant::now();
            reducer::update(&mut s, m, chrono::Utc::now());
            updates.push(u.elapsed().as_secs_f64() * 1000.0);
        }
        // Move the cursor now and then, as an admin would.
        if draws.len() % 30 == 0 {
            reducer::act(&mut s, crate::tui::keymap::Action::Down, chrono::Utc::now());
        }
        draws.push(draw(&mut term, &s)?.as_secs_f64() * 1000.0);
        if let Some(w) = frame.checked_sub(t.elapsed()) {
            std::thread::sleep(w);
        }
    }
    stop.store(true, Ordering::SeqCst);
    writer
        .join()
        .map_err(|_| Error::Failed("the queue writer panicked".into()))??;
    let rate = done.load(Ordering::SeqCst) as f64 / started.elapsed().as_secs_f64();
    let pct = |v: &mut Vec<f64>, p: f64| {
        v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
        if v.is_empty() {
            f64::NAN
        } else {
            v[((v.len() as f64 - 1.0) * p).round() as usize]
        }
    };
    report.push(
        "queue completions during the draw test",
        rate,
        "ops/s",
        Some(1000.0 * 0.95),
        "higher",
    );
    report.push(
        &format!("draw 200x60 Queue view p50 ({} frames)", draws.len()),
        pct(&mut draws, 0.5),
        "ms",
        None,
        "lower",
    );
    report.push(
        "draw 200x60 Queue view p99",
        pct(&mut draws, 0.99),
        "ms",
        Some(16.0),
        "lower",
    );
    report.push("draw max", pct(&mut draws, 1.0), "ms", None, "lower");
    report.push(
        "applying a snapshot (reducer) p99",
        pct(&mut updates, 0.99),
        "ms",
        None,
        "lower",
    );
    report.push(
        "loader read (off the UI thread) p50",
        pct(&mut loads, 0.5),
        "ms",
        None,
        "lower",
    );
    drop(queries);
    idle(&db, &mut report, seconds.min(20))?;
    Ok(report)
}

/// The console as the app runs it, on the Queue view at 200×60: the loader on its own
/// thread (queries in, snapshots out), the state, a test terminal.
struct QueueConsole {
    queries: std::sync::mpsc::Sender<Query>,
    rx: tokio::sync::mpsc::UnboundedReceiver<Msg>,
    s: AppState,
    term: Terminal<TestBackend>,
}

fn queue_console(db: &Path) -> Result<QueueConsole> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Msg>();
    let loader = Loader::new(Store::open(db)?, catalog()?, None, None, None);
    let queries = crate::tui::core::spawn_loader(loader, tx);
    let mut s = AppState::new(Theme::none(), false);
    s.size = (200, 60);
    reducer::act(
        &mut s,
        crate::tui::keymap::Action::Go(ViewId::Queue),
        chrono::Utc::now(),
    );
    let term = Terminal::new(TestBackend::new(200, 60))
        .map_err(|e| Error::Failed(format!("terminal: {e}")))?;
    Ok(QueueConsole {
        queries,
        rx,
        s,
        term,
    })
}

/// This process's CPU time so far (user + system), from /proc/self/stat.
fn cpu_time() -> Option<Duration> {
    let s = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let (utime, stime): (u64, u64) = (f.get(11)?.parse().ok()?, f.get(12)?.parse().ok()?);
    // Linux reports these in USER_HZ ticks, 100 a second.
    Some(Duration::from_millis((utime + stime) * 10))
}

/// An idle console over 1,000,000 queued operations: the app's loop (a query every
/// tick, the loader on its own thread, the reducer, a draw per snapshot) on the Queue
/// view, nothing changing in the database. Reported as the share of one core used.
fn idle(db: &Path, report: &mut BenchReport, seconds: u64) -> Result<()> {
    const QUEUED: i64 = 1_000_000;
    {
        let mut store = Store::open(db)?;
        let now = crate::store::queue::ts(chrono::Utc::now());
        store.write(|tx| {
            tx.conn().execute(
                "INSERT INTO operations (idempotency_key, kind, system, person_id, entitlement, status,
                   attempts, next_attempt_at, priority, cause, created_at, updated_at)
                 WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1)
                 SELECT 'idle|' || i, 'add_membership', 'okta', printf('E%06d', i % 100000),
                        'okta:group:idle' || (i / 100000), 'queued', 0, ?2, 100, 'bench', ?2, ?2
                 FROM n",
                rusqlite::params![QUEUED, now],
            )?;
            tx.recount_ops()

        })?;
    }
    let QueueConsole {
        queries,
        mut rx,
        mut s,
        mut term,
    } = queue_console(db)?;
    // The first (full) read of the million rows is not idle time: wait for it.
    let first = Instant::now();
    let _ = queries.send(reducer::query(&s));
    let m = rx
        .blocking_recv()
        .ok_or_else(|| Error::Failed("the loader stopped".into()))?;
    reducer::update(&mut s, m, chrono::Utc::now());
    draw(&mut term, &s)?;
    let first_load = first.elapsed();
    let (cpu0, t0) = (cpu_time(), Instant::now());
    let mut loads = Vec::new();
    while t0.elapsed() < Duration::from_secs(seconds) {
        std::thread::sleep(crate::tui::app::TICK);
        let _ = queries.send(reducer::query(&s));
        let m = rx
            .blocking_recv()
            .ok_or_else(|| Error::Failed("the loader stopped".into()))?;
        if let Msg::Data(d) = &m {
            loads.push(d.load_time.as_secs_f64() * 1000.0);
        }
        reducer::update(&mut s, m, chrono::Utc::now());
        draw(&mut term, &s)?;
    }
    let wall = t0.elapsed();
    let used = match (cpu0, cpu_time()) {
        (Some(a), Some(b)) => b.saturating_sub(a),
        _ => return Err(Error::Failed("cannot read this process's CPU time".into())),
    };
    report.push(
        &format!(
            "idle console, {QUEUED} queued: CPU over {} s (Queue view)",
            wall.as_secs()
        ),
        100.0 * used.as_secs_f64() / wall.as_secs_f64(),
        "% of a core",
        Some(5.0),
        "lower",
    );
    report.push(
        "  idle refresh (loader read) p50",
        median(&mut loads),
        "ms",
        None,
        "lower",
    );
    report.push(
        "  the first, full read of that queue",
        first_load.as_secs_f64() * 1000.0,
        "ms",
        None,
        "lower",
    );
    Ok(())
}

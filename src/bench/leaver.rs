//! `accessdesk bench leaver`: from an HR change (a person terminated) to all of that
//! person's accounts deactivated, while 10,000 joiner operations are already queued in the
//! same five simulated systems. Leavers jump the queue; this measures how far.

use super::wave::{RATES, World, engine, world};
use super::{BenchReport, median};
use crate::engine::apply::{apply_plan, make_plan};
use crate::engine::plan::Scope;
use crate::model::{EmploymentStatus, OperationStatus, Person};
use crate::store::access::AccountRow;
use crate::{Error, Result};
use std::time::{Duration, Instant};

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

/// The leavers-to-be: `n` active people who already have an account in every system of
/// the world (seeded in the simulators and recorded in the store).
pub fn seed_leavers(w: &World, n: usize) -> Result<Vec<Person>> {
    let mut leaving = Vec::new();
    for i in 0..n {
        let p = Person::new(
            &format!("L{i:04}"),
            &format!("Leaver{i}"),
            "Bench",
            &format!("l{i}@example.com"),
        );
        let mut rows = Vec::new();
        for (s, (_, sim)) in w.sims.iter().enumerate() {
            let id = sim.seed_user(&p.email, &p.given_name, &p.family_name);
            rows.push(AccountRow {
                system: format!("s{s}"),
                person_id: Some(p.hris_id.clone()),
                login: p.email.clone(),
                external_id: Some(id),
                active: true,
            });
        }
        let mut st = w.store.lock().unwrap_or_else(|e| e.into_inner());
        st.write(|tx| {
            tx.upsert_person(&p, "bench")?;
            for r in &rows {
                tx.upsert_account(r, "bench")?;
            }
            Ok(())
        })?;
        leaving.push(p);
    }
    Ok(leaving)
}

pub fn percentile_of(sorted: &[f64], p: f64) -> f64 {
    percentile(sorted, p)
}

pub fn run(joiners: usize, leavers: usize) -> Result<BenchReport> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::io("runtime", e))?;
    rt.block_on(async {
        let w: World = world(joiners).await?;
        let leaving = seed_leavers(&w, leavers)?;
        // Queue the joiner wave (10,000 operations for 1,000 joiners x 5 systems).
        let queued = {
            let mut st = w.store.lock().unwrap_or_else(|e| e.into_inner());
            let plan = make_plan(&mut st, &w.cfg.catalog, &Default::default(), &Scope::default(), "bench")?;
            apply_plan(&mut st, &w.cfg.catalog, &plan.id, "bench", None)?;
            plan.ops.len()
        };
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let eng = engine(&w)?;
        let runner = tokio::spawn(async move { eng.run_until_idle(Some(stop_rx)).await });
        let mut latencies = Vec::new();
        for mut p in leaving {
            tokio::time::sleep(Duration::from_millis(150)).await;
            let t0 = Instant::now();
            // The HR change, then the plan for that person and its apply.
            {
                let mut st = w.store.lock().unwrap_or_else(|e| e.into_inner());
                p.status = EmploymentStatus::Terminated;
                st.write(|tx| tx.upsert_person(&p, "bench"))?;
                let plan = make_plan(&mut st, &w.cfg.catalog, &Default::default(), &Scope { system: None, person: Some(p.hris_id.clone()) }, "bench")?;
                apply_plan(&mut st, &w.cfg.catalog, &plan.id, "bench", None)?;
            }
            loop {
                let done: i64 = {
                    let st = w.store.lock().unwrap_or_else(|e| e.into_inner());
                    st.conn().query_row(
                        "SELECT count(*) FROM operations WHERE person_id = ?1 AND kind = 'deactivate' AND status = ?2",
                        rusqlite::params![p.hris_id, OperationStatus::Succeeded.as_str()],
                        |r| r.get(0),
                    )?
                };
                if done as usize == RATES.len() {
                    break;
                }
                if t0.elapsed() > Duration::from_secs(120) {
                    return Err(Error::Failed(format!("{} was not deactivated within 120 s", p.hris_id)));
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            latencies.push(t0.elapsed().as_secs_f64() * 1000.0);
        }
        let still_queued: i64 = {
            let st = w.store.lock().unwrap_or_else(|e| e.into_inner());
            st.conn().query_row("SELECT count(*) FROM operations WHERE status IN ('queued','retry_wait')", [], |r| r.get(0))?
        };
        let _ = stop_tx.send(true);
        let _ = runner.await;
        let mut sorted = latencies.clone();
        sorted.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
        let mut r = BenchReport::new("leaver");
        r.push(&format!("leaver latency p50 ({leavers} leavers, {queued} joiner operations queued)"), median(&mut latencies), "ms", None, "lower");
        r.push("leaver latency p99", percentile(&sorted, 99.0), "ms", None, "lower");
        r.push("joiner operations still queued when the last leaver finished", still_queued as f64, "ops", None, "higher");
        Ok(r)
    })
}

//! `accessdesk bench NAME`.

use super::{BenchArgs, Ctx};
use crate::bench::BenchReport;
use crate::{Error, Result};

pub fn run(ctx: &Ctx, a: BenchArgs) -> Result<()> {
    let report: BenchReport = match a.name.as_str() {
        "policy" => {
            crate::bench::policy::run(a.people.unwrap_or(100_000), a.rules.unwrap_or(300), a.runs)
        }
        "limiter" => crate::bench::limiter::run(
            a.people.map(|n| n as u32).unwrap_or(200),
            std::time::Duration::from_secs(a.window_secs.unwrap_or(5)),
            a.windows.unwrap_or(6),
        )?,
        "plan" => crate::bench::plan::run(a.people.unwrap_or(100_000), a.runs)?,
        "wave" => crate::bench::wave::run(a.people.unwrap_or(2_000), a.runs)?,
        "leaver" => crate::bench::leaver::run(a.people.unwrap_or(1_000), 20)?,
        "webhooks" => crate::bench::webhooks::run_ingest(a.people.unwrap_or(20_000), 32, a.runs)?,
        "proxy" => crate::bench::webhooks::run_proxy(a.people.unwrap_or(20))?,
        "leaver-e2e" => crate::bench::webhooks::run_leaver_e2e(a.people.unwrap_or(1_000), 20)?,
        "store" => crate::bench::store::run(a.people.unwrap_or(100_000), 10, a.runs)?,
        "console" => crate::bench::console::run(
            a.people.unwrap_or(100_000),
            a.runs,
            a.window_secs.unwrap_or(20),
        )?,
        "engine" => crate::bench::engine::run(
            a.people.unwrap_or(10_000),
            a.company.unwrap_or(100_000),
            a.runs,
        )?,
        "reconcile" => crate::bench::reconcile::run(a.people.unwrap_or(100_000), a.runs)?,
        "observe" => crate::bench::observe::run(a.people.unwrap_or(50_000), a.runs)?,
        "observe-memory" => crate::bench::observe::run_memory(a.people.unwrap_or(250_000))?,
        // The child process `engine` measures `apply --no-run` in.
        "engine-enqueue" => return crate::bench::engine::enqueue_child(),
        // The child process `console` measures its first frame and memory in.
        "console-frame" => return crate::bench::console::frame_child(),
        // The child process `observe-memory` measures observing and classifying in.
        "observe-memory-child" => return crate::bench::observe::memory_child(),
        other => {
            return Err(Error::usage(
                format!("unknown benchmark {other:?}"),
                "benchmarks: policy, store, limiter, plan, wave, leaver, console, engine, reconcile, observe, observe-memory",
            ));
        }
    };
    if ctx.json {
        println!(
            "{}",
            serde_json::to_string(&report).map_err(|e| Error::Failed(e.to_string()))?
        );
    } else {
        print!("{}", report.to_text());
    }
    Ok(())
}

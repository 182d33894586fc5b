//! `accessdesk serve`: the headless daemon on the home (src/serve). It prints where it
//! listens on stdout (`listening on http://ADDR`), logs JSON lines on stderr, and stops
//! cleanly on SIGTERM or ctrl-c (exit 0).

use super::Ctx;
use crate::serve::webhooks::SourceSet;
use crate::serve::{Inputs, ServeOptions, start};
use crate::{Error, Result};
use clap::Args;
use std::net::SocketAddr;
use std::time::Duration;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Where the HTTP listener binds (health, metrics). Port 0 picks a free one.
    #[arg(long, default_value = "127.0.0.1:8480", value_name = "ADDR")]
    pub listen: SocketAddr,
    /// Seconds in-flight operations get to finish at shutdown before they are left for
    /// recovery at the next start.
    #[arg(long, default_value_t = 8, value_name = "SECS")]
    pub grace: u64,
}

pub fn run(ctx: &Ctx, a: ServeArgs) -> Result<i32> {
    let cfg = ctx.systems()?;
    let store = ctx.store()?;
    let (engine, problems) = super::engine::build_engine(&cfg, store)?;
    for p in &problems {
        tracing::warn!(system = %p.system, reason = %p.reason, "not driving this system; its operations stay queued");
    }
    let sources = crate::sources::config::SourcesConfig::load(&ctx.home.sources_path())?;
    let keychain = crate::secrets::Keychain::from_env()?;
    let inputs = Inputs {
        sources: SourceSet::new(sources, &|c| keychain.resolve(c)),
        policies: std::sync::Arc::new(ctx.policies(&cfg)?),
        guard: cfg.guard,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("starting the async runtime", e))?;
    rt.block_on(async {
        let opts = ServeOptions {
            listen: a.listen,
            grace: Duration::from_secs(a.grace),
            run_workers: true,
        };
        let running = start(engine, ctx.home.db_path(), opts, inputs).await?;
        println!("listening on http://{}", running.addr);
        tracing::info!(addr = %running.addr, systems = cfg.catalog.systems.len(), "serving");
        wait_for_signal().await?;
        tracing::info!("shutdown asked for");
        let stopped = running.stop().await?;
        tracing::info!(parked = stopped.parked, "stopped");
        Ok(0)
    })
}

/// SIGTERM or SIGINT (ctrl-c).
async fn wait_for_signal() -> Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term =
        signal(SignalKind::terminate()).map_err(|e| Error::io("listening for SIGTERM", e))?;
    tokio::select! {
        _ = term.recv() => {}
        r = tokio::signal::ctrl_c() => r.map_err(|e| Error::io("listening for ctrl-c", e))?,
    }
    Ok(())
}

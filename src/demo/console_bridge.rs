//! Where `accessdesk demo` hands over to the console: the engine and the scenario run in
//! tasks while the admin watches and steers; quitting the console stops both.

use super::Demo;
use crate::Result;
use crate::tui::app::{ConsoleOptions, require_terminal};
use crate::tui::core::{Backend, KeychainProbe};
use std::sync::Arc;
use std::time::Duration;

/// Run the console on a started demo, acting as `actor` (who the audit log names for the
/// admin's actions). Returns the exit code.
pub async fn run_demo(demo: Demo, opts: ConsoleOptions, actor: String) -> Result<i32> {
    require_terminal()?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let engine = demo.spawn_engine(stop_rx.clone());
    let scenario = demo.spawn_scenario(stop_rx);
    let policies = crate::policy::PolicySet::load(
        &crate::config::Home::new(&demo.home).policies_path(),
        &demo.config,
    )
    .ok()
    .map(Arc::new);
    let backend = Backend {
        db_path: demo.db_path.clone(),
        catalog: Arc::new(demo.config.catalog.clone()),
        policies,
        engine: Some(demo.engine.clone()),
        probe: Some(Arc::new(KeychainProbe(Some(demo.keychain().clone())))),
        notices: demo.notices.clone(),
        actor,
        theme_dir: None,
        feed: Some(demo.event_feed()),
    };
    let result = crate::tui::app::run(backend, opts).await;
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(5), engine).await;
    let _ = tokio::time::timeout(Duration::from_secs(5), scenario).await;
    if demo.keep_home {
        eprintln!("demo home kept at {}", demo.home.display());
    }
    demo.shutdown().await;
    result.map(|_| 0)
}

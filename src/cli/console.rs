//! `accessdesk` (no command) and `accessdesk console`: the terminal console over this home.

use super::Ctx;
use crate::tui::app::{self, ConsoleOptions};
use crate::tui::core::{Backend, KeychainProbe, keep_engine_running};
use crate::tui::theme::ColorMode;
use crate::{Error, Result};
use clap::Args;
use serde::Deserialize;
use std::path::PathBuf;
use std::sync::Arc;

/// How the console looks and behaves.
#[derive(Debug, Clone, Args, Default)]
pub struct ConsoleArgs {
    /// Theme: default, light, high-contrast, none, deuteranopia, or HOME/themes/NAME.toml.
    #[arg(long, value_name = "NAME")]
    pub theme: Option<String>,
    /// Colour: auto (off when NO_COLOR is set or output is not a terminal), always, never.
    #[arg(long, value_enum, value_name = "WHEN")]
    pub color: Option<ColorMode>,
    /// Hide every action that changes anything (approve, retry, skip, cancel).
    #[arg(long)]
    pub readonly: bool,
    /// Mouse: wheel scrolls, click selects rows and tabs.
    #[arg(long)]
    pub mouse: bool,
    /// Append each frame's draw time to this file.
    #[arg(long, value_name = "FILE")]
    pub frame_log: Option<PathBuf>,
}

/// HOME/console.toml: the console's own defaults (flags win).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConsoleFile {
    theme: Option<String>,
    color: Option<String>,
    mouse: Option<bool>,
}

impl ConsoleArgs {
    /// The options, with HOME/console.toml filling what the flags leave open.
    pub fn options(&self, home: Option<&std::path::Path>) -> Result<ConsoleOptions> {
        let file = match home.map(|h| h.join("console.toml")) {
            Some(p) if p.exists() => {
                let text = std::fs::read_to_string(&p)
                    .map_err(|e| Error::io(format!("reading {}", p.display()), e))?;
                toml::from_str::<ConsoleFile>(&text).map_err(|e| {
                    let at = e
                        .span()
                        .map(|s| {
                            let (l, c) = crate::error::line_col(&text, s.start);
                            format!(":{l}:{c}")
                        })
                        .unwrap_or_default();
                    Error::usage(
                        format!("{}{at}: {}", p.display(), e.message()),
                        "console.toml takes theme = \"NAME\", color = \"auto|always|never\", mouse = true|false",
                    )
                })?
            }
            _ => ConsoleFile::default(),
        };
        let color = match (self.color, file.color.as_deref()) {
            (Some(c), _) => c,
            (None, Some(c)) => c.parse().map_err(|e: String| {
                Error::usage(
                    format!("console.toml: color: {e}"),
                    "use auto, always or never",
                )
            })?,
            (None, None) => ColorMode::Auto,
        };
        let theme = self.theme.clone().or(file.theme);
        if let Some(name) = &theme {
            // A bad theme is reported before the screen is taken over.
            crate::tui::theme::Theme::load(name, home.map(|h| h.join("themes")).as_deref())?;
        }
        Ok(ConsoleOptions {
            theme,
            color,
            readonly: self.readonly,
            mouse: self.mouse || file.mouse.unwrap_or(false),
            frame_log: self.frame_log.clone(),
        })
    }
}

pub use crate::tui::app::require_terminal;

pub fn run(ctx: &Ctx, args: ConsoleArgs) -> Result<i32> {
    let cfg = ctx.systems()?;
    let opts = args.options(Some(&ctx.home.dir))?;
    let policies = ctx.policies(&cfg);
    require_terminal()?;
    let (engine, problems) = super::engine::build_engine(&cfg, ctx.store()?)?;
    let mut notices: Vec<String> = problems
        .iter()
        .map(|p| format!("{p}; its operations stay queued"))
        .collect();
    // serve (or another console) may be running this home's workers: then this
    // console's engine waits, and its actions reach the other's workers through the queue.
    if let Some(holder) = crate::engine::workers::lease::holder(&ctx.home.db_path())? {
        notices.push(format!(
            "another process runs this home's workers ({holder}): what you approve, retry or cancel here is queued for its workers"
        ));
    }
    let policies = match policies {
        Ok(p) => Some(Arc::new(p)),
        Err(e) => {
            notices.push(format!(
                "policies.toml does not load ({e}); cells are explained from the stored grants only"
            ));
            None
        }
    };
    let keychain = match crate::secrets::Keychain::from_env() {
        Ok(k) => Some(k),
        Err(e) => {
            notices.push(format!("no OS keychain: {e}"));
            None
        }
    };
    let backend = Backend {
        db_path: ctx.home.db_path(),
        catalog: Arc::new(cfg.catalog.clone()),
        policies,
        engine: Some(engine.clone()),
        probe: Some(Arc::new(KeychainProbe(keychain))),
        notices,
        actor: super::actor(),
        theme_dir: Some(ctx.home.dir.join("themes")),
        feed: None,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("starting the async runtime", e))?;
    rt.block_on(async move {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let worker = tokio::spawn(keep_engine_running(engine, stop_rx));
        let r = app::run(backend, opts).await;
        let _ = stop_tx.send(true);
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), worker).await;
        r
    })?;
    Ok(0)
}

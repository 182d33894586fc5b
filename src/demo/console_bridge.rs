//! Where `accessdesk demo` hands over to the console.
//!
//! PLACEHOLDER until the console lands in `src/tui/`: the console's author replaces the
//! body of [`run_demo`] with a call to `crate::tui::run_demo(demo, args)` (same
//! signature), or points `src/cli/demo.rs` at it directly and deletes this file. Until
//! then `accessdesk demo` says so and runs the demo headless.
//!
//! What the console gets: a started [`Demo`] (simulators up, wave applied, engine and
//! scenario not yet running: call [`Demo::spawn_engine`] and [`Demo::spawn_scenario`]
//! with a stop signal), and the console flags as [`ConsoleArgs`].

use super::Demo;
use super::headless::{self, HeadlessOptions};
use crate::Result;

/// `--color`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    #[default]
    Auto,
    Always,
    Never,
}

/// The console flags of `accessdesk demo`, passed through untouched.
#[derive(Debug, Clone, Default)]
pub struct ConsoleArgs {
    /// `--theme NAME`.
    pub theme: Option<String>,
    pub color: ColorChoice,
    /// `--readonly`: look, but no admin actions.
    pub readonly: bool,
    /// `--mouse`: capture the mouse.
    pub mouse: bool,
}

/// PLACEHOLDER: run the console on `demo`. Returns the exit code.
pub async fn run_demo(demo: Demo, args: ConsoleArgs) -> Result<i32> {
    let _ = args;
    eprintln!(
        "console not built yet: running the demo headless instead (as `accessdesk demo --headless`)"
    );
    headless::run(
        demo,
        HeadlessOptions {
            run_for: headless::DEFAULT_RUN_FOR,
            json: false,
        },
    )
    .await
}

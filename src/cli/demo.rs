//! `accessdesk demo`: start the demo, then hand it to the console or run it headless.

use super::{Ctx, DemoArgs};
use crate::demo::console_bridge;
use crate::demo::headless::{self, HeadlessOptions};
use crate::demo::{Demo, DemoOptions};
use crate::{Error, Result};

pub fn run(ctx: &Ctx, args: DemoArgs) -> Result<i32> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("starting the async runtime", e))?;
    // The console's options are checked (a bad theme reported) before the demo starts.
    let console = if args.headless {
        None
    } else {
        crate::cli::console::require_terminal()?;
        Some(args.console.options(None)?)
    };
    rt.block_on(async {
        let demo = Demo::start(DemoOptions {
            seed: args.seed,
            keep_home: args.keep_home,
        })
        .await?;
        match console {
            Some(opts) => console_bridge::run_demo(demo, opts, crate::cli::actor()).await,
            None => {
                headless::run(
                    demo,
                    HeadlessOptions {
                        run_for: args.run_for.unwrap_or(headless::DEFAULT_RUN_FOR),
                        json: ctx.json,
                    },
                )
                .await
            }
        }
    })
}

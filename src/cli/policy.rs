//! `accessdesk policy check|explain|test`.

use super::{Ctx, PolicyCmd};
use crate::Result;

pub fn run(ctx: &Ctx, cmd: PolicyCmd) -> Result<i32> {
    let systems = ctx.systems()?;
    match cmd {
        PolicyCmd::Check => {
            ctx.policies(&systems)?;
            println!("policies OK");
            Ok(0)
        }
        PolicyCmd::Explain { .. } | PolicyCmd::Test { .. } => {
            Err(crate::Error::Failed("not implemented yet".into()))
        }
    }
}

//! `accessdesk bench`.
use super::{BenchArgs, Ctx};
use crate::Result;
pub fn run(_ctx: &Ctx, _a: BenchArgs) -> Result<()> {
    Err(crate::Error::Failed("not implemented yet".into()))
}

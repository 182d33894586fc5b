//! `accessdesk init`.
use super::Ctx;
use crate::Result;
pub fn run(_ctx: &Ctx, _force: bool) -> Result<()> {
    Err(crate::Error::Failed("not implemented yet".into()))
}

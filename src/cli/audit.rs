//! `accessdesk audit`.
use super::{AuditCmd, Ctx};
use crate::Result;
pub fn run(_ctx: &Ctx, _cmd: AuditCmd) -> Result<i32> {
    Err(crate::Error::Failed("not implemented yet".into()))
}

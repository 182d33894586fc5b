//! `accessdesk people`.
use super::{Ctx, PeopleCmd};
use crate::Result;
pub fn run(_ctx: &Ctx, _cmd: PeopleCmd) -> Result<i32> {
    Err(crate::Error::Failed("not implemented yet".into()))
}

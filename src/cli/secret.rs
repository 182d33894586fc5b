//! `accessdesk secret set|get|rm|list`.

use super::{Ctx, SecretCmd};
use crate::Result;

pub fn run(_ctx: &Ctx, _cmd: SecretCmd) -> Result<i32> {
    Err(crate::Error::Failed("not implemented yet".into()))
}

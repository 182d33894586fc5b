//! aws_iam adapter (being written).

use super::Adapter;
use super::registry::AdapterContext;
use crate::{Error, Result};
use std::sync::Arc;

pub fn from_config(ctx: AdapterContext<'_>) -> Result<Arc<dyn Adapter>> {
    Err(Error::usage(
        format!(
            "system {}: the aws_iam adapter is not built yet",
            ctx.entry.system.name
        ),
        "",
    ))
}

//! Policy engine: birthright rules with CEL conditions, compiled into intended grants.
//! (Being written; see the policy issue.)

use crate::config::Catalog;
use crate::model::{Grant, Person};
use crate::{Error, Result};
use chrono::{DateTime, Utc};
use std::path::Path;

#[derive(Debug, Clone, Default)]
pub struct PolicySet {}

impl PolicySet {
    pub fn load(path: &Path, catalog: &Catalog) -> Result<PolicySet> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
        Self::parse(path, &text, catalog)
    }

    pub fn parse(_path: &Path, _text: &str, _catalog: &Catalog) -> Result<PolicySet> {
        Ok(PolicySet {})
    }

    pub fn evaluate(&self, _person: &Person, _now: DateTime<Utc>) -> Vec<Grant> {
        Vec::new()
    }
}

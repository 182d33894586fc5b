//! The IAM Identity Center identity store in the AWS simulator ([`super::aws`]).

use super::WriteCounts;
use super::aws::{AwsError, Inner};
use serde_json::Value;

/// An identity store user as the simulator holds it.
#[derive(Debug, Clone)]
pub struct StoreUser {
    pub user_id: String,
    pub user_name: String,
}

#[derive(Debug, Default)]
pub(crate) struct Store {
    pub(crate) counts: WriteCounts,
}

impl Store {
    pub(crate) fn users_in_order(&self) -> Vec<StoreUser> {
        Vec::new()
    }
    pub(crate) fn members_of_named(&self, _display_name: &str) -> Vec<String> {
        Vec::new()
    }
}

pub(crate) fn new_group(_s: &mut Store, _store_id: &str, _display_name: &str) -> String {
    String::new()
}

pub(crate) fn handle(_inner: &Inner, target: &str, _body: &[u8]) -> Result<Value, AwsError> {
    Err(AwsError::bad(
        "UnknownOperationException",
        format!("{target} is not supported yet"),
    ))
}

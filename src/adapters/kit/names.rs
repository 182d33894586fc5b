//! The name → id cache: catalogue names (what policies say) resolved to the vendor's ids.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

/// Group names resolved to the vendor's ids, shared by an adapter's workers. A name whose
/// id turns out stale (the group was recreated) is forgotten and looked up again.
#[derive(Debug, Default)]
pub struct NameCache(Mutex<HashMap<String, String>>);

impl NameCache {
    fn map(&self) -> MutexGuard<'_, HashMap<String, String>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
    pub fn get(&self, name: &str) -> Option<String> {
        self.map().get(name).cloned()
    }
    pub fn insert(&self, name: &str, id: &str) {
        self.map().insert(name.to_string(), id.to_string());
    }
    /// Remember ids seen in a listing, without replacing what is known.
    pub fn remember<'a>(&self, pairs: impl IntoIterator<Item = (&'a str, &'a str)>) {
        let mut m = self.map();
        for (name, id) in pairs {
            m.entry(name.to_string()).or_insert_with(|| id.to_string());
        }
    }
    pub fn forget(&self, name: &str) {
        self.map().remove(name);
    }
}

//! What adapter tests, benchmarks and the demo's harnesses share instead of copying:
//! secret sources that stand in for the OS keychain.

use super::context::SecretSource;
use crate::Result;
use crate::config::systems::CredentialRef;
use crate::secrets::Secret;
use std::collections::BTreeMap;

/// Every credential resolves to this one secret.
pub struct FixedSecret(pub Secret);

impl FixedSecret {
    pub fn new(value: &str) -> Self {
        FixedSecret(Secret::new(value))
    }
}

impl SecretSource for FixedSecret {
    fn resolve(&self, _cred: &CredentialRef) -> Result<Secret> {
        Ok(self.0.clone())
    }
}

/// Secrets by name: a keychain entry (`keyring:NAME`) or an environment variable
/// (`env:NAME`). A name it does not hold is an error naming it, as a keychain's would be.
#[derive(Default)]
pub struct NamedSecrets(pub BTreeMap<String, String>);

impl NamedSecrets {
    /// One secret, under `name`.
    pub fn one(name: &str, value: &str) -> Self {
        NamedSecrets(BTreeMap::from([(name.to_string(), value.to_string())]))
    }

    /// Several secrets, by name.
    pub fn new_many(pairs: &[(&str, &str)]) -> Self {
        NamedSecrets(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }
}

impl SecretSource for NamedSecrets {
    fn resolve(&self, cred: &CredentialRef) -> Result<Secret> {
        let name = match cred {
            CredentialRef::Keyring(n) | CredentialRef::Env(n) => n,
        };
        self.0
            .get(name)
            .map(|s| Secret::new(s.clone()))
            .ok_or_else(|| crate::Error::usage(format!("no test secret {cred}"), ""))
    }
}

/// A header map from name/value pairs (repeated names are appended), for tests of the
/// vendors' header dialects. Panics on a name or value that is not a valid header: test
/// input only.
pub fn headers(pairs: &[(&str, &str)]) -> reqwest::header::HeaderMap {
    use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(
            HeaderName::from_bytes(k.as_bytes()).expect("a test header name"),
            HeaderValue::from_str(v).expect("a test header value"),
        );
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_secrets_resolve_by_name_and_refuse_others() {
        let s = NamedSecrets::one("okta-token", "t0k");
        let got = s
            .resolve(&CredentialRef::Keyring("okta-token".into()))
            .unwrap();
        assert_eq!(got.expose(), "t0k");
        let e = s
            .resolve(&CredentialRef::Keyring("other".into()))
            .unwrap_err();
        assert!(
            e.to_string().contains("no test secret keyring:other"),
            "{e}"
        );
        let f = FixedSecret::new("x");
        assert_eq!(
            f.resolve(&CredentialRef::Env("ANY".into()))
                .unwrap()
                .expose(),
            "x"
        );
    }
}

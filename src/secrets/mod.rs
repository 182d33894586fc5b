//! Credentials: `keyring:NAME` from the OS keychain, `env:VAR` from the environment.
//! Secret values are wrapped in [`Secret`], whose Debug and Display never show them.
//!
//! The keychain itself (backend selection, service namespace, get/set/remove and
//! resolving a [`CredentialRef`](crate::config::systems::CredentialRef)) lives in
//! [`keychain`]; see [`Keychain`] for how a backend is chosen.

pub mod keychain;

pub use keychain::{
    BackendChoice, BackendKind, DEFAULT_SERVICE, ENV_BACKEND, ENV_SERVICE, Keychain,
};

/// A secret value. Debug/Display print `[redacted]`; use [`Secret::expose`] deliberately.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Secret names: 1-128 of ASCII letters, digits, '.', '-', '_' and '/'.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '/'))
}

/// [`valid_name`] as a usage error (exit code 2) naming the rule. The error does not repeat
/// the name: a rejected "name" is often a pasted value, so it shows only what is wrong.
pub fn check_name(name: &str) -> crate::Result<()> {
    if valid_name(name) {
        return Ok(());
    }
    let problem = if name.is_empty() {
        "it is empty".to_string()
    } else if let Some((i, c)) = name
        .chars()
        .enumerate()
        .find(|(_, c)| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '/')))
    {
        format!("character {} is {c:?}", i + 1)
    } else {
        format!("it is {} bytes long", name.len())
    };
    Err(crate::Error::usage(
        format!("not a valid secret name: {problem}"),
        "use 1-128 ASCII letters, digits, '.', '-', '_' and '/' (the value itself is read from \
         a prompt or stdin, never from the command line)",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_never_show_the_value() {
        let value = "sk-live-0123456789abcdef";
        let s = Secret::new(value);
        for shown in [
            format!("{s:?}"),
            format!("{s:#?}"),
            format!("{s}"),
            format!("{:?}", Some(&s)),
            format!("{:?}", vec![s.clone()]),
            format!("{:>40}", s),
        ] {
            assert!(!shown.contains(value), "{shown}");
            assert!(!shown.contains("0123456789"), "{shown}");
            assert!(shown.contains("[redacted]"), "{shown}");
        }
        assert_eq!(s.expose(), value);
    }

    #[test]
    fn names_are_restricted() {
        assert!(valid_name("okta-prod"));
        assert!(valid_name("team/github.token_1"));
        assert!(!valid_name(""));
        assert!(!valid_name("has space"));
        assert!(!valid_name("user@host"));
        assert!(!valid_name(&"a".repeat(129)));
    }

    #[test]
    fn rejected_names_are_not_echoed() {
        let pasted = "sk-live+abc/def==";
        let e = check_name(pasted).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("character 8 is '+'"), "{e}");
        assert!(!e.to_string().contains("abc"), "{e}");
        assert!(check_name("").unwrap_err().to_string().contains("empty"));
        let long = "a".repeat(129);
        assert!(
            check_name(&long)
                .unwrap_err()
                .to_string()
                .contains("129 bytes")
        );
    }
}

//! The OS keychain behind `keyring:NAME` credentials, and resolution of credential references.
//!
//! # Choosing a backend
//!
//! `ACCESSDESK_KEYCHAIN` picks the backend: `auto` (the default), `keyutils`, `secret-service`
//! or `memory`. `auto` on Linux tries, in order:
//!
//! 1. **Secret Service** (gnome-keyring, KWallet, KeePassXC) when `DBUS_SESSION_BUS_ADDRESS`
//!    is set and the service answers a probe. It keeps secrets across reboots, encrypted at
//!    rest, and is what a desktop user expects to find their credentials in.
//! 2. **The kernel keyring** (keyutils) otherwise. It is always present on a Linux server but
//!    needs a session keyring (`keyctl session -`, or a PAM login session), and it holds
//!    secrets in kernel memory only: they are gone after a reboot.
//! 3. Otherwise it fails, naming every backend it tried, why each failed and how to fix it.
//!
//! `auto` never chooses `memory`: an in-process store that forgets everything at exit. It
//! exists for demos and tests that want a visible fallback ([`Keychain::session_or_memory`]),
//! and must be asked for by name. An explicitly named backend is probed as well, so a
//! missing keychain is reported before any prompt for a value.
//!
//! # Credentials that must not outlive the session
//!
//! The kernel keyring store links every key into the user's *persistent* keyring as well
//! as the session keyring, so that `accessdesk secret set` survives a logout for a few
//! days. The demo's throwaway credentials must not: [`Keychain::session_or_memory`] keeps
//! them in the session keyring only (a new session, even one that joins the persistent
//! keyring, cannot find them after the demo is killed), or in memory. It never uses the
//! Secret Service, which keeps items on disk.
//!
//! The selection is made per process, so a secret stored by one backend is not visible
//! through another; the secrets index records which backend stored each name.
//!
//! # Namespacing
//!
//! Entries are `(service, user)` pairs: the service is `accessdesk`, or
//! `ACCESSDESK_KEYRING_SERVICE` when set (the demo uses `accessdesk-demo`, tests a random
//! one), and the user is the secret name. In the kernel keyring that is the key description
//! `keyring:NAME@SERVICE`; in the Secret Service, the attributes `service` and `username`.
//!
//! Each [`Keychain`] holds its own store object and builds entries with
//! `Entry::new_in_store`, rather than installing a process-wide default store, so two
//! handles with different backends can coexist (as they do in the tests and the demo).
//!
//! # Keeping values out of sight
//!
//! Values travel as [`Secret`]. Errors and log events name the entry, the backend and the
//! service, never the value; errors from the stores are re-described field by field (their
//! `BadEncoding` and `BadDataFormat` variants carry the raw bytes, so they are never
//! formatted with `Debug`).
//!
//! The Secret Service store makes blocking D-Bus calls; async callers should use
//! `tokio::task::spawn_blocking`.

use super::{Secret, check_name, valid_name};
use crate::config::systems::CredentialRef;
use crate::{Error, Result};
use std::collections::HashMap;
use std::ffi::OsString;
use std::sync::{Arc, Mutex};

/// The service namespace used unless `ACCESSDESK_KEYRING_SERVICE` is set.
pub const DEFAULT_SERVICE: &str = "accessdesk";
/// Environment variable choosing the backend.
pub const ENV_BACKEND: &str = "ACCESSDESK_KEYCHAIN";
/// Environment variable overriding the service namespace.
pub const ENV_SERVICE: &str = "ACCESSDESK_KEYRING_SERVICE";

/// The entry read to check that a backend answers. It is never written.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
const PROBE_NAME: &str = "accessdesk.probe";

const KEYUTILS_HINT: &str = "the kernel keyring needs a session keyring: run accessdesk under \
     `keyctl session -` (package keyutils), e.g. `keyctl session - accessdesk secret list`, \
     or use ACCESSDESK_KEYCHAIN=secret-service";
const SECRET_SERVICE_HINT: &str = "start and unlock a Secret Service in this D-Bus session \
     (e.g. `echo -n PASSWORD | gnome-keyring-daemon --unlock --components=secrets`), \
     or use ACCESSDESK_KEYCHAIN=keyutils under `keyctl session -`";
const AUTO_HINT: &str = "run under `keyctl session -` to use the kernel keyring (package \
     keyutils), or start and unlock a Secret Service (e.g. gnome-keyring) in a D-Bus session; \
     ACCESSDESK_KEYCHAIN=keyutils|secret-service picks one explicitly";
const MEMORY_HINT: &str = "the memory keychain keeps secrets only inside one process; \
     use ACCESSDESK_KEYCHAIN=keyutils or secret-service";

/// What `ACCESSDESK_KEYCHAIN` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendChoice {
    Auto,
    Keyutils,
    SecretService,
    Memory,
}

impl std::str::FromStr for BackendChoice {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.trim() {
            "" | "auto" => Ok(BackendChoice::Auto),
            "keyutils" => Ok(BackendChoice::Keyutils),
            "secret-service" => Ok(BackendChoice::SecretService),
            "memory" => Ok(BackendChoice::Memory),
            other => Err(format!("{ENV_BACKEND}={other:?} is not a keychain backend")),
        }
    }
}

/// The backend a [`Keychain`] actually uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    /// The Linux kernel keyring, through linux-keyutils-keyring-store.
    Keyutils,
    /// A freedesktop Secret Service over D-Bus, through zbus-secret-service-keyring-store.
    SecretService,
    /// An in-process map; forgets everything at exit.
    Memory,
}

impl BackendKind {
    /// The name recorded in the secrets index and shown to users.
    pub fn as_str(self) -> &'static str {
        match self {
            BackendKind::Keyutils => "keyutils",
            BackendKind::SecretService => "secret-service",
            BackendKind::Memory => "memory",
        }
    }

    fn hint(self) -> &'static str {
        match self {
            BackendKind::Keyutils => KEYUTILS_HINT,
            BackendKind::SecretService => SECRET_SERVICE_HINT,
            BackendKind::Memory => MEMORY_HINT,
        }
    }
}

impl std::fmt::Display for BackendKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone)]
enum Backend {
    #[cfg(target_os = "linux")]
    Os {
        kind: BackendKind,
        store: Arc<keyring_core::CredentialStore>,
    },
    Memory(Arc<Mutex<HashMap<String, Secret>>>),
}

/// A handle on one keychain backend and service namespace. Cheap to clone; clones share the
/// backend (including a memory backend's contents).
#[derive(Clone)]
pub struct Keychain {
    service: String,
    backend: Backend,
}

impl std::fmt::Debug for Keychain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keychain")
            .field("backend", &self.backend_name())
            .field("service", &self.service)
            .finish()
    }
}

#[derive(Debug, Clone, Copy)]
enum Op {
    Store,
    Read,
    Remove,
}

impl Op {
    fn verb(self) -> &'static str {
        match self {
            Op::Store => "storing",
            Op::Read => "reading",
            Op::Remove => "removing",
        }
    }
}

impl Keychain {
    /// Open the backend named by `ACCESSDESK_KEYCHAIN` (default `auto`) with the service
    /// namespace from `ACCESSDESK_KEYRING_SERVICE` (default `accessdesk`).
    pub fn from_env() -> Result<Keychain> {
        Self::from_env_with(|k| std::env::var_os(k))
    }

    /// [`Keychain::from_env`] reading variables through `env` (for tests).
    pub fn from_env_with(env: impl Fn(&str) -> Option<OsString>) -> Result<Keychain> {
        let choice = match env(ENV_BACKEND) {
            None => BackendChoice::Auto,
            Some(v) => v
                .to_str()
                .ok_or_else(|| format!("{ENV_BACKEND} is not valid UTF-8"))
                .and_then(str::parse::<BackendChoice>)
                .map_err(|msg| {
                    Error::usage(
                        msg,
                        format!("set {ENV_BACKEND} to auto, keyutils, secret-service or memory"),
                    )
                })?,
        };
        let service = match env(ENV_SERVICE).filter(|v| !v.is_empty()) {
            None => DEFAULT_SERVICE.to_string(),
            Some(v) => v.into_string().map_err(|_| {
                Error::usage(
                    format!("{ENV_SERVICE} is not valid UTF-8"),
                    service_name_hint(),
                )
            })?,
        };
        let dbus = env("DBUS_SESSION_BUS_ADDRESS").is_some_and(|v| !v.is_empty());
        Self::open_with(choice, &service, dbus)
    }

    /// Open a backend for `service`. `Auto` consults `DBUS_SESSION_BUS_ADDRESS` as described
    /// in the module documentation.
    pub fn open(choice: BackendChoice, service: &str) -> Result<Keychain> {
        let dbus = std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some_and(|v| !v.is_empty());
        Self::open_with(choice, service, dbus)
    }

    /// A keychain for credentials that must not outlive this session (the demo's), under
    /// `service`: the kernel keyring's session keyring only, never linked into the
    /// persistent keyring (`ACCESSDESK_KEYCHAIN` `auto` or `keyutils`), or memory when
    /// asked for (`memory`) or when the session keyring cannot be used. The Secret
    /// Service is never used: it keeps items on disk. When it falls back to memory, the
    /// reason comes alongside, so the caller can show it. The CLI never uses this.
    pub fn session_or_memory(service: &str) -> (Keychain, Option<Error>) {
        Self::session_or_memory_with(service, |k| std::env::var_os(k))
    }

    /// [`Keychain::session_or_memory`] reading `ACCESSDESK_KEYCHAIN` through `env`.
    pub fn session_or_memory_with(
        service: &str,
        env: impl Fn(&str) -> Option<OsString>,
    ) -> (Keychain, Option<Error>) {
        let fallback = |e: Error| {
            tracing::warn!(error = %e, "credentials kept in the in-process memory keychain");
            (Keychain::memory(service), Some(e))
        };
        if !valid_service(service) {
            return fallback(Error::usage(
                format!("keyring service {service:?} is not allowed"),
                service_name_hint(),
            ));
        }
        let choice = env(ENV_BACKEND)
            .map(|v| {
                v.to_str()
                    .ok_or_else(|| format!("{ENV_BACKEND} is not valid UTF-8"))
                    .and_then(str::parse::<BackendChoice>)
            })
            .unwrap_or(Ok(BackendChoice::Auto));
        match choice {
            Err(msg) => fallback(Error::usage(
                msg,
                format!("set {ENV_BACKEND} to auto, keyutils, secret-service or memory"),
            )),
            Ok(BackendChoice::Memory) => (Keychain::memory(service), None),
            Ok(BackendChoice::SecretService) => fallback(Error::Keychain {
                backend: BackendKind::SecretService.as_str().to_string(),
                message: "not used for credentials that must not outlive the session: it \
                          keeps them on disk"
                    .into(),
                hint: format!(
                    "{ENV_BACKEND}=keyutils under `keyctl session -` keeps them in the session keyring"
                ),
            }),
            Ok(BackendChoice::Auto | BackendChoice::Keyutils) => {
                match open_session_keyutils(service) {
                    Ok(k) => (k, None),
                    Err(reason) => fallback(Error::Keychain {
                        backend: BackendKind::Keyutils.as_str().to_string(),
                        message: format!("the session keyring is not usable: {reason}"),
                        hint: KEYUTILS_HINT.into(),
                    }),
                }
            }
        }
    }

    /// An empty in-process keychain. Its contents vanish when the last clone is dropped.
    pub fn memory(service: &str) -> Keychain {
        Keychain {
            service: service.to_string(),
            backend: Backend::Memory(Arc::default()),
        }
    }

    fn open_with(choice: BackendChoice, service: &str, dbus_session: bool) -> Result<Keychain> {
        if !valid_service(service) {
            return Err(Error::usage(
                format!("keyring service {service:?} is not allowed"),
                service_name_hint(),
            ));
        }
        let explicit = |kind: BackendKind, r: std::result::Result<Keychain, String>| {
            r.map_err(|reason| Error::Keychain {
                backend: kind.as_str().to_string(),
                message: format!("not usable: {reason}"),
                hint: kind.hint().to_string(),
            })
        };
        let keychain = match choice {
            BackendChoice::Memory => Keychain::memory(service),
            BackendChoice::Keyutils => explicit(BackendKind::Keyutils, open_keyutils(service))?,
            BackendChoice::SecretService => {
                let r = open_secret_service(service).map_err(|reason| {
                    if dbus_session {
                        reason
                    } else {
                        format!("{reason} (DBUS_SESSION_BUS_ADDRESS is not set)")
                    }
                });
                explicit(BackendKind::SecretService, r)?
            }
            BackendChoice::Auto => open_auto(service, dbus_session)?,
        };
        tracing::debug!(
            backend = keychain.backend_name(),
            service = %keychain.service,
            "keychain opened"
        );
        Ok(keychain)
    }

    /// The backend in use.
    pub fn backend(&self) -> BackendKind {
        match &self.backend {
            #[cfg(target_os = "linux")]
            Backend::Os { kind, .. } => *kind,
            Backend::Memory(_) => BackendKind::Memory,
        }
    }

    /// `keyutils`, `secret-service` or `memory`.
    pub fn backend_name(&self) -> &'static str {
        self.backend().as_str()
    }

    /// The service namespace entries live under.
    pub fn service(&self) -> &str {
        &self.service
    }

    /// Store `value` under `name`, replacing any previous value.
    pub fn set(&self, name: &str, value: &Secret) -> Result<()> {
        check_name(name)?;
        if value.expose().is_empty() {
            return Err(Error::Secret {
                name: name.to_string(),
                message: "refusing to store an empty value".into(),
                hint: String::new(),
            });
        }
        self.raw_set(name, value)
            .map_err(|e| self.op_error(name, Op::Store, e))?;
        tracing::info!(
            secret = name,
            backend = self.backend_name(),
            service = %self.service,
            "secret stored in keychain"
        );
        Ok(())
    }

    /// The value stored under `name`. A missing entry is an error whose hint is
    /// `accessdesk secret set NAME`.
    pub fn get(&self, name: &str) -> Result<Secret> {
        self.lookup(name)?.ok_or_else(|| self.not_found(name))
    }

    /// The value stored under `name`, or `None` when there is no such entry.
    pub fn lookup(&self, name: &str) -> Result<Option<Secret>> {
        check_name(name)?;
        let found = match self.raw_get(name) {
            Ok(s) => Some(s),
            Err(keyring_core::Error::NoEntry) => None,
            Err(e) => return Err(self.op_error(name, Op::Read, e)),
        };
        tracing::debug!(
            secret = name,
            backend = self.backend_name(),
            service = %self.service,
            found = found.is_some(),
            "keychain lookup"
        );
        Ok(found)
    }

    /// Delete the entry for `name`. Returns whether there was one.
    pub fn remove(&self, name: &str) -> Result<bool> {
        check_name(name)?;
        let removed = match self.raw_remove(name) {
            Ok(()) => true,
            Err(keyring_core::Error::NoEntry) => false,
            Err(e) => return Err(self.op_error(name, Op::Remove, e)),
        };
        tracing::info!(
            secret = name,
            backend = self.backend_name(),
            service = %self.service,
            removed,
            "keychain remove"
        );
        Ok(removed)
    }

    /// The secret a credential reference points at: `keyring:NAME` from this keychain,
    /// `env:VAR` from the process environment.
    pub fn resolve(&self, cred: &CredentialRef) -> Result<Secret> {
        self.resolve_with(cred, |v| std::env::var_os(v))
    }

    /// [`Keychain::resolve`] reading environment variables through `env`.
    pub fn resolve_with(
        &self,
        cred: &CredentialRef,
        env: impl Fn(&str) -> Option<OsString>,
    ) -> Result<Secret> {
        match cred {
            CredentialRef::Keyring(name) => self.get(name),
            CredentialRef::Env(var) => {
                let fail = |message: String, hint: String| Error::Secret {
                    name: cred.to_string(),
                    message,
                    hint,
                };
                let value = env(var).ok_or_else(|| {
                    fail(
                        format!("environment variable {var} is not set"),
                        format!(
                            "export {var} before running accessdesk, or store the credential with \
                             `accessdesk secret set NAME` and write credential = \"keyring:NAME\""
                        ),
                    )
                })?;
                let value = value.into_string().map_err(|_| {
                    fail(
                        format!("environment variable {var} is not valid UTF-8"),
                        String::new(),
                    )
                })?;
                if value.is_empty() {
                    return Err(fail(
                        format!("environment variable {var} is set but empty"),
                        format!("export {var} with the credential's value"),
                    ));
                }
                tracing::debug!(credential = %cred, backend = "environment", "credential resolved");
                Ok(Secret::new(value))
            }
        }
    }

    /// The error for an entry this keychain does not hold: it names the entry, backend and
    /// service, and hints at `accessdesk secret set NAME`.
    pub fn not_found(&self, name: &str) -> Error {
        let command = if self.service == DEFAULT_SERVICE {
            format!("accessdesk secret set {name}")
        } else {
            format!(
                "{ENV_SERVICE}={} accessdesk secret set {name}",
                self.service
            )
        };
        let mut hint = format!("store it with `{command}`");
        match self.backend() {
            BackendKind::Keyutils => hint.push_str(" (the kernel keyring is emptied by a reboot)"),
            BackendKind::Memory => hint.push_str(" (the memory keychain forgets at exit)"),
            BackendKind::SecretService => {}
        }
        Error::Secret {
            name: name.to_string(),
            message: format!(
                "not found in the {} keychain (service {})",
                self.backend_name(),
                self.service
            ),
            hint,
        }
    }

    fn op_error(&self, name: &str, op: Op, e: keyring_core::Error) -> Error {
        if matches!(e, keyring_core::Error::NoEntry) {
            return self.not_found(name);
        }
        let hint = match &e {
            keyring_core::Error::BadEncoding(_) | keyring_core::Error::BadDataFormat(..) => {
                format!("store it again with `accessdesk secret set {name}`")
            }
            keyring_core::Error::Ambiguous(_) => {
                "remove the duplicate entries with the keychain's own tool (e.g. secret-tool or seahorse)"
                    .to_string()
            }
            _ => self.backend().hint().to_string(),
        };
        Error::Secret {
            name: name.to_string(),
            message: format!(
                "{} it in the {} keychain (service {}) failed: {}",
                op.verb(),
                self.backend_name(),
                self.service,
                describe(&e)
            ),
            hint,
        }
    }

    fn raw_get(&self, name: &str) -> keyring_core::Result<Secret> {
        match &self.backend {
            #[cfg(target_os = "linux")]
            Backend::Os { store, .. } => {
                keyring_core::Entry::new_in_store(store, &self.service, name)?
                    .get_password()
                    .map(Secret::new)
            }
            Backend::Memory(map) => lock(map)
                .get(name)
                .cloned()
                .ok_or(keyring_core::Error::NoEntry),
        }
    }

    fn raw_set(&self, name: &str, value: &Secret) -> keyring_core::Result<()> {
        match &self.backend {
            #[cfg(target_os = "linux")]
            Backend::Os { store, .. } => {
                keyring_core::Entry::new_in_store(store, &self.service, name)?
                    .set_password(value.expose())
            }
            Backend::Memory(map) => {
                lock(map).insert(name.to_string(), value.clone());
                Ok(())
            }
        }
    }

    fn raw_remove(&self, name: &str) -> keyring_core::Result<()> {
        match &self.backend {
            #[cfg(target_os = "linux")]
            Backend::Os { store, .. } => {
                keyring_core::Entry::new_in_store(store, &self.service, name)?.delete_credential()
            }
            Backend::Memory(map) => lock(map)
                .remove(name)
                .map(drop)
                .ok_or(keyring_core::Error::NoEntry),
        }
    }

    /// Check that the backend answers: reading an entry that should not exist must give
    /// either a value or "no entry", not an access error.
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    fn probe(&self) -> std::result::Result<(), String> {
        match self.raw_get(PROBE_NAME) {
            Ok(_) | Err(keyring_core::Error::NoEntry) => Ok(()),
            Err(e) => Err(describe(&e)),
        }
    }
}

fn open_auto(service: &str, dbus_session: bool) -> Result<Keychain> {
    let mut tried = Vec::new();
    if dbus_session {
        match open_secret_service(service) {
            Ok(k) => return Ok(k),
            Err(reason) => {
                tracing::debug!(%reason, "keychain auto: Secret Service not usable");
                tried.push(format!("secret-service: {reason}"));
            }
        }
    } else {
        tried.push("secret-service: skipped, DBUS_SESSION_BUS_ADDRESS is not set".to_string());
    }
    match open_keyutils(service) {
        Ok(k) => return Ok(k),
        Err(reason) => {
            tracing::debug!(%reason, "keychain auto: kernel keyring not usable");
            tried.push(format!("keyutils: {reason}"));
        }
    }
    Err(Error::Keychain {
        backend: "auto".into(),
        message: format!("no OS keychain is reachable (tried {})", tried.join("; ")),
        hint: AUTO_HINT.into(),
    })
}

#[cfg(target_os = "linux")]
fn open_keyutils(service: &str) -> std::result::Result<Keychain, String> {
    let store: Arc<keyring_core::CredentialStore> =
        linux_keyutils_keyring_store::Store::new().map_err(|e| describe(&e))?;
    let keychain = Keychain {
        service: service.to_string(),
        backend: Backend::Os {
            kind: BackendKind::Keyutils,
            store,
        },
    };
    keychain.probe()?;
    Ok(keychain)
}

/// The kernel keyring, session keyring only: keys are added to the session keyring and
/// never linked into the persistent keyring (unlike linux-keyutils-keyring-store's own
/// store), so they go when the session does.
#[cfg(target_os = "linux")]
fn open_session_keyutils(service: &str) -> std::result::Result<Keychain, String> {
    let store: Arc<keyring_core::CredentialStore> = Arc::new(session_keyring::SessionStore);
    let keychain = Keychain {
        service: service.to_string(),
        backend: Backend::Os {
            kind: BackendKind::Keyutils,
            store,
        },
    };
    keychain.probe()?;
    Ok(keychain)
}

#[cfg(target_os = "linux")]
mod session_keyring {
    use keyring_core::api::{CredentialPersistence, CredentialStoreApi};
    use keyring_core::{Entry, Result};
    use linux_keyutils::{KeyRing, KeyRingIdentifier};
    use linux_keyutils_keyring_store::Cred;
    use std::collections::HashMap;
    use std::sync::Arc;

    /// Builds keyutils entries on the session keyring alone. The descriptions are the
    /// store's own (`keyring:NAME@SERVICE`), so `keyctl` and the regular store find the
    /// same keys within the session.
    #[derive(Debug)]
    pub(super) struct SessionStore;

    impl CredentialStoreApi for SessionStore {
        fn vendor(&self) -> String {
            "Linux keyutils, session keyring only (accessdesk)".into()
        }

        fn id(&self) -> String {
            "accessdesk session keyring".into()
        }

        fn build(
            &self,
            service: &str,
            user: &str,
            _modifiers: Option<&HashMap<&str, &str>>,
        ) -> Result<Entry> {
            let session = KeyRing::from_special_id(KeyRingIdentifier::Session, false)
                .map_err(|e| keyring_core::Error::NoStorageAccess(Box::new(e)))?;
            let cred = Cred {
                session,
                persistent: None,
                description: format!("keyring:{user}@{service}"),
                specifiers: Some((service.to_string(), user.to_string())),
            };
            Ok(Entry::new_with_credential(Arc::new(cred)))
        }

        fn as_any(&self) -> &dyn std::any::Any {
            self
        }

        fn persistence(&self) -> CredentialPersistence {
            CredentialPersistence::UntilLogout
        }
    }
}

#[cfg(target_os = "linux")]
fn open_secret_service(service: &str) -> std::result::Result<Keychain, String> {
    check_default_collection()?;
    let store: Arc<keyring_core::CredentialStore> =
        zbus_secret_service_keyring_store::Store::new().map_err(|e| describe(&e))?;
    let keychain = Keychain {
        service: service.to_string(),
        backend: Backend::Os {
            kind: BackendKind::SecretService,
            store,
        },
    };
    keychain.probe()?;
    Ok(keychain)
}

/// The store writes new items into the default collection. A service that is running but
/// has no default collection, or has it locked, answers reads ("no entry") and then fails
/// every write, and a headless process cannot answer its unlock prompt; so it does not count
/// as usable, and `auto` moves on to the kernel keyring.
#[cfg(target_os = "linux")]
fn check_default_collection() -> std::result::Result<(), String> {
    use secret_service::EncryptionType;
    use secret_service::blocking::SecretService;
    let ss = SecretService::connect(EncryptionType::Plain).map_err(|e| e.to_string())?;
    let collection = ss
        .get_default_collection()
        .map_err(|e| format!("no default collection ({e})"))?;
    match collection.is_locked() {
        Ok(false) => Ok(()),
        Ok(true) => Err("the default collection is locked".into()),
        Err(e) => Err(format!(
            "cannot tell whether the default collection is locked ({e})"
        )),
    }
}

#[cfg(not(target_os = "linux"))]
fn open_keyutils(_service: &str) -> std::result::Result<Keychain, String> {
    Err("the kernel keyring exists only on Linux".into())
}

#[cfg(not(target_os = "linux"))]
fn open_session_keyutils(_service: &str) -> std::result::Result<Keychain, String> {
    Err("the kernel keyring exists only on Linux".into())
}

#[cfg(not(target_os = "linux"))]
fn open_secret_service(_service: &str) -> std::result::Result<Keychain, String> {
    Err("this build has no Secret Service store for this platform".into())
}

fn lock(
    map: &Mutex<HashMap<String, Secret>>,
) -> std::sync::MutexGuard<'_, HashMap<String, Secret>> {
    // A panic while holding the lock cannot leave a HashMap half-updated in a way that
    // matters here, so a poisoned lock is used as is.
    map.lock().unwrap_or_else(|p| p.into_inner())
}

/// Service namespaces follow the secret-name rules, so that the kernel keyring's
/// `keyring:NAME@SERVICE` description stays unambiguous.
fn valid_service(service: &str) -> bool {
    valid_name(service)
}

fn service_name_hint() -> String {
    format!(
        "set {ENV_SERVICE} to 1-128 ASCII letters, digits, '.', '-', '_' and '/' (or unset it for {DEFAULT_SERVICE:?})"
    )
}

/// Describe a store error without anything that could hold secret material: the
/// `BadEncoding` and `BadDataFormat` variants carry the stored bytes, and `Ambiguous`
/// carries entries, so none of them is formatted.
fn describe(e: &keyring_core::Error) -> String {
    use keyring_core::Error as K;
    match e {
        K::NoEntry => "no such entry".into(),
        K::NoStorageAccess(err) => format!("cannot access the store: {err}"),
        K::PlatformFailure(err) => format!("platform failure: {err}"),
        K::BadEncoding(_) => "the stored value is not valid UTF-8".into(),
        K::BadDataFormat(..) => "the stored value is malformed".into(),
        K::BadStoreFormat(reason) => format!("the store is malformed: {reason}"),
        K::TooLong(attr, limit) => format!("{attr} is longer than the store's limit of {limit}"),
        K::Invalid(attr, reason) => format!("{attr} is invalid: {reason}"),
        K::Ambiguous(entries) => format!("{} entries match", entries.len()),
        K::NoDefaultStore => "no credential store is configured".into(),
        K::NotSupportedByStore(what) => format!("not supported by this store: {what}"),
        _ => "unexpected keychain error".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALUE: &str = "sk-unit-7f3a9c0e5b";

    fn no_env(_: &str) -> Option<OsString> {
        None
    }

    #[test]
    fn memory_round_trip_and_remove() {
        let k = Keychain::memory("accessdesk-unit");
        assert_eq!(k.backend_name(), "memory");
        assert_eq!(k.lookup("a").unwrap(), None);
        k.set("a", &Secret::new(VALUE)).unwrap();
        assert_eq!(k.get("a").unwrap().expose(), VALUE);
        // Clones share the store.
        assert_eq!(k.clone().get("a").unwrap().expose(), VALUE);
        assert!(k.remove("a").unwrap());
        assert!(!k.remove("a").unwrap());
        assert!(k.get("a").is_err());
    }

    #[test]
    fn missing_entry_names_entry_backend_and_fix() {
        let k = Keychain::memory(DEFAULT_SERVICE);
        let e = k.get("okta-prod").unwrap_err();
        let text = format!("{e} {}", e.hint().unwrap_or(""));
        assert!(text.contains("okta-prod"), "{text}");
        assert!(text.contains("memory"), "{text}");
        assert!(text.contains("accessdesk secret set okta-prod"), "{text}");
        assert_eq!(e.exit_code(), 1);

        let k = Keychain::memory("accessdesk-demo");
        let e = k.get("x").unwrap_err();
        assert!(
            e.hint()
                .unwrap_or("")
                .contains("ACCESSDESK_KEYRING_SERVICE=accessdesk-demo accessdesk secret set x")
        );
    }

    #[test]
    fn resolve_reads_keychain_and_environment() {
        let k = Keychain::memory("accessdesk-unit");
        k.set("gh", &Secret::new(VALUE)).unwrap();
        let r = k
            .resolve_with(&CredentialRef::Keyring("gh".into()), no_env)
            .unwrap();
        assert_eq!(r.expose(), VALUE);

        let env = |v: &str| (v == "TOKEN").then(|| OsString::from(VALUE));
        let r = k
            .resolve_with(&CredentialRef::Env("TOKEN".into()), env)
            .unwrap();
        assert_eq!(r.expose(), VALUE);
    }

    #[test]
    fn resolve_errors_never_contain_the_value() {
        let k = Keychain::memory("accessdesk-unit");
        k.set("present", &Secret::new(VALUE)).unwrap();
        let env = |v: &str| match v {
            "EMPTY" => Some(OsString::new()),
            _ => None,
        };
        for (cred, expect) in [
            (CredentialRef::Keyring("absent".into()), "absent"),
            (CredentialRef::Env("UNSET".into()), "UNSET is not set"),
            (CredentialRef::Env("EMPTY".into()), "EMPTY is set but empty"),
        ] {
            let e = k.resolve_with(&cred, env).unwrap_err();
            let text = format!("{e} | {e:?} | {}", e.hint().unwrap_or(""));
            assert!(text.contains(expect), "{text}");
            assert!(!text.contains(VALUE), "{text}");
            assert!(matches!(e, Error::Secret { .. }));
        }
    }

    #[cfg(unix)]
    #[test]
    fn non_utf8_environment_value_is_an_error_without_the_bytes() {
        use std::os::unix::ffi::OsStringExt;
        let k = Keychain::memory("accessdesk-unit");
        let env = |_: &str| Some(OsString::from_vec(b"sk-\xff-bytes".to_vec()));
        let e = k
            .resolve_with(&CredentialRef::Env("BIN".into()), env)
            .unwrap_err();
        let text = format!("{e} {e:?}");
        assert!(text.contains("not valid UTF-8"), "{text}");
        assert!(!text.contains("bytes"), "{text}");
    }

    #[test]
    fn set_rejects_bad_names_and_empty_values() {
        let k = Keychain::memory("accessdesk-unit");
        assert_eq!(
            k.set("bad name", &Secret::new(VALUE))
                .unwrap_err()
                .exit_code(),
            2
        );
        let e = k.set("ok", &Secret::new("")).unwrap_err();
        assert!(e.to_string().contains("empty"));
        assert_eq!(k.lookup("ok").unwrap(), None);
    }

    #[test]
    fn env_selection_parses_and_validates() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| OsString::from(v))
            }
        };
        let k = Keychain::from_env_with(env(&[
            (ENV_BACKEND, "memory"),
            (ENV_SERVICE, "accessdesk-demo"),
        ]))
        .unwrap();
        assert_eq!(k.backend(), BackendKind::Memory);
        assert_eq!(k.service(), "accessdesk-demo");

        let k = Keychain::from_env_with(env(&[(ENV_BACKEND, "memory")])).unwrap();
        assert_eq!(k.service(), DEFAULT_SERVICE);

        let e = Keychain::from_env_with(env(&[(ENV_BACKEND, "vault")])).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("vault"));

        let e = Keychain::from_env_with(env(&[(ENV_BACKEND, "memory"), (ENV_SERVICE, "a@b")]))
            .unwrap_err();
        assert_eq!(e.exit_code(), 2);
    }

    #[test]
    fn session_keychains_never_use_the_secret_service_and_honour_memory() {
        let env = |backend: &'static str| {
            move |k: &str| (k == ENV_BACKEND).then(|| OsString::from(backend))
        };
        let (k, why) = Keychain::session_or_memory_with("accessdesk-demo", env("memory"));
        assert_eq!((k.backend(), why.is_none()), (BackendKind::Memory, true));
        let (k, why) = Keychain::session_or_memory_with("accessdesk-demo", env("secret-service"));
        assert_eq!(k.backend(), BackendKind::Memory);
        let why = why.expect("a reason").to_string();
        assert!(
            why.contains("secret-service") && why.contains("on disk"),
            "{why}"
        );
        let (k, why) = Keychain::session_or_memory_with("accessdesk-demo", env("vault"));
        assert_eq!(k.backend(), BackendKind::Memory);
        assert!(why.expect("a reason").to_string().contains("vault"));
        assert_eq!(k.service(), "accessdesk-demo");
    }

    #[test]
    fn describe_never_formats_stored_bytes() {
        let bytes = VALUE.as_bytes().to_vec();
        for e in [
            keyring_core::Error::BadEncoding(bytes.clone()),
            keyring_core::Error::BadDataFormat(bytes, "bad".into()),
        ] {
            assert!(!describe(&e).contains(VALUE));
        }
    }
}

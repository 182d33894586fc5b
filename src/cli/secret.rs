//! `accessdesk secret set|get|rm|list`.
//!
//! Values enter only through a no-echo prompt or stdin (never argv), and leave only through
//! `secret get --reveal`. The database keeps names, backends and dates (the secrets index),
//! and the audit log records each set and removal by name.

use super::{Ctx, SecretCmd};
use crate::secrets::{BackendKind, Keychain, Secret, check_name};
use crate::store::secrets_index::SecretIndexRow;
use crate::{Error, Result};
use std::io::{IsTerminal, Read};

/// Longest value accepted on stdin. Credentials are tokens and keys, not files.
const MAX_VALUE_BYTES: u64 = 64 * 1024;

pub fn run(ctx: &Ctx, cmd: SecretCmd) -> Result<i32> {
    match cmd {
        SecretCmd::Set { name } => set(ctx, &name),
        SecretCmd::Get { name, reveal } => get(ctx, &name, reveal),
        SecretCmd::Rm { name } => rm(ctx, &name),
        SecretCmd::List => list(ctx),
    }
}

fn set(ctx: &Ctx, name: &str) -> Result<i32> {
    check_name(name)?;
    let mut store = ctx.store()?;
    // Open the keychain before asking for the value, so a missing keychain is reported
    // before anyone types a secret.
    let keychain = Keychain::from_env()?;
    if keychain.backend() == BackendKind::Memory {
        return Err(Error::usage(
            format!("the memory keychain would forget {name} as soon as this command exits"),
            "use ACCESSDESK_KEYCHAIN=keyutils (under `keyctl session -`), secret-service or auto",
        ));
    }
    let value = read_value(name)?;
    keychain.set(name, &value)?;
    drop(value);
    let backend = keychain.backend_name();
    store.write(|tx| tx.record_secret_set(name, backend, &actor()))?;
    if ctx.json {
        ctx.print_json(&serde_json::json!({
            "name": name,
            "backend": backend,
            "service": keychain.service(),
            "stored": true,
        }))?;
    } else {
        println!("stored {name} in {backend}");
    }
    Ok(0)
}

fn get(ctx: &Ctx, name: &str, reveal: bool) -> Result<i32> {
    check_name(name)?;
    let store = ctx.store()?;
    let row = index_row(&store.secrets_index()?, name);
    let keychain = Keychain::from_env()?;
    let Some(value) = keychain.lookup(name)? else {
        return Err(missing(&keychain, name, row.as_ref()));
    };
    if reveal {
        if ctx.json {
            ctx.print_json(&serde_json::json!({"name": name, "value": value.expose()}))?;
        } else {
            println!("{}", value.expose());
        }
        return Ok(0);
    }
    drop(value);
    if ctx.json {
        ctx.print_json(&serde_json::json!({
            "name": name,
            "set": true,
            "backend": keychain.backend_name(),
            "service": keychain.service(),
            "indexed": row,
        }))?;
        return Ok(0);
    }
    match &row {
        Some(r) => println!(
            "{name} is set in {} (service {}), stored {}",
            keychain.backend_name(),
            keychain.service(),
            local_time(&r.set_at)
        ),
        None => println!(
            "{name} is set in {} (service {}), but not in accessdesk's index (stored by another tool?)",
            keychain.backend_name(),
            keychain.service()
        ),
    }
    if let Some(r) = row
        .as_ref()
        .filter(|r| r.backend != keychain.backend_name())
    {
        eprintln!(
            "note: the index says {name} was stored in {}; this command read {}",
            r.backend,
            keychain.backend_name()
        );
    }
    Ok(0)
}

fn rm(ctx: &Ctx, name: &str) -> Result<i32> {
    check_name(name)?;
    let mut store = ctx.store()?;
    let row = index_row(&store.secrets_index()?, name);
    let keychain = Keychain::from_env()?;
    let removed = keychain.remove(name)?;
    if !removed && row.is_none() {
        return Err(Error::Secret {
            name: name.to_string(),
            message: format!(
                "nothing to remove: not in the {} keychain (service {}) nor in accessdesk's index",
                keychain.backend_name(),
                keychain.service()
            ),
            hint: "`accessdesk secret list` shows the stored names".into(),
        });
    }
    store.write(|tx| tx.record_secret_removed(name, &actor()))?;
    let backend = keychain.backend_name();
    if ctx.json {
        ctx.print_json(&serde_json::json!({
            "name": name,
            "backend": backend,
            "removed_from_keychain": removed,
            "removed_from_index": row.is_some(),
        }))?;
    } else if !removed {
        println!("{name} was not in {backend}; removed it from the index");
    } else if row.is_none() {
        println!("removed {name} from {backend} (it was not in the index)");
    } else {
        println!("removed {name} from {backend}");
    }
    Ok(0)
}

fn list(ctx: &Ctx) -> Result<i32> {
    let rows = ctx.store()?.secrets_index()?;
    if ctx.json {
        ctx.print_json(&rows)?;
        return Ok(0);
    }
    if rows.is_empty() {
        println!("no secrets stored (add one with `accessdesk secret set NAME`)");
        return Ok(0);
    }
    let width = rows.iter().map(|r| r.name.len()).max().unwrap_or(0).max(4);
    println!("{:<width$}  {:<14}  STORED", "NAME", "BACKEND");
    for r in &rows {
        println!(
            "{:<width$}  {:<14}  {}",
            r.name,
            r.backend,
            local_time(&r.set_at)
        );
    }
    Ok(0)
}

fn index_row(rows: &[SecretIndexRow], name: &str) -> Option<SecretIndexRow> {
    rows.iter().find(|r| r.name == name).cloned()
}

/// The error for a name the keychain does not hold, with what the index knows about it.
fn missing(keychain: &Keychain, name: &str, row: Option<&SecretIndexRow>) -> Error {
    let base = keychain.not_found(name);
    let Some(r) = row else { return base };
    let (message, hint) = match base {
        Error::Secret { message, hint, .. } => (message, hint),
        other => (other.to_string(), String::new()),
    };
    let message = format!(
        "{message}; the index says it was stored in {} on {}",
        r.backend,
        local_time(&r.set_at)
    );
    let hint = if r.backend != keychain.backend_name() {
        format!("read it with ACCESSDESK_KEYCHAIN={}, or {hint}", r.backend)
    } else {
        hint
    };
    Error::Secret {
        name: name.to_string(),
        message,
        hint,
    }
}

/// Read the value: a no-echo prompt on a terminal, else stdin (one line, the trailing
/// newline removed).
fn read_value(name: &str) -> Result<Secret> {
    let stdin = std::io::stdin();
    let raw = if stdin.is_terminal() {
        rpassword::prompt_password(format!("value for {name} (not echoed): "))
            .map_err(|e| Error::io("reading the value from the terminal", e))?
    } else {
        let mut buf = Vec::new();
        stdin
            .lock()
            .take(MAX_VALUE_BYTES + 1)
            .read_to_end(&mut buf)
            .map_err(|e| Error::io("reading the value from stdin", e))?;
        if buf.len() as u64 > MAX_VALUE_BYTES {
            return Err(Error::usage(
                format!("the value on stdin is longer than {MAX_VALUE_BYTES} bytes"),
                "a credential is one line: a token, key or password",
            ));
        }
        String::from_utf8(buf)
            .map_err(|_| Error::usage("the value on stdin is not valid UTF-8", ""))?
    };
    let value = raw
        .strip_suffix('\n')
        .map(|v| v.strip_suffix('\r').unwrap_or(v))
        .unwrap_or(&raw);
    if value.contains('\n') {
        return Err(Error::usage(
            format!("the value for {name} has more than one line"),
            "a credential is one line; store multi-line keys base64-encoded",
        ));
    }
    if value.is_empty() {
        return Err(Error::usage(
            format!("empty value for {name}; nothing stored"),
            format!(
                "pipe the value on stdin (e.g. `accessdesk secret set {name} < token.txt`) or run in a terminal to be prompted"
            ),
        ));
    }
    Ok(Secret::new(value))
}

/// `cli:$USER`, or `cli` when USER is unset.
fn actor() -> String {
    match std::env::var("USER") {
        Ok(u) if !u.is_empty() => format!("cli:{u}"),
        _ => "cli".to_string(),
    }
}

/// An RFC 3339 UTC timestamp from the store, shown in local time.
fn local_time(rfc3339: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .map(|t| {
            t.with_timezone(&chrono::Local)
                .format("%Y-%m-%d %H:%M %Z")
                .to_string()
        })
        .unwrap_or_else(|_| rfc3339.to_string())
}

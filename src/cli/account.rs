//! `accessdesk account link|unlink|conflicts|logins`: settle which account in a system is
//! whose. Linking reads the account from the target first, and refuses one that carries
//! another person's HR id unless forced with a reason.

use super::{AccountCmd, Ctx, actor};
use crate::adapters::RemoteAccount;
use crate::store::access::AccountRow;
use crate::{Error, Result};

pub fn run(ctx: &Ctx, cmd: AccountCmd) -> Result<i32> {
    match cmd {
        AccountCmd::Link {
            system,
            account,
            person,
            force,
            reason,
        } => link(ctx, &system, &account, &person, force, reason),
        AccountCmd::Unlink {
            system,
            account,
            reason,
        } => unlink(ctx, &system, &account, &reason),
        AccountCmd::Conflicts { all } => conflicts(ctx, all),
    }
}

/// Read the account from the target: by login, else by the vendor's id.
fn read_remote(ctx: &Ctx, system: &str, account: &str) -> Result<RemoteAccount> {
    let (adapter, rt) = super::one_adapter(ctx, system)?;
    let found = rt.block_on(async {
        match adapter.get_account_by_login(account).await? {
            Some(a) => Ok(Some(a)),
            None => adapter.get_account(account).await,
        }
    });
    match found {
        Ok(Some(a)) => Ok(a),
        Ok(None) => Err(Error::usage(
            format!("{system} has no account {account:?} (looked up by login and by id)"),
            "check the spelling; `accessdesk account conflicts` lists the accounts in conflict",
        )),
        Err(e) => Err(Error::Failed(format!(
            "reading {account:?} from {system}: {e}"
        ))),
    }
}

fn link(
    ctx: &Ctx,
    system: &str,
    account: &str,
    person: &str,
    force: bool,
    reason: Option<String>,
) -> Result<i32> {
    let reason = reason.filter(|r| !r.trim().is_empty());
    if force && reason.is_none() {
        return Err(Error::usage(
            "--force needs --reason",
            "say why this account is the person's although it carries another HR id",
        ));
    }
    let mut store = ctx.store()?;
    let p = store.find_person(person)?.ok_or_else(|| {
        Error::usage(
            format!("no person {person:?}"),
            "give an HRIS id or work e-mail",
        )
    })?;
    let remote = read_remote(ctx, system, account)?;
    if let Some(owner) = remote.hris_id.as_deref()
        && owner != p.hris_id
        && !force
    {
        return Err(Error::usage(
            format!(
                "{system} account {} carries the HR id {owner}, not {}'s ({}); refusing to link it",
                remote.login, p.hris_id, p.email
            ),
            "if it really is theirs, repeat with --force --reason \"...\"",
        ));
    }
    if let Some(existing) = store.account_for(system, &p.hris_id)?
        && existing.external_id.as_deref() != Some(remote.external_id.as_str())
        && !force
    {
        return Err(Error::usage(
            format!(
                "{} already has account {} in {system}; linking {} would give them two",
                p.hris_id, existing.login, remote.login
            ),
            "unlink the other first (`accessdesk account unlink`), or repeat with --force --reason",
        ));
    }
    if let Some(known) = store.find_account(system, &remote.login)?
        && let Some(holder) = known.person_id.as_deref()
        && holder != p.hris_id
        && !force
    {
        return Err(Error::usage(
            format!("{system} account {} is linked to {holder}", remote.login),
            "unlink it first, or repeat with --force --reason",
        ));
    }
    let why = reason.unwrap_or_else(|| "linked by an admin".to_string());
    let row = AccountRow {
        system: system.to_string(),
        person_id: Some(p.hris_id.clone()),
        login: remote.login.clone(),
        external_id: Some(remote.external_id.clone()),
        active: remote.active,
    };
    let who = actor();
    store.write(|tx| tx.link_account(&row, &p.hris_id, &why, force, &who))?;
    if ctx.json {
        ctx.print_json(&serde_json::json!({
            "system": system, "account": remote.login, "external_id": remote.external_id,
            "person": p.hris_id, "forced": force, "account_hris_id": remote.hris_id,
        }))?;
    } else {
        println!(
            "linked {system} account {} ({}) to {} <{}>{}",
            remote.login,
            remote.external_id,
            p.hris_id,
            p.email,
            if force { " (forced)" } else { "" }
        );
        if remote.hris_id.is_none() {
            println!(
                "  the account carries no HR id yet; the next update of {} writes it",
                p.hris_id
            );
        }
    }
    Ok(0)
}

fn unlink(ctx: &Ctx, system: &str, account: &str, reason: &str) -> Result<i32> {
    if reason.trim().is_empty() {
        return Err(Error::usage(
            "unlink needs --reason",
            "say why the account is not the person's",
        ));
    }
    let mut store = ctx.store()?;
    let row = store.find_account(system, account)?.ok_or_else(|| {
        Error::usage(
            format!("no known {system} account {account:?}"),
            "give the login or the vendor's id as `accessdesk people show` lists it",
        )
    })?;
    if row.person_id.is_none() {
        return Err(Error::usage(
            format!("{system} account {} is not linked to anyone", row.login),
            "",
        ));
    }
    let who = actor();
    store.write(|tx| tx.unlink_account(&row, reason, &who))?;
    if ctx.json {
        ctx.print_json(
            &serde_json::json!({"system": system, "account": row.login, "person": row.person_id}),
        )?;
    } else {
        println!(
            "unlinked {system} account {} from {}",
            row.login,
            row.person_id.as_deref().unwrap_or("-")
        );
    }
    Ok(0)
}

fn conflicts(ctx: &Ctx, all: bool) -> Result<i32> {
    let store = ctx.store()?;
    let rows = store.identity_conflicts(all)?;
    if ctx.json {
        ctx.print_json(&rows)?;
        return Ok(0);
    }
    if rows.is_empty() {
        println!("no identity conflicts");
        return Ok(0);
    }
    for c in &rows {
        println!(
            "{:<12} {:<28} wanted by {:<10} account {:<24} {}{}",
            c.system,
            c.login,
            c.person_id,
            c.external_id.as_deref().unwrap_or("-"),
            match &c.owner_hris_id {
                Some(h) => format!("carries HR id {h}"),
                None => "carries no HR id".to_string(),
            },
            c.resolution
                .as_deref()
                .map(|r| format!("  [resolved: {r}]"))
                .unwrap_or_default()
        );
    }
    Ok(0)
}

//! Identity before access: an existing account is a person's only when the target proves
//! it, and a person's login is assigned once.
//!
//! **Proof.** An account in a target belongs to a person when
//! - it carries their HR id (the IAM tag, the Okta profile attribute, SCIM `externalId` or
//!   the enterprise `employeeNumber`, an Identity Store `ExternalIds` entry), or
//! - accessdesk's own record says it created it for them: the account row linked to them
//!   with the same external id, or, on a target that cannot hold an HR id, the create we
//!   recorded sending for exactly that login.
//!
//! An account carrying another person's HR id, or none without our record, is never
//! adopted: the create fails with [`ErrorClass::IdentityConflict`] naming both sides, the
//! conflict is stored (`accessdesk account conflicts`) and nothing is attached to it.
//!
//! **Logins.** The first create for a person in a system assigns their login there: the
//! system's template (model/login.rs) rendered, then the first of `login`, `login2`, ...
//! that no other person holds in the store (leavers' logins stay reserved), claimed in the
//! same transaction that claims the create. The create is then sent; "already exists" is
//! read back: an account that proves it is theirs (a rehire whose record was lost, or a
//! retry whose answer was lost) is adopted; a hand-made one is reported as a conflict,
//! left untouched, and the person moves to the next free candidate (their create made
//! nothing under the first). The assigned login is stored and never recomputed, so later
//! name changes never move anyone onto another account.

use super::workers::{Engine, SystemRuntime};
use crate::adapters::{AdapterError, ErrorClass, RemoteAccount};
use crate::model::login::{LoginTemplate, login_key, with_suffix};
use crate::model::{Person, SystemKind};
use crate::store::Tx;
use crate::store::identity::Holder;
use crate::store::identity::LoginRow;
use crate::store::queue::OpRow;

/// How many suffixed candidates are tried before giving up on a login.
pub(crate) const MAX_SUFFIX: u32 = 100;

/// Whose an existing account is, as far as the target proves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Proof {
    /// It carries the person's HR id, or we recorded creating it for them.
    Theirs,
    /// It carries another person's HR id (Some) or none (None).
    NotTheirs(Option<String>),
}

/// Decide from what the target says (`acc`) and what we recorded (`ours`).
pub fn prove(acc: &RemoteAccount, person: &str, ours: bool) -> Proof {
    match acc.hris_id.as_deref() {
        Some(h) if h == person => Proof::Theirs,
        Some(h) => Proof::NotTheirs(Some(h.to_string())),
        None if ours => Proof::Theirs,
        None => Proof::NotTheirs(None),
    }
}

fn transient(op: &OpRow, e: impl std::fmt::Display) -> AdapterError {
    AdapterError::new(ErrorClass::Transient, &op.system, e.to_string())
}

impl Engine {
    /// Whether accessdesk's own record says it created `acc` for the op's person.
    pub(crate) fn created_by_us(
        &self,
        op: &OpRow,
        rt: &SystemRuntime,
        acc: &RemoteAccount,
    ) -> Result<bool, AdapterError> {
        let (linked, login) = self
            .db(|s| {
                Ok((
                    s.account_for(&op.system, &op.person_id)?,
                    s.login_of(&op.system, &op.person_id)?,
                ))
            })
            .map_err(|e| transient(op, e))?;
        if linked.is_some_and(|a| a.external_id.as_deref() == Some(acc.external_id.as_str())) {
            return Ok(true);
        }
        // Only where the target cannot carry the HR id: there, a missing HR id says nothing.
        Ok(!rt.adapter.stores_hris_id()
            && login.is_some_and(|l| {
                l.create_sent_at.is_some() && l.login.eq_ignore_ascii_case(&acc.login)
            }))
    }

    /// Accept `acc` as the op's person's account, or refuse it with an identity conflict
    /// (stored and audited; nothing is attached to the account).
    pub(crate) fn require_proof(
        &self,
        op: &OpRow,
        rt: &SystemRuntime,
        acc: RemoteAccount,
    ) -> Result<RemoteAccount, AdapterError> {
        let ours = self.created_by_us(op, rt, &acc)?;
        match prove(&acc, &op.person_id, ours) {
            Proof::Theirs => Ok(acc),
            Proof::NotTheirs(owner) => Err(self.conflict(op, &acc, owner)),
        }
    }

    /// Store and audit a conflict; the error names both sides.
    fn conflict(&self, op: &OpRow, acc: &RemoteAccount, owner: Option<String>) -> AdapterError {
        let actor = self.cfg.actor.clone();
        let _ = self.db(|s| {
            s.write(|tx| {
                tx.record_identity_conflict(
                    &op.system,
                    &op.person_id,
                    &acc.login,
                    Some(&acc.external_id),
                    owner.as_deref(),
                    &actor,
                )
            })
        });
        let whose = match &owner {
            Some(h) => format!("it carries the HR id of {h}"),
            None => "it carries no HR id and accessdesk did not create it".to_string(),
        };
        AdapterError::new(
            ErrorClass::IdentityConflict,
            &op.system,
            format!(
                "{} needs login {:?} in {}, but account {} already has it and {whose}; nothing was attached to it (settle it with `accessdesk account link {} {} {}` if it is theirs)",
                op.person_id, acc.login, op.system, acc.external_id, op.system, acc.login, op.person_id
            ),
        )
        .with_code("identity_conflict")
    }

    /// In the transaction that claims a create (engine/workers/scheduler.rs `dispatch`): the login
    /// to create `person`'s account in `system` under. Theirs if one was assigned before;
    /// else the first of the template's candidates that no other person holds (leavers'
    /// logins stay reserved) and that no unproven account in the target is known to hold
    /// (an open identity conflict), claimed now. None when every candidate is taken.
    ///
    /// On targets that store the HR id our record of sending the create is written here
    /// too (it is only a record there; the HR id on the account is the proof). Where the
    /// target cannot hold an HR id it is the proof, so the worker writes it just before
    /// the request goes out.
    pub(crate) fn assign_login_in(
        &self,
        tx: &mut Tx<'_>,
        system: &str,
        person: &Person,
    ) -> crate::Result<Option<LoginRow>> {
        if let Some(row) = tx.login_of(system, &person.hris_id)? {
            return Ok(Some(row));
        }
        let Some(rt) = self.runtime_of(system) else {
            return Ok(None);
        };
        let template = self
            .catalog
            .systems
            .get(system)
            .map(|e| e.login.clone())
            .unwrap_or_else(|| LoginTemplate::default_for(rt.kind));
        let base = template.render(person, rt.kind);
        let actor = self.cfg.actor.as_str();
        for n in 1..=MAX_SUFFIX {
            let candidate = with_suffix(rt.kind, &base, n);
            if tx
                .login_holder(system, &candidate, &person.hris_id)?
                .is_some()
                || tx.login_in_conflict(system, &candidate)?
            {
                continue;
            }
            if tx
                .claim_login(system, &person.hris_id, &candidate, actor)?
                .is_some()
            {
                if rt.adapter.stores_hris_id() {
                    tx.mark_create_sent(system, &person.hris_id)?;
                }
                return tx.login_of(system, &person.hris_id);
            }
        }
        Ok(None)
    }

    /// The target holds an account under `login` that is not the op's person's (the
    /// conflict is already stored): their create made nothing under it, so take the login
    /// back and assign the next free one. Err when none is left.
    pub(crate) fn reassign_login(
        &self,
        op: &OpRow,
        person: &Person,
        login: &str,
    ) -> Result<LoginRow, AdapterError> {
        let actor = self.cfg.actor.clone();
        let why = format!(
            "{login} is held in {} by an account that is not theirs",
            op.system
        );
        self.db(|s| {
            s.write(|tx| {
                tx.release_login(&op.system, &op.person_id, login, &why, &actor)?;
                self.assign_login_in(tx, &op.system, person)
            })
        })
        .map_err(|e| transient(op, e))?
        .ok_or_else(|| no_free_login(op))
    }
}

/// What a person's e-mail change means for their assigned login in one system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginChange {
    /// The login follows the e-mail and the new one is free: rename the account.
    Rename { from: String, to: String },
    /// The login stays as assigned, and why.
    Keep { login: String, why: String },
}

impl LoginChange {
    /// As the plan and the operation show it.
    pub fn describe(&self) -> String {
        match self {
            LoginChange::Rename { from, to } => format!("login: {from:?} -> {to:?}"),
            LoginChange::Keep { login, why } => format!("login stays {login:?}: {why}"),
        }
    }
}

/// Whether `person`'s e-mail change (from `old_email`) renames their `assigned` login in
/// `system`. The planner and the worker both decide here, the worker again just before it
/// sends. None when nothing about the login changes: the e-mail is the same, the template
/// does not use it, the assigned login was not made from the old e-mail (linked by hand,
/// another template), or the template gives the same login. A rename must pass the rules
/// of assignment: no other person holds the new login, and no account nobody owns has it
/// (`holder`, case-insensitive); else the login stays, with the reason.
pub fn login_change(
    system: &str,
    kind: SystemKind,
    template: &LoginTemplate,
    person: &Person,
    old_email: &str,
    assigned: &str,
    holder: impl Fn(&str) -> crate::Result<Option<Holder>>,
) -> crate::Result<Option<LoginChange>> {
    if old_email.trim().eq_ignore_ascii_case(person.email.trim()) || !template.uses_email() {
        return Ok(None);
    }
    let mut before = person.clone();
    before.email = old_email.to_string();
    let was = template.render(&before, kind);
    let key = login_key(assigned);
    if !(1..=MAX_SUFFIX).any(|n| login_key(&with_suffix(kind, &was, n)) == key) {
        return Ok(None);
    }
    let to = template.render(person, kind);
    if login_key(&to) == key {
        return Ok(None);
    }
    let keep = |why: String| {
        Ok(Some(LoginChange::Keep {
            login: assigned.to_string(),
            why,
        }))
    };
    if let Some(why) = kind.rename_refusal() {
        return keep(why.to_string());
    }
    match holder(&to)? {
        Some(Holder::Person(p)) => keep(format!(
            "cannot rename to {to:?}, which {p} holds in {system}"
        )),
        Some(Holder::Unowned) => keep(format!(
            "cannot rename to {to:?}: an account in {system} that is nobody's has it"
        )),
        None => Ok(Some(LoginChange::Rename {
            from: assigned.to_string(),
            to,
        })),
    }
}

/// Every candidate login is taken.
pub(crate) fn no_free_login(op: &OpRow) -> AdapterError {
    AdapterError::new(
        ErrorClass::Permanent,
        &op.system,
        format!(
            "no free login for {} in {}: the template's login and {MAX_SUFFIX} suffixed forms are all taken",
            op.person_id, op.system
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acc(hris: Option<&str>) -> RemoteAccount {
        RemoteAccount {
            external_id: "u1".into(),
            login: "john.smith".into(),
            email: None,
            active: true,
            hris_id: hris.map(str::to_string),
            attributes: Default::default(),
        }
    }

    #[test]
    fn an_email_change_renames_only_a_login_made_from_it() {
        let okta = LoginTemplate::default_for(SystemKind::Okta);
        let ada = Person::new("E1", "Ada", "Lovelace", "ada.lovelace@x.io");
        let free = |_: &str| Ok(None);
        let change = |kind, t: &LoginTemplate, old: &str, assigned: &str| {
            login_change("s", kind, t, &ada, old, assigned, free).unwrap()
        };
        assert_eq!(
            change(SystemKind::Okta, &okta, "ada@x.io", "ada@x.io"),
            Some(LoginChange::Rename {
                from: "ada@x.io".into(),
                to: "ada.lovelace@x.io".into()
            })
        );
        // A suffixed login made from the old e-mail moves too.
        assert!(matches!(
            change(SystemKind::Okta, &okta, "ada@x.io", "ada2@x.io"),
            Some(LoginChange::Rename { .. })
        ));
        // Same e-mail (any case), a login linked by hand, a template without the e-mail.
        assert_eq!(
            change(SystemKind::Okta, &okta, "Ada.Lovelace@x.io", "ada@x.io"),
            None
        );
        assert_eq!(change(SystemKind::Okta, &okta, "ada@x.io", "al@x.io"), None);
        let names: LoginTemplate = "{given}.{family}".parse().unwrap();
        assert_eq!(
            change(SystemKind::Scim, &names, "ada@x.io", "ada.lovelace"),
            None
        );
        // The vendor does not rename: said plainly.
        let iam = LoginTemplate::default_for(SystemKind::AwsIam);
        let keep = change(SystemKind::AwsIam, &iam, "ada@x.io", "ada").unwrap();
        assert!(
            keep.describe().starts_with("login stays \"ada\": AWS IAM"),
            "{keep:?}"
        );
        // Held by another person: the login stays, naming them.
        let held = login_change(
            "s",
            SystemKind::Okta,
            &okta,
            &ada,
            "ada@x.io",
            "ada@x.io",
            |_| Ok(Some(Holder::Person("E2".into()))),
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            held.describe(),
            "login stays \"ada@x.io\": cannot rename to \"ada.lovelace@x.io\", which E2 holds in s"
        );
    }

    #[test]
    fn proof_needs_the_hr_id_or_our_record() {
        assert_eq!(prove(&acc(Some("E1")), "E1", false), Proof::Theirs);
        assert_eq!(
            prove(&acc(Some("E2")), "E1", true),
            Proof::NotTheirs(Some("E2".into())),
            "our record never overrides another person's HR id"
        );
        assert_eq!(prove(&acc(None), "E1", false), Proof::NotTheirs(None));
        assert_eq!(prove(&acc(None), "E1", true), Proof::Theirs);
    }
}

//! Running one claimed operation against its adapter: re-checked against its person
//! first, then create (identity before access), memberships, (de)activation, updates,
//! and an orphan's deactivation.

use super::settle::account_row;
use super::{Attrs, Engine, Known, Moved, Outcome, SystemRuntime};
use crate::adapters::{AccountSpec, AdapterError, EntitlementTarget, ErrorClass, RemoteAccount};
use crate::config::systems::OnLeave;
use crate::engine::identity::LoginChange;
use crate::model::login::LoginTemplate;
use crate::model::{EntitlementRef, OperationKind};
use crate::store::queue::OpRow;
use crate::{Error, Result};

impl Engine {
    fn classify(
        &self,
        r: std::result::Result<Option<(RemoteAccount, Option<Attrs>)>, AdapterError>,
    ) -> Outcome {
        match r {
            Ok(account) => Outcome::Done {
                write_through: true,
                account,
                moved: None,
            },
            // "Already so" answers are the adapters' to settle (adapters::error::
            // already_done): every error that reaches here is one.
            Err(e) if e.class.is_retryable() => Outcome::Retry(e),
            Err(e) => Outcome::Fail(e),
        }
    }

    fn person(&self, op: &OpRow, known: &Known) -> Result<crate::model::Person> {
        known
            .person
            .clone()
            .ok_or_else(|| Error::Failed(format!("person {} is no longer known", op.person_id)))
    }

    pub(super) fn target(
        &self,
        op: &OpRow,
    ) -> std::result::Result<EntitlementTarget, AdapterError> {
        let perm = |m: String| AdapterError::new(ErrorClass::Permanent, &op.system, m);
        let raw = op
            .entitlement
            .as_deref()
            .ok_or_else(|| perm("membership operation without an entitlement".into()))?;
        let r: EntitlementRef = raw.parse().map_err(perm)?;
        Ok(match self.catalog.entitlement(&r.system, r.kind, &r.name) {
            Some(e) => EntitlementTarget::from_entitlement(e, &r.name),
            None => EntitlementTarget {
                kind: r.kind,
                name: r.name.clone(),
                external_id: r.name.clone(),
            },
        })
    }

    /// The person's account in the op's system: from the store, else looked up by their
    /// assigned login and accepted only with proof that it is theirs (engine/identity.rs).
    async fn account(
        &self,
        op: &OpRow,
        rt: &SystemRuntime,
        known: &Known,
    ) -> std::result::Result<Option<String>, AdapterError> {
        if let Some(a) = known.account.as_ref().and_then(|a| a.external_id.clone()) {
            return Ok(Some(a));
        }
        // No login assigned: accessdesk never created an account for them here.
        let Some(login) = &known.login else {
            return Ok(None);
        };
        let Some(found) = rt.adapter.get_account_by_login(&login.login).await? else {
            return Ok(None);
        };
        let acc = self.require_proof(op, rt, found)?;
        self.remember_account(op, &acc)
            .map_err(|e| AdapterError::new(ErrorClass::Transient, &op.system, e.to_string()))?;
        Ok(Some(acc.external_id))
    }

    pub(super) fn remember_account(&self, op: &OpRow, acc: &RemoteAccount) -> Result<()> {
        let row = account_row(op, acc);
        let actor = self.cfg.actor.clone();
        self.db(|s| s.write(|tx| tx.upsert_account(&row, &actor)))?;
        Ok(())
    }

    /// The person shaped for the op's system under `login`, with their manager's account
    /// there where the store knows it.
    fn spec_for(
        &self,
        op: &OpRow,
        rt: &SystemRuntime,
        person: &crate::model::Person,
        login: &str,
    ) -> AccountSpec {
        let mut spec = AccountSpec::for_person(person, rt.kind, login);
        if let Some(m) = person.manager_id.as_deref().filter(|m| !m.is_empty()) {
            // Unknown (or unreadable) leaves the manager out; it never fails the write.
            spec.manager_account = self
                .db(|s| s.account_for(&op.system, m))
                .ok()
                .flatten()
                .and_then(|a| a.external_id);
        }
        spec
    }

    /// The person's assigned login here, and what their e-mail change (since accessdesk
    /// last wrote the account) means for it (engine/identity.rs `login_change`).
    fn login_change(
        &self,
        op: &OpRow,
        rt: &SystemRuntime,
        person: &crate::model::Person,
    ) -> Result<(String, Option<LoginChange>)> {
        let template = self
            .catalog
            .systems
            .get(&op.system)
            .map(|e| e.login.clone())
            .unwrap_or_else(|| LoginTemplate::default_for(rt.kind));
        self.db(|s| {
            let Some(assigned) = s.login_of(&op.system, &op.person_id)? else {
                return Ok((String::new(), None));
            };
            let old_email = s
                .account_attrs(&op.system, &op.person_id)?
                .and_then(|mut a| a.remove("email"));
            let change = match old_email {
                Some(old) => crate::engine::identity::login_change(
                    &op.system,
                    rt.kind,
                    &template,
                    person,
                    &old,
                    &assigned.login,
                    |l| s.login_holder(&op.system, l, &op.person_id),
                )?,
                None => None,
            };
            Ok((assigned.login, change))
        })
    }

    /// Whether the op still makes sense for its person right now: nothing is granted to a
    /// leaver, and nobody who is no longer leaving is deactivated.
    fn still_wanted(&self, op: &OpRow, known: &Known) -> Result<Option<String>> {
        let person = self.person(op, known)?;
        let leaver = person.is_leaver(self.now());
        Ok(if op.kind.grants() && leaver {
            Some(format!(
                "cancelled before it ran: {} is a leaver (status {}{})",
                op.person_id,
                person.status,
                person
                    .end_date
                    .map(|d| format!(", end date {d}"))
                    .unwrap_or_default()
            ))
        } else if op.kind == OperationKind::Deactivate && !leaver {
            Some(format!(
                "cancelled before it ran: {} is no longer leaving (status {}{})",
                op.person_id,
                person.status,
                person
                    .end_date
                    .map(|d| format!(", end date {d}"))
                    .unwrap_or_default()
            ))
        } else {
            None
        })
    }

    pub(super) async fn execute(&self, op: &OpRow, known: Known) -> Result<Outcome> {
        let rt = self.runtime(&op.system)?;
        if op.kind.on_account() {
            return self.deactivate_orphan(op, rt).await;
        }
        if let Some(why) = self.still_wanted(op, &known)? {
            return Ok(Outcome::Cancel(why));
        }
        let mut moved: Option<Moved> = None;
        let r: std::result::Result<Option<(RemoteAccount, Option<Attrs>)>, AdapterError> = async {
            match op.kind {
                // Acts on an account, not a person's: run by `deactivate_orphan`.
                OperationKind::DeactivateOrphan => Err(AdapterError::new(
                    ErrorClass::Permanent,
                    &op.system,
                    "an orphan's deactivation is not a person's operation",
                )),
                OperationKind::CreateAccount => {
                    let person = self.person(op, &known).map_err(|e| {
                        AdapterError::new(ErrorClass::Permanent, &op.system, e.to_string())
                    })?;
                    let (acc, attrs) = self
                        .create(op, rt, &person, known.login.clone(), known.fresh_login)
                        .await?;
                    Ok(Some((acc, attrs)))
                }
                OperationKind::AddMembership | OperationKind::RemoveMembership => {
                    let target = self.target(op)?;
                    let acc = self.account(op, rt, &known).await?.ok_or_else(|| {
                        AdapterError::new(
                            ErrorClass::Permanent,
                            &op.system,
                            format!("{} has no account in {}", op.person_id, op.system),
                        )
                    })?;
                    let res = if op.kind == OperationKind::AddMembership {
                        rt.adapter.add_membership(&acc, &target).await
                    } else {
                        rt.adapter.remove_membership(&acc, &target).await
                    };
                    res.map(|()| None)
                }
                OperationKind::Deactivate | OperationKind::Reactivate => {
                    let Some(acc) = self.account(op, rt, &known).await? else {
                        return if op.kind == OperationKind::Deactivate {
                            Ok(None)
                        } else {
                            Err(AdapterError::new(
                                ErrorClass::NotFound,
                                &op.system,
                                "no account to reactivate",
                            ))
                        };
                    };
                    if op.kind == OperationKind::Deactivate {
                        rt.adapter.deactivate_account(&acc).await?;
                        if self.catalog.on_leave(&op.system) == OnLeave::Delete {
                            if !rt.adapter.capabilities().delete {
                                return Err(AdapterError::unsupported(
                                    &op.system,
                                    "deleting accounts (on_leave = \"delete\"; the account is deactivated)",
                                ));
                            }
                            rt.adapter.delete_account(&acc).await?;
                        }
                        Ok(None)
                    } else {
                        rt.adapter.reactivate_account(&acc).await.map(|()| None)
                    }
                }
                OperationKind::UpdateAttributes => {
                    let person = self.person(op, &known).map_err(|e| {
                        AdapterError::new(ErrorClass::Permanent, &op.system, e.to_string())
                    })?;
                    let acc = self.account(op, rt, &known).await?.ok_or_else(|| {
                        AdapterError::new(ErrorClass::NotFound, &op.system, "no account to update")
                    })?;
                    let change = self.login_change(op, rt, &person).map_err(|e| {
                        AdapterError::new(ErrorClass::Transient, &op.system, e.to_string())
                    })?;
                    let (login, rename, note) = match change {
                        (_, Some(LoginChange::Rename { from, to })) => {
                            (to.clone(), Some((from, to)), None)
                        }
                        (login, Some(keep)) => (login, None, Some(keep.describe())),
                        (login, None) => (login, None, None),
                    };
                    let spec = self.spec_for(op, rt, &person, &login);
                    rt.adapter
                        .update_account(&acc, &spec)
                        .await
                        .map_err(|e| match &rename {
                            // Renaming onto a login the target already has: nothing was
                            // renamed, and it is not "already done".
                            Some((from, to)) if e.class == ErrorClass::Conflict => e.reclassified(
                                ErrorClass::Permanent,
                                format!(
                                    "cannot rename {}'s login in {} from {from:?} to {to:?}: another account there has it ({}); nothing was renamed",
                                    op.person_id, op.system, e.message
                                ),
                            ),
                            _ => e,
                        })?;
                    moved = Some(Moved {
                        attrs: spec.synced_attributes(),
                        renamed: rename,
                        note,
                    });
                    Ok(None)
                }
            }
        }
        .await;
        let mut outcome = self.classify(r);
        if let Outcome::Done { moved: m, .. } = &mut outcome {
            *m = moved;
        }
        // On verified systems the effect is written through now and the operation waits
        // in `verifying`; elsewhere it is written with the success, in one transaction.
        // A create and an update are read back by the call itself (the account the
        // vendor answers with).
        if matches!(outcome, Outcome::Done { .. })
            && rt.verify
            && !matches!(
                op.kind,
                OperationKind::CreateAccount | OperationKind::UpdateAttributes
            )
        {
            self.record_effect(op, None).await?;
            return Ok(Outcome::Verify);
        }
        Ok(outcome)
    }

    /// Deactivate an account no person owns (`op.person_id` is its external id), after
    /// reading it again: one that now proves to be somebody's (it carries the HR id of a
    /// person in HR, or accessdesk links it to one) is left alone, and one already
    /// inactive or gone needs nothing. Never deleted, whatever the leaver policy.
    async fn deactivate_orphan(&self, op: &OpRow, rt: &SystemRuntime) -> Result<Outcome> {
        let id = op.person_id.as_str();
        let found = match rt.adapter.get_account(id).await {
            Ok(f) => f,
            Err(e) => return Ok(self.classify(Err(e))),
        };
        let Some(acc) = found else {
            return Ok(self.classify(Ok(None)));
        };
        let owner = self.db(|s| {
            let by_hris = match acc.hris_id.as_deref().filter(|h| !h.is_empty()) {
                Some(h) => s.has_person(h)?.then(|| h.to_string()),
                None => None,
            };
            Ok(match by_hris {
                Some(p) => Some(p),
                None => s.account_owner_by_external_id(&op.system, id)?,
            })
        })?;
        if let Some(person) = owner {
            return Ok(Outcome::Cancel(format!(
                "cancelled before it ran: account {} ({id}) in {} is no longer an orphan: it belongs to {person}",
                acc.login, op.system
            )));
        }
        if !acc.active {
            return Ok(self.classify(Ok(None)));
        }
        // Never the account accessdesk's own credentials act as (an Okta API token's
        // admin, say): deactivating it would cut every integration off.
        let me = match rt.adapter.authenticate().await {
            Ok(me) => me,
            Err(e) => return Ok(self.classify(Err(e))),
        };
        if is_own_account(&me, &acc) {
            return Ok(Outcome::Cancel(format!(
                "cancelled before it ran: account {} ({id}) in {} is the one accessdesk's own credentials act as; it is never deactivated (accept the finding instead)",
                acc.login, op.system
            )));
        }
        let r = rt.adapter.deactivate_account(id).await.map(|()| None);
        Ok(self.classify(r))
    }

    /// Create the person's account under their assigned login (assigned as the operation
    /// was claimed). On a retry the first attempt may have created it before its answer
    /// was lost, so look first. "Already exists" is read back and adopted only with proof
    /// that it is theirs. Otherwise the conflict is stored and nothing is attached to that
    /// account; under a login assigned by this claim (`fresh`: nothing was ever created
    /// under it for them) the person moves to the next free login, as if the account had
    /// been found before the login was given; under one assigned earlier the operation
    /// fails `identity_conflict` for an admin to settle. Returns the account, with the
    /// attributes it was written with (None when adopted).
    async fn create(
        &self,
        op: &OpRow,
        rt: &SystemRuntime,
        person: &crate::model::Person,
        login: Option<crate::store::identity::LoginRow>,
        fresh: bool,
    ) -> std::result::Result<(RemoteAccount, Option<Attrs>), AdapterError> {
        let mut login = login.ok_or_else(|| crate::engine::identity::no_free_login(op))?;
        // A first attempt was never sent before (attempts are counted when an operation
        // is claimed, before the call; one left running by a crash is settled by
        // `recover`), so it creates straight away.
        let mut look_first = op.attempts > 0;
        for _ in 0..=crate::engine::identity::MAX_SUFFIX {
            let existing = if look_first {
                rt.adapter.get_account_by_login(&login.login).await?
            } else {
                None
            };
            look_first = false;
            let found = match existing {
                Some(a) => a,
                None => {
                    // Our record of creating it goes in before the request where it is the
                    // proof (targets that cannot hold the HR id).
                    if login.create_sent_at.is_none() && !rt.adapter.stores_hris_id() {
                        self.db(|s| s.write(|tx| tx.mark_create_sent(&op.system, &op.person_id)))
                            .map_err(|e| {
                                AdapterError::new(ErrorClass::Transient, &op.system, e.to_string())
                            })?;
                    }
                    let spec = self.spec_for(op, rt, person, &login.login);
                    match rt.adapter.create_account(&spec).await {
                        Ok(a) => return Ok((a, Some(spec.synced_attributes()))),
                        Err(e) if e.class == ErrorClass::Conflict => {
                            match rt.adapter.get_account_by_login(&login.login).await? {
                                Some(a) => a,
                                // "Already exists" but not readable yet (the vendor is
                                // eventually consistent): look again later rather than
                                // count the create as done without knowing the account.
                                None => {
                                    return Err(e.reclassified(
                                        ErrorClass::Transient,
                                        format!(
                                            "{} already exists in {} but cannot be read yet ({}); looking again",
                                            login.login, op.system, e.message
                                        ),
                                    ));
                                }
                            }
                        }
                        Err(e) => return Err(e),
                    }
                }
            };
            match self.require_proof(op, rt, found) {
                Ok(a) => return Ok((a, None)),
                Err(e) if fresh && e.class == ErrorClass::IdentityConflict => {
                    login = self.reassign_login(op, person, &login.login)?;
                }
                Err(e) => return Err(e),
            }
        }
        Err(crate::engine::identity::no_free_login(op))
    }
}

/// Whether `acc` is the account the credentials act as: by login (the principal itself,
/// or the last part of an ARN-like principal, or the user name the adapter reports) or by
/// the vendor's user id.
pub(super) fn is_own_account(me: &crate::adapters::Identity, acc: &RemoteAccount) -> bool {
    let login = acc.login.as_str();
    let same = |s: &str| !s.is_empty() && s.eq_ignore_ascii_case(login);
    same(&me.principal)
        || me
            .principal
            .rsplit_once('/')
            .is_some_and(|(_, tail)| same(tail))
        || me.details.get("user_name").is_some_and(|u| same(u))
        || me
            .details
            .get("user_id")
            .is_some_and(|u| !u.is_empty() && *u == acc.external_id)
}

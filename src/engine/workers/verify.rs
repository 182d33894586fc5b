//! Whether an operation's effect is visible in the target: verification of written
//! operations (`verifying`) and crash recovery of those left `running`.

use super::settle::effect_in_tx;
use super::{Engine, Outcome, parse_ts};
use crate::Result;
use crate::adapters::{AdapterError, ErrorClass};
use crate::model::{OperationKind, OperationStatus};
use crate::store::queue::{Change, OpRow};
use chrono::Utc;

impl Engine {
    /// After a crash: settle operations left `running` by checking the target.
    pub async fn recover(&self) -> Result<usize> {
        let running = self.db(|s| s.ops_with_status(&[OperationStatus::Running], 100_000))?;
        let mut n = 0;
        for op in running {
            let present = self.effect_present(&op).await.unwrap_or_default();
            let actor = self.cfg.actor.clone();
            if present {
                self.record_effect(&op, None).await?;
                self.db(|s| {
                    s.write(|tx| {
                        tx.transition(
                            op.id,
                            &[OperationStatus::Running],
                            OperationStatus::Succeeded,
                            Change {
                                why: Some(
                                    "recovered after a restart: the effect was already in place",
                                ),
                                ..Default::default()
                            },
                            &actor,
                        )
                    })
                })?;
            } else {
                self.db(|s| {
                    s.write(|tx| {
                        tx.transition(
                            op.id,
                            &[OperationStatus::Running],
                            OperationStatus::Queued,
                            Change {
                                why: Some("recovered after a restart: not done yet, retrying"),
                                ..Default::default()
                            },
                            &actor,
                        )
                    })
                })?;
            }
            n += 1;
        }
        Ok(n)
    }

    /// Write through what a successful operation changed, so the next plan sees it.
    pub(super) async fn record_effect(&self, op: &OpRow, _unused: Option<()>) -> Result<()> {
        let actor = self.cfg.actor.clone();
        self.db(|s| s.write(|tx| effect_in_tx(tx, op, &actor)))
    }

    /// Is the operation's effect visible in the target system?
    async fn effect_present(&self, op: &OpRow) -> std::result::Result<bool, AdapterError> {
        let rt = self
            .runtime(&op.system)
            .map_err(|e| AdapterError::new(ErrorClass::Permanent, &op.system, e.to_string()))?;
        if op.kind.on_account() {
            let acc = rt.adapter.get_account(&op.person_id).await?;
            return Ok(acc.is_none_or(|a| !a.active));
        }
        let login = self
            .db(|s| s.login_of(&op.system, &op.person_id))
            .map_err(|e| AdapterError::new(ErrorClass::Transient, &op.system, e.to_string()))?;
        // No login was ever assigned: no create was ever sent, so no account of theirs.
        let acc = match &login {
            Some(l) => match rt.adapter.get_account_by_login(&l.login).await? {
                // Someone else's account under that login is not their effect.
                Some(a) => match self.require_proof(op, rt, a) {
                    Ok(a) => Some(a),
                    Err(e) if e.class == ErrorClass::IdentityConflict => None,
                    Err(e) => return Err(e),
                },
                None => None,
            },
            None => None,
        };
        match op.kind {
            OperationKind::CreateAccount => {
                if let Some(a) = &acc {
                    let _ = self.remember_account(op, a);
                }
                Ok(acc.is_some())
            }
            OperationKind::Deactivate | OperationKind::DeactivateOrphan => {
                Ok(acc.is_none_or(|a| !a.active))
            }
            OperationKind::Reactivate => Ok(acc.is_some_and(|a| a.active)),
            OperationKind::UpdateAttributes => Ok(false),
            OperationKind::AddMembership | OperationKind::RemoveMembership => {
                let Some(a) = acc else {
                    return Ok(op.kind == OperationKind::RemoveMembership);
                };
                let target = self.target(op)?;
                let members = rt.adapter.list_memberships(&a.external_id).await?;
                let has = members.iter().any(|m| {
                    m.kind == target.kind
                        && (m.name == target.name || m.external_id == target.external_id)
                });
                Ok(has == (op.kind == OperationKind::AddMembership))
            }
        }
    }

    pub(super) async fn verify(&self, op: &OpRow) -> Result<Outcome> {
        let until = op
            .verify_until
            .as_deref()
            .and_then(parse_ts)
            .unwrap_or_else(Utc::now);
        match self.effect_present(op).await {
            Ok(true) => Ok(Outcome::Done {
                write_through: false,
                account: None,
                moved: None,
            }),
            Ok(false) | Err(_) if Utc::now() >= until => Ok(Outcome::Fail(AdapterError::new(
                ErrorClass::Permanent,
                &op.system,
                format!(
                    "not observed after {} s",
                    self.cfg.verify_deadline.as_secs()
                ),
            ))),
            _ => Ok(Outcome::LookAgain),
        }
    }
}

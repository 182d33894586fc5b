//! The provisioning side of the Okta adapter.

use super::*;

#[async_trait]
impl Provisioner for OktaAdapter {
    async fn create_account(&self, spec: &AccountSpec) -> AResult<RemoteAccount> {
        let body = json!({ "profile": self.profile(spec) });
        let path = api(&format!("/users?{}", query_string(&[("activate", "true")])));
        // "Already exists" comes back as Conflict; the engine reads the account and
        // decides from its HR id whether it is this person's (engine/identity.rs).
        let resp = self.send(Req::post(path).json(body)).await?;
        Ok(self.account(self.user(&resp)?))
    }

    async fn update_account(
        &self,
        external_id: &str,
        spec: &AccountSpec,
    ) -> AResult<RemoteAccount> {
        let body = json!({ "profile": self.profile(spec) });
        let resp = self
            .send(Req::post(api(&format!("/users/{}", segment(external_id)))).json(body))
            .await?;
        Ok(self.account(self.user(&resp)?))
    }

    async fn deactivate_account(&self, external_id: &str) -> AResult<()> {
        let r = self
            .lifecycle_to(external_id, "deactivate", &["DEPROVISIONED"])
            .await;
        already_done(Edit::Deactivate, r)
    }

    /// Back to active, by the route Okta allows from the current status: `unsuspend` from
    /// SUSPENDED, `activate` from DEPROVISIONED or STAGED, `reactivate` from PROVISIONED or
    /// RECOVERY (which restarts the activation flow). No activation email is sent.
    async fn reactivate_account(&self, external_id: &str) -> AResult<()> {
        let Some(u) = self.get_user(external_id).await? else {
            return Err(self.err(ErrorClass::NotFound, format!("no Okta user {external_id}")));
        };
        let no_email = format!("?{}", query_string(&[("sendEmail", "false")]));
        match u.status.as_str() {
            "SUSPENDED" => {
                self.lifecycle_to(external_id, "unsuspend", ACTIVE_STATUSES)
                    .await
            }
            "DEPROVISIONED" | "STAGED" => self.lifecycle(external_id, "activate", &no_email).await,
            "PROVISIONED" | "RECOVERY" => {
                self.lifecycle(external_id, "reactivate", &no_email).await
            }
            _ => Ok(()),
        }
    }

    async fn suspend_account(&self, external_id: &str) -> AResult<()> {
        self.lifecycle_to(external_id, "suspend", &["SUSPENDED"])
            .await
    }

    /// Okta's PUT is idempotent: adding a member twice answers 204 both times.
    async fn add_membership(&self, account_id: &str, target: &EntitlementTarget) -> AResult<()> {
        let r = self
            .membership(reqwest::Method::PUT, account_id, target)
            .await;
        already_done(Edit::Grant, r)
    }

    async fn remove_membership(&self, account_id: &str, target: &EntitlementTarget) -> AResult<()> {
        let r = self
            .membership(reqwest::Method::DELETE, account_id, target)
            .await;
        already_done(Edit::Revoke, r)
    }
}

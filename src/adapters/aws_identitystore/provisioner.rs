//! The provisioning side of the identity store adapter.

use super::*;

#[async_trait]
impl Provisioner for AwsIdentityStore {
    async fn create_account(&self, spec: &AccountSpec) -> AResult<RemoteAccount> {
        if spec.login.is_empty() || spec.login.chars().count() > 128 {
            return Err(AdapterError::new(
                ErrorClass::Permanent,
                self.system_name(),
                "an identity store UserName must be 1-128 characters",
            ));
        }
        let out: UserIdOut = self
            .call_as("CreateUser", create_user_body(&self.store_id, spec))
            .await?;
        Ok(RemoteAccount {
            external_id: out.user_id,
            login: spec.login.clone(),
            email: Some(spec.email.clone()).filter(|e| !e.is_empty()),
            active: true,
            hris_id: None,
            attributes: synced(
                &spec.email,
                &spec.display_name,
                &spec.given_name,
                &spec.family_name,
                spec.attributes.get("title").map_or("", String::as_str),
            ),
        })
    }

    async fn update_account(
        &self,
        external_id: &str,
        spec: &AccountSpec,
    ) -> AResult<RemoteAccount> {
        let current = self.require_user(external_id).await?;
        let ops = update_operations(spec, &current.user_name);
        if !ops.is_empty() {
            self.call(
                "UpdateUser",
                json!({"UserId": external_id, "Operations": ops}),
            )
            .await?;
        }
        Ok(self.require_user(external_id).await?.to_remote())
    }

    async fn deactivate_account(&self, external_id: &str) -> AResult<()> {
        let r: AResult<()> = async {
            self.require_user(external_id).await?;
            self.remove_all_memberships(external_id).await?;
            if self.mode == DeactivateMode::DeleteUser {
                ok_if_not_found(
                    self.call("DeleteUser", json!({"UserId": external_id}))
                        .await
                        .map(|_| ()),
                )?;
            }
            Ok(())
        }
        .await;
        already_done(Edit::Deactivate, r)
    }

    async fn reactivate_account(&self, external_id: &str) -> AResult<()> {
        match (self.describe_user(external_id).await?, self.mode) {
            (Some(_), _) => Ok(()),
            (None, DeactivateMode::DeleteUser) => Err(AdapterError::new(
                ErrorClass::Permanent,
                self.system_name(),
                format!(
                    "identity store user {external_id} was deleted on deactivation \
                     (deactivate = \"delete_user\") and cannot be reactivated; create the account again"
                ),
            )),
            (None, DeactivateMode::RemoveMemberships) => Err(AdapterError::new(
                ErrorClass::NotFound,
                self.system_name(),
                format!("identity store user {external_id} does not exist"),
            )),
        }
    }

    /// Remove the memberships, then `DeleteUser`; a user already gone counts as deleted.
    async fn delete_account(&self, external_id: &str) -> AResult<()> {
        if self.describe_user(external_id).await?.is_none() {
            return Ok(());
        }
        self.remove_all_memberships(external_id).await?;
        ok_if_not_found(
            self.call("DeleteUser", json!({"UserId": external_id}))
                .await
                .map(|_| ()),
        )
    }

    async fn add_membership(&self, account_id: &str, target: &EntitlementTarget) -> AResult<()> {
        let r: AResult<()> = async {
            let group_id = self.group_id(target).await?;
            let retry = self.http.retry;
            let started = std::time::Instant::now();
            let mut attempt = 0;
            loop {
                attempt += 1;
                // Look first: after an ambiguous failure the last attempt may have landed.
                if self.membership_id(&group_id, account_id).await?.is_some() {
                    return Ok(());
                }
                let err = match self
                    .call_with(
                        &self.once,
                        "CreateGroupMembership",
                        json!({"GroupId": group_id, "MemberId": {"UserId": account_id}}),
                    )
                    .await
                {
                    Ok(_) => return Ok(()),
                    // "Already a member" (Conflict) is settled by already_done.
                    Err(e) => e,
                };
                let delay = retry.delay(attempt, err.class.retry_after());
                if !err.class.is_retryable()
                    || attempt >= retry.max_attempts
                    || started.elapsed() + delay > retry.max_elapsed
                {
                    return Err(err);
                }
                tokio::time::sleep(delay).await;
            }
        }
        .await;
        already_done(Edit::Grant, r)
    }

    async fn remove_membership(&self, account_id: &str, target: &EntitlementTarget) -> AResult<()> {
        let group_id = self.group_id(target).await?;
        let Some(mid) = self.membership_id(&group_id, account_id).await? else {
            return Ok(());
        };
        ok_if_not_found(
            self.call("DeleteGroupMembership", json!({"MembershipId": mid}))
                .await
                .map(|_| ()),
        )
    }
}

//! The provisioning side of the IAM adapter.

use super::*;

#[async_trait]
impl Provisioner for AwsIam {
    async fn create_account(&self, spec: &AccountSpec) -> AResult<RemoteAccount> {
        self.check_user_name(&spec.login)?;
        let tags = spec_tags(self.system_name(), spec)?;
        let mut p = vec![("UserName".to_string(), spec.login.clone())];
        if let Some(path) = &self.path {
            p.push(("Path".into(), path.clone()));
        }
        p.extend(tag_params(&tags));
        let r = self.call_owned("CreateUser", p).await?;
        let mut user = parse_user_result(self.system_name(), "CreateUser", r.status, &r.body)?;
        if user.tags.is_none() {
            user.tags = Some(tags.into_iter().collect());
        }
        Ok(user.to_remote())
    }

    async fn update_account(
        &self,
        external_id: &str,
        spec: &AccountSpec,
    ) -> AResult<RemoteAccount> {
        self.check_user_name(external_id)?;
        let user = self.require_user(external_id).await?;
        self.tag_user(external_id, &spec_tags(self.system_name(), spec)?)
            .await?;
        if let Some(path) = &self.path
            && &user.path != path
        {
            self.call_empty(
                "UpdateUser",
                &[("UserName", external_id), ("NewPath", path)],
            )
            .await?;
        }
        Ok(self.require_user(external_id).await?.to_remote())
    }

    async fn deactivate_account(&self, external_id: &str) -> AResult<()> {
        let r: AResult<()> = async {
            self.check_user_name(external_id)?;
            let user = self.require_user(external_id).await?;
            let tags = user.tags.unwrap_or_default();
            let keys = self.access_keys(external_id).await?;
            let active: Vec<String> = keys
                .into_iter()
                .filter(|(_, s)| s == "Active")
                .map(|(id, _)| id)
                .collect();
            // Record first (merged with any earlier attempt), then act.
            let mut recorded: BTreeSet<String> = tags
                .get(DEACTIVATED_KEYS_TAG)
                .map(|v| v.split_whitespace().map(str::to_string).collect())
                .unwrap_or_default();
            recorded.extend(active.iter().cloned());
            let since = tags
                .get(DEACTIVATED_TAG)
                .cloned()
                .unwrap_or_else(|| chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string());
            let keys_value = recorded.into_iter().collect::<Vec<_>>().join(" ");
            self.tag_user(
                external_id,
                &[
                    (DEACTIVATED_TAG.to_string(), since),
                    (DEACTIVATED_KEYS_TAG.to_string(), keys_value),
                ],
            )
            .await?;
            for key in &active {
                ok_if_not_found(
                    self.call_empty(
                        "UpdateAccessKey",
                        &[
                            ("UserName", external_id),
                            ("AccessKeyId", key),
                            ("Status", "Inactive"),
                        ],
                    )
                    .await,
                )?;
            }
            ok_if_not_found(
                self.call_empty("DeleteLoginProfile", &[("UserName", external_id)])
                    .await,
            )?;
            for group in self.groups_of(external_id).await? {
                ok_if_not_found(
                    self.call_empty(
                        "RemoveUserFromGroup",
                        &[("GroupName", &group), ("UserName", external_id)],
                    )
                    .await,
                )?;
            }
            Ok(())
        }
        .await;
        already_done(Edit::Deactivate, r)
    }

    async fn reactivate_account(&self, external_id: &str) -> AResult<()> {
        self.check_user_name(external_id)?;
        let user = self.require_user(external_id).await?;
        let tags = user.tags.unwrap_or_default();
        let keys: Vec<String> = tags
            .get(DEACTIVATED_KEYS_TAG)
            .map(|v| v.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default();
        for key in &keys {
            // A key deleted since is not ours to bring back.
            ok_if_not_found(
                self.call_empty(
                    "UpdateAccessKey",
                    &[
                        ("UserName", external_id),
                        ("AccessKeyId", key),
                        ("Status", "Active"),
                    ],
                )
                .await,
            )?;
        }
        if tags.contains_key(DEACTIVATED_TAG) || tags.contains_key(DEACTIVATED_KEYS_TAG) {
            self.call_empty(
                "UntagUser",
                &[
                    ("UserName", external_id),
                    ("TagKeys.member.1", DEACTIVATED_TAG),
                    ("TagKeys.member.2", DEACTIVATED_KEYS_TAG),
                ],
            )
            .await?;
        }
        Ok(())
    }

    async fn add_membership(&self, account_id: &str, target: &EntitlementTarget) -> AResult<()> {
        self.check_user_name(account_id)?;
        let group = self.group_name(target)?;
        self.call_empty(
            "AddUserToGroup",
            &[("GroupName", group), ("UserName", account_id)],
        )
        .await
    }

    async fn remove_membership(&self, account_id: &str, target: &EntitlementTarget) -> AResult<()> {
        self.check_user_name(account_id)?;
        let group = self.group_name(target)?;
        ok_if_not_found(
            self.call_empty(
                "RemoveUserFromGroup",
                &[("GroupName", group), ("UserName", account_id)],
            )
            .await,
        )
    }
}

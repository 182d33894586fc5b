//! The reading side of the identity store adapter.

use super::*;

#[async_trait]
impl Reader for AwsIdentityStore {
    fn about(&self) -> &About {
        &self.about
    }

    /// `sts:GetCallerIdentity` names the principal; one `ListUsers` proves the store id
    /// and the `identitystore:ListUsers` permission.
    async fn authenticate(&self) -> AResult<Identity> {
        let (arn, account, _) = aws::get_caller_identity(&self.sts).await?;
        let _: ListUsersOut = self.call_as("ListUsers", json!({"MaxResults": 1})).await?;
        let mut details = BTreeMap::new();
        details.insert("api_version".to_string(), API_VERSION.to_string());
        details.insert("region".to_string(), self.settings.region.clone());
        details.insert("identity_store_id".to_string(), self.store_id.clone());
        details.insert("account".to_string(), account);
        details.insert(
            "deactivate".to_string(),
            match self.mode {
                DeactivateMode::RemoveMemberships => "remove_memberships",
                DeactivateMode::DeleteUser => "delete_user",
            }
            .to_string(),
        );
        Ok(Identity {
            principal: arn,
            scopes: Vec::new(),
            details,
        })
    }

    async fn get_account_by_login(&self, login: &str) -> AResult<Option<RemoteAccount>> {
        let out: ListUsersOut = self
            .call_as(
                "ListUsers",
                json!({"Filters": [{"AttributePath": "UserName", "AttributeValue": login}]}),
            )
            .await?;
        Ok(out
            .users
            .iter()
            .find(|u| u.user_name == login)
            .map(StoreUser::to_remote))
    }

    async fn get_account(&self, external_id: &str) -> AResult<Option<RemoteAccount>> {
        Ok(self
            .describe_user(external_id)
            .await?
            .map(|u| u.to_remote()))
    }

    async fn list_memberships(&self, account_id: &str) -> AResult<Vec<RemoteMembership>> {
        let mut out = Vec::new();
        for m in self.memberships_of(account_id).await? {
            out.push(RemoteMembership {
                kind: EntitlementKind::Group,
                name: self.group_name_of(&m.group_id).await?,
                external_id: m.group_id,
            });
        }
        Ok(out)
    }

    async fn list_accounts(&self, cursor: Option<String>) -> AResult<Page<RemoteAccount>> {
        let mut body = json!({"MaxResults": self.page_size});
        if let Some(t) = cursor {
            body["NextToken"] = json!(t);
        }
        let out: ListUsersOut = self.call_as("ListUsers", body).await?;
        Ok(Page {
            items: out.users.iter().map(StoreUser::to_remote).collect(),
            next: out.next_token.filter(|t| !t.is_empty()),
        })
    }

    async fn list_members(
        &self,
        target: &EntitlementTarget,
        cursor: Option<String>,
    ) -> AResult<Page<RemoteAccount>> {
        let group_id = self.group_id(target).await?;
        let mut body = json!({"GroupId": group_id, "MaxResults": self.page_size});
        if let Some(t) = cursor {
            body["NextToken"] = json!(t);
        }
        let out: ListMembershipsOut = self.call_as("ListGroupMemberships", body).await?;
        let ids: Vec<String> = out
            .group_memberships
            .into_iter()
            .filter_map(|m| m.member_id.and_then(|x| x.user_id))
            .collect();
        let users: Vec<AResult<Option<StoreUser>>> = futures::stream::iter(ids)
            .map(|id| async move { self.describe_user(&id).await })
            .buffered(4)
            .collect()
            .await;
        let mut items = Vec::new();
        for u in users {
            // A member deleted between the two calls is simply gone.
            if let Some(u) = u? {
                items.push(u.to_remote());
            }
        }
        Ok(Page {
            items,
            next: out.next_token.filter(|t| !t.is_empty()),
        })
    }

    /// `ListGroups` with `MaxResults` as for users; the cursor is the NextToken. A group
    /// without a DisplayName is named by its id (as memberships name it).
    async fn list_entitlements(&self, cursor: Option<String>) -> AResult<Page<RemoteEntitlement>> {
        let mut body = json!({"MaxResults": self.page_size});
        if let Some(t) = cursor {
            body["NextToken"] = json!(t);
        }
        let out: ListGroupsOut = self.call_as("ListGroups", body).await?;
        let items: Vec<RemoteEntitlement> = out
            .groups
            .into_iter()
            .map(|g| RemoteEntitlement {
                kind: EntitlementKind::Group,
                name: g.display_name.unwrap_or_else(|| g.group_id.clone()),
                external_id: g.group_id,
            })
            .collect();
        {
            let mut by_name = lock(&self.by_name);
            let mut by_id = lock(&self.by_id);
            for e in &items {
                by_name
                    .entry(e.name.clone())
                    .or_insert_with(|| e.external_id.clone());
                by_id
                    .entry(e.external_id.clone())
                    .or_insert_with(|| e.name.clone());
            }
        }
        Ok(Page {
            items,
            next: out.next_token.filter(|t| !t.is_empty()),
        })
    }
}

//! The reading side of the IAM adapter.

use super::*;

#[async_trait]
impl Reader for AwsIam {
    fn about(&self) -> &About {
        &self.about
    }

    /// `GetUser` without a name answers for the caller. Credentials that are not an IAM
    /// user's (a role session) get a ValidationError there; then `sts:GetCallerIdentity`.
    async fn authenticate(&self) -> AResult<Identity> {
        let mut details = BTreeMap::new();
        details.insert("api_version".to_string(), API_VERSION.to_string());
        details.insert("region".to_string(), self.settings.region.clone());
        details.insert("endpoint".to_string(), self.http.base().to_string());
        let principal = match self.get_user(None).await {
            Ok(Some(u)) => {
                details.insert("user_name".into(), u.user_name.clone());
                u.arn
            }
            Ok(None) => {
                return Err(AdapterError::new(
                    ErrorClass::Unauthorized,
                    self.system_name(),
                    "IAM answered that the calling user does not exist",
                ));
            }
            Err(e) if e.vendor_code.as_deref() == Some("ValidationError") => {
                let (arn, _, user_id) = aws::get_caller_identity(&self.sts).await?;
                details.insert("user_id".into(), user_id);
                arn
            }
            Err(e) => return Err(e),
        };
        if let Some(acct) = aws::arn_account(&principal) {
            details.insert("account".into(), acct.to_string());
        }
        Ok(Identity {
            principal,
            scopes: Vec::new(),
            details,
        })
    }

    async fn get_account_by_login(&self, login: &str) -> AResult<Option<RemoteAccount>> {
        if !valid_user_name(login) {
            return Ok(None); // IAM cannot hold a user by that name
        }
        Ok(self.get_user(Some(login)).await?.map(|u| u.to_remote()))
    }

    async fn get_account(&self, external_id: &str) -> AResult<Option<RemoteAccount>> {
        self.get_account_by_login(external_id).await
    }

    async fn list_memberships(&self, account_id: &str) -> AResult<Vec<RemoteMembership>> {
        self.check_user_name(account_id)?;
        Ok(self
            .groups_of(account_id)
            .await?
            .into_iter()
            .map(|g| RemoteMembership {
                kind: EntitlementKind::Group,
                name: g.clone(),
                external_id: g,
            })
            .collect())
    }

    async fn list_accounts(&self, cursor: Option<String>) -> AResult<Page<RemoteAccount>> {
        let page_size = self.page_size.to_string();
        let mut p = vec![("MaxItems", page_size.as_str())];
        if let Some(path) = &self.path {
            p.push(("PathPrefix", path));
        }
        if let Some(m) = cursor.as_deref() {
            p.push(("Marker", m));
        }
        let r = self.call("ListUsers", &p).await?;
        let (users, next) = parse_user_page(self.system_name(), "ListUsers", r.status, &r.body)?;
        Ok(Page {
            items: self.enrich(users).await?,
            next,
        })
    }

    async fn list_members(
        &self,
        target: &EntitlementTarget,
        cursor: Option<String>,
    ) -> AResult<Page<RemoteAccount>> {
        let group = self.group_name(target)?;
        let page_size = self.page_size.to_string();
        let mut p = vec![("GroupName", group), ("MaxItems", page_size.as_str())];
        if let Some(m) = cursor.as_deref() {
            p.push(("Marker", m));
        }
        let r = self.call("GetGroup", &p).await?;
        let (users, next) = parse_user_page(self.system_name(), "GetGroup", r.status, &r.body)?;
        Ok(Page {
            items: self.enrich(users).await?,
            next,
        })
    }

    /// `ListGroups` over every path, `MaxItems` as for users; the cursor is the Marker.
    async fn list_entitlements(&self, cursor: Option<String>) -> AResult<Page<RemoteEntitlement>> {
        let page_size = self.page_size.to_string();
        let mut p = vec![("MaxItems", page_size.as_str())];
        if let Some(m) = cursor.as_deref() {
            p.push(("Marker", m));
        }
        let r = self.call("ListGroups", &p).await?;
        let page = parse_group_list_page(self.system_name(), r.status, &r.body)?;
        Ok(Page {
            items: page
                .items
                .into_iter()
                .map(|g| RemoteEntitlement {
                    kind: EntitlementKind::Group,
                    name: g.clone(),
                    external_id: g,
                })
                .collect(),
            next: page.next,
        })
    }
}

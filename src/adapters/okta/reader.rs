//! The reading side of the Okta adapter.

use super::*;

#[async_trait]
impl Reader for OktaAdapter {
    fn about(&self) -> &About {
        &self.about
    }

    async fn authenticate(&self) -> AResult<Identity> {
        let mut details = BTreeMap::new();
        details.insert("org".to_string(), self.base_url.clone());
        details.insert("api_version".to_string(), API_VERSION.to_string());
        match &self.auth {
            AuthKind::Ssws => {
                details.insert("auth".into(), "ssws (API token)".into());
                let resp = self.send(Req::get(api("/users/me"))).await?;
                let u = self.user(&resp)?;
                details.insert("user_id".into(), u.id.clone());
                details.insert(
                    "permissions".into(),
                    "those of the admin who created the token".into(),
                );
                let principal = u
                    .profile
                    .get("login")
                    .and_then(Value::as_str)
                    .unwrap_or(&u.id)
                    .to_string();
                Ok(Identity {
                    principal,
                    scopes: Vec::new(),
                    details,
                })
            }
            AuthKind::Jwt(j) => {
                details.insert("auth".into(), "private_key_jwt (OAuth service app)".into());
                details.insert("token_url".into(), j.token_url.clone());
                details.insert("alg".into(), format!("{:?}", j.alg));
                if let Some(k) = &j.key_id {
                    details.insert("key_id".into(), k.clone());
                }
                // Check the credential for real: a fresh token, then one cheap call with it.
                j.auth.invalidate().await;
                let scopes = j
                    .auth
                    .token()
                    .await
                    .map_err(|mut e| {
                        if e.class == ErrorClass::Unauthorized {
                            e.message = format!(
                                "{} rejected the credential from {}: {}",
                                self.about.system,
                                j.auth.source(),
                                e.message
                            );
                        }
                        e
                    })?
                    .scopes;
                let q = query_string(&[("limit", "1")]);
                self.send(Req::get(api(&format!("/users?{q}")))).await?;
                Ok(Identity {
                    principal: j.client_id.clone(),
                    scopes,
                    details,
                })
            }
        }
    }

    async fn get_account_by_login(&self, login: &str) -> AResult<Option<RemoteAccount>> {
        if login.is_empty() {
            return Ok(None);
        }
        let found = if login.contains('/') {
            // Okta cannot take a login with '/' in the path; filter instead.
            let f = query_string(&[("filter", &format!("profile.login eq {}", quoted(login)))]);
            let resp = self.send(Req::get(api(&format!("/users?{f}")))).await?;
            let users: Vec<OktaUser> =
                resp.json(&self.about.system, "a JSON array of Okta users")?;
            users.into_iter().next()
        } else {
            self.get_user(login).await?
        };
        // GET /users/{x} also matches ids and login short names: insist on the login.
        Ok(found
            .map(|u| self.account(u))
            .filter(|a| a.login.eq_ignore_ascii_case(login)))
    }

    async fn get_account(&self, external_id: &str) -> AResult<Option<RemoteAccount>> {
        if external_id.is_empty() {
            return Ok(None);
        }
        Ok(self.get_user(external_id).await?.map(|u| self.account(u)))
    }

    /// OKTA_GROUP memberships only: BUILT_IN (Everyone) and APP_GROUP memberships are not
    /// managed through this API.
    async fn list_memberships(&self, account_id: &str) -> AResult<Vec<RemoteMembership>> {
        let resp = self
            .send(Req::get(api(&format!(
                "/users/{}/groups",
                segment(account_id)
            ))))
            .await?;
        let groups: Vec<OktaGroup> =
            resp.json(&self.about.system, "a JSON array of Okta groups")?;
        Ok(groups
            .into_iter()
            .filter(|g| g.kind.as_deref().is_none_or(|k| k == "OKTA_GROUP"))
            .map(|g| RemoteMembership {
                kind: EntitlementKind::Group,
                name: g.profile.name.unwrap_or_default(),
                external_id: g.id,
            })
            .collect())
    }

    /// Every user, DEPROVISIONED included.
    async fn list_accounts(&self, cursor: Option<String>) -> AResult<Page<RemoteAccount>> {
        let path = match cursor {
            Some(c) => self.check_cursor(&c, &api("/users?"))?,
            None => api(&format!(
                "/users?{}",
                query_string(&[
                    ("limit", &self.limit(USERS_PAGE_MAX)),
                    ("filter", ALL_STATUSES_FILTER),
                ])
            )),
        };
        self.list_users_page(path).await
    }

    async fn list_members(
        &self,
        target: &EntitlementTarget,
        cursor: Option<String>,
    ) -> AResult<Page<RemoteAccount>> {
        let gid = self.group_id(target).await?;
        let prefix = api(&format!("/groups/{}/users", segment(&gid)));
        let path = match cursor {
            Some(c) => self.check_cursor(&c, &prefix)?,
            None => format!(
                "{prefix}?{}",
                query_string(&[("limit", &self.limit(GROUP_USERS_PAGE_MAX))])
            ),
        };
        self.list_users_page(path).await
    }

    /// `GET /api/v1/groups` with the largest `limit` and Link paging; OKTA_GROUP groups
    /// only (see the module docs). Their ids are remembered for name look-ups.
    async fn list_entitlements(&self, cursor: Option<String>) -> AResult<Page<RemoteEntitlement>> {
        let path = match cursor {
            Some(c) => self.check_cursor(&c, &api("/groups?"))?,
            None => api(&format!(
                "/groups?{}",
                query_string(&[("limit", &self.limit(GROUPS_PAGE_MAX))])
            )),
        };
        let resp = self.send(Req::get(path)).await?;
        let groups: Vec<OktaGroup> =
            resp.json(&self.about.system, "a JSON array of Okta groups")?;
        let next = self.cursor_from(&resp)?;
        let mut items = Vec::with_capacity(groups.len());
        for g in groups {
            if g.kind.as_deref().is_some_and(|k| k != "OKTA_GROUP") {
                continue;
            }
            let Some(name) = g.profile.name.filter(|n| !n.is_empty() && !g.id.is_empty()) else {
                return Err(AdapterError::bad_response(
                    &self.about.system,
                    resp.status,
                    &format!(
                        "Okta groups each with an id and a profile.name (group {:?} has not)",
                        g.id
                    ),
                    &resp.body,
                ));
            };
            items.push(RemoteEntitlement {
                kind: EntitlementKind::Group,
                name,
                external_id: g.id,
            });
        }
        self.groups.remember(
            items
                .iter()
                .map(|e| (e.name.as_str(), e.external_id.as_str())),
        );
        Ok(Page { items, next })
    }
}

//! The reading side of the SCIM adapter.

use super::*;

#[async_trait]
impl Reader for ScimAdapter {
    fn about(&self) -> &About {
        &self.about
    }

    async fn authenticate(&self) -> AResult<Identity> {
        let c = self.refresh_capabilities().await?;
        // /ServiceProviderConfig may be public (RFC 7644 §4): prove the token on /Users.
        let q = [
            ("startIndex", "1".to_string()),
            ("count", "1".to_string()),
            ("attributes", "userName".to_string()),
        ];
        let resp = self
            .http
            .send(get(&with_query(&c.users_endpoint, &q)))
            .await?;
        let users = parse_list(&self.about.system, &resp, "a ListResponse of users")?;
        let me = self.whoami().await;
        let mut details = BTreeMap::new();
        details.insert("scim_version".into(), SCIM_VERSION.to_string());
        details.insert("base_url".into(), self.base_display.clone());
        details.insert("credential".into(), self.http.auth_source());
        if !c.auth_schemes.is_empty() {
            details.insert("auth_schemes".into(), c.auth_schemes.join(", "));
        }
        if let Some(t) = users.total {
            details.insert("users".into(), t.to_string());
        }
        details.insert(
            "writes".into(),
            match (self.patch_enabled(&c), self.etag_enabled(&c)) {
                (true, _) => "PATCH".into(),
                (false, true) => "GET + PUT with If-Match".into(),
                (false, false) => "GET + PUT".into(),
            },
        );
        details.insert(
            "lookups".into(),
            if self.filter_enabled(&c) {
                "filter".into()
            } else {
                "paged scan, matched client-side".into()
            },
        );
        details.insert("page_size".into(), self.page_size(&c).to_string());
        details.insert(
            "listing_order".into(),
            match &self.settings.sort_by {
                Some(by) if c.sort => format!("sortBy={by}"),
                _ => "provider order".into(),
            },
        );
        details.insert(
            "enterprise_extension".into(),
            if c.enterprise_user { "yes" } else { "no" }.into(),
        );
        if let Some(d) = &c.documentation_uri {
            details.insert("documentation".into(), d.clone());
        }
        let principal = match &me {
            Ok(user) => {
                details.insert("identity".into(), "/Me".into());
                user.clone()
            }
            Err(why) => {
                details.insert(
                    "identity".into(),
                    format!("not knowable over SCIM ({why}); principal is the provider host"),
                );
                self.host.clone()
            }
        };
        Ok(Identity {
            principal,
            scopes: c.features(),
            details,
        })
    }

    async fn get_account_by_login(&self, login: &str) -> AResult<Option<RemoteAccount>> {
        let c = self.provider().await?;
        let mut found: Vec<RemoteAccount> = Vec::new();
        let mut scan_all = !self.filter_enabled(&c);
        if !scan_all {
            let q = [
                ("filter", filter_eq("userName", login)),
                ("attributes", user_attributes(c.enterprise_user)),
            ];
            let path = with_query(&c.users_endpoint, &q);
            match self.http.send(get(&path)).await {
                Ok(resp) => {
                    let page = parse_list(&self.about.system, &resp, "a ListResponse of users")?;
                    for r in &page.resources {
                        found.push(self.account(&c, &resp, r)?);
                    }
                }
                Err(e) if filter_rejected(&e) => scan_all = true,
                Err(e) => return Err(e),
            }
        }
        if scan_all {
            let q = [("attributes", user_attributes(c.enterprise_user))];
            let mut bad: Option<String> = None;
            self.scan(&c, &c.users_endpoint, &q, "a ListResponse of users", |u| {
                // userName is case-insensitive (RFC 7643 §4.1.1).
                if u.get("userName")
                    .and_then(Value::as_str)
                    .is_some_and(|n| n.eq_ignore_ascii_case(login))
                {
                    match account_from_user_with(u, c.enterprise_user) {
                        Ok(a) => found.push(a),
                        Err(p) => bad = Some(p),
                    }
                }
                Ok(false)
            })
            .await?;
            if let Some(p) = bad {
                return Err(AdapterError::new(
                    ErrorClass::Permanent,
                    &self.about.system,
                    format!("expected a SCIM User, but {p}"),
                ));
            }
        }
        match found.len() {
            0 => Ok(None),
            1 => Ok(found.pop()),
            n => {
                let exact: Vec<RemoteAccount> =
                    found.iter().filter(|a| a.login == login).cloned().collect();
                if exact.len() == 1 {
                    return Ok(exact.into_iter().next());
                }
                Err(AdapterError::new(
                    ErrorClass::Permanent,
                    &self.about.system,
                    format!("{n} accounts match userName {login:?}"),
                ))
            }
        }
    }

    async fn get_account(&self, external_id: &str) -> AResult<Option<RemoteAccount>> {
        let c = self.provider().await?;
        self.fetch_user(&c, external_id).await
    }

    async fn list_memberships(&self, account_id: &str) -> AResult<Vec<RemoteMembership>> {
        let c = self.provider().await?;
        let mut out: Vec<RemoteMembership> = Vec::new();
        let to_membership = |g: &Value| -> Option<RemoteMembership> {
            Some(RemoteMembership {
                kind: EntitlementKind::Group,
                name: g.get("displayName").and_then(Value::as_str)?.to_string(),
                external_id: id_of(g)?,
            })
        };
        let mut scan_all = !self.filter_enabled(&c);
        if !scan_all {
            let q = [
                ("filter", filter_eq("members.value", account_id)),
                ("attributes", "displayName".to_string()),
            ];
            let res = self
                .scan(
                    &c,
                    &c.groups_endpoint,
                    &q,
                    "a ListResponse of groups",
                    |g| {
                        if let Some(m) = to_membership(g) {
                            out.push(m);
                        }
                        Ok(false)
                    },
                )
                .await;
            match res {
                Ok(()) => {}
                Err(e) if filter_rejected(&e) => scan_all = true,
                Err(e) => return Err(e),
            }
        }
        if scan_all {
            out.clear();
            let q = [("attributes", "displayName,members".to_string())];
            let mut bad: Option<String> = None;
            self.scan(
                &c,
                &c.groups_endpoint,
                &q,
                "a ListResponse of groups",
                |g| {
                    match member_values(g) {
                        Ok(ms) if ms.iter().any(|(v, _)| v == account_id) => {
                            if let Some(m) = to_membership(g) {
                                out.push(m);
                            }
                        }
                        Ok(_) => {}
                        Err(p) => bad = Some(p),
                    }
                    Ok(false)
                },
            )
            .await?;
            if let Some(p) = bad {
                return Err(AdapterError::new(
                    ErrorClass::Permanent,
                    &self.about.system,
                    format!("expected a SCIM Group, but {p}"),
                ));
            }
        }
        self.groups.remember(
            out.iter()
                .map(|m| (m.name.as_str(), m.external_id.as_str())),
        );
        out.sort_by(|a, b| a.name.cmp(&b.name).then(a.external_id.cmp(&b.external_id)));
        out.dedup();
        Ok(out)
    }

    async fn list_accounts(&self, cursor: Option<String>) -> AResult<Page<RemoteAccount>> {
        let c = self.provider().await?;
        let start = parse_cursor(&self.about.system, cursor.as_deref())?;
        let q = [("attributes", user_attributes(c.enterprise_user))];
        let count = self.page_size(&c);
        let (items, next) = self
            .list_page(
                &c,
                &c.users_endpoint,
                &q,
                start,
                count,
                "a ListResponse of users",
            )
            .await?;
        let mut accounts = Vec::with_capacity(items.len());
        for u in &items {
            accounts.push(account_from_user_with(u, c.enterprise_user).map_err(|p| {
                AdapterError::new(
                    ErrorClass::Permanent,
                    &self.about.system,
                    format!("users page at startIndex {start}: {p}"),
                )
            })?);
        }
        Ok(Page {
            items: accounts,
            next: next.map(|n| n.to_string()),
        })
    }

    /// Members come from GET /Groups/{id} (`members` absent = empty), ordered by id; the
    /// cursor is the last member id returned, so members added or removed between pages do
    /// not shift the pages. A page holds as many members as a user listing page; its users
    /// are read with `id eq .. or ..` filters of at most 50 ids (URLs stay short).
    async fn list_members(
        &self,
        target: &EntitlementTarget,
        cursor: Option<String>,
    ) -> AResult<Page<RemoteAccount>> {
        let c = self.provider().await?;
        let (gid, _) = self.group_id(&c, target).await?;
        let path = with_query(
            &Self::group_path(&c, &gid),
            &[("attributes", "members".to_string())],
        );
        let resp = match self.http.send(get(&path)).await {
            Err(e) if e.class == ErrorClass::NotFound => {
                self.forget_group(&target.name);
                return Err(e);
            }
            r => r?,
        };
        let obj = parse_object(&self.about.system, &resp, "a SCIM Group")?;
        let members = member_values(&Value::Object(obj))
            .map_err(|p| wrong_shape(&self.about.system, &resp, "a SCIM Group", &p))?;
        let ids: BTreeSet<String> = members
            .into_iter()
            .filter(|(_, is_group)| !is_group)
            .map(|(v, _)| v)
            .filter(|v| cursor.as_ref().is_none_or(|after| v > after))
            .collect();
        let per_page = self.page_size(&c) as usize;
        let page: Vec<String> = ids.iter().take(per_page).cloned().collect();
        let next = (ids.len() > page.len())
            .then(|| page.last().cloned())
            .flatten();
        let items = self.users_by_ids(&c, &page).await?;
        Ok(Page { items, next })
    }

    /// `GET /Groups?excludedAttributes=members` by startIndex, sorted where the provider
    /// sorts (so groups created meanwhile land on the last page); the cursor is the next
    /// startIndex. Names and ids are remembered for membership changes.
    async fn list_entitlements(&self, cursor: Option<String>) -> AResult<Page<RemoteEntitlement>> {
        let c = self.provider().await?;
        let start = parse_cursor(&self.about.system, cursor.as_deref())?;
        let q = [("excludedAttributes", "members".to_string())];
        let count = self.page_size(&c);
        let (items, next) = self
            .list_page(
                &c,
                &c.groups_endpoint,
                &q,
                start,
                count,
                "a ListResponse of groups",
            )
            .await?;
        let mut out = Vec::with_capacity(items.len());
        for g in &items {
            let (Some(id), Some(name)) = (id_of(g), g.get("displayName").and_then(Value::as_str))
            else {
                return Err(AdapterError::new(
                    ErrorClass::Permanent,
                    &self.about.system,
                    format!(
                        "groups page at startIndex {start}: a group without an id or a displayName"
                    ),
                ));
            };
            out.push(RemoteEntitlement {
                kind: EntitlementKind::Group,
                name: name.to_string(),
                external_id: id,
            });
        }
        self.groups.remember(
            out.iter()
                .map(|e| (e.name.as_str(), e.external_id.as_str())),
        );
        Ok(Page {
            items: out,
            next: next.map(|n| n.to_string()),
        })
    }
}

//! The SCIM adapter's requests: listings, writes, and groups by name.

use super::*;

impl ScimAdapter {
    // -- listing ---------------------------------------------------------------------

    /// One page of a collection, sorted when the provider supports it.
    pub(super) async fn list_page(
        &self,
        c: &Capabilities,
        endpoint: &str,
        params: &[(&str, String)],
        start: u64,
        count: u32,
        what: &str,
    ) -> AResult<(Vec<Value>, Option<u64>)> {
        loop {
            let mut q: Vec<(&str, String)> = params.to_vec();
            q.push(("startIndex", start.to_string()));
            q.push(("count", count.to_string()));
            let sorted = match &self.settings.sort_by {
                Some(by) if c.sort && !self.sort_refused.load(Ordering::Relaxed) => {
                    q.push(("sortBy", by.clone()));
                    q.push(("sortOrder", "ascending".into()));
                    true
                }
                _ => false,
            };
            let resp = match self.http.send(get(&with_query(endpoint, &q))).await {
                Err(e) if sorted && sort_rejected(&e) => {
                    tracing::warn!(system = %self.about.system, error = %e, "the provider refused sortBy; listing in provider order");
                    self.sort_refused.store(true, Ordering::Relaxed);
                    continue;
                }
                r => r?,
            };
            let page = parse_list(&self.about.system, &resp, what)?;
            let next = next_start(start, count, page.resources.len(), page.total);
            return Ok((page.resources, next));
        }
    }

    /// Visit every resource of a (filtered) collection; `visit` returns true to stop.
    pub(super) async fn scan(
        &self,
        c: &Capabilities,
        endpoint: &str,
        params: &[(&str, String)],
        what: &str,
        mut visit: impl FnMut(&Value) -> AResult<bool> + Send,
    ) -> AResult<()> {
        let count = self.page_size(c);
        let mut start = 1u64;
        let mut previous_first: Option<String> = None;
        for _ in 0..MAX_SCAN_PAGES {
            let (items, next) = self
                .list_page(c, endpoint, params, start, count, what)
                .await?;
            let first = items.first().and_then(id_of);
            if first.is_some() && first == previous_first {
                return Err(AdapterError::new(
                    ErrorClass::Permanent,
                    &self.about.system,
                    format!(
                        "{endpoint}: startIndex {start} returned the same page again; the provider ignores startIndex"
                    ),
                ));
            }
            previous_first = first;
            for item in &items {
                if visit(item)? {
                    return Ok(());
                }
            }
            match next {
                Some(n) if n > start => start = n,
                _ => return Ok(()),
            }
        }
        Err(AdapterError::new(
            ErrorClass::Permanent,
            &self.about.system,
            format!("{endpoint}: more than {MAX_SCAN_PAGES} pages; refusing to go on"),
        ))
    }

    pub(super) fn account(
        &self,
        c: &Capabilities,
        resp: &HttpResponse,
        v: &Value,
    ) -> AResult<RemoteAccount> {
        account_from_user_with(v, c.enterprise_user)
            .map_err(|p| wrong_shape(&self.about.system, resp, "a SCIM User", &p))
    }

    pub(super) async fn fetch_user(
        &self,
        c: &Capabilities,
        id: &str,
    ) -> AResult<Option<RemoteAccount>> {
        match self.http.send(get(&Self::user_path(c, id))).await {
            Ok(resp) => {
                let obj = parse_object(&self.about.system, &resp, "a SCIM User")?;
                Ok(Some(self.account(c, &resp, &Value::Object(obj))?))
            }
            Err(e) if e.class == ErrorClass::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Accounts for a set of user ids: `id eq .. or ..` filters where possible, then a GET
    /// for each id a filter did not return (a provider may cap a page below what we asked
    /// for). Ids that do not exist (dangling member references) are skipped.
    pub(super) async fn users_by_ids(
        &self,
        c: &Capabilities,
        ids: &[String],
    ) -> AResult<Vec<RemoteAccount>> {
        let mut found: HashMap<String, RemoteAccount> = HashMap::new();
        let mut use_filter = self.filter_enabled(c);
        let chunk_size = self.page_size(c).min(MAX_IDS_PER_FILTER) as usize;
        for chunk in ids.chunks(chunk_size) {
            if !use_filter {
                break;
            }
            let f = chunk
                .iter()
                .map(|id| filter_eq("id", id))
                .collect::<Vec<_>>()
                .join(" or ");
            let q = [
                ("filter", f),
                ("attributes", user_attributes(c.enterprise_user)),
                ("count", chunk.len().to_string()),
            ];
            match self
                .http
                .send(get(&with_query(&c.users_endpoint, &q)))
                .await
            {
                Ok(resp) => {
                    let page = parse_list(&self.about.system, &resp, "a ListResponse of users")?;
                    for r in &page.resources {
                        let a = self.account(c, &resp, r)?;
                        found.insert(a.external_id.clone(), a);
                    }
                }
                Err(e) if filter_rejected(&e) => {
                    tracing::debug!(system = %self.about.system, "id filter refused; reading members one by one");
                    use_filter = false;
                }
                Err(e) => return Err(e),
            }
        }
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let account = match found.remove(id) {
                Some(a) => Some(a),
                None => self.fetch_user(c, id).await?,
            };
            match account {
                Some(a) => out.push(a),
                None => {
                    tracing::warn!(system = %self.about.system, member = %id, "group member is not a user the provider knows; skipped")
                }
            }
        }
        Ok(out)
    }

    // -- writes ------------------------------------------------------------------------

    /// PATCH a resource. Returns the resource when the provider answers 200 with a body.
    pub(super) async fn patch(
        &self,
        path: &str,
        ops: Vec<Value>,
    ) -> AResult<Option<Map<String, Value>>> {
        let req = Req::patch(path)
            .header(ACCEPT, ACCEPT_VALUE)
            .header(CONTENT_TYPE, MEDIA_TYPE)
            .json(patch_body(ops));
        let resp = self.http.send(req).await?;
        if resp.status == 204 || resp.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        parse_object(&self.about.system, &resp, "the patched resource").map(Some)
    }

    /// Read, edit and PUT back a whole resource, with If-Match when ETags are supported.
    /// `edit` returns Ok(false) when nothing needs to change (then nothing is written).
    /// A version mismatch is retried once from a fresh read; a second one is Transient.
    pub(super) async fn put_edit(
        &self,
        c: &Capabilities,
        path: &str,
        what: &str,
        edit: impl Fn(&mut Map<String, Value>) -> std::result::Result<bool, String> + Send + Sync,
    ) -> AResult<Map<String, Value>> {
        let use_etag = self.etag_enabled(c);
        let mut round = 0;
        loop {
            round += 1;
            let resp = self.http.send(get(path)).await?;
            let mut resource = parse_object(&self.about.system, &resp, what)?;
            let version = if use_etag {
                version_of(&resp, &resource)
            } else {
                None
            };
            let changed = edit(&mut resource)
                .map_err(|p| wrong_shape(&self.about.system, &resp, what, &p))?;
            if !changed {
                return Ok(resource);
            }
            let mut body = resource.clone();
            // Read-only attributes are ignored by a PUT (RFC 7644 §3.5.1); some providers
            // refuse them instead, so they are not sent.
            body.remove("meta");
            body.remove("groups");
            let mut req = Req::put(path)
                .header(ACCEPT, ACCEPT_VALUE)
                .header(CONTENT_TYPE, MEDIA_TYPE)
                .json(Value::Object(body));
            if let Some(v) = &version {
                req = req.header(IF_MATCH, v.clone());
            }
            match self.http.send(req).await {
                Ok(r) if r.status == 204 || r.body.iter().all(u8::is_ascii_whitespace) => {
                    return Ok(resource);
                }
                Ok(r) => return parse_object(&self.about.system, &r, what),
                Err(e) if version_mismatch(&e, version.is_some()) => {
                    if round >= 2 {
                        let mut e = e;
                        e.class = ErrorClass::Transient;
                        e.message = format!(
                            "{what} changed on the server between our read and our write, twice in a row; try again later ({})",
                            e.message
                        );
                        return Err(e);
                    }
                    tracing::debug!(system = %self.about.system, "version mismatch on PUT; re-reading once");
                }
                Err(e) => return Err(e),
            }
        }
    }

    pub(super) async fn set_active(&self, id: &str, active: bool) -> AResult<()> {
        let c = self.provider().await?;
        let path = Self::user_path(&c, id);
        if self.patch_enabled(&c) {
            self.patch(
                &path,
                vec![json!({"op": "replace", "path": "active", "value": active})],
            )
            .await?;
        } else {
            self.put_edit(&c, &path, "a SCIM User", |u| {
                let now = u.get("active").map(lenient_bool_true).unwrap_or(true);
                if now == active && u.contains_key("active") {
                    return Ok(false);
                }
                u.insert("active".into(), Value::Bool(active));
                Ok(true)
            })
            .await?;
        }
        Ok(())
    }

    // -- groups ------------------------------------------------------------------------

    /// The group id for an entitlement, and whether it came from name resolution (and so may
    /// be stale).
    pub(super) async fn group_id(
        &self,
        c: &Capabilities,
        target: &EntitlementTarget,
    ) -> AResult<(String, bool)> {
        if target.kind != EntitlementKind::Group {
            return Err(AdapterError::unsupported(
                &self.about.system,
                &format!("{} entitlements (SCIM has groups only)", target.kind),
            ));
        }
        if !target.external_id.is_empty() && target.external_id != target.name {
            return Ok((target.external_id.clone(), false));
        }
        if let Some(id) = self.cached_group(&target.name) {
            return Ok((id, true));
        }
        let mut matches: Vec<(String, String)> = Vec::new();
        let mut scanned = false;
        if self.filter_enabled(c) {
            let q = [
                ("filter", filter_eq("displayName", &target.name)),
                ("attributes", "displayName".to_string()),
            ];
            let res = self
                .scan(c, &c.groups_endpoint, &q, "a ListResponse of groups", |g| {
                    if let (Some(id), Some(n)) =
                        (id_of(g), g.get("displayName").and_then(Value::as_str))
                    {
                        matches.push((id, n.to_string()));
                    }
                    Ok(false)
                })
                .await;
            match res {
                Ok(()) => {}
                Err(e) if filter_rejected(&e) => scanned = true,
                Err(e) => return Err(e),
            }
        } else {
            scanned = true;
        }
        if scanned {
            matches.clear();
            let mut all: Vec<(String, String)> = Vec::new();
            let q = [("attributes", "displayName".to_string())];
            self.scan(c, &c.groups_endpoint, &q, "a ListResponse of groups", |g| {
                if let (Some(id), Some(n)) =
                    (id_of(g), g.get("displayName").and_then(Value::as_str))
                {
                    all.push((id, n.to_string()));
                }
                Ok(false)
            })
            .await?;
            self.groups
                .remember(all.iter().map(|(id, n)| (n.as_str(), id.as_str())));
            matches = all
                .into_iter()
                .filter(|(_, n)| n.eq_ignore_ascii_case(&target.name))
                .collect();
        }
        // displayName is case-insensitive in RFC 7643; prefer the exact spelling.
        let exact: Vec<&(String, String)> =
            matches.iter().filter(|(_, n)| *n == target.name).collect();
        let id = match (exact.len(), matches.len()) {
            (1, _) => exact[0].0.clone(),
            (0, 1) => matches[0].0.clone(),
            (_, 0) => {
                return Err(AdapterError::new(
                    ErrorClass::NotFound,
                    &self.about.system,
                    format!("no group named {:?} in {}", target.name, self.about.system),
                ));
            }
            _ => {
                return Err(AdapterError::new(
                    ErrorClass::Permanent,
                    &self.about.system,
                    format!(
                        "{} groups are named {:?}; set external_id on the entitlement to the group id",
                        matches.len(),
                        target.name
                    ),
                ));
            }
        };
        self.groups.insert(&target.name, &id);
        Ok((id, true))
    }

    pub(super) fn cached_group(&self, name: &str) -> Option<String> {
        self.groups.get(name)
    }

    pub(super) fn forget_group(&self, name: &str) {
        self.groups.forget(name);
    }

    pub(super) async fn edit_membership(
        &self,
        c: &Capabilities,
        group_id: &str,
        user_id: &str,
        edit: MemberEdit,
    ) -> AResult<()> {
        let path = Self::group_path(c, group_id);
        if self.patch_enabled(c) {
            let op = match edit {
                MemberEdit::Add => {
                    json!({"op": "add", "path": "members", "value": [{"value": user_id}]})
                }
                MemberEdit::Remove => json!({
                    "op": "remove",
                    "path": format!("members[value eq {}]", filter_string(user_id)),
                }),
            };
            return match self.patch(&path, vec![op]).await {
                Ok(_) => Ok(()),
                // Already a member.
                Err(e) if edit == MemberEdit::Add && e.class == ErrorClass::Conflict => Ok(()),
                // Not a member: the filter matched nothing (RFC 7644 §3.5.2.2).
                Err(e)
                    if edit == MemberEdit::Remove
                        && e.status == Some(400)
                        && e.vendor_code.as_deref() == Some("noTarget") =>
                {
                    Ok(())
                }
                Err(e) => Err(e),
            };
        }
        self.put_edit(c, &path, "a SCIM Group", |g| {
            edit_members(g, user_id, edit == MemberEdit::Add)
        })
        .await
        .map(|_| ())
    }

    pub(super) async fn membership(
        &self,
        account_id: &str,
        target: &EntitlementTarget,
        edit: MemberEdit,
    ) -> AResult<()> {
        let c = self.provider().await?;
        let (gid, resolved) = self.group_id(&c, target).await?;
        match self.edit_membership(&c, &gid, account_id, edit).await {
            // The cached id may belong to a group that was deleted and re-created.
            Err(e) if e.class == ErrorClass::NotFound && resolved => {
                self.forget_group(&target.name);
                let (gid, _) = self.group_id(&c, target).await?;
                self.edit_membership(&c, &gid, account_id, edit).await
            }
            r => r,
        }
    }

    pub(super) async fn whoami(&self) -> std::result::Result<String, String> {
        match self.http.send(get("/Me")).await {
            Ok(resp) => {
                let v: Value = serde_json::from_slice(&resp.body)
                    .map_err(|_| "/Me answered with a body that is not JSON".to_string())?;
                v.get("userName")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .ok_or_else(|| "/Me has no userName".to_string())
            }
            Err(e) => Err(format!(
                "/Me answered {}",
                e.status
                    .map(|s| format!("HTTP {s}"))
                    .unwrap_or_else(|| e.class.name().to_string())
            )),
        }
    }
}

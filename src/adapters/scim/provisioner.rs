//! The provisioning side of the SCIM adapter.

use super::*;

#[async_trait]
impl Provisioner for ScimAdapter {
    async fn create_account(&self, spec: &AccountSpec) -> AResult<RemoteAccount> {
        let c = self.provider().await?;
        let req = Req::post(c.users_endpoint.clone())
            .header(ACCEPT, ACCEPT_VALUE)
            .header(CONTENT_TYPE, MEDIA_TYPE)
            .json(create_body(spec, c.enterprise_user));
        let resp = self.http.send(req).await.map_err(|mut e| {
            if e.class == ErrorClass::Conflict {
                e.message = format!("userName {:?} already exists: {}", spec.login, e.message);
            }
            e
        })?;
        if resp.body.iter().all(u8::is_ascii_whitespace) {
            // A 201 without a body (not RFC-compliant): read it back.
            return self
                .get_account_by_login(&spec.login)
                .await?
                .ok_or_else(|| {
                    AdapterError::new(
                        ErrorClass::Transient,
                        &self.about.system,
                        format!("created {:?} but cannot read it back yet", spec.login),
                    )
                    .with_status(resp.status)
                });
        }
        let obj = parse_object(&self.about.system, &resp, "the created SCIM User")?;
        self.account(&c, &resp, &Value::Object(obj))
    }

    async fn update_account(
        &self,
        external_id: &str,
        spec: &AccountSpec,
    ) -> AResult<RemoteAccount> {
        let c = self.provider().await?;
        let path = Self::user_path(&c, external_id);
        let fields = spec_fields(spec, c.enterprise_user);
        let uniqueness = |mut e: AdapterError| {
            if e.class == ErrorClass::Conflict {
                e.class = ErrorClass::Permanent;
                e.message = format!(
                    "cannot rename to userName {:?}: another account has it ({})",
                    spec.login, e.message
                );
            }
            e
        };
        if fields.is_empty() {
            return self.fetch_user(&c, external_id).await?.ok_or_else(|| {
                AdapterError::new(
                    ErrorClass::NotFound,
                    &self.about.system,
                    format!("no user {external_id}"),
                )
            });
        }
        if self.patch_enabled(&c) {
            let ops = update_ops(spec, c.enterprise_user);
            if let Some(obj) = self.patch(&path, ops).await.map_err(uniqueness)? {
                // Some providers answer 200 with the resource; use it if it is one.
                if let Ok(a) = account_from_user_with(&Value::Object(obj), c.enterprise_user) {
                    return Ok(a);
                }
            }
            return self.fetch_user(&c, external_id).await?.ok_or_else(|| {
                AdapterError::new(
                    ErrorClass::NotFound,
                    &self.about.system,
                    format!("no user {external_id}"),
                )
            });
        }
        let obj = self
            .put_edit(&c, &path, "a SCIM User", |u| {
                apply_fields(u, fields.clone());
                Ok(true)
            })
            .await
            .map_err(uniqueness)?;
        account_from_user_with(&Value::Object(obj), c.enterprise_user).map_err(|p| {
            AdapterError::new(
                ErrorClass::Permanent,
                &self.about.system,
                format!("expected a SCIM User, but {p}"),
            )
        })
    }

    async fn deactivate_account(&self, external_id: &str) -> AResult<()> {
        already_done(Edit::Deactivate, self.set_active(external_id, false).await)
    }

    async fn reactivate_account(&self, external_id: &str) -> AResult<()> {
        self.set_active(external_id, true).await
    }

    /// `DELETE /Users/{id}` (RFC 7644 §3.6); 404 means it is already gone.
    async fn delete_account(&self, external_id: &str) -> AResult<()> {
        let c = self.provider().await?;
        let path = Self::user_path(&c, external_id);
        match self
            .http
            .send(Req::delete(path).header(ACCEPT, ACCEPT_VALUE))
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.class == ErrorClass::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn add_membership(&self, account_id: &str, target: &EntitlementTarget) -> AResult<()> {
        let r = self.membership(account_id, target, MemberEdit::Add).await;
        already_done(Edit::Grant, r)
    }

    async fn remove_membership(&self, account_id: &str, target: &EntitlementTarget) -> AResult<()> {
        let r = self
            .membership(account_id, target, MemberEdit::Remove)
            .await;
        already_done(Edit::Revoke, r)
    }
}

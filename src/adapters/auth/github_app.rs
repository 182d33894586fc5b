//! A GitHub App's installation access token: the App signs a short JWT with its private
//! key (RS256; `iss` the App id, `iat` a minute in the past against clock drift, `exp`
//! within GitHub's ten minutes) and exchanges it at `POST
//! /app/installations/{installation_id}/access_tokens` for a `ghs_` token that lives an
//! hour. The request asks only for the permissions the adapter needs, so the token carries
//! no more than that even when the installation was granted more.

use super::jwt::{Signer, now_secs};
use super::oauth::{Grant, Token, sign};
use crate::adapters::error::{AResult, AdapterError};
use crate::adapters::http::{HttpClient, Req};
use crate::secrets::Secret;
use async_trait::async_trait;
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderName};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// Exchanges a GitHub App's JWT for an installation token.
pub struct AppInstallation {
    pub app_id: u64,
    pub installation_id: u64,
    pub signer: Signer,
    /// Permissions to ask for, as GitHub names them (`members` → `write`).
    pub permissions: BTreeMap<String, String>,
    /// The REST API version header to send.
    pub api_version: &'static str,
}

#[derive(Serialize)]
struct AppClaims {
    iat: u64,
    exp: u64,
    iss: String,
}

#[derive(Deserialize)]
struct InstallationToken {
    token: String,
    expires_at: chrono::DateTime<chrono::Utc>,
    #[serde(default)]
    permissions: BTreeMap<String, String>,
}

/// Permissions as scope-like strings (`members:write`), the form hygiene compares.
pub fn permission_scopes(perms: &BTreeMap<String, String>) -> Vec<String> {
    perms.iter().map(|(k, v)| format!("{k}:{v}")).collect()
}

#[async_trait]
impl Grant for AppInstallation {
    async fn fetch(&self, http: &HttpClient) -> AResult<Token> {
        let now = now_secs();
        let claims = AppClaims {
            iat: now.saturating_sub(60),
            exp: now + 540,
            iss: self.app_id.to_string(),
        };
        let jwt = sign(&self.signer, &claims, http.system())?;
        let path = format!("/app/installations/{}/access_tokens", self.installation_id);
        let body = serde_json::json!({ "permissions": self.permissions });
        let resp = http
            .send(
                Req::post(path)
                    .json(body)
                    .header(AUTHORIZATION, format!("Bearer {jwt}"))
                    .header(ACCEPT, "application/vnd.github+json")
                    .header(
                        HeaderName::from_static("x-github-api-version"),
                        self.api_version,
                    ),
            )
            .await?;
        let t: InstallationToken = resp.json(http.system(), "an installation access token")?;
        if t.token.is_empty() {
            return Err(AdapterError::bad_response(
                http.system(),
                resp.status,
                "an installation access token",
                b"(token response withheld)",
            ));
        }
        let left = (t.expires_at - chrono::Utc::now()).num_seconds().max(1) as u64;
        Ok(Token {
            value: Secret::new(t.token),
            lifetime: Duration::from_secs(left),
            scopes: permission_scopes(&t.permissions),
        })
    }

    fn who(&self) -> String {
        format!(
            "GitHub App {} (installation {})",
            self.app_id, self.installation_id
        )
    }
}

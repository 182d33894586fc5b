//! Signing keys and JWTs for the auth schemes that sign their own assertions: Okta's
//! `private_key_jwt` client assertions, Google's domain-wide delegation grant, a GitHub
//! App's JWT.

use serde::Serialize;
use std::time::{SystemTime, UNIX_EPOCH};

/// A private key ready to sign (RS256 for RSA keys, ES256 for P-256 keys), with the key id
/// to put in the JWT header where the vendor wants one.
pub struct Signer {
    pub alg: jsonwebtoken::Algorithm,
    key: jsonwebtoken::EncodingKey,
    pub key_id: Option<String>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("alg", &self.alg)
            .field("key_id", &self.key_id)
            .field("key", &"[redacted]")
            .finish()
    }
}

impl Signer {
    /// Parse a PEM private key: RSA (PKCS#1 or PKCS#8) signs RS256, P-256 (PKCS#8) ES256.
    /// The error says what the text is not, never what it is.
    pub fn from_pem(pem: &str, key_id: Option<String>) -> Result<Signer, String> {
        let (alg, key) = signing_key(pem)?;
        Ok(Signer { alg, key, key_id })
    }

    /// Only RSA keys (RS256): for vendors that accept nothing else (Google, GitHub Apps).
    pub fn rsa_from_pem(pem: &str, key_id: Option<String>) -> Result<Signer, String> {
        let key = jsonwebtoken::EncodingKey::from_rsa_pem(pem.as_bytes())
            .ok()
            .filter(|k| signs(jsonwebtoken::Algorithm::RS256, k))
            .ok_or_else(|| "is not a PEM RSA private key (RS256)".to_string())?;
        Ok(Signer {
            alg: jsonwebtoken::Algorithm::RS256,
            key,
            key_id,
        })
    }

    /// A compact JWT of `claims`.
    pub fn sign<T: Serialize>(&self, claims: &T) -> Result<String, String> {
        let mut header = jsonwebtoken::Header::new(self.alg);
        header.kid = self.key_id.clone();
        jsonwebtoken::encode(&header, claims, &self.key).map_err(|e| e.to_string())
    }
}

/// Parse a PEM private key: RSA (PKCS#1 or PKCS#8) signs RS256, P-256 (PKCS#8) ES256.
pub fn signing_key(
    pem: &str,
) -> Result<(jsonwebtoken::Algorithm, jsonwebtoken::EncodingKey), String> {
    use jsonwebtoken::{Algorithm, EncodingKey};
    if let Some(k) = EncodingKey::from_rsa_pem(pem.as_bytes())
        .ok()
        .filter(|k| signs(Algorithm::RS256, k))
    {
        return Ok((Algorithm::RS256, k));
    }
    if let Some(k) = EncodingKey::from_ec_pem(pem.as_bytes())
        .ok()
        .filter(|k| signs(Algorithm::ES256, k))
    {
        return Ok((Algorithm::ES256, k));
    }
    Err("is not a PEM private key (RSA for RS256, or P-256 in PKCS#8 for ES256)".into())
}

/// Whether `key` can sign: a PEM *public* key parses as an encoding key and fails only
/// when used, so it is tried once here, where the error can still name the setting.
fn signs(alg: jsonwebtoken::Algorithm, key: &jsonwebtoken::EncodingKey) -> bool {
    let header = jsonwebtoken::Header::new(alg);
    jsonwebtoken::encode(&header, &serde_json::json!({"probe": true}), key).is_ok()
}

/// Seconds since the Unix epoch.
pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

/// A random JWT id (128 bits, hex), so that a vendor can refuse a replayed assertion.
pub fn random_jti() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..32)
        .map(|_| format!("{:x}", rng.random_range(0..16u8)))
        .collect()
}

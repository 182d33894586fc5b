//! Verifying inbound webhook deliveries, one scheme per vendor (as each documents it):
//! - **Standard Webhooks** (`v1`): `webhook-id`, `webhook-timestamp`, `webhook-signature`
//!   (space-separated `v1,<base64>`, several during key rotation); HMAC-SHA256 with the
//!   `whsec_` secret's base64-decoded bytes over `"{id}.{timestamp}.{body}"`;
//! - **GitHub**: `X-Hub-Signature-256: sha256=<hex>` over the raw body; the delivery id is
//!   `X-GitHub-Delivery` (GitHub signs no timestamp);
//! - **Slack** (`v0`): `X-Slack-Signature: v0=<hex>` over `"v0:{timestamp}:{body}"`, with
//!   `X-Slack-Request-Timestamp`;
//! - **BambooHR**: `X-BambooHR-Signature: <hex>` over the body followed by
//!   `X-BambooHR-Timestamp`;
//! - **Okta event hooks**: no signature; the secret configured on the hook comes back in
//!   `Authorization`, compared as it is.
//!
//! Every comparison is constant-time; timestamps must be within [`TOLERANCE`] of now.
//! A rejection says why in a word (for the rejection counter) and never echoes a secret
//! or a signature.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// How far a delivery's timestamp may be from now.
pub const TOLERANCE_SECS: i64 = 300;

/// The schemes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    StandardWebhooks,
    GitHub,
    Slack,
    BambooHr,
    OktaEventHook,
}

/// Why a delivery was refused (the label of the rejection counter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// A header the scheme needs is absent.
    Unsigned,
    /// A header is there but not in the scheme's form.
    Malformed,
    /// The signature (or Okta's secret) does not match.
    BadSignature,
    /// The timestamp is outside the tolerance.
    Stale,
}

impl Rejection {
    pub fn as_str(self) -> &'static str {
        match self {
            Rejection::Unsigned => "unsigned",
            Rejection::Malformed => "malformed",
            Rejection::BadSignature => "bad_signature",
            Rejection::Stale => "stale",
        }
    }
}

/// A delivery that verified: its id where the scheme carries one (for replay checks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub delivery_id: Option<String>,
}

/// A request header by (case-insensitive) name.
pub trait Headers {
    fn get(&self, name: &str) -> Option<&str>;
}

impl Headers for axum::http::HeaderMap {
    fn get(&self, name: &str) -> Option<&str> {
        axum::http::HeaderMap::get(self, name).and_then(|v| v.to_str().ok())
    }
}

impl Headers for [(&str, &str)] {
    fn get(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }
}

fn mac(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    // HMAC takes keys of any length.
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| {
        <Hmac<Sha256> as Mac>::new_from_slice(&[0u8; 32]).expect("a 32-byte key")
    });
    for p in parts {
        m.update(p);
    }
    m.finalize().into_bytes().to_vec()
}

fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

fn fresh(ts: &str, now: i64) -> Result<(), Rejection> {
    let t: i64 = ts.trim().parse().map_err(|_| Rejection::Malformed)?;
    if (now - t).abs() > TOLERANCE_SECS {
        return Err(Rejection::Stale);
    }
    Ok(())
}

fn hex_sig(v: &str, prefix: &str) -> Result<Vec<u8>, Rejection> {
    let h = v.trim().strip_prefix(prefix).ok_or(Rejection::Malformed)?;
    hex::decode(h).map_err(|_| Rejection::Malformed)
}

/// Verify one delivery. `secret` is the source's signing secret from the keychain (for
/// Standard Webhooks the `whsec_…` text), `now` Unix seconds.
pub fn verify(
    scheme: Scheme,
    headers: &(impl Headers + ?Sized),
    body: &[u8],
    secret: &str,
    now: i64,
) -> Result<Verified, Rejection> {
    let need = |name: &str| headers.get(name).ok_or(Rejection::Unsigned);
    match scheme {
        Scheme::StandardWebhooks => {
            let (id, ts, sigs) = (
                need("webhook-id")?,
                need("webhook-timestamp")?,
                need("webhook-signature")?,
            );
            if id.contains('.') || ts.contains('.') || id.is_empty() {
                return Err(Rejection::Malformed);
            }
            let key_text = secret.strip_prefix("whsec_").unwrap_or(secret);
            let key = base64::engine::general_purpose::STANDARD
                .decode(key_text)
                .map_err(|_| Rejection::BadSignature)?;
            let want = mac(&key, &[id.as_bytes(), b".", ts.as_bytes(), b".", body]);
            let mut any_v1 = false;
            let mut ok = false;
            for s in sigs.split(' ').filter(|s| !s.is_empty()) {
                let Some(b64) = s.strip_prefix("v1,") else {
                    continue;
                };
                any_v1 = true;
                if let Ok(got) = base64::engine::general_purpose::STANDARD.decode(b64) {
                    ok |= same(&got, &want);
                }
            }
            if !any_v1 {
                return Err(Rejection::Malformed);
            }
            // Signature before time: a forged request learns nothing about the clock.
            if !ok {
                return Err(Rejection::BadSignature);
            }
            fresh(ts, now)?;
            Ok(Verified {
                delivery_id: Some(id.to_string()),
            })
        }
        Scheme::GitHub => {
            let got = hex_sig(need("x-hub-signature-256")?, "sha256=")?;
            if !same(&got, &mac(secret.as_bytes(), &[body])) {
                return Err(Rejection::BadSignature);
            }
            Ok(Verified {
                delivery_id: headers.get("x-github-delivery").map(str::to_string),
            })
        }
        Scheme::Slack => {
            let ts = need("x-slack-request-timestamp")?;
            let got = hex_sig(need("x-slack-signature")?, "v0=")?;
            let want = mac(secret.as_bytes(), &[b"v0:", ts.as_bytes(), b":", body]);
            if !same(&got, &want) {
                return Err(Rejection::BadSignature);
            }
            fresh(ts, now)?;
            Ok(Verified { delivery_id: None })
        }
        Scheme::BambooHr => {
            let ts = need("x-bamboohr-timestamp")?;
            let got = hex_sig(need("x-bamboohr-signature")?, "")?;
            if !same(&got, &mac(secret.as_bytes(), &[body, ts.as_bytes()])) {
                return Err(Rejection::BadSignature);
            }
            fresh(ts, now)?;
            Ok(Verified { delivery_id: None })
        }
        Scheme::OktaEventHook => {
            let got = need("authorization")?;
            if !same(got.as_bytes(), secret.as_bytes()) {
                return Err(Rejection::BadSignature);
            }
            Ok(Verified { delivery_id: None })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const NOW: i64 = 1_790_000_000;
    // The Standard Webhooks specification's own example secret.
    const WHSEC: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    fn b64(b: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(b)
    }

    fn std_sig(id: &str, ts: i64, body: &[u8]) -> String {
        let key = base64::engine::general_purpose::STANDARD
            .decode(WHSEC.trim_start_matches("whsec_"))
            .unwrap();
        let m = mac(
            &key,
            &[id.as_bytes(), b".", ts.to_string().as_bytes(), b".", body],
        );
        format!("v1,{}", b64(&m))
    }

    #[test]
    fn standard_webhooks_verify_and_refuse_as_the_spec_says() {
        let body = br#"{"type":"person.upserted","data":{"employee_id":"E1"}}"#;
        let ts = NOW.to_string();
        let sig = std_sig("msg_1", NOW, body);
        let h = |sig: &str, ts: &str| {
            vec![
                ("webhook-id".to_string(), "msg_1".to_string()),
                ("webhook-timestamp".to_string(), ts.to_string()),
                ("webhook-signature".to_string(), sig.to_string()),
            ]
        };
        let run = |hs: &Vec<(String, String)>, body: &[u8], now: i64| {
            let pairs: Vec<(&str, &str)> =
                hs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            verify(Scheme::StandardWebhooks, pairs.as_slice(), body, WHSEC, now)
        };
        assert_eq!(
            run(&h(&sig, &ts), body, NOW),
            Ok(Verified {
                delivery_id: Some("msg_1".into())
            })
        );
        // Key rotation: any one listed signature will do.
        let rotated = format!("v1,{} {sig}", b64(&[7u8; 32]));
        assert!(run(&h(&rotated, &ts), body, NOW).is_ok());
        assert_eq!(run(&h(&sig, &ts), b"{}", NOW), Err(Rejection::BadSignature));
        assert_eq!(run(&h(&sig, &ts), body, NOW + 301), Err(Rejection::Stale));
        assert!(
            run(&h(&sig, &ts), body, NOW - 300).is_ok(),
            "5 minutes either way"
        );
        assert_eq!(run(&h("v2,abc", &ts), body, NOW), Err(Rejection::Malformed));
        let unsigned = vec![("webhook-id".to_string(), "msg_1".to_string())];
        assert_eq!(run(&unsigned, body, NOW), Err(Rejection::Unsigned));
        // A forged signature with a stale time is refused for the signature.
        assert_eq!(
            run(&h(&format!("v1,{}", b64(&[1u8; 32])), "1"), body, NOW),
            Err(Rejection::BadSignature)
        );
    }

    /// The reference libraries' test vector (standard-webhooks/standard-webhooks, and
    /// Svix's): this secret, id, timestamp and body give exactly this signature.
    #[test]
    fn the_standard_webhooks_reference_vector_verifies() {
        let h = [
            ("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek"),
            ("webhook-timestamp", "1614265330"),
            (
                "webhook-signature",
                "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
            ),
        ];
        let body = br#"{"test": 2432232314}"#;
        assert!(verify(Scheme::StandardWebhooks, &h[..], body, WHSEC, 1_614_265_330).is_ok());
        assert_eq!(
            verify(
                Scheme::StandardWebhooks,
                &h[..],
                body,
                WHSEC,
                1_614_265_330 + 3600
            ),
            Err(Rejection::Stale)
        );
    }

    #[test]
    fn github_slack_bamboohr_and_okta() {
        let body = br#"{"action":"added"}"#;
        let secret = "It's a Secret to Everybody";
        let gh = format!("sha256={}", hex::encode(mac(secret.as_bytes(), &[body])));
        let h = [
            ("X-Hub-Signature-256", gh.as_str()),
            ("X-GitHub-Delivery", "d-1"),
        ];
        assert_eq!(
            verify(Scheme::GitHub, &h[..], body, secret, NOW),
            Ok(Verified {
                delivery_id: Some("d-1".into())
            })
        );
        assert_eq!(
            verify(Scheme::GitHub, &h[..], b"tampered", secret, NOW),
            Err(Rejection::BadSignature)
        );
        // GitHub's documented example: secret "It's a Secret to Everybody", payload
        // "Hello, World!".
        let example = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        let h = [("x-hub-signature-256", example)];
        assert!(verify(Scheme::GitHub, &h[..], b"Hello, World!", secret, NOW).is_ok());

        let ts = NOW.to_string();
        let slack = format!(
            "v0={}",
            hex::encode(mac(
                b"8f742231b10e8888abcd99yyyzzz85a5",
                &[b"v0:", ts.as_bytes(), b":", body]
            ))
        );
        let h = [
            ("x-slack-signature", slack.as_str()),
            ("x-slack-request-timestamp", ts.as_str()),
        ];
        assert!(
            verify(
                Scheme::Slack,
                &h[..],
                body,
                "8f742231b10e8888abcd99yyyzzz85a5",
                NOW
            )
            .is_ok()
        );
        assert_eq!(
            verify(
                Scheme::Slack,
                &h[..],
                body,
                "8f742231b10e8888abcd99yyyzzz85a5",
                NOW + 600
            ),
            Err(Rejection::Stale)
        );

        let bamboo = hex::encode(mac(b"pk", &[body, ts.as_bytes()]));
        let h = [
            ("x-bamboohr-signature", bamboo.as_str()),
            ("x-bamboohr-timestamp", ts.as_str()),
        ];
        assert!(verify(Scheme::BambooHr, &h[..], body, "pk", NOW).is_ok());
        assert_eq!(
            verify(Scheme::BambooHr, &h[..], body, "other", NOW),
            Err(Rejection::BadSignature)
        );

        let h = [("authorization", "hook-secret")];
        assert!(verify(Scheme::OktaEventHook, &h[..], body, "hook-secret", NOW).is_ok());
        assert_eq!(
            verify(Scheme::OktaEventHook, &h[..], body, "hook-secret2", NOW),
            Err(Rejection::BadSignature)
        );
    }

    proptest! {
        /// Any headers and body: a verdict, never a panic; and a random signature never
        /// verifies.
        #[test]
        fn arbitrary_deliveries_never_panic_or_pass(
            id in ".{0,20}", ts in ".{0,12}", sig in ".{0,80}",
            body in prop::collection::vec(any::<u8>(), 0..200),
        ) {
            for scheme in [Scheme::StandardWebhooks, Scheme::GitHub, Scheme::Slack, Scheme::BambooHr] {
                let h = [
                    ("webhook-id", id.as_str()), ("webhook-timestamp", ts.as_str()), ("webhook-signature", sig.as_str()),
                    ("x-hub-signature-256", sig.as_str()), ("x-slack-signature", sig.as_str()),
                    ("x-slack-request-timestamp", ts.as_str()), ("x-bamboohr-signature", sig.as_str()),
                    ("x-bamboohr-timestamp", ts.as_str()),
                ];
                prop_assert!(verify(scheme, &h[..], &body, WHSEC, NOW).is_err());
            }
        }
    }
}

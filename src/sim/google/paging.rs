//! Listings: which part of the directory a listing covers (`customer`, `domain`), its
//! page size, and key-cursor paging with opaque page tokens.

use super::{Inner, error, invalid, json_response, with_etag};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use std::collections::HashMap;

/// The domain (as `@domain`) a listing is limited to, None for the whole customer, from
/// `customer` and `domain`: neither, or another customer, is 400 `badRequest`; a domain
/// not the account's 404 "Domain not found.".
pub(super) fn listing_domain(
    inner: &Inner,
    q: &HashMap<String, String>,
) -> Result<Option<String>, Response> {
    let bad_request = || error(StatusCode::BAD_REQUEST, "badRequest", "Bad Request");
    let customer = q.get("customer").filter(|c| !c.is_empty());
    if customer.is_some_and(|c| c != "my_customer" && *c != inner.customer_id) {
        return Err(bad_request());
    }
    match q.get("domain").filter(|d| !d.is_empty()) {
        Some(d) if inner.domains.iter().any(|x| x.eq_ignore_ascii_case(d)) => {
            Ok(Some(format!("@{}", d.to_lowercase())))
        }
        Some(_) => Err(error(
            StatusCode::NOT_FOUND,
            "notFound",
            "Domain not found.",
        )),
        None if customer.is_some() => Ok(None),
        None => Err(bad_request()),
    }
}

/// A listing: `kind`, `etag`, the items under `field` (left out when empty, as Google
/// does) and `nextPageToken` when more follow.
pub(super) fn listing(
    kind: &str,
    field: &str,
    items: Vec<Value>,
    next: Option<String>,
) -> Response {
    let mut out = Map::new();
    out.insert("kind".into(), json!(kind));
    if !items.is_empty() {
        out.insert(field.into(), Value::Array(items));
    }
    if let Some(n) = next {
        out.insert("nextPageToken".into(), json!(n));
    }
    json_response(StatusCode::OK, with_etag(Value::Object(out)))
}

/// `maxResults`: `default` when absent; users refuse a value out of `1..=max`, groups and
/// members (`clamp`) cap it at `max`.
pub(super) fn max_results(
    q: &HashMap<String, String>,
    default: usize,
    max: usize,
    clamp: bool,
) -> Result<usize, Response> {
    let Some(raw) = q.get("maxResults") else {
        return Ok(default);
    };
    match raw.trim().parse::<i64>() {
        Ok(n) if n >= 1 && (clamp || n as usize <= max) => Ok((n as usize).min(max)),
        _ => Err(invalid(&format!(
            "Invalid value '{raw}'. Values must be within the range: [1, {max}]"
        ))),
    }
}

/// A page token: the last key returned and the listing it belongs to, with a checksum so
/// that a token made up or taken to another listing is refused.
fn page_token(secret: u64, listing: &str, key: &str) -> String {
    format!("{}.{}", hex::encode(key), token_mac(secret, listing, key))
}

fn token_mac(secret: u64, listing: &str, key: &str) -> String {
    let mut h = Sha256::new();
    h.update(secret.to_le_bytes());
    h.update(listing.as_bytes());
    h.update([0]);
    h.update(key.as_bytes());
    hex::encode(&h.finalize()[..6])
}

/// The key a page token names, if the token is one of ours for this listing.
fn token_key(secret: u64, listing: &str, token: &str) -> Result<String, Response> {
    let bad = || invalid("Invalid Input: pageToken");
    let (key, mac) = token.split_once('.').ok_or_else(bad)?;
    let key = hex::decode(key)
        .ok()
        .and_then(|k| String::from_utf8(k).ok())
        .ok_or_else(bad)?;
    match token_mac(secret, listing, &key) == mac {
        true => Ok(key),
        false => Err(bad()),
    }
}

/// One page of `items` (unique sort keys) after the key `after`, in ascending or
/// descending key order, and the last key returned when more follow.
fn page<T>(
    mut items: Vec<(String, T)>,
    descending: bool,
    after: Option<&str>,
    limit: usize,
) -> (Vec<T>, Option<String>) {
    items.sort_by(|a, b| a.0.cmp(&b.0));
    if descending {
        items.reverse();
    }
    let start = after.map_or(0, |a| {
        items.partition_point(|(k, _)| match descending {
            true => k.as_str() >= a,
            false => k.as_str() <= a,
        })
    });
    let limit = limit.max(1);
    let next = (items.len() > start + limit).then(|| items[start + limit - 1].0.clone());
    let page = items.into_iter().skip(start).take(limit).map(|(_, t)| t);
    (page.collect(), next)
}

/// Page `items` for a request: its `pageToken` checked against `listing`, and the next
/// token made.
pub(super) fn page_for<T>(
    inner: &Inner,
    listing: &str,
    q: &HashMap<String, String>,
    items: Vec<(String, T)>,
    limit: usize,
) -> Result<(Vec<T>, Option<String>), Response> {
    let after = match q.get("pageToken").filter(|t| !t.is_empty()) {
        Some(t) => Some(token_key(inner.page_secret, listing, t)?),
        None => None,
    };
    let descending = q.get("sortOrder").is_some_and(|s| s == "DESCENDING");
    let (items, next) = page(items, descending, after.as_deref(), limit);
    let next = next.map(|k| page_token(inner.page_secret, listing, &k));
    Ok((items, next))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_by_key_and_survive_inserts_between_pages() {
        let items = |keys: &[&str]| -> Vec<(String, String)> {
            keys.iter()
                .map(|k| (k.to_string(), k.to_string()))
                .collect()
        };
        let (p, next) = page(items(&["c", "a", "b", "d"]), false, None, 2);
        assert_eq!(
            (p, next.as_deref()),
            (vec!["a".into(), "b".into()], Some("b"))
        );
        // "aa" (before the cursor) and "bb" (after it) arrive between pages: nothing is
        // repeated, nothing already there is skipped, the later one is seen.
        let (p, next) = page(
            items(&["a", "aa", "b", "bb", "c", "d"]),
            false,
            Some("b"),
            2,
        );
        assert_eq!(
            (p, next.as_deref()),
            (vec!["bb".into(), "c".into()], Some("c"))
        );
        let (p, next) = page(items(&["a", "b", "c", "d"]), false, Some("c"), 2);
        assert_eq!((p, next), (vec!["d".to_string()], None));
        // A cursor whose item was deleted still works; descending walks the other way.
        let (p, _) = page(items(&["a", "c", "d"]), false, Some("b"), 5);
        assert_eq!(p, ["c", "d"]);
        let (p, next) = page(items(&["a", "b", "c", "d"]), true, None, 3);
        assert_eq!(
            (p, next.as_deref()),
            (vec!["d".into(), "c".into(), "b".into()], Some("b"))
        );
        let (p, next) = page(items(&["a", "b", "c", "d"]), true, Some("b"), 3);
        assert_eq!((p, next), (vec!["a".to_string()], None));
        // Exactly one page: no token.
        let (_, next) = page(items(&["a", "b"]), false, None, 2);
        assert_eq!(next, None);
    }

    #[test]
    fn page_tokens_are_opaque_and_bound_to_their_listing() {
        let t = page_token(9, "users", "ada@example.com");
        assert!(!t.contains("ada"), "opaque: {t}");
        assert_eq!(
            token_key(9, "users", &t).ok().as_deref(),
            Some("ada@example.com")
        );
        for (secret, listing, token) in [
            (9, "groups", t.clone()),
            (8, "users", t.clone()),
            (9, "users", t.replace('.', "")),
            (
                9,
                "users",
                format!("{}.000000000000", hex::encode("bob@example.com")),
            ),
            (9, "users", "zz.zz".to_string()),
        ] {
            assert!(
                token_key(secret, listing, &token).is_err(),
                "{listing} {token}"
            );
        }
    }
}

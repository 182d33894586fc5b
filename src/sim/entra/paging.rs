//! OData query options as Graph's directory applies them: `$top`, `$select`, the `eq`/`and`
//! subset of `$filter`, and key-cursor paging with `@odata.nextLink` and opaque
//! `$skiptoken`s.

use super::{Inner, bad_request, error, json_response, query_map};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use std::collections::HashMap;

/// A listing request: where it was sent and its query options.
pub(super) struct Query {
    /// `http://host`, for absolute next links back to the simulator.
    base: String,
    path: String,
    pub q: HashMap<String, String>,
}

impl<S: Send + Sync> FromRequestParts<S> for Query {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Query::new(&parts.headers, &parts.uri))
    }
}

impl Query {
    pub fn new(headers: &HeaderMap, uri: &Uri) -> Self {
        let host = headers
            .get("host")
            .and_then(|h| h.to_str().ok())
            .unwrap_or("127.0.0.1");
        Query {
            base: format!("http://{host}"),
            path: uri.path().to_string(),
            q: query_map(uri.query()),
        }
    }

    pub fn get(&self, k: &str) -> Option<&str> {
        self.q.get(k).map(String::as_str).filter(|v| !v.is_empty())
    }

    /// The `$filter`'s terms on these `fields` (see [`filter_terms`]).
    pub fn filter(&self, fields: &[&str]) -> Result<Vec<Term>, Response> {
        filter_terms(self.get("$filter"), fields)
    }

    /// `$top`: 100 when absent, else 1..=999.
    pub fn top(&self) -> Result<usize, Response> {
        let Some(raw) = self.get("$top") else {
            return Ok(100);
        };
        match raw.trim().parse::<usize>() {
            Ok(n) if (1..=999).contains(&n) => Ok(n),
            _ => Err(bad_request(&format!(
                "Invalid page size specified: '{raw}'. Must be between 1 and 999 inclusive."
            ))),
        }
    }

    /// `$select`: the properties asked for (each one `known` on `type_name`), None for
    /// the default projection.
    pub fn select(&self, known: &[&str], type_name: &str) -> Result<Option<Vec<String>>, Response> {
        let Some(raw) = self.get("$select") else {
            return Ok(None);
        };
        let mut out = Vec::new();
        for p in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let Some(k) = known.iter().find(|k| k.eq_ignore_ascii_case(p)) else {
                return Err(error(
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    &format!("Could not find a property named '{p}' on type '{type_name}'."),
                ));
            };
            out.push(k.to_string());
        }
        Ok(Some(out))
    }

    /// One page of `items` (unique keys) after this request's `$skiptoken`, and the next
    /// link when more follow. The token is bound to `listing`.
    pub fn page<T>(
        &self,
        inner: &Inner,
        listing: &str,
        items: Vec<(String, T)>,
        limit: usize,
    ) -> Result<(Vec<T>, Option<String>), Response> {
        let after = match self.get("$skiptoken") {
            Some(t) => Some(token_key(inner.secret, listing, t)?),
            None => None,
        };
        let (page, last) = page(items, after.as_deref(), limit);
        let next = last.map(|k| self.next_link(&skip_token(inner.secret, listing, &k)));
        Ok((page, next))
    }

    /// This request's URL with `$skiptoken` replaced.
    fn next_link(&self, token: &str) -> String {
        let mut keys: Vec<&String> = self.q.keys().filter(|k| *k != "$skiptoken").collect();
        keys.sort();
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        for k in keys {
            s.append_pair(k, &self.q[k]);
        }
        s.append_pair("$skiptoken", token);
        format!("{}{}?{}", self.base, self.path, s.finish())
    }
}

/// One condition of a `$filter`: `field eq value`.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Term {
    pub field: String,
    pub value: Value,
}

impl Term {
    /// Strings compare case-insensitively, as the directory does.
    pub fn matches(&self, actual: &Value) -> bool {
        match (&self.value, actual) {
            (Value::String(a), Value::String(b)) => a.eq_ignore_ascii_case(b),
            (a, b) => a == b,
        }
    }
}

fn unsupported(message: &str) -> Response {
    error(StatusCode::BAD_REQUEST, "Request_UnsupportedQuery", message)
}

/// The terms of a `$filter` (all must hold): `field eq 'text'`, `field eq true|false`,
/// joined by `and`. A field not in `fields` is 400 `Request_UnsupportedQuery`, as is any
/// other operator; text that does not parse is 400 `BadRequest`.
pub(super) fn filter_terms(raw: Option<&str>, fields: &[&str]) -> Result<Vec<Term>, Response> {
    let Some(raw) = raw.filter(|r| !r.trim().is_empty()) else {
        return Ok(Vec::new());
    };
    let invalid = || {
        error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            &format!("Invalid filter clause: {raw}"),
        )
    };
    let mut terms = Vec::new();
    let mut rest = raw.trim();
    loop {
        let (name, tail) = rest.split_once(' ').ok_or_else(invalid)?;
        let Some(field) = fields.iter().find(|f| f.eq_ignore_ascii_case(name)) else {
            return Err(unsupported(&format!(
                "Unsupported or invalid query filter clause specified for property '{name}' of resource 'directoryObject'."
            )));
        };
        let (op, tail) = tail.trim_start().split_once(' ').ok_or_else(invalid)?;
        if !op.eq_ignore_ascii_case("eq") {
            return Err(unsupported("Unsupported Query."));
        }
        let tail = tail.trim_start();
        let (value, tail) = if let Some(quoted) = tail.strip_prefix('\'') {
            let (text, after) = quoted_text(quoted).ok_or_else(invalid)?;
            (Value::String(text), after)
        } else {
            let (word, after) = tail.split_at(tail.find(' ').unwrap_or(tail.len()));
            let v = match word.to_ascii_lowercase().as_str() {
                "true" => json!(true),
                "false" => json!(false),
                _ => return Err(invalid()),
            };
            (v, after)
        };
        terms.push(Term {
            field: field.to_string(),
            value,
        });
        let tail = tail.trim_start();
        if tail.is_empty() {
            return Ok(terms);
        }
        let (and, next) = tail.split_once(' ').ok_or_else(invalid)?;
        if !and.eq_ignore_ascii_case("and") {
            return Err(unsupported("Unsupported Query."));
        }
        rest = next.trim_start();
    }
}

/// The text of a quoted OData string (`''` is a quote) after its opening quote, and what
/// follows its closing quote.
fn quoted_text(s: &str) -> Option<(String, &str)> {
    let mut out = String::new();
    let mut chars = s.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c != '\'' {
            out.push(c);
        } else if chars.peek().is_some_and(|(_, n)| *n == '\'') {
            out.push('\'');
            chars.next();
        } else {
            return Some((out, &s[i + 1..]));
        }
    }
    None
}

/// `{"@odata.context", "value", "@odata.nextLink"}`.
pub(super) fn collection(context: &str, items: Vec<Value>, next: Option<String>) -> Response {
    let mut out = Map::new();
    out.insert("@odata.context".into(), json!(context));
    if let Some(n) = next {
        out.insert("@odata.nextLink".into(), json!(n));
    }
    out.insert("value".into(), Value::Array(items));
    json_response(StatusCode::OK, Value::Object(out))
}

/// Only the `select`ed properties of `v` (annotations kept), or `v` when None.
pub(super) fn project(v: Value, select: Option<&[String]>) -> Value {
    match (v, select) {
        (Value::Object(m), Some(sel)) => Value::Object(
            m.into_iter()
                .filter(|(k, _)| k.starts_with('@') || sel.iter().any(|s| s == k))
                .collect(),
        ),
        (v, _) => v,
    }
}

/// A skip token: the last key returned and the listing it belongs to, with a checksum so
/// that a token made up or taken to another listing is refused.
fn skip_token(secret: u64, listing: &str, key: &str) -> String {
    format!(
        "RFNwdAIA{}{}",
        hex::encode(key),
        token_mac(secret, listing, key)
    )
}

fn token_mac(secret: u64, listing: &str, key: &str) -> String {
    let mut h = Sha256::new();
    h.update(secret.to_le_bytes());
    h.update(listing.as_bytes());
    h.update([0]);
    h.update(key.as_bytes());
    hex::encode(&h.finalize()[..6])
}

/// The key a skip token names, if the token is one of ours for this listing.
fn token_key(secret: u64, listing: &str, token: &str) -> Result<String, Response> {
    let bad = || bad_request("Specified page token value is invalid or expired.");
    let body = token.strip_prefix("RFNwdAIA").ok_or_else(bad)?;
    let split = body.len().checked_sub(12).ok_or_else(bad)?;
    let (key, mac) = (body.get(..split).ok_or_else(bad)?, &body[split..]);
    let key = hex::decode(key)
        .ok()
        .and_then(|k| String::from_utf8(k).ok())
        .ok_or_else(bad)?;
    match token_mac(secret, listing, &key) == mac {
        true => Ok(key),
        false => Err(bad()),
    }
}

/// One page of `items` (unique keys) in key order after the key `after`, and the last key
/// returned when more follow.
fn page<T>(
    mut items: Vec<(String, T)>,
    after: Option<&str>,
    limit: usize,
) -> (Vec<T>, Option<String>) {
    items.sort_by(|a, b| a.0.cmp(&b.0));
    let start = after.map_or(0, |a| items.partition_point(|(k, _)| k.as_str() <= a));
    let limit = limit.max(1);
    let next = (items.len() > start + limit).then(|| items[start + limit - 1].0.clone());
    let page = items.into_iter().skip(start).take(limit).map(|(_, t)| t);
    (page.collect(), next)
}

#[cfg(test)]
mod tests {
    use super::super::tests::read;
    use super::*;

    fn refusal(r: Result<Vec<Term>, Response>) -> String {
        match r {
            Ok(t) => format!("{t:?}"),
            Err(r) => {
                let (st, v) = read(r);
                format!("{st} {}", v["error"]["code"].as_str().unwrap_or(""))
            }
        }
    }

    #[test]
    fn filters_parse_eq_and_and_only() {
        let fields = &["userPrincipalName", "employeeId", "accountEnabled"];
        let t = filter_terms(
            Some("userprincipalname eq 'O''Brien@example.com' and accountEnabled eq FALSE"),
            fields,
        )
        .expect("parses");
        assert_eq!(
            t,
            [
                Term {
                    field: "userPrincipalName".into(),
                    value: json!("O'Brien@example.com")
                },
                Term {
                    field: "accountEnabled".into(),
                    value: json!(false)
                }
            ]
        );
        assert!(t[0].matches(&json!("o'brien@EXAMPLE.com")));
        assert!(!t[0].matches(&Value::Null) && !t[1].matches(&json!(true)));
        let q = filter_terms(Some("employeeId eq 'E 1 and x'"), fields).expect("spaces");
        assert_eq!(q[0].value, json!("E 1 and x"));
        assert!(filter_terms(None, fields).expect("none").is_empty());
        for (f, want) in [
            ("department eq 'x'", "400 Request_UnsupportedQuery"),
            ("employeeId ne 'x'", "400 Request_UnsupportedQuery"),
            (
                "employeeId eq 'x' or employeeId eq 'y'",
                "400 Request_UnsupportedQuery",
            ),
            ("employeeId eq 'unterminated", "400 BadRequest"),
            ("employeeId eq", "400 BadRequest"),
            ("accountEnabled eq maybe", "400 BadRequest"),
            ("employeeId eq 'x' and", "400 BadRequest"),
        ] {
            assert_eq!(refusal(filter_terms(Some(f), fields)), want, "{f}");
        }
    }

    #[test]
    fn pages_by_key_and_survive_inserts_between_pages() {
        let items = |keys: &[&str]| -> Vec<(String, String)> {
            keys.iter()
                .map(|k| (k.to_string(), k.to_string()))
                .collect()
        };
        let (p, next) = page(items(&["c", "a", "b", "d"]), None, 2);
        assert_eq!(
            (p, next.as_deref()),
            (vec!["a".into(), "b".into()], Some("b"))
        );
        // "aa" (before the cursor) and "bb" (after it) arrive between pages.
        let (p, next) = page(items(&["a", "aa", "b", "bb", "c", "d"]), Some("b"), 2);
        assert_eq!(
            (p, next.as_deref()),
            (vec!["bb".into(), "c".into()], Some("c"))
        );
        let (p, next) = page(items(&["a", "b", "c", "d"]), Some("c"), 2);
        assert_eq!((p, next), (vec!["d".to_string()], None));
        let (_, next) = page(items(&["a", "b"]), None, 2);
        assert_eq!(next, None, "exactly one page: no link");
    }

    #[test]
    fn skip_tokens_are_opaque_and_bound_to_their_listing() {
        let t = skip_token(9, "users", "4f0c-id");
        assert!(!t.contains("4f0c"), "opaque: {t}");
        assert_eq!(token_key(9, "users", &t).ok().as_deref(), Some("4f0c-id"));
        for (secret, listing, token) in [
            (9, "members:g1", t.clone()),
            (8, "users", t.clone()),
            (9, "users", t[..t.len() - 1].to_string()),
            (9, "users", "RFNwdAIA".to_string()),
            (9, "users", "garbage".to_string()),
            (9, "users", format!("RFNwdAIAzz{}", &t[t.len() - 12..])),
        ] {
            assert!(
                token_key(secret, listing, &token).is_err(),
                "{listing} {token}"
            );
        }
    }

    #[test]
    fn next_links_keep_the_query_and_replace_the_token() {
        let mut h = HeaderMap::new();
        h.insert("host", "127.0.0.1:9".parse().expect("host"));
        let uri: Uri = "/v1.0/users?$top=2&$select=id&$skiptoken=old"
            .parse()
            .expect("uri");
        let q = Query::new(&h, &uri);
        let link = q.next_link("new");
        assert_eq!(
            link,
            "http://127.0.0.1:9/v1.0/users?%24select=id&%24top=2&%24skiptoken=new"
        );
        assert_eq!(q.top().ok(), Some(2));
        let (st, _) = read(
            Query::new(&h, &"/x?$top=1000".parse().expect("uri"))
                .top()
                .expect_err("1000"),
        );
        assert_eq!(st, 400);
        let sel = q
            .select(&["id", "displayName"], "microsoft.graph.user")
            .expect("known");
        assert_eq!(sel, Some(vec!["id".to_string()]));
        let v = project(
            json!({"@odata.type": "t", "id": "1", "mail": null}),
            sel.as_deref(),
        );
        assert_eq!(v, json!({"@odata.type": "t", "id": "1"}));
    }
}

//! GitHub's page-number paging: `per_page` (default 30, at most 100) and `page` (from 1),
//! with a `Link` header naming the `prev`, `next`, `last` and `first` pages as GitHub does
//! (`next` and `last` while there is more; `first` and `prev` after the first page).

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use serde_json::Value;
use std::collections::HashMap;

pub(super) const DEFAULT_PER_PAGE: usize = 30;
pub(super) const MAX_PER_PAGE: usize = 100;

/// The query of a request, decoded (later values win); names kept in order for the links.
#[derive(Debug, Clone, Default)]
pub(super) struct Query {
    pairs: Vec<(String, String)>,
    map: HashMap<String, String>,
}

impl Query {
    pub(super) fn parse(raw: Option<&str>) -> Query {
        let pairs: Vec<(String, String)> =
            url::form_urlencoded::parse(raw.unwrap_or("").as_bytes())
                .into_owned()
                .collect();
        let map = pairs.iter().cloned().collect();
        Query { pairs, map }
    }

    pub(super) fn get(&self, name: &str) -> Option<&str> {
        self.map.get(name).map(String::as_str)
    }

    /// `name`, or `default` when absent.
    pub(super) fn or<'a>(&'a self, name: &str, default: &'a str) -> &'a str {
        self.get(name).unwrap_or(default)
    }

    fn number(&self, name: &str) -> Option<usize> {
        self.get(name).and_then(|v| v.trim().parse::<usize>().ok())
    }

    /// The page asked for: a missing, zero or unparsable `per_page` is the default, a larger
    /// one is capped at 100; `page` counts from 1.
    pub(super) fn page(&self) -> Page {
        let per_page = match self.number("per_page") {
            Some(0) | None => DEFAULT_PER_PAGE,
            Some(n) => n.min(MAX_PER_PAGE),
        };
        let page = self.number("page").unwrap_or(1).max(1);
        Page { per_page, page }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Page {
    pub per_page: usize,
    pub page: usize,
}

impl Page {
    /// This page's slice of `items`.
    pub(super) fn slice<'a, T>(&self, items: &'a [T]) -> &'a [T] {
        let start = (self.page - 1).saturating_mul(self.per_page);
        if start >= items.len() {
            return &[];
        }
        let end = start.saturating_add(self.per_page).min(items.len());
        &items[start..end]
    }

    /// How many pages `total` items make (at least 1).
    pub(super) fn last(&self, total: usize) -> usize {
        total.div_ceil(self.per_page).max(1)
    }
}

/// The `Link` header for `page` of `total` items at `url_path` (`http://host/path`), keeping
/// the request's other query parameters. None when everything fits on one page.
pub(super) fn link(url_path: &str, query: &Query, page: Page, total: usize) -> Option<String> {
    let last = page.last(total);
    if last == 1 && page.page == 1 {
        return None;
    }
    let at = |n: usize| {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in &query.pairs {
            if k != "page" && k != "per_page" {
                q.append_pair(k, v);
            }
        }
        q.append_pair("per_page", &page.per_page.to_string());
        q.append_pair("page", &n.to_string());
        format!("<{url_path}?{}>", q.finish())
    };
    let mut rels = Vec::new();
    if page.page > 1 {
        rels.push(format!("{}; rel=\"prev\"", at((page.page - 1).min(last))));
    }
    if page.page < last {
        rels.push(format!("{}; rel=\"next\"", at(page.page + 1)));
        rels.push(format!("{}; rel=\"last\"", at(last)));
    }
    if page.page > 1 {
        rels.push(format!("{}; rel=\"first\"", at(1)));
    }
    Some(rels.join(", "))
}

/// A listing request: its query, and where its links point (`http://host/path`).
pub(super) struct Listing {
    pub q: Query,
    pub base: String,
    path: String,
}

impl<S: Send + Sync> FromRequestParts<S> for Listing {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Listing {
            q: Query::parse(parts.uri.query()),
            base: super::shapes::base(&parts.headers),
            path: parts.uri.path().to_string(),
        })
    }
}

impl Listing {
    /// The page asked for of `items`, as a JSON array with its `Link` header.
    pub(super) fn respond(&self, items: Vec<Value>) -> Response {
        let page = self.q.page();
        let url = format!("{}{}", self.base, self.path);
        let link = link(&url, &self.q, page, items.len());
        let body = Value::Array(page.slice(&items).to_vec());
        let mut r = super::shapes::json_response(StatusCode::OK, body);
        if let Some(v) = link.and_then(|l| HeaderValue::from_str(&l).ok()) {
            r.headers_mut().insert("link", v);
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Query {
        Query::parse(Some(s))
    }

    fn at(per_page: usize, page: usize) -> Page {
        Page { per_page, page }
    }

    #[test]
    fn per_page_defaults_caps_and_pages_count_from_one() {
        assert_eq!(q("").page(), at(30, 1));
        assert_eq!(q("per_page=500&page=0").page(), at(100, 1));
        assert_eq!(q("per_page=0&page=x").page(), at(30, 1));
        assert_eq!(q("per_page=7&page=3").page(), at(7, 3));
        let items: Vec<u32> = (1..=7).collect();
        let p = at(3, 3);
        assert_eq!(p.slice(&items), &[7]);
        assert_eq!(at(3, 4).slice(&items), &[] as &[u32]);
        assert_eq!(p.last(7), 3);
        assert_eq!(p.last(0), 1);
    }

    #[test]
    fn links_name_next_last_then_prev_first_and_keep_other_parameters() {
        let url = "http://h/orgs/acme/members";
        let query = q("role=admin&per_page=2");
        assert_eq!(
            link(url, &query, query.page(), 2),
            None,
            "one page: no Link"
        );
        let first = link(url, &query, query.page(), 5).expect("link");
        assert_eq!(
            first,
            "<http://h/orgs/acme/members?role=admin&per_page=2&page=2>; rel=\"next\", \
             <http://h/orgs/acme/members?role=admin&per_page=2&page=3>; rel=\"last\""
        );
        let mid = link(url, &query, at(2, 2), 5).expect("link");
        assert!(mid.contains("page=1>; rel=\"prev\""), "{mid}");
        assert!(mid.contains("page=3>; rel=\"next\""), "{mid}");
        assert!(mid.contains("page=1>; rel=\"first\""), "{mid}");
        let last = link(url, &query, at(2, 3), 5).expect("link");
        assert!(!last.contains("rel=\"next\""), "{last}");
        assert!(last.contains("page=2>; rel=\"prev\""), "{last}");
        // Past the end: prev points at the last page, no next.
        let past = link(url, &query, at(2, 9), 5).expect("link");
        assert!(
            past.starts_with(
                "<http://h/orgs/acme/members?role=admin&per_page=2&page=3>; rel=\"prev\""
            ),
            "{past}"
        );
    }
}

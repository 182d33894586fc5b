//! Paging styles: RFC 8288 Link headers (Okta, GitHub), opaque cursors and page tokens
//! (Google, Graph's `@odata.nextLink`, AWS NextToken/Marker), SCIM startIndex; and
//! [`collect_all`], which reads every page of any of them.

use crate::adapters::Page;
use crate::adapters::error::{AResult, AdapterError, ErrorClass};
use reqwest::header::HeaderMap;

/// The `rel="next"` target of an RFC 8288 Link header (Okta, GitHub).
pub fn link_next(headers: &HeaderMap) -> Option<String> {
    for value in headers.get_all(reqwest::header::LINK) {
        let Ok(v) = value.to_str() else { continue };
        for part in v.split(',') {
            let mut segs = part.split(';');
            let target = segs.next()?.trim();
            let is_next = segs.any(|p| {
                let p = p.trim().replace(' ', "");
                p == "rel=\"next\"" || p == "rel=next"
            });
            if is_next && target.starts_with('<') && target.ends_with('>') {
                return Some(target[1..target.len() - 1].to_string());
            }
        }
    }
    None
}

/// SCIM (RFC 7644 §3.4.2.4): the next startIndex, or None when this page was the last.
pub fn scim_next_start(start_index: u64, items_on_page: u64, total_results: u64) -> Option<u64> {
    if items_on_page == 0 {
        return None;
    }
    let next = start_index + items_on_page;
    (next <= total_results).then_some(next)
}

/// Collect every page of a listing. A page that fails is retried from its own cursor
/// (the pages before it are kept) up to `page_retries` times for retryable errors; then
/// the whole listing fails. It never returns a silent partial result.
pub async fn collect_all<T, F, Fut>(mut fetch: F, page_retries: u32) -> AResult<Vec<T>>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: std::future::Future<Output = AResult<Page<T>>>,
{
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0u32;
    loop {
        let mut tries = 0;
        let page = loop {
            match fetch(cursor.clone()).await {
                Ok(p) => break p,
                Err(e) if e.class.is_retryable() && tries < page_retries => {
                    tries += 1;
                    let wait = e
                        .class
                        .retry_after()
                        .unwrap_or(std::time::Duration::from_millis(50 * 2u64.pow(tries)));
                    tokio::time::sleep(wait).await;
                }
                Err(mut e) => {
                    e.message = format!(
                        "listing failed on page {} after {} pages: {}",
                        pages + 1,
                        pages,
                        e.message
                    );
                    return Err(e);
                }
            }
        };
        pages += 1;
        out.extend(page.items);
        match page.next {
            Some(n) if Some(&n) != cursor.as_ref() => cursor = Some(n),
            Some(_) => {
                return Err(AdapterError::new(
                    ErrorClass::Permanent,
                    "",
                    "pagination cursor did not advance; refusing to loop",
                ));
            }
            None => return Ok(out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::kit::testkit::headers;

    #[test]
    fn link_header_next() {
        let h = headers(&[(
            "link",
            "<https://x.okta.com/api/v1/users?after=abc&limit=2>; rel=\"next\", <https://x.okta.com/api/v1/users?limit=2>; rel=\"self\"",
        )]);
        assert_eq!(
            link_next(&h).as_deref(),
            Some("https://x.okta.com/api/v1/users?after=abc&limit=2")
        );
        let h = headers(&[("link", "<https://x/a>; rel=\"self\"")]);
        assert_eq!(link_next(&h), None);
    }

    #[test]
    fn scim_paging() {
        assert_eq!(scim_next_start(1, 10, 25), Some(11));
        assert_eq!(scim_next_start(21, 5, 25), None);
        assert_eq!(scim_next_start(1, 0, 25), None);
    }
    use std::sync::atomic::{AtomicU32, Ordering};

    fn pages(
        fail_on: u32,
        fail_times: u32,
        class: ErrorClass,
    ) -> impl FnMut(Option<String>) -> std::future::Ready<AResult<Page<u32>>> {
        let calls = std::sync::Arc::new(AtomicU32::new(0));
        move |cursor: Option<String>| {
            let n: u32 = cursor
                .as_deref()
                .map(|c| c.parse().unwrap_or(0))
                .unwrap_or(1);
            if n == fail_on && calls.fetch_add(1, Ordering::SeqCst) < fail_times {
                return std::future::ready(Err(AdapterError::new(
                    class.clone(),
                    "sim",
                    "page failed",
                )));
            }
            let next = if n < 10 {
                Some((n + 1).to_string())
            } else {
                None
            };
            std::future::ready(Ok(Page {
                items: vec![n],
                next,
            }))
        }
    }

    #[tokio::test]
    async fn listing_resumes_from_the_failed_page() {
        let all = collect_all(pages(7, 2, ErrorClass::Transient), 3)
            .await
            .unwrap();
        assert_eq!(all, (1..=10).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn listing_fails_whole_rather_than_partially() {
        let e = collect_all(pages(7, 99, ErrorClass::Transient), 2)
            .await
            .unwrap_err();
        assert!(e.message.contains("page 7 after 6 pages"), "{}", e.message);
        let e = collect_all(pages(7, 1, ErrorClass::Permanent), 5)
            .await
            .unwrap_err();
        assert_eq!(e.class, ErrorClass::Permanent);
    }
}

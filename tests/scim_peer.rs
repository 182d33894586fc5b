//! The SCIM adapter against a real SCIM 2.0 service provider: scim2-server, one per test,
//! on loopback. No mocks; faults come from the generic fault-injecting proxy.
//!
//! Needs the peers venv (see tests/common/scim_server.rs). Without it these tests fail and
//! print the install command:
//!
//! ```text
//! python3 -m venv .peers/venv && .peers/venv/bin/pip install --no-deps -r .ci/peers-requirements.txt
//! ```
//!
//! Most tests run twice: against scim2-server as it ships (every feature: PATCH, filter,
//! sort, ETags) and against one that announces, and enforces, a minimal
//! ServiceProviderConfig (no PATCH, no filter, no sort, maxResults 7). scim2-server answers
//! 501 to a PATCH or a filter it does not announce, so the second run proves the adapter
//! adapted rather than merely worked.

#[path = "common/scim_contract.rs"]
mod contract;
#[path = "common/scim_server.rs"]
mod scim_server;

use accessdesk::adapters::http::RateLimiter;
use accessdesk::adapters::prelude::*;
use accessdesk::adapters::registry::AdapterContext;
use contract::{
    CREDENTIAL, Keychain, SYSTEM, adapter, adapter_with, config, create_group, group, methods_seen,
    short_timeouts, spec,
};
use scim_server::ScimServer;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// scim2-server announcing (and enforcing) the least a provider can offer, with ETags.
pub fn minimal_config() -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
        "patch": {"supported": false},
        "bulk": {"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": false, "maxResults": 7},
        "changePassword": {"supported": false},
        "sort": {"supported": false},
        "etag": {"supported": true},
        "authenticationSchemes": []
    })
}

// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn authenticate_reports_what_the_provider_supports_and_how_the_adapter_adapts() {
    let t = Instant::now();
    let full = ScimServer::start().await;
    // Through the registry, as `accessdesk system test` builds it.
    let cfg = config(&full.base_url(), "");
    let keychain = Keychain(full.token.clone());
    let built = accessdesk::adapters::registry::build_with(AdapterContext {
        entry: &cfg.catalog.systems[SYSTEM],
        secrets: &keychain,
        limiter: RateLimiter::new(SYSTEM, None, 4),
        timeouts: short_timeouts(),
    })
    .expect("registry builds the scim adapter");
    assert_eq!(built.api_version(), "2.0");
    let id = built.authenticate().await.expect("authenticate");
    assert_eq!(id.principal, format!("127.0.0.1:{}", full.port));
    assert_eq!(
        id.scopes,
        [
            "patch",
            "filter(maxResults=1000)",
            "sort",
            "etag",
            "bulk",
            "changePassword",
            "enterpriseUser"
        ]
    );
    let d = &id.details;
    assert_eq!(d["writes"], "PATCH");
    assert_eq!(d["lookups"], "filter");
    assert_eq!(
        d["page_size"], "1000",
        "without page_size a listing asks for the advertised maxResults"
    );
    assert_eq!(d["listing_order"], "sortBy=meta.created");
    assert_eq!(d["enterprise_extension"], "yes");
    assert_eq!(d["auth_schemes"], "oauthbearertoken");
    assert_eq!(d["credential"], format!("keyring:{CREDENTIAL}"));
    assert_eq!(d["users"], "0");
    assert!(d["identity"].contains("/Me answered HTTP 501"), "{d:?}");
    assert!(!format!("{id:?}").contains(&full.token));

    let minimal = ScimServer::start_with(Some(minimal_config())).await;
    let id = adapter(&minimal, "page_size = 50")
        .authenticate()
        .await
        .expect("authenticate");
    assert_eq!(id.scopes, ["etag", "enterpriseUser"]);
    assert_eq!(id.details["writes"], "GET + PUT with If-Match");
    assert_eq!(id.details["lookups"], "paged scan, matched client-side");
    assert_eq!(
        id.details["page_size"], "7",
        "filter.maxResults caps the page size"
    );
    assert_eq!(id.details["listing_order"], "provider order");
    // Settings can turn advertised features off.
    let id = adapter(
        &full,
        "use_patch = false\nuse_etag = false\nuse_filter = false",
    )
    .authenticate()
    .await
    .unwrap();
    assert_eq!(id.details["writes"], "GET + PUT");
    eprintln!("authenticate: {:?}", t.elapsed());
}

#[tokio::test]
async fn user_lifecycle_with_patch_and_filters() {
    let t = Instant::now();
    let server = ScimServer::start().await;
    contract::lifecycle(&server, &adapter(&server, "")).await;
    let (methods, filtered) = methods_seen(&server);
    assert!(methods.contains("PATCH") && filtered, "{methods:?}");
    assert!(
        !methods.contains("PUT"),
        "PATCH is supported: no PUT: {methods:?}"
    );
    eprintln!("lifecycle (PATCH): {:?}", t.elapsed());
}

#[tokio::test]
async fn user_lifecycle_with_put_and_scans_when_the_provider_lacks_patch_and_filter() {
    let t = Instant::now();
    let server = ScimServer::start_with(Some(minimal_config())).await;
    contract::lifecycle(&server, &adapter(&server, "")).await;
    let (methods, filtered) = methods_seen(&server);
    assert!(methods.contains("PUT"), "{methods:?}");
    assert!(!methods.contains("PATCH"), "{methods:?}");
    assert!(
        !filtered,
        "no filter was sent to a provider without filters"
    );
    assert!(
        !server.log().contains("\" 501 "),
        "nothing the provider does not support was tried:\n{}",
        server.log()
    );
    eprintln!("lifecycle (PUT): {:?}", t.elapsed());
}

#[tokio::test]
async fn a_duplicate_create_is_a_conflict() {
    contract::duplicate_create(&ScimServer::start().await).await;
}

#[tokio::test]
async fn group_membership_add_remove_and_list_both_ways() {
    let t = Instant::now();
    let server = ScimServer::start().await;
    contract::memberships(&server, &adapter(&server, "")).await;
    let (methods, _) = methods_seen(&server);
    assert!(!methods.contains("PUT"), "{methods:?}");
    eprintln!("memberships (PATCH, filters): {:?}", t.elapsed());
}

#[tokio::test]
async fn group_membership_without_patch_or_filter() {
    let t = Instant::now();
    let server = ScimServer::start_with(Some(minimal_config())).await;
    contract::memberships(&server, &adapter(&server, "")).await;
    let (methods, filtered) = methods_seen(&server);
    assert!(!methods.contains("PATCH") && !filtered, "{methods:?}");
    eprintln!("memberships (PUT, scans): {:?}", t.elapsed());
}

#[tokio::test]
async fn listings_page_through_25_accounts_10_at_a_time() {
    let t = Instant::now();
    let server = ScimServer::start().await;
    contract::paging(&server, &adapter(&server, "page_size = 10"), 10).await;
    assert!(
        server
            .requests()
            .iter()
            .any(|r| r.contains("startIndex=21&count=10")),
        "{:?}",
        server.requests()
    );
    eprintln!("paging (10): {:?}", t.elapsed());
}

#[tokio::test]
async fn reconciliation_reads_groups_accounts_and_members_with_their_attributes() {
    let t = Instant::now();
    let server = ScimServer::start().await;
    contract::reconciliation_reads(&server, &adapter(&server, "page_size = 2")).await;
    let server = ScimServer::start_with(Some(minimal_config())).await;
    contract::reconciliation_reads(&server, &adapter(&server, "page_size = 2")).await;
    assert!(
        !server.log().contains("\" 501 "),
        "nothing the provider does not support was tried:\n{}",
        server.log()
    );
    eprintln!("reconciliation reads: {:?}", t.elapsed());
}

#[tokio::test]
async fn listings_respect_the_providers_max_results() {
    let t = Instant::now();
    // Asks for 10 a page; the provider returns at most 7.
    let server = ScimServer::start_with(Some(minimal_config())).await;
    contract::paging(&server, &adapter(&server, "page_size = 10"), 7).await;
    eprintln!("paging (maxResults 7): {:?}", t.elapsed());
}

#[tokio::test]
async fn a_wrong_token_is_unauthorized_names_the_credential_and_is_not_retried() {
    contract::wrong_token(&ScimServer::start().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operations_through_a_10_percent_fault_rate_converge_without_duplicates() {
    contract::faults_converge(&ScimServer::start().await).await;
}

/// Everything tracing writes, at every level, from every crate.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A process-wide subscriber, installed once. (A thread-local `set_default` can miss events:
/// tracing caches each callsite's interest, and other test threads may register them
/// first.) It also captures what the other tests of this binary log meanwhile.
fn capture_all_logs() -> Captured {
    static CAPTURED: std::sync::OnceLock<Captured> = std::sync::OnceLock::new();
    CAPTURED
        .get_or_init(|| {
            let captured = Captured::default();
            let writer = captured.clone();
            let subscriber = tracing_subscriber::fmt()
                .with_max_level(tracing::Level::TRACE)
                .with_ansi(false)
                .with_writer(move || writer.clone())
                .finish();
            tracing::subscriber::set_global_default(subscriber)
                .expect("nothing else in this test binary installs a subscriber");
            captured
        })
        .clone()
}

#[tokio::test]
async fn the_token_never_appears_in_logs_errors_or_debug() {
    let server = ScimServer::start().await;
    let captured = capture_all_logs();
    let a = adapter(&server, "");
    let mut shown: Vec<String> = vec![format!("{a:?}")];
    let id = a.authenticate().await.unwrap();
    shown.push(format!("{id:?}"));
    shown.push(serde_json::to_string(&id).unwrap());
    let acc = a.create_account(&spec(1, "leak")).await.unwrap();
    create_group(&server, "leak-group").await;
    a.add_membership(&acc.external_id, &group("leak-group"))
        .await
        .unwrap();
    a.deactivate_account(&acc.external_id).await.unwrap();
    let mut errors = vec![
        a.create_account(&spec(1, "leak")).await.unwrap_err(),
        a.update_account("missing", &spec(2, "leak"))
            .await
            .unwrap_err(),
        a.add_membership(&acc.external_id, &group("missing-group"))
            .await
            .unwrap_err(),
    ];
    // The token of another credential, refused.
    let other = format!("{}-wrong", server.token);
    errors.push(
        adapter_with(&server.base_url(), &other, "")
            .authenticate()
            .await
            .unwrap_err(),
    );
    for e in &errors {
        shown.push(e.to_string());
        shown.push(format!("{e:?}"));
        shown.push(serde_json::to_string(e).unwrap());
    }
    let logs = String::from_utf8_lossy(&captured.0.lock().unwrap()).into_owned();
    assert!(logs.contains("http"), "requests were logged:\n{logs}");
    for text in shown.iter().chain(std::iter::once(&logs)) {
        assert!(
            !text.contains(&server.token),
            "the token leaked into: {text}"
        );
    }
}

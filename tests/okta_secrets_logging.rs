//! Secrets never reach logs, errors or Debug output of the Okta adapter (SSWS and OAuth).
//!
//! In a test binary of its own: it installs a thread-local tracing subscriber, and
//! tracing caches per-callsite interest process-wide, so tests running beside it in the
//! same process could make it miss events under load.

#[path = "okta_support/mod.rs"]
mod okta_support;

use accessdesk::adapters::http::install_crypto_provider;
use accessdesk::adapters::prelude::*;
use accessdesk::sim::okta::{self, OktaSimOptions};
use okta_support::*;

/// Collects everything the adapter logs (every level) for the leak check below.
#[derive(Clone, Default)]
struct LogBuffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogBuffer {
    type Writer = LogBuffer;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[test]
fn secrets_never_reach_logs_errors_or_debug_output() {
    install_crypto_provider();
    let logs = LogBuffer::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(logs.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    // One thread: the simulator, the adapter and the subscriber share it.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (errors, issued) = rt.block_on(async {
        let (server, sim) = okta::spawn(OktaSimOptions::default()).await.unwrap();
        sim.add_api_token(SSWS_TOKEN);
        sim.seed_group("eng");
        let client = "0oa1testclient000003";
        sim.register_client(
            client,
            &fixture("test-ec-public.pem"),
            &["okta.users.manage", "okta.groups.manage"],
        );
        let mut errors = Vec::new();
        let ssws = ssws_adapter(&server.base_url(), 200);
        let jwt = adapter_with(
            &server.base_url(),
            &fixture("test-ec-private.pem"),
            &jwt_settings(client, "okta.users.manage okta.groups.manage", None),
            |_| {},
        );
        let acc = ssws.create_account(&spec(1)).await.unwrap();
        jwt.authenticate().await.unwrap();
        jwt.add_membership(&acc.external_id, &group("eng"))
            .await
            .unwrap();
        errors.push(format!("{ssws:?} {jwt:?}"));
        // Error paths: a revoked access token, a removed client, a revoked API token.
        sim.revoke_access_tokens();
        jwt.get_account(&acc.external_id).await.unwrap();
        sim.remove_client(client);
        sim.revoke_access_tokens();
        let e = jwt.get_account(&acc.external_id).await.unwrap_err();
        errors.push(format!("{e} {e:?}"));
        sim.revoke_token(SSWS_TOKEN);
        let e = ssws.get_account(&acc.external_id).await.unwrap_err();
        errors.push(format!("{e} {e:?}"));
        let issued = sim.issued_access_tokens();
        server.stop().await;
        (errors, issued)
    });
    let logged = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(
        logged.contains("/api/v1/users"),
        "requests were logged: {logged}"
    );
    assert!(
        logged.contains("/oauth2/v1/token"),
        "token requests were logged: {logged}"
    );
    assert!(issued.len() >= 2);
    let pem = fixture("test-ec-private.pem");
    let key_line = pem.lines().nth(1).unwrap();
    let jwt_like = regex::Regex::new(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]+").unwrap();
    for text in errors.iter().chain(std::iter::once(&logged)) {
        assert!(!text.contains(SSWS_TOKEN), "API token leaked: {text}");
        assert!(
            !text.contains(key_line) && !text.contains("PRIVATE KEY"),
            "key leaked: {text}"
        );
        assert!(
            !jwt_like.is_match(text),
            "a client assertion (JWT) leaked: {text}"
        );
        for t in &issued {
            assert!(!text.contains(t.as_str()), "an access token leaked: {text}");
        }
    }
}

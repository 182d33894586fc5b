//! The demo's Google Workspace: the Directory simulator with a few of Google's quirks
//! turned on: quota refusals as 403 `userRateLimitExceeded`, "User creation is not
//! complete." (412) for a moment after each create, and `Deprecation`/`Sunset` headers
//! that the API-version watch reports in the Systems view.
//!
//! The service account's key (`src/demo/google-demo-key.pem`) was made for the demo: it
//! opens nothing but this simulator.

use super::*;
use crate::sim::google::{Deprecation, GoogleHandle, GoogleSimOptions};
use std::time::SystemTime;

const SERVICE_ACCOUNT: &str = "accessdesk-demo@northwind-iam.iam.gserviceaccount.com";
const PRIVATE_KEY: &str = include_str!("../google-demo-key.pem");
const PUBLIC_KEY: &str = include_str!("../google-demo-key.pub.pem");

struct GoogleSim(GoogleHandle);

pub(super) async fn spawn(setup: SimSetup) -> Result<Spawned> {
    let now = SystemTime::now();
    let (server, handle) = crate::sim::google::spawn(GoogleSimOptions {
        faults: setup.faults,
        domains: vec!["northwind.example".into()],
        queries_per_minute: setup.window_limit,
        rate_window: setup.window,
        creation_settle: Duration::from_millis(300),
        deprecation: Some(Deprecation {
            since: now - Duration::from_secs(86_400 * 30),
            sunset: now + Duration::from_secs(86_400 * 200),
            link: Some("https://developers.google.com/workspace/admin/directory".into()),
        }),
        lost_response_rate: 0.003,
        seed: setup.seed,
        ..Default::default()
    })
    .await
    .map_err(|e| Error::io("starting the Google Workspace simulator", e))?;
    handle.register_service_account(
        SERVICE_ACCOUNT,
        PUBLIC_KEY,
        &crate::adapters::google_workspace::SCOPES,
    );
    for (kind, name) in setup.entry.entitlements.keys() {
        if *kind == EntitlementKind::Group {
            let display = name.split('@').next().unwrap_or(name);
            handle
                .seed_group(name, display)
                .map_err(|e| Error::Failed(format!("seeding Google group {name}: {e}")))?;
        }
    }
    let key = serde_json::json!({
        "type": "service_account",
        "client_email": SERVICE_ACCOUNT,
        "private_key": PRIVATE_KEY,
        "token_uri": format!("{}/token", server.base_url()),
    });
    Ok(Spawned {
        base_url: server.base_url(),
        server,
        sim: Box::new(GoogleSim(handle)),
        credential: Secret::new(key.to_string()),
    })
}

impl DemoSim for GoogleSim {
    fn faults(&self) -> Arc<Faults> {
        self.0.faults()
    }

    fn served(&self) -> Served {
        served(
            |f| self.0.count(f),
            self.0.limits().refused(),
            |r| r.status == 429 || r.status == 403,
        )
    }

    fn duplicate_creates(&self) -> u64 {
        duplicates(
            self.0
                .users()
                .iter()
                .map(|u| self.0.creates_for(&u.primary_email)),
        )
    }

    fn break_entitlement(&self, kind: EntitlementKind, name: &str) -> bool {
        if kind != EntitlementKind::Group || self.0.group(name).is_none() {
            return false;
        }
        let encoded = crate::adapters::http::path_segment(name);
        self.0.fail(gateway_refusal(
            axum::http::Method::POST,
            &format!("/groups/{encoded}/members"),
        ));
        true
    }

    fn clear_injected_failures(&self) {
        self.0.clear_rules();
    }

    fn seed_drift(
        &self,
        entry: &SystemEntry,
        _leaver: Option<&crate::model::Person>,
    ) -> Vec<String> {
        let name = &entry.system.name;
        let mut done = Vec::new();
        if self
            .0
            .create_user_by_hand("shared.mailbox@northwind.example", "Shared", "Mailbox")
            .is_ok()
        {
            done.push(format!(
                "someone made shared.mailbox@northwind.example in {name} by hand, owned by nobody in HR"
            ));
        }
        if let Some(group) = privileged_group(entry)
            && let Some(u) = self.0.users().into_iter().find(|u| {
                !u.is_admin
                    && !u.suspended
                    && !self.0.members(&group).iter().any(|m| m.user_id == u.id)
            })
            && self.0.add_member(&group, &u.primary_email)
        {
            done.push(format!(
                "an admin added {} to {group} in {name} by hand",
                u.primary_email
            ));
        }
        done
    }
}

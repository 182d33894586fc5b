//! The demo's Slack: accounts over Slack's SCIM API, channels over the Web API, with
//! Slack's quirks: HTTP-200 failures (`already_in_channel` when the engine re-invites
//! someone), per-method rate tiers answered 429 with Retry-After, `U…` ids, and the
//! demo's fault mix on both sides (Web API server errors as HTTP 200 `internal_error`).

use super::*;
use crate::sim::fault::FaultProfile;
use crate::sim::scim::ScimSimOptions;
use crate::sim::slack::{SlackHandle, SlackSimOptions};

struct SlackSim(SlackHandle);

pub(super) async fn spawn(setup: SimSetup) -> Result<Spawned> {
    let (server, handle) = crate::sim::slack::spawn(SlackSimOptions {
        scim: ScimSimOptions {
            faults: setup.faults.clone(),
            rate_limit: Some(setup.window_limit),
            rate_window: setup.window,
            lost_response_rate: 0.003,
            seed: setup.seed,
            ..Default::default()
        },
        rate_window: setup.window,
        // Slack's tiers per minute (2: 20, 3: 50, 4: 100), scaled to the demo's window.
        tiers: (20, 50, 100),
        team: "northwind".into(),
        web_faults: FaultProfile {
            seed: setup.seed.wrapping_add(1),
            ..setup.faults
        },
    })
    .await
    .map_err(|e| Error::io("starting the Slack simulator", e))?;
    for (kind, name) in setup.entry.entitlements.keys() {
        match kind {
            EntitlementKind::Channel => {
                handle.seed_channel(name, name.starts_with("priv-") || name == "leadership");
            }
            EntitlementKind::Group => {
                handle.scim.seed_group(name);
            }
            _ => {}
        }
    }
    // One token for both sides in the demo (Slack issues a bot and a user token).
    let credential = random_credential("xoxb-demo-", 32);
    handle.add_token(credential.expose(), &crate::adapters::slack::SCOPES);
    handle.scim.add_token(credential.expose());
    Ok(Spawned {
        base_url: format!("{}/api", server.base_url()),
        server,
        sim: Box::new(SlackSim(handle)),
        credential,
    })
}

impl DemoSim for SlackSim {
    fn faults(&self) -> Arc<Faults> {
        self.0.scim.faults()
    }

    fn served(&self) -> Served {
        served(
            |f| self.0.count(f),
            self.0.scim.limits().refused(),
            |r| r.status == 429,
        )
    }

    fn duplicate_creates(&self) -> u64 {
        duplicates(
            self.0
                .scim
                .users()
                .iter()
                .filter_map(|u| u.user_name().map(|n| self.0.scim.creates_for(n))),
        )
    }

    fn break_entitlement(&self, _kind: EntitlementKind, _name: &str) -> bool {
        false
    }

    fn clear_injected_failures(&self) {
        self.0.scim.clear_rules();
    }

    fn seed_drift(
        &self,
        entry: &SystemEntry,
        _leaver: Option<&crate::model::Person>,
    ) -> Vec<String> {
        let Some(user) = self.0.scim.users().into_iter().find(|u| u.active()) else {
            return Vec::new();
        };
        let channel = "leadership";
        if self.0.channel(channel).is_none() || !self.0.set_member(channel, &user.id, true) {
            return Vec::new();
        }
        vec![format!(
            "someone invited {} into #{channel} in {} by hand",
            user.user_name().unwrap_or("?"),
            entry.system.name
        )]
    }
}

//! The demo's GitHub: the REST simulator with GitHub's quirks on: accessdesk acts as a
//! GitHub App (the App's JWT exchanged for hour-long installation tokens), creating an
//! account is an invitation, **pending** (its own state) until the person accepts it a
//! few seconds later, the
//! secondary limit answers 403 "You have exceeded a secondary rate limit" (with and
//! without `retry-after`), and logins are GitHub usernames (`ada-lovelace`: hyphens,
//! never dots). Everyone at Northwind has a GitHub account ([`users_on_demand`]).
//!
//! The App's private key is the demo's own RSA key (`src/demo/google-demo-key.pem`, made
//! for the demo): it opens nothing but the demo's simulators.
//!
//! [`users_on_demand`]: crate::sim::github::GitHubSimOptions::users_on_demand

use super::*;
use crate::sim::github::{GitHubHandle, GitHubSimOptions, TeamRole};

/// The App's id; its installation on the organisation is `APP_ID * 100 + 1`
/// ([`GitHubHandle::register_app`]), as demo/systems.toml says.
pub const APP_ID: u64 = 424_242;
const PRIVATE_KEY: &str = include_str!("../google-demo-key.pem");
const PUBLIC_KEY: &str = include_str!("../google-demo-key.pub.pem");

struct GitHubSim(GitHubHandle);

pub(super) async fn spawn(setup: SimSetup) -> Result<Spawned> {
    let org = crate::adapters::kit::settings::parse::<crate::adapters::github::GitHubSettings>(
        &setup.entry,
    )?
    .org;
    let (server, handle) = crate::sim::github::spawn(GitHubSimOptions {
        org,
        faults: setup.faults,
        // Writes cost five points and content-creating requests are counted on their own:
        // the onboarding wave runs into the secondary limit, as a real one would.
        points_per_window: setup.window_limit * 3,
        content_per_window: setup.window_limit,
        secondary_window: setup.window,
        lost_response_rate: 0.003,
        seed: setup.seed,
        users_on_demand: true,
        // People accept their invitation a few seconds after it arrives.
        accept_invitations_after: Some(Duration::from_secs(3)),
        ..Default::default()
    })
    .await
    .map_err(|e| Error::io("starting the GitHub simulator", e))?;
    handle.register_app(APP_ID, PUBLIC_KEY);
    for (kind, name) in setup.entry.entitlements.keys() {
        if *kind == EntitlementKind::Team {
            handle
                .seed_team(name)
                .map_err(|e| Error::Failed(format!("seeding GitHub team {name}: {e}")))?;
        }
    }
    Ok(Spawned {
        base_url: server.base_url(),
        server,
        sim: Box::new(GitHubSim(handle)),
        credential: Secret::new(PRIVATE_KEY.to_string()),
    })
}

impl DemoSim for GitHubSim {
    fn faults(&self) -> Arc<Faults> {
        self.0.faults()
    }

    fn served(&self) -> Served {
        let (primary, secondary) = self.0.refused();
        served(
            |f| self.0.count(f),
            primary + secondary,
            |r| r.status == 429 || r.status == 403,
        )
    }

    /// Invitations sent twice to the same person (members and those still pending).
    fn duplicate_creates(&self) -> u64 {
        let mut logins: Vec<String> = self.0.members().into_iter().map(|(l, _)| l).collect();
        logins.extend(self.0.invitations().into_iter().filter_map(|i| i.login));
        logins.sort();
        logins.dedup();
        duplicates(logins.iter().map(|l| self.0.invitations_for(l)))
    }

    fn break_entitlement(&self, kind: EntitlementKind, name: &str) -> bool {
        if kind != EntitlementKind::Team || !self.0.teams().iter().any(|t| t.slug == name) {
            return false;
        }
        let encoded = crate::adapters::http::path_segment(name);
        self.0.fail(gateway_refusal(
            axum::http::Method::PUT,
            &format!("/teams/{encoded}/memberships/"),
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
        let Some(team) = entry
            .entitlements
            .iter()
            .filter(|((k, _), _)| *k == EntitlementKind::Team)
            .max_by_key(|(_, e)| e.risk)
            .map(|((_, t), _)| t.clone())
        else {
            return Vec::new();
        };
        let in_team: Vec<String> = self
            .0
            .team_members(&team)
            .into_iter()
            .map(|m| m.login)
            .collect();
        let Some(login) = self
            .0
            .members()
            .into_iter()
            .map(|(l, _)| l)
            .find(|l| l != crate::sim::github::ADMIN_LOGIN && !in_team.contains(l))
        else {
            return Vec::new();
        };
        if self
            .0
            .add_team_member(&team, &login, TeamRole::Maintainer)
            .is_err()
        {
            return Vec::new();
        }
        vec![format!(
            "an organisation owner added {login} to team {team} in {name} by hand"
        )]
    }
}

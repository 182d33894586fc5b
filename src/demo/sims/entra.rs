//! The demo's Microsoft Entra ID: the Graph simulator with Graph's quirks on: its per-app
//! throttle (429 + Retry-After, x-ms-throttle-limit-percentage before it), a new user
//! unknown to reads for a moment (eventual consistency, retried by the adapter), and an
//! app secret that expires in 20 days, which the Systems view reports.

use super::*;
use crate::sim::entra::{EntraHandle, EntraSimOptions};

const CLIENT_ID: &str = "6c3c2b1a-0d9e-4f8a-b7c6-5d4e3f2a1b0c";

struct EntraSim(EntraHandle);

pub(super) async fn spawn(setup: SimSetup) -> Result<Spawned> {
    let mut faults = setup.faults;
    faults.visibility_delay = Duration::from_millis(150);
    let (server, handle) = crate::sim::entra::spawn(EntraSimOptions {
        faults,
        domains: vec!["northwind.example".into()],
        requests_per_window: setup.window_limit.max(10),
        rate_window: setup.window,
        lost_response_rate: 0.003,
        seed: setup.seed,
        ..Default::default()
    })
    .await
    .map_err(|e| Error::io("starting the Entra ID simulator", e))?;
    let credential = random_credential("Qx8~", 34);
    let mut roles = crate::adapters::entra::ROLES.to_vec();
    roles.push("Application.Read.All");
    handle.register_app(CLIENT_ID, credential.expose(), &roles);
    handle.set_secret_end(CLIENT_ID, chrono::Utc::now() + chrono::Duration::days(20));
    for (kind, name) in setup.entry.entitlements.keys() {
        if *kind == EntitlementKind::Group {
            handle
                .seed_group(name, name, None)
                .map_err(|e| Error::Failed(format!("seeding Entra group {name}: {e}")))?;
        }
    }
    Ok(Spawned {
        base_url: format!("{}/v1.0", server.base_url()),
        server,
        sim: Box::new(EntraSim(handle)),
        credential,
    })
}

impl DemoSim for EntraSim {
    fn faults(&self) -> Arc<Faults> {
        self.0.faults()
    }

    fn served(&self) -> Served {
        served(
            |f| self.0.count(f),
            self.0.limits().refused(),
            |r| r.status == 429,
        )
    }

    fn duplicate_creates(&self) -> u64 {
        duplicates(
            self.0
                .users()
                .iter()
                .map(|u| self.0.creates_for(&u.user_principal_name)),
        )
    }

    fn break_entitlement(&self, _kind: EntitlementKind, _name: &str) -> bool {
        false
    }

    fn clear_injected_failures(&self) {
        self.0.clear_rules();
    }

    fn seed_drift(
        &self,
        entry: &SystemEntry,
        _leaver: Option<&crate::model::Person>,
    ) -> Vec<String> {
        let mut done = Vec::new();
        if self
            .0
            .create_user_by_hand("breakglass.admin@northwind.example", "Break-glass Admin")
            .is_ok()
        {
            done.push(format!(
                "someone made breakglass.admin@northwind.example in {} by hand, owned by nobody in HR",
                entry.system.name
            ));
        }
        done
    }
}

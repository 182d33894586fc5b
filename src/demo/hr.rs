//! The demo's HR source: a BambooHR simulator as the company's HR system, wired to
//! serve's sources runtime exactly as `accessdesk serve` would run it (sources.toml in the
//! demo home, the API key and the webhook's signing key in the keychain, the webhook
//! endpoint on loopback, a poller every few seconds). The workers stay the demo's own.
//!
//! The story ([`story`]): a joiner is hired in BambooHR (reaching accessdesk by poll), a
//! mover changes department and a leaver is terminated (each by signed webhook, and
//! confirmed by the next poll, which finds them unchanged). The leaver loses access in
//! every system within seconds.

use super::Shared;
use crate::config::{Home, SystemsConfig};
use crate::engine::workers::Engine;
use crate::model::Person;
use crate::policy::PolicySet;
use crate::secrets::{Keychain, Secret};
use crate::serve::webhooks::SourceSet;
use crate::serve::{Inputs, Running, ServeOptions};
use crate::sim::SimServer;
use crate::sim::bamboohr::{
    self, BambooHandle, BambooSimOptions, EmployeeStatus, SimEmployee, WebhookFormat, WebhookSpec,
};
use crate::sources::config::SourcesConfig;
use crate::{Error, Result};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// The keychain entries of the demo's HR source.
pub const API_KEY_NAME: &str = "bamboohr-api-key";
pub const WEBHOOK_KEY_NAME: &str = "bamboohr-webhook-key";

/// The demo's sources.toml (`{base}` is the simulator's URL).
const SOURCES_TOML: &str = r#"# The demo's HR source: BambooHR, polled every 5 s and pushing signed webhooks.
[sources.bamboo]
kind = "bamboohr"
base_url = "{base}"
credential = "keyring:bamboohr-api-key"
webhook_secret = "keyring:bamboohr-webhook-key"
poll_every = "5s"

[sources.bamboo.mapping]
employee_id = "record.employeeNumber"
first_name = "record.firstName"
last_name = "record.lastName"
email = "record.workEmail"
department = "record.department"
title = "record.jobTitle"
location = "record.location"
status = "record.status == 'Active' ? 'active' : 'terminated'"
end_date = "record.terminationDate == '0000-00-00' ? '' : record.terminationDate"
"#;

/// The fields BambooHR's webhook watches and sends (API names).
const WATCHED: &[&str] = &[
    "firstName",
    "lastName",
    "workEmail",
    "department",
    "jobTitle",
    "location",
    "status",
    "terminationDate",
];

/// The HR source while the demo runs.
pub struct HrSource {
    pub server: SimServer,
    pub handle: BambooHandle,
    pub running: Running,
    /// The simulator's ids of the mover and the leaver (demo people it was seeded with).
    pub mover: Option<(u64, String)>,
    pub leaver: Option<(u64, String)>,
}

fn sim_employee(id: u64, p: &Person) -> SimEmployee {
    let mut e = SimEmployee::new(id, &p.given_name, &p.family_name, &p.email);
    e.employee_number = p.hris_id.clone();
    e.department = Some(p.department.clone()).filter(|d| !d.is_empty());
    e.job_title = Some(p.title.clone()).filter(|t| !t.is_empty());
    e.location = Some(p.location.clone()).filter(|l| !l.is_empty());
    e.status = EmployeeStatus::Active;
    e
}

/// Start the simulator and serve's sources on the demo's home and engine. `avoid`: people
/// other stories use (they are not picked as the mover or the leaver).
pub async fn start(
    home: &Home,
    keychain: &Keychain,
    engine: Arc<Engine>,
    config: &SystemsConfig,
    people: &[Person],
    avoid: &[&str],
) -> Result<HrSource> {
    let picks: Vec<&Person> = people
        .iter()
        .filter(|p| p.status == crate::model::EmploymentStatus::Active && p.end_date.is_none())
        .filter(|p| !avoid.contains(&p.hris_id.as_str()))
        .skip(40)
        .take(2)
        .collect();
    let employees: Vec<SimEmployee> = picks
        .iter()
        .enumerate()
        .map(|(i, p)| sim_employee(i as u64 + 1, p))
        .collect();
    let api_key = format!("demo-bamboo-{:016x}", rand::random::<u64>());
    let webhook_key = format!("demo-bamboo-hook-{:016x}", rand::random::<u64>());
    let (server, handle) = bamboohr::spawn(BambooSimOptions {
        company_domain: "northwind".into(),
        api_keys: vec![api_key.clone()],
        employees,
        ..Default::default()
    })
    .await
    .map_err(|e| Error::io("starting the BambooHR simulator", e))?;
    keychain.set(API_KEY_NAME, &Secret::new(api_key))?;
    keychain.set(WEBHOOK_KEY_NAME, &Secret::new(webhook_key.clone()))?;
    let text = SOURCES_TOML.replace("{base}", &server.base_url());
    let path = home.sources_path();
    std::fs::write(&path, &text)
        .map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
    let sources = SourcesConfig::load(&path)?;
    let inputs = Inputs {
        sources: SourceSet::new(sources, &|c| keychain.resolve(c)),
        policies: Arc::new(PolicySet::load(&home.policies_path(), config)?),
        guard: config.guard,
    };
    let running = crate::serve::start(
        engine,
        home.db_path(),
        ServeOptions {
            listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            grace: Duration::from_secs(1),
            run_workers: false,
        },
        inputs,
    )
    .await?;
    handle.register_webhook(WebhookSpec {
        url: format!("http://{}/webhooks/bamboo", running.addr),
        private_key: webhook_key,
        monitor_fields: WATCHED.iter().map(|s| s.to_string()).collect(),
        post_fields: WATCHED
            .iter()
            .chain(&["employeeNumber"])
            .map(|s| s.to_string())
            .collect(),
        format: WebhookFormat::FieldBased,
    });
    let name = |p: &Person| format!("{} {}", p.given_name, p.family_name);
    Ok(HrSource {
        server,
        handle,
        running,
        mover: picks.first().map(|p| (1, name(p))),
        leaver: picks.get(1).map(|p| (2, name(p))),
    })
}

/// When each step of the HR story happens (seconds after the demo starts).
pub const JOINER_AT: f64 = 6.0;
pub const MOVER_AT: f64 = 12.0;
pub const LEAVER_AT: f64 = 18.0;

/// The HR story, told through the BambooHR simulator.
pub(crate) async fn story(
    shared: Arc<Shared>,
    handle: BambooHandle,
    mover: Option<(u64, String)>,
    leaver: Option<(u64, String)>,
    mut stop: watch::Receiver<bool>,
) {
    if !super::scenario::until_secs(&shared, JOINER_AT, &mut stop).await {
        return;
    }
    let mut hire = SimEmployee::new(0, "Amara", "Okafor", "amara.okafor@northwind.example");
    hire.employee_number = "E9001".into();
    hire.department = Some("Engineering".into());
    hire.job_title = Some("Software Engineer".into());
    hire.hire_date = Some(chrono::Utc::now().date_naive());
    if handle.hire(hire).is_ok() {
        shared.say("BambooHR: Amara Okafor hired (Engineering); the next poll brings her in");
    }
    if let Some((id, name)) = mover {
        if !super::scenario::until_secs(&shared, MOVER_AT, &mut stop).await {
            return;
        }
        if handle
            .move_to(id, Some("Finance"), Some("Analyst"), None)
            .is_ok()
        {
            shared.say(&format!(
                "BambooHR: {name} moves to Finance (signed webhook, then the poll)"
            ));
        }
    }
    if let Some((id, name)) = leaver {
        if !super::scenario::until_secs(&shared, LEAVER_AT, &mut stop).await {
            return;
        }
        let today = chrono::Utc::now().date_naive();
        if handle.terminate(id, today).is_ok() {
            shared.say(&format!(
                "BambooHR: {name} is terminated; signed webhook to accessdesk, access removed everywhere"
            ));
        }
    }
}

//! The demo's HR sources: a BambooHR simulator as the company's HR system for employees
//! and a Workday simulator for contractors (contingent workers), wired to serve's sources
//! runtime exactly as `accessdesk serve` would run them (sources.toml in the demo home,
//! the API key, the webhook's signing key and Workday's API client in the keychain, the
//! webhook endpoint on loopback, pollers every few seconds). The workers stay the demo's
//! own.
//!
//! The story ([`story`]): a joiner is hired in BambooHR (reaching accessdesk by poll), a
//! mover changes department and a leaver is terminated (each by signed webhook, and
//! confirmed by the next poll, which finds them unchanged). The leaver loses access in
//! every system within seconds. In Workday a contractor is hired (the next snapshot
//! brings them in) and later their contract ends (they leave the snapshot: a leaver).

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
use crate::sim::workday::{
    self, SimClient, SimWorker, WorkdayHandle, WorkdaySimOptions, WorkerType,
};
use crate::sources::config::SourcesConfig;
use crate::{Error, Result};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// The keychain entries of the demo's HR source.
pub const API_KEY_NAME: &str = "bamboohr-api-key";
pub const WEBHOOK_KEY_NAME: &str = "bamboohr-webhook-key";
pub const WORKDAY_CLIENT_NAME: &str = "workday-api-client";

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

# Contractors: Workday's Workers REST API, read whole every 5 s (a worker who leaves the
# snapshot has left).
[sources.workday]
kind = "workday"
base_url = "{workday}"
credential = "keyring:workday-api-client"
poll_every = "5s"

[sources.workday.mapping]
employee_id = "record.workerId"
first_name = "record.descriptor.split(' ')[0]"
last_name = "record.descriptor.substring(record.descriptor.indexOf(' ') + 1)"
email = "record.primaryWorkEmail"
department = "has(record.primarySupervisoryOrganization) ? record.primarySupervisoryOrganization.descriptor : ''"
title = "has(record.businessTitle) ? record.businessTitle : ''"
status = "'active'"
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
    pub workday_server: SimServer,
    pub workday: WorkdayHandle,
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
    let client_secret = format!("demo-workday-{:032x}", rand::random::<u128>());
    let refresh_token = format!("demo-workday-refresh-{:032x}", rand::random::<u128>());
    let (workday_server, workday) = workday::spawn(WorkdaySimOptions {
        clients: vec![SimClient {
            id: "accessdesk-demo".into(),
            secret: client_secret.clone(),
            refresh_tokens: vec![refresh_token.clone()],
            client_credentials: false,
        }],
        ..Default::default()
    })
    .await
    .map_err(|e| Error::io("starting the Workday simulator", e))?;
    keychain.set(API_KEY_NAME, &Secret::new(api_key))?;
    keychain.set(WEBHOOK_KEY_NAME, &Secret::new(webhook_key.clone()))?;
    keychain.set(
        WORKDAY_CLIENT_NAME,
        &Secret::new(
            serde_json::json!({
                "client_id": "accessdesk-demo",
                "client_secret": client_secret,
                "refresh_token": refresh_token,
            })
            .to_string(),
        ),
    )?;
    let text = SOURCES_TOML
        .replace("{base}", &server.base_url())
        .replace("{workday}", &workday.rest_endpoint());
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
        workday_server,
        workday,
        running,
        mover: picks.first().map(|p| (1, name(p))),
        leaver: picks.get(1).map(|p| (2, name(p))),
    })
}

/// When each step of the HR story happens (seconds after the demo starts).
pub const JOINER_AT: f64 = 6.0;
pub const MOVER_AT: f64 = 12.0;
pub const LEAVER_AT: f64 = 18.0;
pub const CONTRACTOR_AT: f64 = 8.0;
pub const CONTRACT_ENDS_AT: f64 = 20.0;

/// The contractor's story, told through the Workday simulator.
pub(crate) async fn contractor_story(
    shared: Arc<Shared>,
    workday: WorkdayHandle,
    mut stop: watch::Receiver<bool>,
) {
    if !super::scenario::until_secs(&shared, CONTRACTOR_AT, &mut stop).await {
        return;
    }
    let mut w = SimWorker::new(
        "C7001",
        "Tomás",
        "Álvarez",
        "tomas.alvarez@northwind.example",
    );
    w.worker_type = WorkerType::Contingent;
    w.organization = Some("Engineering".into());
    w.business_title = Some("Contract Engineer".into());
    if workday.hire(w).is_ok() {
        shared.say("Workday: contractor Tomás Álvarez hired (Engineering); the next snapshot brings him in");
    }
    if !super::scenario::until_secs(&shared, CONTRACT_ENDS_AT, &mut stop).await {
        return;
    }
    let yesterday = workday.today() - chrono::Duration::days(1);
    if workday.terminate("C7001", yesterday).is_ok() {
        shared.say("Workday: Tomás Álvarez's contract has ended; he leaves the next snapshot and his access goes");
    }
}

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

//! The simulator's outbound webhooks.
//!
//! Payloads, as BambooHR's webhook pages document them (documentation.bamboohr.com,
//! "Field-Based Webhooks" and "Event-Based Webhooks"; the event-based shapes are also the
//! description's `EmployeeCreated/Updated/DeletedWebhookPayload`):
//! - field-based (BambooHR's default for a webhook created without events):
//!   `{"employees": [{"action": "Created"|"Updated"|"Deleted", "changedFields": [...],
//!   "fields": {...}, "id": "123", "timestamp": "2026-01-31T18:42:00+0000"}]}`; `Created`
//!   and `Deleted` carry empty `changedFields` and `fields`, as the Global Webhooks page
//!   says. Fields are named by their API names (BambooHR posts English display names
//!   unless the webhook gives aliases: the simulator behaves as if every field were
//!   aliased to its API name);
//! - event-based: `{"type": "employee.updated", "timestamp": "…Z", "data": {"companyId",
//!   "employeeId", "changedFields"}}` (`changedFields` on updates only).
//!
//! An update is sent only to webhooks monitoring one of the fields that changed, and
//! `changedFields` names only monitored ones. Every POST carries `X-BambooHR-Timestamp`
//! (Unix seconds when it was made) and `X-BambooHR-Signature`, hex HMAC-SHA256 with the
//! webhook's private key over the body followed by that timestamp. Deliveries go out in
//! order from one background task; none is retried (BambooHR retries failures; not
//! modelled). Not modelled either: schedules, per-interval caps, the form-post encoding,
//! the `employee.updated` that BambooHR fires after each `employee.created`.

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde_json::{Map, Value, json};
use sha2::Sha256;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// The payload shape a webhook is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WebhookFormat {
    /// `employee_with_fields.*`: `{"employees": [...]}` with field values.
    #[default]
    FieldBased,
    /// `employee.*`: `{"type", "timestamp", "data"}`.
    EventBased,
}

/// A webhook to register on the simulator.
#[derive(Debug, Clone, Default)]
pub struct WebhookSpec {
    pub url: String,
    /// The key deliveries are signed with.
    pub private_key: String,
    /// Updates to these fields are sent (API names, see [`super::FIELD_NAMES`]).
    pub monitor_fields: Vec<String>,
    /// The fields a field-based update carries (empty: the monitored ones).
    pub post_fields: Vec<String>,
    pub format: WebhookFormat,
}

/// One POST to a webhook, queued or sent.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub id: u64,
    pub webhook: u64,
    pub url: String,
    pub employee_id: String,
    /// `Created`, `Updated` or `Deleted`.
    pub action: String,
    /// The raw body, as signed.
    pub body: String,
    /// `X-BambooHR-Timestamp`.
    pub timestamp: String,
    /// `X-BambooHR-Signature`.
    pub signature: String,
    /// The delivery this one repeats byte for byte.
    pub replay_of: Option<u64>,
    /// None until sent: the receiver's status, or why nothing came back.
    pub outcome: Option<Result<u16, String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Event {
    Created,
    Updated,
    Deleted,
}

impl Event {
    fn action(self) -> &'static str {
        match self {
            Event::Created => "Created",
            Event::Updated => "Updated",
            Event::Deleted => "Deleted",
        }
    }

    fn event_type(self) -> &'static str {
        match self {
            Event::Created => "employee.created",
            Event::Updated => "employee.updated",
            Event::Deleted => "employee.deleted",
        }
    }
}

#[derive(Default)]
struct State {
    next_webhook: u64,
    webhooks: BTreeMap<u64, WebhookSpec>,
    deliveries: Vec<Delivery>,
}

pub(super) struct Hooks {
    state: Arc<Mutex<State>>,
    queue: mpsc::UnboundedSender<usize>,
}

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// hex(HMAC-SHA256(key, body ‖ timestamp)).
pub fn sign(private_key: &str, body: &[u8], timestamp: &str) -> String {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(private_key.as_bytes())
        .expect("HMAC takes keys of any length");
    m.update(body);
    m.update(timestamp.as_bytes());
    hex::encode(m.finalize().into_bytes())
}

impl Hooks {
    /// The registry and its sender task (needs a Tokio runtime).
    pub(super) fn start() -> Hooks {
        let state = Arc::new(Mutex::new(State::default()));
        let (tx, mut rx) = mpsc::unbounded_channel::<usize>();
        let shared = state.clone();
        tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(10))
                .user_agent("BambooHR-Webhooks (accessdesk simulator)")
                .build();
            while let Some(i) = rx.recv().await {
                let Some(d) = lock(&shared).deliveries.get(i).cloned() else {
                    continue;
                };
                let outcome = match &client {
                    Err(e) => Err(format!("no HTTP client: {e}")),
                    Ok(client) => client
                        .post(&d.url)
                        .header("content-type", "application/json")
                        .header("x-bamboohr-timestamp", &d.timestamp)
                        .header("x-bamboohr-signature", &d.signature)
                        .body(d.body.clone())
                        .send()
                        .await
                        .map(|r| r.status().as_u16())
                        .map_err(|e| e.to_string()),
                };
                if let Some(slot) = lock(&shared).deliveries.get_mut(i) {
                    slot.outcome = Some(outcome);
                }
            }
        });
        Hooks { state, queue: tx }
    }

    pub(super) fn register(&self, spec: WebhookSpec) -> u64 {
        let mut s = lock(&self.state);
        s.next_webhook += 1;
        let id = s.next_webhook;
        s.webhooks.insert(id, spec);
        id
    }

    pub(super) fn remove(&self, id: u64) -> bool {
        lock(&self.state).webhooks.remove(&id).is_some()
    }

    pub(super) fn deliveries(&self) -> Vec<Delivery> {
        lock(&self.state).deliveries.clone()
    }

    /// Queue one delivery per webhook this change concerns.
    pub(super) fn fire(
        &self,
        company_id: &str,
        event: Event,
        employee: u64,
        at: DateTime<Utc>,
        changed: &[&str],
        fields: &BTreeMap<&'static str, Value>,
    ) {
        let unix = Utc::now().timestamp().to_string();
        let mut s = lock(&self.state);
        let hooks: Vec<(u64, WebhookSpec)> =
            s.webhooks.iter().map(|(k, v)| (*k, v.clone())).collect();
        for (hook, spec) in hooks {
            let monitored: Vec<&str> = changed
                .iter()
                .copied()
                .filter(|f| spec.monitor_fields.iter().any(|m| m == f))
                .collect();
            if event == Event::Updated && monitored.is_empty() {
                continue;
            }
            let body = match spec.format {
                WebhookFormat::FieldBased => {
                    let mut values = Map::new();
                    if event == Event::Updated {
                        let posted = if spec.post_fields.is_empty() {
                            &spec.monitor_fields
                        } else {
                            &spec.post_fields
                        };
                        for f in posted {
                            let v = fields.get(f.as_str()).cloned().unwrap_or(Value::Null);
                            values.insert(f.clone(), v);
                        }
                    }
                    json!({"employees": [{
                        "action": event.action(),
                        "changedFields": monitored,
                        "fields": values,
                        "id": employee.to_string(),
                        "timestamp": at.format("%Y-%m-%dT%H:%M:%S+0000").to_string(),
                    }]})
                }
                WebhookFormat::EventBased => {
                    let mut data =
                        json!({"companyId": company_id, "employeeId": employee.to_string()});
                    if event == Event::Updated {
                        data["changedFields"] = json!(monitored);
                    }
                    json!({
                        "type": event.event_type(),
                        "timestamp": at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                        "data": data,
                    })
                }
            }
            .to_string();
            let signature = sign(&spec.private_key, body.as_bytes(), &unix);
            let id = s.deliveries.len() as u64 + 1;
            s.deliveries.push(Delivery {
                id,
                webhook: hook,
                url: spec.url.clone(),
                employee_id: employee.to_string(),
                action: event.action().into(),
                body,
                timestamp: unix.clone(),
                signature,
                replay_of: None,
                outcome: None,
            });
            let _ = self.queue.send(s.deliveries.len() - 1);
        }
    }

    pub(super) async fn wait(&self, n: usize, timeout: Duration) -> Vec<Delivery> {
        let deadline = Instant::now() + timeout;
        loop {
            let all = self.deliveries();
            let done = all.iter().filter(|d| d.outcome.is_some()).count();
            if done >= n || Instant::now() >= deadline {
                return all;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    pub(super) async fn replay(&self, id: u64, timeout: Duration) -> Option<Delivery> {
        let index = {
            let mut s = lock(&self.state);
            let original = s.deliveries.iter().find(|d| d.id == id)?.clone();
            let copy = Delivery {
                id: s.deliveries.len() as u64 + 1,
                replay_of: Some(id),
                outcome: None,
                ..original
            };
            s.deliveries.push(copy);
            let index = s.deliveries.len() - 1;
            let _ = self.queue.send(index);
            index
        };
        let deadline = Instant::now() + timeout;
        loop {
            let d = lock(&self.state).deliveries.get(index).cloned()?;
            if d.outcome.is_some() || Instant::now() >= deadline {
                return Some(d);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

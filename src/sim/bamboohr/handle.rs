//! [`BambooHandle`]: seeds, changes and inspects a running simulator (tests, the demo).

use super::webhooks::{Delivery, Event, WebhookSpec};
use super::{EmployeeStatus, Inner, SimEmployee};
use crate::sim::fault::Faults;
use crate::sim::log::LoggedRequest;
use crate::sim::rules::FailRule;
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Steers and inspects a running simulator.
#[derive(Clone)]
pub struct BambooHandle {
    pub(super) inner: Arc<Inner>,
}

impl std::fmt::Debug for BambooHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BambooHandle")
    }
}

type Snapshot = BTreeMap<&'static str, Value>;

impl BambooHandle {
    pub fn company_domain(&self) -> &str {
        &self.inner.company_domain
    }

    /// The simulator's clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.inner.lock().now()
    }

    /// Set the clock (it keeps running from there).
    pub fn set_now(&self, t: DateTime<Utc>) {
        self.inner.lock().offset = t - Utc::now();
    }

    /// Move the clock forward.
    pub fn advance(&self, d: Duration) {
        let d = chrono::Duration::from_std(d).unwrap_or(chrono::Duration::zero());
        self.inner.lock().offset += d;
    }

    pub fn add_api_key(&self, key: &str) {
        self.inner.lock().api_keys.insert(key.to_string());
    }

    pub fn revoke_api_key(&self, key: &str) {
        self.inner.lock().api_keys.remove(key);
    }

    pub fn faults(&self) -> Arc<Faults> {
        self.inner.faults.clone()
    }

    /// Fail the next matching requests as the rule says ([`FailRule`]).
    pub fn fail(&self, rule: FailRule) {
        self.inner.rules.add(rule);
    }

    /// Carry out this share of requests and then drop the connection before answering.
    pub fn set_lost_response_rate(&self, rate: f64) {
        self.inner.rules.set_lost_response_rate(rate);
    }

    /// Requests per window, effective at once.
    pub fn set_rate_limit(&self, limit: u32) {
        self.inner.windows.set_limit(None, limit);
    }

    /// 429 (today's BambooHR) or 503 (before 2026-09-16) for rate-limit refusals.
    pub fn set_throttle_status(&self, status: u16) {
        self.inner.throttle_status.store(status, Ordering::Relaxed);
    }

    /// Requests refused by the rate window so far.
    pub fn refused(&self) -> u64 {
        self.inner.windows.refused()
    }

    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.inner.log.entries()
    }

    pub fn count(&self, f: impl Fn(&LoggedRequest) -> bool) -> usize {
        self.inner.log.count(f)
    }

    /// An employee as the simulator holds it (None once deleted).
    pub fn employee(&self, id: u64) -> Option<SimEmployee> {
        self.inner.lock().employees.get(&id).cloned()
    }

    /// Every employee, by id.
    pub fn employees(&self) -> Vec<SimEmployee> {
        self.inner.lock().employees.values().cloned().collect()
    }

    /// Seed employees: inserted at their own `last_changed` (or now), with no webhook.
    pub(super) fn seed(&self, employees: Vec<SimEmployee>) -> Result<(), String> {
        let mut c = self.inner.lock();
        for mut e in employees {
            let id = assign_id(&mut c, e.id)?;
            e.id = id;
            if e.employee_number.is_empty() {
                e.employee_number = format!("E{id:04}");
            }
            let at = match e.last_changed {
                Some(t) => {
                    c.last_stamp = c.last_stamp.max(Some(t));
                    t
                }
                None => c.stamp(),
            };
            e.last_changed = Some(at);
            c.inserted.insert(id, at);
            c.employees.insert(id, e);
        }
        Ok(())
    }

    /// Hire (insert) an employee; id 0 is assigned. Returns the id. Fires `Created`.
    pub fn hire(&self, mut e: SimEmployee) -> Result<u64, String> {
        let (id, at, snap) = {
            let mut c = self.inner.lock();
            let id = assign_id(&mut c, e.id)?;
            e.id = id;
            if e.employee_number.is_empty() {
                e.employee_number = format!("E{id:04}");
            }
            let at = c.stamp();
            e.last_changed = Some(at);
            c.inserted.insert(id, at);
            let snap = c.snapshot(&e);
            c.employees.insert(id, e);
            (id, at, snap)
        };
        self.fire(Event::Created, id, at, &[], &snap);
        Ok(id)
    }

    /// Change an employee. Returns the fields that changed (none: nothing is stamped or
    /// sent). Fires `Updated` to the webhooks monitoring one of them.
    pub fn update(
        &self,
        id: u64,
        f: impl FnOnce(&mut SimEmployee),
    ) -> Result<Vec<&'static str>, String> {
        let (at, changed, snap) = {
            let mut c = self.inner.lock();
            let Some(mut e) = c.employees.get(&id).cloned() else {
                return Err(format!("no employee {id}"));
            };
            let before = c.snapshot(&e);
            f(&mut e);
            e.id = id;
            let after = c.snapshot(&e);
            let changed: Vec<&'static str> = after
                .iter()
                .filter(|(k, v)| before.get(*k) != Some(*v))
                .map(|(k, _)| *k)
                .collect();
            if changed.is_empty() {
                return Ok(changed);
            }
            let at = c.stamp();
            e.last_changed = Some(at);
            c.employees.insert(id, e);
            (at, changed, after)
        };
        self.fire(Event::Updated, id, at, &changed, &snap);
        Ok(changed)
    }

    /// Move an employee: department, job title and supervisor (None leaves one as it is).
    pub fn move_to(
        &self,
        id: u64,
        department: Option<&str>,
        job_title: Option<&str>,
        supervisor_eid: Option<u64>,
    ) -> Result<Vec<&'static str>, String> {
        self.update(id, |e| {
            if let Some(d) = department {
                e.department = Some(d.into());
            }
            if let Some(t) = job_title {
                e.job_title = Some(t.into());
            }
            if let Some(s) = supervisor_eid {
                e.supervisor_eid = Some(s);
            }
        })
    }

    /// Terminate: status Inactive, termination date `on`.
    pub fn terminate(&self, id: u64, on: NaiveDate) -> Result<Vec<&'static str>, String> {
        self.update(id, |e| {
            e.status = EmployeeStatus::Inactive;
            e.termination_date = Some(on);
        })
    }

    /// Delete an employee record. Fires `Deleted`.
    pub fn delete(&self, id: u64) -> Result<(), String> {
        let (at, snap) = {
            let mut c = self.inner.lock();
            let Some(e) = c.employees.remove(&id) else {
                return Err(format!("no employee {id}"));
            };
            let at = c.stamp();
            c.deleted.insert(id, at);
            (at, c.snapshot(&e))
        };
        self.fire(Event::Deleted, id, at, &[], &snap);
        Ok(())
    }

    fn fire(&self, event: Event, id: u64, at: DateTime<Utc>, changed: &[&str], snap: &Snapshot) {
        self.inner
            .hooks
            .fire(&self.inner.company_id, event, id, at, changed, snap);
    }

    /// Register a webhook; returns its id. Changes from now on are delivered to it.
    pub fn register_webhook(&self, spec: WebhookSpec) -> u64 {
        self.inner.hooks.register(spec)
    }

    pub fn remove_webhook(&self, id: u64) -> bool {
        self.inner.hooks.remove(id)
    }

    /// Every delivery so far (sent or still queued), in order.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.inner.hooks.deliveries()
    }

    /// Wait until at least `n` deliveries have an outcome (or `timeout` passes); every
    /// delivery so far.
    pub async fn wait_deliveries(&self, n: usize, timeout: Duration) -> Vec<Delivery> {
        self.inner.hooks.wait(n, timeout).await
    }

    /// Send delivery `id` again, byte for byte with the same headers (a replay), and wait
    /// for its outcome. None for an unknown id.
    pub async fn replay(&self, id: u64, timeout: Duration) -> Option<Delivery> {
        self.inner.hooks.replay(id, timeout).await
    }
}

/// The id for a new employee: `wanted`, or the next free one for 0.
fn assign_id(c: &mut super::Company, wanted: u64) -> Result<u64, String> {
    if wanted == 0 {
        while c.employees.contains_key(&c.next_id) || c.deleted.contains_key(&c.next_id) {
            c.next_id += 1;
        }
        let id = c.next_id;
        c.next_id += 1;
        return Ok(id);
    }
    if c.employees.contains_key(&wanted) || c.deleted.contains_key(&wanted) {
        return Err(format!("employee id {wanted} is taken"));
    }
    Ok(wanted)
}

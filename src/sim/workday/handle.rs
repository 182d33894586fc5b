//! [`WorkdayHandle`]: hires, changes, terminates and inspects a running simulator (tests,
//! the demo).

use super::{Inner, SimWorker};
use crate::sim::fault::Faults;
use crate::sim::log::LoggedRequest;
use crate::sim::rules::FailRule;
use chrono::{DateTime, NaiveDate, Utc};
use std::sync::Arc;
use std::time::Duration;

/// Steers and inspects a running simulator.
#[derive(Clone)]
pub struct WorkdayHandle {
    pub(super) inner: Arc<Inner>,
}

impl std::fmt::Debug for WorkdayHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WorkdayHandle")
    }
}

impl WorkdayHandle {
    pub fn tenant(&self) -> &str {
        &self.inner.tenant
    }

    /// The REST API endpoint, as `View API Clients` shows it (a source's `base_url`).
    pub fn rest_endpoint(&self) -> String {
        format!("{}/ccx/api/v1/{}", self.inner.base(), self.inner.tenant)
    }

    /// The RaaS report served (`owner/name`).
    pub fn report(&self) -> &str {
        &self.inner.report
    }

    /// The simulator's clock.
    pub fn now(&self) -> DateTime<Utc> {
        Utc::now() + self.inner.lock().offset
    }

    pub fn today(&self) -> NaiveDate {
        self.inner.lock().today()
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

    pub fn faults(&self) -> Arc<Faults> {
        self.inner.faults.clone()
    }

    /// Fail the next matching requests as the rule says ([`FailRule`]).
    pub fn fail(&self, rule: FailRule) {
        self.inner.rules.add(rule);
    }

    /// Requests per window, effective at once.
    pub fn set_rate_limit(&self, limit: u32) {
        self.inner.windows.set_limit(None, limit);
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

    /// Tokens issued so far with this grant type (`refresh_token`, `client_credentials`).
    pub fn tokens_issued(&self, grant: &str) -> u64 {
        self.inner.lock().issued.get(grant).copied().unwrap_or(0)
    }

    /// Every access token stops working now (as at expiry); refresh tokens stay valid.
    pub fn expire_access_tokens(&self) {
        self.inner.lock().tokens.clear();
    }

    /// Revoke a refresh token (an admin's `Manage Refresh Tokens for Integrations`).
    pub fn revoke_refresh_token(&self, token: &str) {
        for c in &mut self.inner.lock().clients {
            c.refresh_tokens.retain(|r| r != token);
        }
    }

    /// A worker by employee id (terminated ones too).
    pub fn worker(&self, employee_id: &str) -> Option<SimWorker> {
        self.inner.lock().workers.get(employee_id).cloned()
    }

    pub fn workers(&self) -> Vec<SimWorker> {
        self.inner.lock().workers.values().cloned().collect()
    }

    /// Hire a worker (a WID is assigned when it has none); returns the WID. Refused for
    /// an employee id already in use.
    pub fn hire(&self, mut w: SimWorker) -> Result<String, String> {
        let mut t = self.inner.lock();
        if w.employee_id.trim().is_empty() {
            return Err("a worker needs an employee id".into());
        }
        if t.workers.contains_key(&w.employee_id) {
            return Err(format!("employee id {} is already in use", w.employee_id));
        }
        if w.wid.is_empty() {
            w.wid = format!(
                "{:032x}",
                0x3aa5_550b_0000_0000u128 + u128::from(t.next_wid)
            );
            t.next_wid += 1;
        }
        let wid = w.wid.clone();
        t.workers.insert(w.employee_id.clone(), w);
        Ok(wid)
    }

    /// Change a worker (a job change, a new name, a new manager).
    pub fn change(&self, employee_id: &str, f: impl FnOnce(&mut SimWorker)) -> Result<(), String> {
        let mut t = self.inner.lock();
        let w = t
            .workers
            .get_mut(employee_id)
            .ok_or_else(|| format!("no worker {employee_id}"))?;
        f(w);
        Ok(())
    }

    /// Enter a termination with this last day of work (today, past or future).
    pub fn terminate(&self, employee_id: &str, last_day: NaiveDate) -> Result<(), String> {
        self.change(employee_id, |w| w.termination_date = Some(last_day))
    }

    /// Rescind a termination (or rehire: a new hire date, no termination).
    pub fn rehire(&self, employee_id: &str, hire_date: NaiveDate) -> Result<(), String> {
        self.change(employee_id, |w| {
            w.termination_date = None;
            w.hire_date = Some(hire_date);
        })
    }
}

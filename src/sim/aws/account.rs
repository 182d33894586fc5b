//! The running account as the handlers see it: its options, state lock, faults and who
//! signed the request.

use super::model::Account;
use super::wire::{aws_id, secret_key};
use crate::sim::fault::{FaultProfile, Faults};
use crate::sim::log::RequestLog;
use crate::sim::ratelimit::RateWindows;
use crate::sim::rules::Rules;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct AwsSimOptions {
    pub account_id: String,
    /// The region the identity store lives in (IAM is global).
    pub region: String,
    pub identity_store_id: String,
    /// The IAM user that owns the access key below (it exists in IAM from the start).
    pub admin_user: String,
    /// The admin's access key; the default is a fresh random key for every simulator.
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Recompute and compare every SigV4 signature (false: check form, key and date only).
    pub verify_signatures: bool,
    pub faults: FaultProfile,
    /// Requests per `rate_window`, for the IAM+STS bucket and (separately) the identity
    /// store's; None: unlimited.
    pub rate_limit: Option<u32>,
    pub rate_window: Duration,
    pub lost_response_rate: f64,
    pub seed: u64,
}

impl Default for AwsSimOptions {
    fn default() -> Self {
        AwsSimOptions {
            account_id: "123456789012".into(),
            region: "us-east-1".into(),
            identity_store_id: "d-1234567890".into(),
            admin_user: "accessdesk-admin".into(),
            // Fresh for every simulator, like every simulator's credential.
            access_key_id: aws_id("AKIA", 16),
            secret_access_key: secret_key(),
            verify_signatures: true,
            faults: FaultProfile::none(),
            rate_limit: None,
            rate_window: Duration::from_secs(1),
            lost_response_rate: 0.0,
            seed: 7,
        }
    }
}

pub(crate) struct Inner {
    pub(crate) state: Mutex<Account>,
    pub(crate) opts: AwsSimOptions,
    pub(crate) faults: Arc<Faults>,
    pub(crate) limits: Arc<RateWindows>,
    pub(crate) log: Arc<RequestLog>,
    pub(crate) rules: Arc<Rules>,
    pub(crate) base_url: OnceLock<String>,
}

impl Inner {
    pub(crate) fn lock(&self) -> MutexGuard<'_, Account> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
    pub(crate) fn visible_from(&self) -> Instant {
        Instant::now() + self.faults.visibility_delay()
    }
}

/// Who signed the request (put into request extensions by [`authenticate`]).
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub(crate) user: String,
    pub(crate) service: String,
}

//! Retries with exponential backoff and full jitter, honouring the vendor's wait.

use std::time::Duration;

#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub max_elapsed: Duration,
    pub base: Duration,
    pub cap: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            max_elapsed: Duration::from_secs(60),
            base: Duration::from_millis(200),
            cap: Duration::from_secs(20),
        }
    }
}

impl RetryPolicy {
    /// Full jitter: a uniform delay in [0, min(cap, base * 2^(attempt-1))], but never less
    /// than what the vendor asked for.
    pub fn delay(&self, attempt: u32, vendor_wait: Option<Duration>) -> Duration {
        let exp = self
            .base
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(20))
            .min(self.cap);
        let jitter = Duration::from_secs_f64(rand::random::<f64>() * exp.as_secs_f64());
        match vendor_wait {
            Some(v) => v.max(jitter),
            None => jitter,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn backoff_is_jittered_capped_and_honours_the_vendor() {
        let p = RetryPolicy {
            max_attempts: 5,
            max_elapsed: Duration::from_secs(60),
            base: Duration::from_millis(100),
            cap: Duration::from_secs(1),
        };
        for attempt in 1..10 {
            let d = p.delay(attempt, None);
            assert!(d <= Duration::from_secs(1));
        }
        assert!(p.delay(1, Some(Duration::from_secs(3))) >= Duration::from_secs(3));
    }
}

//! `accessdesk bench NAME`: benchmarks with figures printed beside their targets.
//! With `--json` every bench prints one object:
//! `{"bench": NAME, "results": [{"name", "value", "unit", "target", "better"}]}`.

pub mod policy;

use serde::Serialize;

pub mod console;
pub mod engine;
pub mod leaver;
pub mod limiter;
pub mod observe;
pub mod plan;
pub mod reconcile;
pub mod store;
pub mod wave;
pub mod webhooks;

#[derive(Debug, Clone, Serialize)]
pub struct BenchResult {
    pub name: String,
    pub value: f64,
    pub unit: String,
    /// The target from the issue, in the same unit (None when there is no target).
    pub target: Option<f64>,
    /// "lower" or "higher".
    pub better: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    pub bench: String,
    pub results: Vec<BenchResult>,
}

impl BenchReport {
    pub fn new(bench: &str) -> Self {
        BenchReport {
            bench: bench.to_string(),
            results: Vec::new(),
        }
    }

    pub fn push(
        &mut self,
        name: &str,
        value: f64,
        unit: &str,
        target: Option<f64>,
        better: &'static str,
    ) {
        self.results.push(BenchResult {
            name: name.into(),
            value,
            unit: unit.into(),
            target,
            better,
        });
    }

    /// Human-readable table with a verdict per target.
    pub fn to_text(&self) -> String {
        let mut s = format!("bench {}\n", self.bench);
        for r in &self.results {
            let verdict = match r.target {
                None => String::new(),
                Some(t) => {
                    let ok = if r.better == "lower" {
                        r.value <= t
                    } else {
                        r.value >= t
                    };
                    format!(
                        "  (target {} {t} {}: {})",
                        if r.better == "lower" { "<=" } else { ">=" },
                        r.unit,
                        if ok { "met" } else { "MISSED" }
                    )
                }
            };
            s.push_str(&format!(
                "  {:<44} {:>12.3} {}{}\n",
                r.name, r.value, r.unit, verdict
            ));
        }
        s
    }
}

/// Median of samples (sorts in place). NaN for none.
pub fn median(samples: &mut [f64]) -> f64 {
    if samples.is_empty() {
        return f64::NAN;
    }
    samples.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    let n = samples.len();
    if n % 2 == 1 {
        samples[n / 2]
    } else {
        (samples[n / 2 - 1] + samples[n / 2]) / 2.0
    }
}

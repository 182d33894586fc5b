//! `GET /metrics`: Prometheus' text exposition format (version 0.0.4), every name prefixed
//! `accessdesk_`. Read from the store at each scrape (the kept queue counts, the recorded
//! attempts, the open findings) and from the engine's live limiters; nothing is cached, so
//! two processes on one home (serve and the console) report the same numbers.

use crate::Result;
use crate::engine::workers::Engine;
use crate::store::Store;
use std::fmt::Write;

/// Upper bounds of the operation-latency histogram, in seconds.
const BUCKETS: [f64; 10] = [0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 120.0];

/// A label value escaped as the format asks (backslash, quote, newline).
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP accessdesk_{name} {help}");
    let _ = writeln!(out, "# TYPE accessdesk_{name} {kind}");
}

/// Everything `/metrics` shows. `engine` is None while the workers are not running.
pub fn render(store: &Store, engine: Option<&Engine>, workers_alive: bool) -> Result<String> {
    let mut out = String::with_capacity(4096);
    header(&mut out, "up", "gauge", "1 while serve answers.");
    out.push_str("accessdesk_up 1\n");
    header(
        &mut out,
        "workers_alive",
        "gauge",
        "1 while the engine's workers run.",
    );
    let _ = writeln!(out, "accessdesk_workers_alive {}", u8::from(workers_alive));

    header(
        &mut out,
        "queue_operations",
        "gauge",
        "Operations on the queue by system and status.",
    );
    for (system, status, n) in store.queue_counts()? {
        let _ = writeln!(
            out,
            "accessdesk_queue_operations{{system=\"{}\",status=\"{}\"}} {n}",
            label(&system),
            label(&status)
        );
    }

    latency(store, &mut out)?;

    header(
        &mut out,
        "operations_failed",
        "gauge",
        "Failed operations by system and error class.",
    );
    two_label_counts(
        store,
        &mut out,
        "operations_failed",
        "SELECT system, coalesce(last_error_class, 'unknown'), count(*) FROM operations
         WHERE status = 'failed' GROUP BY 1, 2 ORDER BY 1, 2",
    )?;
    header(
        &mut out,
        "findings_open",
        "gauge",
        "Open findings of each system's newest reconciliation, by class.",
    );
    two_label_counts(
        store,
        &mut out,
        "findings_open",
        "SELECT system, class, count(*) FROM findings f WHERE status = 'open'
           AND run_id = (SELECT max(run_id) FROM findings g WHERE g.system = f.system)
         GROUP BY 1, 2 ORDER BY 1, 2",
    )?;

    sources(store, &mut out)?;
    if let Some(engine) = engine {
        rate_limits(engine, &mut out);
    }
    Ok(out)
}

/// Unix seconds of a stored time (0 when it does not parse).
fn unix(at: &str) -> i64 {
    crate::store::inbox::parse_ts(at).map_or(0, |t| t.timestamp())
}

/// The HR sources: deliveries and rejections, the last event and poll, the inbox backlog.
fn sources(store: &Store, out: &mut String) -> Result<()> {
    let stats = store.source_stats()?;
    header(
        out,
        "webhook_rejections_total",
        "counter",
        "Webhook deliveries refused, by source and reason (unsigned, malformed, bad_signature, stale, replayed, too_large, bad_payload).",
    );
    for s in &stats {
        if let Some(reason) = s.name.strip_prefix("rejected:") {
            let _ = writeln!(
                out,
                "accessdesk_webhook_rejections_total{{source=\"{}\",reason=\"{}\"}} {}",
                label(&s.source),
                label(reason),
                s.value
            );
        }
    }
    header(
        out,
        "source_deliveries_total",
        "counter",
        "Webhook deliveries stored, by source.",
    );
    header(
        out,
        "source_last_event_timestamp_seconds",
        "gauge",
        "When each source's newest delivery was stored (Unix seconds).",
    );
    header(
        out,
        "source_last_poll_timestamp_seconds",
        "gauge",
        "When each polled source last polled successfully (Unix seconds).",
    );
    header(
        out,
        "source_records_total",
        "counter",
        "Records processed by source and outcome (done, failed, held, changes:KIND).",
    );
    for s in &stats {
        let l = label(&s.source);
        match s.name.as_str() {
            "received" => {
                let _ = writeln!(
                    out,
                    "accessdesk_source_deliveries_total{{source=\"{l}\"}} {}",
                    s.value
                );
                let _ = writeln!(
                    out,
                    "accessdesk_source_last_event_timestamp_seconds{{source=\"{l}\"}} {}",
                    unix(&s.at)
                );
            }
            "polls" => {
                let _ = writeln!(
                    out,
                    "accessdesk_source_last_poll_timestamp_seconds{{source=\"{l}\"}} {}",
                    unix(&s.at)
                );
            }
            n if n == "done" || n == "failed" || n == "held" || n.starts_with("changes:") => {
                let _ = writeln!(
                    out,
                    "accessdesk_source_records_total{{source=\"{l}\",outcome=\"{}\"}} {}",
                    label(n),
                    s.value
                );
            }
            _ => {}
        }
    }
    header(
        out,
        "source_inbox_pending",
        "gauge",
        "Deliveries stored and not yet processed, by source.",
    );
    for (source, n, _) in store.inbox_backlog()? {
        let _ = writeln!(
            out,
            "accessdesk_source_inbox_pending{{source=\"{}\"}} {n}",
            label(&source)
        );
    }
    Ok(())
}

/// One sample per row of `sql` (system, class, count): `NAME{system,class} count`.
fn two_label_counts(store: &Store, out: &mut String, name: &str, sql: &str) -> Result<()> {
    let mut stmt = store.conn().prepare_cached(sql)?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, i64>(2)?,
        ))
    })?;
    for row in rows {
        let (system, class, n) = row?;
        let _ = writeln!(
            out,
            "accessdesk_{name}{{system=\"{}\",class=\"{}\"}} {n}",
            label(&system),
            label(&class)
        );
    }
    Ok(())
}

/// The live limiters: what each system's vendor window has left, and what is in flight.
fn rate_limits(engine: &Engine, out: &mut String) {
    let snaps: Vec<_> = engine
        .runtimes()
        .filter_map(|(s, _)| engine.rate_status(s).map(|snap| (s.clone(), snap)))
        .collect();
    header(
        out,
        "rate_limit_remaining",
        "gauge",
        "Requests the vendor's current window has left, where the vendor says.",
    );
    for (s, snap) in &snaps {
        if let Some(r) = snap.remaining {
            let _ = writeln!(
                out,
                "accessdesk_rate_limit_remaining{{system=\"{}\"}} {r}",
                label(s)
            );
        }
    }
    header(
        out,
        "rate_limit_limit",
        "gauge",
        "The vendor window's size, where the vendor says.",
    );
    for (s, snap) in &snaps {
        if let Some(l) = snap.limit {
            let _ = writeln!(
                out,
                "accessdesk_rate_limit_limit{{system=\"{}\"}} {l}",
                label(s)
            );
        }
    }
    header(
        out,
        "rate_limit_in_flight",
        "gauge",
        "Requests to the system in flight now.",
    );
    for (s, snap) in &snaps {
        let _ = writeln!(
            out,
            "accessdesk_rate_limit_in_flight{{system=\"{}\"}} {}",
            label(s),
            snap.in_flight
        );
    }
    header(
        out,
        "rate_limit_throttled_total",
        "counter",
        "Refusals for rate (429 and the vendors' own) since serve started.",
    );
    for (s, snap) in &snaps {
        let _ = writeln!(
            out,
            "accessdesk_rate_limit_throttled_total{{system=\"{}\"}} {}",
            label(s),
            snap.throttled
        );
    }
}

/// Every finished attempt's duration, bucketed per system and operation kind (a
/// cumulative histogram over what the store has recorded).
fn latency(store: &Store, out: &mut String) -> Result<()> {
    header(
        out,
        "operation_duration_seconds",
        "histogram",
        "How long each attempt at an operation took, by system and kind.",
    );
    let cases: String = BUCKETS.iter().map(|b| format!(", sum(d <= {b})")).collect();
    let sql = format!(
        "SELECT o.system, o.kind{cases}, count(*), total(d) FROM (
            SELECT op_id, (julianday(finished_at) - julianday(started_at)) * 86400.0 AS d
            FROM op_attempts WHERE finished_at IS NOT NULL
         ) a JOIN operations o ON o.id = a.op_id GROUP BY 1, 2 ORDER BY 1, 2"
    );
    let mut stmt = store.conn().prepare_cached(&sql)?;
    let n = BUCKETS.len();
    let rows = stmt.query_map([], |r| {
        let mut counts = Vec::with_capacity(n);
        for i in 0..n {
            counts.push(r.get::<_, Option<i64>>(2 + i)?.unwrap_or(0));
        }
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            counts,
            r.get::<_, i64>(2 + n)?,
            r.get::<_, f64>(3 + n)?,
        ))
    })?;
    for row in rows {
        let (system, kind, counts, count, sum) = row?;
        let l = format!("system=\"{}\",kind=\"{}\"", label(&system), label(&kind));
        for (b, c) in BUCKETS.iter().zip(&counts) {
            let _ = writeln!(
                out,
                "accessdesk_operation_duration_seconds_bucket{{{l},le=\"{b}\"}} {c}"
            );
        }
        let _ = writeln!(
            out,
            "accessdesk_operation_duration_seconds_bucket{{{l},le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(
            out,
            "accessdesk_operation_duration_seconds_sum{{{l}}} {sum}"
        );
        let _ = writeln!(
            out,
            "accessdesk_operation_duration_seconds_count{{{l}}} {count}"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_escaped() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn an_empty_store_renders_headers_and_up() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("a.db")).unwrap();
        let text = render(&store, None, false).unwrap();
        assert!(text.contains("accessdesk_up 1\n"), "{text}");
        assert!(text.contains("accessdesk_workers_alive 0\n"), "{text}");
        assert!(text.contains("# TYPE accessdesk_operation_duration_seconds histogram"));
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            assert!(line.starts_with("accessdesk_"), "{line}");
        }
    }
}

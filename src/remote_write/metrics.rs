//! The agent's own delivery metrics, `sc_agent_*`, written into each cycle's batch.
//!
//! They are read at cycle time by the loop thread: a batch reports what was sent,
//! failed and dropped before it was made. Every reason is written from the start
//! (at 0), so that `rate()` and alerts see a series before the first failure. In
//! stdout mode the same families are written, the queue figures at 0.

use super::client::Reason;
use super::Stats;
use crate::batch::{Batch, Kind};

/// The figures one cycle reports.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Report {
    pub stats: Stats,
    pub queue_bytes: usize,
    pub queue_batches: usize,
    pub missed_ticks: u64,
    /// Cycles skipped because the wall clock was not past the last batch's timestamp.
    pub clock_backward: u64,
}

/// What every family written here starts with: names no collector may write.
pub const PREFIX: &str = "sc_agent_";

/// Reasons a sample is dropped, as `sc_agent_samples_dropped_total{reason}`.
pub const DROP_REASONS: [&str; 3] = ["queue_full", "rejected", "shutdown"];

pub fn write(report: &Report, out: &mut Batch) {
    let stats = &report.stats;
    out.family(
        "sc_agent_samples_sent_total",
        "Samples delivered to the remote write endpoint (acknowledged with 2xx).",
        Kind::Counter,
    )
    .sample(&[], stats.samples_sent as f64);
    out.family(
        "sc_agent_bytes_sent_total",
        "Compressed remote write request bytes acknowledged with 2xx.",
        Kind::Counter,
    )
    .sample(&[], stats.bytes_sent as f64);
    let mut failures = out.family(
        "sc_agent_send_failures_total",
        "Remote write attempts that failed, by reason.",
        Kind::Counter,
    );
    for reason in Reason::ALL {
        failures.sample(
            &[("reason", reason.as_str())],
            stats.failures[reason.index()] as f64,
        );
    }
    let mut dropped = out.family(
        "sc_agent_samples_dropped_total",
        "Samples that will never be delivered, by reason: queue_full (oldest dropped \
         past queue.max_bytes), rejected (4xx answer), shutdown (unsent at exit).",
        Kind::Counter,
    );
    let counts = [
        stats.dropped_queue_full,
        stats.dropped_rejected,
        stats.dropped_shutdown,
    ];
    for (reason, count) in DROP_REASONS.into_iter().zip(counts) {
        dropped.sample(&[("reason", reason)], count as f64);
    }
    out.family(
        "sc_agent_queue_bytes",
        "Compressed bytes waiting in the remote write queue (the request in flight included).",
        Kind::Gauge,
    )
    .sample(&[], report.queue_bytes as f64);
    out.family(
        "sc_agent_queue_batches",
        "Batches waiting in the remote write queue (the request in flight included).",
        Kind::Gauge,
    )
    .sample(&[], report.queue_batches as f64);
    out.family(
        "sc_agent_missed_ticks_total",
        "Collection ticks skipped because a cycle ran past the next one.",
        Kind::Counter,
    )
    .sample(&[], report.missed_ticks as f64);
    out.family(
        "sc_agent_clock_backward_total",
        "Cycles skipped because the wall clock had stepped back behind the last batch's \
         timestamp (a receiver rejects samples that are not newer).",
        Kind::Counter,
    )
    .sample(&[], report.clock_backward as f64);
    out.family(
        "sc_agent_build_info",
        "A metric with a constant '1' value labeled by the version of sc-agent.",
        Kind::Gauge,
    )
    .sample(&[("version", env!("CARGO_PKG_VERSION"))], 1.0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_every_reason_and_the_figures() {
        let mut stats = Stats {
            samples_sent: 120,
            bytes_sent: 4096,
            dropped_rejected: 7,
            ..Stats::default()
        };
        stats.failures[Reason::Timeout.index()] = 3;
        let report = Report {
            stats,
            queue_bytes: 512,
            queue_batches: 2,
            missed_ticks: 1,
            clock_backward: 4,
        };
        let mut batch = Batch::new();
        batch.begin(0);
        write(&report, &mut batch);
        let mut text = Vec::new();
        crate::output::text::write(&batch, &mut text);
        let text = String::from_utf8(text).unwrap();
        for line in [
            "# TYPE sc_agent_samples_sent_total counter\nsc_agent_samples_sent_total 120\n",
            "sc_agent_bytes_sent_total 4096\n",
            "sc_agent_send_failures_total{reason=\"timeout\"} 3\n",
            "sc_agent_send_failures_total{reason=\"http_5xx\"} 0\n",
            "sc_agent_samples_dropped_total{reason=\"rejected\"} 7\n",
            "sc_agent_samples_dropped_total{reason=\"queue_full\"} 0\n",
            "# TYPE sc_agent_queue_bytes gauge\nsc_agent_queue_bytes 512\n",
            "sc_agent_queue_batches 2\n",
            "# TYPE sc_agent_missed_ticks_total counter\nsc_agent_missed_ticks_total 1\n",
            "# TYPE sc_agent_clock_backward_total counter\nsc_agent_clock_backward_total 4\n",
            "sc_agent_build_info{version=\"",
        ] {
            assert!(text.contains(line), "{line}\n---\n{text}");
        }
        assert_eq!(text.matches("sc_agent_send_failures_total{").count(), 8);
        assert!(batch.families().all(|f| f.name().starts_with(PREFIX)));
    }
}

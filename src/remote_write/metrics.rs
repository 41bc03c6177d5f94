//! The agent's own delivery metrics, `sc_agent_*`, written into each cycle's batch.
//!
//! They are read at cycle time by the loop thread: a batch reports what was sent,
//! failed and dropped before it was made. Every reason is written from the start
//! (at 0), so that `rate()` and alerts see a series before the first failure. In
//! stdout mode the same families are written, the queue figures at 0.

use super::client::Reason;
use super::Snapshot;
use crate::batch::{Batch, Kind};
use crate::relabel::SeriesDropped;

/// The figures one cycle reports.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Report {
    pub delivery: Snapshot,
    pub missed_ticks: u64,
    /// Cycles skipped because the wall clock was not past the last batch's timestamp.
    pub clock_backward: u64,
    /// Series the relabel stage left out, by reason.
    pub series_dropped: SeriesDropped,
}

/// What every family written here starts with: names no collector may write.
pub const PREFIX: &str = "sc_agent_";

/// Reasons a sample is dropped, as `sc_agent_samples_dropped_total{reason}`.
pub const DROP_REASONS: [&str; 5] = [
    "queue_full",
    "rejected",
    "shutdown",
    "too_old",
    "spool_full",
];

/// Reasons a series is left out of a batch, as `sc_agent_series_dropped_total{reason}`.
pub const SERIES_DROP_REASONS: [&str; 3] = ["limit", "duplicate", "invalid"];

/// Reasons of `sc_agent_spool_errors_total{reason}`, all written from the start.
pub const SPOOL_ERROR_REASONS: [&str; 5] = ["full", "read_only", "permission", "missing", "io"];

pub fn write(report: &Report, out: &mut Batch) {
    let stats = &report.delivery.stats;
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
         past queue.max_bytes), rejected (4xx answer), shutdown (unsent at exit), too_old \
         (past max_sample_age), spool_full (oldest dropped past spool.max_bytes).",
        Kind::Counter,
    );
    let spool = report.delivery.spool.as_ref();
    let counts = [
        stats.dropped_queue_full,
        stats.dropped_rejected,
        stats.dropped_shutdown,
        stats.dropped_too_old,
        spool.map_or(0, |s| s.dropped_full_samples),
    ];
    for (reason, count) in DROP_REASONS.into_iter().zip(counts) {
        dropped.sample(&[("reason", reason)], count as f64);
    }
    let mut series_dropped = out.family(
        "sc_agent_series_dropped_total",
        "Series left out of a batch, once per batch, by reason: limit (new series past \
         remote_write.max_series), duplicate (the labels of an earlier series of the batch \
         after relabeling), invalid (relabeling left no valid __name__).",
        Kind::Counter,
    );
    let series = &report.series_dropped;
    let counts = [series.limit, series.duplicate, series.invalid];
    for (reason, count) in SERIES_DROP_REASONS.into_iter().zip(counts) {
        series_dropped.sample(&[("reason", reason)], count as f64);
    }
    out.family(
        "sc_agent_queue_bytes",
        "Compressed bytes waiting in the remote write queue (the request in flight included).",
        Kind::Gauge,
    )
    .sample(&[], report.delivery.queue_bytes as f64);
    out.family(
        "sc_agent_queue_batches",
        "Batches waiting in the remote write queue (the request in flight included).",
        Kind::Gauge,
    )
    .sample(&[], report.delivery.queue_batches as f64);
    if let Some(spool) = spool {
        write_spool(spool, out);
    }
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

/// The spool's own figures, written when a spool is configured.
fn write_spool(spool: &super::SpoolFigures, out: &mut Batch) {
    out.family(
        "sc_agent_spool_bytes",
        "Bytes of undelivered batches in the disk spool.",
        Kind::Gauge,
    )
    .sample(&[], spool.bytes as f64);
    out.family(
        "sc_agent_spool_records",
        "Undelivered batches in the disk spool.",
        Kind::Gauge,
    )
    .sample(&[], spool.records as f64);
    out.family(
        "sc_agent_spool_oldest_age_seconds",
        "Age of the oldest batch in the disk spool (0 when empty).",
        Kind::Gauge,
    )
    .sample(&[], spool.oldest_age_seconds);
    out.family(
        "sc_agent_spool_records_dropped_total",
        "Spool records given up, by reason: full (oldest dropped past spool.max_bytes), \
         corrupt (a torn or damaged record skipped).",
        Kind::Counter,
    )
    .sample(&[("reason", "full")], spool.dropped_full as f64)
    .sample(&[("reason", "corrupt")], spool.corrupt as f64);
    let mut errors = out.family(
        "sc_agent_spool_errors_total",
        "Spool directory or write errors, by reason; delivery carries on from memory.",
        Kind::Counter,
    );
    for reason in SPOOL_ERROR_REASONS {
        let count = spool
            .errors
            .iter()
            .find(|(r, _)| *r == reason)
            .map_or(0, |(_, n)| *n);
        errors.sample(&[("reason", reason)], count as f64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote_write::Stats;

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
            delivery: Snapshot {
                stats,
                queue_bytes: 512,
                queue_batches: 2,
                spool: Some(super::super::SpoolFigures {
                    bytes: 4096,
                    records: 3,
                    oldest_age_seconds: 12.5,
                    dropped_full: 2,
                    dropped_full_samples: 70,
                    corrupt: 1,
                    errors: vec![("full", 5)],
                }),
            },
            missed_ticks: 1,
            clock_backward: 4,
            series_dropped: SeriesDropped {
                limit: 9,
                duplicate: 2,
                invalid: 0,
            },
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
            "sc_agent_samples_dropped_total{reason=\"spool_full\"} 70\n",
            "sc_agent_samples_dropped_total{reason=\"too_old\"} 0\n",
            "# TYPE sc_agent_spool_bytes gauge\nsc_agent_spool_bytes 4096\n",
            "sc_agent_spool_records 3\n",
            "sc_agent_spool_oldest_age_seconds 12.5\n",
            "sc_agent_spool_records_dropped_total{reason=\"corrupt\"} 1\n",
            "sc_agent_spool_errors_total{reason=\"full\"} 5\n",
            "sc_agent_spool_errors_total{reason=\"io\"} 0\n",
            "# TYPE sc_agent_series_dropped_total counter\nsc_agent_series_dropped_total{reason=\"limit\"} 9\n",
            "sc_agent_series_dropped_total{reason=\"duplicate\"} 2\n",
            "sc_agent_series_dropped_total{reason=\"invalid\"} 0\n",
        ] {
            assert!(text.contains(line), "{line}\n---\n{text}");
        }
        assert_eq!(text.matches("sc_agent_send_failures_total{").count(), 8);
        assert!(batch.families().all(|f| f.name().starts_with(PREFIX)));
    }
}

//! Delivery with Prometheus remote write 1.0: encode, queue, send, retry.
//!
//! ```text
//!  loop thread (every tick)                                 sender thread (one, 256 KiB stack)
//!  collect ─▶ self-metrics ─▶ relabel ─▶ encode+snappy ─▶ ┌───────┐ ─▶ POST (http, kept-alive) ─▶ 2xx: done
//!                                                         │ queue │ ◀─ 5xx/429/3xx/network: back to
//!                                         Mutex+Condvar   └───────┘    the front, wait (backoff)
//!                                                                       other 4xx: dropped, counted
//! ```
//!
//! **Why a sender thread** (the original design drew one thread for everything): a
//! request blocks until it is answered or its `timeout` passes, and an endpoint that
//! is slow, down or draining a backlog can keep every request open that long.
//! Sending on the loop thread would then delay ticks (counted as missed, their
//! samples never collected). So the loop thread only encodes, compresses and pushes
//! into the queue, taking the lock for a few microseconds and never waiting on the
//! network; the sender thread owns the HTTP side, and does all of its I/O itself
//! (connect, TLS handshake, write, read: see [`http`]). Collection keeps its
//! schedule whatever the endpoint does.
//!
//! **Order**: the queue is FIFO and the sender sends one request at a time, putting
//! a failed batch back at the front, so a newer batch never overtakes an older one
//! (Prometheus rejects out-of-order samples). After an outage the backlog drains
//! oldest first, one request after another: the endpoint's response time is the
//! back-pressure, and 429/5xx answers back off.
//!
//! **Bounds**: the queue holds at most `queue.max_bytes` of compressed requests;
//! past it the oldest batch is dropped and counted. A batch is copied once, into the
//! queue; attempts send it from there.
//!
//! **Retries** follow the remote write spec: 2xx is done; 5xx, 429 and connection,
//! TLS and timeout errors are retried with exponential backoff and full jitter
//! between `min_backoff` and `max_backoff`, or after `Retry-After` when the endpoint
//! sends one; any other 4xx drops the batch (logged with the start of the response
//! body). 3xx is retried too: see [`client`].
//!
//! **Connections**: one, kept open between pushes (HTTP/1.1 keep-alive) and
//! replaced transparently when the endpoint has closed it: that is not a failed
//! attempt, and the batch is not lost (see [`http`]). A reconnection resumes the TLS
//! session.
//!
//! **Reload** (SIGHUP) swaps the target (URL, credentials, headers, timeouts, TLS:
//! the CA file, the client certificate and the system store are read again) under
//! the lock: batches still queued go to the new one over a new connection, and the
//! queue and counters survive. **Shutdown** (SIGTERM) lets the sender drain the
//! queue until `shutdown_timeout`, then reports what is left unsent.
//!
//! **TLS** (see [`tls`]): rustls with ring, verifying against `tls.ca_file` or the
//! system store, with an optional client certificate. Certificate errors fail the
//! attempt (reason `tls`) and are retried: never is a request sent without
//! verification, unless `tls.insecure_skip_verify` says so (logged as a warning).
//!
//! Self-metrics (`sc_agent_*`) are written by the loop thread into each batch from the
//! counters shared with the sender: see [`metrics`].

mod backlog;
mod backoff;
pub mod client;
pub mod encode;
pub mod http;
pub mod metrics;
pub mod queue;
mod sender;
pub mod spool;
pub mod stale;
#[cfg(feature = "tls")]
pub mod tls;

pub use backoff::{parse_retry_after, Backoff, RETRY_AFTER_CAP};

use crate::config::Config;
use crate::relabel::Selected;
use backlog::Backlog;
use client::{Reason, Target};
use queue::{Dropped, QueuedBatch};
use spool::Spool;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The sender thread's stack: it does all of a request's I/O, the TLS handshake
/// (certificate verification, key exchange) included. Measured in a debug build:
/// the remote write, secrets and Prometheus end-to-end tests (HTTPS, mTLS, trace
/// logging) pass with 64 KiB and overflow it at 32 KiB, in the handshake. 256 KiB
/// leaves four times that and costs nothing resident (untouched pages are not).
pub const SENDER_STACK_BYTES: usize = 256 << 10;

/// Counters shared by the sender (which counts) and the loop (which reports).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Stats {
    pub samples_sent: u64,
    pub bytes_sent: u64,
    pub failures: [u64; Reason::ALL.len()],
    pub dropped_queue_full: u64,
    pub dropped_rejected: u64,
    pub dropped_shutdown: u64,
    /// Batches older than `max_sample_age`, not sent.
    pub dropped_too_old: u64,
}

/// What the spool holds and has done, for the self-metrics.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct SpoolFigures {
    pub bytes: u64,
    pub records: u64,
    /// How old the oldest record is, in seconds (0 when empty).
    pub oldest_age_seconds: f64,
    pub dropped_full: u64,
    pub dropped_full_samples: u64,
    pub corrupt: u64,
    /// Write and open errors by reason.
    pub errors: Vec<(&'static str, u64)>,
}

/// The delivery figures one cycle reports.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Snapshot {
    pub stats: Stats,
    /// What waits in memory and in the spool.
    pub queue_bytes: usize,
    pub queue_batches: usize,
    /// `None` without a spool.
    pub spool: Option<SpoolFigures>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Run,
    /// Shutting down: send what is queued, then stop.
    Flush,
    /// Stop as soon as the current request (if any) returns.
    Stop,
}

struct State {
    queue: Backlog,
    stats: Stats,
    /// `None` while the config prints to stdout.
    target: Option<Arc<Target>>,
    /// No attempt before this (backoff, `Retry-After`).
    retry_at: Option<Instant>,
    mode: Mode,
    sender_running: bool,
    /// Whether queue-full drops were already logged since the last success.
    queue_full_streak: bool,
    /// Spool open errors (writes are counted by the backlog).
    spool_open_errors: Vec<(&'static str, u64)>,
}

/// Log lines made while the lock is held, written after it is released: a slow
/// stderr (a full pipe to journald) must never hold up the loop thread's push.
#[derive(Default)]
struct Notes(Vec<(log::Level, String)>);

impl Notes {
    fn add(&mut self, level: log::Level, message: String) {
        self.0.push((level, message));
    }

    /// Takes over the lines the backlog made.
    fn extend(&mut self, lines: Vec<(log::Level, String)>) {
        self.0.extend(lines);
    }

    fn emit(self) {
        for (level, message) in self.0 {
            log::log!(level, "{message}");
        }
    }
}

impl State {
    fn note_queue_full(&mut self, dropped: Dropped, notes: &mut Notes) {
        if dropped.batches == 0 {
            return;
        }
        self.stats.dropped_queue_full += dropped.samples;
        let message = format!(
            "remote write queue full ({} of queue.max_bytes {} bytes): dropped the oldest \
             {} batch(es), {} samples",
            self.queue.memory().bytes(),
            self.queue.memory().max_bytes(),
            dropped.batches,
            dropped.samples
        );
        if self.queue_full_streak {
            notes.add(log::Level::Debug, message);
        } else {
            notes.add(log::Level::Warn, message);
            self.queue_full_streak = true;
        }
    }
}

pub(crate) struct Shared {
    state: Mutex<State>,
    /// Signalled on every change: a push, a reload, a result, a shutdown.
    changed: Condvar,
}

/// The lock, even if a panicking thread poisoned it: the state stays consistent
/// between statements, and losing delivery over a poisoned lock would be worse.
fn lock(shared: &Shared) -> MutexGuard<'_, State> {
    shared.state.lock().unwrap_or_else(|e| e.into_inner())
}

/// The loop thread's side of delivery: the encoder and the handle on the queue.
/// It lives as long as the process, across reloads.
pub struct RemoteWrite {
    shared: Arc<Shared>,
    encoder: encode::Encoder,
    sender: Option<JoinHandle<()>>,
    max_bytes: usize,
    /// The timestamp of the last request queued.
    last_timestamp_ms: Option<i64>,
    /// The spool directory in use (opened at start, reopened when a reload changes it).
    spool_directory: Option<PathBuf>,
}

impl Default for RemoteWrite {
    fn default() -> Self {
        RemoteWrite::new()
    }
}

/// What a shutdown left behind: in memory, lost (`samples`, `batches`), and in the
/// spool for the next start (`spooled`, records).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unsent {
    pub samples: u64,
    pub batches: usize,
    pub spooled: usize,
}

impl RemoteWrite {
    /// An idle delivery: no target, no thread. [`RemoteWrite::configure`] gives it one.
    pub fn new() -> Self {
        let max_bytes = crate::config::RemoteWriteConfig::default()
            .queue
            .max_bytes
            .get() as usize;
        RemoteWrite {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    queue: Backlog::new(max_bytes),
                    stats: Stats::default(),
                    target: None,
                    retry_at: None,
                    mode: Mode::Run,
                    sender_running: false,
                    queue_full_streak: false,
                    spool_open_errors: Vec::new(),
                }),
                changed: Condvar::new(),
            }),
            encoder: encode::Encoder::new(),
            sender: None,
            max_bytes,
            last_timestamp_ms: None,
            spool_directory: None,
        }
    }

    /// Applies a (re)loaded config: the target for what is queued and what comes,
    /// and the queue's cap. The queue and the counters are kept.
    pub fn configure(&mut self, config: &Config) {
        let target = Target::from_config(config).map(Arc::new);
        if let Some(target) = &target {
            log::info!(
                "remote write to {} (timeout {}, backoff {}..{}, queue up to {})",
                target.shown_url,
                config.remote_write.timeout,
                config.remote_write.min_backoff,
                config.remote_write.max_backoff,
                config.remote_write.queue.max_bytes
            );
            if target.has_credentials() && !target.is_https() {
                log::warn!(
                    "ingestor_endpoint is plain http:// but credentials are configured: \
                     they travel unencrypted; use https://"
                );
            }
        }
        self.max_bytes = config.remote_write.queue.max_bytes.get() as usize;
        let spool_options = &config.remote_write.spool;
        let spool_max = spool_options.max_bytes.get();
        // Without an endpoint nothing is ever spooled (metrics go to stdout): the
        // directory is neither created nor opened.
        let spool_directory = target.as_ref().and(spool_options.directory.clone());
        let reopen = self.spool_directory != spool_directory;
        let opened = match (&spool_directory, reopen) {
            (Some(dir), true) => Some(match Spool::open(dir, spool_max) {
                Ok(spool) => {
                    log::info!(
                        "spool in {} (up to {}): {} batch(es) waiting from before",
                        dir.display(),
                        spool_options.max_bytes,
                        spool.records()
                    );
                    Ok(spool)
                }
                Err(e) => {
                    log::error!(
                        "spool: {e}; batches that cannot be delivered are held in memory \
                         only (queue.max_bytes)"
                    );
                    Err(e.reason)
                }
            }),
            _ => None,
        };
        self.spool_directory = spool_directory;
        let mut notes = Notes::default();
        let mut state = lock(&self.shared);
        match opened {
            Some(Ok(spool)) => state.queue.set_spool(Some(spool)),
            Some(Err(reason)) => {
                state.queue.set_spool(None);
                add_count(&mut state.spool_open_errors, reason);
            }
            None if reopen => state.queue.set_spool(None),
            None => {
                if let Some(spool) = state.queue.spool_mut() {
                    spool.set_max_bytes(spool_max);
                }
            }
        }
        let dropped = state.queue.set_memory_max_bytes(self.max_bytes);
        state.note_queue_full(dropped, &mut notes);
        if target.is_none() && state.queue.memory().has_waiting() {
            let dropped = state.queue.clear_memory();
            state.stats.dropped_shutdown += dropped.samples;
            notes.add(
                log::Level::Warn,
                format!(
                    "ingestor_endpoint removed: dropped {} queued samples",
                    dropped.samples
                ),
            );
        }
        state.target = target;
        // A new endpoint is tried at once, whatever the old one's backoff was.
        state.retry_at = None;
        // What the spool holds from before is sent without waiting for a cycle.
        let start = state.target.is_some()
            && !state.sender_running
            && state.mode == Mode::Run
            && state.queue.has_waiting();
        if start {
            state.sender_running = true;
        }
        notes.extend(state.queue.take_notes());
        drop(state);
        self.shared.changed.notify_all();
        notes.emit();
        if start {
            self.start_sender();
        }
    }

    /// Encodes `batch` (the series the relabel stage selected, with stale markers
    /// for the series of the last batch it lacks) and queues it for the sender.
    /// Never waits on the network.
    pub fn push(&mut self, batch: &Selected<'_>) {
        let encoded = match self.encoder.encode_selected(batch) {
            Ok(encoded) => encoded,
            Err(e) => {
                log::error!("cannot compress the batch: {e}");
                return;
            }
        };
        let entry = QueuedBatch {
            body: encoded.body.to_vec(),
            samples: encoded.samples as u64,
            timestamp_ms: batch.timestamp_ms(),
        };
        log::trace!(
            "queued {} samples ({} stale markers): {} protobuf bytes, {} compressed",
            entry.samples,
            encoded.stale,
            encoded.raw_len,
            entry.body.len()
        );
        self.last_timestamp_ms = Some(batch.timestamp_ms());
        self.enqueue(entry);
    }

    /// Queues a request marking every series of the last batch stale, for a clean
    /// stop: Prometheus then shows the host's series as gone at once. Its timestamp
    /// is `now_ms`, or just after the last batch's if the clock says otherwise (a
    /// sample must be newer than the last one of its series).
    pub fn mark_all_stale(&mut self, now_ms: i64) {
        let Some(last) = self.last_timestamp_ms else {
            return;
        };
        let timestamp_ms = now_ms.max(last.saturating_add(1));
        let encoded = match self.encoder.encode_all_stale(timestamp_ms) {
            None => return,
            Some(Ok(encoded)) => encoded,
            Some(Err(e)) => {
                log::error!("cannot compress the stale markers: {e}");
                return;
            }
        };
        log::debug!(
            "queued {} stale markers for the last batch's series",
            encoded.samples
        );
        let entry = QueuedBatch {
            body: encoded.body.to_vec(),
            samples: encoded.samples as u64,
            timestamp_ms,
        };
        self.last_timestamp_ms = Some(timestamp_ms);
        self.enqueue(entry);
    }

    fn enqueue(&mut self, entry: QueuedBatch) {
        let mut notes = Notes::default();
        let mut state = lock(&self.shared);
        let dropped = state.queue.push(entry);
        state.note_queue_full(dropped, &mut notes);
        notes.extend(state.queue.take_notes());
        let start = !state.sender_running && state.mode == Mode::Run;
        if start {
            state.sender_running = true;
        }
        drop(state);
        self.shared.changed.notify_all();
        notes.emit();
        if start {
            self.start_sender();
        }
    }

    fn start_sender(&mut self) {
        let shared = Arc::clone(&self.shared);
        let spawned = std::thread::Builder::new()
            .name("sender".into())
            .stack_size(SENDER_STACK_BYTES)
            .spawn(move || sender::run(shared));
        match spawned {
            Ok(handle) => self.sender = Some(handle),
            Err(e) => {
                // Tried again at the next push; meanwhile the queue holds the batches.
                log::error!("cannot start the sender thread: {e}");
                lock(&self.shared).sender_running = false;
            }
        }
    }

    /// A copy of the counters and what waits, right now. `now_ms` dates the spool's
    /// oldest record.
    pub fn snapshot(&self, now_ms: i64) -> Snapshot {
        let mut state = lock(&self.shared);
        let open_errors = state.spool_open_errors.clone();
        let errors = state.queue.errors.counts.clone();
        let spool = if self.spool_directory.is_some() {
            let mut figures = SpoolFigures {
                errors: open_errors,
                ..SpoolFigures::default()
            };
            for (reason, count) in errors {
                add_counts(&mut figures.errors, reason, count);
            }
            if let Some(spool) = state.queue.spool_mut() {
                let counts = spool.counts();
                figures.bytes = spool.bytes();
                figures.records = spool.records();
                figures.dropped_full = counts.dropped_full;
                figures.dropped_full_samples = counts.dropped_full_samples;
                figures.corrupt = counts.corrupt;
                figures.oldest_age_seconds = spool
                    .oldest_timestamp_ms()
                    .map_or(0.0, |ts| (now_ms - ts).max(0) as f64 / 1000.0);
            }
            Some(figures)
        } else {
            None
        };
        Snapshot {
            stats: state.stats.clone(),
            queue_bytes: state.queue.bytes(),
            queue_batches: state.queue.batches(),
            spool,
        }
    }

    /// Sends what is queued for at most `timeout`, then stops the sender. Returns
    /// what could not be sent, which is counted as dropped (reason `shutdown`).
    pub fn shutdown(&mut self, timeout: Duration) -> Unsent {
        let deadline = Instant::now() + timeout;
        let mut state = lock(&self.shared);
        state.mode = Mode::Flush;
        if state.target.is_some() && state.queue.has_waiting() && !state.sender_running {
            // Queued, but the sender could not be started: one more try.
            state.sender_running = true;
            drop(state);
            self.start_sender();
            state = lock(&self.shared);
        }
        self.shared.changed.notify_all();
        // Until shutdown_timeout, whatever the endpoint does; what is left then goes
        // to the spool for the next start.
        while state.sender_running {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            state = self
                .shared
                .changed
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        state.mode = Mode::Stop;
        self.shared.changed.notify_all();
        let spooled_before = state.queue.spool().map_or(0, |s| s.records());
        let left = state.queue.spool_for_shutdown();
        let spooled = state.queue.spool().map_or(0, |s| s.records());
        let unsent = Unsent {
            samples: left.samples,
            batches: left.batches as usize,
            spooled: spooled as usize,
        };
        state.stats.dropped_shutdown += unsent.samples;
        let mut notes = Notes::default();
        notes.extend(state.queue.take_notes());
        if spooled > spooled_before {
            notes.add(
                log::Level::Info,
                format!(
                    "{} batch(es) moved to the spool for the next start",
                    spooled - spooled_before
                ),
            );
        }
        drop(state);
        notes.emit();
        if let Some(handle) = self.sender.take() {
            if handle.is_finished() {
                let _ = handle.join();
            }
            // Otherwise it is blocked in a request; process exit ends it.
        }
        unsent
    }
}

fn add_count(counts: &mut Vec<(&'static str, u64)>, reason: &'static str) {
    add_counts(counts, reason, 1);
}

fn add_counts(counts: &mut Vec<(&'static str, u64)>, reason: &'static str, n: u64) {
    match counts.iter_mut().find(|(r, _)| *r == reason) {
        Some((_, count)) => *count += n,
        None => counts.push((reason, n)),
    }
}

/// `2026-11-25T14:37:33.123Z`-style text for a cycle timestamp, for logs.
pub(crate) fn format_timestamp(ms: i64) -> String {
    let mut text = String::new();
    let time = std::time::UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    crate::logging::push_rfc3339(time, &mut text);
    text
}

//! The sender thread: takes the oldest queued batch, sends it, and decides from the
//! outcome whether it is done, dropped or retried after a backoff. It owns the HTTP
//! client, and with it the connection kept open between requests.

use super::backoff::Backoff;
use super::client::{Reason, SendOutcome, Target};
use super::http::Client;
use super::{lock, Mode, Notes, Shared};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A run of consecutive failures, so that an outage is logged when it starts and
/// when it ends, not at every retry.
#[derive(Default)]
struct Streak {
    failures: u64,
    since: Option<Instant>,
}

pub(super) fn run(shared: Arc<Shared>) {
    let mut backoff = Backoff::new(Backoff::seed());
    let mut streak = Streak::default();
    let mut client = Client::new();
    // The target the connection was opened for: a reload makes a new one, whose
    // requests go over a new connection (a new endpoint, new credentials or TLS).
    let mut connected_to: Option<Arc<Target>> = None;
    loop {
        // Wait for a batch, a target and the end of any backoff; or for the end.
        let (entry, target) = {
            let mut state = lock(&shared);
            loop {
                let flushing = matches!(state.mode, Mode::Flush);
                let idle = !state.queue.has_waiting();
                if matches!(state.mode, Mode::Stop) || (flushing && idle) {
                    state.sender_running = false;
                    shared.changed.notify_all();
                    return;
                }
                let now = Instant::now();
                let wait = match (&state.target, state.retry_at) {
                    _ if idle => None,
                    (None, _) => None,
                    (Some(_), Some(at)) if at > now => Some(at - now),
                    (Some(target), _) => {
                        let target = Arc::clone(target);
                        match state.queue.take() {
                            Some(entry) => break (entry, target),
                            None => None,
                        }
                    }
                };
                state = match wait {
                    Some(wait) => {
                        shared
                            .changed
                            .wait_timeout(state, wait)
                            .unwrap_or_else(|e| e.into_inner())
                            .0
                    }
                    None => shared
                        .changed
                        .wait(state)
                        .unwrap_or_else(|e| e.into_inner()),
                };
            }
        };

        // The network, with the lock released: the loop keeps pushing meanwhile.
        if !connected_to
            .as_ref()
            .is_some_and(|last| Arc::ptr_eq(last, &target))
        {
            client.close();
            connected_to = Some(Arc::clone(&target));
        }
        let bytes = entry.body.len() as u64;
        let outcome = target.send(&mut client, &entry.body);

        let mut notes = Notes::default();
        let mut state = lock(&shared);
        state.retry_at = None;
        match outcome {
            SendOutcome::Sent => {
                state.queue.done();
                state.stats.samples_sent += entry.samples;
                state.stats.bytes_sent += bytes;
                state.queue_full_streak = false;
                backoff.reset();
                if streak.failures > 0 {
                    let secs = streak.since.map_or(0.0, |s| s.elapsed().as_secs_f64());
                    notes.add(
                        log::Level::Info,
                        format!(
                            "remote write recovered after {} failed attempt(s) over {secs:.1}s",
                            streak.failures
                        ),
                    );
                    streak = Streak::default();
                }
            }
            SendOutcome::Rejected { status, body } => {
                state.queue.done();
                state.stats.failures[Reason::Http4xx.index()] += 1;
                state.stats.dropped_rejected += entry.samples;
                notes.add(
                    log::Level::Error,
                    format!(
                        "{} rejected the batch of {} ({} samples) with HTTP {status}, \
                         dropping it (not retried): {body}",
                        target.shown_url,
                        super::format_timestamp(entry.timestamp_ms),
                        entry.samples
                    ),
                );
            }
            SendOutcome::Retry {
                reason,
                retry_after,
                detail,
            } => {
                state.stats.failures[reason.index()] += 1;
                let delay = backoff
                    .next(target.min_backoff, target.max_backoff)
                    .max(retry_after.unwrap_or(Duration::ZERO));
                state.retry_at = Some(Instant::now() + delay);
                streak.failures += 1;
                let first = streak.since.is_none();
                streak.since.get_or_insert_with(Instant::now);
                let message = format!(
                    "remote write to {} failed ({}): {detail}; retrying in {:.3}s",
                    target.shown_url,
                    reason.as_str(),
                    delay.as_secs_f64()
                );
                let level = if first {
                    log::Level::Warn
                } else {
                    log::Level::Debug
                };
                notes.add(level, message);
                let dropped = state.queue.put_back(entry);
                state.note_queue_full(dropped, &mut notes);
            }
        }
        drop(state);
        shared.changed.notify_all();
        notes.emit();
    }
}

//! Remote write through the real binary against a fault-injecting receiver: retries,
//! order, drops, timeouts (sub-second ones too), start-up without an endpoint,
//! shutdown flush, reload, the connection kept between pushes, HTTPS (session
//! resumption, client certificates) and secrets.
//!
//! The agent reads a fixture procfs (loadavg and meminfo only), so every batch has
//! the same series; its timestamp identifies the cycle. Waits are on conditions,
//! never fixed sleeps, except where the scenario itself is "an endpoint that comes
//! back after a while".

use sc_agent_testkit as common;
use sc_agent_testkit::receiver;

use common::{Agent, TempDir};
use nix::sys::signal::Signal;
use receiver::{Received, Receiver, Reply};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const WAIT: Duration = Duration::from_secs(30);
const INTERVAL_MS: i64 = 200;

/// A config pushing every 200ms to `endpoint` from the fixture procfs.
fn config(endpoint: &str, extra: &str) -> String {
    with_remote_write(endpoint, "", extra)
}

/// Like [`config`], with more `remote_write:` settings (unindented YAML).
fn with_remote_write(endpoint: &str, remote_write: &str, extra: &str) -> String {
    let procfs = common::fixtures().join("loadavg_meminfo/proc");
    format!(
        "vm_id: test-vm\ninstance: test-host\ncollection_interval: {INTERVAL_MS}ms\n\
         ingestor_endpoint: {endpoint}\n\
         remote_write:\n  min_backoff: 20ms\n  max_backoff: 200ms\n{}\
         paths:\n  procfs: {}\n{}{extra}",
        common::indent(remote_write, 2),
        procfs.display(),
        common::collectors_only(&["loadavg", "meminfo"])
    )
}

fn start(dir: &TempDir, config: &str, env: &[(&str, &str)]) -> Agent {
    let path = dir.write("sc-agent.yaml", config);
    Agent::spawn(&["--config", path.to_str().unwrap()], env)
}

fn timestamps(requests: &[Received]) -> Vec<i64> {
    requests.iter().map(Received::timestamp).collect()
}

fn accepted_count(at_least: usize) -> impl Fn(&[Received]) -> bool {
    move |r| r.iter().filter(|r| r.accepted()).count() >= at_least
}

fn assert_strictly_increasing(ts: &[i64]) {
    assert!(
        ts.windows(2).all(|w| w[0] < w[1]),
        "timestamps out of order or repeated: {ts:?}"
    );
}

/// Consecutive cycles are one interval apart; a longer gap must be a tick the agent
/// itself reports as missed (a loaded machine), never a batch lost in delivery.
fn assert_no_gaps(ts: &[i64], last: &Received) {
    let missed = last
        .value("sc_agent_missed_ticks_total", &[])
        .expect("missed ticks metric");
    let gaps: Vec<_> = ts
        .windows(2)
        .filter(|w| w[1] - w[0] > INTERVAL_MS * 3 / 2)
        .collect();
    assert!(
        gaps.is_empty() || missed > 0.0,
        "batches missing between {gaps:?}"
    );
}

fn failures(request: &Received, reason: &str) -> f64 {
    request
        .value("sc_agent_send_failures_total", &[("reason", reason)])
        .unwrap_or_else(|| panic!("no sc_agent_send_failures_total{{reason={reason:?}}}"))
}

fn dropped(request: &Received, reason: &str) -> f64 {
    request
        .value("sc_agent_samples_dropped_total", &[("reason", reason)])
        .unwrap_or_else(|| panic!("no sc_agent_samples_dropped_total{{reason={reason:?}}}"))
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// A policy that answers 503 until `healthy` is set, then 204.
fn down_until(healthy: &Arc<AtomicBool>) -> impl FnMut(usize) -> Reply + Send + 'static {
    let healthy = Arc::clone(healthy);
    move |_| {
        if healthy.load(Ordering::SeqCst) {
            Reply::ok()
        } else {
            Reply::status(503, "down for maintenance")
        }
    }
}

#[test]
fn protocol_headers_labels_and_values() {
    let receiver = Receiver::start(|_| Reply::ok());
    let dir = TempDir::new();
    let agent = start(
        &dir,
        &config(&receiver.url(), "labels:\n  env: test\n  team: sre\n"),
        &[],
    );
    receiver.wait_for(WAIT, "two batches", accepted_count(2));
    let first = &receiver.accepted()[0];
    assert_eq!(first.method, "POST");
    assert_eq!(first.path, "/api/v1/write");
    let header = |name: &str| first.headers.get(name).map(String::as_str);
    assert_eq!(header("content-encoding"), Some("snappy"));
    assert_eq!(header("content-type"), Some("application/x-protobuf"));
    assert_eq!(header("x-prometheus-remote-write-version"), Some("0.1.0"));
    let user_agent = format!("sc-agent/{}", env!("CARGO_PKG_VERSION"));
    assert_eq!(header("user-agent"), Some(user_agent.as_str()));
    assert_eq!(header("authorization"), None);
    let load = first
        .series
        .iter()
        .find(|s| s.labels["__name__"] == "node_load1")
        .expect("node_load1");
    let labels: Vec<(&str, &str)> = load
        .labels
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        labels,
        [
            ("__name__", "node_load1"),
            ("env", "test"),
            ("instance", "test-host"),
            ("job", "node"),
            ("team", "sre"),
            ("vm_id", "test-vm"),
        ]
    );
    assert_eq!(load.value, 0.31);
    assert_eq!(
        first.value("node_memory_MemTotal_bytes", &[]),
        Some(2_048_000_000.0)
    );
    assert_eq!(
        first.value(
            "sc_agent_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        Some(1.0)
    );
    // A later batch reports the earlier ones as sent: samples and compressed bytes.
    receiver.wait_for(WAIT, "a report of batches sent", |r| {
        r.iter()
            .any(|r| r.value("sc_agent_samples_sent_total", &[]) > Some(0.0))
    });
    let accepted = receiver.accepted();
    let report = accepted
        .iter()
        .find(|r| r.value("sc_agent_samples_sent_total", &[]) > Some(0.0))
        .unwrap();
    let sent = report.value("sc_agent_samples_sent_total", &[]).unwrap();
    let per_batch = first.series.len() as f64;
    assert_eq!(sent % per_batch, 0.0, "{}", agent.stderr());
    let batches = (sent / per_batch) as usize;
    let bytes: usize = accepted[..batches].iter().map(|r| r.body_len).sum();
    assert_eq!(
        report.value("sc_agent_bytes_sent_total", &[]),
        Some(bytes as f64)
    );
}

#[test]
fn a_500_is_retried_until_every_sample_arrives_once_in_order() {
    let receiver = Receiver::start(|n| {
        if n < 5 {
            Reply::status(500, "internal error")
        } else {
            Reply::ok()
        }
    });
    let dir = TempDir::new();
    let agent = start(&dir, &config(&receiver.url(), ""), &[]);
    receiver.wait_for(WAIT, "12 accepted batches", accepted_count(12));
    let received = receiver.received();
    let accepted = receiver.accepted();
    let ts = timestamps(&accepted);
    assert_strictly_increasing(&ts);
    // Every batch that got a 500 arrived again and was taken.
    let all: BTreeSet<i64> = timestamps(&received).into_iter().collect();
    let taken: BTreeSet<i64> = ts.iter().copied().collect();
    assert_eq!(all, taken, "a batch was lost");
    assert_eq!(ts[0], *all.first().unwrap(), "the first batch came first");
    // Every attempt carried the whole batch.
    let size = received[0].series.len();
    assert!(received.iter().all(|r| r.series.len() == size));
    let last = accepted.last().unwrap();
    assert_no_gaps(&ts, last);
    receiver.wait_for(WAIT, "the 5 failures reported", |r| {
        r.iter().any(|r| {
            r.value("sc_agent_send_failures_total", &[("reason", "http_5xx")]) == Some(5.0)
        })
    });
    let last = receiver.accepted().pop().unwrap();
    assert_eq!(failures(&last, "http_5xx"), 5.0, "{}", agent.stderr());
    for reason in ["queue_full", "rejected", "shutdown"] {
        assert_eq!(dropped(&last, reason), 0.0, "{reason}");
    }
    assert!(
        agent.stderr().contains("failed (http_5xx): HTTP 500"),
        "{}",
        agent.stderr()
    );
    assert!(agent
        .stderr()
        .contains("recovered after 5 failed attempt(s)"));
}

#[test]
fn a_429_waits_for_retry_after() {
    let receiver = Receiver::start(|n| {
        if n == 0 {
            Reply::Status(
                429,
                vec![("Retry-After".into(), "2".into())],
                "slow down".into(),
            )
        } else {
            Reply::ok()
        }
    });
    let dir = TempDir::new();
    let agent = start(&dir, &config(&receiver.url(), ""), &[]);
    receiver.wait_for(WAIT, "a second request", |r| r.len() >= 2);
    let received = receiver.received();
    let refused_at = received[0].answered_at.unwrap();
    let waited = received[1].at.duration_since(refused_at);
    assert!(
        waited >= Duration::from_secs(2),
        "retried {waited:?} after a 429 with Retry-After: 2"
    );
    assert!(waited < Duration::from_secs(5), "waited {waited:?}");
    // The refused batch is the one retried first.
    assert_eq!(received[1].timestamp(), received[0].timestamp());
    receiver.wait_for(WAIT, "the 429 counted", |r| {
        r.last().is_some_and(|r| {
            r.value("sc_agent_send_failures_total", &[("reason", "http_429")]) == Some(1.0)
        })
    });
    assert!(
        agent.stderr().contains("failed (http_429)"),
        "{}",
        agent.stderr()
    );
}

#[test]
fn a_redirect_is_not_followed_but_retried_and_logged_with_its_location() {
    let elsewhere = Receiver::start(|_| Reply::ok());
    let location = elsewhere.url();
    let receiver = Receiver::start(move |n| {
        if n < 3 {
            Reply::Status(
                307,
                vec![("Location".into(), location.clone())],
                String::new(),
            )
        } else {
            Reply::ok()
        }
    });
    let dir = TempDir::new();
    let agent = start(&dir, &config(&receiver.url(), ""), &[]);
    receiver.wait_for(WAIT, "the 3xx counted", |r| {
        r.iter().any(|r| {
            r.value("sc_agent_send_failures_total", &[("reason", "http_other")]) == Some(3.0)
        })
    });
    let received = receiver.received();
    // The redirected batch is the one retried, and taken once the endpoint answers.
    assert!(received[..3]
        .iter()
        .all(|r| r.timestamp() == received[0].timestamp()));
    assert_eq!(receiver.accepted()[0].timestamp(), received[0].timestamp());
    assert!(elsewhere.received().is_empty(), "the redirect was followed");
    assert_eq!(elsewhere.connections(), 0);
    let stderr = agent.stderr();
    assert!(
        stderr.contains(&format!(
            "failed (http_other): HTTP 307 redirecting to \"{}\", which sc-agent does not follow",
            elsewhere.url()
        )),
        "{stderr}"
    );
}

#[test]
fn a_400_drops_the_batch_counts_it_and_does_not_retry() {
    let receiver = Receiver::start(|n| {
        if n == 0 {
            Reply::status(400, "out of order sample")
        } else {
            Reply::ok()
        }
    });
    let dir = TempDir::new();
    let agent = start(&dir, &config(&receiver.url(), ""), &[]);
    receiver.wait_for(WAIT, "the drop reported", |r| {
        r.iter().any(|r| {
            r.value("sc_agent_samples_dropped_total", &[("reason", "rejected")]) > Some(0.0)
        })
    });
    receiver.wait_for(WAIT, "3 accepted batches", accepted_count(3));
    let received = receiver.received();
    let rejected = &received[0];
    assert_eq!(rejected.status, Some(400));
    assert!(
        received[1..]
            .iter()
            .all(|r| r.timestamp() != rejected.timestamp()),
        "the rejected batch was sent again"
    );
    let last = receiver.accepted().pop().unwrap();
    assert_eq!(dropped(&last, "rejected"), rejected.series.len() as f64);
    assert_eq!(failures(&last, "http_4xx"), 1.0);
    let stderr = agent.stderr();
    assert!(stderr.contains("with HTTP 400"), "{stderr}");
    assert!(stderr.contains("\"out of order sample\""), "{stderr}");
}

#[test]
fn a_receiver_that_never_answers_times_out_and_collection_keeps_its_schedule() {
    let receiver = Receiver::start(|n| if n < 2 { Reply::Hang } else { Reply::ok() });
    let dir = TempDir::new();
    let started = Instant::now();
    let agent = start(
        &dir,
        &with_remote_write(&receiver.url(), "timeout: 1s\n", ""),
        &[],
    );
    receiver.wait_for(WAIT, "batches after the two timeouts", accepted_count(10));
    assert!(started.elapsed() >= Duration::from_secs(2));
    let received = receiver.received();
    assert!(received[0].status.is_none() && received[1].status.is_none());
    let accepted = receiver.accepted();
    let ts = timestamps(&accepted);
    assert_strictly_increasing(&ts);
    // The hung batch came first once the endpoint answered.
    assert_eq!(ts[0], received[0].timestamp());
    // Two requests hung for a second each, yet cycles went on every 200ms: a loop
    // waiting on the network would show gaps of a second or more.
    let widest = ts.windows(2).map(|w| w[1] - w[0]).max().unwrap();
    assert!(widest < 900, "a {widest}ms gap between cycles: {ts:?}");
    // Batches made after the second timeout report both.
    receiver.wait_for(WAIT, "both timeouts counted", |r| {
        r.iter()
            .any(|r| r.value("sc_agent_send_failures_total", &[("reason", "timeout")]) == Some(2.0))
    });
    assert!(
        agent.stderr().contains("failed (timeout)"),
        "{}",
        agent.stderr()
    );
}

/// The sum of `sc_agent_send_failures_total` over every reason.
fn all_failures(request: &Received) -> f64 {
    request
        .series
        .iter()
        .filter(|s| s.labels["__name__"] == "sc_agent_send_failures_total")
        .map(|s| s.value)
        .sum()
}

#[test]
fn pushes_share_one_kept_alive_connection_and_one_sender_thread() {
    let receiver = Receiver::start(|_| Reply::ok());
    let dir = TempDir::new();
    let agent = start(&dir, &config(&receiver.url(), ""), &[]);
    receiver.wait_for(WAIT, "12 batches", accepted_count(12));
    let accepted = receiver.accepted();
    assert_eq!(receiver.connections(), 1, "{}", agent.stderr());
    assert!(accepted.iter().all(|r| r.connection == 0));
    let positions: Vec<usize> = accepted.iter().map(|r| r.on_connection).collect();
    assert_eq!(positions, (0..positions.len()).collect::<Vec<_>>());
    // The loop thread and the sender: no helper thread per request.
    let (threads, _) = common::threads_and_fds(agent.pid().as_raw() as u32);
    assert_eq!(threads, 2, "{}", agent.stderr());
}

#[test]
fn an_endpoint_closing_connections_costs_no_failure_and_no_batch() {
    // Every fourth request meets its connection closed as it arrives (a server
    // timing out the idle connection at that very moment): the agent sends it again
    // on a new connection at once.
    let closing = Receiver::start(|n| {
        if n % 4 == 3 {
            Reply::Close
        } else {
            Reply::ok()
        }
    });
    // This one closes every connection idle for 100ms: each push (every 200ms) finds
    // the kept connection closed and opens another.
    let idle = Receiver::start(|_| Reply::ok());
    idle.close_idle_after(Duration::from_millis(100));
    let dir = TempDir::new();
    let agents: Vec<Agent> = [&closing, &idle]
        .iter()
        .enumerate()
        .map(|(i, receiver)| {
            let path = dir.write(&format!("{i}.yaml"), &config(&receiver.url(), ""));
            Agent::spawn(&["--config", path.to_str().unwrap()], &[])
        })
        .collect();
    for (receiver, agent) in [&closing, &idle].into_iter().zip(&agents) {
        receiver.wait_for(WAIT, "12 accepted batches", accepted_count(12));
        let received = receiver.received();
        let accepted = receiver.accepted();
        let ts = timestamps(&accepted);
        assert_strictly_increasing(&ts);
        let all: BTreeSet<i64> = timestamps(&received).into_iter().collect();
        assert_eq!(all, ts.iter().copied().collect(), "a batch was lost");
        let last = accepted.last().unwrap();
        assert_no_gaps(&ts, last);
        assert_eq!(all_failures(last), 0.0, "{}", agent.stderr());
        assert!(!agent.stderr().contains("failed"), "{}", agent.stderr());
    }
    assert!(closing.received().iter().any(|r| r.status.is_none()));
    assert!(
        idle.connections() >= 10,
        "{} connections for {} requests",
        idle.connections(),
        idle.received().len()
    );
}

#[test]
fn a_sub_second_timeout_is_honoured_as_written() {
    let receiver = Receiver::start(|n| if n < 2 { Reply::Hang } else { Reply::ok() });
    let dir = TempDir::new();
    let agent = start(
        &dir,
        &with_remote_write(&receiver.url(), "timeout: 250ms\n", ""),
        &[],
    );
    receiver.wait_for(WAIT, "the first hung request", |r| !r.is_empty());
    // While a request hangs: still the loop thread and the sender alone.
    let (threads, _) = common::threads_and_fds(agent.pid().as_raw() as u32);
    assert_eq!(threads, 2);
    receiver.wait_for(WAIT, "batches after two timeouts", accepted_count(3));
    let received = receiver.received();
    // Each retry comes 250ms after the hung request went out, plus a backoff of
    // 20..80ms: well under the second a whole-second timeout would wait. (The
    // receiver notes a request once it has read and decoded it, some milliseconds
    // after the agent's deadline started: hence the slack below 250ms.)
    for pair in received[..3].windows(2) {
        let waited = pair[1].at.duration_since(pair[0].at);
        assert!(
            waited >= Duration::from_millis(180) && waited < Duration::from_millis(800),
            "a retry {waited:?} after the hung request: {}",
            agent.stderr()
        );
    }
    assert!(
        agent.stderr().contains("(timeout 250ms)"),
        "{}",
        agent.stderr()
    );
    receiver.wait_for(WAIT, "both timeouts counted", |r| {
        r.iter()
            .any(|r| r.value("sc_agent_send_failures_total", &[("reason", "timeout")]) == Some(2.0))
    });
}

#[test]
fn past_the_queue_cap_the_oldest_are_dropped_and_the_newest_kept() {
    let healthy = Arc::new(AtomicBool::new(false));
    let receiver = Receiver::start(down_until(&healthy));
    let dir = TempDir::new();
    let agent = start(
        &dir,
        &with_remote_write(&receiver.url(), "queue:\n  max_bytes: 2KiB\n", ""),
        &[],
    );
    // Down for 3 seconds: about 15 batches for a queue that holds a few.
    receiver.wait_for(WAIT, "an outage of 3s", |r| {
        r.first()
            .is_some_and(|first| first.at.elapsed() > Duration::from_secs(3))
    });
    let first_attempted = receiver.received()[0].timestamp();
    let back_ms = now_ms();
    healthy.store(true, Ordering::SeqCst);
    receiver.wait_for(WAIT, "batches made after the outage", |r| {
        r.iter()
            .any(|r| r.accepted() && r.timestamp() > back_ms + 1_000)
    });
    let accepted = receiver.accepted();
    let ts = timestamps(&accepted);
    assert_strictly_increasing(&ts);
    assert!(
        !ts.contains(&first_attempted),
        "the oldest batch should have been dropped"
    );
    // The newest batch of the outage was kept and delivered.
    assert!(
        ts.iter()
            .any(|t| (back_ms - 3 * INTERVAL_MS..=back_ms).contains(t)),
        "no batch from just before the endpoint came back: {ts:?} vs {back_ms}"
    );
    // What was kept fits the cap (plus the newest, always kept).
    let backlog: Vec<_> = accepted
        .iter()
        .filter(|r| r.timestamp() <= back_ms)
        .collect();
    let smallest = accepted.iter().map(|r| r.body_len).min().unwrap();
    assert!(
        backlog.len() <= 2048 / smallest + 1,
        "{} batches of >= {smallest} bytes kept under a 2KiB cap",
        backlog.len()
    );
    let last = accepted.last().unwrap();
    let samples = last.series.len() as f64;
    let queue_full = dropped(last, "queue_full");
    assert!(queue_full > 0.0, "{}", agent.stderr());
    assert_eq!(queue_full % samples, 0.0, "whole batches are dropped");
    assert!(agent.stderr().contains("remote write queue full"));
}

#[test]
fn an_endpoint_down_at_start_up_gets_everything_once_it_appears() {
    let port = common::free_port();
    let url = format!("http://127.0.0.1:{port}/api/v1/write");
    let dir = TempDir::new();
    let agent = start(&dir, &config(&url, ""), &[]);
    assert!(
        agent.wait_for(WAIT, |_, err| err.contains("failed (connection)")),
        "{}",
        agent.stderr()
    );
    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    let receiver = Receiver::serve(listener, Box::new(|_| Reply::ok()), None);
    receiver.wait_for(WAIT, "5 batches", accepted_count(5));
    let accepted = receiver.accepted();
    let ts = timestamps(&accepted);
    assert_strictly_increasing(&ts);
    assert_no_gaps(&ts, accepted.last().unwrap());
    receiver.wait_for(WAIT, "the refused connections reported", |r| {
        r.iter().any(|r| {
            r.value("sc_agent_send_failures_total", &[("reason", "connection")]) >= Some(1.0)
        })
    });
    let last = receiver.accepted().pop().unwrap();
    assert_eq!(dropped(&last, "queue_full"), 0.0);
}

#[test]
fn sigterm_flushes_the_backlog_when_the_endpoint_comes_back_in_time() {
    let healthy = Arc::new(AtomicBool::new(false));
    let receiver = Receiver::start(down_until(&healthy));
    let dir = TempDir::new();
    let mut agent = start(
        &dir,
        &with_remote_write(&receiver.url(), "shutdown_timeout: 10s\n", ""),
        &[],
    );
    receiver.wait_for(WAIT, "a backlog", |r| {
        r.first()
            .is_some_and(|first| first.at.elapsed() > Duration::from_secs(1))
    });
    agent.signal(Signal::SIGTERM);
    assert!(agent.wait_for(WAIT, |_, err| err.contains("before exiting")));
    // The endpoint comes back a second into the shutdown.
    std::thread::sleep(Duration::from_secs(1));
    assert!(agent.is_running(), "exited before the endpoint came back");
    healthy.store(true, Ordering::SeqCst);
    let status = agent.wait_exit(WAIT).expect("exit after the flush");
    assert_eq!(status.code(), Some(0), "{}", agent.stderr());
    let stderr = agent.stderr();
    assert!(stderr.contains("0 samples left unsent"), "{stderr}");
    let received = receiver.received();
    let accepted = receiver.accepted();
    let ts = timestamps(&accepted);
    assert_strictly_increasing(&ts);
    let all: BTreeSet<i64> = timestamps(&received).into_iter().collect();
    assert_eq!(all, ts.iter().copied().collect(), "a batch was lost");
    assert!(ts.len() >= 5, "a backlog of {} batches", ts.len());
    assert_no_gaps(&ts, accepted.last().unwrap());
}

#[test]
fn sigterm_gives_up_after_shutdown_timeout_and_says_what_is_unsent() {
    let receiver = Receiver::start(|_| Reply::status(503, "down"));
    let dir = TempDir::new();
    let mut agent = start(
        &dir,
        &with_remote_write(&receiver.url(), "shutdown_timeout: 1s\n", ""),
        &[],
    );
    receiver.wait_for(WAIT, "a few attempts", |r| r.len() >= 3);
    let sent = Instant::now();
    agent.signal(Signal::SIGTERM);
    let status = agent.wait_exit(WAIT).expect("exit");
    assert_eq!(status.code(), Some(0));
    let took = sent.elapsed();
    assert!(took >= Duration::from_secs(1), "{took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    let stderr = agent.stderr();
    assert!(
        stderr.contains("left unsent after shutdown_timeout (1s)"),
        "{stderr}"
    );
}

#[test]
fn sighup_sends_the_queued_batches_to_the_new_endpoint_and_keeps_the_counters() {
    let down = Receiver::start(|_| Reply::status(503, "down"));
    let up = Receiver::start(|_| Reply::ok());
    let dir = TempDir::new();
    let mut agent = start(&dir, &config(&down.url(), ""), &[]);
    down.wait_for(WAIT, "a backlog", |r| {
        r.first()
            .is_some_and(|first| first.at.elapsed() > Duration::from_secs(1))
    });
    let first_batch = down.received()[0].timestamp();
    dir.write("sc-agent.yaml", &config(&up.url(), ""));
    agent.signal(Signal::SIGHUP);
    up.wait_for(WAIT, "5 batches at the new endpoint", accepted_count(5));
    let accepted = up.accepted();
    let ts = timestamps(&accepted);
    assert_eq!(
        ts[0], first_batch,
        "the backlog starts with the oldest batch"
    );
    assert_strictly_increasing(&ts);
    assert_no_gaps(&ts, accepted.last().unwrap());
    // The counters survived the reload: later batches report the old endpoint's 503s.
    up.wait_for(WAIT, "the failures at the old endpoint reported", |r| {
        r.iter().any(|r| {
            r.value("sc_agent_send_failures_total", &[("reason", "http_5xx")]) >= Some(1.0)
        })
    });
    let attempts_at_old = down.received().len() as f64;
    let last = up.accepted().pop().unwrap();
    assert!(failures(&last, "http_5xx") <= attempts_at_old);
    assert!(agent.is_running());
    assert!(agent.stderr().contains("config reloaded"));
}

#[test]
fn credentials_reach_the_endpoint_and_never_the_logs() {
    let receiver = Receiver::start(|_| Reply::ok());
    let dir = TempDir::new();
    let password = dir.write("password", "s3cr3t-pa55\n");
    let basic = with_remote_write(
        &receiver.url(),
        &format!(
            "basic_auth:\n  username: agent\n  password_file: {}\n\
             headers:\n  X-Scope-OrgID: tenant-1\n",
            password.display()
        ),
        "log_level: trace\n",
    );
    let agent = start(&dir, &basic, &[]);
    receiver.wait_for(WAIT, "a batch", accepted_count(2));
    let request = &receiver.accepted()[0];
    assert_eq!(
        request.headers.get("authorization").map(String::as_str),
        Some("Basic YWdlbnQ6czNjcjN0LXBhNTU=")
    );
    assert_eq!(
        request.headers.get("x-scope-orgid").map(String::as_str),
        Some("tenant-1")
    );
    drop(agent);
    let path = dir.write("sc-agent.yaml", &basic);
    let printed = common::run(
        &["--print-config", "--config", path.to_str().unwrap()],
        &[],
        WAIT,
    );
    assert_eq!(printed.status.code(), Some(0), "{}", printed.stderr);
    assert!(printed.stdout.contains("password: loaded (not shown)"));

    let bearer = Receiver::start(|_| Reply::ok());
    let token_config = config(&bearer.url(), "log_level: trace\n");
    let agent2 = start(&dir, &token_config, &[("SC_BEARER_TOKEN", "t0k3n-xyz")]);
    bearer.wait_for(WAIT, "a batch", accepted_count(2));
    assert_eq!(
        bearer.accepted()[0]
            .headers
            .get("authorization")
            .map(String::as_str),
        Some("Bearer t0k3n-xyz")
    );
    let path = dir.write("token.yaml", &token_config);
    let printed_token = common::run(
        &["--print-config", "--config", path.to_str().unwrap()],
        &[("SC_BEARER_TOKEN", "t0k3n-xyz")],
        WAIT,
    );
    for output in [
        agent2.stderr(),
        printed.stdout,
        printed.stderr,
        printed_token.stdout,
        printed_token.stderr,
    ] {
        for secret in ["s3cr3t-pa55", "YWdlbnQ6czNjcjN0LXBhNTU", "t0k3n-xyz"] {
            assert!(!output.contains(secret), "{secret} leaked:\n{output}");
        }
    }
    // Credentials over plain http:// are warned about.
    assert!(agent2.stderr().contains("they travel unencrypted"));
}

#[test]
fn the_first_agent_logs_of_a_basic_auth_run_hold_no_secret() {
    // The same as above for the first agent's log, read while it still runs (trace
    // level: every log line the delivery path has).
    let receiver = Receiver::start(|n| {
        if n == 0 {
            Reply::status(500, "retry me")
        } else {
            Reply::ok()
        }
    });
    let dir = TempDir::new();
    let password = dir.write("password", "s3cr3t-pa55\n");
    let agent = start(
        &dir,
        &with_remote_write(
            &receiver.url(),
            &format!(
                "basic_auth:\n  username: agent\n  password_file: {}\n",
                password.display()
            ),
            "log_level: trace\n",
        ),
        &[],
    );
    receiver.wait_for(WAIT, "batches", accepted_count(3));
    let stderr = agent.stderr();
    assert!(stderr.contains("TRACE"), "trace logging is on: {stderr}");
    for secret in ["s3cr3t-pa55", "YWdlbnQ6czNjcjN0LXBhNTU"] {
        assert!(!stderr.contains(secret), "{secret} leaked:\n{stderr}");
    }
}

#[cfg(feature = "tls")]
mod https {
    use super::*;
    use receiver::tls::{make_certificates, make_client_certificate, mtls_receiver, tls_receiver};
    use std::process::Command;

    /// No trust from the test's own environment: only what the config says.
    const CLEAN_ENV: [(&str, &str); 0] = [];

    fn spawn(dir: &TempDir, config: &str) -> Agent {
        let path = dir.write("sc-agent.yaml", config);
        let mut command = Command::new(common::bin());
        command
            .args(["--config", path.to_str().unwrap()])
            .env_remove("SSL_CERT_FILE")
            .env_remove("SSL_CERT_DIR");
        Agent::spawn_with(&mut command, &CLEAN_ENV)
    }

    #[test]
    fn with_the_private_ca_the_push_succeeds() {
        let dir = TempDir::new();
        let (ca, cert, key) = make_certificates(dir.path());
        let receiver = tls_receiver(&cert, &key);
        let token = dir.write("token", "tls-t0ken\n");
        let agent = spawn(
            &dir,
            &with_remote_write(
                &receiver.https_url(),
                &format!(
                    "tls:\n  ca_file: {}\nbearer_token_file: {}\n",
                    ca.display(),
                    token.display()
                ),
                "",
            ),
        );
        receiver.wait_for(WAIT, "batches over HTTPS", accepted_count(3));
        let accepted = receiver.accepted();
        assert_strictly_increasing(&timestamps(&accepted));
        assert_eq!(
            accepted[0].headers.get("authorization").map(String::as_str),
            Some("Bearer tls-t0ken")
        );
        assert_eq!(receiver.tls_failures(), 0);
        let stderr = agent.stderr();
        assert!(!stderr.contains("unencrypted"), "{stderr}");
        assert!(!stderr.contains("failed"), "{stderr}");
    }

    #[test]
    fn a_reconnection_resumes_the_tls_session() {
        let dir = TempDir::new();
        let (ca, cert, key) = make_certificates(dir.path());
        let receiver = tls_receiver(&cert, &key);
        receiver.close_idle_after(Duration::from_millis(100));
        let agent = spawn(
            &dir,
            &with_remote_write(
                &receiver.https_url(),
                &format!("tls:\n  ca_file: {}\n", ca.display()),
                "",
            ),
        );
        receiver.wait_for(WAIT, "batches over HTTPS", accepted_count(6));
        assert!(receiver.connections() >= 5);
        assert!(
            receiver.resumed_sessions() >= receiver.connections() - 2,
            "{} of {} sessions resumed",
            receiver.resumed_sessions(),
            receiver.connections()
        );
        assert!(!agent.stderr().contains("failed"), "{}", agent.stderr());
    }

    #[test]
    fn a_client_certificate_opens_an_mtls_endpoint_and_is_checked_at_reload() {
        let dir = TempDir::new();
        let (ca, cert, key) = make_certificates(dir.path());
        let (client_cert, client_key) = make_client_certificate(dir.path(), "agent");
        let receiver = mtls_receiver(&cert, &key, &ca);
        let tls = format!(
            "tls:\n  ca_file: {}\n  cert_file: {}\n  key_file: {}\n",
            ca.display(),
            client_cert.display(),
            client_key.display()
        );
        let mut agent = spawn(&dir, &with_remote_write(&receiver.https_url(), &tls, ""));
        receiver.wait_for(WAIT, "batches over mTLS", accepted_count(3));
        assert_eq!(receiver.tls_failures(), 0);
        assert!(agent.stderr().contains("presenting the client certificate"));
        // A reload naming a key that does not belong to the certificate is refused.
        let mismatched = format!(
            "tls:\n  ca_file: {}\n  cert_file: {}\n  key_file: {}\n",
            ca.display(),
            client_cert.display(),
            key.display()
        );
        dir.write(
            "sc-agent.yaml",
            &with_remote_write(&receiver.https_url(), &mismatched, ""),
        );
        agent.signal(Signal::SIGHUP);
        assert!(
            agent.wait_for(WAIT, |_, err| err.contains("reload failed")),
            "{}",
            agent.stderr()
        );
        assert!(
            agent
                .stderr()
                .contains("remote_write.tls.key_file: the key in"),
            "{}",
            agent.stderr()
        );
        let seen = receiver.accepted().len();
        receiver.wait_for(WAIT, "batches on the kept config", accepted_count(seen + 3));
        assert!(agent.is_running());
    }

    #[test]
    fn insecure_skip_verify_pushes_without_the_ca_and_says_so() {
        let dir = TempDir::new();
        let (_ca, cert, key) = make_certificates(dir.path());
        let receiver = tls_receiver(&cert, &key);
        let agent = spawn(
            &dir,
            &with_remote_write(
                &receiver.https_url(),
                "tls:\n  insecure_skip_verify: true\n",
                "",
            ),
        );
        receiver.wait_for(WAIT, "batches over HTTPS", accepted_count(2));
        let stderr = agent.stderr();
        assert!(
            stderr.contains("WARN") && stderr.contains("insecure_skip_verify is set"),
            "{stderr}"
        );
    }

    #[test]
    fn without_the_ca_the_push_fails_closed_and_is_counted() {
        let dir = TempDir::new();
        let (_ca, cert, key) = make_certificates(dir.path());
        let receiver = tls_receiver(&cert, &key);
        let plain = Receiver::start(|_| Reply::ok());
        let agent = spawn(&dir, &config(&receiver.https_url(), ""));
        assert!(
            agent.wait_for(WAIT, |_, err| err.contains("failed (tls)")),
            "{}",
            agent.stderr()
        );
        let stderr = agent.stderr();
        assert!(stderr.contains("certificate"), "{stderr}");
        // Refused during the handshake: not one request got through.
        assert!(receiver.received().is_empty());
        assert!(receiver.tls_failures() >= 1);
        // Pointed at a plain endpoint, the queued batches and the count arrive.
        dir.write("sc-agent.yaml", &config(&plain.url(), ""));
        agent.signal(Signal::SIGHUP);
        plain.wait_for(WAIT, "batches after the reload", accepted_count(3));
        // Batches made after the first failure report it.
        plain.wait_for(WAIT, "the TLS failure counted", |r| {
            r.iter()
                .any(|r| r.value("sc_agent_send_failures_total", &[("reason", "tls")]) >= Some(1.0))
        });
        assert_strictly_increasing(&timestamps(&plain.accepted()));
    }
}

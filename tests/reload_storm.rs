//! A config reload storm against the fault-injecting receiver: 100 SIGHUPs within a
//! second, alternating a valid config (a new custom label each time) and an invalid
//! one, ending on a known valid one. Afterwards the agent is alive, runs the last
//! valid config, has sent every (series, timestamp) exactly once, kept its delivery
//! counters, and holds no more threads or descriptors than before. About 10 seconds.

use sc_agent_testkit as common;
use sc_agent_testkit::receiver;

use common::TempDir;
use nix::sys::signal::Signal;
use receiver::{Received, Receiver, Reply};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(30);

fn config(dir: &Path, endpoint: &str, generation: &str) -> String {
    // loadavg and meminfo from the fixture, filesystem (a statfs thread that every
    // reload replaces) and process (this agent's own threads and descriptors).
    format!(
        "vm_id: test-vm\ninstance: test-host\ncollection_interval: 100ms\n\
         ingestor_endpoint: {endpoint}\n\
         remote_write:\n  min_backoff: 20ms\n  max_backoff: 100ms\n\
         paths:\n  procfs: {}\n  rootfs: /\n\
         labels:\n  generation: \"{generation}\"\n{}",
        dir.join("proc").display(),
        common::collectors_only(&["loadavg", "meminfo", "filesystem", "process"])
    )
}

/// Invalid configs of several kinds, in turn.
fn invalid(dir: &Path, endpoint: &str, i: usize) -> String {
    match i % 4 {
        0 => "collection_interval: [not, closed\n".to_owned(),
        1 => format!("{}colection_interval: 1s\n", config(dir, endpoint, "typo")),
        2 => config(dir, endpoint, "bad").replace("generation:", "__generation:"),
        _ => config(dir, endpoint, "no-token").replace(
            "remote_write:\n",
            &format!(
                "remote_write:\n  bearer_token_file: {}\n",
                dir.join("missing-token").display()
            ),
        ),
    }
}

fn label<'a>(request: &'a Received, name: &str) -> Option<&'a str> {
    request
        .series
        .first()
        .and_then(|s| s.labels.get(name))
        .map(String::as_str)
}

/// The fewest threads and descriptors seen over a second: a reload replaces the kept
/// connection, so one look may catch the old socket closing as the new one opens.
fn settled_threads_and_fds(pid: u32) -> (usize, usize) {
    let mut least = (usize::MAX, usize::MAX);
    for _ in 0..40 {
        let (threads, fds) = common::threads_and_fds(pid);
        least = (least.0.min(threads), least.1.min(fds));
        std::thread::sleep(Duration::from_millis(25));
    }
    least
}

#[test]
fn a_hundred_sighups_in_a_second_leave_the_agent_on_the_last_valid_config() {
    // Every fifth request fails: retries happen during the storm too.
    let receiver = Receiver::start(|n| {
        if n % 5 == 2 {
            Reply::status(503, "busy")
        } else {
            Reply::ok()
        }
    });
    let dir = TempDir::new();
    let fixture = common::fixtures().join("loadavg_meminfo/proc");
    for file in ["loadavg", "meminfo"] {
        let text = std::fs::read_to_string(fixture.join(file)).unwrap();
        dir.write(&format!("proc/{file}"), &text);
    }
    dir.write("proc/1/mountinfo", "1 0 8:1 / / rw - ext4 /dev/root rw\n");
    let url = receiver.url();
    let path = dir.write("sc-agent.yaml", &config(dir.path(), &url, "start"));
    let mut agent = common::Agent::spawn(&["--config", path.to_str().unwrap()], &[]);
    let pid = agent.pid().as_raw() as u32;
    receiver.wait_for(WAIT, "five batches", |r| {
        r.iter().filter(|r| r.accepted()).count() >= 5
    });
    let before = settled_threads_and_fds(pid);

    // The storm.
    let started = Instant::now();
    for i in 0..100 {
        let text = if i % 2 == 0 {
            config(dir.path(), &url, &format!("g{i}"))
        } else {
            invalid(dir.path(), &url, i / 2)
        };
        dir.write("sc-agent.yaml", &text);
        agent.signal(Signal::SIGHUP);
        std::thread::sleep(Duration::from_millis(8));
    }
    dir.write("sc-agent.yaml", &config(dir.path(), &url, "final"));
    agent.signal(Signal::SIGHUP);
    let storm = started.elapsed();
    assert!(
        storm < Duration::from_millis(1500),
        "the storm took {storm:?}"
    );

    receiver.wait_for(WAIT, "ten batches on the final config", |r| {
        r.iter()
            .filter(|r| r.accepted() && label(r, "generation") == Some("final"))
            .count()
            >= 10
    });
    assert!(agent.is_running(), "{}", agent.stderr());
    let after = settled_threads_and_fds(pid);
    assert!(
        after.0 <= before.0 && after.1 <= before.1,
        "threads and descriptors before the storm {before:?}, after {after:?}"
    );

    let received = receiver.received();
    let accepted: Vec<&Received> = received.iter().filter(|r| r.accepted()).collect();
    // The newest batches carry the last valid config's label, and nothing made after
    // the final reload carries another.
    let first_final = accepted
        .iter()
        .position(|r| label(r, "generation") == Some("final"))
        .unwrap();
    for request in &accepted[first_final..] {
        assert_eq!(label(request, "generation"), Some("final"));
    }
    // Each (series, timestamp) arrives once; batches in order; none lost.
    let mut pairs = BTreeSet::new();
    for request in &accepted {
        for series in &request.series {
            let key = format!("{:?}@{}", series.labels, series.timestamp);
            assert!(pairs.insert(key.clone()), "sent twice: {key}");
        }
    }
    let ts: Vec<i64> = accepted.iter().map(|r| r.timestamp()).collect();
    assert!(ts.windows(2).all(|w| w[0] < w[1]), "out of order: {ts:?}");
    // A batch that failed is retried before any newer one: every batch older than the
    // newest accepted was accepted (the newest may have failed a moment ago, its
    // retry still to come).
    let newest = ts.last().copied().unwrap_or_default();
    let all: BTreeSet<i64> = received
        .iter()
        .map(Received::timestamp)
        .filter(|t| *t <= newest)
        .collect();
    let taken: BTreeSet<i64> = ts.iter().copied().collect();
    assert_eq!(all, taken, "a batch that failed was never delivered");
    // Labels of an invalid config never made it into a batch.
    let generations: BTreeSet<&str> = accepted
        .iter()
        .filter_map(|r| label(r, "generation"))
        .collect();
    for bad in ["typo", "bad", "no-token"] {
        assert!(!generations.contains(bad), "{generations:?}");
    }
    // The counters went on across all reloads: never back, and the failures all
    // counted.
    let counter = |r: &Received, name: &str, labels: &[(&str, &str)]| {
        r.value(name, labels).unwrap_or_else(|| panic!("no {name}"))
    };
    let mut last: BTreeMap<&str, f64> = BTreeMap::new();
    for request in &accepted {
        for (name, labels) in [
            ("sc_agent_samples_sent_total", &[][..]),
            (
                "sc_agent_send_failures_total",
                &[("reason", "http_5xx")][..],
            ),
        ] {
            let value = counter(request, name, labels);
            let previous = last.insert(name, value).unwrap_or(0.0);
            assert!(value >= previous, "{name} went from {previous} to {value}");
        }
    }
    let refused = received.iter().filter(|r| r.status == Some(503)).count() as f64;
    receiver.wait_for(WAIT, "every 503 counted", |r| {
        r.last().is_some_and(|r| {
            r.value("sc_agent_send_failures_total", &[("reason", "http_5xx")]) >= Some(refused)
        })
    });
    let stderr = agent.stderr();
    assert!(stderr.contains("reload failed"), "{stderr}");
    assert!(stderr.contains("config reloaded"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    eprintln!(
        "reload storm: {} reloads applied, {} refused, threads/fds {before:?} -> {after:?}",
        stderr.matches("config reloaded").count(),
        stderr.matches("reload failed").count()
    );
}

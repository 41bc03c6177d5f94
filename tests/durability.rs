//! No sample lost: the disk spool through outages, restarts, crashes, damaged files
//! and a full disk, with the real binary and real receivers (Prometheus 2.42 and
//! VictoriaMetrics), counting samples through their query APIs.
//!
//! - The receiver down for 60 s at a 1 s interval, the agent restarted (SIGTERM,
//!   start) in the middle: every sample of the window arrives, in order, none
//!   rejected.
//! - The same with `kill -9` instead of SIGTERM: at most one cycle lost.
//! - A spool damaged while the agent is stopped (truncated, a bit flipped, garbage
//!   appended): the good records are delivered, the bad ones counted, the agent runs.
//! - A spool on a tiny tmpfs that fills (in a private mount namespace): the error is
//!   counted, delivery carries on from memory, nothing panics.

use sc_agent_testkit as common;

use common::receiver::{Receiver, Reply};
use common::{collectors_only, Agent, Prometheus, TempDir, VictoriaMetrics};
use nix::sys::signal::Signal;
use serde_json::Value;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(90);

/// A receiver the tests can take down and bring back.
trait Tsdb {
    fn write_url(&self) -> String;
    fn query(&self, promql: &str) -> Vec<Value>;
    fn stop(&mut self);
    fn resume(&mut self);
}

impl Tsdb for Prometheus {
    fn write_url(&self) -> String {
        Prometheus::write_url(self)
    }
    fn query(&self, promql: &str) -> Vec<Value> {
        Prometheus::query(self, promql)
    }
    fn stop(&mut self) {
        Prometheus::stop(self)
    }
    fn resume(&mut self) {
        Prometheus::resume(self)
    }
}

impl Tsdb for VictoriaMetrics {
    fn write_url(&self) -> String {
        VictoriaMetrics::write_url(self)
    }
    fn query(&self, promql: &str) -> Vec<Value> {
        VictoriaMetrics::query(self, promql)
    }
    fn stop(&mut self) {
        VictoriaMetrics::stop(self)
    }
    fn resume(&mut self) {
        VictoriaMetrics::resume(self)
    }
}

/// The value of an instant query's first series, or NaN.
fn scalar(tsdb: &dyn Tsdb, promql: &str) -> f64 {
    tsdb.query(promql)
        .first()
        .and_then(|s| s["value"][1].as_str().and_then(|v| v.parse().ok()))
        .unwrap_or(f64::NAN)
}

fn wait_until(what: &str, done: impl Fn() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < WAIT, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// loadavg and meminfo from the fixture procfs, every `interval`, trace logging (each
/// batch made is a `queued N samples` line).
fn config(url: &str, interval: &str, extra: &str) -> String {
    let procfs = common::fixtures().join("loadavg_meminfo/proc");
    format!(
        "vm_id: dur-vm\ninstance: dur-host\ncollection_interval: {interval}\n\
         ingestor_endpoint: {url}\nlog_level: trace\n\
         remote_write:\n  min_backoff: 20ms\n  max_backoff: 500ms\n  shutdown_timeout: 1s\n\
         paths:\n  procfs: {}\n{}{extra}",
        procfs.display(),
        collectors_only(&["loadavg", "meminfo"])
    )
}

/// Batches an agent made: its `queued N samples` lines.
fn batches_made(stderr: &str) -> usize {
    stderr
        .lines()
        .filter(|l| l.contains("] queued ") && l.contains(" samples ("))
        .count()
}

fn start(config_path: &Path, spool: &Path) -> Agent {
    Agent::spawn(
        &["--config", config_path.to_str().unwrap()],
        &[("SC_SPOOL_DIRECTORY", spool.to_str().unwrap())],
    )
}

/// The receiver down 60 s at a 1 s interval, the agent stopped with `stop` and started
/// again half-way; returns (samples stored, batches the two agents made).
fn outage_across_a_restart(tsdb: &mut dyn Tsdb, stop: Signal) -> (f64, usize) {
    let dir = TempDir::new();
    let spool = dir.path().join("spool");
    let path = dir.write("sc-agent.yaml", &config(&tsdb.write_url(), "1s", ""));
    let series = r#"node_load1{vm_id="dur-vm"}"#;
    let mut first = start(&path, &spool);
    wait_until("the first samples", || {
        scalar(tsdb, &format!("count_over_time({series}[1h])")) >= 3.0
    });
    tsdb.stop();
    std::thread::sleep(Duration::from_secs(30));
    first.signal(stop);
    let _ = first.wait_exit(WAIT);
    let made_first = batches_made(&first.stderr());
    if stop == Signal::SIGTERM {
        let stderr = first.stderr();
        assert!(
            stderr.contains("wait in the spool for the next start"),
            "{stderr}"
        );
        assert!(!stderr.contains("left unsent after"), "{stderr}");
    }
    let second = start(&path, &spool);
    assert!(
        second.wait_for(WAIT, |_, err| err.contains("waiting from before")),
        "{}",
        second.stderr()
    );
    std::thread::sleep(Duration::from_secs(30));
    tsdb.resume();
    // The backlog drains (a batch made after it says the spool is empty), then a few
    // more cycles.
    wait_until("the spool drained", || {
        scalar(tsdb, r#"sc_agent_spool_records{vm_id="dur-vm"}"#) == 0.0
    });
    std::thread::sleep(Duration::from_secs(3));
    let stored = scalar(tsdb, &format!("count_over_time({series}[1h])"));
    let made = made_first + batches_made(&second.stderr());
    // In order and nothing refused: the receiver took every request.
    assert_eq!(
        scalar(
            tsdb,
            r#"sc_agent_samples_dropped_total{vm_id="dur-vm",reason="rejected"}"#
        ),
        0.0
    );
    assert!(
        !second.stderr().contains("rejected the batch"),
        "{}",
        second.stderr()
    );
    assert!(
        !first.stderr().contains("rejected the batch"),
        "{}",
        first.stderr()
    );
    drop(second);
    (stored, made)
}

#[test]
fn an_outage_across_a_restart_loses_nothing_prometheus() {
    let mut prometheus = Prometheus::start();
    let (stored, made) = outage_across_a_restart(&mut prometheus, Signal::SIGTERM);
    // The second agent may have made a batch after the count was taken.
    assert!(
        (stored as usize) == made || (stored as usize) + 1 == made,
        "{stored} samples stored, {made} batches made"
    );
}

#[test]
fn an_outage_across_a_restart_loses_nothing_victoriametrics() {
    let mut victoria = VictoriaMetrics::start();
    let (stored, made) = outage_across_a_restart(&mut victoria, Signal::SIGTERM);
    assert!(
        (stored as usize) == made || (stored as usize) + 1 == made,
        "{stored} samples stored, {made} batches made"
    );
}

#[test]
fn a_kill_9_during_an_outage_loses_at_most_one_cycle() {
    let mut prometheus = Prometheus::start();
    let (stored, made) = outage_across_a_restart(&mut prometheus, Signal::SIGKILL);
    let stored = stored as usize;
    // At most the batch being written when the kill came, and one made after the
    // count was taken.
    assert!(
        stored + 2 >= made && stored <= made,
        "{stored} samples stored, {made} batches made"
    );
}

/// A receiver answering 503 until `healthy`, then 204.
fn down_until(healthy: &Arc<AtomicBool>) -> impl FnMut(usize) -> Reply + Send + 'static {
    let healthy = Arc::clone(healthy);
    move |_| {
        if healthy.load(Ordering::SeqCst) {
            Reply::ok()
        } else {
            Reply::status(503, "down")
        }
    }
}

/// The segment files of a spool directory.
fn segments(spool: &Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(spool)
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "seg"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

#[test]
fn a_damaged_spool_delivers_its_good_records_and_counts_the_bad() {
    let healthy = Arc::new(AtomicBool::new(false));
    let receiver = Receiver::start(down_until(&healthy));
    let dir = TempDir::new();
    let spool = dir.path().join("spool");
    let path = dir.write("sc-agent.yaml", &config(&receiver.url(), "100ms", ""));
    let mut first = start(&path, &spool);
    receiver.wait_for(WAIT, "a few failed attempts", |r| r.len() >= 3);
    std::thread::sleep(Duration::from_secs(2));
    first.signal(Signal::SIGTERM);
    assert_eq!(first.wait_exit(WAIT).and_then(|s| s.code()), Some(0));
    let made = batches_made(&first.stderr());
    let files = segments(&spool);
    assert!(!files.is_empty(), "nothing spooled");
    // Damage: a bit flipped in the middle, garbage appended, a torn record at the end.
    let file = files.last().unwrap();
    let mut bytes = std::fs::read(file).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    bytes.extend_from_slice(b"\xde\xad\xbe\xefnot a record at all");
    bytes.extend_from_slice(b"SCR1\x00\x10\x00\x00\x01\x02");
    std::fs::write(file, &bytes).unwrap();

    healthy.store(true, Ordering::SeqCst);
    let mut second = start(&path, &spool);
    // The first agent's good batches arrive, and the second agent reports the skips.
    let first_timestamps = |r: &[common::receiver::Received]| {
        r.iter()
            .filter(|r| r.accepted() && !r.series.is_empty())
            .map(|r| r.timestamp())
            .collect::<std::collections::BTreeSet<_>>()
    };
    receiver.wait_for(WAIT, "the spool's corrupt count in a batch", |r| {
        r.iter().any(|r| {
            r.value(
                "sc_agent_spool_records_dropped_total",
                &[("reason", "corrupt")],
            )
            .is_some_and(|v| v >= 1.0)
        })
    });
    let delivered = receiver.with_received(first_timestamps);
    assert!(second.is_running(), "{}", second.stderr());
    let stderr = second.stderr();
    assert!(stderr.contains("not a valid record"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    // Most of the first agent's batches came through the damage (one record lost to
    // the flipped bit, and the stale markers' request of its stop may be the torn one).
    let before_stop = receiver
        .accepted()
        .iter()
        .filter(|r| !r.series.is_empty())
        .count();
    assert!(
        before_stop + 3 >= made,
        "{before_stop} of {made}: {delivered:?}"
    );
}

#[test]
fn a_spool_on_a_full_disk_is_counted_and_delivery_carries_on_from_memory() {
    let dir = TempDir::new();
    let root = dir.path().to_owned();
    let scenario = std::thread::Builder::new()
        .name("private-mount-ns".into())
        .spawn(move || full_disk(&root))
        .unwrap();
    if let Err(panic) = scenario.join() {
        std::panic::resume_unwind(panic);
    }
}

fn full_disk(root: &Path) {
    use nix::mount::{mount, MsFlags};
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)
        .expect("unshare(CLONE_NEWNS): the test needs root (CAP_SYS_ADMIN)");
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .expect("make / private");
    let spool = root.join("spool");
    std::fs::create_dir_all(&spool).unwrap();
    mount(
        Some("tmpfs"),
        &spool,
        Some("tmpfs"),
        MsFlags::empty(),
        Some("size=16k,mode=0700"),
    )
    .expect("mount a tiny tmpfs");
    let healthy = Arc::new(AtomicBool::new(false));
    let receiver = Receiver::start(down_until(&healthy));
    let path = root.join("sc-agent.yaml");
    std::fs::write(&path, config(&receiver.url(), "100ms", "")).unwrap();
    let mut agent = start(&path, &spool);
    assert!(
        agent.wait_for(WAIT, |_, err| err.contains("holding batches in memory")),
        "{}",
        agent.stderr()
    );
    healthy.store(true, Ordering::SeqCst);
    receiver.wait_for(WAIT, "the full disk counted in a delivered batch", |r| {
        r.iter().any(|r| {
            r.accepted()
                && r.value("sc_agent_spool_errors_total", &[("reason", "full")])
                    .is_some_and(|v| v >= 1.0)
        })
    });
    assert!(agent.is_running(), "{}", agent.stderr());
    let stderr = agent.stderr();
    assert!(!stderr.contains("panicked"), "{stderr}");
    // Logged once, not at every batch.
    assert_eq!(
        stderr.matches("holding batches in memory").count(),
        1,
        "{stderr}"
    );
    drop(agent);
    let _ = nix::mount::umount2(&spool, nix::mount::MntFlags::MNT_DETACH);
}

/// Printing to stdout (no `ingestor_endpoint`), nothing is ever spooled: the spool's
/// directory is not even created, so the README's first `cargo run` as any user
/// neither writes under /var/lib nor logs an error about it.
#[test]
fn without_an_endpoint_no_spool_directory_is_made() {
    let dir = TempDir::new();
    let spool = dir.path().join("spool");
    let procfs = common::fixtures().join("loadavg_meminfo/proc");
    let path = dir.write(
        "sc-agent.yaml",
        &format!(
            "vm_id: dur-vm\npaths:\n  procfs: {}\n{}",
            procfs.display(),
            collectors_only(&["loadavg"])
        ),
    );
    let mut agent = Agent::spawn(
        &["--once", "--config", path.to_str().unwrap()],
        &[("SC_SPOOL_DIRECTORY", spool.to_str().unwrap())],
    );
    let status = agent.wait_exit(WAIT).expect("--once exits");
    assert!(status.success(), "{}", agent.stderr());
    assert!(agent.stdout().contains("node_load1"), "{}", agent.stdout());
    assert!(!spool.exists(), "{}", agent.stderr());
    assert!(!agent.stderr().contains("spool"), "{}", agent.stderr());
}

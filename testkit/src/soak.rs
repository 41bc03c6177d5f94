//! The soak run, shared by `tests/soak.rs` (a short one in CI) and the `soak`
//! binary of this crate (the long one, through `scripts/soak.sh`).
//!
//! The agent pushes every `interval` (10ms at least, the agent's minimum) to the
//! fault-injecting [`receiver`](crate::receiver), which fails in bursts (503 for 2 s every 8 s), now and then
//! answers 429 with `Retry-After: 1`, rejects a batch with 400, or never answers
//! (the agent's 1 s timeout). A failed attempt sends the backlog to the disk spool,
//! which is small (128 KiB), so long bursts overflow it and the oldest batches are
//! dropped (while memory holds, 64 KiB, what the spool could not take). After
//! `cycles` cycles the receiver turns healthy, the backlog drains, and SIGTERM
//! flushes the rest.
//!
//! The accounting is checked exactly, from three independent sources:
//! - **produced**: the agent's own trace line `queued N samples` for every batch it
//!   makes (one per cycle), summed;
//! - **sent**: the samples the receiver accepted, each batch counted once (by its
//!   timestamp) even if a lost answer made the agent send it again;
//! - **dropped**: the agent's `sc_agent_samples_dropped_total{reason}` as the last
//!   batch reports it, plus what the exit log says was left unsent.
//!
//! `produced == sent + dropped(queue_full, spool_full, rejected) + left unsent` must
//! hold exactly; and, cross-checks, the agent's `sc_agent_samples_sent_total` at a
//! batch made with an empty queue equals what the receiver had accepted of the
//! batches before it, and `dropped{reason="rejected"}` equals the samples the
//! receiver answered 400 to. Memory: VmRSS at the warm-up cycle and at the end, and
//! VmHWM, must not grow past a tolerance.

use crate::receiver::{Received, Receiver, Reply};
use std::collections::BTreeMap;
use std::fmt;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct Options {
    /// The sc-agent binary.
    pub agent: PathBuf,
    /// The loadavg/meminfo fixture procfs (`tests/fixtures/loadavg_meminfo/proc`).
    pub procfs: PathBuf,
    pub cycles: u64,
    pub interval: Duration,
    /// The cycle whose VmRSS is the baseline.
    pub warmup: u64,
    /// How much VmRSS may grow from the warm-up cycle to the end.
    pub rss_tolerance_kib: u64,
}

#[derive(Debug, Default)]
pub struct Report {
    pub cycles: u64,
    pub produced: u64,
    pub sent: u64,
    pub dropped: BTreeMap<&'static str, u64>,
    pub unsent: u64,
    pub failures: BTreeMap<String, u64>,
    pub requests: usize,
    pub accepted_twice: usize,
    pub rss_warm_kib: u64,
    pub rss_end_kib: u64,
    pub hwm_kib: u64,
    pub seconds: f64,
    /// What does not add up; empty when the run passed.
    pub errors: Vec<String>,
}

impl Report {
    pub fn passed(&self) -> bool {
        self.errors.is_empty()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dropped: u64 = self.dropped.values().sum();
        writeln!(f, "cycles run:        {}", self.cycles)?;
        writeln!(f, "samples produced:  {}", self.produced)?;
        writeln!(f, "samples sent:      {}", self.sent)?;
        writeln!(f, "samples dropped:   {dropped} {:?}", self.dropped)?;
        writeln!(f, "left queued:       {} (unsent at exit)", self.unsent)?;
        writeln!(
            f,
            "identity:          {} = {} + {} + {} ({})",
            self.produced,
            self.sent,
            dropped,
            self.unsent,
            if self.produced == self.sent + dropped + self.unsent {
                "holds"
            } else {
                "FAILS"
            }
        )?;
        writeln!(f, "failed attempts:   {:?}", self.failures)?;
        writeln!(
            f,
            "requests:          {} ({} batches accepted twice after a lost answer)",
            self.requests, self.accepted_twice
        )?;
        writeln!(
            f,
            "VmRSS:             {} KiB at warm-up, {} KiB at the end; VmHWM {} KiB",
            self.rss_warm_kib, self.rss_end_kib, self.hwm_kib
        )?;
        writeln!(f, "duration:          {:.1}s", self.seconds)?;
        for error in &self.errors {
            writeln!(f, "ERROR: {error}")?;
        }
        Ok(())
    }
}

/// The faults: bursts of 503, and now and then 429, 400 or no answer at all.
fn faults(healthy: &Arc<AtomicBool>) -> impl FnMut(usize) -> Reply + Send + 'static {
    let healthy = Arc::clone(healthy);
    let start = Instant::now();
    move |n| {
        if healthy.load(Ordering::SeqCst) {
            return Reply::ok();
        }
        if start.elapsed().as_millis() % 8_000 >= 6_000 {
            return Reply::status(503, "burst");
        }
        match n {
            n if n % 1_009 == 1_000 => Reply::status(400, "out of order sample"),
            n if n % 499 == 400 => Reply::Hang,
            n if n % 97 == 50 => Reply::Status(
                429,
                vec![("Retry-After".into(), "1".into())],
                "slow down".into(),
            ),
            _ => Reply::ok(),
        }
    }
}

fn config(options: &Options, url: &str, spool: &Path) -> String {
    format!(
        "vm_id: soak-vm\ninstance: soak-host\ncollection_interval: {}ms\n\
         ingestor_endpoint: {url}\nlog_level: trace\n\
         remote_write:\n  timeout: 1s\n  min_backoff: 5ms\n  max_backoff: 200ms\n  \
         shutdown_timeout: 30s\n  queue:\n    max_bytes: 64KiB\n  \
         spool:\n    directory: {}\n    max_bytes: 128KiB\n\
         paths:\n  procfs: {}\n{}",
        options.interval.as_millis(),
        spool.display(),
        options.procfs.display(),
        crate::collectors_only(&["loadavg", "meminfo", "process"])
    )
}

/// What the agent's stderr says, counted as it comes.
#[derive(Default)]
struct Log {
    batches: AtomicU64,
    samples: AtomicU64,
    /// Lines that are neither `queued` nor the usual delivery chatter, and the
    /// shutdown summary.
    notable: Mutex<Vec<String>>,
}

fn read_log(stderr: impl std::io::Read, log: &Log) {
    for line in BufReader::new(stderr).lines() {
        let Ok(line) = line else { break };
        if let Some(rest) = line.split("] queued ").nth(1) {
            let samples: u64 = rest
                .split(' ')
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            log.samples.fetch_add(samples, Ordering::SeqCst);
            log.batches.fetch_add(1, Ordering::SeqCst);
        } else if !line.starts_with("DEBUG") && !line.starts_with("TRACE") {
            let mut notable = log.notable.lock().unwrap();
            if notable.len() < 10_000 {
                notable.push(line);
            }
        }
    }
}

fn value(request: &Received, name: &str, labels: &[(&str, &str)]) -> u64 {
    request.value(name, labels).unwrap_or(f64::NAN) as u64
}

pub fn run(options: &Options) -> Report {
    let started = Instant::now();
    let healthy = Arc::new(AtomicBool::new(false));
    let receiver = Receiver::start(faults(&healthy));
    receiver.keep_last(64);
    let dir = std::env::temp_dir().join(format!("sc-agent-soak-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config_path = dir.join("sc-agent.yaml");
    let spool = dir.join("spool");
    let _ = std::fs::remove_dir_all(&spool);
    std::fs::write(&config_path, config(options, &receiver.url(), &spool)).unwrap();
    let mut command = Command::new(&options.agent);
    for (name, _) in std::env::vars().filter(|(n, _)| n.starts_with("SC_")) {
        command.env_remove(name);
    }
    let mut child = command
        .args(["--config", config_path.to_str().unwrap()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", options.agent.display()));
    let pid = child.id();
    let log = Arc::new(Log::default());
    let reader = {
        let (log, stderr) = (Arc::clone(&log), child.stderr.take().unwrap());
        std::thread::spawn(move || read_log(stderr, &log))
    };
    let mut report = Report::default();
    let status_kib = |field: &str| status_kib(pid, field);
    let deadline = started
        + options.interval * u32::try_from(options.cycles * 3).unwrap_or(u32::MAX)
        + Duration::from_secs(120);

    // The soak: until `cycles` batches were made; VmRSS at the warm-up cycle.
    while log.batches.load(Ordering::SeqCst) < options.cycles {
        if report.rss_warm_kib == 0 && log.batches.load(Ordering::SeqCst) >= options.warmup {
            report.rss_warm_kib = status_kib("VmRSS");
        }
        if let Ok(Some(status)) = child.try_wait() {
            std::thread::sleep(Duration::from_millis(100));
            let log = log.notable.lock().unwrap().join("\n");
            fail(
                &mut report,
                format!("the agent exited during the soak: {status}\n{log}"),
            );
            return report;
        }
        if Instant::now() > deadline {
            fail(&mut report, "the soak took too long".into());
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }

    // Healthy: wait for the backlog to drain (a batch made after that reports an
    // empty queue), then a few more cycles.
    healthy.store(true, Ordering::SeqCst);
    let healthy_at = now_ms();
    let drained = Instant::now();
    let reference = loop {
        let found = receiver.with_received(|received| {
            received
                .iter()
                .rev()
                .filter(|r| r.accepted() && !r.series.is_empty())
                .find(|r| {
                    r.timestamp() > healthy_at && value(r, "sc_agent_queue_batches", &[]) == 0
                })
                .map(|r| r.timestamp())
        });
        if let Some(ts) = found {
            break Some(ts);
        }
        if drained.elapsed() > Duration::from_secs(60) {
            fail(&mut report, "the backlog did not drain in 60s".into());
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let made = log.batches.load(Ordering::SeqCst);
    while log.batches.load(Ordering::SeqCst) < made + 20
        && drained.elapsed() < Duration::from_secs(70)
    {
        std::thread::sleep(Duration::from_millis(10));
    }
    report.rss_end_kib = status_kib("VmRSS");
    report.hwm_kib = status_kib("VmHWM");

    // Stop: the flush sends what is left.
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let stop = Instant::now();
    let status = loop {
        if let Ok(Some(status)) = child.try_wait() {
            break Some(status);
        }
        if stop.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let _ = reader.join();
    if status.and_then(|s| s.code()) != Some(0) {
        fail(&mut report, format!("the agent did not exit 0: {status:?}"));
    }
    report.seconds = started.elapsed().as_secs_f64();
    report.cycles = log.batches.load(Ordering::SeqCst);
    report.produced = log.samples.load(Ordering::SeqCst);
    let notable = log.notable.lock().unwrap().clone();
    report.unsent = match notable.iter().rev().find(|l| l.contains("left unsent")) {
        Some(line) if line.contains("0 samples left unsent") => 0,
        Some(line) => line
            .split("] ")
            .nth(1)
            .and_then(|rest| rest.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(u64::MAX),
        None => {
            fail(&mut report, "no shutdown summary in the log".into());
            0
        }
    };
    for line in &notable {
        if line.contains("panicked") || line.starts_with("ERROR") && !line.contains("rejected") {
            fail(&mut report, format!("log: {line}"));
        }
    }

    receiver.with_received(|received| {
        report.requests = received.len();
        // Each batch once, by its timestamp.
        let mut accepted: BTreeMap<i64, usize> = BTreeMap::new();
        let mut rejected: BTreeMap<i64, usize> = BTreeMap::new();
        for r in received {
            let Some(ts) = r.first_timestamp else {
                continue;
            };
            if r.accepted() {
                if accepted.insert(ts, r.samples).is_some() {
                    report.accepted_twice += 1;
                }
            } else if r.status == Some(400) {
                rejected.insert(ts, r.samples);
            }
        }
        report.sent = accepted.values().map(|&s| s as u64).sum();
        // The last batch of metrics: the request the clean stop sends after it holds
        // only stale markers.
        let last = received.iter().rev().find(|r| {
            r.accepted()
                && r.value("sc_agent_build_info", &[])
                    .is_some_and(f64::is_finite)
        });
        let Some(last) = last else {
            fail(&mut report, "no batch received".into());
            return;
        };
        for reason in ["queue_full", "spool_full", "rejected", "shutdown"] {
            let n = value(
                last,
                "sc_agent_samples_dropped_total",
                &[("reason", reason)],
            );
            report.dropped.insert(reason, n);
        }
        // `shutdown` drops happen at exit, after the last batch: they are `unsent`.
        report.dropped.remove("shutdown");
        for series in &last.series {
            if series.labels.get("__name__").map(String::as_str)
                == Some("sc_agent_send_failures_total")
            {
                report
                    .failures
                    .insert(series.labels["reason"].clone(), series.value as u64);
            }
        }
        let rejected_samples: u64 = rejected.values().map(|&s| s as u64).sum();
        let dropped_rejected = report.dropped["rejected"];
        if dropped_rejected != rejected_samples {
            fail(
                &mut report,
                format!(
                    "dropped{{reason=rejected}} is {dropped_rejected} but the receiver \
                     answered 400 to {rejected_samples} samples"
                ),
            );
        }
        // The agent's sent counter at a batch made with an empty queue: everything
        // made before it was sent or dropped, so it is what the receiver accepted.
        if let Some(ts) = reference {
            let at = received
                .iter()
                .find(|r| r.accepted() && r.first_timestamp == Some(ts) && !r.series.is_empty());
            if let Some(at) = at {
                let agent_sent = value(at, "sc_agent_samples_sent_total", &[]);
                let receiver_sent: u64 = accepted.range(..ts).map(|(_, &s)| s as u64).sum();
                if agent_sent != receiver_sent {
                    fail(
                        &mut report,
                        format!(
                            "sc_agent_samples_sent_total was {agent_sent} at the batch of {ts}, \
                             the receiver had accepted {receiver_sent} samples before it"
                        ),
                    );
                }
            }
        }
    });
    let dropped: u64 = report.dropped.values().sum();
    if report.produced != report.sent + dropped + report.unsent {
        let error = format!(
            "produced {} != sent {} + dropped {dropped} + unsent {}",
            report.produced, report.sent, report.unsent
        );
        fail(&mut report, error);
    }
    if report.cycles < options.cycles {
        let error = format!("only {} of {} cycles", report.cycles, options.cycles);
        fail(&mut report, error);
    }
    if report.rss_end_kib > report.rss_warm_kib + options.rss_tolerance_kib {
        let error = format!(
            "VmRSS grew from {} KiB at warm-up to {} KiB (tolerance {} KiB)",
            report.rss_warm_kib, report.rss_end_kib, options.rss_tolerance_kib
        );
        fail(&mut report, error);
    }
    let _ = std::fs::remove_dir_all(&dir);
    report
}

fn fail(report: &mut Report, error: String) {
    report.errors.push(error);
}

fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            let line = status
                .lines()
                .find(|l| l.starts_with(&format!("{field}:")))?
                .to_owned();
            line.split_whitespace().nth(1)?.parse().ok()
        })
        .unwrap_or(0)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// The fixture procfs of the loadavg and meminfo collectors.
pub fn fixture_procfs(manifest_dir: &Path) -> PathBuf {
    manifest_dir.join("tests/fixtures/loadavg_meminfo/proc")
}

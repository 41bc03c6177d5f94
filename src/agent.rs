//! The agent: one cycle is collect → decorate → aggregate → relabel → write, and
//! [`run`] paces cycles on the ticker until a signal says stop.

use crate::batch::Batch;
use crate::collector::Registry;
use crate::config::{Config, ConfigPath};
use crate::identity::{self, Identity, VmIdSource};
use crate::output::Output;
use crate::relabel::Stage;
use crate::remote_write::{metrics, RemoteWrite};
use crate::signals::Signals;
use crate::ticker::Ticker;
use crate::wallclock::now_ms;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use std::io;

/// The running agent. A reload applies a new config to each part in place: the
/// registry keeps the collectors whose settings did not change (with their state),
/// delivery keeps its queue and counters, and the missed-tick count carries on.
pub struct Agent {
    config_path: ConfigPath,
    config: Config,
    registry: Registry,
    batch: Batch,
    output: Output,
    /// The remote write queue, sender and counters: queued batches go to the new
    /// endpoint after a reload.
    delivery: RemoteWrite,
    /// `write_relabel_configs` and `max_series`, with their per-series memory: kept
    /// across reloads (new rules forget the cached outcomes).
    relabel: Stage,
    missed_ticks: u64,
    /// Missed ticks since cycles last kept their schedule; logged once per episode.
    behind: u64,
    clock: ClockGuard,
}

/// What keeps cycle timestamps increasing when the wall clock steps back.
#[derive(Debug, Default)]
struct ClockGuard {
    /// The timestamp of the last cycle that ran.
    last_ms: Option<i64>,
    /// Cycles skipped because the clock was not past `last_ms`, ever.
    skipped: u64,
    /// Cycles skipped in the current episode.
    behind: u64,
}

/// Reads the config (file, then environment) and resolves the identity.
pub fn load(config_path: &ConfigPath) -> Result<(Config, Identity), String> {
    let env = |name: &str| std::env::var(name).ok();
    let config = Config::load(config_path, &env).map_err(|e| e.to_string())?;
    let identity = identity::resolve(&config)?;
    Ok((config, identity))
}

fn log_identity(identity: &Identity) {
    log::info!(
        "vm_id {} (from {}), job {:?}, instance {:?}",
        identity.vm_id,
        identity.source,
        identity.job,
        identity.instance
    );
    if identity.source == VmIdSource::BootId {
        log::warn!(
            "vm_id comes from the kernel boot ID, which changes at every reboot; \
             set vm_id or provide /etc/machine-id for a stable one"
        );
    }
}

impl Agent {
    pub fn new(config_path: ConfigPath, config: Config, identity: &Identity) -> Self {
        log_identity(identity);
        let mut batch = Batch::new();
        batch.set_common_labels(identity.common_labels(&config));
        let mut delivery = RemoteWrite::new();
        delivery.configure(&config);
        Agent {
            registry: Registry::new(&config),
            output: Output::from_config(&config),
            relabel: Stage::new(&config.remote_write),
            config_path,
            config,
            batch,
            delivery,
            missed_ticks: 0,
            behind: 0,
            clock: ClockGuard::default(),
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Runs one cycle; an error means the output is gone (stdout closed).
    pub fn cycle(&mut self) -> io::Result<()> {
        let timestamp_ms = now_ms();
        if !self.clock_moves_on(timestamp_ms) {
            return Ok(());
        }
        self.batch.begin(timestamp_ms);
        self.registry.collect(&mut self.batch);
        let report = metrics::Report {
            delivery: self.delivery.snapshot(timestamp_ms),
            missed_ticks: self.missed_ticks,
            clock_backward: self.clock.skipped,
            series_dropped: self.relabel.dropped(),
        };
        metrics::write(&report, &mut self.batch);
        let selected = self.relabel.select(&self.batch);
        self.output.write(&selected, &mut self.delivery)
    }

    /// Stops delivery: sends what is queued until `shutdown_timeout`, then logs what
    /// is left.
    pub fn shutdown(&mut self) {
        if self.config.prints_to_stdout() {
            return;
        }
        let timeout = self.config.remote_write.shutdown_timeout;
        let queued = self.delivery.snapshot(now_ms()).queue_batches;
        if queued > 0 {
            log::info!(
                "sending {queued} queued batch(es) before exiting (shutdown_timeout {timeout})"
            );
        }
        if self.config.remote_write.stale_markers_on_shutdown {
            self.delivery.mark_all_stale(now_ms());
        }
        let unsent = self.delivery.shutdown(timeout.as_duration());
        if unsent.samples == 0 && unsent.spooled > 0 {
            log::info!(
                "remote write: 0 samples left unsent; {} batch(es) wait in the spool for \
                 the next start",
                unsent.spooled
            );
        } else if unsent.samples == 0 {
            log::info!("remote write queue flushed: 0 samples left unsent");
        } else {
            log::warn!(
                "{} samples in {} batch(es) left unsent after shutdown_timeout ({timeout})",
                unsent.samples,
                unsent.batches
            );
        }
    }

    /// Re-reads the config. An invalid one is logged and the running one kept.
    /// Returns whether the collection interval changed.
    pub fn reload(&mut self) -> bool {
        let (config, identity) = match load(&self.config_path) {
            Ok(loaded) => loaded,
            Err(e) => {
                log::error!("reload failed, keeping the running config: {e}");
                return false;
            }
        };
        if config.log_format != self.config.log_format {
            log::warn!("log_format changes take effect at the next start");
        }
        crate::logging::set_level(config.log_level);
        log_identity(&identity);
        let interval_changed = config.collection_interval != self.config.collection_interval;
        self.batch
            .set_common_labels(identity.common_labels(&config));
        self.registry.reconfigure(&config);
        self.delivery.configure(&config);
        self.relabel.configure(&config.remote_write);
        self.output = Output::from_config(&config);
        self.config = config;
        log::info!("config reloaded");
        interval_changed
    }

    /// Whether a cycle stamped `timestamp_ms` may run. Pushing, it must be later than
    /// the last one: a receiver rejects a whole request holding a sample that is not
    /// newer than the last of its series, so after the wall clock stepped back (an NTP
    /// correction, a VM restored from a snapshot) cycles are skipped, counted in
    /// `sc_agent_clock_backward_total` and logged once per episode, until the clock
    /// passes the last timestamp. Printing to stdout, every cycle runs.
    fn clock_moves_on(&mut self, timestamp_ms: i64) -> bool {
        if self.config.prints_to_stdout() {
            return true;
        }
        let clock = &mut self.clock;
        match clock.last_ms {
            Some(last) if timestamp_ms <= last => {
                if clock.behind == 0 {
                    log::warn!(
                        "the wall clock stepped back: it says {} but the last batch was \
                         stamped {}; skipping cycles until it passes that (counted in \
                         sc_agent_clock_backward_total)",
                        crate::remote_write::format_timestamp(timestamp_ms),
                        crate::remote_write::format_timestamp(last)
                    );
                }
                clock.behind += 1;
                clock.skipped += 1;
                false
            }
            _ => {
                if clock.behind > 0 {
                    log::info!(
                        "the wall clock passed the last batch's timestamp: collecting again \
                         after {} skipped cycle(s)",
                        clock.behind
                    );
                    clock.behind = 0;
                }
                clock.last_ms = Some(timestamp_ms);
                true
            }
        }
    }

    /// Counts missed ticks. The log says when cycles fall behind and when they are
    /// back on schedule, once each: on a host that stays overloaded, a line per cycle
    /// would only bury the news.
    fn note_missed(&mut self, missed: u64) {
        self.missed_ticks += missed;
        match (missed, self.behind) {
            (0, 0) => {}
            (0, behind) => {
                log::info!("cycles back on schedule after {behind} missed tick(s)");
                self.behind = 0;
            }
            (missed, 0) => {
                log::warn!(
                    "{missed} tick(s) missed: a cycle took longer than collection_interval \
                     ({}); counted in sc_agent_missed_ticks_total",
                    self.config.collection_interval
                );
                self.behind = missed;
            }
            (missed, _) => self.behind += missed,
        }
    }
}

/// Why the loop could not run.
#[derive(Debug)]
pub struct Fatal(pub String);

/// Paces cycles until SIGTERM or SIGINT; SIGHUP reloads the config. On the way out,
/// what is queued for remote write is sent until `shutdown_timeout`.
pub fn run(mut agent: Agent) -> Result<(), Fatal> {
    let result = run_loop(&mut agent);
    agent.shutdown();
    result
}

fn run_loop(agent: &mut Agent) -> Result<(), Fatal> {
    let fatal = |what: &str, e: io::Error| Fatal(format!("{what}: {e}"));
    let signals = Signals::install().map_err(|e| fatal("cannot install signal handlers", e))?;
    let interval = agent.config.collection_interval.as_duration();
    let ticker = Ticker::start(interval).map_err(|e| fatal("cannot create the cycle timer", e))?;
    log::info!(
        "started: {} every {}",
        if agent.config.prints_to_stdout() {
            "printing metrics to stdout"
        } else {
            "pushing with remote write"
        },
        agent.config.collection_interval
    );
    loop {
        let mut fds = [
            PollFd::new(signals.fd(), PollFlags::POLLIN),
            PollFd::new(ticker.fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(fatal("poll", e.into())),
        }
        let pending = signals.take();
        if pending.terminate {
            log::info!("stopping on signal");
            break;
        }
        if pending.reload && agent.reload() {
            let interval = agent.config.collection_interval.as_duration();
            ticker
                .arm(interval)
                .map_err(|e| fatal("cannot re-arm the cycle timer", e))?;
        }
        let ticks = ticker
            .expirations()
            .map_err(|e| fatal("cannot read the cycle timer", e))?;
        if ticks == 0 {
            continue;
        }
        agent.note_missed(ticks - 1);
        if let Err(e) = agent.cycle() {
            if e.kind() == io::ErrorKind::BrokenPipe {
                log::info!("stdout was closed; stopping");
                break;
            }
            return Err(fatal("cannot write metrics", e));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent() -> Agent {
        let config = Config {
            vm_id: "test-vm".into(),
            instance: Some("test-host".into()),
            ..Config::default()
        };
        let identity = identity::resolve(&config).unwrap();
        Agent::new(ConfigPath::default(), config, &identity)
    }

    #[test]
    fn cycles_are_skipped_while_the_clock_is_behind_the_last_batch() {
        let mut stdout = agent();
        assert!(stdout.clock_moves_on(1_000) && stdout.clock_moves_on(500));
        let config = Config {
            vm_id: "test-vm".into(),
            instance: Some("test-host".into()),
            ingestor_endpoint: Some("http://127.0.0.1:9/api/v1/write".into()),
            ..Config::default()
        };
        let identity = identity::resolve(&config).unwrap();
        let mut pushing = Agent::new(ConfigPath::default(), config, &identity);
        assert!(pushing.clock_moves_on(1_000));
        // The same millisecond, and a step back: skipped.
        assert!(!pushing.clock_moves_on(1_000));
        assert!(!pushing.clock_moves_on(400));
        assert_eq!((pushing.clock.skipped, pushing.clock.behind), (2, 2));
        // Past the last batch: on again, the episode over, the count kept.
        assert!(pushing.clock_moves_on(1_001));
        assert_eq!((pushing.clock.skipped, pushing.clock.behind), (2, 0));
        assert!(!pushing.clock_moves_on(1_001));
        assert_eq!(pushing.clock.skipped, 3);
    }

    #[test]
    fn missed_ticks_are_counted_and_episodes_tracked() {
        let mut agent = agent();
        agent.note_missed(0);
        assert_eq!((agent.missed_ticks, agent.behind), (0, 0));
        agent.note_missed(2);
        agent.note_missed(3);
        assert_eq!((agent.missed_ticks, agent.behind), (5, 5));
        agent.note_missed(0);
        assert_eq!((agent.missed_ticks, agent.behind), (5, 0));
        agent.note_missed(1);
        assert_eq!((agent.missed_ticks, agent.behind), (6, 1));
    }
}

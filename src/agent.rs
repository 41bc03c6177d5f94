//! The agent: one cycle is collect → decorate → aggregate → write, and [`run`] paces
//! cycles on the ticker until a signal says stop.

use crate::batch::Batch;
use crate::collector::filesystem::StuckMounts;
use crate::collector::Registry;
use crate::config::{self, Config};
use crate::identity::{self, Identity, Source as IdSource};
use crate::output::Output;
use crate::signals::Signals;
use crate::ticker::Ticker;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use std::io;
use std::time::{SystemTime, UNIX_EPOCH};

/// Everything a config decides, rebuilt on reload.
pub struct Agent {
    source: config::Source,
    config: Config,
    registry: Registry,
    batch: Batch,
    output: Output,
    /// Survives reloads: statfs calls still hung in the kernel.
    stuck_mounts: StuckMounts,
    missed_ticks: u64,
}

/// Reads the config (file, then environment) and resolves the identity.
pub fn load(source: &config::Source) -> Result<(Config, Identity), String> {
    let env = |name: &str| std::env::var(name).ok();
    let config = Config::load(source, &env).map_err(|e| e.to_string())?;
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
    if identity.source == IdSource::BootId {
        log::warn!(
            "vm_id comes from the kernel boot ID, which changes at every reboot; \
             set vm_id or provide /etc/machine-id for a stable one"
        );
    }
}

impl Agent {
    pub fn new(source: config::Source, config: Config, identity: &Identity) -> Self {
        Agent::with_state(source, config, identity, StuckMounts::default())
    }

    fn with_state(
        source: config::Source,
        config: Config,
        identity: &Identity,
        stuck_mounts: StuckMounts,
    ) -> Self {
        log_identity(identity);
        let mut batch = Batch::new();
        batch.set_common_labels(identity.common_labels(&config));
        Agent {
            registry: Registry::from_config(&config, &stuck_mounts),
            output: Output::from_config(&config),
            source,
            config,
            batch,
            stuck_mounts,
            missed_ticks: 0,
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Runs one cycle; an error means the output is gone (stdout closed).
    pub fn cycle(&mut self) -> io::Result<()> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        self.batch
            .begin(i64::try_from(now.as_millis()).unwrap_or(i64::MAX));
        self.registry.collect(&mut self.batch);
        self.output.write(&self.batch)
    }

    /// Runs one cycle and writes it as text to stdout, whatever the output.
    pub fn once(&mut self) -> io::Result<()> {
        self.output = Output::stdout();
        self.cycle()
    }

    /// Re-reads the config. An invalid one is logged and the running one kept.
    /// Returns whether the collection interval changed.
    pub fn reload(&mut self) -> bool {
        let (config, identity) = match load(&self.source) {
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
        let interval_changed = config.collection_interval != self.config.collection_interval;
        let missed_ticks = self.missed_ticks;
        let stuck_mounts = self.stuck_mounts.clone();
        *self = Agent::with_state(self.source.clone(), config, &identity, stuck_mounts);
        self.missed_ticks = missed_ticks;
        log::info!("config reloaded");
        interval_changed
    }

    fn note_missed(&mut self, missed: u64) {
        if missed > 0 {
            self.missed_ticks += missed;
            log::warn!(
                "{missed} tick(s) missed: a cycle took longer than collection_interval ({})",
                self.config.collection_interval
            );
        }
    }
}

/// Why the loop could not run.
#[derive(Debug)]
pub struct Fatal(pub String);

/// Paces cycles until SIGTERM or SIGINT; SIGHUP reloads the config.
pub fn run(mut agent: Agent) -> Result<(), Fatal> {
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

//! The running collectors: built from the [`table`](super::table) for what the config
//! enables, run once per cycle, and reconfigured in place on reload.
//!
//! A reload keeps every collector whose paths and options did not change as it is,
//! with its state: cpu's memory that keeps `node_cpu_seconds_total` from going
//! backwards, the buffers, and whether it was failing (so a collector that still
//! fails after a reload does not log again). A collector whose options changed is
//! built anew but keeps its failing/recovered state. What outlives every collector
//! (statfs calls stuck in the kernel) is in [`Resources`], held here for the life of
//! the process.

use super::table::{Descriptor, Settings, TABLE};
use super::{Collector, Context, Resources};
use crate::batch::{Batch, Kind};
use crate::config::{Config, Paths};
use std::time::Instant;

/// One enabled collector and how its last run went.
struct Slot {
    descriptor: &'static Descriptor,
    collector: Box<dyn Collector>,
    /// Outcome of the last run; `None` before the first.
    ok: Option<bool>,
    seconds: f64,
}

/// The enabled collectors, in table order.
pub struct Registry {
    resources: Resources,
    paths: Paths,
    settings: Settings,
    slots: Vec<Slot>,
}

impl Registry {
    /// Builds the collectors `config` enables.
    pub fn new(config: &Config) -> Self {
        Registry::with_resources(config, Resources::default())
    }

    /// Like [`Registry::new`], with resources of the caller's (a stand-in statfs).
    pub fn with_resources(config: &Config, resources: Resources) -> Self {
        let mut registry = Registry {
            resources,
            paths: config.paths.clone(),
            settings: config.collectors.clone(),
            slots: Vec::new(),
        };
        registry.slots = TABLE
            .iter()
            .filter(|d| (d.enabled)(&registry.settings))
            .map(|descriptor| registry.build(descriptor, None))
            .collect();
        registry
    }

    fn build(&self, descriptor: &'static Descriptor, ok: Option<bool>) -> Slot {
        let context = Context {
            paths: &self.paths,
            resources: &self.resources,
            settings: &self.settings,
        };
        Slot {
            descriptor,
            collector: (descriptor.build)(&context, &self.settings),
            ok,
            seconds: 0.0,
        }
    }

    /// Applies a reloaded config: collectors it no longer enables are dropped, new
    /// ones built, changed ones rebuilt, and the rest kept as they are.
    pub fn reconfigure(&mut self, config: &Config) {
        let same_paths = self.paths == config.paths;
        let old_settings = std::mem::replace(&mut self.settings, config.collectors.clone());
        self.paths = config.paths.clone();
        let mut old: Vec<Option<Slot>> = std::mem::take(&mut self.slots)
            .into_iter()
            .map(Some)
            .collect();
        let mut slots = Vec::new();
        for descriptor in TABLE.iter().filter(|d| (d.enabled)(&self.settings)) {
            let previous = old
                .iter_mut()
                .find(|s| {
                    s.as_ref()
                        .is_some_and(|s| s.descriptor.name == descriptor.name)
                })
                .and_then(Option::take);
            let slot = match previous {
                Some(slot)
                    if same_paths && (descriptor.same_options)(&old_settings, &self.settings) =>
                {
                    slot
                }
                Some(slot) => {
                    log::debug!("collector {}: settings changed, rebuilt", descriptor.name);
                    self.build(descriptor, slot.ok)
                }
                None => self.build(descriptor, None),
            };
            slots.push(slot);
        }
        self.slots = slots;
    }

    /// The enabled collectors' names, in the order they run.
    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.slots.iter().map(|s| s.descriptor.name)
    }

    /// Runs every collector into `out`, then writes the scrape metrics.
    pub fn collect(&mut self, out: &mut Batch) {
        for slot in &mut self.slots {
            let mark = out.mark();
            let started = Instant::now();
            let result = slot.collector.collect(out);
            slot.seconds = started.elapsed().as_secs_f64();
            let name = slot.descriptor.name;
            let ok = match result {
                Ok(()) => {
                    if slot.ok == Some(false) {
                        log::info!("collector {name} recovered");
                    }
                    true
                }
                Err(e) => {
                    // What a collector wrote before its "no data" stays, as in
                    // node_exporter (conntrack's gauges without its stat file).
                    if !e.is_no_data() {
                        out.rollback(mark);
                    }
                    if e.is_no_data() {
                        log::debug!("collector {name} returned no data: {e}");
                    } else if slot.ok == Some(false) {
                        log::debug!("collector {name} still failing: {e}");
                    } else {
                        log::warn!("collector {name} failed: {e}");
                    }
                    false
                }
            };
            slot.ok = Some(ok);
        }
        self.write_scrape_metrics(out);
    }

    fn write_scrape_metrics(&self, out: &mut Batch) {
        let mut duration = out.family(
            super::SCRAPE_DURATION,
            "node_exporter: Duration of a collector scrape.",
            Kind::Gauge,
        );
        for slot in &self.slots {
            duration.sample(&[("collector", slot.descriptor.name)], slot.seconds);
        }
        let mut success = out.family(
            super::SCRAPE_SUCCESS,
            "node_exporter: Whether a collector succeeded.",
            Kind::Gauge,
        );
        for slot in &self.slots {
            let ok = slot.ok.unwrap_or(false);
            success.sample(
                &[("collector", slot.descriptor.name)],
                f64::from(u8::from(ok)),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TempDir;

    fn config(dir: &TempDir, collectors: &str) -> Config {
        let mut config = Config::from_yaml(&format!("collectors:\n{collectors}")).unwrap();
        config.paths.procfs = dir.path().join("proc");
        config.paths.sysfs = dir.path().join("sys");
        config.paths.rootfs = dir.path().join("root");
        config
    }

    fn run(registry: &mut Registry) -> String {
        let mut batch = Batch::new();
        batch.begin(0);
        registry.collect(&mut batch);
        let mut out = Vec::new();
        crate::output::text::write(&batch, &mut out);
        String::from_utf8(out).unwrap()
    }

    fn line<'a>(text: &'a str, prefix: &str) -> &'a str {
        text.lines().find(|l| l.starts_with(prefix)).unwrap_or("")
    }

    #[test]
    fn builds_what_the_config_enables_in_table_order() {
        let dir = TempDir::new();
        let registry = Registry::new(&config(
            &dir,
            "  disable_defaults: true\n  loadavg: true\n  cpu: true\n  memory: true\n",
        ));
        assert_eq!(
            registry.names().collect::<Vec<_>>(),
            ["loadavg", "meminfo", "cpu"]
        );
        let all = Registry::new(&Config::default());
        let defaults: Vec<_> = TABLE
            .iter()
            .filter(|d| d.enabled_by_default)
            .map(|d| d.name)
            .collect();
        assert_eq!(all.names().collect::<Vec<_>>(), defaults);
    }

    #[test]
    fn a_reload_keeps_unchanged_collectors_and_their_state() {
        let dir = TempDir::new();
        dir.write("proc/stat", "cpu0 100 0 100 1000 500 0 0 0 0 0\n");
        let mut registry = Registry::new(&config(&dir, "  disable_defaults: true\n  cpu: true\n"));
        let iowait =
            |text: &str| line(text, "node_cpu_seconds_total{cpu=\"0\",mode=\"iowait\"}").to_owned();
        assert!(iowait(&run(&mut registry)).ends_with(" 5"));
        // iowait dips in the kernel; a reload (adding a collector) must not reset
        // cpu's memory of the value already exported.
        dir.write("proc/stat", "cpu0 100 0 100 1001 400 0 0 0 0 0\n");
        registry.reconfigure(&config(
            &dir,
            "  disable_defaults: true\n  cpu: true\n  loadavg: true\n",
        ));
        let text = run(&mut registry);
        assert!(iowait(&text).ends_with(" 5"), "{text}");
        assert_eq!(registry.names().collect::<Vec<_>>(), ["loadavg", "cpu"]);
        // Other paths are another source: built anew.
        let other = TempDir::new();
        other.write("proc/stat", "cpu0 100 0 100 1001 400 0 0 0 0 0\n");
        registry.reconfigure(&config(&other, "  disable_defaults: true\n  cpu: true\n"));
        assert!(iowait(&run(&mut registry)).ends_with(" 4"));
    }

    #[test]
    fn a_failing_collector_keeps_its_state_across_reloads() {
        let dir = TempDir::new();
        let mut registry =
            Registry::new(&config(&dir, "  disable_defaults: true\n  loadavg: true\n"));
        let success = |text: &str| line(text, "node_scrape_collector_success").to_owned();
        assert!(success(&run(&mut registry)).ends_with(" 0"));
        assert_eq!(registry.slots[0].ok, Some(false));
        registry.reconfigure(&config(
            &dir,
            "  disable_defaults: true\n  loadavg: true\n  uname: true\n",
        ));
        assert_eq!(registry.slots[0].ok, Some(false), "kept across the reload");
        // A collector rebuilt for new options keeps it too.
        registry.reconfigure(&config(
            &dir,
            "  disable_defaults: true\n  loadavg: true\n  diskstats: {device_include: x, device_exclude: ''}\n",
        ));
        assert_eq!(registry.slots[0].ok, Some(false));
        assert_eq!(registry.slots[1].ok, None, "diskstats is new");
    }

    #[test]
    fn no_data_keeps_what_was_written_other_errors_roll_it_back() {
        let dir = TempDir::new();
        dir.write("proc/sys/net/netfilter/nf_conntrack_count", "5\n");
        dir.write("proc/sys/net/netfilter/nf_conntrack_max", "9\n");
        let mut registry = Registry::new(&config(
            &dir,
            "  disable_defaults: true\n  conntrack: true\n",
        ));
        // No stat file: the two gauges, then no data.
        let text = run(&mut registry);
        assert!(text.contains("node_nf_conntrack_entries 5\n"), "{text}");
        assert!(line(&text, "node_scrape_collector_success").ends_with(" 0"));
        // A malformed stat file: a failure, and the gauges are rolled back.
        dir.write("proc/net/stat/nf_conntrack", "header\nnot hex\n");
        let text = run(&mut registry);
        assert!(!text.contains("node_nf_conntrack_entries"), "{text}");
        assert!(line(&text, "node_scrape_collector_success").ends_with(" 0"));
    }
}

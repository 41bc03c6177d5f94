//! `node_cpu_seconds_total{cpu,mode}` and `node_cpu_guest_seconds_total{cpu,mode}` from
//! the `cpuN` lines of /proc/stat, plus what node_exporter's cpu collector adds from
//! sysfs when the files exist: `node_cpu_core_throttles_total{package,core}` and
//! `node_cpu_package_throttles_total{package}` (`cpuN/thermal_throttle/`, Intel bare
//! metal), `node_cpu_isolated{cpu}` (`devices/system/cpu/isolated`, `isolcpus=`) and
//! `node_cpu_online{cpu}` (`cpuN/online`, node_exporter 1.12's version).
//!
//! Parsed here rather than with `procfs::KernelStats`, which drops the CPU number of
//! each line (cpu0, cpu2 with cpu1 offline would come out as "0" and "1"), builds a
//! `String` per line and has no `intr` total for the stat collector.
//!
//! node_exporter quirks mirrored:
//! - Ticks are divided by USER_HZ (`sysconf(_SC_CLK_TCK)`, read once).
//! - Counters never go backwards: a mode whose ticks fall below what was exported last
//!   time keeps the old value (the kernel's iowait does fall), unless idle fell by 3 s
//!   or more, which node_exporter takes as the CPU having been unplugged and replugged
//!   and answers by taking the new values as they are.
//! - A line with fewer than the ten columns of current kernels reports 0 for the
//!   missing modes (guest and guest_nice are absent before Linux 2.6.33).
//! - Throttle counters are read once per core and once per package, from the first
//!   CPU in lexical order of `cpuN` names (cpu10 before cpu2), as node_exporter's glob
//!   returns them; a CPU without a numeric `physical_package_id` or `core_id` is left
//!   out.
//! - The isolated list is read once, when the collector is built.
//! - `node_cpu_online` is written only when the first `cpuN` directory in name order
//!   (cpu0) has an `online` file: on x86, where cpu0 cannot be unplugged and has
//!   none, there is no such family at all. Otherwise every `cpuN` directory of sysfs
//!   gets a series, 1 when its `online` reads `1`, else 0 (offline, unreadable, or
//!   missing). Changed since node_exporter 1.5: the family is new (1.9).
//!
//! Options, node_exporter's `--collector.cpu.*` flags:
//! - `guest` (on by default): `node_cpu_guest_seconds_total`; off leaves the family
//!   out.
//! - `info` (off by default) reads /proc/cpuinfo ([`info`]) for `node_cpu_info`,
//!   and `node_cpu_frequency_hertz` when the cpufreq collector is off;
//!   `info_flags_include` and `info_bugs_include` (node_exporter's
//!   `--collector.cpu.info.flags-include` and `.bugs-include`, the flag's dot written
//!   `_`) add `node_cpu_flag_info` and `node_cpu_bug_info`, and imply `info`, as
//!   node_exporter switches it on for them. A /proc/cpuinfo that does not parse fails
//!   the collector, as it fails node_exporter's.
//!
//! Since node_exporter 1.5: `node_cpu_frequency_hertz` from /proc/cpuinfo is 1.7's.
//! node_exporter 1.10 to 1.12 write it when the cpufreq collector is on, where it
//! clashes with cpufreq's family of the same name (another HELP, other labels: the
//! scrape errors, node_exporter issue #3689, fixed after 1.12.1 by going back to
//! "only when cpufreq is off"); here it is written only when cpufreq is off, as 1.7
//! to 1.9 and the fix do.
//!
//! One deliberate difference: node_exporter 1.5 reports an offline CPU between two
//! online ones (cpu1 when /proc/stat lists cpu0 and cpu2) with every mode at 0; later
//! versions and this agent leave it out, so it does not look like a counter reset.
//! The throttle files are looked up for the online CPUs of /proc/stat rather than by
//! listing sysfs: an offline CPU has no `topology/` or `thermal_throttle/` there.

mod info;

use super::{list_dir, read_file, read_value, set_path, Build, CollectError, Collector, Context, Settings};
use crate::batch::{Batch, Kind};
use crate::config::collectors;
use crate::config::pattern::{self, Pattern};
use info::CpuInfo;
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};

/// `collectors.cpu`: node_exporter's `--collector.cpu.*` flags.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Options {
    /// `node_cpu_guest_seconds_total`: `--collector.cpu.guest`.
    pub guest: bool,
    /// `node_cpu_info` and the frequencies of /proc/cpuinfo: `--collector.cpu.info`.
    pub info: bool,
    /// `node_cpu_flag_info` for the flags matching: `--collector.cpu.info.flags-include`.
    #[serde(deserialize_with = "pattern::filter")]
    pub info_flags_include: Option<Pattern>,
    /// `node_cpu_bug_info` for the bugs matching: `--collector.cpu.info.bugs-include`.
    #[serde(deserialize_with = "pattern::filter")]
    pub info_bugs_include: Option<Pattern>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            guest: true,
            info: false,
            info_flags_include: None,
            info_bugs_include: None,
        }
    }
}

impl Options {
    /// Whether /proc/cpuinfo is read: `info`, or a flags or bugs regex, which
    /// node_exporter takes as asking for it.
    fn reads_info(&self) -> bool {
        self.info || self.info_flags_include.is_some() || self.info_bugs_include.is_some()
    }
}

impl collectors::Options for Options {}

/// The modes of `node_cpu_seconds_total`, in /proc/stat column order.
const MODES: [&str; 8] = [
    "user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal",
];
/// The modes of `node_cpu_guest_seconds_total`: the guest and guest_nice columns.
const GUEST_MODES: [&str; 2] = ["user", "nice"];
const COLUMNS: usize = MODES.len() + GUEST_MODES.len();
const IDLE: usize = 3;
/// The columns every kernel has: user, nice, system, idle.
const REQUIRED_COLUMNS: usize = 4;
/// node_exporter's `jumpBackSeconds`: idle falling this far means a hotplugged CPU.
const JUMP_BACK_SECONDS: f64 = 3.0;

const TOPOLOGY: &str = "topology";
const THERMAL_THROTTLE: &str = "thermal_throttle";

/// USER_HZ when sysconf cannot say; it is 100 on every Linux architecture in use.
const DEFAULT_TICKS_PER_SECOND: f64 = 100.0;

#[derive(Clone, Copy, Debug, PartialEq)]
struct CpuTimes {
    id: u32,
    seconds: [f64; COLUMNS],
}

pub struct Cpu {
    stat_path: PathBuf,
    guest: bool,
    /// /proc/cpuinfo, and the regexes of `info`; `None` without it.
    info: Option<Info>,
    /// `<sysfs>/devices/system/cpu`.
    sysfs_cpu: PathBuf,
    /// The path of the file being read under `sysfs_cpu`.
    scratch: PathBuf,
    ticks_per_second: f64,
    buf: String,
    value: String,
    name: String,
    /// This cycle's CPUs while they are read.
    parsed: Vec<CpuTimes>,
    /// What was exported last cycle, sorted by CPU number.
    exported: Vec<CpuTimes>,
    isolated: Vec<u32>,
    /// Online CPU numbers in the order node_exporter visits them for throttles.
    order: Vec<u32>,
    /// The `cpuN` directories of sysfs, in name order (slots reused; `online` says
    /// how many hold this cycle's).
    dir_names: Vec<String>,
    /// Whether each of those is online, same index; empty when cpu0 has no `online`.
    online: Vec<bool>,
    throttles: Throttles,
}

/// What the `info` option reads and writes.
struct Info {
    path: PathBuf,
    cpuinfo: CpuInfo,
    /// `node_cpu_frequency_hertz` too (the cpufreq collector is off).
    frequency: bool,
    flags: Option<Pattern>,
    bugs: Option<Pattern>,
}

/// Throttle counters found this cycle.
#[derive(Default)]
struct Throttles {
    /// `(package, core, count)`.
    cores: Vec<(u64, u64, u64)>,
    /// `(package, count)`.
    packages: Vec<(u64, u64)>,
}

impl Cpu {
    /// The collector with `options`; `cpufreq` says whether the cpufreq collector
    /// runs (then it, not /proc/cpuinfo, gives `node_cpu_frequency_hertz`).
    pub fn new(procfs: &Path, sysfs: &Path, options: &Options, cpufreq: bool) -> Self {
        let sysfs_cpu = sysfs.join("devices/system/cpu");
        let isolated = read_isolated(&sysfs_cpu.join("isolated"));
        let info = options.reads_info().then(|| Info {
            path: procfs.join("cpuinfo"),
            cpuinfo: CpuInfo::default(),
            frequency: !cpufreq,
            flags: options.info_flags_include.clone(),
            bugs: options.info_bugs_include.clone(),
        });
        Cpu {
            stat_path: procfs.join("stat"),
            guest: options.guest,
            info,
            sysfs_cpu,
            scratch: PathBuf::new(),
            ticks_per_second: ticks_per_second(),
            buf: String::new(),
            value: String::new(),
            name: String::new(),
            parsed: Vec::new(),
            exported: Vec::new(),
            isolated,
            order: Vec::new(),
            dir_names: Vec::new(),
            online: Vec::new(),
            throttles: Throttles::default(),
        }
    }

    /// Reads the `cpuN` lines into `self.parsed`, sorted by CPU number.
    fn parse(&mut self) -> Result<(), CollectError> {
        self.parsed.clear();
        for (index, line) in self.buf.lines().enumerate() {
            let mut words = line.split_ascii_whitespace();
            let Some(id) = words.next().and_then(|w| w.strip_prefix("cpu")) else {
                continue;
            };
            if id.is_empty() {
                continue; // the all-CPU total
            }
            let cpu = parse_cpu_line(id, words, self.ticks_per_second)
                .map_err(|e| CollectError::parse(&self.stat_path, index + 1, e))?;
            self.parsed.push(cpu);
        }
        self.parsed.sort_unstable_by_key(|c| c.id);
        if let Some(twice) = self.parsed.windows(2).find(|w| w[0].id == w[1].id) {
            return Err(CollectError::new(format!(
                "{}: cpu{} is listed twice",
                self.stat_path.display(),
                twice[0].id
            )));
        }
        Ok(())
    }

    /// Applies node_exporter's never-backwards rule against last cycle's values, then
    /// makes this cycle's values the exported ones.
    fn settle(&mut self) {
        for cpu in &mut self.parsed {
            let Ok(at) = self.exported.binary_search_by_key(&cpu.id, |c| c.id) else {
                continue;
            };
            let before = &self.exported[at].seconds;
            if before[IDLE] - cpu.seconds[IDLE] >= JUMP_BACK_SECONDS {
                continue; // unplugged and back: start again from the new values
            }
            for (now, before) in cpu.seconds.iter_mut().zip(before) {
                if *now < *before {
                    *now = *before;
                }
            }
        }
        std::mem::swap(&mut self.parsed, &mut self.exported);
    }

    fn write_times(&self, out: &mut Batch) {
        let mut family = out.family(
            "node_cpu_seconds_total",
            "Seconds the CPUs spent in each mode.",
            Kind::Counter,
        );
        for cpu in &self.exported {
            for (mode, seconds) in MODES.iter().zip(&cpu.seconds) {
                family
                    .series()
                    .label("cpu", cpu.id)
                    .label("mode", mode)
                    .value(*seconds);
            }
        }
        if !self.guest {
            return;
        }
        let mut family = out.family(
            "node_cpu_guest_seconds_total",
            "Seconds the CPUs spent in guests (VMs) for each mode.",
            Kind::Counter,
        );
        for cpu in &self.exported {
            for (mode, seconds) in GUEST_MODES.iter().zip(&cpu.seconds[MODES.len()..]) {
                family
                    .series()
                    .label("cpu", cpu.id)
                    .label("mode", mode)
                    .value(*seconds);
            }
        }
    }

    /// Reads the throttle counters of the online CPUs, node_exporter's way.
    fn read_throttles(&mut self) {
        let t = &mut self.throttles;
        t.cores.clear();
        t.packages.clear();
        self.order.clear();
        self.order.extend(self.exported.iter().map(|c| c.id));
        self.order.sort_unstable_by(|a, b| lexical(*a, *b));
        for &id in &self.order {
            self.name.clear();
            let _ = write!(self.name, "cpu{id}");
            let mut cpu = CpuDir {
                base: &self.sysfs_cpu,
                name: &self.name,
                path: &mut self.scratch,
                value: &mut self.value,
            };
            // Most machines (every VM) have no thermal_throttle: skip the topology reads.
            set_path(cpu.path, cpu.base, &[cpu.name, THERMAL_THROTTLE]);
            if cpu.path.is_dir() {
                cpu.read_throttles(t);
            }
        }
    }

    fn write_throttles(&self, out: &mut Batch) {
        let mut family = out.family(
            "node_cpu_core_throttles_total",
            "Number of times this CPU core has been throttled.",
            Kind::Counter,
        );
        for (package, core, count) in &self.throttles.cores {
            family
                .series()
                .label("package", package)
                .label("core", core)
                .value(*count as f64);
        }
        let mut family = out.family(
            "node_cpu_package_throttles_total",
            "Number of times this CPU package has been throttled.",
            Kind::Counter,
        );
        for (package, count) in &self.throttles.packages {
            family
                .series()
                .label("package", package)
                .value(*count as f64);
        }
    }

    /// Reads `cpuN/online` of every `cpuN` directory, unless the first has none.
    fn read_online(&mut self) {
        self.online.clear();
        let is_cpu = |_: &std::fs::DirEntry, name: &str| {
            name.strip_prefix("cpu")
                .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
        };
        // No sysfs, no CPU directories: nothing to say (node_exporter would crash).
        let Ok(len) = list_dir(&self.sysfs_cpu, &mut self.dir_names, is_cpu) else {
            return;
        };
        for (index, name) in self.dir_names[..len].iter().enumerate() {
            set_path(&mut self.scratch, &self.sysfs_cpu, &[name, "online"]);
            let text = read_value(&self.scratch, &mut self.value);
            if index == 0 && text.as_ref().is_err_and(|e| e.kind() == io::ErrorKind::NotFound) {
                return;
            }
            self.online.push(text.is_ok_and(|text| text == "1"));
        }
    }

    fn write_online(&self, out: &mut Batch) {
        let mut family = out.family(
            "node_cpu_online",
            "CPUs that are online and being scheduled.",
            Kind::Gauge,
        );
        for (name, online) in self.dir_names.iter().zip(&self.online) {
            let number = name.strip_prefix("cpu").unwrap_or(name);
            family
                .series()
                .label("cpu", number)
                .value(f64::from(u8::from(*online)));
        }
    }

    fn write_isolated(&self, out: &mut Batch) {
        let mut family = out.family(
            "node_cpu_isolated",
            "Whether each core is isolated, information from /sys/devices/system/cpu/isolated.",
            Kind::Gauge,
        );
        for cpu in &self.isolated {
            family.series().label("cpu", cpu).value(1.0);
        }
    }
}

impl Build for Cpu {
    type Options = Options;

    const SOURCES: &'static [&'static str] = &[
        "proc/stat",
        "proc/cpuinfo",
        "sys/devices/system/cpu/isolated",
        "sys/devices/system/cpu/cpu0/online",
    ];

    fn build(context: &Context<'_>, options: &Options) -> Self {
        let paths = context.paths;
        Cpu::new(&paths.procfs, &paths.sysfs, options, context.settings.cpufreq.enabled)
    }

    fn same_others(a: &Settings, b: &Settings) -> bool {
        a.cpufreq.enabled == b.cpufreq.enabled
    }
}

impl Collector for Cpu {
    fn collect(&mut self, out: &mut Batch) -> Result<(), CollectError> {
        if let Some(info) = &mut self.info {
            read_file(&info.path, &mut info.cpuinfo.text)?;
            info.cpuinfo
                .parse()
                .map_err(|(line, what)| CollectError::parse(&info.path, line, what))?;
            info.cpuinfo.write_info(out, info.frequency);
            info.cpuinfo
                .write_flags(out, info.flags.as_ref(), info.bugs.as_ref());
        }
        read_file(&self.stat_path, &mut self.buf)?;
        self.parse()?;
        self.settle();
        self.write_times(out);
        self.read_throttles();
        self.write_throttles(out);
        self.write_isolated(out);
        self.read_online();
        self.write_online(out);
        Ok(())
    }
}

fn ticks_per_second() -> f64 {
    match nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK) {
        Ok(Some(ticks)) if ticks > 0 => ticks as f64,
        _ => DEFAULT_TICKS_PER_SECOND,
    }
}

/// Parses the columns after `cpu<id>` into seconds.
fn parse_cpu_line<'a>(
    id: &str,
    words: impl Iterator<Item = &'a str>,
    ticks_per_second: f64,
) -> Result<CpuTimes, String> {
    let id = id
        .parse()
        .map_err(|_| format!("expected a CPU number after `cpu`, got {id:?}"))?;
    let mut seconds = [0.0; COLUMNS];
    let mut columns = 0;
    for (slot, word) in seconds.iter_mut().zip(words) {
        let ticks: u64 = word
            .parse()
            .map_err(|_| format!("cpu{id}: expected a tick count, got {word:?}"))?;
        *slot = ticks as f64 / ticks_per_second;
        columns += 1;
    }
    if columns < REQUIRED_COLUMNS {
        return Err(format!(
            "cpu{id}: expected at least {REQUIRED_COLUMNS} tick counts, got {columns}"
        ));
    }
    Ok(CpuTimes { id, seconds })
}

/// Orders CPU numbers as their decimal names sort: 1, 10, 11, 2.
fn lexical(a: u32, b: u32) -> Ordering {
    let (mut a_buf, mut b_buf) = ([0u8; 10], [0u8; 10]);
    decimal(a, &mut a_buf).cmp(decimal(b, &mut b_buf))
}

fn decimal(mut n: u32, buf: &mut [u8; 10]) -> &[u8] {
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[at..];
        }
    }
}

/// One CPU's sysfs directory, `base/name`, and the buffers to read its files.
struct CpuDir<'a> {
    base: &'a Path,
    name: &'a str,
    path: &'a mut PathBuf,
    value: &'a mut String,
}

impl CpuDir<'_> {
    /// Reads the CPU's topology and throttle counts into `t`, node_exporter's way.
    fn read_throttles(&mut self, t: &mut Throttles) {
        let Some(package) = self.read_uint(TOPOLOGY, "physical_package_id") else {
            return;
        };
        let Some(core) = self.read_uint(TOPOLOGY, "core_id") else {
            return;
        };
        if !t.cores.iter().any(|&(p, c, _)| (p, c) == (package, core)) {
            if let Some(count) = self.read_uint(THERMAL_THROTTLE, "core_throttle_count") {
                t.cores.push((package, core, count));
            }
        }
        if !t.packages.iter().any(|&(p, _)| p == package) {
            if let Some(count) = self.read_uint(THERMAL_THROTTLE, "package_throttle_count") {
                t.packages.push((package, count));
            }
        }
    }

    /// A whole number from `subdir/file`, or `None` when the file is missing or odd.
    fn read_uint(&mut self, subdir: &str, file: &str) -> Option<u64> {
        set_path(self.path, self.base, &[self.name, subdir, file]);
        read_value(self.path, self.value)
            .ok()
            .and_then(|v| v.parse().ok())
    }
}

/// The CPUs of `devices/system/cpu/isolated`, empty when the file is missing.
fn read_isolated(path: &Path) -> Vec<u32> {
    let mut buf = String::new();
    match read_value(path, &mut buf) {
        Ok(text) => parse_cpu_list(text).unwrap_or_else(|e| {
            log::warn!("{}: {e}; not reporting isolated CPUs", path.display());
            Vec::new()
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => {
            log::warn!("{}: {e}; not reporting isolated CPUs", path.display());
            Vec::new()
        }
    }
}

/// Parses a kernel CPU list such as `1,3-5`.
fn parse_cpu_list(text: &str) -> Result<Vec<u32>, String> {
    let mut cpus = Vec::new();
    for part in text.split(',').filter(|p| !p.is_empty()) {
        let number = |s: &str| {
            s.parse::<u32>()
                .map_err(|_| format!("expected a CPU list like 1,3-5, got {text:?}"))
        };
        match part.split_once('-') {
            Some((first, last)) => cpus.extend(number(first)?..=number(last)?),
            None => cpus.push(number(part)?),
        }
    }
    Ok(cpus)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{render, TempDir};

    const STAT: &str = "cpu  17836 0 5741 149424 605 0 120 195 0 0\n\
                        cpu0 7796 0 2577 76352 125 0 34 90 0 0\n\
                        cpu1 10040 3 3163 73071 479 1 85 105 7 9\n\
                        intr 289613 0 0\n\
                        ctxt 374767\n";

    fn cpu(dir: &TempDir) -> Cpu {
        let mut cpu = Cpu::new(dir.path(), dir.path(), &Options::default(), true);
        cpu.ticks_per_second = 100.0;
        cpu
    }

    fn series(text: &str, name: &str) -> Vec<String> {
        text.lines()
            .filter(|l| l.starts_with(&format!("{name}{{")))
            .map(str::to_owned)
            .collect()
    }

    fn options(yaml: &str) -> Options {
        serde_yaml::from_str::<crate::collector::table::Settings>(yaml)
            .map(|s| s.cpu.options)
            .unwrap_or_else(|e| panic!("{yaml}: {e}"))
    }

    #[test]
    fn guest_off_leaves_the_guest_family_out() {
        let dir = TempDir::new();
        dir.write("stat", STAT);
        let options = options("cpu: {guest: false}\n");
        let text = render(&mut Cpu::new(dir.path(), dir.path(), &options, true)).unwrap();
        assert!(!text.contains("guest"), "{text}");
        assert_eq!(series(&text, "node_cpu_seconds_total").len(), 16);
        assert!(Options::default().guest);
    }

    #[test]
    fn info_reads_cpuinfo_and_its_regexes_imply_it() {
        let dir = TempDir::new();
        dir.write("stat", STAT);
        dir.write(
            "cpuinfo",
            "processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu MHz\t\t: 2445.430\n\
             flags\t\t: fpu sse avx\nbugs\t\t: spectre_v1 srso\n",
        );
        let info = |yaml: &str, cpufreq: bool| {
            let options = options(yaml);
            render(&mut Cpu::new(dir.path(), dir.path(), &options, cpufreq)).unwrap()
        };
        let text = info("cpu: {}\n", false);
        assert!(!text.contains("node_cpu_info"), "{text}");
        // The frequency comes from cpuinfo only when cpufreq does not give it.
        let text = info("cpu: {info: true}\n", false);
        assert_eq!(series(&text, "node_cpu_info").len(), 1);
        assert_eq!(
            series(&text, "node_cpu_frequency_hertz"),
            ["node_cpu_frequency_hertz{core=\"\",cpu=\"0\",package=\"\"} 2445430000"]
        );
        assert!(!text.contains("flag_info") && !text.contains("bug_info"), "{text}");
        let text = info("cpu: {info: true}\n", true);
        assert!(!text.contains("node_cpu_frequency_hertz"), "{text}");
        // A flags or bugs regex reads cpuinfo without `info`.
        let text = info("cpu: {info_flags_include: ^(sse|avx)$, info_bugs_include: ''}\n", true);
        assert_eq!(series(&text, "node_cpu_info").len(), 1);
        assert_eq!(
            series(&text, "node_cpu_flag_info"),
            ["node_cpu_flag_info{flag=\"sse\"} 1", "node_cpu_flag_info{flag=\"avx\"} 1"]
        );
        assert!(!text.contains("bug_info"), "{text}");
        let text = info("cpu: {info_bugs_include: .}\n", true);
        assert_eq!(series(&text, "node_cpu_bug_info").len(), 2);
        // A cpuinfo that does not parse fails the collector, naming the line.
        dir.write("cpuinfo", "processor\t: 0\ncpu MHz\t\t: fast\n");
        let options = options("cpu: {info: true}\n");
        let err = render(&mut Cpu::new(dir.path(), dir.path(), &options, true)).unwrap_err();
        assert!(err.to_string().ends_with("cpuinfo line 2: cpu MHz: expected a number, got \"fast\""), "{err}");
    }

    #[test]
    fn a_reload_rebuilds_cpu_when_cpufreq_is_switched() {
        let settings = |yaml: &str| serde_yaml::from_str::<Settings>(yaml).unwrap();
        let cpu = crate::collector::table::find("cpu").unwrap();
        let (on, off) = (settings("cpufreq: true\n"), settings("cpufreq: false\n"));
        assert!((cpu.same_options)(&on, &on));
        assert!(!(cpu.same_options)(&on, &off));
    }

    #[test]
    fn converts_ticks_to_seconds_per_cpu_and_mode() {
        let dir = TempDir::new();
        dir.write("stat", STAT);
        let text = render(&mut cpu(&dir)).unwrap();
        let head = "# HELP node_cpu_seconds_total Seconds the CPUs spent in each mode.\n\
                    # TYPE node_cpu_seconds_total counter\n";
        assert!(text.starts_with(head), "{text}");
        assert_eq!(
            series(&text, "node_cpu_seconds_total")[..8],
            [
                "node_cpu_seconds_total{cpu=\"0\",mode=\"user\"} 77.96",
                "node_cpu_seconds_total{cpu=\"0\",mode=\"nice\"} 0",
                "node_cpu_seconds_total{cpu=\"0\",mode=\"system\"} 25.77",
                "node_cpu_seconds_total{cpu=\"0\",mode=\"idle\"} 763.52",
                "node_cpu_seconds_total{cpu=\"0\",mode=\"iowait\"} 1.25",
                "node_cpu_seconds_total{cpu=\"0\",mode=\"irq\"} 0",
                "node_cpu_seconds_total{cpu=\"0\",mode=\"softirq\"} 0.34",
                "node_cpu_seconds_total{cpu=\"0\",mode=\"steal\"} 0.9",
            ]
        );
        assert_eq!(series(&text, "node_cpu_seconds_total").len(), 16);
        assert!(text.contains(
            "# HELP node_cpu_guest_seconds_total Seconds the CPUs spent in guests (VMs) for each mode.\n\
             # TYPE node_cpu_guest_seconds_total counter\n"
        ));
        assert_eq!(
            series(&text, "node_cpu_guest_seconds_total")[2..],
            [
                "node_cpu_guest_seconds_total{cpu=\"1\",mode=\"user\"} 0.07",
                "node_cpu_guest_seconds_total{cpu=\"1\",mode=\"nice\"} 0.09",
            ]
        );
        // No thermal_throttle and no isolated file: nothing else.
        assert!(
            !text.contains("throttles") && !text.contains("isolated"),
            "{text}"
        );
    }

    #[test]
    fn offline_cpu_is_left_out_and_comes_back() {
        let dir = TempDir::new();
        let mut collector = cpu(&dir);
        dir.write("stat", STAT);
        render(&mut collector).unwrap();
        // cpu0 goes offline: only cpu1 remains, with its own number.
        dir.write(
            "stat",
            &STAT.replace("cpu0 7796 0 2577 76352 125 0 34 90 0 0\n", ""),
        );
        let text = render(&mut collector).unwrap();
        let cpus = series(&text, "node_cpu_seconds_total");
        assert_eq!(cpus.len(), 8);
        assert!(cpus.iter().all(|s| s.contains("cpu=\"1\"")), "{cpus:?}");
        // cpu0 returns with its counters restarted after a replug: taken as they are.
        dir.write(
            "stat",
            &STAT.replace("cpu0 7796 0 2577 76352", "cpu0 5 0 2 40"),
        );
        let text = render(&mut collector).unwrap();
        assert!(text.contains("node_cpu_seconds_total{cpu=\"0\",mode=\"idle\"} 0.4\n"));
        assert!(text.contains("node_cpu_seconds_total{cpu=\"0\",mode=\"user\"} 0.05\n"));
    }

    #[test]
    fn counters_never_go_backwards() {
        let dir = TempDir::new();
        let mut collector = cpu(&dir);
        dir.write("stat", STAT);
        render(&mut collector).unwrap();
        // iowait falls by 1.25 s and idle by 2 s (less than the hotplug threshold).
        dir.write("stat", &STAT.replace("76352 125", "76152 0"));
        let text = render(&mut collector).unwrap();
        assert!(
            text.contains("{cpu=\"0\",mode=\"iowait\"} 1.25\n"),
            "{text}"
        );
        assert!(
            text.contains("{cpu=\"0\",mode=\"idle\"} 763.52\n"),
            "{text}"
        );
        // Idle falling by 3 s or more is a replugged CPU: every mode restarts.
        dir.write(
            "stat",
            &STAT.replace("7796 0 2577 76352 125", "1 0 1 70000 0"),
        );
        let text = render(&mut collector).unwrap();
        assert!(text.contains("{cpu=\"0\",mode=\"idle\"} 700\n"), "{text}");
        assert!(text.contains("{cpu=\"0\",mode=\"user\"} 0.01\n"), "{text}");
        assert!(text.contains("{cpu=\"0\",mode=\"iowait\"} 0\n"), "{text}");
    }

    #[test]
    fn new_cpu_appears() {
        let dir = TempDir::new();
        let mut collector = cpu(&dir);
        dir.write("stat", STAT);
        render(&mut collector).unwrap();
        dir.write("stat", &format!("{STAT}cpu2 1 2 3 4 5 6 7 8 9 10\n"));
        let text = render(&mut collector).unwrap();
        assert_eq!(series(&text, "node_cpu_seconds_total").len(), 24);
        assert!(text.contains("{cpu=\"2\",mode=\"steal\"} 0.08\n"), "{text}");
    }

    #[test]
    fn short_line_reports_zero_for_missing_columns() {
        let dir = TempDir::new();
        dir.write(
            "stat",
            "cpu 1 2 3 4\ncpu0 100 200 300 400 500 600 700 800\n",
        );
        let text = render(&mut cpu(&dir)).unwrap();
        assert!(text.contains("{cpu=\"0\",mode=\"steal\"} 8\n"), "{text}");
        assert!(text.contains("node_cpu_guest_seconds_total{cpu=\"0\",mode=\"nice\"} 0\n"));
    }

    #[test]
    fn huge_tick_counts_stay_finite() {
        let dir = TempDir::new();
        dir.write("stat", "cpu0 18446744073709551615 0 0 0 0 0 0 0 0 0\n");
        let text = render(&mut cpu(&dir)).unwrap();
        assert!(
            text.contains("{cpu=\"0\",mode=\"user\"} 184467440737095520\n"),
            "{text}"
        );
    }

    #[test]
    fn malformed_lines_are_errors_naming_the_line() {
        let dir = TempDir::new();
        for (bad, message) in [
            (
                "cpu0 1 2 x 4\n",
                "line 2: cpu0: expected a tick count, got \"x\"",
            ),
            (
                "cpu0 1 2 3\n",
                "line 2: cpu0: expected at least 4 tick counts, got 3",
            ),
            (
                "cpux 1 2 3 4\n",
                "line 2: expected a CPU number after `cpu`, got \"x\"",
            ),
            (
                "cpu0 1 2 3 -4\n",
                "line 2: cpu0: expected a tick count, got \"-4\"",
            ),
        ] {
            dir.write("stat", &format!("cpu 1 2 3 4\n{bad}"));
            let err = render(&mut cpu(&dir)).unwrap_err().to_string();
            assert!(err.ends_with(message), "{bad:?}: {err}");
        }
        dir.write("stat", "cpu0 1 2 3 4\ncpu0 1 2 3 4\n");
        let err = render(&mut cpu(&dir)).unwrap_err().to_string();
        assert!(err.ends_with("cpu0 is listed twice"), "{err}");
    }

    #[test]
    fn missing_file_is_an_error() {
        let dir = TempDir::new();
        assert!(render(&mut cpu(&dir)).is_err());
    }

    fn write_cpu(dir: &TempDir, id: u32, package: &str, core: &str, counts: (&str, &str)) {
        let base = format!("devices/system/cpu/cpu{id}");
        dir.write(&format!("{base}/topology/physical_package_id"), package);
        dir.write(&format!("{base}/topology/core_id"), core);
        for (file, count) in [("core", counts.0), ("package", counts.1)] {
            if !count.is_empty() {
                let path = format!("{base}/thermal_throttle/{file}_throttle_count");
                dir.write(&path, count);
            }
        }
    }

    #[test]
    fn throttles_are_read_once_per_core_and_package() {
        let dir = TempDir::new();
        let mut stat = String::from("cpu 0 0 0 0\n");
        for id in [0, 1, 2, 10, 11] {
            let _ = writeln!(stat, "cpu{id} 0 0 0 0 0 0 0 0 0 0");
        }
        dir.write("stat", &stat);
        write_cpu(&dir, 0, "0\n", "0\n", ("5\n", "7\n"));
        // cpu1 has only a core count: the package count comes from cpu0.
        write_cpu(&dir, 1, "0\n", "1\n", ("2\n", ""));
        // cpu2 and cpu10 share core 1 of package 1; cpu10 comes first, as in a glob.
        write_cpu(&dir, 2, "1\n", "1\n", ("3\n", "4\n"));
        write_cpu(&dir, 10, "1\n", "1\n", ("9\n", "8\n"));
        // A CPU whose package is unknown is left out.
        write_cpu(&dir, 11, "-1\n", "0\n", ("6\n", "6\n"));
        let text = render(&mut cpu(&dir)).unwrap();
        assert_eq!(
            series(&text, "node_cpu_core_throttles_total"),
            [
                "node_cpu_core_throttles_total{core=\"0\",package=\"0\"} 5",
                "node_cpu_core_throttles_total{core=\"1\",package=\"0\"} 2",
                "node_cpu_core_throttles_total{core=\"1\",package=\"1\"} 9",
            ]
        );
        assert_eq!(
            series(&text, "node_cpu_package_throttles_total"),
            [
                "node_cpu_package_throttles_total{package=\"0\"} 7",
                "node_cpu_package_throttles_total{package=\"1\"} 8",
            ]
        );
        assert!(text.contains(
            "# HELP node_cpu_core_throttles_total Number of times this CPU core has been throttled.\n"
        ));
    }

    #[test]
    fn isolated_cpus_are_read_once() {
        let dir = TempDir::new();
        dir.write("stat", STAT);
        dir.write("devices/system/cpu/isolated", "1,3-4\n");
        let mut collector = cpu(&dir);
        dir.write("devices/system/cpu/isolated", "\n");
        let text = render(&mut collector).unwrap();
        assert_eq!(
            series(&text, "node_cpu_isolated"),
            [
                "node_cpu_isolated{cpu=\"1\"} 1",
                "node_cpu_isolated{cpu=\"3\"} 1",
                "node_cpu_isolated{cpu=\"4\"} 1",
            ]
        );
        assert!(text.contains("# HELP node_cpu_isolated Whether each core is isolated, information from /sys/devices/system/cpu/isolated.\n# TYPE node_cpu_isolated gauge\n"));
        // An empty list (no isolcpus=) exports nothing; a broken one is ignored.
        assert!(!render(&mut cpu(&dir)).unwrap().contains("isolated"));
        dir.write("devices/system/cpu/isolated", "1-x\n");
        assert!(!render(&mut cpu(&dir)).unwrap().contains("isolated"));
    }

    #[test]
    fn online_needs_cpu0s_online_file_then_covers_every_cpu_directory() {
        let dir = TempDir::new();
        dir.write("stat", STAT);
        // x86: cpu0 has no `online`, so there is no family, whatever the others say.
        dir.write("devices/system/cpu/cpu1/online", "1\n");
        let mut collector = cpu(&dir);
        std::fs::create_dir_all(dir.path().join("devices/system/cpu/cpu0")).unwrap();
        assert!(!render(&mut collector).unwrap().contains("node_cpu_online"));
        dir.write("devices/system/cpu/cpu0/online", "1\n");
        dir.write("devices/system/cpu/cpu10/online", "0\n");
        dir.write("devices/system/cpu/cpu2/online", "x\n");
        std::fs::create_dir_all(dir.path().join("devices/system/cpu/cpu3")).unwrap();
        std::fs::create_dir_all(dir.path().join("devices/system/cpu/cpufreq")).unwrap();
        let text = render(&mut collector).unwrap();
        assert_eq!(
            series(&text, "node_cpu_online"),
            [
                "node_cpu_online{cpu=\"0\"} 1",
                "node_cpu_online{cpu=\"1\"} 1",
                "node_cpu_online{cpu=\"10\"} 0",
                "node_cpu_online{cpu=\"2\"} 0",
                "node_cpu_online{cpu=\"3\"} 0",
            ]
        );
        assert!(text.contains(
            "# HELP node_cpu_online CPUs that are online and being scheduled.\n# TYPE node_cpu_online gauge\n"
        ));
        // CPUs unplugged for good leave with their directories.
        std::fs::remove_dir_all(dir.path().join("devices/system/cpu/cpu10")).unwrap();
        let text = render(&mut collector).unwrap();
        assert_eq!(series(&text, "node_cpu_online").len(), 4);
    }

    #[test]
    fn cpu_lists_parse_like_the_kernel_prints_them() {
        assert_eq!(parse_cpu_list("0-2,5,7-7"), Ok(vec![0, 1, 2, 5, 7]));
        assert_eq!(parse_cpu_list(""), Ok(vec![]));
        assert!(parse_cpu_list("1-").is_err());
        assert!(parse_cpu_list("a").is_err());
    }

    #[test]
    fn lexical_order_matches_sorted_names() {
        let mut ids = [2, 10, 1, 0, 100, 11, 4_294_967_295];
        ids.sort_by(|a, b| lexical(*a, *b));
        let mut names: Vec<String> = ids.iter().map(|i| i.to_string()).collect();
        let in_order = names.clone();
        names.sort();
        assert_eq!(names, in_order);
    }

    #[test]
    fn steady_state_reuses_buffers() {
        let dir = TempDir::new();
        dir.write("stat", STAT);
        let mut collector = cpu(&dir);
        render(&mut collector).unwrap();
        render(&mut collector).unwrap();
        let capacities = (collector.parsed.capacity(), collector.exported.capacity());
        for _ in 0..5 {
            render(&mut collector).unwrap();
        }
        assert_eq!(
            capacities,
            (collector.parsed.capacity(), collector.exported.capacity())
        );
    }
}

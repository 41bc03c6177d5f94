//! Malformed and hostile /proc and /sys through the real binary: truncated files,
//! binary garbage, lines of megabytes, files past the 4 MiB cap, numbers past u64,
//! 1e400, -0, NaN and Inf, odd device names, devices vanishing while they are read,
//! and thousands of devices.
//!
//! Every fixture tree under `tests/fixtures/` is merged into one temp tree that
//! `paths.procfs/sysfs/rootfs` point at (all collectors succeed on it), then files are
//! made hostile while the agent runs. For each case: the agent keeps running, the
//! affected collectors report `node_scrape_collector_success 0` and all others 1,
//! each failure and each recovery is logged exactly once (not every cycle), no log
//! line is longer than a few hundred bytes, and every cycle's output is valid text
//! exposition with HELP and TYPE and no series twice.
//!
//! stdout is read as it comes and checked cycle by cycle, never kept whole: the
//! largest case prints about 22 MB a cycle. Run times (debug build, 2 cores): the
//! cases about 20 s, the vanishing devices about 5 s, thousands of devices about 40 s.

use sc_agent_testkit as common;

use common::TempDir;
use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(60);

/// How many collectors run with the default config: every default row of the table.
fn default_collectors() -> usize {
    sc_agent::collector::table::TABLE
        .iter()
        .filter(|d| d.enabled_by_default)
        .count()
}

// ---------------------------------------------------------------------------------
// The tree

/// The fixture trees of all collectors merged into one temp dir.
fn tree() -> TempDir {
    let dir = TempDir::new();
    let mut cases: Vec<_> = std::fs::read_dir(common::fixtures())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    cases.sort();
    for case in cases {
        for sub in ["proc", "sys", "root"] {
            if case.join(sub).is_dir() {
                copy_tree(&case.join(sub), &dir.path().join(sub));
            }
        }
    }
    dir
}

/// Copies `from` into `to`, keeping what `to` already has: where a case has a
/// directory and an earlier one a file or link of the same name (a malformed case's
/// stand-in), the earlier one stays.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        let kind = entry.file_type().unwrap();
        if kind.is_dir() {
            if target.symlink_metadata().is_ok_and(|m| !m.is_dir()) {
                continue;
            }
            copy_tree(&entry.path(), &target);
        } else if kind.is_symlink() {
            if target.symlink_metadata().is_err() {
                let link = std::fs::read_link(entry.path()).unwrap();
                std::os::unix::fs::symlink(link, &target).unwrap();
            }
        } else if !target.exists() {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Replaces whatever is at `path` (file or directory) with a file holding `data`,
/// atomically (write, then rename), so the agent never reads it half written.
fn put(path: &Path, data: &[u8]) {
    let tmp = path.with_extension("hostile-tmp");
    std::fs::write(&tmp, data).unwrap();
    if path.is_dir() {
        std::fs::remove_dir_all(path).unwrap();
    }
    std::fs::rename(&tmp, path).unwrap();
}

/// The default collectors over the tree; those that would ask the kernel over
/// netlink read the tree's files instead.
fn config(dir: &Path, interval: &str) -> PathBuf {
    let path = dir.join("sc-agent.yaml");
    std::fs::write(
        &path,
        format!(
            "vm_id: test-vm\ninstance: test-host\ncollection_interval: {interval}\n\
             paths:\n  procfs: {0}/proc\n  sysfs: {0}/sys\n  rootfs: {0}/root\n\
             collectors:\n  netdev:\n    netlink: false\n  netclass:\n    netlink: false\n  \
             arp:\n    netlink: false\n",
            dir.display()
        ),
    )
    .unwrap();
    path
}

// ---------------------------------------------------------------------------------
// The agent, its output checked cycle by cycle

/// What one cycle printed, checked.
struct Cycle {
    success: BTreeMap<String, f64>,
    problems: Vec<String>,
    series: usize,
    bytes: usize,
    rss_kib: u64,
    hwm_kib: u64,
    /// utime + stime of the agent, in clock ticks.
    cpu_ticks: u64,
    /// The exposition, kept for the last few cycles only.
    text: Option<String>,
}

impl Cycle {
    fn failing(&self) -> Vec<&str> {
        self.success
            .iter()
            .filter(|(_, v)| **v != 1.0)
            .map(|(c, _)| c.as_str())
            .collect()
    }

    fn text(&self) -> &str {
        self.text.as_deref().expect("a recent cycle's text")
    }
}

struct Run {
    child: Child,
    cycles: Arc<Mutex<Vec<Cycle>>>,
    stderr: Arc<Mutex<String>>,
}

impl Run {
    fn start(config: &Path) -> Run {
        let mut command = Command::new(common::bin());
        for (name, _) in std::env::vars().filter(|(n, _)| n.starts_with("SC_")) {
            command.env_remove(name);
        }
        let mut child = command
            .args(["--config", config.to_str().unwrap()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn sc-agent");
        let pid = child.id();
        let cycles = Arc::new(Mutex::new(Vec::new()));
        let stdout = child.stdout.take().unwrap();
        let sink = Arc::clone(&cycles);
        std::thread::spawn(move || read_cycles(stdout, pid, &sink));
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut pipe = child.stderr.take().unwrap();
        let err_sink = Arc::clone(&stderr);
        std::thread::spawn(move || {
            let mut chunk = [0u8; 8192];
            while let Ok(n) = pipe.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                err_sink
                    .lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&chunk[..n]));
            }
        });
        Run {
            child,
            cycles,
            stderr,
        }
    }

    fn count(&self) -> usize {
        self.cycles.lock().unwrap().len()
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    fn with<R>(&self, f: impl FnOnce(&[Cycle]) -> R) -> R {
        f(&self.cycles.lock().unwrap())
    }

    fn assert_alive(&mut self) {
        if let Some(status) = self.child.try_wait().unwrap() {
            panic!("sc-agent exited ({status}):\n{}", self.stderr());
        }
    }

    /// Waits until there are `n` cycles.
    fn wait_count(&mut self, n: usize, what: &str) {
        self.wait_count_within(n, WAIT, what);
    }

    /// Like [`Run::wait_count`], with a timeout of the caller's: the cycles over
    /// thousands of devices take seconds each in a debug build, more on a busy
    /// machine (a timeout against a hang, not a performance bound).
    fn wait_count_within(&mut self, n: usize, wait: Duration, what: &str) {
        let start = Instant::now();
        while self.count() < n {
            self.assert_alive();
            assert!(
                start.elapsed() < wait,
                "{what}: {} of {n} cycles; stderr:\n{}",
                self.count(),
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits for a cycle after the first `from` whose failing collectors are exactly
    /// `failing`; returns its index.
    fn wait_failing(&mut self, from: usize, failing: &[&str], what: &str) -> usize {
        let start = Instant::now();
        loop {
            self.assert_alive();
            let found = self.with(|cycles| {
                (from..cycles.len()).find(|&i| {
                    let mut have = cycles[i].failing();
                    have.sort_unstable();
                    let mut want = failing.to_vec();
                    want.sort_unstable();
                    have == want
                })
            });
            if let Some(i) = found {
                return i;
            }
            if start.elapsed() > WAIT {
                let last = self.with(|c| c.last().map(|c| format!("{:?}", c.failing())));
                panic!(
                    "{what}: no cycle with exactly {failing:?} failing (last: {last:?}); \
                     stderr:\n{}",
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Splits stdout into cycles (each ends with `sc_agent_build_info`) and checks each.
fn read_cycles(stdout: impl Read, pid: u32, cycles: &Mutex<Vec<Cycle>>) {
    const KEEP_TEXT: usize = 8;
    let mut reader = BufReader::with_capacity(1 << 16, stdout);
    let mut current = String::new();
    let mut line = String::new();
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        current.push_str(&line);
        if !line.starts_with("sc_agent_build_info{") {
            continue;
        }
        let (rss_kib, hwm_kib) = (
            common::status_kib(pid, "VmRSS").unwrap_or(0),
            common::status_kib(pid, "VmHWM").unwrap_or(0),
        );
        let cpu_ticks = cpu_ticks(pid);
        let index = cycles.lock().unwrap().len();
        // Checking 20 MB of text takes longer than printing it in a debug build: big
        // cycles are checked one in five, and their collectors' success always.
        let (success, problems, series) = if current.len() < (1 << 20) || index % 5 == 4 {
            check_exposition(&current)
        } else {
            (success_only(&current), Vec::new(), 0)
        };
        let mut cycles = cycles.lock().unwrap();
        let keep = current.len() < (1 << 20);
        cycles.push(Cycle {
            success,
            problems,
            series,
            bytes: current.len(),
            rss_kib,
            hwm_kib,
            cpu_ticks,
            text: keep.then(|| current.clone()),
        });
        let len = cycles.len();
        if len > KEEP_TEXT {
            cycles[len - KEEP_TEXT - 1].text = None;
        }
        drop(cycles);
        current.clear();
        if !keep {
            current.shrink_to(1 << 16);
        }
    }
}

/// The `node_scrape_collector_success` values of an exposition, unchecked.
fn success_only(text: &str) -> BTreeMap<String, f64> {
    let start = text
        .find("\nnode_scrape_collector_success{")
        .unwrap_or(text.len());
    text[start..]
        .lines()
        .filter_map(|l| l.strip_prefix("node_scrape_collector_success{collector=\""))
        .filter_map(|l| {
            let (name, rest) = l.split_once('"')?;
            Some((name.to_owned(), rest.rsplit(' ').next()?.parse().ok()?))
        })
        .collect()
}

/// utime + stime of `pid` in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(") ")
        .map(|(_, rest)| rest.split(' ').collect())
        .unwrap_or_default();
    let field = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    field(11) + field(12)
}

/// Checks one exposition strictly: every sample's family has HELP then TYPE before
/// it, families and series appear once, names and labels are well formed, values
/// are numbers (or NaN, +Inf, -Inf). Returns the collectors' success values, the
/// problems found (at most 10) and the number of series.
fn check_exposition(text: &str) -> (BTreeMap<String, f64>, Vec<String>, usize) {
    let mut problems = Vec::new();
    let mut problem = |p: String| {
        if problems.len() < 10 {
            problems.push(p);
        }
    };
    let mut families: HashSet<&str> = HashSet::new();
    let mut family: Option<(&str, bool)> = None; // name, TYPE seen
    let mut series: HashSet<&str> = HashSet::new();
    let mut success = BTreeMap::new();
    let mut count = 0;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap_or_default();
            if !families.insert(name) {
                problem(format!("family {name} appears twice"));
            }
            family = Some((name, false));
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, ""));
            if family != Some((name, false)) {
                problem(format!("TYPE {name} without its HELP just before"));
            }
            if !["counter", "gauge", "untyped"].contains(&kind) {
                problem(format!("TYPE {name} {kind:?}"));
            }
            family = Some((name, true));
            continue;
        }
        if line.is_empty() || line.starts_with('#') {
            problem(format!("unexpected line {line:?}"));
            continue;
        }
        count += 1;
        let Some((key, value)) = line.rsplit_once(' ') else {
            problem(format!("no value in {line:?}"));
            continue;
        };
        let number = match value {
            "NaN" => Some(f64::NAN),
            "+Inf" => Some(f64::INFINITY),
            "-Inf" => Some(f64::NEG_INFINITY),
            v if v
                .bytes()
                .all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b)) =>
            {
                v.parse::<f64>().ok()
            }
            _ => None,
        };
        let Some(number) = number else {
            problem(format!("bad value in {line:?}"));
            continue;
        };
        let (name, labels) = match key.split_once('{') {
            Some((name, labels)) => (name, Some(labels)),
            None => (key, None),
        };
        if family != Some((name, true)) {
            problem(format!("{name} outside its family ({family:?})"));
        }
        let mut label_values = BTreeMap::new();
        if let Some(labels) = labels {
            match parse_labels(labels) {
                Ok(parsed) => label_values = parsed,
                Err(e) => problem(format!("{e} in {line:?}")),
            }
        }
        if !series.insert(key) {
            problem(format!("series twice: {key}"));
        }
        if name == "node_scrape_collector_success" {
            if let Some(collector) = label_values.get("collector") {
                success.insert(collector.clone(), number);
            }
        }
    }
    (success, problems, count)
}

/// `a="x",b="y\"z"}` → labels; errors on anything else.
fn parse_labels(text: &str) -> Result<BTreeMap<String, String>, String> {
    let mut labels = BTreeMap::new();
    let mut chars = text.chars().peekable();
    loop {
        let name: String = std::iter::from_fn(|| chars.next_if(|c| *c != '=')).collect();
        let valid = name
            .chars()
            .enumerate()
            .all(|(i, c)| c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit()));
        if name.is_empty() || !valid {
            return Err(format!("bad label name {name:?}"));
        }
        if chars.next() != Some('=') || chars.next() != Some('"') {
            return Err(format!("no =\" after {name}"));
        }
        let mut value = String::new();
        loop {
            match chars.next() {
                Some('\\') => match chars.next() {
                    Some('n') => value.push('\n'),
                    Some('\\') => value.push('\\'),
                    Some('"') => value.push('"'),
                    other => return Err(format!("bad escape \\{other:?}")),
                },
                Some('"') => break,
                Some(c) => value.push(c),
                None => return Err("unterminated label value".into()),
            }
        }
        if labels.insert(name.clone(), value).is_some() {
            return Err(format!("label {name} twice"));
        }
        match chars.next() {
            Some(',') => continue,
            Some('}') if chars.peek().is_none() => return Ok(labels),
            other => return Err(format!("{other:?} after a label")),
        }
    }
}

fn count(text: &str, needle: &str) -> usize {
    text.matches(needle).count()
}

// ---------------------------------------------------------------------------------
// The cases

/// A check on the text of a cycle.
type Check = Box<dyn Fn(&str)>;

/// One hostile change: what to do to the tree, and which collectors then fail.
struct Case {
    what: &'static str,
    failing: &'static [&'static str],
    /// Paths (relative to the tree) the change touches, restored afterwards.
    touches: Vec<&'static str>,
    apply: Box<dyn Fn(&Path)>,
    /// A check on the text of a cycle with the change in place.
    check: Option<Check>,
}

fn case(
    what: &'static str,
    failing: &'static [&'static str],
    path: &'static str,
    content: impl Fn(&str) -> Vec<u8> + 'static,
) -> Case {
    Case {
        what,
        failing,
        touches: vec![path],
        apply: Box::new(move |root| {
            let path = root.join(path);
            let old = std::fs::read_to_string(&path).unwrap_or_default();
            put(&path, &content(&old));
        }),
        check: None,
    }
}

fn with_check(mut case: Case, check: impl Fn(&str) + 'static) -> Case {
    case.check = Some(Box::new(check));
    case
}

/// The first line of `text` with a value of `name` whose labels include `needle`.
fn sample_line<'a>(text: &'a str, name: &str, needle: &str) -> &'a str {
    text.lines()
        .find(|l| l.starts_with(&format!("{name}{{")) && l.contains(needle))
        .unwrap_or_else(|| panic!("no {name} with {needle}"))
}

/// `/proc/net/dev` with one more line.
fn netdev_line(old: &str, extra: &str) -> Vec<u8> {
    format!("{old}{extra}\n").into_bytes()
}

fn cases() -> Vec<Case> {
    vec![
        case(
            "/proc/stat cut in the middle",
            &["stat"],
            "proc/stat",
            |old| old.as_bytes()[..old.len() / 2].to_vec(),
        ),
        case(
            "/proc/meminfo cut in the middle of a line",
            &["meminfo"],
            "proc/meminfo",
            |old| old.as_bytes()[..40].to_vec(),
        ),
        case(
            "binary garbage (not UTF-8) in /proc/meminfo",
            &["meminfo"],
            "proc/meminfo",
            |_| {
                (0..4096u32)
                    .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
                    .collect()
            },
        ),
        case(
            "NUL and control bytes in /proc/net/dev",
            &["netdev"],
            "proc/net/dev",
            |old| netdev_line(old, "\0\0\x01eth9:\0 1 2\x7f\x1b[2J"),
        ),
        case(
            "a line of 3 MiB in /proc/net/dev",
            &["netdev"],
            "proc/net/dev",
            move |old| netdev_line(old, &"x".repeat(3 << 20)),
        ),
        case(
            "a number of 3 MiB in /proc/net/dev",
            &["netdev"],
            "proc/net/dev",
            move |old| {
                netdev_line(
                    old,
                    &format!(
                        "big0: {} 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1",
                        "9".repeat(3 << 20)
                    ),
                )
            },
        ),
        case(
            "/proc/vmstat of 5 MiB, past the 4 MiB cap",
            &["vmstat"],
            "proc/vmstat",
            |old| format!("{old}{}", "pgfault 1\n".repeat(500_000)).into_bytes(),
        ),
        case(
            "/proc/diskstats of 3.5 MiB (short lines, skipped), under the cap",
            &[],
            "proc/diskstats",
            |old| format!("{old}{}", " 1 2 x\n".repeat(520_000)).into_bytes(),
        ),
        with_check(
            case(
                "u64::MAX counters in /proc/net/dev",
                &[],
                "proc/net/dev",
                |old| {
                    netdev_line(
                        old,
                        &format!("max0: {} 0 0 0 0 0 0 0 {0} 0 0 0 0 0 0 0", u64::MAX),
                    )
                },
            ),
            |text| {
                let line = sample_line(text, "node_network_receive_bytes_total", "device=\"max0\"");
                assert!(line.ends_with(" 18446744073709552000"), "{line}");
            },
        ),
        case(
            "a counter past u64::MAX in /proc/net/dev",
            &["netdev"],
            "proc/net/dev",
            |old| {
                netdev_line(
                    old,
                    "over0: 18446744073709551616 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0",
                )
            },
        ),
        case(
            "1e400 in /proc/loadavg",
            &["loadavg"],
            "proc/loadavg",
            |_| b"1e400 1.05 12.50 2/345 6789\n".to_vec(),
        ),
        case(
            "NaN and Inf in /proc/loadavg",
            &["loadavg"],
            "proc/loadavg",
            |_| b"NaN inf -Infinity 2/345 6789\n".to_vec(),
        ),
        with_check(
            case("-0 in /proc/loadavg", &[], "proc/loadavg", |_| {
                b"-0 1.05 12.50 2/345 6789\n".to_vec()
            }),
            |text| assert!(text.contains("\nnode_load1{"), "{text}"),
        ),
        case(
            "inf and nan in /proc/vmstat",
            &["vmstat"],
            "proc/vmstat",
            |old| format!("{old}pgfault inf\nnr_free_pages nan\n").into_bytes(),
        ),
        case(
            "1e400 in /proc/net/netstat",
            &["netstat"],
            "proc/net/netstat",
            |old| {
                old.replacen("TcpExt: 101000 ", "TcpExt: 1e400 ", 1)
                    .into_bytes()
            },
        ),
        case(
            "an empty /proc/loadavg",
            &["loadavg"],
            "proc/loadavg",
            |_| Vec::new(),
        ),
        Case {
            what: "/proc/loadavg is a directory",
            failing: &["loadavg"],
            touches: vec!["proc/loadavg"],
            apply: Box::new(|root| {
                let path = root.join("proc/loadavg");
                std::fs::remove_file(&path).unwrap();
                std::fs::create_dir(&path).unwrap();
            }),
            check: None,
        },
        case(
            "a line of five fields in /proc/1/mountinfo",
            &["filesystem"],
            "proc/1/mountinfo",
            |old| format!("{old}40 22 8:1 / /y\n").into_bytes(),
        ),
        case(
            "garbage in /proc/pressure/cpu",
            &["pressure"],
            "proc/pressure/cpu",
            |_| b"some avg10=x\n\xff\n".to_vec(),
        ),
        case(
            "a number past u64::MAX in entropy_avail",
            &["entropy"],
            "proc/sys/kernel/random/entropy_avail",
            |_| b"99999999999999999999999\n".to_vec(),
        ),
        case(
            "two numbers in file-nr",
            &["filefd"],
            "proc/sys/fs/file-nr",
            |_| b"1 2\n".to_vec(),
        ),
        case(
            "a truncated /proc/net/sockstat",
            &["sockstat"],
            "proc/net/sockstat",
            |_| b"sockets: used\n".to_vec(),
        ),
        case(
            "a line of 3 MiB in /proc/net/arp",
            &["arp"],
            "proc/net/arp",
            |old| format!("{old}{}\n", "x".repeat(3 << 20)).into_bytes(),
        ),
        with_check(
            case(
                "quotes, backslashes and braces in an ARP device name",
                &[],
                "proc/net/arp",
                |old| {
                    format!("{old}192.0.2.77 0x1 0x2 02:00:00:00:00:77 * ar\"p\\{{x}}\n")
                        .into_bytes()
                },
            ),
            |text| {
                let line = sample_line(text, "node_arp_entries", "ar");
                let labels =
                    parse_labels(line.split_once('{').unwrap().1.rsplit_once(' ').unwrap().0)
                        .unwrap();
                assert_eq!(labels["device"], "ar\"p\\{x}", "{line}");
            },
        ),
        case(
            "NaN in a netclass attribute",
            &["netclass"],
            "sys/class/net/eth0/mtu",
            |_| b"NaN\n".to_vec(),
        ),
        Case {
            what: "the same device twice in /proc/net/dev and /proc/diskstats",
            failing: &[],
            touches: vec!["proc/net/dev", "proc/diskstats"],
            apply: Box::new(|root| {
                for (file, skip) in [("proc/net/dev", 2), ("proc/diskstats", 1)] {
                    let path = root.join(file);
                    let old = std::fs::read_to_string(&path).unwrap();
                    let again = old.lines().nth(skip).unwrap().to_owned();
                    put(&path, format!("{old}{again}\n").as_bytes());
                }
            }),
            check: None,
        },
        with_check(
            case(
                "quotes, backslashes and braces in a device name",
                &[],
                "proc/net/dev",
                |old| netdev_line(old, "ev\"il\\d{e}v: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16"),
            ),
            |text| {
                let line = sample_line(text, "node_network_receive_bytes_total", "il");
                let labels =
                    parse_labels(line.split_once('{').unwrap().1.rsplit_once(' ').unwrap().0)
                        .unwrap();
                assert_eq!(labels["device"], "ev\"il\\d{e}v", "{line}");
            },
        ),
        with_check(
            case(
                "a line break and quotes in ifalias",
                &[],
                "sys/class/net/eth0/ifalias",
                |_| b"line1\nline2 \"q\" \\ end\n".to_vec(),
            ),
            |text| {
                let line = sample_line(text, "node_network_info", "device=\"eth0\"");
                let labels =
                    parse_labels(line.split_once('{').unwrap().1.rsplit_once(' ').unwrap().0)
                        .unwrap();
                assert_eq!(labels["ifalias"], "line1\nline2 \"q\" \\ end", "{line}");
            },
        ),
        // Once more: fail → recover → fail logs "failed" twice over the run.
        case(
            "a line of 3 MiB in /proc/net/dev, again",
            &["netdev"],
            "proc/net/dev",
            move |old| netdev_line(old, &"y".repeat(3 << 20)),
        ),
    ]
}

#[test]
fn hostile_files_fail_only_their_collector_and_are_logged_once_per_transition() {
    let tree = tree();
    let root = tree.path();
    let mut run = Run::start(&config(root, "100ms"));
    run.wait_count(2, "start");
    run.wait_failing(0, &[], "all collectors succeed on the merged fixtures");
    let mut failures: BTreeMap<&str, usize> = BTreeMap::new();
    for case in cases() {
        let what = case.what;
        let saved: Vec<(PathBuf, Vec<u8>)> = case
            .touches
            .iter()
            .map(|p| (root.join(p), std::fs::read(root.join(p)).unwrap()))
            .collect();
        let stderr = run.stderr();
        let from = run.count();
        (case.apply)(root);
        // A cycle with the change in place, then three more: the state holds.
        let at = if case.failing.is_empty() {
            run.wait_count(from + 2, what);
            run.wait_failing(from + 1, &[], what)
        } else {
            run.wait_failing(from, case.failing, what)
        };
        run.wait_count(at + 4, what);
        run.with(|cycles| {
            for cycle in &cycles[at..] {
                let mut failing = cycle.failing();
                failing.sort_unstable();
                let mut want = case.failing.to_vec();
                want.sort_unstable();
                assert_eq!(failing, want, "{what}");
                assert_eq!(cycle.success.len(), default_collectors(), "{what}");
            }
            if let Some(check) = &case.check {
                check(cycles[at + 3].text());
            }
        });
        let logged = run.stderr()[stderr.len()..].to_owned();
        for collector in case.failing {
            assert_eq!(
                count(&logged, &format!("collector {collector} failed")),
                1,
                "{what}: one warning per failure, not one per cycle:\n{logged}"
            );
            *failures.entry(collector).or_default() += 1;
        }
        // Put it back: the collectors recover, and say so once.
        let stderr = run.stderr();
        for (path, data) in &saved {
            put(path, data);
        }
        let from = run.count();
        let back = run.wait_failing(from, &[], what);
        run.wait_count(back + 2, what);
        let logged = run.stderr()[stderr.len()..].to_owned();
        for collector in case.failing {
            assert_eq!(
                count(&logged, &format!("collector {collector} recovered")),
                1,
                "{what}:\n{logged}"
            );
        }
    }
    run.assert_alive();
    let stderr = run.stderr();
    for (collector, times) in &failures {
        assert_eq!(
            count(&stderr, &format!("collector {collector} failed")),
            *times,
            "{stderr}"
        );
    }
    assert!(failures["netdev"] >= 2, "fail, recover, fail again");
    for line in stderr.lines() {
        assert!(line.len() < 1024, "a log line of {} bytes", line.len());
    }
    run.with(|cycles| {
        for (i, cycle) in cycles.iter().enumerate() {
            assert!(cycle.problems.is_empty(), "cycle {i}: {:?}", cycle.problems);
        }
    });
}

#[test]
fn devices_vanishing_while_they_are_read_never_fail_a_collector() {
    let tree = tree();
    let root = tree.path().to_owned();
    let net = root.join("sys/class/net");
    let staging = root.join("staging");
    std::fs::create_dir_all(&staging).unwrap();
    const DEVICES: usize = 40;
    for i in 0..DEVICES {
        copy_tree(&net.join("eth0"), &net.join(format!("veth{i}")));
    }
    let mut run = Run::start(&config(&root, "20ms"));
    run.wait_count(2, "start");
    // Devices disappear (atomically, as from sysfs) and come back, nonstop.
    let stop = Arc::new(AtomicBool::new(false));
    let churn = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut flips = 0u64;
            while !stop.load(Ordering::SeqCst) {
                let i = flips as usize % DEVICES;
                let live = net.join(format!("veth{i}"));
                let gone = staging.join(format!("veth{i}"));
                std::fs::rename(&live, &gone).unwrap();
                std::thread::yield_now();
                std::fs::rename(&gone, &live).unwrap();
                flips += 1;
            }
            flips
        })
    };
    let from = run.count();
    run.wait_count(from + 60, "cycles while devices come and go");
    stop.store(true, Ordering::SeqCst);
    let flips = churn.join().unwrap();
    assert!(flips > 1000, "only {flips} devices vanished");
    run.assert_alive();
    run.with(|cycles| {
        for (i, cycle) in cycles.iter().enumerate() {
            assert!(cycle.problems.is_empty(), "cycle {i}: {:?}", cycle.problems);
            assert!(
                cycle.failing().is_empty(),
                "cycle {i}: {:?}",
                cycle.failing()
            );
        }
    });
    let stderr = run.stderr();
    assert!(!stderr.contains("failed"), "{stderr}");
}

#[test]
fn thousands_of_devices_keep_memory_bounded_and_flat() {
    const NETDEV: usize = 5_000;
    const DISKS: usize = 5_000;
    const SYSFS_NET: usize = 2_000;
    const MOUNTS: usize = 2_000;
    let tree = tree();
    let root = tree.path();
    let mut dev = std::fs::read_to_string(root.join("proc/net/dev")).unwrap();
    let mut disks = String::new();
    let mut mounts = std::fs::read_to_string(root.join("proc/1/mountinfo")).unwrap();
    for i in 0..NETDEV {
        dev.push_str(&format!(
            "  veth{i:05}: {} {i} 0 0 0 0 0 0 {} {i} 0 0 0 0 0 0\n",
            i * 1000,
            i * 2000
        ));
    }
    for i in 0..DISKS {
        disks.push_str(&format!(
            " 254 {i} vd{i:05}x {i} 10625 9724978 115911 22469 43281 14299728 151512 0 \
             29952 278130 14782 53 4836352 8672 1233 2032\n"
        ));
    }
    for i in 0..MOUNTS {
        mounts.push_str(&format!(
            "{} 22 8:{i} / /mnt/m{i:05} rw shared:1 - ext4 /dev/m{i} rw\n",
            100 + i
        ));
    }
    put(&root.join("proc/net/dev"), dev.as_bytes());
    put(&root.join("proc/diskstats"), disks.as_bytes());
    put(&root.join("proc/1/mountinfo"), mounts.as_bytes());
    // As in sysfs, class/net entries are symlinks to the device directories (here
    // all to one: copying 50,000 files would take longer than the test).
    let net = root.join("sys/class/net");
    for i in 0..SYSFS_NET {
        std::os::unix::fs::symlink("eth0", net.join(format!("veth{i:05}"))).unwrap();
    }
    // Back to back: a cycle takes longer than the interval.
    let mut run = Run::start(&config(root, "10ms"));
    const WARM: usize = 5;
    const LAST: usize = 20;
    run.wait_count_within(LAST, WAIT * 4, "cycles over thousands of devices");
    run.assert_alive();
    run.with(|cycles| {
        for (i, cycle) in cycles.iter().enumerate() {
            assert!(cycle.problems.is_empty(), "cycle {i}: {:?}", cycle.problems);
            assert!(
                cycle.failing().is_empty(),
                "cycle {i}: {:?}",
                cycle.failing()
            );
        }
        let (warm, last) = (&cycles[WARM - 1], &cycles[LAST - 1]);
        let per_cycle_ms = (last.cpu_ticks - warm.cpu_ticks) as f64 * 10.0 / (LAST - WARM) as f64;
        eprintln!(
            "thousands of devices: {} series, {} bytes a cycle; VmRSS {} KiB at cycle {WARM}, \
             {} KiB at cycle {LAST}; VmHWM {} KiB; CPU {per_cycle_ms:.0} ms a cycle (debug build)",
            last.series, last.bytes, warm.rss_kib, last.rss_kib, last.hwm_kib
        );
        assert!(last.bytes > 15 << 20, "{} bytes", last.bytes);
        // Bounded: the batch, its text and the read buffers for ~212,000 series
        // (22 MB of text a cycle) fit in this; measured 44 MiB (debug build, glibc).
        assert!(
            last.hwm_kib < 96 << 10,
            "VmHWM {} KiB over thousands of devices",
            last.hwm_kib
        );
        // Flat: what cycle 5 needed is what cycle 20 needs.
        assert!(
            last.rss_kib <= warm.rss_kib + (4 << 10),
            "VmRSS grew from {} KiB (cycle {WARM}) to {} KiB (cycle {LAST})",
            warm.rss_kib,
            last.rss_kib
        );
        assert!(
            last.hwm_kib <= warm.hwm_kib + (4 << 10),
            "VmHWM grew from {} KiB to {} KiB",
            warm.hwm_kib,
            last.hwm_kib
        );
    });
    assert!(!run.stderr().contains("failed"), "{}", run.stderr());
}

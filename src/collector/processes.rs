//! `node_processes_*`: how many processes and threads the machine runs, in which
//! states, and the kernel's limits on both, as node_exporter 1.12's `processes`
//! collector reports them (off by default there, and here).
//!
//! What it reads, as node_exporter does:
//!
//! - `<procfs>/<pid>/stat` of every entry of /proc named by a number: each one read is
//!   one of `node_processes_pids`, its state (field 3) counts in
//!   `node_processes_state{state}`, its `num_threads` (field 20) adds to
//!   `node_processes_threads`;
//! - the threads listed in `<procfs>/<pid>/task/`: `node_processes_threads_state
//!   {thread_state}` counts them by state, the process's own thread (tid = pid) with
//!   the process's state, the others by their `task/<tid>/stat`;
//! - `<procfs>/sys/kernel/threads-max` and `pid_max`: `node_processes_max_threads`
//!   and `node_processes_max_processes`.
//!
//! A process or thread that exits while it is read (ENOENT or ESRCH on its directory
//! or its `stat`) is skipped, as node_exporter skips it. Any other error, a `stat`
//! that does not parse (procfs's reading: the comm between the first `(` and the last
//! `)`, then the state and the numbers up to field 44) or a limit that is not a
//! whole number fails the collector.
//!
//! **Bounded work.** One walk of /proc a cycle: directories listed with getdents64
//! into a kept buffer ([`listing`]), each `stat` read with one read(2) into a kept
//! 4 KiB buffer and parsed where it lies, so a cycle allocates nothing per process
//! once the buffers have grown. `walk_limit` (sc-agent's option; node_exporter reads
//! every file) caps the `stat` files read in one cycle, processes first, then the
//! threads of the multi-threaded ones. Past it the walk stops: the families report
//! what was counted up to there (during a fork bomb `node_processes_pids` reads the
//! limit), the collector still succeeds, and a warning is logged when a cycle first
//! reaches the limit (an info line when one no longer does).
//!
//! **Differences from node_exporter**, each to bound the work or the input:
//!
//! - A process whose `num_threads` is at most 1 has its `task/` left unlisted: the
//!   kernel lists one thread there, the process itself, counted with the process's
//!   state as node_exporter counts it. A thread started between the two reads is
//!   missed (node_exporter would count it), and in a tree without `task/` directories
//!   (never the kernel's) each process still counts its own thread, where
//!   node_exporter counts none. This saves three system calls per single-threaded
//!   process, most of a machine's.
//! - The threads are read after all processes, not after each one: the counts are
//!   the same but for processes that start or exit meanwhile.
//! - `stat` is one read(2) of less than 4 KiB (the kernel writes under 1 KiB: a comm
//!   of at most 64 bytes and 52 numbers); procfs reads up to 1 MiB. Its numbers must
//!   be decimal, optionally signed, and only `num_threads` is range-checked (as an
//!   i64); Go's `Fscan` also takes `0x` and `_` and range-checks every field.
//! - More than [`MAX_STATES`] different states in one cycle (a kernel has about a
//!   dozen) is an error.
//! - On an error nothing of the cycle is reported; node_exporter keeps what it sent
//!   before the error (the thread count).

mod listing;

use super::{parse_uint, read_value, Build, CollectError, Collector, Context};
use crate::batch::{Batch, Kind};
use crate::config::collectors;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// The default `walk_limit`: twice the default `pid_max` of a machine with at most 32
/// CPUs (a fork bomb stops near the per-user process limit, half of threads-max),
/// and a busy node's processes and threads (5,000 and 40,000) fit under it. Reaching
/// it costs about 1.1 s of CPU on the 2-core VM this was measured on (17 µs a file).
pub const WALK_LIMIT: usize = 65_536;

/// `collectors.processes`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Options {
    /// The most `stat` files (the processes', then their threads') read in one cycle.
    pub walk_limit: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            walk_limit: WALK_LIMIT,
        }
    }
}

impl collectors::Options for Options {
    fn check(&self) -> Result<(), String> {
        if self.walk_limit == 0 {
            return Err("walk_limit: expected at least 1".to_owned());
        }
        Ok(())
    }
}

/// The largest `stat` read; one this long or longer is refused.
const STAT_BYTES: usize = 4096;

/// The last field of `stat` procfs scans (`cguest_time`, Linux 2.6.24).
const LAST_FIELD: usize = 44;

/// The field of `stat` holding the number of threads.
const NUM_THREADS: usize = 20;

/// The most different states counted in one cycle.
pub const MAX_STATES: usize = 64;

pub struct Processes {
    procfs: PathBuf,
    threads_max: PathBuf,
    pid_max: PathBuf,
    walk_limit: usize,
    /// getdents64's buffer, for /proc and for each `task/`.
    listing: Vec<u8>,
    pids: Vec<u32>,
    tids: Vec<u32>,
    /// The processes with more than one thread, whose `task/` is read.
    multithreaded: Vec<u32>,
    reader: StatReader,
    value: String,
    counts: Counts,
    /// Whether the last cycle stopped at `walk_limit`.
    limited: bool,
}

/// One cycle's counts.
#[derive(Default)]
struct Counts {
    pids: u64,
    threads: i64,
    states: States,
    thread_states: States,
}

impl Processes {
    pub fn new(procfs: &Path, options: &Options) -> Self {
        Processes {
            procfs: procfs.to_path_buf(),
            threads_max: procfs.join("sys/kernel/threads-max"),
            pid_max: procfs.join("sys/kernel/pid_max"),
            walk_limit: options.walk_limit.max(1),
            listing: Vec::new(),
            pids: Vec::new(),
            tids: Vec::new(),
            multithreaded: Vec::new(),
            reader: StatReader::default(),
            value: String::new(),
            counts: Counts::default(),
            limited: false,
        }
    }

    /// Counts the processes and threads; returns whether the walk stopped at the limit.
    fn walk(&mut self) -> Result<bool, CollectError> {
        let counts = &mut self.counts;
        counts.pids = 0;
        counts.threads = 0;
        counts.states.reset();
        counts.thread_states.reset();
        let listed_all = listing::numbered_entries(
            &self.procfs,
            &mut self.listing,
            &mut self.pids,
            self.walk_limit,
        )
        .map_err(|e| CollectError::io(&self.procfs, &e))?;
        let mut left = self.walk_limit.saturating_sub(self.pids.len());

        self.multithreaded.clear();
        for &pid in &self.pids {
            let Some(stat) = self.reader.read(&self.procfs, pid, None)? else {
                continue;
            };
            counts.pids += 1;
            counts.threads = counts.threads.saturating_add(stat.threads);
            let too_many = |e| CollectError::new(format!("{}: {e}", self.procfs.display()));
            counts.states.add(stat.state).map_err(too_many)?;
            counts.thread_states.add(stat.state).map_err(too_many)?;
            if stat.threads > 1 {
                self.multithreaded.push(pid);
            }
        }

        for &pid in &self.multithreaded {
            let tasks = self.reader.task_dir(&self.procfs, pid);
            // The process's own thread, counted already, is listed too.
            let listed = match listing::numbered_entries(
                tasks,
                &mut self.listing,
                &mut self.tids,
                left.saturating_add(1),
            ) {
                Ok(listed) => listed,
                Err(e) if vanished(&e) => continue,
                Err(e) => return Err(CollectError::io(tasks, &e)),
            };
            for &tid in self.tids.iter().filter(|tid| **tid != pid) {
                if left == 0 {
                    return Ok(true);
                }
                left -= 1;
                let Some(stat) = self.reader.read(&self.procfs, pid, Some(tid))? else {
                    continue;
                };
                let too_many = |e| CollectError::new(format!("{}: {e}", self.procfs.display()));
                counts.thread_states.add(stat.state).map_err(too_many)?;
            }
            if !listed {
                return Ok(true);
            }
        }
        Ok(!listed_all)
    }

    /// A `sys/kernel` limit, read as node_exporter's `readUintFromFile` reads it.
    fn limit(path: &Path, buf: &mut String) -> Result<f64, CollectError> {
        let text = read_value(path, buf).map_err(|e| CollectError::io(path, &e))?;
        parse_uint(path, text).map(|value| value as f64)
    }

    /// Logs when cycles start and stop reaching the walk limit.
    fn note_limit(&mut self, limited: bool) {
        if limited && !self.limited {
            log::warn!(
                "processes: more than {} processes and threads; counting the first {} only \
                 (collectors.processes.walk_limit)",
                self.walk_limit,
                self.walk_limit
            );
        } else if !limited && self.limited {
            log::info!("processes: under the walk limit again, counting every process");
        }
        self.limited = limited;
    }
}

/// Reads `stat` files into kept buffers.
#[derive(Default)]
struct StatReader {
    /// The file last read (or directory last named).
    path: PathBuf,
    number: String,
    buf: Vec<u8>,
}

/// What the collector uses of one `stat`.
struct Stat<'a> {
    state: &'a str,
    threads: i64,
}

impl StatReader {
    /// Reads `<procfs>/<pid>/stat`, or `<procfs>/<pid>/task/<tid>/stat`; `Ok(None)` when
    /// the process or thread has exited.
    fn read(
        &mut self,
        procfs: &Path,
        pid: u32,
        tid: Option<u32>,
    ) -> Result<Option<Stat<'_>>, CollectError> {
        self.set_path(procfs, pid, tid, "stat");
        self.buf.resize(STAT_BYTES, 0);
        let read = crate::collector::open(&self.path).and_then(|mut file| loop {
            match file.read(&mut self.buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => break other,
            }
        });
        let len = match read {
            Ok(len) if len >= STAT_BYTES => {
                return Err(CollectError::new(format!(
                    "{}: {STAT_BYTES} bytes or more, expected one line of a few hundred",
                    self.path.display()
                )))
            }
            Ok(len) => len,
            Err(e) if vanished(&e) => return Ok(None),
            Err(e) => return Err(CollectError::io(&self.path, &e)),
        };
        let data = self.buf.get(..len).unwrap_or_default();
        parse_stat(data)
            .map(Some)
            .map_err(|e| CollectError::parse(&self.path, 1, e))
    }

    /// `<procfs>/<pid>/task`.
    fn task_dir(&mut self, procfs: &Path, pid: u32) -> &Path {
        self.set_path(procfs, pid, None, "task");
        &self.path
    }

    fn set_path(&mut self, procfs: &Path, pid: u32, tid: Option<u32>, file: &str) {
        let path = &mut self.path;
        path.as_mut_os_string().clear();
        path.push(procfs);
        self.number.clear();
        // Writing into a String cannot fail.
        let _ = write!(self.number, "{pid}");
        path.push(&self.number);
        if let Some(tid) = tid {
            path.push("task");
            self.number.clear();
            let _ = write!(self.number, "{tid}");
            path.push(&self.number);
        }
        path.push(file);
    }
}

/// Whether an error means the process or thread is gone: node_exporter's
/// `isIgnoredError` (`os.ErrNotExist`, or ESRCH in the message).
fn vanished(err: &io::Error) -> bool {
    err.kind() == io::ErrorKind::NotFound || err.raw_os_error() == Some(nix::libc::ESRCH)
}

/// Parses `pid (comm) state ppid ...` as procfs does: the comm is whatever lies between
/// the first `(` and the last `)` (a process may name itself `a) R (b`), the byte after
/// the `)` is skipped, then come the state and the numbers of fields 4 to
/// [`LAST_FIELD`]; what follows is not read. The comm may be any bytes; the rest must
/// be text.
fn parse_stat(data: &[u8]) -> Result<Stat<'_>, String> {
    let open = data.iter().position(|b| *b == b'(');
    let close = data.iter().rposition(|b| *b == b')');
    let close = match (open, close) {
        (Some(open), Some(close)) if open < close => close,
        _ => return Err("expected `pid (comm) state ...`, found no (comm)".to_owned()),
    };
    let rest = data.get(close + 2..).unwrap_or_default();
    let rest = std::str::from_utf8(rest).map_err(|_| "not text after the (comm)".to_owned())?;
    let mut fields = rest.split_ascii_whitespace();
    let state = fields.next().ok_or("no state after the (comm)")?;
    let mut threads = 0;
    for number in 4..=LAST_FIELD {
        let field = fields
            .next()
            .ok_or_else(|| format!("{} fields, expected at least {LAST_FIELD}", number - 1))?;
        let digits = field.strip_prefix(['-', '+']).unwrap_or(field);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!(
                "field {number}: expected a whole number, got {field:?}"
            ));
        }
        if number == NUM_THREADS {
            threads = field.parse().map_err(|_| {
                format!("field {number} (num_threads): {field} is out of range")
            })?;
        }
    }
    Ok(Stat { state, threads })
}

/// Counts by state. The entries outlive the cycle (a count of 0 is not reported), so
/// counting allocates nothing once each state has been seen.
#[derive(Default)]
struct States {
    entries: Vec<(String, u64)>,
}

impl States {
    fn reset(&mut self) {
        for (_, count) in &mut self.entries {
            *count = 0;
        }
    }

    fn add(&mut self, state: &str) -> Result<(), String> {
        if let Some((_, count)) = self.entries.iter_mut().find(|(s, _)| s == state) {
            *count += 1;
            return Ok(());
        }
        // A state first seen: a new entry, or one no process is in this cycle.
        if self.entries.len() < MAX_STATES {
            self.entries.push((String::new(), 0));
        }
        let Some(entry) = self.entries.iter_mut().rev().find(|(_, count)| *count == 0) else {
            return Err(format!("more than {MAX_STATES} different states"));
        };
        entry.0.clear();
        entry.0.push_str(state);
        entry.1 = 1;
        Ok(())
    }

    /// The states counted, sorted as node_exporter's output is.
    fn counted(&mut self) -> impl Iterator<Item = (&str, u64)> {
        self.entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        self.entries
            .iter()
            .filter(|(_, count)| *count > 0)
            .map(|(state, count)| (state.as_str(), *count))
    }
}

impl Build for Processes {
    type Options = Options;

    const SOURCES: &'static [&'static str] = &[
        "proc/1/stat",
        "proc/sys/kernel/threads-max",
        "proc/sys/kernel/pid_max",
    ];

    fn build(context: &Context<'_>, options: &Options) -> Self {
        Processes::new(&context.paths.procfs, options)
    }
}

impl Collector for Processes {
    fn collect(&mut self, out: &mut Batch) -> Result<(), CollectError> {
        let limited = self.walk()?;
        let threads_max = Processes::limit(&self.threads_max, &mut self.value)?;
        let pid_max = Processes::limit(&self.pid_max, &mut self.value)?;
        self.note_limit(limited);
        let counts = &mut self.counts;
        let gauge = Kind::Gauge;
        out.family("node_processes_threads", "Allocated threads in system", gauge)
            .sample(&[], counts.threads as f64);
        out.family("node_processes_max_threads", "Limit of threads in the system", gauge)
            .sample(&[], threads_max);
        let mut family = out.family(
            "node_processes_state",
            "Number of processes in each state.",
            gauge,
        );
        for (state, count) in counts.states.counted() {
            family.sample(&[("state", state)], count as f64);
        }
        let mut family = out.family(
            "node_processes_threads_state",
            "Number of threads in each state.",
            gauge,
        );
        for (state, count) in counts.thread_states.counted() {
            family.sample(&[("thread_state", state)], count as f64);
        }
        out.family("node_processes_pids", "Number of PIDs", gauge)
            .sample(&[], counts.pids as f64);
        out.family("node_processes_max_processes", "Number of max PIDs limit", gauge)
            .sample(&[], pid_max);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{render, TempDir};

    /// A `stat` line as Linux 6.x writes it: 52 fields.
    fn stat(pid: u32, comm: &str, state: &str, threads: i64) -> String {
        format!(
            "{pid} ({comm}) {state} 1 {pid} {pid} 0 -1 4194560 1205 0 0 0 250 125 0 0 20 0 \
             {threads} 0 190504 12345678 346 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 \
             0 0 0 0 0 0 0 0 0 0 0 0 0\n"
        )
    }

    /// A process directory as the kernel lays it out: `stat`, and `task/<tid>/stat`
    /// for each thread, the first one the process itself.
    fn process(dir: &TempDir, pid: u32, comm: &str, state: &str, threads: &[(u32, &str)]) {
        let count = threads.len().max(1) as i64;
        dir.write(&format!("{pid}/stat"), &stat(pid, comm, state, count));
        dir.write(&format!("{pid}/task/{pid}/stat"), &stat(pid, comm, state, count));
        for (tid, thread_state) in threads.iter().filter(|(tid, _)| *tid != pid) {
            dir.write(
                &format!("{pid}/task/{tid}/stat"),
                &stat(*tid, comm, thread_state, count),
            );
        }
    }

    fn limits(dir: &TempDir) {
        dir.write("sys/kernel/threads-max", "63213\n");
        dir.write("sys/kernel/pid_max", "4194304\n");
    }

    fn collector(dir: &TempDir) -> Processes {
        Processes::new(dir.path(), &Options::default())
    }

    fn series(text: &str) -> Vec<&str> {
        text.lines().filter(|l| !l.starts_with('#')).collect()
    }

    #[test]
    fn counts_processes_and_threads_by_state() {
        let dir = TempDir::new();
        limits(&dir);
        process(&dir, 1, "systemd", "S", &[]);
        process(&dir, 2, "kthreadd", "S", &[]);
        process(&dir, 15, "kworker/0:1-events", "I", &[]);
        process(&dir, 700, "java", "S", &[(700, "S"), (701, "R"), (702, "D"), (703, "S")]);
        process(&dir, 812, "defunct", "Z", &[]);
        // A comm with blanks and parentheses, and one that is not UTF-8.
        process(&dir, 900, "a) R (b", "T", &[]);
        dir.write_bytes("901/stat", &{
            let mut line = b"901 (\xff\xfe) ".to_vec();
            line.extend_from_slice(stat(901, "x", "S", 1).split_once(") ").unwrap().1.as_bytes());
            line
        });
        std::fs::create_dir_all(dir.path().join("901/task/901")).unwrap();
        // Not processes.
        dir.write("self/stat", &stat(1, "x", "R", 1));
        dir.write("net/dev", "");
        let text = render(&mut collector(&dir)).unwrap();
        assert_eq!(
            text,
            "# HELP node_processes_threads Allocated threads in system\n\
             # TYPE node_processes_threads gauge\n\
             node_processes_threads 10\n\
             # HELP node_processes_max_threads Limit of threads in the system\n\
             # TYPE node_processes_max_threads gauge\n\
             node_processes_max_threads 63213\n\
             # HELP node_processes_state Number of processes in each state.\n\
             # TYPE node_processes_state gauge\n\
             node_processes_state{state=\"I\"} 1\n\
             node_processes_state{state=\"S\"} 4\n\
             node_processes_state{state=\"T\"} 1\n\
             node_processes_state{state=\"Z\"} 1\n\
             # HELP node_processes_threads_state Number of threads in each state.\n\
             # TYPE node_processes_threads_state gauge\n\
             node_processes_threads_state{thread_state=\"D\"} 1\n\
             node_processes_threads_state{thread_state=\"I\"} 1\n\
             node_processes_threads_state{thread_state=\"R\"} 1\n\
             node_processes_threads_state{thread_state=\"S\"} 5\n\
             node_processes_threads_state{thread_state=\"T\"} 1\n\
             node_processes_threads_state{thread_state=\"Z\"} 1\n\
             # HELP node_processes_pids Number of PIDs\n\
             # TYPE node_processes_pids gauge\n\
             node_processes_pids 7\n\
             # HELP node_processes_max_processes Number of max PIDs limit\n\
             # TYPE node_processes_max_processes gauge\n\
             node_processes_max_processes 4194304\n"
        );
    }

    #[test]
    fn the_main_threads_stat_is_not_read_and_single_threaded_tasks_are_not_listed() {
        let dir = TempDir::new();
        limits(&dir);
        process(&dir, 10, "one", "S", &[]);
        process(&dir, 20, "two", "R", &[(20, "R"), (21, "D")]);
        // Garbage where the reads are skipped: the single-threaded process's task/ and
        // the main thread's own stat.
        dir.write("10/task/10/stat", "garbage");
        dir.write("10/task/11/stat", "garbage");
        dir.write("20/task/20/stat", "garbage");
        let text = render(&mut collector(&dir)).unwrap();
        assert!(text.contains("node_processes_threads_state{thread_state=\"D\"} 1\n"), "{text}");
        assert!(text.contains("node_processes_threads_state{thread_state=\"R\"} 1\n"), "{text}");
        assert!(text.contains("node_processes_threads_state{thread_state=\"S\"} 1\n"), "{text}");
        assert!(text.contains("node_processes_threads 3\n"), "{text}");
        // The other threads' stat is read, and must parse.
        dir.write("20/task/21/stat", "garbage");
        let err = render(&mut collector(&dir)).unwrap_err().to_string();
        assert!(err.ends_with("20/task/21/stat line 1: expected `pid (comm) state ...`, found no (comm)"), "{err}");
    }

    #[test]
    fn processes_and_threads_that_vanish_are_skipped() {
        let dir = TempDir::new();
        limits(&dir);
        process(&dir, 1, "init", "S", &[]);
        // Exited between the listing and the read: the directory is there, not its stat.
        std::fs::create_dir_all(dir.path().join("2")).unwrap();
        // A thread gone, and a multi-threaded process whose task/ went with it.
        process(&dir, 3, "app", "S", &[(3, "S"), (4, "R"), (5, "S")]);
        std::fs::remove_dir_all(dir.path().join("3/task/4")).unwrap();
        dir.write("6/stat", &stat(6, "gone", "S", 4));
        let text = render(&mut collector(&dir)).unwrap();
        assert_eq!(
            series(&text),
            [
                "node_processes_threads 8",
                "node_processes_max_threads 63213",
                "node_processes_state{state=\"S\"} 3",
                "node_processes_threads_state{thread_state=\"S\"} 4",
                "node_processes_pids 3",
                "node_processes_max_processes 4194304",
            ]
        );
    }

    #[test]
    fn the_real_proc_counts_this_process_and_its_threads() {
        let (ready, wait) = (std::sync::Barrier::new(2), std::sync::Barrier::new(2));
        std::thread::scope(|scope| {
            scope.spawn(|| {
                ready.wait();
                wait.wait();
            });
            ready.wait();
            let mut processes = Processes::new(Path::new("/proc"), &Options::default());
            let text = render(&mut processes).unwrap();
            wait.wait();
            let value = |name: &str| -> f64 {
                series(&text)
                    .iter()
                    .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
                    .unwrap_or_else(|| panic!("no {name} in {text}"))
            };
            let sum = |family: &str| -> f64 {
                series(&text)
                    .iter()
                    .filter(|l| l.starts_with(&format!("{family}{{")))
                    .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                    .sum()
            };
            let pids = value("node_processes_pids");
            assert!(pids >= 2.0, "{text}");
            assert_eq!(sum("node_processes_state"), pids, "{text}");
            assert!(value("node_processes_threads") >= pids + 1.0, "{text}");
            // Both threads of this test process are counted, so at least one more
            // thread than processes.
            assert!(sum("node_processes_threads_state") > pids, "{text}");
            assert!(value("node_processes_max_processes") >= pids, "{text}");
            assert!(!processes.limited);
        });
    }

    #[test]
    fn the_walk_stops_at_the_limit_and_says_what_it_counted() {
        let dir = TempDir::new();
        limits(&dir);
        for pid in 1..=10 {
            process(&dir, pid, "p", "S", &[]);
        }
        process(&dir, 11, "threads", "S", &[(11, "S"), (12, "R"), (13, "R"), (14, "R")]);
        let limited = |limit: usize| {
            let mut processes = Processes::new(dir.path(), &Options { walk_limit: limit });
            let text = render(&mut processes).unwrap();
            let pids = series(&text)
                .into_iter()
                .find_map(|l| l.strip_prefix("node_processes_pids "))
                .unwrap()
                .to_owned();
            let running = text
                .lines()
                .find_map(|l| l.strip_prefix("node_processes_threads_state{thread_state=\"R\"} "))
                .unwrap_or("0")
                .to_owned();
            (pids, running, processes.limited)
        };
        assert_eq!(limited(100), ("11".into(), "3".into(), false));
        assert_eq!(limited(14), ("11".into(), "3".into(), false));
        assert_eq!(limited(13), ("11".into(), "2".into(), true));
        assert_eq!(limited(11), ("11".into(), "0".into(), true));
        assert_eq!(limited(4), ("4".into(), "0".into(), true));
    }

    #[test]
    fn the_limit_is_logged_on_transitions_only() {
        let dir = TempDir::new();
        limits(&dir);
        for pid in 1..=3 {
            process(&dir, pid, "p", "S", &[]);
        }
        let mut processes = Processes::new(dir.path(), &Options { walk_limit: 2 });
        render(&mut processes).unwrap();
        assert!(processes.limited);
        std::fs::remove_dir_all(dir.path().join("3")).unwrap();
        render(&mut processes).unwrap();
        assert!(!processes.limited);
    }

    #[test]
    fn parses_stat_as_procfs_does() {
        let line = stat(7, "x", "S", 3);
        let parsed = parse_stat(line.as_bytes()).unwrap();
        assert_eq!((parsed.state, parsed.threads), ("S", 3));
        // The comm runs to the last `)`, whatever it holds.
        let tricky = stat(7, ") S 1 2 (", "D", 9);
        assert_eq!(parse_stat(tricky.as_bytes()).unwrap().state, "D");
        // Fields up to 44 must be there; what follows is not read.
        let fields: Vec<&str> = line.split(' ').collect();
        let short = fields[..44].join(" ");
        assert_eq!(parse_stat(short.as_bytes()).unwrap().threads, 3);
        for (bad, message) in [
            (fields[..43].join(" "), "43 fields, expected at least 44"),
            ("".to_owned(), "expected `pid (comm) state ...`, found no (comm)"),
            ("1 )x( S".to_owned(), "expected `pid (comm) state ...`, found no (comm)"),
            ("1 (x)".to_owned(), "no state after the (comm)"),
            ("1 (x) ".to_owned(), "no state after the (comm)"),
            ("1 (x) R".to_owned(), "3 fields, expected at least 44"),
            (line.replace(" 250 ", " 2x0 "), "field 14: expected a whole number, got \"2x0\""),
            (line.replace(" 0 190504", " - 190504"), "field 21: expected a whole number, got \"-\""),
            (
                stat(7, "x", "S", 1).replace(" 1 0 190504", " 99999999999999999999 0 190504"),
                "field 20 (num_threads): 99999999999999999999 is out of range",
            ),
        ] {
            assert_eq!(parse_stat(bad.as_bytes()).err().as_deref(), Some(message), "{bad:?}");
        }
        let mut not_text = b"1 (x) ".to_vec();
        not_text.extend_from_slice(b"\xff S");
        assert_eq!(
            parse_stat(&not_text).err().as_deref(),
            Some("not text after the (comm)")
        );
        // Signed numbers, as the kernel writes priority and nice.
        let signed = line.replace(" 20 0 ", " -100 -20 ");
        assert!(parse_stat(signed.as_bytes()).is_ok());
    }

    #[test]
    fn malformed_files_fail_and_name_the_file() {
        for (file, contents, message) in [
            ("1/stat", "1 (x) S 1".to_owned(), "1/stat line 1: 4 fields, expected at least 44"),
            ("1/stat", "x".repeat(STAT_BYTES), "1/stat: 4096 bytes or more, expected one line of a few hundred"),
            (
                "sys/kernel/threads-max",
                "lots\n".to_owned(),
                "sys/kernel/threads-max line 1: expected an unsigned integer, got \"lots\"",
            ),
            (
                "sys/kernel/pid_max",
                "-1\n".to_owned(),
                "sys/kernel/pid_max line 1: expected an unsigned integer, got \"-1\"",
            ),
        ] {
            let dir = TempDir::new();
            limits(&dir);
            process(&dir, 1, "init", "S", &[]);
            dir.write(file, &contents);
            let err = render(&mut collector(&dir)).unwrap_err().to_string();
            assert!(err.ends_with(message), "{file}: {err}");
        }
        // A missing limit file is an error, as in node_exporter.
        let dir = TempDir::new();
        dir.write("sys/kernel/pid_max", "32768\n");
        let err = render(&mut collector(&dir)).unwrap_err().to_string();
        assert!(err.contains("sys/kernel/threads-max: "), "{err}");
        // A stat that cannot be read for another reason than the process exiting.
        let dir = TempDir::new();
        limits(&dir);
        std::fs::create_dir_all(dir.path().join("5/stat")).unwrap();
        let err = render(&mut collector(&dir)).unwrap_err().to_string();
        assert!(err.contains("5/stat: "), "{err}");
        // So is a /proc that is not there.
        let mut absent = Processes::new(&dir.path().join("none"), &Options::default());
        let err = render(&mut absent).unwrap_err();
        assert!(err.to_string().contains("none: "), "{err}");
    }

    #[test]
    fn states_are_bounded_and_reuse_their_entries() {
        let mut states = States::default();
        for n in 0..MAX_STATES {
            states.add(&format!("s{n}")).unwrap();
        }
        assert_eq!(
            states.add("one more"),
            Err(format!("more than {MAX_STATES} different states"))
        );
        states.reset();
        // A new cycle: entries no process is in are taken by new states.
        states.add("R").unwrap();
        states.add("R").unwrap();
        states.add("Q").unwrap();
        assert_eq!(states.entries.len(), MAX_STATES);
        assert_eq!(states.counted().collect::<Vec<_>>(), [("Q", 1), ("R", 2)]);
    }

    #[test]
    fn options_are_checked() {
        use crate::config::collectors::Options as _;
        assert_eq!(Options::default().check(), Ok(()));
        assert_eq!(
            Options { walk_limit: 0 }.check(),
            Err("walk_limit: expected at least 1".to_owned())
        );
    }
}

//! Synthetic process tables: a /proc tree of any number of processes, laid out as the
//! kernel lays them out, with what it holds counted as it is written, so a test can
//! check a collector's counts against the generator rather than against itself.
//!
//! Used where committing the tree would mean thousands of directories: the 2,000
//! process comparison with node_exporter and the processes collector's bench.

use std::collections::BTreeMap;
use std::path::Path;

/// What a generated table holds, counted as node_exporter's processes collector
/// counts it.
#[derive(Debug, Default, PartialEq)]
pub struct ProcessTable {
    pub pids: u64,
    /// The sum of the processes' `num_threads`.
    pub threads: u64,
    pub states: BTreeMap<String, u64>,
    pub thread_states: BTreeMap<String, u64>,
}

/// A process's state, as a busy machine's spread of them: mostly sleeping, kernel
/// workers idle, a few running, in disk sleep, stopped, traced or zombies.
fn state_of(index: usize) -> &'static str {
    match index % 50 {
        0..=28 => "S",
        29..=43 => "I",
        44 | 45 => "R",
        46 => "D",
        47 => "Z",
        48 => "T",
        _ => "t",
    }
}

/// A `stat` line of Linux 6.x (52 fields).
pub fn stat_line(pid: u64, comm: &str, state: &str, threads: u64) -> String {
    format!(
        "{pid} ({comm}) {state} 1 {pid} {pid} 0 -1 4194560 1205 0 3 0 42 17 0 0 20 0 \
         {threads} 0 5000 22306816 3212 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 \
         0 0 0 0 0 0 0 0 0 0 0 0 0\n"
    )
}

/// Writes `processes` processes under `procfs` (pids 1 to `processes`), every tenth
/// with 2 to 8 threads in varied states (tids above the pids), each thread under
/// `task/<tid>/stat` with the process's own first, and `sys/kernel/threads-max` and
/// `pid_max`. Returns what it wrote.
pub fn write_process_table(procfs: &Path, processes: usize) -> ProcessTable {
    let mut table = ProcessTable::default();
    let mut next_tid = processes as u64 + 1;
    let put = |relative: String, text: &str| {
        let path = procfs.join(relative);
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("create the tree");
        std::fs::write(&path, text).expect("write the tree");
    };
    for index in 0..processes {
        let pid = index as u64 + 1;
        let state = state_of(index);
        let extra: Vec<(u64, &str)> = if index % 10 == 3 {
            (0..1 + index % 7)
                .map(|n| {
                    next_tid += 1;
                    (next_tid - 1, ["S", "R", "S", "D", "S"][n % 5])
                })
                .collect()
        } else {
            Vec::new()
        };
        let threads = 1 + extra.len() as u64;
        let comm = format!("worker-{index}");
        let line = stat_line(pid, &comm, state, threads);
        put(format!("{pid}/stat"), &line);
        put(format!("{pid}/task/{pid}/stat"), &line);
        for (tid, thread_state) in &extra {
            put(
                format!("{pid}/task/{tid}/stat"),
                &stat_line(*tid, &comm, thread_state, threads),
            );
            *table
                .thread_states
                .entry((*thread_state).to_owned())
                .or_default() += 1;
        }
        table.pids += 1;
        table.threads += threads;
        *table.states.entry(state.to_owned()).or_default() += 1;
        *table.thread_states.entry(state.to_owned()).or_default() += 1;
    }
    put("sys/kernel/threads-max".into(), "63213\n");
    put("sys/kernel/pid_max".into(), "4194304\n");
    table
}

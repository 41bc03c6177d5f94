//! CPU per cycle of the collectors node_exporter keeps off by default because of what
//! they walk: `processes` (every process's `stat`, and its threads'), against the floor
//! of merely making node_exporter's reads (every `stat`, every `task/` listed, every
//! other thread's `stat`) in the same process, with std's file and directory calls;
//! and `interrupts` on this machine's /proc/interrupts, against reading the file.
//!
//! ```text
//! cargo bench --bench procs_cycle -- [--cycles N] [--procfs PATH] [--generate N] [--spawn N]
//! ```
//!
//! `--generate N` walks a synthetic table of N processes in a temp dir (the
//! `procfs` test kit's); `--spawn N` starts N sleeping processes first, so the real
//! /proc has that many more (they are killed at the end). Times are
//! CLOCK_PROCESS_CPUTIME_ID over all cycles, after 20 cycles of warm-up; the
//! allocations the collector makes in those cycles are counted too (a counting
//! global allocator), to show the walk allocates nothing once its buffers have grown.

use nix::time::{clock_gettime, ClockId};
use sc_agent::batch::Batch;
use sc_agent::collector::interrupts::{self, Interrupts};
use sc_agent::collector::processes::{Options, Processes};
use sc_agent::collector::Collector;
use sc_agent_testkit::procfs::write_process_table;
use sc_agent_testkit::TempDir;
use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The system allocator, counting allocations.
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is passed on to the system allocator unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        System.alloc(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn cpu_time() -> Duration {
    clock_gettime(ClockId::CLOCK_PROCESS_CPUTIME_ID)
        .map(Duration::from)
        .unwrap_or_default()
}

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

/// CPU and allocations per run of `work`, over `cycles` runs after a warm-up.
fn per_cycle(cycles: u32, mut work: impl FnMut()) -> (Duration, f64) {
    for _ in 0..20 {
        work();
    }
    let (start, allocations) = (cpu_time(), ALLOCATIONS.load(Ordering::Relaxed));
    for _ in 0..cycles {
        work();
    }
    let allocated = ALLOCATIONS.load(Ordering::Relaxed) - allocations;
    (
        (cpu_time() - start) / cycles,
        allocated as f64 / f64::from(cycles),
    )
}

/// The value of the family `name`'s first series in `batch`.
fn value(batch: &Batch, name: &str) -> f64 {
    batch
        .families()
        .find(|f| f.name() == name)
        .and_then(|f| f.series().next().map(|s| s.value()))
        .unwrap_or(f64::NAN)
}

fn numbered(dir: &Path) -> Vec<(String, PathBuf)> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|e| {
                    let name = e.file_name().into_string().ok()?;
                    name.bytes()
                        .all(|b| b.is_ascii_digit())
                        .then(|| (name, e.path()))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// node_exporter's reads, made as plainly as std makes them: returns the files read.
fn floor_pass(procfs: &Path, buf: &mut Vec<u8>) -> usize {
    let mut read = |path: &Path| {
        buf.clear();
        std::fs::File::open(path)
            .and_then(|mut f| f.read_to_end(buf))
            .is_ok()
    };
    let mut files = 0;
    for (pid, dir) in numbered(procfs) {
        files += usize::from(read(&dir.join("stat")));
        for (tid, task) in numbered(&dir.join("task")) {
            if tid != pid {
                files += usize::from(read(&task.join("stat")));
            }
        }
    }
    files
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let cycles: u32 = arg(&args, "--cycles")
        .and_then(|n| n.parse().ok())
        .unwrap_or(200);
    let generated = TempDir::new();
    let procfs = match arg(&args, "--generate").and_then(|n| n.parse().ok()) {
        Some(count) => {
            let procfs = generated.path().join("proc");
            write_process_table(&procfs, count);
            procfs
        }
        None => PathBuf::from(arg(&args, "--procfs").unwrap_or_else(|| "/proc".into())),
    };
    let spawn: usize = arg(&args, "--spawn")
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let mut children: Vec<Child> = (0..spawn)
        .filter_map(|_| {
            Command::new("sleep")
                .arg("3600")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .ok()
        })
        .collect();

    let mut processes = Processes::new(&procfs, &Options::default());
    let mut batch = Batch::new();
    let mut failed = 0;
    let (cost, allocations) = per_cycle(cycles, || {
        batch.begin(0);
        failed += usize::from(processes.collect(&mut batch).is_err());
    });
    let pids = value(&batch, "node_processes_pids");
    let threads = value(&batch, "node_processes_threads");
    let mut buf = Vec::with_capacity(4096);
    let mut files = 0;
    let (floor, _) = per_cycle(cycles, || files = floor_pass(&procfs, &mut buf));

    println!("procfs {}", procfs.display());
    println!("cycles {cycles} (failed {failed})");
    println!("processes {pids}");
    println!("threads {threads}");
    println!("processes_cycle_cpu_us {:.1}", cost.as_secs_f64() * 1e6);
    println!(
        "processes_cpu_us_per_1000_processes {:.1}",
        cost.as_secs_f64() * 1e6 * 1000.0 / pids.max(1.0)
    );
    println!("processes_allocations_per_cycle {allocations:.2}");
    println!("floor_files_read {files}");
    println!("floor_cpu_us {:.1}", floor.as_secs_f64() * 1e6);
    println!(
        "cpu_ratio {:.2}",
        cost.as_secs_f64() / floor.as_secs_f64().max(1e-9)
    );

    let mut interrupts = Interrupts::new(Path::new("/proc"), &interrupts::Options::default());
    let mut failed = 0;
    let (cost, allocations) = per_cycle(cycles, || {
        batch.begin(0);
        failed += usize::from(interrupts.collect(&mut batch).is_err());
    });
    let (floor, _) = per_cycle(cycles, || {
        buf.clear();
        let read =
            std::fs::File::open("/proc/interrupts").and_then(|mut f| f.read_to_end(&mut buf));
        files = read.map_or(0, |_| 1);
    });
    println!("interrupts_series {} (failed {failed})", batch.len());
    println!("interrupts_cycle_cpu_us {:.1}", cost.as_secs_f64() * 1e6);
    println!("interrupts_allocations_per_cycle {allocations:.2}");
    println!("interrupts_floor_cpu_us {:.1}", floor.as_secs_f64() * 1e6);
    for child in &mut children {
        let _ = child.kill();
        let _ = child.wait();
    }
}

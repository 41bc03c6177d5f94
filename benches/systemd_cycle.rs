//! The systemd collector against this machine's systemd: prints one cycle's series
//! in the text format, then the cost of more cycles (wall time and CPU time per
//! cycle, and how many cycles failed). For trying the collector where systemd is
//! PID 1 (a VM, or a `systemd-nspawn --boot` container).
//!
//! ```text
//! cargo bench --bench systemd_cycle -- [--private] [--all] [--cycles N]
//! ```
//!
//! `--private` talks to /run/systemd/private instead of the system bus; `--all`
//! turns on the task, restart and start-time series.

use nix::time::{clock_gettime, ClockId};
use sc_agent::batch::Batch;
use sc_agent::collector::systemd::{Options, Systemd};
use sc_agent::collector::Collector;
use std::time::{Duration, Instant};

fn cpu_time() -> Duration {
    clock_gettime(ClockId::CLOCK_PROCESS_CPUTIME_ID)
        .map(Duration::from)
        .unwrap_or_default()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let flag = |name: &str| args.iter().any(|a| a == name);
    let cycles: u32 = args
        .iter()
        .position(|a| a == "--cycles")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(100);
    let all = flag("--all");
    let options = Options {
        private: flag("--private"),
        enable_task_metrics: all,
        enable_restarts_metrics: all,
        enable_start_time_metrics: all,
        ..Options::default()
    };
    let mut systemd = Systemd::new(&options);
    let mut batch = Batch::new();

    let started = Instant::now();
    batch.begin(0);
    let first = systemd.collect(&mut batch);
    let first_took = started.elapsed();
    let mut text = Vec::new();
    sc_agent::output::text::write(&batch, &mut text);
    print!("{}", String::from_utf8_lossy(&text));
    match first {
        Ok(()) => println!(
            "# first cycle (connecting included): {first_took:?}, {} series",
            batch.len()
        ),
        Err(e) => {
            println!("# first cycle failed after {first_took:?}: {e}");
            return;
        }
    }

    let (wall, cpu) = (Instant::now(), cpu_time());
    let mut failed = 0;
    for _ in 0..cycles {
        batch.begin(0);
        if let Err(e) = systemd.collect(&mut batch) {
            failed += 1;
            println!("# cycle failed: {e}");
        }
    }
    let per = |d: Duration| d / cycles.max(1);
    println!(
        "# {cycles} cycles: {:?} wall, {:?} CPU per cycle; {failed} failed",
        per(wall.elapsed()),
        per(cpu_time() - cpu)
    );
}

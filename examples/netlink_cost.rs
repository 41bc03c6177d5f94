//! CPU per cycle of netdev and netclass, reading files and reading netlink, in the
//! network namespace it runs in: N cycles of each in 10 runs, timed with
//! `CLOCK_PROCESS_CPUTIME_ID` (user and kernel time of the process); the mean, and
//! the mean of the least disturbed run (the machine may be shared).
//!
//! ```sh
//! cargo build --release --no-default-features --example netlink_cost
//! ip netns exec NS target/release/examples/netlink_cost [CYCLES] [files|netlink] [netdev|netclass]
//! ```
//! `ip netns exec` mounts the namespace's own /sys; /proc/net/dev follows the
//! process's namespace. README's Footprint section says how the 200-interface
//! namespace of the measurement is built.

use sc_agent::batch::Batch;
use sc_agent::collector::netclass::Netclass;
use sc_agent::collector::netdev::Netdev;
use sc_agent::collector::{Collector, NetSource};
use sc_agent::config::Filter;
use std::path::Path;
use std::time::{Duration, Instant};

fn cpu_time() -> Duration {
    let now = nix::time::clock_gettime(nix::time::ClockId::CLOCK_PROCESS_CPUTIME_ID)
        .expect("CLOCK_PROCESS_CPUTIME_ID");
    Duration::from(now)
}

/// Runs of this many cycles; the least disturbed one is reported too, since the
/// machine may be shared.
const RUNS: u32 = 10;

/// Mean CPU time of one `collect` over all cycles and in the best of [`RUNS`]
/// runs, mean wall time, and the series it writes.
fn measure(collector: &mut dyn Collector, cycles: u32) -> (Duration, Duration, Duration, usize) {
    let mut batch = Batch::new();
    for _ in 0..10 {
        batch.begin(0);
        collector.collect(&mut batch).expect("collect");
    }
    let per_run = (cycles / RUNS).max(1);
    let (mut total, mut best) = (Duration::ZERO, Duration::MAX);
    let wall = Instant::now();
    for _ in 0..RUNS {
        let cpu = cpu_time();
        for _ in 0..per_run {
            batch.begin(0);
            collector.collect(&mut batch).expect("collect");
        }
        let spent = cpu_time() - cpu;
        total += spent;
        best = best.min(spent / per_run);
    }
    let cycles = per_run * RUNS;
    (total / cycles, best, wall.elapsed() / cycles, batch.len())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    let cycles = std::env::args()
        .nth(1)
        .map(|n| n.parse().expect("CYCLES is a number"))
        .unwrap_or(1000);
    let sources: &[NetSource] = match std::env::args().nth(2).as_deref() {
        Some("files") => &[NetSource::Files],
        Some("netlink") => &[NetSource::Netlink],
        _ => &[NetSource::Files, NetSource::Netlink],
    };
    let (proc, sys) = (Path::new("/proc"), Path::new("/sys"));
    println!("{cycles} cycles each; CPU and wall time per cycle");
    let mut totals = Vec::new();
    for &source in sources {
        let mut netdev = Netdev::new(proc, sys, Filter::default(), source);
        let mut netclass = Netclass::new(sys, Filter::default(), source);
        let (mut total, mut best_total) = (Duration::ZERO, Duration::ZERO);
        let only = std::env::args().nth(3);
        for collector in [&mut netdev as &mut dyn Collector, &mut netclass] {
            if only.as_deref().is_some_and(|name| name != collector.name()) {
                continue;
            }
            let (cpu, best, wall, series) = measure(collector, cycles);
            total += cpu;
            best_total += best;
            println!(
                "{source:?} {:<8} {:>8.3} ms CPU (best run {:.3}) {:>8.3} ms wall  {series} series",
                collector.name(),
                ms(cpu),
                ms(best),
                ms(wall),
            );
        }
        totals.push((source, total, best_total));
    }
    for (source, total, best) in totals {
        println!(
            "{source:?} netdev + netclass: {:.3} ms CPU per cycle (best run {:.3})",
            ms(total),
            ms(best)
        );
    }
}

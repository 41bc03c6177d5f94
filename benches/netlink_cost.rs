//! CPU per cycle of the collectors that ask the kernel over netlink (netdev,
//! netclass, arp, tcpstat), in netlink mode and, with `--files`, reading the files
//! instead, in the network namespace it runs in: CYCLES cycles of each in 10 runs,
//! timed with `CLOCK_PROCESS_CPUTIME_ID` (user and kernel time of the process); the
//! mean, and the mean of the least disturbed run (the machine may be shared).
//!
//! ```sh
//! cargo bench --bench netlink_cost -- [--cycles N] [--files] [COLLECTOR...]
//! cargo bench --bench netlink_cost -- --tcp-dumps [--cycles N]
//! ip netns exec NS target/release/deps/netlink_cost-* --cycles 1000 netclass
//! ```
//! `--tcp-dumps` times the kernel's share of tcpstat instead, the two ways of
//! asking for every TCP socket, in alternating runs: one `TCPDIAG_GETSOCK` dump of
//! both IP versions, and one `SOCK_DIAG_BY_FAMILY` dump per version (what
//! node_exporter asks).
//! Collectors are built through the collector table, as the agent builds them,
//! with the agent's shared netlink sockets; without names, all four. `ip netns
//! exec` mounts the namespace's own /sys; /proc/net follows the process's
//! namespace. README's Footprint section says how the namespaces of the
//! measurements were built.

use sc_agent::batch::Batch;
use sc_agent::collector::table::{self, Settings};
use sc_agent::collector::{Collector, Context, Resources};
use sc_agent::config::Paths;
use sc_agent::netlink::inet_diag::{IpFamily, Scope, TcpStates};
use sc_agent::netlink::{Netlink, Protocol};
use std::time::{Duration, Instant};

fn cpu_time() -> Duration {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_PROCESS_CPUTIME_ID)
        .map(Duration::from)
        .unwrap_or_default()
}

/// Runs of this many cycles; the least disturbed one is reported too, since the
/// machine may be shared.
const RUNS: u32 = 10;

/// The collectors measured when none is named.
const ALL: [&str; 4] = ["netdev", "netclass", "arp", "tcpstat"];

/// Mean CPU time of one `collect` over all cycles and in the best of [`RUNS`]
/// runs, mean wall time, and the series it writes.
fn measure(collector: &mut dyn Collector, cycles: u32) -> (Duration, Duration, Duration, usize) {
    let mut batch = Batch::new();
    for _ in 0..10 {
        batch.begin(0);
        if let Err(e) = collector.collect(&mut batch) {
            eprintln!("collect: {e}");
        }
    }
    let per_run = (cycles / RUNS).max(1);
    let (mut total, mut best) = (Duration::ZERO, Duration::MAX);
    let wall = Instant::now();
    for _ in 0..RUNS {
        let cpu = cpu_time();
        for _ in 0..per_run {
            batch.begin(0);
            let _ = collector.collect(&mut batch);
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

/// Mean CPU time per cycle of the TCP socket dumps, both ways, in alternating
/// runs so that a busy neighbour weighs on both alike.
fn tcp_dumps(cycles: u32) {
    let netlink = Netlink::default();
    let mut both = TcpStates::new(Scope::Both);
    let mut v4 = TcpStates::new(Scope::Only(IpFamily::V4));
    let mut v6 = TcpStates::new(Scope::Only(IpFamily::V6));
    let mut one = || {
        netlink
            .dump(Protocol::SockDiag, &mut both)
            .expect("TCPDIAG_GETSOCK")
    };
    let mut two = || {
        netlink
            .dump(Protocol::SockDiag, &mut v4)
            .expect("SOCK_DIAG_BY_FAMILY");
        netlink
            .dump(Protocol::SockDiag, &mut v6)
            .expect("SOCK_DIAG_BY_FAMILY");
    };
    let per_run = (cycles / RUNS).max(1);
    let (mut spent_one, mut spent_two) = (Duration::ZERO, Duration::ZERO);
    let (mut best_one, mut best_two) = (Duration::MAX, Duration::MAX);
    for _ in 0..RUNS {
        let start = cpu_time();
        (0..per_run).for_each(|_| one());
        let middle = cpu_time();
        (0..per_run).for_each(|_| two());
        let end = cpu_time();
        spent_one += middle - start;
        spent_two += end - middle;
        best_one = best_one.min((middle - start) / per_run);
        best_two = best_two.min((end - middle) / per_run);
    }
    let cycles = per_run * RUNS;
    let sockets = both.ipv4.total() + both.ipv6.total();
    println!("{cycles} cycles each, {sockets} TCP sockets; CPU per cycle");
    println!(
        "TCPDIAG_GETSOCK, both versions   {:>8.3} ms (best run {:.3})",
        ms(spent_one / cycles),
        ms(best_one)
    );
    println!(
        "SOCK_DIAG_BY_FAMILY, v4 then v6  {:>8.3} ms (best run {:.3})",
        ms(spent_two / cycles),
        ms(best_two)
    );
}

fn main() {
    let mut cycles = 1000;
    let mut files = false;
    let mut tcp = false;
    let mut names = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--cycles" => {
                cycles = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .expect("--cycles N");
            }
            "--files" => files = true,
            "--tcp-dumps" => tcp = true,
            "--bench" => {}
            name => names.push(name.to_owned()),
        }
    }
    if tcp {
        return tcp_dumps(cycles);
    }
    if names.is_empty() {
        names = ALL.map(str::to_owned).to_vec();
    }
    let mode = if files { "files" } else { "netlink" };
    println!("{cycles} cycles each, {mode}; CPU and wall time per cycle");
    let paths = Paths::default();
    let resources = Resources::default();
    for name in &names {
        let descriptor = table::find(name).unwrap_or_else(|| panic!("no collector {name}"));
        // tcpstat has no file mode: it always reads the kernel.
        let entry = if files && name != "tcpstat" {
            format!("{name}: {{netlink: false}}")
        } else {
            format!("{name}: true")
        };
        let settings: Settings =
            serde_yaml::from_str(&format!("disable_defaults: true\n{entry}\n")).expect("settings");
        let context = Context {
            paths: &paths,
            resources: &resources,
            settings: &settings,
        };
        let mut collector = (descriptor.build)(&context, &settings);
        let (cpu, best, wall, series) = measure(collector.as_mut(), cycles);
        println!(
            "{name:<9} {:>8.3} ms CPU (best run {:.3}) {:>8.3} ms wall  {series} series",
            ms(cpu),
            ms(best),
            ms(wall),
        );
    }
}

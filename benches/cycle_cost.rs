//! CPU per cycle of the agent's work (collect with the default collectors, then
//! encode and snappy-compress for remote write) against the floor: merely reading the
//! same /proc and /sys files, listing the same directories and calling the same
//! statfs, in the same process. Used by `scripts/bench.sh`, which makes the list of
//! files with strace from a real `sc-agent` cycle.
//!
//! ```text
//! cargo bench --bench cycle_cost -- --cycles 2000 --floor /tmp/files.txt
//! ```
//!
//! The floor list has one operation a line: `read PATH`, `list PATH` or
//! `statfs PATH`. Both sides are timed with CLOCK_PROCESS_CPUTIME_ID, which counts
//! every thread (the filesystem collector's statfs runs on a worker thread).

use nix::time::{clock_gettime, ClockId};
use sc_agent::batch::Batch;
use sc_agent::collector::Registry;
use sc_agent::config::Config;
use sc_agent::remote_write::encode::Encoder;
use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

fn cpu_time() -> Duration {
    clock_gettime(ClockId::CLOCK_PROCESS_CPUTIME_ID)
        .map(Duration::from)
        .unwrap_or_default()
}

enum Op {
    Read(PathBuf),
    List(PathBuf),
    Statfs(PathBuf),
}

fn parse_floor(text: &str) -> Vec<Op> {
    text.lines()
        .filter_map(|line| {
            let (op, path) = line.split_once(' ')?;
            let path = PathBuf::from(path);
            match op {
                "read" => Some(Op::Read(path)),
                "list" => Some(Op::List(path)),
                "statfs" => Some(Op::Statfs(path)),
                _ => None,
            }
        })
        .collect()
}

/// One pass over the floor's operations, reading into a reused buffer.
fn floor_pass(ops: &[Op], buf: &mut Vec<u8>) -> usize {
    let mut bytes = 0;
    for op in ops {
        match op {
            Op::Read(path) => {
                if let Ok(mut file) = std::fs::File::open(path) {
                    buf.clear();
                    bytes += file.read_to_end(buf).unwrap_or(0);
                }
            }
            Op::List(path) => {
                if let Ok(entries) = std::fs::read_dir(path) {
                    bytes += entries.count();
                }
            }
            Op::Statfs(path) => {
                bytes += usize::from(nix::sys::statfs::statfs(path).is_ok());
            }
        }
    }
    bytes
}

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let cycles: u32 = arg(&args, "--cycles")
        .and_then(|n| n.parse().ok())
        .unwrap_or(1000);
    let config = Config {
        vm_id: "bench-vm".to_owned(),
        instance: Some("bench-host".to_owned()),
        ..Config::default()
    };
    let mut registry = Registry::new(&config);
    let mut batch = Batch::new();
    batch.set_common_labels(vec![
        ("vm_id".into(), "bench-vm".into()),
        ("job".into(), "node".into()),
        ("instance".into(), "bench-host".into()),
    ]);
    let mut encoder = Encoder::new();
    let mut cycle = |batch: &mut Batch, encoder: &mut Encoder| {
        batch.begin(1_764_000_000_000);
        registry.collect(batch);
        let encoded = encoder.encode(batch).expect("encode");
        (encoded.samples, encoded.raw_len, encoded.body.len())
    };
    for _ in 0..20 {
        cycle(&mut batch, &mut encoder);
    }
    let start = cpu_time();
    let mut last = (0, 0, 0);
    for _ in 0..cycles {
        last = cycle(&mut batch, &mut encoder);
    }
    let per_cycle = (cpu_time() - start) / cycles;
    let (samples, raw, wire) = last;
    println!("cycle_cpu_us {:.1}", per_cycle.as_secs_f64() * 1e6);
    println!("samples_per_cycle {samples}");
    println!("protobuf_bytes {raw}");
    println!("wire_bytes {wire}");
    println!(
        "wire_bytes_per_sample {:.2}",
        wire as f64 / samples.max(1) as f64
    );
    println!("compression_ratio {:.2}", raw as f64 / wire.max(1) as f64);

    if let Some(list) = arg(&args, "--floor") {
        let ops = parse_floor(&std::fs::read_to_string(&list).expect("floor list"));
        let mut buf = Vec::with_capacity(1 << 16);
        for _ in 0..20 {
            floor_pass(&ops, &mut buf);
        }
        let start = cpu_time();
        for _ in 0..cycles {
            floor_pass(&ops, &mut buf);
        }
        let floor = (cpu_time() - start) / cycles;
        println!("floor_operations {}", ops.len());
        println!("floor_cpu_us {:.1}", floor.as_secs_f64() * 1e6);
        println!(
            "cpu_ratio {:.2}",
            per_cycle.as_secs_f64() / floor.as_secs_f64().max(1e-9)
        );
    }
}

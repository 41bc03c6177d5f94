//! CPU per cycle of the agent's work (collect, then encode and snappy-compress for
//! remote write) in one process, for `scripts/bench.sh`:
//!
//! - against the floor of merely reading the same /proc and /sys files, listing the
//!   same directories and calling the same statfs (`--floor LIST`, a list bench.sh
//!   makes with strace from a real `sc-agent` cycle);
//! - for the collectors and paths of a config (`--config PATH`), which is how bench.sh
//!   runs a fixture host of many CPUs, disks and interfaces at several sizes;
//! - for each collector of the table alone (`--per-collector`), those off by default
//!   too, with that config's paths.
//!
//! The config's `remote_write.write_relabel_configs` and `max_series` apply, as in the
//! agent: the relabel stage runs between collecting and encoding, and its CPU is
//! part of `encode_cpu_us`.
//!
//! ```text
//! cargo bench --bench cycle_cost -- [--cycles N] [--config PATH] [--floor LIST] [--per-collector]
//! ```
//!
//! Prints `name value` lines (`encode_cpu_us` is the encode + compress part of
//! `cycle_cpu_us`), and with `--per-collector` one line per collector:
//! `collector NAME on|off SAMPLES COLLECT_US ENCODE_US`. The floor list has one
//! operation a line: `read PATH`, `list PATH` or `statfs PATH`. Everything is timed
//! with CLOCK_PROCESS_CPUTIME_ID, which counts every thread (the filesystem
//! collector's statfs runs on a worker thread).

use nix::time::{clock_gettime, ClockId};
use sc_agent::batch::Batch;
use sc_agent::collector::{Registry, TABLE};
use sc_agent::config::Config;
use sc_agent::relabel::Stage;
use sc_agent::remote_write::encode::Encoder;
use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Cycles run before timing, so buffers have reached their size.
const WARM_UP_CYCLES: u32 = 20;
/// The timestamp of every batch: fixed, so runs encode the same bytes.
const TIMESTAMP_MS: i64 = 1_764_000_000_000;

fn cpu_time() -> Duration {
    clock_gettime(ClockId::CLOCK_PROCESS_CPUTIME_ID)
        .map(Duration::from)
        .unwrap_or_default()
}

/// The collectors of one config with the batch and encoder they fill, as one cycle
/// of the agent runs them.
struct Pipeline {
    registry: Registry,
    batch: Batch,
    relabel: Stage,
    encoder: Encoder,
}

/// What the last cycle encoded.
#[derive(Clone, Copy, Default)]
struct Encoded {
    samples: usize,
    raw_len: usize,
    wire_len: usize,
}

impl Pipeline {
    fn new(config: &Config) -> Self {
        let mut batch = Batch::new();
        batch.set_common_labels(vec![
            ("vm_id".into(), config.vm_id.clone()),
            ("job".into(), config.job.clone()),
            (
                "instance".into(),
                config.instance.clone().unwrap_or_default(),
            ),
        ]);
        Pipeline {
            registry: Registry::new(config),
            batch,
            relabel: Stage::new(&config.remote_write),
            encoder: Encoder::new(),
        }
    }

    fn collect(&mut self) {
        self.batch.begin(TIMESTAMP_MS);
        self.registry.collect(&mut self.batch);
    }

    /// Relabels, encodes and compresses the batch as the last collect left it.
    fn encode(&mut self) -> Result<Encoded, String> {
        let selected = self.relabel.select(&self.batch);
        let encoded = self
            .encoder
            .encode_selected(&selected)
            .map_err(|e| format!("encoding a batch: {e}"))?;
        Ok(Encoded {
            samples: encoded.samples,
            raw_len: encoded.raw_len,
            wire_len: encoded.body.len(),
        })
    }

    fn cycle(&mut self) -> Result<Encoded, String> {
        self.collect();
        self.encode()
    }

    /// CPU per call of `step` after a warm-up, and what its last call returned.
    fn time<T: Default>(
        &mut self,
        cycles: u32,
        mut step: impl FnMut(&mut Self) -> Result<T, String>,
    ) -> Result<(Duration, T), String> {
        for _ in 0..WARM_UP_CYCLES {
            step(self)?;
        }
        let start = cpu_time();
        let mut last = T::default();
        for _ in 0..cycles {
            last = step(self)?;
        }
        Ok(((cpu_time() - start) / cycles, last))
    }
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

/// CPU per pass over the floor list.
fn time_floor(list: &str, cycles: u32) -> Result<(usize, Duration), String> {
    let text = std::fs::read_to_string(list).map_err(|e| format!("floor list {list}: {e}"))?;
    let ops = parse_floor(&text);
    let mut buf = Vec::with_capacity(1 << 16);
    for _ in 0..WARM_UP_CYCLES {
        floor_pass(&ops, &mut buf);
    }
    let start = cpu_time();
    for _ in 0..cycles {
        floor_pass(&ops, &mut buf);
    }
    Ok((ops.len(), (cpu_time() - start) / cycles))
}

/// The config the bench runs: `--config PATH`, or the built-in defaults on this
/// machine's /proc and /sys; a fixed identity either way.
fn load_config(path: Option<&str>) -> Result<Config, String> {
    let mut config = match path {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| format!("config {path}: {e}"))?;
            Config::from_yaml(&text).map_err(|e| format!("config {path}: {e}"))?
        }
        None => Config::default(),
    };
    config.check().map_err(|e| format!("config: {e}"))?;
    config.vm_id = "bench-vm".to_owned();
    config.instance = Some("bench-host".to_owned());
    Ok(config)
}

/// `base` with only the collector `name` enabled (with its default options).
fn only(base: &Config, name: &str) -> Result<Config, String> {
    let yaml = format!("collectors:\n  disable_defaults: true\n  {name}: true\n");
    let mut config = Config::from_yaml(&yaml).map_err(|e| format!("collector {name}: {e}"))?;
    config.paths = base.paths.clone();
    config.vm_id = base.vm_id.clone();
    config.instance = base.instance.clone();
    Ok(config)
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

struct Args {
    cycles: u32,
    config: Option<String>,
    floor: Option<String>,
    per_collector: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        cycles: 1000,
        config: None,
        floor: None,
        per_collector: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--cycles" => {
                let n = value()?;
                args.cycles = n
                    .parse()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or(format!("--cycles {n}: expected a positive integer"))?;
            }
            "--config" => args.config = Some(value()?),
            "--floor" => args.floor = Some(value()?),
            "--per-collector" => args.per_collector = true,
            // `cargo bench` passes --bench to every bench target.
            "--bench" => {}
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(args)
}

fn run() -> Result<(), String> {
    let args = parse_args()?;
    let config = load_config(args.config.as_deref())?;

    let mut pipeline = Pipeline::new(&config);
    let (per_cycle, last) = pipeline.time(args.cycles, Pipeline::cycle)?;
    let (encode, _) = pipeline.time(args.cycles, Pipeline::encode)?;
    println!("cycle_cpu_us {:.1}", us(per_cycle));
    println!("encode_cpu_us {:.1}", us(encode));
    println!("samples_per_cycle {}", last.samples);
    println!("protobuf_bytes {}", last.raw_len);
    println!("wire_bytes {}", last.wire_len);
    println!(
        "wire_bytes_per_sample {:.2}",
        last.wire_len as f64 / last.samples.max(1) as f64
    );
    println!(
        "compression_ratio {:.2}",
        last.raw_len as f64 / last.wire_len.max(1) as f64
    );
    println!(
        "cpu_ns_per_sample {:.1}",
        per_cycle.as_secs_f64() * 1e9 / last.samples.max(1) as f64
    );

    if let Some(list) = &args.floor {
        let (ops, floor) = time_floor(list, args.cycles)?;
        println!("floor_operations {ops}");
        println!("floor_cpu_us {:.1}", us(floor));
        println!(
            "cpu_ratio {:.2}",
            per_cycle.as_secs_f64() / floor.as_secs_f64().max(1e-9)
        );
    }

    if args.per_collector {
        for descriptor in TABLE {
            let mut pipeline = Pipeline::new(&only(&config, descriptor.name)?);
            let (collect, ()) = pipeline.time(args.cycles, |p| {
                p.collect();
                Ok(())
            })?;
            // The same batch encoded again and again: encode's own cost, not the
            // difference of two noisy timings.
            let (encode, last) = pipeline.time(args.cycles, Pipeline::encode)?;
            println!(
                "collector {} {} {} {:.1} {:.1}",
                descriptor.name,
                if descriptor.enabled_by_default {
                    "on"
                } else {
                    "off"
                },
                last.samples,
                us(collect),
                us(encode),
            );
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cycle_cost: {e}");
            ExitCode::FAILURE
        }
    }
}

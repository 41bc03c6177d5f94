//! CPU and memory of `write_relabel_configs`: 20 rules over 5,000 series, once cold
//! (every series relabeled) and then cached (every series found in the cache), timed
//! with CLOCK_PROCESS_CPUTIME_ID; then the delivery side of a whole cycle (fill the
//! batch, the relabel stage, encode) without and with the rules. A counting
//! allocator gives the cache's heap and checks that a steady cycle allocates
//! nothing.
//!
//! ```text
//! cargo bench --bench relabel_cost -- --cycles 1000
//! ```

use nix::time::{clock_gettime, ClockId};
use sc_agent::batch::{Batch, Kind};
use sc_agent::config::RemoteWriteConfig;
use sc_agent::relabel::{Outcome, Relabeler, Rules, Selected, Stage};
use sc_agent::remote_write::encode::Encoder;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering};
use std::time::Duration;

/// Counts live heap bytes and allocation calls.
struct Counting;

static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE_BYTES.fetch_add(layout.size() as isize, Ordering::Relaxed);
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE_BYTES.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE_BYTES.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const RULES: &str = r#"
- {source_labels: [__name__], regex: 'node_scrape_.*', action: drop}
- {source_labels: [__name__], regex: 'node_cpu_guest_seconds_total', action: drop}
- {source_labels: [__name__], regex: 'node_.*|sc_agent_.*', action: keep}
- {source_labels: [device], regex: 'veth.*|docker.*|br-.*', action: drop}
- {source_labels: [__name__, device], regex: 'node_network_.*;lo', action: drop}
- {source_labels: [instance], regex: '([^.]+)\..*', target_label: instance, replacement: '$1'}
- {target_label: region, replacement: eu-west-1}
- {target_label: cluster, replacement: prod-1}
- {regex: '__meta_(.+)', action: labelmap}
- {source_labels: [instance], target_label: __tmp_shard, modulus: 4, action: hashmod}
- {source_labels: [fstype], target_label: fstype, action: lowercase}
- {source_labels: [mountpoint], regex: '/', target_label: root_fs, replacement: 'yes'}
- {source_labels: [device], target_label: mountpoint, action: dropequal}
- {source_labels: [job], target_label: job, action: keepequal}
- {source_labels: [__name__, mode], separator: ':', regex: 'node_cpu_seconds_total:(idle|iowait)', target_label: idle_kind, replacement: '$1'}
- {source_labels: [device], regex: '(nvme\d+)n\d+', target_label: controller, replacement: '$1'}
- {regex: env, action: labeldrop}
- {regex: '__name__|__tmp_shard|cluster|controller|cpu|device|fstype|idle_kind|instance|job|mode|mountpoint|region|root_fs|vm_id', action: labelkeep}
- {regex: __tmp_shard, action: labeldrop}
- {source_labels: [vm_id], regex: '(.{8}).*', target_label: vm_short, replacement: '$1'}
"#;

/// 5,000 series shaped like node_exporter's: CPUs, network devices (some to drop),
/// disks, filesystems and single series.
fn fill(batch: &mut Batch) {
    batch.set_common_labels(
        [
            ("vm_id", "4c586419-7f6c-448d-aeec-ca4fa5b05e60"),
            ("job", "node"),
            ("instance", "web-17.eu-west-1.example.com"),
            ("env", "prod"),
        ]
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect(),
    );
    batch.begin(0);
    let mut cpu = batch.family("node_cpu_seconds_total", "h", Kind::Counter);
    for n in 0..64 {
        for mode in [
            "idle", "iowait", "irq", "nice", "softirq", "steal", "system", "user",
        ] {
            cpu.series().label("cpu", n).label("mode", mode).value(1.0);
        }
    }
    for metric in 0..20 {
        let mut family = batch.family(
            format_args!("node_network_metric{metric}_total"),
            "h",
            Kind::Counter,
        );
        for n in 0..100 {
            let device = match n % 10 {
                0 => format!("veth{n:04x}"),
                1 if n == 1 => "lo".to_owned(),
                _ => format!("eth{n}"),
            };
            family.series().label("device", &device).value(1.0);
        }
    }
    for metric in 0..20 {
        let mut family = batch.family(
            format_args!("node_disk_metric{metric}_total"),
            "h",
            Kind::Counter,
        );
        for n in 0..50 {
            let device = if n % 2 == 0 {
                format!("nvme{}n1", n / 2)
            } else {
                format!("sd{}", n)
            };
            family.series().label("device", &device).value(1.0);
        }
    }
    for metric in 0..10 {
        let mut family = batch.family(
            format_args!("node_filesystem_metric{metric}_bytes"),
            "h",
            Kind::Gauge,
        );
        for n in 0..50 {
            let mountpoint = if n == 0 {
                "/".to_owned()
            } else {
                format!("/srv/data{n}")
            };
            family
                .series()
                .label("device", format_args!("/dev/vd{n}"))
                .label("fstype", if n % 3 == 0 { "EXT4" } else { "xfs" })
                .label("mountpoint", &mountpoint)
                .value(1.0);
        }
    }
    for n in 0..988 {
        batch
            .family(format_args!("node_misc_metric{n}"), "h", Kind::Gauge)
            .sample(&[], 1.0);
    }
}

fn cpu_time() -> Duration {
    clock_gettime(ClockId::CLOCK_PROCESS_CPUTIME_ID)
        .map(Duration::from)
        .unwrap_or_default()
}

/// One cycle of the relabeler alone: every series through it, its labels read as
/// an encoder would. Returns the number of label bytes read, so that nothing is
/// optimized away.
fn cycle(batch: &Batch, relabeler: &mut Relabeler) -> usize {
    let mut read = 0;
    relabeler.begin(batch);
    for family in batch.families() {
        for (position, series) in family.positions().zip(family.series()) {
            read += match relabeler.apply(position, &series).outcome {
                Outcome::Relabeled(labels) => labels.map(|(n, v)| n.len() + v.len()).sum(),
                Outcome::Unchanged => series
                    .labels_with_name()
                    .map(|(n, v)| n.len() + v.len())
                    .sum(),
                Outcome::Dropped | Outcome::Invalid => 0,
            };
        }
    }
    relabeler.end_cycle();
    read
}

/// The same reading without relabeling: what the encoder does anyway.
fn read_only(batch: &Batch) -> usize {
    let mut read = 0;
    for family in batch.families() {
        for series in family.series() {
            read += series
                .labels_with_name()
                .map(|(n, v)| n.len() + v.len())
                .sum::<usize>();
        }
    }
    read
}

/// The mean CPU time of `cycles` runs of `run`, and the allocations they made.
fn measure(cycles: usize, mut run: impl FnMut() -> usize) -> (Duration, usize) {
    let allocations = ALLOCATIONS.load(Ordering::Relaxed);
    let start = cpu_time();
    for _ in 0..cycles {
        std::hint::black_box(run());
    }
    let spent = (cpu_time() - start) / cycles as u32;
    (spent, ALLOCATIONS.load(Ordering::Relaxed) - allocations)
}

fn main() {
    let mut cycles = 1000usize;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--cycles" {
            cycles = args.next().and_then(|n| n.parse().ok()).unwrap_or(cycles);
        }
    }
    let rules: Rules = match serde_yaml::from_str(RULES) {
        Ok(rules) => rules,
        Err(e) => {
            eprintln!("rules: {e}");
            std::process::exit(1);
        }
    };
    let mut batch = Batch::new();
    fill(&mut batch);
    println!("{} series, {} rules", batch.len(), rules.len());
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let series_count = batch.len();
    let per_series = |d: Duration| d.as_nanos() as f64 / series_count as f64;

    // Cold: a fresh relabeler each time, so that every series runs the rules.
    let cold_runs = 20;
    let mut cold = Duration::ZERO;
    for _ in 0..cold_runs {
        let mut relabeler = Relabeler::new(rules.clone());
        let start = cpu_time();
        std::hint::black_box(cycle(&batch, &mut relabeler));
        cold += cpu_time() - start;
    }
    let cold = cold / cold_runs;

    let before = LIVE_BYTES.load(Ordering::Relaxed);
    let mut relabeler = Relabeler::new(rules.clone());
    cycle(&batch, &mut relabeler);
    let heap = LIVE_BYTES.load(Ordering::Relaxed) - before;
    let (cached, cached_allocations) = measure(cycles, || cycle(&batch, &mut relabeler));
    let (floor, _) = measure(cycles, || read_only(&batch));

    // The delivery side of a cycle: the batch as collected (5,000 series written by
    // `fill`, a stand-in for collecting, far cheaper than reading /proc), then the
    // relabel stage and the encoder, as remote write runs them.
    let (filled, _) = measure(cycles, || {
        fill(&mut batch);
        batch.len()
    });
    let mut encoder = Encoder::new();
    for _ in 0..3 {
        let _ = encoder.encode_selected(&Selected::all(&batch));
    }
    let (encode_all, encode_allocations) = measure(cycles, || {
        encoder
            .encode_selected(&Selected::all(&batch))
            .map_or(0, |e| e.samples)
    });
    let config = RemoteWriteConfig {
        write_relabel_configs: rules.clone(),
        ..RemoteWriteConfig::default()
    };
    let mut stage = Stage::new(&config);
    for _ in 0..3 {
        let selected = stage.select(&batch);
        let _ = encoder.encode_selected(&selected);
    }
    let (select, select_allocations) = measure(cycles, || {
        let selected = stage.select(&batch);
        selected.families().map(|f| f.series().count()).sum()
    });
    let (select_encode, select_encode_allocations) = measure(cycles, || {
        let selected = stage.select(&batch);
        encoder.encode_selected(&selected).map_or(0, |e| e.samples)
    });
    let sent: usize = stage
        .select(&batch)
        .families()
        .map(|f| f.series().count())
        .sum();

    println!(
        "relabeler, cold:   {:>7.3} ms a cycle ({:.0} ns a series), mean of {cold_runs}",
        ms(cold),
        per_series(cold)
    );
    println!(
        "relabeler, cached: {:>7.3} ms a cycle ({:.0} ns a series), mean of {cycles}; \
         {cached_allocations} allocations",
        ms(cached),
        per_series(cached)
    );
    println!(
        "floor:             {:>7.3} ms a cycle ({:.0} ns a series): reading the labels \
         without relabeling",
        ms(floor),
        per_series(floor)
    );
    println!(
        "cache heap: {heap} B ({:.0} B a series), runs of the rules: {}",
        heap as f64 / series_count as f64,
        relabeler.runs()
    );
    println!(
        "fill the batch (collect stand-in): {:>7.3} ms a cycle",
        ms(filled)
    );
    println!(
        "encode, no rules:        {:>7.3} ms a cycle, {} series; {encode_allocations} allocations",
        ms(encode_all),
        series_count
    );
    println!(
        "stage, 20 rules:         {:>7.3} ms a cycle ({:.0} ns a series); {select_allocations} allocations",
        ms(select),
        per_series(select)
    );
    println!(
        "stage + encode, 20 rules: {:>6.3} ms a cycle, {sent} series sent; \
         {select_encode_allocations} allocations",
        ms(select_encode)
    );
    let cycle = filled + encode_all;
    println!(
        "the stage is {:.1}% of fill + encode without rules ({:.3} ms); \
         fill + stage + encode with the rules is {:+.1}% (they drop {} series)",
        select.as_secs_f64() / cycle.as_secs_f64() * 100.0,
        ms(cycle),
        ((filled + select_encode).as_secs_f64() / cycle.as_secs_f64() - 1.0) * 100.0,
        series_count - sent
    );
}

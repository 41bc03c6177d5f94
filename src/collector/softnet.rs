//! `node_softnet_*{cpu}` from /proc/net/softnet_stat: per CPU, the packets the
//! network stack's softirq processed and dropped, its budget squeezes, and so on, as
//! node_exporter 1.12 reports them.
//!
//! One line per CPU of hexadecimal 32-bit columns whose number grew with the kernel,
//! read as procfs reads them: at least 9 (processed, dropped, time_squeeze, five
//! unused, cpu_collision), then received_rps (10, Linux 2.6.39), flow_limit_count
//! (11, Linux 4.18), backlog length and CPU index (13, Linux 5.10); Linux 6.x has 15
//! (input_qlen and process_qlen), whose extra columns are ignored. The first 9 columns
//! and each further one used must parse; fewer than 9 is an error.
//!
//! The `cpu` label is the CPU index of column 13 where the line has one, the line's
//! position (from 0) otherwise, as node_exporter 1.12 sets it: with CPUs offline the
//! kernel skips their lines, so the position would name the wrong CPU.
//!
//! Differences from node_exporter 1.5: 1.5 labels every line with its position, also
//! when the line has an index, and only knows lines of exactly 9, 11 or 13+ columns
//! (a line of 10 or 12 is dropped; 1.12 reads what it has). Where two lines carry the
//! same index (never from the kernel) node_exporter would export the series twice and
//! fail the scrape; here the first line wins.

use super::{read_file, Build, CollectError, Collector, Context};
use crate::batch::{Batch, Kind};
use crate::config::collectors::NoOptions;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// One CPU's line.
#[derive(Default)]
struct Row {
    index: u32,
    processed: u32,
    dropped: u32,
    time_squeezed: u32,
    cpu_collision: u32,
    received_rps: u32,
    flow_limit_count: u32,
    backlog_len: u32,
}

/// The fewest columns a line may have (Linux 2.6.23).
const MIN_COLUMNS: usize = 9;

/// The widest line read: columns past it are not used.
const MAX_USED: usize = 13;

fn parse_row(line: &str, position: usize) -> Result<Row, String> {
    let mut fields = [""; MAX_USED];
    let mut width = 0;
    for field in line.split_ascii_whitespace() {
        if let Some(slot) = fields.get_mut(width) {
            *slot = field;
        }
        width += 1;
    }
    if width < MIN_COLUMNS {
        return Err(format!("{width} columns, expected at least {MIN_COLUMNS}"));
    }
    let column = |at: usize| -> Result<u32, String> {
        let field = fields.get(at).copied().unwrap_or_default();
        parse_hex(field).ok_or_else(|| {
            format!(
                "column {}: expected a 32-bit hexadecimal figure, got {field:?}",
                at + 1
            )
        })
    };
    // procfs parses the first nine columns, then each further one it uses.
    let mut first = [0u32; MIN_COLUMNS];
    for (at, value) in first.iter_mut().enumerate() {
        *value = column(at)?;
    }
    let [processed, dropped, time_squeezed, .., cpu_collision] = first;
    let mut row = Row {
        index: u32::try_from(position).unwrap_or(u32::MAX),
        processed,
        dropped,
        time_squeezed,
        cpu_collision,
        ..Row::default()
    };
    if width >= 10 {
        row.received_rps = column(9)?;
    }
    if width >= 11 {
        row.flow_limit_count = column(10)?;
    }
    if width >= 13 {
        row.backlog_len = column(11)?;
        row.index = column(12)?;
    }
    Ok(row)
}

/// Go's `ParseUint(s, 16, 32)`: hex digits only, no prefix or sign.
fn parse_hex(field: &str) -> Option<u32> {
    Some(field)
        .filter(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_hexdigit()))
        .and_then(|f| u32::from_str_radix(f, 16).ok())
}

/// A family: its name, HELP, type, and the column of a [`Row`] it reports.
type Family = (&'static str, &'static str, Kind, fn(&Row) -> u32);

const FAMILIES: [Family; 7] = [
    ("node_softnet_processed_total", "Number of processed packets", Kind::Counter, |r| r.processed),
    ("node_softnet_dropped_total", "Number of dropped packets", Kind::Counter, |r| r.dropped),
    (
        "node_softnet_times_squeezed_total",
        "Number of times processing packets ran out of quota",
        Kind::Counter,
        |r| r.time_squeezed,
    ),
    (
        "node_softnet_cpu_collision_total",
        "Number of collision occur while obtaining device lock while transmitting",
        Kind::Counter,
        |r| r.cpu_collision,
    ),
    (
        "node_softnet_received_rps_total",
        "Number of times cpu woken up received_rps",
        Kind::Counter,
        |r| r.received_rps,
    ),
    (
        "node_softnet_flow_limit_count_total",
        "Number of times flow limit has been reached",
        Kind::Counter,
        |r| r.flow_limit_count,
    ),
    ("node_softnet_backlog_len", "Softnet backlog status", Kind::Gauge, |r| r.backlog_len),
];

pub struct Softnet {
    path: PathBuf,
    buf: String,
    rows: Vec<Row>,
    seen: HashSet<u32>,
    label: String,
}

impl Softnet {
    pub fn new(procfs: &Path) -> Self {
        Softnet {
            path: procfs.join("net/softnet_stat"),
            buf: String::new(),
            rows: Vec::new(),
            seen: HashSet::new(),
            label: String::new(),
        }
    }
}

impl Build for Softnet {
    type Options = NoOptions;

    const SOURCES: &'static [&'static str] = &["proc/net/softnet_stat"];

    fn build(context: &Context<'_>, _options: &NoOptions) -> Self {
        Softnet::new(&context.paths.procfs)
    }
}

impl Collector for Softnet {
    fn collect(&mut self, out: &mut Batch) -> Result<(), CollectError> {
        use std::fmt::Write as _;
        read_file(&self.path, &mut self.buf)?;
        self.rows.clear();
        self.seen.clear();
        for (position, line) in self.buf.lines().enumerate() {
            let row = parse_row(line, position)
                .map_err(|what| CollectError::parse(&self.path, position + 1, what))?;
            if self.seen.insert(row.index) {
                self.rows.push(row);
            }
        }
        if self.rows.is_empty() {
            return Ok(());
        }
        for (name, help, kind, column) in FAMILIES {
            let mut family = out.family(name, help, kind);
            for row in &self.rows {
                self.label.clear();
                let _ = write!(self.label, "{}", row.index);
                family.sample(&[("cpu", &self.label)], f64::from(column(row)));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{render, TempDir};

    fn samples(text: &str, family: &str) -> Vec<String> {
        text.lines()
            .filter(|l| l.starts_with(&format!("{family}{{")))
            .map(str::to_owned)
            .collect()
    }

    fn line(columns: &[u32]) -> String {
        columns.iter().map(|c| format!("{c:08x}")).collect::<Vec<_>>().join(" ")
    }

    #[test]
    fn reads_every_width_from_9_to_15_columns() {
        let dir = TempDir::new();
        let full: Vec<u32> = (1..=15).collect();
        // One line of each width; the index column (13) says CPU 7 where present.
        let mut text = String::new();
        for width in 9..=15 {
            let mut columns = full[..width].to_vec();
            if width >= 13 {
                columns[12] = 7 + width as u32;
            }
            text.push_str(&line(&columns));
            text.push('\n');
        }
        dir.write("net/softnet_stat", &text);
        let text = render(&mut Softnet::new(dir.path())).unwrap();
        assert!(text.starts_with(
            "# HELP node_softnet_processed_total Number of processed packets\n\
             # TYPE node_softnet_processed_total counter\n"
        ));
        assert!(text.contains("# TYPE node_softnet_backlog_len gauge\n"));
        let cpus = ["0", "1", "2", "3", "20", "21", "22"];
        let expect = |family: &str, values: [u32; 7]| -> Vec<String> {
            cpus.iter()
                .zip(values)
                .map(|(cpu, v)| format!("{family}{{cpu=\"{cpu}\"}} {v}"))
                .collect()
        };
        assert_eq!(samples(&text, "node_softnet_processed_total"), expect("node_softnet_processed_total", [1; 7]));
        assert_eq!(samples(&text, "node_softnet_dropped_total"), expect("node_softnet_dropped_total", [2; 7]));
        assert_eq!(samples(&text, "node_softnet_times_squeezed_total"), expect("node_softnet_times_squeezed_total", [3; 7]));
        assert_eq!(samples(&text, "node_softnet_cpu_collision_total"), expect("node_softnet_cpu_collision_total", [9; 7]));
        assert_eq!(samples(&text, "node_softnet_received_rps_total"), expect("node_softnet_received_rps_total", [0, 10, 10, 10, 10, 10, 10]));
        assert_eq!(samples(&text, "node_softnet_flow_limit_count_total"), expect("node_softnet_flow_limit_count_total", [0, 0, 11, 11, 11, 11, 11]));
        assert_eq!(samples(&text, "node_softnet_backlog_len"), expect("node_softnet_backlog_len", [0, 0, 0, 0, 12, 12, 12]));
    }

    #[test]
    fn malformed_lines_name_the_file_and_line() {
        let dir = TempDir::new();
        let good = line(&[0; 13]);
        for (bad, what) in [
            ("0 0 0 0 0 0 0 0".to_owned(), "8 columns, expected at least 9"),
            (String::new(), "0 columns, expected at least 9"),
            (good.replacen("00000000", "100000000", 1), "column 1: expected a 32-bit hexadecimal figure, got \"100000000\""),
            (good.replacen("00000000", "0x1", 1), "column 1: expected a 32-bit hexadecimal figure, got \"0x1\""),
            (format!("{} zz 0 0 0", line(&[0; 9])), "column 10: expected a 32-bit hexadecimal figure, got \"zz\""),
            (format!("{} 0 0 zz 0", line(&[0; 9])), "column 12: expected a 32-bit hexadecimal figure, got \"zz\""),
            (format!("{} 0 0 0 -1", line(&[0; 9])), "column 13: expected a 32-bit hexadecimal figure, got \"-1\""),
        ] {
            dir.write("net/softnet_stat", &format!("{good}\n{bad}\n"));
            let err = render(&mut Softnet::new(dir.path())).unwrap_err();
            assert!(err.to_string().ends_with(&format!("net/softnet_stat line 2: {what}")), "{bad:?}: {err}");
        }
    }

    #[test]
    fn unused_columns_are_not_checked_and_a_repeated_cpu_is_reported_once() {
        let dir = TempDir::new();
        // Column 12 is unused on a line of 12 columns, columns 14 and later on any.
        let twelve = format!("{} 0 0 zz", line(&[5; 9]));
        let fifteen = format!("{} zz zz", line(&[1, 2, 3, 0, 0, 0, 0, 0, 4, 5, 6, 7, 3]));
        let repeat = line(&[9, 9, 9, 0, 0, 0, 0, 0, 9, 9, 9, 9, 3]);
        dir.write("net/softnet_stat", &format!("{twelve}\n{fifteen}\n{repeat}\n"));
        let mut softnet = Softnet::new(dir.path());
        for _ in 0..2 {
            let text = render(&mut softnet).unwrap();
            assert_eq!(
                samples(&text, "node_softnet_processed_total"),
                ["node_softnet_processed_total{cpu=\"0\"} 5", "node_softnet_processed_total{cpu=\"3\"} 1"]
            );
        }
        dir.write("net/softnet_stat", "");
        assert_eq!(render(&mut softnet).unwrap(), "");
    }

    #[test]
    fn reads_this_machines_file() {
        let Ok(text) = std::fs::read_to_string("/proc/net/softnet_stat") else {
            return;
        };
        let out = render(&mut Softnet::new(Path::new("/proc"))).unwrap();
        assert_eq!(samples(&out, "node_softnet_processed_total").len(), text.lines().count());
    }
}

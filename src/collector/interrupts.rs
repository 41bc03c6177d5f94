//! `node_interrupts_total{cpu,type,info,devices}` from /proc/interrupts: how many
//! times each interrupt fired on each CPU, as node_exporter 1.12's `interrupts`
//! collector reports it (off by default there, and here: one series per interrupt
//! and CPU, thousands on a large machine).
//!
//! Read as node_exporter reads it:
//!
//! - the header's fields are counted, one per CPU column; `cpu` is a column's
//!   position from 0, not the number in its header (with CPUs offline the kernel
//!   leaves their columns out, so `CPU0 CPU2` is labelled `0` and `1`);
//! - each row is split at its first `:` (on aarch64 a large count can touch the name,
//!   `IPI0:2768808080`), then into fields: one count per CPU, then the details. A row
//!   with no `:` or without a field after the counts (`ERR:`, `MIS:`, which have one
//!   count for all CPUs) is skipped;
//! - `type` is the name before the `:` (leading blanks trimmed); a numbered
//!   interrupt's `info` is the first detail (its chip: `IO-APIC`, `PCI-MSIX-0000:00:04.0`,
//!   `GICv3`) and `devices` the rest joined by single blanks (`1-edge virtio3-rx`); a
//!   named one (`NMI`, `LOC`, `IPI0`) has all its details in `info` and `devices` empty;
//! - the counts are read as Go's `ParseFloat` reads them; one that is not a number
//!   fails the collector.
//!
//! Options, as node_exporter 1.12's flags: `name_include`/`name_exclude` match
//! `<type>;<info>;<devices>` (`--collector.interrupts.name-include/-exclude`; a row
//! left out is not parsed), and `include_zeros: false` leaves out counts of 0
//! (`--collector.interrupts.include-zeros`, on by default).
//!
//! The file is streamed line by line through one kept 64 KiB chunk, up to 4 MiB
//! (about 380,000 counts as the kernel prints them). Differences from node_exporter,
//! to bound the input: a line of 64 KiB or more fails the collector, as it does
//! there (Go's `Scanner` limit); more than [`MAX_SERIES`] series fail it too (the
//! error names the filters), where node_exporter exports them all; a name on two rows
//! (never from the kernel) keeps its first row, where node_exporter's map keeps the
//! last; a line that is not UTF-8 is an error; on an error nothing of the cycle is
//! reported. node_exporter 1.5 splits rows at blanks only, so it misreads the aarch64
//! rows above (and fails on them); 1.5 has none of the options.

use super::{for_each_line, Build, CollectError, Collector, Context, Seen, MAX_FILE_BYTES};
use crate::batch::{Batch, Kind};
use crate::config::collectors;
use crate::config::pattern::{self, Filter, Pattern};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The most series one cycle reports: 256 CPUs of 1,024 interrupts.
pub const MAX_SERIES: usize = 1 << 18;

/// `collectors.interrupts`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Options {
    /// Only interrupts whose `<type>;<info>;<devices>` matches (empty: all).
    #[serde(deserialize_with = "pattern::filter")]
    pub name_include: Option<Pattern>,
    /// Interrupts whose `<type>;<info>;<devices>` matches are left out (empty: none).
    #[serde(deserialize_with = "pattern::filter")]
    pub name_exclude: Option<Pattern>,
    /// Whether counts of 0 are reported.
    pub include_zeros: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            name_include: None,
            name_exclude: None,
            include_zeros: true,
        }
    }
}

impl collectors::Options for Options {}

pub struct Interrupts {
    path: PathBuf,
    filter: Filter,
    include_zeros: bool,
    chunk: Vec<u8>,
    /// The `cpu` label values, "0", "1", ...; grown to the widest header seen.
    cpus: Vec<String>,
    row: Row,
    seen: Seen,
}

/// One row's label values, in kept buffers.
#[derive(Default)]
struct Row {
    info: String,
    devices: String,
    /// `<type>;<info>;<devices>`, which the filters match.
    filter_name: String,
}

impl Interrupts {
    pub fn new(procfs: &Path, options: &Options) -> Self {
        Interrupts {
            path: procfs.join("interrupts"),
            filter: Filter {
                include: options.name_include.clone(),
                exclude: options.name_exclude.clone(),
            },
            include_zeros: options.include_zeros,
            chunk: Vec::new(),
            cpus: Vec::new(),
            row: Row::default(),
            seen: Seen::default(),
        }
    }
}

/// Joins `fields` into `out` with single blanks, as Go's `strings.Join`.
fn join<'a>(out: &mut String, fields: impl Iterator<Item = &'a str>) {
    out.clear();
    for (n, field) in fields.enumerate() {
        if n > 0 {
            out.push(' ');
        }
        out.push_str(field);
    }
}

impl Build for Interrupts {
    type Options = Options;

    const SOURCES: &'static [&'static str] = &["proc/interrupts"];

    fn build(context: &Context<'_>, options: &Options) -> Self {
        Interrupts::new(&context.paths.procfs, options)
    }
}

impl Collector for Interrupts {
    fn collect(&mut self, out: &mut Batch) -> Result<(), CollectError> {
        let Interrupts {
            path,
            filter,
            include_zeros,
            chunk,
            cpus,
            row,
            seen,
        } = self;
        let path: &Path = path;
        seen.clear();
        let mut family = out.family("node_interrupts_total", "Interrupt details.", Kind::Counter);
        let (mut columns, mut series) = (None, 0);
        let found = for_each_line(path, chunk, MAX_FILE_BYTES as u64, |number, line| {
            let Some(columns) = columns else {
                let count = line.split_whitespace().count();
                while cpus.len() < count {
                    cpus.push(cpus.len().to_string());
                }
                columns = Some(count);
                return Ok(());
            };
            let Some((name, rest)) = line.split_once(':') else {
                return Ok(());
            };
            if rest.split_whitespace().nth(columns).is_none() {
                return Ok(());
            }
            let name = name.trim_start_matches(' ');
            let mut details = rest.split_whitespace().skip(columns);
            if name.parse::<i64>().is_ok() {
                row.info.clear();
                row.info.push_str(details.next().unwrap_or_default());
                join(&mut row.devices, details);
            } else {
                join(&mut row.info, details);
                row.devices.clear();
            }
            row.filter_name.clear();
            let _ = write!(row.filter_name, "{name};{};{}", row.info, row.devices);
            if !filter.allows(&row.filter_name) || !seen.first(name) {
                return Ok(());
            }
            for (cpu, count) in cpus.iter().zip(rest.split_whitespace().take(columns)) {
                let value = super::go_parse::parse_float(count).ok_or_else(|| {
                    CollectError::parse(
                        path,
                        number,
                        format!("{name}: CPU {cpu}: expected a count, got {count:?}"),
                    )
                })?;
                if !*include_zeros && value == 0.0 {
                    continue;
                }
                series += 1;
                if series > MAX_SERIES {
                    return Err(CollectError::new(format!(
                        "{}: more than {MAX_SERIES} series (interrupts times CPUs): choose \
                         some with collectors.interrupts.name_include or name_exclude",
                        path.display()
                    )));
                }
                family
                    .series()
                    .label("cpu", cpu)
                    .label("type", name)
                    .label("info", &row.info)
                    .label("devices", &row.devices)
                    .value(value);
            }
            Ok(())
        })?;
        if !found {
            let missing = std::io::Error::from_raw_os_error(nix::libc::ENOENT);
            return Err(CollectError::io(path, &missing));
        }
        if columns.is_none() {
            return Err(CollectError::parse(
                path,
                1,
                "empty: expected a header of CPU columns",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{render, TempDir};

    /// node_exporter's own fixture (collector/fixtures/proc/interrupts), cut to a few
    /// rows of each kind.
    const X86: &str = "           CPU0       CPU1       CPU2       CPU3       \n\
        \x20 0:         18          0          0          0  IR-IO-APIC-edge      timer\n\
        \x2016:     328511     322879     293782     351412  IR-IO-APIC-fasteoi   ehci_hcd:usb1, mmc0\n\
        \x2040:          0          0          0          0  DMAR_MSI-edge      dmar0\n\
        NMI:         47       5031       6211       4968   Non-maskable interrupts\n\
        LOC:  174326351  135776678  168393257  130980079   Local timer interrupts\n\
        ERR:          0\n\
        MIS:          0\n";

    fn series(text: &str) -> Vec<&str> {
        text.lines().filter(|l| !l.starts_with('#')).collect()
    }

    fn collect(contents: &str, options: &Options) -> Result<String, CollectError> {
        let dir = TempDir::new();
        dir.write("interrupts", contents);
        render(&mut Interrupts::new(dir.path(), options))
    }

    #[test]
    fn an_empty_regex_is_no_filter() {
        let options: Options =
            serde_yaml::from_str("name_include: ''\nname_exclude: ''\n").unwrap();
        assert_eq!((options.name_include, options.name_exclude), (None, None));
        let options: Options = serde_yaml::from_str("name_exclude: ^LOC;\n").unwrap();
        assert!(options.name_exclude.is_some_and(|p| p.is_match("LOC;Local timer interrupts;")));
    }

    #[test]
    fn reports_every_cpu_of_every_row_with_details() {
        let text = collect(X86, &Options::default()).unwrap();
        assert!(text.starts_with(
            "# HELP node_interrupts_total Interrupt details.\n\
             # TYPE node_interrupts_total counter\n"
        ));
        let series = series(&text);
        assert_eq!(series.len(), 5 * 4, "{text}");
        for line in [
            "node_interrupts_total{cpu=\"0\",devices=\"timer\",info=\"IR-IO-APIC-edge\",type=\"0\"} 18",
            "node_interrupts_total{cpu=\"3\",devices=\"ehci_hcd:usb1, mmc0\",info=\"IR-IO-APIC-fasteoi\",type=\"16\"} 351412",
            "node_interrupts_total{cpu=\"2\",devices=\"dmar0\",info=\"DMAR_MSI-edge\",type=\"40\"} 0",
            "node_interrupts_total{cpu=\"1\",devices=\"\",info=\"Non-maskable interrupts\",type=\"NMI\"} 5031",
            "node_interrupts_total{cpu=\"3\",devices=\"\",info=\"Non-maskable interrupts\",type=\"NMI\"} 4968",
            "node_interrupts_total{cpu=\"0\",devices=\"\",info=\"Local timer interrupts\",type=\"LOC\"} 174326351",
        ] {
            assert!(series.contains(&line), "no {line} in\n{text}");
        }
        assert!(!text.contains("ERR") && !text.contains("MIS"), "{text}");
    }

    #[test]
    fn aarch64_counts_touching_the_name_are_split_at_the_colon() {
        let text = collect(
            "          CPU0       CPU1\n \
             10: 3287008667 3310445093     GICv3  27 Level     arch_timer\n \
             57:          0         51   ITS-MSI 81920 Edge      ena-mgmnt@pci:0000:00:05.0\n\
             IPI0:2768808080 2844211768       Rescheduling interrupts\n\
             Err:          0\n\
             \x20                                                         \n",
            &Options::default(),
        )
        .unwrap();
        assert_eq!(
            series(&text),
            [
                "node_interrupts_total{cpu=\"0\",devices=\"27 Level arch_timer\",info=\"GICv3\",type=\"10\"} 3287008667",
                "node_interrupts_total{cpu=\"1\",devices=\"27 Level arch_timer\",info=\"GICv3\",type=\"10\"} 3310445093",
                "node_interrupts_total{cpu=\"0\",devices=\"81920 Edge ena-mgmnt@pci:0000:00:05.0\",info=\"ITS-MSI\",type=\"57\"} 0",
                "node_interrupts_total{cpu=\"1\",devices=\"81920 Edge ena-mgmnt@pci:0000:00:05.0\",info=\"ITS-MSI\",type=\"57\"} 51",
                "node_interrupts_total{cpu=\"0\",devices=\"\",info=\"Rescheduling interrupts\",type=\"IPI0\"} 2768808080",
                "node_interrupts_total{cpu=\"1\",devices=\"\",info=\"Rescheduling interrupts\",type=\"IPI0\"} 2844211768",
            ]
        );
    }

    #[test]
    fn cpus_are_numbered_by_column_and_rows_without_details_are_skipped() {
        // CPU1 offline: its column is left out, and the columns are labelled by position.
        let text = collect(
            "           CPU0       CPU2\n  \
             1:          9          7   IO-APIC   1-edge      i8042\n  \
             2:          5          6\n\
             LOC:          3          4\n",
            &Options::default(),
        )
        .unwrap();
        assert_eq!(
            series(&text),
            [
                "node_interrupts_total{cpu=\"0\",devices=\"1-edge i8042\",info=\"IO-APIC\",type=\"1\"} 9",
                "node_interrupts_total{cpu=\"1\",devices=\"1-edge i8042\",info=\"IO-APIC\",type=\"1\"} 7",
            ]
        );
    }

    #[test]
    fn a_numbered_row_with_only_its_chip_has_no_devices() {
        let text = collect("CPU0\n 7: 1 XT-PIC\n 8: 2 XT-PIC  \n", &Options::default()).unwrap();
        assert_eq!(
            series(&text),
            [
                "node_interrupts_total{cpu=\"0\",devices=\"\",info=\"XT-PIC\",type=\"7\"} 1",
                "node_interrupts_total{cpu=\"0\",devices=\"\",info=\"XT-PIC\",type=\"8\"} 2",
            ]
        );
    }

    #[test]
    fn filters_match_type_info_and_devices_and_zeros_can_be_left_out() {
        let pattern = |p: &str| Some(Pattern::new(p).unwrap());
        let types = |text: &str| -> Vec<String> {
            let mut types: Vec<String> = series(text)
                .iter()
                .filter_map(|l| Some(l.split_once("type=\"")?.1.split_once('"')?.0.to_owned()))
                .collect();
            types.dedup();
            types
        };
        let include = Options {
            name_include: pattern("^(NMI|16);|dmar"),
            ..Options::default()
        };
        assert_eq!(types(&collect(X86, &include).unwrap()), ["16", "40", "NMI"]);
        let exclude = Options {
            name_exclude: pattern(";Local timer interrupts;$|;timer$"),
            ..Options::default()
        };
        assert_eq!(types(&collect(X86, &exclude).unwrap()), ["16", "40", "NMI"]);
        let both = Options {
            name_include: pattern("interrupts"),
            name_exclude: pattern("^LOC"),
            ..Options::default()
        };
        assert_eq!(types(&collect(X86, &both).unwrap()), ["NMI"]);
        let no_zeros = Options {
            include_zeros: false,
            ..Options::default()
        };
        let text = collect(X86, &no_zeros).unwrap();
        assert_eq!(series(&text).len(), 20 - 3 - 4, "{text}");
        assert!(!text.contains("} 0\n"), "{text}");
        // A row left out is not parsed: its bad count does not fail the collector.
        let bad = X86.replace("5031", "50x1");
        let skip_nmi = Options {
            name_exclude: pattern("^NMI;"),
            ..Options::default()
        };
        assert!(collect(&bad, &skip_nmi).is_ok());
        let err = collect(&bad, &Options::default()).unwrap_err().to_string();
        assert!(
            err.ends_with("interrupts line 5: NMI: CPU 1: expected a count, got \"50x1\""),
            "{err}"
        );
    }

    #[test]
    fn counts_are_read_as_go_parses_floats() {
        let text = collect("CPU0 CPU1\nX: 1e3 +7 Odd\n", &Options::default()).unwrap();
        assert!(text.contains("type=\"X\"} 1000\n") && text.contains("type=\"X\"} 7\n"), "{text}");
        let err = collect("CPU0\nX: 1e999 Odd\n", &Options::default()).unwrap_err();
        assert!(err.to_string().ends_with("expected a count, got \"1e999\""), "{err}");
    }

    #[test]
    fn a_name_on_two_rows_keeps_its_first() {
        let text = collect("CPU0\n 5: 1 A a\n 5: 2 B b\n", &Options::default()).unwrap();
        assert_eq!(
            series(&text),
            ["node_interrupts_total{cpu=\"0\",devices=\"a\",info=\"A\",type=\"5\"} 1"]
        );
    }

    #[test]
    fn missing_empty_and_oversized_files_fail() {
        let dir = TempDir::new();
        let err = render(&mut Interrupts::new(dir.path(), &Options::default())).unwrap_err();
        assert!(err.to_string().ends_with("interrupts: No such file or directory (os error 2)"), "{err}");
        let err = collect("", &Options::default()).unwrap_err().to_string();
        assert!(err.ends_with("interrupts line 1: empty: expected a header of CPU columns"), "{err}");
        let long = format!("CPU0\nX: 1 {}\n", "y".repeat(70_000));
        let err = collect(&long, &Options::default()).unwrap_err().to_string();
        assert!(err.ends_with("line 2: line longer than 65536 bytes"), "{err}");
        // Many short counts: the series cap, before the 4 MiB cap on the file.
        let header = "C ".repeat(20_000);
        let row = format!("X{{}}: {} end\n", "1 ".repeat(20_000));
        let rows: String = (0..14).map(|n| row.replace("{}", &n.to_string())).collect();
        let err = collect(&format!("{header}\n{rows}"), &Options::default()).unwrap_err();
        assert!(err.to_string().contains("more than 262144 series"), "{err}");
    }

    #[test]
    fn steady_state_reuses_the_cpu_labels() {
        let dir = TempDir::new();
        dir.write("interrupts", X86);
        let mut interrupts = Interrupts::new(dir.path(), &Options::default());
        let first = render(&mut interrupts).unwrap();
        assert_eq!(interrupts.cpus, ["0", "1", "2", "3"]);
        dir.write("interrupts", "CPU0 CPU1\nNMI: 1 2 Non-maskable interrupts\n");
        let second = render(&mut interrupts).unwrap();
        assert_eq!(interrupts.cpus.len(), 4);
        assert_eq!(series(&second).len(), 2, "{second}");
        assert_ne!(first, second);
    }

    #[test]
    fn reads_the_real_file() {
        let text = render(&mut Interrupts::new(Path::new("/proc"), &Options::default())).unwrap();
        let cpus = std::thread::available_parallelism().map_or(1, usize::from);
        let loc = series(&text)
            .iter()
            .filter(|l| l.contains("type=\"LOC\"") || l.contains("type=\"IPI0\""))
            .count();
        assert!(loc == 0 || loc >= cpus.min(2), "{text}");
        assert!(series(&text).len() >= cpus, "{text}");
    }
}

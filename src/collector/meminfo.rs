//! `node_memory_*` from /proc/meminfo, the fields node_exporter 1.12 exports.
//!
//! node_exporter reads the file with procfs's `Meminfo` and exports the fields of
//! that struct it lists, no others: [`FIELDS`], in its names. `Active(anon)` becomes
//! `Active_anon`; a value in kB (which means KiB) becomes `<Field>_bytes` times 1024;
//! the four `HugePages_*` counts keep their name and value.
//!
//! Parsing follows procfs: a line is `Key: value [kB]`, split on whitespace; every
//! line must parse, exported or not (a value that is not a whole number, a unit
//! other than `kB`, more than three fields fail the collector; node_exporter would
//! crash on a line of fewer than two fields, here that fails too). A key listed twice
//! keeps its last value, as procfs's struct does.
//!
//! Changed since node_exporter 1.5, which exported every line of the file (1.9 moved
//! to procfs): fields procfs does not know are no longer exported, among them
//! `FileHugePages`, `FilePmdMapped`, `KReclaimable`, `Hugetlb`, `SecPageTables`,
//! `Unaccepted`, `ShadowCallStack` and `Balloon`. `Zswap` and `Zswapped` are.

use super::{read_file, Build, CollectError, Collector, Context};
use crate::batch::{Batch, Kind};
use crate::config::collectors::NoOptions;
use std::path::{Path, PathBuf};

/// How a field's value becomes the exported one.
#[derive(Clone, Copy, PartialEq)]
enum Unit {
    /// `<name>_bytes`: kB times 1024 (a value without unit is taken as bytes).
    Bytes,
    /// The number as it is, whatever the unit: the `HugePages_*` counts.
    Count,
}

/// A /proc/meminfo key (with its colon) and the metric name node_exporter gives it,
/// after `node_memory_`.
struct Field {
    key: &'static str,
    name: &'static str,
    unit: Unit,
}

const fn bytes(key: &'static str, name: &'static str) -> Field {
    Field {
        key,
        name,
        unit: Unit::Bytes,
    }
}

const fn count(key: &'static str, name: &'static str) -> Field {
    Field {
        key,
        name,
        unit: Unit::Count,
    }
}

/// node_exporter 1.12's `meminfo_linux.go`, in its order.
const FIELDS: [Field; 51] = [
    bytes("Active:", "Active_bytes"),
    bytes("Active(anon):", "Active_anon_bytes"),
    bytes("Active(file):", "Active_file_bytes"),
    bytes("AnonHugePages:", "AnonHugePages_bytes"),
    bytes("AnonPages:", "AnonPages_bytes"),
    bytes("Bounce:", "Bounce_bytes"),
    bytes("Buffers:", "Buffers_bytes"),
    bytes("Cached:", "Cached_bytes"),
    bytes("CmaFree:", "CmaFree_bytes"),
    bytes("CmaTotal:", "CmaTotal_bytes"),
    bytes("CommitLimit:", "CommitLimit_bytes"),
    bytes("Committed_AS:", "Committed_AS_bytes"),
    bytes("DirectMap1G:", "DirectMap1G_bytes"),
    bytes("DirectMap2M:", "DirectMap2M_bytes"),
    bytes("DirectMap4k:", "DirectMap4k_bytes"),
    bytes("Dirty:", "Dirty_bytes"),
    bytes("HardwareCorrupted:", "HardwareCorrupted_bytes"),
    bytes("Hugepagesize:", "Hugepagesize_bytes"),
    bytes("Inactive:", "Inactive_bytes"),
    bytes("Inactive(anon):", "Inactive_anon_bytes"),
    bytes("Inactive(file):", "Inactive_file_bytes"),
    bytes("KernelStack:", "KernelStack_bytes"),
    bytes("Mapped:", "Mapped_bytes"),
    bytes("MemAvailable:", "MemAvailable_bytes"),
    bytes("MemFree:", "MemFree_bytes"),
    bytes("MemTotal:", "MemTotal_bytes"),
    bytes("Mlocked:", "Mlocked_bytes"),
    bytes("NFS_Unstable:", "NFS_Unstable_bytes"),
    bytes("PageTables:", "PageTables_bytes"),
    bytes("Percpu:", "Percpu_bytes"),
    bytes("SReclaimable:", "SReclaimable_bytes"),
    bytes("SUnreclaim:", "SUnreclaim_bytes"),
    bytes("Shmem:", "Shmem_bytes"),
    bytes("ShmemHugePages:", "ShmemHugePages_bytes"),
    bytes("ShmemPmdMapped:", "ShmemPmdMapped_bytes"),
    bytes("Slab:", "Slab_bytes"),
    bytes("SwapCached:", "SwapCached_bytes"),
    bytes("SwapFree:", "SwapFree_bytes"),
    bytes("SwapTotal:", "SwapTotal_bytes"),
    bytes("Unevictable:", "Unevictable_bytes"),
    bytes("VmallocChunk:", "VmallocChunk_bytes"),
    bytes("VmallocTotal:", "VmallocTotal_bytes"),
    bytes("VmallocUsed:", "VmallocUsed_bytes"),
    bytes("Writeback:", "Writeback_bytes"),
    bytes("WritebackTmp:", "WritebackTmp_bytes"),
    bytes("Zswap:", "Zswap_bytes"),
    bytes("Zswapped:", "Zswapped_bytes"),
    count("HugePages_Free:", "HugePages_Free"),
    count("HugePages_Rsvd:", "HugePages_Rsvd"),
    count("HugePages_Surp:", "HugePages_Surp"),
    count("HugePages_Total:", "HugePages_Total"),
];

pub struct Meminfo {
    path: PathBuf,
    buf: String,
    /// This cycle's value of each of [`FIELDS`], same index.
    values: [Option<f64>; FIELDS.len()],
}

impl Meminfo {
    pub fn new(procfs: &Path) -> Self {
        Meminfo {
            path: procfs.join("meminfo"),
            buf: String::new(),
            values: [None; FIELDS.len()],
        }
    }
}

/// Splits `Active(anon):   1234 kB` into its key and its value in bytes (kB times
/// 1024; the number as it is without a unit), and the number as written.
fn parse_line(line: &str) -> Result<(&str, f64, f64), String> {
    let mut parts = line.split_ascii_whitespace();
    let (Some(key), Some(number)) = (parts.next(), parts.next()) else {
        return Err(format!("expected `Field: value [kB]`, got {line:?}"));
    };
    let value: u64 = number
        .parse()
        .map_err(|_| format!("{key} expected a whole number, got {number:?}"))?;
    let value = value as f64;
    match (parts.next(), parts.next()) {
        (None, _) => Ok((key, value, value)),
        (Some("kB"), None) => Ok((key, value * 1024.0, value)),
        (Some(unit), None) => Err(format!("{key} expected the unit kB, got {unit:?}")),
        (Some(_), Some(_)) => Err(format!("expected `Field: value [kB]`, got {line:?}")),
    }
}

impl Build for Meminfo {
    type Options = NoOptions;

    const SOURCES: &'static [&'static str] = &["proc/meminfo"];

    fn build(context: &Context<'_>, _options: &NoOptions) -> Self {
        Meminfo::new(&context.paths.procfs)
    }
}

impl Collector for Meminfo {
    fn collect(&mut self, out: &mut Batch) -> Result<(), CollectError> {
        read_file(&self.path, &mut self.buf)?;
        self.values = [None; FIELDS.len()];
        for (index, line) in self.buf.lines().enumerate() {
            let (key, bytes, number) =
                parse_line(line).map_err(|e| CollectError::parse(&self.path, index + 1, e))?;
            if let Some(at) = FIELDS.iter().position(|field| field.key == key) {
                self.values[at] = Some(match FIELDS[at].unit {
                    Unit::Bytes => bytes,
                    Unit::Count => number,
                });
            }
        }
        for (field, value) in FIELDS.iter().zip(self.values) {
            if let Some(value) = value {
                out.family(
                    format_args!("node_memory_{}", field.name),
                    format_args!("Memory information field {}.", field.name),
                    Kind::Gauge,
                )
                .sample(&[], value);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{render, TempDir};

    #[test]
    fn names_fields_like_node_exporter() {
        let dir = TempDir::new();
        dir.write(
            "meminfo",
            "MemTotal:        2000000 kB\nActive(anon):      12 kB\nHugePages_Total:       3\n\
             Zswap:  5 kB\n",
        );
        let text = render(&mut Meminfo::new(dir.path())).unwrap();
        assert_eq!(
            text,
            "# HELP node_memory_Active_anon_bytes Memory information field Active_anon_bytes.\n\
             # TYPE node_memory_Active_anon_bytes gauge\n\
             node_memory_Active_anon_bytes 12288\n\
             # HELP node_memory_MemTotal_bytes Memory information field MemTotal_bytes.\n\
             # TYPE node_memory_MemTotal_bytes gauge\n\
             node_memory_MemTotal_bytes 2048000000\n\
             # HELP node_memory_Zswap_bytes Memory information field Zswap_bytes.\n\
             # TYPE node_memory_Zswap_bytes gauge\n\
             node_memory_Zswap_bytes 5120\n\
             # HELP node_memory_HugePages_Total Memory information field HugePages_Total.\n\
             # TYPE node_memory_HugePages_Total gauge\n\
             node_memory_HugePages_Total 3\n"
        );
    }

    #[test]
    fn fields_procfs_does_not_know_are_parsed_but_not_exported() {
        let dir = TempDir::new();
        dir.write(
            "meminfo",
            "KReclaimable: 7 kB\nUnaccepted: 0 kB\nMemFree: 1 kB\nFileHugePages: 0 kB\n",
        );
        let text = render(&mut Meminfo::new(dir.path())).unwrap();
        assert_eq!(text.matches("# TYPE ").count(), 1, "{text}");
        assert!(text.contains("node_memory_MemFree_bytes 1024\n"), "{text}");
        // Unknown lines must still parse.
        dir.write("meminfo", "MemFree: 1 kB\nKReclaimable: many kB\n");
        let err = render(&mut Meminfo::new(dir.path())).unwrap_err();
        assert!(
            err.to_string()
                .ends_with("meminfo line 2: KReclaimable: expected a whole number, got \"many\""),
            "{err}"
        );
    }

    #[test]
    fn malformed_line_names_the_line() {
        let dir = TempDir::new();
        dir.write("meminfo", "MemTotal: 1 kB\nMemFree:\n");
        let err = render(&mut Meminfo::new(dir.path()))
            .unwrap_err()
            .to_string();
        assert!(
            err.ends_with("meminfo line 2: expected `Field: value [kB]`, got \"MemFree:\""),
            "{err}"
        );
        for bad in [
            "MemFree: lots kB\n",
            "MemFree: 1 MB\n",
            "Mem Free: 1 kB\n",
            "MemFree: 1 kB extra\n",
            "\n",
            "X: -1\n",
        ] {
            dir.write("meminfo", bad);
            assert!(render(&mut Meminfo::new(dir.path())).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_key_seen_twice_keeps_its_last_value() {
        let dir = TempDir::new();
        dir.write("meminfo", "MemTotal: 3 kB\nMemTotal: 4 kB\n");
        let text = render(&mut Meminfo::new(dir.path())).unwrap();
        assert_eq!(text.matches("\nnode_memory_MemTotal_bytes ").count(), 1);
        assert!(text.contains("\nnode_memory_MemTotal_bytes 4096\n"), "{text}");
    }

    #[test]
    fn hugepage_counts_keep_their_number_and_bytes_without_unit_are_bytes() {
        let dir = TempDir::new();
        dir.write("meminfo", "HugePages_Free: 2 kB\nMemFree: 5\n");
        let text = render(&mut Meminfo::new(dir.path())).unwrap();
        assert!(text.contains("node_memory_HugePages_Free 2\n"), "{text}");
        assert!(text.contains("node_memory_MemFree_bytes 5\n"), "{text}");
    }

    #[test]
    fn every_field_has_a_distinct_key_and_name() {
        for (i, a) in FIELDS.iter().enumerate() {
            assert!(a.key.ends_with(':'), "{}", a.key);
            let stem = a.key.trim_end_matches(':').replace('(', "_").replace(')', "");
            let expected = match a.unit {
                Unit::Bytes => format!("{stem}_bytes"),
                Unit::Count => stem,
            };
            assert_eq!(a.name, expected);
            for b in &FIELDS[i + 1..] {
                assert_ne!(a.key, b.key);
            }
        }
    }
}

//! `node_nvme_info` and the `node_nvme_namespace_*` families from
//! `<sysfs>/class/nvme/<controller>/`, as node_exporter 1.12's nvme collector exports
//! them (procfs's `NVMeClass`).
//!
//! Per controller (label `device`, the directory's name):
//! - `node_nvme_info{device,firmware_revision,model,serial,state,cntlid}` 1, from
//!   `firmware_rev`, `model`, `serial`, `state` and `cntlid`, each read once (at most
//!   128 bytes, white space trimmed; bytes that are not UTF-8 become U+FFFD). All five
//!   are required;
//! - per namespace directory whose name contains `nvme<N>c<N>n<ID>` (the per-path
//!   devices of native NVMe multipath, `nvme0c0n1`; label `nsid` is `<ID>`):
//!   `node_nvme_namespace_info{device,nsid,ana_state}` 1 (`ana_state` is `unknown`
//!   when the file is missing or unreadable), and `_size_bytes`, `_capacity_bytes`
//!   (both `size` × `queue/logical_block_size`), `_used_bytes` (`nuse` × the block
//!   size) and `_logical_block_size_bytes`.
//!
//! Quirks mirrored:
//! - a controller without native multipath has `nvme0n1`, not `nvme0c0n1`, in its
//!   directory, so it gets `node_nvme_info` and no namespace series;
//! - `size` is in 512-byte sectors whatever the block size, yet it is multiplied by
//!   the logical block size, so a 4Kn namespace's size reads 8 times too large;
//! - `nuse`, `size` and the block size are read as decimal whole numbers, and one that
//!   does not parse counts as 0, silently; products wrap at 2^64 as Go's `uint64` do;
//! - a required file that does not exist makes the whole collector "no data"
//!   (procfs's error wraps ENOENT, and node_exporter takes any ENOENT for ErrNoData),
//!   as does a missing class/nvme (no NVMe, this VM); any other read failure fails it.
//!
//! Differences: node_exporter 1.5 has only `node_nvme_info`, without `cntlid` (and
//! does not require the file); the namespace families are 1.12's. A namespace listed
//! twice under one controller (two paths with the same ID) is reported once.

use super::go_parse::{parse_uint, push_valid_utf8, trim_space};
use super::{
    list_dir, read_sys_value, set_path, Build, CollectError, Collector, Context, Seen,
};
use crate::batch::{Batch, Kind};
use crate::config::collectors::NoOptions;
use std::path::{Path, PathBuf};

/// The controller attributes, in `node_nvme_info`'s label order, and their labels.
const ATTRIBUTES: [(&str, &str); 5] = [
    ("firmware_rev", "firmware_revision"),
    ("model", "model"),
    ("serial", "serial"),
    ("state", "state"),
    ("cntlid", "cntlid"),
];

/// The namespace files procfs requires, in its order.
const NAMESPACE_NUMBERS: [&str; 3] = ["nuse", "size", "queue/logical_block_size"];
const NUSE: usize = 0;
const SIZE: usize = 1;
const BLOCK_SIZE: usize = 2;

/// A namespace family and its value.
struct SizeFamily {
    name: &'static str,
    help: &'static str,
    value: fn(&Namespace) -> f64,
}

const SIZES: [SizeFamily; 4] = [
    SizeFamily {
        name: "node_nvme_namespace_capacity_bytes",
        help: "Capacity of the NVMe namespace in bytes. Computed as namespace_size * \
               namespace_logical_block_size",
        value: |n| n.bytes(SIZE),
    },
    SizeFamily {
        name: "node_nvme_namespace_size_bytes",
        help: "Size of the NVMe namespace in bytes. Available in \
               /sys/class/nvme/<device>/<namespace>/size",
        value: |n| n.bytes(SIZE),
    },
    SizeFamily {
        name: "node_nvme_namespace_used_bytes",
        help: "Used space of the NVMe namespace in bytes. Available in \
               /sys/class/nvme/<device>/<namespace>/nuse",
        value: |n| n.bytes(NUSE),
    },
    SizeFamily {
        name: "node_nvme_namespace_logical_block_size_bytes",
        help: "Logical block size of the NVMe namespace in bytes. Usually 4Kb. Available in \
               /sys/class/nvme/<device>/<namespace>/queue/logical_block_size",
        value: |n| n.numbers[BLOCK_SIZE] as f64,
    },
];

/// One namespace of a controller; slots are reused.
#[derive(Default)]
struct Namespace {
    /// Index of the controller in `Nvme::names`.
    controller: usize,
    id: String,
    ana_state: String,
    numbers: [u64; NAMESPACE_NUMBERS.len()],
}

impl Namespace {
    fn bytes(&self, blocks: usize) -> f64 {
        self.numbers[blocks].wrapping_mul(self.numbers[BLOCK_SIZE]) as f64
    }
}

pub struct Nvme {
    /// `<sysfs>/class/nvme`.
    dir: PathBuf,
    path: PathBuf,
    raw: Vec<u8>,
    /// This cycle's controllers in the first `len` slots, with their attributes.
    names: Vec<String>,
    attributes: Vec<[String; ATTRIBUTES.len()]>,
    len: usize,
    entries: Vec<String>,
    namespaces: Vec<Namespace>,
    namespaces_len: usize,
    seen: Seen,
}

impl Nvme {
    pub fn new(sysfs: &Path) -> Self {
        Nvme {
            dir: sysfs.join("class/nvme"),
            path: PathBuf::new(),
            raw: Vec::new(),
            names: Vec::new(),
            attributes: Vec::new(),
            len: 0,
            entries: Vec::new(),
            namespaces: Vec::new(),
            namespaces_len: 0,
            seen: Seen::default(),
        }
    }

    fn list(&mut self) -> Result<(), CollectError> {
        self.len = list_dir(&self.dir, &mut self.names, |_, _| true)
            .map_err(|e| CollectError::io_or_no_data(&self.dir, &e))?;
        if self.attributes.len() < self.len {
            self.attributes.resize_with(self.len, Default::default);
        }
        Ok(())
    }

    fn read(&mut self) -> Result<(), CollectError> {
        self.namespaces_len = 0;
        for controller in 0..self.len {
            let name = &self.names[controller];
            for ((file, _), slot) in ATTRIBUTES.iter().zip(&mut self.attributes[controller]) {
                set_path(&mut self.path, &self.dir, &[name, file]);
                let raw = read_sys_value(&self.path, &mut self.raw)
                    .map_err(|e| CollectError::io_or_no_data(&self.path, &e))?;
                slot.clear();
                push_valid_utf8(slot, trim_space(raw));
            }
            set_path(&mut self.path, &self.dir, &[name]);
            let entries = list_dir(&self.path, &mut self.entries, |_, _| true)
                .map_err(|e| CollectError::io_or_no_data(&self.path, &e))?;
            self.seen.clear();
            for entry in &self.entries[..entries] {
                let Some(id) = namespace_id(entry) else {
                    continue;
                };
                if !self.seen.first(id) {
                    continue;
                }
                if self.namespaces.len() == self.namespaces_len {
                    self.namespaces.push(Namespace::default());
                }
                let namespace = &mut self.namespaces[self.namespaces_len];
                namespace.controller = controller;
                namespace.id.clear();
                namespace.id.push_str(id);
                for (file, slot) in NAMESPACE_NUMBERS.iter().zip(&mut namespace.numbers) {
                    set_path(&mut self.path, &self.dir, &[name, entry, file]);
                    let raw = read_sys_value(&self.path, &mut self.raw)
                        .map_err(|e| CollectError::io_or_no_data(&self.path, &e))?;
                    // procfs ignores a value that does not parse: it stays 0.
                    *slot = std::str::from_utf8(trim_space(raw))
                        .ok()
                        .and_then(parse_uint)
                        .unwrap_or(0);
                }
                set_path(&mut self.path, &self.dir, &[name, entry, "ana_state"]);
                namespace.ana_state.clear();
                match read_sys_value(&self.path, &mut self.raw) {
                    Ok(raw) => push_valid_utf8(&mut namespace.ana_state, trim_space(raw)),
                    Err(_) => namespace.ana_state.push_str("unknown"),
                }
                self.namespaces_len += 1;
            }
        }
        Ok(())
    }

    fn write(&self, out: &mut Batch) {
        let mut family = out.family(
            "node_nvme_info",
            "Non-numeric data from /sys/class/nvme/<device>, value is always 1.",
            Kind::Gauge,
        );
        for (name, attributes) in self.names.iter().zip(&self.attributes).take(self.len) {
            let mut series = family.series().label("device", name);
            for ((_, label), value) in ATTRIBUTES.iter().zip(attributes) {
                series = series.label(label, value);
            }
            series.value(1.0);
        }
        let namespaces = || self.namespaces[..self.namespaces_len].iter();
        let mut family = out.family(
            "node_nvme_namespace_info",
            "Information about NVMe namespaces. Value is always 1",
            Kind::Gauge,
        );
        for namespace in namespaces() {
            family
                .series()
                .label("device", &self.names[namespace.controller])
                .label("nsid", &namespace.id)
                .label("ana_state", &namespace.ana_state)
                .value(1.0);
        }
        for size in SIZES {
            let mut family = out.family(size.name, size.help, Kind::Gauge);
            for namespace in namespaces() {
                family
                    .series()
                    .label("device", &self.names[namespace.controller])
                    .label("nsid", &namespace.id)
                    .value((size.value)(namespace));
            }
        }
    }
}

/// The namespace ID of a controller directory entry: the digits after the first
/// `nvme<N>c<N>n` in its name (procfs's unanchored `nvme\d+c\d+n(\d+)`).
fn namespace_id(entry: &str) -> Option<&str> {
    let digits = |s: &str| s.bytes().take_while(u8::is_ascii_digit).count();
    let mut from = 0;
    while let Some(at) = entry[from..].find("nvme") {
        let start = from + at;
        let rest = &entry[start + 4..];
        let controller = digits(rest);
        if controller > 0 {
            if let Some(path) = rest[controller..].strip_prefix('c') {
                let path_digits = digits(path);
                if path_digits > 0 {
                    if let Some(ns) = path[path_digits..].strip_prefix('n') {
                        let id = digits(ns);
                        if id > 0 {
                            return Some(&ns[..id]);
                        }
                    }
                }
            }
        }
        from = start + 1;
    }
    None
}

impl Build for Nvme {
    type Options = NoOptions;

    const SOURCES: &'static [&'static str] = &[
        "sys/class/nvme/nvme0/model",
        "sys/class/nvme/nvme0/serial",
        "sys/class/nvme/nvme0/nvme0c0n1/size",
        "sys/class/nvme/nvme0/nvme0c0n1/nuse",
        "sys/class/nvme/nvme0/nvme0c0n1/queue/logical_block_size",
    ];

    fn build(context: &Context<'_>, _options: &NoOptions) -> Self {
        Nvme::new(&context.paths.sysfs)
    }
}

impl Collector for Nvme {
    fn collect(&mut self, out: &mut Batch) -> Result<(), CollectError> {
        self.list()?;
        self.read()?;
        self.write(out);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{render, TempDir};

    fn series(text: &str) -> Vec<&str> {
        text.lines().filter(|l| !l.starts_with('#')).collect()
    }

    fn write_controller(dir: &TempDir, name: &str) {
        for (file, value) in [
            ("cntlid", "1997"),
            ("firmware_rev", "1B2QEXP7"),
            ("model", "Samsung SSD 970 PRO 512GB"),
            ("serial", "S680HF8N190894I"),
            ("state", "live"),
        ] {
            dir.write(&format!("class/nvme/{name}/{file}"), &format!("{value}\n"));
        }
    }

    fn write_namespace(dir: &TempDir, path: &str, nuse: &str, size: &str, block: &str) {
        dir.write(&format!("class/nvme/{path}/nuse"), &format!("{nuse}\n"));
        dir.write(&format!("class/nvme/{path}/size"), &format!("{size}\n"));
        dir.write(
            &format!("class/nvme/{path}/queue/logical_block_size"),
            &format!("{block}\n"),
        );
    }

    #[test]
    fn exports_controllers_and_multipath_namespaces() {
        let dir = TempDir::new();
        write_controller(&dir, "nvme0");
        write_namespace(&dir, "nvme0/nvme0c0n1", "201234567", "1000215216", "512");
        dir.write("class/nvme/nvme0/nvme0c0n1/ana_state", "optimized\n");
        // A namespace without multipath is not a namespace to procfs.
        write_namespace(&dir, "nvme0/nvme0n2", "1", "1", "512");
        let text = render(&mut Nvme::new(dir.path())).unwrap();
        assert_eq!(
            series(&text),
            [
                "node_nvme_info{cntlid=\"1997\",device=\"nvme0\",firmware_revision=\"1B2QEXP7\",model=\"Samsung SSD 970 PRO 512GB\",serial=\"S680HF8N190894I\",state=\"live\"} 1",
                "node_nvme_namespace_info{ana_state=\"optimized\",device=\"nvme0\",nsid=\"1\"} 1",
                "node_nvme_namespace_capacity_bytes{device=\"nvme0\",nsid=\"1\"} 512110190592",
                "node_nvme_namespace_size_bytes{device=\"nvme0\",nsid=\"1\"} 512110190592",
                "node_nvme_namespace_used_bytes{device=\"nvme0\",nsid=\"1\"} 103032098304",
                "node_nvme_namespace_logical_block_size_bytes{device=\"nvme0\",nsid=\"1\"} 512",
            ]
        );
        assert!(text.contains(
            "# HELP node_nvme_namespace_info Information about NVMe namespaces. Value is always 1\n"
        ));
    }

    #[test]
    fn namespace_values_follow_procfs_quirks() {
        let dir = TempDir::new();
        write_controller(&dir, "nvme1");
        // Not a number: 0. No ana_state: unknown. Products wrap like Go's uint64.
        write_namespace(&dir, "nvme1/nvme1c1n1", "lots", "18446744073709551615", "4096");
        // The same namespace ID twice: once.
        write_namespace(&dir, "nvme1/nvme1c2n1", "7", "7", "512");
        let text = render(&mut Nvme::new(dir.path())).unwrap();
        let wrapped = u64::MAX.wrapping_mul(4096) as f64;
        for line in [
            "node_nvme_namespace_info{ana_state=\"unknown\",device=\"nvme1\",nsid=\"1\"} 1\n".to_owned(),
            format!("node_nvme_namespace_size_bytes{{device=\"nvme1\",nsid=\"1\"}} {wrapped}\n"),
            "node_nvme_namespace_used_bytes{device=\"nvme1\",nsid=\"1\"} 0\n".to_owned(),
        ] {
            assert!(text.contains(&line), "{line}{text}");
        }
        assert_eq!(text.matches("node_nvme_namespace_used_bytes{").count(), 1, "{text}");
    }

    #[test]
    fn namespace_ids_are_found_like_procfs_regex() {
        for (entry, id) in [
            ("nvme0c0n1", Some("1")),
            ("nvme12c3n45", Some("45")),
            ("xnvme1c2n3p1", Some("3")),
            ("nvmenvme0c0n7", Some("7")),
            ("nvme0n1", None),
            ("nvme0c0n", None),
            ("nvmec0n1", None),
            ("power", None),
        ] {
            assert_eq!(namespace_id(entry), id, "{entry}");
        }
    }

    #[test]
    fn missing_files_are_no_data_and_other_failures_errors() {
        let dir = TempDir::new();
        assert!(render(&mut Nvme::new(dir.path())).unwrap_err().is_no_data());
        write_controller(&dir, "nvme0");
        std::fs::remove_file(dir.path().join("class/nvme/nvme0/cntlid")).unwrap();
        let err = render(&mut Nvme::new(dir.path())).unwrap_err();
        assert!(err.is_no_data() && err.to_string().contains("nvme0/cntlid"), "{err}");
        write_controller(&dir, "nvme0");
        std::fs::remove_file(dir.path().join("class/nvme/nvme0/model")).unwrap();
        std::fs::create_dir(dir.path().join("class/nvme/nvme0/model")).unwrap();
        let err = render(&mut Nvme::new(dir.path())).unwrap_err();
        assert!(!err.is_no_data(), "{err}");
        assert!(err.to_string().contains("nvme0/model: "), "{err}");
    }

    #[test]
    fn controllers_come_and_go() {
        let dir = TempDir::new();
        let mut collector = Nvme::new(dir.path());
        write_controller(&dir, "nvme0");
        write_controller(&dir, "nvme1");
        write_namespace(&dir, "nvme1/nvme1c1n1", "1", "2", "512");
        assert_eq!(series(&render(&mut collector).unwrap()).len(), 7);
        std::fs::remove_dir_all(dir.path().join("class/nvme/nvme1")).unwrap();
        let text = render(&mut collector).unwrap();
        assert_eq!(series(&text).len(), 1, "{text}");
    }
}

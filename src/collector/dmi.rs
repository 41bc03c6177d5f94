//! `node_dmi_info`: the firmware's DMI strings (BIOS, board, chassis, product) from
//! /sys/class/dmi/id as labels of a constant 1, as node_exporter 1.12 reports them.
//!
//! Read once, on the first cycle that can read them, and kept: DMI does not change
//! until the next boot (node_exporter reads it once, at start). What is read, as
//! procfs reads it: the regular files of the directory (not `power/`, not the
//! `subsystem` link), minus `modalias` and `uevent`, each with one `read(2)` of at
//! most 128 bytes, whitespace trimmed, and bytes that are not UTF-8 replaced by
//! U+FFFD (one for each run, as Go's `strings.ToValidUTF8`). A file only root may
//! read (`product_serial`, `product_uuid`, `board_serial`, `chassis_serial` are 0400)
//! is left out, so an unprivileged agent reports fewer labels; another read error
//! fails the collector and is retried the next cycle. The labels are the 20 names
//! node_exporter 1.12 exports (`sys_vendor` becomes `system_vendor`; `chassis_type`,
//! which procfs reads, is not exported), each present only when its file is.
//!
//! No /sys/class/dmi/id (no DMI: most ARM machines, some hypervisors) or nothing in it
//! that is readable: [`CollectError::no_data`], every cycle, as node_exporter.

use super::{list_dir, set_path, sys_read_file, Build, CollectError, Collector, Context, SYS_READ_BYTES};
use crate::batch::{Batch, Kind};
use crate::config::collectors::NoOptions;
use std::io;
use std::path::{Path, PathBuf};

/// sysfs file name -> label name, for the files node_exporter exports.
const LABELS: [(&str, &str); 20] = [
    ("bios_date", "bios_date"),
    ("bios_release", "bios_release"),
    ("bios_vendor", "bios_vendor"),
    ("bios_version", "bios_version"),
    ("board_asset_tag", "board_asset_tag"),
    ("board_name", "board_name"),
    ("board_serial", "board_serial"),
    ("board_vendor", "board_vendor"),
    ("board_version", "board_version"),
    ("chassis_asset_tag", "chassis_asset_tag"),
    ("chassis_serial", "chassis_serial"),
    ("chassis_vendor", "chassis_vendor"),
    ("chassis_version", "chassis_version"),
    ("product_family", "product_family"),
    ("product_name", "product_name"),
    ("product_serial", "product_serial"),
    ("product_sku", "product_sku"),
    ("product_uuid", "product_uuid"),
    ("product_version", "product_version"),
    ("sys_vendor", "system_vendor"),
];

const HELP: &str = "A metric with a constant '1' value labeled by bios_date, bios_release, \
    bios_vendor, bios_version, board_asset_tag, board_name, board_serial, board_vendor, \
    board_version, chassis_asset_tag, chassis_serial, chassis_vendor, chassis_version, \
    product_family, product_name, product_serial, product_sku, product_uuid, \
    product_version, system_vendor if provided by DMI.";

/// The labels found, as (index into [`LABELS`], value); empty: no DMI. `None` until
/// a read succeeds.
type Found = Option<Vec<(usize, String)>>;

pub struct Dmi {
    dir: PathBuf,
    found: Found,
}

impl Dmi {
    pub fn new(sysfs: &Path) -> Self {
        Dmi {
            dir: sysfs.join("class/dmi/id"),
            found: None,
        }
    }

    /// Reads the directory as procfs's `DMIClass` does.
    fn read(&self) -> Result<Vec<(usize, String)>, CollectError> {
        let mut names = Vec::new();
        let len = match list_dir(&self.dir, &mut names, |entry, _| {
            entry.file_type().is_ok_and(|t| t.is_file())
        }) {
            Ok(len) => len,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(CollectError::io(&self.dir, &e)),
        };
        let mut found = Vec::new();
        let mut path = PathBuf::new();
        let mut bytes = [0u8; SYS_READ_BYTES];
        for name in names.iter().take(len) {
            if name == "modalias" || name == "uevent" {
                continue;
            }
            set_path(&mut path, &self.dir, &[name]);
            let value = match sys_read_file(&path, &mut bytes) {
                Ok(value) => value,
                // Only root may read the serial numbers and the UUID.
                Err(e) if e.kind() == io::ErrorKind::PermissionDenied => continue,
                Err(e) => return Err(CollectError::io(&path, &e)),
            };
            if let Some(at) = LABELS.iter().position(|(file, _)| file == name) {
                found.push((at, to_valid_utf8(value)));
            }
        }
        Ok(found)
    }
}

/// Go's `strings.ToValidUTF8(s, "\u{FFFD}")`: each run of invalid bytes becomes one
/// U+FFFD.
fn to_valid_utf8(mut bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    let mut in_run = false;
    while !bytes.is_empty() {
        match std::str::from_utf8(bytes) {
            Ok(text) => {
                out.push_str(text);
                break;
            }
            Err(e) => {
                let (valid, rest) = bytes.split_at(e.valid_up_to());
                // `valid` is UTF-8 by construction.
                let valid = std::str::from_utf8(valid).unwrap_or_default();
                if !valid.is_empty() {
                    out.push_str(valid);
                    in_run = false;
                }
                if !in_run {
                    out.push('\u{FFFD}');
                    in_run = true;
                }
                let skip = e.error_len().unwrap_or(rest.len());
                bytes = rest.get(skip..).unwrap_or_default();
            }
        }
    }
    out
}

impl Build for Dmi {
    type Options = NoOptions;

    const SOURCES: &'static [&'static str] = &[
        "sys/class/dmi/id/bios_vendor",
        "sys/class/dmi/id/product_name",
        "sys/class/dmi/id/sys_vendor",
    ];

    fn build(context: &Context<'_>, _options: &NoOptions) -> Self {
        Dmi::new(&context.paths.sysfs)
    }
}

impl Collector for Dmi {
    fn collect(&mut self, out: &mut Batch) -> Result<(), CollectError> {
        if self.found.is_none() {
            self.found = Some(self.read()?);
        }
        let labels = self.found.as_deref().unwrap_or_default();
        if labels.is_empty() {
            return Err(CollectError::no_data(format!(
                "{} does not exist or has nothing readable: no DMI on this machine",
                self.dir.display()
            )));
        }
        let mut family = out.family("node_dmi_info", HELP, Kind::Gauge);
        let mut series = family.series();
        for (at, value) in labels {
            let label = LABELS.get(*at).map_or("", |(_, label)| label);
            series = series.label(label, value);
        }
        series.value(1.0);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{render, TempDir};

    #[test]
    fn reports_the_known_regular_files_once() {
        let dir = TempDir::new();
        for (name, value) in [
            ("bios_vendor", "SeaBIOS\n"),
            ("sys_vendor", "QEMU\n"),
            ("product_name", "  Standard PC (Q35 + ICH9, 2009)  \n"),
            ("board_asset_tag", "\n"),
            ("chassis_type", "1\n"),
            ("modalias", "dmi:bvnSeaBIOS:\n"),
            ("uevent", "MODALIAS=dmi:x\n"),
            ("unknown_field", "x\n"),
            ("power/control", "auto\n"),
        ] {
            dir.write(&format!("class/dmi/id/{name}"), value);
        }
        std::os::unix::fs::symlink("power", dir.path().join("class/dmi/id/subsystem")).unwrap();
        let mut dmi = Dmi::new(dir.path());
        let expected = format!(
            "# HELP node_dmi_info {HELP}\n# TYPE node_dmi_info gauge\n\
             node_dmi_info{{bios_vendor=\"SeaBIOS\",board_asset_tag=\"\",\
             product_name=\"Standard PC (Q35 + ICH9, 2009)\",system_vendor=\"QEMU\"}} 1\n"
        );
        assert_eq!(render(&mut dmi).unwrap(), expected);
        // Read once: a later change is not seen, as in node_exporter.
        dir.write("class/dmi/id/sys_vendor", "Other\n");
        assert_eq!(render(&mut dmi).unwrap(), expected);
    }

    #[test]
    fn values_are_cut_at_128_bytes_and_made_utf8() {
        let dir = TempDir::new();
        dir.write_bytes("class/dmi/id/board_name", b"A\xff\xfeB\xc3\n");
        dir.write("class/dmi/id/board_vendor", &format!("{}é", "v".repeat(127)));
        let text = render(&mut Dmi::new(dir.path())).unwrap();
        assert!(text.contains("board_name=\"A\u{FFFD}B\u{FFFD}\""), "{text}");
        assert!(text.contains(&format!("board_vendor=\"{}\u{FFFD}\"", "v".repeat(127))), "{text}");
        assert_eq!(to_valid_utf8(b"ok"), "ok");
        assert_eq!(to_valid_utf8(b"\xff"), "\u{FFFD}");
        assert_eq!(to_valid_utf8(b"a\xffb\xffc"), "a\u{FFFD}b\u{FFFD}c");
    }

    #[test]
    fn no_dmi_is_no_data_and_a_failed_read_is_retried() {
        let dir = TempDir::new();
        let err = render(&mut Dmi::new(dir.path())).unwrap_err();
        assert!(err.is_no_data(), "{err}");
        // Only what is skipped: no data as well.
        dir.write("class/dmi/id/modalias", "x\n");
        std::fs::create_dir_all(dir.path().join("class/dmi/id/bios_date")).unwrap();
        let fifo = dir.path().join("class/dmi/id/bios_vendor");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let err = render(&mut Dmi::new(dir.path())).unwrap_err();
        assert!(err.is_no_data(), "{err}");
        // A file where the directory should be: an error, and the next cycle tries again.
        let other = TempDir::new();
        other.write("class/dmi/id", "not a directory\n");
        let mut dmi = Dmi::new(other.path());
        let err = render(&mut dmi).unwrap_err();
        assert!(!err.is_no_data() && err.to_string().contains("class/dmi/id: "), "{err}");
        std::fs::remove_file(other.path().join("class/dmi/id")).unwrap();
        other.write("class/dmi/id/bios_vendor", "SeaBIOS\n");
        assert!(render(&mut dmi).unwrap().contains("{bios_vendor=\"SeaBIOS\"} 1"));
    }
}

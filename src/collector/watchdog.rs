//! `node_watchdog_*{name}` from /sys/class/watchdog/<name>/: the hardware watchdog's
//! boot status, timeouts and state, as node_exporter 1.12 reports them (1.5 has no
//! watchdog collector).
//!
//! Per device, procfs reads twelve attributes, each with one 128-byte read
//! ([`sys_read_file`]); a missing one is left out, another read error fails the
//! collector. Seven are integers (Go's `ParseInt(s, 0, 64)`: `0x` and a leading `0`
//! give hex and octal), each a gauge of its own when present: bootstatus, fw_version,
//! nowayout, timeleft_seconds, timeout_seconds, pretimeout_seconds, access_cs0. The
//! five strings are labels of `node_watchdog_info` (options, identity, state, status,
//! pretimeout_governor), empty when missing. A value that is not an integer fails the
//! collector with its file and line.
//!
//! No /sys/class/watchdog (no watchdog driver, as on most VMs), or one that cannot be
//! listed: [`CollectError::no_data`], as node_exporter, at the cost of one failed
//! listing. Devices come in name order. Where a string attribute is not UTF-8,
//! node_exporter would panic building the label; here the bytes are replaced by
//! U+FFFD.

use super::{
    list_dir, parse_go_int, set_path, sys_read_file, Build, CollectError, Collector, Context,
    SYS_READ_BYTES,
};
use crate::batch::{Batch, Kind};
use crate::config::collectors::NoOptions;
use std::io;
use std::path::{Path, PathBuf};

/// The integer attributes: file, family, HELP.
const NUMBERS: [(&str, &str, &str); 7] = [
    ("bootstatus", "node_watchdog_bootstatus", "Value of /sys/class/watchdog/<watchdog>/bootstatus"),
    ("fw_version", "node_watchdog_fw_version", "Value of /sys/class/watchdog/<watchdog>/fw_version"),
    ("nowayout", "node_watchdog_nowayout", "Value of /sys/class/watchdog/<watchdog>/nowayout"),
    ("timeleft", "node_watchdog_timeleft_seconds", "Value of /sys/class/watchdog/<watchdog>/timeleft"),
    ("timeout", "node_watchdog_timeout_seconds", "Value of /sys/class/watchdog/<watchdog>/timeout"),
    ("pretimeout", "node_watchdog_pretimeout_seconds", "Value of /sys/class/watchdog/<watchdog>/pretimeout"),
    ("access_cs0", "node_watchdog_access_cs0", "Value of /sys/class/watchdog/<watchdog>/access_cs0"),
];

/// The string attributes, which are also `node_watchdog_info`'s labels.
const STRINGS: [&str; 5] = ["options", "identity", "state", "status", "pretimeout_governor"];

/// One device's attributes.
#[derive(Default)]
struct Device {
    numbers: [Option<i64>; NUMBERS.len()],
    strings: [String; STRINGS.len()],
}

pub struct Watchdog {
    dir: PathBuf,
    names: Vec<String>,
    devices: Vec<Device>,
    path: PathBuf,
}

impl Watchdog {
    pub fn new(sysfs: &Path) -> Self {
        Watchdog {
            dir: sysfs.join("class/watchdog"),
            names: Vec::new(),
            devices: Vec::new(),
            path: PathBuf::new(),
        }
    }
}

/// Reads one attribute; `None` when the device does not have it.
fn read<'a>(
    path: &Path,
    buf: &'a mut [u8; SYS_READ_BYTES],
) -> Result<Option<&'a [u8]>, CollectError> {
    match sys_read_file(path, buf) {
        Ok(value) => Ok(Some(value)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(CollectError::io(path, &e)),
    }
}

impl Build for Watchdog {
    type Options = NoOptions;

    const SOURCES: &'static [&'static str] = &[
        "sys/class/watchdog/watchdog0/bootstatus",
        "sys/class/watchdog/watchdog0/timeout",
        "sys/class/watchdog/watchdog0/identity",
        "sys/class/watchdog/watchdog0/state",
    ];

    fn build(context: &Context<'_>, _options: &NoOptions) -> Self {
        Watchdog::new(&context.paths.sysfs)
    }
}

impl Collector for Watchdog {
    fn collect(&mut self, out: &mut Batch) -> Result<(), CollectError> {
        let count = match list_dir(&self.dir, &mut self.names, |_, _| true) {
            Ok(count) => count,
            // node_exporter: ErrNotExist, ErrPermission and ErrInvalid mean no data.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound
                        | io::ErrorKind::PermissionDenied
                        | io::ErrorKind::InvalidInput
                ) =>
            {
                return Err(CollectError::no_data(format!(
                    "{}: {e}: no watchdog device",
                    self.dir.display()
                )))
            }
            Err(e) => return Err(CollectError::io(&self.dir, &e)),
        };
        let mut buf = [0u8; SYS_READ_BYTES];
        self.devices.resize_with(count, Device::default);
        for (name, device) in self.names.iter().zip(&mut self.devices) {
            for ((file, _, _), number) in NUMBERS.iter().zip(&mut device.numbers) {
                set_path(&mut self.path, &self.dir, &[name, file]);
                *number = match read(&self.path, &mut buf)? {
                    None => None,
                    Some(bytes) => Some(
                        std::str::from_utf8(bytes)
                            .ok()
                            .and_then(parse_go_int)
                            .ok_or_else(|| {
                                let text = String::from_utf8_lossy(bytes);
                                CollectError::parse(
                                    &self.path,
                                    1,
                                    format!("expected an integer, got {text:?}"),
                                )
                            })?,
                    ),
                };
            }
            for (file, value) in STRINGS.iter().zip(&mut device.strings) {
                set_path(&mut self.path, &self.dir, &[name, file]);
                value.clear();
                if let Some(bytes) = read(&self.path, &mut buf)? {
                    value.push_str(&String::from_utf8_lossy(bytes));
                }
            }
        }
        let devices = self.names.iter().zip(&self.devices).take(count);
        for (at, (_, family, help)) in NUMBERS.iter().enumerate() {
            let mut present = devices.clone().filter_map(|(n, d)| Some((n, d.numbers.get(at).copied()??))).peekable();
            if present.peek().is_none() {
                continue;
            }
            let mut family = out.family(family, help, Kind::Gauge);
            for (name, value) in present {
                family.sample(&[("name", name)], value as f64);
            }
        }
        if count > 0 {
            let mut info = out.family("node_watchdog_info", "Info of /sys/class/watchdog/<watchdog>", Kind::Gauge);
            for (name, device) in devices {
                let mut series = info.series().label("name", name);
                for (label, value) in STRINGS.iter().zip(&device.strings) {
                    series = series.label(label, value);
                }
                series.value(1.0);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{render, TempDir};

    fn samples(text: &str) -> Vec<&str> {
        text.lines().filter(|l| !l.starts_with('#')).collect()
    }

    fn device(dir: &TempDir, name: &str, files: &[(&str, &str)]) {
        for (file, value) in files {
            dir.write(&format!("class/watchdog/{name}/{file}"), value);
        }
    }

    #[test]
    fn reports_what_each_device_has() {
        let dir = TempDir::new();
        device(&dir, "watchdog1", &[("timeout", "60\n"), ("identity", "iTCO_wdt\n")]);
        device(
            &dir,
            "watchdog0",
            &[
                ("bootstatus", "1\n"),
                ("fw_version", "0x10\n"),
                ("nowayout", "0\n"),
                ("timeleft", "-1\n"),
                ("timeout", "010\n"),
                ("pretimeout", "120\n"),
                ("access_cs0", "0\n"),
                ("options", "0x8380\n"),
                ("identity", "Software Watchdog\n"),
                ("state", "active\n"),
                ("status", "0x8000\n"),
                ("pretimeout_governor", "noop\n"),
            ],
        );
        let mut watchdog = Watchdog::new(dir.path());
        for _ in 0..2 {
            let text = render(&mut watchdog).unwrap();
            assert!(text.starts_with(
                "# HELP node_watchdog_bootstatus Value of /sys/class/watchdog/<watchdog>/bootstatus\n\
                 # TYPE node_watchdog_bootstatus gauge\n"
            ));
            assert_eq!(
                samples(&text),
                [
                    "node_watchdog_bootstatus{name=\"watchdog0\"} 1",
                    "node_watchdog_fw_version{name=\"watchdog0\"} 16",
                    "node_watchdog_nowayout{name=\"watchdog0\"} 0",
                    "node_watchdog_timeleft_seconds{name=\"watchdog0\"} -1",
                    "node_watchdog_timeout_seconds{name=\"watchdog0\"} 8",
                    "node_watchdog_timeout_seconds{name=\"watchdog1\"} 60",
                    "node_watchdog_pretimeout_seconds{name=\"watchdog0\"} 120",
                    "node_watchdog_access_cs0{name=\"watchdog0\"} 0",
                    "node_watchdog_info{identity=\"Software Watchdog\",name=\"watchdog0\",options=\"0x8380\",pretimeout_governor=\"noop\",state=\"active\",status=\"0x8000\"} 1",
                    "node_watchdog_info{identity=\"iTCO_wdt\",name=\"watchdog1\",options=\"\",pretimeout_governor=\"\",state=\"\",status=\"\"} 1",
                ]
            );
        }
    }

    #[test]
    fn no_class_directory_is_no_data_and_an_empty_one_success() {
        let dir = TempDir::new();
        let err = render(&mut Watchdog::new(dir.path())).unwrap_err();
        assert!(err.is_no_data(), "{err}");
        std::fs::create_dir_all(dir.path().join("class/watchdog")).unwrap();
        assert_eq!(render(&mut Watchdog::new(dir.path())).unwrap(), "");
    }

    #[test]
    fn bad_values_name_the_file() {
        let dir = TempDir::new();
        device(&dir, "watchdog0", &[("timeout", "sixty\n")]);
        let err = render(&mut Watchdog::new(dir.path())).unwrap_err();
        assert!(!err.is_no_data());
        assert!(err.to_string().ends_with("watchdog0/timeout line 1: expected an integer, got \"sixty\""), "{err}");
        // A plain file in the class directory cannot hold attributes.
        let other = TempDir::new();
        other.write("class/watchdog/stray", "x\n");
        let err = render(&mut Watchdog::new(other.path())).unwrap_err();
        assert!(err.to_string().contains("stray/bootstatus: "), "{err}");
        // A class "directory" that is a file is an error, not no data.
        let file = TempDir::new();
        file.write("class/watchdog", "x\n");
        let err = render(&mut Watchdog::new(file.path())).unwrap_err();
        assert!(!err.is_no_data(), "{err}");
    }

    #[test]
    fn strings_that_are_not_utf8_are_replaced() {
        let dir = TempDir::new();
        dir.write_bytes("class/watchdog/watchdog0/identity", b"wd\xff\n");
        let text = render(&mut Watchdog::new(dir.path())).unwrap();
        assert!(text.contains("identity=\"wd\u{FFFD}\""), "{text}");
    }
}

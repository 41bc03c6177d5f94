//! `node_thermal_zone_temp` and `node_cooling_device_{cur,max}_state` from
//! `<sysfs>/class/thermal/`, as node_exporter 1.12's thermal_zone collector exports
//! them (procfs's `ClassThermalZoneStats` and `ClassCoolingDeviceStats`).
//!
//! - `thermal_zone[0-9]*` (label `zone`: the number; `type` from `type`): `temp` is
//!   millidegrees Celsius, exported in degrees (÷ 1000.0). procfs also requires
//!   `policy` and reads the optional `mode` and `passive` (a `passive` that is not a
//!   whole number fails the collector), none of which node_exporter exports.
//! - `cooling_device[0-9]*` (label `name`: the number; `type`): `cur_state` and
//!   `max_state`, whole numbers (`cur_state` is -1 on some drivers).
//!
//! Quirks mirrored:
//! - A zone whose attribute cannot be opened, or whose `temp` or `passive` cannot be
//!   read at all, or whose `type`, `policy` or `mode` read fails with ENODATA, EAGAIN
//!   or EINVAL (ACPI zones with no sensor behind them) is skipped; any other read
//!   failure, or a `temp` that is not an integer, fails the collector.
//! - A cooling device is skipped only for ENODATA; a missing attribute or a value
//!   that is not an integer fails the collector.
//! - No `class/thermal` directory (most VMs), or one without zones or cooling
//!   devices, succeeds with no series: procfs lists with a glob, which finds nothing
//!   rather than failing.
//!
//! node_exporter 1.5 has the same families, HELP and TYPE. Its older procfs skips a
//! zone only for ENODATA, so a zone with a missing `type` or `policy` fails 1.5's
//! collector where 1.12 (and this one) skips it. Where node_exporter keeps the zone
//! series of a scrape whose cooling devices fail, this collector reports nothing for
//! that cycle (a failing collector's output is rolled back). Text attributes are
//! read as procfs reads them (one read, at most 128 bytes); bytes that are not UTF-8
//! become U+FFFD.

use super::go_parse::{parse_uint, push_valid_utf8, trim_space};
use super::{
    list_dir, open, read_sys_value_from, read_value, set_path, Build, CollectError, Collector,
    Context,
};
use crate::batch::{Batch, Kind};
use crate::config::collectors::NoOptions;
use nix::errno::Errno;
use std::io;
use std::path::{Path, PathBuf};

const ZONE_PREFIX: &str = "thermal_zone";
const COOLING_PREFIX: &str = "cooling_device";

const MILLIDEGREES_PER_DEGREE: f64 = 1000.0;

/// What was read for one zone or cooling device; slots are reused.
#[derive(Default)]
struct Device {
    /// Index of its name in `Thermal::names`.
    entry: usize,
    zone: bool,
    kind: String,
    /// A zone's temperature (millidegrees), or a cooling device's current state.
    value: i64,
    /// A cooling device's maximum state.
    max_state: i64,
}

pub struct ThermalZone {
    /// `<sysfs>/class/thermal`.
    dir: PathBuf,
    path: PathBuf,
    text: String,
    raw: Vec<u8>,
    names: Vec<String>,
    devices: Vec<Device>,
    len: usize,
}

impl ThermalZone {
    pub fn new(sysfs: &Path) -> Self {
        ThermalZone {
            dir: sysfs.join("class/thermal"),
            path: PathBuf::new(),
            text: String::new(),
            raw: Vec::new(),
            names: Vec::new(),
            devices: Vec::new(),
            len: 0,
        }
    }

    /// Lists the zones and cooling devices; any listing failure finds none, as a Go
    /// glob does.
    fn list(&mut self) -> usize {
        let keep = |_: &std::fs::DirEntry, name: &str| {
            numbered(name, ZONE_PREFIX).is_some() || numbered(name, COOLING_PREFIX).is_some()
        };
        list_dir(&self.dir, &mut self.names, keep).unwrap_or(0)
    }

    /// Reads the listed zones, then the cooling devices, into `devices`.
    fn read(&mut self, listed: usize) -> Result<(), CollectError> {
        self.len = 0;
        for zone in [true, false] {
            for entry in 0..listed {
                let prefix = if zone { ZONE_PREFIX } else { COOLING_PREFIX };
                if numbered(&self.names[entry], prefix).is_none() {
                    continue;
                }
                if self.devices.len() == self.len {
                    self.devices.push(Device::default());
                }
                let kept = if zone {
                    self.read_zone(entry)?
                } else {
                    self.read_cooling_device(entry)?
                };
                if kept {
                    self.len += 1;
                }
            }
        }
        Ok(())
    }

    /// Reads zone `entry` into the next slot; `false` when procfs would skip it.
    fn read_zone(&mut self, entry: usize) -> Result<bool, CollectError> {
        let zone_skip = |e: &io::Error| {
            e.raw_os_error().is_some_and(|code| {
                [Errno::ENODATA, Errno::EAGAIN, Errno::EINVAL].contains(&Errno::from_raw(code))
            })
        };
        let name = &self.names[entry];
        // type and policy: required; read with SysReadFile.
        for file in ["type", "policy"] {
            set_path(&mut self.path, &self.dir, &[name, file]);
            let Ok(handle) = open(&self.path) else {
                return Ok(false);
            };
            match read_sys_value_from(handle, &mut self.raw) {
                Ok(raw) if file == "type" => {
                    let slot = &mut self.devices[self.len];
                    slot.kind.clear();
                    push_valid_utf8(&mut slot.kind, trim_space(raw));
                }
                Ok(_) => {}
                Err(e) if zone_skip(&e) => return Ok(false),
                Err(e) => return Err(CollectError::io(&self.path, &e)),
            }
        }
        // temp: required, a whole file; any I/O failure skips the zone.
        set_path(&mut self.path, &self.dir, &[name, "temp"]);
        let Ok(text) = read_value(&self.path, &mut self.text) else {
            return Ok(false);
        };
        let temp = text.parse::<i64>().map_err(|_| {
            CollectError::parse(
                &self.path,
                1,
                format!("expected an integer (millidegrees Celsius), got {text:?}"),
            )
        })?;
        // mode: optional.
        set_path(&mut self.path, &self.dir, &[name, "mode"]);
        match open(&self.path) {
            Ok(handle) => match read_sys_value_from(handle, &mut self.raw) {
                Ok(_) => {}
                Err(e) if zone_skip(&e) => return Ok(false),
                Err(e) => return Err(CollectError::io(&self.path, &e)),
            },
            Err(e) if is_absent(&e) => {}
            Err(_) => return Ok(false),
        }
        // passive: optional, a whole number when present.
        set_path(&mut self.path, &self.dir, &[name, "passive"]);
        match read_value(&self.path, &mut self.text) {
            Ok(text) => {
                parse_uint(text).ok_or_else(|| {
                    CollectError::parse(
                        &self.path,
                        1,
                        format!("expected a whole number, got {text:?}"),
                    )
                })?;
            }
            Err(e) if is_absent(&e) => {}
            Err(_) => return Ok(false),
        }
        let slot = &mut self.devices[self.len];
        slot.entry = entry;
        slot.zone = true;
        slot.value = temp;
        Ok(true)
    }

    /// Reads cooling device `entry` into the next slot; `false` for ENODATA.
    fn read_cooling_device(&mut self, entry: usize) -> Result<bool, CollectError> {
        let mut states = [0i64; 2];
        for (index, file) in ["type", "max_state", "cur_state"].into_iter().enumerate() {
            set_path(&mut self.path, &self.dir, &[&self.names[entry], file]);
            let raw = match open(&self.path).and_then(|h| read_sys_value_from(h, &mut self.raw)) {
                Ok(raw) => trim_space(raw),
                Err(e) if e.raw_os_error() == Some(Errno::ENODATA as i32) => return Ok(false),
                Err(e) => return Err(CollectError::io(&self.path, &e)),
            };
            if index == 0 {
                let slot = &mut self.devices[self.len];
                slot.kind.clear();
                push_valid_utf8(&mut slot.kind, raw);
                continue;
            }
            let text = String::from_utf8_lossy(raw);
            states[index - 1] = text.parse().map_err(|_| {
                CollectError::parse(&self.path, 1, format!("expected an integer, got {text:?}"))
            })?;
        }
        let slot = &mut self.devices[self.len];
        slot.entry = entry;
        slot.zone = false;
        slot.max_state = states[0];
        slot.value = states[1];
        Ok(true)
    }

    fn write(&self, out: &mut Batch) {
        let devices = || self.devices[..self.len].iter();
        let number = |device: &Device, prefix| numbered(&self.names[device.entry], prefix);
        let mut family = out.family(
            "node_thermal_zone_temp",
            "Zone temperature in Celsius",
            Kind::Gauge,
        );
        for device in devices().filter(|d| d.zone) {
            family
                .series()
                .label("zone", number(device, ZONE_PREFIX).unwrap_or_default())
                .label("type", &device.kind)
                .value(device.value as f64 / MILLIDEGREES_PER_DEGREE);
        }
        for (name, help, max) in [
            (
                "node_cooling_device_cur_state",
                "Current throttle state of the cooling device",
                false,
            ),
            (
                "node_cooling_device_max_state",
                "Maximum throttle state of the cooling device",
                true,
            ),
        ] {
            let mut family = out.family(name, help, Kind::Gauge);
            for device in devices().filter(|d| !d.zone) {
                family
                    .series()
                    .label("name", number(device, COOLING_PREFIX).unwrap_or_default())
                    .label("type", &device.kind)
                    .value(if max { device.max_state } else { device.value } as f64);
            }
        }
    }
}

/// The part of `name` after `prefix` when it starts with a digit (`prefix[0-9]*`).
fn numbered<'a>(name: &'a str, prefix: &str) -> Option<&'a str> {
    name.strip_prefix(prefix)
        .filter(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
}

/// An optional attribute that is not there (or not readable for permissions).
fn is_absent(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::PermissionDenied
    )
}

impl Build for ThermalZone {
    type Options = NoOptions;

    const SOURCES: &'static [&'static str] = &[
        "sys/class/thermal/thermal_zone0/temp",
        "sys/class/thermal/thermal_zone0/type",
        "sys/class/thermal/thermal_zone1/passive",
        "sys/class/thermal/cooling_device0/cur_state",
        "sys/class/thermal/cooling_device0/max_state",
    ];

    fn build(context: &Context<'_>, _options: &NoOptions) -> Self {
        ThermalZone::new(&context.paths.sysfs)
    }
}

impl Collector for ThermalZone {
    fn collect(&mut self, out: &mut Batch) -> Result<(), CollectError> {
        let listed = self.list();
        self.read(listed)?;
        self.write(out);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{render, TempDir};

    fn write_zone(dir: &TempDir, zone: &str, kind: &str, temp: &str) {
        dir.write(&format!("class/thermal/{zone}/type"), &format!("{kind}\n"));
        dir.write(&format!("class/thermal/{zone}/policy"), "step_wise\n");
        dir.write(&format!("class/thermal/{zone}/temp"), &format!("{temp}\n"));
    }

    fn write_cooling(dir: &TempDir, device: &str, kind: &str, cur: &str, max: &str) {
        dir.write(&format!("class/thermal/{device}/type"), &format!("{kind}\n"));
        dir.write(&format!("class/thermal/{device}/cur_state"), &format!("{cur}\n"));
        dir.write(&format!("class/thermal/{device}/max_state"), &format!("{max}\n"));
    }

    fn series(text: &str) -> Vec<&str> {
        text.lines().filter(|l| !l.starts_with('#')).collect()
    }

    #[test]
    fn exports_zones_and_cooling_devices() {
        let dir = TempDir::new();
        write_zone(&dir, "thermal_zone0", "cpu-thermal", "12376");
        write_zone(&dir, "thermal_zone10", "x86_pkg_temp", "-5000");
        dir.write("class/thermal/thermal_zone10/mode", "enabled\n");
        dir.write("class/thermal/thermal_zone10/passive", "0\n");
        write_cooling(&dir, "cooling_device0", "Processor", "0", "3");
        write_cooling(&dir, "cooling_device1", "intel_powerclamp", "-1", "27");
        dir.write("class/thermal/thermal_zone/type", "not numbered\n");
        let text = render(&mut ThermalZone::new(dir.path())).unwrap();
        assert_eq!(
            series(&text),
            [
                "node_thermal_zone_temp{type=\"cpu-thermal\",zone=\"0\"} 12.376",
                "node_thermal_zone_temp{type=\"x86_pkg_temp\",zone=\"10\"} -5",
                "node_cooling_device_cur_state{name=\"0\",type=\"Processor\"} 0",
                "node_cooling_device_cur_state{name=\"1\",type=\"intel_powerclamp\"} -1",
                "node_cooling_device_max_state{name=\"0\",type=\"Processor\"} 3",
                "node_cooling_device_max_state{name=\"1\",type=\"intel_powerclamp\"} 27",
            ]
        );
        assert!(text.contains(
            "# HELP node_thermal_zone_temp Zone temperature in Celsius\n\
             # TYPE node_thermal_zone_temp gauge\n"
        ));
        assert!(text.contains(
            "# HELP node_cooling_device_max_state Maximum throttle state of the cooling device\n"
        ));
    }

    #[test]
    fn no_thermal_class_succeeds_with_nothing() {
        let dir = TempDir::new();
        let text = render(&mut ThermalZone::new(dir.path())).unwrap();
        assert_eq!(series(&text), Vec::<&str>::new());
        std::fs::create_dir_all(dir.path().join("class/thermal")).unwrap();
        assert!(render(&mut ThermalZone::new(dir.path())).is_ok());
    }

    #[test]
    fn zones_procfs_cannot_open_are_skipped() {
        let dir = TempDir::new();
        write_zone(&dir, "thermal_zone0", "acpitz", "27800");
        // No policy, no temp: skipped, as 1.12's procfs skips them.
        dir.write("class/thermal/thermal_zone1/type", "acpitz\n");
        dir.write("class/thermal/thermal_zone2/type", "acpitz\n");
        dir.write("class/thermal/thermal_zone2/policy", "step_wise\n");
        // A regular file where a zone directory should be.
        dir.write("class/thermal/thermal_zone3", "");
        let text = render(&mut ThermalZone::new(dir.path())).unwrap();
        assert_eq!(
            series(&text),
            ["node_thermal_zone_temp{type=\"acpitz\",zone=\"0\"} 27.8"]
        );
    }

    #[test]
    fn malformed_values_are_errors_naming_the_file() {
        let dir = TempDir::new();
        write_zone(&dir, "thermal_zone0", "acpitz", "27.8");
        let err = render(&mut ThermalZone::new(dir.path()))
            .unwrap_err()
            .to_string();
        assert!(
            err.ends_with(
                "thermal_zone0/temp line 1: expected an integer (millidegrees Celsius), got \"27.8\""
            ),
            "{err}"
        );
        write_zone(&dir, "thermal_zone0", "acpitz", "27800");
        dir.write("class/thermal/thermal_zone0/passive", "-1\n");
        let err = render(&mut ThermalZone::new(dir.path())).unwrap_err();
        assert!(err.to_string().contains("thermal_zone0/passive line 1"), "{err}");
        std::fs::remove_file(dir.path().join("class/thermal/thermal_zone0/passive")).unwrap();
        write_cooling(&dir, "cooling_device0", "Fan", "off", "1");
        let err = render(&mut ThermalZone::new(dir.path())).unwrap_err();
        assert!(
            err.to_string()
                .ends_with("cooling_device0/cur_state line 1: expected an integer, got \"off\""),
            "{err}"
        );
        // A cooling device without its type fails, unlike a zone.
        write_cooling(&dir, "cooling_device0", "Fan", "0", "1");
        std::fs::remove_file(dir.path().join("class/thermal/cooling_device0/type")).unwrap();
        let err = render(&mut ThermalZone::new(dir.path())).unwrap_err();
        assert!(err.to_string().contains("cooling_device0/type: "), "{err}");
    }

    #[test]
    fn devices_come_and_go() {
        let dir = TempDir::new();
        let mut collector = ThermalZone::new(dir.path());
        write_zone(&dir, "thermal_zone0", "acpitz", "27800");
        write_cooling(&dir, "cooling_device0", "Fan", "0", "1");
        assert_eq!(series(&render(&mut collector).unwrap()).len(), 3);
        std::fs::remove_dir_all(dir.path().join("class/thermal/thermal_zone0")).unwrap();
        let text = render(&mut collector).unwrap();
        assert_eq!(series(&text).len(), 2, "{text}");
        assert!(!text.contains("zone="), "{text}");
    }
}

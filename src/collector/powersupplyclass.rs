//! `node_power_supply_*` from `<sysfs>/class/power_supply/<supply>/` (mains adapters,
//! batteries, USB ports), as node_exporter 1.12's powersupplyclass collector exports
//! them (procfs's `PowerSupplyClass`).
//!
//! Per supply (label `power_supply`, the directory's name):
//! - every regular file of the directory is read (one read of at most 128 bytes,
//!   white space trimmed), links and subdirectories are not. A read that fails with
//!   ENOENT, EOPNOTSUPP or EINVAL skips that file, as in procfs; any other failure
//!   fails the collector;
//! - the numeric attributes procfs knows are integers as Go's `ParseInt(s, 0, 64)`
//!   reads them; one that is not fails the collector, whether or not node_exporter
//!   exports it (`charge_avg`, `power_avg`...);
//! - exported unscaled: `authentic`, `calibrate`, `capacity`, `capacity_alert_{max,min}`,
//!   `cyclecount` (from `cycle_count`), `online`, `present`, `time_to_{empty,full}_seconds`
//!   (from `time_to_{empty,full}_now`); micro-units (µA, µV, µWh, µAh, µW) ÷ 1e6:
//!   `current_ampere` (from `current_now`), `voltage_volt`, `energy_watthour`,
//!   `charge_ampere`, `power_watt` and the other `current_*`, `voltage_*`, `energy_*`,
//!   `charge_*`, `constant_charge_*`, `precharge_current`, `input_current_limit`;
//!   tenths of a degree ÷ 10: `temp_celsius` and the other `temp_*_celsius`. All are
//!   gauges with HELP `<name> value of /sys/class/power_supply/<power_supply>.`;
//! - `node_power_supply_info` 1, labelled with the text attributes that are not
//!   empty (`type`, `status`, `manufacturer`, `model_name`, `serial_number`,
//!   `technology`, `capacity_level`, `charge_type`, `health`, `usb_type`, `scope`)
//!   and `power_supply`; bytes that are not UTF-8 become U+FFFD, as node_exporter's
//!   `strings.ToValidUTF8` makes them. Supplies have different label sets.
//!
//! Supplies whose name matches `ignored_supplies` (node_exporter's
//! `--collector.powersupply.ignored-supplies`, default `^$`) are left out. No
//! class/power_supply directory is "no data" (ErrNoData); an empty one (most VMs)
//! succeeds with no series.
//!
//! node_exporter 1.5 has the same families, labels, HELP and TYPE. Differences:
//! ENODATA, which battery drivers answer for a value they cannot give at the moment
//! (`time_to_empty_now` while charging), skips the file here too, deliberately: one
//! such attribute should not cost every power supply series. A value procfs cannot
//! parse is named with its file in the error.

use super::go_parse::{parse_int, push_valid_utf8, trim_space};
use super::{list_dir, read_sys_value, set_path, Build, CollectError, Collector, Context};
use crate::batch::{Batch, Kind};
use crate::config::collectors;
use crate::config::Pattern;
use nix::errno::Errno;
use serde::{Deserialize, Serialize};
use std::io;
use std::path::{Path, PathBuf};

/// node_exporter's default `--collector.powersupply.ignored-supplies`: nothing.
pub const IGNORED_SUPPLIES: &str = "^$";

/// `collectors.powersupplyclass`: which supplies to leave out.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Options {
    /// Supplies whose name matches (anywhere, unless anchored) are left out.
    pub ignored_supplies: Option<Pattern>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            // A constant checked by the tests below.
            ignored_supplies: Pattern::new(IGNORED_SUPPLIES).ok(),
        }
    }
}

impl collectors::Options for Options {}

/// How a numeric attribute is exported: the family name after `node_power_supply_`
/// and the divisor to base units.
#[derive(Clone, Copy)]
enum Export {
    No,
    Raw(&'static str),
    /// micro-units: ÷ 1e6.
    Micro(&'static str),
    /// tenths of a degree Celsius: ÷ 10.
    Tenths(&'static str),
}

/// Every numeric attribute procfs parses, and what node_exporter exports of it.
const NUMBERS: [(&str, Export); 56] = [
    ("authentic", Export::Raw("authentic")),
    ("calibrate", Export::Raw("calibrate")),
    ("capacity", Export::Raw("capacity")),
    ("capacity_alert_max", Export::Raw("capacity_alert_max")),
    ("capacity_alert_min", Export::Raw("capacity_alert_min")),
    ("cycle_count", Export::Raw("cyclecount")),
    ("online", Export::Raw("online")),
    ("present", Export::Raw("present")),
    ("time_to_empty_now", Export::Raw("time_to_empty_seconds")),
    ("time_to_full_now", Export::Raw("time_to_full_seconds")),
    ("current_boot", Export::Micro("current_boot")),
    ("current_max", Export::Micro("current_max")),
    ("current_now", Export::Micro("current_ampere")),
    ("energy_empty", Export::Micro("energy_empty")),
    ("energy_empty_design", Export::Micro("energy_empty_design")),
    ("energy_full", Export::Micro("energy_full")),
    ("energy_full_design", Export::Micro("energy_full_design")),
    ("energy_now", Export::Micro("energy_watthour")),
    ("voltage_boot", Export::Micro("voltage_boot")),
    ("voltage_max", Export::Micro("voltage_max")),
    ("voltage_max_design", Export::Micro("voltage_max_design")),
    ("voltage_min", Export::Micro("voltage_min")),
    ("voltage_min_design", Export::Micro("voltage_min_design")),
    ("voltage_now", Export::Micro("voltage_volt")),
    ("voltage_ocv", Export::Micro("voltage_ocv")),
    ("charge_control_limit", Export::Micro("charge_control_limit")),
    (
        "charge_control_limit_max",
        Export::Micro("charge_control_limit_max"),
    ),
    ("charge_counter", Export::Micro("charge_counter")),
    ("charge_empty", Export::Micro("charge_empty")),
    ("charge_empty_design", Export::Micro("charge_empty_design")),
    ("charge_full", Export::Micro("charge_full")),
    ("charge_full_design", Export::Micro("charge_full_design")),
    ("charge_now", Export::Micro("charge_ampere")),
    ("charge_term_current", Export::Micro("charge_term_current")),
    (
        "constant_charge_current",
        Export::Micro("constant_charge_current"),
    ),
    (
        "constant_charge_current_max",
        Export::Micro("constant_charge_current_max"),
    ),
    (
        "constant_charge_voltage",
        Export::Micro("constant_charge_voltage"),
    ),
    (
        "constant_charge_voltage_max",
        Export::Micro("constant_charge_voltage_max"),
    ),
    ("precharge_current", Export::Micro("precharge_current")),
    ("input_current_limit", Export::Micro("input_current_limit")),
    ("power_now", Export::Micro("power_watt")),
    ("temp", Export::Tenths("temp_celsius")),
    ("temp_alert_max", Export::Tenths("temp_alert_max_celsius")),
    ("temp_alert_min", Export::Tenths("temp_alert_min_celsius")),
    ("temp_ambient", Export::Tenths("temp_ambient_celsius")),
    ("temp_ambient_max", Export::Tenths("temp_ambient_max_celsius")),
    ("temp_ambient_min", Export::Tenths("temp_ambient_min_celsius")),
    ("temp_max", Export::Tenths("temp_max_celsius")),
    ("temp_min", Export::Tenths("temp_min_celsius")),
    // Parsed by procfs, not exported by node_exporter.
    ("charge_avg", Export::No),
    ("current_avg", Export::No),
    ("energy_avg", Export::No),
    ("power_avg", Export::No),
    ("time_to_empty_avg", Export::No),
    ("time_to_full_avg", Export::No),
    ("voltage_avg", Export::No),
];

/// The text attributes, which label `node_power_supply_info` under their own names.
const TEXTS: [&str; 11] = [
    "capacity_level",
    "charge_type",
    "health",
    "manufacturer",
    "model_name",
    "serial_number",
    "status",
    "technology",
    "type",
    "usb_type",
    "scope",
];

/// What was read for one supply; slots are reused from cycle to cycle.
struct Supply {
    numbers: [Option<i64>; NUMBERS.len()],
    texts: [String; TEXTS.len()],
}

impl Default for Supply {
    fn default() -> Self {
        Supply {
            numbers: [None; NUMBERS.len()],
            texts: Default::default(),
        }
    }
}

pub struct Powersupplyclass {
    /// `<sysfs>/class/power_supply`.
    dir: PathBuf,
    ignored: Option<Pattern>,
    path: PathBuf,
    raw: Vec<u8>,
    /// This cycle's supply names in the first `len` slots.
    names: Vec<String>,
    supplies: Vec<Supply>,
    len: usize,
    files: Vec<String>,
}

impl Powersupplyclass {
    pub fn new(sysfs: &Path, ignored: Option<Pattern>) -> Self {
        Powersupplyclass {
            dir: sysfs.join("class/power_supply"),
            ignored,
            path: PathBuf::new(),
            raw: Vec::new(),
            names: Vec::new(),
            supplies: Vec::new(),
            len: 0,
            files: Vec::new(),
        }
    }

    fn list(&mut self) -> Result<(), CollectError> {
        self.len = match list_dir(&self.dir, &mut self.names, |_, _| true) {
            Ok(len) => len,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(CollectError::no_data(format!(
                    "{} does not exist: no power supply class",
                    self.dir.display()
                )));
            }
            Err(e) => return Err(CollectError::io(&self.dir, &e)),
        };
        if self.supplies.len() < self.len {
            self.supplies.resize_with(self.len, Supply::default);
        }
        Ok(())
    }

    /// Reads every supply, ignored ones too, as procfs does before node_exporter
    /// drops them.
    fn read(&mut self) -> Result<(), CollectError> {
        for index in 0..self.len {
            let supply = &mut self.supplies[index];
            supply.numbers = [None; NUMBERS.len()];
            supply.texts.iter_mut().for_each(String::clear);
            set_path(&mut self.path, &self.dir, &[&self.names[index]]);
            let regular = |entry: &std::fs::DirEntry, _: &str| {
                entry.file_type().is_ok_and(|t| t.is_file())
            };
            let files = list_dir(&self.path, &mut self.files, regular)
                .map_err(|e| CollectError::io(&self.path, &e))?;
            for file in &self.files[..files] {
                set_path(&mut self.path, &self.dir, &[&self.names[index], file]);
                let raw = match read_sys_value(&self.path, &mut self.raw) {
                    Ok(raw) => trim_space(raw),
                    Err(e) if is_absent(&e) => continue,
                    Err(e) => return Err(CollectError::io(&self.path, &e)),
                };
                if let Some(slot) = NUMBERS.iter().position(|(name, _)| name == file) {
                    let text = String::from_utf8_lossy(raw);
                    let value = parse_int(&text).ok_or_else(|| {
                        CollectError::parse(
                            &self.path,
                            1,
                            format!("expected an integer, got {text:?}"),
                        )
                    })?;
                    supply.numbers[slot] = Some(value);
                } else if let Some(slot) = TEXTS.iter().position(|name| name == file) {
                    push_valid_utf8(&mut supply.texts[slot], raw);
                }
            }
        }
        Ok(())
    }

    fn write(&self, out: &mut Batch) {
        let supplies = || {
            self.names
                .iter()
                .zip(&self.supplies)
                .take(self.len)
                .filter(|(name, _)| !self.ignored.as_ref().is_some_and(|p| p.is_match(name)))
        };
        for (slot, (_, export)) in NUMBERS.iter().enumerate() {
            let (name, divisor) = match *export {
                Export::No => continue,
                Export::Raw(name) => (name, 1.0),
                Export::Micro(name) => (name, 1e6),
                Export::Tenths(name) => (name, 10.0),
            };
            let mut family = out.family(
                format_args!("node_power_supply_{name}"),
                format_args!("{name} value of /sys/class/power_supply/<power_supply>."),
                Kind::Gauge,
            );
            for (supply_name, supply) in supplies() {
                if let Some(value) = supply.numbers[slot] {
                    let value = if divisor == 1.0 {
                        value as f64
                    } else {
                        value as f64 / divisor
                    };
                    family
                        .series()
                        .label("power_supply", supply_name)
                        .value(value);
                }
            }
        }
        let mut family = out.family(
            "node_power_supply_info",
            "info of /sys/class/power_supply/<power_supply>.",
            Kind::Gauge,
        );
        for (supply_name, supply) in supplies() {
            let mut series = family.series().label("power_supply", supply_name);
            for (label, text) in TEXTS.iter().zip(&supply.texts) {
                if !text.is_empty() {
                    series = series.label(label, text);
                }
            }
            series.value(1.0);
        }
    }
}

/// The read failures procfs skips a file for.
fn is_absent(err: &io::Error) -> bool {
    err.kind() == io::ErrorKind::NotFound
        || err.raw_os_error().is_some_and(|code| {
            [Errno::EOPNOTSUPP, Errno::EINVAL, Errno::ENODATA].contains(&Errno::from_raw(code))
        })
}

impl Build for Powersupplyclass {
    type Options = Options;

    const SOURCES: &'static [&'static str] = &[
        "sys/class/power_supply/BAT0/capacity",
        "sys/class/power_supply/BAT0/energy_now",
        "sys/class/power_supply/BAT0/model_name",
        "sys/class/power_supply/BAT0/status",
        "sys/class/power_supply/AC/online",
    ];

    fn build(context: &Context<'_>, options: &Options) -> Self {
        Powersupplyclass::new(&context.paths.sysfs, options.ignored_supplies.clone())
    }
}

impl Collector for Powersupplyclass {
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

    fn collector(dir: &TempDir) -> Powersupplyclass {
        Powersupplyclass::new(dir.path(), Options::default().ignored_supplies)
    }

    fn series(text: &str) -> Vec<&str> {
        text.lines().filter(|l| !l.starts_with('#')).collect()
    }

    fn write_supply(dir: &TempDir, name: &str, files: &[(&str, &[u8])]) {
        for (file, value) in files {
            let mut contents = value.to_vec();
            contents.push(b'\n');
            dir.write_bytes(&format!("class/power_supply/{name}/{file}"), &contents);
        }
    }

    #[test]
    fn exports_numbers_in_base_units_and_the_info_labels() {
        let dir = TempDir::new();
        write_supply(&dir, "AC", &[("online", b"1"), ("type", b"Mains")]);
        write_supply(
            &dir,
            "BAT1",
            &[
                ("capacity", b"87"),
                ("charge_now", b"4460000"),
                ("current_now", b"0x3e8"),
                ("cycle_count", b"112"),
                ("temp", b"285"),
                ("time_to_empty_now", b"7380"),
                ("voltage_now", b"12498000"),
                ("power_avg", b"-1"),
                ("alarm", b"0"),
                ("model_name", b"5B10W\xff\xfe"),
                ("status", b"Discharging"),
                ("serial_number", b""),
            ],
        );
        // Not files of the supply: a link and a directory.
        std::os::unix::fs::symlink("..", dir.path().join("class/power_supply/BAT1/device"))
            .unwrap();
        dir.write("class/power_supply/BAT1/power/control", "auto\n");
        let text = render(&mut collector(&dir)).unwrap();
        assert_eq!(
            series(&text),
            [
                "node_power_supply_capacity{power_supply=\"BAT1\"} 87",
                "node_power_supply_cyclecount{power_supply=\"BAT1\"} 112",
                "node_power_supply_online{power_supply=\"AC\"} 1",
                "node_power_supply_time_to_empty_seconds{power_supply=\"BAT1\"} 7380",
                "node_power_supply_current_ampere{power_supply=\"BAT1\"} 0.001",
                "node_power_supply_voltage_volt{power_supply=\"BAT1\"} 12.498",
                "node_power_supply_charge_ampere{power_supply=\"BAT1\"} 4.46",
                "node_power_supply_temp_celsius{power_supply=\"BAT1\"} 28.5",
                "node_power_supply_info{power_supply=\"AC\",type=\"Mains\"} 1",
                "node_power_supply_info{model_name=\"5B10W\u{FFFD}\",power_supply=\"BAT1\",status=\"Discharging\"} 1",
            ]
        );
        assert!(text.contains(
            "# HELP node_power_supply_charge_ampere charge_ampere value of /sys/class/power_supply/<power_supply>.\n\
             # TYPE node_power_supply_charge_ampere gauge\n"
        ));
        assert!(text.contains(
            "# HELP node_power_supply_info info of /sys/class/power_supply/<power_supply>.\n"
        ));
    }

    #[test]
    fn ignored_supplies_are_left_out() {
        let dir = TempDir::new();
        write_supply(&dir, "AC", &[("online", b"1")]);
        write_supply(&dir, "hidpp_battery_0", &[("capacity", b"40")]);
        let ignored = Pattern::new("hidpp").ok();
        let text = render(&mut Powersupplyclass::new(dir.path(), ignored)).unwrap();
        assert_eq!(
            series(&text),
            [
                "node_power_supply_online{power_supply=\"AC\"} 1",
                "node_power_supply_info{power_supply=\"AC\"} 1",
            ]
        );
        assert_eq!(
            Options::default().ignored_supplies.map(|p| p.as_str().to_owned()),
            Some(IGNORED_SUPPLIES.to_owned())
        );
    }

    #[test]
    fn a_missing_class_is_no_data_and_an_empty_one_is_nothing() {
        let dir = TempDir::new();
        assert!(render(&mut collector(&dir)).unwrap_err().is_no_data());
        std::fs::create_dir_all(dir.path().join("class/power_supply")).unwrap();
        assert_eq!(series(&render(&mut collector(&dir)).unwrap()), Vec::<&str>::new());
    }

    #[test]
    fn malformed_numbers_fail_naming_the_file_exported_or_not() {
        let dir = TempDir::new();
        write_supply(&dir, "BAT0", &[("capacity", b"81%")]);
        let err = render(&mut collector(&dir)).unwrap_err().to_string();
        assert!(
            err.ends_with("BAT0/capacity line 1: expected an integer, got \"81%\""),
            "{err}"
        );
        write_supply(&dir, "BAT0", &[("capacity", b"81"), ("power_avg", b"n/a")]);
        let err = render(&mut collector(&dir)).unwrap_err().to_string();
        assert!(err.contains("BAT0/power_avg line 1"), "{err}");
        // A supply entry that is not a directory fails too, as in procfs.
        let dir = TempDir::new();
        dir.write("class/power_supply/BAT0", "");
        assert!(render(&mut collector(&dir)).is_err());
    }

    #[test]
    fn unreadable_attributes_node_exporter_skips_are_skipped() {
        for code in [Errno::ENOENT, Errno::EOPNOTSUPP, Errno::EINVAL, Errno::ENODATA] {
            assert!(is_absent(&io::Error::from_raw_os_error(code as i32)), "{code}");
        }
        assert!(!is_absent(&io::Error::from_raw_os_error(Errno::EIO as i32)));
    }

    #[test]
    fn supplies_come_and_go() {
        let dir = TempDir::new();
        let mut collector = collector(&dir);
        write_supply(&dir, "BAT0", &[("capacity", b"81"), ("status", b"Full")]);
        write_supply(&dir, "BAT1", &[("capacity", b"50")]);
        assert_eq!(series(&render(&mut collector).unwrap()).len(), 4);
        std::fs::remove_dir_all(dir.path().join("class/power_supply/BAT0")).unwrap();
        let text = render(&mut collector).unwrap();
        assert_eq!(
            series(&text),
            [
                "node_power_supply_capacity{power_supply=\"BAT1\"} 50",
                "node_power_supply_info{power_supply=\"BAT1\"} 1",
            ]
        );
    }
}

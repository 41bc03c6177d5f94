//! `node_hwmon_*` from `<sysfs>/class/hwmon/hwmon<N>/` (and each chip's `device/`
//! directory), as node_exporter 1.12's hwmon collector exports them, lm-sensors
//! style: temperatures, voltages, fans, currents, power, energy, humidity, GPU
//! clocks, alarms.
//!
//! **Chips.** Every entry of class/hwmon that is a directory (links followed) is a
//! chip. Its `chip` label is, in node_exporter's order of preference:
//! 1. from the `device` link's target: `<parent dir>_<dir>`, e.g.
//!    `platform_coretemp_0` for `/sys/devices/platform/coretemp.0` (or `<dir>` alone);
//! 2. the `name` file (`nct6779`);
//! 3. the chip directory's own name (`hwmon4`).
//!
//! each cleaned as node_exporter cleans metric names: lower case, every character
//! outside `[a-z0-9:_]` made `_`, `_` trimmed at both ends. A chip with a `name` file
//! also gets `node_hwmon_chip_names{chip,chip_name}` (the cleaned name).
//!
//! **Sensors.** Files named `<type><number>_<property>` (or `<type><number>`,
//! `<type>_<property>`...) whose type is one of [`SENSOR_TYPES`] are read from the
//! chip directory, then from `device/`, whose files win. A sensor is `<type><number>`
//! (`temp1`; a type without a number gets 0: `beep_enable0`, `vrm0`). Values are
//! trimmed of newlines only and parsed as Go floats; a file that cannot be read or
//! does not parse is skipped without a word, as node_exporter skips it. Per property
//! (`sensor_samples` and `Element::sample` hold the whole table):
//! - `label` → `node_hwmon_sensor_label{chip,sensor,label}` 1;
//! - `fault`, `alarm` → `node_hwmon_<type>_<property>` as is; `beep` →
//!   `node_hwmon_<type>_beep_enabled`;
//! - temperatures, voltages and currents are milli-units (× 0.001) in
//!   `_celsius`/`_volts`/`_amps`; power (µW) `_watt` and energy (µJ) `_joule_total`
//!   (a counter) ÷ 1e6; fans `_rpm`; humidity a ratio ÷ 1e6; `freq<N>_input` with a
//!   label → `node_hwmon_freq_freq_mhz` (÷ 1e6) with the cleaned label as `sensor`;
//! - the `input` property is the sensor's value: the family has no `_input` unless
//!   the sensor also has a bare `<type><N>` file;
//! - anything else: `node_hwmon_<type>_<property>` unscaled, HELP "Hardware monitor
//!   <type> element <property>". So `temp1_crit_alarm` is
//!   `node_hwmon_temp_crit_alarm_celsius` and `pwm1` is `node_hwmon_pwm`, exactly as
//!   node_exporter names them.
//!
//! **Filters.** `chip_include`/`chip_exclude` match the chip label;
//! `sensor_include`/`sensor_exclude` match `<chip>;<sensor>` (e.g.
//! `platform_coretemp_0;temp3`), as node_exporter's `--collector.hwmon.chip-*` and
//! `--collector.hwmon.sensor-*` flags do.
//!
//! **Errors.** No class/hwmon directory is "no data" (node_exporter's ErrNoData). A
//! chip whose directory (or `device/`) cannot be listed fails the collector, after
//! the other chips are read; node_exporter then still serves the other chips'
//! series, this collector reports nothing for that cycle (a failing collector's
//! output is rolled back).
//!
//! **Since 1.5.** 1.12 adds the `freq` type (`node_hwmon_freq_freq_mhz`, and the
//! freq sensors' `node_hwmon_sensor_label`) and the `chip_*` and `sensor_*` filters,
//! and makes label values valid UTF-8 (each run of other bytes becomes U+FFFD).
//!
//! **Other differences.** node_exporter walks its sensor maps in random order, so
//! where two files clean to the same family and labels it serves one of them at
//! random (or fails the scrape); here the first in name order, once, with the HELP
//! of the first. For a `freq` sensor, node_exporter's label slice aliasing can give
//! the sensor's other properties the cleaned label as `sensor`; here they keep the
//! sensor name. Hexadecimal floats, which Go parses, are skipped. Resolving a chip's
//! `device` link allocates the resolved path (one small allocation per chip and cycle).

use super::go_parse::{parse_float, push_valid_utf8};
use super::{list_dir, read_sys_value, set_path, Build, CollectError, Collector, Context, Seen};
use crate::batch::{Batch, Kind};
use crate::config::collectors;
use crate::config::pattern::{self, Filter, Pattern};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};

/// `collectors.hwmon`: which chips and sensors to report. An include and an exclude
/// apply together (node_exporter's help calls them mutually exclusive but takes
/// both); an empty regex is no filter, as there.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Options {
    /// Only chips whose label matches (`--collector.hwmon.chip-include`).
    #[serde(deserialize_with = "pattern::filter")]
    pub chip_include: Option<Pattern>,
    /// Chips whose label matches are left out (`--collector.hwmon.chip-exclude`).
    #[serde(deserialize_with = "pattern::filter")]
    pub chip_exclude: Option<Pattern>,
    /// Only sensors whose `<chip>;<sensor>` matches (`--collector.hwmon.sensor-include`).
    #[serde(deserialize_with = "pattern::filter")]
    pub sensor_include: Option<Pattern>,
    /// Sensors whose `<chip>;<sensor>` matches are left out
    /// (`--collector.hwmon.sensor-exclude`).
    #[serde(deserialize_with = "pattern::filter")]
    pub sensor_exclude: Option<Pattern>,
}

impl collectors::Options for Options {}

/// The sensor types node_exporter reads (`hwmonSensorTypes`), in its order.
pub const SENSOR_TYPES: [&str; 14] = [
    "vrm",
    "beep_enable",
    "update_interval",
    "in",
    "cpu",
    "fan",
    "pwm",
    "temp",
    "curr",
    "power",
    "energy",
    "humidity",
    "intrusion",
    "freq",
];

/// One value file of a chip, as node_exporter's `addValueFile` keeps it.
#[derive(Default)]
struct Reading {
    /// Index into [`SENSOR_TYPES`].
    kind: usize,
    number: i64,
    property: String,
    /// The file's bytes (one read of at most 128), trimmed of newlines.
    value: Vec<u8>,
    /// Read order: a later file with the same sensor and property wins.
    order: usize,
}

/// One series to write.
#[derive(Default)]
struct Sample {
    family: String,
    help: String,
    kind: Option<Kind>,
    chip: String,
    /// The second label's name (`sensor` or `chip_name`) and value.
    second: &'static str,
    second_value: String,
    /// `node_hwmon_sensor_label`'s `label`, when `has_label`.
    label: String,
    has_label: bool,
    value: f64,
    order: usize,
}

/// This cycle's series in the first `len` slots; the slots are reused.
#[derive(Default)]
struct Samples {
    slots: Vec<Sample>,
    len: usize,
}

impl Samples {
    /// The next slot, cleared; [`Samples::commit`] keeps it.
    fn next(&mut self) -> &mut Sample {
        if self.slots.len() == self.len {
            self.slots.push(Sample::default());
        }
        let sample = &mut self.slots[self.len];
        sample.family.clear();
        sample.help.clear();
        sample.chip.clear();
        sample.second = "sensor";
        sample.second_value.clear();
        sample.label.clear();
        sample.has_label = false;
        sample.order = self.len;
        sample
    }

    fn commit(&mut self) {
        self.len += 1;
    }

    /// Adds a `{chip, sensor}` series whose family name and HELP `name` and `help`
    /// write.
    fn push(
        &mut self,
        (chip, sensor): (&str, &str),
        name: impl FnOnce(&mut String),
        help: impl FnOnce(&mut String),
        kind: Kind,
        value: f64,
    ) {
        let sample = self.next();
        name(&mut sample.family);
        help(&mut sample.help);
        sample.kind = Some(kind);
        sample.chip.push_str(chip);
        sample.second_value.push_str(sensor);
        sample.value = value;
        self.commit();
    }
}

pub struct Hwmon {
    /// `<sysfs>/class/hwmon`.
    dir: PathBuf,
    chips: Filter,
    sensors: Filter,
    /// The chip directory being read, and a path under it.
    chip_dir: PathBuf,
    path: PathBuf,
    raw: Vec<u8>,
    /// class/hwmon's entries, and one chip directory's files.
    entries: Vec<String>,
    files: Vec<String>,
    readings: Vec<Reading>,
    readings_len: usize,
    samples: Samples,
    /// The chip label, the sensor name and the filter or series key being built.
    chip: String,
    sensor: String,
    key: String,
    seen: Seen,
}

impl Hwmon {
    pub fn new(sysfs: &Path, chips: Filter, sensors: Filter) -> Self {
        Hwmon {
            dir: sysfs.join("class/hwmon"),
            chips,
            sensors,
            chip_dir: PathBuf::new(),
            path: PathBuf::new(),
            raw: Vec::new(),
            entries: Vec::new(),
            files: Vec::new(),
            readings: Vec::new(),
            readings_len: 0,
            samples: Samples::default(),
            chip: String::new(),
            sensor: String::new(),
            key: String::new(),
            seen: Seen::default(),
        }
    }

    /// Reads every chip into `samples`; the error is the last failing chip's, as
    /// node_exporter reports it.
    fn read(&mut self) -> Result<(), CollectError> {
        self.samples.len = 0;
        let listed = match list_dir(&self.dir, &mut self.entries, |_, _| true) {
            Ok(listed) => listed,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(CollectError::no_data(format!(
                    "{} does not exist: no hardware monitoring chips",
                    self.dir.display()
                )));
            }
            Err(e) => return Err(CollectError::io(&self.dir, &e)),
        };
        let mut last_error = None;
        let mut chip_dir = std::mem::take(&mut self.chip_dir);
        for index in 0..listed {
            set_path(&mut chip_dir, &self.dir, &[&self.entries[index]]);
            // Links are followed; what is not a directory is not a chip.
            if !std::fs::metadata(&chip_dir).is_ok_and(|m| m.is_dir()) {
                continue;
            }
            if let Err(e) = self.read_chip(&chip_dir) {
                last_error = Some(e);
            }
        }
        self.chip_dir = chip_dir;
        last_error.map_or(Ok(()), Err)
    }

    /// node_exporter's `updateHwmon` for the chip at `dir`.
    fn read_chip(&mut self, dir: &Path) -> Result<(), CollectError> {
        chip_label(dir, &mut self.path, &mut self.raw, &mut self.chip)
            .map_err(|e| CollectError::io(dir, &e))?;
        if self.chip.is_empty() {
            return Err(CollectError::new(format!(
                "{}: could not derive a chip name",
                dir.display()
            )));
        }
        if !self.chips.allows(&self.chip) {
            return Ok(());
        }
        self.readings_len = 0;
        self.read_sensor_files(dir, &[])?;
        set_path(&mut self.path, dir, &["device"]);
        if std::fs::metadata(&self.path).is_ok() {
            self.read_sensor_files(dir, &["device"])?;
        }
        // The human-readable chip name, when the chip has a `name` file.
        set_path(&mut self.path, dir, &["name"]);
        if let Ok(raw) = read_sys_value(&self.path, &mut self.raw) {
            let sample = self.samples.next();
            clean_metric_name(raw, &mut sample.second_value);
            if !sample.second_value.is_empty() {
                sample.family.push_str("node_hwmon_chip_names");
                sample
                    .help
                    .push_str("Annotation metric for human-readable chip names");
                sample.kind = Some(Kind::Gauge);
                sample.chip.push_str(&self.chip);
                sample.second = "chip_name";
                sample.value = 1.0;
                self.samples.commit();
            }
        }
        self.sensors_of_chip();
        Ok(())
    }

    /// node_exporter's `collectSensorData`: every sensor file of `dir/sub` into
    /// `readings`.
    fn read_sensor_files(&mut self, dir: &Path, sub: &[&str]) -> Result<(), CollectError> {
        set_path(&mut self.path, dir, sub);
        let listed = list_dir(&self.path, &mut self.files, |_, _| true)
            .map_err(|e| CollectError::io(&self.path, &e))?;
        for index in 0..listed {
            let file = self.files[index].as_str();
            let Some((kind, number, property)) = explode_sensor_filename(file) else {
                continue;
            };
            let Some(kind) = SENSOR_TYPES.iter().position(|t| *t == kind) else {
                continue;
            };
            set_path(&mut self.path, dir, sub);
            self.path.push(file);
            // Unreadable files (directories such as `power`, write-only attributes,
            // drivers answering EAGAIN) are skipped, as node_exporter skips them.
            let Ok(raw) = read_sys_value(&self.path, &mut self.raw) else {
                continue;
            };
            if self.readings.len() == self.readings_len {
                self.readings.push(Reading::default());
            }
            let reading = &mut self.readings[self.readings_len];
            reading.kind = kind;
            reading.number = number;
            reading.property.clear();
            reading.property.push_str(property);
            reading.value.clear();
            reading.value.extend_from_slice(trim_newlines(raw));
            reading.order = self.readings_len;
            self.readings_len += 1;
        }
        Ok(())
    }

    /// node_exporter's loop over a chip's sensors, each one's readings together.
    fn sensors_of_chip(&mut self) {
        let readings = &mut self.readings[..self.readings_len];
        readings.sort_unstable_by(|a, b| {
            (a.kind, a.number, &a.property, a.order).cmp(&(b.kind, b.number, &b.property, b.order))
        });
        let mut start = 0;
        while start < readings.len() {
            let sensor = (readings[start].kind, readings[start].number);
            let len = readings[start..]
                .iter()
                .take_while(|r| (r.kind, r.number) == sensor)
                .count();
            self.sensor.clear();
            let _ = write!(self.sensor, "{}{}", SENSOR_TYPES[sensor.0], sensor.1);
            self.key.clear();
            let _ = write!(self.key, "{};{}", self.chip, self.sensor);
            if self.sensors.allows(&self.key) {
                sensor_samples(
                    &readings[start..start + len],
                    (&self.chip, &self.sensor),
                    &mut self.samples,
                );
            }
            start += len;
        }
    }

    /// Writes the samples grouped into families (by name), each series once.
    fn write(&mut self, out: &mut Batch) {
        let samples = &mut self.samples.slots[..self.samples.len];
        samples.sort_unstable_by(|a, b| (&a.family, a.order).cmp(&(&b.family, b.order)));
        for group in samples.chunk_by(|a, b| a.family == b.family) {
            let first = &group[0];
            let kind = first.kind.unwrap_or(Kind::Gauge);
            let mut family = out.family(&first.family, &first.help, kind);
            self.seen.clear();
            for sample in group {
                self.key.clear();
                let _ = write!(
                    self.key,
                    "{}\0{}\0{}",
                    sample.chip, sample.second_value, sample.label
                );
                if !self.seen.first(&self.key) {
                    continue;
                }
                let mut series = family
                    .series()
                    .label("chip", &sample.chip)
                    .label(sample.second, &sample.second_value);
                if sample.has_label {
                    series = series.label("label", &sample.label);
                }
                series.value(sample.value);
            }
        }
    }
}

/// The series of one sensor (`chip`, `sensor`) from its readings, sorted by
/// property: node_exporter's naming and unit table.
fn sensor_samples(readings: &[Reading], (chip, sensor): (&str, &str), samples: &mut Samples) {
    // Of two readings of one property, the later (the device directory's) wins.
    let latest = |index: usize| {
        readings
            .get(index + 1)
            .is_none_or(|next| next.property != readings[index].property)
    };
    let property = |name: &str| {
        (0..readings.len())
            .find(|&i| latest(i) && readings[i].property == name)
            .map(|i| readings[i].value.as_slice())
    };
    let bare = property("");
    let label = property("label");
    if let Some(label) = label {
        let sample = samples.next();
        sample.family.push_str("node_hwmon_sensor_label");
        sample.help.push_str("Label for given chip and sensor");
        sample.kind = Some(Kind::Gauge);
        sample.chip.push_str(chip);
        sample.second_value.push_str(sensor);
        push_valid_utf8(&mut sample.label, label);
        sample.has_label = true;
        sample.value = 1.0;
        samples.commit();
    }
    let Some(first) = readings.first() else {
        return;
    };
    let kind = SENSOR_TYPES[first.kind];
    let labels = (chip, sensor);
    match kind {
        "beep_enable" => {
            let on = f64::from(u8::from(bare == Some(b"1".as_slice())));
            samples.push(
                labels,
                |f| f.push_str("node_hwmon_beep_enabled"),
                |h| h.push_str("Hardware beep enabled"),
                Kind::Gauge,
                on,
            );
        }
        "vrm" => {
            if let Some(value) = bare.and_then(float) {
                samples.push(
                    labels,
                    |f| f.push_str("node_hwmon_voltage_regulator_version"),
                    |h| h.push_str("Hardware voltage regulator"),
                    Kind::Gauge,
                    value,
                );
            }
        }
        "update_interval" => {
            if let Some(value) = bare.and_then(float) {
                samples.push(
                    labels,
                    |f| f.push_str("node_hwmon_update_interval_seconds"),
                    |h| h.push_str("Hardware monitor update interval"),
                    Kind::Gauge,
                    value * 0.001,
                );
            }
        }
        _ => {
            for (index, reading) in readings.iter().enumerate() {
                if !latest(index) || reading.property == "label" {
                    continue;
                }
                let Some(value) = float(&reading.value) else {
                    continue;
                };
                let element = Element {
                    kind,
                    property: &reading.property,
                    has_bare: bare.is_some(),
                };
                element.sample(labels, label, value, samples);
            }
        }
    }
}

/// One property of one sensor, named as node_exporter names it.
struct Element<'a> {
    kind: &'a str,
    property: &'a str,
    /// Whether the sensor has a bare `<type><N>` file, which takes the plain name.
    has_bare: bool,
}

impl Element<'_> {
    /// `node_hwmon_<type>`, then `_<property>` (cleaned; nothing for `input`, which
    /// is the value, unless a bare file took the plain name), then `suffix`.
    fn name(&self, suffix: &str, out: &mut String) {
        out.push_str("node_hwmon_");
        out.push_str(self.kind);
        if self.property == "input" {
            if self.has_bare {
                out.push_str("_input");
            }
        } else if !self.property.is_empty() {
            out.push('_');
            clean_metric_name(self.property.as_bytes(), out);
        }
        out.push_str(suffix);
    }

    /// Adds the sample of this property's `value`, scaled to base units.
    fn sample(&self, labels: (&str, &str), label: Option<&[u8]>, value: f64, samples: &mut Samples) {
        let (kind, property) = (self.kind, self.property);
        let (suffix, help, scale) = match (kind, property) {
            (_, "fault" | "alarm") => ("", Help::Status, Scale::None),
            (_, "beep") => (
                "_enabled",
                Help::Text("Hardware monitor sensor has beeping enabled"),
                Scale::None,
            ),
            ("in" | "cpu", _) => ("_volts", Help::Of("for voltage"), Scale::Milli),
            ("temp", p) if p != "type" => ("_celsius", Help::Of("for temperature"), Scale::Milli),
            ("curr", _) => ("_amps", Help::Of("for current"), Scale::Milli),
            ("energy", _) => (
                "_joule_total",
                Help::Of("for joules used so far"),
                Scale::Micro,
            ),
            ("power", "accuracy") => (
                "",
                Help::Text("Hardware monitor power meter accuracy, as a ratio"),
                Scale::Micro,
            ),
            ("power", "average_interval" | "average_interval_min" | "average_interval_max") => (
                "_seconds",
                Help::Of("power usage update interval"),
                Scale::Milli,
            ),
            ("power", _) => ("_watt", Help::Of("for power usage in watts"), Scale::Micro),
            ("humidity", _) => (
                "",
                Help::Of(
                    "for humidity, as a ratio (multiply with 100.0 to get the humidity as a \
                     percentage)",
                ),
                Scale::Micro,
            ),
            ("fan", "input" | "min" | "max" | "target") => (
                "_rpm",
                Help::Of("for fan revolutions per minute"),
                Scale::None,
            ),
            ("freq", "input") => {
                // GPU clocks: only with a label, which becomes the sensor.
                if let Some(label) = label {
                    let sample = samples.next();
                    self.name("_freq_mhz", &mut sample.family);
                    sample.help.push_str("Hardware monitor for GPU frequency in MHz");
                    sample.kind = Some(Kind::Gauge);
                    sample.chip.push_str(labels.0);
                    clean_metric_name(label, &mut sample.second_value);
                    sample.value = value / 1_000_000.0;
                    samples.commit();
                }
                return;
            }
            _ => ("", Help::Element, Scale::None),
        };
        let counter = kind == "energy";
        samples.push(
            labels,
            |f| self.name(suffix, f),
            |h| help.write(kind, property, h),
            if counter { Kind::Counter } else { Kind::Gauge },
            scale.apply(value),
        );
    }
}

/// The HELP text of a property's family, as node_exporter words it.
#[derive(Clone, Copy)]
enum Help {
    Text(&'static str),
    /// `Hardware monitor <text> (<property>)`; a temperature's bare file says `input`.
    Of(&'static str),
    /// `Hardware sensor <property> status (<type>)`.
    Status,
    /// `Hardware monitor <type> element <property>`.
    Element,
}

impl Help {
    fn write(self, kind: &str, property: &str, out: &mut String) {
        let _ = match self {
            Help::Text(text) => out.write_str(text),
            Help::Of(text) => {
                let shown = if kind == "temp" && property.is_empty() {
                    "input"
                } else {
                    property
                };
                write!(out, "Hardware monitor {text} ({shown})")
            }
            Help::Status => write!(out, "Hardware sensor {property} status ({kind})"),
            Help::Element => write!(out, "Hardware monitor {kind} element {property}"),
        };
    }
}

/// How node_exporter scales a raw value (it multiplies by 0.001 and divides by 1e6,
/// and the last digit can differ between the two, so the operations are kept).
#[derive(Clone, Copy)]
enum Scale {
    None,
    /// milli-units: × 0.001.
    Milli,
    /// micro-units: ÷ 1e6.
    Micro,
}

impl Scale {
    fn apply(self, value: f64) -> f64 {
        match self {
            Scale::None => value,
            Scale::Milli => value * 0.001,
            Scale::Micro => value / 1_000_000.0,
        }
    }
}

/// A Go float from a file's bytes; `None` for what Go's `ParseFloat` refuses.
fn float(bytes: &[u8]) -> Option<f64> {
    std::str::from_utf8(bytes).ok().and_then(parse_float)
}

/// `bytes` without leading and trailing newlines (node_exporter's `Trim(.., "\n")`).
fn trim_newlines(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| *b != b'\n').unwrap_or(bytes.len());
    let end = bytes.iter().rposition(|b| *b != b'\n').map_or(start, |i| i + 1);
    &bytes[start..end]
}

/// Splits a file name as node_exporter's `^(?P<type>[^0-9]+)(?P<id>[0-9]*)?(_(?P<property>.+))?$`
/// does, with the same preferences (longest type first, then longest number):
/// `temp1_crit_alarm` is (`temp`, 1, `crit_alarm`), `beep_enable` is (`beep_enable`,
/// 0, ``), `temp_x1y` is (`temp`, 0, `x1y`). `None` when it does not match or the
/// number does not fit in 64 bits.
pub fn explode_sensor_filename(name: &str) -> Option<(&str, i64, &str)> {
    let bytes = name.as_bytes();
    let type_max = bytes.iter().position(u8::is_ascii_digit).unwrap_or(bytes.len());
    for type_end in (1..=type_max).rev() {
        let digits_max = type_end
            + bytes[type_end..]
                .iter()
                .position(|b| !b.is_ascii_digit())
                .unwrap_or(bytes.len() - type_end);
        for id_end in (type_end..=digits_max).rev() {
            let rest = &name[id_end..];
            let property = if rest.is_empty() {
                ""
            } else {
                match rest.strip_prefix('_') {
                    // `.` matches any character but a newline.
                    Some(p) if !p.is_empty() && !p.contains('\n') => p,
                    _ => continue,
                }
            };
            let digits = &name[type_end..id_end];
            let number = if digits.is_empty() {
                0
            } else {
                digits.parse().ok()?
            };
            return Some((&name[..type_end], number, property));
        }
    }
    None
}

/// Appends `bytes` cleaned as node_exporter's `cleanMetricName`: lower case, every
/// character outside `[a-z0-9:_]` (each byte that is not UTF-8, too) made `_`, then
/// `_` trimmed at both ends.
pub fn clean_metric_name(bytes: &[u8], out: &mut String) {
    let start = out.len();
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            let c = c.to_ascii_lowercase();
            out.push(if c.is_ascii_lowercase() || c.is_ascii_digit() || c == ':' || c == '_' {
                c
            } else {
                '_'
            });
        }
        out.extend(std::iter::repeat_n('_', chunk.invalid().len()));
    }
    let trimmed_end = out.trim_end_matches('_').len().max(start);
    out.truncate(trimmed_end);
    let leading = out[start..].len() - out[start..].trim_start_matches('_').len();
    out.drain(start..start + leading);
}

/// The `chip` label of the chip at `dir` (see the module doc) into `out`; empty
/// when nothing gives one. Fails only when the chip directory itself cannot be
/// resolved (it went away).
fn chip_label(
    dir: &Path,
    path: &mut PathBuf,
    raw: &mut Vec<u8>,
    out: &mut String,
) -> io::Result<()> {
    out.clear();
    // 1. The device the chip belongs to: `<parent>_<name>` of the link's target.
    set_path(path, dir, &["device"]);
    if let Ok(device) = std::fs::canonicalize(&*path) {
        let name = device.file_name().map(|n| n.as_encoded_bytes());
        let parent = device.parent().and_then(Path::file_name);
        clean_metric_name(parent.map(|n| n.as_encoded_bytes()).unwrap_or_default(), out);
        if !out.is_empty() {
            out.push('_');
        }
        let before = out.len();
        clean_metric_name(name.unwrap_or_default(), out);
        if out.len() > before {
            return Ok(());
        }
        out.clear();
    }
    // 2. The chip's `name` file.
    set_path(path, dir, &["name"]);
    if let Ok(name) = read_sys_value(path, raw) {
        clean_metric_name(name, out);
        if !out.is_empty() {
            return Ok(());
        }
    }
    // 3. The chip directory's own name, links resolved.
    let resolved = std::fs::canonicalize(dir)?;
    let name = resolved.file_name().map(|n| n.as_encoded_bytes());
    clean_metric_name(name.unwrap_or_default(), out);
    Ok(())
}

impl Build for Hwmon {
    type Options = Options;

    const SOURCES: &'static [&'static str] = &[
        "sys/class/hwmon/hwmon0/temp1_input",
        "sys/class/hwmon/hwmon0/temp1_label",
        "sys/class/hwmon/hwmon0/name",
        "sys/class/hwmon/hwmon3/fan2_input",
        "sys/class/hwmon/hwmon3/in0_input",
        "sys/class/hwmon/hwmon4/freq1_input",
    ];

    fn build(context: &Context<'_>, options: &Options) -> Self {
        let chips = Filter {
            include: options.chip_include.clone(),
            exclude: options.chip_exclude.clone(),
        };
        let sensors = Filter {
            include: options.sensor_include.clone(),
            exclude: options.sensor_exclude.clone(),
        };
        Hwmon::new(&context.paths.sysfs, chips, sensors)
    }
}

impl Collector for Hwmon {
    fn collect(&mut self, out: &mut Batch) -> Result<(), CollectError> {
        self.read()?;
        self.write(out);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{render, TempDir};

    fn collector(dir: &TempDir) -> Hwmon {
        Hwmon::new(dir.path(), Filter::default(), Filter::default())
    }

    fn series(text: &str) -> Vec<&str> {
        text.lines().filter(|l| !l.starts_with('#')).collect()
    }

    /// A chip as the kernel lays one out: class/hwmon/<hwmon> links into the device's
    /// directory, whose `device` links back to the device.
    fn write_chip(dir: &TempDir, hwmon: &str, device: &str, files: &[(&str, &str)]) {
        let chip = format!("devices/{device}/hwmon/{hwmon}");
        for (file, value) in files {
            dir.write(&format!("{chip}/{file}"), &format!("{value}\n"));
        }
        std::fs::create_dir_all(dir.path().join("class/hwmon")).unwrap();
        std::os::unix::fs::symlink(
            format!("../../{chip}"),
            dir.path().join("class/hwmon").join(hwmon),
        )
        .unwrap();
        std::os::unix::fs::symlink("../..", dir.path().join(&chip).join("device")).unwrap();
    }

    #[test]
    fn an_empty_regex_is_no_filter() {
        let options: Options = serde_yaml::from_str(
            "chip_include: ''\nchip_exclude: ''\nsensor_include: ''\nsensor_exclude: null\n",
        )
        .unwrap();
        assert_eq!(options, Options::default());
        let options: Options = serde_yaml::from_str("sensor_exclude: ';temp1$'\n").unwrap();
        assert!(options.sensor_exclude.is_some_and(|p| p.is_match("platform_coretemp_0;temp1")));
    }

    #[test]
    fn file_names_split_like_node_exporters_regex() {
        for (name, expected) in [
            ("temp1_input", Some(("temp", 1, "input"))),
            ("temp1_crit_alarm", Some(("temp", 1, "crit_alarm"))),
            ("in0_input", Some(("in", 0, "input"))),
            ("pwm1", Some(("pwm", 1, ""))),
            ("pwm1_auto_point2_pwm", Some(("pwm", 1, "auto_point2_pwm"))),
            ("beep_enable", Some(("beep_enable", 0, ""))),
            ("update_interval", Some(("update_interval", 0, ""))),
            ("temp01_input", Some(("temp", 1, "input"))),
            // The type gives back characters until the rest can match `_<property>`.
            ("temp_x1y", Some(("temp", 0, "x1y"))),
            ("name", Some(("name", 0, ""))),
            ("temp1x", None),
            ("fan1_", None),
            ("1temp", None),
            ("", None),
            ("temp99999999999999999999_input", None),
        ] {
            assert_eq!(explode_sensor_filename(name), expected, "{name:?}");
        }
    }

    #[test]
    fn names_are_cleaned_like_metric_names() {
        for (raw, clean) in [
            (&b"coretemp\n"[..], "coretemp"),
            (b"Physical id 0", "physical_id_0"),
            (b"__applesmc.768__", "applesmc_768"),
            (b"LNXSYBUS:00", "lnxsybus:00"),
            ("Kühler".as_bytes(), "k_hler"),
            (b"a\xff\xfeb", "a__b"),
            (b"---", ""),
        ] {
            let mut out = String::from("kept ");
            clean_metric_name(raw, &mut out);
            assert_eq!(out, format!("kept {clean}"), "{raw:?}");
        }
    }

    #[test]
    fn chip_labels_follow_node_exporters_preferences() {
        let dir = TempDir::new();
        write_chip(&dir, "hwmon0", "platform/coretemp.0", &[("name", "coretemp"), ("temp1_input", "45000")]);
        // No device link: the name file, then the directory's own name.
        dir.write("class/hwmon/hwmon1/name", "nvme\n");
        dir.write("class/hwmon/hwmon1/temp1_input", "38850\n");
        dir.write("class/hwmon/hwmon2/temp1_input", "20000\n");
        dir.write("class/hwmon/hwmon3/name", " \n");
        dir.write("class/hwmon/hwmon3/temp1_input", "21000\n");
        // Not directories: not chips.
        dir.write("class/hwmon/README", "x\n");
        std::os::unix::fs::symlink("nowhere", dir.path().join("class/hwmon/hwmon9")).unwrap();
        let text = render(&mut collector(&dir)).unwrap();
        assert_eq!(
            series(&text),
            [
                "node_hwmon_chip_names{chip=\"platform_coretemp_0\",chip_name=\"coretemp\"} 1",
                "node_hwmon_chip_names{chip=\"nvme\",chip_name=\"nvme\"} 1",
                "node_hwmon_temp_celsius{chip=\"platform_coretemp_0\",sensor=\"temp1\"} 45",
                "node_hwmon_temp_celsius{chip=\"nvme\",sensor=\"temp1\"} 38.85",
                "node_hwmon_temp_celsius{chip=\"hwmon2\",sensor=\"temp1\"} 20",
                "node_hwmon_temp_celsius{chip=\"hwmon3\",sensor=\"temp1\"} 21",
            ]
        );
        assert!(text.contains(
            "# HELP node_hwmon_temp_celsius Hardware monitor for temperature (input)\n\
             # TYPE node_hwmon_temp_celsius gauge\n"
        ));
    }

    #[test]
    fn names_units_and_help_follow_node_exporters_table() {
        let dir = TempDir::new();
        write_chip(
            &dir,
            "hwmon0",
            "platform/it87.2608",
            &[
                ("temp1", "30000"),
                ("temp1_input", "31000"),
                ("temp1_type", "4"),
                ("temp1_fault", "0"),
                ("fan1_input", "2250"),
                ("fan1_div", "8"),
                ("fan1_beep", "1"),
                ("in0_input", "1104"),
                ("cpu0_vid", "1100"),
                ("curr1_input", "1250"),
                ("power1_average", "345000000"),
                ("power1_accuracy", "95000"),
                ("power1_average_interval", "1000"),
                ("energy1_input", "2632163903"),
                ("humidity1_input", "48250"),
                ("beep_enable", "0"),
                ("vrm", "100"),
                ("update_interval", "2000"),
                ("pwm1", "128"),
                ("intrusion0_alarm", "1"),
                ("freq1_input", "214000000"),
                ("freq2_input", "300000000"),
                ("freq1_label", "sclk"),
            ],
        );
        let text = render(&mut collector(&dir)).unwrap();
        let chip = "chip=\"platform_it87_2608\"";
        for (family, help, sensor, value) in [
            ("node_hwmon_temp_celsius", "Hardware monitor for temperature (input)", "temp1", "30"),
            ("node_hwmon_temp_input_celsius", "Hardware monitor for temperature (input)", "temp1", "31"),
            ("node_hwmon_temp_type", "Hardware monitor temp element type", "temp1", "4"),
            ("node_hwmon_temp_fault", "Hardware sensor fault status (temp)", "temp1", "0"),
            ("node_hwmon_fan_rpm", "Hardware monitor for fan revolutions per minute (input)", "fan1", "2250"),
            ("node_hwmon_fan_div", "Hardware monitor fan element div", "fan1", "8"),
            ("node_hwmon_fan_beep_enabled", "Hardware monitor sensor has beeping enabled", "fan1", "1"),
            ("node_hwmon_in_volts", "Hardware monitor for voltage (input)", "in0", "1.104"),
            ("node_hwmon_cpu_vid_volts", "Hardware monitor for voltage (vid)", "cpu0", "1.1"),
            ("node_hwmon_curr_amps", "Hardware monitor for current (input)", "curr1", "1.25"),
            ("node_hwmon_power_average_watt", "Hardware monitor for power usage in watts (average)", "power1", "345"),
            ("node_hwmon_power_accuracy", "Hardware monitor power meter accuracy, as a ratio", "power1", "0.095"),
            ("node_hwmon_power_average_interval_seconds", "Hardware monitor power usage update interval (average_interval)", "power1", "1"),
            ("node_hwmon_energy_joule_total", "Hardware monitor for joules used so far (input)", "energy1", "2632.163903"),
            ("node_hwmon_humidity", "Hardware monitor for humidity, as a ratio (multiply with 100.0 to get the humidity as a percentage) (input)", "humidity1", "0.04825"),
            ("node_hwmon_beep_enabled", "Hardware beep enabled", "beep_enable0", "0"),
            ("node_hwmon_voltage_regulator_version", "Hardware voltage regulator", "vrm0", "100"),
            ("node_hwmon_update_interval_seconds", "Hardware monitor update interval", "update_interval0", "2"),
            ("node_hwmon_pwm", "Hardware monitor pwm element ", "pwm1", "128"),
            ("node_hwmon_intrusion_alarm", "Hardware sensor alarm status (intrusion)", "intrusion0", "1"),
            ("node_hwmon_freq_freq_mhz", "Hardware monitor for GPU frequency in MHz", "sclk", "214"),
        ] {
            assert!(
                text.contains(&format!("# HELP {family} {help}\n")),
                "{family}: {help}\n{text}"
            );
            let line = format!("{family}{{{chip},sensor=\"{sensor}\"}} {value}\n");
            assert!(text.contains(&line), "{line}{text}");
        }
        assert!(text.contains("# TYPE node_hwmon_energy_joule_total counter\n"));
        // A GPU clock without a label is not exported.
        assert!(!text.contains("sensor=\"freq2\""), "{text}");
    }

    #[test]
    fn the_device_directory_wins_and_bad_values_are_skipped() {
        let dir = TempDir::new();
        write_chip(
            &dir,
            "hwmon0",
            "platform/applesmc.768",
            &[("fan1_input", "1000"), ("fan1_min", "not a number"), ("fan1_max", "")],
        );
        dir.write("devices/platform/applesmc.768/fan1_input", "1998\n");
        dir.write("devices/platform/applesmc.768/fan1_label", "Left side \n");
        // The runtime-PM directory matches the type "power" and cannot be read.
        dir.write("devices/platform/applesmc.768/power/control", "auto\n");
        dir.write("devices/platform/applesmc.768/fan2_input", "1e400\n");
        let text = render(&mut collector(&dir)).unwrap();
        assert_eq!(
            series(&text),
            [
                "node_hwmon_fan_rpm{chip=\"platform_applesmc_768\",sensor=\"fan1\"} 1998",
                "node_hwmon_sensor_label{chip=\"platform_applesmc_768\",label=\"Left side \",sensor=\"fan1\"} 1",
            ]
        );
    }

    #[test]
    fn labels_that_are_not_utf8_are_made_valid() {
        let dir = TempDir::new();
        write_chip(&dir, "hwmon0", "platform/nct6775.656", &[("in1_input", "1024")]);
        dir.write_bytes("devices/platform/nct6775.656/hwmon/hwmon0/in1_label", b"VCC\xff\xfe\n");
        let text = render(&mut collector(&dir)).unwrap();
        assert!(text.contains("label=\"VCC\u{FFFD}\""), "{text}");
    }

    #[test]
    fn chips_and_sensors_are_filtered_like_node_exporter() {
        let dir = TempDir::new();
        write_chip(&dir, "hwmon0", "platform/coretemp.0", &[("temp1_input", "1000"), ("temp3_input", "3000")]);
        write_chip(&dir, "hwmon1", "platform/coretemp.1", &[("temp1_input", "1000")]);
        let pattern = |p: &str| Some(Pattern::new(p).unwrap());
        let chips = Filter { include: pattern("coretemp_0"), exclude: None };
        let sensors = Filter { include: None, exclude: pattern("^platform_coretemp_0;temp3$") };
        let text = render(&mut Hwmon::new(dir.path(), chips, sensors)).unwrap();
        assert_eq!(
            series(&text),
            ["node_hwmon_temp_celsius{chip=\"platform_coretemp_0\",sensor=\"temp1\"} 1"]
        );
    }

    #[test]
    fn the_same_series_from_two_chips_is_written_once() {
        let dir = TempDir::new();
        // Two chips without device links and with the same name get the same label.
        for hwmon in ["hwmon0", "hwmon1"] {
            dir.write(&format!("class/hwmon/{hwmon}/name"), "drivetemp\n");
            dir.write(&format!("class/hwmon/{hwmon}/temp1_input"), "30000\n");
        }
        let text = render(&mut collector(&dir)).unwrap();
        assert_eq!(
            series(&text),
            [
                "node_hwmon_chip_names{chip=\"drivetemp\",chip_name=\"drivetemp\"} 1",
                "node_hwmon_temp_celsius{chip=\"drivetemp\",sensor=\"temp1\"} 30",
            ]
        );
    }

    #[test]
    fn no_hwmon_class_is_no_data_and_a_broken_chip_an_error() {
        let dir = TempDir::new();
        let err = render(&mut collector(&dir)).unwrap_err();
        assert!(err.is_no_data(), "{err}");
        dir.write("class/hwmon/hwmon0/temp1_input", "30000\n");
        dir.write("class/hwmon/hwmon0/device", "coretemp.0\n");
        let err = render(&mut collector(&dir)).unwrap_err();
        assert!(!err.is_no_data());
        assert!(err.to_string().starts_with(&format!(
            "{}: ",
            dir.path().join("class/hwmon/hwmon0/device").display()
        )), "{err}");
    }

    #[test]
    fn chips_come_and_go() {
        let dir = TempDir::new();
        let mut collector = collector(&dir);
        dir.write("class/hwmon/hwmon0/temp1_input", "30000\n");
        dir.write("class/hwmon/hwmon1/temp1_input", "31000\n");
        assert_eq!(series(&render(&mut collector).unwrap()).len(), 2);
        std::fs::remove_dir_all(dir.path().join("class/hwmon/hwmon0")).unwrap();
        let text = render(&mut collector).unwrap();
        assert_eq!(series(&text), ["node_hwmon_temp_celsius{chip=\"hwmon1\",sensor=\"temp1\"} 31"]);
    }
}

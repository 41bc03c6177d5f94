//! `node_time_seconds`, `node_time_zone_offset_seconds{time_zone}` and the clocksources
//! of `<sysfs>/devices/system/clocksource/clocksource*/`
//! (`node_time_clocksource_available_info`, `node_time_clocksource_current_info`),
//! as node_exporter 1.12's time collector exports them on Linux (unchanged since 1.5).
//!
//! - The time is the wall clock when the collector runs, in seconds with nanosecond
//!   digits, computed as node_exporter computes it (nanoseconds as f64, / 1e9).
//! - The zone is the C library's local time zone (`TZ`, else /etc/localtime), its
//!   abbreviation as the label (`UTC`, `CET`) and its offset east of UTC.
//! - node_exporter's `device` label is the position of the clocksource directory in
//!   name order (clocksource10 sorts before clocksource2), not the number in its
//!   name. A directory without both files fails the collector, as it fails
//!   node_exporter's; a sysfs without the clocksource directory just has no
//!   clocksource series.

use super::{Build, CollectError, Collector, Context, list_dir, read_value, set_path};
use crate::config::collectors::NoOptions;
use crate::batch::{Batch, Kind};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

const PREFIX: &str = "clocksource";

/// The two files of one clocksource device. Slots are reused from cycle to cycle.
#[derive(Default)]
struct Clocksource {
    available: String,
    current: String,
}

pub struct Time {
    /// `<sysfs>/devices/system/clocksource`.
    dir: PathBuf,
    /// The path of the file being read under `dir`.
    scratch: PathBuf,
    zone: String,
    value: String,
    /// Directory names of this cycle's clocksources in the first `len` slots.
    names: Vec<String>,
    /// What was read for each of `names`, same index.
    clocksources: Vec<Clocksource>,
    len: usize,
}

impl Time {
    pub fn new(sysfs: &Path) -> Self {
        Time {
            dir: sysfs.join("devices/system/clocksource"),
            scratch: PathBuf::new(),
            zone: String::new(),
            value: String::new(),
            names: Vec::new(),
            clocksources: Vec::new(),
            len: 0,
        }
    }

    /// Lists the `clocksource<digit>...` directories and reads their two files.
    fn read(&mut self) -> Result<(), CollectError> {
        // Like node_exporter's glob, an unreadable directory means no clocksources.
        self.len =
            list_dir(&self.dir, &mut self.names, |_, name| is_clocksource(name)).unwrap_or(0);
        if self.clocksources.len() < self.len {
            self.clocksources
                .resize_with(self.len, Clocksource::default);
        }
        let names = &self.names[..self.len];
        for (name, source) in names.iter().zip(&mut self.clocksources) {
            for (file, into) in [
                ("available_clocksource", &mut source.available),
                ("current_clocksource", &mut source.current),
            ] {
                set_path(&mut self.scratch, &self.dir, &[name, file]);
                let text = read_value(&self.scratch, &mut self.value)
                    .map_err(|e| CollectError::io(&self.scratch, &e))?;
                into.clear();
                into.push_str(text);
            }
        }
        Ok(())
    }

    fn write_clocksources(&self, out: &mut Batch) {
        let sources = &self.clocksources[..self.len];
        let mut family = out.family(
            "node_time_clocksource_available_info",
            "Available clocksources read from '/sys/devices/system/clocksource'.",
            Kind::Gauge,
        );
        for (device, source) in sources.iter().enumerate() {
            for available in source.available.split_whitespace() {
                family
                    .series()
                    .label("device", device)
                    .label("clocksource", available)
                    .value(1.0);
            }
        }
        let mut family = out.family(
            "node_time_clocksource_current_info",
            "Current clocksource read from '/sys/devices/system/clocksource'.",
            Kind::Gauge,
        );
        for (device, source) in sources.iter().enumerate() {
            family
                .series()
                .label("device", device)
                .label("clocksource", &source.current)
                .value(1.0);
        }
    }
}

impl Build for Time {
    type Options = NoOptions;

    const SOURCES: &'static [&'static str] = &["sys/devices/system/clocksource/clocksource0/available_clocksource", "sys/devices/system/clocksource/clocksource0/current_clocksource"];

    fn build(context: &Context<'_>, _options: &NoOptions) -> Self {
        Time::new(&context.paths.sysfs)
    }
}

impl Collector for Time {
    fn collect(&mut self, out: &mut Batch) -> Result<(), CollectError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_err(|e| CollectError::new(format!("system clock before 1970: {e}")))?;
        let offset = zone::local(now.as_secs(), &mut self.zone)
            .ok_or_else(|| CollectError::new("cannot tell the local time zone"))?;
        self.read()?;
        out.family(
            "node_time_seconds",
            "System time in seconds since epoch (1970).",
            Kind::Gauge,
        )
        .sample(&[], now.as_nanos() as f64 / 1e9);
        out.family(
            "node_time_zone_offset_seconds",
            "System time zone offset in seconds.",
            Kind::Gauge,
        )
        .sample(&[("time_zone", &self.zone)], offset as f64);
        self.write_clocksources(out);
        Ok(())
    }
}

/// `clocksource` followed by a digit, what node_exporter's `clocksource[0-9]*` matches.
fn is_clocksource(name: &str) -> bool {
    name.strip_prefix(PREFIX)
        .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
}

/// The C library's view of the local time zone.
mod zone {
    use nix::libc;
    use std::ffi::CStr;

    /// The zone abbreviation in effect at `unix_seconds`, written into `name`, and the
    /// offset east of UTC in seconds; `None` if the C library cannot convert the time.
    pub fn local(unix_seconds: u64, name: &mut String) -> Option<i64> {
        // The type is inferred from localtime_r's `time_t` (naming the alias warns on
        // musl, whose time_t changed width in 1.2).
        let Ok(time) = unix_seconds.try_into() else {
            return None;
        };
        // SAFETY: an all-zero `tm` is a valid value of this plain C struct.
        let mut tm: libc::tm = unsafe { std::mem::zeroed() };
        // SAFETY: both pointers are valid for the call; localtime_r writes only `tm`.
        let converted = unsafe { libc::localtime_r(&time, &mut tm) };
        if converted.is_null() {
            return None;
        }
        name.clear();
        if !tm.tm_zone.is_null() {
            // SAFETY: localtime_r set tm_zone to a NUL-terminated string owned by the C
            // library, valid until the next tzset; it is copied out at once.
            let zone = unsafe { CStr::from_ptr(tm.tm_zone) };
            name.push_str(&zone.to_string_lossy());
        }
        Some(tm.tm_gmtoff as i64) // c_long: i32 on 32-bit targets
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{render, TempDir};

    fn write_source(dir: &TempDir, name: &str, available: &str, current: &str) {
        let base = format!("devices/system/clocksource/{name}");
        dir.write(&format!("{base}/available_clocksource"), available);
        dir.write(&format!("{base}/current_clocksource"), current);
    }

    fn series(text: &str) -> Vec<&str> {
        text.lines().filter(|l| !l.starts_with('#')).collect()
    }

    #[test]
    fn exports_time_zone_and_clocksources() {
        let dir = TempDir::new();
        write_source(&dir, "clocksource0", "kvm-clock tsc acpi_pm \n", "tsc\n");
        let before = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        let text = render(&mut Time::new(dir.path())).unwrap();
        let lines = series(&text);
        let seconds: f64 = lines[0]
            .strip_prefix("node_time_seconds ")
            .unwrap()
            .parse()
            .unwrap();
        assert!((seconds - before.as_secs_f64()).abs() < 60.0, "{seconds}");
        assert!(
            lines[1].starts_with("node_time_zone_offset_seconds{time_zone=\""),
            "{text}"
        );
        assert_eq!(
            lines[2..],
            [
                "node_time_clocksource_available_info{clocksource=\"kvm-clock\",device=\"0\"} 1",
                "node_time_clocksource_available_info{clocksource=\"tsc\",device=\"0\"} 1",
                "node_time_clocksource_available_info{clocksource=\"acpi_pm\",device=\"0\"} 1",
                "node_time_clocksource_current_info{clocksource=\"tsc\",device=\"0\"} 1",
            ]
        );
        assert!(text.contains(
            "# HELP node_time_seconds System time in seconds since epoch (1970).\n\
             # TYPE node_time_seconds gauge\n"
        ));
        assert!(text.contains(
            "# HELP node_time_clocksource_current_info Current clocksource read from '/sys/devices/system/clocksource'.\n"
        ));
    }

    #[test]
    fn device_label_is_the_position_in_name_order() {
        let dir = TempDir::new();
        write_source(&dir, "clocksource0", "tsc\n", "tsc\n");
        write_source(&dir, "clocksource10", "hpet\n", "hpet\n");
        write_source(&dir, "clocksource2", "\n", " \n");
        write_source(&dir, "clocksourcex", "nope\n", "nope\n");
        let mut collector = Time::new(dir.path());
        let text = render(&mut collector).unwrap();
        let current: Vec<_> = series(&text)
            .into_iter()
            .filter(|l| l.starts_with("node_time_clocksource_current_info"))
            .collect();
        assert_eq!(
            current,
            [
                "node_time_clocksource_current_info{clocksource=\"tsc\",device=\"0\"} 1",
                "node_time_clocksource_current_info{clocksource=\"hpet\",device=\"1\"} 1",
                "node_time_clocksource_current_info{clocksource=\"\",device=\"2\"} 1",
            ]
        );
        assert!(!text.contains("nope"));
        // One goes away: the others just renumber, as in node_exporter.
        std::fs::remove_dir_all(dir.path().join("devices/system/clocksource/clocksource0"))
            .unwrap();
        let text = render(&mut collector).unwrap();
        assert!(
            text.contains("{clocksource=\"hpet\",device=\"0\"}"),
            "{text}"
        );
    }

    #[test]
    fn no_clocksource_directory_is_fine_but_a_missing_file_is_not() {
        let dir = TempDir::new();
        let text = render(&mut Time::new(dir.path())).unwrap();
        assert!(!text.contains("clocksource_"), "{text}");
        dir.write(
            "devices/system/clocksource/clocksource0/available_clocksource",
            "tsc\n",
        );
        let err = render(&mut Time::new(dir.path())).unwrap_err();
        assert!(err.to_string().contains("current_clocksource"), "{err}");
    }

    #[test]
    fn zone_follows_the_c_library() {
        let mut name = String::new();
        let offset = zone::local(0, &mut name).unwrap();
        assert!(!name.is_empty());
        assert!(offset.abs() <= 14 * 3600, "{offset}");
    }

    #[test]
    fn clocksource_names_match_the_glob() {
        assert!(is_clocksource("clocksource0"));
        assert!(is_clocksource("clocksource1x"));
        assert!(!is_clocksource("clocksource"));
        assert!(!is_clocksource("clocksourcex"));
        assert!(!is_clocksource("power"));
    }
}

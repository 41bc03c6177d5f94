//! Logs to stderr: `simple_logger` lines for people and journald, or one JSON object
//! a line (`log_format: json`) for log shippers.

use crate::config::{LogFormat, LogLevel};
use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

/// Installs the logger. The format is fixed for the life of the process; the level
/// can be changed later with [`set_level`].
pub fn init(format: LogFormat, level: LogLevel) {
    let installed = match format {
        LogFormat::Text => simple_logger::SimpleLogger::new()
            .with_level(log::LevelFilter::Trace)
            .init(),
        LogFormat::Json => log::set_logger(&JsonLogger),
    };
    if installed.is_err() {
        // Already installed (tests call this more than once); keep the first.
    }
    set_level(level);
}

pub fn set_level(level: LogLevel) {
    log::set_max_level(level.to_filter());
}

struct JsonLogger;

impl log::Log for JsonLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let line = json_line(SystemTime::now(), record);
        // A logger has nowhere to report its own write failure.
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }

    fn flush(&self) {}
}

fn json_line(now: SystemTime, record: &log::Record<'_>) -> String {
    let mut line = String::with_capacity(128);
    line.push_str("{\"ts\":\"");
    push_rfc3339(now, &mut line);
    line.push_str("\",\"level\":\"");
    line.push_str(&record.level().as_str().to_ascii_lowercase());
    line.push_str("\",\"target\":");
    push_json_string(record.target(), &mut line);
    line.push_str(",\"msg\":");
    push_json_string(&record.args().to_string(), &mut line);
    line.push_str("}\n");
    line
}

fn push_json_string(text: &str, out: &mut String) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Writes `2026-11-25T14:37:33.123Z`.
pub(crate) fn push_rfc3339(time: SystemTime, out: &mut String) {
    let since_epoch = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since_epoch.as_secs();
    let (year, month, day) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    out.push_str(&format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        since_epoch.subsec_millis()
    ));
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn dates_are_gregorian() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(20_417), (2025, 11, 25));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
    }

    #[test]
    fn json_lines_are_escaped_objects() {
        let time = UNIX_EPOCH + Duration::from_millis(1_764_081_453_123);
        let line = json_line(
            time,
            &log::Record::builder()
                .level(log::Level::Warn)
                .target("sc_agent::x")
                .args(format_args!("a \"quoted\"\nline\u{1}"))
                .build(),
        );
        assert_eq!(
            line,
            "{\"ts\":\"2025-11-25T14:37:33.123Z\",\"level\":\"warn\",\"target\":\"sc_agent::x\",\
             \"msg\":\"a \\\"quoted\\\"\\nline\\u0001\"}\n"
        );
    }
}

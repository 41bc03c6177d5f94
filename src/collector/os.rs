//! `node_os_info`, `node_os_version` and `node_os_support_end_timestamp_seconds` from
//! os-release: `<rootfs>/etc/os-release`, or `<rootfs>/usr/lib/os-release` when that
//! does not exist, as node_exporter 1.12 reads it.
//!
//! The file is parsed as node_exporter's parser (hashicorp/go-envparse) does, quirks
//! included:
//! - every non-empty line must be `KEY=value` (an optional `export ` before the key,
//!   whitespace around both trimmed); a key starts with a letter or `_`. A line without
//!   `=`, a comment line among them, is an error, as is a control character (a tab
//!   included) inside a value;
//! - in a value, `"..."` and `'...'` quote (and may be strung together, `"a"'b'c`
//!   is `abc`); inside double quotes only `\"`, `\\`, `\n` and `\t` are escapes; an
//!   unquoted `#` starts a comment, and the blanks before it are dropped;
//! - a key given twice keeps its last value.
//!
//! `node_os_info` has the twelve labels node_exporter gives it, empty when the file
//! has no such key. `node_os_version{id,id_like,name}` is the leading `major.minor`
//! of VERSION_ID (`^[0-9]+\.?[0-9]*`) as a number, left out when there is none or it
//! is 0. `node_os_support_end_timestamp_seconds` is SUPPORT_END (`YYYY-MM-DD`) as
//! the Unix time of its midnight UTC, only when the key is there.
//!
//! Neither file: [`CollectError::no_data`], as node_exporter. node_exporter would try
//! macOS's SystemVersion.plist next; this Linux agent does not. node_exporter caches
//! the parsed file by modification time and, because it records the time before
//! parsing, serves an empty `node_os_info` after a file that failed to parse until
//! the file changes again; here the file is parsed every cycle (it is small) and a
//! malformed one fails every cycle.
//!
//! Differences from node_exporter 1.5: 1.5 has no `node_os_support_end_timestamp_seconds`.

use super::{read_optional_file, Build, CollectError, Collector, Context};
use crate::batch::{Batch, Kind};
use crate::config::collectors::NoOptions;
use std::path::{Path, PathBuf};

/// The keys read, in the order of [`Fields`]; the first twelve are `node_os_info`'s
/// labels (the key in lower case).
const KEYS: [&str; 13] = [
    "BUILD_ID",
    "ID",
    "ID_LIKE",
    "IMAGE_ID",
    "IMAGE_VERSION",
    "NAME",
    "PRETTY_NAME",
    "VARIANT",
    "VARIANT_ID",
    "VERSION",
    "VERSION_CODENAME",
    "VERSION_ID",
    "SUPPORT_END",
];
const LABELS: [&str; 12] = [
    "build_id",
    "id",
    "id_like",
    "image_id",
    "image_version",
    "name",
    "pretty_name",
    "variant",
    "variant_id",
    "version",
    "version_codename",
    "version_id",
];
const ID: usize = 1;
const ID_LIKE: usize = 2;
const NAME: usize = 5;
const VERSION_ID: usize = 11;
const SUPPORT_END: usize = 12;

/// The values of [`KEYS`] (empty when absent), and whether SUPPORT_END was given.
#[derive(Default)]
struct Fields {
    values: [String; KEYS.len()],
    has_support_end: bool,
}

pub struct Os {
    paths: [PathBuf; 2],
    buf: String,
    /// A line's unescaped value.
    value: String,
    fields: Fields,
}

impl Os {
    pub fn new(rootfs: &Path) -> Self {
        Os {
            paths: [rootfs.join("etc/os-release"), rootfs.join("usr/lib/os-release")],
            buf: String::new(),
            value: String::new(),
            fields: Fields::default(),
        }
    }
}

/// Parses one non-empty line as go-envparse does: its key, its value in `value`.
fn parse_line<'a>(line: &'a str, value: &mut String) -> Result<&'a str, String> {
    let (key, raw) = line.split_once('=').ok_or("missing \"=\"")?;
    let key = key.trim();
    let key = key.strip_prefix("export ").unwrap_or(key);
    let first = key.bytes().next().ok_or("empty key")?;
    if !(first.is_ascii_alphabetic() || first == b'_') {
        return Err(format!(
            "key must start with [A-Za-z_] but found {:?}",
            char::from(first)
        ));
    }
    value.clear();
    let raw = raw.trim();
    #[derive(PartialEq)]
    enum Mode {
        Normal,
        Double,
        Single,
        Escape,
    }
    let mut mode = Mode::Normal;
    // The length of `value` up to its last character that is not an unquoted blank.
    let mut significant = 0;
    for c in raw.chars() {
        if u32::from(c) < 32 {
            return Err(format!("{:#04x} is an invalid value character", u32::from(c)));
        }
        if !c.is_ascii() {
            if mode == Mode::Escape {
                return Err("multibyte characters disallowed in escape sequences".into());
            }
            value.push(c);
            significant = value.len();
            continue;
        }
        match mode {
            Mode::Normal => match c {
                '"' => mode = Mode::Double,
                '\'' => mode = Mode::Single,
                '#' => {
                    value.truncate(significant);
                    return Ok(key);
                }
                ' ' => value.push(c),
                _ => {
                    value.push(c);
                    significant = value.len();
                }
            },
            Mode::Double => match c {
                '"' => mode = Mode::Normal,
                '\\' => mode = Mode::Escape,
                _ => {
                    value.push(c);
                    significant = value.len();
                }
            },
            Mode::Escape => {
                value.push(match c {
                    '"' => '"',
                    '\\' => '\\',
                    'n' => '\n',
                    't' => '\t',
                    _ => return Err(format!("invalid escape sequence: {c}")),
                });
                significant = value.len();
                mode = Mode::Double;
            }
            Mode::Single => match c {
                '\'' => mode = Mode::Normal,
                _ => {
                    value.push(c);
                    significant = value.len();
                }
            },
        }
    }
    match mode {
        Mode::Normal => Ok(key),
        Mode::Double => Err("unmatched \"".into()),
        Mode::Single => Err("unmatched '".into()),
        Mode::Escape => Err("incomplete escape sequence".into()),
    }
}

/// Reads the keys of [`KEYS`] from an os-release text.
fn parse(path: &Path, text: &str, value: &mut String, fields: &mut Fields) -> Result<(), CollectError> {
    for slot in &mut fields.values {
        slot.clear();
    }
    fields.has_support_end = false;
    for (index, line) in text.split('\n').enumerate() {
        // bufio.ScanLines drops one trailing CR; an empty line is skipped.
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        let key = parse_line(line, value).map_err(|what| CollectError::parse(path, index + 1, what))?;
        if let Some(at) = KEYS.iter().position(|k| *k == key) {
            fields.values[at].clear();
            fields.values[at].push_str(value);
            fields.has_support_end |= at == SUPPORT_END;
        }
    }
    Ok(())
}

/// The leading `major.minor` of VERSION_ID (`^[0-9]+\.?[0-9]*`), as a number.
fn major_minor(version_id: &str) -> Option<f64> {
    let major = version_id.bytes().take_while(u8::is_ascii_digit).count();
    if major == 0 {
        return None;
    }
    let mut end = major;
    if version_id.as_bytes().get(end) == Some(&b'.') {
        end += 1 + version_id[end + 1..].bytes().take_while(u8::is_ascii_digit).count();
    }
    version_id[..end].parse().ok()
}

/// Go's `time.Parse("2006-01-02", text)`, as seconds since the epoch at midnight UTC.
fn parse_date(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = text.get(range)?;
        part.bytes().all(|b| b.is_ascii_digit()).then(|| part.parse().ok())?
    };
    if bytes.len() != 10 || bytes[4] != b'-' || bytes[7] != b'-' {
        return None;
    }
    let (year, month, day) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if !(1..=days_in_month).contains(&day) {
        return None;
    }
    // Days from 1970-01-01 to year-month-day (Howard Hinnant's days_from_civil).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some((era * 146_097 + doe - 719_468) * 86_400)
}

impl Build for Os {
    type Options = NoOptions;

    const SOURCES: &'static [&'static str] = &["root/etc/os-release", "root/usr/lib/os-release"];

    fn build(context: &Context<'_>, _options: &NoOptions) -> Self {
        Os::new(&context.paths.rootfs)
    }
}

impl Collector for Os {
    fn collect(&mut self, out: &mut Batch) -> Result<(), CollectError> {
        let Os {
            paths,
            buf,
            value,
            fields,
        } = self;
        let mut path = None;
        for candidate in paths.iter() {
            if read_optional_file(candidate, buf)? {
                path = Some(candidate);
                break;
            }
        }
        let Some(path) = path else {
            return Err(CollectError::no_data(format!(
                "neither {} nor {} exists",
                paths[0].display(),
                paths[1].display()
            )));
        };
        parse(path, buf, value, fields)?;
        let values = &fields.values;
        let version = match major_minor(&values[VERSION_ID]) {
            Some(v) if v.is_finite() => v,
            Some(_) => {
                return Err(CollectError::new(format!(
                    "{}: VERSION_ID {:?} is out of range",
                    path.display(),
                    values[VERSION_ID]
                )))
            }
            None => 0.0,
        };
        let support_end = match fields.has_support_end {
            true => Some(parse_date(&values[SUPPORT_END]).ok_or_else(|| {
                CollectError::new(format!(
                    "{}: SUPPORT_END {:?} is not a YYYY-MM-DD date",
                    path.display(),
                    values[SUPPORT_END]
                ))
            })?),
            false => None,
        };
        let mut info = out.family(
            "node_os_info",
            "A metric with a constant '1' value labeled by build_id, id, id_like, image_id, \
             image_version, name, pretty_name, variant, variant_id, version, version_codename, \
             version_id.",
            Kind::Gauge,
        );
        let mut series = info.series();
        for (label, value) in LABELS.iter().zip(values) {
            series = series.label(label, value);
        }
        series.value(1.0);
        if version > 0.0 {
            out.family(
                "node_os_version",
                "Metric containing the major.minor part of the OS version.",
                Kind::Gauge,
            )
            .sample(
                &[("id", &values[ID]), ("id_like", &values[ID_LIKE]), ("name", &values[NAME])],
                version,
            );
        }
        if let Some(seconds) = support_end {
            out.family(
                "node_os_support_end_timestamp_seconds",
                "Metric containing the end-of-life date timestamp of the OS.",
                Kind::Gauge,
            )
            .sample(&[], seconds as f64);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{render, TempDir};

    fn value_of(line: &str) -> Result<String, String> {
        let mut value = String::new();
        parse_line(line, &mut value).map(|_| value)
    }

    #[test]
    fn parses_values_as_go_envparse_does() {
        for (line, value) in [
            ("A=plain", "plain"),
            ("A = spaced out ", "spaced out"),
            ("export A=x", "x"),
            ("A=\"double \\\"quoted\\\" \\\\ \\n \\t\"", "double \"quoted\" \\ \n \t"),
            ("A='single \\n \"kept\"'", "single \\n \"kept\""),
            ("A=\"a\"'b'c", "abc"),
            ("A=value # comment", "value"),
            ("A=val#ue", "val"),
            ("A=\"# not a comment\"", "# not a comment"),
            ("A=", ""),
            ("A=a=b", "a=b"),
            ("_A.b-c=1", "1"),
            // "export" alone is a key: only "export " is a prefix.
            ("export =x", "x"),
            ("A=Debian GNU/Linux 12 (bookworm)", "Debian GNU/Linux 12 (bookworm)"),
            ("A=\"ünïcödé\"", "ünïcödé"),
        ] {
            assert_eq!(value_of(line).as_deref(), Ok(value), "{line:?}");
        }
        for (line, error) in [
            ("# a comment", "missing \"=\""),
            ("   ", "missing \"=\""),
            ("=x", "empty key"),
            ("1A=x", "key must start with [A-Za-z_] but found '1'"),
            ("[A=x", "key must start with [A-Za-z_] but found '['"),
            ("A=a\tb", "0x09 is an invalid value character"),
            ("A=\"open", "unmatched \""),
            ("A='open", "unmatched '"),
            ("A=\"x\\", "incomplete escape sequence"),
            ("A=\"\\x\"", "invalid escape sequence: x"),
            ("A=\"\\é\"", "multibyte characters disallowed in escape sequences"),
        ] {
            assert_eq!(value_of(line), Err(error.to_owned()), "{line:?}");
        }
    }

    #[test]
    fn versions_and_dates_as_node_exporter_reads_them() {
        for (id, version) in [
            ("12", Some(12.0)),
            ("22.04", Some(22.04)),
            ("2024.1.3", Some(2024.1)),
            ("7.", Some(7.0)),
            ("0", Some(0.0)),
            ("rolling", None),
            ("", None),
            (".5", None),
        ] {
            assert_eq!(major_minor(id), version, "{id:?}");
        }
        assert_eq!(parse_date("1970-01-01"), Some(0));
        assert_eq!(parse_date("2028-06-30"), Some(1_845_936_000));
        assert_eq!(parse_date("2024-02-29"), Some(1_709_164_800));
        assert_eq!(parse_date("0001-01-01"), Some(-62_135_596_800));
        for bad in ["2023-02-29", "2024-13-01", "2024-00-10", "2024-1-01", "24-01-01", "2024/01/01", "2024-01-32", "+024-01-01"] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn reads_etc_then_usr_lib() {
        let dir = TempDir::new();
        dir.write("usr/lib/os-release", "NAME=\"Usr Lib\"\nID=usrlib\nVERSION_ID=\"3.1\"\n");
        let text = render(&mut Os::new(dir.path())).unwrap();
        assert!(text.contains(
            "node_os_info{build_id=\"\",id=\"usrlib\",id_like=\"\",image_id=\"\",image_version=\"\",\
             name=\"Usr Lib\",pretty_name=\"\",variant=\"\",variant_id=\"\",version=\"\",\
             version_codename=\"\",version_id=\"3.1\"} 1\n"
        ), "{text}");
        assert!(text.contains("node_os_version{id=\"usrlib\",id_like=\"\",name=\"Usr Lib\"} 3.1\n"), "{text}");
        assert!(!text.contains("support_end"), "{text}");
        dir.write("etc/os-release", "NAME=Etc\nNAME=Again\nVERSION_ID=0\nSUPPORT_END=2028-06-30\n");
        let mut os = Os::new(dir.path());
        for _ in 0..2 {
            let text = render(&mut os).unwrap();
            assert!(text.contains("name=\"Again\""), "{text}");
            assert!(!text.contains("node_os_version"), "{text}");
            assert!(text.contains(
                "# TYPE node_os_support_end_timestamp_seconds gauge\n\
                 node_os_support_end_timestamp_seconds 1845936000\n"
            ), "{text}");
        }
    }

    #[test]
    fn malformed_files_name_the_file_and_line_and_no_file_is_no_data() {
        let dir = TempDir::new();
        let err = render(&mut Os::new(dir.path())).unwrap_err();
        assert!(err.is_no_data(), "{err}");
        dir.write("etc/os-release", "NAME=x\r\n\r\n# comment\n");
        let err = render(&mut Os::new(dir.path())).unwrap_err();
        assert!(!err.is_no_data());
        assert!(err.to_string().ends_with("etc/os-release line 3: missing \"=\""), "{err}");
        dir.write("etc/os-release", "SUPPORT_END=soon\n");
        let err = render(&mut Os::new(dir.path())).unwrap_err();
        assert!(err.to_string().ends_with("SUPPORT_END \"soon\" is not a YYYY-MM-DD date"), "{err}");
        dir.write("etc/os-release", &format!("VERSION_ID={}\n", "9".repeat(400)));
        let err = render(&mut Os::new(dir.path())).unwrap_err();
        assert!(err.to_string().contains("is out of range"), "{err}");
    }
}

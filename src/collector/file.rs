//! Reading whole /proc and /sys files into buffers that live across cycles.

use super::CollectError;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// The largest file a collector reads. /proc files of thousands of devices or mounts
/// stay far below it; anything larger is refused rather than held in memory.
pub const MAX_FILE_BYTES: usize = 4 << 20;

/// A buffer this much larger than what it holds is given back to the allocator, so a
/// one-off huge file does not pin its size for the life of the process.
const SHRINK_ABOVE: usize = 64 << 10;

/// Opens a file for reading without ever blocking: /proc and /sys files never block
/// on open or read, but a FIFO or device planted where one should be (a hostile or
/// broken `paths.procfs`) would stall the agent's only loop thread. With O_NONBLOCK
/// it reads as empty or fails instead.
pub fn open(path: &Path) -> io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(path)
}

/// Reads the whole file at `path` into `buf`, replacing its contents.
pub fn read_file(path: &Path, buf: &mut String) -> Result<(), CollectError> {
    read_file_io(path, buf).map_err(|e| CollectError::io(path, &e))
}

/// Like [`read_file`], but a file that does not exist is not an error: returns
/// `Ok(false)` with `buf` empty. For files some kernels lack (`/proc/pressure/*`,
/// `/proc/net/snmp6` without IPv6), which node_exporter tells apart from failures.
pub fn read_optional_file(path: &Path, buf: &mut String) -> Result<bool, CollectError> {
    match read_file_io(path, buf) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(CollectError::io(path, &e)),
    }
}

/// [`read_file`] with the I/O error as it is, for collectors that tell some errors
/// apart (EOPNOTSUPP from /proc/pressure with `psi=0`). A file above
/// [`MAX_FILE_BYTES`] is `InvalidData`; `buf` is empty after any error.
pub fn read_file_io(path: &Path, buf: &mut String) -> io::Result<()> {
    buf.clear();
    let result = open(path).and_then(|file| {
        file.take(MAX_FILE_BYTES as u64 + 1)
            .read_to_string(buf)
            .map(|_| ())
    });
    if buf.capacity() > SHRINK_ABOVE && buf.capacity() > 4 * buf.len() {
        buf.shrink_to(buf.len().max(SHRINK_ABOVE / 4));
    }
    if let Err(e) = result {
        buf.clear();
        return Err(e);
    }
    if buf.len() > MAX_FILE_BYTES {
        buf.clear();
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("larger than {MAX_FILE_BYTES} bytes"),
        ));
    }
    Ok(())
}

/// Reads the file at `path` into `buf` (replacing its contents) if it holds at most
/// `max` bytes, and returns the open file's metadata (its mtime as of the read).
/// For files of any content, not only text: the textfile collector's `*.prom`.
pub fn read_bytes(
    path: &Path,
    buf: &mut Vec<u8>,
    max: usize,
) -> Result<std::fs::Metadata, CollectError> {
    buf.clear();
    let file = open(path).map_err(|e| CollectError::io(path, &e))?;
    let result = (&file)
        .take(max as u64 + 1)
        .read_to_end(buf)
        .map_err(|e| CollectError::io(path, &e));
    if buf.capacity() > SHRINK_ABOVE && buf.capacity() > 4 * buf.len() {
        buf.shrink_to(buf.len().max(SHRINK_ABOVE / 4));
    }
    result?;
    if buf.len() > max {
        buf.clear();
        return Err(CollectError::new(format!(
            "{}: larger than {max} bytes",
            path.display()
        )));
    }
    file.metadata().map_err(|e| CollectError::io(path, &e))
}

/// The longest line [`for_each_line`] accepts (Go's `bufio.Scanner` default, which
/// procfs reads these files with).
pub const MAX_LINE_BYTES: usize = 64 << 10;

/// Streams the lines of `path` (without their `\n`, numbered from 1) to `each`,
/// reading through `buf`, which is kept between cycles. For files whose size grows
/// with the machine's load rather than its hardware (`/proc/net/udp` has a line per
/// socket): memory stays at one [`MAX_LINE_BYTES`] chunk whatever the size, and reading
/// stops with an error past `max_bytes`. Returns `Ok(false)` when the file does not
/// exist, as [`read_optional_file`] does.
pub fn for_each_line(
    path: &Path,
    buf: &mut Vec<u8>,
    max_bytes: u64,
    mut each: impl FnMut(usize, &str) -> Result<(), CollectError>,
) -> Result<bool, CollectError> {
    let mut file = match open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(CollectError::io(path, &e)),
    };
    // Sized once; what it held last time is overwritten, never cleared.
    buf.resize(MAX_LINE_BYTES, 0);
    let (mut filled, mut number, mut total) = (0, 0, 0u64);
    loop {
        let read = match file.read(buf.get_mut(filled..).unwrap_or_default()) {
            Ok(read) => read,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CollectError::io(path, &e)),
        };
        total += read as u64;
        if total > max_bytes {
            return Err(CollectError::new(format!(
                "{}: larger than {max_bytes} bytes",
                path.display()
            )));
        }
        let end = filled + read;
        let mut start = 0;
        let mut line = |bytes: &[u8], number: usize| {
            let text = std::str::from_utf8(bytes)
                .map_err(|_| CollectError::parse(path, number, "not UTF-8"))?;
            each(number, text)
        };
        while let Some(at) = buf[start..end].iter().position(|b| *b == b'\n') {
            number += 1;
            line(&buf[start..start + at], number)?;
            start += at + 1;
        }
        if read == 0 {
            if start < end {
                line(&buf[start..end], number + 1)?;
            }
            return Ok(true);
        }
        buf.copy_within(start..end, 0);
        filled = end - start;
        if filled == buf.len() {
            return Err(CollectError::parse(
                path,
                number + 1,
                format!("line longer than {MAX_LINE_BYTES} bytes"),
            ));
        }
    }
}

/// Go's `strconv.ParseUint(text, 0, 64)`: decimal, or hexadecimal, octal or binary
/// after `0x`, `0o` (or a bare leading `0`) and `0b`. (Go also accepts `_` between
/// digits there; no kernel writes one, and it is refused here.)
pub fn parse_go_uint(text: &str) -> Option<u64> {
    let lower = |p: &str| text.get(..2).is_some_and(|h| h.eq_ignore_ascii_case(p));
    let (digits, radix) = if lower("0x") {
        (&text[2..], 16)
    } else if lower("0o") {
        (&text[2..], 8)
    } else if lower("0b") {
        (&text[2..], 2)
    } else if text.len() > 1 && text.starts_with('0') {
        (&text[1..], 8)
    } else {
        (text, 10)
    };
    Some(digits)
        .filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_alphanumeric()))
        .and_then(|d| u64::from_str_radix(d, radix).ok())
}

/// The largest single-value file [`read_value`] accepts: sysfs prints at most a page.
const MAX_VALUE_BYTES: u64 = 4096;

/// Reads a one-value file (a sysfs attribute, a /proc/sys entry) into `buf` and returns
/// its text without surrounding whitespace.
///
/// The I/O error is returned as it is, not as an [`CollectError`], because collectors treat
/// some errors as "no value" (a missing file; EINVAL from a link that is down).
pub fn read_value<'a>(path: &Path, buf: &'a mut String) -> io::Result<&'a str> {
    buf.clear();
    open(path)?.take(MAX_VALUE_BYTES + 1).read_to_string(buf)?;
    if buf.len() as u64 > MAX_VALUE_BYTES {
        buf.clear();
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("larger than {MAX_VALUE_BYTES} bytes"),
        ));
    }
    Ok(buf.trim())
}

/// The most procfs's `SysReadFile` reads of a sysfs attribute: one read(2) into a
/// 128-byte buffer. node_exporter's sysfs class collectors (power supplies, NVMe,
/// cpufreq governors, md arrays) see a longer value cut there, and so do the ones here
/// that follow them.
pub const SYS_VALUE_BYTES: usize = 128;

/// Reads a sysfs attribute as procfs's `SysReadFile` does: one read(2) of at most
/// [`SYS_VALUE_BYTES`] into `buf`. The bytes are returned as they are, neither
/// trimmed nor checked to be UTF-8 (see [`super::go_parse`] for both). A single read
/// is also what keeps a broken hwmon driver answering EAGAIN from being retried.
pub fn read_sys_value<'a>(path: &Path, buf: &'a mut Vec<u8>) -> io::Result<&'a [u8]> {
    buf.clear();
    read_sys_value_from(open(path)?, buf)
}

/// [`read_sys_value`] of a file already opened (with [`open`]), for collectors that
/// tell a failed open from a failed read, as node_exporter's error checks do.
pub fn read_sys_value_from(mut file: std::fs::File, buf: &mut Vec<u8>) -> io::Result<&[u8]> {
    buf.clear();
    buf.resize(SYS_VALUE_BYTES, 0);
    let len = file.read(buf).inspect_err(|_| buf.clear())?;
    buf.truncate(len);
    Ok(buf)
}

/// node_exporter's `readUintFromFile`: the text of a one-value file (as [`read_value`]
/// returns it, trimmed) as a decimal unsigned integer. Go's `ParseUint` takes digits
/// only, so a sign or a blank inside is an error, as is a value past `u64::MAX`.
pub fn parse_uint(path: &Path, text: &str) -> Result<u64, CollectError> {
    Some(text)
        .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| {
            CollectError::parse(
                path,
                1,
                format!("expected an unsigned integer, got {text:?}"),
            )
        })
}

/// Go's `strconv.ParseInt(text, 0, 64)`: an optional sign, then as [`parse_go_uint`].
pub fn parse_go_int(text: &str) -> Option<i64> {
    let (negative, magnitude) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let magnitude = parse_go_uint(magnitude)?;
    match (negative, i64::try_from(magnitude)) {
        (false, Ok(value)) => Some(value),
        (true, Ok(value)) => Some(-value),
        (true, Err(_)) if magnitude == i64::MIN.unsigned_abs() => Some(i64::MIN),
        _ => None,
    }
}

/// How much procfs's `SysReadFile` reads: one `read(2)` of this many bytes.
pub const SYS_READ_BYTES: usize = 128;

/// procfs's `util.SysReadFile`, which node_exporter reads sysfs attributes with: one
/// `read(2)` of at most [`SYS_READ_BYTES`] into `buf` (a longer value is cut), ASCII
/// whitespace trimmed from both ends. The I/O error is returned as it is: callers
/// tell a missing file or a root-only one from a failure.
pub fn sys_read_file<'a>(path: &Path, buf: &'a mut [u8; SYS_READ_BYTES]) -> io::Result<&'a [u8]> {
    let mut file = open(path)?;
    let read = loop {
        match file.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => break other?,
        }
    };
    let value = buf.get(..read).unwrap_or_default();
    let start = value
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(value.len());
    let end = value
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    Ok(value.get(start..end).unwrap_or_default())
}

/// Makes `path` `base/part/part...`, reusing its buffer (no allocation once it is
/// long enough). Collectors build the paths of per-device files with it.
pub fn set_path(path: &mut PathBuf, base: &Path, parts: &[&str]) {
    path.as_mut_os_string().clear();
    path.push(base);
    for part in parts {
        path.push(part);
    }
}

/// Lists the entries of `dir` that `keep` accepts into the slots of `names`, reusing
/// the strings already there, sorted by name as node_exporter's Go listings are.
/// Returns how many slots hold this listing; names that are not UTF-8 are skipped.
pub fn list_dir(
    dir: &Path,
    names: &mut Vec<String>,
    keep: impl Fn(&std::fs::DirEntry, &str) -> bool,
) -> io::Result<usize> {
    let mut len = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str().filter(|n| keep(&entry, n)) else {
            continue;
        };
        if len == names.len() {
            names.push(String::new());
        }
        names[len].clear();
        names[len].push_str(name);
        len += 1;
    }
    names[..len].sort_unstable();
    Ok(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_replaces() {
        let dir = crate::testing::TempDir::new();
        let path = dir.write("a", "first\n");
        let mut buf = String::from("old");
        read_file(&path, &mut buf).unwrap();
        assert_eq!(buf, "first\n");
    }

    #[test]
    fn optional_file_may_be_missing() {
        let dir = crate::testing::TempDir::new();
        let mut buf = String::from("old");
        assert_eq!(
            read_optional_file(&dir.path().join("none"), &mut buf),
            Ok(false)
        );
        assert!(buf.is_empty());
        let path = dir.write("some", "1\n");
        assert_eq!(read_optional_file(&path, &mut buf), Ok(true));
        assert_eq!(buf, "1\n");
        // A directory exists but cannot be read as a file: that is an error.
        assert!(read_optional_file(dir.path(), &mut buf).is_err());
    }

    #[test]
    fn a_fifo_where_a_file_should_be_does_not_block() {
        let dir = crate::testing::TempDir::new();
        let fifo = dir.path().join("loadavg");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let mut buf = String::new();
        // No writer: reads as empty instead of waiting for one.
        read_file(&fifo, &mut buf).unwrap();
        assert_eq!(buf, "");
        assert_eq!(read_value(&fifo, &mut buf).unwrap(), "");
    }

    #[test]
    fn names_the_missing_file() {
        let mut buf = String::new();
        let err = read_file(Path::new("/nonexistent/loadavg"), &mut buf).unwrap_err();
        assert!(
            err.to_string().starts_with("/nonexistent/loadavg: "),
            "{err}"
        );
    }

    #[test]
    fn refuses_binary_garbage() {
        let dir = crate::testing::TempDir::new();
        let path = dir.write_bytes("bin", &[0xff, 0xfe, 0x00, 0x80]);
        let mut buf = String::new();
        assert!(read_file(&path, &mut buf).is_err());
    }

    #[test]
    fn reads_bytes_up_to_a_limit_with_the_metadata() {
        let dir = crate::testing::TempDir::new();
        let path = dir.write_bytes("a.prom", b"m 1\n\xff");
        let mut buf = b"old".to_vec();
        let metadata = read_bytes(&path, &mut buf, 5).unwrap();
        assert_eq!(buf, b"m 1\n\xff");
        assert_eq!(metadata.len(), 5);
        let err = read_bytes(&path, &mut buf, 4).unwrap_err();
        assert!(
            err.to_string().ends_with("a.prom: larger than 4 bytes"),
            "{err}"
        );
        assert!(buf.is_empty());
        // A directory opens, but does not read.
        assert!(read_bytes(dir.path(), &mut buf, 4).is_err());
    }

    #[test]
    fn reads_a_value_trimmed_and_keeps_the_io_error() {
        let dir = crate::testing::TempDir::new();
        let path = dir.write("mtu", "  1500\n");
        let mut buf = String::new();
        assert_eq!(read_value(&path, &mut buf).unwrap(), "1500");
        let missing = read_value(&dir.path().join("speed"), &mut buf).unwrap_err();
        assert_eq!(missing.kind(), io::ErrorKind::NotFound);
        let big = dir.write("big", &"1".repeat(MAX_VALUE_BYTES as usize + 1));
        let err = read_value(&big, &mut buf).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(buf.is_empty());
    }

    #[test]
    fn reads_a_sys_value_once_and_cut_like_procfs() {
        let dir = crate::testing::TempDir::new();
        let mut buf = Vec::new();
        let path = dir.write_bytes("model", b"Samsung SSD\xff \n");
        assert_eq!(
            read_sys_value(&path, &mut buf).unwrap(),
            b"Samsung SSD\xff \n"
        );
        let long = dir.write("long", &"x".repeat(SYS_VALUE_BYTES + 50));
        assert_eq!(
            read_sys_value(&long, &mut buf).unwrap().len(),
            SYS_VALUE_BYTES
        );
        let err = read_sys_value(dir.path(), &mut buf).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(nix::libc::EISDIR));
        assert!(buf.is_empty());
        let missing = read_sys_value(&dir.path().join("none"), &mut buf).unwrap_err();
        assert_eq!(missing.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn parses_unsigned_integers_as_go_does() {
        let path = Path::new("/proc/sys/x");
        assert_eq!(parse_uint(path, "0"), Ok(0));
        assert_eq!(parse_uint(path, "18446744073709551615"), Ok(u64::MAX));
        for bad in ["", "+1", "-1", "1 2", "0x10", "18446744073709551616", "1.0"] {
            let err = parse_uint(path, bad).unwrap_err().to_string();
            assert_eq!(
                err,
                format!("/proc/sys/x line 1: expected an unsigned integer, got {bad:?}")
            );
        }
    }

    #[test]
    fn streams_lines_of_any_file_size_in_one_chunk() {
        let dir = crate::testing::TempDir::new();
        let line = format!("{}\n", "x".repeat(127));
        let path = dir.write("udp", &format!("{}last", line.repeat(20_000)));
        let mut buf = Vec::new();
        let (mut count, mut last) = (0, String::new());
        let found = for_each_line(&path, &mut buf, u64::MAX, |number, text| {
            count = number;
            last = text.to_owned();
            Ok(())
        });
        assert_eq!(found, Ok(true));
        assert_eq!((count, last.as_str()), (20_001, "last"));
        assert_eq!(buf.len(), MAX_LINE_BYTES);
        // An error from the callback stops the reading.
        let err = for_each_line(&path, &mut buf, u64::MAX, |number, _| {
            if number == 3 {
                return Err(CollectError::parse(&path, number, "bad"));
            }
            Ok(())
        });
        assert!(err.unwrap_err().to_string().ends_with("udp line 3: bad"));
        let err = for_each_line(&path, &mut buf, 1000, |_, _| Ok(())).unwrap_err();
        assert!(
            err.to_string().ends_with("udp: larger than 1000 bytes"),
            "{err}"
        );
        let long = dir.write("long", &format!("a\n{}", "y".repeat(MAX_LINE_BYTES)));
        let err = for_each_line(&long, &mut buf, u64::MAX, |_, _| Ok(())).unwrap_err();
        assert!(
            err.to_string()
                .ends_with("long line 2: line longer than 65536 bytes"),
            "{err}"
        );
        let bad = dir.write_bytes("bin", b"ok\n\xff\n");
        let err = for_each_line(&bad, &mut buf, u64::MAX, |_, _| Ok(())).unwrap_err();
        assert!(err.to_string().ends_with("bin line 2: not UTF-8"), "{err}");
        let missing = for_each_line(&dir.path().join("none"), &mut buf, 10, |_, _| Ok(()));
        assert_eq!(missing, Ok(false));
    }

    #[test]
    fn parses_integers_with_gos_base_prefixes() {
        for (text, value) in [
            ("0", Some(0)),
            ("10", Some(10)),
            ("0x1F", Some(31)),
            ("0X1f", Some(31)),
            ("010", Some(8)),
            ("0o10", Some(8)),
            ("0b101", Some(5)),
            ("18446744073709551615", Some(u64::MAX)),
            ("18446744073709551616", None),
            ("", None),
            ("0x", None),
            ("+1", None),
            ("-1", None),
            ("09", None),
            ("1_000", None),
        ] {
            assert_eq!(parse_go_uint(text), value, "{text:?}");
        }
    }

    #[test]
    fn sys_read_file_reads_128_bytes_once_and_trims() {
        let dir = crate::testing::TempDir::new();
        let mut buf = [0; SYS_READ_BYTES];
        let path = dir.write("v", " \t value \n");
        assert_eq!(sys_read_file(&path, &mut buf).unwrap(), b"value");
        let path = dir.write("long", &"x".repeat(200));
        assert_eq!(
            sys_read_file(&path, &mut buf).unwrap(),
            "x".repeat(128).as_bytes()
        );
        let path = dir.write("blank", "  \n");
        assert_eq!(sys_read_file(&path, &mut buf).unwrap(), b"");
        let err = sys_read_file(&dir.path().join("none"), &mut buf).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn parses_signed_integers_as_go_does() {
        for (text, value) in [
            ("0", Some(0)),
            ("-1", Some(-1)),
            ("+0x10", Some(16)),
            ("-010", Some(-8)),
            ("9223372036854775807", Some(i64::MAX)),
            ("-9223372036854775808", Some(i64::MIN)),
            ("9223372036854775808", None),
            ("--1", None),
            ("-", None),
            ("", None),
        ] {
            assert_eq!(parse_go_int(text), value, "{text:?}");
        }
    }

    #[test]
    fn set_path_replaces_the_whole_path() {
        let mut path = PathBuf::from("/old/and/long/path");
        set_path(&mut path, Path::new("/sys/class/net"), &["eth0", "mtu"]);
        assert_eq!(path, Path::new("/sys/class/net/eth0/mtu"));
        set_path(&mut path, Path::new("rel"), &[]);
        assert_eq!(path, Path::new("rel"));
    }

    #[test]
    fn lists_kept_names_sorted_into_reused_slots() {
        let dir = crate::testing::TempDir::new();
        for name in ["eth1", "eth0", "lo", "bonding_masters"] {
            dir.write(&format!("net/{name}"), "");
        }
        let mut names = vec![String::from("old"); 5];
        let keep = |_: &std::fs::DirEntry, name: &str| name != "bonding_masters";
        let len = list_dir(&dir.path().join("net"), &mut names, keep).unwrap();
        assert_eq!(names[..len], ["eth0", "eth1", "lo"]);
        assert_eq!(names.len(), 5);
        assert!(list_dir(&dir.path().join("none"), &mut names, keep).is_err());
    }

    #[test]
    fn refuses_enormous_files_and_gives_memory_back() {
        let dir = crate::testing::TempDir::new();
        let path = dir.write("big", &"x".repeat(MAX_FILE_BYTES + 10));
        let mut buf = String::new();
        let err = read_file(&path, &mut buf).unwrap_err();
        assert!(err.to_string().contains("larger than"), "{err}");
        let small = dir.write("small", "1\n");
        read_file(&small, &mut buf).unwrap();
        assert!(buf.capacity() <= SHRINK_ABOVE, "{}", buf.capacity());
    }
}

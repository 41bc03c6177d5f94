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
fn open(path: &Path) -> io::Result<std::fs::File> {
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

//! Reading whole /proc and /sys files into buffers that live across cycles.

use super::Error;
use std::io::Read;
use std::path::Path;

/// The largest file a collector reads. /proc files of thousands of devices or mounts
/// stay far below it; anything larger is refused rather than held in memory.
pub const MAX_FILE_BYTES: usize = 4 << 20;

/// A buffer this much larger than what it holds is given back to the allocator, so a
/// one-off huge file does not pin its size for the life of the process.
const SHRINK_ABOVE: usize = 64 << 10;

/// Reads the whole file at `path` into `buf`, replacing its contents.
pub fn read_file(path: &Path, buf: &mut String) -> Result<(), Error> {
    buf.clear();
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, &e))?;
    read_open_file(path, file, buf)
}

/// Like [`read_file`], but a file that does not exist is not an error: returns
/// `Ok(false)` with `buf` empty. For files some kernels lack (`/proc/pressure/*`,
/// `/proc/net/snmp6` without IPv6), which node_exporter tells apart from failures.
pub fn read_optional_file(path: &Path, buf: &mut String) -> Result<bool, Error> {
    buf.clear();
    match std::fs::File::open(path) {
        Ok(file) => read_open_file(path, file, buf).map(|()| true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(Error::io(path, &e)),
    }
}

fn read_open_file(path: &Path, file: std::fs::File, buf: &mut String) -> Result<(), Error> {
    let result = file
        .take(MAX_FILE_BYTES as u64 + 1)
        .read_to_string(buf)
        .map_err(|e| Error::io(path, &e));
    if buf.capacity() > SHRINK_ABOVE && buf.capacity() > 4 * buf.len() {
        buf.shrink_to(buf.len().max(SHRINK_ABOVE / 4));
    }
    result?;
    if buf.len() > MAX_FILE_BYTES {
        buf.clear();
        return Err(Error::new(format!(
            "{}: larger than {MAX_FILE_BYTES} bytes",
            path.display()
        )));
    }
    Ok(())
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

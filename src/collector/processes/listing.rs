//! The numbered entries of a directory (/proc's processes, a process's threads under
//! `task/`), listed with getdents64(2) into a buffer kept across cycles.
//!
//! std's `read_dir` allocates each entry's name, and the processes collector lists
//! thousands of entries a cycle; here the records are parsed where the kernel wrote
//! them and only the numbers are kept.

use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;

/// How much one getdents64 call may return: about 1,000 /proc entries.
const LISTING_BYTES: usize = 32 << 10;

/// A record's fixed part: `d_ino` (8 bytes), `d_off` (8), `d_reclen` (2), `d_type` (1),
/// then the name, NUL-terminated, padded to 8 bytes.
const NAME_AT: usize = 19;

/// Lists the entries of `dir` whose names are decimal numbers that fit a `u32` into
/// `out` (cleared first), in the kernel's order, reading through `buf`. Stops after
/// `limit` numbers: returns `Ok(true)` when the whole directory was listed, `Ok(false)`
/// when it has more. Names are parsed as procfs parses them (leading zeros allowed).
pub fn numbered_entries(
    dir: &Path,
    buf: &mut Vec<u8>,
    out: &mut Vec<u32>,
    limit: usize,
) -> io::Result<bool> {
    out.clear();
    let dir = crate::collector::open(dir)?;
    buf.resize(LISTING_BYTES, 0);
    loop {
        let filled = getdents64(&dir, buf)?;
        if filled == 0 {
            return Ok(true);
        }
        let mut records = buf.get(..filled).unwrap_or_default();
        while !records.is_empty() {
            let (name, rest) = split_record(records)?;
            records = rest;
            let Some(number) = parse_number(name) else {
                continue;
            };
            if out.len() == limit {
                return Ok(false);
            }
            out.push(number);
        }
    }
}

/// The name of the first record of `records`, and the records after it.
fn split_record(records: &[u8]) -> io::Result<(&[u8], &[u8])> {
    let malformed = || io::Error::new(io::ErrorKind::InvalidData, "malformed getdents64 record");
    let length = match records.get(16..18) {
        Some(&[low, high]) => usize::from(u16::from_ne_bytes([low, high])),
        _ => return Err(malformed()),
    };
    let record = records
        .get(..length)
        .filter(|r| r.len() > NAME_AT)
        .ok_or_else(malformed)?;
    let name = record.get(NAME_AT..).unwrap_or_default();
    let end = name.iter().position(|b| *b == 0).unwrap_or(name.len());
    Ok((name.get(..end).unwrap_or_default(), records.get(length..).unwrap_or_default()))
}

fn parse_number(name: &[u8]) -> Option<u32> {
    if name.is_empty() || !name.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(name).ok()?.parse().ok()
}

/// One getdents64 call: the bytes of whole records written at the start of `buf`,
/// 0 at the end of the directory.
fn getdents64(dir: &std::fs::File, buf: &mut [u8]) -> io::Result<usize> {
    use nix::libc;
    loop {
        // SAFETY: the kernel writes at most `buf.len()` bytes at `buf`'s start, a
        // region valid for writes for the whole call; `dir` keeps the descriptor open.
        let filled = unsafe {
            libc::syscall(
                libc::SYS_getdents64,
                dir.as_raw_fd(),
                buf.as_mut_ptr(),
                buf.len(),
            )
        };
        match usize::try_from(filled) {
            Ok(filled) => return Ok(filled.min(buf.len())),
            Err(_) => {
                let err = io::Error::last_os_error();
                if err.kind() != io::ErrorKind::Interrupted {
                    return Err(err);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TempDir;

    #[test]
    fn lists_the_numbered_entries_only() {
        let dir = TempDir::new();
        for name in ["1", "42", "007", "self", "12a", "4294967296", "sys"] {
            dir.write(&format!("{name}/stat"), "");
        }
        // A file with a number for a name is listed too, as procfs lists it.
        dir.write("99", "");
        let (mut buf, mut out) = (Vec::new(), vec![5, 6, 7]);
        assert!(numbered_entries(dir.path(), &mut buf, &mut out, 100).unwrap());
        out.sort_unstable();
        assert_eq!(out, [1, 7, 42, 99]);
    }

    #[test]
    fn stops_at_the_limit_and_says_so() {
        let dir = TempDir::new();
        for pid in 1..=5000 {
            dir.write(&format!("{pid}/stat"), "");
        }
        let (mut buf, mut out) = (Vec::new(), Vec::new());
        // More entries than one getdents64 call returns.
        assert!(numbered_entries(dir.path(), &mut buf, &mut out, 5000).unwrap());
        assert_eq!(out.len(), 5000);
        assert!(!numbered_entries(dir.path(), &mut buf, &mut out, 4999).unwrap());
        assert_eq!(out.len(), 4999);
        assert_eq!(buf.len(), LISTING_BYTES);
    }

    #[test]
    fn lists_the_real_proc_with_this_process_in_it() {
        let (mut buf, mut out) = (Vec::new(), Vec::new());
        assert!(numbered_entries(Path::new("/proc"), &mut buf, &mut out, 1 << 22).unwrap());
        assert!(out.contains(&std::process::id()));
        let tasks = Path::new("/proc/self/task");
        assert!(numbered_entries(tasks, &mut buf, &mut out, 1 << 22).unwrap());
        assert!(out.contains(&std::process::id()));
    }

    #[test]
    fn a_missing_directory_or_a_file_is_an_error() {
        let dir = TempDir::new();
        let (mut buf, mut out) = (Vec::new(), Vec::new());
        let missing = numbered_entries(&dir.path().join("none"), &mut buf, &mut out, 10);
        assert_eq!(missing.unwrap_err().kind(), io::ErrorKind::NotFound);
        let file = dir.write("file", "");
        let err = numbered_entries(&file, &mut buf, &mut out, 10).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(nix::libc::ENOTDIR));
    }

    #[test]
    fn malformed_records_are_refused() {
        assert!(split_record(&[0; 10]).is_err());
        let mut record = [0u8; 24];
        record[16] = 19; // shorter than its fixed part and a name
        assert!(split_record(&record).is_err());
        record[16] = 32; // longer than the records
        assert!(split_record(&record).is_err());
        record[16] = 24;
        record[19..22].copy_from_slice(b"12\0");
        assert_eq!(split_record(&record).unwrap(), (&b"12"[..], &[][..]));
    }
}

//! The mount table, from `<procfs>/1/mountinfo`: what the filesystem collector
//! reports on, and where btrfs finds the mount points it asks for device
//! statistics. Shared as node_exporter shares `mountPointDetails` between the two.
//!
//! Read and parsed as node_exporter 1.12 does (procfs's `GetProcMounts(1)`, falling
//! back to `GetMounts()`, that is `<procfs>/self/mountinfo`, when the first is
//! missing, as under `hidepid`). A line is
//! `36 35 98:0 /root /mnt/point rw,noatime master:1 - ext3 /dev/root rw,errors=continue`:
//! split on single spaces, at least ten fields, the fourth from the end `-`; the mount
//! and parent IDs and `major:minor` must be numbers. A line that is not so fails
//! the whole table, as in procfs (an empty line included: the kernel writes none).

use super::{read_file, read_optional_file, CollectError};
use std::ops::Range;
use std::path::{Path, PathBuf};

/// One line of mountinfo, borrowed from the table's buffer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Mount<'a> {
    pub major: u32,
    pub minor: u32,
    /// As the kernel wrote it: `\040` for a space (see [`push_mount_point`]).
    pub mount_point: &'a str,
    /// The per-mount options (`rw,nosuid,relatime`).
    pub options: &'a str,
    pub fs_type: &'a str,
    /// The mount source, node_exporter's `device` label (`/dev/vda1`, `tmpfs`).
    pub source: &'a str,
    /// The superblock's options (`rw,seclabel,attr2`).
    pub super_options: &'a str,
}

impl Mount<'_> {
    /// Whether the mount or its filesystem is read-only: `ro` among either options.
    pub fn read_only(&self) -> bool {
        let ro = |options: &str| options.split(',').any(|option| option == "ro");
        ro(self.options) || ro(self.super_options)
    }
}

const TOO_FEW: &str = "fewer than 10 fields";

/// Parses one mountinfo line; the error says what is wrong with it.
pub fn parse_line(line: &str) -> Result<Mount<'_>, String> {
    let mut fields = line.split(' ');
    let mut head = [""; 6];
    for slot in &mut head {
        *slot = fields.next().ok_or(TOO_FEW)?;
    }
    // Optional fields (`shared:1 master:2`) run up to the separator; the last four
    // are the separator, fstype, source and superblock options.
    let mut tail = [""; 4];
    let mut count = 0;
    for field in fields {
        tail.rotate_left(1);
        tail[3] = field;
        count += 1;
    }
    if count < tail.len() {
        return Err(TOO_FEW.to_owned());
    }
    let [id, parent, major_minor, _root, mount_point, options] = head;
    let [separator, fs_type, source, super_options] = tail;
    if separator != "-" {
        return Err(format!(
            "expected the separator `-` as the fourth field from the end, got {separator:?}"
        ));
    }
    for (name, number) in [("mount ID", id), ("parent ID", parent)] {
        number
            .parse::<i64>()
            .map_err(|_| format!("{name}: expected a number, got {number:?}"))?;
    }
    let (major, minor) = major_minor
        .split_once(':')
        .and_then(|(major, minor)| Some((major.parse().ok()?, minor.parse().ok()?)))
        .ok_or_else(|| format!("expected major:minor, got {major_minor:?}"))?;
    Ok(Mount {
        major,
        minor,
        mount_point,
        options,
        fs_type,
        source,
        super_options,
    })
}

/// The mount table of the host's mount namespace, read into a buffer kept across
/// cycles.
#[derive(Default)]
pub struct MountTable {
    /// `<procfs>/1/mountinfo`.
    root: PathBuf,
    /// `<procfs>/self/mountinfo`, when the first is missing.
    own: PathBuf,
    /// Whether the last read was of `own`.
    from_own: bool,
    buf: String,
}

impl MountTable {
    pub fn new(procfs: &Path) -> Self {
        MountTable {
            root: procfs.join("1/mountinfo"),
            own: procfs.join("self/mountinfo"),
            from_own: false,
            buf: String::new(),
        }
    }

    /// The file the last [`read`](Self::read) read.
    pub fn path(&self) -> &Path {
        if self.from_own {
            &self.own
        } else {
            &self.root
        }
    }

    /// Reads the table: `<procfs>/1/mountinfo`, or `<procfs>/self/mountinfo` when the
    /// former does not exist.
    pub fn read(&mut self) -> Result<(), CollectError> {
        self.from_own = !read_optional_file(&self.root, &mut self.buf)?;
        if self.from_own {
            log::debug!(
                "{} does not exist (hidepid?), reading {}",
                self.root.display(),
                self.own.display()
            );
            read_file(&self.own, &mut self.buf)?;
        }
        Ok(())
    }

    /// The mounts of the last read, in file order; a malformed line is an error
    /// naming the file and line.
    pub fn mounts(&self) -> impl Iterator<Item = Result<Mount<'_>, CollectError>> + '_ {
        let path = self.path();
        self.buf.lines().enumerate().map(move |(index, line)| {
            parse_line(line)
                .map_err(|what| CollectError::parse(path, index + 1, format!("{what}: {line:?}")))
        })
    }
}

/// Appends a mount point as node_exporter labels it: `\040` and `\011` unescaped
/// (other escapes, `\012` and `\134`, stay as the kernel wrote them), then `root`
/// (`<rootfs>` without its trailing `/`, empty for `/`) stripped from its front, at
/// a `/` only (`root` itself becomes `/`). Returns the range it takes in `labels`.
pub fn push_mount_point(labels: &mut String, raw: &str, root: &str) -> Range<usize> {
    let start = labels.len();
    let mut rest = raw;
    while let Some(at) = rest.find('\\') {
        labels.push_str(&rest[..at]);
        let escape = &rest[at..];
        let (text, skip) = if escape.starts_with("\\040") {
            (" ", 4)
        } else if escape.starts_with("\\011") {
            ("\t", 4)
        } else {
            ("\\", 1)
        };
        labels.push_str(text);
        rest = &escape[skip..];
    }
    labels.push_str(rest);
    if !root.is_empty() {
        let unescaped = &labels[start..];
        if unescaped == root {
            labels.truncate(start);
            labels.push('/');
        } else if unescaped
            .strip_prefix(root)
            .is_some_and(|below| below.starts_with('/'))
        {
            labels.drain(start..start + root.len());
        }
    }
    start..labels.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TempDir;

    #[test]
    fn parses_the_kernels_lines() {
        let mount = parse_line(
            "36 35 98:0 /mnt1 /mnt/a\\040b rw,noatime master:1 shared:2 - ext3 /dev/root ro,errors=continue",
        )
        .unwrap();
        assert_eq!(
            mount,
            Mount {
                major: 98,
                minor: 0,
                mount_point: "/mnt/a\\040b",
                options: "rw,noatime",
                fs_type: "ext3",
                source: "/dev/root",
                super_options: "ro,errors=continue",
            }
        );
        assert!(mount.read_only());
        let mount = parse_line("22 1 0:21 / /proc rw,nosuid - proc proc rw").unwrap();
        assert_eq!((mount.fs_type, mount.source), ("proc", "proc"));
        assert!(!mount.read_only());
        assert!(parse_line("1 0 8:1 / /ro ro,relatime - ext4 /dev/sda1 rw")
            .unwrap()
            .read_only());
    }

    #[test]
    fn malformed_lines_say_what_is_wrong() {
        for (line, message) in [
            ("", "fewer than 10 fields"),
            ("22 1 0:21 / /proc rw - proc proc", "fewer than 10 fields"),
            (
                "22 1 0:21 / /proc rw shared:1 proc proc rw",
                "expected the separator `-` as the fourth field from the end, got \"shared:1\"",
            ),
            (
                "x 1 0:21 / /p rw - proc proc rw",
                "mount ID: expected a number, got \"x\"",
            ),
            (
                "1 y 0:21 / /p rw - proc proc rw",
                "parent ID: expected a number, got \"y\"",
            ),
            (
                "1 1 021 / /p rw - proc proc rw",
                "expected major:minor, got \"021\"",
            ),
            (
                "1 1 0:-1 / /p rw - proc proc rw",
                "expected major:minor, got \"0:-1\"",
            ),
        ] {
            assert_eq!(parse_line(line).unwrap_err(), message, "{line:?}");
        }
    }

    #[test]
    fn reads_pid_1s_table_or_its_own_and_names_the_line() {
        let dir = TempDir::new();
        let mut table = MountTable::new(dir.path());
        assert!(table
            .read()
            .unwrap_err()
            .to_string()
            .contains("self/mountinfo: "));
        dir.write("self/mountinfo", "1 0 8:1 / / rw - ext4 /dev/own rw\n");
        table.read().unwrap();
        let sources: Vec<_> = table.mounts().map(|m| m.unwrap().source).collect();
        assert_eq!(sources, ["/dev/own"]);
        dir.write(
            "1/mountinfo",
            "1 0 8:1 / / rw - ext4 /dev/root rw\n2 1 8:2 / /x rw - ext4\n",
        );
        table.read().unwrap();
        let results: Vec<_> = table.mounts().collect();
        assert_eq!(results[0].as_ref().unwrap().source, "/dev/root");
        let err = results[1].as_ref().unwrap_err().to_string();
        assert!(
            err.ends_with("1/mountinfo line 2: fewer than 10 fields: \"2 1 8:2 / /x rw - ext4\""),
            "{err}"
        );
    }

    #[test]
    fn unescapes_only_what_node_exporter_does() {
        let mut labels = String::from("x");
        for (raw, expected) in [
            ("/a\\040b", "/a b"),
            ("/a\\011b", "/a\tb"),
            ("/a\\134b\\012", "/a\\134b\\012"),
            ("/a\\04", "/a\\04"),
            ("/a\\", "/a\\"),
            ("/é\\040ü", "/é ü"),
        ] {
            let range = push_mount_point(&mut labels, raw, "");
            assert_eq!(&labels[range], expected);
        }
        let range = push_mount_point(&mut labels, "/r\\040t/x", "/r t");
        assert_eq!(&labels[range], "/x");
        let range = push_mount_point(&mut labels, "/host", "/host");
        assert_eq!(&labels[range], "/");
        let range = push_mount_point(&mut labels, "/hostile", "/host");
        assert_eq!(&labels[range], "/hostile");
    }
}

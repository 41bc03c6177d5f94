//! The three btrfs ioctls node_exporter asks a mounted filesystem (through the
//! `dennwc/btrfs` Go package): `BTRFS_IOC_FS_INFO` (its fsid and device count),
//! `BTRFS_IOC_DEV_INFO` (each device's path, UUID, size and bytes used) and
//! `BTRFS_IOC_GET_DEV_STATS` (each device's error counters), as declared in
//! `<linux/btrfs.h>`.
//!
//! None needs a capability: only resetting the counters (`BTRFS_DEV_STATS_RESET`,
//! never asked for here) does. What an unprivileged agent needs is to open the mount
//! point, which it is opened for reading (`O_RDONLY | O_DIRECTORY`), as node_exporter
//! has done since 1.6; a mount point it may not read fails that filesystem only.

use nix::errno::Errno;
use nix::libc;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// `struct btrfs_ioctl_fs_info_args`, 1024 bytes.
#[repr(C)]
struct FsInfoArgs {
    max_id: u64,
    num_devices: u64,
    fsid: [u8; 16],
    nodesize: u32,
    sectorsize: u32,
    clone_alignment: u32,
    csum_type: u16,
    csum_size: u16,
    flags: u64,
    generation: u64,
    metadata_uuid: [u8; 16],
    reserved: [u8; 944],
}

/// `struct btrfs_ioctl_dev_info_args`, 4096 bytes.
#[repr(C)]
struct DevInfoArgs {
    devid: u64,
    uuid: [u8; 16],
    bytes_used: u64,
    total_bytes: u64,
    fsid: [u8; 16],
    unused: [u64; 377],
    path: [u8; 1024],
}

/// The counters of `struct btrfs_ioctl_get_dev_stats`: write, read, flush,
/// corruption and generation errors (`BTRFS_DEV_STAT_VALUES_MAX`).
pub const ERROR_COUNTERS: usize = 5;

/// `struct btrfs_ioctl_get_dev_stats`, 1032 bytes (the kernel's comment says it
/// meant 1024 and forgot the flags field).
#[repr(C)]
struct GetDevStats {
    devid: u64,
    nr_items: u64,
    flags: u64,
    values: [u64; ERROR_COUNTERS],
    unused: [u64; 128 - 2 - ERROR_COUNTERS],
}

// The request numbers encode the sizes: a struct of another size would be another
// ioctl, so they are checked here.
const _: () = assert!(std::mem::size_of::<FsInfoArgs>() == 1024);
const _: () = assert!(std::mem::size_of::<DevInfoArgs>() == 4096);
const _: () = assert!(std::mem::size_of::<GetDevStats>() == 1032);

const BTRFS_IOCTL_MAGIC: u8 = 0x94;
nix::ioctl_read!(fs_info, BTRFS_IOCTL_MAGIC, 31, FsInfoArgs);
nix::ioctl_readwrite!(dev_info, BTRFS_IOCTL_MAGIC, 30, DevInfoArgs);
nix::ioctl_readwrite!(get_dev_stats, BTRFS_IOCTL_MAGIC, 52, GetDevStats);

/// One device of a filesystem, as the ioctls describe it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Device {
    /// The last component of the device's path: `sda` for `/dev/sda`.
    pub name: String,
    /// The device's btrfs UUID, `8-4-4-4-12` hex, or `<zero>`.
    pub uuid: String,
    pub total_bytes: u64,
    pub bytes_used: u64,
    /// Write, read, flush, corruption, generation errors.
    pub errors: [u64; ERROR_COUNTERS],
}

/// The ioctl answers for the filesystem mounted at `mount_point`: its fsid in hex
/// (32 digits, no dashes, as node_exporter matches it against sysfs's UUID) into
/// `fsid`, and its devices into `devices` (slots reused), returning how many.
pub fn read(
    mount_point: &Path,
    fsid: &mut String,
    devices: &mut Vec<Device>,
) -> Result<usize, String> {
    let dir = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NONBLOCK)
        .open(mount_point)
        .map_err(|e| format!("open {}: {e}", mount_point.display()))?;
    let fd = dir.as_raw_fd();
    let mut info = FsInfoArgs {
        max_id: 0,
        num_devices: 0,
        fsid: [0; 16],
        nodesize: 0,
        sectorsize: 0,
        clone_alignment: 0,
        csum_type: 0,
        csum_size: 0,
        flags: 0,
        generation: 0,
        metadata_uuid: [0; 16],
        reserved: [0; 944],
    };
    // SAFETY: `fd` is open for the call and `info` is the kernel's struct of the size
    // the request number encodes (checked above); the kernel writes only into it.
    unsafe { fs_info(fd, &mut info) }.map_err(|e| ioctl_error("BTRFS_IOC_FS_INFO", e))?;
    fsid.clear();
    for byte in info.fsid {
        push_hex(fsid, byte);
    }
    // 4 KiB on the loop thread's stack, which has megabytes.
    let mut args = DevInfoArgs {
        devid: 0,
        uuid: [0; 16],
        bytes_used: 0,
        total_bytes: 0,
        fsid: [0; 16],
        unused: [0; 377],
        path: [0; 1024],
    };
    let mut len = 0;
    // Device IDs need not start at 0 nor be contiguous (a removed device leaves a
    // gap); node_exporter walks up to max_id and stops once it has them all.
    for devid in 0..=info.max_id {
        if len as u64 >= info.num_devices {
            break;
        }
        args.devid = devid;
        args.uuid = [0; 16];
        // SAFETY: as for FS_INFO; `args` is `struct btrfs_ioctl_dev_info_args`.
        match unsafe { dev_info(fd, &mut args) } {
            Ok(_) => {}
            Err(Errno::ENODEV) => continue,
            Err(e) => return Err(ioctl_error("BTRFS_IOC_DEV_INFO", e)),
        }
        let mut stats = GetDevStats {
            devid,
            nr_items: ERROR_COUNTERS as u64,
            flags: 0,
            values: [0; ERROR_COUNTERS],
            unused: [0; 128 - 2 - ERROR_COUNTERS],
        };
        // SAFETY: as for FS_INFO; `stats` is `struct btrfs_ioctl_get_dev_stats`, with
        // flags 0 (read, do not reset).
        unsafe { get_dev_stats(fd, &mut stats) }
            .map_err(|e| ioctl_error("BTRFS_IOC_GET_DEV_STATS", e))?;
        if devices.len() <= len {
            devices.push(Device::default());
        }
        let device = &mut devices[len];
        let path_len = args.path.iter().position(|b| *b == 0).unwrap_or(args.path.len());
        let path = String::from_utf8_lossy(&args.path[..path_len]);
        device.name.clear();
        device.name.push_str(path.rsplit('/').next().unwrap_or_default());
        device.uuid.clear();
        push_uuid(&mut device.uuid, &args.uuid);
        device.total_bytes = args.total_bytes;
        device.bytes_used = args.bytes_used;
        device.errors = stats.values;
        len += 1;
    }
    Ok(len)
}

fn ioctl_error(name: &str, errno: Errno) -> String {
    format!("{name}: {}", errno.desc())
}

fn push_hex(out: &mut String, byte: u8) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    out.push(char::from(DIGITS[usize::from(byte >> 4)]));
    out.push(char::from(DIGITS[usize::from(byte & 0xf)]));
}

/// A UUID as `dennwc/btrfs` prints it: `8-4-4-4-12` lower-case hex, `<zero>` when
/// all its bytes are 0.
pub fn push_uuid(out: &mut String, uuid: &[u8; 16]) {
    if uuid.iter().all(|b| *b == 0) {
        out.push_str("<zero>");
        return;
    }
    for (index, byte) in uuid.iter().enumerate() {
        if matches!(index, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        push_hex(out, *byte);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_print_as_dennwc_btrfs_prints_them() {
        let mut text = String::new();
        let uuid = [
            0x0a, 0xbb, 0x23, 0xa9, 0x57, 0x9b, 0x43, 0xe6, 0xad, 0x30, 0x22, 0x7e, 0xf4, 0x7f,
            0xcb, 0x9d,
        ];
        push_uuid(&mut text, &uuid);
        assert_eq!(text, "0abb23a9-579b-43e6-ad30-227ef47fcb9d");
        text.clear();
        push_uuid(&mut text, &[0; 16]);
        assert_eq!(text, "<zero>");
    }

    #[test]
    fn a_directory_that_is_not_btrfs_is_an_error_naming_the_ioctl() {
        let dir = crate::testing::TempDir::new();
        let (mut fsid, mut devices) = (String::new(), Vec::new());
        let err = read(dir.path(), &mut fsid, &mut devices).unwrap_err();
        // tmpfs or ext4 under /tmp: the ioctl is not theirs.
        assert!(err.starts_with("BTRFS_IOC_FS_INFO: "), "{err}");
        let err = read(&dir.path().join("none"), &mut fsid, &mut devices).unwrap_err();
        assert!(err.starts_with("open "), "{err}");
        let file = dir.write("file", "");
        assert!(read(&file, &mut fsid, &mut devices).unwrap_err().contains("Not a directory"));
    }
}

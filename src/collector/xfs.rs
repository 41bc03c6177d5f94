//! `node_xfs_*{device}` from `<sysfs>/fs/xfs/<device>/stats/stats`, one set per
//! mounted XFS filesystem, as node_exporter 1.12's xfs collector exports them (the
//! same families, names and HELP as 1.5).
//!
//! The file has one line per category, a name and its counters:
//! `extent_alloc 92447 97589 92448 93751`. node_exporter (procfs's `SysStats`) exports
//! 39 counters from eight categories: extent allocation, allocation and block-map
//! B-trees, block mapping, directory operations, inode operations (`ig`), read/write
//! calls (`rw`) and vnodes ([`COUNTERS`]); every family is a counter labelled
//! `device`, the directory's name (`sda1`, `dm-0`). A category missing from the file
//! reports 0, as procfs's zero-valued struct does.
//!
//! Quirks mirrored:
//! - only `fs/xfs/*/stats/stats` is read (the per-filesystem files, Linux 4.4+), not
//!   /proc/fs/xfs/stat nor `fs/xfs/stats/stats` (the sums over all filesystems);
//! - every counter of every line must be a whole number below 2^32 (`xpc`'s below
//!   2^64), exported or not, or the collector fails; lines of fewer than two fields
//!   are skipped; a category listed twice keeps its last line;
//! - no XFS mounted (or no `fs/xfs` at all): no series and success, not `ErrNoData`:
//!   procfs's glob just matches nothing. The one failed listing costs nothing and
//!   logs nothing.
//!
//! Where node_exporter differs: procfs also fails when one of the categories it
//! parses but node_exporter does not export (`log`, `push_ail`, `buf`, `qm`, ...) has
//! another number of counters than it expects; here only the counts of the exported
//! categories are checked, so a kernel that grows an unexported line keeps its
//! metrics.

use super::{list_dir, read_file, set_path, Build, CollectError, Collector, Context};
use crate::batch::{Batch, Kind};
use crate::config::collectors::NoOptions;
use std::path::{Path, PathBuf};

/// One exported counter: its category line, its position there, its family.
struct Counter {
    category: &'static str,
    index: usize,
    name: &'static str,
    help: &'static str,
}

const fn counter(
    category: &'static str,
    index: usize,
    name: &'static str,
    help: &'static str,
) -> Counter {
    Counter {
        category,
        index,
        name,
        help,
    }
}

/// The categories exported and how many counters procfs requires on their line.
const CATEGORIES: [(&str, &[usize]); 8] = [
    ("extent_alloc", &[4]),
    ("abt", &[4]),
    ("blk_map", &[7]),
    ("bmbt", &[4]),
    ("dir", &[4]),
    ("ig", &[7]),
    ("rw", &[2]),
    // `vn_free`, the eighth, is missing from old kernels' files.
    ("vnodes", &[7, 8]),
];

/// node_exporter's families, in its order (names after `node_xfs_`).
const COUNTERS: [Counter; 39] = [
    counter("extent_alloc", 0, "extent_allocation_extents_allocated_total", "Number of extents allocated for a filesystem."),
    counter("extent_alloc", 1, "extent_allocation_blocks_allocated_total", "Number of blocks allocated for a filesystem."),
    counter("extent_alloc", 2, "extent_allocation_extents_freed_total", "Number of extents freed for a filesystem."),
    counter("extent_alloc", 3, "extent_allocation_blocks_freed_total", "Number of blocks freed for a filesystem."),
    counter("abt", 0, "allocation_btree_lookups_total", "Number of allocation B-tree lookups for a filesystem."),
    counter("abt", 1, "allocation_btree_compares_total", "Number of allocation B-tree compares for a filesystem."),
    counter("abt", 2, "allocation_btree_records_inserted_total", "Number of allocation B-tree records inserted for a filesystem."),
    counter("abt", 3, "allocation_btree_records_deleted_total", "Number of allocation B-tree records deleted for a filesystem."),
    counter("blk_map", 0, "block_mapping_reads_total", "Number of block map for read operations for a filesystem."),
    counter("blk_map", 1, "block_mapping_writes_total", "Number of block map for write operations for a filesystem."),
    counter("blk_map", 2, "block_mapping_unmaps_total", "Number of block unmaps (deletes) for a filesystem."),
    counter("blk_map", 3, "block_mapping_extent_list_insertions_total", "Number of extent list insertions for a filesystem."),
    counter("blk_map", 4, "block_mapping_extent_list_deletions_total", "Number of extent list deletions for a filesystem."),
    counter("blk_map", 5, "block_mapping_extent_list_lookups_total", "Number of extent list lookups for a filesystem."),
    counter("blk_map", 6, "block_mapping_extent_list_compares_total", "Number of extent list compares for a filesystem."),
    counter("bmbt", 0, "block_map_btree_lookups_total", "Number of block map B-tree lookups for a filesystem."),
    counter("bmbt", 1, "block_map_btree_compares_total", "Number of block map B-tree compares for a filesystem."),
    counter("bmbt", 2, "block_map_btree_records_inserted_total", "Number of block map B-tree records inserted for a filesystem."),
    counter("bmbt", 3, "block_map_btree_records_deleted_total", "Number of block map B-tree records deleted for a filesystem."),
    counter("dir", 0, "directory_operation_lookup_total", "Number of file name directory lookups which miss the operating systems directory name lookup cache."),
    counter("dir", 1, "directory_operation_create_total", "Number of times a new directory entry was created for a filesystem."),
    counter("dir", 2, "directory_operation_remove_total", "Number of times an existing directory entry was created for a filesystem."),
    counter("dir", 3, "directory_operation_getdents_total", "Number of times the directory getdents operation was performed for a filesystem."),
    counter("ig", 0, "inode_operation_attempts_total", "Number of times the OS looked for an XFS inode in the inode cache."),
    counter("ig", 1, "inode_operation_found_total", "Number of times the OS looked for and found an XFS inode in the inode cache."),
    counter("ig", 2, "inode_operation_recycled_total", "Number of times the OS found an XFS inode in the cache, but could not use it as it was being recycled."),
    counter("ig", 3, "inode_operation_missed_total", "Number of times the OS looked for an XFS inode in the cache, but did not find it."),
    counter("ig", 4, "inode_operation_duplicates_total", "Number of times the OS tried to add a missing XFS inode to the inode cache, but found it had already been added by another process."),
    counter("ig", 5, "inode_operation_reclaims_total", "Number of times the OS reclaimed an XFS inode from the inode cache to free memory for another purpose."),
    counter("ig", 6, "inode_operation_attribute_changes_total", "Number of times the OS explicitly changed the attributes of an XFS inode."),
    // The kernel writes xs_write_calls before xs_read_calls.
    counter("rw", 1, "read_calls_total", "Number of read(2) system calls made to files in a filesystem."),
    counter("rw", 0, "write_calls_total", "Number of write(2) system calls made to files in a filesystem."),
    counter("vnodes", 0, "vnode_active_total", "Number of vnodes not on free lists for a filesystem."),
    counter("vnodes", 1, "vnode_allocate_total", "Number of times vn_alloc called for a filesystem."),
    counter("vnodes", 2, "vnode_get_total", "Number of times vn_get called for a filesystem."),
    counter("vnodes", 3, "vnode_hold_total", "Number of times vn_hold called for a filesystem."),
    counter("vnodes", 4, "vnode_release_total", "Number of times vn_rele called for a filesystem."),
    counter("vnodes", 5, "vnode_reclaim_total", "Number of times vn_reclaim called for a filesystem."),
    counter("vnodes", 6, "vnode_remove_total", "Number of times vn_remove called for a filesystem."),
];

/// The longest exported category line: blk_map and ig have seven counters, vnodes eight.
const MAX_COUNTERS: usize = 8;

/// The line holding 64-bit counters; every other line holds 32-bit ones.
const EXTENDED_PRECISION: &str = "xpc";

pub struct Xfs {
    /// `<sysfs>/fs/xfs`.
    dir: PathBuf,
    /// The stats file being read.
    path: PathBuf,
    buf: String,
    /// This cycle's filesystems (directory names) in the first `len` slots.
    names: Vec<String>,
    /// The counters of each of `names`, same index.
    values: Vec<[u32; COUNTERS.len()]>,
    len: usize,
}

impl Xfs {
    pub fn new(sysfs: &Path) -> Self {
        Xfs {
            dir: sysfs.join("fs/xfs"),
            path: PathBuf::new(),
            buf: String::new(),
            names: Vec::new(),
            values: Vec::new(),
            len: 0,
        }
    }

    /// Reads the stats file of every filesystem that has one.
    fn read(&mut self) -> Result<(), CollectError> {
        let listed = match list_dir(&self.dir, &mut self.names, |_, _| true) {
            Ok(listed) => listed,
            // No XFS module, or no sysfs: nothing to report, as node_exporter's glob.
            Err(_) => {
                self.len = 0;
                return Ok(());
            }
        };
        let mut kept = 0;
        for index in 0..listed {
            set_path(&mut self.path, &self.dir, &[&self.names[index], "stats", "stats"]);
            // `stats` itself (the sums) and other entries without the file do not match
            // node_exporter's glob either.
            if !self.path.is_file() {
                continue;
            }
            read_file(&self.path, &mut self.buf)?;
            if self.values.len() <= kept {
                self.values.push([0; COUNTERS.len()]);
            }
            parse(&self.buf, &mut self.values[kept])
                .map_err(|(line, what)| CollectError::parse(&self.path, line, what))?;
            self.names.swap(kept, index);
            kept += 1;
        }
        self.len = kept;
        Ok(())
    }
}

/// Parses one stats file into `values` (in [`COUNTERS`] order); the error is the
/// 1-based line and what is wrong with it.
fn parse(text: &str, values: &mut [u32; COUNTERS.len()]) -> Result<(), (usize, String)> {
    *values = [0; COUNTERS.len()];
    let mut line_values = [0u32; MAX_COUNTERS];
    for (index, line) in text.lines().enumerate() {
        let error = |what: String| (index + 1, what);
        let mut fields = line.split_ascii_whitespace();
        let Some(category) = fields.next() else {
            continue;
        };
        let mut count = 0;
        for field in fields {
            let parsed = if category == EXTENDED_PRECISION {
                field.parse::<u64>().map(|_| 0)
            } else {
                field.parse::<u32>()
            };
            let value = parsed.map_err(|_| {
                error(format!("{category}: expected a whole number, got {field:?}"))
            })?;
            if let Some(slot) = line_values.get_mut(count) {
                *slot = value;
            }
            count += 1;
        }
        // A line of one field is not a category (procfs skips it).
        if count == 0 {
            continue;
        }
        let Some((_, counts)) = CATEGORIES.iter().find(|(name, _)| *name == category) else {
            continue;
        };
        if !counts.contains(&count) {
            return Err(error(format!(
                "{category}: expected {} counters, got {count}",
                counts
                    .iter()
                    .map(|c| c.to_string())
                    .collect::<Vec<_>>()
                    .join(" or ")
            )));
        }
        for (counter, value) in COUNTERS.iter().zip(values.iter_mut()) {
            if counter.category == category {
                *value = line_values[counter.index];
            }
        }
    }
    Ok(())
}

impl Build for Xfs {
    type Options = NoOptions;

    const SOURCES: &'static [&'static str] = &["sys/fs/xfs/sda1/stats/stats"];

    fn build(context: &Context<'_>, _options: &NoOptions) -> Self {
        Xfs::new(&context.paths.sysfs)
    }
}

impl Collector for Xfs {
    fn collect(&mut self, out: &mut Batch) -> Result<(), CollectError> {
        self.read()?;
        let filesystems = || self.names.iter().zip(&self.values).take(self.len);
        for (at, counter) in COUNTERS.iter().enumerate() {
            let mut family = out.family(
                format_args!("node_xfs_{}", counter.name),
                counter.help,
                Kind::Counter,
            );
            for (device, values) in filesystems() {
                family
                    .series()
                    .label("device", device)
                    .value(f64::from(values[at]));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{render, TempDir};

    /// A file as Linux 6.x writes it (trimmed of the B-tree lines of its second half).
    const STATS: &str = "extent_alloc 1 2 3 4\nabt 5 6 7 8\nblk_map 9 10 11 12 13 14 15\n\
        bmbt 16 17 18 19\ndir 20 21 22 23\ntrans 0 0 0\nig 24 25 26 27 28 29 30\n\
        log 0 0 0 0 0\npush_ail 0 0 0 0 0 0 0 0 0 0\nxstrat 0 0\nrw 31 32\nattr 0 0 0 0\n\
        icluster 0 0 0\nvnodes 33 34 35 36 37 38 39 40\nbuf 0 0 0 0 0 0 0 0 0\n\
        rmapbt_mem 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\nqm 0 0 0 0 0 0 0 0\n\
        xpc 18446744073709551615 2 3\ndefer_relog 0\ndebug 0\n";

    fn series<'a>(text: &'a str, name: &str) -> Vec<&'a str> {
        text.lines()
            .filter(|l| l.starts_with(&format!("{name}{{")))
            .collect()
    }

    #[test]
    fn exports_node_exporters_counters_per_filesystem() {
        let dir = TempDir::new();
        dir.write("fs/xfs/sda1/stats/stats", STATS);
        dir.write("fs/xfs/dm-0/stats/stats", &STATS.replace("rw 31 32", "rw 4294967295 1"));
        // The sums over all filesystems, which node_exporter does not read.
        dir.write("fs/xfs/stats/stats", STATS);
        let text = render(&mut Xfs::new(dir.path())).unwrap();
        assert_eq!(text.matches("# TYPE ").count(), 39, "{text}");
        assert_eq!(text.matches("# TYPE node_xfs_").count(), 39);
        assert_eq!(text.matches(" counter\n").count(), 39);
        assert_eq!(
            series(&text, "node_xfs_write_calls_total"),
            [
                "node_xfs_write_calls_total{device=\"dm-0\"} 4294967295",
                "node_xfs_write_calls_total{device=\"sda1\"} 31",
            ]
        );
        for (name, value) in [
            ("extent_allocation_extents_allocated_total", 1),
            ("extent_allocation_blocks_freed_total", 4),
            ("allocation_btree_records_deleted_total", 8),
            ("block_mapping_reads_total", 9),
            ("block_mapping_extent_list_compares_total", 15),
            ("block_map_btree_lookups_total", 16),
            ("directory_operation_getdents_total", 23),
            ("inode_operation_attempts_total", 24),
            ("inode_operation_attribute_changes_total", 30),
            ("read_calls_total", 32),
            ("vnode_active_total", 33),
            ("vnode_remove_total", 39),
        ] {
            let line = format!("node_xfs_{name}{{device=\"sda1\"}} {value}\n");
            assert!(text.contains(&line), "{line}");
        }
        assert!(text.contains(
            "# HELP node_xfs_inode_operation_recycled_total Number of times the OS found an XFS \
             inode in the cache, but could not use it as it was being recycled.\n"
        ));
    }

    #[test]
    fn old_kernels_and_missing_lines() {
        let dir = TempDir::new();
        // Seven vnode counters (no vn_free), no ig line at all.
        dir.write(
            "fs/xfs/sdb/stats/stats",
            "extent_alloc 1 2 3 4\nvnodes 1 2 3 4 5 6 7\nlonely\n\n",
        );
        let text = render(&mut Xfs::new(dir.path())).unwrap();
        assert!(text.contains("node_xfs_vnode_remove_total{device=\"sdb\"} 7\n"));
        assert!(text.contains("node_xfs_inode_operation_found_total{device=\"sdb\"} 0\n"));
    }

    #[test]
    fn no_xfs_is_success_without_series() {
        let dir = TempDir::new();
        assert_eq!(render(&mut Xfs::new(dir.path())).unwrap(), "");
        // This kernel has the module but nothing mounted: only the sums.
        dir.write("fs/xfs/stats/stats", STATS);
        assert_eq!(render(&mut Xfs::new(dir.path())).unwrap(), "");
    }

    #[test]
    fn malformed_files_name_file_line_and_category() {
        let dir = TempDir::new();
        for (bad, message) in [
            ("rw 1 2\nig 1 2 3\n", "line 2: ig: expected 7 counters, got 3"),
            ("vnodes 1 2 3 4 5 6\n", "line 1: vnodes: expected 7 or 8 counters, got 6"),
            ("rw 1 4294967296\n", "line 1: rw: expected a whole number, got \"4294967296\""),
            ("qm 1 -2\n", "line 1: qm: expected a whole number, got \"-2\""),
            ("xpc 1 2 18446744073709551616\n", "line 1: xpc: expected a whole number, got \"18446744073709551616\""),
            ("rw 1 2 3 4 5 6 7 8 9 10\n", "line 1: rw: expected 2 counters, got 10"),
        ] {
            dir.write("fs/xfs/sda1/stats/stats", bad);
            let err = render(&mut Xfs::new(dir.path())).unwrap_err();
            assert!(!err.is_no_data());
            assert!(
                err.to_string().ends_with(&format!("fs/xfs/sda1/stats/stats {message}")),
                "{bad:?}: {err}"
            );
        }
    }

    #[test]
    fn filesystems_come_and_go() {
        let dir = TempDir::new();
        let mut xfs = Xfs::new(dir.path());
        dir.write("fs/xfs/sda1/stats/stats", STATS);
        dir.write("fs/xfs/sdb1/stats/stats", STATS);
        assert_eq!(series(&render(&mut xfs).unwrap(), "node_xfs_read_calls_total").len(), 2);
        std::fs::remove_dir_all(dir.path().join("fs/xfs/sda1")).unwrap();
        let text = render(&mut xfs).unwrap();
        assert_eq!(
            series(&text, "node_xfs_read_calls_total"),
            ["node_xfs_read_calls_total{device=\"sdb1\"} 32"]
        );
    }
}

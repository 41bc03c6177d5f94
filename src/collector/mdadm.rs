//! `node_md_*` for Linux software RAID, as node_exporter 1.12's mdadm collector
//! exports it: from `<procfs>/mdstat` (procfs's `MDStat`) and from
//! `<sysfs>/block/md*/md/` (procfs's `Mdraids`). These feed node-mixin's
//! NodeRAIDDegraded (`node_md_disks_required - node_md_disks{state="active"} > 0`)
//! and NodeRAIDDiskFailure (`node_md_disks{state="failed"} > 0`).
//!
//! From /proc/mdstat, per array (label `device`):
//! - `node_md_disks_required` and `node_md_disks{state="active"}`: the `[n/m]` of
//!   the status line (for raid0 and linear both are the number of `[` in the array
//!   line; for an inactive array both are 0);
//! - `node_md_disks{state="failed"|"spare"}`: the `(F)` and `(S)` in the array line;
//! - `node_md_state{state}`: 1 for the array's state, 0 for the other four of
//!   `active`, `inactive`, `recovering`, `resync`, `check`. A sync line containing
//!   `recovery`, `reshape`, `check` or `resync` (in that order of precedence) makes
//!   the state `recovering`, `reshaping` (which has no series, so all five are 0),
//!   `check` or `resync`;
//! - `node_md_blocks` (1 KiB blocks, the status line's first number) and
//!   `node_md_blocks_synced`: the blocks done of a running sync (`(done/total)`), 0
//!   for `resync=PENDING`/`DELAYED`, else all blocks.
//!
//! From sysfs, per `block/md*/md` directory: `node_md_raid_disks` (`raid_disks`) and
//! `node_md_degraded` (`degraded`, 0 for levels without one: raid0, linear). procfs
//! requires `level`, `array_state`, `metadata_version`, `raid_disks`, `uuid` and each
//! `dev-*/state`, plus `chunk_size` for raid0/4/5/6/10 and `degraded`, `sync_action`
//! and `sync_completed` (`done / total` or `none`) for raid1/4/5/6/10.
//!
//! Errors, as node_exporter's: no /proc/mdstat (the md driver is not loaded, most
//! machines) is "no data" (ErrNoData); so is a required sysfs file that does not
//! exist. A line that does not parse (too few fields, no `[n/m] [U_]` on a status
//! line, a sync line without `(done/total)`, `=  x%`, `finish=`, `speed=`, a
//! component index beyond 32 bits) or a sysfs number that does not parse fails the
//! collector; the error names the file and line.
//!
//! Since 1.5: node_md_raid_disks and node_md_degraded (the sysfs part) are 1.12's.
//! Differences: lines starting with a tab are continuation lines here, as lines
//! starting with a space are (the kernel indents with spaces; procfs would take a
//! tab-led line for an array). When sysfs fails after /proc/mdstat was read,
//! node_exporter still serves the mdstat series of that scrape; this collector,
//! whose output is rolled back on failure, serves none. An array listed twice is
//! reported once.

use super::go_parse::{parse_float, parse_uint, trim_space};
use super::{
    list_dir, read_optional_file, read_sys_value, read_value, set_path, Build, CollectError,
    Collector, Context, Seen,
};
use crate::batch::{Batch, Kind};
use crate::config::collectors::NoOptions;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// An array's activity state as procfs reports it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum State {
    Active,
    Inactive,
    Recovering,
    Resyncing,
    Checking,
    Reshaping,
    /// Whatever else the array line says (`broken`, ...).
    Other,
}

/// `node_md_state`'s `state` labels and the state each one is 1 for.
const STATES: [(&str, State); 5] = [
    ("active", State::Active),
    ("inactive", State::Inactive),
    ("recovering", State::Recovering),
    ("resync", State::Resyncing),
    ("check", State::Checking),
];

/// One array of /proc/mdstat; `name` indexes the file buffer.
#[derive(Debug, PartialEq)]
struct MdStat {
    name: Range<usize>,
    state: State,
    active: i64,
    total: i64,
    failed: i64,
    spare: i64,
    blocks: i64,
    synced: i64,
}

/// One `block/md*/md` directory; slots are reused.
#[derive(Default)]
struct Raid {
    disks: u64,
    degraded: u64,
}

pub struct Mdadm {
    /// `<procfs>/mdstat`.
    mdstat: PathBuf,
    /// `<sysfs>/block`.
    block: PathBuf,
    buf: String,
    /// The lines of `buf`, as byte ranges.
    lines: Vec<Range<usize>>,
    arrays: Vec<MdStat>,
    seen: Seen,
    path: PathBuf,
    text: String,
    raw: Vec<u8>,
    /// This cycle's `md*` block devices with an `md` directory, in the first `len`.
    names: Vec<String>,
    raids: Vec<Raid>,
    len: usize,
    components: Vec<String>,
}

impl Mdadm {
    pub fn new(procfs: &Path, sysfs: &Path) -> Self {
        Mdadm {
            mdstat: procfs.join("mdstat"),
            block: sysfs.join("block"),
            buf: String::new(),
            lines: Vec::new(),
            arrays: Vec::new(),
            seen: Seen::default(),
            path: PathBuf::new(),
            text: String::new(),
            raw: Vec::new(),
            names: Vec::new(),
            raids: Vec::new(),
            len: 0,
            components: Vec::new(),
        }
    }

    fn read_mdstat(&mut self) -> Result<(), CollectError> {
        if !read_optional_file(&self.mdstat, &mut self.buf)? {
            return Err(CollectError::no_data(format!(
                "{} does not exist: the md driver is not loaded",
                self.mdstat.display()
            )));
        }
        self.arrays.clear();
        parse_mdstat(&self.buf, &mut self.lines, &mut self.arrays)
            .map_err(|(line, what)| CollectError::parse(&self.mdstat, line, what))?;
        // An array listed twice is reported once, the first time.
        self.seen.clear();
        let (buf, seen) = (&self.buf, &mut self.seen);
        self.arrays.retain(|array| seen.first(&buf[array.name.clone()]));
        Ok(())
    }

    /// procfs's `Mdraids`: every `block/md*` with an `md` directory.
    fn read_sysfs(&mut self) -> Result<(), CollectError> {
        let keep = |_: &std::fs::DirEntry, name: &str| name.starts_with("md");
        // A glob finds nothing where the directory cannot be listed.
        let listed = list_dir(&self.block, &mut self.names, keep).unwrap_or(0);
        self.len = 0;
        for index in 0..listed {
            set_path(&mut self.path, &self.block, &[&self.names[index], "md"]);
            if std::fs::symlink_metadata(&self.path).is_err() {
                continue;
            }
            self.names.swap(self.len, index);
            if self.raids.len() == self.len {
                self.raids.push(Raid::default());
            }
            self.read_raid()?;
            self.len += 1;
        }
        Ok(())
    }

    /// Reads the array `names[len]` into `raids[len]`.
    fn read_raid(&mut self) -> Result<(), CollectError> {
        let name = &self.names[self.len];
        let mut level = [0u8; 16];
        let mut level_len = 0;
        for file in ["level", "array_state", "metadata_version"] {
            set_path(&mut self.path, &self.block, &[name, "md", file]);
            let value = read_sys_value(&self.path, &mut self.raw)
                .map_err(|e| CollectError::io_or_no_data(&self.path, &e))?;
            if file == "level" {
                let value = trim_space(value);
                level_len = value.len().min(level.len());
                level[..level_len].copy_from_slice(&value[..level_len]);
            }
        }
        let level = &level[..level_len];
        let raid = &mut self.raids[self.len];
        raid.disks = read_number(&mut self.path, &mut self.text, &self.block, &[name, "md", "raid_disks"])?;
        set_path(&mut self.path, &self.block, &[name, "md", "uuid"]);
        read_sys_value(&self.path, &mut self.raw).map_err(|e| CollectError::io_or_no_data(&self.path, &e))?;
        set_path(&mut self.path, &self.block, &[name, "md"]);
        let components = list_dir(&self.path, &mut self.components, |_, n| n.starts_with("dev-"))
            .unwrap_or(0);
        for component in &self.components[..components] {
            set_path(&mut self.path, &self.block, &[name, "md", component, "state"]);
            read_sys_value(&self.path, &mut self.raw).map_err(|e| CollectError::io_or_no_data(&self.path, &e))?;
        }
        let striped = [&b"raid0"[..], b"raid4", b"raid5", b"raid6", b"raid10"];
        if striped.contains(&level) {
            read_number(&mut self.path, &mut self.text, &self.block, &[name, "md", "chunk_size"])?;
        }
        let raid = &mut self.raids[self.len];
        raid.degraded = 0;
        let redundant = [&b"raid1"[..], b"raid4", b"raid5", b"raid6", b"raid10"];
        if redundant.contains(&level) {
            raid.degraded =
                read_number(&mut self.path, &mut self.text, &self.block, &[name, "md", "degraded"])?;
            set_path(&mut self.path, &self.block, &[name, "md", "sync_action"]);
            read_sys_value(&self.path, &mut self.raw)
                .map_err(|e| CollectError::io_or_no_data(&self.path, &e))?;
            set_path(&mut self.path, &self.block, &[name, "md", "sync_completed"]);
            let value = read_sys_value(&self.path, &mut self.raw)
                .map_err(|e| CollectError::io_or_no_data(&self.path, &e))?;
            let value = String::from_utf8_lossy(trim_space(value));
            if value != "none" && sync_fraction(&value).is_none() {
                return Err(CollectError::parse(
                    &self.path,
                    1,
                    format!("expected \"<done> / <total>\" or \"none\", got {value:?}"),
                ));
            }
        }
        Ok(())
    }

    fn write(&self, out: &mut Batch) {
        let name = |array: &MdStat| &self.buf[array.name.clone()];
        let gauge = |out: &mut Batch, family: &str, help: &str, value: fn(&MdStat) -> i64| {
            let mut family = out.family(family, help, Kind::Gauge);
            for array in &self.arrays {
                family
                    .series()
                    .label("device", name(array))
                    .value(value(array) as f64);
            }
        };
        gauge(
            out,
            "node_md_disks_required",
            "Total number of disks of device.",
            |a| a.total,
        );
        let mut family = out.family(
            "node_md_disks",
            "Number of active/failed/spare disks of device.",
            Kind::Gauge,
        );
        for array in &self.arrays {
            for (state, value) in [
                ("active", array.active),
                ("failed", array.failed),
                ("spare", array.spare),
            ] {
                family
                    .series()
                    .label("device", name(array))
                    .label("state", state)
                    .value(value as f64);
            }
        }
        let mut family = out.family(
            "node_md_state",
            "Indicates the state of md-device.",
            Kind::Gauge,
        );
        for array in &self.arrays {
            for (label, state) in STATES {
                family
                    .series()
                    .label("device", name(array))
                    .label("state", label)
                    .value(f64::from(u8::from(array.state == state)));
            }
        }
        gauge(
            out,
            "node_md_blocks",
            "Total number of blocks on device.",
            |a| a.blocks,
        );
        gauge(
            out,
            "node_md_blocks_synced",
            "Number of blocks synced on device.",
            |a| a.synced,
        );
        let raids = || self.names.iter().zip(&self.raids).take(self.len);
        let mut family = out.family(
            "node_md_raid_disks",
            "Number of raid disks on device.",
            Kind::Gauge,
        );
        for (name, raid) in raids() {
            family.series().label("device", name).value(raid.disks as f64);
        }
        let mut family = out.family(
            "node_md_degraded",
            "Number of degraded disks on device.",
            Kind::Gauge,
        );
        for (name, raid) in raids() {
            family
                .series()
                .label("device", name)
                .value(raid.degraded as f64);
        }
    }
}

/// A whole number file under `block` (procfs's `ReadUintFromFile`).
fn read_number(
    path: &mut PathBuf,
    text: &mut String,
    block: &Path,
    parts: &[&str],
) -> Result<u64, CollectError> {
    set_path(path, block, parts);
    let value = read_value(path, text).map_err(|e| CollectError::io_or_no_data(path, &e))?;
    parse_uint(value).ok_or_else(|| {
        CollectError::parse(path, 1, format!("expected a whole number, got {value:?}"))
    })
}

/// `sync_completed`'s `<done> / <total>` (Go's `Sscanf("%d / %d")`: spaces around the
/// slash optional, anything after the second number ignored).
fn sync_fraction(text: &str) -> Option<(u64, u64)> {
    let digits = |s: &str| s.bytes().take_while(u8::is_ascii_digit).count();
    let text = text.trim_start();
    let done_len = digits(text);
    let done = text[..done_len].parse().ok()?;
    let rest = text[done_len..].trim_start().strip_prefix('/')?.trim_start();
    let total = rest[..digits(rest)].parse().ok()?;
    Some((done, total))
}

/// Parses /proc/mdstat as procfs's `parseMDStat` does; the error is the 1-based line
/// and what was wrong.
fn parse_mdstat(
    text: &str,
    lines: &mut Vec<Range<usize>>,
    arrays: &mut Vec<MdStat>,
) -> Result<(), (usize, String)> {
    let base = text.as_ptr() as usize;
    lines.clear();
    lines.extend(text.split('\n').map(|line| {
        let start = line.as_ptr() as usize - base;
        start..start + line.len()
    }));
    let line_at = |n: usize| lines.get(n).map_or("", |range| &text[range.clone()]);
    for index in 0..lines.len() {
        let line = line_at(index);
        if line.trim().is_empty()
            || line.starts_with([' ', '\t'])
            || line.starts_with("unused")
            || line.starts_with("Personalities")
        {
            continue;
        }
        let error = |what: String| (index + 1, what);
        let mut fields = line.split_ascii_whitespace();
        let (Some(name), Some(_), Some(state)) = (fields.next(), fields.next(), fields.next())
        else {
            return Err(error(format!("expected an array line (3+ fields), got {line:?}")));
        };
        if lines.len() <= index + 3 {
            return Err(error(format!("too few lines for md device {name:?}")));
        }
        let next = |n: usize| line_at(index + n);
        let (active, total, blocks) = status_line(line, next(1))
            .map_err(|what| (index + 2, format!("{name}: {what}")))?;
        let sync_index = if next(2).contains("bitmap") { 3 } else { 2 };
        let sync = next(sync_index);
        let mut state = match state {
            "active" => State::Active,
            "inactive" => State::Inactive,
            _ => State::Other,
        };
        let mut synced = blocks;
        let recovering = sync.contains("recovery");
        let reshaping = sync.contains("reshape");
        let resyncing = sync.contains("resync");
        let checking = sync.contains("check");
        if recovering || reshaping || resyncing || checking {
            state = if recovering {
                State::Recovering
            } else if reshaping {
                State::Reshaping
            } else if checking {
                State::Checking
            } else {
                State::Resyncing
            };
            synced = if sync.contains("PENDING") || sync.contains("DELAYED") {
                0
            } else {
                recovery_line(sync)
                    .map_err(|what| (index + 1 + sync_index, format!("{name}: {what}")))?
            };
        }
        components(line).map_err(|what| error(format!("{name}: {what}")))?;
        let start = name.as_ptr() as usize - base;
        arrays.push(MdStat {
            name: start..start + name.len(),
            state,
            active,
            total,
            failed: line.matches("(F)").count() as i64,
            spare: line.matches("(S)").count() as i64,
            blocks,
            synced,
        });
    }
    Ok(())
}

/// procfs's `evalStatusLine`: (active, total, blocks).
fn status_line(array: &str, status: &str) -> Result<(i64, i64, i64), String> {
    let first = status.split_ascii_whitespace().next().unwrap_or_default();
    let blocks: i64 = first
        .parse()
        .map_err(|_| format!("expected the number of blocks, got {status:?}"))?;
    if array.contains("raid0") || array.contains("linear") {
        let disks = array.matches('[').count() as i64;
        return Ok((disks, disks, blocks));
    }
    if array.contains("inactive") {
        return Ok((0, 0, blocks));
    }
    let (total, active) = disk_counts(status)
        .ok_or_else(|| format!("expected \"<n> blocks ... [<total>/<active>] [U_]\", got {status:?}"))?;
    Ok((active, total, blocks))
}

/// The `[total/active]` of `(\d+) blocks .*\[(\d+)/(\d+)\] \[([U_]+)\]`, as Go's
/// regexp finds it: after the first `<digits> blocks `, the last `[n/m] [U_...]`.
fn disk_counts(status: &str) -> Option<(i64, i64)> {
    let bytes = status.as_bytes();
    let after = status
        .match_indices(" blocks ")
        .find(|(at, _)| *at > 0 && bytes[at - 1].is_ascii_digit())
        .map(|(at, pattern)| at + pattern.len())?;
    let rest = &status[after..];
    (0..rest.len()).rev().find_map(|at| counts_at(&rest[at..]))
}

/// `[<total>/<active>] [<U or _>...]` at the start of `text`.
fn counts_at(text: &str) -> Option<(i64, i64)> {
    let digits = |s: &str| s.bytes().take_while(u8::is_ascii_digit).count();
    let rest = text.strip_prefix('[')?;
    let total_len = digits(rest);
    let total = rest.get(..total_len).filter(|d| !d.is_empty())?;
    let rest = rest[total_len..].strip_prefix('/')?;
    let active_len = digits(rest);
    let active = rest.get(..active_len).filter(|d| !d.is_empty())?;
    let rest = rest[active_len..].strip_prefix("] [")?;
    let flags = rest.bytes().take_while(|b| matches!(b, b'U' | b'_')).count();
    if flags == 0 || !rest[flags..].starts_with(']') {
        return None;
    }
    Some((total.parse().ok()?, active.parse().ok()?))
}

/// procfs's `evalRecoveryLine`: the blocks done; the line must also have the
/// percentage, the finish time and the speed procfs parses.
fn recovery_line(line: &str) -> Result<i64, String> {
    let problem = |what: &str| format!("sync line {line:?}: {what}");
    // \((\d+/\d+)\)
    let blocks = line
        .match_indices('(')
        .find_map(|(at, _)| {
            let rest = &line[at + 1..];
            let end = rest.find(')')?;
            let (done, total) = rest[..end].split_once('/')?;
            let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
            (digits(done) && digits(total)).then_some((done, total))
        })
        .ok_or_else(|| problem("no (done/total)"))?;
    let done: i64 = blocks.0.parse().map_err(|_| problem("blocks done out of range"))?;
    let _: i64 = blocks.1.parse().map_err(|_| problem("blocks to do out of range"))?;
    // = (.+)%  /  finish=(.+)min  /  speed=(.+)[A-Z]: the greedy group runs to the
    // last terminator after the first opener.
    let group = |open: &str, close: fn(&str) -> Option<usize>| {
        let start = line.find(open)? + open.len();
        let end = close(&line[start..])?;
        Some(&line[start..start + end])
    };
    let float = |text: Option<&str>, what: &str| {
        text.and_then(parse_float).ok_or_else(|| problem(what))
    };
    float(
        group("= ", |s| s.rfind('%').filter(|&at| at > 0)).map(str::trim),
        "no percentage",
    )?;
    float(
        group("finish=", |s| s.rfind("min").filter(|&at| at > 0)),
        "no finish=<minutes>min",
    )?;
    float(
        group("speed=", |s| s.rfind(|c: char| c.is_ascii_uppercase()).filter(|&at| at > 0)),
        "no speed=<number>",
    )?;
    Ok(done)
}

/// procfs's `evalComponentDevices` check: a component index (`sda1[<index>]`) must fit
/// in 32 bits.
fn components(line: &str) -> Result<(), String> {
    for field in line.split_ascii_whitespace().skip(3) {
        // (.*)\[(\d+)\]: the last bracketed number of the field.
        let index = field.match_indices('[').rev().find_map(|(at, _)| {
            let rest = &field[at + 1..];
            let len = rest.bytes().take_while(u8::is_ascii_digit).count();
            (len > 0 && rest[len..].starts_with(']')).then(|| &rest[..len])
        });
        if let Some(index) = index {
            if index.parse::<i32>().is_err() {
                return Err(format!("component index out of range in {field:?}"));
            }
        }
    }
    Ok(())
}

impl Build for Mdadm {
    type Options = NoOptions;

    const SOURCES: &'static [&'static str] = &[
        "proc/mdstat",
        "sys/block/md0/md/raid_disks",
        "sys/block/md0/md/level",
        "sys/block/md1/md/degraded",
        "sys/block/md1/md/sync_completed",
    ];

    fn build(context: &Context<'_>, _options: &NoOptions) -> Self {
        Mdadm::new(&context.paths.procfs, &context.paths.sysfs)
    }
}

impl Collector for Mdadm {
    fn collect(&mut self, out: &mut Batch) -> Result<(), CollectError> {
        self.read_mdstat()?;
        self.read_sysfs()?;
        self.write(out);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{render, TempDir};

    const MIRROR: &str = "Personalities : [raid1]\n\
        md0 : active raid1 sdb1[1](F) sda1[0]\n      \
        976630464 blocks super 1.2 [2/1] [U_]\n      \
        bitmap: 2/8 pages [8KB], 65536KB chunk\n\n\
        unused devices: <none>\n";

    fn parse(text: &str) -> Result<Vec<MdStat>, (usize, String)> {
        let mut arrays = Vec::new();
        parse_mdstat(text, &mut Vec::new(), &mut arrays).map(|()| arrays)
    }

    /// (name, state, active, total, failed, spare, blocks, synced) of each array.
    fn summary(text: &str) -> Vec<(&str, State, [i64; 6])> {
        parse(text)
            .unwrap()
            .iter()
            .map(|a| {
                let counts = [a.active, a.total, a.failed, a.spare, a.blocks, a.synced];
                (&text[a.name.clone()], a.state, counts)
            })
            .collect()
    }

    fn series(text: &str) -> Vec<&str> {
        text.lines().filter(|l| !l.starts_with('#')).collect()
    }

    #[test]
    fn parses_every_state_procfs_knows() {
        let text = "Personalities : [raid1] [raid6] [raid0] [linear]\n\
            md6 : active raid1 sdb2[2](F) sdc[1](S) sda2[0]\n      \
            195310144 blocks [2/1] [U_]\n      \
            [=>...................]  recovery =  8.5% (16775552/195310144) finish=17.0min speed=259783K/sec\n\n\
            md9 : active raid1 sdc2[2] sdd2[3]\n      \
            523968 blocks super 1.2 [2/2] [UU]\n      \
            \tresync=DELAYED\n\n\
            md201 : active raid1 sda3[0] sdb3[1]\n      \
            1993728 blocks super 1.2 [2/2] [UU]\n      \
            [=>...................]  check =  5.7% (114176/1993728) finish=0.2min speed=114176K/sec\n\n\
            md5 : active raid5 sdd[3] sdc[1] sdb[0]\n      \
            1000 blocks super 1.2 level 5, 512k chunk, algorithm 2 [3/3] [UUU]\n      \
            [>....................]  reshape =  1.0% (10/1000) finish=9.9min speed=1000K/sec\n\n\
            md4 : inactive raid1 sda3[0](F) sdb3[1](S)\n      \
            4883648 blocks [2/2] [UU]\n\n\
            md120 : active linear sda1[1] sdb1[0]\n      \
            2095104 blocks super 1.2 0k rounding\n\n\
            md3 : broken raid0 sda[0]\n      \
            100 blocks 64k chunks\n\n\
            unused devices: <none>\n";
        assert_eq!(
            summary(text),
            [
                ("md6", State::Recovering, [1, 2, 1, 1, 195310144, 16775552]),
                ("md9", State::Resyncing, [2, 2, 0, 0, 523968, 0]),
                ("md201", State::Checking, [2, 2, 0, 0, 1993728, 114176]),
                ("md5", State::Reshaping, [3, 3, 0, 0, 1000, 10]),
                ("md4", State::Inactive, [0, 0, 1, 1, 4883648, 4883648]),
                ("md120", State::Active, [2, 2, 0, 0, 2095104, 2095104]),
                ("md3", State::Other, [1, 1, 0, 0, 100, 100]),
            ]
        );
    }

    #[test]
    fn status_lines_match_like_procfs_regex() {
        // The last [n/m] [U_] after the first "<digits> blocks ".
        assert_eq!(
            disk_counts("100 blocks [9/9] [U] [4/3] [U_UU] trailing"),
            Some((4, 3))
        );
        assert_eq!(disk_counts("100 blocks [4/3] [U_UU]"), Some((4, 3)));
        assert_eq!(disk_counts("100 blocks[4/3] [UUU]"), None);
        assert_eq!(disk_counts("x blocks [4/3] [UUU]"), None);
        assert_eq!(disk_counts("100 blocks [4/3] [UXU]"), None);
        assert_eq!(disk_counts("100 blocks [4/3] []"), None);
        assert_eq!(disk_counts("100 blocks [/3] [U]"), None);
    }

    #[test]
    fn malformed_lines_are_errors_naming_the_line() {
        for (text, line, message) in [
            ("md0 :\n\n\n\n", 1, "expected an array line"),
            ("md0 : active raid1 sda[0]\n      10 blocks [1/1] [U]\n", 1, "too few lines"),
            ("md0 : active raid1 sda[0]\n      ten blocks [1/1] [U]\n\n\n", 2, "expected the number of blocks"),
            ("md0 : active raid1 sda[0]\n      10 blocks [1/1]\n\n\n", 2, "[<total>/<active>]"),
            (
                "md0 : active raid1 sda[0]\n      10 blocks [1/1] [U]\n      resync = 1% (1/10)\n\n",
                3,
                "no finish=<minutes>min",
            ),
            (
                "md0 : active raid1 sda[0]\n      10 blocks [1/1] [U]\n      recovery = 1.0% finish=1.0min speed=1K/sec\n\n",
                3,
                "no (done/total)",
            ),
            ("md0 : active raid1 sda[99999999999]\n      10 blocks [1/1] [U]\n\n\n", 1, "component index"),
        ] {
            let (at, what) = parse(text).unwrap_err();
            assert_eq!(at, line, "{text:?}: {what}");
            assert!(what.contains(message), "{text:?}: {what}");
        }
        // Indented lines, tabs included, are never array lines.
        assert_eq!(summary(MIRROR).len(), 1);
        assert!(parse("md0 : active raid1 sda[0]\n\t10 blocks [1/1] [U]\n\t\n\n").is_ok());
    }

    fn write_md(dir: &TempDir, name: &str, level: &str, extra: &[(&str, &str)]) {
        for (file, value) in [
            ("level", level),
            ("array_state", "clean"),
            ("metadata_version", "1.2"),
            ("raid_disks", "2"),
            ("uuid", "3b0b5bc1-42a6-f7e6-3f4d-1c9d6ad1ba42"),
            ("dev-sda1/state", "in_sync"),
            ("dev-sdb1/state", "faulty"),
        ]
        .iter()
        .chain(extra)
        {
            dir.write(&format!("sys/block/{name}/md/{file}"), &format!("{value}\n"));
        }
    }

    fn collector(dir: &TempDir) -> Mdadm {
        Mdadm::new(&dir.path().join("proc"), &dir.path().join("sys"))
    }

    #[test]
    fn exports_mdstat_and_sysfs_families() {
        let dir = TempDir::new();
        dir.write("proc/mdstat", MIRROR);
        let redundant = [
            ("degraded", "1"),
            ("sync_action", "idle"),
            ("sync_completed", "none"),
        ];
        write_md(&dir, "md0", "raid1", &redundant);
        write_md(&dir, "md127", "raid0", &[("chunk_size", "524288")]);
        // Block devices named md* without an md directory are not arrays.
        dir.write("sys/block/mdx/size", "0\n");
        let text = render(&mut collector(&dir)).unwrap();
        assert_eq!(
            series(&text),
            [
                "node_md_disks_required{device=\"md0\"} 2",
                "node_md_disks{device=\"md0\",state=\"active\"} 1",
                "node_md_disks{device=\"md0\",state=\"failed\"} 1",
                "node_md_disks{device=\"md0\",state=\"spare\"} 0",
                "node_md_state{device=\"md0\",state=\"active\"} 1",
                "node_md_state{device=\"md0\",state=\"inactive\"} 0",
                "node_md_state{device=\"md0\",state=\"recovering\"} 0",
                "node_md_state{device=\"md0\",state=\"resync\"} 0",
                "node_md_state{device=\"md0\",state=\"check\"} 0",
                "node_md_blocks{device=\"md0\"} 976630464",
                "node_md_blocks_synced{device=\"md0\"} 976630464",
                "node_md_raid_disks{device=\"md0\"} 2",
                "node_md_raid_disks{device=\"md127\"} 2",
                "node_md_degraded{device=\"md0\"} 1",
                "node_md_degraded{device=\"md127\"} 0",
            ]
        );
        assert!(text.contains(
            "# HELP node_md_disks Number of active/failed/spare disks of device.\n\
             # TYPE node_md_disks gauge\n"
        ));
    }

    #[test]
    fn missing_sources_are_no_data_and_bad_values_errors() {
        let dir = TempDir::new();
        assert!(render(&mut collector(&dir)).unwrap_err().is_no_data());
        // mdstat without any sysfs: fine, as a glob that finds nothing.
        dir.write("proc/mdstat", MIRROR);
        assert!(render(&mut collector(&dir)).is_ok());
        // A raid1 without its degraded file: ENOENT, so no data.
        write_md(&dir, "md0", "raid1", &[("sync_action", "idle"), ("sync_completed", "none")]);
        let err = render(&mut collector(&dir)).unwrap_err();
        assert!(err.is_no_data() && err.to_string().contains("md0/md/degraded"), "{err}");
        dir.write("sys/block/md0/md/degraded", "one\n");
        let err = render(&mut collector(&dir)).unwrap_err().to_string();
        assert!(
            err.ends_with("md0/md/degraded line 1: expected a whole number, got \"one\""),
            "{err}"
        );
        dir.write("sys/block/md0/md/degraded", "0\n");
        dir.write("sys/block/md0/md/sync_completed", "half\n");
        let err = render(&mut collector(&dir)).unwrap_err().to_string();
        assert!(err.contains("md0/md/sync_completed line 1"), "{err}");
        dir.write("sys/block/md0/md/sync_completed", "1/4\n");
        assert!(render(&mut collector(&dir)).is_ok());
    }

    #[test]
    fn sync_completed_reads_like_go_sscanf() {
        assert_eq!(sync_fraction("49059 / 65408"), Some((49059, 65408)));
        assert_eq!(sync_fraction("1/4"), Some((1, 4)));
        assert_eq!(sync_fraction("1 /4 delayed"), Some((1, 4)));
        assert_eq!(sync_fraction("none"), None);
        assert_eq!(sync_fraction("1 of 4"), None);
        assert_eq!(sync_fraction("-1 / 4"), None);
    }

    #[test]
    fn an_array_listed_twice_is_reported_once_and_arrays_come_and_go() {
        let dir = TempDir::new();
        let twice = MIRROR.replace("unused", &MIRROR["Personalities : [raid1]\n".len()..]);
        dir.write("proc/mdstat", &twice);
        let mut collector = collector(&dir);
        let text = render(&mut collector).unwrap();
        assert_eq!(text.matches("node_md_blocks{").count(), 1, "{text}");
        dir.write("proc/mdstat", "Personalities : \nunused devices: <none>\n");
        let text = render(&mut collector).unwrap();
        assert_eq!(series(&text), Vec::<&str>::new());
    }
}

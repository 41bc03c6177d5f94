//! `node_selinux_*`: whether SELinux is enabled, its configured and current modes, and
//! the access vector cache statistics, as node_exporter 1.12 reports them.
//!
//! node_exporter asks the go-selinux library, which finds selinuxfs by its mount and
//! reads /etc/selinux/config whatever `--path.*` say. Here the same files are read
//! under the configured paths:
//! - enabled: `<sysfs>/fs/selinux/enforce` exists (selinuxfs is mounted) and
//!   `<procfs>/self/attr/current` is not `kernel` (no policy loaded). Disabled: only
//!   `node_selinux_enabled 0`, success 1, at the cost of one failed open;
//! - `node_selinux_config_mode`: `SELINUX=` in `<rootfs>/etc/selinux/config`, as
//!   go-selinux reads it (the first such line, quotes trimmed; `#` and `;` lines are
//!   comments): 1 enforcing, 0 permissive, -1 anything else or no file;
//! - `node_selinux_current_mode`: the integer in `enforce` (-1 if it is not one; the
//!   kernel writes it without a newline, and like go-selinux one is not allowed);
//! - from `<sysfs>/fs/selinux/avc/`: `cache_stats` (a header, then per CPU six
//!   numbers, summed: lookups, hits, misses, allocations, reclaims, frees, counters),
//!   `hash_stats` (`entries: N`, `buckets used: N/M`, `longest chain: N`, gauges) and
//!   `cache_threshold`. Numbers are read as Go's `ParseUint(s, 0, 64)` reads them (a
//!   leading 0 is octal). A malformed one fails the collector with its file and line.
//!
//! Differences from node_exporter: go-selinux also calls SELinux disabled when
//! selinuxfs is mounted read-only, which systemd's `ProtectKernelTunables=` does to
//! /sys, so node_exporter in such a unit reports 0 on an enforcing host; here the
//! mount flags are not looked at. Where node_exporter would crash (a `hash_stats`
//! without `buckets used: N/M`), this collector fails with a parse error, and what it
//! wrote before a failure is rolled back, where node_exporter keeps it. node_exporter
//! 1.5 has only the three mode families, not the AVC statistics.

use super::{parse_go_uint, parse_uint, read_file, read_optional_file, read_value, Build, CollectError, Collector, Context};
use crate::batch::{Batch, Kind};
use crate::config::collectors::NoOptions;
use std::io;
use std::path::{Path, PathBuf};

pub struct Selinux {
    enforce: PathBuf,
    current: PathBuf,
    config: PathBuf,
    cache_stats: PathBuf,
    hash_stats: PathBuf,
    cache_threshold: PathBuf,
    buf: String,
}

impl Selinux {
    pub fn new(procfs: &Path, sysfs: &Path, rootfs: &Path) -> Self {
        let selinuxfs = sysfs.join("fs/selinux");
        Selinux {
            enforce: selinuxfs.join("enforce"),
            current: procfs.join("self/attr/current"),
            config: rootfs.join("etc/selinux/config"),
            cache_stats: selinuxfs.join("avc/cache_stats"),
            hash_stats: selinuxfs.join("avc/hash_stats"),
            cache_threshold: selinuxfs.join("avc/cache_threshold"),
            buf: String::new(),
        }
    }

    /// The current mode, `None` when selinuxfs is not mounted or no policy is loaded.
    fn current_mode(&mut self) -> Result<Option<i64>, CollectError> {
        let mode = match read_optional_file(&self.enforce, &mut self.buf) {
            Ok(true) => go_atoi(&self.buf).unwrap_or(-1),
            Ok(false) => return Ok(None),
            // go-selinux: unreadable means -1, not disabled.
            Err(_) => -1,
        };
        let label = read_value(&self.current, &mut self.buf).unwrap_or_default();
        Ok((label.trim_end_matches('\0') != "kernel").then_some(mode))
    }

    /// `SELINUX=` of the config file, as go-selinux's `DefaultEnforceMode`.
    fn config_mode(&mut self) -> i64 {
        if !read_optional_file(&self.config, &mut self.buf).unwrap_or(false) {
            return -1;
        }
        let value = self
            .buf
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with(['#', ';']))
            .find_map(|l| l.split_once('=').filter(|(key, _)| *key == "SELINUX"))
            .map(|(_, value)| value.trim_matches('"'));
        match value {
            Some("enforcing") => 1,
            Some("permissive") => 0,
            _ => -1,
        }
    }
}

/// Go's `strconv.Atoi`: an optional sign, decimal digits, nothing else.
fn go_atoi(text: &str) -> Option<i64> {
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.strip_prefix('+').unwrap_or(text).parse().ok()
}

/// The six figures of `cache_stats`, summed over its CPU lines.
fn cache_stats(path: &Path, text: &str) -> Result<[u64; 6], CollectError> {
    const NAMES: [&str; 6] = ["lookups", "hits", "misses", "allocations", "reclaims", "frees"];
    let mut sums = [0u64; 6];
    for (index, line) in text.lines().enumerate().skip(1) {
        let error = |what: String| CollectError::parse(path, index + 1, what);
        // node_exporter takes the runs of digits of the line (`\d+`): six of them.
        let mut runs = line.split(|c: char| !c.is_ascii_digit()).filter(|r| !r.is_empty());
        let mut figures = [0u64; 6];
        for (figure, name) in figures.iter_mut().zip(NAMES) {
            let run = runs
                .next()
                .ok_or_else(|| error(format!("expected 6 numbers, got {line:?}")))?;
            *figure = parse_go_uint(run)
                .ok_or_else(|| error(format!("{name}: expected an integer, got {run:?}")))?;
        }
        if runs.next().is_some() {
            return Err(error(format!("expected 6 numbers, got {line:?}")));
        }
        for (sum, figure) in sums.iter_mut().zip(figures) {
            *sum = sum.wrapping_add(figure);
        }
    }
    Ok(sums)
}

/// `hash_stats`: entries, buckets used, buckets available, longest chain.
fn hash_stats(path: &Path, text: &str) -> Result<[u64; 4], CollectError> {
    let mut lines = text.lines();
    let mut line = || lines.next().unwrap_or_default();
    let (entries, buckets, chain) = (line(), line(), line());
    let entries = entries.strip_prefix("entries: ").unwrap_or(entries);
    let chain = chain.strip_prefix("longest chain: ").unwrap_or(chain);
    let (used, available) = buckets
        .split("buckets used: ")
        .nth(1)
        .and_then(|counts| {
            let mut parts = counts.split('/');
            Some((parts.next()?, parts.next()?))
        })
        .ok_or_else(|| {
            CollectError::parse(path, 2, format!("expected `buckets used: N/M`, got {buckets:?}"))
        })?;
    let mut figures = [0u64; 4];
    for ((figure, (what, text)), line) in figures
        .iter_mut()
        .zip([("entries", entries), ("buckets used", used), ("buckets available", available), ("longest chain", chain)])
        .zip([1, 2, 2, 3])
    {
        *figure = parse_go_uint(text).ok_or_else(|| {
            CollectError::parse(path, line, format!("{what}: expected an integer, got {text:?}"))
        })?;
    }
    Ok(figures)
}

impl Build for Selinux {
    type Options = NoOptions;

    const SOURCES: &'static [&'static str] = &[
        "sys/fs/selinux/enforce",
        "sys/fs/selinux/avc/cache_stats",
        "sys/fs/selinux/avc/hash_stats",
        "sys/fs/selinux/avc/cache_threshold",
        "root/etc/selinux/config",
        "proc/self/attr/current",
    ];

    fn build(context: &Context<'_>, _options: &NoOptions) -> Self {
        let paths = context.paths;
        Selinux::new(&paths.procfs, &paths.sysfs, &paths.rootfs)
    }
}

impl Collector for Selinux {
    fn collect(&mut self, out: &mut Batch) -> Result<(), CollectError> {
        let gauge = |out: &mut Batch, name: &str, help: &str, value: f64| {
            out.family(name, help, Kind::Gauge).sample(&[], value);
        };
        let Some(current_mode) = self.current_mode()? else {
            gauge(out, "node_selinux_enabled", "SELinux is enabled, 1 is true, 0 is false", 0.0);
            return Ok(());
        };
        let config_mode = self.config_mode();
        read_file(&self.cache_stats, &mut self.buf)?;
        let [lookups, hits, misses, allocations, reclaims, frees] = cache_stats(&self.cache_stats, &self.buf)?;
        read_file(&self.hash_stats, &mut self.buf)?;
        let [entries, used, available, chain] = hash_stats(&self.hash_stats, &self.buf)?;
        let threshold = read_value(&self.cache_threshold, &mut self.buf)
            .map_err(|e: io::Error| CollectError::io(&self.cache_threshold, &e))?;
        let threshold = parse_uint(&self.cache_threshold, threshold)?;
        gauge(out, "node_selinux_enabled", "SELinux is enabled, 1 is true, 0 is false", 1.0);
        gauge(out, "node_selinux_config_mode", "Configured SELinux enforcement mode", config_mode as f64);
        gauge(out, "node_selinux_current_mode", "Current SELinux enforcement mode", current_mode as f64);
        for (name, help, value) in [
            ("node_selinux_avc_lookups_total", "SELinux AVC lookups", lookups),
            ("node_selinux_avc_hits_total", "SELinux AVC hits", hits),
            ("node_selinux_avc_misses_total", "SELinux AVC misses", misses),
            ("node_selinux_avc_allocations_total", "SELinux AVC allocations", allocations),
            ("node_selinux_avc_reclaims_total", "SELinux AVC reclaims", reclaims),
            ("node_selinux_avc_frees_total", "SELinux AVC frees", frees),
        ] {
            out.family(name, help, Kind::Counter).sample(&[], value as f64);
        }
        for (name, help, value) in [
            ("node_selinux_avc_hash_entries", "SELinux AVC hash entries", entries),
            ("node_selinux_avc_hash_buckets_available", "SELinux AVC hash buckets available", available),
            ("node_selinux_avc_hash_buckets_used", "SELinux AVC hash buckets used", used),
            ("node_selinux_avc_hash_longest_chain", "SELinux AVC hash longest chain", chain),
            ("node_selinux_avc_threshold", "SELinux AVC threshold", threshold),
        ] {
            gauge(out, name, help, value as f64);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{render, TempDir};

    fn samples(text: &str) -> Vec<&str> {
        text.lines().filter(|l| !l.starts_with('#')).collect()
    }

    fn enabled(dir: &TempDir) {
        dir.write("sys/fs/selinux/enforce", "1");
        dir.write("proc/self/attr/current", "system_u:system_r:node_exporter_t:s0\0");
        dir.write("root/etc/selinux/config", "# comment\nSELINUX = permissive\n; x\nSELINUX=\"enforcing\"\nSELINUX=permissive\n");
        dir.write("sys/fs/selinux/avc/cache_stats", "lookups hits misses allocations reclaims frees\n10 9 1 1 0 0\n010 16 0 0 0 0\n");
        dir.write("sys/fs/selinux/avc/hash_stats", "entries: 503\nbuckets used: 242/512\nlongest chain: 8\n");
        dir.write("sys/fs/selinux/avc/cache_threshold", "512\n");
    }

    fn selinux(dir: &TempDir) -> Selinux {
        Selinux::new(&dir.path().join("proc"), &dir.path().join("sys"), &dir.path().join("root"))
    }

    #[test]
    fn disabled_is_one_series() {
        let dir = TempDir::new();
        assert_eq!(
            render(&mut selinux(&dir)).unwrap(),
            "# HELP node_selinux_enabled SELinux is enabled, 1 is true, 0 is false\n\
             # TYPE node_selinux_enabled gauge\nnode_selinux_enabled 0\n"
        );
        // selinuxfs mounted, but no policy loaded.
        enabled(&dir);
        dir.write("proc/self/attr/current", "kernel\0");
        assert_eq!(samples(&render(&mut selinux(&dir)).unwrap()), ["node_selinux_enabled 0"]);
    }

    #[test]
    fn enabled_reports_modes_and_the_avc() {
        let dir = TempDir::new();
        enabled(&dir);
        let mut collector = selinux(&dir);
        for _ in 0..2 {
            let text = render(&mut collector).unwrap();
            assert!(text.contains("# TYPE node_selinux_avc_hits_total counter\n"), "{text}");
            assert_eq!(
                samples(&text),
                [
                    "node_selinux_enabled 1",
                    "node_selinux_config_mode 1",
                    "node_selinux_current_mode 1",
                    "node_selinux_avc_lookups_total 18",
                    "node_selinux_avc_hits_total 25",
                    "node_selinux_avc_misses_total 1",
                    "node_selinux_avc_allocations_total 1",
                    "node_selinux_avc_reclaims_total 0",
                    "node_selinux_avc_frees_total 0",
                    "node_selinux_avc_hash_entries 503",
                    "node_selinux_avc_hash_buckets_available 512",
                    "node_selinux_avc_hash_buckets_used 242",
                    "node_selinux_avc_hash_longest_chain 8",
                    "node_selinux_avc_threshold 512",
                ]
            );
        }
    }

    #[test]
    fn modes_as_go_selinux_reads_them() {
        let dir = TempDir::new();
        enabled(&dir);
        for (enforce, config, current_mode, config_mode) in [
            ("0", "SELINUX=permissive\n", "0", "0"),
            ("1\n", "SELINUX=disabled\n", "-1", "-1"),
            ("+1", "SELINUX='enforcing'\n", "1", "-1"),
            ("x", "", "-1", "-1"),
        ] {
            dir.write("sys/fs/selinux/enforce", enforce);
            dir.write("root/etc/selinux/config", config);
            let text = render(&mut selinux(&dir)).unwrap();
            assert!(text.contains(&format!("node_selinux_current_mode {current_mode}\n")), "{enforce:?}: {text}");
            assert!(text.contains(&format!("node_selinux_config_mode {config_mode}\n")), "{config:?}: {text}");
        }
        std::fs::remove_file(dir.path().join("root/etc/selinux/config")).unwrap();
        assert!(render(&mut selinux(&dir)).unwrap().contains("node_selinux_config_mode -1\n"));
    }

    #[test]
    fn malformed_avc_files_name_the_file_and_line() {
        let dir = TempDir::new();
        for (file, text, what) in [
            ("cache_stats", "header\n1 2 3 4 5\n", "cache_stats line 2: expected 6 numbers, got \"1 2 3 4 5\""),
            ("cache_stats", "header\n1 2 3 4 5 6 7\n", "cache_stats line 2: expected 6 numbers, got \"1 2 3 4 5 6 7\""),
            ("cache_stats", "header\n1 2 3 4 5 09\n", "cache_stats line 2: frees: expected an integer, got \"09\""),
            ("hash_stats", "entries: 1\nbuckets: 2\n", "hash_stats line 2: expected `buckets used: N/M`, got \"buckets: 2\""),
            ("hash_stats", "entries: 1\nbuckets used: 2\n", "hash_stats line 2: expected `buckets used: N/M`, got \"buckets used: 2\""),
            ("hash_stats", "entries: x\nbuckets used: 2/3\nlongest chain: 1\n", "hash_stats line 1: entries: expected an integer, got \"x\""),
            ("hash_stats", "entries: 1\nbuckets used: 2/3\n", "hash_stats line 3: longest chain: expected an integer, got \"\""),
            ("cache_threshold", "-1\n", "cache_threshold line 1: expected an unsigned integer, got \"-1\""),
        ] {
            enabled(&dir);
            dir.write(&format!("sys/fs/selinux/avc/{file}"), text);
            let err = render(&mut selinux(&dir)).unwrap_err();
            assert!(err.to_string().ends_with(what), "{text:?}: {err}");
        }
        enabled(&dir);
        std::fs::remove_file(dir.path().join("sys/fs/selinux/avc/hash_stats")).unwrap();
        assert!(render(&mut selinux(&dir)).is_err());
    }

    #[test]
    fn atoi_as_go() {
        for (text, value) in [("1", Some(1)), ("+1", Some(1)), ("-1", Some(-1)), ("1\n", None), ("", None), ("+", None), ("0x1", None)] {
            assert_eq!(go_atoi(text), value, "{text:?}");
        }
    }
}

//! `node_sockstat_*` from /proc/net/sockstat and /proc/net/sockstat6.
//!
//! Each line is `PROTO: key value key value ...`, for example
//! `TCP: inuse 5 orphan 0 tw 1 alloc 5 mem 89`. As node_exporter 1.12 (through
//! procfs' `NetSockstat`, unchanged since 1.5) does:
//! - `sockets: used N` of the IPv4 file becomes `node_sockstat_sockets_used`;
//! - every other line becomes `node_sockstat_<PROTO>_<key>` for the keys `inuse`
//!   (always, 0 when absent), `orphan`, `tw`, `alloc`, `mem`, `memory` (when
//!   present); other keys are ignored;
//! - `mem` is in pages, so it is also exported as `<PROTO>_mem_bytes`, times the page
//!   size; `memory` (FRAG) is already in bytes and is not;
//! - all are gauges, with HELP `Number of <PROTO> sockets in state <key>.`;
//! - either file may be missing (a kernel without IPv4 or IPv6): it is skipped and
//!   the collector still succeeds;
//! - a malformed line (fewer than one pair, an odd field count, a value that is not a
//!   whole number) fails the collector.

use super::{Build, CollectError, Collector, Context, Seen, read_optional_file, sysconf};
use crate::config::collectors::NoOptions;
use crate::batch::{Batch, Kind};
use std::path::{Path, PathBuf};

/// The keys node_exporter exports, in its order; `used` is for the `sockets` line.
const KEYS: [&str; 7] = ["inuse", "orphan", "tw", "alloc", "mem", "memory", "used"];
const INUSE: usize = 0;
const MEM: usize = 4;
const USED: usize = 6;

pub struct Sockstat {
    paths: [PathBuf; 2],
    page_size: u64,
    buf: String,
    /// A protocol listed twice (in either file) is reported once, the first time.
    seen: Seen,
}

impl Sockstat {
    pub fn new(procfs: &Path) -> Self {
        Sockstat::with_page_size(procfs, sysconf::page_size())
    }

    pub fn with_page_size(procfs: &Path, page_size: u64) -> Self {
        let net = procfs.join("net");
        Sockstat {
            paths: [net.join("sockstat"), net.join("sockstat6")],
            page_size,
            buf: String::new(),
            seen: Seen::default(),
        }
    }
}

/// One parsed line: the protocol and the value of each of [`KEYS`] it has.
struct Line<'a> {
    protocol: &'a str,
    values: [Option<i64>; KEYS.len()],
}

fn parse_line(line: &str) -> Result<Line<'_>, String> {
    let mut fields = line.split_ascii_whitespace();
    let first = fields.next().unwrap_or_default();
    let protocol = first.strip_suffix(':').unwrap_or(first);
    let valid = !protocol.is_empty()
        && protocol
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !valid {
        return Err(format!("expected `PROTO: key value ...`, got {line:?}"));
    }
    let mut values = [None; KEYS.len()];
    let mut pairs = 0;
    while let Some(key) = fields.next() {
        let value = fields
            .next()
            .ok_or_else(|| format!("odd number of fields in key/value pairs: {line:?}"))?;
        let value: i64 = value
            .parse()
            .map_err(|_| format!("{protocol} {key}: expected a whole number, got {value:?}"))?;
        if let Some(slot) = KEYS.iter().position(|k| *k == key) {
            values[slot] = Some(value);
        }
        pairs += 1;
    }
    if pairs == 0 {
        return Err(format!("expected `PROTO: key value ...`, got {line:?}"));
    }
    Ok(Line { protocol, values })
}

fn write_gauge(out: &mut Batch, protocol: &str, key: &str, value: f64) {
    out.family(
        format_args!("node_sockstat_{protocol}_{key}"),
        format_args!("Number of {protocol} sockets in state {key}."),
        Kind::Gauge,
    )
    .sample(&[], value);
}

/// Writes the families of one line; `ipv6` for the lines of sockstat6.
fn write_line(out: &mut Batch, line: &Line<'_>, ipv6: bool, page_size: u64) {
    if line.protocol == "sockets" {
        if !ipv6 {
            out.family(
                "node_sockstat_sockets_used",
                "Number of IPv4 sockets in use.",
                Kind::Gauge,
            )
            .sample(&[], line.values[USED].unwrap_or(0) as f64);
        }
        return;
    }
    for (slot, key) in KEYS.iter().enumerate().take(USED) {
        let value = match line.values[slot] {
            None if slot == INUSE => Some(0),
            value => value,
        };
        if let Some(value) = value {
            write_gauge(out, line.protocol, key, value as f64);
        }
    }
    if let Some(pages) = line.values[MEM] {
        let bytes = pages as f64 * page_size as f64;
        write_gauge(out, line.protocol, "mem_bytes", bytes);
    }
}

impl Build for Sockstat {
    type Options = NoOptions;

    const SOURCES: &'static [&'static str] = &["proc/net/sockstat", "proc/net/sockstat6"];

    fn build(context: &Context<'_>, _options: &NoOptions) -> Self {
        Sockstat::new(&context.paths.procfs)
    }
}

impl Collector for Sockstat {
    fn collect(&mut self, out: &mut Batch) -> Result<(), CollectError> {
        let Sockstat {
            paths,
            page_size,
            buf,
            seen,
        } = self;
        seen.clear();
        for (ipv6, path) in [false, true].into_iter().zip(paths.iter()) {
            if !read_optional_file(path, buf)? {
                log::debug!("{} does not exist, skipping it", path.display());
                continue;
            }
            for (index, text) in buf.lines().enumerate() {
                if text.trim().is_empty() {
                    continue;
                }
                let line = parse_line(text).map_err(|e| CollectError::parse(path, index + 1, e))?;
                if seen.first(line.protocol) {
                    write_line(out, &line, ipv6, *page_size);
                }
            }
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

    #[test]
    fn a_protocol_listed_twice_is_reported_once() {
        let dir = TempDir::new();
        dir.write(
            "net/sockstat",
            "sockets: used 1\nTCP: inuse 5\nTCP: inuse 6\nsockets: used 2\n",
        );
        dir.write("net/sockstat6", "TCP: inuse 7\n");
        let text = render(&mut Sockstat::with_page_size(dir.path(), 4096)).unwrap();
        assert_eq!(
            samples(&text),
            ["node_sockstat_sockets_used 1", "node_sockstat_TCP_inuse 5"]
        );
    }

    #[test]
    fn names_and_help_like_node_exporter() {
        let dir = TempDir::new();
        dir.write(
            "net/sockstat",
            "sockets: used 17\nTCP: inuse 5 orphan 0 tw 1 alloc 5 mem 89\nUDP: inuse 0 mem 0\n\
             UDPLITE: inuse 0\nRAW: inuse 0\nFRAG: inuse 0 memory 0\n",
        );
        dir.write(
            "net/sockstat6",
            "TCP6: inuse 2\nUDP6: inuse 1\nUDPLITE6: inuse 0\nRAW6: inuse 0\nFRAG6: inuse 0 memory 0\n",
        );
        let text = render(&mut Sockstat::with_page_size(dir.path(), 4096)).unwrap();
        assert!(text.starts_with(
            "# HELP node_sockstat_sockets_used Number of IPv4 sockets in use.\n\
             # TYPE node_sockstat_sockets_used gauge\nnode_sockstat_sockets_used 17\n\
             # HELP node_sockstat_TCP_inuse Number of TCP sockets in state inuse.\n\
             # TYPE node_sockstat_TCP_inuse gauge\n"
        ));
        assert!(text.contains(
            "# HELP node_sockstat_TCP_mem_bytes Number of TCP sockets in state mem_bytes.\n"
        ));
        assert_eq!(
            samples(&text),
            [
                "node_sockstat_sockets_used 17",
                "node_sockstat_TCP_inuse 5",
                "node_sockstat_TCP_orphan 0",
                "node_sockstat_TCP_tw 1",
                "node_sockstat_TCP_alloc 5",
                "node_sockstat_TCP_mem 89",
                "node_sockstat_TCP_mem_bytes 364544",
                "node_sockstat_UDP_inuse 0",
                "node_sockstat_UDP_mem 0",
                "node_sockstat_UDP_mem_bytes 0",
                "node_sockstat_UDPLITE_inuse 0",
                "node_sockstat_RAW_inuse 0",
                "node_sockstat_FRAG_inuse 0",
                "node_sockstat_FRAG_memory 0",
                "node_sockstat_TCP6_inuse 2",
                "node_sockstat_UDP6_inuse 1",
                "node_sockstat_UDPLITE6_inuse 0",
                "node_sockstat_RAW6_inuse 0",
                "node_sockstat_FRAG6_inuse 0",
                "node_sockstat_FRAG6_memory 0",
            ]
        );
    }

    #[test]
    fn unknown_keys_are_ignored_and_inuse_defaults_to_zero() {
        let dir = TempDir::new();
        dir.write("net/sockstat", "sockets: other 3\nNEW: pressure 1 mem 2\n");
        dir.write("net/sockstat6", "sockets: used 9\n");
        let text = render(&mut Sockstat::with_page_size(dir.path(), 65536)).unwrap();
        assert_eq!(
            samples(&text),
            [
                "node_sockstat_sockets_used 0",
                "node_sockstat_NEW_inuse 0",
                "node_sockstat_NEW_mem 2",
                "node_sockstat_NEW_mem_bytes 131072",
            ]
        );
    }

    #[test]
    fn missing_files_are_skipped() {
        let dir = TempDir::new();
        let mut sockstat = Sockstat::with_page_size(dir.path(), 4096);
        assert_eq!(render(&mut sockstat).unwrap(), "");
        dir.write("net/sockstat6", "TCP6: inuse 2\n");
        assert_eq!(
            samples(&render(&mut sockstat).unwrap()),
            ["node_sockstat_TCP6_inuse 2"]
        );
        std::fs::remove_file(dir.path().join("net/sockstat6")).unwrap();
        assert_eq!(render(&mut sockstat).unwrap(), "");
    }

    #[test]
    fn huge_values_do_not_overflow() {
        let dir = TempDir::new();
        dir.write("net/sockstat", &format!("TCP: inuse 1 mem {}\n", i64::MAX));
        let text = render(&mut Sockstat::with_page_size(dir.path(), 4096)).unwrap();
        assert!(
            text.contains("node_sockstat_TCP_mem 9223372036854776000\n"),
            "{text}"
        );
        assert!(
            text.contains("node_sockstat_TCP_mem_bytes 3.777893186295716e22\n"),
            "{text}"
        );
    }

    #[test]
    fn malformed_lines_name_file_and_line() {
        let dir = TempDir::new();
        dir.write("net/sockstat", "sockets: used 1\nTCP: inuse\n");
        let err = render(&mut Sockstat::with_page_size(dir.path(), 4096)).unwrap_err();
        assert!(
            err.to_string().ends_with(
                "net/sockstat line 2: odd number of fields in key/value pairs: \"TCP: inuse\""
            ),
            "{err}"
        );
        for bad in [
            "TCP:\n",
            "TCP: inuse x\n",
            "TCP: inuse 1.5\n",
            ": inuse 1\n",
            "T-CP: inuse 1\n",
            "TCP: inuse 99999999999999999999\n",
        ] {
            dir.write("net/sockstat", bad);
            assert!(
                render(&mut Sockstat::with_page_size(dir.path(), 4096)).is_err(),
                "{bad:?}"
            );
        }
        // A bad IPv6 file fails the whole collector, as in node_exporter.
        dir.write("net/sockstat", "TCP: inuse 1\n");
        dir.write("net/sockstat6", "TCP6 inuse\n");
        assert!(render(&mut Sockstat::with_page_size(dir.path(), 4096)).is_err());
    }
}

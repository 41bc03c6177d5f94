//! `node_nfs_*` from /proc/net/rpc/nfs, the kernel's NFS client statistics, as
//! node_exporter 1.12's nfs collector exports them (the same families as 1.5).
//!
//! The file has five lines: `net <netcnt> <udpcnt> <tcpcnt> <tcpconn>`,
//! `rpc <calls> <retrans> <authrefresh>`, and per protocol version
//! `procN <count> <count values>`, one per procedure. Families, all counters:
//! `node_nfs_packets_total{protocol="udp"|"tcp"}`, `node_nfs_connections_total`,
//! `node_nfs_rpcs_total`, `node_nfs_rpc_retransmissions_total`,
//! `node_nfs_rpc_authentication_refreshes_total` and
//! `node_nfs_requests_total{proto="2"|"3"|"4",method}`, one series per procedure
//! procfs names (18 for v2, 22 for v3, 59 for v4; [`V2`], [`V3`], [`V4`]).
//!
//! Parsed as procfs parses it (`ClientRPCStats`), and so failing the collector on:
//! a line of fewer than two fields, a value that is not a whole number, a line other
//! than these five, a `net` line without 4 values or `rpc` without 3, a `procN` line
//! whose count is not the number of values after it, v2 with fewer than 18 or v3
//! with fewer than 22 procedures. Procedures past procfs's lists are ignored; a v4
//! line with fewer than 59 (older kernels) reports the missing ones as 0, and so
//! does a missing line: every series is always exported.
//!
//! No NFS client (the `nfs` module not loaded, so no /proc/net/rpc/nfs):
//! node_exporter returns `ErrNoData`, success 0 with a debug log line only;
//! [`CollectError::no_data`] here. The one failed open a cycle costs nothing.

use super::{read_optional_file, Build, CollectError, Collector, Context};
use crate::batch::{Batch, Kind};
use crate::config::collectors::NoOptions;
use std::path::{Path, PathBuf};

/// The v2 procedures, as procfs's `V2Stats` names them, in the kernel's order.
pub const V2: [&str; 18] = [
    "Null", "GetAttr", "SetAttr", "Root", "Lookup", "ReadLink", "Read", "WrCache", "Write",
    "Create", "Remove", "Rename", "Link", "SymLink", "MkDir", "RmDir", "ReadDir", "FsStat",
];

/// The v3 procedures, as procfs's `V3Stats` names them, in the kernel's order.
pub const V3: [&str; 22] = [
    "Null", "GetAttr", "SetAttr", "Lookup", "Access", "ReadLink", "Read", "Write", "Create",
    "MkDir", "SymLink", "MkNod", "Remove", "RmDir", "Rename", "Link", "ReadDir", "ReadDirPlus",
    "FsStat", "FsInfo", "PathConf", "Commit",
];

/// The v4 client procedures, as procfs's `ClientV4Stats` names them, in the order of
/// the values it maps them from.
pub const V4: [&str; 59] = [
    "Null", "Read", "Write", "Commit", "Open", "OpenConfirm", "OpenNoattr", "OpenDowngrade",
    "Close", "Setattr", "FsInfo", "Renew", "SetClientID", "SetClientIDConfirm", "Lock", "Lockt",
    "Locku", "Access", "Getattr", "Lookup", "LookupRoot", "Remove", "Rename", "Link", "Symlink",
    "Create", "Pathconf", "StatFs", "ReadLink", "ReadDir", "ServerCaps", "DelegReturn", "GetACL",
    "SetACL", "FsLocations", "ReleaseLockowner", "Secinfo", "FsidPresent", "ExchangeID",
    "CreateSession", "DestroySession", "Sequence", "GetLeaseTime", "ReclaimComplete",
    "LayoutGet", "GetDeviceInfo", "LayoutCommit", "LayoutReturn", "SecinfoNoName", "TestStateID",
    "FreeStateID", "GetDeviceList", "BindConnToSession", "DestroyClientID", "Seek", "Allocate",
    "DeAllocate", "LayoutStats", "Clone",
];

/// One protocol version: its line, its `proto` label, its procedures, and the fewest
/// procedures procfs accepts on its line (`None`: any number, padded with zeros).
struct Version {
    line: &'static str,
    proto: &'static str,
    methods: &'static [&'static str],
    at_least: Option<usize>,
}

const VERSIONS: [Version; 3] = [
    Version {
        line: "proc2",
        proto: "2",
        methods: &V2,
        at_least: Some(V2.len()),
    },
    Version {
        line: "proc3",
        proto: "3",
        methods: &V3,
        at_least: Some(V3.len()),
    },
    Version {
        line: "proc4",
        proto: "4",
        methods: &V4,
        at_least: None,
    },
];

/// What one cycle read; zero for what the file does not have.
struct Stats {
    /// `net`: packets, udp packets, tcp packets, tcp connections.
    net: [u64; 4],
    /// `rpc`: calls, retransmissions, authentication refreshes.
    rpc: [u64; 3],
    proc2: [u64; V2.len()],
    proc3: [u64; V3.len()],
    proc4: [u64; V4.len()],
}

impl Stats {
    const ZERO: Stats = Stats {
        net: [0; 4],
        rpc: [0; 3],
        proc2: [0; V2.len()],
        proc3: [0; V3.len()],
        proc4: [0; V4.len()],
    };

    fn procedures(&self, version: usize) -> &[u64] {
        match version {
            0 => &self.proc2,
            1 => &self.proc3,
            _ => &self.proc4,
        }
    }

    fn procedures_mut(&mut self, version: usize) -> &mut [u64] {
        match version {
            0 => &mut self.proc2,
            1 => &mut self.proc3,
            _ => &mut self.proc4,
        }
    }

    /// Parses one line into its place; the error says what is wrong with it.
    fn parse_line(&mut self, line: &str) -> Result<(), String> {
        let mut fields = line.split_ascii_whitespace();
        let name = fields.next().unwrap_or_default();
        // Every value must parse before the line is looked at, as in procfs.
        let mut count = 0;
        for value in fields.clone() {
            value
                .parse::<u64>()
                .map_err(|_| format!("{name}: expected a whole number, got {value:?}"))?;
            count += 1;
        }
        if count == 0 {
            return Err(format!("expected `<name> <values>...`, got {line:?}"));
        }
        let mut values = fields.map(|value| value.parse::<u64>().unwrap_or_default());
        let slots: &mut [u64] = match name {
            "net" | "rpc" => {
                let slots: &mut [u64] = if name == "net" {
                    &mut self.net
                } else {
                    &mut self.rpc
                };
                if count != slots.len() {
                    return Err(format!("{name}: expected {} values, got {count}", slots.len()));
                }
                slots
            }
            _ => {
                let at = VERSIONS
                    .iter()
                    .position(|v| v.line == name)
                    .ok_or_else(|| format!("unknown line {name:?}"))?;
                let declared = values.next().unwrap_or_default();
                let listed = count - 1;
                if declared != listed as u64 {
                    return Err(format!("{name}: says {declared} procedures, lists {listed}"));
                }
                if let Some(at_least) = VERSIONS[at].at_least.filter(|n| listed < *n) {
                    return Err(format!(
                        "{name}: expected at least {at_least} procedures, got {listed}"
                    ));
                }
                let slots = self.procedures_mut(at);
                slots.fill(0);
                slots
            }
        };
        for (slot, value) in slots.iter_mut().zip(values) {
            *slot = value;
        }
        Ok(())
    }
}

pub struct Nfs {
    path: PathBuf,
    buf: String,
    stats: Stats,
}

impl Nfs {
    pub fn new(procfs: &Path) -> Self {
        Nfs {
            path: procfs.join("net/rpc/nfs"),
            buf: String::new(),
            stats: Stats::ZERO,
        }
    }
}

impl Build for Nfs {
    type Options = NoOptions;

    const SOURCES: &'static [&'static str] = &["proc/net/rpc/nfs"];

    fn build(context: &Context<'_>, _options: &NoOptions) -> Self {
        Nfs::new(&context.paths.procfs)
    }
}

impl Collector for Nfs {
    fn collect(&mut self, out: &mut Batch) -> Result<(), CollectError> {
        if !read_optional_file(&self.path, &mut self.buf)? {
            return Err(CollectError::no_data(format!(
                "{} does not exist: no NFS client (the nfs module is not loaded)",
                self.path.display()
            )));
        }
        self.stats = Stats::ZERO;
        for (index, line) in self.buf.lines().enumerate() {
            self.stats
                .parse_line(line)
                .map_err(|e| CollectError::parse(&self.path, index + 1, e))?;
        }
        let stats = &self.stats;
        out.family(
            "node_nfs_packets_total",
            "Total NFSd network packets (sent+received) by protocol type.",
            Kind::Counter,
        )
        .sample(&[("protocol", "udp")], stats.net[1] as f64)
        .sample(&[("protocol", "tcp")], stats.net[2] as f64);
        for (name, help, value) in [
            ("node_nfs_connections_total", "Total number of NFSd TCP connections.", stats.net[3]),
            ("node_nfs_rpcs_total", "Total number of RPCs performed.", stats.rpc[0]),
            (
                "node_nfs_rpc_retransmissions_total",
                "Number of RPC transmissions performed.",
                stats.rpc[1],
            ),
            (
                "node_nfs_rpc_authentication_refreshes_total",
                "Number of RPC authentication refreshes performed.",
                stats.rpc[2],
            ),
        ] {
            out.family(name, help, Kind::Counter).sample(&[], value as f64);
        }
        let mut family = out.family(
            "node_nfs_requests_total",
            "Number of NFS procedures invoked.",
            Kind::Counter,
        );
        for (at, version) in VERSIONS.iter().enumerate() {
            for (method, value) in version.methods.iter().zip(stats.procedures(at)) {
                family.sample(&[("proto", version.proto), ("method", method)], *value as f64);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{render, TempDir};

    /// node_exporter's own fixture (collector/fixtures/proc/net/rpc/nfs).
    const NODE_EXPORTER_FIXTURE: &str = "net 70 70 69 45\nrpc 1218785755 374636 1218815394\n\
        proc2 18 16 57 74 52 71 73 45 86 0 52 83 61 17 53 50 23 70 82\n\
        proc3 22 0 1061909262 48906 4077635 117661341 5 29391916 2570425 2993289 590 0 0 7815 15 1130 0 3983 92385 13332 2 1 23729\n\
        proc4 48 98 51 54 83 85 23 24 1 28 73 68 83 12 84 39 68 59 58 88 29 74 69 96 21 84 15 53 86 54 66 56 97 36 49 32 85 81 11 58 32 67 13 28 35 1 90 26 0\n";

    fn value(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
    }

    #[test]
    fn exports_node_exporters_families() {
        let dir = TempDir::new();
        dir.write("net/rpc/nfs", NODE_EXPORTER_FIXTURE);
        let text = render(&mut Nfs::new(dir.path())).unwrap();
        for (series, expected) in [
            ("node_nfs_packets_total{protocol=\"udp\"}", 70.0),
            ("node_nfs_packets_total{protocol=\"tcp\"}", 69.0),
            ("node_nfs_connections_total", 45.0),
            ("node_nfs_rpcs_total", 1218785755.0),
            ("node_nfs_rpc_retransmissions_total", 374636.0),
            ("node_nfs_rpc_authentication_refreshes_total", 1218815394.0),
            ("node_nfs_requests_total{method=\"Null\",proto=\"2\"}", 16.0),
            ("node_nfs_requests_total{method=\"FsStat\",proto=\"2\"}", 82.0),
            ("node_nfs_requests_total{method=\"GetAttr\",proto=\"3\"}", 1061909262.0),
            ("node_nfs_requests_total{method=\"Commit\",proto=\"3\"}", 23729.0),
            ("node_nfs_requests_total{method=\"Null\",proto=\"4\"}", 98.0),
            ("node_nfs_requests_total{method=\"LayoutGet\",proto=\"4\"}", 1.0),
            ("node_nfs_requests_total{method=\"GetDeviceInfo\",proto=\"4\"}", 90.0),
            ("node_nfs_requests_total{method=\"ReclaimComplete\",proto=\"4\"}", 35.0),
            // Beyond the kernel's 48: padded.
            ("node_nfs_requests_total{method=\"Clone\",proto=\"4\"}", 0.0),
        ] {
            assert_eq!(value(&text, series), Some(expected), "{series}");
        }
        assert_eq!(
            text.matches("node_nfs_requests_total{").count(),
            V2.len() + V3.len() + V4.len()
        );
        assert_eq!(text.matches(" counter\n").count(), 6);
        assert!(text.contains(
            "# HELP node_nfs_packets_total Total NFSd network packets (sent+received) by protocol type.\n"
        ));
    }

    #[test]
    fn a_modern_kernel_without_v2_reports_it_as_zero_and_ignores_extra_v4_procedures() {
        let dir = TempDir::new();
        let proc4: Vec<String> = (1..=70).map(|n| n.to_string()).collect();
        dir.write(
            "net/rpc/nfs",
            &format!(
                "net 0 0 0 0\nrpc 5 0 5\nproc3 22 {}\nproc4 70 {}\n",
                ["1"; 22].join(" "),
                proc4.join(" ")
            ),
        );
        let text = render(&mut Nfs::new(dir.path())).unwrap();
        assert_eq!(value(&text, "node_nfs_requests_total{method=\"Root\",proto=\"2\"}"), Some(0.0));
        assert_eq!(value(&text, "node_nfs_requests_total{method=\"Clone\",proto=\"4\"}"), Some(59.0));
        assert_eq!(text.matches("proto=\"4\"").count(), 59);
    }

    #[test]
    fn no_nfs_client_is_no_data() {
        let dir = TempDir::new();
        let err = render(&mut Nfs::new(dir.path())).unwrap_err();
        assert!(err.is_no_data(), "{err}");
        assert!(err.to_string().contains("net/rpc/nfs does not exist"), "{err}");
    }

    #[test]
    fn malformed_files_name_the_line() {
        let dir = TempDir::new();
        for (bad, message) in [
            ("net 1 2 3\n", "line 1: net: expected 4 values, got 3"),
            ("rpc 1 2 3\nrpc\n", "line 2: expected `<name> <values>...`, got \"rpc\""),
            ("rpc 1 x 3\n", "line 1: rpc: expected a whole number, got \"x\""),
            ("rpc 1 2 3\nrpcbind 1\n", "line 2: unknown line \"rpcbind\""),
            ("proc3 3 1 2\n", "line 1: proc3: says 3 procedures, lists 2"),
            ("proc2 2 1 2\n", "line 1: proc2: expected at least 18 procedures, got 2"),
            ("\n", "line 1: expected `<name> <values>...`, got \"\""),
            ("proc4 -1\n", "line 1: proc4: expected a whole number, got \"-1\""),
        ] {
            dir.write("net/rpc/nfs", bad);
            let err = render(&mut Nfs::new(dir.path())).unwrap_err();
            assert!(!err.is_no_data());
            assert!(err.to_string().ends_with(&format!("net/rpc/nfs {message}")), "{bad:?}: {err}");
        }
    }

    #[test]
    fn the_procedure_lists_are_procfs_s() {
        // procfs's structs, field by field: a typo would rename a series.
        assert_eq!(V2[7], "WrCache");
        assert_eq!(V3[17], "ReadDirPlus");
        // The kernel's NFSPROC4_CLNT_LAYOUTGET comes before GETDEVICEINFO (old procfs
        // releases had them the other way round; node_exporter 1.5 already did not).
        assert_eq!((V4[44], V4[45]), ("LayoutGet", "GetDeviceInfo"));
        for list in [&V2[..], &V3[..], &V4[..]] {
            for (i, a) in list.iter().enumerate() {
                assert!(!list[i + 1..].contains(a), "{a} twice");
            }
        }
    }
}

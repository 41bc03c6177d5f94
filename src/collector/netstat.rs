//! `node_netstat_<Proto>_<Field>` from /proc/net/netstat, /proc/net/snmp and
//! /proc/net/snmp6, for the `<Proto>_<Field>` names matching `fields`
//! (node_exporter's `--collector.netstat.fields`), as node_exporter 1.12 exports them.
//!
//! netstat and snmp come in line pairs, a header of names and a line of values:
//! `Tcp: ActiveOpens PassiveOpens ...` / `Tcp: 34 4 ...`. snmp6 has one
//! `Ip6InOctets 128` a line, the protocol being the name up to its first `6`.
//!
//! The default is node_exporter 1.12's
//! `^(.*_(InErrors|InErrs)|Ip_Forwarding|Ip(6|Ext)_(InOctets|OutOctets)|Icmp6?_(InMsgs|OutMsgs)|TcpExt_(Listen.*|Syncookies.*|TCPSynRetrans|TCPTimeouts|TCPOFOQueue|TCPRcvQDrop)|Tcp_(ActiveOpens|InSegs|OutSegs|OutRsts|PassiveOpens|RetransSegs|CurrEstab)|Udp6?_(InDatagrams|OutDatagrams|NoPorts|RcvbufErrors|SndbufErrors))$`,
//! which runs as code ([`DefaultSet::matches`], checked against the regex in the
//! tests): it runs on some 350 names every cycle, where a regex engine would cost
//! more than reading the files. Another regex replaces the default set.
//!
//! Quirks mirrored: the families are untyped, HELP is `Statistic <Proto><Field>.`;
//! every value must parse as a number, exported or not (node_exporter parses before
//! it filters); netstat and snmp must exist, snmp6 may not (no IPv6); a header and
//! its values line must have the same number of fields.
//!
//! Changed since node_exporter 1.5: the default fields add `TcpExt_TCPOFOQueue`
//! (1.8) and `TcpExt_TCPRcvQDrop` (1.9).
//!
//! Where node_exporter differs: it merges the files into a map, so a protocol block
//! repeated across files would keep the last one; here a name already exported this
//! cycle is skipped (the first wins), so a duplicate can never reach the output.

use super::{Build, CollectError, Collector, Context, Seen, read_file, read_optional_file};
use crate::batch::{Batch, Kind};
use crate::config::collectors;
use crate::config::pattern::{DefaultFields, Fields};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// `collectors.netstat`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Options {
    /// The `<Proto>_<Field>` names to export: `--collector.netstat.fields`.
    pub fields: Fields<DefaultSet>,
}

impl collectors::Options for Options {}

pub struct Netstat {
    netstat: PathBuf,
    snmp: PathBuf,
    snmp6: PathBuf,
    fields: Fields<DefaultSet>,
    buf: String,
    /// `<Proto>_<Field>` of the name being looked at.
    key: String,
    /// The keys exported this cycle.
    seen: Seen,
}

impl Netstat {
    pub fn new(procfs: &Path, options: &Options) -> Self {
        let net = procfs.join("net");
        Netstat {
            netstat: net.join("netstat"),
            snmp: net.join("snmp"),
            snmp6: net.join("snmp6"),
            fields: options.fields.clone(),
            buf: String::new(),
            key: String::new(),
            seen: Seen::default(),
        }
    }
}

/// Names the default pattern lists in full.
const EXACT: [&str; 30] = [
    "Ip_Forwarding",
    "Ip6_InOctets",
    "Ip6_OutOctets",
    "IpExt_InOctets",
    "IpExt_OutOctets",
    "Icmp_InMsgs",
    "Icmp_OutMsgs",
    "Icmp6_InMsgs",
    "Icmp6_OutMsgs",
    "TcpExt_TCPSynRetrans",
    "TcpExt_TCPTimeouts",
    "TcpExt_TCPOFOQueue",
    "TcpExt_TCPRcvQDrop",
    "Tcp_ActiveOpens",
    "Tcp_InSegs",
    "Tcp_OutSegs",
    "Tcp_OutRsts",
    "Tcp_PassiveOpens",
    "Tcp_RetransSegs",
    "Tcp_CurrEstab",
    "Udp_InDatagrams",
    "Udp_OutDatagrams",
    "Udp_NoPorts",
    "Udp_RcvbufErrors",
    "Udp_SndbufErrors",
    "Udp6_InDatagrams",
    "Udp6_OutDatagrams",
    "Udp6_NoPorts",
    "Udp6_RcvbufErrors",
    "Udp6_SndbufErrors",
];

/// Names the default pattern lists by prefix, and by suffix.
const PREFIXES: [&str; 2] = ["TcpExt_Listen", "TcpExt_Syncookies"];
const SUFFIXES: [&str; 2] = ["_InErrors", "_InErrs"];

/// node_exporter 1.12's default `--collector.netstat.fields`.
pub struct DefaultSet;

impl DefaultFields for DefaultSet {
    const REGEX: &'static str = "^(.*_(InErrors|InErrs)|Ip_Forwarding|Ip(6|Ext)_(InOctets|OutOctets)|Icmp6?_(InMsgs|OutMsgs)|TcpExt_(Listen.*|Syncookies.*|TCPSynRetrans|TCPTimeouts|TCPOFOQueue|TCPRcvQDrop)|Tcp_(ActiveOpens|InSegs|OutSegs|OutRsts|PassiveOpens|RetransSegs|CurrEstab)|Udp6?_(InDatagrams|OutDatagrams|NoPorts|RcvbufErrors|SndbufErrors))$";

    /// Whether `key` (`<Proto>_<Field>`) is one of the default set.
    fn matches(key: &str) -> bool {
        EXACT.contains(&key)
            || PREFIXES.iter().any(|p| key.starts_with(p))
            || SUFFIXES.iter().any(|s| key.ends_with(s))
    }
}

fn is_name(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// The kernel writes integers: `inf`, `nan` or `1e400` (which Rust and Go parse as
/// infinite) mean a broken file, not a value to export.
fn parse_value(field: &str, value: &str) -> Result<f64, String> {
    value
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .ok_or_else(|| format!("{field}: expected a number, got {value:?}"))
}

/// Writes the families of one file, given the lines' parsed names and values.
struct Writer<'a> {
    out: &'a mut Batch,
    fields: &'a Fields<DefaultSet>,
    key: &'a mut String,
    seen: &'a mut Seen,
}

impl Writer<'_> {
    fn write(&mut self, protocol: &str, field: &str, value: f64) -> Result<(), String> {
        self.key.clear();
        let _ = write!(self.key, "{protocol}_{field}");
        let key = self.key.as_str();
        if !self.fields.matches(key) {
            return Ok(());
        }
        if !is_name(key) {
            return Err(format!("{key:?} is not a metric name"));
        }
        if !self.seen.first(key) {
            return Ok(());
        }
        self.out
            .family(
                format_args!("node_netstat_{key}"),
                format_args!("Statistic {protocol}{field}."),
                Kind::Untyped,
            )
            .sample(&[], value);
        Ok(())
    }

    /// A netstat or snmp file: pairs of `Proto: names...` and `Proto: values...`.
    fn pairs(&mut self, path: &Path, text: &str) -> Result<(), CollectError> {
        let mut lines = text
            .lines()
            .enumerate()
            .filter(|(_, line)| !line.trim().is_empty());
        while let Some((index, header)) = lines.next() {
            let error = |what: String| CollectError::parse(path, index + 1, what);
            let (_, values) = lines
                .next()
                .ok_or_else(|| error(format!("no values line after {header:?}")))?;
            let mut names = header.split_ascii_whitespace();
            let mut numbers = values.split_ascii_whitespace();
            let label = names.next().unwrap_or_default();
            let protocol = label
                .strip_suffix(':')
                .ok_or_else(|| error(format!("expected `Proto: names...`, got {header:?}")))?;
            if numbers.next() != Some(label) {
                return Err(error(format!(
                    "the next line does not start with {label:?}"
                )));
            }
            if names.clone().count() != numbers.clone().count() {
                return Err(error(format!("{protocol}: field count mismatch")));
            }
            for (field, value) in names.zip(numbers) {
                let value = parse_value(field, value).map_err(error)?;
                self.write(protocol, field, value).map_err(error)?;
            }
        }
        Ok(())
    }

    /// The snmp6 file: `Ip6InOctets 128` lines; lines without a `6` are skipped.
    fn snmp6(&mut self, path: &Path, text: &str) -> Result<(), CollectError> {
        for (index, line) in text.lines().enumerate() {
            let mut fields = line.split_ascii_whitespace();
            let (Some(name), Some(value)) = (fields.next(), fields.next()) else {
                continue;
            };
            let Some(six) = name.find('6') else {
                continue;
            };
            let (protocol, field) = name.split_at(six + 1);
            let error = |what: String| CollectError::parse(path, index + 1, what);
            let value = parse_value(name, value).map_err(error)?;
            self.write(protocol, field, value).map_err(error)?;
        }
        Ok(())
    }
}

impl Build for Netstat {
    type Options = Options;

    const SOURCES: &'static [&'static str] = &["proc/net/netstat", "proc/net/snmp", "proc/net/snmp6"];

    fn build(context: &Context<'_>, options: &Options) -> Self {
        Netstat::new(&context.paths.procfs, options)
    }
}

impl Collector for Netstat {
    fn collect(&mut self, out: &mut Batch) -> Result<(), CollectError> {
        let Netstat {
            netstat,
            snmp,
            snmp6,
            fields,
            buf,
            key,
            seen,
        } = self;
        seen.clear();
        let mut writer = Writer {
            out,
            fields,
            key,
            seen,
        };
        for path in [&*netstat, &*snmp] {
            read_file(path, buf)?;
            writer.pairs(path, buf)?;
        }
        if read_optional_file(snmp6, buf)? {
            writer.snmp6(snmp6, buf)?;
        } else {
            log::debug!("{} does not exist (no IPv6), skipping it", snmp6.display());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Pattern;
    use crate::testing::{render, TempDir};

    const NETSTAT: &str = "TcpExt: SyncookiesSent SyncookiesRecv ListenOverflows ListenDrops TCPTimeouts TCPSynRetrans TCPOFOQueue TCPOFODrop TCPRcvQDrop\n\
        TcpExt: 1 2 3 4 5 6 7 8 9\n\
        IpExt: InNoRoutes InOctets OutOctets InCsumErrors\n\
        IpExt: 0 181756072 602627 9\n";
    const SNMP: &str = "Ip: Forwarding DefaultTTL InReceives InHdrErrors\n\
        Ip: 2 64 8251 1\n\
        Tcp: RtoAlgorithm MaxConn ActiveOpens PassiveOpens InErrs CurrEstab\n\
        Tcp: 1 -1 34 4 0 2\n\
        Udp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors\n\
        Udp: 63 0 0 64 0 0 0\n";
    const SNMP6: &str = "Ip6InReceives                   \t1\n\
        Ip6InOctets                     \t128\n\
        Icmp6InMsgs                     \t1\n\
        Icmp6InErrors                   \t1\n\
        Icmp6OutType133                 \t9\n\
        Udp6NoPorts                     \t0\n\
        UdpLite6InErrors                \t0\n";

    fn samples(text: &str) -> Vec<&str> {
        text.lines().filter(|l| !l.starts_with('#')).collect()
    }

    fn write(dir: &TempDir, netstat: &str, snmp: &str, snmp6: Option<&str>) {
        dir.write("net/netstat", netstat);
        dir.write("net/snmp", snmp);
        match snmp6 {
            Some(text) => drop(dir.write("net/snmp6", text)),
            None => drop(std::fs::remove_file(dir.path().join("net/snmp6"))),
        }
    }

    #[test]
    fn infinite_and_nan_values_are_malformed() {
        let dir = TempDir::new();
        for bad in ["inf", "-inf", "NaN", "infinity", "1e400"] {
            let netstat = NETSTAT.replace("TcpExt: 1 2", &format!("TcpExt: {bad} 2"));
            write(&dir, &netstat, SNMP, Some(SNMP6));
            let err = render(&mut Netstat::new(dir.path(), &Options::default()))
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("SyncookiesSent: expected a number"),
                "{bad}: {err}"
            );
        }
        let snmp6 = SNMP6.replace("\t128", "\tnan");
        write(&dir, NETSTAT, SNMP, Some(&snmp6));
        assert!(render(&mut Netstat::new(dir.path(), &Options::default())).is_err());
    }

    #[test]
    fn exports_the_default_fields_untyped() {
        let dir = TempDir::new();
        write(&dir, NETSTAT, SNMP, Some(SNMP6));
        let text = render(&mut Netstat::new(dir.path(), &Options::default())).unwrap();
        assert!(text.starts_with(
            "# HELP node_netstat_TcpExt_SyncookiesSent Statistic TcpExtSyncookiesSent.\n\
             # TYPE node_netstat_TcpExt_SyncookiesSent untyped\n"
        ));
        assert!(text.contains("# HELP node_netstat_Ip6_InOctets Statistic Ip6InOctets.\n"));
        assert_eq!(
            samples(&text),
            [
                "node_netstat_TcpExt_SyncookiesSent 1",
                "node_netstat_TcpExt_SyncookiesRecv 2",
                "node_netstat_TcpExt_ListenOverflows 3",
                "node_netstat_TcpExt_ListenDrops 4",
                "node_netstat_TcpExt_TCPTimeouts 5",
                "node_netstat_TcpExt_TCPSynRetrans 6",
                "node_netstat_TcpExt_TCPOFOQueue 7",
                "node_netstat_TcpExt_TCPRcvQDrop 9",
                "node_netstat_IpExt_InOctets 181756072",
                "node_netstat_IpExt_OutOctets 602627",
                "node_netstat_Ip_Forwarding 2",
                "node_netstat_Tcp_ActiveOpens 34",
                "node_netstat_Tcp_PassiveOpens 4",
                "node_netstat_Tcp_InErrs 0",
                "node_netstat_Tcp_CurrEstab 2",
                "node_netstat_Udp_InDatagrams 63",
                "node_netstat_Udp_NoPorts 0",
                "node_netstat_Udp_InErrors 0",
                "node_netstat_Udp_OutDatagrams 64",
                "node_netstat_Udp_RcvbufErrors 0",
                "node_netstat_Udp_SndbufErrors 0",
                "node_netstat_Ip6_InOctets 128",
                "node_netstat_Icmp6_InMsgs 1",
                "node_netstat_Icmp6_InErrors 1",
                "node_netstat_Udp6_NoPorts 0",
                "node_netstat_UdpLite6_InErrors 0",
            ]
        );
    }

    #[test]
    fn field_filter_is_node_exporters_regex() {
        let regex = Pattern::new(DefaultSet::REGEX)
        .unwrap();
        let mut keys: Vec<String> = [
            "X_InErrors",
            "_InErrs",
            "InErrors",
            "Ip_InErrorsX",
            "A_B_InErrs",
            "Ip6_Forwarding",
            "Ip_ForwardingX",
            "TcpExt_Listen",
            "TcpExt_ListenX",
            "TcpExt_Syncookies",
            "TcpExt_TCPOFOQueueX",
            "TcpExt_TCPOFODrop",
            "TcpExtX_Listen",
            "Tcp_CurrEstabX",
            "Udp6_InErrors",
            "UdpLite_InDatagrams",
            "Udp6_RcvbufErrors",
            "Udp6_InCsumErrors",
            "Icmp6_OutMsgs",
            "Icmp6_OutErrors",
            "IcmpMsg_InType3",
            "MPTcpExt_MPCapableSYNRX",
            "Ip_InOctets",
            "IpExt_InOctets",
        ]
        .map(String::from)
        .into();
        keys.extend(EXACT.iter().map(|k| k.to_string()));
        // Every name this machine's kernel has, when it has the files.
        for file in ["/proc/net/netstat", "/proc/net/snmp"] {
            let text = std::fs::read_to_string(file).unwrap_or_default();
            for line in text.lines().step_by(2) {
                let mut names = line.split_ascii_whitespace();
                let protocol = names.next().unwrap_or_default().trim_end_matches(':');
                keys.extend(names.map(|n| format!("{protocol}_{n}")));
            }
        }
        let snmp6 = std::fs::read_to_string("/proc/net/snmp6").unwrap_or_default();
        for name in snmp6.lines().filter_map(|l| l.split_whitespace().next()) {
            if let Some(six) = name.find('6') {
                keys.push(format!("{}_{}", &name[..=six], &name[six + 1..]));
            }
        }
        for key in &keys {
            assert_eq!(DefaultSet::matches(key), regex.is_match(key), "{key:?}");
        }
    }

    #[test]
    fn another_fields_regex_replaces_the_default_set() {
        let dir = TempDir::new();
        write(&dir, NETSTAT, SNMP, Some(SNMP6));
        let options: Options = serde_yaml::from_str("fields: ^(Ip_|Icmp6_Out)\n").unwrap();
        let text = render(&mut Netstat::new(dir.path(), &options)).unwrap();
        assert_eq!(
            samples(&text),
            [
                "node_netstat_Ip_Forwarding 2",
                "node_netstat_Ip_DefaultTTL 64",
                "node_netstat_Ip_InReceives 8251",
                "node_netstat_Ip_InHdrErrors 1",
                "node_netstat_Icmp6_OutType133 9",
            ]
        );
        assert!(text.contains("# HELP node_netstat_Ip_DefaultTTL Statistic IpDefaultTTL.\n"));
        // An empty regex, as `--collector.netstat.fields=`, exports every name.
        let options: Options = serde_yaml::from_str("fields: ''\n").unwrap();
        let text = render(&mut Netstat::new(dir.path(), &options)).unwrap();
        assert_eq!(samples(&text).len(), 9 + 4 + 4 + 6 + 7 + 7);
    }

    #[test]
    fn snmp6_may_be_missing() {
        let dir = TempDir::new();
        write(&dir, NETSTAT, SNMP, None);
        let text = render(&mut Netstat::new(dir.path(), &Options::default())).unwrap();
        assert!(!text.contains("Ip6"), "{text}");
        assert!(text.contains("node_netstat_Tcp_CurrEstab 2\n"), "{text}");
    }

    #[test]
    fn netstat_and_snmp_are_required() {
        let dir = TempDir::new();
        dir.write("net/snmp", SNMP);
        let err = render(&mut Netstat::new(dir.path(), &Options::default())).unwrap_err();
        assert!(err.to_string().contains("net/netstat: "), "{err}");
        std::fs::remove_file(dir.path().join("net/snmp")).unwrap();
        dir.write("net/netstat", NETSTAT);
        let err = render(&mut Netstat::new(dir.path(), &Options::default())).unwrap_err();
        assert!(err.to_string().contains("net/snmp: "), "{err}");
    }

    #[test]
    fn every_value_must_parse_even_unexported_ones() {
        let dir = TempDir::new();
        write(
            &dir,
            NETSTAT,
            "Ip: Forwarding DefaultTTL\nIp: 2 lots\n",
            None,
        );
        let err = render(&mut Netstat::new(dir.path(), &Options::default())).unwrap_err();
        assert!(
            err.to_string()
                .ends_with("net/snmp line 1: DefaultTTL: expected a number, got \"lots\""),
            "{err}"
        );
        write(&dir, NETSTAT, SNMP, Some("Ip6InReceives x\n"));
        let err = render(&mut Netstat::new(dir.path(), &Options::default())).unwrap_err();
        assert!(
            err.to_string()
                .ends_with("net/snmp6 line 1: Ip6InReceives: expected a number, got \"x\""),
            "{err}"
        );
    }

    #[test]
    fn malformed_pairs_are_parse_errors() {
        let dir = TempDir::new();
        for (bad, message) in [
            (
                "Ip: Forwarding\n",
                "line 1: no values line after \"Ip: Forwarding\"",
            ),
            (
                "Ip: Forwarding DefaultTTL\nIp: 2\n",
                "line 1: Ip: field count mismatch",
            ),
            (
                "Ip Forwarding\nIp 2\n",
                "line 1: expected `Proto: names...`, got \"Ip Forwarding\"",
            ),
            (
                "Ip: Forwarding\nTcp: 2\n",
                "line 1: the next line does not start with \"Ip:\"",
            ),
            (
                "Ip: A-B_InErrors\nIp: 2\n",
                "line 1: \"Ip_A-B_InErrors\" is not a metric name",
            ),
        ] {
            write(&dir, NETSTAT, bad, None);
            let err = render(&mut Netstat::new(dir.path(), &Options::default())).unwrap_err();
            assert!(err.to_string().ends_with(message), "{bad:?}: {err}");
        }
    }

    #[test]
    fn huge_negative_and_repeated_values() {
        let dir = TempDir::new();
        write(
            &dir,
            "IpExt: InOctets OutOctets\nIpExt: 18446744073709551615 -1\n",
            "Ip: Forwarding\nIp: 1\nIp: Forwarding\nIp: 2\n",
            Some("Udp6InErrors 3\nUdp6InErrors 4\nshort\nNoSix 1\n"),
        );
        let mut netstat = Netstat::new(dir.path(), &Options::default());
        for _ in 0..2 {
            let text = render(&mut netstat).unwrap();
            assert_eq!(
                samples(&text),
                [
                    "node_netstat_IpExt_InOctets 18446744073709552000",
                    "node_netstat_IpExt_OutOctets -1",
                    "node_netstat_Ip_Forwarding 1",
                    "node_netstat_Udp6_InErrors 3",
                ]
            );
        }
    }
}

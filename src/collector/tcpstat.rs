//! `node_tcp_connection_states{state}`: how many TCP sockets are in each state, and
//! the bytes queued in all of them (`state="rx_queued_bytes"`, `"tx_queued_bytes"`),
//! as node_exporter 1.12's tcpstat collector reports them (off by default there and
//! here; unchanged since 1.4, when it moved from /proc/net/tcp to netlink).
//!
//! node_exporter asks the kernel for one `SOCK_DIAG_BY_FAMILY` dump of IPv4 and,
//! when `<procfs>/net/tcp6` exists (its test for IPv6), one of IPv6, and sums
//! them. Each dump walks the kernel's whole table of connections (262,144 buckets
//! on this VM), whatever the family, so here one `TCPDIAG_GETSOCK` dump (the
//! original request, still in every kernel) answers for both at once, over the
//! agent's shared sock_diag socket, and the IPv6 sockets are counted when
//! node_exporter would count them; a kernel that refuses it gets the two dumps.
//! Both ask for the states `TCP_ESTABLISHED` to `TCP_CLOSING`, as node_exporter
//! does. A state is
//! reported when some socket is in it; the queues are the sums of every socket's
//! `idiag_rqueue` and `idiag_wqueue` (for a listener, its accept queue and its
//! backlog, as node_exporter sums them), reported when there is any socket at all:
//! a namespace without TCP sockets gives no series, as node_exporter's empty map
//! does. A state the kernel should not send (outside 1 to 11) is counted as
//! `unknown`, node_exporter's name for it.
//!
//! There is no file mode, as node_exporter has none: without a sock_diag socket (a
//! sandbox without `AF_NETLINK`) the collector fails. Differences besides the one
//! dump: node_exporter also asks for `INET_DIAG_INFO` (a 232-byte `tcp_info` per
//! socket) and reads none of it; here it is not asked for. States come in their
//! numeric order, then the two queues (node_exporter's order is its map's, random).

use super::{Build, CollectError, Collector, Context};
use crate::batch::{Batch, Kind};
use crate::config::collectors::NoOptions;
use crate::netlink::inet_diag::{Counts, IpFamily, Scope, TcpStates, STATE_SLOTS};
use crate::netlink::{Error, Netlink, Protocol};
use nix::errno::Errno;
use std::path::{Path, PathBuf};

/// node_exporter's names of the TCP states, `TCP_ESTABLISHED` (1) first.
const STATES: [&str; 11] = [
    "established",
    "syn_sent",
    "syn_recv",
    "fin_wait1",
    "fin_wait2",
    "time_wait",
    "close",
    "close_wait",
    "last_ack",
    "listen",
    "closing",
];

pub struct Tcpstat {
    /// `<procfs>/net/tcp6`: whether to count IPv6 sockets too.
    tcp6: PathBuf,
    netlink: Netlink,
    /// The one dump of both versions; `None` once the kernel refused it.
    both: Option<TcpStates>,
    /// The dumps of one version each, where it was refused.
    v4: TcpStates,
    v6: TcpStates,
}

impl Tcpstat {
    pub fn new(procfs: &Path, netlink: Netlink) -> Self {
        Tcpstat {
            tcp6: procfs.join("net/tcp6"),
            netlink,
            both: Some(TcpStates::new(Scope::Both)),
            v4: TcpStates::new(Scope::Only(IpFamily::V4)),
            v6: TcpStates::new(Scope::Only(IpFamily::V6)),
        }
    }

    /// This cycle's counts of IPv4 and, with `ipv6`, IPv6 sockets.
    fn read(&mut self, ipv6: bool) -> Result<[Counts; 2], Error> {
        if let Some(both) = &mut self.both {
            match self.netlink.dump(Protocol::SockDiag, both) {
                Ok(()) => return Ok([both.ipv4, if ipv6 { both.ipv6 } else { Counts::default() }]),
                Err(Error::Refused { errno, .. })
                    if matches!(errno, Errno::EOPNOTSUPP | Errno::EINVAL | Errno::ENOENT) =>
                {
                    log::info!("tcpstat: no TCPDIAG_GETSOCK ({errno}); one dump per IP version");
                    self.both = None;
                }
                Err(e) => return Err(e),
            }
        }
        self.netlink.dump(Protocol::SockDiag, &mut self.v4)?;
        if !ipv6 {
            return Ok([self.v4.ipv4, Counts::default()]);
        }
        self.netlink.dump(Protocol::SockDiag, &mut self.v6)?;
        Ok([self.v4.ipv4, self.v6.ipv6])
    }
}

/// The sums over both versions: sockets per state (`STATES`, then unknown) and
/// the two queues; `None` when there is no socket at all.
fn sum(versions: &[Counts; 2]) -> Option<Sums> {
    let mut sums = Sums::default();
    let mut sockets = 0u64;
    for counts in versions {
        for (state, count) in counts.sockets.iter().enumerate().take(STATE_SLOTS) {
            let slot = match state {
                1..=11 => state - 1,
                _ => STATES.len(),
            };
            if let Some(sum) = sums.states.get_mut(slot) {
                *sum = sum.saturating_add(*count);
            }
            sockets = sockets.saturating_add(*count);
        }
        sums.rx = sums.rx.saturating_add(counts.rqueue);
        sums.tx = sums.tx.saturating_add(counts.wqueue);
    }
    (sockets > 0).then_some(sums)
}

#[derive(Default)]
struct Sums {
    states: [u64; STATES.len() + 1],
    rx: u64,
    tx: u64,
}

impl Build for Tcpstat {
    type Options = NoOptions;

    // It reads the kernel; of the files, only whether net/tcp6 exists.
    const SOURCES: &'static [&'static str] = &[];

    fn build(context: &Context<'_>, _options: &NoOptions) -> Self {
        Tcpstat::new(&context.paths.procfs, context.resources.netlink.clone())
    }
}

impl Collector for Tcpstat {
    fn collect(&mut self, out: &mut Batch) -> Result<(), CollectError> {
        let ipv6 = self.tcp6.exists();
        let Some(sums) = sum(&self.read(ipv6)?) else {
            return Ok(());
        };
        let mut family = out.family(
            "node_tcp_connection_states",
            "Number of connection states.",
            Kind::Gauge,
        );
        let names = STATES.iter().copied().chain(["unknown"]);
        for (count, state) in sums.states.iter().zip(names) {
            if *count > 0 {
                family.sample(&[("state", state)], *count as f64);
            }
        }
        family.sample(&[("state", "rx_queued_bytes")], sums.rx as f64);
        family.sample(&[("state", "tx_queued_bytes")], sums.tx as f64);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netlink::wire::build;
    use crate::testing::{render, TempDir};

    /// TCP in a namespace with a listener on 127.0.0.1:7000 (backlog 5) and one
    /// connection to it whose 5 bytes the server had not read, and a listener on
    /// [::1]:7001 (backlog 5): both versions in one answer, and each alone
    /// (src/netlink/fixtures/README).
    const TCP: &[u8] = include_bytes!("../netlink/fixtures/tcp.bin");
    const TCP4: &[u8] = include_bytes!("../netlink/fixtures/tcp4.bin");
    const TCP6: &[u8] = include_bytes!("../netlink/fixtures/tcp6.bin");

    /// Answers the dump of both versions with `both` (the kernel refuses it when
    /// empty), and the dumps of one version with `v4` and `v6` (by byte 16 of the
    /// request, the first of `inet_diag_req_v2`).
    fn recorded(both: &'static [u8], v4: &'static [u8], v6: &'static [u8]) -> Netlink {
        let answer = |bytes: &'static [u8]| Some(bytes).filter(|b| !b.is_empty());
        Netlink::replaying(
            move |name, request| match (name, request.get(16).copied()) {
                ("TCPDIAG_GETSOCK", _) => answer(both),
                (_, Some(2)) => answer(v4),
                (_, Some(10)) => answer(v6),
                _ => None,
            },
        )
    }

    fn tcpstat(procfs: &Path, netlink: Netlink) -> Tcpstat {
        Tcpstat::new(procfs, netlink)
    }

    #[test]
    fn counts_both_versions_from_one_dump_when_there_is_ipv6() {
        let dir = TempDir::new();
        dir.write("net/tcp6", "");
        // The dumps of one version are not answered: the one of both must do.
        let text = render(&mut tcpstat(dir.path(), recorded(TCP, &[], &[]))).unwrap();
        // The listeners' backlogs (5 each) are their wqueue; the unread 5 bytes.
        assert_eq!(
            text,
            "# HELP node_tcp_connection_states Number of connection states.\n\
             # TYPE node_tcp_connection_states gauge\n\
             node_tcp_connection_states{state=\"established\"} 2\n\
             node_tcp_connection_states{state=\"listen\"} 2\n\
             node_tcp_connection_states{state=\"rx_queued_bytes\"} 5\n\
             node_tcp_connection_states{state=\"tx_queued_bytes\"} 10\n"
        );
    }

    #[test]
    fn a_kernel_without_the_old_request_gets_one_dump_per_version() {
        let dir = TempDir::new();
        dir.write("net/tcp6", "");
        let mut collector = tcpstat(dir.path(), recorded(&[], TCP4, TCP6));
        let per_version = render(&mut collector).unwrap();
        assert!(collector.both.is_none(), "not asked again");
        let one = render(&mut tcpstat(dir.path(), recorded(TCP, &[], &[]))).unwrap();
        assert_eq!(per_version, one);
    }

    #[test]
    fn without_net_tcp6_only_ipv4_is_counted() {
        let dir = TempDir::new();
        for netlink in [recorded(TCP, &[], &[]), recorded(&[], TCP4, &[])] {
            let text = render(&mut tcpstat(dir.path(), netlink)).unwrap();
            assert!(text.contains("{state=\"listen\"} 1\n"), "{text}");
            assert!(text.contains("{state=\"established\"} 2\n"), "{text}");
            assert!(text.contains("{state=\"tx_queued_bytes\"} 5\n"), "{text}");
        }
    }

    /// An answer of hand-built `inet_diag_msg`s: (state, rqueue, wqueue) each.
    fn answer(sockets: &[(u8, u32, u32)]) -> &'static [u8] {
        let mut bytes = Vec::new();
        for &(state, rqueue, wqueue) in sockets {
            let mut msg = vec![2u8, state, 0, 0]; // AF_INET
            msg.extend([0u8; 52]);
            msg.extend(rqueue.to_ne_bytes());
            msg.extend(wqueue.to_ne_bytes());
            msg.extend([0u8; 8]);
            bytes.extend(build::message(18, 2, 1, &msg)); // TCPDIAG_GETSOCK
        }
        bytes.extend(build::done(2, 1));
        Box::leak(bytes.into_boxed_slice())
    }

    #[test]
    fn every_state_has_node_exporters_name_and_strays_are_unknown() {
        let dir = TempDir::new();
        let mut sockets: Vec<(u8, u32, u32)> = (1..=11).map(|s| (s, 1, 2)).collect();
        sockets.extend([(12, 0, 0), (13, 0, 0), (0, 0, 0)]);
        let mut collector = tcpstat(dir.path(), recorded(answer(&sockets), &[], &[]));
        let text = render(&mut collector).unwrap();
        let states: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("node_tcp_connection_states{state=\""))
            .collect();
        assert_eq!(
            states,
            [
                "established\"} 1",
                "syn_sent\"} 1",
                "syn_recv\"} 1",
                "fin_wait1\"} 1",
                "fin_wait2\"} 1",
                "time_wait\"} 1",
                "close\"} 1",
                "close_wait\"} 1",
                "last_ack\"} 1",
                "listen\"} 1",
                "closing\"} 1",
                "unknown\"} 3",
                "rx_queued_bytes\"} 11",
                "tx_queued_bytes\"} 22",
            ]
        );
    }

    #[test]
    fn no_socket_no_series_and_huge_queues_keep_their_magnitude() {
        let dir = TempDir::new();
        let empty = answer(&[]);
        let text = render(&mut tcpstat(dir.path(), recorded(empty, &[], &[]))).unwrap();
        assert_eq!(text, "");
        let full = answer(&[(1, u32::MAX, u32::MAX), (1, u32::MAX, 0)]);
        let text = render(&mut tcpstat(dir.path(), recorded(full, &[], &[]))).unwrap();
        let rx = 2.0 * f64::from(u32::MAX);
        assert!(
            text.contains(&format!("{{state=\"rx_queued_bytes\"}} {rx}\n")),
            "{text}"
        );
    }

    #[test]
    fn a_refused_or_malformed_answer_fails_the_collector() {
        let dir = TempDir::new();
        let err = render(&mut tcpstat(dir.path(), Netlink::unavailable())).unwrap_err();
        assert_eq!(
            err.to_string(),
            "netlink socket(NETLINK_SOCK_DIAG): EAFNOSUPPORT: Address family not supported by protocol"
        );
        let mut short = build::message(18, 2, 1, &[2, 1, 0, 0]);
        short.extend(build::done(2, 1));
        let short: &'static [u8] = Box::leak(short.into_boxed_slice());
        let err = render(&mut tcpstat(dir.path(), recorded(short, &[], &[]))).unwrap_err();
        assert!(
            err.to_string().contains("shorter than its 72-byte header"),
            "{err}"
        );
        // Where one dump per version is needed, the IPv6 one failing fails the
        // collector too.
        dir.write("net/tcp6", "");
        let err = render(&mut tcpstat(dir.path(), recorded(&[], TCP4, &[]))).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("netlink SOCK_DIAG_BY_FAMILY: the kernel answered EOPNOTSUPP"),
            "{err}"
        );
    }
}

//! netdev, netclass and arp read the kernel over netlink by default and from /proc
//! and /sys with `netlink: false`: on the real kernel both must print the same
//! series.
//!
//! The test makes a network namespace (`ip netns add`) holding devices of many
//! kinds: veth pairs up and down, a set MTU, an alias with spaces around it, an
//! address set by hand, a renamed device, allmulticast and promiscuous modes set by
//! hand and by a bridge, a queue length and group of 2^32-1 (written through sysfs,
//! which prints them as -1), a tun device without a hardware address, an ifb
//! without link settings, and some traffic. The real binary runs `--once` inside it
//! (`ip netns exec`) reading files, then netlink, then files again: names, labels,
//! HELP, TYPE and order must be identical, gauges equal, and each netlink counter
//! between the two file readings. Needs root and iproute2.
//!
//! For arp, a namespace holds IPv4 neighbours in every state `ip neigh` can set on
//! two devices (and a NOARP and an IPv6 entry, which are not counted): both modes
//! and Debian's node_exporter 1.5 (which reads /proc/net/arp), run in that
//! namespace, report the same entries, and netlink mode's states are those set.
//!
//! And where no netlink socket can be made (a seccomp filter refuses them, as a
//! sandbox without `AF_NETLINK` does), the collectors say so once and read the
//! files.

use sc_agent_testkit as common;

use common::netns::Netns;
use common::{http_get, require, wait_for_port, Agent, Exposition, Peer, Sample, TempDir};
use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

/// Sends `count` UDP datagrams from `from` to `to` from inside the namespace.
fn send_udp(ns: &Netns, from: &str, to: &str, count: usize) {
    let (from, to) = (from.to_owned(), to.to_owned());
    ns.run(move || {
        let socket = std::net::UdpSocket::bind(from).expect("bind");
        for _ in 0..count {
            socket.send_to(b"sc-agent test", &to).expect("send");
        }
    });
}

fn build(ns: &Netns) {
    for step in [
        "link set lo up",
        // A pair, both up, with traffic between them.
        "link add va0 type veth peer name vb0 address 02:00:00:00:0b:00",
        "link set va0 up",
        "link set vb0 up",
        "addr add 192.0.2.1/24 dev va0",
        "neigh add 192.0.2.2 lladdr 02:00:00:00:0b:00 dev va0 nud permanent",
        "link set va0 allmulticast on",
        "link set vb0 promisc on",
        // A jumbo MTU and an alias; its peer in a bridge (promiscuous by the kernel).
        "link add va1 mtu 9000 type veth peer name vb1",
        "link set va1 up",
        "link add br0 type bridge",
        "link set vb1 master br0",
        "link set br0 up",
        "link set vb1 up",
        // Down, an address set by hand, renamed.
        "link add va2 type veth peer name vb2",
        "link set va2 address 02:11:22:33:44:55",
        "link set va2 name renamed2",
        // No hardware address; no link settings.
        "tuntap add dev tun0 mode tun",
        "link set tun0 up",
        "link add ifb9 type ifb",
        "link set ifb9 up",
    ] {
        ns.ip(step);
    }
    // `ip link set ... alias` takes one word: set one with spaces through sysfs,
    // with the queue length and group past what `ip` accepts.
    ns.sh(
        "printf '  uplink to the rack  ' > /sys/class/net/va1/ifalias && \
         echo 4294967295 > /sys/class/net/renamed2/tx_queue_len && \
         echo 4294967295 > /sys/class/net/renamed2/netdev_group",
    );
    send_udp(ns, "192.0.2.1:0", "192.0.2.2:9", 20);
}

fn config(dir: &TempDir, netlink: bool) -> std::path::PathBuf {
    dir.write(
        &format!("netlink-{netlink}.yaml"),
        &common::base_config(&format!(
            "collectors:\n  disable_defaults: true\n  netdev:\n    netlink: {netlink}\n  \
             netclass:\n    netlink: {netlink}\n  arp:\n    netlink: {netlink}\n"
        )),
    )
}

/// One `--once` cycle of the agent inside the namespace.
fn once(ns: &Netns, config: &std::path::Path) -> Exposition {
    let mut command = ns.command(&common::bin());
    command.args(["--once".as_ref(), "--config".as_ref(), config.as_os_str()]);
    let mut agent = Agent::spawn_with(&mut command, &[("SC_LOG_LEVEL", "warn")]);
    let status = agent
        .wait_exit(Duration::from_secs(30))
        .expect("sc-agent --once exits");
    assert!(status.success(), "{status}: {}", agent.stderr());
    assert_eq!(agent.stderr(), "", "no warning in either mode");
    Exposition::parse(&agent.stdout())
}

/// The series of netdev and netclass in order, without the agent's timing.
fn series(exposition: &Exposition) -> Vec<&Sample> {
    exposition
        .samples
        .iter()
        .filter(|s| s.name.starts_with("node_network_"))
        .collect()
}

fn key(sample: &Sample) -> String {
    format!("{}{:?}", sample.name, sample.labels)
}

/// The gauges (names, labels, values) of an exposition: what must not move.
fn gauges(exposition: &Exposition) -> Vec<String> {
    series(exposition)
        .into_iter()
        .filter(|s| exposition.kind.get(&s.name).map(String::as_str) != Some("counter"))
        .map(|s| format!("{} {}", key(s), s.value))
        .collect()
}

/// Waits until the kernel has settled the new devices (it updates operstate and
/// carrier asynchronously, up to a second later): two file readings a little
/// apart show the same gauges.
fn settle(ns: &Netns, files: &std::path::Path) {
    let mut last = gauges(&once(ns, files));
    for _ in 0..20 {
        std::thread::sleep(Duration::from_millis(300));
        let now = gauges(&once(ns, files));
        if now == last {
            return;
        }
        last = now;
    }
    panic!("the namespace did not settle in 6 s");
}

#[test]
fn netlink_and_files_give_the_same_series() {
    let ns = Netns::new("modes");
    build(&ns);
    let dir = TempDir::new();
    let (files, netlink) = (config(&dir, false), config(&dir, true));
    settle(&ns, &files);
    let before = once(&ns, &files);
    let ours = once(&ns, &netlink);
    let after = once(&ns, &files);

    let (before_s, ours_s, after_s) = (series(&before), series(&ours), series(&after));
    let keys = |s: &[&Sample]| s.iter().map(|s| key(s)).collect::<Vec<_>>();
    assert_eq!(
        keys(&ours_s),
        keys(&before_s),
        "the same series in the same order"
    );
    assert_eq!(keys(&after_s), keys(&before_s));
    let families = |e: &Exposition| {
        let pick = |m: &BTreeMap<String, String>| {
            m.iter()
                .filter(|(name, _)| name.starts_with("node_network_"))
                .map(|(n, v)| (n.clone(), v.clone()))
                .collect::<Vec<_>>()
        };
        (pick(&e.help), pick(&e.kind))
    };
    assert_eq!(families(&ours), families(&before), "HELP and TYPE");

    let mut moved = 0;
    for ((b, o), a) in before_s.iter().zip(&ours_s).zip(&after_s) {
        let counter = ours.kind.get(&o.name).map(String::as_str) == Some("counter");
        if counter {
            assert!(
                b.value <= o.value && o.value <= a.value,
                "{}: files {} then netlink {} then files {}",
                key(o),
                b.value,
                o.value,
                a.value
            );
            moved += usize::from(o.value > 0.0);
        } else {
            assert_eq!(o.value, b.value, "{}", key(o));
            assert_eq!(o.value, a.value, "{}", key(o));
        }
    }
    assert!(moved > 10, "traffic shows in the counters ({moved})");

    // The cases the namespace was built for, as sysfs shows them.
    let value = |name: &str, device: &str| {
        ours_s
            .iter()
            .find(|s| s.name == name && s.labels.get("device").map(String::as_str) == Some(device))
            .map(|s| s.value)
    };
    assert_eq!(value("node_network_mtu_bytes", "va1"), Some(9000.0));
    assert_eq!(
        value("node_network_transmit_queue_length", "renamed2"),
        Some(-1.0)
    );
    assert_eq!(value("node_network_net_dev_group", "renamed2"), Some(-1.0));
    assert_eq!(
        value("node_network_address_assign_type", "renamed2"),
        Some(3.0)
    );
    assert_eq!(
        value("node_network_name_assign_type", "renamed2"),
        Some(4.0)
    );
    assert_eq!(value("node_network_carrier", "renamed2"), None, "down");
    assert_eq!(
        value("node_network_speed_bytes", "ifb9"),
        None,
        "no link settings"
    );
    assert_eq!(
        value("node_network_speed_bytes", "va0"),
        Some(1_250_000_000.0)
    );
    assert!(value("node_network_transmit_packets_total", "va0") >= Some(20.0));
    let flags = value("node_network_flags", "vb1").unwrap_or(0.0) as u32;
    assert_eq!(
        flags & 0x300,
        0x300,
        "a bridge port is promiscuous and allmulti"
    );
    let info = |device: &str| {
        ours_s
            .iter()
            .find(|s| {
                s.name == "node_network_info"
                    && s.labels.get("device").map(String::as_str) == Some(device)
            })
            .map(|s| s.labels.clone())
            .unwrap_or_default()
    };
    assert_eq!(info("va1")["ifalias"], "uplink to the rack");
    assert_eq!(info("tun0")["address"], "");
    assert_eq!(info("renamed2")["address"], "02:11:22:33:44:55");
    assert_eq!(info("va0")["duplex"], "full");
    assert_eq!(info("va0")["adminstate"], "up");
    assert_eq!(info("renamed2")["adminstate"], "down");
}

/// Makes `command` run under a seccomp filter that refuses `socket(AF_NETLINK, ...)`
/// with EAFNOSUPPORT, as systemd's `RestrictAddressFamilies=` does.
#[cfg(target_arch = "x86_64")]
fn without_netlink(command: &mut Command) {
    use nix::libc;
    use std::os::unix::process::CommandExt;
    const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
    const LD_ABS_W: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
    const JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
    const RET_K: u16 = 0x06; // BPF_RET | BPF_K
    const ALLOW: u32 = 0x7fff_0000; // SECCOMP_RET_ALLOW
    const ERRNO: u32 = 0x0005_0000; // SECCOMP_RET_ERRNO
    let op = |code, jt, jf, k| libc::sock_filter { code, jt, jf, k };
    // seccomp_data: nr at 0, arch at 4, args[0] at 16.
    let program = [
        op(LD_ABS_W, 0, 0, 4),
        op(JEQ_K, 0, 5, AUDIT_ARCH_X86_64),
        op(LD_ABS_W, 0, 0, 0),
        op(JEQ_K, 0, 3, libc::SYS_socket as u32),
        op(LD_ABS_W, 0, 0, 16),
        op(JEQ_K, 0, 1, libc::AF_NETLINK as u32),
        op(RET_K, 0, 0, ERRNO | libc::EAFNOSUPPORT as u32),
        op(RET_K, 0, 0, ALLOW),
    ];
    // SAFETY: between fork and exec the closure only makes two prctl calls on a
    // program that lives on this stack until exec (the closure owns a copy).
    unsafe {
        command.pre_exec(move || {
            let filter = libc::sock_fprog {
                len: program.len() as u16,
                filter: program.as_ptr() as *mut libc::sock_filter,
            };
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
                || libc::prctl(libc::PR_SET_SECCOMP, libc::SECCOMP_MODE_FILTER, &filter) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[cfg(target_arch = "x86_64")]
#[test]
fn without_netlink_sockets_both_read_the_files() {
    let dir = TempDir::new();
    let (files, netlink) = (config(&dir, false), config(&dir, true));
    let run = |config: &std::path::Path, sandboxed: bool| {
        let mut command = Command::new(common::bin());
        command.args(["--once".as_ref(), "--config".as_ref(), config.as_os_str()]);
        if sandboxed {
            without_netlink(&mut command);
        }
        let mut agent = Agent::spawn_with(&mut command, &[("SC_LOG_LEVEL", "warn")]);
        let status = agent.wait_exit(Duration::from_secs(30)).expect("exits");
        assert!(status.success(), "{status}: {}", agent.stderr());
        (Exposition::parse(&agent.stdout()), agent.stderr())
    };
    let (sandboxed, stderr) = run(&netlink, true);
    let (reference, _) = run(&files, false);
    for collector in ["netdev", "netclass", "arp"] {
        assert!(
            stderr.contains(&format!(
                "{collector}: netlink socket(NETLINK_ROUTE): EAFNOSUPPORT"
            )),
            "{stderr}"
        );
        let success = sandboxed.samples.iter().find(|s| {
            s.name == "node_scrape_collector_success"
                && s.labels.get("collector").map(String::as_str) == Some(collector)
        });
        assert_eq!(success.map(|s| s.value), Some(1.0), "{collector}");
    }
    assert_eq!(
        stderr.matches("instead").count(),
        3,
        "said once each: {stderr}"
    );
    let keys = |e: &Exposition| series(e).iter().map(|s| key(s)).collect::<Vec<_>>();
    assert_eq!(keys(&sandboxed), keys(&reference));
}

/// `node_arp_entries` by device, or `node_arp_states` by device and state.
fn arp(exposition: &Exposition, name: &str) -> BTreeMap<String, f64> {
    exposition
        .find(name)
        .map(|s| {
            let labels: Vec<&str> = s
                .labels
                .iter()
                .filter(|(k, _)| ["device", "state"].contains(&k.as_str()))
                .map(|(_, v)| v.as_str())
                .collect();
            (labels.join("/"), s.value)
        })
        .collect()
}

#[test]
fn arp_modes_and_node_exporter_count_the_same_entries() {
    let ns = Netns::new("arp");
    for step in [
        "link set lo up",
        "link add aa0 type veth peer name ab0",
        "link set aa0 up",
        "link set ab0 up",
        "addr add 198.51.100.1/24 dev aa0",
        "neigh add 198.51.100.2 lladdr 02:00:00:00:01:02 dev aa0 nud permanent",
        "neigh add 198.51.100.3 lladdr 02:00:00:00:01:03 dev aa0 nud permanent",
        "neigh add 198.51.100.4 lladdr 02:00:00:00:01:04 dev aa0 nud stale",
        // Not in /proc/net/arp, so not counted by either mode.
        "neigh add 198.51.100.5 lladdr 02:00:00:00:01:05 dev aa0 nud noarp",
        "-6 neigh add 2001:db8::2 lladdr 02:00:00:00:01:06 dev aa0 nud permanent",
        "link add ba0 type veth peer name bb0",
        "link set ba0 up",
        "link set bb0 up",
        "addr add 203.0.113.1/24 dev ba0",
        "neigh add 203.0.113.2 lladdr 02:00:00:00:02:02 dev ba0 nud reachable",
        "neigh add 203.0.113.3 dev ba0 nud failed",
        "neigh add 203.0.113.4 dev ba0 nud incomplete",
    ] {
        ns.ip(step);
    }
    let dir = TempDir::new();
    let (files, netlink) = (config(&dir, false), config(&dir, true));
    let ours = once(&ns, &netlink);
    let from_files = once(&ns, &files);

    // node_exporter 1.5 in the namespace, scraped from inside it.
    let port = 9100;
    let mut command = ns.command(&require("prometheus-node-exporter"));
    command
        .args(["--collector.disable-defaults", "--collector.arp"])
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let _node_exporter = Peer(command.spawn().expect("start node_exporter"));
    let text = ns.run(move || {
        assert!(
            wait_for_port(port, Duration::from_secs(20)),
            "node_exporter listens"
        );
        http_get(port, "/metrics").expect("scrape node_exporter")
    });
    let theirs = Exposition::parse(&text);

    let entries = arp(&ours, "node_arp_entries");
    let expected: BTreeMap<String, f64> = [("aa0".to_owned(), 3.0), ("ba0".to_owned(), 3.0)].into();
    assert_eq!(entries, expected, "netlink mode");
    assert_eq!(arp(&from_files, "node_arp_entries"), expected, "file mode");
    assert_eq!(
        arp(&theirs, "node_arp_entries"),
        expected,
        "node_exporter 1.5"
    );
    assert_eq!(
        ours.help["node_arp_entries"],
        theirs.help["node_arp_entries"]
    );

    let states = arp(&ours, "node_arp_states");
    assert_eq!(states.get("aa0/permanent"), Some(&2.0), "{states:?}");
    assert_eq!(states.get("aa0/stale"), Some(&1.0), "{states:?}");
    assert_eq!(states.get("ba0/failed"), Some(&1.0), "{states:?}");
    assert_eq!(states.get("ba0/incomplete"), Some(&1.0), "{states:?}");
    // Reachable for a while, then stale: either way one entry.
    let resolved: f64 = ["reachable", "stale", "delay", "probe"]
        .iter()
        .filter_map(|s| states.get(&format!("ba0/{s}")))
        .sum();
    assert_eq!(resolved, 1.0, "{states:?}");
    assert_eq!(states.values().sum::<f64>(), 6.0, "{states:?}");
    assert!(
        arp(&from_files, "node_arp_states").is_empty(),
        "netlink only"
    );
}

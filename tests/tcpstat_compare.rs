//! tcpstat beside Debian's node_exporter 1.5 (`--collector.disable-defaults
//! --collector.tcpstat`), both counting the TCP sockets of a network namespace
//! the test makes and fills with sockets in known states: listeners over IPv4 and
//! IPv6, connections with bytes left unread, a half-closed one (FIN_WAIT2 on one
//! end, CLOSE_WAIT on the other), one in TIME_WAIT, and a connect that is never
//! answered (SYN_SENT). The two must report the same series with the same values,
//! and the states must be the ones made.
//!
//! node_exporter runs inside the namespace (its sock_diag socket is there) but
//! listens on a socket made in the host's namespace and handed to it as systemd
//! would (`--web.systemd-socket`), so scraping it adds no socket to what it counts;
//! the agent runs there with `--once` and no TCP socket of its own. Needs root,
//! iproute2 and prometheus-node-exporter.

use sc_agent_testkit as common;

use common::netns::Netns;
use common::{http_get, require, Agent, Exposition, Peer, TempDir};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The sockets the test holds open in the namespace, and what they add up to.
const EXPECTED: [(&str, f64); 7] = [
    ("established", 4.0),
    ("syn_sent", 1.0),
    ("fin_wait2", 1.0),
    ("time_wait", 1.0),
    ("close_wait", 1.0),
    ("listen", 2.0),
    // 5 bytes unread over IPv4, 7 over IPv6.
    ("rx_queued_bytes", 12.0),
];

/// Makes the sockets of [`EXPECTED`] in the calling thread's namespace and returns
/// them, to be held open.
fn sockets() -> Vec<Box<dyn Send>> {
    let mut held: Vec<Box<dyn Send>> = Vec::new();
    let v4 = TcpListener::bind("127.0.0.1:0").expect("listen on 127.0.0.1");
    let v6 = TcpListener::bind("[::1]:0").expect("listen on ::1");
    // Established pairs with bytes the server has not read.
    for (listener, bytes) in [(&v4, 5), (&v6, 7)] {
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        client.write_all(&vec![b'x'; bytes]).unwrap();
        held.push(Box::new(client));
        held.push(Box::new(server));
    }
    // Half closed: the server sends its FIN (FIN_WAIT2), the client does not
    // answer with its own (CLOSE_WAIT).
    let mut client = TcpStream::connect(v4.local_addr().unwrap()).unwrap();
    let (server, _) = v4.accept().unwrap();
    server.shutdown(Shutdown::Write).unwrap();
    // Read up to the FIN: unread, the kernel counts it as a byte of rqueue.
    let mut rest = Vec::new();
    client.read_to_end(&mut rest).unwrap();
    held.push(Box::new(client));
    held.push(Box::new(server));
    // Closed by the client first, then by the server: the client's end stays in
    // TIME_WAIT for a minute.
    let client = TcpStream::connect(v4.local_addr().unwrap()).unwrap();
    let (mut server, _) = v4.accept().unwrap();
    client.shutdown(Shutdown::Both).unwrap();
    server.read_to_end(&mut rest).unwrap(); // until the client's FIN
    drop(server);
    drop(client);
    // A connect nobody answers (the peer drops frames for another address), on a thread of
    // its own that waits in it for longer than the test runs; it inherits the
    // namespace.
    std::thread::spawn(|| {
        let to = "198.51.100.2:9".parse().unwrap();
        let _ = TcpStream::connect_timeout(&to, Duration::from_secs(600));
    });
    held.push(Box::new(v4));
    held.push(Box::new(v6));
    // Let the last FIN and ACK land.
    std::thread::sleep(Duration::from_millis(200));
    held
}

/// node_exporter 1.5 with only tcpstat, in the namespace, listening on `listener`
/// (a socket of the host's namespace), as systemd hands it a socket: fd 3,
/// `LISTEN_FDS=1`, `LISTEN_PID` its own pid (set by the shell it is exec'd from).
fn node_exporter(ns: &Netns, listener: &TcpListener) -> Peer {
    let netns = std::fs::File::open(ns.path()).expect("open the namespace");
    let (netns_fd, listener_fd) = (netns.as_raw_fd(), listener.as_raw_fd());
    let mut command = Command::new("/bin/sh");
    command
        .args(["-c", "LISTEN_PID=$$ LISTEN_FDS=1 exec \"$0\" \"$@\""])
        .arg(require("prometheus-node-exporter"))
        .args([
            "--collector.disable-defaults",
            "--collector.tcpstat",
            "--web.systemd-socket",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: between fork and exec the child makes two system calls (setns,
    // dup2) on descriptors this process keeps open until the spawn returns.
    unsafe {
        command.pre_exec(move || {
            let netns = BorrowedFd::borrow_raw(netns_fd);
            nix::sched::setns(netns, nix::sched::CloneFlags::CLONE_NEWNET)?;
            if nix::libc::dup2(listener_fd, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = command.spawn().expect("start node_exporter");
    drop(netns);
    Peer(child)
}

/// The series of `node_tcp_connection_states` by state.
fn states(exposition: &Exposition) -> BTreeMap<String, f64> {
    exposition
        .find("node_tcp_connection_states")
        .map(|s| (s.labels["state"].clone(), s.value))
        .collect()
}

#[test]
fn tcpstat_counts_what_node_exporter_counts() {
    let ns = Netns::new("tcp");
    for step in [
        "link set lo up",
        // Where SYNs go unanswered: to a neighbour whose address no device has.
        "link add s0 type veth peer name s1",
        "link set s0 up",
        "link set s1 up",
        "addr add 198.51.100.1/24 dev s0",
        "neigh add 198.51.100.2 lladdr 02:00:00:00:00:02 dev s0 nud permanent",
    ] {
        ns.ip(step);
    }
    let (ready, wait_ready) = mpsc::channel();
    let (done, wait_done) = mpsc::channel::<()>();
    let holder = ns.spawn(move || {
        let held = sockets();
        ready.send(()).unwrap();
        let _ = wait_done.recv();
        drop(held);
    });
    wait_ready
        .recv_timeout(Duration::from_secs(30))
        .expect("the sockets are made");

    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let _node_exporter = node_exporter(&ns, &listener);
    let theirs = Exposition::parse(&http_get(port, "/metrics").expect("scrape node_exporter"));

    let dir = TempDir::new();
    let config = dir.write(
        "tcpstat.yaml",
        &common::base_config(&common::collectors_only(&["tcpstat"])),
    );
    let mut command = ns.command(&common::bin());
    command.args(["--once".as_ref(), "--config".as_ref(), config.as_os_str()]);
    let mut agent = Agent::spawn_with(&mut command, &[("SC_LOG_LEVEL", "warn")]);
    let status = agent.wait_exit(Duration::from_secs(30)).expect("exits");
    assert!(status.success(), "{status}: {}", agent.stderr());
    assert_eq!(agent.stderr(), "");
    let ours = Exposition::parse(&agent.stdout());

    // node_exporter scraped again: nothing moved in between.
    let again = Exposition::parse(&http_get(port, "/metrics").expect("scrape node_exporter"));
    done.send(()).unwrap();
    holder.join().unwrap();

    assert_eq!(states(&theirs), states(&again), "the namespace was still");
    assert_eq!(states(&ours), states(&theirs), "the same series and values");
    let name = "node_tcp_connection_states";
    assert_eq!(ours.help[name], theirs.help[name]);
    assert_eq!(ours.kind[name], theirs.kind[name]);
    let counted = states(&ours);
    for (state, value) in EXPECTED {
        assert_eq!(counted.get(state), Some(&value), "{state}: {counted:?}");
    }
    // The listeners' backlogs and the unanswered SYN are the write queues: what
    // the kernel says, the same for both, not a number made here.
    assert!(counted["tx_queued_bytes"] > 0.0, "{counted:?}");
    assert_eq!(counted.len(), EXPECTED.len() + 1, "{counted:?}");
}

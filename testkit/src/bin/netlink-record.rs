//! Records the kernel's answer to one netlink dump as a fixture file for the
//! parsers' tests (src/netlink/fixtures/README says which namespace each was
//! recorded in).
//!
//! ```sh
//! cargo run -p sc-agent-testkit --bin netlink-record -- links src/netlink/fixtures/links.bin
//! ```
//! Kinds: `links`, `counters`, `neighbours`, `tcp` (both IP versions), `tcp4`, `tcp6`,
//! `ethtool_family`, `ethtool_linkmodes`.

use sc_agent::netlink::socket::{Dump, Protocol, Recording};
use sc_agent::netlink::{ethtool, inet_diag, link, neigh, Socket};
use std::process::ExitCode;

fn record(protocol: Protocol, dump: &mut impl Dump) -> Result<Vec<u8>, String> {
    let mut recording = Recording {
        inner: dump,
        bytes: Vec::new(),
    };
    Socket::new(protocol)
        .dump(&mut recording)
        .map_err(|e| e.to_string())?;
    Ok(recording.finish())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [kind, path] = args.as_slice() else {
        eprintln!("usage: netlink-record KIND PATH");
        return ExitCode::from(2);
    };
    let bytes = match kind.as_str() {
        "links" => record(Protocol::Route, &mut link::Links::default()),
        "counters" => record(Protocol::Route, &mut link::Counters::default()),
        "neighbours" => record(
            Protocol::Route,
            &mut neigh::Neighbours::new(neigh::Family::Unspec),
        ),
        "tcp" => record(
            Protocol::SockDiag,
            &mut inet_diag::TcpStates::new(inet_diag::Scope::Both),
        ),
        "tcp4" => record(
            Protocol::SockDiag,
            &mut inet_diag::TcpStates::new(inet_diag::Scope::Only(inet_diag::IpFamily::V4)),
        ),
        "tcp6" => record(
            Protocol::SockDiag,
            &mut inet_diag::TcpStates::new(inet_diag::Scope::Only(inet_diag::IpFamily::V6)),
        ),
        "ethtool_family" => record(Protocol::Generic, &mut ethtool::FamilyId::default()),
        "ethtool_linkmodes" => {
            let mut family = ethtool::FamilyId::default();
            let found = Socket::new(Protocol::Generic).dump(&mut family);
            match (found, family.id()) {
                (Ok(()), Some(id)) => {
                    record(Protocol::Generic, &mut ethtool::LinkModes::with_family(id))
                }
                (result, _) => Err(format!("no ethtool family: {result:?}")),
            }
        }
        other => Err(format!("unknown kind {other}")),
    };
    match bytes.and_then(|b| {
        std::fs::write(path, &b)
            .map_err(|e| e.to_string())
            .map(|()| b.len())
    }) {
        Ok(len) => {
            println!("{path}: {len} bytes");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("netlink-record {kind}: {e}");
            ExitCode::FAILURE
        }
    }
}

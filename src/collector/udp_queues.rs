//! `node_udp_queues{ip,queue}`: the bytes queued in the kernel for UDP sockets, the
//! `tx_queue` and `rx_queue` columns of /proc/net/udp and /proc/net/udp6 summed, as
//! node_exporter 1.12 (and 1.5, the same) reports them.
//!
//! After a header line, each socket line is checked as procfs checks it: at least 8
//! columns, `sl:` a number, the local and remote `hexaddress:hexport`, the state in
//! hex, `tx:rx` in hex and the uid a number; any line that fails is an error naming
//! the file and line. The files grow with the number of sockets, so they are streamed
//! through one kept chunk ([`for_each_line`]), up to [`MAX_BYTES`].
//!
//! Missing files, as node_exporter treats them: a kernel without IPv6 has no udp6,
//! so only the `ip="v4"` series come out (success 1); without either file the
//! collector reports [`CollectError::no_data`].

use super::{for_each_line, parse_go_uint, Build, CollectError, Collector, Context};
use crate::batch::{Batch, Kind};
use crate::config::collectors::NoOptions;
use std::path::{Path, PathBuf};

/// The most of one file read: some 500,000 sockets of 128 bytes a line.
pub const MAX_BYTES: u64 = 64 << 20;

pub struct UdpQueues {
    files: [(PathBuf, &'static str); 2],
    buf: Vec<u8>,
}

impl UdpQueues {
    pub fn new(procfs: &Path) -> Self {
        UdpQueues {
            files: [(procfs.join("net/udp"), "v4"), (procfs.join("net/udp6"), "v6")],
            buf: Vec::new(),
        }
    }
}

/// `address:port`, both hexadecimal, the address of an even number of digits (Go's
/// `hex.DecodeString`).
fn valid_endpoint(field: &str) -> bool {
    let mut parts = field.split(':');
    let (Some(address), Some(port), None) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    address.len() % 2 == 0
        && address.bytes().all(|b| b.is_ascii_hexdigit())
        && parse_hex(port).is_some()
}

/// Go's `ParseUint(s, 16, 64)`.
fn parse_hex(field: &str) -> Option<u64> {
    Some(field)
        .filter(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_hexdigit()))
        .and_then(|f| u64::from_str_radix(f, 16).ok())
}

/// The `(tx_queue, rx_queue)` of one socket line.
fn parse_line(line: &str) -> Result<(u64, u64), String> {
    let mut fields = [""; 8];
    let mut count = 0;
    for field in line.split_ascii_whitespace() {
        if let Some(slot) = fields.get_mut(count) {
            *slot = field;
        }
        count += 1;
    }
    if count < fields.len() {
        return Err(format!("{count} columns, expected at least 8"));
    }
    let [sl, local, remote, state, queues, _, _, uid] = fields;
    let sl_ok = sl
        .strip_suffix(':')
        .is_some_and(|n| !n.contains(':') && parse_go_uint(n).is_some());
    if !sl_ok {
        return Err(format!("expected the slot number `<n>:`, got {sl:?}"));
    }
    for (what, field) in [("local_address", local), ("rem_address", remote)] {
        if !valid_endpoint(field) {
            return Err(format!("{what}: expected <hex address>:<hex port>, got {field:?}"));
        }
    }
    if parse_hex(state).is_none() {
        return Err(format!("st: expected a hexadecimal state, got {state:?}"));
    }
    let tx_rx = queues
        .split_once(':')
        .filter(|(_, rx)| !rx.contains(':'))
        .and_then(|(tx, rx)| Some((parse_hex(tx)?, parse_hex(rx)?)))
        .ok_or_else(|| format!("expected <hex tx_queue>:<hex rx_queue>, got {queues:?}"))?;
    if parse_go_uint(uid).is_none() {
        return Err(format!("uid: expected a number, got {uid:?}"));
    }
    Ok(tx_rx)
}

impl Build for UdpQueues {
    type Options = NoOptions;

    const SOURCES: &'static [&'static str] = &["proc/net/udp", "proc/net/udp6"];

    fn build(context: &Context<'_>, _options: &NoOptions) -> Self {
        UdpQueues::new(&context.paths.procfs)
    }
}

impl Collector for UdpQueues {
    fn collect(&mut self, out: &mut Batch) -> Result<(), CollectError> {
        let mut sums: [Option<(u64, u64)>; 2] = [None; 2];
        for ((path, _), sum) in self.files.iter().zip(&mut sums) {
            let (mut tx, mut rx) = (0u64, 0u64);
            let found = for_each_line(path, &mut self.buf, MAX_BYTES, |number, line| {
                if number == 1 {
                    return Ok(());
                }
                let (t, r) = parse_line(line).map_err(|what| CollectError::parse(path, number, what))?;
                tx = tx.wrapping_add(t);
                rx = rx.wrapping_add(r);
                Ok(())
            })?;
            if found {
                *sum = Some((tx, rx));
            } else {
                log::debug!("{} does not exist, not collecting its queues", path.display());
            }
        }
        if sums.iter().all(Option::is_none) {
            return Err(CollectError::no_data(format!(
                "neither {} nor {} exists",
                self.files[0].0.display(),
                self.files[1].0.display()
            )));
        }
        let mut family = out.family(
            "node_udp_queues",
            "Number of allocated memory in the kernel for UDP datagrams in bytes.",
            Kind::Gauge,
        );
        for ((_, ip), sum) in self.files.iter().zip(sums) {
            if let Some((tx, rx)) = sum {
                family.sample(&[("queue", "tx"), ("ip", ip)], tx as f64);
                family.sample(&[("queue", "rx"), ("ip", ip)], rx as f64);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{render, TempDir};

    const HEADER: &str = "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n";
    const UDP: &str = "  387: 00000000:0044 00000000:0000 07 00000000:00000a00 00:00000000 00000000     0        0 17316 2 000000009c5cbc67 0\n \
        1175: 0100007F:0035 00000000:0000 07 00000100:00000001 00:00000000 00000000   104        0 17500 2 00000000ae3fdb31 0\n";
    const UDP6: &str = " 1330: 00000000000000000000000001000000:0222 00000000000000000000000000000000:0000 07 00000020:00000000 00:00000000 00000000     0        0 21087 2 0000000054c1dd60 0\n";

    fn samples(text: &str) -> Vec<&str> {
        text.lines().filter(|l| !l.starts_with('#')).collect()
    }

    #[test]
    fn sums_the_queues_of_both_files() {
        let dir = TempDir::new();
        dir.write("net/udp", &format!("{HEADER}{UDP}"));
        dir.write("net/udp6", &format!("{HEADER}{UDP6}"));
        let mut collector = UdpQueues::new(dir.path());
        for _ in 0..2 {
            let text = render(&mut collector).unwrap();
            assert!(text.starts_with(
                "# HELP node_udp_queues Number of allocated memory in the kernel for UDP datagrams in bytes.\n\
                 # TYPE node_udp_queues gauge\n"
            ));
            assert_eq!(
                samples(&text),
                [
                    "node_udp_queues{ip=\"v4\",queue=\"tx\"} 256",
                    "node_udp_queues{ip=\"v4\",queue=\"rx\"} 2561",
                    "node_udp_queues{ip=\"v6\",queue=\"tx\"} 32",
                    "node_udp_queues{ip=\"v6\",queue=\"rx\"} 0",
                ]
            );
        }
    }

    #[test]
    fn either_file_may_be_missing_but_not_both() {
        let dir = TempDir::new();
        dir.write("net/udp", HEADER);
        let text = render(&mut UdpQueues::new(dir.path())).unwrap();
        assert_eq!(
            samples(&text),
            ["node_udp_queues{ip=\"v4\",queue=\"tx\"} 0", "node_udp_queues{ip=\"v4\",queue=\"rx\"} 0"]
        );
        std::fs::remove_file(dir.path().join("net/udp")).unwrap();
        dir.write("net/udp6", &format!("{HEADER}{UDP6}"));
        let text = render(&mut UdpQueues::new(dir.path())).unwrap();
        assert_eq!(
            samples(&text),
            ["node_udp_queues{ip=\"v6\",queue=\"tx\"} 32", "node_udp_queues{ip=\"v6\",queue=\"rx\"} 0"]
        );
        std::fs::remove_file(dir.path().join("net/udp6")).unwrap();
        let err = render(&mut UdpQueues::new(dir.path())).unwrap_err();
        assert!(err.is_no_data(), "{err}");
    }

    #[test]
    fn malformed_lines_name_the_file_and_line() {
        let dir = TempDir::new();
        dir.write("net/udp6", HEADER);
        let good = "0: 00000000:0044 00000000:0000 07 00000000:00000000 00:00000000 00000000 0";
        for (bad, what) in [
            ("0: 00000000:0044 00000000:0000 07 00000000:00000000 00:00000000 00000000", "7 columns, expected at least 8"),
            (&good.replacen("0:", "0", 1), "expected the slot number `<n>:`, got \"0\""),
            (&good.replacen("0:", "x:", 1), "expected the slot number `<n>:`, got \"x:\""),
            (&good.replacen("00000000:0044", "0000000:0044", 1), "local_address: expected <hex address>:<hex port>, got \"0000000:0044\""),
            (&good.replacen("00000000:0000", "00000000:zz", 1), "rem_address: expected <hex address>:<hex port>, got \"00000000:zz\""),
            (&good.replacen(" 07 ", " 0x7 ", 1), "st: expected a hexadecimal state, got \"0x7\""),
            (&good.replacen("00000000:00000000", "00000000", 1), "expected <hex tx_queue>:<hex rx_queue>, got \"00000000\""),
            (&good.replacen("00000000:00000000", "1:2:3", 1), "expected <hex tx_queue>:<hex rx_queue>, got \"1:2:3\""),
            (&good.replacen("00000000:00000000", "00000000:-1", 1), "expected <hex tx_queue>:<hex rx_queue>, got \"00000000:-1\""),
            (&format!("{} x", &good[..good.len() - 2]), "uid: expected a number, got \"x\""),
        ] {
            dir.write("net/udp", &format!("{HEADER}{good}\n{bad}\n"));
            let err = render(&mut UdpQueues::new(dir.path())).unwrap_err();
            assert!(err.to_string().ends_with(&format!("net/udp line 3: {what}")), "{bad:?}: {err}");
        }
        // The header line is never parsed; a blank line is malformed.
        dir.write("net/udp", &format!("garbage\n{good}\n\n"));
        let err = render(&mut UdpQueues::new(dir.path())).unwrap_err();
        assert!(err.to_string().ends_with("net/udp line 3: 0 columns, expected at least 8"), "{err}");
    }

    #[test]
    fn reads_this_machines_files() {
        if !Path::new("/proc/net/udp").exists() {
            return;
        }
        let text = render(&mut UdpQueues::new(Path::new("/proc"))).unwrap();
        assert!(text.contains("node_udp_queues{ip=\"v4\",queue=\"rx\"} "), "{text}");
    }
}

//! The static musl binary is self-contained: in an otherwise empty root (a temp dir
//! holding only the binary, its config and, for HTTPS, the CA file, with /proc and
//! /sys bind-mounted in a private mount namespace, then `chroot`) it collects and
//! pushes to a receiver on loopback over HTTP, and over HTTPS with `remote_write.tls.ca_file` and
//! no system certificate store; without the CA it fails closed.
//!
//! The binary is `$SC_STATIC_BINARY` (scripts/test.sh builds it first), else this test
//! builds it with scripts/build-static.sh. Needs root (unshare, mount, chroot).

use sc_agent_testkit as common;
use sc_agent_testkit::receiver;

use common::{Agent, TempDir};
use receiver::{Received, Receiver, Reply};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

fn static_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        if let Some(path) = std::env::var_os("SC_STATIC_BINARY") {
            return PathBuf::from(path);
        }
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let out = Command::new(root.join("scripts/build-static.sh"))
            .current_dir(root)
            .output()
            .expect("run scripts/build-static.sh");
        assert!(
            out.status.success(),
            "build-static.sh failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8(out.stdout).unwrap();
        root.join(stdout.lines().last().expect("the binary's path"))
    })
}

/// An empty root with the static binary and `files` (name, contents) in it.
fn empty_root(files: &[(&str, &str)]) -> TempDir {
    let dir = TempDir::new();
    std::fs::copy(static_binary(), dir.path().join("sc-agent")).expect("copy the binary");
    for (name, contents) in files {
        dir.write(name, contents);
    }
    for mount_point in ["proc", "sys"] {
        std::fs::create_dir(dir.path().join(mount_point)).unwrap();
    }
    let mut listing: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    listing.sort();
    let mut expected: Vec<String> = ["proc", "sc-agent", "sys"]
        .iter()
        .map(|s| s.to_string())
        .chain(files.iter().map(|(name, _)| name.to_string()))
        .collect();
    expected.sort();
    assert_eq!(listing, expected, "the root holds nothing else");
    dir
}

/// Starts the agent chrooted into `root`, with the host's /proc and /sys bind-mounted
/// in a mount namespace of its own (nothing changes outside it).
fn chrooted(root: &Path) -> Agent {
    common::require("unshare");
    let script = r#"mount --rbind /proc "$1/proc" && mount --rbind /sys "$1/sys" &&
        exec chroot "$1" /sc-agent --config /sc-agent.yaml"#;
    let mut command = Command::new("unshare");
    command
        .args([
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            script,
            "sh",
        ])
        .arg(root)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin");
    Agent::spawn_with(&mut command, &[])
}

fn config(endpoint: &str, extra: &str) -> String {
    format!("collection_interval: 200ms\ningestor_endpoint: {endpoint}\n{extra}")
}

fn accepted(at_least: usize) -> impl Fn(&[Received]) -> bool {
    move |requests| requests.iter().filter(|r| r.accepted()).count() >= at_least
}

#[test]
fn in_an_empty_root_it_collects_and_pushes_over_http() {
    let receiver = Receiver::start(|_| Reply::ok());
    let root = empty_root(&[("sc-agent.yaml", &config(&receiver.url(), ""))]);
    let agent = chrooted(root.path());
    receiver.wait_for(WAIT, "batches from the chrooted agent", accepted(3));
    let batch = receiver.accepted().pop().expect("a batch");
    for collector in [
        "cpu", "meminfo", "loadavg", "stat", "netdev", "vmstat", "uname",
    ] {
        assert_eq!(
            batch.value("node_scrape_collector_success", &[("collector", collector)]),
            Some(1.0),
            "{collector} works from the bind-mounted /proc and /sys: {}",
            agent.stderr()
        );
    }
    assert!(
        batch
            .value("node_memory_MemTotal_bytes", &[])
            .unwrap_or(0.0)
            > 0.0
    );
    // No dmidecode, no DMI, no /etc/machine-id in the root: the boot ID is the ID.
    let stderr = agent.stderr();
    assert!(stderr.contains("from the kernel boot ID"), "{stderr}");
    let vm_id = batch.series[0]
        .labels
        .get("vm_id")
        .cloned()
        .unwrap_or_default();
    assert_eq!(vm_id.len(), 36, "a UUID: {vm_id:?}");
}

#[cfg(feature = "tls")]
mod https {
    use super::*;
    use receiver::tls::{make_certificates, tls_receiver};

    #[test]
    fn with_only_the_configured_ca_it_pushes_over_https() {
        let certs = TempDir::new();
        let (ca, cert, key) = make_certificates(certs.path());
        let receiver = tls_receiver(&cert, &key);
        let ca_pem = std::fs::read_to_string(ca).unwrap();
        let root = empty_root(&[
            ("ca.pem", &ca_pem),
            (
                "sc-agent.yaml",
                &config(
                    &receiver.https_url(),
                    "remote_write:\n  tls:\n    ca_file: /ca.pem\n",
                ),
            ),
        ]);
        let agent = chrooted(root.path());
        receiver.wait_for(WAIT, "batches over HTTPS", accepted(3));
        assert_eq!(receiver.tls_failures(), 0, "{}", agent.stderr());
    }

    #[test]
    fn without_a_ca_and_with_no_system_store_it_fails_closed() {
        let certs = TempDir::new();
        let (_ca, cert, key) = make_certificates(certs.path());
        let receiver = tls_receiver(&cert, &key);
        let root = empty_root(&[("sc-agent.yaml", &config(&receiver.https_url(), ""))]);
        let agent = chrooted(root.path());
        assert!(
            agent.wait_for(WAIT, |_, err| err.contains("failed (tls)")),
            "{}",
            agent.stderr()
        );
        let stderr = agent.stderr();
        assert!(
            stderr.contains("no trusted CA certificate")
                && stderr.contains("set remote_write.tls.ca_file"),
            "{stderr}"
        );
        assert!(receiver.received().is_empty(), "no request got through");
        assert_eq!(
            receiver.connections(),
            0,
            "not even a connection was opened"
        );
    }
}

//! The container-host preset (packaging/container-host.yaml) is the one the fixture
//! host tests/fixtures/container_host runs (tests/fixtures.rs pins that case's
//! output: only the host's own interfaces and filesystems). The fixture's config may
//! differ from the preset only by `disable_defaults` and by `netlink: false` (read
//! the tree's files, not this machine's kernel); and the preset itself is a valid
//! config that the binary accepts.

use sc_agent_testkit as common;

use common::TempDir;
use serde_yaml::{Mapping, Value};
use std::process::Command;

fn collectors(path: &str) -> Mapping {
    let path = common::project_root().join(path);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let config: Value = serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    config["collectors"]
        .as_mapping()
        .unwrap_or_else(|| panic!("{path:?} has no collectors: mapping"))
        .clone()
}

#[test]
fn the_fixture_host_runs_the_preset() {
    let preset = collectors("packaging/container-host.yaml");
    let mut fixture = collectors("tests/fixtures/container_host/config.yaml");
    assert_eq!(fixture.remove("disable_defaults"), Some(Value::Bool(true)));
    for (_, options) in fixture.iter_mut() {
        if let Some(options) = options.as_mapping_mut() {
            if let Some(netlink) = options.remove("netlink") {
                assert_eq!(netlink, Value::Bool(false));
            }
        }
    }
    assert_eq!(
        fixture, preset,
        "the fixture's config and the preset differ"
    );
    // The interface filter is the same for the three interface collectors.
    let filters: Vec<&Value> = ["netdev", "netclass", "arp"]
        .iter()
        .map(|name| &preset[*name]["device_exclude"])
        .collect();
    assert!(filters.windows(2).all(|w| w[0] == w[1]), "{filters:?}");
}

#[test]
fn the_preset_is_a_valid_config() {
    let dir = TempDir::new();
    let preset =
        std::fs::read_to_string(common::project_root().join("packaging/container-host.yaml"))
            .expect("the preset");
    let path = dir.write("sc-agent.yaml", &format!("vm_id: preset-vm\n{preset}"));
    let out = Command::new(common::bin())
        .args(["--check-config", "--config"])
        .arg(&path)
        .output()
        .expect("run sc-agent --check-config");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The control: without the preset, the same tree reports every container
/// interface and mount the preset leaves out, so the fixture does test it. (The
/// container mount points do not exist in the tree, so they have `readonly` and
/// `device_error` but no sizes, as a mount statfs fails on.)
#[test]
fn without_the_preset_the_fixture_host_floods() {
    let tree = common::fixtures().join("container_host");
    let dir = TempDir::new();
    let path = dir.write(
        "sc-agent.yaml",
        &format!(
            "vm_id: fixture-vm\npaths:\n  procfs: {tree}/proc\n  sysfs: {tree}/sys\n  rootfs: {tree}/root\n\
             collectors:\n  disable_defaults: true\n  netdev: {{netlink: false}}\n\
             \x20 netclass: {{netlink: false}}\n  arp: {{netlink: false}}\n  filesystem: true\n",
            tree = tree.display()
        ),
    );
    let out = Command::new(common::bin())
        .args(["--once", "--config"])
        .arg(&path)
        .output()
        .expect("run sc-agent --once");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    for device in [
        "veth1a2b3c4",
        "cali8d2e4f6a1b3",
        "flannel.1",
        "cni0",
        "docker0",
        "br-3f9a1c2b7d4e",
    ] {
        for family in ["node_network_receive_bytes_total{", "node_network_up{"] {
            assert!(
                text.lines()
                    .any(|l| l.starts_with(family) && l.contains(&format!("device=\"{device}\""))),
                "{family} has no {device}:\n{text}"
            );
        }
    }
    assert!(text.contains("node_arp_entries{device=\"cni0\""), "{text}");
    for mount in [
        "/var/lib/kubelet/pods/",
        "/run/containerd/",
        "/var/lib/containerd/",
    ] {
        assert!(
            text.lines()
                .any(|l| l.starts_with("node_filesystem_readonly{")
                    && l.contains(&format!("mountpoint=\"{mount}"))),
            "no filesystem under {mount}:\n{text}"
        );
    }
}

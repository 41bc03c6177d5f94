//! vm_id auto-detection through the real binary: a fake `dmidecode` on PATH and
//! fixture roots for sysfs, rootfs and procfs.

use sc_agent_testkit as common;

use common::{Agent, TempDir};
use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::Duration;

const UUID: &str = "4C4C4544-0042-3510-8052-B4C04F4B4E32";

/// A machine in a temp dir: `bin/` for PATH and the three roots.
struct Machine {
    dir: TempDir,
}

impl Machine {
    fn new() -> Self {
        let dir = TempDir::new();
        std::fs::create_dir_all(dir.path().join("bin")).unwrap();
        // loadavg is the one collector these tests enable.
        dir.write("proc/loadavg", "0.50 0.25 0.10 1/100 4242\n");
        Machine { dir }
    }

    fn fake_dmidecode(&self, script: &str) {
        let path = self
            .dir
            .write("bin/dmidecode", &format!("#!/bin/sh\n{script}\n"));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    /// Runs `--once` with only this machine's `bin/` on PATH.
    fn once(&self) -> (String, String) {
        let root = self.dir.path();
        let config = self.dir.write(
            "sc-agent.yaml",
            &format!(
                "instance: test-host\npaths:\n  procfs: {p}/proc\n  sysfs: {p}/sys\n  rootfs: {p}/root\n{}",
                common::collectors_only(&["loadavg"]),
                p = root.display()
            ),
        );
        let mut command = Command::new(common::bin());
        command
            .args(["--once", "--config", config.to_str().unwrap()])
            .env("PATH", root.join("bin"));
        let mut agent = Agent::spawn_with(&mut command, &[]);
        let status = agent.wait_exit(Duration::from_secs(20)).expect("exit");
        assert!(status.success(), "{}", agent.stderr());
        (agent.stdout(), agent.stderr())
    }
}

fn vm_id(stdout: &str) -> &str {
    let line = stdout
        .lines()
        .find(|l| l.starts_with("node_load1{"))
        .unwrap_or_else(|| panic!("no node_load1 in {stdout}"));
    let start = line.find("vm_id=\"").expect("vm_id label") + 7;
    let end = start + line[start..].find('"').unwrap();
    &line[start..end]
}

#[test]
fn dmidecode_wins_and_is_lower_cased() {
    let m = Machine::new();
    m.fake_dmidecode(&format!("echo '# SMBIOS 3.5 present.'\necho {UUID}"));
    m.dir.write(
        "sys/class/dmi/id/product_uuid",
        "11111111-2222-3333-4444-555555555555\n",
    );
    let (stdout, stderr) = m.once();
    assert_eq!(vm_id(&stdout), UUID.to_lowercase());
    assert!(stderr.contains("from dmidecode -s system-uuid"), "{stderr}");
}

#[test]
fn failing_dmidecode_falls_back_to_product_uuid() {
    let m = Machine::new();
    m.fake_dmidecode("echo 'Not Settable'");
    m.dir.write(
        "sys/class/dmi/id/product_uuid",
        "11111111-2222-3333-4444-555555555555\n",
    );
    m.dir
        .write("root/etc/machine-id", "0123456789abcdef0123456789abcdef\n");
    let (stdout, stderr) = m.once();
    assert_eq!(vm_id(&stdout), "11111111-2222-3333-4444-555555555555");
    assert!(stderr.contains("from DMI product_uuid"), "{stderr}");
}

#[test]
fn without_dmi_machine_id_is_used() {
    let m = Machine::new();
    m.fake_dmidecode("exit 1");
    m.dir
        .write("root/etc/machine-id", "0123456789ABCDEF0123456789ABCDEF\n");
    let (stdout, stderr) = m.once();
    assert_eq!(vm_id(&stdout), "0123456789abcdef0123456789abcdef");
    assert!(stderr.contains("from /etc/machine-id"), "{stderr}");
}

#[test]
fn boot_id_is_the_last_resort_and_says_so() {
    let m = Machine::new();
    m.dir.write(
        "proc/sys/kernel/random/boot_id",
        "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee\n",
    );
    let (stdout, stderr) = m.once();
    assert_eq!(vm_id(&stdout), "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee");
    assert!(stderr.contains("changes at every reboot"), "{stderr}");
}

#[test]
fn no_identity_at_all_is_a_config_error() {
    let m = Machine::new();
    let root = m.dir.path();
    let config = m.dir.write(
        "sc-agent.yaml",
        &format!(
            "paths:\n  procfs: {p}/proc\n  sysfs: {p}/sys\n  rootfs: {p}/root\n",
            p = root.display()
        ),
    );
    let mut command = Command::new(common::bin());
    command
        .args(["--once", "--config", config.to_str().unwrap()])
        .env("PATH", root.join("bin"));
    let mut agent = Agent::spawn_with(&mut command, &[]);
    let status = agent.wait_exit(Duration::from_secs(20)).expect("exit");
    assert_eq!(status.code(), Some(1));
    assert!(
        agent
            .stderr()
            .contains("vm_id: auto-detect found no usable ID"),
        "{}",
        agent.stderr()
    );
}

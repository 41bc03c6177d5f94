//! The packaging, through the real scripts: packaging/install.sh into temporary roots,
//! the systemd unit under `systemd-analyze verify` and under systemd itself (PID 1 in
//! a container), packaging/package.sh, the cloud-config's runcmd against a tarball
//! served from loopback, and the container image's entrypoint with the image's
//! environment.
//!
//! Nothing here writes to the real `/`: installs go to a `--root` in a temp dir, to
//! `/` inside a private mount namespace whose /etc, /usr/local and /var are overlays
//! backed by a temp dir, or into a systemd-nspawn container whose root is an overlay
//! of `/` on a tmpfs. The tools these tests drive (systemd-analyze, systemd-nspawn,
//! busybox, shellcheck, cloud-init, curl, unshare, setpriv) are installed by
//! scripts/test.sh.

use sc_agent_testkit as common;
use sc_agent_testkit::receiver;

use common::{require, Exposition, TempDir};
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A file of packaging/: what ships in the release tarball.
fn script(name: &str) -> PathBuf {
    repo().join("packaging").join(name)
}

fn sha256_of(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    assert!(out.status.success(), "sha256sum {}", path.display());
    String::from_utf8(out.stdout).unwrap()[..64].to_owned()
}

fn text(out: &Output) -> String {
    format!(
        "exit: {:?}\n--- stdout\n{}--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn is_root() -> bool {
    // /proc/self belongs to the process's effective uid.
    fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// A release-like directory: the binary under test, and SHA256SUMS when asked.
struct Release {
    dir: TempDir,
}

impl Release {
    fn new(with_sums: bool) -> Self {
        let dir = TempDir::new();
        let binary = dir.path().join("sc-agent");
        fs::copy(common::bin(), &binary).unwrap();
        if with_sums {
            let sums = format!("{}  sc-agent\n", sha256_of(&binary));
            dir.write("SHA256SUMS", &sums);
        }
        Release { dir }
    }

    fn binary(&self) -> PathBuf {
        self.dir.path().join("sc-agent")
    }

    fn sha256(&self) -> String {
        sha256_of(&self.binary())
    }
}

/// A temp dir to install into; with `group` it has an /etc/group naming sc-agent.
struct Root {
    dir: TempDir,
}

const GID: u32 = 4242;

impl Root {
    fn new() -> Self {
        let dir = TempDir::new();
        dir.write("etc/group", &format!("root:x:0:\nsc-agent:x:{GID}:\n"));
        Root { dir }
    }

    fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative.trim_start_matches('/'))
    }

    fn binary(&self) -> PathBuf {
        self.path("usr/local/bin/sc-agent")
    }
    fn config(&self) -> PathBuf {
        self.path("etc/sc-agent/sc-agent.yaml")
    }
    fn unit(&self) -> PathBuf {
        self.path("etc/systemd/system/sc-agent.service")
    }

    /// Runs install.sh with `--root` this dir, `--no-start` and `args`.
    fn install(&self, args: &[&str]) -> Output {
        let mut command = Command::new("sh");
        command
            .arg(script("install.sh"))
            .arg("--root")
            .arg(self.dir.path())
            .arg("--no-start")
            .args(args);
        run(&mut command)
    }
}

fn run(command: &mut Command) -> Output {
    for (name, _) in std::env::vars().filter(|(n, _)| n.starts_with("SC_")) {
        command.env_remove(name);
    }
    command.stdin(Stdio::null()).output().expect("run command")
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

/// (mtime, mtime_nsec, inode) of each installed file.
fn stamps(root: &Root) -> Vec<(i64, i64, u64)> {
    [root.binary(), root.config(), root.unit()]
        .iter()
        .map(|p| {
            let m = fs::metadata(p).unwrap();
            (m.mtime(), m.mtime_nsec(), m.ino())
        })
        .collect()
}

#[test]
fn installs_binary_config_and_unit_with_a_correct_checksum() {
    let release = Release::new(false);
    let root = Root::new();
    let sha = release.sha256();
    let out = root.install(&[
        "--binary",
        release.binary().to_str().unwrap(),
        "--sha256",
        &sha,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(stdout(&out).contains("checksum ok"), "{}", text(&out));
    assert!(stdout(&out).contains("installed: "), "{}", text(&out));

    assert_eq!(
        fs::read(root.binary()).unwrap(),
        fs::read(common::bin()).unwrap()
    );
    assert_eq!(
        fs::read(root.config()).unwrap(),
        fs::read(script("sc-agent.yaml")).unwrap()
    );
    assert_eq!(
        fs::read(root.unit()).unwrap(),
        fs::read(script("sc-agent.service")).unwrap()
    );
    assert_eq!(mode(&root.binary()), 0o755);
    assert_eq!(mode(&root.config()), 0o640);
    assert_eq!(mode(&root.unit()), 0o644);
    if is_root() {
        // root:sc-agent, the group looked up in <root>/etc/group, not the host's.
        let config = fs::metadata(root.config()).unwrap();
        assert_eq!((config.uid(), config.gid()), (0, GID));
        let binary = fs::metadata(root.binary()).unwrap();
        assert_eq!((binary.uid(), binary.gid()), (0, 0));
    }
    // The example config names the placeholder endpoint, and the root is not /.
    assert!(
        stdout(&out).contains("not starting sc-agent"),
        "{}",
        text(&out)
    );
}

#[test]
fn second_run_with_the_same_inputs_changes_nothing() {
    let release = Release::new(true);
    let root = Root::new();
    let binary = release.binary();
    let args = ["--binary", binary.to_str().unwrap()];
    let first = root.install(&args);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    let before = stamps(&root);
    std::thread::sleep(Duration::from_millis(20));

    let second = root.install(&args);
    assert_eq!(second.status.code(), Some(0), "{}", text(&second));
    assert!(
        stdout(&second).contains("nothing changed"),
        "{}",
        text(&second)
    );
    assert!(
        !stdout(&second).contains("installed: "),
        "{}",
        text(&second)
    );
    assert_eq!(stamps(&root), before, "a no-op run touched the files");
    // No leftovers from the staged copies.
    let leftovers: Vec<_> = ["usr/local/bin", "etc/sc-agent", "etc/systemd/system"]
        .iter()
        .flat_map(|d| fs::read_dir(root.path(d)).unwrap())
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn a_new_binary_replaces_only_the_binary() {
    let release = Release::new(false);
    let root = Root::new();
    let binary = release.binary();
    let out = root.install(&[
        "--binary",
        binary.to_str().unwrap(),
        "--sha256",
        &release.sha256(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let before = stamps(&root);

    // Same program, different bytes: as an upgrade looks to install.sh.
    let mut bytes = fs::read(&binary).unwrap();
    bytes.extend_from_slice(b"\0upgrade");
    fs::write(&binary, bytes).unwrap();
    let out = root.install(&[
        "--binary",
        binary.to_str().unwrap(),
        "--sha256",
        &release.sha256(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        stdout(&out).contains("installed: binary "),
        "{}",
        text(&out)
    );
    let after = stamps(&root);
    assert_ne!(after[0], before[0], "binary not replaced");
    assert_eq!(after[1..], before[1..], "config or unit touched");
    assert_eq!(fs::read(root.binary()).unwrap(), fs::read(&binary).unwrap());
}

#[test]
fn wrong_checksum_is_refused_and_nothing_is_installed() {
    let release = Release::new(false);
    let root = Root::new();
    let binary = release.binary();
    let wrong = "0123456789abcdef".repeat(4);
    let out = root.install(&["--binary", binary.to_str().unwrap(), "--sha256", &wrong]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("checksum mismatch") && stderr.contains(&wrong),
        "{}",
        text(&out)
    );
    assert!(stderr.contains("refusing to install"), "{}", text(&out));
    assert!(!root.path("usr").exists(), "something was installed");
    assert!(
        !root.path("etc/sc-agent").exists(),
        "something was installed"
    );
    assert!(
        !root.path("etc/systemd").exists(),
        "something was installed"
    );

    // The same through SHA256SUMS next to the binary.
    release
        .dir
        .write("SHA256SUMS", &format!("{wrong}  sc-agent\n"));
    let out = root.install(&["--binary", binary.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("checksum mismatch"),
        "{}",
        text(&out)
    );
    assert!(!root.path("usr").exists(), "something was installed");
}

#[test]
fn no_checksum_and_bad_usage_are_refused() {
    let release = Release::new(false);
    let root = Root::new();
    let binary = release.binary();
    let out = root.install(&["--binary", binary.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no checksum"),
        "{}",
        text(&out)
    );
    let out = root.install(&["--binary", binary.to_str().unwrap(), "--sha256", "abc"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("64 hexadecimal digits"),
        "{}",
        text(&out)
    );
    let out = root.install(&[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--binary PATH is required"),
        "{}",
        text(&out)
    );
    let out = root.install(&["--bogus"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(!root.path("usr").exists());
}

#[test]
fn an_existing_operator_config_is_never_overwritten() {
    let release = Release::new(true);
    let root = Root::new();
    let mine = "# the operator's\ncollection_interval: 30s\nlabels:\n  team: sre\n";
    root.dir.write("etc/sc-agent/sc-agent.yaml", mine);
    fs::set_permissions(root.config(), fs::Permissions::from_mode(0o600)).unwrap();
    let binary = release.binary();
    let out = root.install(&["--binary", binary.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(fs::read_to_string(root.config()).unwrap(), mine);
    assert_eq!(mode(&root.config()), 0o600, "its mode was changed");
    assert!(
        stdout(&out).contains("keeping the existing config"),
        "{}",
        text(&out)
    );
    assert!(root.binary().is_file() && root.unit().is_file());
}

#[test]
fn an_explicit_config_replaces_it_only_when_valid() {
    let release = Release::new(true);
    let root = Root::new();
    let binary = release.binary();
    let out = root.install(&["--binary", binary.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    let scratch = TempDir::new();
    let bad = scratch.write("bad.yaml", "collection_interval: 10 seconds\n");
    let out = root.install(&[
        "--binary",
        binary.to_str().unwrap(),
        "--config",
        bad.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("is not valid") && stderr.contains("collection_interval"),
        "{}",
        text(&out)
    );
    assert_eq!(
        fs::read(root.config()).unwrap(),
        fs::read(script("sc-agent.yaml")).unwrap(),
        "an invalid config replaced the installed one"
    );

    let good_text = "ingestor_endpoint: http://127.0.0.1:9/api/v1/write\njob: fleet\n";
    let good = scratch.write("good.yaml", good_text);
    let out = root.install(&[
        "--binary",
        binary.to_str().unwrap(),
        "--config",
        good.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        stdout(&out).contains("installed: config "),
        "{}",
        text(&out)
    );
    assert_eq!(fs::read_to_string(root.config()).unwrap(), good_text);
    assert_eq!(mode(&root.config()), 0o640);
}

#[test]
fn an_installed_config_the_new_binary_rejects_stops_the_upgrade() {
    let release = Release::new(true);
    let root = Root::new();
    root.dir
        .write("etc/sc-agent/sc-agent.yaml", "no_such_field: 1\n");
    let binary = release.binary();
    let out = root.install(&["--binary", binary.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no_such_field"),
        "{}",
        text(&out)
    );
    assert!(!root.binary().exists(), "the binary was installed anyway");
}

#[test]
fn the_installed_binary_runs_from_the_installed_paths() {
    let release = Release::new(true);
    let root = Root::new();
    let binary = release.binary();
    let out = root.install(&["--binary", binary.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    // The example config pushes to a placeholder endpoint; --once only prints, and
    // SC_INGESTOR_ENDPOINT= (stdout mode) keeps it so should that ever change.
    let mut command = Command::new(root.binary());
    command.arg("--config").arg(root.config()).arg("--once");
    let mut agent = common::Agent::spawn_with(&mut command, &[("SC_INGESTOR_ENDPOINT", "")]);
    let status = agent
        .wait_exit(Duration::from_secs(30))
        .expect("sc-agent --once did not exit");
    assert_eq!(status.code(), Some(0), "{}", agent.stderr());
    let metrics = Exposition::parse(&agent.stdout());
    let load = metrics.find("node_load1").next().expect("node_load1");
    assert_eq!(load.labels["job"], "node");
    assert_eq!(load.labels["env"], "prod", "the example config's label");
    assert!(
        metrics
            .value("node_scrape_collector_success", &[("collector", "loadavg")])
            .is_some(),
        "{}",
        agent.stdout()
    );
}

/// systemd's own unit directory, copied so `--root` can resolve the unit's
/// dependencies (sysinit.target, network-online.target, ...).
fn systemd_units_into(root: &Root) {
    let units = ["/usr/lib/systemd/system", "/lib/systemd/system"]
        .into_iter()
        .map(Path::new)
        .find(|p| p.join("sysinit.target").exists())
        .expect(
            "systemd's units (sysinit.target) are not installed: scripts/test.sh installs systemd",
        );
    fs::create_dir_all(root.path("usr/lib/systemd")).unwrap();
    let out = run(Command::new("cp")
        .arg("-a")
        .arg(units)
        .arg(root.path("usr/lib/systemd/")));
    assert!(out.status.success(), "{}", text(&out));
}

fn verify(root: &Root) -> Output {
    let analyze = require("systemd-analyze");
    run(Command::new(analyze)
        .arg("verify")
        .arg("--man=no")
        .arg(format!("--root={}", root.dir.path().display()))
        .arg("sc-agent.service"))
}

#[test]
fn the_unit_passes_systemd_analyze_verify() {
    let release = Release::new(true);
    let root = Root::new();
    systemd_units_into(&root);
    let binary = release.binary();
    let out = root.install(&["--binary", binary.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        stdout(&out).contains("unit ok: systemd-analyze verify"),
        "{}",
        text(&out)
    );

    // With --root, verify also checks ExecStart= against <root>/usr/local/bin.
    // It exits 0 on unknown or misspelt settings, so its output must be clean too.
    let out = verify(&root);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !all.contains("sc-agent"),
        "systemd-analyze verify warns:\n{all}"
    );

    // The check catches what it should: a misspelt value and a missing binary.
    let unit = fs::read_to_string(root.unit()).unwrap();
    fs::write(
        root.unit(),
        unit.replace("ProtectHome=read-only", "ProtectHome=readonly"),
    )
    .unwrap();
    let out = verify(&root);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("readonly"),
        "{}",
        text(&out)
    );
    fs::write(root.unit(), &unit).unwrap();
    fs::remove_file(root.binary()).unwrap();
    let out = verify(&root);
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
}

#[test]
fn the_unit_keeps_the_hardening_the_agent_was_checked_with() {
    let unit = fs::read_to_string(script("sc-agent.service")).unwrap();
    let mut settings: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for line in unit
        .lines()
        .filter(|l| !l.starts_with('#') && l.contains('='))
    {
        let (key, value) = line.split_once('=').unwrap();
        settings.entry(key).or_default().push(value);
    }
    let one = |key: &str| -> &str {
        match settings.get(key).map(Vec::as_slice) {
            Some([value]) => value,
            other => panic!("{key}: expected one value, got {other:?}"),
        }
    };
    assert_eq!(
        one("ExecStart"),
        "/usr/local/bin/sc-agent --config /etc/sc-agent/sc-agent.yaml"
    );
    assert_eq!(
        settings["ExecReload"].last(),
        Some(&"/bin/kill -HUP $MAINPID")
    );
    assert_eq!(one("User"), "sc-agent");
    for (key, value) in [
        ("ProtectSystem", "strict"),
        ("ProtectHome", "read-only"),
        ("NoNewPrivileges", "yes"),
        ("PrivateTmp", "yes"),
        ("PrivateDevices", "yes"),
        ("CapabilityBoundingSet", "CAP_DAC_READ_SEARCH"),
        ("AmbientCapabilities", "CAP_DAC_READ_SEARCH"),
        (
            "RestrictAddressFamilies",
            "AF_INET AF_INET6 AF_UNIX AF_NETLINK",
        ),
        ("SystemCallArchitectures", "native"),
        ("Restart", "on-failure"),
        ("MemoryDenyWriteExecute", "yes"),
    ] {
        assert_eq!(one(key), value, "{key}");
    }
    assert!(settings["SystemCallFilter"].contains(&"@system-service"));
    assert!(
        !settings.contains_key("PrivateNetwork"),
        "netdev needs the host's network"
    );
}

/// A directory whose only commands are busybox applets (no adduser in Debian's
/// busybox, so this covers --root installs, as in an image build).
fn busybox_path(dir: &TempDir) -> PathBuf {
    let busybox = require("busybox");
    let bin = dir.path().join("bb");
    fs::create_dir_all(&bin).unwrap();
    let list = run(Command::new(&busybox).arg("--list"));
    assert!(list.status.success(), "{}", text(&list));
    for applet in String::from_utf8(list.stdout).unwrap().lines() {
        std::os::unix::fs::symlink(&busybox, bin.join(applet)).unwrap();
    }
    bin
}

#[test]
fn install_sh_runs_under_busybox_alone() {
    let release = Release::new(true);
    let root = Root::new();
    let scratch = TempDir::new();
    let bb = busybox_path(&scratch);
    let binary = release.binary();
    let install = |args: &[&str]| {
        run(Command::new(bb.join("sh"))
            .env_clear()
            .env("PATH", &bb)
            .arg(script("install.sh"))
            .arg("--root")
            .arg(root.dir.path())
            .args(args))
    };
    let out = install(&["--binary", binary.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        stdout(&out).contains("systemd-analyze not found"),
        "{}",
        text(&out)
    );
    assert_eq!(mode(&root.config()), 0o640);
    assert_eq!(fs::read(root.binary()).unwrap(), fs::read(&binary).unwrap());
    let out = install(&["--binary", binary.to_str().unwrap()]);
    assert!(stdout(&out).contains("nothing changed"), "{}", text(&out));
    let out = install(&[
        "--binary",
        binary.to_str().unwrap(),
        "--sha256",
        &"f".repeat(64),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
}

#[test]
fn the_scripts_are_shellcheck_clean() {
    let shellcheck = require("shellcheck");
    let out = run(Command::new(shellcheck)
        .arg("--shell=sh")
        .arg(script("install.sh"))
        .arg(script("package.sh")));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

/// install.sh into `/` as on a real VM, inside a private mount namespace: /etc,
/// /usr/local and /var are overlays whose upper layers live in `scratch`, /run is
/// a tmpfs saying systemd is PID 1, and `systemctl` is a fake that records its calls.
struct Namespace {
    scratch: TempDir,
}

const FAKE_SYSTEMCTL: &str = r#"#!/bin/sh
state=${FAKE_SYSTEMCTL_STATE:?}
echo "$*" >>"$state/calls"
case "$*" in
  "is-enabled --quiet sc-agent") [ -f "$state/enabled" ] ;;
  "is-active --quiet sc-agent") [ -f "$state/active" ] ;;
  "enable --now sc-agent") touch "$state/enabled" "$state/active" ;;
  "start sc-agent" | "restart sc-agent") touch "$state/active" ;;
  "daemon-reload" | "reload sc-agent") ;;
  *) echo "fake systemctl: unexpected: $*" >&2; exit 1 ;;
esac
"#;

impl Namespace {
    fn new() -> Self {
        assert!(
            is_root(),
            "this test installs into / inside a mount namespace and needs root (as CI has)"
        );
        require("unshare");
        let scratch = TempDir::new();
        for dir in ["etc", "usr-local", "var"] {
            fs::create_dir_all(scratch.path().join(format!("{dir}-upper"))).unwrap();
            fs::create_dir_all(scratch.path().join(format!("{dir}-work"))).unwrap();
        }
        fs::create_dir_all(scratch.path().join("state")).unwrap();
        let fake = scratch.write("bin/systemctl", FAKE_SYSTEMCTL);
        fs::set_permissions(&fake, fs::Permissions::from_mode(0o755)).unwrap();
        Namespace { scratch }
    }

    fn install(&self, args: &[&str]) -> Output {
        let s = self.scratch.path().display();
        // Every mount must succeed before install.sh runs (sh -e), so a failure
        // can never fall through to the real /.
        let setup = format!(
            "mount --make-rprivate /\n\
             mount -t overlay overlay -o lowerdir=/etc,upperdir={s}/etc-upper,workdir={s}/etc-work /etc\n\
             mount -t overlay overlay -o lowerdir=/usr/local,upperdir={s}/usr-local-upper,workdir={s}/usr-local-work /usr/local\n\
             mount -t overlay overlay -o lowerdir=/var,upperdir={s}/var-upper,workdir={s}/var-work /var\n\
             mount -t tmpfs tmpfs /run\n\
             mkdir -p /run/systemd/system\n\
             exec sh \"$@\"\n"
        );
        let path = format!("{s}/bin:{}", std::env::var("PATH").unwrap_or_default());
        run(Command::new("unshare")
            .args(["--mount", "--", "sh", "-eu", "-c", &setup, "sh"])
            .arg(script("install.sh"))
            .args(args)
            .env("PATH", path)
            .env("FAKE_SYSTEMCTL_STATE", self.scratch.path().join("state")))
    }

    /// The systemctl calls since the last look.
    fn calls(&self) -> Vec<String> {
        let path = self.scratch.path().join("state/calls");
        let calls = fs::read_to_string(&path).unwrap_or_default();
        let _ = fs::remove_file(&path);
        calls.lines().map(str::to_owned).collect()
    }

    fn upper(&self, relative: &str) -> PathBuf {
        self.scratch.path().join(relative)
    }
}

#[test]
fn install_into_slash_creates_the_user_and_drives_systemctl() {
    let ns = Namespace::new();
    let release = Release::new(true);
    let binary = release.binary();
    let bin = binary.to_str().unwrap();
    let scratch = TempDir::new();

    // The example config still names the placeholder endpoint: installed, not started.
    let out = ns.install(&["--binary", bin]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        stdout(&out)
            .contains("installed: group sc-agent, user sc-agent, binary /usr/local/bin/sc-agent"),
        "{}",
        text(&out)
    );
    assert!(stdout(&out).contains("placeholder"), "{}", text(&out));
    assert_eq!(ns.calls(), ["is-enabled --quiet sc-agent", "daemon-reload"]);
    let passwd = fs::read_to_string(ns.upper("etc-upper/passwd")).unwrap();
    let user = passwd
        .lines()
        .find(|l| l.starts_with("sc-agent:"))
        .unwrap_or_else(|| panic!("no sc-agent user in\n{passwd}"));
    assert!(user.ends_with(":/nonexistent:/usr/sbin/nologin"), "{user}");
    let group = fs::read_to_string(ns.upper("etc-upper/group")).unwrap();
    let gid: u32 = group
        .lines()
        .find_map(|l| l.strip_prefix("sc-agent:x:"))
        .and_then(|rest| rest.trim_end_matches(':').parse().ok())
        .unwrap_or_else(|| panic!("no sc-agent group in\n{group}"));
    let config = fs::metadata(ns.upper("etc-upper/sc-agent/sc-agent.yaml")).unwrap();
    assert_eq!(
        (config.uid(), config.gid(), config.mode() & 0o777),
        (0, gid, 0o640)
    );
    assert!(ns.upper("usr-local-upper/bin/sc-agent").is_file());
    assert!(ns
        .upper("etc-upper/systemd/system/sc-agent.service")
        .is_file());

    // A real endpoint: enabled and started.
    let config = scratch.write(
        "sc-agent.yaml",
        "ingestor_endpoint: http://127.0.0.1:9/api/v1/write\n",
    );
    let with_config = ["--binary", bin, "--config", config.to_str().unwrap()];
    let out = ns.install(&with_config);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(
        ns.calls(),
        [
            "is-enabled --quiet sc-agent",
            "daemon-reload",
            "enable --now sc-agent"
        ]
    );

    // Same inputs: nothing changes, systemctl only asked.
    let out = ns.install(&with_config);
    assert!(stdout(&out).contains("nothing changed"), "{}", text(&out));
    assert_eq!(
        ns.calls(),
        ["is-enabled --quiet sc-agent", "is-active --quiet sc-agent"]
    );

    // A changed config: reload (SIGHUP through ExecReload), not restart.
    fs::write(
        &config,
        "ingestor_endpoint: http://127.0.0.1:9/api/v1/write\njob: fleet\n",
    )
    .unwrap();
    let out = ns.install(&with_config);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(
        ns.calls(),
        [
            "is-enabled --quiet sc-agent",
            "is-active --quiet sc-agent",
            "reload sc-agent"
        ]
    );

    // A new binary: restart.
    let mut bytes = fs::read(&binary).unwrap();
    bytes.extend_from_slice(b"\0upgrade");
    fs::write(&binary, bytes).unwrap();
    release
        .dir
        .write("SHA256SUMS", &format!("{}  sc-agent\n", release.sha256()));
    let out = ns.install(&with_config);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(
        ns.calls(),
        [
            "is-enabled --quiet sc-agent",
            "is-active --quiet sc-agent",
            "restart sc-agent"
        ]
    );

    // --no-start: systemctl is never called.
    let out = ns.install(&["--binary", bin, "--no-start"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(ns.calls().is_empty());
    assert!(
        stdout(&out).contains("not starting sc-agent: --no-start"),
        "{}",
        text(&out)
    );
}

/// Packages the test binary with packaging/package.sh into `out`; returns the tarball.
fn package(out: &Path) -> PathBuf {
    let result = run(Command::new("sh")
        .arg(script("package.sh"))
        .arg("--binary")
        .arg(common::bin())
        .arg("--out")
        .arg(out)
        .env("SOURCE_DATE_EPOCH", "1700000000"));
    assert_eq!(result.status.code(), Some(0), "{}", text(&result));
    PathBuf::from(stdout(&result).lines().last().unwrap())
}

#[test]
fn package_sh_makes_a_reproducible_tarball_with_checksums() {
    let dist = TempDir::new();
    let tarball = package(dist.path());
    let version = env!("CARGO_PKG_VERSION");
    let name = format!("sc-agent-{version}-x86_64-linux-musl");
    assert_eq!(tarball, dist.path().join(format!("{name}.tar.gz")));
    let sha_file = fs::read_to_string(dist.path().join(format!("{name}.tar.gz.sha256"))).unwrap();
    assert_eq!(
        sha_file,
        format!("{}  {name}.tar.gz\n", sha256_of(&tarball))
    );

    let listing = run(Command::new("tar").arg("-tvzf").arg(&tarball));
    assert!(listing.status.success(), "{}", text(&listing));
    let listing = stdout(&listing);
    let mut names: Vec<&str> = listing
        .lines()
        .map(|l| l.rsplit(' ').next().unwrap())
        .collect();
    names.sort();
    let expected: Vec<String> = [
        "",
        "Dockerfile",
        "SHA256SUMS",
        "container-host.yaml",
        "install.sh",
        "sc-agent",
        "sc-agent.service",
        "sc-agent.yaml",
    ]
    .iter()
    .map(|f| format!("{name}/{f}"))
    .collect();
    assert_eq!(names, expected);
    assert!(listing.lines().all(|l| l.contains(" 0/0 ")), "{listing}");

    // Unpacked, SHA256SUMS checks out and install.sh installs from it.
    let unpacked = TempDir::new();
    let out = run(Command::new("tar")
        .arg("-xzf")
        .arg(&tarball)
        .arg("-C")
        .arg(unpacked.path()));
    assert!(out.status.success(), "{}", text(&out));
    let dir = unpacked.path().join(&name);
    let check = run(Command::new("sha256sum")
        .arg("-c")
        .arg("SHA256SUMS")
        .current_dir(&dir));
    assert!(check.status.success(), "{}", text(&check));
    assert_eq!(stdout(&check).lines().count(), 6, "{}", stdout(&check));
    let root = Root::new();
    let out = run(Command::new(dir.join("install.sh"))
        .arg("--binary")
        .arg(dir.join("sc-agent"))
        .arg("--root")
        .arg(root.dir.path()));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(root.binary().is_file());

    // A file changed after packaging is caught.
    let unit = dir.join("sc-agent.service");
    fs::write(&unit, fs::read_to_string(&unit).unwrap() + "\n# edited\n").unwrap();
    let out = run(Command::new(dir.join("install.sh"))
        .arg("--binary")
        .arg(dir.join("sc-agent"))
        .arg("--root")
        .arg(Root::new().dir.path()));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));

    // Reproducible: the same inputs give the same bytes.
    let again = TempDir::new();
    assert_eq!(sha256_of(&package(again.path())), sha256_of(&tarball));
}

/// Serves the files of `dir` over HTTP on loopback until dropped.
struct Server {
    port: u16,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    fn serve(dir: PathBuf) -> Self {
        use std::io::{BufRead, BufReader, Write};
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            while !stopped.load(Ordering::Relaxed) {
                let Ok((stream, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                };
                stream.set_nonblocking(false).unwrap();
                stream
                    .set_read_timeout(Some(Duration::from_secs(10)))
                    .unwrap();
                let mut reader = BufReader::new(stream);
                let mut request = String::new();
                if reader.read_line(&mut request).is_err() {
                    continue;
                }
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    line.clear();
                }
                let path = request.split(' ').nth(1).unwrap_or("/");
                let file = dir.join(path.trim_start_matches('/'));
                let mut stream = reader.into_inner();
                let _ = match fs::read(&file) {
                    Ok(body) if !path.contains("..") => stream
                        .write_all(
                            format!(
                                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                                body.len()
                            )
                            .as_bytes(),
                        )
                        .and_then(|_| stream.write_all(&body)),
                    _ => stream.write_all(
                        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    ),
                };
            }
        });
        Server {
            port,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn cloud_config() -> serde_yaml::Value {
    let text = fs::read_to_string(script("cloud-config.yaml")).unwrap();
    assert!(
        text.starts_with("#cloud-config\n"),
        "cloud-init needs the first line to be #cloud-config"
    );
    serde_yaml::from_str(&text).unwrap()
}

#[test]
fn the_cloud_config_passes_cloud_inits_schema() {
    let cloud_init = require("cloud-init");
    let out = run(Command::new(cloud_init)
        .args(["schema", "--config-file"])
        .arg(script("cloud-config.yaml")));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        stdout(&out).contains("Valid cloud-config"),
        "{}",
        text(&out)
    );
}

/// Replaces `from` with `to` in `text`, failing when `from` is not there (so the
/// test notices when the cloud-config it adapts has changed).
fn substitute(text: &str, from: &str, to: &str) -> String {
    assert!(
        text.contains(from),
        "the cloud-config's runcmd no longer has {from:?}:\n{text}"
    );
    text.replace(from, to)
}

#[test]
fn the_cloud_config_installs_from_a_tarball_served_on_loopback() {
    require("curl");
    let config = cloud_config();
    let dist = TempDir::new();
    let tarball = package(dist.path());
    let server = Server::serve(dist.path().to_owned());
    let root = Root::new();

    // write_files, as cloud-init does them, into the root.
    let files = config["write_files"].as_sequence().expect("write_files");
    for file in files {
        let path = root.path(file["path"].as_str().unwrap());
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, file["content"].as_str().unwrap()).unwrap();
        let permissions = u32::from_str_radix(file["permissions"].as_str().unwrap(), 8).unwrap();
        assert_eq!(
            permissions,
            0o640,
            "{}: secrets and config are 0640",
            path.display()
        );
        fs::set_permissions(&path, fs::Permissions::from_mode(permissions)).unwrap();
        assert_eq!(file["owner"].as_str(), Some("root:sc-agent"));
        if is_root() {
            std::os::unix::fs::chown(&path, Some(0), Some(GID)).unwrap();
        }
    }
    let written_config = fs::read_to_string(root.config()).unwrap();

    // runcmd, with the URL and SHA-256 filled in, installing into the root.
    let runcmd = config["runcmd"].as_sequence().expect("runcmd");
    assert_eq!(runcmd.len(), 1);
    let mut commands = runcmd[0].as_str().unwrap().to_owned();
    commands = substitute(
        &commands,
        "https://downloads.example.invalid/sc-agent/$version/$name.tar.gz",
        &format!("http://127.0.0.1:{}/$name.tar.gz", server.port),
    );
    commands = substitute(&commands, &"0".repeat(64), &sha256_of(&tarball));
    assert!(
        commands.contains(&format!("version={}\n", env!("CARGO_PKG_VERSION"))),
        "the cloud-config installs another version than Cargo.toml's"
    );
    commands = substitute(
        &commands,
        "/install.sh\" --binary",
        "/install.sh\" --root \"$SC_TEST_ROOT\" --binary",
    );
    let out = run(Command::new("sh")
        .arg("-c")
        .arg(&commands)
        .env("SC_TEST_ROOT", root.dir.path()));
    assert_eq!(out.status.code(), Some(0), "{}\n{commands}", text(&out));
    assert_eq!(
        fs::read(root.binary()).unwrap(),
        fs::read(common::bin()).unwrap()
    );
    assert!(root.unit().is_file());
    assert_eq!(
        fs::read_to_string(root.config()).unwrap(),
        written_config,
        "install.sh replaced the config cloud-init wrote"
    );
    assert!(
        stdout(&out).contains("keeping the existing config"),
        "{}",
        text(&out)
    );
    assert_eq!(mode(&root.path("etc/sc-agent/sc-agent.env")), 0o640);

    // A tarball that does not match the SHA-256 stops it before install.sh runs.
    let other = Root::new();
    let wrong = substitute(&commands, &sha256_of(&tarball), &"1".repeat(64));
    let out = run(Command::new("sh")
        .arg("-c")
        .arg(&wrong)
        .env("SC_TEST_ROOT", other.dir.path()));
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
    assert!(!other.path("usr").exists());
}

/// The image's ENV, USER and ENTRYPOINT, read from packaging/Dockerfile's last stage.
struct Image {
    env: Vec<(String, String)>,
    user: String,
    entrypoint: Vec<String>,
}

fn image() -> Image {
    let text = fs::read_to_string(script("Dockerfile")).unwrap();
    // Join continuation lines, drop comments.
    let mut instructions = Vec::new();
    let mut current = String::new();
    for line in text.lines().filter(|l| !l.trim_start().starts_with('#')) {
        match line.strip_suffix('\\') {
            Some(part) => current.push_str(part),
            None => {
                current.push_str(line);
                if !current.trim().is_empty() {
                    instructions.push(current.trim().to_owned());
                }
                current.clear();
            }
        }
    }
    let last_from = instructions
        .iter()
        .rposition(|i| i.starts_with("FROM "))
        .expect("FROM");
    let mut image = Image {
        env: Vec::new(),
        user: String::new(),
        entrypoint: Vec::new(),
    };
    for instruction in &instructions[last_from..] {
        let (keyword, rest) = instruction.split_once(' ').unwrap();
        match keyword {
            "ENV" => image.env.extend(rest.split_whitespace().map(|pair| {
                let (k, v) = pair.split_once('=').expect("ENV key=value");
                (k.to_owned(), v.to_owned())
            })),
            "USER" => image.user = rest.trim().to_owned(),
            "ENTRYPOINT" => {
                image.entrypoint = serde_yaml::from_str(rest).expect("exec-form ENTRYPOINT")
            }
            _ => {}
        }
    }
    image
}

#[test]
fn the_container_entrypoint_runs_with_the_images_env_as_its_user() {
    assert!(
        is_root(),
        "this test switches to the image's uid and needs root (as CI has)"
    );
    let setpriv = require("setpriv");
    let image = image();
    assert_eq!(image.entrypoint, ["/usr/local/bin/sc-agent"]);
    let (uid, gid) = image.user.split_once(':').expect("USER uid:gid");
    assert_ne!(uid, "0", "the image runs as a non-root user");
    let env: BTreeMap<_, _> = image.env.iter().cloned().collect();
    assert_eq!(env["SC_PROCFS"], "/host/proc");
    assert_eq!(env["SC_SYSFS"], "/host/sys");
    assert_eq!(env["SC_ROOTFS"], "/host/root");

    // The image's /host/{proc,sys,root}, as `docker run -v` mounts them, are here
    // links under a temp dir: the env is the image's with that prefix.
    let host = TempDir::new();
    fs::set_permissions(host.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let image_bin = host.path().join("usr/local/bin/sc-agent");
    fs::create_dir_all(image_bin.parent().unwrap()).unwrap();
    fs::copy(common::bin(), &image_bin).unwrap();
    fs::create_dir_all(host.path().join("host")).unwrap();
    // Reachable by the image's uid whatever the umask.
    for dir in ["usr", "usr/local", "usr/local/bin", "host"] {
        fs::set_permissions(host.path().join(dir), fs::Permissions::from_mode(0o755)).unwrap();
    }
    for (link, target) in [("proc", "/proc"), ("sys", "/sys"), ("root", "/")] {
        std::os::unix::fs::symlink(target, host.path().join("host").join(link)).unwrap();
    }
    let mut command = Command::new(setpriv);
    command
        .args([
            &format!("--reuid={uid}"),
            &format!("--regid={gid}"),
            "--clear-groups",
        ])
        .args([
            "--inh-caps=-all",
            "--bounding-set=-all",
            "--no-new-privs",
            "--",
        ])
        .arg(&image_bin)
        .arg("--once");
    let mut vars: Vec<(String, String)> = image
        .env
        .iter()
        .map(|(k, v)| (k.clone(), format!("{}{v}", host.path().display())))
        .collect();
    vars.push(("SC_INGESTOR_ENDPOINT".into(), String::new()));
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    // The test binary lives under target/, which the unprivileged uid may not
    // reach; the copy under the temp dir is what runs.
    let mut agent = common::Agent::spawn_with(&mut command, &vars);
    let status = agent
        .wait_exit(Duration::from_secs(30))
        .expect("the entrypoint did not exit");
    assert_eq!(status.code(), Some(0), "{}", agent.stderr());
    let metrics = Exposition::parse(&agent.stdout());
    assert!(
        metrics.find("node_load1").next().is_some(),
        "{}",
        agent.stdout()
    );
    // Unprivileged: no dmidecode, no root-only DMI UUID; machine-id or boot ID.
    assert!(
        agent.stderr().contains("from /etc/machine-id") || agent.stderr().contains("boot ID"),
        "{}",
        agent.stderr()
    );
}

/// The default collectors that report success 0 when the agent runs here outside
/// any sandbox: those whose source this machine does not have.
fn collectors_without_data_on_this_host() -> Vec<String> {
    let dir = TempDir::new();
    dir.write("host.yaml", "vm_id: host-check\njob: e2e\n");
    let mut command = Command::new(common::bin());
    command
        .arg("--once")
        .arg("--config")
        .arg(dir.path().join("host.yaml"));
    let mut agent = common::Agent::spawn_with(&mut command, &[("SC_LOG_LEVEL", "error")]);
    let status = agent
        .wait_exit(Duration::from_secs(30))
        .expect("sc-agent --once did not exit");
    assert!(status.success(), "{}", agent.stderr());
    Exposition::parse(&agent.stdout())
        .find("node_scrape_collector_success")
        .filter(|s| s.value == 0.0)
        .filter_map(|s| s.labels.get("collector").cloned())
        .collect()
}

/// Runs inside the container booted by the test below, as a oneshot unit; prints
/// `RESULT name=value` lines for the test to check.
const SYSTEMD_E2E: &str = r#"#!/bin/sh
exec >/root/e2e.out 2>&1
result() { echo "RESULT $1=$2"; }
uuid=4c4c4544-0042-3510-8052-b4c04f384d33
# A dmidecode that can only answer with CAP_DAC_READ_SEARCH, as the real one
# reading the root-only DMI tables.
mkdir -p /opt/dmi
echo "$uuid" >/opt/dmi/uuid
chmod 0400 /opt/dmi/uuid
chmod 0700 /opt/dmi
printf '#!/bin/sh\n[ "$*" = "-s system-uuid" ] || exit 2\nexec cat /opt/dmi/uuid\n' >/usr/local/sbin/dmidecode
chmod 0755 /usr/local/sbin/dmidecode

cd /root/release
sh ./install.sh --binary "$PWD/sc-agent" --config /root/sc-agent.yaml
result install_rc $?
sleep 3
result active "$(systemctl is-active sc-agent)"
# The spool's directory: made by StateDirectory=, writable under ProtectSystem=strict.
result state_dir "$(stat -c '%U %a' /var/lib/sc-agent)"
result spool_dir "$(stat -c '%U %a' /var/lib/sc-agent/spool)"
pid=$(systemctl show -p MainPID --value sc-agent)
result uid "$(awk '/^Uid:/ { print $2 }' /proc/$pid/status)"
result capeff "$(awk '/^CapEff:/ { print $2 }' /proc/$pid/status)"
result capamb "$(awk '/^CapAmb:/ { print $2 }' /proc/$pid/status)"
result nonewprivs "$(awk '/^NoNewPrivs:/ { print $2 }' /proc/$pid/status)"
result seccomp "$(awk '/^Seccomp:/ { print $2 }' /proc/$pid/status)"
journalctl -u sc-agent --no-pager -o cat >/root/journal.txt
result vm_id_line "$(grep -m1 'vm_id .* (from' /root/journal.txt)"
result collectors_ok "$(grep -c '^node_scrape_collector_success{.*} 1$' /root/journal.txt)"
result collectors_failed "$(grep -c '^node_scrape_collector_success{.*} 0$' /root/journal.txt)"
result failed_names "$(grep '^node_scrape_collector_success{.*} 0$' /root/journal.txt | sed 's/.*collector="\([a-z_]*\)".*/\1/' | sort -u | tr '\n' ' ')"
result netlink_fallbacks "$(grep -c 'netlink socket(.*instead' /root/journal.txt)"

result second_run "$(sh ./install.sh --binary "$PWD/sc-agent" --config /root/sc-agent.yaml | grep -c 'nothing changed')"
printf 'labels:\n  reloaded: "yes"\n' >>/root/sc-agent.yaml
result config_change "$(sh ./install.sh --binary "$PWD/sc-agent" --config /root/sc-agent.yaml | grep -c 'reloaded sc-agent')"
sleep 3
result reloaded_series "$(journalctl -u sc-agent --no-pager -o cat | grep -c 'reloaded="yes"')"

cp /etc/sc-agent/sc-agent.yaml /root/good.yaml
echo 'collection_interval: soon' >>/etc/sc-agent/sc-agent.yaml
systemctl reload sc-agent
result bad_reload_rc $?
result active_after_bad_reload "$(systemctl is-active sc-agent)"
cp /root/good.yaml /etc/sc-agent/sc-agent.yaml

# Remote write from inside the sandbox: a receiver on loopback, a bearer token in
# a 0640 root:sc-agent file, switched on by a reload.
python3 - <<'PY' &
import http.server
class Receiver(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with open("/root/rw.log", "a") as log:
            log.write("POST %s %s %s %d\n" % (self.path, self.headers.get("Content-Encoding"),
                                              self.headers.get("Authorization"), len(body)))
        self.send_response(204)
        self.end_headers()
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", 19091), Receiver).serve_forever()
PY
sleep 1
echo e2e-secret-token >/etc/sc-agent/token
chgrp sc-agent /etc/sc-agent/token
chmod 0640 /etc/sc-agent/token
printf 'ingestor_endpoint: http://127.0.0.1:19091/api/v1/write\nremote_write:\n  bearer_token_file: /etc/sc-agent/token\n' >>/root/sc-agent.yaml
result rw_install "$(sh ./install.sh --binary "$PWD/sc-agent" --config /root/sc-agent.yaml | grep -c 'reloaded sc-agent')"
sleep 4
result rw_posts "$(grep -c '^POST /api/v1/write snappy Bearer e2e-secret-token [1-9]' /root/rw.log)"
result rw_errors "$(journalctl -u sc-agent --no-pager -o cat | grep -c '^ERROR')"

# HTTPS with a private CA (remote_write.tls.ca_file): TLS inside MemoryDenyWriteExecute and
# the seccomp filter. The CA file is read at every reload: install.sh's reload applies it.
python3 - <<'PY' &
import http.server, ssl
class Receiver(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with open("/root/rws.log", "a") as log:
            log.write("POST %s %s %d\n" % (self.path, self.headers.get("Content-Encoding"), len(body)))
        self.send_response(204)
        self.end_headers()
    def log_message(self, *args):
        pass
server = http.server.HTTPServer(("127.0.0.1", 19443), Receiver)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain("/root/tls/server.pem", "/root/tls/server.key")
server.socket = context.wrap_socket(server.socket, server_side=True)
server.serve_forever()
PY
sleep 1
install -m 0644 /root/tls/ca.pem /etc/sc-agent/ca.pem
printf 'collection_interval: 1s\njob: e2e\ningestor_endpoint: https://localhost:19443/api/v1/write\nremote_write:\n  tls:\n    ca_file: /etc/sc-agent/ca.pem\n' >/root/sc-agent.yaml
result https_reload "$(sh ./install.sh --binary "$PWD/sc-agent" --config /root/sc-agent.yaml | grep -c 'reloaded sc-agent')"
sleep 4
result https_posts "$(grep -c '^POST /api/v1/write snappy [1-9]' /root/rws.log)"
result https_errors "$(journalctl -u sc-agent --no-pager -o cat | grep -c '^ERROR')"

systemctl stop sc-agent
result stop "$(systemctl show -p Result --value sc-agent) $(systemctl show -p ExecMainStatus --value sc-agent)"

echo 'collection_interval: soon' >>/etc/sc-agent/sc-agent.yaml
systemctl start sc-agent
sleep 7
result bad_start "$(systemctl show -p ActiveState --value sc-agent) $(systemctl show -p ExecMainStatus --value sc-agent) restarts=$(systemctl show -p NRestarts --value sc-agent)"
result done yes
systemctl poweroff
"#;

/// Boots systemd (PID 1) in a systemd-nspawn container whose root is an overlay of
/// this machine's / on a tmpfs, with the release tarball in /root/release, `files`
/// (name, contents) in /root, and `script` run as a oneshot unit once basic.target is
/// up. Returns the script's `RESULT name=value` lines and a context for messages; the
/// script's last result must be `done=yes`.
fn boot_container(script: &str, files: &[(&str, &str)]) -> (BTreeMap<String, String>, String) {
    assert!(
        is_root(),
        "this test boots systemd in a container and needs root (as CI has)"
    );
    let nspawn = require("systemd-nspawn");
    require("unshare");
    let work = TempDir::new();
    let w = work.path();
    let tarball = package(&w.join("dist"));
    fs::create_dir_all(w.join("merged")).unwrap();
    fs::create_dir_all(w.join("files")).unwrap();
    work.write("files/e2e.sh", script);
    for (name, contents) in files {
        work.write(&format!("files/{name}"), contents);
    }
    // A private CA and a server certificate for localhost, for HTTPS pushes.
    let tls = w.join("files/tls");
    fs::create_dir_all(&tls).unwrap();
    receiver::tls::make_certificates(&tls);
    work.write(
        "sc-e2e.service",
        "[Unit]\nDescription=sc-agent packaging test\nAfter=basic.target\n\
         [Service]\nType=oneshot\nExecStart=/bin/sh /root/e2e.sh\n",
    );
    work.write(
        "sc-e2e.target",
        "[Unit]\nDescription=sc-agent packaging test\nRequires=basic.target sc-e2e.service\nAfter=basic.target\n",
    );
    // The container's root is an overlay of this machine's / with a tmpfs on top:
    // the boot and install.sh write only there. systemd boots into sc-e2e.target
    // (basic.target and the test unit), with loopback as its only network.
    // nspawn's own seccomp filter denies @clock to a container without CAP_SYS_TIME;
    // letting adjtimex and clock_adjtime through (still without CAP_SYS_TIME, so the
    // host's clock stays unsettable) makes the unit's own filter the one under test.
    let boot = format!(
        "set -eu\n\
         umask 022\n\
         W={w}\n\
         mount --make-rprivate /\n\
         mount -t tmpfs tmpfs /run\n\
         mkdir -p $W/t && mount -t tmpfs tmpfs $W/t && mkdir $W/t/upper $W/t/work\n\
         mount -t overlay overlay -o lowerdir=/,upperdir=$W/t/upper,workdir=$W/t/work $W/merged\n\
         M=$W/merged\n\
         mkdir -p $M/root/release\n\
         tar -xzf {tarball} -C $M/root/release --strip-components=1\n\
         cp -r $W/files/. $M/root/\n\
         cp $W/sc-e2e.service $W/sc-e2e.target $M/etc/systemd/system/\n\
         rc=0\n\
         timeout 180 {nspawn} --quiet --directory=$M --boot --private-network --register=no \
           --keep-unit --link-journal=no --system-call-filter='adjtimex clock_adjtime' \
           -- systemd.unit=sc-e2e.target >$W/console.log 2>&1 || rc=$?\n\
         cp $M/root/e2e.out $W/e2e.out || true\n\
         exit $rc\n",
        w = w.display(),
        tarball = tarball.display(),
        nspawn = nspawn.display(),
    );
    let out = run(Command::new("unshare").args(["--mount", "--", "sh", "-c", &boot]));
    let console = fs::read_to_string(w.join("console.log")).unwrap_or_default();
    let e2e = fs::read_to_string(w.join("e2e.out")).unwrap_or_default();
    let context = format!(
        "{}\n--- console (tail)\n{}\n--- e2e.out\n{e2e}",
        text(&out),
        {
            let lines: Vec<&str> = console.lines().collect();
            lines[lines.len().saturating_sub(40)..].join("\n")
        }
    );
    let results: BTreeMap<String, String> = e2e
        .lines()
        .filter_map(|l| l.strip_prefix("RESULT "))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    assert_eq!(
        results.get("done").map(String::as_str),
        Some("yes"),
        "the test unit did not finish\n{context}"
    );
    (results, context)
}

#[test]
fn the_unit_runs_the_agent_under_systemd_in_a_container() {
    // No endpoint: the metrics go to stdout, so to the journal, for the checks.
    let (results, context) = boot_container(
        SYSTEMD_E2E,
        &[("sc-agent.yaml", "collection_interval: 1s\njob: e2e\n")],
    );
    assert_eq!(results["install_rc"], "0", "{context}");
    assert_eq!(results["active"], "active", "{context}");
    assert_eq!(results["state_dir"], "sc-agent 700", "{context}");
    assert_eq!(results["spool_dir"], "sc-agent 700", "{context}");
    assert_ne!(results["uid"], "0", "runs as root\n{context}");
    // CAP_DAC_READ_SEARCH (bit 2) and nothing else, in the ambient set too.
    assert_eq!(results["capeff"], "0000000000000004", "{context}");
    assert_eq!(results["capamb"], "0000000000000004", "{context}");
    assert_eq!(results["nonewprivs"], "1", "{context}");
    assert_eq!(results["seccomp"], "2", "no seccomp filter\n{context}");
    // The dmidecode child read the root-only file through the ambient capability.
    assert!(
        results["vm_id_line"]
            .contains("vm_id 4c4c4544-0042-3510-8052-b4c04f384d33 (from dmidecode -s system-uuid)"),
        "{context}"
    );
    // Every collector works inside the sandbox (seccomp, address families, ...):
    // the only ones reporting success 0 are those whose source this machine lacks
    // (no /proc/schedstat, no DMI, no watchdog, ...), which do so outside any sandbox
    // too. timex must succeed: its adjtimex(2) is what ProtectClock= would deny.
    assert_ne!(results["collectors_ok"], "0", "{context}");
    let without_data = collectors_without_data_on_this_host();
    let failed: Vec<&str> = results["failed_names"].split_whitespace().collect();
    let sandboxed: Vec<&&str> = failed
        .iter()
        .filter(|name| !without_data.iter().any(|n| n == **name))
        .collect();
    assert!(
        sandboxed.is_empty(),
        "collectors failing under the unit's sandbox: {sandboxed:?} (without data on this \
         host anyway: {without_data:?})\n{context}"
    );
    assert!(
        !failed.contains(&"timex"),
        "adjtimex denied by the unit\n{context}"
    );
    // The collectors that ask the kernel over netlink do so under the unit
    // (RestrictAddressFamilies= has AF_NETLINK), rather than reading the files.
    assert_eq!(
        results["netlink_fallbacks"], "0",
        "netlink refused by the unit\n{context}"
    );
    assert_eq!(results["second_run"], "1", "{context}");
    assert_eq!(results["config_change"], "1", "{context}");
    assert_ne!(
        results["reloaded_series"], "0",
        "SIGHUP did not apply the config\n{context}"
    );
    assert_ne!(results["bad_reload_rc"], "0", "{context}");
    assert_eq!(results["active_after_bad_reload"], "active", "{context}");
    assert_eq!(results["rw_install"], "1", "{context}");
    assert_ne!(
        results["rw_posts"], "0",
        "no remote write request with the token reached the receiver\n{context}"
    );
    assert_eq!(results["rw_errors"], "0", "{context}");
    assert_eq!(results["https_reload"], "1", "{context}");
    assert_ne!(
        results["https_posts"], "0",
        "no HTTPS remote write request reached the receiver after the reload\n{context}"
    );
    assert_eq!(results["https_errors"], "0", "{context}");
    assert_eq!(
        results["stop"], "success 0",
        "SIGTERM is a clean stop\n{context}"
    );
    assert_eq!(results["bad_start"], "failed 1 restarts=0", "{context}");
}

/// Runs inside the container booted by the test below: a service that fails, one
/// that crash-loops, a Prometheus receiving remote write, and the agent installed
/// with the systemd collector on; prints the two node-mixin systemd alerts' results.
const SYSTEMD_COLLECTOR_E2E: &str = r#"#!/bin/sh
exec >/root/e2e.out 2>&1
result() { echo "RESULT $1=$2"; }
printf '[Service]\nType=oneshot\nExecStart=/bin/false\n' >/etc/systemd/system/sc-broken.service
printf '[Unit]\nStartLimitIntervalSec=0\n[Service]\nExecStart=/bin/sh -c "sleep 1; exit 3"\nRestart=always\nRestartSec=1\n' \
  >/etc/systemd/system/sc-crashloop.service
systemctl daemon-reload
systemctl start sc-broken.service
systemctl start --no-block sc-crashloop.service
result broken "$(systemctl is-failed sc-broken.service)"

mkdir -p /root/prom
printf 'global:\n  scrape_interval: 1h\n' >/root/prom/prometheus.yml
prometheus --config.file=/root/prom/prometheus.yml --storage.tsdb.path=/root/prom/data \
  --web.listen-address=127.0.0.1:19090 --web.enable-remote-write-receiver >/root/prom/log 2>&1 &
cat >/root/query.py <<'PY'
import json, sys, time, urllib.parse, urllib.request
def query(expr):
    url = "http://127.0.0.1:19090/api/v1/query?query=" + urllib.parse.quote(expr)
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)["data"]["result"]
if sys.argv[1] == "ready":
    for _ in range(120):
        try:
            query("up")
            sys.exit(0)
        except Exception:
            time.sleep(0.5)
    sys.exit(1)
# The names an expression returns series for, sorted, space-separated.
print(" ".join(sorted(s["metric"].get("name", s["metric"].get("__name__", "?")) for s in query(sys.argv[1]))))
PY
python3 /root/query.py ready
result prometheus_ready $?

cd /root/release
sh ./install.sh --binary "$PWD/sc-agent" --config /root/sc-agent.yaml
result install_rc $?
sleep 20
result active "$(systemctl is-active sc-agent)"
result crashloop_restarts "$(systemctl show -p NRestarts --value sc-crashloop.service)"
result collector_ok "$(python3 /root/query.py 'node_scrape_collector_success{collector="systemd"} == 1')"
result failed_alert "$(python3 /root/query.py 'node_systemd_unit_state{job="node", state="failed"} == 1')"
result crashloop_alert "$(python3 /root/query.py 'increase(node_systemd_service_restart_total{job="node"}[5m]) > 2')"
result system_running "$(python3 /root/query.py 'node_systemd_system_running{job="node"} >= 0')"
result units "$(python3 /root/query.py 'node_systemd_units{job="node", state="active"} > 0')"
result errors "$(journalctl -u sc-agent --no-pager -o cat | grep -c '^ERROR\|systemd:')"
journalctl -u sc-agent --no-pager -o cat | tail -n 20
result done yes
systemctl poweroff
"#;

/// node-mixin's NodeSystemdServiceFailed and NodeSystemdServiceCrashlooping, against
/// a Prometheus fed by the agent under its unit, reading a real systemd's units
/// over the system bus as the unprivileged `sc-agent` user (the bus policy and the
/// unit's sandbox both in play).
#[test]
fn the_systemd_collector_under_the_unit_makes_the_systemd_alerts_fire() {
    require("prometheus");
    assert!(
        Path::new("/lib/systemd/system/dbus.service").exists(),
        "the system bus (package dbus) is needed: scripts/test.sh installs it"
    );
    let config = "collection_interval: 1s\njob: node\n\
                  ingestor_endpoint: http://127.0.0.1:19090/api/v1/write\n\
                  collectors:\n  systemd:\n    enable_restarts_metrics: true\n";
    let (results, context) = boot_container(SYSTEMD_COLLECTOR_E2E, &[("sc-agent.yaml", config)]);
    assert_eq!(results["broken"], "failed", "{context}");
    assert_eq!(results["prometheus_ready"], "0", "{context}");
    assert_eq!(results["install_rc"], "0", "{context}");
    assert_eq!(results["active"], "active", "{context}");
    assert_eq!(
        results["collector_ok"], "node_scrape_collector_success",
        "the systemd collector failed under the unit\n{context}"
    );
    assert!(
        results["failed_alert"]
            .split_whitespace()
            .any(|n| n == "sc-broken.service"),
        "NodeSystemdServiceFailed does not fire\n{context}"
    );
    assert!(
        results["crashloop_alert"]
            .split_whitespace()
            .any(|n| n == "sc-crashloop.service"),
        "NodeSystemdServiceCrashlooping does not fire\n{context}"
    );
    assert_eq!(
        results["system_running"], "node_systemd_system_running",
        "{context}"
    );
    assert_eq!(results["units"], "node_systemd_units", "{context}");
    assert_eq!(results["errors"], "0", "{context}");
}

#[test]
fn the_config_check_sees_the_units_environment_file_only() {
    let release = Release::new(true);
    let root = Root::new();
    let binary = release.binary();
    let scratch = TempDir::new();
    // Basic auth whose password comes from the environment alone.
    let config = scratch.write(
        "sc-agent.yaml",
        "ingestor_endpoint: http://127.0.0.1:9/api/v1/write\nremote_write:\n  basic_auth:\n    username: fleet\n",
    );
    let install = |extra_env: &[(&str, &str)]| {
        run(Command::new("sh")
            .arg(script("install.sh"))
            .arg("--root")
            .arg(root.dir.path())
            .args([
                "--no-start",
                "--binary",
                binary.to_str().unwrap(),
                "--config",
            ])
            .arg(&config)
            .envs(extra_env.iter().copied()))
    };
    // This shell's environment is not the service's: not used.
    let out = install(&[("SC_BASIC_AUTH_PASSWORD", "from-the-shell")]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("basic_auth.password_file"),
        "{}",
        text(&out)
    );
    assert!(!root.binary().exists());

    // The unit's EnvironmentFile is.
    root.dir.write(
        "etc/sc-agent/sc-agent.env",
        "# secrets for sc-agent\n\n  SC_BASIC_AUTH_PASSWORD=\"s3cret with spaces\"\nnot a variable\n",
    );
    let out = install(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(fs::read(root.config()).unwrap(), fs::read(&config).unwrap());
}

#[test]
fn the_example_configs_commented_options_are_valid() {
    let example = fs::read_to_string(script("sc-agent.yaml")).unwrap();
    let start = example
        .find("# remote_write:")
        .expect("the example's commented options");
    let end = start + example[start..].find("\n\n").unwrap();
    let block: Vec<String> = example[start..end]
        .lines()
        .map(|l| l.strip_prefix("# ").unwrap_or(l).to_owned())
        .collect();
    let rest = format!("{}{}", &example[..start], &example[end..]);

    let scratch = TempDir::new();
    let token = scratch.write("token", "t0ken\n");
    let password = scratch.write("password", "passw0rd\n");
    let ca = scratch.path().join("ca.pem");
    let openssl = run(Command::new(require("openssl"))
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args(["-subj", "/CN=sc-agent test CA", "-keyout"])
        .arg(scratch.path().join("ca.key"))
        .arg("-out")
        .arg(&ca));
    assert!(openssl.status.success(), "{}", text(&openssl));
    let tls = scratch.path().join("tls");
    fs::create_dir_all(&tls).unwrap();
    receiver::tls::make_certificates(&tls);
    let (client_cert, client_key) = receiver::tls::make_client_certificate(&tls, "agent");

    // Bearer token and basic auth exclude each other: one variant each.
    for (variant, leave_out) in [("bearer", "  basic_auth"), ("basic", "  bearer_token_file")] {
        let mut options = Vec::new();
        let mut skipping = false;
        for line in &block {
            if line.starts_with(leave_out) {
                skipping = true;
                continue;
            }
            if skipping && line.starts_with("    ") {
                continue;
            }
            skipping = false;
            options.push(
                line.replace("/etc/sc-agent/bearer-token", token.to_str().unwrap())
                    .replace("/etc/sc-agent/password", password.to_str().unwrap())
                    .replace("/etc/sc-agent/ca.pem", ca.to_str().unwrap())
                    .replace("/etc/sc-agent/client.pem", client_cert.to_str().unwrap())
                    .replace("/etc/sc-agent/client.key", client_key.to_str().unwrap()),
            );
        }
        let text_ = format!("{rest}\n{}\n", options.join("\n"));
        let path = scratch.write(&format!("{variant}.yaml"), &text_);
        let out = common::run(
            &["--check-config", "--config", path.to_str().unwrap()],
            &[],
            Duration::from_secs(20),
        );
        assert_eq!(
            out.status.code(),
            Some(0),
            "{variant}: {}\n{text_}",
            out.stderr
        );
    }
}

//! The run loop through the real binary: pacing, SIGHUP reloads, SIGTERM stops.

use sc_agent_testkit as common;

use common::{base_config, cycles, Agent, TempDir};
use nix::sys::signal::Signal;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(20);

fn start(dir: &TempDir, config: &str) -> Agent {
    let path = dir.write("sc-agent.yaml", config);
    Agent::spawn(&["--config", path.to_str().unwrap()], &[])
}

#[test]
fn prints_a_cycle_every_interval() {
    let dir = TempDir::new();
    let agent = start(&dir, &base_config("collection_interval: 100ms\n"));
    assert!(
        agent.wait_for(WAIT, |out, _| cycles(out) >= 5),
        "{}",
        agent.stderr()
    );
    assert!(agent.stdout().contains("node_load1{"));
}

#[test]
fn sigterm_exits_zero_promptly() {
    let dir = TempDir::new();
    // A long interval: the agent must not wait for the next tick to stop.
    let mut agent = start(&dir, &base_config("collection_interval: 1h\n"));
    assert!(agent.wait_for(WAIT, |out, _| cycles(out) == 1));
    let sent = Instant::now();
    agent.signal(Signal::SIGTERM);
    let status = agent.wait_exit(WAIT).expect("exit after SIGTERM");
    assert_eq!(status.code(), Some(0), "{}", agent.stderr());
    assert!(
        sent.elapsed() < Duration::from_secs(2),
        "{:?}",
        sent.elapsed()
    );
    assert!(
        agent.stderr().contains("stopping on signal"),
        "{}",
        agent.stderr()
    );
}

#[test]
fn sigint_also_stops_cleanly() {
    let dir = TempDir::new();
    let mut agent = start(&dir, &base_config("collection_interval: 1h\n"));
    assert!(agent.wait_for(WAIT, |out, _| cycles(out) == 1));
    agent.signal(Signal::SIGINT);
    assert_eq!(agent.wait_exit(WAIT).and_then(|s| s.code()), Some(0));
}

#[test]
fn sighup_with_a_broken_config_keeps_running_on_the_old_one() {
    let dir = TempDir::new();
    let mut agent = start(
        &dir,
        &base_config("collection_interval: 100ms\nlabels:\n  env: before\n"),
    );
    assert!(agent.wait_for(WAIT, |out, _| cycles(out) >= 2));
    dir.write("sc-agent.yaml", "collection_interval: [not, a, duration\n");
    agent.signal(Signal::SIGHUP);
    assert!(
        agent.wait_for(WAIT, |_, err| err
            .contains("reload failed, keeping the running config")),
        "{}",
        agent.stderr()
    );
    let seen = cycles(&agent.stdout());
    assert!(
        agent.wait_for(WAIT, |out, _| cycles(out) >= seen + 3),
        "no cycles after the failed reload"
    );
    assert!(agent.is_running());
    let out = agent.stdout();
    let last = out.rsplit("# HELP node_load1 ").next().unwrap();
    assert!(last.contains("env=\"before\""), "{last}");
}

#[test]
fn sighup_with_a_valid_config_applies_it() {
    let dir = TempDir::new();
    let mut agent = start(
        &dir,
        &base_config("collection_interval: 1h\nlabels:\n  env: before\n"),
    );
    assert!(agent.wait_for(WAIT, |out, _| cycles(out) == 1));
    dir.write(
        "sc-agent.yaml",
        &base_config("collection_interval: 100ms\nlabels:\n  env: after\n"),
    );
    agent.signal(Signal::SIGHUP);
    // The new interval applies at once: cycles follow every 100ms, not in an hour.
    assert!(
        agent.wait_for(WAIT, |out, _| cycles(out) >= 4),
        "{}",
        agent.stderr()
    );
    assert!(agent.stdout().contains("env=\"after\""));
    assert!(agent.stderr().contains("config reloaded"));
    assert!(agent.is_running());
}

#[test]
fn closed_stdout_stops_the_agent() {
    use std::process::{Command, Stdio};
    let dir = TempDir::new();
    let path = dir.write("sc-agent.yaml", &base_config("collection_interval: 50ms\n"));
    let mut child = Command::new(common::bin())
        .args(["--config", path.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() && start.elapsed() < WAIT {
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = child
        .try_wait()
        .unwrap()
        .expect("agent should stop when stdout closes");
    assert_eq!(status.code(), Some(0));
}

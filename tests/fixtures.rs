//! Golden tests: the real binary runs `--once` against each fixture tree under
//! `tests/fixtures/<case>/` and must print exactly `expected.prom`.
//!
//! A case holds `README` (what it covers and why), `config.yaml` (paths relative to
//! the case directory, which is the working directory), the `proc/`, `sys/` and
//! `root/` trees it needs, and `expected.prom`. A case that only sets an option may use
//! a sibling case's trees instead (`procfs: ../cpu/proc`). What no fixture tree can fix is
//! replaced before comparing: durations in `node_scrape_collector_duration_seconds`
//! by `<duration>`, the kernel's answers in `node_uname_info` by `<uname>`, and the
//! values of the families a case lists in its optional `varying` file (one metric name
//! a line: the clock, the page size, the size of the filesystem the checkout lives on)
//! by `<varies>`; their names, labels, HELP and TYPE are still compared. The
//! agent's delivery metrics (`sc_agent_*`) belong to no collector and are left out
//! (tests/remote_write.rs covers them). The agent runs with `TZ=CET-1` (a POSIX
//! zone, so no time zone database is needed).
//! A case may also have an `env` file of `NAME=value` lines for the agent's
//! environment (a collector whose source is not a file, such as a D-Bus address),
//! and a `netns` file (its text says why) to run the agent in a new, empty network
//! namespace: for a collector that only reads the kernel over netlink, whose
//! answers are then the same on every machine (needs root, as the netlink tests
//! do).
//! `SC_UPDATE_FIXTURES=1 cargo test --test fixtures` rewrites the expected files;
//! review the diff before committing it.

use sc_agent_testkit as common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// The label values of `node_uname_info`, which come from the kernel, not the tree.
const UNAME_LABELS: [&str; 6] = [
    "domainname",
    "machine",
    "nodename",
    "release",
    "sysname",
    "version",
];

/// The metric name of a series line; `None` for HELP, TYPE and blank lines.
fn series_name(line: &str) -> Option<&str> {
    if line.starts_with('#') {
        return None;
    }
    line.split(['{', ' '])
        .next()
        .filter(|name| !name.is_empty())
}

/// The family a line belongs to: the series' name, or the name after `# HELP`/`# TYPE`.
fn family_of(line: &str) -> Option<&str> {
    match line
        .strip_prefix("# HELP ")
        .or_else(|| line.strip_prefix("# TYPE "))
    {
        Some(rest) => rest.split(' ').next(),
        None => series_name(line),
    }
}

fn normalise(output: &str, varying: &[String]) -> String {
    output
        .lines()
        .filter(|line| !family_of(line).is_some_and(|name| name.starts_with("sc_agent_")))
        .map(|line| {
            let placeholder = match series_name(line) {
                Some("node_scrape_collector_duration_seconds") => Some("<duration>"),
                Some("node_uname_info") => {
                    return format!("{}\n", mask_labels(line, &UNAME_LABELS, "<uname>"));
                }
                Some(name) if varying.iter().any(|v| v == name) => Some("<varies>"),
                _ => None,
            };
            match (placeholder, line.rsplit_once(' ')) {
                (Some(placeholder), Some((series, _))) => format!("{series} {placeholder}\n"),
                _ => format!("{line}\n"),
            }
        })
        .collect()
}

/// Replaces the values of the named labels with `placeholder`.
fn mask_labels(line: &str, names: &[&str], placeholder: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(at) = rest.find("=\"") {
        let name_start = rest[..at].rfind(['{', ',']).map_or(0, |i| i + 1);
        let name = &rest[name_start..at];
        out.push_str(&rest[..at + 2]);
        rest = &rest[at + 2..];
        let end = value_end(rest);
        if names.contains(&name) {
            out.push_str(placeholder);
        } else {
            out.push_str(&rest[..end]);
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// Where a quoted label value ends (its closing quote), skipping escapes.
fn value_end(value: &str) -> usize {
    let mut escaped = false;
    for (i, c) in value.char_indices() {
        match c {
            '\\' if !escaped => escaped = true,
            '"' if !escaped => return i,
            _ => escaped = false,
        }
    }
    value.len()
}

/// The metric names listed in the case's optional `varying` file.
fn varying(case: &Path) -> Vec<String> {
    std::fs::read_to_string(case.join("varying"))
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

/// The `NAME=value` lines of the case's optional `env` file.
fn case_env(case: &Path) -> Vec<(String, String)> {
    std::fs::read_to_string(case.join("env"))
        .unwrap_or_default()
        .lines()
        .filter(|line| !line.trim().is_empty() && !line.starts_with('#'))
        .filter_map(|line| line.split_once('='))
        .map(|(name, value)| (name.trim().to_owned(), value.trim().to_owned()))
        .collect()
}

fn run_case(case: &Path) -> Result<(), String> {
    let mut command = Command::new(common::bin());
    command
        .current_dir(case)
        .args(["--once", "--config", "config.yaml"])
        .env("PATH", "/nonexistent")
        .env("TZ", "CET-1")
        .envs(case_env(case));
    if case.join("netns").is_file() {
        use std::os::unix::process::CommandExt;
        // SAFETY: between fork and exec the child makes one system call.
        unsafe {
            command.pre_exec(|| {
                nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
                    .map_err(std::io::Error::from)
            });
        }
    }
    let mut agent = common::Agent::spawn_with(&mut command, &[("SC_LOG_LEVEL", "error")]);
    let status = agent
        .wait_exit(Duration::from_secs(30))
        .ok_or("did not exit")?;
    if !status.success() {
        return Err(format!("exit {status}: {}", agent.stderr()));
    }
    let actual = normalise(&agent.stdout(), &varying(case));
    let expected_path = case.join("expected.prom");
    if std::env::var_os("SC_UPDATE_FIXTURES").is_some() {
        std::fs::write(&expected_path, &actual).map_err(|e| e.to_string())?;
        return Ok(());
    }
    let expected = std::fs::read_to_string(&expected_path)
        .map_err(|e| format!("{}: {e}", expected_path.display()))?;
    if actual == expected {
        return Ok(());
    }
    let first_difference = actual
        .lines()
        .zip(expected.lines())
        .enumerate()
        .find(|(_, (a, e))| a != e)
        .map(|(n, (a, e))| format!("line {}:\n  actual:   {a}\n  expected: {e}", n + 1))
        .unwrap_or_else(|| {
            format!(
                "lengths differ: {} actual lines, {} expected",
                actual.lines().count(),
                expected.lines().count()
            )
        });
    Err(format!(
        "output differs from expected.prom at {first_difference}"
    ))
}

#[test]
fn every_fixture_tree_gives_its_expected_output() {
    let mut cases: Vec<_> = std::fs::read_dir(common::fixtures())
        .expect("tests/fixtures")
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.join("config.yaml").is_file())
        .collect();
    cases.sort();
    assert!(!cases.is_empty(), "no fixture cases found");
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|case| {
            assert!(
                case.join("README").is_file(),
                "{} has no README",
                case.display()
            );
            run_case(case)
                .err()
                .map(|e| format!("{}: {e}", case.file_name().unwrap().to_string_lossy()))
        })
        .collect();
    assert!(failures.is_empty(), "\n{}", failures.join("\n\n"));
}

#[test]
fn machine_dependent_values_are_masked() {
    let uname =
        "node_uname_info{domainname=\"(none)\",instance=\"fixture-host\",machine=\"x86_64\",\
                 nodename=\"vm\",release=\"6.1\",sysname=\"Linux\",version=\"#1 \\\"SMP\\\"\"} 1";
    assert_eq!(
        normalise(uname, &[]),
        "node_uname_info{domainname=\"<uname>\",instance=\"fixture-host\",machine=\"<uname>\",\
         nodename=\"<uname>\",release=\"<uname>\",sysname=\"<uname>\",version=\"<uname>\"} 1\n"
    );
    assert_eq!(
        normalise(
            "node_time_seconds{job=\"node\"} 1.7e9",
            &["node_time_seconds".into()]
        ),
        "node_time_seconds{job=\"node\"} <varies>\n"
    );
}

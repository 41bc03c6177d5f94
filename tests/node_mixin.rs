//! node_exporter's own alerts (node-mixin, rendered in tests/node-mixin/alerts.yaml)
//! against what sc-agent sends:
//!
//! 1. every metric an alert uses is sent: on this machine, or over the alert fixtures
//!    (the series of hardware this machine lacks, RAID arrays and bonds), except
//!    those of [`NOT_SENT_YET`];
//! 2. through a real Prometheus fed by remote write, over fixture trees in which each
//!    condition holds (tests/node-mixin/<case>/), the alert's expression returns the
//!    series it should (`for:` is ignored), for the agent and, as the control that
//!    proves the fixture, for node_exporter 1.5 on the same tree. Cases whose
//!    collector the agent lacks are in [`AWAITING_COLLECTOR`];
//! 3. on this machine, every alert whose series it has (those of [`SHAPE_ONLY`]
//!    included: adjtimex(2) reads the kernel, not a file, so the clock alerts cannot
//!    be given a fixture) returns a series once its thresholds are removed: the
//!    alert's selectors, joins and functions fit the labels the agent sends, so it
//!    fires when the values cross them.

use sc_agent_testkit as common;

use common::{
    free_port, require, run, wait_for_port, Agent, Exposition, Peer, Prometheus, TempDir,
};
use sc_agent::collector::table;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The series alerts use that the agent does not send yet, with the collector that
/// will send them. The list shrinks as collectors land: a series that is sent must
/// leave it (the test says so).
const NOT_SENT_YET: [(&str, &str); 2] = [
    // Off by default (as in node_exporter), turned on below when the agent has it;
    // it needs a machine run by systemd (this test machine is not).
    ("node_systemd_unit_state", "systemd"),
    // Also needs node_exporter's --collector.systemd.enable-restarts-metrics.
    ("node_systemd_service_restart_total", "systemd"),
];

/// Collectors the fixture cases and [`SHAPE_ONLY`] need that the agent's table does
/// not have yet, and why: their cases are expected to fail (they cannot even be
/// configured) and are skipped. When a collector lands, its line must go: the test
/// fails until it has.
const AWAITING_COLLECTOR: [(&str, &str); 0] = [];

/// Alerts that have no fixture case, only the shape check on this machine, and the
/// collector they need: the timex collector reads adjtimex(2), which no file tree
/// can stand in for through the binary.
const SHAPE_ONLY: [(&str, &str); 2] = [
    ("NodeClockSkewDetected", "timex"),
    ("NodeClockNotSynchronising", "timex"),
];

/// Collectors off by default that alerts need: turned on for this machine's runs
/// when the agent has them.
const OFF_BY_DEFAULT: [&str; 1] = ["systemd"];

/// A fixture tree under tests/node-mixin/ in which alerts hold.
struct Case {
    /// The directory, and the `instance` of the agent run over it.
    name: &'static str,
    collector: &'static str,
    /// The alerts that hold over it.
    fires: &'static [(&'static str, Expect)],
}

/// What an alert's result must hold for one instance.
#[derive(Clone, Copy, Debug)]
enum Expect {
    /// At least one series.
    Any,
    /// One series for each of these values of the label, and no other.
    Exactly(&'static str, &'static [&'static str]),
}

/// One query that must hold: `expr` has the series `expect` says for `instance`.
struct Check {
    instance: String,
    expr: String,
    expect: Expect,
}

const CASES: [Case; 4] = [
    // A file with a client-side timestamp (node_exporter's client_side_timestamp).
    Case {
        name: "textfile",
        collector: "textfile",
        fires: &[("NodeTextFileCollectorScrapeError", Expect::Any)],
    },
    // 200000 of 262144 entries (76%; the limit is node_exporter's fixture's).
    Case {
        name: "conntrack",
        collector: "conntrack",
        fires: &[("NodeHighNumberConntrackEntriesUsed", Expect::Any)],
    },
    // node_exporter's mdstat fixture (md6 [2/1], md7 [4/3] with sdc1 failed), with
    // its tab-led continuation lines indented by spaces (1.5 fails on them).
    Case {
        name: "mdadm",
        collector: "mdadm",
        fires: &[
            (
                "NodeRAIDDegraded",
                Expect::Exactly("device", &["md6", "md7"]),
            ),
            ("NodeRAIDDiskFailure", Expect::Exactly("device", &["md7"])),
        ],
    },
    // node_exporter's bonding fixture: bond0 without slaves, dmz 2 of 2 up, int 1 of 2.
    Case {
        name: "bonding",
        collector: "bonding",
        fires: &[("NodeBondingDegraded", Expect::Exactly("master", &["int"]))],
    },
];

/// How long the alerts may take to hold once everything runs (two samples for
/// rate() and deriv() at the 500ms interval, a debug build, a busy machine).
const DEADLINE: Duration = Duration::from_secs(40);

#[derive(Deserialize)]
struct RuleFile {
    groups: Vec<Group>,
}

#[derive(Deserialize)]
struct Group {
    rules: Vec<Rule>,
}

#[derive(Deserialize)]
struct Rule {
    alert: String,
    expr: String,
}

fn mixin_dir() -> PathBuf {
    common::project_root().join("tests/node-mixin")
}

fn rules() -> Vec<Rule> {
    let path = mixin_dir().join("alerts.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let file: RuleFile = serde_yaml::from_str(&text).unwrap();
    let rules: Vec<Rule> = file.groups.into_iter().flat_map(|g| g.rules).collect();
    assert!(!rules.is_empty(), "no rules in {}", path.display());
    rules
}

fn rule_exprs<'a>(rules: &'a [Rule], alert: &str) -> Vec<&'a str> {
    let exprs: Vec<&str> = rules
        .iter()
        .filter(|r| r.alert == alert)
        .map(|r| r.expr.as_str())
        .collect();
    assert!(!exprs.is_empty(), "no alert {alert} in alerts.yaml");
    exprs
}

fn awaiting(collector: &str) -> Option<&'static str> {
    AWAITING_COLLECTOR
        .iter()
        .find(|(name, _)| *name == collector)
        .map(|(_, why)| *why)
}

/// Whether the case's collector can run; fails when a list is out of date.
fn runnable(collector: &str) -> bool {
    let exists = table::find(collector).is_some();
    match (exists, awaiting(collector)) {
        (true, Some(_)) => {
            panic!("the agent has the {collector} collector now: remove it from AWAITING_COLLECTOR")
        }
        (false, None) => {
            panic!("no {collector} collector in the agent's table: list it in AWAITING_COLLECTOR")
        }
        (exists, _) => exists,
    }
}

// --- PromQL, as much as the alerts need -----------------------------------------------

/// Words that are not metric names where a metric name could stand.
const KEYWORDS: [&str; 12] = [
    "and",
    "or",
    "unless",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "offset",
    "inf",
];
/// Keywords followed by a list of label names.
const LABEL_LISTS: [&str; 6] = [
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];
/// Aggregations, which may be followed by `by`/`without` rather than `(`.
const AGGREGATIONS: [&str; 12] = [
    "sum",
    "avg",
    "count",
    "min",
    "max",
    "stddev",
    "stdvar",
    "topk",
    "bottomk",
    "quantile",
    "count_values",
    "group",
];

/// The metric names a PromQL expression selects: identifiers that are not functions,
/// aggregations, keywords or label names, nor inside strings, `{...}` or `[...]`.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let chars: Vec<char> = expr.chars().collect();
    let word_at = |mut i: usize| {
        let start = i;
        while chars
            .get(i)
            .is_some_and(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
        {
            i += 1;
        }
        (chars[start..i].iter().collect::<String>(), i)
    };
    let next_visible = |mut i: usize| {
        while chars.get(i).is_some_and(|c| c.is_whitespace()) {
            i += 1;
        }
        i
    };
    let (mut names, mut nesting, mut i) = (BTreeSet::new(), 0i32, 0);
    while let Some(&c) = chars.get(i) {
        match c {
            '"' | '\'' | '`' => {
                i += 1;
                while let Some(&d) = chars.get(i) {
                    i += if d == '\\' { 2 } else { 1 };
                    if d == c {
                        break;
                    }
                }
            }
            '{' | '[' => {
                nesting += 1;
                i += 1;
            }
            '}' | ']' => {
                nesting -= 1;
                i += 1;
            }
            c if c.is_ascii_digit() || c == '.' => i = word_at(i + 1).1,
            c if c.is_ascii_alphabetic() || c == '_' || c == ':' => {
                let (word, end) = word_at(i);
                let after = next_visible(end);
                let before_paren = chars.get(after) == Some(&'(');
                i = end;
                if nesting > 0 {
                    continue;
                }
                if LABEL_LISTS.contains(&word.as_str()) && before_paren {
                    while chars.get(i).is_some_and(|c| *c != ')') {
                        i += 1;
                    }
                    continue;
                }
                let aggregation = AGGREGATIONS.contains(&word.as_str())
                    && ["by", "without"].contains(&word_at(after).0.as_str());
                if !(before_paren || aggregation || KEYWORDS.contains(&word.as_str())) {
                    names.insert(word);
                }
            }
            _ => i += 1,
        }
    }
    names
}

/// The expression with its comparisons against numbers removed (`> 0.05`, `== 0`):
/// what remains returns a series wherever the alert's selectors and joins match,
/// whatever the values.
fn without_thresholds(expr: &str) -> String {
    let comparison =
        regex_lite::Regex::new(r"\s*(==|!=|>=|<=|>|<)\s*(bool\s+)?-?[0-9][0-9.]*").unwrap();
    comparison.replace_all(expr, "").into_owned()
}

#[test]
fn metric_names_are_read_from_promql() {
    let names = |e: &str| metric_names(e).into_iter().collect::<Vec<_>>();
    assert_eq!(
        names(
            r#"sum without(mode) (avg without (cpu) (rate(node_cpu_seconds_total{job="node", mode!~"idle|iowait"}[2m]))) * 100 > 90"#
        ),
        ["node_cpu_seconds_total"]
    );
    assert_eq!(
        names(
            r#"node_md_disks_required{device!=""} - ignoring (state) (node_md_disks{state="active"}) > 0"#
        ),
        ["node_md_disks", "node_md_disks_required"]
    );
    assert_eq!(
        names(
            r#"a * on(chip) group_left(chip_name) b offset 5m or count(count(c) by (cpu)) and label_replace(d, "x", "$1", "y", "(.*)")"#
        ),
        ["a", "b", "c", "d"]
    );
    assert_eq!(names("predict_linear(x[6h], 24*60*60) < 1e3"), ["x"]);
}

#[test]
fn thresholds_are_removed() {
    assert_eq!(
        without_thresholds("(a{x!=\"\"} > 0.05 and deriv(a[5m]) >= 0) or (a < -0.05)"),
        "(a{x!=\"\"} and deriv(a[5m])) or (a)"
    );
    assert_eq!(
        without_thresholds("predict_linear(x[6h], 24*60*60) < 0 and y == 0\n"),
        "predict_linear(x[6h], 24*60*60) and y\n"
    );
}

// --- running the agent and node_exporter over the cases -------------------------------

/// A case's `proc`, `sys` or `root` tree, or an empty directory if it has none (so a
/// run over a case never reads this machine's).
fn tree(case_dir: &Path, name: &str, empty: &Path) -> PathBuf {
    let dir = case_dir.join(name);
    if dir.is_dir() {
        dir
    } else {
        empty.to_owned()
    }
}

/// The `paths:` of a run over a case.
fn paths(case_dir: &Path, empty: &Path) -> String {
    format!(
        "paths:\n  procfs: {}\n  sysfs: {}\n  rootfs: {}\n",
        tree(case_dir, "proc", empty).display(),
        tree(case_dir, "sys", empty).display(),
        tree(case_dir, "root", empty).display()
    )
}

/// The agent's config for a case (`endpoint` None: `--once`).
fn case_config(case: &Case, empty: &Path, endpoint: Option<&str>) -> String {
    let dir = mixin_dir().join(case.name);
    let collectors = if case.collector == "textfile" {
        format!(
            "collectors:\n  disable_defaults: true\n  textfile:\n    directory: [{}]\n",
            dir.join("textfile.d").display()
        )
    } else {
        common::collectors_only(&[case.collector])
    };
    format!(
        "vm_id: mixin-{}\ninstance: {}\njob: node\ncollection_interval: 500ms\n{}{}{}",
        case.name,
        case.name,
        endpoint.map_or(String::new(), |e| format!("ingestor_endpoint: {e}\n")),
        paths(&dir, empty),
        collectors
    )
}

/// The agent's config for this machine (its default collectors and those of
/// [`OFF_BY_DEFAULT`] it has).
fn machine_config(endpoint: Option<&str>) -> String {
    let mut config = format!(
        "vm_id: mixin-machine\ninstance: machine\njob: node\ncollection_interval: 500ms\n{}",
        endpoint.map_or(String::new(), |e| format!("ingestor_endpoint: {e}\n"))
    );
    let extra: Vec<&str> = OFF_BY_DEFAULT
        .into_iter()
        .filter(|name| table::find(name).is_some())
        .collect();
    if !extra.is_empty() {
        config.push_str("collectors:\n");
        for name in extra {
            config.push_str(&format!("  {name}: true\n"));
        }
    }
    config
}

/// The metric names of one `--once` run.
fn once_names(config: &str) -> BTreeSet<String> {
    let dir = TempDir::new();
    let path = dir.write("sc-agent.yaml", config);
    let out = run(
        &["--once", "--config", path.to_str().unwrap()],
        &[],
        Duration::from_secs(60),
    );
    assert!(out.status.success(), "{config}\n{}", out.stderr);
    Exposition::parse(&out.stdout)
        .samples
        .into_iter()
        .map(|s| s.name)
        .collect()
}

/// node_exporter 1.5 over a case's tree, with only the case's collector.
fn node_exporter(case: &Case, empty: &Path, port: u16) -> Peer {
    let dir = mixin_dir().join(case.name);
    let child = Command::new(require("prometheus-node-exporter"))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--collector.disable-defaults")
        .arg(format!("--collector.{}", case.collector))
        .arg(format!(
            "--path.procfs={}",
            tree(&dir, "proc", empty).display()
        ))
        .arg(format!(
            "--path.sysfs={}",
            tree(&dir, "sys", empty).display()
        ))
        .arg(format!(
            "--path.rootfs={}",
            tree(&dir, "root", empty).display()
        ))
        .arg(format!(
            "--collector.textfile.directory={}",
            dir.join("textfile.d").display()
        ))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start node_exporter");
    let peer = Peer(child);
    assert!(
        wait_for_port(port, Duration::from_secs(20)),
        "node_exporter did not start for {}",
        case.name
    );
    peer
}

fn label<'a>(series: &'a Value, name: &str) -> &'a str {
    series["metric"][name].as_str().unwrap_or("")
}

/// None when the check holds, else what was found.
fn failure(prometheus: &Prometheus, check: &Check) -> Option<String> {
    let found: Vec<Value> = prometheus
        .query(&check.expr)
        .into_iter()
        .filter(|s| label(s, "instance") == check.instance)
        .collect();
    let holds = match check.expect {
        Expect::Any => !found.is_empty(),
        Expect::Exactly(name, values) => {
            let got: BTreeSet<&str> = found.iter().map(|s| label(s, name)).collect();
            got == values.iter().copied().collect()
        }
    };
    (!holds).then(|| {
        format!(
            "{}: {}\n  expected {:?}, found {found:?}",
            check.instance, check.expr, check.expect
        )
    })
}

// --- the tests ------------------------------------------------------------------------

#[test]
fn every_series_the_alerts_use_is_sent() {
    let rules = rules();
    let used: BTreeSet<String> = rules.iter().flat_map(|r| metric_names(&r.expr)).collect();
    for (name, collector) in NOT_SENT_YET {
        assert!(
            used.contains(name),
            "{name} ({collector}) in NOT_SENT_YET: no alert uses it"
        );
    }

    let empty = TempDir::new();
    let mut sent = once_names(&machine_config(None));
    for case in CASES.iter().filter(|c| runnable(c.collector)) {
        sent.extend(once_names(&case_config(case, empty.path(), None)));
    }

    let mut problems = Vec::new();
    for name in &used {
        let listed = NOT_SENT_YET.iter().find(|(n, _)| n == name);
        match (sent.contains(name), listed) {
            (true, Some((_, collector))) => problems.push(format!(
                "{name} is sent now ({collector}): remove it from NOT_SENT_YET"
            )),
            (false, None) => problems.push(format!(
                "{name} is used by an alert and not sent, here or over the fixtures"
            )),
            _ => {}
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn alerts_hold_over_their_fixtures_and_fit_this_machine() {
    let rules = rules();
    let empty = TempDir::new();

    // node_exporter on every case's tree, scraped by the same Prometheus the agents
    // push to, as instance "<case>/node_exporter".
    let ports: Vec<u16> = CASES.iter().map(|_| free_port()).collect();
    let mut scrape = String::from("scrape_configs:\n");
    for (case, port) in CASES.iter().zip(&ports) {
        scrape.push_str(&format!(
            "  - job_name: node-{name}\n    scrape_interval: 1s\n    static_configs:\n      \
             - targets: ['127.0.0.1:{port}']\n        labels: {{job: node, instance: \
             {name}/node_exporter}}\n",
            name = case.name
        ));
    }
    let _exporters: Vec<Peer> = CASES
        .iter()
        .zip(&ports)
        .map(|(case, port)| node_exporter(case, empty.path(), *port))
        .collect();
    let prometheus = Prometheus::start_with(&scrape);

    let config_dir = TempDir::new();
    let spawn = |name: &str, config: String| {
        let path = config_dir.write(&format!("{name}.yaml"), &config);
        Agent::spawn(&["--config", path.to_str().unwrap()], &[])
    };
    let write_url = prometheus.write_url();
    let mut agents = vec![spawn("machine", machine_config(Some(&write_url)))];

    let mut checks = Vec::new();
    let mut skipped = Vec::new();
    for case in &CASES {
        let run_agent = runnable(case.collector);
        if run_agent {
            agents.push(spawn(
                case.name,
                case_config(case, empty.path(), Some(&write_url)),
            ));
        }
        for &(alert, expect) in case.fires {
            for expr in rule_exprs(&rules, alert) {
                checks.push(Check {
                    instance: format!("{}/node_exporter", case.name),
                    expr: expr.to_owned(),
                    expect,
                });
                if run_agent {
                    checks.push(Check {
                        instance: case.name.to_owned(),
                        expr: expr.to_owned(),
                        expect,
                    });
                } else {
                    skipped.push(format!(
                        "{alert} over tests/node-mixin/{}: expected to fail, no {} \
                         collector yet ({})",
                        case.name,
                        case.collector,
                        awaiting(case.collector).unwrap_or_default()
                    ));
                }
            }
        }
    }

    // This machine: the shape of every alert whose series it has.
    let machine = once_names(&machine_config(None));
    for rule in &rules {
        let shape_only = SHAPE_ONLY.iter().find(|(a, _)| *a == rule.alert);
        if let Some((_, collector)) = shape_only {
            if !runnable(collector) {
                skipped.push(format!(
                    "{} on this machine: expected to fail, no {collector} collector yet ({})",
                    rule.alert,
                    awaiting(collector).unwrap_or_default()
                ));
                continue;
            }
        }
        let missing: Vec<String> = metric_names(&rule.expr)
            .into_iter()
            .filter(|n| !machine.contains(n))
            .collect();
        if missing.is_empty() {
            checks.push(Check {
                instance: "machine".into(),
                expr: without_thresholds(&rule.expr),
                expect: Expect::Any,
            });
        } else if shape_only.is_some() {
            panic!("{}: this machine does not send {missing:?}", rule.alert);
        } else {
            skipped.push(format!(
                "{} on this machine: no {missing:?} here",
                rule.alert
            ));
        }
    }

    let start = Instant::now();
    let failures = loop {
        let failures: Vec<String> = checks
            .iter()
            .filter_map(|check| failure(&prometheus, check))
            .collect();
        if failures.is_empty() || start.elapsed() > DEADLINE {
            break failures;
        }
        for agent in &mut agents {
            assert!(agent.is_running(), "an agent exited: {}", agent.stderr());
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    println!(
        "{} checks hold; skipped:\n  {}",
        checks.len() - failures.len(),
        skipped.join("\n  ")
    );
    assert!(
        failures.is_empty(),
        "after {DEADLINE:?}:\n{}\n\nagents:\n{}",
        failures.join("\n"),
        agents
            .iter()
            .map(|a| a.stderr())
            .collect::<Vec<_>>()
            .join("\n")
    );
}

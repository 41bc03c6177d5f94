//! `remote_write.write_relabel_configs` and `remote_write.max_series`, through the
//! real binary:
//!
//! - against Prometheus 2.42 itself: the series the agent pushes through eleven
//!   rules are the series a second Prometheus keeps when it scrapes the agent's
//!   un-relabeled output with the same rules as `metric_relabel_configs`, and the
//!   series `--once` prints with the rules;
//! - the series limit: past it new series are left out and counted, the first ones
//!   and the agent's own keep flowing;
//! - a reload applies new rules, a bad config keeps the old ones;
//! - an invalid rule is refused by `--check-config`, naming its index, field and line.

use sc_agent_testkit as common;

use common::receiver::{Received, Receiver, Reply};
use common::{Agent, Exposition, Prometheus, TempDir};
use nix::sys::signal::Signal;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

/// Prometheus' stale marker (`value.StaleNaN`).
const STALE_NAN: u64 = 0x7ff0_0000_0000_0002;

const WAIT: Duration = Duration::from_secs(60);

type LabelSet = BTreeMap<String, String>;

/// Eleven rules: every action Prometheus 2.42 has but `labelkeep` and `dropequal`
/// (covered by the unit tests), over the disks, the scrape series and the agent's
/// own series (whose spool figures exist only when pushing).
const RULES: &str = r#"
- {source_labels: [__name__], regex: 'sc_agent_spool_.*|node_scrape_collector_duration_seconds', action: drop}
- {source_labels: [__name__], regex: 'node_disk_(read|writ).*|node_scrape_.*|sc_agent_.*', action: keep}
- {source_labels: [device], regex: '(sd|vd|dm-)(.*)', target_label: disk_kind, replacement: '${1}x'}
- {source_labels: [device], target_label: device_upper, action: uppercase}
- {source_labels: [env], target_label: env_lower, action: lowercase}
- {source_labels: [vm_id, device], target_label: shard, modulus: 8, action: hashmod}
- {regex: '(team|env_lower)', replacement: 'owner_$1', action: labelmap}
- {regex: 'team|env|env_lower', action: labeldrop}
- {source_labels: [instance], target_label: host, action: keepequal}
- {source_labels: [__name__], regex: 'node_disk_(.*)_total', target_label: __name__, replacement: 'disk_${1}'}
- {source_labels: [disk_kind], regex: 'dm-x', action: drop}
"#;

/// The agent's config on the diskstats fixture, pushing to `endpoint` when given.
fn config(endpoint: Option<&str>, remote_write: &str) -> String {
    let tree = common::fixtures().join("diskstats");
    let endpoint = endpoint.map_or(String::new(), |url| format!("ingestor_endpoint: {url}\n"));
    format!(
        "vm_id: relabel-vm\ninstance: relabel-host\njob: relabel-job\ncollection_interval: 200ms\n\
         {endpoint}labels:\n  env: E2E-Env\n  team: sre\n  host: relabel-host\n\
         paths:\n  procfs: {}\n  sysfs: {}\n  rootfs: {}\n{}remote_write:\n{}",
        tree.join("proc").display(),
        tree.join("sys").display(),
        tree.join("root").display(),
        common::collectors_only(&["diskstats"]),
        common::indent(remote_write, 2),
    )
}

fn rules_section() -> String {
    format!(
        "write_relabel_configs:\n{}",
        common::indent(RULES.trim(), 2)
    )
}

/// The label sets of an instant query's result.
fn label_sets(result: &[serde_json::Value]) -> BTreeSet<LabelSet> {
    result
        .iter()
        .map(|series| serde_json::from_value(series["metric"].clone()).unwrap())
        .collect()
}

/// Serves `body` as `/metrics` to every connection, on a free loopback port.
fn serve(body: String) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut request = Vec::new();
            let mut chunk = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&chunk[..n]),
                }
            }
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
}

/// What the agent's `--once` prints with `remote_write` in its config.
fn once(dir: &TempDir, name: &str, remote_write: &str) -> String {
    let path = dir.write(name, &config(None, remote_write));
    let once = common::run(&["--once", "--config", path.to_str().unwrap()], &[], WAIT);
    assert_eq!(once.status.code(), Some(0), "{}", once.stderr);
    once.stdout
}

#[test]
fn pushed_series_are_those_prometheus_keeps_with_the_same_rules() {
    let dir = TempDir::new();
    // The agent's output without rules, scraped by a Prometheus that applies them.
    let plain = once(&dir, "plain.yaml", "{}");
    assert!(plain.contains("node_disk_reads_completed_total{device=\"dm-0\""));
    let port = serve(plain);
    let scraper = Prometheus::start_with(&format!(
        "global:\n  scrape_interval: 1s\nscrape_configs:\n- job_name: relabel\n  \
         honor_labels: true\n  static_configs:\n  - targets: ['127.0.0.1:{port}']\n  \
         metric_relabel_configs:\n{}",
        common::indent(RULES.trim(), 2)
    ));
    // The agent pushing with the rules to another Prometheus.
    let receiver = Prometheus::start();
    let path = dir.write(
        "push.yaml",
        &config(Some(&receiver.write_url()), &rules_section()),
    );
    let _agent = Agent::spawn(&["--config", path.to_str().unwrap()], &[]);

    let everything = r#"{__name__=~".+", vm_id="relabel-vm"}"#;
    let pushed = label_sets(&receiver.wait_for(everything));
    let scraped_query = r#"{__name__=~".+", __name__!~"up|scrape_.*", vm_id="relabel-vm"}"#;
    scraper.wait_for(scraped_query);
    // Let both settle: a second look finds the same, once every series is in.
    std::thread::sleep(Duration::from_secs(3));
    let pushed_after = label_sets(&receiver.query(everything));
    let scraped = label_sets(&scraper.query(scraped_query));
    assert!(pushed_after.is_superset(&pushed));
    assert_eq!(
        pushed_after,
        scraped,
        "pushed only: {:#?}\nscraped only: {:#?}",
        pushed_after.difference(&scraped).collect::<Vec<_>>(),
        scraped.difference(&pushed_after).collect::<Vec<_>>()
    );

    // What the rules did, seen in the result: renamed disks with their new labels,
    // dm-0 dropped, the agent's own series relabeled too.
    let read = pushed_after
        .iter()
        .find(|s| {
            s["__name__"] == "disk_reads_completed"
                && s.get("device").map(String::as_str) == Some("sda")
        })
        .unwrap_or_else(|| panic!("{pushed_after:#?}"));
    assert_eq!(read["disk_kind"], "sdx");
    assert_eq!(read["device_upper"], "SDA");
    assert_eq!(read["owner_team"], "sre");
    assert_eq!(read["owner_env_lower"], "e2e-env");
    assert!(read["shard"].parse::<u8>().is_ok_and(|n| n < 8), "{read:?}");
    assert!(!read.contains_key("team") && !read.contains_key("env"));
    assert!(pushed_after
        .iter()
        .all(|s| s.get("device").map(String::as_str) != Some("dm-0")));
    assert!(pushed_after
        .iter()
        .any(|s| s["__name__"] == "sc_agent_build_info" && s["owner_team"] == "sre"));
    assert!(pushed_after
        .iter()
        .all(|s| !s["__name__"].starts_with("sc_agent_spool_")));
    assert!(pushed_after
        .iter()
        .all(|s| !s["__name__"].starts_with("node_memory")));

    // And stdout with the rules prints the same series.
    let printed = Exposition::parse(&once(&dir, "printed.yaml", &rules_section()));
    let printed: BTreeSet<LabelSet> = printed
        .samples
        .iter()
        .map(|s| {
            let mut labels = s.labels.clone();
            labels.insert("__name__".into(), s.name.clone());
            labels
        })
        .collect();
    assert_eq!(printed, pushed_after);
}

fn names_and_labels(request: &Received) -> Vec<LabelSet> {
    request.series.iter().map(|s| s.labels.clone()).collect()
}

fn is_own(labels: &LabelSet) -> bool {
    labels["__name__"].starts_with("sc_agent_")
}

#[test]
fn past_max_series_new_series_are_left_out_and_counted() {
    let dir = TempDir::new();
    let receiver = Receiver::start(|_| Reply::ok());
    let path = dir.write(
        "limit.yaml",
        &config(Some(&receiver.url()), "max_series: 20\n"),
    );
    let agent = Agent::spawn(&["--config", path.to_str().unwrap()], &[]);
    receiver.wait_for(WAIT, "a batch reporting dropped series", |requests| {
        requests.iter().any(|r| {
            r.value("sc_agent_series_dropped_total", &[("reason", "limit")])
                .is_some_and(|n| n > 0.0)
        })
    });
    let accepted = receiver.accepted();
    // Without the limit the fixture has more than 20 series of its own.
    let plain = Exposition::parse(&once(&dir, "plain.yaml", "{}"));
    let collected = plain
        .samples
        .iter()
        .filter(|s| !s.name.starts_with("sc_agent_"))
        .count();
    assert!(collected > 40, "{collected}");
    let first = names_and_labels(&accepted[0]);
    let kept: Vec<&LabelSet> = first.iter().filter(|s| !is_own(s)).collect();
    assert_eq!(kept.len(), 20);
    for request in &accepted {
        let series = names_and_labels(request);
        let others: Vec<&LabelSet> = series.iter().filter(|s| !is_own(s)).collect();
        assert_eq!(
            others, kept,
            "the first 20 keep flowing, no other joins them"
        );
        // The agent's own series are never held to the limit.
        assert!(series
            .iter()
            .any(|s| s["__name__"] == "sc_agent_build_info"));
        // Each batch counts what it left out: `collected - 20` per earlier batch.
        let dropped = request
            .value("sc_agent_series_dropped_total", &[("reason", "limit")])
            .unwrap();
        assert_eq!(dropped % (collected - 20) as f64, 0.0, "{dropped}");
        for reason in ["duplicate", "invalid"] {
            assert_eq!(
                request.value("sc_agent_series_dropped_total", &[("reason", reason)]),
                Some(0.0)
            );
        }
    }
    let stderr = agent.stderr();
    assert_eq!(
        stderr
            .matches("remote_write.max_series: 20 series are known")
            .count(),
        1,
        "{stderr}"
    );
}

#[test]
fn a_reload_applies_new_rules_and_a_bad_config_keeps_them() {
    let dir = TempDir::new();
    let receiver = Receiver::start(|_| Reply::ok());
    let write = |rule: &str| {
        dir.write(
            "reload.yaml",
            &config(
                Some(&receiver.url()),
                &format!("write_relabel_configs:\n- {rule}\n"),
            ),
        )
    };
    let path = write("{source_labels: [device], regex: sda, action: drop}");
    let agent = Agent::spawn(&["--config", path.to_str().unwrap()], &[]);
    // A series with a value, not a stale marker (Prometheus' stale NaN).
    let sample = |value: f64| value.to_bits() != STALE_NAN;
    let series_of = |request: &Received, device: &str, stale: bool| {
        request.series.iter().any(|s| {
            s.labels.get("device").map(String::as_str) == Some(device) && sample(s.value) != stale
        })
    };
    let has = |request: &Received, device: &str| series_of(request, device, false);
    let last = || receiver.accepted().last().cloned();
    receiver.wait_for(WAIT, "a batch", |r| !r.is_empty());
    let batch = last().unwrap();
    assert!(!has(&batch, "sda") && has(&batch, "vda"));

    write("{source_labels: [device], regex: vda, action: drop}");
    agent.signal(Signal::SIGHUP);
    assert!(agent.wait_for(WAIT, |_, err| err.contains("config reloaded")));
    let reloaded_at = Instant::now();
    receiver.wait_for(WAIT, "a batch after the reload", |r| {
        r.iter().any(|r| r.at > reloaded_at)
    });
    let batch = last().unwrap();
    assert!(
        has(&batch, "sda") && !has(&batch, "vda"),
        "the new rules apply"
    );

    // A rule that does not load: logged, and the running rules stay.
    write("{source_labels: [device], regex: 'sd[a', action: drop}");
    agent.signal(Signal::SIGHUP);
    assert!(agent.wait_for(WAIT, |_, err| err.contains("reload failed")));
    let stderr = agent.stderr();
    assert!(
        stderr.contains("remote_write.write_relabel_configs[0].regex: invalid regular expression"),
        "{stderr}"
    );
    let failed_at = Instant::now();
    receiver.wait_for(WAIT, "a batch after the failed reload", |r| {
        r.iter().any(|r| r.at > failed_at)
    });
    let batch = last().unwrap();
    assert!(
        has(&batch, "sda") && !has(&batch, "vda"),
        "the running rules stay"
    );
}

#[test]
fn an_invalid_rule_is_refused_naming_its_index_field_and_line() {
    let dir = TempDir::new();
    let path = dir.write(
        "bad.yaml",
        "remote_write:\n  write_relabel_configs:\n  - {source_labels: [device], regex: 'sd.*', action: drop}\n  \
         - source_labels: [device]\n    action: hashmod\n    target_label: shard\n",
    );
    let checked = common::run(
        &["--check-config", "--config", path.to_str().unwrap()],
        &[],
        WAIT,
    );
    assert_eq!(checked.status.code(), Some(1), "{}", checked.stdout);
    assert!(
        checked.stderr.contains(
            "remote_write.write_relabel_configs[1].modulus: relabel configuration for hashmod \
             requires non-zero modulus"
        ),
        "{}",
        checked.stderr
    );
    assert!(checked.stderr.contains("line 4"), "{}", checked.stderr);
    let path = dir.write("zero.yaml", "remote_write:\n  max_series: 0\n");
    let checked = common::run(
        &["--check-config", "--config", path.to_str().unwrap()],
        &[],
        WAIT,
    );
    assert_eq!(checked.status.code(), Some(1));
    assert!(
        checked
            .stderr
            .contains("remote_write.max_series: expected a positive"),
        "{}",
        checked.stderr
    );
}

//! End to end against a real Prometheus (Debian's `prometheus` with its remote write
//! receiver): what the agent pushes is what PromQL finds, with the identity and
//! custom labels, and the same values `--once` prints.

use sc_agent_testkit as common;

use common::{Agent, TempDir};
use nix::sys::signal::Signal;
use serde_json::Value;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(60);

/// A Prometheus on a free loopback port with a temporary TSDB; killed on drop.
struct Prometheus {
    child: Child,
    port: u16,
    dir: TempDir,
}

impl Prometheus {
    fn start() -> Prometheus {
        let binary = common::require("prometheus");
        let dir = TempDir::new();
        let config = dir.write("prometheus.yml", "global:\n  scrape_interval: 1h\n");
        let port = common::free_port();
        let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
        let child = Command::new(binary)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--web.enable-remote-write-receiver")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start prometheus");
        let mut prometheus = Prometheus { child, port, dir };
        prometheus.wait_ready();
        prometheus
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }

    fn wait_ready(&mut self) {
        let start = Instant::now();
        while start.elapsed() < WAIT {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("prometheus exited ({status}):\n{}", self.log());
            }
            let ready = minreq::get(format!("http://127.0.0.1:{}/-/ready", self.port))
                .with_timeout(2)
                .send()
                .is_ok_and(|r| r.status_code == 200);
            if ready {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("prometheus not ready after {WAIT:?}:\n{}", self.log());
    }

    fn write_url(&self) -> String {
        format!("http://127.0.0.1:{}/api/v1/write", self.port)
    }

    /// The `result` array of an instant query.
    fn query(&self, promql: &str) -> Vec<Value> {
        let url = format!(
            "http://127.0.0.1:{}/api/v1/query?query={}",
            self.port,
            percent_encode(promql)
        );
        let response = minreq::get(url).with_timeout(10).send().expect("query");
        let body: Value = serde_json::from_str(response.as_str().unwrap()).unwrap();
        assert_eq!(body["status"], "success", "{promql}: {body}");
        body["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Polls `promql` until it returns at least one series.
    fn wait_for(&self, promql: &str) -> Vec<Value> {
        let start = Instant::now();
        while start.elapsed() < WAIT {
            let result = self.query(promql);
            if !result.is_empty() {
                return result;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("{promql} found nothing after {WAIT:?}:\n{}", self.log());
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The value of a query result's single sample, as a number.
fn value(series: &Value) -> f64 {
    series["value"][1].as_str().unwrap().parse().unwrap()
}

/// The value `--once` printed for the series line starting with `name{`.
fn printed(once: &str, name: &str) -> f64 {
    once.lines()
        .find(|l| l.starts_with(&format!("{name}{{")))
        .and_then(|l| l.rsplit_once(' '))
        .map(|(_, v)| v.parse().unwrap())
        .unwrap_or_else(|| panic!("{name} not in --once output:\n{once}"))
}

#[test]
fn prometheus_receives_the_series_with_their_labels_and_values() {
    let prometheus = Prometheus::start();
    let dir = TempDir::new();
    let procfs = common::fixtures().join("loadavg_meminfo/proc");
    let config = format!(
        "vm_id: e2e-vm\ninstance: e2e-host\njob: e2e-job\ncollection_interval: 200ms\n\
         ingestor_endpoint: {}\nlabels:\n  env: e2e\n  team: sre\n\
         paths:\n  procfs: {}\n{}",
        prometheus.write_url(),
        procfs.display(),
        common::collectors_only(&["loadavg", "meminfo"])
    );
    let path = dir.write("sc-agent.yaml", &config);
    let path = path.to_str().unwrap();

    // --once prints to stdout even with an endpoint configured, and pushes nothing.
    let once = common::run(&["--once", "--config", path], &[], WAIT);
    assert_eq!(once.status.code(), Some(0), "{}", once.stderr);
    let once = once.stdout;
    let series_lines = once
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .count();

    let mut agent = Agent::spawn(&["--config", path], &[]);
    let load = prometheus.wait_for(r#"node_load1{vm_id="e2e-vm"}"#);
    assert_eq!(load.len(), 1, "{load:?}");
    assert_eq!(
        load[0]["metric"],
        serde_json::json!({
            "__name__": "node_load1",
            "env": "e2e",
            "instance": "e2e-host",
            "job": "e2e-job",
            "team": "sre",
            "vm_id": "e2e-vm",
        })
    );
    assert_eq!(value(&load[0]), printed(&once, "node_load1"));
    assert_eq!(value(&load[0]), 0.31);
    for name in [
        "node_load15",
        "node_memory_MemTotal_bytes",
        "node_memory_Active_anon_bytes",
        "node_memory_HugePages_Total",
    ] {
        let result = prometheus.wait_for(&format!(r#"{name}{{vm_id="e2e-vm"}}"#));
        assert_eq!(value(&result[0]), printed(&once, name), "{name}");
    }
    // Every series --once prints is in Prometheus.
    let count = prometheus.wait_for(r#"count({vm_id="e2e-vm", job="e2e-job"})"#);
    assert_eq!(value(&count[0]), series_lines as f64, "{once}");
    // Delivery reports itself, and nothing failed.
    let sent = prometheus.wait_for(r#"sc_agent_samples_sent_total{vm_id="e2e-vm"} > 0"#);
    assert!(value(&sent[0]) > 0.0);
    let failed = prometheus.query(r#"sum(sc_agent_send_failures_total{vm_id="e2e-vm"})"#);
    assert_eq!(value(&failed[0]), 0.0, "{}", agent.stderr());
    let build = prometheus.wait_for(r#"sc_agent_build_info{vm_id="e2e-vm"}"#);
    assert_eq!(build[0]["metric"]["version"], env!("CARGO_PKG_VERSION"));

    agent.signal(Signal::SIGTERM);
    let status = agent.wait_exit(WAIT).expect("exit after SIGTERM");
    assert_eq!(status.code(), Some(0), "{}", agent.stderr());
    assert!(
        !prometheus.log().contains("out of order"),
        "{}",
        prometheus.log()
    );
}

//! A real VictoriaMetrics (Debian's `victoria-metrics`, single node) as a test peer:
//! its Prometheus remote write endpoint, queried through its Prometheus-compatible
//! API, stopped and resumed on the same port and data for outages, killed on drop.
//!
//! `-search.latencyOffset=0s` makes samples queryable as soon as they are stored
//! (the default hides the last 30 s), and `-search.disableCache` keeps one query from
//! answering from an earlier one's cache.

use crate::prometheus::percent_encode;
use crate::{free_port, http_get, require, TempDir};
use serde_json::Value;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long VictoriaMetrics may take to start.
pub const VICTORIA_WAIT: Duration = Duration::from_secs(60);

pub struct VictoriaMetrics {
    child: Option<Child>,
    port: u16,
    dir: TempDir,
}

impl VictoriaMetrics {
    pub fn start() -> VictoriaMetrics {
        let mut victoria = VictoriaMetrics {
            child: None,
            port: free_port(),
            dir: TempDir::new(),
        };
        victoria.resume();
        victoria
    }

    /// Stops it (an outage: the port refuses connections); its data stays.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port and data after [`VictoriaMetrics::stop`].
    pub fn resume(&mut self) {
        self.stop();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("victoria.log"))
            .unwrap();
        let child = Command::new(require("victoria-metrics"))
            .arg(format!("-httpListenAddr=127.0.0.1:{}", self.port))
            .arg(format!(
                "-storageDataPath={}",
                self.dir.path().join("data").display()
            ))
            .args(["-retentionPeriod=1d", "-search.latencyOffset=0s"])
            .arg("-search.disableCache")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start victoria-metrics");
        self.child = Some(child);
        let start = Instant::now();
        while start.elapsed() < VICTORIA_WAIT {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().unwrap()) {
                panic!("victoria-metrics exited ({status}):\n{}", self.log());
            }
            if http_get(self.port, "/health").is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("victoria-metrics not ready:\n{}", self.log());
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("victoria.log")).unwrap_or_default()
    }

    /// The Prometheus remote write URL, for the agent's `ingestor_endpoint`.
    pub fn write_url(&self) -> String {
        format!("http://127.0.0.1:{}/api/v1/write", self.port)
    }

    /// The `result` array of an instant query at the present time.
    pub fn query(&self, promql: &str) -> Vec<Value> {
        let path = format!("/api/v1/query?query={}", percent_encode(promql));
        let response = http_get(self.port, &path).expect("query");
        let body: Value =
            serde_json::from_str(&response).unwrap_or_else(|e| panic!("{promql}: {e}"));
        assert_eq!(body["status"], "success", "{promql}: {body}");
        body["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// The raw samples of every series `selector` matches, stored between `start_ms`
    /// and `end_ms`: `(labels, [(timestamp_ms, value)])`, from `/api/v1/export`.
    pub fn export(&self, selector: &str, start_ms: i64, end_ms: i64) -> Vec<Value> {
        // Samples must be flushed to be exported: ask for it.
        let _ = http_get(self.port, "/internal/force_flush");
        let path = format!(
            "/api/v1/export?match[]={}&start={}&end={}",
            percent_encode(selector),
            start_ms as f64 / 1000.0,
            end_ms as f64 / 1000.0
        );
        let response = http_get(self.port, &path).expect("export");
        response
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect()
    }
}

impl Drop for VictoriaMetrics {
    fn drop(&mut self) {
        self.stop();
    }
}

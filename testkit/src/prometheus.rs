//! A real Prometheus (Debian's `prometheus`, 2.42) as a test peer: started on a free
//! loopback port with a temporary TSDB and its remote write receiver on, over HTTP or
//! HTTPS (`--web.config.file`, mutual TLS if it says so), queried through its HTTP
//! API, stopped and resumed on the same port and data for outages, killed on drop.

use crate::{free_port, http_get, https_get, require, TempDir};
use serde_json::Value;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long Prometheus may take to start, and a query to find something.
pub const PROMETHEUS_WAIT: Duration = Duration::from_secs(60);

/// A Prometheus that accepts remote write; killed on drop.
pub struct Prometheus {
    /// `None` while stopped (an outage).
    child: Option<Child>,
    port: u16,
    dir: TempDir,
    /// Serving HTTPS (`web.yml` in `dir`): how the tests' own requests connect.
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl Prometheus {
    /// One that scrapes nothing.
    pub fn start() -> Prometheus {
        Prometheus::start_with("global:\n  scrape_interval: 1h\n")
    }

    /// One with this configuration file (`scrape_configs:` for peers to scrape).
    pub fn start_with(config: &str) -> Prometheus {
        Prometheus::launch(config, None)
    }

    /// One serving HTTPS as `web_config` (the text of a `--web.config.file`) says;
    /// the tests' queries connect with `client` (see `receiver::tls::client_config`).
    pub fn start_tls(web_config: &str, client: Arc<rustls::ClientConfig>) -> Prometheus {
        Prometheus::launch(
            "global:\n  scrape_interval: 1h\n",
            Some((web_config, client)),
        )
    }

    fn launch(config: &str, tls: Option<(&str, Arc<rustls::ClientConfig>)>) -> Prometheus {
        let dir = TempDir::new();
        dir.write("prometheus.yml", config);
        let tls = tls.map(|(web_config, client)| {
            dir.write("web.yml", web_config);
            client
        });
        let mut prometheus = Prometheus {
            child: None,
            port: free_port(),
            dir,
            tls,
        };
        prometheus.resume();
        prometheus
    }

    /// Stops it (an outage: the port refuses connections); its data stays.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port and data after [`Prometheus::stop`].
    pub fn resume(&mut self) {
        self.stop();
        let binary = require("prometheus");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("prometheus.log"))
            .unwrap();
        let mut command = Command::new(binary);
        command
            .arg(format!(
                "--config.file={}",
                self.dir.path().join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                self.dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{}", self.port))
            .arg("--web.enable-remote-write-receiver");
        if self.tls.is_some() {
            command.arg(format!(
                "--web.config.file={}",
                self.dir.path().join("web.yml").display()
            ));
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start prometheus");
        self.child = Some(child);
        self.wait_ready();
    }

    /// Its loopback port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// What Prometheus logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }

    fn wait_ready(&mut self) {
        let start = Instant::now();
        while start.elapsed() < PROMETHEUS_WAIT {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().unwrap()) {
                panic!("prometheus exited ({status}):\n{}", self.log());
            }
            if self.get("/-/ready").is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "prometheus not ready after {PROMETHEUS_WAIT:?}:\n{}",
            self.log()
        );
    }

    /// A GET of `path`; the body of a 200.
    fn get(&self, path: &str) -> std::io::Result<String> {
        match &self.tls {
            Some(tls) => https_get(self.port, path, tls),
            None => http_get(self.port, path),
        }
    }

    /// The remote write URL, for the agent's `ingestor_endpoint`.
    pub fn write_url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}/api/v1/write", self.port)
    }

    /// The `result` array of an instant query at the present time.
    pub fn query(&self, promql: &str) -> Vec<Value> {
        let path = format!("/api/v1/query?query={}", percent_encode(promql));
        let response = self.get(&path).expect("query");
        let body: Value = serde_json::from_str(&response).unwrap();
        assert_eq!(body["status"], "success", "{promql}: {body}");
        body["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Polls `promql` until it returns at least one series.
    pub fn wait_for(&self, promql: &str) -> Vec<Value> {
        let start = Instant::now();
        while start.elapsed() < PROMETHEUS_WAIT {
            let result = self.query(promql);
            if !result.is_empty() {
                return result;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "{promql} found nothing after {PROMETHEUS_WAIT:?}:\n{}",
            self.log()
        );
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `text` as a URL query value: everything but the unreserved characters escaped.
pub fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

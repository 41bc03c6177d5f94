//! End to end against a real Prometheus (Debian's `prometheus` 2.42 with its remote
//! write receiver): what the agent pushes is what PromQL finds, with the identity and
//! custom labels, and the same values `--once` prints; and over mutual TLS
//! (Prometheus' `--web.config.file` requiring a client certificate), with the CA
//! file replaced and reloaded while the agent runs.

use sc_agent_testkit as common;

use common::{Agent, Prometheus, TempDir};
use nix::sys::signal::Signal;
use serde_json::Value;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

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
    // Every series --once prints is in Prometheus; the pushing agent has its spool's
    // series besides, which --once (nothing to spool) does not report.
    let count = prometheus
        .wait_for(r#"count({vm_id="e2e-vm", job="e2e-job", __name__!~"sc_agent_spool_.*"})"#);
    assert_eq!(value(&count[0]), series_lines as f64, "{once}");
    assert!(!once.contains("sc_agent_spool_"), "{once}");
    let spool = prometheus.wait_for(r#"count({vm_id="e2e-vm", __name__=~"sc_agent_spool_.*"})"#);
    assert!(value(&spool[0]) > 0.0);
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

#[cfg(feature = "tls")]
mod mtls {
    use super::*;
    use common::receiver::tls::{client_config, make_certificates, make_client_certificate};

    /// A config pushing loadavg and meminfo every 200ms to `endpoint` with `tls`
    /// (unindented YAML under `remote_write.tls`).
    fn config(vm_id: &str, endpoint: &str, tls: &str) -> String {
        let procfs = common::fixtures().join("loadavg_meminfo/proc");
        format!(
            "vm_id: {vm_id}\ninstance: mtls-host\ncollection_interval: 200ms\n\
             ingestor_endpoint: {endpoint}\n\
             remote_write:\n  min_backoff: 20ms\n  max_backoff: 200ms\n  tls:\n{}\
             paths:\n  procfs: {}\n{}",
            common::indent(tls, 4),
            procfs.display(),
            common::collectors_only(&["loadavg", "meminfo"])
        )
    }

    /// Waits until the agent's batches report refused TLS attempts (the first
    /// batches, made before the first attempt failed, report none yet).
    fn tls_failures(prometheus: &Prometheus, vm_id: &str) -> f64 {
        let result = prometheus.wait_for(&format!(
            r#"sc_agent_send_failures_total{{vm_id="{vm_id}", reason="tls"}} > 0"#
        ));
        value(&result[0])
    }

    #[test]
    fn over_mutual_tls_a_client_certificate_is_required_and_a_replaced_ca_file_is_reloaded() {
        let certs = TempDir::new();
        let (ca, server_cert, server_key) = make_certificates(certs.path());
        let (client_cert, client_key) = make_client_certificate(certs.path(), "sc-agent");
        let web_config = format!(
            "tls_server_config:\n  cert_file: {}\n  key_file: {}\n  client_ca_file: {}\n  \
             client_auth_type: RequireAndVerifyClientCert\n",
            server_cert.display(),
            server_key.display(),
            ca.display()
        );
        let prometheus = Prometheus::start_tls(
            &web_config,
            client_config(&ca, Some((&client_cert, &client_key))),
        );
        // Prometheus itself refuses a client without a certificate.
        let anonymous = client_config(&ca, None);
        assert!(common::https_get(prometheus.port(), "/-/ready", &anonymous).is_err());

        // 1. The agent trusts another CA: the server's certificate is refused.
        let other = TempDir::new();
        let (other_ca, _, _) = make_certificates(other.path());
        let dir = TempDir::new();
        let ca_file = dir.path().join("ca.pem");
        std::fs::copy(&other_ca, &ca_file).unwrap();
        let with_cert = format!(
            "ca_file: {}\ncert_file: {}\nkey_file: {}\n",
            ca_file.display(),
            client_cert.display(),
            client_key.display()
        );
        let path = dir.write(
            "agent.yaml",
            &config("mtls-vm", &prometheus.write_url(), &with_cert),
        );
        let mut agent = Agent::spawn(&["--config", path.to_str().unwrap()], &[]);
        assert!(
            agent.wait_for(WAIT, |_, err| err.contains("failed (tls)")),
            "{}",
            agent.stderr()
        );
        assert!(
            agent.stderr().contains("invalid peer certificate"),
            "{}",
            agent.stderr()
        );

        // 2. The CA file is replaced by the right one and the agent reloaded: no
        // restart, and the queued batches and the count of refusals arrive.
        std::fs::copy(&ca, &ca_file).unwrap();
        agent.signal(Signal::SIGHUP);
        let load = prometheus.wait_for(r#"node_load1{vm_id="mtls-vm"}"#);
        assert_eq!(value(&load[0]), 0.31);
        assert!(tls_failures(&prometheus, "mtls-vm") >= 1.0);
        assert!(agent.is_running());

        // 3. The right CA but no client certificate: Prometheus ends the handshake,
        // the push fails closed and is counted as tls.
        let path = dir.write(
            "anonymous.yaml",
            &config(
                "anonymous-vm",
                &prometheus.write_url(),
                &format!("ca_file: {}\n", ca.display()),
            ),
        );
        let mut anonymous_agent = Agent::spawn(&["--config", path.to_str().unwrap()], &[]);
        assert!(
            anonymous_agent.wait_for(WAIT, |_, err| err.contains("failed (tls)")),
            "{}",
            anonymous_agent.stderr()
        );
        std::thread::sleep(Duration::from_secs(1));
        let none = prometheus.query(r#"count({vm_id="anonymous-vm"})"#);
        assert!(none.is_empty(), "{none:?}");
        // Given the certificate at a reload, its backlog and the refusals arrive.
        dir.write(
            "anonymous.yaml",
            &config("anonymous-vm", &prometheus.write_url(), &with_cert),
        );
        anonymous_agent.signal(Signal::SIGHUP);
        prometheus.wait_for(r#"node_load1{vm_id="anonymous-vm"}"#);
        assert!(tls_failures(&prometheus, "anonymous-vm") >= 1.0);
        for reason in ["connection", "timeout", "invalid_response"] {
            let result = prometheus.query(&format!(
                r#"sc_agent_send_failures_total{{vm_id="anonymous-vm", reason="{reason}"}}"#
            ));
            assert_eq!(
                value(&result[0]),
                0.0,
                "{reason}: {}",
                anonymous_agent.stderr()
            );
        }

        for agent in [&mut agent, &mut anonymous_agent] {
            agent.signal(Signal::SIGTERM);
            let status = agent.wait_exit(WAIT).expect("exit after SIGTERM");
            assert_eq!(status.code(), Some(0), "{}", agent.stderr());
        }
        assert!(
            !prometheus.log().contains("out of order"),
            "{}",
            prometheus.log()
        );
    }
}

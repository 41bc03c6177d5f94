//! Secrets (basic-auth password, bearer token), from files and from the environment,
//! never appear in anything the agent writes: its log at `log_level: trace` (text and
//! JSON), `--print-config`, `--check-config` errors, reload errors, and the log lines
//! quoting an endpoint's answer — even when the endpoint echoes the credentials back
//! (401/403/500 bodies, a redirect's Location).
//!
//! `tests/remote_write.rs` already checks that the right `Authorization` header
//! arrives, that trace logs and `--print-config` of a working setup hold no secret,
//! and that TLS certificate errors fail closed (`reason="tls"`, no request reaches the
//! server). About 10 seconds.

use sc_agent_testkit as common;

use common::{Agent, TempDir};
use nix::sys::signal::Signal;
use receiver::{Receiver, Reply};
use std::time::Duration;

use sc_agent_testkit::receiver;

const WAIT: Duration = Duration::from_secs(30);

const PASSWORD: &str = "pa55-from-file";
const ENV_PASSWORD: &str = "pa55-from-env";
const TOKEN: &str = "t0ken-from-file";
const ENV_TOKEN: &str = "t0ken-from-env";

/// Every form a secret could leak in: itself, and the basic-auth header's base64.
fn forms() -> Vec<String> {
    let b64 = |pair: &str| base64(pair.as_bytes());
    vec![
        PASSWORD.into(),
        ENV_PASSWORD.into(),
        TOKEN.into(),
        ENV_TOKEN.into(),
        b64(&format!("agent:{PASSWORD}")),
        b64(&format!("agent:{ENV_PASSWORD}")),
        // Parts of a secret are as bad: a window of the start of each.
        PASSWORD[..8].into(),
        ENV_PASSWORD[..8].into(),
        TOKEN[..8].into(),
        ENV_TOKEN[..8].into(),
    ]
}

fn assert_clean(what: &str, text: &str) {
    for form in forms() {
        assert!(
            !text.contains(&form),
            "{form:?} leaked into {what}:\n{text}"
        );
    }
}

fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A config with only loadavg and meminfo from the fixture procfs, and more
/// `remote_write:` settings (unindented YAML).
fn config(endpoint: &str, remote_write: &str) -> String {
    let procfs = common::fixtures().join("loadavg_meminfo/proc");
    format!(
        "vm_id: test-vm\ninstance: test-host\ncollection_interval: 100ms\n\
         ingestor_endpoint: {endpoint}\nlog_level: trace\n\
         remote_write:\n  min_backoff: 20ms\n  max_backoff: 100ms\n{}\
         paths:\n  procfs: {}\n{}",
        common::indent(remote_write, 2),
        procfs.display(),
        common::collectors_only(&["loadavg", "meminfo"])
    )
}

/// A receiver that answers with the request's own `Authorization` header (and the
/// token in every form) in the body, in turn as 401, 403, 500 and a 307 whose
/// Location carries it too.
fn echoing_receiver() -> Receiver {
    Receiver::start_with_headers(|n, headers| {
        let authorization = headers.get("authorization").cloned().unwrap_or_default();
        let body = format!(
            "{{\"error\":\"bad credentials\",\"authorization\":\"{authorization}\",\
             \"raw\":\"{}\"}}",
            authorization.rsplit(' ').next().unwrap_or_default()
        );
        match n % 4 {
            0 => Reply::status(401, &body),
            1 => Reply::status(403, &body),
            2 => Reply::status(500, &body),
            _ => Reply::Status(
                307,
                vec![(
                    "Location".into(),
                    format!("http://127.0.0.1:1/?auth={authorization}"),
                )],
                body,
            ),
        }
    })
}

fn start(dir: &TempDir, name: &str, config: &str, env: &[(&str, &str)]) -> Agent {
    let path = dir.write(name, config);
    Agent::spawn(&["--config", path.to_str().unwrap()], env)
}

#[test]
fn an_endpoint_echoing_the_credentials_never_gets_them_into_the_log() {
    let dir = TempDir::new();
    let password = dir.write("password", &format!("{PASSWORD}\n"));
    let token = dir.write("token", &format!("{TOKEN}\n"));
    type Case<'a> = (&'a str, String, Vec<(&'a str, &'a str)>);
    let cases: [Case; 4] = [
        (
            "basic auth, password from a file",
            format!(
                "basic_auth:\n  username: agent\n  password_file: {}\n",
                password.display()
            ),
            vec![],
        ),
        (
            "basic auth, password from the environment",
            "basic_auth:\n  username: agent\n".into(),
            vec![("SC_BASIC_AUTH_PASSWORD", ENV_PASSWORD)],
        ),
        (
            "bearer token from a file, JSON log",
            format!("bearer_token_file: {}\n", token.display()),
            vec![],
        ),
        (
            "bearer token from the environment",
            String::new(),
            vec![("SC_BEARER_TOKEN", ENV_TOKEN)],
        ),
    ];
    for (i, (what, remote_write, env)) in cases.iter().enumerate() {
        let receiver = echoing_receiver();
        let mut yaml = config(&receiver.url(), remote_write);
        if what.ends_with("JSON log") {
            yaml.push_str("log_format: json\n");
        }
        let agent = start(&dir, &format!("{i}.yaml"), &yaml, env);
        // Two rounds of 401, 403, 500 and 307: each is logged at least once.
        receiver.wait_for(WAIT, "eight answers", |r| r.len() >= 8);
        let received = receiver.received();
        let authorization = received[0].headers.get("authorization").cloned();
        assert!(
            authorization
                .as_deref()
                .is_some_and(|a| a.starts_with("Basic ") || a.starts_with("Bearer ")),
            "{what}: {authorization:?}"
        );
        assert!(
            agent.wait_for(WAIT, |_, err| err.matches("with HTTP 40").count() >= 2
                && err.contains("HTTP 500")
                && err.contains("HTTP 307")),
            "{what}: the answers were not logged:\n{}",
            agent.stderr()
        );
        let stderr = agent.stderr();
        assert!(stderr.contains("bad credentials"), "{what}: {stderr}");
        assert_clean(what, &stderr);
    }
}

#[test]
fn print_config_and_check_config_hold_no_secret() {
    let dir = TempDir::new();
    let password = dir.write("password", &format!("{PASSWORD}\n"));
    let token = dir.write("token", &format!("{TOKEN}\n"));
    let endpoint = "https://metrics.example.com/api/v1/write";
    let basic_file = format!(
        "basic_auth:\n  username: agent\n  password_file: {}\n",
        password.display()
    );
    let bearer_file = format!("bearer_token_file: {}\n", token.display());
    let two_lines = dir.write("two-lines", &format!("{PASSWORD}\n{PASSWORD}\n"));
    type Case<'a> = (&'a str, String, Vec<(&'a str, String)>, bool);
    let cases: Vec<Case> = vec![
        ("password file", basic_file.clone(), vec![], true),
        (
            "password from the environment",
            "basic_auth:\n  username: agent\n".into(),
            vec![("SC_BASIC_AUTH_PASSWORD", ENV_PASSWORD.into())],
            true,
        ),
        ("token file", bearer_file.clone(), vec![], true),
        (
            "token from the environment",
            String::new(),
            vec![("SC_BEARER_TOKEN", ENV_TOKEN.into())],
            true,
        ),
        // Errors: each names the field, never the value.
        (
            "basic auth and a bearer token",
            format!("{basic_file}{bearer_file}"),
            vec![("SC_BEARER_TOKEN", ENV_TOKEN.into())],
            false,
        ),
        (
            "an empty user name",
            format!(
                "basic_auth:\n  username: ''\n  password_file: {}\n",
                password.display()
            ),
            vec![("SC_BASIC_AUTH_PASSWORD", ENV_PASSWORD.into())],
            false,
        ),
        (
            "a user name with a colon",
            "basic_auth:\n  username: 'agent:x'\n".into(),
            vec![("SC_BASIC_AUTH_PASSWORD", ENV_PASSWORD.into())],
            false,
        ),
        (
            "a password without a user",
            String::new(),
            vec![("SC_BASIC_AUTH_PASSWORD", ENV_PASSWORD.into())],
            false,
        ),
        (
            "a password file of two lines",
            format!(
                "basic_auth:\n  username: agent\n  password_file: {}\n",
                two_lines.display()
            ),
            vec![],
            false,
        ),
        (
            "a token with a line break",
            String::new(),
            vec![("SC_BEARER_TOKEN", format!("{ENV_TOKEN}\n{ENV_TOKEN}"))],
            false,
        ),
        (
            "a password with a control character",
            "basic_auth:\n  username: agent\n".into(),
            vec![("SC_BASIC_AUTH_PASSWORD", format!("{ENV_PASSWORD}\u{7}"))],
            false,
        ),
        (
            "an Authorization header in headers",
            format!("headers:\n  Authorization: Bearer {TOKEN}\n"),
            vec![],
            false,
        ),
        (
            "a password inline",
            format!("basic_auth:\n  username: agent\n  password: {PASSWORD}\n"),
            vec![],
            false,
        ),
        (
            "a bad field beside the secrets",
            format!("{basic_file}timeout: soon\n"),
            vec![("SC_BASIC_AUTH_PASSWORD", ENV_PASSWORD.into())],
            false,
        ),
    ];
    for (what, remote_write, env, valid) in &cases {
        let yaml = format!(
            "vm_id: test-vm\ningestor_endpoint: {endpoint}\nremote_write:\n{}",
            common::indent(remote_write, 2)
        );
        let path = dir.write("case.yaml", &yaml);
        let env: Vec<(&str, &str)> = env.iter().map(|(n, v)| (*n, v.as_str())).collect();
        for flag in ["--check-config", "--print-config"] {
            let out = common::run(&[flag, "--config", path.to_str().unwrap()], &env, WAIT);
            let code = out.status.code();
            assert_eq!(
                code,
                Some(if *valid { 0 } else { 1 }),
                "{what} {flag}: {}{}",
                out.stdout,
                out.stderr
            );
            if !valid {
                assert!(
                    out.stderr.starts_with("sc-agent: "),
                    "{what}: {}",
                    out.stderr
                );
            }
            if *valid && flag == "--print-config" {
                assert!(out.stdout.contains("loaded (not shown)"), "{}", out.stdout);
            }
            assert_clean(&format!("{what} {flag} stdout"), &out.stdout);
            assert_clean(&format!("{what} {flag} stderr"), &out.stderr);
        }
    }
    // The same with the secret in the URL: refused, not echoed.
    let out = common::run(
        &["--check-config"],
        &[
            ("SC_VM_ID", "test-vm"),
            (
                "SC_INGESTOR_ENDPOINT",
                &format!("https://agent:{ENV_PASSWORD}@metrics.example.com/write"),
            ),
        ],
        WAIT,
    );
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    assert_clean("a URL with credentials", &out.stderr);
}

#[test]
fn a_reload_that_fails_over_credentials_logs_no_secret() {
    let receiver = Receiver::start(|_| Reply::ok());
    let dir = TempDir::new();
    let token = dir.write("token", &format!("{TOKEN}\n"));
    let password = dir.write("password", &format!("{PASSWORD}\n"));
    let good = config(
        &receiver.url(),
        &format!("bearer_token_file: {}\n", token.display()),
    );
    let mut agent = start(&dir, "sc-agent.yaml", &good, &[]);
    receiver.wait_for(WAIT, "a batch", |r| r.iter().any(|r| r.accepted()));
    // Both kinds of credentials at once, then a secret file gone bad, then a fix.
    for bad in [
        format!(
            "basic_auth:\n  username: agent\n  password_file: {}\nbearer_token_file: {}\n",
            password.display(),
            token.display()
        ),
        format!("bearer_token_file: {}\n", dir.path().join("none").display()),
    ] {
        dir.write("sc-agent.yaml", &config(&receiver.url(), &bad));
        let failed = agent.stderr().matches("reload failed").count();
        agent.signal(Signal::SIGHUP);
        assert!(
            agent.wait_for(WAIT, |_, err| err.matches("reload failed").count() > failed),
            "{}",
            agent.stderr()
        );
    }
    dir.write("token", &format!("{TOKEN}\n{TOKEN}\n"));
    dir.write("sc-agent.yaml", &good);
    agent.signal(Signal::SIGHUP);
    assert!(
        agent.wait_for(WAIT, |_, err| err.matches("reload failed").count() >= 3),
        "{}",
        agent.stderr()
    );
    assert!(agent.is_running());
    // Still sending with the first token.
    let seen = receiver.received().len();
    receiver.wait_for(WAIT, "batches after the failed reloads", |r| {
        r.len() > seen + 2
    });
    let last = receiver.received().pop().unwrap();
    assert_eq!(
        last.headers.get("authorization").map(String::as_str),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    assert_clean("the log of failed reloads", &agent.stderr());
}

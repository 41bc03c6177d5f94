//! Shared helpers for the integration tests: the real binary, temp dirs, free ports,
//! and a running agent whose stdout and stderr are captured as they arrive.
#![allow(dead_code)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The sc-agent binary cargo built for these tests.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_sc-agent"))
}

/// The directory of the fixture trees.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// A command the test needs from the machine (installed by scripts/test.sh).
pub fn require(command: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(command))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!("{command} is not installed: run scripts/test.sh, which installs it")
        })
}

/// A temporary directory, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new() -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "sc-agent-it-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn write(&self, relative: &str, contents: &str) -> PathBuf {
        let path = self.0.join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        // Write-then-rename so a running agent never reads a half-written file.
        let tmp = path.with_extension("tmp-write");
        std::fs::write(&tmp, contents).unwrap();
        std::fs::rename(&tmp, &path).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A free TCP port on loopback (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A config with a literal identity, so tests do not depend on the machine's.
pub fn base_config(extra: &str) -> String {
    format!("vm_id: test-vm\ninstance: test-host\n{extra}")
}

/// Runs the binary to completion (killed after `timeout`) and returns its output.
pub fn run(args: &[&str], env: &[(&str, &str)], timeout: Duration) -> Finished {
    let mut agent = Agent::spawn(args, env);
    let status = agent
        .wait_exit(timeout)
        .expect("sc-agent did not exit in time");
    Finished {
        status,
        stdout: agent.stdout(),
        stderr: agent.stderr(),
    }
}

pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// A running sc-agent with captured output; killed on drop.
pub struct Agent {
    child: Child,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
}

fn capture(mut stream: impl Read + Send + 'static) -> Arc<Mutex<String>> {
    let text = Arc::new(Mutex::new(String::new()));
    let sink = Arc::clone(&text);
    std::thread::spawn(move || {
        let mut chunk = [0u8; 8192];
        while let Ok(n) = stream.read(&mut chunk) {
            if n == 0 {
                break;
            }
            sink.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&chunk[..n]));
        }
    });
    text
}

impl Agent {
    pub fn spawn(args: &[&str], env: &[(&str, &str)]) -> Self {
        Agent::spawn_with(Command::new(bin()).args(args), env)
    }

    /// Spawns a prepared command (for a custom PATH, working directory, ...).
    pub fn spawn_with(command: &mut Command, env: &[(&str, &str)]) -> Self {
        for (name, _) in std::env::vars().filter(|(n, _)| n.starts_with("SC_")) {
            command.env_remove(name);
        }
        let mut child = command
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn sc-agent");
        let stdout = capture(child.stdout.take().unwrap());
        let stderr = capture(child.stderr.take().unwrap());
        Agent {
            child,
            stdout,
            stderr,
        }
    }

    pub fn pid(&self) -> nix::unistd::Pid {
        nix::unistd::Pid::from_raw(self.child.id() as i32)
    }

    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        nix::sys::signal::kill(self.pid(), signal).unwrap();
    }

    pub fn stdout(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits until `done(stdout, stderr)` holds; false on timeout.
    pub fn wait_for(&self, timeout: Duration, done: impl Fn(&str, &str) -> bool) -> bool {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if done(&self.stdout(), &self.stderr()) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        done(&self.stdout(), &self.stderr())
    }

    /// Waits for the process to exit; `None` on timeout. Output is drained first.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // Let the capture threads read what is left in the pipes.
                std::thread::sleep(Duration::from_millis(50));
                return Some(status);
            }
            if start.elapsed() > timeout {
                return None;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How many full expositions (cycles) a stdout capture holds.
pub fn cycles(stdout: &str) -> usize {
    stdout
        .matches("# TYPE node_scrape_collector_success gauge")
        .count()
}

/// One parsed exposition: series and the HELP/TYPE of each family.
#[derive(Debug, Default)]
pub struct Exposition {
    pub samples: Vec<Sample>,
    pub help: std::collections::BTreeMap<String, String>,
    pub kind: std::collections::BTreeMap<String, String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: std::collections::BTreeMap<String, String>,
    pub value: f64,
}

impl Exposition {
    /// Parses Prometheus text format 0.0.4 (the subset node_exporter and sc-agent
    /// write: no timestamps, label values escaped with `\\`, `\"`, `\n`).
    pub fn parse(text: &str) -> Exposition {
        let mut exposition = Exposition::default();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
                exposition.help.insert(name.into(), help.into());
            } else if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').expect("TYPE line");
                exposition.kind.insert(name.into(), kind.into());
            } else if !line.starts_with('#') && !line.trim().is_empty() {
                exposition.samples.push(parse_sample(line));
            }
        }
        exposition
    }

    pub fn find(&self, name: &str) -> impl Iterator<Item = &Sample> {
        let name = name.to_owned();
        self.samples.iter().filter(move |s| s.name == name)
    }

    /// The value of the one series named `name` whose labels include `labels`.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.find(name)
            .find(|s| {
                labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|s| s.value)
    }
}

fn parse_sample(line: &str) -> Sample {
    let (series, value) = line.rsplit_once(' ').expect("sample line");
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v
            .parse()
            .unwrap_or_else(|_| panic!("bad value in {line:?}")),
    };
    let Some((name, rest)) = series.split_once('{') else {
        return Sample {
            name: series.into(),
            labels: Default::default(),
            value,
        };
    };
    let mut labels = std::collections::BTreeMap::new();
    let mut chars = rest.trim_end_matches('}').chars().peekable();
    loop {
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.is_empty() {
            break;
        }
        assert_eq!(chars.next(), Some('"'), "in {line:?}");
        let mut label_value = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some('n') => label_value.push('\n'),
                    Some(other) => label_value.push(other),
                    None => break,
                },
                '"' => break,
                c => label_value.push(c),
            }
        }
        labels.insert(key.trim_start_matches(',').to_owned(), label_value);
        if chars.peek() == Some(&',') {
            chars.next();
        }
    }
    Sample {
        name: name.into(),
        labels,
        value,
    }
}

/// GET `path` from 127.0.0.1:`port` with plain HTTP/1.0; returns the body.
pub fn http_get(port: u16, path: &str) -> std::io::Result<String> {
    use std::io::Write;
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let (head, body) = response
        .split_once("\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no HTTP header end"))?;
    if !head.starts_with("HTTP/1.1 200") && !head.starts_with("HTTP/1.0 200") {
        return Err(std::io::Error::other(format!("HTTP error: {head}")));
    }
    Ok(body.to_owned())
}

/// Waits until something accepts TCP connections on 127.0.0.1:`port`.
pub fn wait_for_port(port: u16, timeout: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// A child process killed on drop (test peers such as node_exporter or prometheus).
pub struct Peer(pub Child);

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[path = "../support/collectors.rs"]
mod collectors;
#[allow(unused_imports)]
pub use collectors::collectors_only;

/// The complete expositions in a stdout capture, oldest first: each cycle ends with
/// `sc_agent_build_info`, the last family the agent writes.
pub fn expositions(stdout: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    for (at, _) in stdout.match_indices("\nsc_agent_build_info{") {
        let Some(end) = stdout[at + 1..].find('\n') else {
            break;
        };
        let end = at + 1 + end + 1;
        out.push(&stdout[start..end]);
        start = end;
    }
    out
}

/// A `kB` field of `/proc/<pid>/status` (`VmRSS`, `VmHWM`, ...), in KiB.
pub fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status
        .lines()
        .find(|l| l.starts_with(&format!("{field}:")))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// How many threads and open descriptors the process has.
pub fn threads_and_fds(pid: u32) -> (usize, usize) {
    let count = |dir: String| std::fs::read_dir(dir).map_or(0, |d| d.count());
    (
        count(format!("/proc/{pid}/task")),
        count(format!("/proc/{pid}/fd")),
    )
}

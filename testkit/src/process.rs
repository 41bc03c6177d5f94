//! The real binary in a test: finding it, running it with captured output, the
//! peers it talks to, and what its output and /proc say about it.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The sc-agent binary cargo built for the tests that run: `target/<profile>/sc-agent`
/// next to the `deps/` directory of the running test executable (cargo builds the
/// package's binary before its integration tests), or `SC_AGENT_BIN` when set.
pub fn bin() -> PathBuf {
    if let Some(path) = std::env::var_os("SC_AGENT_BIN") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("the test executable's path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("the test executable lives in target/<profile>/deps");
    let agent = profile_dir.join("sc-agent");
    assert!(
        agent.is_file(),
        "{} is not built (run the tests with cargo test, which builds it)",
        agent.display()
    );
    agent
}

/// The directory of the fixture trees.
pub fn fixtures() -> PathBuf {
    crate::project_root().join("tests/fixtures")
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
    /// The agent's spool directory unless the test names one: each agent its own,
    /// never the machine's /var/lib/sc-agent/spool.
    _spool: crate::TempDir,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    /// The threads copying stdout and stderr; they end at the pipes' end of file.
    readers: [std::thread::JoinHandle<()>; 2],
}

fn capture(
    mut stream: impl Read + Send + 'static,
) -> (Arc<Mutex<String>>, std::thread::JoinHandle<()>) {
    let text = Arc::new(Mutex::new(String::new()));
    let sink = Arc::clone(&text);
    let reader = std::thread::spawn(move || {
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
    (text, reader)
}

impl Agent {
    pub fn spawn(args: &[&str], env: &[(&str, &str)]) -> Self {
        Agent::spawn_with(Command::new(bin()).args(args), env)
    }

    /// Spawns a prepared command (for a custom PATH, working directory, ...).
    /// `env` is applied last: `SC_SPOOL_DIRECTORY` there wins over the private spool
    /// directory every agent gets (and `""` turns the spool off).
    pub fn spawn_with(command: &mut Command, env: &[(&str, &str)]) -> Self {
        for (name, _) in std::env::vars().filter(|(n, _)| n.starts_with("SC_")) {
            command.env_remove(name);
        }
        let spool = crate::TempDir::new();
        let mut child = command
            .env("SC_SPOOL_DIRECTORY", spool.path().join("spool"))
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn sc-agent");
        let (stdout, out_reader) = capture(child.stdout.take().unwrap());
        let (stderr, err_reader) = capture(child.stderr.take().unwrap());
        Agent {
            child,
            _spool: spool,
            stdout,
            stderr,
            readers: [out_reader, err_reader],
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
                // Let the capture threads read what is left in the pipes, up to their
                // end of file (a fixed pause loses output on a loaded machine); a
                // grandchild keeping a pipe open would hold it, hence the bound.
                let drained = Instant::now();
                while !self.readers.iter().all(|r| r.is_finished())
                    && drained.elapsed() < Duration::from_secs(10)
                {
                    std::thread::sleep(Duration::from_millis(5));
                }
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

/// A child process killed on drop (test peers such as node_exporter or prometheus).
pub struct Peer(pub Child);

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

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

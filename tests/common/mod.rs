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

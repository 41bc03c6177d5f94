//! SIGTERM, SIGINT and SIGHUP as flags plus a self-pipe the run loop can `poll`.
//!
//! For each signal, signal-hook first sets its flag, then writes a byte to the pipe;
//! the loop drains the pipe first and reads the flags after, so no signal is lost.

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// What arrived since the last [`Signals::take`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pending {
    /// SIGTERM or SIGINT: stop after the current cycle.
    pub terminate: bool,
    /// SIGHUP: reload the config.
    pub reload: bool,
}

pub struct Signals {
    wake: UnixStream,
    terminate: Arc<AtomicBool>,
    reload: Arc<AtomicBool>,
}

impl Signals {
    pub fn install() -> io::Result<Self> {
        let (wake, writer) = UnixStream::pair()?;
        wake.set_nonblocking(true)?;
        writer.set_nonblocking(true)?;
        let terminate = Arc::new(AtomicBool::new(false));
        let reload = Arc::new(AtomicBool::new(false));
        for (signal, flag) in [
            (SIGTERM, &terminate),
            (SIGINT, &terminate),
            (SIGHUP, &reload),
        ] {
            signal_hook::flag::register(signal, Arc::clone(flag))?;
            signal_hook::low_level::pipe::register(signal, writer.try_clone()?)?;
        }
        Ok(Signals {
            wake,
            terminate,
            reload,
        })
    }

    /// The descriptor that becomes readable when a signal arrives.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.wake.as_fd()
    }

    /// Drains the pipe, then reports (and clears) the signals that arrived.
    pub fn take(&self) -> Pending {
        let mut scratch = [0u8; 64];
        while matches!((&self.wake).read(&mut scratch), Ok(n) if n > 0) {}
        Pending {
            terminate: self.terminate.swap(false, Ordering::SeqCst),
            reload: self.reload.swap(false, Ordering::SeqCst),
        }
    }
}

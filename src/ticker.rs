//! The cycle clock: a timerfd on CLOCK_MONOTONIC armed on absolute deadlines.
//!
//! The kernel computes each deadline from the first one, so cycles do not drift
//! however long a cycle takes. When cycles fall behind, one read reports how many
//! deadlines passed; the extra ones are counted as missed, never replayed.

use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::time::Duration;

pub struct Ticker {
    timer: TimerFd,
}

impl Ticker {
    /// A ticker whose first tick is due now, then every `interval`.
    pub fn start(interval: Duration) -> io::Result<Self> {
        let timer = TimerFd::new(
            ClockId::CLOCK_MONOTONIC,
            TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
        )?;
        let ticker = Ticker { timer };
        ticker.arm(interval)?;
        Ok(ticker)
    }

    /// Restarts the schedule: a tick now, then every `interval`.
    pub fn arm(&self, interval: Duration) -> io::Result<()> {
        let now = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)?;
        self.timer.set(
            Expiration::IntervalDelayed(now, TimeSpec::from_duration(interval)),
            TimerSetTimeFlags::TFD_TIMER_ABSTIME,
        )?;
        Ok(())
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.timer.as_fd()
    }

    /// The number of deadlines passed since the last read; 0 if none (spurious wake-up).
    pub fn expirations(&self) -> io::Result<u64> {
        let mut count = [0u8; 8];
        match nix::unistd::read(self.timer.as_fd(), &mut count) {
            Ok(8) => Ok(u64::from_ne_bytes(count)),
            Ok(_) | Err(nix::errno::Errno::EAGAIN) => Ok(0),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_missed_deadlines() {
        let ticker = Ticker::start(Duration::from_millis(20)).unwrap();
        std::thread::sleep(Duration::from_millis(75));
        let count = ticker.expirations().unwrap();
        // Due at 0, 20, 40 and 60 ms: four deadlines, of which three were missed.
        assert!((3..=5).contains(&count), "{count}");
        assert_eq!(ticker.expirations().unwrap(), 0);
    }
}

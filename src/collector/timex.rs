//! `node_timex_*`: the kernel's clock discipline (NTP) state from `adjtimex(2)`, read
//! only (`modes = 0`), as node_exporter 1.12 reports it.
//!
//! Units as node_exporter converts them: `offset` and the PPS `jitter` are in
//! nanoseconds when the status has `STA_NANO`, microseconds otherwise; `maxerror`,
//! `esterror` and `tick` are always microseconds; `freq`, `ppsfreq` and `stabil` are
//! scaled ppm (ppm × 2^16), so the frequency ratio is `1 + freq / (1e6 × 65536)`.
//! `node_timex_sync_status` is 0 when the call returns `TIME_ERROR` (the clock is not
//! synchronised), 1 otherwise. `node_timex_pps_shift_seconds` is the kernel's
//! `shift` as it is (a log2 of seconds, named so by node_exporter), and
//! `node_timex_offset_overflow_total` counts the cycles whose offset was beyond ±4 s,
//! which 1.12 reads as the kernel's 32-bit overflow on KVM's pvclock.
//!
//! The call is [`Resources::timex`](super::Resources): the real one in the agent, a
//! stand-in in tests. When it fails with EPERM (systemd's `ProtectClock=`, or a
//! seccomp filter answering EPERM) the collector reports
//! [`CollectError::no_data`], as node_exporter does; any other error fails it.
//!
//! Differences from node_exporter 1.5: 1.5 has no `node_timex_offset_overflow_total`.

use super::{Build, CollectError, Collector, Context};
use crate::batch::{Batch, Kind};
use crate::config::collectors::NoOptions;
use std::io;
use std::sync::Arc;

/// What one `adjtimex(2)` call reports, as plain numbers.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Reading {
    /// The call's return value, the clock state (`TIME_OK` ... `TIME_ERROR`).
    pub state: i32,
    pub offset: i64,
    pub freq: i64,
    pub maxerror: i64,
    pub esterror: i64,
    pub status: i32,
    pub constant: i64,
    pub tick: i64,
    pub ppsfreq: i64,
    pub jitter: i64,
    pub shift: i32,
    pub stabil: i64,
    pub jitcnt: i64,
    pub calcnt: i64,
    pub errcnt: i64,
    pub stbcnt: i64,
    pub tai: i32,
}

/// `adjtimex(2)`, or a stand-in.
pub type TimexFn = Arc<dyn Fn() -> io::Result<Reading> + Send + Sync>;

/// The real call, with `modes = 0`: it reads and never sets the clock, so it needs
/// no capability (musl and glibc make it `clock_adjtime(CLOCK_REALTIME)`).
pub fn adjtimex() -> io::Result<Reading> {
    use nix::libc;
    // SAFETY: an all-zero `timex` is a valid value of this plain C struct; zero
    // `modes` asks for no change.
    let mut tx: libc::timex = unsafe { std::mem::zeroed() };
    // SAFETY: the pointer is valid for the call, which writes only `tx`.
    let state = unsafe { libc::adjtimex(&mut tx) };
    if state < 0 {
        return Err(io::Error::last_os_error());
    }
    #[allow(clippy::useless_conversion)] // c_long is i64 here, i32 on 32-bit targets
    Ok(Reading {
        state,
        offset: tx.offset.into(),
        freq: tx.freq.into(),
        maxerror: tx.maxerror.into(),
        esterror: tx.esterror.into(),
        status: tx.status,
        constant: tx.constant.into(),
        tick: tx.tick.into(),
        ppsfreq: tx.ppsfreq.into(),
        jitter: tx.jitter.into(),
        shift: tx.shift,
        stabil: tx.stabil.into(),
        jitcnt: tx.jitcnt.into(),
        calcnt: tx.calcnt.into(),
        errcnt: tx.errcnt.into(),
        stbcnt: tx.stbcnt.into(),
        tai: tx.tai,
    })
}

/// The clock is not synchronised.
const TIME_ERROR: i32 = 5;
/// The status bit saying `offset` and `jitter` are nanoseconds.
const STA_NANO: i32 = 0x2000;
/// Scaled ppm per unit of frequency ratio (see NOTES in adjtimex(2)).
const PPM16FRAC: f64 = 1_000_000.0 * 65536.0;
const NANOSECONDS: f64 = 1e9;
const MICROSECONDS: f64 = 1e6;
/// An offset beyond this, in seconds, is counted as an overflow.
const OFFSET_OVERFLOW_SECONDS: f64 = 4.0;

pub struct Timex {
    call: TimexFn,
    /// Cycles whose offset was beyond [`OFFSET_OVERFLOW_SECONDS`].
    overflows: u64,
}

impl Build for Timex {
    type Options = NoOptions;

    /// adjtimex(2) only.
    const SOURCES: &'static [&'static str] = &[];

    fn build(context: &Context<'_>, _options: &NoOptions) -> Self {
        Timex {
            call: context.resources.timex.clone(),
            overflows: 0,
        }
    }
}

impl Collector for Timex {
    fn collect(&mut self, out: &mut Batch) -> Result<(), CollectError> {
        let tx = match (self.call)() {
            Ok(tx) => tx,
            Err(e) if e.raw_os_error() == Some(nix::libc::EPERM) => {
                return Err(CollectError::no_data(format!(
                    "adjtimex: {e} (systemd's ProtectClock= or a seccomp filter denies it)"
                )))
            }
            Err(e) => return Err(CollectError::new(format!("adjtimex: {e}"))),
        };
        let divisor = if tx.status & STA_NANO != 0 { NANOSECONDS } else { MICROSECONDS };
        let offset = tx.offset as f64 / divisor;
        if offset.abs() > OFFSET_OVERFLOW_SECONDS {
            self.overflows += 1;
        }
        let sync = if tx.state == TIME_ERROR { 0.0 } else { 1.0 };
        let families: [(&str, &str, Kind, f64); 18] = [
            ("sync_status", "Is clock synchronized to a reliable server (1 = yes, 0 = no).", Kind::Gauge, sync),
            ("offset_seconds", "Time offset in between local system and reference clock.", Kind::Gauge, offset),
            (
                "offset_overflow_total",
                "Count of adjtimex() offset readings indicating kernel overflow (|offset| > 4s). See https://github.com/prometheus/node_exporter/issues/3764",
                Kind::Counter,
                self.overflows as f64,
            ),
            ("frequency_adjustment_ratio", "Local clock frequency adjustment.", Kind::Gauge, 1.0 + tx.freq as f64 / PPM16FRAC),
            ("maxerror_seconds", "Maximum error in seconds.", Kind::Gauge, tx.maxerror as f64 / MICROSECONDS),
            ("estimated_error_seconds", "Estimated error in seconds.", Kind::Gauge, tx.esterror as f64 / MICROSECONDS),
            ("status", "Value of the status array bits.", Kind::Gauge, f64::from(tx.status)),
            ("loop_time_constant", "Phase-locked loop time constant.", Kind::Gauge, tx.constant as f64),
            ("tick_seconds", "Seconds between clock ticks.", Kind::Gauge, tx.tick as f64 / MICROSECONDS),
            ("pps_frequency_hertz", "Pulse per second frequency.", Kind::Gauge, tx.ppsfreq as f64 / PPM16FRAC),
            ("pps_jitter_seconds", "Pulse per second jitter.", Kind::Gauge, tx.jitter as f64 / divisor),
            ("pps_shift_seconds", "Pulse per second interval duration.", Kind::Gauge, f64::from(tx.shift)),
            (
                "pps_stability_hertz",
                "Pulse per second stability, average of recent frequency changes.",
                Kind::Gauge,
                tx.stabil as f64 / PPM16FRAC,
            ),
            ("pps_jitter_total", "Pulse per second count of jitter limit exceeded events.", Kind::Counter, tx.jitcnt as f64),
            ("pps_calibration_total", "Pulse per second count of calibration intervals.", Kind::Counter, tx.calcnt as f64),
            ("pps_error_total", "Pulse per second count of calibration errors.", Kind::Counter, tx.errcnt as f64),
            (
                "pps_stability_exceeded_total",
                "Pulse per second count of stability limit exceeded events.",
                Kind::Counter,
                tx.stbcnt as f64,
            ),
            ("tai_offset_seconds", "International Atomic Time (TAI) offset.", Kind::Gauge, f64::from(tx.tai)),
        ];
        for (name, help, kind, value) in families {
            out.family(format_args!("node_timex_{name}"), help, kind).sample(&[], value);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::render;

    /// A collector whose call always gives `result` (an errno for an error).
    fn collector(result: Result<Reading, i32>) -> Timex {
        let call: TimexFn = Arc::new(move || result.map_err(io::Error::from_raw_os_error));
        Timex { call, overflows: 0 }
    }

    fn samples(text: &str) -> Vec<&str> {
        text.lines().filter(|l| !l.starts_with('#')).collect()
    }

    const CHRONY: Reading = Reading {
        state: 0,
        offset: -1_234_567,
        freq: -1_638_400,
        maxerror: 16_000,
        esterror: 1_250,
        status: 0x2001,
        constant: 7,
        tick: 10_000,
        ppsfreq: 65_536,
        jitter: 2_000,
        shift: 2,
        stabil: 131_072,
        jitcnt: 1,
        calcnt: 2,
        errcnt: 3,
        stbcnt: 4,
        tai: 37,
    };

    #[test]
    fn converts_as_node_exporter_in_nanosecond_mode() {
        let text = render(&mut collector(Ok(CHRONY))).unwrap();
        assert!(text.starts_with(
            "# HELP node_timex_sync_status Is clock synchronized to a reliable server (1 = yes, 0 = no).\n\
             # TYPE node_timex_sync_status gauge\nnode_timex_sync_status 1\n"
        ));
        assert!(text.contains("# TYPE node_timex_pps_jitter_total counter\n"));
        assert_eq!(
            samples(&text),
            [
                "node_timex_sync_status 1",
                "node_timex_offset_seconds -0.001234567",
                "node_timex_offset_overflow_total 0",
                "node_timex_frequency_adjustment_ratio 0.999975",
                "node_timex_maxerror_seconds 0.016",
                "node_timex_estimated_error_seconds 0.00125",
                "node_timex_status 8193",
                "node_timex_loop_time_constant 7",
                "node_timex_tick_seconds 0.01",
                "node_timex_pps_frequency_hertz 0.000001",
                "node_timex_pps_jitter_seconds 0.000002",
                "node_timex_pps_shift_seconds 2",
                "node_timex_pps_stability_hertz 0.000002",
                "node_timex_pps_jitter_total 1",
                "node_timex_pps_calibration_total 2",
                "node_timex_pps_error_total 3",
                "node_timex_pps_stability_exceeded_total 4",
                "node_timex_tai_offset_seconds 37",
            ]
        );
    }

    #[test]
    fn microsecond_mode_time_error_and_overflows() {
        let tx = Reading {
            state: TIME_ERROR,
            status: 0x0040,
            offset: -4_500_000,
            jitter: 3,
            ..CHRONY
        };
        let mut timex = collector(Ok(tx));
        for cycle in 1..=2 {
            let text = render(&mut timex).unwrap();
            assert!(text.contains("node_timex_sync_status 0\n"), "{text}");
            assert!(text.contains("node_timex_offset_seconds -4.5\n"), "{text}");
            assert!(text.contains("node_timex_pps_jitter_seconds 0.000003\n"), "{text}");
            assert!(text.contains(&format!("node_timex_offset_overflow_total {cycle}\n")), "{text}");
        }
    }

    #[test]
    fn eperm_is_no_data_other_errors_fail() {
        let err = render(&mut collector(Err(nix::libc::EPERM))).unwrap_err();
        assert!(err.is_no_data(), "{err}");
        assert!(err.to_string().contains("ProtectClock"), "{err}");
        let err = render(&mut collector(Err(nix::libc::EINVAL))).unwrap_err();
        assert!(!err.is_no_data(), "{err}");
        assert!(err.to_string().starts_with("adjtimex: "), "{err}");
    }

    #[test]
    fn the_real_call_reads_the_kernels_clock() {
        let first = adjtimex().expect("adjtimex(2) with modes 0 needs no privilege");
        let second = adjtimex().unwrap();
        // The tick and TAI offset do not move between two calls; the state is one
        // of the kernel's TIME_OK (0) ... TIME_ERROR (5).
        assert_eq!((first.tick, first.tai), (second.tick, second.tai));
        assert!(first.tick > 0, "{first:?}");
        assert!((0..=TIME_ERROR).contains(&first.state), "{first:?}");
        let mut timex = Timex { call: Arc::new(adjtimex), overflows: 0 };
        let text = render(&mut timex).unwrap();
        assert_eq!(samples(&text).len(), 18, "{text}");
        assert!(
            text.contains(&format!("node_timex_tick_seconds {}\n", first.tick as f64 / 1e6)),
            "{text}"
        );
    }
}

//! How long to wait before retrying: exponential backoff with full jitter, and the
//! endpoint's `Retry-After`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The longest `Retry-After` honoured: an endpoint asking for more (or a broken one
/// sending a date years ahead) would otherwise stop delivery for as long.
pub const RETRY_AFTER_CAP: Duration = Duration::from_secs(300);

/// Consecutive failures double the ceiling of the wait, from `min` up to `max`; each
/// wait is drawn uniformly between `min` and that ceiling ("full jitter"), so that
/// many agents that lost the same endpoint do not come back in lockstep.
#[derive(Debug)]
pub struct Backoff {
    failures: u32,
    rng: SplitMix64,
}

impl Backoff {
    pub fn new(seed: u64) -> Self {
        Backoff {
            failures: 0,
            rng: SplitMix64(seed),
        }
    }

    /// A seed that differs from process to process and from run to run.
    pub fn seed() -> u64 {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos() as u64;
        nanos ^ u64::from(std::process::id()).rotate_left(32)
    }

    /// The wait after one more failure.
    pub fn next(&mut self, min: Duration, max: Duration) -> Duration {
        let max = max.max(min);
        // 2^failures, saturating long before it matters: max is reached in ~20 steps.
        let factor = 1u32 << self.failures.min(30);
        let ceiling = min.saturating_mul(factor).min(max);
        self.failures = self.failures.saturating_add(1);
        let span = (ceiling - min).as_nanos() as u64;
        let jitter = if span == 0 {
            0
        } else {
            self.rng.next() % (span + 1)
        };
        min + Duration::from_nanos(jitter)
    }

    /// After a success the next failure starts again from `min`.
    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

/// A small, good-enough generator for jitter (Steele, Lea and Flood's SplitMix64).
#[derive(Debug)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// Reads a `Retry-After` value: delay-seconds (`120`) or an HTTP-date
/// (`Wed, 21 Oct 2015 07:28:00 GMT`, relative to `now`). Anything else, including the
/// obsolete date formats, is `None`. The result is capped at [`RETRY_AFTER_CAP`].
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Too many digits to parse is certainly more than the cap.
        let secs = value.parse::<u64>().unwrap_or(u64::MAX);
        return Some(Duration::from_secs(secs).min(RETRY_AFTER_CAP));
    }
    let at = parse_http_date(value)?;
    let now = now.duration_since(UNIX_EPOCH).ok()?.as_secs();
    Some(Duration::from_secs(at.saturating_sub(now)).min(RETRY_AFTER_CAP))
}

/// Parses the IMF-fixdate form of RFC 9110 into seconds since the epoch.
fn parse_http_date(text: &str) -> Option<u64> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let mut parts = text.split_ascii_whitespace();
    let weekday = parts.next()?;
    if weekday.len() != 4 || !weekday.ends_with(',') {
        return None;
    }
    let day: u32 = number(parts.next()?, 2)?;
    let month_name = parts.next()?;
    let month = MONTHS.iter().position(|m| *m == month_name)? as u32 + 1;
    let year: u32 = number(parts.next()?, 4)?;
    let mut clock = parts.next()?.split(':');
    let hour: u32 = number(clock.next()?, 2)?;
    let minute: u32 = number(clock.next()?, 2)?;
    let second: u32 = number(clock.next()?, 2)?;
    if parts.next()? != "GMT" || parts.next().is_some() || clock.next().is_some() {
        return None;
    }
    if !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 || year < 1970 {
        return None;
    }
    let days = days_from_civil(i64::from(year), month, day);
    let secs = days * 86_400 + i64::from(hour * 3600 + minute * 60 + second);
    u64::try_from(secs).ok()
}

fn number(text: &str, digits: usize) -> Option<u32> {
    if text.len() != digits || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let month = i64::from(month);
    let doy = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn waits_stay_between_min_and_the_doubling_ceiling() {
        let (min, max) = (MS(30), MS(5_000));
        let mut backoff = Backoff::new(42);
        for failure in 0..40u32 {
            let ceiling = min.saturating_mul(1 << failure.min(30)).min(max);
            for _ in 0..20 {
                let mut probe = Backoff::new(u64::from(failure) * 1000 + 7);
                probe.failures = failure;
                let wait = probe.next(min, max);
                assert!(wait >= min && wait <= ceiling, "{failure}: {wait:?}");
            }
            let wait = backoff.next(min, max);
            assert!(wait >= min && wait <= ceiling, "{failure}: {wait:?}");
        }
        // Long after the ceiling reached max, waits spread over [min, max].
        let waits: Vec<_> = (0..200).map(|_| backoff.next(min, max)).collect();
        assert!(waits.iter().any(|w| *w > MS(2_500)));
        assert!(waits.iter().any(|w| *w < MS(2_500)));
        backoff.reset();
        assert!(
            backoff.next(min, max) == min,
            "the first wait after a reset is min"
        );
    }

    #[test]
    fn equal_bounds_give_a_fixed_wait() {
        let mut backoff = Backoff::new(1);
        for _ in 0..50 {
            assert_eq!(backoff.next(MS(100), MS(100)), MS(100));
        }
        // max below min is treated as min.
        assert_eq!(Backoff::new(1).next(MS(100), MS(10)), MS(100));
    }

    #[test]
    fn retry_after_seconds() {
        let now = SystemTime::now();
        assert_eq!(parse_retry_after("2", now), Some(Duration::from_secs(2)));
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("86400", now), Some(RETRY_AFTER_CAP));
        assert_eq!(
            parse_retry_after("99999999999999999999999", now),
            Some(RETRY_AFTER_CAP)
        );
        for bad in ["", "-1", "1.5", "soon", "2 s", "\u{0}"] {
            assert_eq!(parse_retry_after(bad, now), None, "{bad:?}");
        }
    }

    #[test]
    fn retry_after_http_date() {
        // Wed, 21 Oct 2015 07:28:00 GMT is 1445412480.
        let at = UNIX_EPOCH + Duration::from_secs(1_445_412_480);
        let date = "Wed, 21 Oct 2015 07:28:00 GMT";
        assert_eq!(parse_http_date(date), Some(1_445_412_480));
        assert_eq!(
            parse_retry_after(date, at - Duration::from_secs(30)),
            Some(Duration::from_secs(30))
        );
        // A date in the past means now.
        assert_eq!(
            parse_retry_after(date, at + Duration::from_secs(30)),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(
            parse_http_date("Tue, 29 Feb 2000 12:00:00 GMT"),
            Some(951_825_600)
        );
        for bad in [
            "Wed, 21 Oct 2015 07:28:00 UTC",
            "Wednesday, 21-Oct-15 07:28:00 GMT",
            "Wed Oct 21 07:28:00 2015",
            "Wed, 21 Foo 2015 07:28:00 GMT",
            "Wed, 32 Oct 2015 07:28:00 GMT",
            "Wed, 21 Oct 2015 7:28:00 GMT",
            "Wed, 21 Oct 2015 07:28:00 GMT extra",
            "Wed, 21 Oct 2015 07:28 GMT",
        ] {
            assert_eq!(parse_http_date(bad), None, "{bad:?}");
        }
    }
}

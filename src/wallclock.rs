//! The wall clock, in milliseconds since the epoch: what stamps a cycle's batch, and
//! what its age is measured against (the spool's oldest record, `max_sample_age`).

use std::time::{SystemTime, UNIX_EPOCH};

/// Now, in milliseconds since the epoch (0 before it, `i64::MAX` after year 292
/// million).
pub fn now_ms() -> i64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(now.as_millis()).unwrap_or(i64::MAX)
}

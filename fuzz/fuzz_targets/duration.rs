#![no_main]
//! See tests/fuzz_harness/duration.rs: the harness is shared with tests/fuzz_regressions.rs,
//! which replays the seeds and every crash input found.

#[path = "../../tests/fuzz_harness/duration.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::run(data));

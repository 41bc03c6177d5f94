#![no_main]
//! See sc_agent_testkit::fuzz::relabel: the harness is shared with tests/fuzz_regressions.rs,
//! which replays the seeds and every crash input found.

libfuzzer_sys::fuzz_target!(|data: &[u8]| sc_agent_testkit::fuzz::relabel::run(data));

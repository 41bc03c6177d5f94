//! The fuzz harnesses: each takes the fuzzer's bytes and must never panic. The
//! cargo-fuzz targets in `fuzz/` call them; `tests/fuzz_regressions.rs` replays the
//! seeds and every crash input ever found through the same functions.

pub mod collectors;
pub mod config;
pub mod dbus;
pub mod duration;
pub mod encode;
pub mod exposition;
pub mod netlink;
pub mod relabel;

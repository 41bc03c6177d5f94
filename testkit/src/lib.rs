//! Test support for sc-agent, in one place: what the integration tests (`tests/`),
//! the agent's own unit tests, the fuzz targets (`fuzz/`) and the long soak share.
//!
//! - [`proto`]: the remote write messages decoded with prost, a reading of the wire
//!   format independent of the agent's hand-written encoder;
//! - [`fuzz`]: the fuzz harnesses, run by cargo-fuzz and replayed by
//!   `tests/fuzz_regressions.rs`;
//! - [`procfs`]: synthetic process tables of any size, with what they hold;
//! - with the `peers` feature (the default): the real binary and its peers:
//!   [`bin`] and [`Agent`] (a running agent with captured output), [`TempDir`],
//!   loopback helpers, network namespaces ([`netns`]), an [`Exposition`] reader, a
//!   real [`Prometheus`] with its remote write receiver, the fault-injecting remote
//!   write [`receiver`] (optionally TLS), and the [`soak`] run (also the `soak`
//!   binary, `scripts/soak.sh`).
//!
//! Nothing here ships: it is a dev-dependency of the agent only.

pub mod fuzz;
pub mod procfs;
pub mod proto;

#[cfg(feature = "peers")]
mod config;
#[cfg(feature = "peers")]
mod exposition;
#[cfg(feature = "peers")]
mod net;
#[cfg(feature = "peers")]
pub mod netns;
#[cfg(feature = "peers")]
mod process;
#[cfg(feature = "peers")]
mod prometheus;
#[cfg(feature = "peers")]
pub mod receiver;
#[cfg(feature = "peers")]
pub mod soak;
mod tempdir;
#[cfg(feature = "peers")]
pub mod victoria;

#[cfg(feature = "peers")]
pub use config::{base_config, collectors_only, indent};
#[cfg(feature = "peers")]
pub use exposition::{Exposition, Sample};
#[cfg(feature = "peers")]
pub use net::{free_port, http_get, https_get, wait_for_port};
#[cfg(feature = "peers")]
pub use process::*;
#[cfg(feature = "peers")]
pub use prometheus::{percent_encode, Prometheus, PROMETHEUS_WAIT};
pub use tempdir::TempDir;
#[cfg(feature = "peers")]
pub use victoria::VictoriaMetrics;

/// The project's root directory (the agent's Cargo.toml).
pub fn project_root() -> &'static std::path::Path {
    std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

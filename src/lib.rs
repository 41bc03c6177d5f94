//! sc-agent: node_exporter-compatible metrics from /proc and /sys, pushed with
//! Prometheus remote write. The binary is `src/main.rs`; this library holds the
//! pieces so that tests and fuzz targets can reach them.
//!
//! Data flows one way: [`ticker`] → [`collector`] → [`batch`] (decorated with
//! [`identity`]) → [`output`]: text on stdout, or [`remote_write`]. [`netlink`] is
//! how some collectors ask the kernel instead of reading files.

pub mod agent;
pub mod batch;
pub mod cli;
pub mod collector;
pub mod config;
pub mod dbus;
pub mod exposition;
pub mod identity;
pub mod labels;
pub mod logging;
pub mod netlink;
pub mod output;
pub mod relabel;
pub mod remote_write;
pub mod signals;
pub mod ticker;
pub mod wallclock;

#[cfg(test)]
pub(crate) mod testing;

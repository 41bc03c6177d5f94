//! The options of the collectors that report network devices and can read them over
//! netlink or from files (netdev, netclass, arp): one type, as their three
//! node_exporter flag sets (`--collector.<name>.device-include`, `-exclude`,
//! `.netlink`) mean the same thing. Each collector's module doc says what netlink
//! replaces for it.

use crate::config::collectors;
use crate::config::{Filter, Pattern};
use serde::{Deserialize, Serialize};

/// `collectors.<netdev|netclass|arp>`: which devices to report, and from where.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Options {
    /// Only devices whose name matches (anywhere, unless anchored).
    pub device_include: Option<Pattern>,
    /// Devices whose name matches are left out.
    pub device_exclude: Option<Pattern>,
    /// Ask the kernel over netlink (default true) rather than read the files under
    /// `paths`; the series are the same.
    pub netlink: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            device_include: None,
            device_exclude: None,
            netlink: true,
        }
    }
}

impl Options {
    pub fn filter(&self) -> Filter {
        Filter {
            include: self.device_include.clone(),
            exclude: self.device_exclude.clone(),
        }
    }
}

impl collectors::Options for Options {}

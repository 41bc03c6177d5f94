//! Names already written this cycle.
//!
//! The kernel never lists a device, CPU or field twice in one file, but a corrupt or
//! hostile file can, and the same series twice in one batch makes Prometheus reject
//! the whole remote-write request: one bad line would cost every metric of the cycle.
//! Collectors that take names from file contents keep the first and skip repeats.

use std::collections::hash_map::RandomState;
use std::collections::HashSet;
use std::hash::BuildHasher;

/// A set of names kept as 64-bit hashes under a per-process random key, so that
/// clearing it between cycles keeps its capacity and allocates nothing. A collision
/// (one in 2^64 per pair, and not craftable without the key) would skip one name.
#[derive(Default)]
pub struct Seen {
    key: RandomState,
    hashes: HashSet<u64>,
}

impl Seen {
    pub fn clear(&mut self) {
        self.hashes.clear();
    }

    /// True the first time `name` is offered since the last [`Seen::clear`].
    pub fn first(&mut self, name: &str) -> bool {
        self.hashes.insert(self.key.hash_one(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_repeats_until_cleared() {
        let mut seen = Seen::default();
        assert!(seen.first("eth0"));
        assert!(seen.first("eth1"));
        assert!(!seen.first("eth0"));
        seen.clear();
        assert!(seen.first("eth0"));
    }
}

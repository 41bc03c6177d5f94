//! The cardinality guard (`remote_write.max_series`): the series known, by the
//! fingerprint of the labels sent, at most `max_series` of them.
//!
//! A known series is always let through. A series never seen before takes a free
//! place, or is refused when there is none. A series not seen for
//! [`FORGET_AFTER_CYCLES`] cycles in a row frees its place, so that series that come
//! and go (a container's interfaces, a textfile's labels) do not fill the set for
//! good, while a collector failing for a cycle or two does not cost its series
//! their places. Memory is one map entry per known series, never more than
//! `max_series`.
//!
//! Fingerprints are 64-bit SipHash values under a per-process random key; two
//! series with one fingerprint (one pair in 2^64, not craftable without the key)
//! would share a place, which lets one more series through, never fewer.

use super::cache::HashedMap;

/// A known series not seen for this many cycles in a row frees its place.
pub const FORGET_AFTER_CYCLES: u32 = 10;

/// The series known to the guard.
#[derive(Debug)]
pub struct SeriesLimit {
    max: usize,
    /// Fingerprint → the cycle it was last seen.
    known: HashedMap<u32>,
    cycle: u32,
}

impl SeriesLimit {
    pub fn new(max: usize) -> Self {
        SeriesLimit {
            max,
            known: HashedMap::default(),
            cycle: 0,
        }
    }

    pub fn max(&self) -> usize {
        self.max
    }

    /// A new limit; below the series known already, they are all forgotten and the
    /// first `max` of the next cycle take the places.
    pub fn set_max(&mut self, max: usize) {
        self.max = max;
        if self.known.len() > max {
            self.known.clear();
        }
    }

    /// How many series are known.
    pub fn len(&self) -> usize {
        self.known.len()
    }

    pub fn is_empty(&self) -> bool {
        self.known.is_empty()
    }

    /// Whether the series with `fingerprint` may be sent: known, or new with a place
    /// free (it is then known).
    pub fn admit(&mut self, fingerprint: u64) -> bool {
        if let Some(seen) = self.known.get_mut(&fingerprint) {
            *seen = self.cycle;
            return true;
        }
        if self.known.len() < self.max {
            self.known.insert(fingerprint, self.cycle);
            return true;
        }
        false
    }

    /// Ends a cycle: series now missing for [`FORGET_AFTER_CYCLES`] cycles free
    /// their places.
    pub fn end_cycle(&mut self) {
        self.cycle = self.cycle.wrapping_add(1);
        let cycle = self.cycle;
        self.known
            .retain(|_, seen| cycle.wrapping_sub(*seen) <= FORGET_AFTER_CYCLES);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_series_flow_new_ones_wait_for_a_place() {
        let mut limit = SeriesLimit::new(2);
        assert!(limit.admit(1) && limit.admit(2));
        assert!(!limit.admit(3), "full");
        assert!(limit.admit(1) && limit.admit(2), "known ones keep flowing");
        assert_eq!(limit.len(), 2);
        limit.end_cycle();
        assert!(limit.admit(2) && !limit.admit(3));
    }

    #[test]
    fn a_series_missing_long_enough_frees_its_place() {
        let mut limit = SeriesLimit::new(2);
        assert!(limit.admit(1) && limit.admit(2));
        limit.end_cycle();
        for _ in 0..FORGET_AFTER_CYCLES - 1 {
            // 2 is missing; 1 keeps coming.
            assert!(limit.admit(1));
            limit.end_cycle();
            assert_eq!(limit.len(), 2);
            assert!(!limit.admit(3));
        }
        assert!(limit.admit(1));
        limit.end_cycle();
        assert_eq!(limit.len(), 1, "2 missed {FORGET_AFTER_CYCLES} cycles");
        assert!(limit.admit(3));
        assert!(!limit.admit(2), "2 is new again, and there is no place");
    }

    #[test]
    fn a_lower_limit_never_leaves_more_known_than_it() {
        let mut limit = SeriesLimit::new(3);
        for f in 1..=3 {
            assert!(limit.admit(f));
        }
        limit.set_max(5);
        assert_eq!(limit.len(), 3);
        limit.set_max(2);
        assert!(limit.is_empty());
        assert!(limit.admit(3) && limit.admit(1) && !limit.admit(2));
        assert_eq!((limit.len(), limit.max()), (2, 2));
    }
}

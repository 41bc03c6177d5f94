//! Stale markers: the remote write 1.0 spec says a sender MUST send one when a series
//! will no longer be appended to, as Prometheus does when a scrape loses a series.
//!
//! The encoder tells [`LastSeries`] the encoded labels of every series it writes
//! (the bytes of its `Label` messages, which identify it exactly). At the end of a
//! request, each series of the previous request that this one lacks (an interface,
//! mount, disk or textfile series gone) gets one sample: Prometheus' stale NaN, with
//! the new request's timestamp. On a clean stop every series of the last request
//! gets one, so dashboards stop showing a stopped host as current at once instead of
//! after Prometheus' five-minute lookback.
//!
//! Memory is the labels of two requests (the last one and the one being written),
//! kept in two arenas that are swapped and reused: bounded by the series count and
//! flat from cycle to cycle. A series is found by a 64-bit hash under a
//! per-process random key and then compared byte for byte, so a hash collision
//! costs a comparison, never a wrong marker.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::ops::Range;

/// Prometheus' stale marker, a NaN with this exact bit pattern
/// (`value.StaleNaN` in prometheus/model/value).
pub const STALE_NAN: u64 = 0x7ff0_0000_0000_0002;

/// The encoded labels of one request's series.
#[derive(Default)]
struct Set {
    bytes: Vec<u8>,
    spans: Vec<Range<u32>>,
    /// Label-bytes hash → index into `spans` of the first series with it; later
    /// ones with the same hash are found by scanning `collisions`.
    index: HashMap<u64, u32, BuildHasherDefault<Prehashed>>,
    collisions: Vec<(u64, u32)>,
}

impl Set {
    fn clear(&mut self) {
        self.bytes.clear();
        self.spans.clear();
        self.index.clear();
        self.collisions.clear();
    }

    fn labels(&self, index: u32) -> &[u8] {
        let span = &self.spans[index as usize];
        &self.bytes[span.start as usize..span.end as usize]
    }

    fn contains(&self, hash: u64, labels: &[u8]) -> bool {
        match self.index.get(&hash) {
            None => false,
            Some(&first) if self.labels(first) == labels => true,
            Some(_) => self
                .collisions
                .iter()
                .any(|&(h, i)| h == hash && self.labels(i) == labels),
        }
    }

    fn insert(&mut self, hash: u64, labels: &[u8]) {
        if self.contains(hash, labels) {
            return;
        }
        let start = self.bytes.len() as u32;
        self.bytes.extend_from_slice(labels);
        let index = self.spans.len() as u32;
        self.spans.push(start..self.bytes.len() as u32);
        match self.index.entry(hash) {
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(index);
            }
            std::collections::hash_map::Entry::Occupied(_) => self.collisions.push((hash, index)),
        }
    }
}

/// The series of the last request, and of the one being written.
pub struct LastSeries {
    key: RandomState,
    last: Set,
    current: Set,
    /// Hashes of `last`'s series in order, to walk them without rehashing.
    last_hashes: Vec<u64>,
    current_hashes: Vec<u64>,
}

impl Default for LastSeries {
    fn default() -> Self {
        LastSeries {
            key: RandomState::new(),
            last: Set::default(),
            current: Set::default(),
            last_hashes: Vec::new(),
            current_hashes: Vec::new(),
        }
    }
}

impl LastSeries {
    /// Notes a series of the request being written, by its encoded labels.
    pub fn note(&mut self, labels: &[u8]) {
        let hash = self.key.hash_one(labels);
        let before = self.current.spans.len();
        self.current.insert(hash, labels);
        if self.current.spans.len() > before {
            self.current_hashes.push(hash);
        }
    }

    /// Calls `gone` with the encoded labels of every series of the last request
    /// that the current one lacks, then makes the current request the last one.
    pub fn finish(&mut self, mut gone: impl FnMut(&[u8])) {
        for (index, &hash) in self.last_hashes.iter().enumerate() {
            let labels = self.last.labels(index as u32);
            if !self.current.contains(hash, labels) {
                gone(labels);
            }
        }
        std::mem::swap(&mut self.last, &mut self.current);
        std::mem::swap(&mut self.last_hashes, &mut self.current_hashes);
        self.current.clear();
        self.current_hashes.clear();
    }

    /// The encoded labels of every series of the last request.
    pub fn last(&self) -> impl Iterator<Item = &[u8]> + '_ {
        (0..self.last.spans.len() as u32).map(|i| self.last.labels(i))
    }

    /// How many series the last request had.
    pub fn len(&self) -> usize {
        self.last.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.last.spans.is_empty()
    }

    /// Forgets every series (a request that will not be sent after all).
    pub fn forget(&mut self) {
        self.last.clear();
        self.last_hashes.clear();
        self.current.clear();
        self.current_hashes.clear();
    }
}

/// A hasher for keys that are already hashes.
#[derive(Default)]
struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only u64 keys are hashed here; fold anything else in, correctly if slowly.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gone(series: &mut LastSeries) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        series.finish(|labels| out.push(labels.to_vec()));
        out
    }

    #[test]
    fn reports_the_series_the_next_request_lacks_once() {
        let mut series = LastSeries::default();
        for labels in [&b"a"[..], b"b", b"c"] {
            series.note(labels);
        }
        assert!(gone(&mut series).is_empty(), "nothing before the first");
        assert_eq!(series.len(), 3);
        series.note(b"a");
        series.note(b"c");
        series.note(b"d");
        assert_eq!(gone(&mut series), [b"b".to_vec()]);
        // b is gone for good: not reported again.
        series.note(b"a");
        series.note(b"c");
        series.note(b"d");
        assert!(gone(&mut series).is_empty());
        // A series noted twice in one request counts once.
        series.note(b"a");
        series.note(b"a");
        assert_eq!(gone(&mut series), [b"c".to_vec(), b"d".to_vec()]);
        assert_eq!(series.last().collect::<Vec<_>>(), [&b"a"[..]]);
        series.forget();
        assert!(series.is_empty());
    }

    #[test]
    fn a_hash_collision_costs_a_comparison_not_a_wrong_answer() {
        let mut set = Set::default();
        set.insert(7, b"first");
        set.insert(7, b"second");
        assert!(set.contains(7, b"first") && set.contains(7, b"second"));
        assert!(!set.contains(7, b"third"));
        assert!(!set.contains(8, b"first"));
        assert_eq!(set.spans.len(), 2);
    }

    #[test]
    fn memory_stays_flat_across_requests() {
        let mut series = LastSeries::default();
        let labels: Vec<Vec<u8>> = (0..1000)
            .map(|i| format!("series-{i}").into_bytes())
            .collect();
        for _ in 0..3 {
            for l in &labels {
                series.note(l);
            }
            series.finish(|_| {});
        }
        let capacity = (
            series.last.bytes.capacity(),
            series.current.bytes.capacity(),
        );
        for _ in 0..20 {
            for l in &labels {
                series.note(l);
            }
            series.finish(|_| {});
        }
        assert_eq!(
            (
                series.last.bytes.capacity(),
                series.current.bytes.capacity()
            ),
            capacity
        );
    }
}

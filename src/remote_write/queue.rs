//! The FIFO of compressed requests between the cycle loop and the sender, bounded by
//! bytes.
//!
//! The sender takes the oldest entry out to send it ("in flight") and puts it back
//! at the front if the attempt is to be retried, so entries always leave in the order
//! they came: Prometheus rejects a sample older than one it already has for the same
//! series, so a newer batch must never overtake an older one.
//!
//! The cap counts the entry in flight too. A push past the cap drops the oldest
//! queued entries; the entry just pushed is always kept, even if it alone exceeds
//! the cap. An entry in flight is never dropped by a push (it is being sent); if its
//! attempt fails and putting it back would exceed the cap, it is dropped then.

use std::collections::VecDeque;

/// One cycle's request body.
#[derive(Debug, Clone, PartialEq)]
pub struct QueuedBatch {
    pub body: Vec<u8>,
    pub samples: u64,
    /// The cycle's timestamp, for logs.
    pub timestamp_ms: i64,
}

/// What a push or a put-back dropped.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Dropped {
    pub batches: u64,
    pub samples: u64,
}

impl Dropped {
    fn add(&mut self, entry: &QueuedBatch) {
        self.batches += 1;
        self.samples += entry.samples;
    }
}

#[derive(Debug)]
pub struct Queue {
    entries: VecDeque<QueuedBatch>,
    /// Bytes of `entries`.
    queued_bytes: usize,
    /// Bytes and samples of the entry being sent, if any.
    in_flight: Option<(usize, u64)>,
    max_bytes: usize,
}

impl Queue {
    pub fn new(max_bytes: usize) -> Self {
        Queue {
            entries: VecDeque::new(),
            queued_bytes: 0,
            in_flight: None,
            max_bytes,
        }
    }

    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    /// Bytes held, the entry in flight included.
    pub fn bytes(&self) -> usize {
        self.queued_bytes + self.in_flight.map_or(0, |(bytes, _)| bytes)
    }

    /// Entries held, the entry in flight included.
    pub fn batches(&self) -> usize {
        self.entries.len() + usize::from(self.in_flight.is_some())
    }

    /// Samples held, the entry in flight included.
    pub fn samples(&self) -> u64 {
        self.entries.iter().map(|e| e.samples).sum::<u64>()
            + self.in_flight.map_or(0, |(_, samples)| samples)
    }

    /// Whether an entry is waiting to be taken (not counting the one in flight).
    pub fn has_waiting(&self) -> bool {
        !self.entries.is_empty()
    }

    /// Changes the cap (at reload), dropping the oldest entries past it.
    pub fn set_max_bytes(&mut self, max_bytes: usize) -> Dropped {
        self.max_bytes = max_bytes;
        let mut dropped = Dropped::default();
        while self.bytes() > self.max_bytes && self.entries.len() > 1 {
            self.drop_oldest(&mut dropped);
        }
        dropped
    }

    /// Appends `entry`, first dropping the oldest queued entries it would not fit
    /// beside.
    pub fn push(&mut self, entry: QueuedBatch) -> Dropped {
        let mut dropped = Dropped::default();
        while self.bytes() + entry.body.len() > self.max_bytes && !self.entries.is_empty() {
            self.drop_oldest(&mut dropped);
        }
        self.queued_bytes += entry.body.len();
        self.entries.push_back(entry);
        dropped
    }

    fn drop_oldest(&mut self, dropped: &mut Dropped) {
        if let Some(oldest) = self.entries.pop_front() {
            self.queued_bytes -= oldest.body.len();
            dropped.add(&oldest);
        }
    }

    /// Takes the oldest entry out to send it. At most one entry is in flight.
    pub fn take(&mut self) -> Option<QueuedBatch> {
        if self.in_flight.is_some() {
            return None;
        }
        let entry = self.entries.pop_front()?;
        self.queued_bytes -= entry.body.len();
        self.in_flight = Some((entry.body.len(), entry.samples));
        Some(entry)
    }

    /// The entry in flight was delivered or rejected: it is gone.
    pub fn done(&mut self) {
        self.in_flight = None;
    }

    /// The entry in flight is to be retried: back to the front, unless it no longer
    /// fits beside the newer entries, in which case it (the oldest) is dropped.
    pub fn put_back(&mut self, entry: QueuedBatch) -> Dropped {
        self.in_flight = None;
        let mut dropped = Dropped::default();
        if !self.entries.is_empty() && self.bytes() + entry.body.len() > self.max_bytes {
            dropped.add(&entry);
            return dropped;
        }
        self.queued_bytes += entry.body.len();
        self.entries.push_front(entry);
        dropped
    }

    /// Takes the oldest waiting entry out for good (to move it elsewhere).
    pub fn pop_front(&mut self) -> Option<QueuedBatch> {
        let entry = self.entries.pop_front()?;
        self.queued_bytes -= entry.body.len();
        Some(entry)
    }

    /// Puts back an entry [`Queue::pop_front`] gave, at the front.
    pub fn push_front(&mut self, entry: QueuedBatch) {
        self.queued_bytes += entry.body.len();
        self.entries.push_front(entry);
    }

    /// Empties the queue (the entry in flight stays counted until `done`).
    pub fn clear(&mut self) -> Dropped {
        let mut dropped = Dropped::default();
        while !self.entries.is_empty() {
            self.drop_oldest(&mut dropped);
        }
        dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(timestamp_ms: i64, bytes: usize, samples: u64) -> QueuedBatch {
        QueuedBatch {
            body: vec![0; bytes],
            samples,
            timestamp_ms,
        }
    }

    fn timestamps(queue: &Queue) -> Vec<i64> {
        queue.entries.iter().map(|e| e.timestamp_ms).collect()
    }

    #[test]
    fn keeps_order_and_counts() {
        let mut queue = Queue::new(1000);
        for t in 1..=3 {
            assert_eq!(queue.push(entry(t, 100, 10)), Dropped::default());
        }
        assert_eq!(
            (queue.bytes(), queue.batches(), queue.samples()),
            (300, 3, 30)
        );
        let first = queue.take().unwrap();
        assert_eq!(first.timestamp_ms, 1);
        assert_eq!(queue.take(), None, "one in flight at a time");
        assert_eq!((queue.bytes(), queue.batches()), (300, 3));
        queue.put_back(first);
        assert_eq!(timestamps(&queue), [1, 2, 3]);
        queue.take().unwrap();
        queue.done();
        assert_eq!(timestamps(&queue), [2, 3]);
        assert_eq!(
            (queue.bytes(), queue.batches(), queue.samples()),
            (200, 2, 20)
        );
    }

    #[test]
    fn past_the_cap_the_oldest_go_and_are_counted() {
        let mut queue = Queue::new(350);
        for t in 1..=3 {
            queue.push(entry(t, 100, 7));
        }
        let dropped = queue.push(entry(4, 100, 7));
        assert_eq!(
            dropped,
            Dropped {
                batches: 1,
                samples: 7
            }
        );
        assert_eq!(timestamps(&queue), [2, 3, 4]);
        // A big entry pushes out as many as it needs.
        let dropped = queue.push(entry(5, 250, 9));
        assert_eq!(
            dropped,
            Dropped {
                batches: 2,
                samples: 14
            }
        );
        assert_eq!(timestamps(&queue), [4, 5]);
        assert_eq!(queue.bytes(), 350);
    }

    #[test]
    fn the_newest_is_kept_even_when_it_alone_exceeds_the_cap() {
        let mut queue = Queue::new(100);
        queue.push(entry(1, 50, 1));
        let dropped = queue.push(entry(2, 500, 2));
        assert_eq!(
            dropped,
            Dropped {
                batches: 1,
                samples: 1
            }
        );
        assert_eq!(timestamps(&queue), [2]);
        assert_eq!(queue.bytes(), 500);
    }

    #[test]
    fn in_flight_counts_against_the_cap_and_is_dropped_on_put_back_if_too_old() {
        let mut queue = Queue::new(300);
        queue.push(entry(1, 100, 1));
        let sending = queue.take().unwrap();
        queue.push(entry(2, 100, 1));
        queue.push(entry(3, 100, 1));
        // Full with the one in flight: the next push drops the oldest queued, not it.
        let dropped = queue.push(entry(4, 100, 1));
        assert_eq!(dropped.batches, 1);
        assert_eq!(timestamps(&queue), [3, 4]);
        // Putting it back still fits (the cap counted it all along).
        assert_eq!(queue.put_back(sending), Dropped::default());
        assert_eq!(timestamps(&queue), [1, 3, 4]);
        // With a smaller cap (reload) a put-back of the oldest that no longer fits drops it.
        let sending = queue.take().unwrap();
        assert_eq!(queue.set_max_bytes(150).batches, 1);
        assert_eq!(timestamps(&queue), [4]);
        let dropped = queue.put_back(sending);
        assert_eq!(
            dropped,
            Dropped {
                batches: 1,
                samples: 1
            }
        );
        assert_eq!(timestamps(&queue), [4]);
    }

    #[test]
    fn shrinking_the_cap_drops_the_oldest_and_clear_drops_all() {
        let mut queue = Queue::new(1000);
        for t in 1..=5 {
            queue.push(entry(t, 100, 3));
        }
        assert_eq!(queue.set_max_bytes(250).batches, 3);
        assert_eq!(timestamps(&queue), [4, 5]);
        assert_eq!(
            queue.clear(),
            Dropped {
                batches: 2,
                samples: 6
            }
        );
        assert_eq!((queue.bytes(), queue.batches(), queue.samples()), (0, 0, 0));
    }
}

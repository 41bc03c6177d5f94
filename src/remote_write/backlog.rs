//! What waits for the endpoint: the memory queue, and behind it the disk spool.
//!
//! Normal operation writes nothing to disk: batches go through the memory
//! [`Queue`](super::queue::Queue) and are sent. The first attempt that fails moves
//! the batch and everything queued after it to the [`Spool`], and every batch after
//! that goes to the spool too, until the spool is drained; then memory again. So a
//! restart, a crash or a power cut during an outage loses at most the batch being
//! written, and on start the spool is replayed, oldest first, before fresh batches.
//!
//! Order is kept by one rule: everything in the spool is older than everything in
//! memory. The sender takes from the spool while it holds anything, then from
//! memory; a batch goes to the spool only when memory is empty (what memory holds is
//! moved there first). When the spool cannot be written (missing, read-only, full),
//! the error is counted by reason and logged once per episode, and delivery carries
//! on from memory, bounded by `queue.max_bytes` as without a spool.

use super::queue::{Dropped, Queue, QueuedBatch};
use super::spool::{Spool, SpoolError};

/// Where the batch in flight came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    Memory,
    Spool,
}

/// What went wrong with the spool since it was last reported, by reason.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct SpoolErrors {
    /// `(reason, count)`, in the order reasons first appeared.
    pub counts: Vec<(&'static str, u64)>,
}

impl SpoolErrors {
    fn add(&mut self, reason: &'static str) {
        match self.counts.iter_mut().find(|(r, _)| *r == reason) {
            Some((_, n)) => *n += 1,
            None => self.counts.push((reason, 1)),
        }
    }
}

pub struct Backlog {
    memory: Queue,
    spool: Option<Spool>,
    /// Whether new batches go to the spool (from the first failed attempt until the
    /// spool is drained).
    spooling: bool,
    /// The batch being sent and where it came from; a memory batch's copy is kept
    /// so a shutdown can still spool it while its request hangs.
    in_flight: Option<(Origin, Option<QueuedBatch>)>,
    pub errors: SpoolErrors,
    /// Whether a spool failure was logged since the spool last worked.
    failing: bool,
    notes: Vec<(log::Level, String)>,
}

impl Backlog {
    pub fn new(memory_max_bytes: usize) -> Self {
        Backlog {
            memory: Queue::new(memory_max_bytes),
            spool: None,
            spooling: false,
            in_flight: None,
            errors: SpoolErrors::default(),
            failing: false,
            notes: Vec::new(),
        }
    }

    /// Log lines made under the lock, for the caller to write after releasing it.
    pub fn take_notes(&mut self) -> Vec<(log::Level, String)> {
        std::mem::take(&mut self.notes)
    }

    /// Uses `spool` from now on (or none). What it holds from an earlier run is
    /// older than anything in memory only at start, which is when a spool is opened
    /// with records; a spool replaced at reload keeps its records ahead.
    pub fn set_spool(&mut self, spool: Option<Spool>) {
        if let Some(old) = self.spool.take() {
            // Records of the old directory stay there, for a later start.
            drop(old);
            if self.in_flight_from(Origin::Spool) {
                self.in_flight = None;
            }
        }
        self.spool = spool;
        self.spooling = self.spool.as_ref().is_some_and(|s| !s.is_empty());
        if self.spooling {
            // Older than memory's: memory goes behind them.
            self.move_memory_to_spool();
        }
    }

    pub fn spool(&self) -> Option<&Spool> {
        self.spool.as_ref()
    }

    pub fn spool_mut(&mut self) -> Option<&mut Spool> {
        self.spool.as_mut()
    }

    pub fn memory(&self) -> &Queue {
        &self.memory
    }

    pub fn set_memory_max_bytes(&mut self, max_bytes: usize) -> Dropped {
        self.memory.set_max_bytes(max_bytes)
    }

    /// Whether a batch is waiting to be taken (not counting the one in flight). It
    /// reads the spool's next record ahead, so a spool of only corrupt records is not
    /// taken for a waiting one.
    pub fn has_waiting(&mut self) -> bool {
        if self.memory.has_waiting() {
            return true;
        }
        if self.in_flight.is_some() {
            // The spool's next record is the one in flight, or memory's was taken.
            return false;
        }
        self.spool.as_mut().is_some_and(|s| s.peek().is_some())
    }

    fn in_flight_from(&self, origin: Origin) -> bool {
        self.in_flight.as_ref().is_some_and(|(o, _)| *o == origin)
    }

    /// Queues `entry`: on disk while spooling, else in memory. Returns what memory
    /// dropped to make room (the spool counts its own drops).
    pub fn push(&mut self, entry: QueuedBatch) -> Dropped {
        if self.spooling && self.move_memory_to_spool() && self.append(&entry) {
            return Dropped::default();
        }
        self.memory.push(entry)
    }

    /// Takes the oldest batch out to send it: the spool's first.
    pub fn take(&mut self) -> Option<QueuedBatch> {
        if self.in_flight.is_some() {
            return None;
        }
        if let Some(spool) = self.spool.as_mut().filter(|s| !s.is_empty()) {
            if let Some(entry) = spool.take() {
                self.in_flight = Some((Origin::Spool, None));
                return Some(entry);
            }
        }
        let entry = self.memory.take()?;
        self.in_flight = Some((Origin::Memory, Some(entry.clone())));
        Some(entry)
    }

    /// The batch in flight was delivered, rejected or dropped: it is gone.
    pub fn done(&mut self) {
        match self.in_flight.take() {
            Some((Origin::Memory, _)) => self.memory.done(),
            Some((Origin::Spool, _)) => {
                if let Some(spool) = self.spool.as_mut() {
                    spool.done();
                    if spool.is_empty() && self.spooling {
                        self.spooling = false;
                        self.notes.push((
                            log::Level::Info,
                            "spool drained: batches are held in memory again".to_owned(),
                        ));
                    }
                }
            }
            None => {}
        }
    }

    /// The batch in flight failed and is to be retried. From here on batches go to
    /// the spool (if there is one): this one and those after it first.
    pub fn put_back(&mut self, entry: QueuedBatch) -> Dropped {
        let dropped = match self.in_flight.take() {
            // Still the spool's oldest record.
            Some((Origin::Spool, _)) => {
                if let Some(spool) = self.spool.as_mut() {
                    spool.release();
                }
                Dropped::default()
            }
            _ => self.memory.put_back(entry),
        };
        if self.spool.is_some() && !self.spooling {
            self.spooling = true;
            self.move_memory_to_spool();
        }
        dropped
    }

    /// Moves what memory holds (the batch in flight included, if it came from
    /// memory) to the end of the spool, oldest first. Returns whether memory is now
    /// empty; on a write error what is left stays in memory.
    fn move_memory_to_spool(&mut self) -> bool {
        if self.spool.is_none() {
            return false;
        }
        if self.in_flight_from(Origin::Memory) {
            let Some((_, Some(entry))) = self.in_flight.take() else {
                return false;
            };
            if self.append(&entry) {
                // It is now the spool's: its outcome advances the spool.
                self.memory.done();
                if let Some(spool) = self.spool.as_mut() {
                    // It is the spool's oldest record now, and in flight.
                    spool.take();
                }
                self.in_flight = Some((Origin::Spool, None));
            } else {
                self.in_flight = Some((Origin::Memory, Some(entry)));
                return false;
            }
        }
        while let Some(entry) = self.memory.pop_front() {
            if !self.append(&entry) {
                self.memory.push_front(entry);
                return false;
            }
        }
        true
    }

    /// Appends to the spool; on failure counts and logs (once per episode).
    fn append(&mut self, entry: &QueuedBatch) -> bool {
        let Some(spool) = self.spool.as_mut() else {
            return false;
        };
        match spool.append(entry) {
            Ok(()) => {
                if self.failing {
                    self.failing = false;
                    self.notes
                        .push((log::Level::Info, "spool: writing again".to_owned()));
                }
                true
            }
            Err(e) => {
                self.note_error(&e);
                false
            }
        }
    }

    fn note_error(&mut self, error: &SpoolError) {
        self.errors.add(error.reason);
        if !self.failing {
            self.failing = true;
            self.notes.push((
                log::Level::Error,
                format!(
                    "spool: {error}; holding batches in memory (queue.max_bytes) until it \
                     can be written (counted in sc_agent_spool_errors_total{{reason=\"{}\"}})",
                    error.reason
                ),
            ));
        }
    }

    /// At shutdown: what memory still holds goes to the spool (a clean stop loses
    /// nothing there is a spool for). Returns what is left in memory.
    pub fn spool_for_shutdown(&mut self) -> Dropped {
        if self.spool.is_some() {
            self.move_memory_to_spool();
        }
        Dropped {
            batches: self.memory.batches() as u64,
            samples: self.memory.samples(),
        }
    }

    /// Bytes waiting: memory's (the batch in flight included) and the spool's.
    pub fn bytes(&self) -> usize {
        self.memory.bytes() + self.spool.as_ref().map_or(0, |s| s.bytes() as usize)
    }

    /// Batches waiting, in memory and in the spool.
    pub fn batches(&self) -> usize {
        self.memory.batches() + self.spool.as_ref().map_or(0, |s| s.records() as usize)
    }

    /// Empties memory (the endpoint was removed); the spool keeps its records.
    pub fn clear_memory(&mut self) -> Dropped {
        self.memory.clear()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TempDir;

    fn entry(timestamp_ms: i64) -> QueuedBatch {
        QueuedBatch {
            body: vec![timestamp_ms as u8; 50],
            samples: 5,
            timestamp_ms,
        }
    }

    fn open(dir: &TempDir) -> Backlog {
        let mut backlog = Backlog::new(1 << 20);
        backlog.set_spool(Some(
            Spool::open(&dir.path().join("spool"), 1 << 20).unwrap(),
        ));
        backlog
    }

    /// Sends everything (each attempt succeeding); returns the timestamps in order.
    fn deliver_all(backlog: &mut Backlog) -> Vec<i64> {
        let mut out = Vec::new();
        while let Some(entry) = backlog.take() {
            out.push(entry.timestamp_ms);
            backlog.done();
        }
        out
    }

    fn spool_files(dir: &TempDir) -> u64 {
        std::fs::read_dir(dir.path().join("spool"))
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .filter(|e| e.path().extension().is_some_and(|x| x == "seg"))
                    .map(|e| e.metadata().map_or(0, |m| m.len()))
                    .sum()
            })
            .unwrap_or(0)
    }

    #[test]
    fn healthy_delivery_writes_nothing_to_disk() {
        let dir = TempDir::new();
        let mut backlog = open(&dir);
        for t in 1..=3 {
            backlog.push(entry(t));
        }
        assert_eq!(deliver_all(&mut backlog), [1, 2, 3]);
        assert_eq!(spool_files(&dir), 0);
    }

    #[test]
    fn a_failure_spools_the_batch_and_everything_after_it_in_order() {
        let dir = TempDir::new();
        let mut backlog = open(&dir);
        backlog.push(entry(1));
        backlog.push(entry(2));
        let first = backlog.take().unwrap();
        backlog.push(entry(3));
        backlog.put_back(first);
        // Everything is on disk now, and what comes next too.
        assert_eq!(backlog.memory().batches(), 0);
        backlog.push(entry(4));
        assert_eq!(backlog.memory().batches(), 0);
        assert_eq!(backlog.batches(), 4);
        assert!(spool_files(&dir) > 0);
        // A restart: a new backlog on the same directory replays them, then fresh.
        drop(backlog);
        let mut backlog = open(&dir);
        backlog.push(entry(5));
        assert_eq!(deliver_all(&mut backlog), [1, 2, 3, 4, 5]);
        // Drained: memory again.
        backlog.push(entry(6));
        assert_eq!(backlog.memory().batches(), 1);
    }

    #[test]
    fn a_batch_in_flight_at_shutdown_is_spooled_and_its_late_outcome_is_harmless() {
        let dir = TempDir::new();
        let mut backlog = open(&dir);
        backlog.push(entry(1));
        backlog.push(entry(2));
        let _sending = backlog.take().unwrap();
        assert_eq!(backlog.spool_for_shutdown(), Dropped::default());
        // The hung request fails late: still the spool's.
        backlog.put_back(entry(1));
        drop(backlog);
        let mut backlog = open(&dir);
        assert_eq!(deliver_all(&mut backlog), [1, 2]);
    }

    #[test]
    fn without_a_usable_spool_delivery_carries_on_from_memory() {
        let dir = TempDir::new();
        let mut backlog = open(&dir);
        backlog.push(entry(1));
        let first = backlog.take().unwrap();
        // The spool's directory goes away under it: appends fail.
        std::fs::remove_dir_all(dir.path().join("spool")).unwrap();
        std::fs::write(dir.path().join("spool"), "not a directory").unwrap();
        backlog.put_back(first);
        backlog.push(entry(2));
        let notes = backlog.take_notes();
        assert!(
            notes
                .iter()
                .any(|(level, m)| *level == log::Level::Error && m.starts_with("spool: ")),
            "{notes:?}"
        );
        assert!(!backlog.errors.counts.is_empty());
        assert_eq!(deliver_all(&mut backlog), [1, 2]);
    }

    /// Every batch pushed ends exactly once: sent (in order, never twice), dropped
    /// by the memory cap, dropped by the spool cap, or still waiting, through random
    /// failures, a small spool and restarts.
    #[test]
    fn every_batch_is_accounted_for_once_through_failures_and_restarts() {
        let dir = TempDir::new();
        let spool_cap = 4 * (12 + 16 + 50) as u64;
        let reopen = |dir: &TempDir| {
            let mut backlog = Backlog::new(300);
            backlog.set_spool(Some(
                Spool::open(&dir.path().join("spool"), spool_cap).unwrap(),
            ));
            backlog
        };
        let mut backlog = reopen(&dir);
        let mut rng = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let (mut pushed, mut sent, mut dropped_memory) = (0u64, Vec::new(), 0u64);
        let mut dropped_spool = 0u64;
        let mut in_flight: Option<QueuedBatch> = None;
        for t in 1..=3000i64 {
            match next() % 7 {
                0..=2 => {
                    pushed += 1;
                    dropped_memory += backlog.push(entry(t)).batches;
                }
                3 if in_flight.is_none() => in_flight = backlog.take(),
                4 | 5 => {
                    if let Some(entry) = in_flight.take() {
                        if next() % 3 == 0 {
                            dropped_memory += backlog.put_back(entry).batches;
                        } else {
                            sent.push(entry.timestamp_ms);
                            backlog.done();
                        }
                    }
                }
                6 if next() % 20 == 0 => {
                    // A restart: what memory holds goes to the spool first.
                    dropped_memory += backlog.spool_for_shutdown().batches;
                    dropped_spool += backlog.spool().unwrap().counts().dropped_full;
                    in_flight = None;
                    backlog = reopen(&dir);
                }
                _ => {}
            }
        }
        if let Some(entry) = in_flight.take() {
            backlog.put_back(entry);
        }
        sent.extend(deliver_all(&mut backlog));
        dropped_spool += backlog.spool().unwrap().counts().dropped_full;
        let mut unique = sent.clone();
        unique.dedup();
        assert_eq!(unique, sent, "a batch was sent twice");
        assert!(sent.windows(2).all(|w| w[0] < w[1]), "out of order");
        assert_eq!(
            pushed,
            sent.len() as u64 + dropped_memory + dropped_spool,
            "sent {} + dropped {dropped_memory} (memory) + {dropped_spool} (spool)",
            sent.len()
        );
        assert!(dropped_spool > 0, "the spool cap was never reached");
    }
}

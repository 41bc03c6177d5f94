//! The disk spool: batches that could not be delivered yet, kept across restarts,
//! crashes and power cuts, oldest first.
//!
//! A directory of segment files, `<16 hex digits>.seg` numbered in the order they
//! were started, each a sequence of records:
//!
//! ```text
//! magic "SCR1" | len: u32 LE | crc: u32 LE | payload (len bytes)
//! payload = timestamp_ms: i64 LE | samples: u64 LE | request body
//! crc = CRC-32C of len's four bytes and the payload
//! ```
//!
//! Records are appended to the newest segment (a new one at each start and past
//! [`SEGMENT_BYTES`]) and each append is flushed with `fdatasync`, so a crash or a
//! power cut loses at most the record being written. They are read oldest first; a
//! `cursor` file (a segment number and an offset, with its own CRC) says how far
//! delivery got, rewritten in place after each delivered record and not synced: a
//! power cut may at worst resend a record already delivered, which the receiver
//! takes as a duplicate. A segment read to its end is deleted.
//!
//! A record that does not check out (a torn tail, a flipped bit, garbage appended)
//! is skipped: the reader looks for the next magic and carries on, so the good
//! records around a bad one are still delivered. Skipped bytes are counted
//! ([`Counts::corrupt`]) and logged once per segment, never a panic, never a stuck
//! queue. Past `max_bytes` the oldest records are dropped and counted, as the memory
//! queue does. Files are created 0600 in a directory of mode 0700.

use super::queue::QueuedBatch;
use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// A segment is closed and a new one started past this size.
pub const SEGMENT_BYTES: u64 = 4 << 20;
/// The largest record payload accepted when reading: a length above it is corruption.
pub const MAX_RECORD_BYTES: u32 = 64 << 20;

const MAGIC: [u8; 4] = *b"SCR1";
const HEADER: usize = 12;
/// Timestamp and sample count before the body.
const PAYLOAD_PREFIX: usize = 16;
const CURSOR: &str = "cursor";
const CURSOR_BYTES: usize = 20;

/// Why the spool could not do something; `reason` is the label of
/// `sc_agent_spool_errors_total`.
#[derive(Debug)]
pub struct SpoolError {
    pub reason: &'static str,
    pub message: String,
}

impl SpoolError {
    fn io(what: &str, path: &Path, err: &io::Error) -> Self {
        let reason = match err.raw_os_error() {
            Some(nix::libc::ENOSPC) | Some(nix::libc::EDQUOT) => "full",
            Some(nix::libc::EROFS) => "read_only",
            Some(nix::libc::EACCES) | Some(nix::libc::EPERM) => "permission",
            _ if err.kind() == io::ErrorKind::NotFound => "missing",
            _ => "io",
        };
        SpoolError {
            reason,
            message: format!("{what} {}: {err}", path.display()),
        }
    }
}

impl std::fmt::Display for SpoolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// What the spool dropped or skipped since it was opened.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// Records dropped, oldest first, to stay under `max_bytes`.
    pub dropped_full: u64,
    pub dropped_full_samples: u64,
    /// Stretches of bytes that were not a valid record, skipped.
    pub corrupt: u64,
}

/// One segment file and what it holds.
#[derive(Debug)]
struct Segment {
    seq: u64,
    /// Its size on disk.
    bytes: u64,
}

/// The oldest record not yet delivered, read ahead.
struct Next {
    batch: QueuedBatch,
    /// Where the record after it starts.
    end: u64,
}

pub struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    segments: VecDeque<Segment>,
    /// The newest segment, open for appending; `None` until the first append.
    writer: Option<File>,
    /// Where delivery got in the oldest segment.
    read_offset: u64,
    /// The reader's open oldest segment and its number.
    reader: Option<(u64, File)>,
    next: Option<Next>,
    /// Whether `next` was taken for sending and its outcome is not known yet: it is
    /// not dropped to make room meanwhile (its outcome will be counted).
    in_flight: bool,
    /// Bytes of the segments not yet read (from `read_offset` in the oldest).
    pending_bytes: u64,
    /// Records not yet delivered, as far as known (counted from headers at open).
    records: u64,
    cursor: File,
    counts: Counts,
    /// Segments whose corruption was already logged.
    logged_corrupt: Vec<u64>,
    scratch: Vec<u8>,
}

impl Spool {
    /// Opens (creating if needed) the spool in `dir`, with what earlier runs left.
    pub fn open(dir: &Path, max_bytes: u64) -> Result<Spool, SpoolError> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| SpoolError::io("cannot create", dir, &e))?;
        let mut seqs: Vec<u64> = std::fs::read_dir(dir)
            .map_err(|e| SpoolError::io("cannot list", dir, &e))?
            .filter_map(|entry| {
                let name = entry.ok()?.file_name();
                let stem = name.to_str()?.strip_suffix(".seg")?;
                (stem.len() == 16)
                    .then(|| u64::from_str_radix(stem, 16).ok())
                    .flatten()
            })
            .collect();
        seqs.sort_unstable();
        let cursor_path = dir.join(CURSOR);
        let cursor = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&cursor_path)
            .map_err(|e| SpoolError::io("cannot open", &cursor_path, &e))?;
        let mut spool = Spool {
            dir: dir.to_owned(),
            max_bytes,
            segments: VecDeque::new(),
            writer: None,
            read_offset: 0,
            reader: None,
            next: None,
            in_flight: false,
            pending_bytes: 0,
            records: 0,
            cursor,
            counts: Counts::default(),
            logged_corrupt: Vec::new(),
            scratch: Vec::new(),
        };
        let (cursor_seq, cursor_offset) = spool.read_cursor();
        for seq in seqs {
            let path = spool.segment_path(seq);
            let bytes = std::fs::metadata(&path)
                .map_err(|e| SpoolError::io("cannot read", &path, &e))?
                .len();
            if seq < cursor_seq {
                // Delivered before the last stop; its deletion did not happen.
                let _ = std::fs::remove_file(&path);
                continue;
            }
            spool.segments.push_back(Segment { seq, bytes });
        }
        if spool.segments.front().is_some_and(|s| s.seq == cursor_seq) {
            spool.read_offset = cursor_offset.min(spool.segments[0].bytes);
        }
        spool.pending_bytes =
            spool.segments.iter().map(|s| s.bytes).sum::<u64>() - spool.read_offset;
        spool.records = spool.count_records();
        Ok(spool)
    }

    fn segment_path(&self, seq: u64) -> PathBuf {
        self.dir.join(format!("{seq:016x}.seg"))
    }

    /// Bytes not yet delivered.
    pub fn bytes(&self) -> u64 {
        self.pending_bytes
    }

    /// Records not yet delivered.
    pub fn records(&self) -> u64 {
        self.records
    }

    pub fn is_empty(&self) -> bool {
        self.pending_bytes == 0
    }

    pub fn counts(&self) -> Counts {
        self.counts
    }

    /// Changes the cap (at reload), dropping the oldest records past it.
    pub fn set_max_bytes(&mut self, max_bytes: u64) {
        self.max_bytes = max_bytes;
        self.enforce_cap(0);
    }

    /// The timestamp of the oldest record not yet delivered.
    pub fn oldest_timestamp_ms(&mut self) -> Option<i64> {
        self.peek().map(|b| b.timestamp_ms)
    }

    /// Appends `batch` and flushes it to the disk. Past `max_bytes` the oldest records
    /// are dropped first (counted in [`Counts`]).
    pub fn append(&mut self, batch: &QueuedBatch) -> Result<(), SpoolError> {
        let len = PAYLOAD_PREFIX + batch.body.len();
        let record = HEADER as u64 + len as u64;
        self.enforce_cap(record);
        let rollover = self
            .segments
            .back()
            .is_some_and(|s| s.bytes + record > SEGMENT_BYTES && s.bytes > 0);
        if self.writer.is_none() || rollover {
            self.start_segment()?;
        }
        let mut buf = std::mem::take(&mut self.scratch);
        buf.clear();
        buf.extend_from_slice(&MAGIC);
        let len32 = len as u32;
        buf.extend_from_slice(&len32.to_le_bytes());
        buf.extend_from_slice(&[0; 4]);
        buf.extend_from_slice(&batch.timestamp_ms.to_le_bytes());
        buf.extend_from_slice(&batch.samples.to_le_bytes());
        buf.extend_from_slice(&batch.body);
        let crc = crc32c_update(crc32c_update(!0, &len32.to_le_bytes()), &buf[HEADER..]) ^ !0;
        buf[8..12].copy_from_slice(&crc.to_le_bytes());
        let result = self.write_record(&buf);
        self.scratch = buf;
        result?;
        if let Some(segment) = self.segments.back_mut() {
            segment.bytes += record;
        }
        self.pending_bytes += record;
        self.records += 1;
        Ok(())
    }

    fn write_record(&mut self, record: &[u8]) -> Result<(), SpoolError> {
        let seq = self.segments.back().map_or(0, |s| s.seq);
        let path = self.segment_path(seq);
        let Some(writer) = self.writer.as_mut() else {
            return Err(SpoolError {
                reason: "io",
                message: format!("{}: not open", path.display()),
            });
        };
        let written = writer.write_all(record).and_then(|()| writer.sync_data());
        if let Err(e) = written {
            // What was partly written is a torn record: start afresh in a new
            // segment, and let the reader skip the torn bytes.
            self.writer = None;
            return Err(SpoolError::io("cannot write", &path, &e));
        }
        Ok(())
    }

    fn start_segment(&mut self) -> Result<(), SpoolError> {
        let seq = self.segments.back().map_or(0, |s| s.seq + 1);
        let path = self.segment_path(seq);
        let file = OpenOptions::new()
            .append(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| SpoolError::io("cannot create", &path, &e))?;
        // The new name must survive a power cut too.
        if let Ok(dir) = File::open(&self.dir) {
            let _ = dir.sync_all();
        }
        self.segments.push_back(Segment { seq, bytes: 0 });
        self.writer = Some(file);
        Ok(())
    }

    /// Drops the oldest records until `extra` more bytes fit under `max_bytes`. The
    /// record in flight is the oldest and is not dropped: until its outcome is known
    /// the spool may exceed `max_bytes` by what arrives meanwhile.
    fn enforce_cap(&mut self, extra: u64) {
        while self.pending_bytes + extra > self.max_bytes && !self.is_empty() && !self.in_flight {
            let Some(samples) = self.peek().map(|b| b.samples) else {
                break;
            };
            self.counts.dropped_full += 1;
            self.counts.dropped_full_samples += samples;
            self.done();
        }
    }

    /// The oldest record not yet delivered, read ahead (corrupt stretches skipped).
    pub fn peek(&mut self) -> Option<&QueuedBatch> {
        if self.next.is_none() {
            self.next = self.read_next();
        }
        self.next.as_ref().map(|n| &n.batch)
    }

    /// Takes the oldest record out for sending; it stays in the spool until
    /// [`Spool::done`] (delivered or dropped) or [`Spool::release`] (to be retried).
    pub fn take(&mut self) -> Option<QueuedBatch> {
        let batch = self.peek().cloned();
        self.in_flight = batch.is_some();
        batch
    }

    /// The record taken is to be retried: it stays the oldest, and may be dropped
    /// to make room again.
    pub fn release(&mut self) {
        self.in_flight = false;
    }

    /// The record [`Spool::peek`] gave was delivered (or dropped): move past it.
    pub fn done(&mut self) {
        self.in_flight = false;
        let Some(next) = self.next.take() else {
            return;
        };
        let consumed = next.end - self.read_offset;
        self.pending_bytes = self.pending_bytes.saturating_sub(consumed);
        self.records = self.records.saturating_sub(1);
        self.read_offset = next.end;
        self.retire_read_segments();
        self.write_cursor();
    }

    /// Reads the next good record from the cursor on, deleting segments read to
    /// their end. `None` when nothing is left.
    fn read_next(&mut self) -> Option<Next> {
        loop {
            let segment = self.segments.front()?;
            let (seq, size) = (segment.seq, segment.bytes);
            if self.read_offset >= size {
                if self.segments.len() == 1 {
                    return None; // the newest segment, being written
                }
                self.retire_front();
                continue;
            }
            if self.reader.as_ref().is_none_or(|(s, _)| *s != seq) {
                let path = self.segment_path(seq);
                match File::open(&path) {
                    Ok(file) => self.reader = Some((seq, file)),
                    Err(e) => {
                        log::warn!("spool: cannot read {}: {e}; skipping it", path.display());
                        self.skip_rest_of_front(size);
                        continue;
                    }
                }
            }
            match self.parse_at(self.read_offset, size) {
                Parsed::Record(next) => return Some(next),
                Parsed::Skip(to) => {
                    self.note_corrupt(seq, to - self.read_offset);
                    self.pending_bytes = self.pending_bytes.saturating_sub(to - self.read_offset);
                    self.read_offset = to;
                    self.write_cursor();
                }
            }
        }
    }

    /// What starts at `offset` of the reader's segment of `size` bytes.
    fn parse_at(&mut self, offset: u64, size: u64) -> Parsed {
        let Some((_, file)) = self.reader.as_ref() else {
            return Parsed::Skip(size);
        };
        let mut header = [0u8; HEADER];
        if read_exact_at(file, &mut header, offset).is_err() {
            return Parsed::Skip(self.resync(offset + 1, size));
        }
        let len = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        let crc = u32::from_le_bytes([header[8], header[9], header[10], header[11]]);
        let end = offset + HEADER as u64 + u64::from(len);
        if header[..4] != MAGIC
            || len < PAYLOAD_PREFIX as u32
            || len > MAX_RECORD_BYTES
            || end > size
        {
            return Parsed::Skip(self.resync(offset + 1, size));
        }
        let mut payload = vec![0u8; len as usize];
        if read_exact_at(file, &mut payload, offset + HEADER as u64).is_err()
            || crc32c_update(crc32c_update(!0, &len.to_le_bytes()), &payload) ^ !0 != crc
        {
            return Parsed::Skip(self.resync(offset + 1, size));
        }
        let timestamp_ms = i64::from_le_bytes(payload[..8].try_into().unwrap_or_default());
        let samples = u64::from_le_bytes(payload[8..16].try_into().unwrap_or_default());
        payload.drain(..PAYLOAD_PREFIX);
        Parsed::Record(Next {
            batch: QueuedBatch {
                body: payload,
                samples,
                timestamp_ms,
            },
            end,
        })
    }

    /// The offset of the next magic at or after `from` in the reader's segment, or
    /// its end.
    fn resync(&mut self, from: u64, size: u64) -> u64 {
        let Some((_, file)) = self.reader.as_ref() else {
            return size;
        };
        let mut at = from;
        let mut chunk = vec![0u8; 64 << 10];
        while at < size {
            let want = chunk.len().min((size - at) as usize);
            if read_exact_at(file, &mut chunk[..want], at).is_err() {
                return size;
            }
            if let Some(i) = chunk[..want].windows(MAGIC.len()).position(|w| w == MAGIC) {
                return at + i as u64;
            }
            // A magic may straddle the chunk's end.
            at += want.saturating_sub(MAGIC.len() - 1).max(1) as u64;
        }
        size
    }

    fn note_corrupt(&mut self, seq: u64, bytes: u64) {
        self.counts.corrupt += 1;
        if !self.logged_corrupt.contains(&seq) {
            self.logged_corrupt.push(seq);
            log::warn!(
                "spool: skipped {bytes} bytes that are not a valid record in {} \
                 (a torn write or a damaged file); the records around them are kept",
                self.segment_path(seq).display()
            );
        }
    }

    fn skip_rest_of_front(&mut self, size: u64) {
        self.pending_bytes = self.pending_bytes.saturating_sub(size - self.read_offset);
        self.read_offset = size;
    }

    /// Deletes the oldest segment once read to its end (never the one written to).
    fn retire_read_segments(&mut self) {
        while self.segments.len() > 1
            && self
                .segments
                .front()
                .is_some_and(|s| self.read_offset >= s.bytes)
        {
            self.retire_front();
        }
    }

    fn retire_front(&mut self) {
        if let Some(segment) = self.segments.pop_front() {
            if self.reader.as_ref().is_some_and(|(s, _)| *s == segment.seq) {
                self.reader = None;
            }
            let _ = std::fs::remove_file(self.segment_path(segment.seq));
            self.read_offset = 0;
            self.write_cursor();
        }
    }

    fn read_cursor(&mut self) -> (u64, u64) {
        let mut buf = [0u8; CURSOR_BYTES];
        if read_exact_at(&self.cursor, &mut buf, 0).is_err() {
            return (0, 0);
        }
        let seq = u64::from_le_bytes(buf[..8].try_into().unwrap_or_default());
        let offset = u64::from_le_bytes(buf[8..16].try_into().unwrap_or_default());
        let crc = u32::from_le_bytes(buf[16..20].try_into().unwrap_or_default());
        if crc32c_update(!0, &buf[..16]) ^ !0 != crc {
            return (0, 0);
        }
        (seq, offset)
    }

    fn write_cursor(&mut self) {
        let seq = self.segments.front().map_or(0, |s| s.seq);
        let mut buf = [0u8; CURSOR_BYTES];
        buf[..8].copy_from_slice(&seq.to_le_bytes());
        buf[8..16].copy_from_slice(&self.read_offset.to_le_bytes());
        let crc = crc32c_update(!0, &buf[..16]) ^ !0;
        buf[16..].copy_from_slice(&crc.to_le_bytes());
        // Not synced: losing it only resends what was delivered (see the module doc).
        let _ = self.cursor.write_all_at(&buf, 0);
    }

    /// Records from the cursor on, by their headers (payloads are checked when read).
    fn count_records(&self) -> u64 {
        let mut count = 0;
        let mut header = [0u8; HEADER];
        for (index, segment) in self.segments.iter().enumerate() {
            let Ok(file) = File::open(self.segment_path(segment.seq)) else {
                continue;
            };
            let mut at = if index == 0 { self.read_offset } else { 0 };
            while at + HEADER as u64 <= segment.bytes {
                if read_exact_at(&file, &mut header, at).is_err() || header[..4] != MAGIC {
                    break;
                }
                let len = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
                count += 1;
                at += HEADER as u64 + u64::from(len);
            }
        }
        count
    }
}

enum Parsed {
    Record(Next),
    /// Not a valid record: carry on from this offset.
    Skip(u64),
}

fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
    file.read_exact_at(buf, offset)
}

/// CRC-32C (Castagnoli), the checksum of iSCSI, ext4 metadata and most logs;
/// `crc` is the running value (start with `!0`, finish with `^ !0`).
fn crc32c_update(mut crc: u32, bytes: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut table = [0u32; 256];
        let mut n = 0;
        while n < 256 {
            let mut c = n as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 {
                    0x82F6_3B78 ^ (c >> 1)
                } else {
                    c >> 1
                };
                k += 1;
            }
            table[n] = c;
            n += 1;
        }
        table
    };
    for &b in bytes {
        crc = TABLE[((crc ^ u32::from(b)) & 0xff) as usize] ^ (crc >> 8);
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TempDir;

    fn batch(timestamp_ms: i64, bytes: usize) -> QueuedBatch {
        QueuedBatch {
            body: vec![(timestamp_ms % 251) as u8; bytes],
            samples: 10,
            timestamp_ms,
        }
    }

    /// Takes and delivers everything left; returns the timestamps, in order.
    fn drain(spool: &mut Spool) -> Vec<i64> {
        let mut out = Vec::new();
        while let Some(batch) = spool.take() {
            assert_eq!(
                batch.body,
                vec![(batch.timestamp_ms % 251) as u8; batch.body.len()]
            );
            out.push(batch.timestamp_ms);
            spool.done();
        }
        out
    }

    #[test]
    fn crc32c_matches_the_standard_check_value() {
        assert_eq!(crc32c_update(!0, b"123456789") ^ !0, 0xE306_9283);
    }

    #[test]
    fn records_come_back_in_order_across_reopens() {
        let dir = TempDir::new();
        let mut spool = Spool::open(dir.path(), 1 << 30).unwrap();
        assert!(spool.is_empty() && spool.take().is_none());
        for ts in 1..=5 {
            spool.append(&batch(ts, 100)).unwrap();
        }
        assert_eq!(spool.records(), 5);
        // Two delivered, then the process stops (the spool is dropped).
        for want in [1, 2] {
            assert_eq!(spool.take().map(|b| b.timestamp_ms), Some(want));
            spool.done();
        }
        // A failed attempt: taken but not done, so it comes back.
        assert_eq!(spool.take().map(|b| b.timestamp_ms), Some(3));
        drop(spool);
        let mut spool = Spool::open(dir.path(), 1 << 30).unwrap();
        assert_eq!(spool.records(), 3);
        assert_eq!(spool.oldest_timestamp_ms(), Some(3));
        spool.append(&batch(6, 100)).unwrap();
        assert_eq!(drain(&mut spool), [3, 4, 5, 6]);
        assert!(spool.is_empty());
        assert_eq!(spool.bytes(), 0);
        // Files are private.
        use std::os::unix::fs::PermissionsExt;
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            let mode = entry.unwrap().metadata().unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn read_segments_are_deleted_and_the_newest_kept_for_writing() {
        let dir = TempDir::new();
        let mut spool = Spool::open(dir.path(), 1 << 30).unwrap();
        let big = (SEGMENT_BYTES / 3) as usize;
        for ts in 1..=7 {
            spool.append(&batch(ts, big)).unwrap();
        }
        let segments = |dir: &Path| {
            std::fs::read_dir(dir)
                .unwrap()
                .filter(|e| {
                    e.as_ref()
                        .unwrap()
                        .path()
                        .extension()
                        .is_some_and(|x| x == "seg")
                })
                .count()
        };
        assert!(segments(dir.path()) >= 3, "{}", segments(dir.path()));
        assert_eq!(drain(&mut spool), (1..=7).collect::<Vec<_>>());
        assert_eq!(segments(dir.path()), 1);
    }

    #[test]
    fn past_max_bytes_the_oldest_records_are_dropped_and_counted() {
        let dir = TempDir::new();
        let record = (HEADER + PAYLOAD_PREFIX + 1000) as u64;
        let mut spool = Spool::open(dir.path(), record * 3).unwrap();
        for ts in 1..=5 {
            spool.append(&batch(ts, 1000)).unwrap();
        }
        assert_eq!(spool.counts().dropped_full, 2);
        assert_eq!(spool.counts().dropped_full_samples, 20);
        assert!(spool.bytes() <= record * 3);
        assert_eq!(drain(&mut spool), [3, 4, 5]);
    }

    /// The one segment file of a spool that has written one.
    fn only_segment(dir: &Path) -> PathBuf {
        let segments: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "seg"))
            .collect();
        assert_eq!(segments.len(), 1, "{segments:?}");
        segments[0].clone()
    }

    #[test]
    fn a_torn_tail_a_flipped_bit_and_appended_garbage_are_skipped_not_fatal() {
        let dir = TempDir::new();
        let mut spool = Spool::open(dir.path(), 1 << 30).unwrap();
        for ts in 1..=4 {
            spool.append(&batch(ts, 300)).unwrap();
        }
        drop(spool);
        let path = only_segment(dir.path());
        let mut bytes = std::fs::read(&path).unwrap();
        let record = HEADER + PAYLOAD_PREFIX + 300;
        // A bit flipped in the body of the second record.
        bytes[record + HEADER + 40] ^= 0x10;
        // Garbage after the fourth, then a torn fifth record (its header and half).
        bytes.extend_from_slice(b"\x00garbage\xffSCR");
        let mut torn = Vec::new();
        torn.extend_from_slice(&MAGIC);
        torn.extend_from_slice(&(PAYLOAD_PREFIX as u32 + 300).to_le_bytes());
        torn.extend_from_slice(&[1, 2, 3, 4]);
        torn.extend_from_slice(&[7; 100]);
        bytes.extend_from_slice(&torn);
        std::fs::write(&path, &bytes).unwrap();

        let mut spool = Spool::open(dir.path(), 1 << 30).unwrap();
        assert_eq!(drain(&mut spool), [1, 3, 4]);
        assert!(spool.counts().corrupt >= 2, "{:?}", spool.counts());
        assert!(spool.is_empty());
        // New records after the damage are fine.
        spool.append(&batch(9, 10)).unwrap();
        assert_eq!(drain(&mut spool), [9]);
    }

    #[test]
    fn a_damaged_cursor_rereads_from_the_start() {
        let dir = TempDir::new();
        let mut spool = Spool::open(dir.path(), 1 << 30).unwrap();
        for ts in 1..=3 {
            spool.append(&batch(ts, 10)).unwrap();
        }
        spool.take();
        spool.done();
        drop(spool);
        std::fs::write(dir.path().join(CURSOR), b"not a cursor at all!").unwrap();
        let mut spool = Spool::open(dir.path(), 1 << 30).unwrap();
        assert_eq!(drain(&mut spool), [1, 2, 3]);
    }

    #[test]
    fn a_directory_that_cannot_be_made_is_an_error_naming_it() {
        let dir = TempDir::new();
        let file = dir.write("not-a-dir", "x");
        let err = Spool::open(&file.join("spool"), 1 << 20).err().unwrap();
        assert!(err.message.contains("not-a-dir"), "{err}");
    }
}

//! Batch → `prometheus.WriteRequest` protobuf → snappy block, into reused buffers.
//!
//! The messages of remote write 1.0 are small enough to write by hand:
//!
//! ```text
//! WriteRequest { 1: repeated TimeSeries }
//! TimeSeries   { 1: repeated Label, 2: repeated Sample }
//! Label        { 1: string name, 2: string value }
//! Sample       { 1: double value, 2: int64 timestamp }
//! ```
//!
//! A nested message is written as tag, length, bytes, so each series is measured
//! before it is written: one pass over its labels to add up the length, one to write
//! them. Nothing is back-patched and nothing is allocated once the two buffers have
//! grown to the size of a cycle.
//!
//! Labels come from [`SeriesRef::labels_with_name`], sorted by name and unique, as
//! the protocol requires. A label with an empty value is left out: Prometheus treats
//! it as absent, and so does a scrape of node_exporter. Every sample carries the
//! cycle's one timestamp.

use super::stale::{LastSeries, STALE_NAN};
use crate::batch::Batch;
use crate::relabel::{Selected, Sent};

/// Field tags: `(field number << 3) | wire type`.
const TAG_TIMESERIES: u8 = 1 << 3 | 2;
const TAG_LABEL: u8 = 1 << 3 | 2;
const TAG_SAMPLE: u8 = 2 << 3 | 2;
const TAG_LABEL_NAME: u8 = 1 << 3 | 2;
const TAG_LABEL_VALUE: u8 = 2 << 3 | 2;
const TAG_SAMPLE_VALUE: u8 = 1 << 3 | 1;
const TAG_SAMPLE_TIMESTAMP: u8 = 2 << 3;

/// Appends `value` as a base-128 varint.
pub fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push(value as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// The number of bytes `put_varint` writes for `value`.
pub fn varint_len(value: u64) -> usize {
    // One byte per started group of 7 bits; 0 still takes one byte.
    (64 - (value | 1).leading_zeros() as usize).div_ceil(7)
}

/// A length-delimited field's size: tag, length varint, bytes.
fn field_len(len: usize) -> usize {
    1 + varint_len(len as u64) + len
}

fn put_bytes_field(out: &mut Vec<u8>, tag: u8, bytes: &[u8]) {
    out.push(tag);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn label_len(name: &str, value: &str) -> usize {
    field_len(name.len()) + field_len(value.len())
}

/// The encoded `Sample` message's length for a timestamp.
fn sample_len(timestamp_ms: i64) -> usize {
    // value: tag + 8 bytes; timestamp: tag + varint (int64 is its two's complement).
    1 + 8 + 1 + varint_len(timestamp_ms as u64)
}

fn labels<'a>(series: &Sent<'a>) -> impl Iterator<Item = (&'a str, &'a str)> {
    series
        .labels_with_name()
        .filter(|(_, value)| !value.is_empty())
}

/// Appends the `WriteRequest` for `batch` to `out`, and a stale marker for each
/// series `last` had that `batch` lacks; returns the number of samples and, of
/// them, stale markers. `last` then holds `batch`'s series.
pub fn write_request(batch: &Batch, out: &mut Vec<u8>, last: &mut LastSeries) -> (usize, usize) {
    write_selected(&Selected::all(batch), out, last)
}

/// [`write_request`] for what the relabel stage decided: the series sent, with
/// their labels as sent, so that `last` (and the stale markers) hold those.
pub fn write_selected(
    batch: &Selected<'_>,
    out: &mut Vec<u8>,
    last: &mut LastSeries,
) -> (usize, usize) {
    let timestamp = batch.timestamp_ms();
    let sample = sample_len(timestamp);
    let mut samples = 0;
    for family in batch.families() {
        for series in family.series() {
            // One pass over the labels (merging them is the costly part): they are
            // written first, then the TimeSeries' length, appended after them, is
            // rotated in front of them.
            out.push(TAG_TIMESERIES);
            let labels_start = out.len();
            for (name, value) in labels(&series) {
                out.push(TAG_LABEL);
                put_varint(out, label_len(name, value) as u64);
                put_bytes_field(out, TAG_LABEL_NAME, name.as_bytes());
                put_bytes_field(out, TAG_LABEL_VALUE, value.as_bytes());
            }
            let labels_len = out.len() - labels_start;
            put_varint(out, (labels_len + field_len(sample)) as u64);
            let length_len = out.len() - labels_start - labels_len;
            out[labels_start..].rotate_right(length_len);
            let start = labels_start + length_len;
            last.note(&out[start..]);
            put_sample(out, series.value(), timestamp);
            samples += 1;
        }
    }
    let mut stale = 0;
    last.finish(|labels| {
        put_stale(out, labels, timestamp);
        stale += 1;
    });
    (samples + stale, stale)
}

/// Appends a `WriteRequest` marking every series of `last` stale at `timestamp_ms`
/// (a clean stop); returns the number of samples.
pub fn write_all_stale(last: &LastSeries, timestamp_ms: i64, out: &mut Vec<u8>) -> usize {
    let mut samples = 0;
    for labels in last.last() {
        put_stale(out, labels, timestamp_ms);
        samples += 1;
    }
    samples
}

/// A `TimeSeries` of already encoded labels and one stale marker.
fn put_stale(out: &mut Vec<u8>, labels: &[u8], timestamp_ms: i64) {
    out.push(TAG_TIMESERIES);
    put_varint(
        out,
        (labels.len() + field_len(sample_len(timestamp_ms))) as u64,
    );
    out.extend_from_slice(labels);
    put_sample(out, f64::from_bits(STALE_NAN), timestamp_ms);
}

fn put_sample(out: &mut Vec<u8>, value: f64, timestamp_ms: i64) {
    out.push(TAG_SAMPLE);
    put_varint(out, sample_len(timestamp_ms) as u64);
    out.push(TAG_SAMPLE_VALUE);
    out.extend_from_slice(&value.to_bits().to_le_bytes());
    out.push(TAG_SAMPLE_TIMESTAMP);
    put_varint(out, timestamp_ms as u64);
}

/// The protobuf and snappy buffers, kept from cycle to cycle, and the series of the
/// last request (for its stale markers).
pub struct Encoder {
    proto: Vec<u8>,
    compressed: Vec<u8>,
    snappy: snap::raw::Encoder,
    last: LastSeries,
}

/// One encoded batch, borrowed from the encoder's buffers.
pub struct Encoded<'a> {
    /// The snappy block: the request body.
    pub body: &'a [u8],
    /// Samples, stale markers included.
    pub samples: usize,
    /// Stale markers: series of the last request this one lacks.
    pub stale: usize,
    /// The protobuf size before compression.
    pub raw_len: usize,
}

impl Default for Encoder {
    fn default() -> Self {
        Encoder::new()
    }
}

impl Encoder {
    pub fn new() -> Self {
        Encoder {
            proto: Vec::new(),
            compressed: Vec::new(),
            snappy: snap::raw::Encoder::new(),
            last: LastSeries::default(),
        }
    }

    /// Encodes and compresses `batch`, with stale markers for the series of the
    /// last batch it lacks. Fails only for a request above snappy's 4 GiB block
    /// limit, which a cycle never reaches.
    pub fn encode(&mut self, batch: &Batch) -> Result<Encoded<'_>, snap::Error> {
        self.encode_selected(&Selected::all(batch))
    }

    /// [`Encoder::encode`] for what the relabel stage decided.
    pub fn encode_selected(&mut self, batch: &Selected<'_>) -> Result<Encoded<'_>, snap::Error> {
        self.proto.clear();
        let (samples, stale) = write_selected(batch, &mut self.proto, &mut self.last);
        self.compress(samples, stale)
    }

    /// A request marking every series of the last batch stale at `timestamp_ms`, for
    /// a clean stop; `None` when there is no last batch.
    pub fn encode_all_stale(
        &mut self,
        timestamp_ms: i64,
    ) -> Option<Result<Encoded<'_>, snap::Error>> {
        if self.last.is_empty() {
            return None;
        }
        self.proto.clear();
        let samples = write_all_stale(&self.last, timestamp_ms, &mut self.proto);
        self.last.forget();
        Some(self.compress(samples, samples))
    }

    fn compress(&mut self, samples: usize, stale: usize) -> Result<Encoded<'_>, snap::Error> {
        let bound = snap::raw::max_compress_len(self.proto.len());
        if bound == 0 {
            return Err(snap::Error::TooBig {
                given: self.proto.len() as u64,
                max: u32::MAX as u64,
            });
        }
        self.compressed.resize(bound, 0);
        let len = self.snappy.compress(&self.proto, &mut self.compressed)?;
        Ok(Encoded {
            body: &self.compressed[..len],
            samples,
            stale,
            raw_len: self.proto.len(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::Kind;
    // The independent prost decoding the tests compare against.
    use sc_agent_testkit::proto::{Message, WriteRequest};

    /// What the decoder should find: per series, its labels and value bits.
    fn expected(batch: &Batch) -> Vec<(Vec<(String, String)>, u64)> {
        batch
            .families()
            .flat_map(|f| f.series())
            .map(|s| {
                let labels = s
                    .labels_with_name()
                    .filter(|(_, v)| !v.is_empty())
                    .map(|(n, v)| (n.to_owned(), v.to_owned()))
                    .collect();
                (labels, s.value().to_bits())
            })
            .collect()
    }

    fn round_trip(batch: &Batch, encoder: &mut Encoder) {
        let encoded = encoder.encode(batch).unwrap();
        let plain = snap::raw::Decoder::new()
            .decompress_vec(encoded.body)
            .unwrap();
        let request = WriteRequest::decode(&plain[..]).unwrap();
        // The batch's series, then a stale marker for each of the last batch's
        // series this one lacks.
        assert_eq!(encoded.samples, batch.len() + encoded.stale);
        let (current, stale) = request.timeseries.split_at(batch.len());
        assert_eq!(stale.len(), encoded.stale);
        for ts in stale {
            assert_eq!(ts.samples.len(), 1);
            assert_eq!(ts.samples[0].value.to_bits(), STALE_NAN);
            assert_eq!(ts.samples[0].timestamp, batch.timestamp_ms());
        }
        let decoded: Vec<_> = current
            .iter()
            .map(|ts| {
                assert_eq!(ts.samples.len(), 1);
                assert_eq!(ts.samples[0].timestamp, batch.timestamp_ms());
                let labels = ts
                    .labels
                    .iter()
                    .map(|l| (l.name.clone(), l.value.clone()))
                    .collect::<Vec<_>>();
                let mut sorted = labels.clone();
                sorted.sort();
                sorted.dedup_by(|a, b| a.0 == b.0);
                assert_eq!(labels, sorted, "labels sorted by name and unique");
                (labels, ts.samples[0].value.to_bits())
            })
            .collect();
        assert_eq!(decoded, expected(batch));
        // prost's own encoding differs only where it leaves out default values (a
        // value of 0, a timestamp of 0), which this encoder always writes.
        assert!(request.encode_to_vec().len() <= plain.len());
    }

    #[test]
    fn prost_decodes_a_hand_made_batch() {
        let mut batch = Batch::new();
        batch.set_common_labels(vec![
            ("vm_id".into(), "4c4c4544-0042".into()),
            ("job".into(), "node".into()),
            ("instance".into(), "héllo \"host\"\n".into()),
        ]);
        batch.begin(1_764_081_453_123);
        batch
            .family("node_load1", "1m load average.", Kind::Gauge)
            .sample(&[], 0.31);
        let mut cpu = batch.family("node_cpu_seconds_total", "Seconds.", Kind::Counter);
        for n in 0..4 {
            for mode in ["idle", "user", "system"] {
                cpu.series()
                    .label("mode", mode)
                    .label("cpu", n)
                    .value(f64::from(n) * 1e9 + 0.5);
            }
        }
        batch
            .family("odd_values", "h", Kind::Untyped)
            .sample(&[("v", "nan")], f64::NAN)
            .sample(&[("v", "inf")], f64::INFINITY)
            .sample(&[("v", "-inf")], f64::NEG_INFINITY)
            .sample(&[("v", "tiny")], f64::MIN_POSITIVE / 4.0)
            .sample(&[("v", "neg"), ("empty", "")], -0.0);
        batch.family("no_series", "h", Kind::Gauge);
        round_trip(&batch, &mut Encoder::new());
    }

    /// xorshift64*: deterministic, so a failure is reproducible from the seed.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
        fn text(&mut self, max_len: u64) -> String {
            const CHARS: [char; 12] = [
                'a', 'z', '_', '0', '9', ' ', '"', '\\', 'é', '🦀', '\n', '=',
            ];
            (0..self.below(max_len + 1))
                .map(|_| CHARS[self.below(CHARS.len() as u64) as usize])
                .collect()
        }
        fn name(&mut self) -> String {
            format!(
                "l{}_{}",
                self.below(20),
                self.text(3)
                    .replace(|c: char| !c.is_ascii_alphanumeric(), "x")
            )
        }
    }

    #[test]
    fn prost_decodes_random_batches() {
        let mut rng = Rng(0x5eed_1234_abcd_ef01);
        let mut encoder = Encoder::new();
        let mut batch = Batch::new();
        for round in 0..200 {
            let common = (0..rng.below(4))
                .map(|_| (rng.name(), rng.text(8)))
                .collect();
            batch.set_common_labels(common);
            // Timestamps of every size, negative ones (ten-byte varints) included.
            let timestamp = match round % 4 {
                0 => rng.next() as i64,
                1 => -(rng.below(1 << 40) as i64),
                2 => rng.below(128) as i64,
                _ => 1_700_000_000_000 + rng.below(1 << 30) as i64,
            };
            batch.begin(timestamp);
            for f in 0..rng.below(6) {
                let mut family =
                    batch.family(format_args!("metric_{f}_{round}"), "help", Kind::Gauge);
                for _ in 0..rng.below(30) {
                    let mut series = family.series();
                    for _ in 0..rng.below(5) {
                        let name = rng.name();
                        // Long values make multi-byte length varints.
                        let value = if rng.below(10) == 0 {
                            "v".repeat(200)
                        } else {
                            rng.text(10)
                        };
                        series = series.label(&name, value);
                    }
                    series.value(f64::from_bits(rng.next()));
                }
            }
            // A batch's own labels must be unique; skip the rare random clash.
            let unique = batch.families().flat_map(|f| f.series()).all(|s| {
                let names: Vec<_> = s.labels_with_name().map(|(n, _)| n).collect();
                names.windows(2).all(|w| w[0] != w[1])
            });
            if unique {
                round_trip(&batch, &mut encoder);
            }
        }
    }

    #[test]
    fn varints_match_the_protobuf_encoding() {
        let cases: [(u64, &[u8]); 8] = [
            (0, &[0x00]),
            (1, &[0x01]),
            (127, &[0x7f]),
            (128, &[0x80, 0x01]),
            (300, &[0xac, 0x02]),
            (16_383, &[0xff, 0x7f]),
            (16_384, &[0x80, 0x80, 0x01]),
            (
                u64::MAX,
                &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
            ),
        ];
        for (value, bytes) in cases {
            let mut out = Vec::new();
            put_varint(&mut out, value);
            assert_eq!(out, bytes, "{value}");
            assert_eq!(varint_len(value), bytes.len(), "{value}");
        }
        // A negative int64 takes the full ten bytes.
        assert_eq!(varint_len(-1i64 as u64), 10);
        for shift in 0..64 {
            let value = 1u64 << shift;
            let mut out = Vec::new();
            put_varint(&mut out, value);
            assert_eq!(varint_len(value), out.len(), "1 << {shift}");
        }
    }

    #[test]
    fn writes_one_series_exactly() {
        let mut batch = Batch::new();
        batch.set_common_labels(vec![("job".into(), "n".into())]);
        batch.begin(1);
        batch.family("up", "h", Kind::Gauge).sample(&[], 1.0);
        let mut out = Vec::new();
        assert_eq!(
            write_request(&batch, &mut out, &mut LastSeries::default()),
            (1, 0)
        );
        let mut expected = vec![TAG_TIMESERIES, 39];
        expected.extend([TAG_LABEL, 14, TAG_LABEL_NAME, 8]);
        expected.extend(b"__name__");
        expected.extend([TAG_LABEL_VALUE, 2]);
        expected.extend(b"up");
        expected.extend([TAG_LABEL, 8, TAG_LABEL_NAME, 3]);
        expected.extend(b"job");
        expected.extend([TAG_LABEL_VALUE, 1, b'n']);
        expected.extend([TAG_SAMPLE, 11, TAG_SAMPLE_VALUE]);
        expected.extend(1.0f64.to_le_bytes());
        expected.extend([TAG_SAMPLE_TIMESTAMP, 1]);
        assert_eq!(out, expected);
    }

    #[test]
    fn empty_label_values_are_left_out() {
        let mut batch = Batch::new();
        batch.begin(5);
        batch
            .family("m", "h", Kind::Gauge)
            .sample(&[("empty", ""), ("kept", "x")], 2.0);
        let mut out = Vec::new();
        write_request(&batch, &mut out, &mut LastSeries::default());
        assert!(!out.windows(5).any(|w| w == b"empty"));
        assert!(out.windows(4).any(|w| w == b"kept"));
    }

    #[test]
    fn compressed_body_is_a_snappy_block() {
        let mut batch = Batch::new();
        batch.begin(1_700_000_000_000);
        let mut family = batch.family("node_cpu_seconds_total", "h", Kind::Counter);
        for cpu in 0..64 {
            family
                .series()
                .label("cpu", cpu)
                .label("mode", "idle")
                .value(1.5);
        }
        let mut encoder = Encoder::new();
        let encoded = encoder.encode(&batch).unwrap();
        assert_eq!(encoded.samples, 64);
        let body = encoded.body.to_vec();
        let raw_len = encoded.raw_len;
        assert!(body.len() < raw_len / 2, "{} vs {raw_len}", body.len());
        let plain = snap::raw::Decoder::new().decompress_vec(&body).unwrap();
        let mut direct = Vec::new();
        write_request(&batch, &mut direct, &mut LastSeries::default());
        assert_eq!(plain, direct);
        // The buffers are reused: a second encode of the same batch is identical.
        assert_eq!(encoder.encode(&batch).unwrap().body, &body[..]);
    }

    /// The decoded request of `encoded`.
    fn decode(encoded: &Encoded<'_>) -> WriteRequest {
        let plain = snap::raw::Decoder::new()
            .decompress_vec(encoded.body)
            .unwrap();
        WriteRequest::decode(&plain[..]).unwrap()
    }

    /// `(labels, value bits, timestamp)` of every sample of a request.
    fn samples(request: &WriteRequest) -> Vec<(String, u64, i64)> {
        request
            .timeseries
            .iter()
            .flat_map(|series| {
                let labels: Vec<String> = series
                    .labels
                    .iter()
                    .map(|l| format!("{}={}", l.name, l.value))
                    .collect();
                let labels = labels.join(",");
                series
                    .samples
                    .iter()
                    .map(move |s| (labels.clone(), s.value.to_bits(), s.timestamp))
            })
            .collect()
    }

    fn interfaces(batch: &mut Batch, timestamp: i64, devices: &[&str]) {
        batch.begin(timestamp);
        let mut family = batch.family("node_network_up", "h", Kind::Gauge);
        for device in devices {
            family.series().label("device", device).value(1.0);
        }
    }

    #[test]
    fn a_series_gone_since_the_last_request_gets_one_stale_marker() {
        let (mut batch, mut encoder) = (Batch::new(), Encoder::new());
        interfaces(&mut batch, 1_000, &["eth0", "eth1", "veth9"]);
        let first = encoder.encode(&batch).unwrap();
        assert_eq!((first.samples, first.stale), (3, 0));
        interfaces(&mut batch, 2_000, &["eth0", "eth1"]);
        let second = encoder.encode(&batch).unwrap();
        assert_eq!((second.samples, second.stale), (3, 1));
        let sent = samples(&decode(&second));
        assert_eq!(
            sent,
            [
                (
                    "__name__=node_network_up,device=eth0".to_owned(),
                    1.0f64.to_bits(),
                    2_000
                ),
                (
                    "__name__=node_network_up,device=eth1".to_owned(),
                    1.0f64.to_bits(),
                    2_000
                ),
                (
                    "__name__=node_network_up,device=veth9".to_owned(),
                    STALE_NAN,
                    2_000
                ),
            ]
        );
        // Once: the next request has no marker for it.
        interfaces(&mut batch, 3_000, &["eth0", "eth1"]);
        assert_eq!(encoder.encode(&batch).unwrap().stale, 0);
        // A value that is NaN is not a stale marker.
        assert_ne!(f64::NAN.to_bits(), STALE_NAN);
    }

    #[test]
    fn a_clean_stop_marks_every_series_of_the_last_request_stale() {
        let (mut batch, mut encoder) = (Batch::new(), Encoder::new());
        assert!(encoder.encode_all_stale(5).is_none(), "nothing sent yet");
        interfaces(&mut batch, 1_000, &["eth0", "lo"]);
        encoder.encode(&batch).unwrap();
        let stop = encoder.encode_all_stale(1_500).unwrap().unwrap();
        assert_eq!((stop.samples, stop.stale), (2, 2));
        let sent = samples(&decode(&stop));
        assert!(
            sent.iter().all(|(_, v, t)| *v == STALE_NAN && *t == 1_500),
            "{sent:?}"
        );
        assert_eq!(sent.len(), 2);
        assert!(encoder.encode_all_stale(2_000).is_none(), "marked once");
    }
}

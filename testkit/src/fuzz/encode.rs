//! The remote write encoder: an arbitrary batch, encoded and snappy-compressed, then
//! decoded independently (snappy + prost), must give back every series: labels sorted
//! by name and unique, `__name__` among them, values bit for bit, and the cycle's one
//! timestamp on every sample. The text writer must not panic on the same batch.

use crate::proto;

use sc_agent::batch::{Batch, Kind};
use sc_agent::output::text;
use sc_agent::remote_write::encode::Encoder;

/// Reads the fuzzer's bytes as a sequence of choices; zeros once they run out.
struct Choices<'a>(&'a [u8]);

impl Choices<'_> {
    fn byte(&mut self) -> u8 {
        let (first, rest) = self.0.split_first().unwrap_or((&0, &[]));
        self.0 = rest;
        *first
    }

    fn bytes(&mut self, n: usize) -> &[u8] {
        let n = n.min(self.0.len());
        let (taken, rest) = self.0.split_at(n);
        self.0 = rest;
        taken
    }

    fn text(&mut self, max: u8) -> String {
        let len = usize::from(self.byte() % max.max(1));
        String::from_utf8_lossy(self.bytes(len)).into_owned()
    }

    fn u64(&mut self) -> u64 {
        let mut raw = [0u8; 8];
        let bytes = self.bytes(8);
        raw[..bytes.len()].copy_from_slice(bytes);
        u64::from_le_bytes(raw)
    }
}

const COMMON: [&str; 4] = ["env", "instance", "job", "vm_id"];

fn batch_from(choices: &mut Choices<'_>) -> Batch {
    let mut batch = Batch::new();
    let common = (0..choices.byte() % 5)
        .map(|i| (COMMON[usize::from(i)].to_owned(), choices.text(16)))
        .collect();
    batch.set_common_labels(common);
    batch.begin(choices.u64() as i64);
    for _ in 0..choices.byte() % 8 {
        let name = choices.text(24);
        let help = choices.text(24);
        let kind = [Kind::Counter, Kind::Gauge, Kind::Untyped][usize::from(choices.byte() % 3)];
        let mut family = batch.family(&name, &help, kind);
        for _ in 0..choices.byte() % 6 {
            let mut names: Vec<String> = Vec::new();
            let mut labels = Vec::new();
            for _ in 0..choices.byte() % 4 {
                let label = choices.text(8);
                let value = choices.text(12);
                // A series' own label names are unique, and never `__name__`: the
                // collectors guarantee it, the batch relies on it.
                if label != "__name__" && !names.contains(&label) {
                    names.push(label.clone());
                    labels.push((label, value));
                }
            }
            let value = f64::from_bits(choices.u64());
            let mut series = family.series();
            for (label, label_value) in &labels {
                series = series.label(label, label_value);
            }
            series.value(value);
        }
    }
    batch
}

/// Per series: the labels the encoder must write (empty values are left out, as
/// Prometheus treats them as absent) and the value's bits.
fn expected(batch: &Batch) -> Vec<(Vec<(String, String)>, u64)> {
    batch
        .families()
        .flat_map(|family| family.series())
        .map(|series| {
            let labels = series
                .labels_with_name()
                .filter(|(_, value)| !value.is_empty())
                .map(|(name, value)| (name.to_owned(), value.to_owned()))
                .collect();
            (labels, series.value().to_bits())
        })
        .collect()
}

pub fn run(data: &[u8]) {
    let batch = batch_from(&mut Choices(data));
    let mut encoder = Encoder::new();
    let encoded = encoder
        .encode(&batch)
        .expect("a cycle's batch always encodes");
    assert_eq!(encoded.samples, batch.len());
    let request = proto::decode(encoded.body).expect("the encoder's output decodes");
    let decoded: Vec<_> = request
        .timeseries
        .iter()
        .map(|ts| {
            assert_eq!(ts.samples.len(), 1, "one sample per series");
            assert_eq!(
                ts.samples[0].timestamp,
                batch.timestamp_ms(),
                "the cycle's timestamp"
            );
            let labels: Vec<(String, String)> = ts
                .labels
                .iter()
                .map(|l| (l.name.clone(), l.value.clone()))
                .collect();
            assert!(
                labels.windows(2).all(|pair| pair[0].0 < pair[1].0),
                "labels sorted by name and unique: {labels:?}"
            );
            (labels, ts.samples[0].value.to_bits())
        })
        .collect();
    assert_eq!(decoded, expected(&batch));
    let mut exposition = Vec::new();
    text::write(&batch, &mut exposition);
}

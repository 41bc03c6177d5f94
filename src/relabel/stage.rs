//! The relabel stage of a cycle: between the finished batch and its writers (remote
//! write and stdout), it decides what is sent of each series, and [`Selected`] is the
//! batch as the writers then read it.
//!
//! For each series, in batch order:
//!
//! 1. the rules ([`Relabeler`], cached per series): dropped, invalid (no valid
//!    `__name__` left), unchanged, or relabeled;
//! 2. the duplicate check: a series whose labels, after relabeling, are those of a
//!    series already sent this cycle is left out (a receiver refuses the whole
//!    request for a repeated series), counted as `duplicate`. Label sets are
//!    compared by their 64-bit fingerprints ([`super::Applied::fingerprint`]): a
//!    collision (one pair in 2^64, not craftable without the per-process key)
//!    would leave one series out as a repeat, as the batch's own repeat check does;
//! 3. the series limit ([`SeriesLimit`], `remote_write.max_series`): a series never
//!    seen before with no place left is left out, counted as `limit`. The agent's
//!    own `sc_agent_*` series are never held to it.
//!
//! The stage sits before both writers, so that stdout shows exactly what a push
//! would send, and the encoder's stale markers are made from the labels actually
//! sent. With no rules and no limit it is skipped: the writers read the batch as it
//! is, at no cost.
//!
//! A steady cycle allocates nothing: the decisions, the set of fingerprints sent
//! and the text of series relabeled without being cached are buffers kept from
//! cycle to cycle.

use super::cache::{Limits, Outcome, Prehashed, Relabeler};
use super::limit::SeriesLimit;
use super::Labels;
use crate::batch::{self, Batch, FamilyRef, Kind, SeriesRef, NAME_LABEL};
use crate::config::RemoteWriteConfig;
use crate::remote_write::metrics::PREFIX;
use std::collections::HashSet;
use std::hash::BuildHasherDefault;

/// Series left out, by reason, since the start: `sc_agent_series_dropped_total`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SeriesDropped {
    /// New series past `remote_write.max_series`.
    pub limit: u64,
    /// Series whose labels after relabeling repeat an earlier series' of the batch.
    pub duplicate: u64,
    /// Series the rules left without a valid `__name__`.
    pub invalid: u64,
}

/// What is sent of the series at one position.
#[derive(Clone, Copy, Debug)]
enum Decision {
    Skip,
    /// Its own labels.
    Send,
    /// The relabeled labels of the relabeler's entry.
    Cached(u32),
    /// Relabeled labels copied this cycle: their label ends in `overflow_ends`,
    /// text from `start` in `overflow_text`.
    Copied {
        start: u32,
        ends: (u32, u32),
    },
}

/// One reason's log episode: a warning when series start being left out, one line
/// when a cycle leaves none out again.
#[derive(Debug, Default)]
struct Episode {
    /// Series left out since the episode began; 0 when none is going on.
    left_out: u64,
}

impl Episode {
    fn note(&mut self, now: u64, start: impl FnOnce() -> String, what: &str) {
        match (now, self.left_out) {
            (0, 0) => {}
            (0, total) => {
                log::info!("{what}: no series left out this cycle, after {total} since it began");
                self.left_out = 0;
            }
            (now, 0) => {
                log::warn!("{}", start());
                self.left_out = now;
            }
            (now, _) => self.left_out += now,
        }
    }
}

/// The relabel rules, the duplicate check and the series limit, with what they
/// keep from cycle to cycle.
pub struct Stage {
    relabeler: Relabeler,
    limit: Option<SeriesLimit>,
    /// Fingerprints sent this cycle.
    sent: HashSet<u64, BuildHasherDefault<Prehashed>>,
    decisions: Vec<Decision>,
    overflow_text: String,
    overflow_ends: Vec<usize>,
    dropped: SeriesDropped,
    limit_episode: Episode,
    duplicate_episode: Episode,
}

impl Stage {
    pub fn new(config: &RemoteWriteConfig) -> Self {
        Stage::with_limits(config, Limits::default())
    }

    /// A stage whose cache of outcomes keeps what `limits` says.
    pub fn with_limits(config: &RemoteWriteConfig, limits: Limits) -> Self {
        Stage {
            relabeler: Relabeler::with_limits(config.write_relabel_configs.clone(), limits),
            limit: config.max_series.map(SeriesLimit::new),
            sent: HashSet::default(),
            decisions: Vec::new(),
            overflow_text: String::new(),
            overflow_ends: Vec::new(),
            dropped: SeriesDropped::default(),
            limit_episode: Episode::default(),
            duplicate_episode: Episode::default(),
        }
    }

    /// Takes a reloaded config: new rules forget the cached outcomes (the same rules
    /// keep them); a new limit keeps the known series (see [`SeriesLimit::set_max`]).
    pub fn configure(&mut self, config: &RemoteWriteConfig) {
        self.relabeler
            .set_rules(config.write_relabel_configs.clone());
        match (&mut self.limit, config.max_series) {
            (Some(limit), Some(max)) => limit.set_max(max),
            (limit, max) => *limit = max.map(SeriesLimit::new),
        }
    }

    /// Whether the stage does anything: rules or a limit.
    pub fn is_active(&self) -> bool {
        !self.relabeler.rules().is_empty() || self.limit.is_some()
    }

    /// The series left out so far.
    pub fn dropped(&self) -> SeriesDropped {
        self.dropped
    }

    /// Decides what is sent of each series of `batch`, and gives the batch as the
    /// writers read it.
    pub fn select<'a>(&'a mut self, batch: &'a Batch) -> Selected<'a> {
        if !self.is_active() {
            return Selected::all(batch);
        }
        let Stage {
            relabeler,
            limit,
            sent,
            decisions,
            overflow_text,
            overflow_ends,
            dropped,
            ..
        } = self;
        // The previous cycle ends here, not after it was decided: the writers read the
        // relabeled labels from the relabeler's entries until then.
        relabeler.end_cycle();
        if let Some(limit) = limit.as_mut() {
            limit.end_cycle();
        }
        relabeler.begin(batch);
        sent.clear();
        decisions.clear();
        overflow_text.clear();
        overflow_ends.clear();
        let (mut limited, mut repeated) = (0, 0);
        for family in batch.families() {
            let own = family.name().starts_with(PREFIX);
            for (position, series) in family.positions().zip(family.series()) {
                let applied = relabeler.apply(position, &series);
                let fingerprint = applied.fingerprint;
                let decision = match applied.outcome {
                    Outcome::Dropped => Decision::Skip,
                    Outcome::Invalid => {
                        dropped.invalid += 1;
                        Decision::Skip
                    }
                    _ if !sent.insert(fingerprint) => {
                        repeated += 1;
                        Decision::Skip
                    }
                    _ if !own && limit.as_mut().is_some_and(|l| !l.admit(fingerprint)) => {
                        limited += 1;
                        Decision::Skip
                    }
                    Outcome::Unchanged => Decision::Send,
                    Outcome::Relabeled(labels) => match applied.entry {
                        Some(at) => Decision::Cached(at),
                        None => copy(labels, overflow_text, overflow_ends),
                    },
                };
                decisions.push(decision);
            }
        }
        dropped.limit += limited;
        dropped.duplicate += repeated;
        let max = limit.as_ref().map_or(0, SeriesLimit::max);
        self.limit_episode.note(
            limited,
            || {
                format!(
                    "remote_write.max_series: {max} series are known; {limited} new series \
                     left out of this batch, and new ones will be until known ones go \
                     (counted in sc_agent_series_dropped_total{{reason=\"limit\"}})"
                )
            },
            "remote_write.max_series",
        );
        self.duplicate_episode.note(
            repeated,
            || {
                format!(
                    "write_relabel_configs: {repeated} series of this batch have the labels \
                     of an earlier one after relabeling; only the first is sent (counted in \
                     sc_agent_series_dropped_total{{reason=\"duplicate\"}})"
                )
            },
            "write_relabel_configs duplicates",
        );
        Selected {
            batch,
            plan: Some(Plan {
                decisions: &self.decisions,
                relabeler: &self.relabeler,
                text: &self.overflow_text,
                ends: &self.overflow_ends,
            }),
        }
    }
}

/// Copies labels relabeled without being cached into this cycle's overflow.
fn copy(labels: Labels<'_>, text: &mut String, ends: &mut Vec<usize>) -> Decision {
    let (start, first) = (text.len(), ends.len());
    for (name, value) in labels {
        text.push_str(name);
        ends.push(text.len());
        text.push_str(value);
        ends.push(text.len());
    }
    let fits = |n: usize| u32::try_from(n).ok();
    match (fits(start), fits(first), fits(ends.len())) {
        (Some(start), Some(first), Some(last)) => Decision::Copied {
            start,
            ends: (first, last),
        },
        // Past 4 GiB of relabeled text in one cycle, more than a batch (whose own
        // offsets are 32-bit) can hold the labels of.
        _ => Decision::Skip,
    }
}

/// What the stage decided, borrowed.
#[derive(Clone, Copy)]
struct Plan<'a> {
    decisions: &'a [Decision],
    relabeler: &'a Relabeler,
    text: &'a str,
    ends: &'a [usize],
}

impl<'a> Plan<'a> {
    /// The labels to send for the series at `position`; `None` to leave it out.
    fn labels(&self, position: usize, series: &SeriesRef<'a>) -> Option<SentLabels<'a>> {
        match self.decisions.get(position)? {
            Decision::Skip => None,
            Decision::Send => Some(SentLabels::Own(series.labels_with_name())),
            Decision::Cached(at) => self.relabeler.relabeled(*at).map(SentLabels::Relabeled),
            Decision::Copied { start, ends } => {
                let ends = self.ends.get(ends.0 as usize..ends.1 as usize)?;
                Some(SentLabels::Relabeled(Labels::new(
                    self.text,
                    ends,
                    *start as usize,
                )))
            }
        }
    }
}

/// A batch as its writers read it: every series, or what the stage decided.
#[derive(Clone, Copy)]
pub struct Selected<'a> {
    batch: &'a Batch,
    plan: Option<Plan<'a>>,
}

impl<'a> Selected<'a> {
    /// Every series of `batch`, with its own labels.
    pub fn all(batch: &'a Batch) -> Self {
        Selected { batch, plan: None }
    }

    pub fn timestamp_ms(&self) -> i64 {
        self.batch.timestamp_ms()
    }

    /// The families in batch order (also those with nothing to send).
    pub fn families(&self) -> impl Iterator<Item = SelectedFamily<'a>> + 'a {
        let plan = self.plan;
        self.batch
            .families()
            .map(move |family| SelectedFamily { family, plan })
    }
}

/// A family and what is sent of its series.
#[derive(Clone, Copy)]
pub struct SelectedFamily<'a> {
    family: FamilyRef<'a>,
    plan: Option<Plan<'a>>,
}

impl<'a> SelectedFamily<'a> {
    pub fn name(&self) -> &'a str {
        self.family.name()
    }

    pub fn help(&self) -> &'a str {
        self.family.help()
    }

    pub fn kind(&self) -> Kind {
        self.family.kind()
    }

    /// The series sent, in order.
    pub fn series(&self) -> impl Iterator<Item = Sent<'a>> + 'a {
        let plan = self.plan;
        self.family
            .positions()
            .zip(self.family.series())
            .filter_map(move |(position, series)| {
                let labels = match &plan {
                    None => SentLabels::Own(series.labels_with_name()),
                    Some(plan) => plan.labels(position, &series)?,
                };
                Some(Sent { series, labels })
            })
    }

    /// Whether none of its series is sent.
    pub fn is_empty(&self) -> bool {
        self.series().next().is_none()
    }
}

/// One series as it is sent.
#[derive(Clone)]
pub struct Sent<'a> {
    series: SeriesRef<'a>,
    labels: SentLabels<'a>,
}

impl<'a> Sent<'a> {
    pub fn value(&self) -> f64 {
        self.series.value()
    }

    /// Every label, `__name__` included, sorted by name (empty values may be among
    /// them, as the batch holds them).
    pub fn labels_with_name(&self) -> SentLabels<'a> {
        self.labels.clone()
    }

    /// The metric name: `__name__` as sent.
    pub fn name(&self) -> &'a str {
        match &self.labels {
            SentLabels::Own(_) => self.series.name(),
            SentLabels::Relabeled(labels) => labels
                .clone()
                .find(|(name, _)| *name == NAME_LABEL)
                .map_or("", |(_, value)| value),
        }
    }

    /// The labels without `__name__`, sorted by name.
    pub fn labels(&self) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        self.labels.clone().filter(|(name, _)| *name != NAME_LABEL)
    }
}

/// The labels of a series as sent: its own, or relabeled.
#[derive(Clone)]
pub enum SentLabels<'a> {
    Own(batch::Labels<'a>),
    Relabeled(Labels<'a>),
}

impl<'a> Iterator for SentLabels<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            SentLabels::Own(labels) => labels.next(),
            SentLabels::Relabeled(labels) => labels.next(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::relabel::FORGET_AFTER_CYCLES;
    use crate::remote_write::encode::Encoder;
    use crate::remote_write::stale::STALE_NAN;
    use sc_agent_testkit::proto::{Message, WriteRequest};

    fn config(rules: &str, max_series: Option<usize>) -> RemoteWriteConfig {
        RemoteWriteConfig {
            write_relabel_configs: serde_yaml::from_str(rules).unwrap(),
            max_series,
            ..RemoteWriteConfig::default()
        }
    }

    /// A batch with `job="node"` on every series: `node_network_up` per device, and
    /// the agent's own `sc_agent_build_info`.
    fn batch(devices: &[&str]) -> Batch {
        let mut batch = Batch::new();
        batch.set_common_labels(vec![("job".into(), "node".into())]);
        batch.begin(1_000);
        let mut family = batch.family("node_network_up", "Up.", Kind::Gauge);
        for device in devices {
            family.sample(&[("device", device)], 1.0);
        }
        batch
            .family("sc_agent_build_info", "Build.", Kind::Gauge)
            .sample(&[("version", "1")], 1.0);
        batch
    }

    /// What is sent, one `name{labels}` string per series.
    fn sent(selected: &Selected<'_>) -> Vec<String> {
        selected
            .families()
            .flat_map(|f| f.series().collect::<Vec<_>>())
            .map(|s| {
                let labels: Vec<String> = s.labels().map(|(n, v)| format!("{n}={v}")).collect();
                format!("{}{{{}}}", s.name(), labels.join(","))
            })
            .collect()
    }

    #[test]
    fn without_rules_or_limit_everything_passes_as_it_is() {
        let mut stage = Stage::new(&RemoteWriteConfig::default());
        assert!(!stage.is_active());
        let batch = batch(&["eth0", "lo"]);
        assert_eq!(
            sent(&stage.select(&batch)),
            [
                "node_network_up{device=eth0,job=node}",
                "node_network_up{device=lo,job=node}",
                "sc_agent_build_info{job=node,version=1}",
            ]
        );
    }

    #[test]
    fn series_equal_after_relabeling_are_sent_once_and_counted() {
        let mut stage = Stage::new(&config(
            "- {source_labels: [device], regex: 'eth.*', target_label: device, replacement: eth}",
            None,
        ));
        let batch = batch(&["eth0", "lo", "eth1", "eth2"]);
        for round in 1..=2 {
            assert_eq!(
                sent(&stage.select(&batch)),
                [
                    "node_network_up{device=eth,job=node}",
                    "node_network_up{device=lo,job=node}",
                    "sc_agent_build_info{job=node,version=1}",
                ]
            );
            assert_eq!(stage.dropped().duplicate, 2 * round, "once per batch");
        }
        assert_eq!((stage.dropped().limit, stage.dropped().invalid), (0, 0));
    }

    #[test]
    fn series_relabeled_past_the_cache_are_sent_as_relabeled() {
        // A cache of one: the other series are relabeled each cycle and their labels
        // copied for the writers.
        let limits = Limits {
            max_idle_cycles: 10,
            max_series: 1,
        };
        let rules =
            "- {source_labels: [device], target_label: nic}\n- {regex: device, action: labeldrop}";
        let mut stage = Stage::with_limits(&config(rules, None), limits);
        let batch = batch(&["eth0", "eth1", "eth2"]);
        for _ in 0..2 {
            assert_eq!(
                sent(&stage.select(&batch)),
                [
                    "node_network_up{job=node,nic=eth0}",
                    "node_network_up{job=node,nic=eth1}",
                    "node_network_up{job=node,nic=eth2}",
                    "sc_agent_build_info{job=node,version=1}",
                ]
            );
        }
        assert_eq!(stage.relabeler.len(), 1);
    }

    #[test]
    fn series_without_a_name_are_left_out_and_counted() {
        let mut stage = Stage::new(&config(
            "- {source_labels: [device], regex: lo, target_label: __name__, replacement: ''}",
            None,
        ));
        let batch = batch(&["eth0", "lo"]);
        assert_eq!(sent(&stage.select(&batch)).len(), 2);
        assert_eq!(stage.dropped().invalid, 1);
    }

    #[test]
    fn past_the_limit_new_series_wait_and_known_ones_flow() {
        let mut stage = Stage::new(&config("", Some(2)));
        assert!(stage.is_active());
        let first = batch(&["eth0", "eth1"]);
        assert_eq!(sent(&stage.select(&first)).len(), 3);
        // Two more interfaces: no place for them; the agent's own series is not held
        // to the limit.
        let more = batch(&["eth0", "eth1", "eth2", "eth3"]);
        assert_eq!(
            sent(&stage.select(&more)),
            [
                "node_network_up{device=eth0,job=node}",
                "node_network_up{device=eth1,job=node}",
                "sc_agent_build_info{job=node,version=1}",
            ]
        );
        assert_eq!(stage.dropped().limit, 2);
        // eth0 and eth1 go; their places free once they have been missing long
        // enough, and only then.
        let later = batch(&["eth2", "eth3"]);
        for _ in 0..FORGET_AFTER_CYCLES {
            assert_eq!(sent(&stage.select(&later)).len(), 1);
        }
        assert_eq!(sent(&stage.select(&later)).len(), 3);
        assert_eq!(
            stage.dropped().limit,
            2 + 2 * u64::from(FORGET_AFTER_CYCLES)
        );
    }

    #[test]
    fn the_limit_counts_series_after_relabeling() {
        // Rules that make every interface one series leave room for the rest.
        let mut stage = Stage::new(&config("- {regex: device, action: labeldrop}", Some(1)));
        let batch = batch(&["eth0", "eth1", "eth2"]);
        assert_eq!(
            sent(&stage.select(&batch)),
            [
                "node_network_up{job=node}",
                "sc_agent_build_info{job=node,version=1}"
            ]
        );
        assert_eq!(
            stage.dropped(),
            SeriesDropped {
                limit: 0,
                duplicate: 2,
                invalid: 0
            }
        );
    }

    #[test]
    fn stdout_writes_what_is_sent() {
        let mut stage = Stage::new(&config(
            "
- {source_labels: [device], regex: lo, action: drop}
- {source_labels: [__name__], regex: 'node_network_(.*)', target_label: __name__, replacement: 'nic_$1'}
- {source_labels: [__name__], regex: 'sc_agent_.*', action: drop}",
            None,
        ));
        let batch = batch(&["eth0", "lo"]);
        let mut out = Vec::new();
        crate::output::text::write_selected(&stage.select(&batch), &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "# HELP node_network_up Up.\n# TYPE node_network_up gauge\n\
             nic_up{device=\"eth0\",job=\"node\"} 1\n",
            "a renamed series stays in its family's block; an empty family is left out"
        );
    }

    /// The label sets and values of a request, as `a=b,c=d value`.
    fn request(body: &[u8]) -> Vec<String> {
        let plain = snap::raw::Decoder::new().decompress_vec(body).unwrap();
        WriteRequest::decode(&plain[..])
            .unwrap()
            .timeseries
            .iter()
            .map(|ts| {
                let labels: Vec<String> = ts
                    .labels
                    .iter()
                    .map(|l| format!("{}={}", l.name, l.value))
                    .collect();
                let value = ts.samples[0].value;
                let value = if value.to_bits() == STALE_NAN {
                    "stale".to_owned()
                } else {
                    value.to_string()
                };
                format!("{} {value}", labels.join(","))
            })
            .collect()
    }

    #[test]
    fn stale_markers_carry_the_labels_that_were_sent() {
        let mut stage = Stage::new(&config(
            "
- {source_labels: [device], target_label: nic}
- {regex: 'device|job', action: labeldrop}
- {source_labels: [__name__], regex: 'sc_agent_.*', action: drop}",
            None,
        ));
        let mut encoder = Encoder::new();
        let first = batch(&["eth0", "eth1"]);
        let body = encoder
            .encode_selected(&stage.select(&first))
            .unwrap()
            .body
            .to_vec();
        assert_eq!(
            request(&body),
            [
                "__name__=node_network_up,nic=eth0 1",
                "__name__=node_network_up,nic=eth1 1"
            ]
        );
        let second = batch(&["eth0"]);
        let body = encoder
            .encode_selected(&stage.select(&second))
            .unwrap()
            .body
            .to_vec();
        assert_eq!(
            request(&body),
            [
                "__name__=node_network_up,nic=eth0 1",
                "__name__=node_network_up,nic=eth1 stale"
            ]
        );
    }

    #[test]
    fn a_reload_applies_new_rules_and_a_new_limit() {
        let mut stage = Stage::new(&config(
            "- {source_labels: [device], regex: lo, action: drop}",
            None,
        ));
        let batch = batch(&["eth0", "lo"]);
        assert_eq!(sent(&stage.select(&batch)).len(), 2);
        stage.configure(&config(
            "- {source_labels: [device], regex: eth0, action: drop}",
            Some(1),
        ));
        assert_eq!(
            sent(&stage.select(&batch)),
            [
                "node_network_up{device=lo,job=node}",
                "sc_agent_build_info{job=node,version=1}"
            ]
        );
        stage.configure(&RemoteWriteConfig::default());
        assert!(!stage.is_active());
        assert_eq!(sent(&stage.select(&batch)).len(), 3);
    }
}

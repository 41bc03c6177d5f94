//! A reading of the Prometheus text format for tests: what node_exporter and the
//! agent print, parsed into samples and the HELP/TYPE of each family. Deliberately
//! simple and strict (it panics on what it does not understand): an independent
//! reading of the agent's output, not the agent's own parser.

/// One parsed exposition: series and the HELP/TYPE of each family.
#[derive(Debug, Default)]
pub struct Exposition {
    pub samples: Vec<Sample>,
    pub help: std::collections::BTreeMap<String, String>,
    pub kind: std::collections::BTreeMap<String, String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: std::collections::BTreeMap<String, String>,
    pub value: f64,
}

impl Exposition {
    /// Parses Prometheus text format 0.0.4 (the subset node_exporter and sc-agent
    /// write: no timestamps, label values escaped with `\\`, `\"`, `\n`).
    pub fn parse(text: &str) -> Exposition {
        let mut exposition = Exposition::default();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
                exposition.help.insert(name.into(), help.into());
            } else if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').expect("TYPE line");
                exposition.kind.insert(name.into(), kind.into());
            } else if !line.starts_with('#') && !line.trim().is_empty() {
                exposition.samples.push(parse_sample(line));
            }
        }
        exposition
    }

    pub fn find(&self, name: &str) -> impl Iterator<Item = &Sample> {
        let name = name.to_owned();
        self.samples.iter().filter(move |s| s.name == name)
    }

    /// The value of the one series named `name` whose labels include `labels`.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.find(name)
            .find(|s| {
                labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|s| s.value)
    }
}

fn parse_sample(line: &str) -> Sample {
    let (series, value) = line.rsplit_once(' ').expect("sample line");
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v
            .parse()
            .unwrap_or_else(|_| panic!("bad value in {line:?}")),
    };
    let Some((name, rest)) = series.split_once('{') else {
        return Sample {
            name: series.into(),
            labels: Default::default(),
            value,
        };
    };
    let mut labels = std::collections::BTreeMap::new();
    let mut chars = rest.trim_end_matches('}').chars().peekable();
    loop {
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.is_empty() {
            break;
        }
        assert_eq!(chars.next(), Some('"'), "in {line:?}");
        let mut label_value = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some('n') => label_value.push('\n'),
                    Some(other) => label_value.push(other),
                    None => break,
                },
                '"' => break,
                c => label_value.push(c),
            }
        }
        labels.insert(key.trim_start_matches(',').to_owned(), label_value);
        if chars.peek() == Some(&',') {
            chars.next();
        }
    }
    Sample {
        name: name.into(),
        labels,
        value,
    }
}

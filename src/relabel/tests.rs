//! Prometheus' own relabel tests (`model/relabel/relabel_test.go`), as a table: the
//! inputs, rules and expected outputs are Prometheus'; the rules are written in YAML,
//! as a config would have them. Then the load-time checks and their messages.

use super::*;

/// A label set from `(name, value)` pairs, sorted as `labels.FromMap` sorts them.
fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut out: Vec<_> = pairs
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    out.sort();
    out
}

/// Parses a YAML list of rules.
fn rules(yaml: &str) -> Rules {
    serde_yaml::from_str(yaml).unwrap_or_else(|e| panic!("{yaml}\n{e}"))
}

fn run(rules: &Rules, input: &[(&str, &str)]) -> Option<Vec<(String, String)>> {
    let input = labels(input);
    let borrowed: Vec<(&str, &str)> = input
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    rules.process(&borrowed)
}

struct Case {
    input: &'static [(&'static str, &'static str)],
    rules: &'static str,
    /// `None`: the series is dropped.
    output: Option<&'static [(&'static str, &'static str)]>,
}

/// TestRelabel's cases, in its order (the UTF-8 name cases are in
/// `utf8_names_are_refused_under_legacy_rules`).
const PROMETHEUS_CASES: &[Case] = &[
    Case {
        input: &[("a", "foo"), ("b", "bar"), ("c", "baz")],
        rules: "- {source_labels: [a], regex: 'f(.*)', target_label: d, separator: ';', replacement: 'ch${1}-ch${1}', action: replace}",
        output: Some(&[("a", "foo"), ("b", "bar"), ("c", "baz"), ("d", "choo-choo")]),
    },
    Case {
        input: &[("a", "foo"), ("b", "bar"), ("c", "baz")],
        rules: "
- {source_labels: [a, b], regex: 'f(.*);(.*)r', target_label: a, separator: ';', replacement: 'b${1}${2}m', action: replace}
- {source_labels: [c, a], regex: '(b).*b(.*)ba(.*)', target_label: d, separator: ';', replacement: '$1$2$2$3', action: replace}",
        output: Some(&[("a", "boobam"), ("b", "bar"), ("c", "baz"), ("d", "boooom")]),
    },
    Case {
        input: &[("a", "foo")],
        rules: "
- {source_labels: [a], regex: '.*o.*', action: drop}
- {source_labels: [a], regex: 'f(.*)', target_label: d, separator: ';', replacement: 'ch$1-ch$1', action: replace}",
        output: None,
    },
    Case {
        input: &[("a", "foo"), ("b", "bar")],
        rules: "- {source_labels: [a], regex: '.*o.*', action: drop}",
        output: None,
    },
    Case {
        input: &[("a", "abc")],
        rules: "- {source_labels: [a], regex: '.*(b).*', target_label: d, separator: ';', replacement: '$1', action: replace}",
        output: Some(&[("a", "abc"), ("d", "b")]),
    },
    Case {
        input: &[("a", "foo")],
        rules: "- {source_labels: [a], regex: no-match, action: drop}",
        output: Some(&[("a", "foo")]),
    },
    Case {
        input: &[("a", "foo")],
        rules: "- {source_labels: [a], regex: 'f|o', action: drop}",
        output: Some(&[("a", "foo")]),
    },
    Case {
        input: &[("a", "foo")],
        rules: "- {source_labels: [a], regex: no-match, action: keep}",
        output: None,
    },
    Case {
        input: &[("a", "foo")],
        rules: "- {source_labels: [a], regex: 'f.*', action: keep}",
        output: Some(&[("a", "foo")]),
    },
    // No replacement must be applied if there is no match.
    Case {
        input: &[("a", "boo")],
        rules: "- {source_labels: [a], regex: f, target_label: b, replacement: bar, action: replace}",
        output: Some(&[("a", "boo")]),
    },
    // Blank replacement should delete the label.
    Case {
        input: &[("a", "foo"), ("f", "baz")],
        rules: "- {source_labels: [a], regex: '(f).*', target_label: '$1', replacement: '$2', action: replace}",
        output: Some(&[("a", "foo")]),
    },
    Case {
        input: &[("a", "foo"), ("b", "bar"), ("c", "baz")],
        rules: "- {source_labels: [c], target_label: d, separator: ';', action: hashmod, modulus: 1000}",
        output: Some(&[("a", "foo"), ("b", "bar"), ("c", "baz"), ("d", "976")]),
    },
    Case {
        input: &[("a", "foo\nbar")],
        rules: "- {source_labels: [a], target_label: b, separator: ';', action: hashmod, modulus: 1000}",
        output: Some(&[("a", "foo\nbar"), ("b", "734")]),
    },
    Case {
        input: &[("a", "foo"), ("b1", "bar"), ("b2", "baz")],
        rules: "- {regex: '(b.*)', replacement: 'bar_${1}', action: labelmap}",
        output: Some(&[
            ("a", "foo"),
            ("b1", "bar"),
            ("b2", "baz"),
            ("bar_b1", "bar"),
            ("bar_b2", "baz"),
        ]),
    },
    Case {
        input: &[
            ("a", "foo"),
            ("__meta_my_bar", "aaa"),
            ("__meta_my_baz", "bbb"),
            ("__meta_other", "ccc"),
        ],
        rules: "- {regex: '__meta_(my.*)', replacement: '${1}', action: labelmap}",
        output: Some(&[
            ("a", "foo"),
            ("__meta_my_bar", "aaa"),
            ("__meta_my_baz", "bbb"),
            ("__meta_other", "ccc"),
            ("my_bar", "aaa"),
            ("my_baz", "bbb"),
        ]),
    },
    // Valid case.
    Case {
        input: &[("a", "some-name-value")],
        rules: "- {source_labels: [a], regex: 'some-([^-]+)-([^,]+)', action: replace, replacement: '${2}', target_label: '${1}'}",
        output: Some(&[("a", "some-name-value"), ("name", "value")]),
    },
    // Invalid replacement "".
    Case {
        input: &[("a", "some-name-value")],
        rules: "- {source_labels: [a], regex: 'some-([^-]+)-([^,]+)', action: replace, replacement: '${3}', target_label: '${1}'}",
        output: Some(&[("a", "some-name-value")]),
    },
    // Invalid target_labels.
    Case {
        input: &[("a", "some-name-0")],
        rules: "
- {source_labels: [a], regex: 'some-([^-]+)-([^,]+)', action: replace, replacement: '${1}', target_label: '${3}'}
- {source_labels: [a], regex: 'some-([^-]+)-([^,]+)', action: replace, replacement: '${1}', target_label: '${3}'}
- {source_labels: [a], regex: 'some-([^-]+)(-[^,]+)', action: replace, replacement: '${1}', target_label: '${3}'}",
        output: Some(&[("a", "some-name-0")]),
    },
    // More complex real-life like use case.
    Case {
        input: &[("__meta_sd_tags", "path:/secret,job:some-job,label:foo=bar")],
        rules: "
- {source_labels: [__meta_sd_tags], regex: '(?:.+,|^)path:(/[^,]+).*', action: replace, replacement: '${1}', target_label: __metrics_path__}
- {source_labels: [__meta_sd_tags], regex: '(?:.+,|^)job:([^,]+).*', action: replace, replacement: '${1}', target_label: job}
- {source_labels: [__meta_sd_tags], regex: '(?:.+,|^)label:([^=]+)=([^,]+).*', action: replace, replacement: '${2}', target_label: '${1}'}",
        output: Some(&[
            ("__meta_sd_tags", "path:/secret,job:some-job,label:foo=bar"),
            ("__metrics_path__", "/secret"),
            ("job", "some-job"),
            ("foo", "bar"),
        ]),
    },
    // From https://github.com/prometheus/prometheus/issues/12283.
    Case {
        input: &[
            ("__meta_kubernetes_pod_container_port_name", "foo"),
            ("__meta_kubernetes_pod_annotation_XXX_metrics_port", "9091"),
        ],
        rules: "
- {regex: '^__meta_kubernetes_pod_container_port_name$', action: labeldrop}
- {source_labels: [__meta_kubernetes_pod_annotation_XXX_metrics_port], regex: '(.+)', action: replace, replacement: metrics, target_label: __meta_kubernetes_pod_container_port_name}
- {source_labels: [__meta_kubernetes_pod_container_port_name], regex: '^metrics$', action: keep}",
        output: Some(&[
            ("__meta_kubernetes_pod_annotation_XXX_metrics_port", "9091"),
            ("__meta_kubernetes_pod_container_port_name", "metrics"),
        ]),
    },
    Case {
        input: &[("a", "foo"), ("b1", "bar"), ("b2", "baz")],
        rules: "- {regex: '(b.*)', action: labelkeep}",
        output: Some(&[("b1", "bar"), ("b2", "baz")]),
    },
    Case {
        input: &[("a", "foo"), ("b1", "bar"), ("b2", "baz")],
        rules: "- {regex: '(b.*)', action: labeldrop}",
        output: Some(&[("a", "foo")]),
    },
    Case {
        input: &[("foo", "bAr123Foo")],
        rules: "
- {source_labels: [foo], action: uppercase, target_label: foo_uppercase}
- {source_labels: [foo], action: lowercase, target_label: foo_lowercase}",
        output: Some(&[
            ("foo", "bAr123Foo"),
            ("foo_lowercase", "bar123foo"),
            ("foo_uppercase", "BAR123FOO"),
        ]),
    },
    Case {
        input: &[("__tmp_port", "1234"), ("__port1", "1234"), ("__port2", "5678")],
        rules: "- {source_labels: [__tmp_port], action: keepequal, target_label: __port1}",
        output: Some(&[("__tmp_port", "1234"), ("__port1", "1234"), ("__port2", "5678")]),
    },
    Case {
        input: &[("__tmp_port", "1234"), ("__port1", "1234"), ("__port2", "5678")],
        rules: "- {source_labels: [__tmp_port], action: dropequal, target_label: __port1}",
        output: None,
    },
    Case {
        input: &[("__tmp_port", "1234"), ("__port1", "1234"), ("__port2", "5678")],
        rules: "- {source_labels: [__tmp_port], action: dropequal, target_label: __port2}",
        output: Some(&[("__tmp_port", "1234"), ("__port1", "1234"), ("__port2", "5678")]),
    },
    Case {
        input: &[("__tmp_port", "1234"), ("__port1", "1234"), ("__port2", "5678")],
        rules: "- {source_labels: [__tmp_port], action: keepequal, target_label: __port2}",
        output: None,
    },
    Case {
        input: &[("a", "line1\nline2"), ("b", "bar"), ("c", "baz")],
        rules: "- {source_labels: [a], regex: 'line1.*line2', target_label: d, separator: ';', replacement: 'match${1}', action: replace}",
        output: Some(&[("a", "line1\nline2"), ("b", "bar"), ("c", "baz"), ("d", "match")]),
    },
    // Replace targetLabel with various $var styles.
    Case {
        input: &[("a", "line1\nline2"), ("b", "bar"), ("c", "baz")],
        rules: "
- {source_labels: [a], regex: '(line1).*(?<second>line2)', target_label: 'label1_${1}', separator: ';', replacement: 'val_${second}', action: replace}
- {source_labels: [a], regex: '(line1).*(?<second>line2)', target_label: 'label2_$1', separator: ';', replacement: 'val_$second', action: replace}",
        output: Some(&[
            ("a", "line1\nline2"),
            ("b", "bar"),
            ("c", "baz"),
            ("label1_line1", "val_line2"),
            ("label2_line1", "val_line2"),
        ]),
    },
    Case {
        input: &[("__name__", "http_requests_total")],
        rules: "- {source_labels: [__name__], regex: '.*_total$', target_label: __type__, replacement: counter, action: replace}",
        output: Some(&[("__name__", "http_requests_total"), ("__type__", "counter")]),
    },
    Case {
        input: &[("__name__", "disk_usage_bytes")],
        rules: "- {source_labels: [__name__], regex: '.*_bytes$', target_label: __unit__, replacement: bytes, action: replace}",
        output: Some(&[("__name__", "disk_usage_bytes"), ("__unit__", "bytes")]),
    },
];

#[test]
fn prometheus_relabel_cases() {
    for (index, case) in PROMETHEUS_CASES.iter().enumerate() {
        let rules = rules(case.rules);
        let got = run(&rules, case.input);
        assert_eq!(got, case.output.map(labels), "case {index}: {}", case.rules);
    }
}

#[test]
fn utf8_names_are_refused_under_legacy_rules() {
    // TestRelabel's three UTF-8 cases pass with Prometheus 3's UTF-8 names; under the
    // legacy names sc-agent uses, the rules are refused when they load.
    for (yaml, error) in [
        (
            "- {source_labels: [utf-8.label], regex: 'line1.*line2', target_label: d, replacement: 'match${1}'}",
            r#""utf-8.label" is not a valid label name"#,
        ),
        (
            "- {source_labels: [a], regex: 'line1.*line2', target_label: utf-8.label, replacement: 'match${1}'}",
            r#"target_label: "utf-8.label" is invalid 'target_label' for replace action"#,
        ),
        (
            "- {source_labels: [a], regex: 'line1.*line2', target_label: 'utf-8.label${1}', replacement: 'match${1}'}",
            r#"target_label: "utf-8.label${1}" is invalid 'target_label' for replace action"#,
        ),
    ] {
        let e = serde_yaml::from_str::<Rules>(yaml).unwrap_err().to_string();
        assert!(e.contains(error), "{yaml}\n{e}");
    }
}

#[test]
fn prometheus_benchmark_configs() {
    // The configs of BenchmarkRelabel, with their outcomes worked out by hand.
    let example = rules(
        r#"
- source_labels: [job, __meta_dns_name]
  regex: "(.*)some-[regex]"
  target_label: job
  replacement: foo-${1}
  # action defaults to 'replace'
- source_labels: [abc]
  target_label: cde
- replacement: static
  target_label: abc
- regex:
  replacement: static
  target_label: abc"#,
    );
    let input = [
        ("__meta_dns_name", "example-some-x.com"),
        ("abc", "def"),
        ("job", "foo"),
    ];
    assert_eq!(
        run(&example, &input),
        Some(labels(&[
            ("__meta_dns_name", "example-some-x.com"),
            ("abc", "static"),
            ("cde", "def"),
            ("job", "foo"),
        ]))
    );

    let kubernetes = rules(KUBERNETES_RULES);
    assert_eq!(kubernetes.len(), 20);
    // md5("10.132.183.40:80") mod 3 is 1, so the `keep` of shard 0 drops the target.
    assert_eq!(run(&kubernetes, KUBERNETES_TARGET), None);
    let up_to_hashmod = Rules::new(kubernetes.as_slice()[..18].to_vec()).unwrap();
    let out = run(&up_to_hashmod, KUBERNETES_TARGET).unwrap();
    let added: Vec<_> = out
        .iter()
        .filter(|(n, _)| !n.starts_with("__meta"))
        .collect();
    let expected = labels(&[
        ("__address__", "10.132.183.40:80"),
        ("__metrics_path__", "/metrics"),
        ("__scheme__", "http"),
        ("__scrape_interval__", "15s"),
        ("__scrape_timeout__", "10s"),
        ("__tmp_hash", "1"),
        ("cluster", "dev-us-central-0"),
        ("container", "promtail"),
        (
            "instance",
            "promtail-loki-boltdb-shipper-jgtr7:promtail:http-metrics",
        ),
        ("job", "loki-boltdb-shipper/promtail-loki-boltdb-shipper"),
        ("namespace", "loki-boltdb-shipper"),
        ("pod", "promtail-loki-boltdb-shipper-jgtr7"),
    ]);
    assert_eq!(added, expected.iter().collect::<Vec<_>>());

    let static_pairs = rules(
        r#"
- replacement: wwwwww
  target_label: wwwwww
- replacement: yyyyyyyyyyyy
  target_label: xxxxxxxxx
- replacement: xxxxxxxxx
  target_label: yyyyyyyyyyyy
- source_labels: ["something"]
  target_label: with_source_labels
  replacement: value
- replacement: dropped
  target_label: ${0}
- replacement: ${0}
  target_label: dropped"#,
    );
    let input: Vec<(String, String)> = (1..=8)
        .map(|i| (format!("abcdefg0{i}"), format!("hijklmn{i}")))
        .chain([("job".to_owned(), "foo".to_owned())])
        .collect();
    let borrowed: Vec<(&str, &str)> = input
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let mut expected = input.clone();
    for (name, value) in [
        ("wwwwww", "wwwwww"),
        ("xxxxxxxxx", "yyyyyyyyyyyy"),
        ("yyyyyyyyyyyy", "xxxxxxxxx"),
        ("with_source_labels", "value"),
    ] {
        expected.push((name.to_owned(), value.to_owned()));
    }
    expected.sort();
    assert_eq!(static_pairs.process(&borrowed), Some(expected));
}

const KUBERNETES_RULES: &str = r#"
- source_labels:
    - __meta_kubernetes_pod_container_port_name
  regex: .*-metrics
  action: keep
- source_labels:
    - __meta_kubernetes_pod_label_name
  action: drop
  regex: ""
- source_labels:
    - __meta_kubernetes_pod_phase
  regex: Succeeded|Failed
  action: drop
- source_labels:
    - __meta_kubernetes_pod_annotation_prometheus_io_scrape
  regex: "false"
  action: drop
- source_labels:
    - __meta_kubernetes_pod_annotation_prometheus_io_scheme
  target_label: __scheme__
  regex: (https?)
  replacement: $1
  action: replace
- source_labels:
    - __meta_kubernetes_pod_annotation_prometheus_io_path
  target_label: __metrics_path__
  regex: (.+)
  replacement: $1
  action: replace
- source_labels:
    - __address__
    - __meta_kubernetes_pod_annotation_prometheus_io_port
  target_label: __address__
  regex: (.+?)(\:\d+)?;(\d+)
  replacement: $1:$3
  action: replace
- regex: __meta_kubernetes_pod_annotation_prometheus_io_param_(.+)
  replacement: __param_$1
  action: labelmap
- regex: __meta_kubernetes_pod_label_prometheus_io_label_(.+)
  action: labelmap
- regex: __meta_kubernetes_pod_annotation_prometheus_io_label_(.+)
  action: labelmap
- source_labels:
    - __meta_kubernetes_namespace
    - __meta_kubernetes_pod_label_name
  separator: /
  target_label: job
  replacement: $1
  action: replace
- source_labels:
  - __meta_kubernetes_namespace
  target_label: namespace
  action: replace
- source_labels:
    - __meta_kubernetes_pod_name
  target_label: pod
  action: replace
- source_labels:
    - __meta_kubernetes_pod_container_name
  target_label: container
  action: replace
- source_labels:
    - __meta_kubernetes_pod_name
    - __meta_kubernetes_pod_container_name
    - __meta_kubernetes_pod_container_port_name
  separator: ':'
  target_label: instance
  action: replace
- target_label: cluster
  replacement: dev-us-central-0
- source_labels:
    - __meta_kubernetes_namespace
  regex: hosted-grafana
  action: drop
- source_labels:
    - __address__
  target_label: __tmp_hash
  modulus: 3
  action: hashmod
- source_labels:
    - __tmp_hash
  regex: ^0$
  action: keep
- regex: __tmp_hash
  action: labeldrop"#;

const KUBERNETES_TARGET: &[(&str, &str)] = &[
    ("__address__", "10.132.183.40:80"),
    ("__meta_kubernetes_namespace", "loki-boltdb-shipper"),
    (
        "__meta_kubernetes_pod_annotation_promtail_loki_boltdb_shipper_hash",
        "50523b9759094a144adcec2eae0aa4ad",
    ),
    (
        "__meta_kubernetes_pod_annotationpresent_promtail_loki_boltdb_shipper_hash",
        "true",
    ),
    ("__meta_kubernetes_pod_container_init", "false"),
    ("__meta_kubernetes_pod_container_name", "promtail"),
    ("__meta_kubernetes_pod_container_port_name", "http-metrics"),
    ("__meta_kubernetes_pod_container_port_number", "80"),
    ("__meta_kubernetes_pod_container_port_protocol", "TCP"),
    ("__meta_kubernetes_pod_controller_kind", "DaemonSet"),
    (
        "__meta_kubernetes_pod_controller_name",
        "promtail-loki-boltdb-shipper",
    ),
    ("__meta_kubernetes_pod_host_ip", "10.128.0.178"),
    ("__meta_kubernetes_pod_ip", "10.132.183.40"),
    (
        "__meta_kubernetes_pod_label_controller_revision_hash",
        "555b77cd7d",
    ),
    (
        "__meta_kubernetes_pod_label_name",
        "promtail-loki-boltdb-shipper",
    ),
    ("__meta_kubernetes_pod_label_pod_template_generation", "45"),
    (
        "__meta_kubernetes_pod_labelpresent_controller_revision_hash",
        "true",
    ),
    ("__meta_kubernetes_pod_labelpresent_name", "true"),
    (
        "__meta_kubernetes_pod_labelpresent_pod_template_generation",
        "true",
    ),
    (
        "__meta_kubernetes_pod_name",
        "promtail-loki-boltdb-shipper-jgtr7",
    ),
    (
        "__meta_kubernetes_pod_node_name",
        "gke-dev-us-central-0-main-n2s8-2-14d53341-9hkr",
    ),
    ("__meta_kubernetes_pod_phase", "Running"),
    ("__meta_kubernetes_pod_ready", "true"),
    (
        "__meta_kubernetes_pod_uid",
        "4c586419-7f6c-448d-aeec-ca4fa5b05e60",
    ),
    ("__metrics_path__", "/metrics"),
    ("__scheme__", "http"),
    ("__scrape_interval__", "15s"),
    ("__scrape_timeout__", "10s"),
    ("job", "kubernetes-pods"),
];

/// The error of loading `yaml` as a `write_relabel_configs` section.
fn load_error(yaml: &str) -> String {
    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Section {
        #[allow(dead_code)]
        write_relabel_configs: Rules,
    }
    serde_yaml::from_str::<Section>(yaml)
        .map(|section| format!("unexpectedly loaded: {section:?}"))
        .unwrap_or_else(|e| e.to_string())
}

#[test]
fn prometheus_validation_cases() {
    // TestRelabelValidate, with the legacy name rules (where it differs, its comment
    // says the rule is valid only with UTF-8 names).
    for (rule, expected) in [
        ("{action: null}", Some("relabel action cannot be empty")),
        ("{action: replace}", Some("requires 'target_label' value")),
        ("{action: lowercase}", Some("requires 'target_label' value")),
        (
            "{action: lowercase, target_label: '${3}'}",
            Some(r#""${3}" is invalid 'target_label' for lowercase action"#),
        ),
        (
            "{source_labels: [a], regex: 'some-([^-]+)-([^,]+)', action: replace, replacement: '${1}', target_label: '${3}'}",
            None,
        ),
        (
            "{source_labels: [a], regex: 'some-([^-]+)-([^,]+)', action: replace, replacement: '${1}', target_label: '0${3}'}",
            Some(r#""0${3}" is invalid 'target_label' for replace action"#),
        ),
        (
            "{source_labels: [a], regex: 'some-([^-]+)-([^,]+)', action: replace, replacement: '${1}', target_label: '-${3}'}",
            Some(r#""-${3}" is invalid 'target_label' for replace action"#),
        ),
        ("{regex: '__meta_kubernetes_pod_label_(strimzi_io_.+)', action: labelmap, replacement: '$1'}", None),
        ("{regex: '__meta_(.+)', action: labelmap, replacement: '${1}'}", None),
    ] {
        let result = serde_yaml::from_str::<Rules>(&format!("- {rule}"));
        match expected {
            None => assert!(result.is_ok(), "{rule}: {:?}", result.err()),
            Some(text) => {
                let e = result.unwrap_err().to_string();
                assert!(e.contains(text), "{rule}: {e}");
            }
        }
    }
}

#[test]
fn every_check_names_its_field_with_prometheus_text() {
    for (rule, expected) in [
        ("{action: hashmod, target_label: t}", "modulus: relabel configuration for hashmod requires non-zero modulus"),
        ("{action: hashmod, modulus: 2}", "target_label: relabel configuration for hashmod action requires 'target_label' value"),
        ("{action: hashmod, modulus: 2, target_label: '$1'}", r#"target_label: "$1" is invalid 'target_label' for hashmod action"#),
        ("{action: keepequal}", "target_label: relabel configuration for keepequal action requires 'target_label' value"),
        ("{action: uppercase, target_label: a-b}", r#"target_label: "a-b" is invalid 'target_label' for uppercase action"#),
        ("{action: replace, target_label: 1a}", r#"target_label: "1a" is invalid 'target_label' for replace action"#),
        ("{action: uppercase, target_label: u, replacement: x}", "replacement: 'replacement' can not be set for uppercase action"),
        ("{action: labelmap, replacement: 'a-$1'}", r#"replacement: "a-$1" is invalid 'replacement' for labelmap action"#),
        ("{action: labelmap, replacement: ''}", r#"replacement: "" is invalid 'replacement' for labelmap action"#),
        (
            "{action: dropequal, target_label: t, regex: '(.*)'}",
            "regex: dropequal action requires only 'source_labels' and `target_label`, and no other fields",
        ),
        ("{action: keepequal, target_label: t, separator: ','}", "separator: keepequal action requires only"),
        ("{action: keepequal, target_label: t, modulus: 3}", "modulus: keepequal action requires only"),
        ("{action: labeldrop, source_labels: []}", "source_labels: labeldrop action requires only 'regex', and no other fields"),
        ("{action: labelkeep, target_label: x}", "target_label: labelkeep action requires only 'regex'"),
        ("{action: labelkeep, separator: ''}", "separator: labelkeep action requires only 'regex'"),
        ("{action: labeldrop, replacement: x}", "replacement: labeldrop action requires only 'regex'"),
        ("{action: labeldrop, modulus: 1}", "modulus: labeldrop action requires only 'regex'"),
        ("{action: relabel}", r#"unknown relabel action "relabel""#),
        ("{action: ''}", r#"unknown relabel action """#),
        ("{source_labels: [a-b], target_label: t}", r#""a-b" is not a valid label name"#),
        ("{target_label: t, regex: 'a('}", r#"invalid regular expression "a(""#),
        ("{target_label: t, regex: '\\pL'}", "Unicode class"),
        ("{target_label: t, regexp: x}", "unknown field `regexp`"),
        ("{target_label: t, modulus: -1}", "modulus"),
    ] {
        let e = serde_yaml::from_str::<Rules>(&format!("- {rule}")).unwrap_err().to_string();
        assert!(e.contains(expected), "{rule}:\n  {e}\n  expected: {expected}");
    }
    // A labeldrop/labelkeep with no source_labels, or with them written as null, is fine.
    assert!(
        serde_yaml::from_str::<Rules>("- {action: labeldrop, regex: x, source_labels: ~}").is_ok()
    );
    // The action is read case-insensitively, as Prometheus does.
    let upper = rules("- {action: LabelDrop, regex: x}");
    assert_eq!(upper.as_slice()[0].action, Action::LabelDrop);
}

#[test]
fn errors_carry_the_rule_index_and_line() {
    let yaml = "write_relabel_configs:\n\
                - source_labels: [__name__]\n  regex: node_.*\n  action: keep\n\
                - target_label: env\n  replacement: prod\n\
                - source_labels: [device]\n  target_label: 0x\n";
    let e = load_error(yaml);
    assert_eq!(
        e,
        "write_relabel_configs[2]: target_label: \"0x\" is invalid 'target_label' for replace action at line 7 column 3"
    );
    let e = load_error("write_relabel_configs:\n- action: keep\n  regex: 'a{2}*'\n");
    assert!(
        e.starts_with("write_relabel_configs[0].regex: invalid regular expression"),
        "{e}"
    );
    assert!(
        e.contains("nested repetition") && e.contains("line 3"),
        "{e}"
    );
    let e = load_error("write_relabel_configs:\n- action: drop\n- action: dorp\n");
    assert!(
        e.starts_with("write_relabel_configs[1].action: unknown relabel action \"dorp\""),
        "{e}"
    );
    assert!(e.contains("line 3"), "{e}");
    let e = load_error("write_relabel_configs:\n- {action: keep, source_labels: [ok, not-ok]}\n");
    assert!(
        e.starts_with("write_relabel_configs[0].source_labels[1]: \"not-ok\""),
        "{e}"
    );
    let e = load_error("write_relabel_configs: keep\n");
    assert!(e.contains("write_relabel_configs: invalid type"), "{e}");
    let e = load_error("write_relabel_configs:\n- keep\n");
    assert!(
        e.contains("write_relabel_configs[0]: invalid type") && e.contains("relabel rule"),
        "{e}"
    );
}

#[test]
fn rules_built_in_code_are_checked_too() {
    let good = Rule {
        source_labels: Some(vec!["a".into()]),
        target_label: "b".into(),
        ..Rule::default()
    };
    let bad = Rule {
        action: Action::HashMod,
        target_label: "b".into(),
        ..Rule::default()
    };
    assert!(Rules::new(vec![good.clone()]).is_ok());
    assert_eq!(
        Rules::new(vec![good, bad]).unwrap_err(),
        "[1].modulus: relabel configuration for hashmod requires non-zero modulus"
    );
}

#[test]
fn written_without_a_value_means_gos_zero_value() {
    // As yaml.v2 into Prometheus' struct: `regex:` is the empty regex (matches only
    // ""), `separator:` is empty, `replacement:` is empty.
    let rule = &rules("- {source_labels: [a], regex: ~, target_label: b, replacement: x}");
    assert_eq!(run(rule, &[("a", "foo")]), Some(labels(&[("a", "foo")])));
    assert_eq!(
        run(rule, &[("c", "foo")]),
        Some(labels(&[("b", "x"), ("c", "foo")]))
    );
    let default_regex = &rules("- {source_labels: [a], target_label: b, replacement: x}");
    assert_eq!(
        run(default_regex, &[("a", "foo")]),
        Some(labels(&[("a", "foo"), ("b", "x")]))
    );
    let separator = &rules("- {source_labels: [a, b], separator: ~, target_label: c}");
    assert_eq!(
        run(separator, &[("a", "1"), ("b", "2")]),
        Some(labels(&[("a", "1"), ("b", "2"), ("c", "12")]))
    );
    let replacement = &rules("- {source_labels: [a], target_label: a, replacement: ~}");
    assert_eq!(
        run(replacement, &[("a", "1"), ("b", "2")]),
        Some(labels(&[("b", "2")]))
    );
    assert!(
        serde_yaml::from_str::<Rules>("- {action: hashmod, target_label: t, modulus: ~}")
            .unwrap_err()
            .to_string()
            .contains("non-zero modulus")
    );
}

#[test]
fn printed_rules_read_back_the_same() {
    // TestConfig_UnmarshalThenMarshal's inputs: the separator and replacement are
    // printed, the regex only when it was written.
    for yaml in [
        "source_labels: [__meta_kubernetes_pod_annotation_prometheus_io_port]\nseparator: ;\nregex: \\d+\ntarget_label: __meta_kubernetes_pod_container_port_number\nreplacement: $1\naction: replace\n",
        "source_labels: [__meta_kubernetes_pod_annotation_prometheus_io_port]\nseparator: ;\ntarget_label: __meta_kubernetes_pod_container_port_number\nreplacement: $1\naction: keepequal\n",
        "source_labels: [__meta_kubernetes_pod_annotation_prometheus_io_port]\nseparator: ;\nregex: (.*)\ntarget_label: __meta_kubernetes_pod_container_port_number\nreplacement: $1\naction: replace\n",
    ] {
        let rule: Rule = serde_yaml::from_str(yaml).unwrap();
        let printed = serde_yaml::to_string(&rule).unwrap();
        assert_eq!(serde_yaml::from_str::<Rule>(&printed).unwrap(), rule, "{printed}");
        assert!(printed.contains("separator: ;") && printed.contains("replacement: $1"), "{printed}");
        assert_eq!(printed.contains("regex:"), yaml.contains("regex:"), "{printed}");
    }
    let all = rules(KUBERNETES_RULES);
    let printed = serde_yaml::to_string(&all).unwrap();
    assert_eq!(rules(&printed), all);
    let empty_separator =
        rules("- {source_labels: [a, b], separator: '', target_label: c, replacement: ''}");
    assert_eq!(
        rules(&serde_yaml::to_string(&empty_separator).unwrap()),
        empty_separator
    );
}

#[test]
fn labelmap_visits_input_labels_then_set_labels() {
    // Builder.Range order: the input's labels in name order, then those set by earlier
    // rules in the order they were set; the last one mapped to a name wins.
    let rules = rules(
        "
- {target_label: z_x, replacement: from_set}
- {target_label: a_x, replacement: from_set_first}
- {regex: '.*_(x)', replacement: '$1', action: labelmap}",
    );
    let out = run(&rules, &[("m_x", "from_input")]).unwrap();
    let x = out.iter().find(|(n, _)| n == "x").map(|(_, v)| v.as_str());
    assert_eq!(x, Some("from_set_first"), "{out:?}");
}

#[test]
fn labelmap_skips_names_that_are_not_label_names() {
    let rules = rules("- {regex: '__meta_(.*)', action: labelmap}");
    let out = run(&rules, &[("__meta_0x", "a"), ("__meta_ok", "b")]).unwrap();
    assert_eq!(
        out,
        labels(&[("__meta_0x", "a"), ("__meta_ok", "b"), ("ok", "b")])
    );
}

#[test]
fn replace_result_goes_through_builder_semantics() {
    // An empty expansion deletes; a later Get sees the deletion; a re-set wins.
    let rules = rules(
        "
- {source_labels: [a], regex: 'x', target_label: b, replacement: y}
- {source_labels: [a], target_label: a, replacement: ''}
- {source_labels: [a], target_label: c, replacement: 'was<$1>'}
- {target_label: a, replacement: again}",
    );
    let out = run(&rules, &[("a", "x"), ("b", "old")]).unwrap();
    assert_eq!(out, labels(&[("a", "again"), ("b", "y"), ("c", "was<>")]));
}

#[test]
fn hashmod_matches_prometheus_for_other_moduli() {
    // md5("baz") = 73feffa4b7f6bb68e44cf984c85f6e88: the last 8 bytes, big-endian, are
    // 0xe44cf984c85f6e88.
    let value = 0xe44c_f984_c85f_6e88_u64;
    for modulus in [1, 2, 7, 1000, u64::MAX] {
        let rules = rules(&format!(
            "- {{source_labels: [c], target_label: d, action: hashmod, modulus: {modulus}}}"
        ));
        let out = run(&rules, &[("c", "baz")]).unwrap();
        assert_eq!(
            out[1],
            ("d".into(), (value % modulus).to_string()),
            "mod {modulus}"
        );
    }
}

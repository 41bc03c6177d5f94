//! `node_vmstat_<field>` from /proc/vmstat, for the fields matching `fields`
//! (node_exporter's `--collector.vmstat.fields`), as node_exporter 1.12 (and 1.5, the
//! same) exports them.
//!
//! The default, `^(oom_kill|pgpg|pswp|pg.*fault).*`, is a prefix match: `pgpgin`,
//! `pgpgout`, `pswpin`, `pswpout`, `pgfault`, `pgmajfault`, `oom_kill`. It runs as
//! code ([`DefaultSet::matches`], checked against the regex in the tests): it runs on
//! every line of every cycle, and a regex engine would cost more than reading the
//! file. Another regex replaces the default set and runs as a regex.
//!
//! Quirks mirrored: the families are untyped; every line's value must parse, even on
//! lines that are not exported (node_exporter parses before it filters), so a
//! malformed file fails the collector whichever line is bad; a value is read as a
//! float (`strconv.ParseFloat` there, `f64::from_str` here), so huge and negative
//! counters come through as the kernel printed them.
//!
//! Parsed here rather than with `procfs::vmstat()`, which builds a fresh `HashMap`
//! of owned names every call and loses the file's order.

use super::{Build, CollectError, Collector, Context, Seen, read_file};
use crate::batch::{Batch, Kind};
use crate::config::collectors;
use crate::config::pattern::{DefaultFields, Fields};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// `collectors.vmstat`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Options {
    /// The fields to export: `--collector.vmstat.fields`.
    pub fields: Fields<DefaultSet>,
}

impl collectors::Options for Options {}

/// node_exporter's default `--collector.vmstat.fields`.
pub struct DefaultSet;

impl DefaultFields for DefaultSet {
    const REGEX: &'static str = "^(oom_kill|pgpg|pswp|pg.*fault).*";

    fn matches(field: &str) -> bool {
        field.starts_with("oom_kill")
            || field.starts_with("pgpg")
            || field.starts_with("pswp")
            || field
                .strip_prefix("pg")
                .is_some_and(|rest| rest.contains("fault"))
    }
}

pub struct Vmstat {
    path: PathBuf,
    fields: Fields<DefaultSet>,
    buf: String,
    /// A field listed twice is reported once, the first time.
    seen: Seen,
}

impl Vmstat {
    pub fn new(procfs: &Path, options: &Options) -> Self {
        Vmstat {
            path: procfs.join("vmstat"),
            fields: options.fields.clone(),
            buf: String::new(),
            seen: Seen::default(),
        }
    }
}

/// Splits `pgfault 17960616` into the field name and its value; like node_exporter,
/// ignores anything after the value.
fn parse_line(line: &str) -> Result<(&str, f64), String> {
    let mut parts = line.split_ascii_whitespace();
    let (Some(field), Some(value)) = (parts.next(), parts.next()) else {
        return Err(format!("expected `field value`, got {line:?}"));
    };
    if !field
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        return Err(format!("field name {field:?} is not a vmstat name"));
    }
    // The kernel writes integers (some may be negative): `inf`, `nan` or `1e400`
    // (which Rust and Go parse as infinite) mean a broken file.
    let value = value
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .ok_or_else(|| format!("{field}: expected a number, got {value:?}"))?;
    Ok((field, value))
}

impl Build for Vmstat {
    type Options = Options;

    const SOURCES: &'static [&'static str] = &["proc/vmstat"];

    fn build(context: &Context<'_>, options: &Options) -> Self {
        Vmstat::new(&context.paths.procfs, options)
    }
}

impl Collector for Vmstat {
    fn collect(&mut self, out: &mut Batch) -> Result<(), CollectError> {
        read_file(&self.path, &mut self.buf)?;
        self.seen.clear();
        for (index, line) in self.buf.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let (field, value) =
                parse_line(line).map_err(|e| CollectError::parse(&self.path, index + 1, e))?;
            if !self.fields.matches(field) || !self.seen.first(field) {
                continue;
            }
            out.family(
                format_args!("node_vmstat_{field}"),
                format_args!("/proc/vmstat information field {field}."),
                Kind::Untyped,
            )
            .sample(&[], value);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Pattern;
    use crate::testing::{render, TempDir};

    const VMSTAT: &str = "nr_free_pages 123\npgpgin 3495045\npgpgout 3156376\n\
        pswpin 0\npswpout 0\npgfault 17960616\npgmajfault 3834\npgscan_kswapd 5\n\
        oom_kill 2\nnr_dirty -3\n";

    #[test]
    fn odd_names_are_malformed_and_repeats_are_reported_once() {
        let dir = TempDir::new();
        dir.write("vmstat", "pgpgo<ut 1\n");
        let err = render(&mut Vmstat::new(dir.path(), &Options::default()))
            .unwrap_err()
            .to_string();
        assert!(err.contains("is not a vmstat name"), "{err}");
        dir.write("vmstat", "pgfault 1\npgfault 2\n");
        let text = render(&mut Vmstat::new(dir.path(), &Options::default())).unwrap();
        assert_eq!(text.matches("\nnode_vmstat_pgfault ").count(), 1, "{text}");
        assert!(text.contains("node_vmstat_pgfault 1\n"), "{text}");
    }

    #[test]
    fn infinite_and_nan_values_are_malformed() {
        let dir = TempDir::new();
        for bad in ["inf", "-inf", "NaN", "infinity", "1e400"] {
            dir.write("vmstat", &format!("pgfault {bad}\n"));
            let err = render(&mut Vmstat::new(dir.path(), &Options::default()))
                .unwrap_err()
                .to_string();
            assert!(err.contains("pgfault: expected a number"), "{bad}: {err}");
        }
        dir.write("vmstat", "pgfault -0\nnr_dirty -3\n");
        let text = render(&mut Vmstat::new(dir.path(), &Options::default())).unwrap();
        assert!(text.contains("node_vmstat_pgfault -0\n"), "{text}");
    }

    #[test]
    fn exports_the_default_fields_untyped() {
        let dir = TempDir::new();
        dir.write("vmstat", VMSTAT);
        let text = render(&mut Vmstat::new(dir.path(), &Options::default())).unwrap();
        let names: Vec<_> = text.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(
            names,
            [
                "node_vmstat_pgpgin 3495045",
                "node_vmstat_pgpgout 3156376",
                "node_vmstat_pswpin 0",
                "node_vmstat_pswpout 0",
                "node_vmstat_pgfault 17960616",
                "node_vmstat_pgmajfault 3834",
                "node_vmstat_oom_kill 2",
            ]
        );
        assert!(text.starts_with(
            "# HELP node_vmstat_pgpgin /proc/vmstat information field pgpgin.\n\
             # TYPE node_vmstat_pgpgin untyped\n"
        ));
    }

    #[test]
    fn field_filter_is_node_exporters_regex() {
        // node_exporter matches `^(oom_kill|pgpg|pswp|pg.*fault).*` unanchored at the end.
        let regex = Pattern::new(DefaultSet::REGEX).unwrap();
        let names = [
            "oom_kill",
            "oom_kill_x",
            "pgpgin",
            "pgpgout",
            "pgpg",
            "pswpin",
            "pswpout",
            "pgfault",
            "pgmajfault",
            "pgfaultx",
            "pg_fault",
            "pgfaul",
            "fault",
            "pgfree",
            "pgscan_kswapd",
            "nr_free_pages",
            "thp_fault_alloc",
            "pg",
            "",
            "xpgfault",
            "pgsteal_fault",
            "pswp",
            "oom",
            "numa_hint_faults",
        ];
        for name in names {
            assert_eq!(DefaultSet::matches(name), regex.is_match(name), "{name:?}");
        }
    }

    #[test]
    fn another_fields_regex_replaces_the_default_set() {
        let dir = TempDir::new();
        dir.write("vmstat", VMSTAT);
        let options: Options = serde_yaml::from_str("fields: ^nr_|scan\n").unwrap();
        let text = render(&mut Vmstat::new(dir.path(), &options)).unwrap();
        let names: Vec<_> = text.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(
            names,
            [
                "node_vmstat_nr_free_pages 123",
                "node_vmstat_pgscan_kswapd 5",
                "node_vmstat_nr_dirty -3",
            ]
        );
        // An empty regex, as `--collector.vmstat.fields=`, exports every field.
        let options: Options = serde_yaml::from_str("fields: ''\n").unwrap();
        let text = render(&mut Vmstat::new(dir.path(), &options)).unwrap();
        assert_eq!(text.lines().filter(|l| !l.starts_with('#')).count(), 10);
        assert_eq!(
            serde_yaml::to_string(&Options::default()).unwrap(),
            "fields: ^(oom_kill|pgpg|pswp|pg.*fault).*\n"
        );
    }

    #[test]
    fn huge_and_negative_values_are_kept() {
        let dir = TempDir::new();
        dir.write(
            "vmstat",
            "pgfault 18446744073709551615\npgmajfault 123456789012345678901234\noom_kill -1\n",
        );
        let text = render(&mut Vmstat::new(dir.path(), &Options::default())).unwrap();
        assert!(
            text.contains("node_vmstat_pgfault 18446744073709552000\n"),
            "{text}"
        );
        assert!(
            text.contains("node_vmstat_pgmajfault 1.2345678901234569e23\n"),
            "{text}"
        );
        assert!(text.contains("node_vmstat_oom_kill -1\n"), "{text}");
    }

    #[test]
    fn a_malformed_line_fails_even_when_not_exported() {
        let dir = TempDir::new();
        dir.write("vmstat", "pgfault 1\nnr_free_pages lots\n");
        let err = render(&mut Vmstat::new(dir.path(), &Options::default())).unwrap_err();
        assert!(
            err.to_string()
                .ends_with("vmstat line 2: nr_free_pages: expected a number, got \"lots\""),
            "{err}"
        );
        for bad in ["pgfault\n", "pgfault -\n", "pgfault 0x10\n"] {
            dir.write("vmstat", bad);
            assert!(render(&mut Vmstat::new(dir.path(), &Options::default())).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_vanishing_file_fails_then_recovers() {
        let dir = TempDir::new();
        let mut vmstat = Vmstat::new(dir.path(), &Options::default());
        assert!(render(&mut vmstat).is_err());
        dir.write("vmstat", "oom_kill 0\n");
        assert!(render(&mut vmstat)
            .unwrap()
            .contains("node_vmstat_oom_kill 0\n"));
        std::fs::remove_file(dir.path().join("vmstat")).unwrap();
        assert!(render(&mut vmstat).is_err());
    }
}

//! `node_memory_*` from /proc/meminfo: every field, named as node_exporter names it.
//!
//! Parsed here rather than with `procfs::Meminfo`, whose struct holds only the fields
//! it knows: node_exporter exports every line, including ones newer kernels add.
//! `Active(anon)` becomes `Active_anon`; a value in kB (which means KiB) becomes
//! `<Field>_bytes` times 1024; a value without a unit (`HugePages_Total`) keeps its
//! name and value.

use super::{Build, CollectError, Collector, Context, Seen, read_file};
use crate::config::collectors::NoOptions;
use crate::batch::{Batch, Kind};
use std::fmt::{self, Write as _};
use std::path::{Path, PathBuf};

pub struct Meminfo {
    path: PathBuf,
    buf: String,
    /// The metric name of the field being written.
    name: String,
    /// A field listed twice (or two fields that rename alike, `A(b)` and `A_b`) is
    /// reported once, the first time.
    seen: Seen,
}

impl Meminfo {
    pub fn new(procfs: &Path) -> Self {
        Meminfo {
            path: procfs.join("meminfo"),
            buf: String::new(),
            name: String::new(),
            seen: Seen::default(),
        }
    }
}

/// A meminfo key with node_exporter's renaming: `(x)` becomes `_x`, plus `_bytes`
/// when the value has a unit.
struct FieldName<'a> {
    key: &'a str,
    bytes: bool,
}

impl fmt::Display for FieldName<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.key.chars() {
            match c {
                '(' => f.write_str("_")?,
                ')' => {}
                c => write!(f, "{c}")?,
            }
        }
        if self.bytes {
            f.write_str("_bytes")?;
        }
        Ok(())
    }
}

/// Splits `Active(anon):   1234 kB` into the field name and its value.
fn parse_line(line: &str) -> Result<(FieldName<'_>, f64), String> {
    let (key, rest) = line
        .split_once(':')
        .ok_or_else(|| format!("expected `Field: value [kB]`, got {line:?}"))?;
    let key = key.trim();
    let valid_key = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '(' | ')'));
    if !valid_key {
        return Err(format!("field name {key:?} is not a meminfo name"));
    }
    let mut parts = rest.split_ascii_whitespace();
    let number = parts.next().unwrap_or_default();
    let value: u64 = number
        .parse()
        .map_err(|_| format!("{key}: expected a whole number, got {number:?}"))?;
    match (parts.next(), parts.next()) {
        (None, _) => Ok((FieldName { key, bytes: false }, value as f64)),
        (Some("kB"), None) => Ok((FieldName { key, bytes: true }, value as f64 * 1024.0)),
        (Some(unit), _) => Err(format!("{key}: expected the unit kB, got {unit:?}")),
    }
}

impl Build for Meminfo {
    type Options = NoOptions;

    const SOURCES: &'static [&'static str] = &["proc/meminfo"];

    fn build(context: &Context<'_>, _options: &NoOptions) -> Self {
        Meminfo::new(&context.paths.procfs)
    }
}

impl Collector for Meminfo {
    fn collect(&mut self, out: &mut Batch) -> Result<(), CollectError> {
        read_file(&self.path, &mut self.buf)?;
        self.seen.clear();
        for (index, line) in self.buf.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let (field, value) =
                parse_line(line).map_err(|e| CollectError::parse(&self.path, index + 1, e))?;
            self.name.clear();
            // Writing into a String cannot fail.
            let _ = write!(self.name, "{field}");
            if !self.seen.first(&self.name) {
                continue;
            }
            out.family(
                format_args!("node_memory_{}", self.name),
                format_args!("Memory information field {}.", self.name),
                Kind::Gauge,
            )
            .sample(&[], value);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{render, TempDir};

    #[test]
    fn names_fields_like_node_exporter() {
        let dir = TempDir::new();
        dir.write(
            "meminfo",
            "MemTotal:        2000000 kB\nActive(anon):      12 kB\nHugePages_Total:       3\n",
        );
        let text = render(&mut Meminfo::new(dir.path())).unwrap();
        assert_eq!(
            text,
            "# HELP node_memory_MemTotal_bytes Memory information field MemTotal_bytes.\n\
             # TYPE node_memory_MemTotal_bytes gauge\n\
             node_memory_MemTotal_bytes 2048000000\n\
             # HELP node_memory_Active_anon_bytes Memory information field Active_anon_bytes.\n\
             # TYPE node_memory_Active_anon_bytes gauge\n\
             node_memory_Active_anon_bytes 12288\n\
             # HELP node_memory_HugePages_Total Memory information field HugePages_Total.\n\
             # TYPE node_memory_HugePages_Total gauge\n\
             node_memory_HugePages_Total 3\n"
        );
    }

    #[test]
    fn malformed_line_names_the_line() {
        let dir = TempDir::new();
        dir.write("meminfo", "MemTotal: 1 kB\nMemFree 12 kB\n");
        let err = render(&mut Meminfo::new(dir.path()))
            .unwrap_err()
            .to_string();
        assert!(
            err.ends_with("meminfo line 2: expected `Field: value [kB]`, got \"MemFree 12 kB\""),
            "{err}"
        );
        for bad in [
            "MemFree: lots kB\n",
            "MemFree: 1 MB\n",
            "Mem Free: 1 kB\n",
            ": 1\n",
            "X: -1\n",
        ] {
            dir.write("meminfo", bad);
            assert!(render(&mut Meminfo::new(dir.path())).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_name_seen_twice_is_reported_once() {
        let dir = TempDir::new();
        dir.write(
            "meminfo",
            "Active(anon): 1 kB\nActive_anon: 2 kB\nMemTotal: 3 kB\nMemTotal: 4 kB\n",
        );
        let text = render(&mut Meminfo::new(dir.path())).unwrap();
        assert_eq!(
            text.matches("\nnode_memory_Active_anon_bytes ").count(),
            1,
            "{text}"
        );
        assert!(
            text.contains("\nnode_memory_Active_anon_bytes 1024\n"),
            "{text}"
        );
        assert_eq!(
            text.matches("\nnode_memory_MemTotal_bytes ").count(),
            1,
            "{text}"
        );
    }

    #[test]
    fn parses_fields_added_by_newer_kernels() {
        let (name, value) = parse_line("Unaccepted:            0 kB").unwrap();
        assert_eq!(name.to_string(), "Unaccepted_bytes");
        assert_eq!(value, 0.0);
    }
}

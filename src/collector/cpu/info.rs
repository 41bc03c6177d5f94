//! /proc/cpuinfo for the cpu collector's `info` option (node_exporter's
//! `--collector.cpu.info`): `node_cpu_info{package,core,cpu,vendor,family,model,
//! model_name,microcode,stepping,cachesize}` 1 per processor, `node_cpu_frequency_hertz
//! {package,core,cpu}` from its `cpu MHz`, and, with the include regexes,
//! `node_cpu_flag_info{flag}` and `node_cpu_bug_info{bug}` for the first processor's
//! flags and bugs that match.
//!
//! Parsed as procfs's `parseCPUInfoX86` parses it (the x86 format; the agent is built
//! for x86_64): the first non-blank line must be `processor : N`; after it, each line
//! with a `:` is split at its first `": "` into a name (trimmed) and a value (kept as
//! written), a `processor` line starts the next processor, and the values of
//! `processor`, `siblings`, `cpu cores`, `apicid`, `initial apicid`, `cpuid level`,
//! `clflush size`, `cache_alignment` (Go's `ParseUint(v, 0, 32)`), `cpu MHz` and
//! `bogomips` (`ParseFloat`) must be numbers, exported or not: one that is not fails
//! the collector, as it fails node_exporter's. `vendor` and `vendor_id` both give the
//! vendor. A first line without `": "` (`processor:0`), on which procfs indexes past
//! the end of its split and panics, is an error naming the line.

use super::super::go_parse::parse_float;
use super::super::parse_go_uint;
use crate::batch::{Batch, Kind};
use crate::config::Pattern;
use std::ops::Range;

/// One processor's entry: its label values as ranges of [`CpuInfo::text`].
#[derive(Debug, Default)]
struct Processor {
    processor: u32,
    vendor: Range<usize>,
    family: Range<usize>,
    model: Range<usize>,
    model_name: Range<usize>,
    stepping: Range<usize>,
    microcode: Range<usize>,
    cache_size: Range<usize>,
    physical_id: Range<usize>,
    core_id: Range<usize>,
    flags: Range<usize>,
    bugs: Range<usize>,
    mhz: f64,
}

/// The processors of one read of /proc/cpuinfo. `text` is the file; the entries
/// point into it, and both keep their capacity across cycles.
#[derive(Debug, Default)]
pub struct CpuInfo {
    pub text: String,
    processors: Vec<Processor>,
}

/// The numbers procfs parses as `ParseUint(v, 0, 32)`.
const WHOLE_NUMBERS: [&str; 8] = [
    "processor",
    "siblings",
    "cpu cores",
    "apicid",
    "initial apicid",
    "cpuid level",
    "clflush size",
    "cache_alignment",
];

fn whole_number(value: &str) -> Option<u32> {
    parse_go_uint(value).and_then(|v| u32::try_from(v).ok())
}

impl CpuInfo {
    /// Parses `self.text` into the processors; the error names the line.
    pub fn parse(&mut self) -> Result<(), (usize, String)> {
        self.processors.clear();
        let base = self.text.as_ptr() as usize;
        let range = |part: &str| {
            let start = part.as_ptr() as usize - base;
            start..start + part.len()
        };
        let mut lines = self.text.lines().enumerate();
        let (index, first) = lines
            .find(|(_, line)| !line.trim().is_empty())
            .unwrap_or((0, ""));
        let processor = first
            .strip_prefix("processor")
            .filter(|_| first.contains(':'))
            .and_then(|_| first.split_once(": "))
            .ok_or_else(|| (index + 1, format!("expected `processor : N`, got {first:?}")))?
            .1;
        let processor = whole_number(processor)
            .ok_or_else(|| (index + 1, format!("processor: expected a number, got {processor:?}")))?;
        self.processors.push(Processor {
            processor,
            ..Processor::default()
        });
        for (index, line) in lines {
            if !line.contains(':') {
                continue;
            }
            // Without `": "` the name keeps its `:` and is none of procfs's.
            let Some((name, value)) = line.split_once(": ") else {
                continue;
            };
            let name = name.trim();
            let known = WHOLE_NUMBERS.contains(&name)
                || matches!(
                    name,
                    "vendor"
                        | "vendor_id"
                        | "cpu family"
                        | "model"
                        | "model name"
                        | "stepping"
                        | "microcode"
                        | "cpu MHz"
                        | "cache size"
                        | "physical id"
                        | "core id"
                        | "flags"
                        | "bugs"
                        | "bogomips"
                );
            if !known {
                continue;
            }
            if WHOLE_NUMBERS.contains(&name) {
                let number = whole_number(value)
                    .ok_or_else(|| (index + 1, format!("{name}: expected a number, got {value:?}")))?;
                if name == "processor" {
                    self.processors.push(Processor {
                        processor: number,
                        ..Processor::default()
                    });
                }
                continue;
            }
            // A processor was pushed before the loop.
            let Some(entry) = self.processors.last_mut() else {
                continue;
            };
            let text = range(value);
            match name {
                "vendor" | "vendor_id" => entry.vendor = text,
                "cpu family" => entry.family = text,
                "model" => entry.model = text,
                "model name" => entry.model_name = text,
                "stepping" => entry.stepping = text,
                "microcode" => entry.microcode = text,
                "cache size" => entry.cache_size = text,
                "physical id" => entry.physical_id = text,
                "core id" => entry.core_id = text,
                "flags" => entry.flags = text,
                "bugs" => entry.bugs = text,
                "cpu MHz" | "bogomips" => {
                    let number = parse_float(value).ok_or_else(|| {
                        (index + 1, format!("{name}: expected a number, got {value:?}"))
                    })?;
                    if name == "cpu MHz" {
                        entry.mhz = number;
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Writes `node_cpu_info`, and `node_cpu_frequency_hertz` when `frequency`.
    pub fn write_info(&self, out: &mut Batch, frequency: bool) {
        let text = |range: &Range<usize>| self.text.get(range.clone()).unwrap_or_default();
        let mut family = out.family(
            "node_cpu_info",
            "CPU information from /proc/cpuinfo.",
            Kind::Gauge,
        );
        for p in &self.processors {
            family
                .series()
                .label("package", text(&p.physical_id))
                .label("core", text(&p.core_id))
                .label("cpu", p.processor)
                .label("vendor", text(&p.vendor))
                .label("family", text(&p.family))
                .label("model", text(&p.model))
                .label("model_name", text(&p.model_name))
                .label("microcode", text(&p.microcode))
                .label("stepping", text(&p.stepping))
                .label("cachesize", text(&p.cache_size))
                .value(1.0);
        }
        if !frequency {
            return;
        }
        let mut family = out.family(
            "node_cpu_frequency_hertz",
            "CPU frequency in hertz from /proc/cpuinfo.",
            Kind::Gauge,
        );
        for p in &self.processors {
            family
                .series()
                .label("package", text(&p.physical_id))
                .label("core", text(&p.core_id))
                .label("cpu", p.processor)
                .value(p.mhz * 1e6);
        }
    }

    /// Writes `node_cpu_flag_info` and `node_cpu_bug_info` for the first processor's
    /// flags and bugs that match the regexes; none without a regex.
    pub fn write_flags(&self, out: &mut Batch, flags: Option<&Pattern>, bugs: Option<&Pattern>) {
        let Some(first) = self.processors.first() else {
            return;
        };
        let lists = [
            (
                flags,
                &first.flags,
                "node_cpu_flag_info",
                "The `flags` field of CPU information from /proc/cpuinfo taken from the first core.",
                "flag",
            ),
            (
                bugs,
                &first.bugs,
                "node_cpu_bug_info",
                "The `bugs` field of CPU information from /proc/cpuinfo taken from the first core.",
                "bug",
            ),
        ];
        for (pattern, range, name, help, label) in lists {
            let Some(pattern) = pattern else {
                continue;
            };
            let mut family = out.family(name, help, Kind::Gauge);
            let words = self.text.get(range.clone()).unwrap_or_default();
            for word in words.split_ascii_whitespace().filter(|w| pattern.is_match(w)) {
                family.series().label(label, word).value(1.0);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::render_with;

    const CPUINFO: &str = "processor\t: 0\nvendor_id\t: GenuineIntel\ncpu family\t: 6\n\
        model\t\t: 142\nmodel name\t: Intel(R) Core(TM) i7-8650U CPU @ 1.90GHz\nstepping\t: 10\n\
        microcode\t: 0xb4\ncpu MHz\t\t: 799.998\ncache size\t: 8192 KB\nphysical id\t: 0\n\
        siblings\t: 2\ncore id\t\t: 0\ncpu cores\t: 2\napicid\t\t: 0\nfpu\t\t: yes\n\
        cpuid level\t: 22\nflags\t\t: fpu vme de pse tsc msr aes avx2\n\
        bugs\t\t: cpu_meltdown spectre_v1 spectre_v2\nbogomips\t: 4224.00\n\
        clflush size\t: 64\naddress sizes\t: 39 bits physical, 48 bits virtual\n\
        power management:\n\n\
        processor\t: 1\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 142\n\
        model name\t: Intel(R) Core(TM) i7-8650U CPU @ 1.90GHz\nstepping\t: 10\n\
        microcode\t: 0xb4\ncpu MHz\t\t: 1600.5\ncache size\t: 8192 KB\nphysical id\t: 0\n\
        core id\t\t: 1\nflags\t\t: fpu other\nbugs\t\t: none_here\nbogomips\t: 4224.00\n";

    fn parsed(text: &str) -> Result<CpuInfo, (usize, String)> {
        let mut info = CpuInfo {
            text: text.to_owned(),
            ..CpuInfo::default()
        };
        info.parse().map(|()| info)
    }

    fn samples(text: &str) -> Vec<&str> {
        text.lines().filter(|l| !l.starts_with('#')).collect()
    }

    #[test]
    fn every_processor_gets_its_info_and_frequency() {
        let info = parsed(CPUINFO).unwrap();
        let text = render_with(|out| info.write_info(out, true));
        assert!(text.starts_with(
            "# HELP node_cpu_info CPU information from /proc/cpuinfo.\n# TYPE node_cpu_info gauge\n"
        ));
        assert!(text.contains(
            "# HELP node_cpu_frequency_hertz CPU frequency in hertz from /proc/cpuinfo.\n"
        ));
        assert_eq!(
            samples(&text),
            [
                "node_cpu_info{cachesize=\"8192 KB\",core=\"0\",cpu=\"0\",family=\"6\",microcode=\"0xb4\",model=\"142\",model_name=\"Intel(R) Core(TM) i7-8650U CPU @ 1.90GHz\",package=\"0\",stepping=\"10\",vendor=\"GenuineIntel\"} 1",
                "node_cpu_info{cachesize=\"8192 KB\",core=\"1\",cpu=\"1\",family=\"6\",microcode=\"0xb4\",model=\"142\",model_name=\"Intel(R) Core(TM) i7-8650U CPU @ 1.90GHz\",package=\"0\",stepping=\"10\",vendor=\"GenuineIntel\"} 1",
                "node_cpu_frequency_hertz{core=\"0\",cpu=\"0\",package=\"0\"} 799998000",
                "node_cpu_frequency_hertz{core=\"1\",cpu=\"1\",package=\"0\"} 1600500000",
            ]
        );
        let text = render_with(|out| info.write_info(out, false));
        assert!(!text.contains("frequency"), "{text}");
    }

    #[test]
    fn flags_and_bugs_of_the_first_processor_that_match() {
        let info = parsed(CPUINFO).unwrap();
        let flags = Pattern::new("^(aes|avx.*)$").unwrap();
        let bugs = Pattern::new("spectre").unwrap();
        let text = render_with(|out| info.write_flags(out, Some(&flags), Some(&bugs)));
        assert_eq!(
            samples(&text),
            [
                "node_cpu_flag_info{flag=\"aes\"} 1",
                "node_cpu_flag_info{flag=\"avx2\"} 1",
                "node_cpu_bug_info{bug=\"spectre_v1\"} 1",
                "node_cpu_bug_info{bug=\"spectre_v2\"} 1",
            ]
        );
        assert!(text.contains("# HELP node_cpu_flag_info The `flags` field of CPU information from /proc/cpuinfo taken from the first core.\n"));
        let text = render_with(|out| info.write_flags(out, None, Some(&bugs)));
        assert!(!text.contains("flag_info"), "{text}");
    }

    #[test]
    fn numbers_must_parse_exported_or_not() {
        for (bad, line, what) in [
            ("cpu MHz\t\t: 799.998", 8, "cpu MHz: expected a number, got \"fast\""),
            ("siblings\t: 2", 11, "siblings: expected a number, got \"fast\""),
            ("bogomips\t: 4224.00", 19, "bogomips: expected a number, got \"fast\""),
        ] {
            let key = bad.split(':').next().unwrap();
            let text = CPUINFO.replacen(bad, &format!("{key}: fast"), 1);
            assert_eq!(parsed(&text).err(), Some((line, what.to_owned())), "{bad}");
        }
        // Go's ParseUint(v, 0, 32): hexadecimal is a number, 2^32 is not.
        assert!(parsed(&CPUINFO.replace("siblings\t: 2", "siblings\t: 0x2")).is_ok());
        let err = parsed(&CPUINFO.replace("siblings\t: 2", "siblings\t: 4294967296")).unwrap_err();
        assert_eq!(err.0, 11);
        // A name without `": "` is not looked at, as procfs does not.
        let info = parsed(&CPUINFO.replace("cpu MHz\t\t: 799.998", "cpu MHz\t\t:fast")).unwrap();
        assert_eq!(info.processors[0].mhz, 0.0);
    }

    #[test]
    fn the_first_line_must_be_a_processor() {
        for text in ["", "\n\n", "vendor_id : x\nprocessor : 0\n", "processor 0\n", "processor:0\n"] {
            let err = parsed(text).unwrap_err();
            assert!(err.1.starts_with("expected `processor : N`"), "{text:?}: {err:?}");
        }
        assert_eq!(parsed("\n \nprocessor : 7\n").unwrap().processors[0].processor, 7);
        let err = parsed("processor : x\n").unwrap_err();
        assert_eq!(err, (1, "processor: expected a number, got \"x\"".to_owned()));
    }

    #[test]
    fn values_are_kept_as_written_and_the_last_one_wins() {
        let info = parsed("processor : 0\nmodel name : A: B \nvendor : v1\nvendor_id : v2\n").unwrap();
        let text = render_with(|out| info.write_info(out, false));
        assert!(text.contains("model_name=\"A: B \""), "{text}");
        assert!(text.contains("vendor=\"v2\""), "{text}");
        assert!(text.contains("core=\"\",cpu=\"0\""), "{text}");
        assert!(text.contains("package=\"\""), "{text}");
    }
}

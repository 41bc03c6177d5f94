//! A short soak in CI: 5,000 cycles at 10 ms (about 55 s) against a receiver failing
//! in bursts, with the exact accounting of every sample and a flat VmRSS. The long
//! one is `scripts/soak.sh`; both run [`soak::run`].

use sc_agent_testkit as common;
use sc_agent_testkit::soak;

use std::time::Duration;

#[test]
fn five_thousand_cycles_account_for_every_sample() {
    let options = soak::Options {
        agent: common::bin(),
        procfs: soak::fixture_procfs(std::path::Path::new(env!("CARGO_MANIFEST_DIR"))),
        cycles: 5_000,
        interval: Duration::from_millis(10),
        warmup: 1_000,
        // Debug build, glibc: the allocator arena of the sender thread settles within
        // the first second.
        rss_tolerance_kib: 1024,
    };
    let report = soak::run(&options);
    eprintln!("{report}");
    assert!(report.passed(), "{report}");
    // The faults happened: bursts dropped batches, and every kind of failure came.
    assert!(report.dropped["queue_full"] > 0, "{report}");
    assert!(report.dropped["rejected"] > 0, "{report}");
    for reason in ["http_5xx", "http_429", "timeout"] {
        assert!(report.failures[reason] > 0, "no {reason}: {report}");
    }
}

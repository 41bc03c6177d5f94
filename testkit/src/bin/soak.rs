//! The long soak: `scripts/soak.sh CYCLES [INTERVAL_MS]` builds the release agent and
//! runs this. See `sc_agent_testkit::soak` for what it does and checks.
//!
//! ```text
//! soak --agent PATH [--cycles N] [--interval-ms MS] [--warmup N] [--rss-tolerance-kib KIB]
//! ```
//! Prints the report; exits 1 when the accounting does not hold or VmRSS grew.

use sc_agent_testkit::soak;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

fn main() -> ExitCode {
    let mut options = soak::Options {
        agent: PathBuf::from("target/release/sc-agent"),
        procfs: soak::fixture_procfs(sc_agent_testkit::project_root()),
        cycles: 100_000,
        interval: Duration::from_millis(10),
        warmup: 1_000,
        rss_tolerance_kib: 256,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || {
            args.next()
                .unwrap_or_else(|| panic!("{flag} needs a value"))
        };
        let number = |text: String| -> u64 {
            text.parse()
                .unwrap_or_else(|_| panic!("expected a number, got {text:?}"))
        };
        match flag.as_str() {
            "--agent" => options.agent = PathBuf::from(value()),
            "--cycles" => options.cycles = number(value()),
            "--interval-ms" => options.interval = Duration::from_millis(number(value())),
            "--warmup" => options.warmup = number(value()),
            "--rss-tolerance-kib" => options.rss_tolerance_kib = number(value()),
            other => {
                eprintln!("unknown argument {other:?}");
                return ExitCode::from(2);
            }
        }
    }
    println!(
        "soak: {} cycles every {:?} with {}",
        options.cycles,
        options.interval,
        options.agent.display()
    );
    let report = soak::run(&options);
    print!("{report}");
    if report.passed() {
        println!("soak passed");
        ExitCode::SUCCESS
    } else {
        println!("soak FAILED");
        ExitCode::FAILURE
    }
}

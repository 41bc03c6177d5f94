//! Writes the collectors fuzz target's seeds made from the fixture trees into a
//! directory (`scripts/fuzz.sh` adds them to the corpus):
//!
//! ```text
//! fuzz-seeds OUTPUT_DIR
//! ```

use sc_agent_testkit::fuzz::collectors::fixture_seeds;
use std::process::ExitCode;

fn main() -> ExitCode {
    let Some(out) = std::env::args_os().nth(1) else {
        eprintln!("usage: fuzz-seeds OUTPUT_DIR");
        return ExitCode::from(2);
    };
    let out = std::path::PathBuf::from(out);
    if let Err(e) = std::fs::create_dir_all(&out) {
        eprintln!("fuzz-seeds: {}: {e}", out.display());
        return ExitCode::FAILURE;
    }
    let seeds = fixture_seeds(&sc_agent_testkit::project_root().join("tests/fixtures"));
    for (name, input) in &seeds {
        if let Err(e) = std::fs::write(out.join(name), input) {
            eprintln!("fuzz-seeds: {name}: {e}");
            return ExitCode::FAILURE;
        }
    }
    println!("{} seeds in {}", seeds.len(), out.display());
    ExitCode::SUCCESS
}

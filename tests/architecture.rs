//! docs/ARCHITECTURE.md stays true: every path it names in backticks exists.

use std::path::Path;

#[test]
fn every_path_the_architecture_names_exists() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text =
        std::fs::read_to_string(root.join("docs/ARCHITECTURE.md")).expect("docs/ARCHITECTURE.md");
    let mut checked = 0;
    for (index, code) in text.split('`').enumerate() {
        // Odd pieces are inside backticks; paths are those with a directory part.
        let looks_like_a_path = index % 2 == 1
            && code.contains('/')
            && !code.contains(' ')
            && !code.contains('<')
            && !code.contains('{')
            && code.split('/').next().is_some_and(|top| {
                [
                    "src",
                    "tests",
                    "testkit",
                    "fuzz",
                    "packaging",
                    "scripts",
                    "benches",
                    "docs",
                ]
                .contains(&top)
            });
        if looks_like_a_path {
            assert!(
                root.join(code).exists(),
                "docs/ARCHITECTURE.md names {code}, which does not exist"
            );
            checked += 1;
        }
    }
    assert!(checked > 30, "only {checked} paths found");
}

//! Duration and label parsing: never panic; a parsed duration prints and reads back
//! to the same value; a label the checker accepts is a valid Prometheus label name.

use sc_agent::config::{duration, Millis};
use sc_agent::labels;

pub fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(parsed) = duration::parse(text) {
        let printed = Millis(parsed).to_string();
        assert_eq!(
            duration::parse(&printed),
            Ok(parsed),
            "{text:?} printed as {printed:?}"
        );
    }
    let (name, value) = text.split_once('=').unwrap_or((text, "v"));
    if labels::check_custom(name, value).is_ok() {
        assert!(labels::is_valid_name(name));
        assert!(!name.starts_with("__"));
    }
}

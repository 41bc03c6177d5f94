//! Label names and values as Prometheus defines them.

/// Whether `name` matches `[a-zA-Z_][a-zA-Z0-9_]*`, the label name grammar.
pub fn is_valid_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    match bytes.next() {
        Some(first) if first.is_ascii_alphabetic() || first == b'_' => {}
        _ => return false,
    }
    bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Whether `name` matches `[a-zA-Z_:][a-zA-Z0-9_:]*`, the metric name grammar.
pub fn is_valid_metric_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    match bytes.next() {
        Some(first) if first.is_ascii_alphabetic() || first == b'_' || first == b':' => {}
        _ => return false,
    }
    bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':')
}

/// Checks a label a user configured, naming what is wrong with it.
pub fn check_custom(name: &str, value: &str) -> Result<(), String> {
    if !is_valid_name(name) {
        return Err(format!(
            "label name {name:?} is not valid: expected [a-zA-Z_][a-zA-Z0-9_]*"
        ));
    }
    if name.starts_with("__") {
        return Err(format!(
            "label name {name:?} is reserved: names starting with __ belong to Prometheus"
        ));
    }
    if matches!(name, "job" | "instance" | "vm_id") {
        return Err(format!(
            "label {name:?} is set by the top-level field `{name}`, not under labels"
        ));
    }
    if value.is_empty() {
        return Err(format!(
            "label {name:?} has an empty value: Prometheus treats that as no label"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_names() {
        for good in ["a", "_", "env", "Zone_1", "__x"] {
            assert!(is_valid_name(good), "{good}");
        }
        for bad in ["", "1a", "a-b", "a.b", "a:b", "é", "a b"] {
            assert!(!is_valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn metric_names_allow_colons() {
        assert!(is_valid_metric_name("node:cpu:rate5m"));
        assert!(!is_valid_metric_name("0node"));
        assert!(!is_valid_metric_name(""));
    }

    #[test]
    fn custom_labels_cannot_take_reserved_names() {
        assert!(check_custom("env", "prod").is_ok());
        assert!(check_custom("__name__", "x")
            .unwrap_err()
            .contains("reserved"));
        assert!(check_custom("job", "x").unwrap_err().contains("top-level"));
        assert!(check_custom("vm_id", "x")
            .unwrap_err()
            .contains("top-level"));
        assert!(check_custom("bad-name", "x")
            .unwrap_err()
            .contains("not valid"));
        assert!(check_custom("env", "").unwrap_err().contains("empty"));
    }
}

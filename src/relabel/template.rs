//! `$1`, `${1}`, `$name` and `${name}` in `target_label` and `replacement`.
//!
//! [`expand`] is Go's `regexp.Expand`, which Prometheus uses: `$` followed by the
//! longest run of letters, digits and `_` (or that run in braces) names a group; a
//! run of digits is a group number. So `$1x` is the group *named* `1x` (which does
//! not exist, so it expands to nothing) and `${1}x` is group 1 then `x`. `$$` is a
//! `$`; a `$` that starts no reference stays as it is. A group that does not exist or
//! did not take part in the match expands to nothing.

use super::regex::Captures;

/// A `$` reference: a group number or a group name.
enum Reference<'a> {
    Index(usize),
    Name(&'a str),
}

/// Appends `template` to `out` with its references replaced by the groups of `caps`.
pub fn expand(template: &str, caps: &Captures<'_>, out: &mut String) {
    let mut rest = template;
    while let Some((before, after)) = rest.split_once('$') {
        out.push_str(before);
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
            continue;
        }
        match reference(after) {
            Some((reference, tail)) => {
                let group = match reference {
                    Reference::Index(index) => caps.get(index),
                    Reference::Name(name) => caps.name(name),
                };
                out.push_str(group.unwrap_or_default());
                rest = tail;
            }
            // Malformed: the `$` is text.
            None => {
                out.push('$');
                rest = after;
            }
        }
    }
    out.push_str(rest);
}

/// Reads `name` or `{name}` after a `$` as Go's `extract` does.
fn reference(text: &str) -> Option<(Reference<'_>, &str)> {
    let braced = text.strip_prefix('{');
    let body = braced.unwrap_or(text);
    // Go takes Unicode letters (L) and digits (Nd); Rust's alphabetic and numeric
    // classes are slightly wider (they add letter-like numbers and marks). No group
    // can be named with those, so the difference only moves where a name ends.
    let end = body
        .find(|c: char| !(c == '_' || c.is_alphabetic() || c.is_numeric()))
        .unwrap_or(body.len());
    let (name, mut tail) = body.split_at(end);
    if name.is_empty() {
        return None;
    }
    if braced.is_some() {
        tail = tail.strip_prefix('}')?;
    }
    // A number has ASCII digits only, no leading zero, and fewer than ten digits (Go
    // stops counting at 1e8); anything else is looked up as a name.
    let number = name.bytes().all(|b| b.is_ascii_digit())
        && name.len() < 10
        && !(name.len() > 1 && name.starts_with('0'));
    let reference = match name.parse::<usize>() {
        Ok(index) if number => Reference::Index(index),
        _ => Reference::Name(name),
    };
    Some((reference, tail))
}

/// Whether `template` may be a `target_label` (of `replace`) or a `replacement` (of
/// `labelmap`) that contains references, under Prometheus' legacy name rules: its
/// regex `^(?:(?:[a-zA-Z_]|\$(?:\{\w+\}|\w+))+\w*)+$`, that is a label name in
/// which `$name` and `${name}` may stand anywhere, including first.
pub fn is_valid_name_template(template: &str) -> bool {
    let is_word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut bytes = template.bytes().peekable();
    let mut first = true;
    while let Some(b) = bytes.next() {
        if b == b'$' {
            let braced = bytes.next_if_eq(&b'{').is_some();
            let mut word = 0;
            while bytes.next_if(|&b| is_word(b)).is_some() {
                word += 1;
            }
            if word == 0 || (braced && bytes.next_if_eq(&b'}').is_none()) {
                return false;
            }
        } else if !is_word(b) || (first && b.is_ascii_digit()) {
            return false;
        }
        first = false;
    }
    !first
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::relabel::regex::Regex;

    fn expanded(regex: &str, text: &str, template: &str) -> String {
        let re = Regex::new(regex).unwrap();
        let caps = re.captures(text).unwrap();
        let mut out = String::new();
        expand(template, &caps, &mut out);
        out
    }

    #[test]
    fn references_expand_as_go_regexp_expand() {
        let re = "(?P<first>a)(b)?(c)";
        for (template, expected) in [
            ("$1", "a"),
            ("${1}", "a"),
            ("$0", "ac"),
            ("$1x", ""), // the group named "1x"
            ("${1}x", "ax"),
            ("$first", "a"),
            ("${first}-", "a-"),
            ("$first-", "a-"),
            ("$firstx", ""), // the group named "firstx"
            ("$2", ""),      // did not take part in the match
            ("$9", ""),      // no such group
            ("$01", ""),     // a leading zero makes it a name
            ("$3$1", "ca"),
            ("$$1", "$1"),
            ("$$$1", "$a"),
            ("a$", "a$"),
            ("$-", "$-"),
            ("${", "${"),
            ("${}", "${}"),
            ("${1", "${1"),
            ("${1}}", "a}"),
            ("$é", ""), // a letter: the (missing) group named "é"
            ("ch${1}-ch${1}", "cha-cha"),
            ("no references", "no references"),
            ("$1234567890", ""),
        ] {
            assert_eq!(expanded(re, "ac", template), expected, "{template:?}");
        }
    }

    #[test]
    fn the_default_regex_has_groups_0_and_1() {
        let mut out = String::new();
        expand("<$0|$1|$2|$x>", &Captures::Whole("v"), &mut out);
        assert_eq!(out, "<v|v||>");
    }

    #[test]
    fn legacy_target_label_grammar() {
        // Prometheus' TestTargetLabelLegacyValidity.
        for (template, valid) in [
            ("-label", false),
            ("label", true),
            ("label${1}", true),
            ("${1}label", true),
            ("${1}", true),
            ("${", false),
            ("$", false),
            ("${}", false),
            ("foo${", false),
            ("$1", true),
            ("asd$2asd", true),
            ("-foo${1}bar-", false),
            ("bar.foo${1}bar", false),
            ("_${1}_", true),
            ("foo${bar}foo", true),
            // Beyond Prometheus' table.
            ("", false),
            ("1abc", false),
            ("$1$2", true),
            ("${1}2", true),
            ("$$", false),
            ("${1", false),
            ("a${1}}", false),
            ("é", false),
        ] {
            assert_eq!(is_valid_name_template(template), valid, "{template:?}");
        }
    }

    #[test]
    fn arbitrary_templates_never_panic() {
        let re = Regex::new("(?P<n>a)(b)").unwrap();
        let caps = re.captures("ab").unwrap();
        let alphabet = ['$', '{', '}', '0', '1', '9', 'a', 'n', '_', 'é', '-', 'x'];
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        for _ in 0..20_000 {
            let mut template = String::new();
            for _ in 0..state % 10 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                template.push(alphabet[(state % alphabet.len() as u64) as usize]);
            }
            state = state.wrapping_add(1);
            let mut out = String::new();
            expand(&template, &caps, &mut out);
            let _ = is_valid_name_template(&template);
        }
    }
}

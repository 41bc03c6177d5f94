//! Go's regular expression syntax (RE2, as Prometheus compiles it) rewritten for
//! regex-lite, or refused with the reason.
//!
//! regex-lite reads nearly the same syntax as Go's `regexp`, but not all of it, and a
//! few constructs it accepts mean something else in Go. A pattern is therefore read
//! here the way Go's parser (`regexp/syntax`) reads it, and written out in the form
//! regex-lite understands with the same meaning:
//!
//! | Go | written as | why |
//! | --- | --- | --- |
//! | `\s`, `\S` | `[\t\n\f\r ]`, its complement | regex-lite's `\s` also matches `\v` |
//! | `\Q...\E` | each character escaped | regex-lite has no quoting |
//! | `\012`, `\0` (octal) | `\x{A}`, `\x{0}` | regex-lite has no octal escapes |
//! | `\<`, `\>` | `<`, `>` | in Go an escaped punctuation mark is itself; in regex-lite these are word boundaries |
//! | `{` that does not start `{n}`, `{n,}`, `{n,m}` | `\{` | Go reads it as a literal, regex-lite as an error |
//! | inside `[...]`: `[`, `&&`, `--`, `~~` | escaped | literals in Go; nesting and set operations in regex-lite |
//! | `(?)`, repeated flags (`(?ii)`) | the same flags once | regex-lite refuses them |
//!
//! Refused, as Go refuses them: flags other than `i`, `m`, `s`, `U` (regex-lite's `x`,
//! `R`, `u`), stacked repetitions (`a**`, `a{2}*`, `a*??`), counts above 1000, group
//! names with other characters than ASCII letters, digits and `_`, `\u`/`\U` escapes
//! and unknown escapes. Refused although Go takes them, because regex-lite cannot
//! match them: Unicode classes (`\pL`, `\p{Greek}`) and group names starting with a
//! digit.
//!
//! Not rewritten (documented in [`super`]): `(?i)` folds only ASCII letters, and the
//! size and nesting limits are regex-lite's, not Go's.

use std::fmt::Write as _;

/// The most repetitions Go accepts in `{n,m}`.
const MAX_REPEAT: u32 = 1000;

/// Go's POSIX classes inside brackets (`[[:alpha:]]`); regex-lite has the same set.
const POSIX_CLASSES: [&str; 14] = [
    "alnum", "alpha", "ascii", "blank", "cntrl", "digit", "graph", "lower", "print", "punct",
    "space", "upper", "word", "xdigit",
];

/// Go's `\s`: tab, newline, form feed, carriage return, space (not `\v`).
const SPACE: &str = r"\t\n\x{C}\r ";
/// The complement of Go's `\s`, as ranges usable inside a class.
const NOT_SPACE: &str = r"\x{0}-\x{8}\x{B}\x{E}-\x{1F}\x{21}-\x{10FFFF}";

/// Rewrites Go `pattern` for regex-lite; the error says what Go syntax is not
/// supported, or why Go itself would refuse the pattern.
pub fn translate(pattern: &str) -> Result<String, String> {
    let mut out = String::with_capacity(pattern.len() + 16);
    let mut chars = pattern.chars();
    // Whether the previous item was a repetition (`*`, `+`, `?`, `{n,m}`): Go refuses
    // a second one right after it.
    let mut after_repeat = false;
    while let Some(c) = chars.next() {
        let rest = chars.as_str();
        let mut repeat = false;
        let rest = match c {
            '\\' => escape(rest, &mut out)?,
            '[' => class(rest, &mut out)?,
            '(' => group(rest, &mut out)?,
            '*' | '+' | '?' => {
                if after_repeat {
                    return Err(format!("invalid nested repetition operator `{c}`"));
                }
                out.push(c);
                repeat = true;
                lazy_suffix(rest, &mut out)
            }
            '{' => match counted_repeat(rest)? {
                Some((count, tail)) => {
                    if after_repeat {
                        return Err(format!("invalid nested repetition operator `{{{count}}}`"));
                    }
                    let _ = write!(out, "{{{count}}}");
                    repeat = true;
                    lazy_suffix(tail, &mut out)
                }
                None => {
                    out.push_str(r"\{");
                    rest
                }
            },
            '}' => {
                out.push_str(r"\}");
                rest
            }
            _ => {
                out.push(c);
                rest
            }
        };
        chars = rest.chars();
        after_repeat = repeat;
    }
    Ok(out)
}

/// Copies the `?` that makes a repetition lazy, if there is one.
fn lazy_suffix<'a>(rest: &'a str, out: &mut String) -> &'a str {
    match rest.strip_prefix('?') {
        Some(tail) => {
            out.push('?');
            tail
        }
        None => rest,
    }
}

/// Reads `n}`, `n,}` or `n,m}` after a `{` the way Go does: `None` when the text
/// is not a repetition (then the `{` is a literal), an error when the counts are
/// out of Go's range.
fn counted_repeat(rest: &str) -> Result<Option<(&str, &str)>, String> {
    let Some((inner, tail)) = rest.split_once('}') else {
        return Ok(None);
    };
    let (min, max) = match inner.split_once(',') {
        Some((min, max)) => (min, Some(max).filter(|max| !max.is_empty())),
        None => (inner, None),
    };
    // Go's counts are digits without a leading zero; `{01}`, `{,5}` or `{1, 2}`
    // make the `{` a literal.
    let is_count = |text: &str| {
        !text.is_empty()
            && text.bytes().all(|b| b.is_ascii_digit())
            && !(text.len() > 1 && text.starts_with('0'))
    };
    if !is_count(min) || max.is_some_and(|max| !is_count(max)) {
        return Ok(None);
    }
    let count = |text: &str| {
        text.parse::<u32>()
            .ok()
            .filter(|n| *n <= MAX_REPEAT)
            .ok_or_else(|| {
                format!("invalid repeat count `{{{inner}}}`: counts go up to {MAX_REPEAT}")
            })
    };
    let low = count(min)?;
    if let Some(max) = max {
        if count(max)? < low {
            return Err(format!(
                "invalid repeat count `{{{inner}}}`: the minimum is above the maximum"
            ));
        }
    }
    Ok(Some((inner, tail)))
}

/// An escape outside brackets, after its `\`.
fn escape<'a>(rest: &'a str, out: &mut String) -> Result<&'a str, String> {
    let mut chars = rest.chars();
    let Some(c) = chars.next() else {
        return Err("trailing backslash at end of expression".to_owned());
    };
    let after = chars.as_str();
    match c {
        'A' | 'z' | 'b' | 'B' | 'd' | 'D' | 'w' | 'W' => {
            out.push('\\');
            out.push(c);
            Ok(after)
        }
        's' => {
            let _ = write!(out, "[{SPACE}]");
            Ok(after)
        }
        'S' => {
            let _ = write!(out, "[{NOT_SPACE}]");
            Ok(after)
        }
        'Q' => {
            let (quoted, tail) = match after.find(r"\E") {
                Some(end) => (&after[..end], &after[end + 2..]),
                None => (after, ""),
            };
            out.push_str(&regex_lite::escape(quoted));
            Ok(tail)
        }
        'p' | 'P' => Err(unicode_class(c, after)),
        _ => {
            let (ch, tail) = escaped_char(c, after)?;
            push_literal(ch, out);
            Ok(tail)
        }
    }
}

/// The error for `\p` and `\P`, naming the class.
fn unicode_class(c: char, after: &str) -> String {
    let name = match after.find('}').filter(|_| after.starts_with('{')) {
        Some(end) => &after[..=end],
        None => after.get(..1).unwrap_or_default(),
    };
    format!(
        "Unicode class `\\{c}{name}` is not supported (sc-agent matches with regex-lite, \
         which has no Unicode tables); use explicit ranges such as [a-zA-Z]"
    )
}

/// An escape that stands for one character (in or outside brackets), after `\c`:
/// octal, hexadecimal, control characters and escaped punctuation.
fn escaped_char(c: char, after: &str) -> Result<(char, &str), String> {
    let simple = match c {
        'a' => Some('\x07'),
        'f' => Some('\x0C'),
        't' => Some('\t'),
        'n' => Some('\n'),
        'r' => Some('\r'),
        'v' => Some('\x0B'),
        _ => None,
    };
    if let Some(ch) = simple {
        return Ok((ch, after));
    }
    match c {
        // Go: `\0` takes up to two more octal digits; `\1`-`\7` must be followed by
        // one (a lone `\1` would be a backreference, which Go does not have).
        '0'..='7' => {
            let digits = after
                .bytes()
                .take(2)
                .take_while(|b| (b'0'..=b'7').contains(b))
                .count();
            if c != '0' && digits == 0 {
                return Err(format!(
                    "invalid escape sequence `\\{c}` (backreferences are not supported)"
                ));
            }
            let mut value = c as u32 - '0' as u32;
            for b in after[..digits].bytes() {
                value = value * 8 + u32::from(b - b'0');
            }
            let ch = char::from_u32(value).unwrap_or(char::REPLACEMENT_CHARACTER);
            Ok((ch, &after[digits..]))
        }
        'x' => hex(after),
        'u' | 'U' => Err(format!(
            "invalid escape sequence `\\{c}`: Go's syntax writes a code point as \\x{{10FFFF}}"
        )),
        _ if c.is_ascii() && !c.is_ascii_alphanumeric() => Ok((c, after)),
        _ => Err(format!("invalid escape sequence `\\{c}`")),
    }
}

/// `\xHH` or `\x{H...}`, after the `x`.
fn hex(after: &str) -> Result<(char, &str), String> {
    let invalid = || "invalid escape sequence `\\x`: expected \\xHH or \\x{H...}".to_owned();
    let (digits, tail) = match after.strip_prefix('{') {
        Some(braced) => braced.split_once('}').ok_or_else(invalid)?,
        None => (
            after.get(..2).ok_or_else(invalid)?,
            after.get(2..).unwrap_or_default(),
        ),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(invalid());
    }
    u32::from_str_radix(digits, 16)
        .ok()
        .and_then(char::from_u32)
        .map(|ch| (ch, tail))
        .ok_or_else(|| {
            format!("invalid escape sequence `\\x{{{digits}}}`: not a Unicode scalar value")
        })
}

/// Writes a literal character outside brackets so that regex-lite reads it back.
fn push_literal(ch: char, out: &mut String) {
    match ch {
        // regex-lite refuses `\<` and `\>`; both are plain characters anyway.
        '<' | '>' => out.push(ch),
        _ if ch.is_ascii_punctuation() => {
            out.push('\\');
            out.push(ch);
        }
        _ if ch.is_ascii_graphic() || ch == ' ' || !ch.is_ascii() => out.push(ch),
        _ => {
            let _ = write!(out, "\\x{{{:X}}}", ch as u32);
        }
    }
}

/// Writes a character inside brackets: letters, digits and non-ASCII as they are,
/// anything else as `\x{..}`, which is never special there.
fn push_class_char(ch: char, out: &mut String) {
    if ch.is_ascii_alphanumeric() || !ch.is_ascii() {
        out.push(ch);
    } else {
        let _ = write!(out, "\\x{{{:X}}}", ch as u32);
    }
}

/// A bracketed class, after its `[`, read as Go's `parseClass` reads it.
fn class<'a>(mut rest: &'a str, out: &mut String) -> Result<&'a str, String> {
    out.push('[');
    if let Some(tail) = rest.strip_prefix('^') {
        out.push('^');
        rest = tail;
    }
    let mut first = true;
    loop {
        // A `]` right after `[` or `[^` is a literal.
        if !first {
            if let Some(tail) = rest.strip_prefix(']') {
                out.push(']');
                return Ok(tail);
            }
        }
        first = false;
        if rest.is_empty() {
            return Err("missing closing ] of a character class".to_owned());
        }
        if let Some(named) = rest.strip_prefix("[:") {
            // Go looks for the next `:]` anywhere after it.
            if let Some(end) = named.find(":]") {
                let name = &named[..end];
                if !POSIX_CLASSES.contains(&name.strip_prefix('^').unwrap_or(name)) {
                    return Err(format!("invalid character class `[:{name}:]`"));
                }
                let _ = write!(out, "[:{name}:]");
                rest = &named[end + 2..];
                continue;
            }
        }
        if let Some(tail) = rest.strip_prefix('\\') {
            let perl = match tail.chars().next() {
                Some(c @ ('d' | 'D' | 'w' | 'W')) => Some(format!("\\{c}")),
                Some('s') => Some(SPACE.to_owned()),
                Some('S') => Some(NOT_SPACE.to_owned()),
                Some(c @ ('p' | 'P')) => return Err(unicode_class(c, &tail[1..])),
                _ => None,
            };
            if let Some(perl) = perl {
                out.push_str(&perl);
                rest = &tail[1..];
                continue;
            }
        }
        let (low, tail) = class_char(rest)?;
        rest = tail;
        // `[a-]` is `a` or `-`; otherwise `-` between two characters is a range.
        let range = rest
            .strip_prefix('-')
            .filter(|t| !t.is_empty() && !t.starts_with(']'));
        push_class_char(low, out);
        if let Some(tail) = range {
            let (high, tail) = class_char(tail)?;
            if high < low {
                return Err(format!("invalid character class range `{low}-{high}`"));
            }
            out.push('-');
            push_class_char(high, out);
            rest = tail;
        }
    }
}

/// One character inside brackets: plain, or an escape standing for one character.
fn class_char(rest: &str) -> Result<(char, &str), String> {
    let mut chars = rest.chars();
    match chars.next() {
        None => Err("missing closing ] of a character class".to_owned()),
        Some('\\') => match chars.next() {
            None => Err("trailing backslash at end of expression".to_owned()),
            Some(c) => escaped_char(c, chars.as_str()),
        },
        Some(c) => Ok((c, chars.as_str())),
    }
}

/// A group, after its `(`: plain, named, or flags.
fn group<'a>(rest: &'a str, out: &mut String) -> Result<&'a str, String> {
    let Some(spec) = rest.strip_prefix('?') else {
        out.push('(');
        return Ok(rest);
    };
    let named = spec.strip_prefix("P<").or_else(|| spec.strip_prefix('<'));
    if let Some(named) = named {
        let Some((name, tail)) = named.split_once('>') else {
            return Err(format!("invalid named capture `(?{spec}`"));
        };
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(format!(
                "invalid named capture `(?<{name}>`: names are ASCII letters, digits and _"
            ));
        }
        if name.starts_with(|c: char| c.is_ascii_digit()) {
            return Err(format!(
                "named capture `(?<{name}>` starts with a digit, which regex-lite does not support"
            ));
        }
        let _ = write!(out, "(?P<{name}>");
        return Ok(tail);
    }
    flags(spec, out)
}

/// `(?flags)` or `(?flags:`, after the `(?`, with Go's flags `i`, `m`, `s`, `U`.
fn flags<'a>(spec: &'a str, out: &mut String) -> Result<&'a str, String> {
    let invalid = || {
        let shown: String = spec.chars().take(8).collect();
        format!("invalid or unsupported Perl syntax `(?{shown}`: Go's flags are i, m, s and U")
    };
    let (mut on, mut off) = (String::new(), String::new());
    let mut negated = false;
    let mut saw_flag = false;
    for (at, c) in spec.char_indices() {
        match c {
            'i' | 'm' | 's' | 'U' => {
                let (set, other) = if negated {
                    (&mut off, &mut on)
                } else {
                    (&mut on, &mut off)
                };
                if !set.contains(c) {
                    set.push(c);
                }
                // The last of `(?i-i)` wins, as in Go.
                other.retain(|o| o != c);
                saw_flag = true;
            }
            '-' if !negated => {
                negated = true;
                saw_flag = false;
            }
            ':' | ')' if !negated || saw_flag => {
                let opens = c == ':';
                if on.is_empty() && off.is_empty() {
                    // `(?)` changes nothing; `(?:` is a plain non-capturing group.
                    if opens {
                        out.push_str("(?:");
                    }
                } else {
                    out.push_str("(?");
                    out.push_str(&on);
                    if !off.is_empty() {
                        out.push('-');
                        out.push_str(&off);
                    }
                    out.push(c);
                }
                return Ok(&spec[at + 1..]);
            }
            _ => return Err(invalid()),
        }
    }
    Err(invalid())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(pattern: &str) -> String {
        let out = translate(pattern).unwrap_or_else(|e| panic!("{pattern:?}: {e}"));
        regex_lite::Regex::new(&out).unwrap_or_else(|e| panic!("{pattern:?} -> {out:?}: {e}"));
        out
    }

    fn err(pattern: &str) -> String {
        translate(pattern).expect_err(pattern)
    }

    /// Whether Go `pattern` (unanchored) matches `text` once translated.
    fn matches(pattern: &str, text: &str) -> bool {
        regex_lite::Regex::new(&ok(pattern)).is_ok_and(|r| r.is_match(text))
    }

    #[test]
    fn ordinary_patterns_pass_through() {
        for pattern in [
            "",
            "(.*)",
            "f(.*);(.*)r",
            "(?:.+,|^)path:(/[^,]+).*",
            r"(.+?)(\:\d+)?;(\d+)",
            "(?P<name>a)|b",
            "(?<second>line2)",
            "a{2,3}b{2,}c{4}?",
            r"^\A\b\B\d\D\w\W\z$",
            "(?i)abc(?-i:d)(?s:.)(?U)x+",
            "[[:alpha:]][[:^digit:]]",
            "[a-z0-9_]",
        ] {
            ok(pattern);
        }
        assert_eq!(ok("f(.*)"), "f(.*)");
        assert_eq!(ok("a{2,3}"), "a{2,3}");
    }

    #[test]
    fn space_is_gos_set_without_vertical_tab() {
        assert!(matches(r"^\s$", " ") && matches(r"^\s$", "\t") && matches(r"^\s$", "\n"));
        assert!(!matches(r"^\s$", "\x0B"), "Go's \\s has no \\v");
        assert!(matches(r"^\S$", "\x0B") && matches(r"^\S$", "x") && !matches(r"^\S$", " "));
        assert!(matches(r"^[\s]$", "\r") && !matches(r"^[\s]$", "\x0B"));
        assert!(matches(r"^[^\S]$", " ") && !matches(r"^[^\S]$", "x"));
        // POSIX [:space:] does include \v, in Go too.
        assert!(matches("^[[:space:]]$", "\x0B"));
    }

    #[test]
    fn go_literals_stay_literals() {
        assert!(matches(r"^a\Q.*+\Eb$", "a.*+b"));
        assert!(!matches(r"^a\Q.*\Eb$", "axxb"));
        assert!(matches(r"^\Q(a)", "(a)"), "an unclosed \\Q runs to the end");
        assert!(matches(r"^\101\0$", "A\0"), "octal");
        assert!(matches(r"^\x41\x{263A}$", "A☺"));
        assert!(matches(r"^\<a\>$", "<a>"));
        assert!(matches("^a{$", "a{") && matches("^a{,5}$", "a{,5}"));
        assert!(matches("^a{01}$", "a{01}") && matches("^x{1, 2}$", "x{1, 2}"));
        assert!(matches("^a}$", "a}"));
        assert!(
            matches(r"^a\b{start}$", "a{start}"),
            "Go: a boundary, then text"
        );
        assert!(matches("^[[]$", "[") && matches("^[a[]$", "["));
        assert!(matches("^[a&&b]$", "&") && matches("^[~~]$", "~"));
        assert!(matches("^[--/]$", ".") && matches("^[a-]$", "-"));
        assert!(matches("^[]a]$", "]") && matches("^[^]a]$", "b") && !matches("^[^]a]$", "]"));
        assert!(
            matches(r"^[\d-z]$", "-") && matches(r"^[\d-z]$", "5") && !matches(r"^[\d-z]$", "m")
        );
        assert!(matches(r"^[\]\\]$", "\\") && matches(r"^[\x41-\x43]$", "B"));
        assert!(matches("^a(?)b$", "ab") && matches("^(?ii)A$", "a"));
        assert!(!matches("^(?i-i)A$", "a"), "the later flag wins");
        assert!(matches("^a #b$", "a #b"), "no verbose mode");
    }

    #[test]
    fn go_refusals_are_refused() {
        for (pattern, reason) in [
            ("a**", "nested repetition"),
            ("a*+", "nested repetition"),
            ("a{2}*", "nested repetition"),
            ("a{2}{3}", "nested repetition"),
            ("a*??", "nested repetition"),
            ("a{1001}", "counts go up to 1000"),
            ("a{2,1001}", "counts go up to 1000"),
            ("a{3,2}", "minimum is above"),
            ("(?x)a b", "Go's flags are i, m, s and U"),
            ("(?R)a", "Go's flags"),
            ("(?u)a", "Go's flags"),
            ("(?i-)a", "Go's flags"),
            ("(?--i)a", "Go's flags"),
            ("(?=a)", "Go's flags"),
            ("(?P=n)", "Go's flags"),
            ("(?<a.b>x)", "ASCII letters, digits and _"),
            ("(?P<>x)", "ASCII letters"),
            ("(?P<a", "invalid named capture"),
            (r"\u0041", "\\x{10FFFF}"),
            (r"\e", "invalid escape sequence `\\e`"),
            (r"\1", "backreferences"),
            (r"\8", "invalid escape"),
            ("a\\", "trailing backslash"),
            ("[a", "missing closing ]"),
            ("[z-a]", "invalid character class range"),
            ("[[:foo:]]", "invalid character class `[:foo:]`"),
            (r"\x{110000}", "not a Unicode scalar value"),
            (r"\xZ1", "expected \\xHH"),
        ] {
            let e = err(pattern);
            assert!(e.contains(reason), "{pattern:?}: {e}");
        }
    }

    #[test]
    fn unsupported_go_syntax_says_so() {
        let e = err(r"\pL+");
        assert!(e.contains("`\\pL`") && e.contains("regex-lite"), "{e}");
        assert!(err(r"\p{Greek}").contains("`\\p{Greek}`"));
        assert!(err(r"[\PN]").contains("`\\PN`"));
        assert!(err("(?P<1a>x)").contains("starts with a digit"));
    }

    #[test]
    fn arbitrary_patterns_never_panic() {
        // Config text is outside input: every pattern gets an answer, never a panic.
        const ALPHABET: &[&str] = &[
            "\\", "[", "]", "(", ")", "?", "*", "+", "{", "}", ",", "0", "1", "9", ":", "^", "$",
            "-", "&", "~", "P", "<", ">", "=", "a", "x", "Q", "E", "p", "s", "S", ".", "|", "é",
            "i", "-",
        ];
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..20_000 {
            let len = next() % 14;
            let pattern: String = (0..len)
                .map(|_| ALPHABET[(next() % ALPHABET.len() as u64) as usize])
                .collect();
            if let Ok(out) = translate(&pattern) {
                let _ = regex_lite::Regex::new(&out);
            }
            let _ = crate::relabel::Regex::new(&pattern);
        }
    }
}

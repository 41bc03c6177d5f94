//! Go's `path/filepath` as node_exporter's textfile collector uses it: `Glob` over
//! the `directories` patterns, `Match` for one path component, and `Join` (which
//! cleans) for the file paths it reports.
//!
//! The pattern syntax is Go's: `*` (any run of non-`/` characters, a leading dot
//! included), `?` (one non-`/` character), `[...]` and `[^...]` (a class of
//! characters and `lo-hi` ranges), `\` to escape. A malformed pattern (an unclosed
//! `[`, an empty class, a trailing `\`) is an error, which node_exporter answers by
//! reading the pattern as a plain directory name.

/// A pattern Go's `filepath.Match` refuses (`ErrBadPattern`).
#[derive(Debug, PartialEq, Eq)]
pub struct BadPattern;

/// The expansion of `pattern` as `filepath.Glob`: existing paths, sorted per
/// directory, appended to `out`. A pattern without meta characters is itself if
/// it exists. At most `limit` paths are appended; returns whether some were left.
pub fn glob(pattern: &str, out: &mut Vec<String>, limit: usize) -> Result<bool, BadPattern> {
    matches(pattern, "")?;
    if !has_meta(pattern) {
        if std::fs::symlink_metadata(pattern).is_ok() {
            return Ok(push_limited(out, limit, pattern.to_owned()));
        }
        return Ok(false);
    }
    let (dir, file) = match pattern.rfind('/') {
        Some(at) => pattern.split_at(at + 1),
        None => ("", pattern),
    };
    let dir = match dir {
        "" => ".",
        "/" => "/",
        dir => dir.strip_suffix('/').unwrap_or(dir),
    };
    if !has_meta(dir) {
        return glob_in(dir, file, out, limit);
    }
    if dir == pattern {
        return Err(BadPattern);
    }
    let mut dirs = Vec::new();
    let mut cut = glob(dir, &mut dirs, limit)?;
    for dir in &dirs {
        cut |= glob_in(dir, file, out, limit)?;
    }
    Ok(cut)
}

/// The names in directory `dir` that match `pattern`, joined to `dir`, sorted.
fn glob_in(
    dir: &str,
    pattern: &str,
    out: &mut Vec<String>,
    limit: usize,
) -> Result<bool, BadPattern> {
    // Go ignores I/O errors here: a missing or unreadable directory matches nothing.
    if !std::fs::metadata(dir).is_ok_and(|m| m.is_dir()) {
        return Ok(false);
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(false);
    };
    let mut names: Vec<String> = entries
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .collect();
    names.sort_unstable();
    let mut cut = false;
    for name in names {
        if matches(pattern, &name)? {
            let mut path = String::new();
            join(dir, &name, &mut path);
            cut |= push_limited(out, limit, path);
        }
    }
    Ok(cut)
}

/// Pushes `path` unless `out` holds `limit` paths; returns whether it was left out.
fn push_limited(out: &mut Vec<String>, limit: usize, path: String) -> bool {
    if out.len() >= limit {
        return true;
    }
    out.push(path);
    false
}

fn has_meta(path: &str) -> bool {
    path.contains(['*', '?', '[', '\\'])
}

/// Whether `name` matches `pattern` as Go's `filepath.Match`; the whole pattern is
/// checked for errors even when the match fails early.
pub fn matches(pattern: &str, name: &str) -> Result<bool, BadPattern> {
    let mut pattern = pattern.as_bytes();
    let mut name = name.as_bytes();
    'chunks: while !pattern.is_empty() {
        let (star, chunk, rest) = scan_chunk(pattern);
        pattern = rest;
        if star && chunk.is_empty() {
            // A trailing `*` matches the rest of the name unless it has a `/`.
            return Ok(!name.contains(&b'/'));
        }
        let (after, ok) = match_chunk(chunk, name)?;
        // The last chunk must use up the name; otherwise the star may still match.
        if ok && (after.is_empty() || !pattern.is_empty()) {
            name = after;
            continue;
        }
        if star {
            // Let the star take one more byte at a time, never a `/`.
            let mut skip = 0;
            while skip < name.len() && name.get(skip) != Some(&b'/') {
                skip += 1;
                let (after, ok) = match_chunk(chunk, name.get(skip..).unwrap_or_default())?;
                if ok {
                    if pattern.is_empty() && !after.is_empty() {
                        continue;
                    }
                    name = after;
                    continue 'chunks;
                }
            }
        }
        // No match: the rest of the pattern must still be well formed.
        while !pattern.is_empty() {
            let (_, chunk, rest) = scan_chunk(pattern);
            pattern = rest;
            match_chunk(chunk, b"")?;
        }
        return Ok(false);
    }
    Ok(name.is_empty())
}

/// Splits off the leading stars and the chunk up to the next star outside `[...]`.
fn scan_chunk(pattern: &[u8]) -> (bool, &[u8], &[u8]) {
    let stars = pattern.iter().take_while(|&&b| b == b'*').count();
    let pattern = pattern.get(stars..).unwrap_or_default();
    let mut in_range = false;
    let mut i = 0;
    while let Some(&byte) = pattern.get(i) {
        match byte {
            // The escaped byte is part of the chunk; a trailing `\` is reported by
            // `match_chunk`.
            b'\\' if i + 1 < pattern.len() => i += 1,
            b'[' => in_range = true,
            b']' => in_range = false,
            b'*' if !in_range => break,
            _ => {}
        }
        i += 1;
    }
    let (chunk, rest) = pattern.split_at(i.min(pattern.len()));
    (stars > 0, chunk, rest)
}

/// Matches `chunk` (no stars) at the start of `name`: the rest of the name and
/// whether it matched. After a mismatch the chunk is still read to the end, to
/// report a malformed one.
fn match_chunk<'n>(mut chunk: &[u8], mut name: &'n [u8]) -> Result<(&'n [u8], bool), BadPattern> {
    let mut failed = false;
    while let Some((&first, rest)) = chunk.split_first() {
        if !failed && name.is_empty() {
            failed = true;
        }
        match first {
            b'[' => {
                let mut r = 0;
                if !failed {
                    let (rune, len) = decode_rune(name);
                    r = rune;
                    name = name.get(len..).unwrap_or_default();
                }
                chunk = rest;
                let negated = chunk.first() == Some(&b'^');
                if negated {
                    chunk = chunk.get(1..).unwrap_or_default();
                }
                let mut matched = false;
                let mut ranges = 0;
                loop {
                    if chunk.first() == Some(&b']') && ranges > 0 {
                        chunk = chunk.get(1..).unwrap_or_default();
                        break;
                    }
                    let (lo, rest) = class_char(chunk)?;
                    chunk = rest;
                    let mut hi = lo;
                    if chunk.first() == Some(&b'-') {
                        let (high, rest) = class_char(chunk.get(1..).unwrap_or_default())?;
                        hi = high;
                        chunk = rest;
                    }
                    if lo <= r && r <= hi {
                        matched = true;
                    }
                    ranges += 1;
                }
                if matched == negated {
                    failed = true;
                }
            }
            b'?' => {
                if !failed {
                    if name.first() == Some(&b'/') {
                        failed = true;
                    }
                    let (_, len) = decode_rune(name);
                    name = name.get(len..).unwrap_or_default();
                }
                chunk = rest;
            }
            _ => {
                let (literal, rest) = if first == b'\\' {
                    match rest.split_first() {
                        Some((&escaped, rest)) => (escaped, rest),
                        None => return Err(BadPattern),
                    }
                } else {
                    (first, rest)
                };
                if !failed {
                    if name.first() != Some(&literal) {
                        failed = true;
                    }
                    name = name.get(1..).unwrap_or_default();
                }
                chunk = rest;
            }
        }
    }
    Ok(if failed { (b"", false) } else { (name, true) })
}

/// One character of a `[...]` class (Go's `getEsc`): not `-` or `]` unescaped,
/// and something must follow it.
fn class_char(chunk: &[u8]) -> Result<(u32, &[u8]), BadPattern> {
    let chunk = match chunk.split_first() {
        None | Some((b'-' | b']', _)) => return Err(BadPattern),
        Some((b'\\', [])) => return Err(BadPattern),
        Some((b'\\', rest)) => rest,
        Some(_) => chunk,
    };
    let (rune, len) = decode_rune(chunk);
    if rune == char::REPLACEMENT_CHARACTER as u32 && len == 1 {
        return Err(BadPattern);
    }
    let rest = chunk.get(len..).unwrap_or_default();
    if rest.is_empty() {
        return Err(BadPattern);
    }
    Ok((rune, rest))
}

/// The first character of `bytes` and its length, as Go's `DecodeRuneInString`:
/// U+FFFD and 1 for a byte that starts no valid character (the matcher steps by
/// bytes after a star, so it can land inside one), 0 and 0 for nothing.
fn decode_rune(bytes: &[u8]) -> (u32, usize) {
    let Some(&lead) = bytes.first() else {
        return (0, 0);
    };
    let width = match lead {
        0x00..=0x7f => 1,
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf7 => 4,
        _ => 0,
    };
    let decoded = bytes
        .get(..width)
        .and_then(|b| std::str::from_utf8(b).ok())
        .and_then(|s| s.chars().next());
    match decoded {
        Some(c) => (c as u32, width),
        None => (char::REPLACEMENT_CHARACTER as u32, 1),
    }
}

/// `filepath.Join(dir, name)` into `out`: joined with `/` and cleaned as Go's
/// `filepath.Clean` does (no `.` or empty elements, `x/..` removed, no `..` above
/// the root, `.` for nothing left); empty if both are.
pub fn join(dir: &str, name: &str, out: &mut String) {
    out.clear();
    if dir.is_empty() && name.is_empty() {
        return;
    }
    let rooted = if dir.is_empty() { name } else { dir }.starts_with('/');
    if rooted {
        out.push('/');
    }
    // What `..` may not remove: the root, or the leading `..`s of a relative path.
    let mut floor = out.len();
    for element in dir.split('/').chain(name.split('/')) {
        match element {
            "" | "." => {}
            ".." if out.len() > floor => {
                let last = out.get(floor..).and_then(|kept| kept.rfind('/'));
                out.truncate(last.map_or(floor, |at| floor + at));
            }
            ".." if rooted => {}
            ".." => {
                if !out.is_empty() {
                    out.push('/');
                }
                out.push_str("..");
                floor = out.len();
            }
            element => {
                if out.len() > usize::from(rooted) {
                    out.push('/');
                }
                out.push_str(element);
            }
        }
    }
    if out.is_empty() {
        out.push('.');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TempDir;

    #[test]
    fn matches_as_go_does() {
        // Go's path/filepath match_test.go, the cases that apply on Unix.
        let cases: &[(&str, &str, Result<bool, BadPattern>)] = &[
            ("abc", "abc", Ok(true)),
            ("*", "abc", Ok(true)),
            ("*c", "abc", Ok(true)),
            ("a*", "a", Ok(true)),
            ("a*", "abc", Ok(true)),
            ("a*", "ab/c", Ok(false)),
            ("a*/b", "abc/b", Ok(true)),
            ("a*/b", "a/c/b", Ok(false)),
            ("a*b*c*d*e*/f", "axbxcxdxe/f", Ok(true)),
            ("a*b*c*d*e*/f", "axbxcxdxexxx/f", Ok(true)),
            ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", Ok(false)),
            ("a*b*c*d*e*/f", "axbxcxdxexxx/fff", Ok(false)),
            ("a*b?c*x", "abxbbxdbxebxczzx", Ok(true)),
            ("a*b?c*x", "abxbbxdbxebxczzy", Ok(false)),
            ("ab[c]", "abc", Ok(true)),
            ("ab[b-d]", "abc", Ok(true)),
            ("ab[e-g]", "abc", Ok(false)),
            ("ab[^c]", "abc", Ok(false)),
            ("ab[^b-d]", "abc", Ok(false)),
            ("ab[^e-g]", "abc", Ok(true)),
            ("a\\*b", "a*b", Ok(true)),
            ("a\\*b", "ab", Ok(false)),
            ("a?b", "a☺b", Ok(true)),
            ("a[^a]b", "a☺b", Ok(true)),
            ("a???b", "a☺b", Ok(false)),
            ("a[^a][^a][^a]b", "a☺b", Ok(false)),
            ("[a-ζ]*", "α", Ok(true)),
            ("*[a-ζ]", "A", Ok(false)),
            ("a?b", "a/b", Ok(false)),
            ("a*b", "a/b", Ok(false)),
            ("[\\]a]", "]", Ok(true)),
            ("[\\-]", "-", Ok(true)),
            ("[x\\-]", "x", Ok(true)),
            ("[x\\-]", "-", Ok(true)),
            ("[x\\-]", "z", Ok(false)),
            ("[\\-x]", "x", Ok(true)),
            ("[\\-x]", "-", Ok(true)),
            ("[\\-x]", "a", Ok(false)),
            ("[]a]", "]", Err(BadPattern)),
            ("[-]", "-", Err(BadPattern)),
            ("[x-]", "x", Err(BadPattern)),
            ("[x-]", "-", Err(BadPattern)),
            ("[x-]", "z", Err(BadPattern)),
            ("[-x]", "x", Err(BadPattern)),
            ("[-x]", "-", Err(BadPattern)),
            ("[-x]", "a", Err(BadPattern)),
            ("\\", "a", Err(BadPattern)),
            ("[a-b-c]", "a", Err(BadPattern)),
            ("[", "a", Err(BadPattern)),
            ("[^", "a", Err(BadPattern)),
            ("[^bc", "a", Err(BadPattern)),
            ("a[", "a", Err(BadPattern)),
            ("a[", "ab", Err(BadPattern)),
            ("a[", "x", Err(BadPattern)),
            ("a/b[", "x", Err(BadPattern)),
            ("*x", "xxx", Ok(true)),
            ("*.prom", ".prom", Ok(true)),
        ];
        for (pattern, name, expected) in cases {
            assert_eq!(&matches(pattern, name), expected, "{pattern:?} {name:?}");
        }
    }

    #[test]
    fn joins_and_cleans_as_go_does() {
        let cases = [
            (
                "fixtures/textfile/two",
                "a.prom",
                "fixtures/textfile/two/a.prom",
            ),
            ("dir/", "a.prom", "dir/a.prom"),
            ("./dir//sub/.", "a.prom", "dir/sub/a.prom"),
            ("/var/lib/../lib/node", "x.prom", "/var/lib/node/x.prom"),
            ("/..", "x", "/x"),
            ("../../a", "x", "../../a/x"),
            ("a/../..", "x", "../x"),
            (".", "x", "x"),
            ("", "x", "x"),
            ("a", "", "a"),
            ("", "", ""),
            ("a/b/../../..", "", ".."),
            ("/", "", "/"),
        ];
        let mut out = String::from("old");
        for (dir, name, expected) in cases {
            join(dir, name, &mut out);
            assert_eq!(out, expected, "{dir:?} + {name:?}");
        }
    }

    #[test]
    fn globs_directories_as_go_does() {
        let tmp = TempDir::new();
        for dir in ["a_extra", "b_extra", "c_other", "d_extra.txt"] {
            tmp.write(&format!("{dir}/x.prom"), "");
        }
        tmp.write("e_extra", "a file");
        let root = tmp.path().to_str().unwrap();
        let mut out = Vec::new();
        assert_eq!(glob(&format!("{root}/*_extra"), &mut out, 100), Ok(false));
        let names: Vec<_> = out.iter().map(|p| p.strip_prefix(root).unwrap()).collect();
        // Files match too: node_exporter then fails to list them as directories.
        assert_eq!(names, ["/a_extra", "/b_extra", "/e_extra"]);

        out.clear();
        assert_eq!(
            glob(&format!("{root}/[ab]_*/*.prom"), &mut out, 100),
            Ok(false)
        );
        let names: Vec<_> = out.iter().map(|p| p.strip_prefix(root).unwrap()).collect();
        assert_eq!(names, ["/a_extra/x.prom", "/b_extra/x.prom"]);

        // Without meta characters: the pattern itself, as written, if it exists.
        out.clear();
        let plain = format!("{root}//a_extra/");
        assert_eq!(glob(&plain, &mut out, 100), Ok(false));
        assert_eq!(out, [plain]);
        out.clear();
        assert_eq!(glob(&format!("{root}/missing"), &mut out, 100), Ok(false));
        assert!(out.is_empty());
        assert_eq!(glob(&format!("{root}/[a"), &mut out, 100), Err(BadPattern));
        // The limit cuts the expansion and says so.
        assert_eq!(glob(&format!("{root}/*"), &mut out, 2), Ok(true));
        assert_eq!(out.len(), 2);
    }
}

//! Room sizes, checked on the source itself on every `cargo test`: no
//! product file holds more than `MAX_FILE_LINES` lines outside its
//! `#[cfg(test)]` items, and no product function is longer than
//! `MAX_FN_LINES`, but for the few in `ALLOWED`, each with its reason. A
//! file that grows past that has more than one job: split it by job.

use super::ranks::{code_only, src_files, TESTING};

pub const MAX_FILE_LINES: usize = 400;
pub const MAX_FN_LINES: usize = 60;

/// (file relative to src/, function name or `*` for the whole file, why).
pub const ALLOWED: &[(&str, &str, &str)] = &[
    ("judge/report/text.rs", "text", "the text renderer: one line of code a line of the verdict block"),
    ("judge/report/json.rs", "json", "the JSON renderer: one line of code a field, in the documented order"),
    ("btrfs/mkfs/layout.rs", "new", "mkfs::layout::Plan::new: the on-disk layout, one item after the other, read against mkfs.btrfs"),
];

/// The byte ranges of the `#[cfg(test)]` items in `code` (comments and
/// literals blanked).
fn test_items(code: &str) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(at) = code[from..].find("#[cfg(test)]").map(|i| i + from) {
        from = item_end(code, at + "#[cfg(test)]".len());
        out.push(at..from);
    }
    out
}

/// `code` with every `#[cfg(test)]` item blanked, newlines kept.
pub fn without_tests(code: &str) -> String {
    let mut out = code.to_string();
    for r in test_items(code) {
        let blanked: String = code[r.clone()].chars().map(|c| if c == '\n' { '\n' } else { ' ' }).collect();
        out.replace_range(r, &blanked);
    }
    out
}

/// Where the item that starts at or after `from` ends: after its `;` or
/// its outermost `}`, whichever comes first at depth 0.
fn item_end(code: &str, from: usize) -> usize {
    let mut depth = 0usize;
    let mut brackets = 0usize;
    for (i, c) in code[from..].char_indices() {
        match c {
            '[' => brackets += 1,
            ']' => brackets = brackets.saturating_sub(1),
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return from + i + 1;
                }
            }
            ';' if depth == 0 && brackets == 0 => return from + i + 1,
            _ => {}
        }
    }
    code.len()
}

/// The lines of `code` outside its `#[cfg(test)]` items, blank lines and
/// comments included (a comment is part of the room).
pub fn product_lines(code: &str) -> usize {
    let line_at = |pos: usize| code[..pos].matches('\n').count();
    let in_tests: usize = test_items(code).iter().map(|r| line_at(r.end) - line_at(r.start) + 1).sum();
    code.lines().count() - in_tests
}

/// Files compiled for tests only: a `tests.rs` or anything under a
/// `tests/` folder (declared behind `#[cfg(test)]` by their parent), and
/// testing/.
fn test_file(path: &str) -> bool {
    path.starts_with(&format!("{TESTING}/")) || path.split('/').any(|c| c == "tests" || c == "tests.rs")
}

/// Every function with a body in `code` (tests blanked): (name, first line,
/// length in lines from `fn` to its closing brace).
pub fn functions(code: &str) -> Vec<(String, usize, usize)> {
    let code = without_tests(code);
    let b = code.as_bytes();
    let line_at = |pos: usize| code[..pos].matches('\n').count() + 1;
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(at) = code[i..].find("fn ").map(|k| k + i) {
        i = at + 3;
        let word_start = at == 0 || !(b[at - 1].is_ascii_alphanumeric() || b[at - 1] == b'_');
        if !word_start {
            continue;
        }
        let name: String = code[i..].trim_start().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
        if name.is_empty() {
            continue; // `fn(` as a type
        }
        // The body: the first `{` outside parentheses before any `;`.
        let mut parens = 0i32;
        let mut body = None;
        for (k, c) in code[i..].char_indices() {
            match c {
                '(' | '[' | '<' => parens += 1,
                ')' | ']' => parens -= 1,
                '>' if !code[..i + k].ends_with('-') => parens -= 1,
                '{' if parens <= 0 => {
                    body = Some(i + k);
                    break;
                }
                ';' if parens <= 0 => break,
                _ => {}
            }
        }
        let Some(open) = body else { continue };
        let close = item_end(&code, open);
        out.push((name, line_at(at), line_at(close.saturating_sub(1)) - line_at(at) + 1));
    }
    out
}

fn allowed(path: &str, what: &str) -> bool {
    ALLOWED.iter().any(|(p, f, _)| *p == path && (*f == "*" || *f == what))
}

/// The product files and functions over their size, one line each.
pub fn oversized(files: &[(String, String)]) -> Vec<String> {
    let mut out = Vec::new();
    for (path, text) in files.iter().filter(|(p, _)| !test_file(p)) {
        let code = code_only(text);
        let n = product_lines(&code);
        if n > MAX_FILE_LINES && !allowed(path, "*") {
            out.push(format!("{path}: {n} lines outside tests (at most {MAX_FILE_LINES})"));
        }
        for (name, line, len) in functions(&code) {
            if len > MAX_FN_LINES && !allowed(path, &name) {
                out.push(format!("{path}:{line}: fn {name} is {len} lines (at most {MAX_FN_LINES})"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn no_room_is_too_large() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let files = src_files();
        let found = oversized(&files);
        assert!(found.is_empty(), "too large (split by job, see src/testing/sizes.rs):\n{}", found.join("\n"));
        // The counter sees the tree's functions (one that found none would
        // pass everything).
        let seen: usize = files.iter().map(|(_, t)| functions(&code_only(t)).len()).sum();
        assert!(seen > 500, "only {seen} functions found");
        // Each allowance names a file, or a function in it, that exists and
        // is over its limit today: one no longer needed must go.
        for (path, what, why) in ALLOWED {
            let code = code_only(&std::fs::read_to_string(root.join(path)).unwrap_or_default());
            let over = match *what {
                "*" => product_lines(&code) > MAX_FILE_LINES,
                name => functions(&code).iter().any(|(n, _, len)| n == name && *len > MAX_FN_LINES),
            };
            assert!(!why.is_empty() && over, "{path}: {what}: no such room over its limit; drop the allowance");
        }
    }

    fn long_fn(name: &str, body_lines: usize) -> String {
        format!("pub(crate) fn {name}<T: Fn(u8) -> u8>(x: &[u8; 2]) -> Result<(), ()> {{\n{}}}\n", "    let _ = 1;\n".repeat(body_lines))
    }

    #[test]
    fn a_long_function_and_a_large_file_are_caught() {
        let text = format!("//! x\nuse std::io;\n\n{}\nfn short() {{}}\n", long_fn("long", 59));
        assert_eq!(functions(&code_only(&text)), vec![("long".into(), 4, 61), ("short".into(), 66, 1)]);
        let found = oversized(&[("scenario/x.rs".into(), text.clone())]);
        assert_eq!(found, vec!["scenario/x.rs:4: fn long is 61 lines (at most 60)"]);
        // The same function allowed by name where it is listed.
        assert_eq!(oversized(&[("btrfs/mkfs/layout.rs".into(), long_fn("new", 70))]), Vec::<String>::new());
        let big = "const A: u8 = 1;\n".repeat(401);
        assert_eq!(oversized(&[("base/big.rs".into(), big)]), vec!["base/big.rs: 401 lines outside tests (at most 400)"]);
        // testing/ and test files are not product.
        for p in ["testing/x.rs", "device/usage/tests.rs", "btrfs/mkfs/tests/image.rs"] {
            assert!(oversized(&[(p.into(), text.clone())]).is_empty(), "{p}");
        }
    }

    #[test]
    fn tests_comments_and_strings_do_not_count() {
        let text = format!(
            "fn a() {{\n    let s = \"}} fn fake() {{\";\n}}\n#[cfg(test)]\nmod tests {{\n{}}}\n#[cfg(test)]\n#[path = \"t.rs\"]\nmod more;\nfn b() {{ /* {{ */ }}\n",
            long_fn("inside", 80)
        );
        let code = code_only(&text);
        assert_eq!(functions(&code), vec![("a".into(), 1, 3), ("b".into(), text.lines().count(), 1)]);
        assert_eq!(product_lines(&code), 4);
        // Trait declarations without a body are no functions.
        assert!(functions("trait T { fn f(&self) -> u8; fn g(&self); }").is_empty());
    }
}

//! The layers, checked on the source itself on every `cargo test`: each
//! entry under src/ has a rank (`RANKS`, docs/internals.md, "How the code is laid
//! out"), and every path into the crate (`crate::a::b`, a grouped
//! `use crate::{a, b::c}`, an inline `crate::a::f(..)`, a `super::` chain
//! that climbs out of its folder) may only name a lower rank or its own
//! folder. `sys/` names nothing of the crate; only main.rs lets unsafe code
//! in. `testing/` is compiled for tests only, so anything may name it. The
//! layout in docs/internals.md is checked against the tree and the
//! ranks here too.

use std::path::Path;

/// Entry under src/ (a folder, or main.rs as `main`) → rank, low to high.
pub const RANKS: &[(&str, u32)] = &[
    ("sys", 0),
    ("base", 1),
    ("device", 2),
    ("kernel", 2),
    ("btrfs", 3),
    ("judge", 4),
    ("scenario", 5),
    ("vm", 6),
    ("cli", 7),
    ("main", 8),
];

/// `#[cfg(test)]` only: outside the ranks, in both directions.
pub const TESTING: &str = "testing";

fn rank(module: &str) -> Option<u32> {
    RANKS.iter().find(|(m, _)| *m == module).map(|&(_, r)| r)
}

/// The entry under src/ a file belongs to: `btrfs/mkfs/leaf.rs` → `btrfs`,
/// `main.rs` → `main`.
pub fn entry_of(path: &str) -> &str {
    let first = path.split('/').next().unwrap_or(path);
    first.strip_suffix(".rs").unwrap_or(first)
}

/// The breaks of the rules in `files` (path relative to src/, text), one
/// line each: where, which edge, which ranks.
pub fn violations(files: &[(String, String)]) -> Vec<String> {
    let mut out = Vec::new();
    for (path, text) in files {
        let from = entry_of(path);
        if from == TESTING {
            continue;
        }
        let Some(from_rank) = rank(from) else {
            out.push(format!("{path}:1: src/{from} has no rank: add it to RANKS (src/testing/ranks.rs) and the layout in docs/internals.md"));
            continue;
        };
        let code = code_only(text);
        let line_at = |pos: usize| code[..pos].matches('\n').count() + 1;
        for (pos, line) in code.lines().enumerate().map(|(n, l)| (n + 1, l)).filter(|(_, l)| unsafe_allowed(l)) {
            if path != "main.rs" {
                out.push(format!("{path}:{pos}: allows unsafe code outside main.rs ({})", line.trim()));
            }
        }
        for edge in edges(&code, path) {
            let to = edge.to.as_str();
            if to == TESTING || to == from {
                continue;
            }
            let at = format!("{path}:{}", line_at(edge.pos));
            if from == "sys" {
                out.push(format!("{at}: sys imports nothing of the crate, but names {to} ({})", edge.spelled));
                continue;
            }
            match rank(to) {
                None => out.push(format!("{at}: {from} (rank {from_rank}) → {to}, which has no rank ({})", edge.spelled)),
                Some(to_rank) if to_rank >= from_rank => {
                    let how = if to_rank == from_rank { "sideways" } else { "up" };
                    out.push(format!("{at}: {from} (rank {from_rank}) → {to} (rank {to_rank}) points {how} ({})", edge.spelled))
                }
                Some(_) => {}
            }
        }
    }
    out
}

fn unsafe_allowed(line: &str) -> bool {
    ["allow(unsafe_code", "expect(unsafe_code"].iter().any(|a| line.replace(' ', "").contains(a))
}

/// One path into the crate: the entry under src/ it names, where (byte
/// offset into the code), and how it was spelled.
#[derive(Debug)]
struct Edge {
    to: String,
    pos: usize,
    spelled: String,
}

/// Every `crate::` path in `code`, a grouped import giving one edge per
/// item, and every `super::` chain that climbs to the crate root from the
/// file at `path`.
fn edges(code: &str, path: &str) -> Vec<Edge> {
    let b = code.as_bytes();
    let mut out = Vec::new();
    let word_start = |i: usize| i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_' || b[i - 1] == b'$');
    // The file's depth in modules: btrfs/mkfs/leaf.rs is 3, btrfs/mod.rs 1.
    let depth = path.trim_end_matches("/mod.rs").matches('/').count() + 1;
    let mut i = 0;
    while i < b.len() {
        if code[i..].starts_with("crate::") && word_start(i) {
            let rest = i + "crate::".len();
            out.extend(after_root(code, rest, i, "crate::"));
            i = rest;
        } else if code[i..].starts_with("super::") && word_start(i) {
            let mut j = i;
            let mut ups = 0;
            while code[j..].starts_with("super::") {
                ups += 1;
                j += "super::".len();
                j += code[j..].len() - code[j..].trim_start().len();
            }
            // Inline modules (`mod tests {}`) are not counted: a chain that
            // seems to reach the root and then names an entry is checked.
            if path != "main.rs" && ups >= depth {
                let root: String = code[i..j].split_whitespace().collect();
                out.extend(after_root(code, j, i, &root).into_iter().filter(|e| rank(&e.to).is_some() || e.to == TESTING));
            }
            i = j;
        } else {
            i += 1;
        }
    }
    out
}

/// The edges of what follows `crate::` at `rest`: one name, or a group.
fn after_root(code: &str, rest: usize, start: usize, root: &str) -> Vec<Edge> {
    let tail = &code[rest..];
    let trimmed = tail.trim_start();
    let at = rest + (tail.len() - trimmed.len());
    if let Some(group) = trimmed.strip_prefix('{') {
        group_items(group, at + 1)
            .into_iter()
            .filter(|(_, item)| !item.is_empty() && item != "self")
            .map(|(pos, item)| Edge { to: first_segment(&item), pos, spelled: format!("{root}{item}") })
            .collect()
    } else if trimmed.starts_with('*') {
        vec![Edge { to: "*".into(), pos: start, spelled: format!("{root}*") }]
    } else {
        let name = first_segment(trimmed);
        let spelled: String = trimmed.chars().take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':').collect();
        vec![Edge { to: name, pos: start, spelled: format!("{root}{}", spelled.trim_end_matches(':')) }]
    }
}

fn first_segment(s: &str) -> String {
    s.trim_start().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect()
}

/// The top-level items of a `{...}` group (text after the `{`), with the
/// byte offset of each, nested groups kept whole: `a, b::{c, d}` gives
/// `a` and `b::{c, d}`.
fn group_items(group: &str, offset: usize) -> Vec<(usize, String)> {
    let mut items = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => {
                items.push((start, &group[start..i]));
                break;
            }
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push((start, &group[start..i]));
                start = i + 1;
            }
            _ => {}
        }
    }
    items
        .into_iter()
        .map(|(s, item)| {
            let lead = item.len() - item.trim_start().len();
            (offset + s + lead, item.split_whitespace().collect::<Vec<_>>().join(" "))
        })
        .collect()
}

/// `text` with comments and the insides of string and char literals blanked
/// (newlines kept, so offsets and line numbers stay), so that a path quoted
/// in a string or named in a comment is no edge.
pub fn code_only(text: &str) -> String {
    let c: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let blank = |ch: char| if ch == '\n' { '\n' } else { ' ' };
    let mut i = 0;
    while i < c.len() {
        let next = c.get(i + 1).copied();
        if c[i] == '/' && next == Some('/') {
            while i < c.len() && c[i] != '\n' {
                out.push(' ');
                i += 1;
            }
        } else if c[i] == '/' && next == Some('*') {
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && c.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(blank(c[i]));
                    i += 1;
                }
            }
        } else if c[i] == 'r' && (next == Some('"') || next == Some('#')) && (i == 0 || !(c[i - 1].is_alphanumeric() || c[i - 1] == '_')) {
            // r"..." or r#"..."#: ends at a quote followed by as many #.
            let mut j = i + 1;
            while c.get(j) == Some(&'#') {
                j += 1;
            }
            if c.get(j) != Some(&'"') {
                out.push(c[i]);
                i += 1;
                continue;
            }
            let hashes = j - i - 1;
            out.extend(&c[i..=j]);
            i = j + 1;
            while i < c.len() && !(c[i] == '"' && (1..=hashes).all(|k| c.get(i + k) == Some(&'#'))) {
                out.push(blank(c[i]));
                i += 1;
            }
        } else if c[i] == '"' {
            out.push('"');
            i += 1;
            while i < c.len() && c[i] != '"' {
                if c[i] == '\\' {
                    out.push(' ');
                    i += 1;
                }
                if i < c.len() {
                    out.push(blank(c[i]));
                    i += 1;
                }
            }
            if i < c.len() {
                out.push('"');
                i += 1;
            }
        } else if c[i] == '\'' && (c.get(i + 2) == Some(&'\'') || next == Some('\\')) {
            // A char literal ('x', '\n', '\u{7f}'), not a lifetime.
            out.push('\'');
            i += 1;
            while i < c.len() && c[i] != '\'' {
                if c[i] == '\\' {
                    out.push(' ');
                    i += 1;
                }
                if i < c.len() {
                    out.push(' ');
                    i += 1;
                }
            }
            if i < c.len() {
                out.push('\'');
                i += 1;
            }
        } else {
            out.push(c[i]);
            i += 1;
        }
    }
    out
}

/// Every .rs file under `dir`, as (path relative to `root`, text).
pub fn read_tree(root: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir).expect("read src/").flatten().map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            read_tree(root, &p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            let rel = p.strip_prefix(root).expect("under src/").to_string_lossy().into_owned();
            out.push((rel, std::fs::read_to_string(&p).expect("read a source file")));
        }
    }
}

/// Every .rs file under the crate's src/, as (path relative to it, text).
pub fn src_files() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    read_tree(&root, &root, &mut files);
    assert!(files.len() > 60, "read only {} files", files.len());
    files
}

/// docs/internals.md, "How the code is laid out" section.
pub fn readme_layout(readme: &str) -> &str {
    let start = readme.find("## How the code is laid out").expect("docs/internals.md has a layout section");
    let rest = &readme[start + 2..];
    &readme[start..start + 2 + rest.find("\n## ").unwrap_or(rest.len())]
}

/// Where the layout section and the tree disagree. `tree`: every file and
/// folder under src/, relative to it (folders end in `/`); `exists`: whether
/// a path relative to the repository exists.
pub fn layout_mismatches(section: &str, tree: &[String], exists: impl Fn(&str) -> bool) -> Vec<String> {
    let mut out = Vec::new();
    let words = words_of(section);
    for path in section.split(|c: char| c.is_whitespace() || "`(),;".contains(c)).filter(|w| w.starts_with("src/")) {
        if !exists(path) {
            out.push(format!("docs/internals.md names {path}, which does not exist"));
        }
    }
    // Rows: "    <rank>  src/<entry>  ...".
    let mut ranked = Vec::new();
    for line in section.lines().filter(|l| l.starts_with("    ")) {
        let mut cols = line.split_whitespace();
        let (Some(r), Some(path)) = (cols.next(), cols.next()) else { continue };
        let Some(entry) = path.strip_prefix("src/") else { continue };
        if r != "-" && r.parse::<u32>().is_err() {
            continue;
        }
        let entry = entry_of(entry);
        let want = if entry == TESTING { Some("-".to_string()) } else { rank(entry).map(|n| n.to_string()) };
        if want.as_deref() != Some(r) {
            out.push(format!("docs/internals.md ranks src/{entry} {r}, RANKS says {}", want.unwrap_or_else(|| "nothing".into())));
        }
        ranked.push(entry.to_string());
    }
    for t in tree.iter().filter(|t| !t.trim_end_matches('/').contains('/')) {
        let entry = entry_of(t.trim_end_matches('/'));
        if !ranked.iter().any(|r| r == entry) {
            out.push(format!("docs/internals.md has no rank row for src/{t}"));
        }
    }
    let rows = layout_rows(section);
    for t in tree {
        let name = t.trim_end_matches('/').rsplit('/').next().unwrap_or(t);
        let name = name.strip_suffix(".rs").unwrap_or(name);
        if name == "mod" {
            continue;
        }
        // A file or folder inside a folder is named in the row of the
        // deepest folder above it that has one (src/vm/ktap.rs in the src/vm/
        // row: a "ktap" in the src/judge/ row does not count); a folder with
        // a row of its own needs nothing more.
        let folder = &t[..t.trim_end_matches('/').rfind('/').map_or(0, |i| i + 1)];
        let own_row = t.ends_with('/') && rows.iter().any(|(p, _)| p == t);
        let row = rows.iter().filter(|(p, _)| !folder.is_empty() && folder.starts_with(p.as_str())).max_by_key(|(p, _)| p.len());
        let named = match row {
            Some((_, text)) => own_row || words_of(text).contains(name),
            None => own_row || words.contains(name),
        };
        if !named {
            let within = row.map(|(p, _)| format!(" in the src/{p} row")).unwrap_or_default();
            out.push(format!("docs/internals.md's layout does not name src/{t} ({name}){within}"));
        }
    }
    out
}

fn words_of(text: &str) -> std::collections::HashSet<&str> {
    text.split(|c: char| !(c.is_alphanumeric() || c == '_')).collect()
}

/// The layout's rows: (folder relative to src/, its text with its
/// continuation lines). A row starts at an indented line whose first or
/// second word is a src/ path; the indented lines after it continue it.
fn layout_rows(section: &str) -> Vec<(String, String)> {
    let mut rows: Vec<(String, String)> = Vec::new();
    for line in section.lines().filter(|l| l.starts_with("    ")) {
        let path = line.split_whitespace().take(2).find_map(|w| w.strip_prefix("src/"));
        match (path, rows.last_mut()) {
            (Some(p), _) => rows.push((p.to_string(), line.to_string())),
            (None, Some((_, text))) => {
                text.push('\n');
                text.push_str(line);
            }
            (None, None) => {}
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(p: &str, t: &str) -> (String, String) {
        (p.to_string(), t.to_string())
    }

    #[test]
    fn the_source_keeps_its_layers() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let files = src_files();
        // Every entry under src/ has a rank or is testing/.
        for e in std::fs::read_dir(&root).unwrap().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let name = name.strip_suffix(".rs").unwrap_or(&name).to_string();
            assert!(rank(&name).is_some() || name == TESTING, "src/{name} has no rank in RANKS");
        }
        let found = violations(&files);
        assert!(found.is_empty(), "layering breaks:\n{}", found.join("\n"));
        // The check sees the tree's real edges (a parser that found none
        // would pass everything).
        let seen: usize = files.iter().map(|(p, t)| edges(&code_only(t), p).len()).sum();
        assert!(seen > 150, "only {seen} crate:: edges found");
    }

    #[test]
    fn each_kind_of_upward_import_is_named_with_its_edge() {
        let cases = [
            // A lower layer importing the command line.
            (f("btrfs/fill.rs", "use std::io;\nuse crate::cli::FillMode;"), "btrfs/fill.rs:2: btrfs (rank 3) → cli (rank 7) points up (crate::cli::FillMode)"),
            // The scenario, from a grouped import.
            (
                f("kernel/kmsg/mod.rs", "use crate::{base::size, scenario::config::Config};"),
                "kernel/kmsg/mod.rs:1: kernel (rank 2) → scenario (rank 5) points up (crate::scenario::config::Config)",
            ),
            // The judge, as an inline path in an expression.
            (
                f("device/usage.rs", "fn x() {\n    let v = crate::judge::verdict::judge(f, log);\n}"),
                "device/usage.rs:2: device (rank 2) → judge (rank 4) points up (crate::judge::verdict::judge)",
            ),
            // The report, in a group spread over lines and nested.
            (
                f("btrfs/fs.rs", "use crate::{\n    base::{size, phase},\n    judge::report::Report,\n};"),
                "btrfs/fs.rs:3: btrfs (rank 3) → judge (rank 4) points up (crate::judge::report::Report)",
            ),
            // sys naming the crate at all.
            (f("sys/fs.rs", "use crate::base::size::human;"), "sys/fs.rs:1: sys imports nothing of the crate, but names base (crate::base::size::human)"),
            // Two folders of one rank know nothing of each other.
            (f("device/mod.rs", "use crate::kernel::host;"), "device/mod.rs:1: device (rank 2) → kernel (rank 2) points sideways (crate::kernel::host)"),
            // A super:: chain that climbs out of its folder.
            (f("btrfs/fill.rs", "use super::super::scenario::Config;"), "btrfs/fill.rs:1: btrfs (rank 3) → scenario (rank 5) points up (super::super::scenario::Config)"),
            // The entry point is above everything.
            (f("scenario/mod.rs", "use crate::main;"), "scenario/mod.rs:1: scenario (rank 5) → main (rank 8) points up (crate::main)"),
            (f("judge/verdict.rs", "#[allow(unsafe_code)]\nfn f() {}"), "judge/verdict.rs:1: allows unsafe code outside main.rs (#[allow(unsafe_code)])"),
            (f("newroom/mod.rs", "use crate::sys;"), "newroom/mod.rs:1: src/newroom has no rank: add it to RANKS (src/testing/ranks.rs) and the layout in docs/internals.md"),
            (f("scenario/mod.rs", "use crate::gone::X;"), "scenario/mod.rs:1: scenario (rank 5) → gone, which has no rank (crate::gone::X)"),
        ];
        for (file, want) in &cases {
            assert_eq!(violations(std::slice::from_ref(file)), vec![want.to_string()], "{}", file.1);
        }
    }

    #[test]
    fn downward_sideways_within_a_folder_and_quoted_paths_pass() {
        let fine = [
            f("scenario/run.rs", "use crate::scenario::steps;\nuse crate::{judge::verdict, btrfs::{fill, fs}, base};"),
            f("main.rs", "#[allow(unsafe_code)]\nmod sys;\nuse crate::{cli, scenario, judge::verdict::Kind};"),
            f("judge/report/mod.rs", "// crate::scenario is above us\nuse crate::{kernel::kmsg, base::phase};\n/* crate::cli /* nested */ crate::cli */"),
            f("btrfs/fill.rs", "let s = \"crate::cli::FillMode\";\nlet r = r#\"crate::scenario\"#;\nlet q = '\"'; let c = crate::base::size::human(1);"),
            f("device/usage.rs", "#[cfg(test)]\nmod tests { use crate::testing::TempDir; use super::super::mount; }"),
            f("sys/mod.rs", "use std::io;\npub(crate) fn f() {}"),
            f("testing/mod.rs", "use crate::{cli, scenario::Config};"),
            f("kernel/host.rs", "fn f<'a>(x: &'a str) -> &'a str { x } // crate::judge"),
        ];
        for file in &fine {
            assert!(violations(std::slice::from_ref(file)).is_empty(), "{}: {:?}", file.0, violations(std::slice::from_ref(file)));
        }
    }

    #[test]
    fn comments_and_literals_are_blanked_in_place() {
        let text = "a // crate::x\n\"crate::y\" 'c' '\\n' b /* z */ c";
        let code = code_only(text);
        assert_eq!(code.len(), text.len());
        assert_eq!(code.lines().count(), text.lines().count());
        assert!(!code.contains("crate"), "{code}");
        assert!(code.contains('a') && code.contains(" b ") && code.ends_with(" c"), "{code}");
    }

    /// Every file and folder under src/, relative to it (folders end in `/`).
    fn tree(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            if p.is_dir() {
                out.push(format!("{rel}/"));
                tree(root, &p, out);
            } else if rel.ends_with(".rs") {
                out.push(rel);
            }
        }
    }

    #[test]
    fn the_readme_layout_matches_the_tree_and_the_ranks() {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
        let readme = std::fs::read_to_string(repo.join("docs/internals.md")).unwrap();
        let mut t = Vec::new();
        tree(&repo.join("src"), &repo.join("src"), &mut t);
        assert!(t.len() > 60, "{t:?}");
        let found = layout_mismatches(readme_layout(&readme), &t, |p| repo.join(p).exists());
        assert!(found.is_empty(), "docs/internals.md, \"How the code is laid out\":\n{}", found.join("\n"));
    }

    #[test]
    fn a_readme_that_drifted_from_the_tree_is_caught() {
        let section = "## How the code is laid out\n\n    0     src/sys/   fs\n    3     src/cli/   the options\n    9     src/gone/  x\n";
        let t: Vec<String> = ["sys/", "sys/fs.rs", "sys/mod.rs", "cli/", "cli/mod.rs", "base/", "base/size.rs"].map(String::from).to_vec();
        let found = layout_mismatches(section, &t, |p| p != "src/gone/");
        assert_eq!(
            found,
            [
                "docs/internals.md names src/gone/, which does not exist",
                "docs/internals.md ranks src/cli 3, RANKS says 7",
                "docs/internals.md ranks src/gone 9, RANKS says nothing",
                "docs/internals.md has no rank row for src/base/",
                "docs/internals.md's layout does not name src/base/ (base)",
                "docs/internals.md's layout does not name src/base/size.rs (size)",
            ]
        );
        let readme = format!("# x\n{section}\n## Tests\nsrc/gone/");
        // A name counts only in its own folder's row (or the deepest row
        // above it): vm/ktap.rs is not named by a "ktap" in the judge row.
        let rows = "    4     src/judge/  verdict, report (ktap)\n    6     src/vm/     boot,\n                 guest\n          src/vm/x/   deep\n";
        let t: Vec<String> = ["judge/", "judge/verdict.rs", "vm/", "vm/boot.rs", "vm/guest.rs", "vm/ktap.rs", "vm/x/", "vm/x/deep.rs", "vm/x/y/", "vm/x/y/z.rs"]
            .map(String::from)
            .to_vec();
        let found: Vec<String> = layout_mismatches(rows, &t, |_| true).into_iter().filter(|m| m.contains("does not name")).collect();
        assert_eq!(
            found,
            [
                "docs/internals.md's layout does not name src/vm/ktap.rs (ktap) in the src/vm/ row",
                "docs/internals.md's layout does not name src/vm/x/y/ (y) in the src/vm/x/ row",
                "docs/internals.md's layout does not name src/vm/x/y/z.rs (z) in the src/vm/x/ row",
            ]
        );
        assert_eq!(readme_layout(&readme), section);
    }
}

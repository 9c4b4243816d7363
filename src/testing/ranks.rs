//! The layering rule, checked on the source itself: dependencies point one
//! way (README, "How the code is laid out"). Nothing outside `scenario/`
//! (and `main.rs`) imports it; `sys/` imports nothing of the crate; only
//! `main.rs` lets unsafe code in (for `sys`).

use std::path::Path;

/// The breaks of the rule in `files` (path relative to src/, text).
pub fn violations(files: &[(String, String)]) -> Vec<String> {
    let mut out = Vec::new();
    for (path, text) in files {
        let in_scenario = path.starts_with("scenario/") || path.starts_with("cli/") || path == "main.rs";
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            let at = format!("{path}:{}", n + 1);
            if !in_scenario && imports(code, "scenario") {
                out.push(format!("{at}: imports crate::scenario from below it"));
            }
            if path.starts_with("sys/") && code.contains("crate::") {
                out.push(format!("{at}: sys/ imports the crate"));
            }
            if path != "main.rs" && code.contains("allow(unsafe_code)") {
                out.push(format!("{at}: allows unsafe code outside main.rs"));
            }
        }
    }
    out
}

/// `crate::scenario...`, or `scenario` inside a grouped `use crate::{...}`.
fn imports(code: &str, module: &str) -> bool {
    if code.contains(&format!("crate::{module}")) {
        return true;
    }
    code.split("crate::{").skip(1).any(|group| {
        group.split(['}', ',', ' ']).any(|item| item == module || item.starts_with(&format!("{module}::")))
    })
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

#[test]
fn the_source_keeps_its_layers() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    read_tree(&root, &root, &mut files);
    // This file spells the forbidden forms out to look for them.
    files.retain(|(p, _)| p != "testing/ranks.rs");
    assert!(files.len() > 20, "read only {} files", files.len());
    let found = violations(&files);
    assert!(found.is_empty(), "layering breaks:\n{}", found.join("\n"));
}

#[test]
fn planted_breaks_are_found() {
    let f = |p: &str, t: &str| (p.to_string(), t.to_string());
    let planted = [
        f("report/text.rs", "use crate::scenario::Run;"),
        f("btrfs/fill.rs", "use crate::{device, scenario::run::Stop};"),
        f("kmsg/mod.rs", "use crate::{scenario};"),
        f("sys/fs.rs", "use crate::base::size::human;"),
        f("verdict.rs", "#[allow(unsafe_code)]"),
    ];
    assert_eq!(violations(&planted).len(), planted.len(), "{:?}", violations(&planted));
    let fine = [
        f("scenario/run.rs", "use crate::scenario::steps;"),
        f("main.rs", "#[allow(unsafe_code)]\nmod sys;\nuse crate::scenario;"),
        f("report/mod.rs", "// crate::scenario is above us\nuse crate::{kmsg, phase};"),
        f("sys/mod.rs", "use std::io;"),
    ];
    assert!(violations(&fine).is_empty(), "{:?}", violations(&fine));
}

//! The documentation, checked against what it describes: the README's
//! verdict block is a golden file's content, the README and `--help` name
//! the same options, and nothing under src/, README.md or docs/ sends a
//! reader outside the repository. No root, no device: reads files and runs
//! `--help`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// Each `<!-- golden: PATH -->` fence in `text`: (PATH, the fence's lines
/// between its ``` lines, with their newlines), or an error naming the line.
fn golden_blocks(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    let mut lines = text.lines().enumerate();
    while let Some((n, l)) = lines.next() {
        let Some(path) = l.strip_prefix("<!-- golden: ").and_then(|r| r.strip_suffix(" -->")) else { continue };
        let at = n + 1;
        match lines.next() {
            Some((_, f)) if f.starts_with("```") => {}
            _ => return Err(format!("README.md:{at}: the golden marker is not followed by a ``` fence")),
        }
        let mut body = String::new();
        loop {
            match lines.next() {
                Some((_, "```")) => break,
                Some((_, l)) => {
                    body.push_str(l);
                    body.push('\n');
                }
                None => return Err(format!("README.md:{at}: the golden fence is never closed")),
            }
        }
        match lines.next() {
            Some((_, "<!-- /golden -->")) => {}
            _ => return Err(format!("README.md:{at}: the golden fence is not followed by <!-- /golden -->")),
        }
        out.push((path.to_string(), body));
    }
    Ok(out)
}

#[test]
fn the_readme_verdict_block_is_its_golden_file() {
    let readme = read("README.md");
    let blocks = golden_blocks(&readme).unwrap();
    assert!(!blocks.is_empty(), "README.md has no <!-- golden: PATH --> block");
    for (path, body) in blocks {
        assert!(path.starts_with("tests/fixtures/golden/"), "README.md: {path} is not a golden file");
        let golden = read(&path);
        assert!(body == golden, "README.md's block for {path} differs from the file; copy the file into the README:\n{golden}");
    }
    // The first screen: the block, the warnings (the device, the host-wide
    // swap) and the exit codes in the first 60 lines.
    let head: String = readme.lines().take(60).collect::<Vec<_>>().join("\n");
    for want in ["<!-- /golden -->", "Everything on the device you name is destroyed", "--trigger swapfile", "| 125 |", "| 255 |", "exit 4", "--vm "] {
        assert!(head.contains(want), "README.md's first 60 lines lack {want:?}");
    }
}

#[test]
fn a_drifted_verdict_block_is_caught() {
    let ok = "x\n<!-- golden: tests/fixtures/golden/a.txt -->\n```text\nline 1\nline 2\n```\n<!-- /golden -->\n";
    assert_eq!(golden_blocks(ok).unwrap(), [("tests/fixtures/golden/a.txt".to_string(), "line 1\nline 2\n".to_string())]);
    assert_eq!(golden_blocks("<!-- golden: a -->\ntext\n").unwrap_err(), "README.md:1: the golden marker is not followed by a ``` fence");
    assert_eq!(golden_blocks("\n<!-- golden: a -->\n```\nx\n").unwrap_err(), "README.md:2: the golden fence is never closed");
    assert_eq!(golden_blocks("<!-- golden: a -->\n```\nx\n```\n").unwrap_err(), "README.md:1: the golden fence is not followed by <!-- /golden -->");
}

/// Every `--word` in `text` (letters, digits, dashes; a trailing dash dropped).
fn long_options(text: &str) -> BTreeSet<String> {
    let b = text.as_bytes();
    let mut out = BTreeSet::new();
    let mut i = 0;
    while let Some(p) = text[i..].find("--") {
        let s = i + p;
        let mut e = s + 2;
        while e < b.len() && (b[e].is_ascii_alphanumeric() || b[e] == b'-') {
            e += 1;
        }
        let word = text[s..e].trim_end_matches('-');
        let before_ok = s == 0 || !(b[s - 1].is_ascii_alphanumeric() || b[s - 1] == b'-');
        if before_ok && word.len() > 2 && word.as_bytes()[2].is_ascii_lowercase() {
            out.insert(word.to_string());
        }
        i = e.max(s + 2);
    }
    out
}

/// Options of other programs the README quotes (LAVA, TuxRun): not ours.
const NOT_OURS: [&str; 3] = ["--result", "--shell", "--timeouts"];

fn help() -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_btrfs-reclaim-repro")).arg("--help").output().expect("run the binary's --help");
    assert!(out.status.success(), "--help exited {:?}", out.status);
    String::from_utf8(out.stdout).unwrap()
}

/// (options --help has and the README lacks, options the README names that
/// --help lacks).
fn option_mismatches(help: &str, readme: &str) -> (Vec<String>, Vec<String>) {
    let (h, r) = (long_options(help), long_options(readme));
    let missing = h.difference(&r).cloned().collect();
    let unknown = r.difference(&h).filter(|o| !NOT_OURS.contains(&o.as_str())).cloned().collect();
    (missing, unknown)
}

#[test]
fn help_and_readme_name_the_same_options() {
    let help = help();
    assert!(long_options(&help).len() > 25, "{:?}", long_options(&help));
    let (missing, unknown) = option_mismatches(&help, &read("README.md"));
    assert!(missing.is_empty(), "--help has options README.md never names: {missing:?}");
    assert!(unknown.is_empty(), "README.md names options --help does not have: {unknown:?}");
}

#[test]
fn option_drift_is_caught() {
    assert_eq!(
        long_options("a --fill-mode x, `--vm-accel auto|kvm`, [--json] --- x--y --Big --size-"),
        ["--fill-mode", "--json", "--size", "--vm-accel"].map(String::from).into_iter().collect()
    );
    let (missing, unknown) = option_mismatches("--fill --json", "`--fill` and `--jsn`, LAVA's --shell");
    assert_eq!(missing, ["--json"]);
    assert_eq!(unknown, ["--jsn"]);
}

/// Every `file:line: text` under `roots` that points outside the clone: the
/// old notes file, a tracker's issue number, or the shared folder beside it.
fn outside_pointers(roots: &[PathBuf]) -> Vec<String> {
    fn walk(p: &Path, out: &mut Vec<PathBuf>) {
        if p.is_dir() {
            let mut es: Vec<_> = std::fs::read_dir(p).unwrap().flatten().map(|e| e.path()).collect();
            es.sort();
            for e in es {
                walk(&e, out);
            }
        } else {
            out.push(p.to_path_buf());
        }
    }
    let mut files = Vec::new();
    for r in roots {
        walk(r, &mut files);
    }
    let mut found = Vec::new();
    for f in files {
        let Ok(text) = std::fs::read_to_string(&f) else { continue };
        for (n, line) in text.lines().enumerate() {
            if points_outside(line) {
                let rel = f.strip_prefix(repo()).unwrap_or(&f);
                found.push(format!("{}:{}: {}", rel.display(), n + 1, line.trim()));
            }
        }
    }
    found
}

/// `grep -E 'DOMAIN\.md|issue [0-9]+|\.\./shared'`, as a function.
fn points_outside(line: &str) -> bool {
    // Spelled in two halves so that this file does not match itself.
    let (domain, shared) = (["DOMAIN", ".md"].concat(), ["../", "shared"].concat());
    line.contains(&domain)
        || line.contains(&shared)
        || line.match_indices("issue ").any(|(i, m)| line[i + m.len()..].starts_with(|c: char| c.is_ascii_digit()))
}

#[test]
fn nothing_points_outside_the_clone() {
    let roots = [repo().join("src"), repo().join("README.md"), repo().join("docs"), repo().join("tests/docs.rs")];
    let found = outside_pointers(&roots);
    assert!(found.is_empty(), "these lines point outside the repository: say it here in our own words (docs/), or name the kernel function:\n{}", found.join("\n"));
}

#[test]
fn a_pointer_outside_is_caught() {
    let issue = ["is", "sue 23"].concat();
    assert!(points_outside(&format!("see {issue}")));
    assert!(points_outside(&["see ../", "shared/vm"].concat()));
    assert!(points_outside(&["DOMAIN", ".md says"].concat()));
    assert!(!points_outside("the issue is 23 lines long; docs/kernel.md"));
}

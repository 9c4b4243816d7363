//! Helpers for the privileged mkfs tests: the skip/fail rule, running
//! btrfs-progs, and the normalisation of dump-tree output.

use std::path::Path;
use std::process::Command;

#[path = "../../tests/common/skip.rs"]
mod skip;
pub use skip::{missing_tool, runs};

/// True when the test can run (`need_root`: it mounts loop devices; every
/// one runs btrfs-progs); otherwise the rule of tests/common/skip.rs.
pub fn can_run(test: &str, need_root: bool) -> bool {
    let privilege = if need_root { skip::missing_privilege() } else { None };
    skip::runs(test, privilege.or_else(|| skip::missing_tool("btrfs", "btrfs-progs")))
}

pub struct Ran {
    pub ok: bool,
    pub code: i32,
    pub out: String,
}

/// Runs a command, stdout and stderr together.
pub fn run(cmd: &str, args: &[&str]) -> Ran {
    let out = Command::new(cmd).args(args).output().unwrap_or_else(|e| panic!("cannot run {cmd}: {e}"));
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    Ran { ok: out.status.success(), code: out.status.code().unwrap_or(-1), out: text }
}

/// Runs a command that must succeed.
pub fn must(cmd: &str, args: &[&str]) -> String {
    let r = run(cmd, args);
    assert!(r.ok, "{cmd} {} exited {}:\n{}", args.join(" "), r.code, r.out);
    r.out
}

/// A sparse file of `size` bytes with our filesystem on it.
pub fn make_image(path: &Path, size: u64, layout: crate::btrfs::mkfs::Layout, seed: u64) -> crate::btrfs::mkfs::Image {
    let file = std::fs::OpenOptions::new().create(true).truncate(true).read(true).write(true).open(path).expect("create image");
    file.set_len(size).expect("size image");
    let ids = crate::btrfs::mkfs::Ids::derive(seed, 0, 0, size);
    let image = crate::btrfs::mkfs::build(size, layout, &ids, crate::btrfs::mkfs::LABEL, 1_795_619_748).expect("build");
    crate::btrfs::mkfs::write(&file, path, &image).expect("write image");
    image
}

/// dump-tree output with what legitimately differs between two fresh
/// filesystems replaced by placeholders, in order of first appearance:
/// uuids (U0, U1, …), the UUID tree key halves (K0, …), non-zero
/// timestamps (T) and generations (G). Everything else stays: addresses,
/// item offsets, sizes, free space, flags.
pub fn normalize(dump: &str) -> String {
    let mut seen: Vec<String> = Vec::new();
    let mut token = |word: &str, prefix: &str| {
        let i = seen.iter().position(|s| s == word).unwrap_or_else(|| {
            seen.push(word.to_string());
            seen.len() - 1
        });
        format!("{prefix}{i}")
    };
    let mut out = String::new();
    for line in dump.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let mut norm: Vec<String> = Vec::new();
        let mut i = 0;
        while i < words.len() {
            let inner = words[i].trim_start_matches('(');
            let opening = &words[i][..words[i].len() - inner.len()];
            let w = inner.trim_end_matches(')');
            let closing = &inner[w.len()..];
            if is_uuid(w) && w != "00000000-0000-0000-0000-000000000000" {
                norm.push(format!("{opening}{}{closing}", token(w, "U")));
            } else if w.len() == 18 && w.starts_with("0x") && line.contains("UUID_KEY_SUBVOL") {
                norm.push(format!("{opening}{}{closing}", token(w, "K")));
            } else if matches!(w, "generation" | "gen" | "generation_v2" | "chunk_root_generation") && i + 1 < words.len() && words[i + 1].parse::<u64>().is_ok() {
                norm.push(format!("{w} G"));
                i += 1;
            } else if is_time(w) && w != "0.0" && i + 2 < words.len() && words[i + 1].starts_with('(') {
                norm.push("T".to_string());
                i += 2;
            } else {
                norm.push(words[i].to_string());
            }
            i += 1;
        }
        out.push_str(&norm.join(" "));
        out.push('\n');
    }
    out
}

fn is_uuid(w: &str) -> bool {
    let b = w.as_bytes();
    b.len() == 36 && b.iter().enumerate().all(|(i, c)| if [8, 13, 18, 23].contains(&i) { *c == b'-' } else { c.is_ascii_hexdigit() })
}

fn is_time(w: &str) -> bool {
    match w.split_once('.') {
        Some((s, ns)) => !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit()) && ns.bytes().all(|c| c.is_ascii_digit()),
        None => false,
    }
}

/// Lines of `a` and `b` that differ, as a short diff for a failure message.
pub fn diff(a: &str, b: &str) -> Vec<String> {
    let (a, b): (Vec<&str>, Vec<&str>) = (a.lines().collect(), b.lines().collect());
    let mut out = Vec::new();
    for i in 0..a.len().max(b.len()) {
        let (x, y) = (a.get(i).copied().unwrap_or("<none>"), b.get(i).copied().unwrap_or("<none>"));
        if x != y {
            out.push(format!("line {}: ours  : {x}\nline {}: mkfs  : {y}", i + 1, i + 1));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_what_differs_between_fresh_filesystems() {
        let a = "fs uuid 68c980f7-2ac6-4401-ba52-6e180b2af0d2\n\
                 \tgeneration 6 root_dirid 0 bytenr 30408704\n\
                 \t\tctime 1795619748.0 (2026-11-25 15:15:48)\n\
                 \t\tstime 0.0 (1970-01-01 00:00:00)\n\
                 \titem 0 key (0xc2459ec2a014000a UUID_KEY_SUBVOL 0x994e2b391d2a2ebb) itemoff 16275";
        let n = normalize(a);
        assert_eq!(
            n,
            "fs uuid U0\ngeneration G root_dirid 0 bytenr 30408704\nctime T\nstime 0.0 (1970-01-01 00:00:00)\nitem 0 key (K1 UUID_KEY_SUBVOL K2) itemoff 16275\n"
        );
        // Addresses are kept: a moved block is a difference.
        assert_ne!(normalize("bytenr 30408704"), normalize("bytenr 30425088"));
    }
}

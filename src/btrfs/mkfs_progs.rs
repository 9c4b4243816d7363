//! mkfs.btrfs: the only program we run. The filesystem must use the v1 free
//! space cache: the injected ENOSPC sits in delete_block_group_cache(), which
//! only runs for block groups that own a v1 cache inode.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::sys::process::{kill, pending_signal, Pid, Signal};

use crate::btrfs::mkfs::LABEL;
use crate::btrfs::Failure;

/// Where mkfs.btrfs is, searching PATH and the usual sbin directories (root
/// shells under sudo often lack /usr/sbin). Relative PATH entries are
/// skipped: as root, a stray ./mkfs.btrfs must not run. Only executable
/// regular files count.
pub fn find() -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .filter(|d| d.starts_with('/'))
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/bin", "/bin"])
        .map(|d| Path::new(d).join("mkfs.btrfs"))
        .find(|p| std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0));
    found
}

/// `mkfs.btrfs, part of btrfs-progs v6.2` → (6, 2).
pub fn parse_version(text: &str) -> Option<(u32, u32)> {
    let at = text.find("btrfs-progs v")? + "btrfs-progs v".len();
    let mut parts = text[at..].split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next().and_then(|m| m.parse().ok()).unwrap_or(0);
    Some((major, minor))
}

/// The ways to turn the free space tree off, best first for this version.
/// ≤ 6.2: `-R ^free-space-tree`; 6.3–6.18: `-O ^free-space-tree` (`-R`
/// kept as an alias); ≥ 6.19 block-group-tree is a default that needs the free
/// space tree, so it goes too.
pub fn v1_spellings(version: Option<(u32, u32)>) -> Vec<Vec<&'static str>> {
    let r = vec!["-R", "^free-space-tree"];
    let o = vec!["-O", "^free-space-tree"];
    let o_bgt = vec!["-O", "^free-space-tree,^block-group-tree"];
    match version {
        Some(v) if v <= (6, 2) => vec![r, o],
        Some(v) if v <= (6, 18) => vec![o, r, o_bgt],
        // Newer, or no version to go by: assume a current mkfs.
        _ => vec![o_bgt, o, r],
    }
}

pub fn version_of(mkfs: &Path) -> Option<(u32, u32)> {
    let out = Command::new(mkfs).arg("--version").stdin(Stdio::null()).output().ok()?;
    parse_version(&String::from_utf8_lossy(&out.stdout)).or_else(|| parse_version(&String::from_utf8_lossy(&out.stderr)))
}

/// What mkfs was asked to make (data is always single).
#[derive(Debug, Clone)]
pub struct Layout {
    pub metadata: &'static str,
    pub nodesize: Option<u32>,
}

/// Runs mkfs once; polls so that a signal can stop it. `Ok(Err(why))`:
/// mkfs ran and failed (its stderr, last lines), where another spelling
/// may do; `Err`: it could not run, or a signal stopped it.
pub fn run(mkfs: &Path, dev: &Path, layout: &Layout, extra: &[&str]) -> Result<Result<(), String>, Failure> {
    let mut cmd = Command::new(mkfs);
    cmd.args(["-f", "-L", LABEL, "-m", layout.metadata, "-d", "single"]);
    let nodesize;
    if let Some(n) = layout.nodesize {
        nodesize = n.to_string();
        cmd.args(["--nodesize", &nodesize]);
    }
    cmd.args(extra).arg(dev).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| Failure::Failed(format!("cannot run {}: {e}", mkfs.display())))?;
    let mut stderr = child.stderr.take().expect("piped stderr");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let status = loop {
        if let Some(sig) = pending_signal() {
            let _ = kill(Pid(child.id() as i32), Signal::TERM);
            let _ = child.wait();
            return Err(Failure::Interrupted(sig));
        }
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Ok(Err(format!("waiting for mkfs.btrfs: {e}"))),
        }
    };
    let err = reader.join().unwrap_or_default();
    if status.success() {
        Ok(Ok(()))
    } else {
        let tail: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
        let tail = tail[tail.len().saturating_sub(3)..].join(" / ");
        Ok(Err(format!("mkfs.btrfs {}: {tail}", status)))
    }
}

/// Formats `dev` for this run. With `v1`, tries each spelling that turns the
/// free space tree off; returns the spelling used, or None when every one was
/// rejected and the caller must convert at mount time (`clear_cache`).
pub fn format(mkfs: &Path, dev: &Path, layout: &Layout, v1: bool) -> Result<Option<String>, Failure> {
    if !v1 {
        return run(mkfs, dev, layout, &[])?.map(|()| None).map_err(Failure::Failed);
    }
    let mut last = None;
    for spelling in v1_spellings(version_of(mkfs)) {
        match run(mkfs, dev, layout, &spelling)? {
            Ok(()) => return Ok(Some(spelling.join(" "))),
            Err(e) => last = Some(e),
        }
    }
    // Every spelling rejected: a default filesystem, converted at mount.
    match run(mkfs, dev, layout, &[])? {
        Ok(()) => Ok(None),
        Err(e) => Err(Failure::Failed(last.map(|l| format!("{l}; default mkfs: {e}")).unwrap_or(e))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mkfs_that_fails_is_retried_one_that_cannot_run_is_not() {
        let layout = Layout { metadata: "dup", nodesize: None };
        let dev = Path::new("/nonexistent-device");
        match run(Path::new("false"), dev, &layout, &[]) {
            Ok(Err(why)) => assert!(why.starts_with("mkfs.btrfs exit status: 1"), "{why}"),
            other => panic!("{other:?}"),
        }
        match format(Path::new("false"), dev, &layout, true) {
            Err(Failure::Failed(why)) => assert!(why.contains("; default mkfs: mkfs.btrfs exit status: 1"), "{why}"),
            other => panic!("{other:?}"),
        }
        match format(Path::new("/nonexistent/mkfs.btrfs"), dev, &layout, true) {
            Err(Failure::Failed(why)) => assert!(why.starts_with("cannot run /nonexistent/mkfs.btrfs: ") && !why.contains("default mkfs"), "{why}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn parses_versions() {
        assert_eq!(parse_version("mkfs.btrfs, part of btrfs-progs v6.2\n"), Some((6, 2)));
        assert_eq!(parse_version("mkfs.btrfs, part of btrfs-progs v6.19.1\n"), Some((6, 19)));
        assert_eq!(parse_version("btrfs-progs v5.16.2 "), Some((5, 16)));
        assert_eq!(parse_version("something else"), None);
    }

    #[test]
    fn picks_the_free_space_tree_spelling_by_version() {
        assert_eq!(v1_spellings(Some((6, 2)))[0], vec!["-R", "^free-space-tree"]);
        assert_eq!(v1_spellings(Some((5, 15)))[0], vec!["-R", "^free-space-tree"]);
        assert_eq!(v1_spellings(Some((6, 3)))[0], vec!["-O", "^free-space-tree"]);
        assert_eq!(v1_spellings(Some((6, 18)))[0], vec!["-O", "^free-space-tree"]);
        assert_eq!(v1_spellings(Some((6, 19)))[0], vec!["-O", "^free-space-tree,^block-group-tree"]);
        // Whatever the version, every spelling is tried before giving up.
        for v in [Some((6, 2)), Some((6, 10)), Some((7, 0)), None] {
            assert!(v1_spellings(v).len() >= 2);
        }
    }
}

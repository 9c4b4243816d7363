//! The skip rule of the privileged tests, shared by the end-to-end tests and
//! the crate's own mkfs tests (src/testing/mkfs_env.rs includes this file):
//! std only. A test that cannot run prints why and skips, except in CI (CI
//! set), where a skip is a failure.

use std::path::{Path, PathBuf};

/// Why this machine cannot mkfs and mount loop devices, if it cannot.
pub fn missing_privilege() -> Option<String> {
    if !euid_is_root() {
        Some("not root".into())
    } else if !Path::new("/dev/loop-control").exists() {
        Some("no /dev/loop-control".into())
    } else if !std::fs::read_to_string("/proc/filesystems").unwrap_or_default().contains("btrfs") {
        Some("the kernel has no btrfs".into())
    } else {
        None
    }
}

/// Why `cmd` cannot be run, if it cannot.
pub fn missing_tool(cmd: &str, package: &str) -> Option<String> {
    which(cmd).is_none().then(|| format!("{package} ({cmd}) not installed"))
}

/// True when the test can run (`reason` is None); otherwise prints why and
/// skips, or panics in CI.
pub fn runs(test: &str, reason: Option<String>) -> bool {
    match reason {
        None => true,
        Some(r) => {
            if std::env::var_os("CI").is_some() {
                panic!("{test}: privileged test cannot run in CI: {r}");
            }
            eprintln!("SKIP {test}: {r}");
            false
        }
    }
}

fn euid_is_root() -> bool {
    // std only: the effective uid from /proc.
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        .unwrap_or(false)
}

pub fn which(cmd: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    // Bound before returning: the iterator borrows `path`.
    let found = path.split(':').chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"]).map(|d| Path::new(d).join(cmd)).find(|p| p.is_file());
    found
}

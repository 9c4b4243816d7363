//! The aarch64 build runs under qemu-user: help, version, preflight.

mod common;
use common::*;
use std::path::PathBuf;
use std::process::Command;

/// The aarch64 binary and qemu-aarch64-static, or why they are missing (a
/// failure in CI, where `make test` builds the one and .ci/run installs the
/// other).
fn setup(test: &str) -> Option<(PathBuf, PathBuf)> {
    let bin = std::env::var_os("BRR_BIN_AARCH64").map(PathBuf::from);
    let qemu = which("qemu-aarch64-static");
    match (bin, qemu) {
        (Some(b), Some(q)) if b.is_file() => Some((b, q)),
        (b, q) => {
            runs(test, Some(format!("aarch64 binary {b:?} (BRR_BIN_AARCH64, set by make test), qemu-aarch64-static {q:?}")));
            None
        }
    }
}

fn run_arm(bin: &PathBuf, qemu: &PathBuf, args: &[&str]) -> Run {
    Command::new(qemu).arg(bin).args(args).env_clear().output().unwrap().into()
}

#[test]
fn aarch64_help_and_version() {
    let Some((bin, qemu)) = setup("aarch64_help_and_version") else { return };
    let r = run_arm(&bin, &qemu, &["--version"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.starts_with("btrfs-reclaim-repro ") && r.stdout.contains("aarch64-unknown-linux-musl"), "{}", r.stdout);
    let r = run_arm(&bin, &qemu, &["--help"]);
    assert_eq!(r.code, 0);
    assert!(r.stdout.contains("git bisect run"));
    let r = run_arm(&bin, &qemu, &["--fill", "0", "a", "b"]);
    assert_eq!(r.code, 2);
}

#[test]
fn aarch64_preflight_on_an_image() {
    let Some((bin, qemu)) = setup("aarch64_preflight_on_an_image") else { return };
    if !privileged("aarch64_preflight_on_an_image") {
        return;
    }
    let s = Scratch::new("arm-check");
    sparse(&s.img, 3 << 30);
    let out = Command::new(&qemu)
        .arg(&bin)
        .args(["--check", s.img(), s.mnt()])
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .output()
        .unwrap();
    let r: Run = out.into();
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("a run would go ahead"));
    assert!(r.stdout.contains("3 GiB"));
    s.assert_clean();
}

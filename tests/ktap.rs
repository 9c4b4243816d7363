//! --ktap end to end on this machine's kernel: stdout is one KTAP document
//! (version, plan, `# ` lines, one result), the plan is out before mkfs,
//! and the exit codes are kselftest's.

mod common;
use common::*;

use std::process::Command;
use std::time::Duration;

/// Checks the shape every --ktap stdout has and returns its result line.
fn ktap_result(test: &str, out: &Run) -> String {
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(lines.len() >= 3, "{test}: too short:\n{}\nstderr:\n{}", out.stdout, out.stderr);
    assert_eq!(lines[..2], ["KTAP version 1", "1..1"], "{test}:\n{}", out.stdout);
    let last = lines[lines.len() - 1];
    for l in &lines[2..lines.len() - 1] {
        assert!(*l == "#" || l.starts_with("# "), "{test}: not a diagnostic: {l:?}\n{}", out.stdout);
    }
    last.to_string()
}

#[test]
fn a_clean_run_is_ok_and_stdout_is_only_ktap() {
    let test = "a_clean_run_is_ok_and_stdout_is_only_ktap";
    if !privileged(test) {
        return;
    }
    let s = Scratch::new("ktap-ok");
    let r = run(&["--ktap", "--size", "3G", "--seed", "1", s.img(), s.mnt()]);
    assert_eq!(ktap_result(test, &r), "ok 1 btrfs_reclaim_repro", "{}", r.stderr);
    assert_eq!(r.code, 0);
    assert!(r.stdout.contains("# btrfs-reclaim-repro ") && r.stdout.contains(": NOT REPRODUCED\n"), "{}", r.stdout);
    assert!(r.stdout.contains("\n# reason:   failure path exercised"), "{}", r.stdout);
    // The text block is not printed besides the KTAP lines.
    assert!(!r.stderr.contains("== btrfs-reclaim-repro"), "{}", r.stderr);
    s.assert_clean();
}

/// The plan is flushed once the preflight passed and before mkfs: held at
/// mkfs, the run has printed it already. A signal then is an ERROR result
/// with the signal's exit code.
#[test]
fn the_plan_is_out_before_mkfs_and_an_interruption_is_an_error() {
    let test = "the_plan_is_out_before_mkfs_and_an_interruption_is_an_error";
    if !privileged(test) {
        return;
    }
    let s = Scratch::new("ktap-int");
    // stdout into stderr, which Running reads line by line as it comes.
    let sh = std::path::Path::new("/bin/sh");
    let program = bin();
    let args = ["-c", "exec \"$@\" 1>&2", "sh", program.to_str().unwrap(), "--ktap", "--size", "3G", s.img(), s.mnt()];
    let mut r = Running::start(sh, &args, &[("BRR_TEST_PAUSE", "mkfs")]);
    let paused = r.wait_for_line("pausing at mkfs", Duration::from_secs(90));
    let before = r.stderr.clone();
    if paused {
        send_signal(r.pid(), "TERM");
    }
    let out = r.finish(Duration::from_secs(60));
    assert!(paused, "{test}: never paused:\n{}", out.stderr);
    assert!(before.starts_with("KTAP version 1\n1..1\n"), "{test}: no plan before mkfs:\n{before}");
    assert_eq!(out.code, 143, "{test}:\n{}", out.stderr);
    let last = out.stderr.lines().rfind(|l| l.contains("ok 1 ")).unwrap_or_default();
    assert_eq!(last, "not ok 1 btrfs_reclaim_repro # ERROR interrupted by SIGTERM", "{test}:\n{}", out.stderr);
    assert_eq!(out.stderr.matches("KTAP version 1").count(), 1, "{test}: one plan:\n{}", out.stderr);
    s.assert_clean();
}

/// An unsafe device is a configuration error: `not ok ... # ERROR`, exit 1.
#[test]
fn a_device_holding_ext4_is_an_error() {
    let test = "a_device_holding_ext4_is_an_error";
    if !runs(test, missing_privilege().or_else(|| missing_tool("mkfs.ext4", "e2fsprogs"))) {
        return;
    }
    let s = Scratch::new("ktap-ext4");
    std::fs::File::create(&s.img).unwrap().set_len(3 << 30).unwrap();
    assert!(Command::new("mkfs.ext4").args(["-q", "-F", s.img()]).status().unwrap().success());
    let r = run(&["--ktap", "--stress", "10", s.img(), s.mnt()]);
    let last = ktap_result(test, &r);
    assert!(last.starts_with("not ok 1 btrfs_reclaim_repro_stress # ERROR refusing "), "{last}");
    assert!(last.contains("ext4"), "{last}");
    assert_eq!(r.code, 1);
    s.assert_clean();
}

/// Not root: a missing prerequisite, which kselftest skips (exit 4).
#[test]
fn not_root_is_a_skip() {
    let test = "not_root_is_a_skip";
    if !runs(test, missing_tool("setpriv", "util-linux")) {
        return;
    }
    // As root, drop to nobody; a tester who is not root already is one.
    let mut cmd = Command::new("setpriv");
    if missing_privilege().as_deref() == Some("not root") {
        cmd = Command::new(bin());
    } else {
        cmd.args(["--reuid", "65534", "--regid", "65534", "--clear-groups"]).arg(bin());
    }
    let out: Run = cmd.args(["--ktap", "/nonexistent.img", "/nonexistent-mnt"]).output().expect("run the binary").into();
    let last = ktap_result(test, &out);
    assert!(last.starts_with("ok 1 btrfs_reclaim_repro # SKIP refusing to run: not root"), "{last}");
    assert_eq!(out.code, 4);
}

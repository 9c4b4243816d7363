//! The single pass end to end on loop devices, on this machine's kernel.

mod common;
use common::*;

/// The default (--enospc auto) on this stock kernel: the injected pass
/// relocates without a failure, so a natural pass follows and reclaim's
/// relocations fail with a real ENOSPC: NOT REPRODUCED, failure path natural.
#[test]
fn the_default_reaches_the_failure_path_on_a_stock_kernel() {
    if !privileged("the_default_reaches_the_failure_path_on_a_stock_kernel") {
        return;
    }
    let s = Scratch::new("auto");
    let r = run(&["--size", "3G", "--json", "--seed", "1", s.img(), s.mnt()]);
    eprintln!("{}", r.stderr);
    assert_eq!(r.json_str("verdict"), "NOT_REPRODUCED", "{}", r.json("reason"));
    assert_eq!(r.code, 0);
    assert_eq!(r.json_str("enospc_mode"), "auto");
    assert_eq!(r.json_str("mkfs"), "builtin");
    assert_eq!(r.json_str("failure_path"), "natural");
    assert!(r.json_u64("relocation_failures") >= 1);
    assert_eq!(r.json("next_step"), "null");
    let passes = r.json("passes");
    assert!(passes.contains("\"layout\": \"injected\"") && passes.contains("\"layout\": \"natural\""), "{passes}");
    assert!(r.stderr.contains("a natural pass follows"), "{}", r.stderr);
    s.assert_clean();
}

/// --enospc injected on a stock kernel: the best honest answer is that
/// reclaim ran and nothing failed, with what to do next.
#[test]
fn single_pass_on_a_3g_image_reclaims_with_the_v1_cache() {
    if !privileged("single_pass_on_a_3g_image_reclaims_with_the_v1_cache") {
        return;
    }
    let s = Scratch::new("single");
    let log = s.dir.join("kmsg.log");
    let r = run(&["--size", "3G", "--json", "--seed", "1", "--enospc", "injected", "--log", log.to_str().unwrap(), s.img(), s.mnt()]);
    eprintln!("{}", r.stderr);
    assert_eq!(r.json_str("space_cache"), "v1");
    assert!(r.json_u64("v1_cache_block_groups") >= 1);
    assert!(r.json_u64("reclaim_count") >= 1, "reclaim never fired");
    assert!(r.json_u64("data_block_group_bytes") >= 100 << 20);
    assert_eq!(r.json_str("verdict"), "INCONCLUSIVE");
    assert!(r.json_str("reason").contains("reclaim ran but no relocation failed"), "{}", r.json("reason"));
    assert!(r.json_str("next_step").contains("--enospc auto"), "{}", r.json("next_step"));
    assert_eq!(r.code, 125);
    assert_eq!(r.json_u64("exit_code"), 125);
    assert_eq!(r.json_u64("seed"), 1);
    let fill = r.json("fill_percent").parse::<f64>().unwrap();
    assert!((85.0..=100.0).contains(&fill), "fill {fill}");
    // stdout is exactly one JSON object; the human block went to stderr.
    assert_eq!(r.stdout.trim().lines().count(), 1);
    assert!(r.stderr.contains("== btrfs-reclaim-repro"));
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(logged.starts_with("# btrfs-reclaim-repro"));
    assert!(logged.contains("# seed 1"));
    assert!(logged.contains("relocating block group"), "the log has this run's kernel records");
    s.assert_clean();
}

/// The bug report's own setup (free space tree) cannot reach the injection.
#[test]
fn space_cache_v2_reports_the_injection_site_unreachable() {
    if !privileged("space_cache_v2_reports_the_injection_site_unreachable") {
        return;
    }
    let s = Scratch::new("v2");
    let r = run(&["--size", "3G", "--json", "--space-cache", "v2", "--timeout", "20", s.img(), s.mnt()]);
    eprintln!("{}", r.stderr);
    assert_eq!(r.json_str("space_cache"), "v2");
    assert_eq!(r.json_u64("v1_cache_block_groups"), 0);
    assert_eq!(r.json_str("verdict"), "INCONCLUSIVE");
    assert!(r.json_str("reason").contains("injection site"), "{}", r.json("reason"));
    assert!(r.json_str("next_step").contains("--space-cache v2"), "{}", r.json("next_step"));
    assert!(!r.stderr.contains("natural pass follows"), "auto with v2 is one pass");
    assert_eq!(r.code, 125);
    s.assert_clean();
}

/// Plain-text mode: the verdict block is all stdout carries.
#[test]
fn text_verdict_on_stdout_progress_on_stderr() {
    if !privileged("text_verdict_on_stdout_progress_on_stderr") {
        return;
    }
    let s = Scratch::new("text");
    let r = run(&["--size", "3G", "--timeout", "30", "--enospc", "injected", s.img(), s.mnt()]);
    assert!(r.stdout.starts_with("== btrfs-reclaim-repro"), "{}", r.stdout);
    assert!(r.stdout.contains("reason:"));
    assert!(r.stdout.lines().count() <= 20);
    assert!(r.stderr.contains("fill:") && r.stderr.contains("unmount:"), "{}", r.stderr);
    assert!(!r.stdout.contains("fill: ") || r.stdout.contains("fill:     "), "no progress lines on stdout");
    s.assert_clean();
}

/// The old path stays testable: mkfs.btrfs formats (--mkfs external), the
/// verdict names its version, and the pass works as with the built-in mkfs.
#[test]
fn external_mkfs_still_works() {
    if !privileged("external_mkfs_still_works") {
        return;
    }
    let s = Scratch::new("external");
    let r = run(&["--size", "3G", "--json", "--mkfs", "external", "--enospc", "injected", "--timeout", "30", s.img(), s.mnt()]);
    eprintln!("{}", r.stderr);
    assert!(r.json_str("mkfs").starts_with("mkfs.btrfs v"), "{}", r.json("mkfs"));
    assert_eq!(r.json_str("space_cache"), "v1");
    assert!(r.json_u64("v1_cache_block_groups") >= 1);
    assert!(r.json_u64("reclaim_count") >= 1, "reclaim never fired");
    assert!(r.stderr.contains("free-space-tree"), "{}", r.stderr);
    s.assert_clean();
}

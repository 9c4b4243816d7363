//! --check: the preflight alone, on this machine.

mod common;
use common::*;

#[test]
fn check_passes_on_a_3g_image_and_writes_nothing() {
    if !privileged("check_passes_on_a_3g_image_and_writes_nothing") {
        return;
    }
    let s = Scratch::new("check-ok");
    sparse(&s.img, 3 << 30);
    let r = run(&["--check", s.img(), s.mnt()]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stdout.lines().filter(|l| !l.starts_with("preflight:")).all(|l| l.starts_with("ok") || l.starts_with("warn")), "{}", r.stdout);
    assert!(r.stdout.contains("mkfs: built-in"), "{}", r.stdout);
    let external = run(&["--check", "--mkfs", "external", s.img(), s.mnt()]);
    assert_eq!(external.code, 0, "{}", external.stdout);
    assert!(external.stdout.contains("mkfs.btrfs") && external.stdout.contains("free space tree off with"), "{}", external.stdout);
    assert!(r.stdout.contains("data block groups of about 320 MiB"));
    assert!(r.stdout.contains("a run would go ahead"));
    // Nothing written, nothing mounted, nothing attached.
    assert!(std::fs::read(&s.img).unwrap().iter().all(|b| *b == 0), "the image was written");
    assert!(!s.mnt.exists(), "--check created the mount point");
    s.assert_clean();
}

#[test]
fn check_fails_on_a_900m_image() {
    if !privileged("check_fails_on_a_900m_image") {
        return;
    }
    let s = Scratch::new("check-small");
    sparse(&s.img, 900 << 20);
    let r = run(&["--check", s.img(), s.mnt()]);
    assert_eq!(r.code, 2, "{}", r.stdout);
    assert!(r.stdout.lines().any(|l| l.starts_with("fail") && l.contains("under the 100 MiB")), "{}", r.stdout);
    s.assert_clean();
}

#[test]
fn check_fails_on_a_mounted_device() {
    if !privileged("check_fails_on_a_mounted_device") {
        return;
    }
    let s = Scratch::new("check-mounted");
    sparse(&s.img, 3 << 30);
    sh("mkfs.ext4", &["-q", "-F", s.img()]);
    let lo = s.attach(&s.img, false);
    s.mount(&lo, "other", "defaults");
    let r = run(&["--check", &lo, s.mnt()]);
    assert_eq!(r.code, 2, "{}", r.stdout);
    assert!(r.stdout.lines().any(|l| l.starts_with("fail") && l.contains("mounted")), "{}", r.stdout);
    // Scratch's Drop unmounts and detaches.
}

/// Each preflight rule exists once: the line --check prints for a refusal
/// is the line a run refuses with, for the same device.
#[test]
fn check_and_run_refuse_with_the_same_line() {
    if !privileged("check_and_run_refuse_with_the_same_line") {
        return;
    }
    let s = Scratch::new("check-same");
    sparse(&s.img, 900 << 20);
    let check = run(&["--check", s.img(), s.mnt()]);
    let refused = run(&[s.img(), s.mnt()]);
    assert_eq!((check.code, refused.code), (2, 2), "{}\n{}", check.stdout, refused.stderr);
    let line = refused.stderr.lines().find_map(|l| l.strip_prefix("btrfs-reclaim-repro: ")).expect("a refusal line");
    assert!(check.stdout.lines().any(|l| l == format!("fail {line}")), "--check:\n{}\nrun: {line}", check.stdout);
    s.assert_clean();
}

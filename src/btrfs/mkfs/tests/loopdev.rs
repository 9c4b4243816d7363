//! The loop-device test: our filesystem on a real block device, mounted by
//! this machine's kernel with the v1 cache, written, scrubbed (both DUP
//! copies read), fully balanced (every chunk relocated, SYSTEM included, so
//! every initial backref is used), scrubbed again, checked, and the kernel
//! log of the window judged. Needs root, loop devices and btrfs-progs.

use std::io::{Seek, SeekFrom};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::btrfs::mkfs::layout::{Tree, GIB, MIB};
use crate::testing::mkfs_env::{can_run, must, run};
use crate::btrfs::mkfs::{build, write, Ids, Layout};
use crate::btrfs::fs::format_uuid;
use crate::base::mountinfo;
use crate::testing::TempDir;

/// Kernel log lines that mean trouble (the list).
const BAD: [&str; 5] = ["corrupt", "WARNING", "BUG", "Transaction aborted", "parent transid"];

/// A loop device, always detached.
struct Loop(String);

impl Loop {
    fn attach(file: &Path) -> Loop {
        let dev = must("losetup", &["--find", "--show", file.to_str().unwrap()]).trim().to_string();
        assert!(dev.starts_with("/dev/loop"), "losetup printed {dev:?}");
        Loop(dev)
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        for _ in 0..50 {
            if run("losetup", &["-d", &self.0]).ok {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        eprintln!("could not detach {}", self.0);
    }
}

/// A mount, always unmounted (lazily as a last resort).
struct Mounted(PathBuf);

impl Mounted {
    fn new(dev: &str, at: &Path) -> Mounted {
        std::fs::create_dir_all(at).unwrap();
        must("mount", &["-t", "btrfs", "-o", "noatime,space_cache=v1,nodiscard", dev, at.to_str().unwrap()]);
        Mounted(at.to_path_buf())
    }
    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
    /// Unmounts, waiting out a short EBUSY: a process forked by another
    /// test of this binary while we had a file open holds its copy until it
    /// exits. Still busy after 10 s: fails naming who holds the mount.
    fn unmount(self) {
        let p = self.0.to_str().unwrap().to_string();
        let mut last = String::new();
        for _ in 0..20 {
            let r = run("umount", &[&p]);
            if r.ok {
                std::mem::forget(self);
                return;
            }
            if last.is_empty() {
                eprintln!("umount {p}: {}; waiting; holders now: {:?}", r.out.trim(), holders(&self.0));
            }
            last = r.out;
            std::thread::sleep(std::time::Duration::from_millis(500));
        }
        panic!("umount {p} kept failing: {last}; holders: {:?}", holders(&self.0));
    }
}

/// "pid comm" of every process with a descriptor, cwd or root under `mnt`.
fn holders(mnt: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for proc in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let dir = proc.path();
        let fds = std::fs::read_dir(dir.join("fd")).into_iter().flatten().flatten().map(|e| e.path());
        let links: Vec<PathBuf> = fds.chain([dir.join("cwd"), dir.join("root")]).filter_map(|l| std::fs::read_link(l).ok()).collect();
        if links.iter().any(|t| t.starts_with(mnt)) {
            let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
            out.push(format!("{} {}", proc.file_name().to_string_lossy(), comm.trim()));
        }
    }
    out
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let p = self.0.to_str().unwrap();
        if !run("umount", &[p]).ok {
            let _ = run("umount", &["-l", p]);
        }
    }
}

fn dmesg() -> Vec<String> {
    must("dmesg", &[]).lines().map(str::to_string).collect()
}

/// Lines printed after `before`'s last line.
fn new_lines(before: &[String], after: Vec<String>) -> Vec<String> {
    match before.last().and_then(|last| after.iter().rposition(|l| l == last)) {
        Some(i) => after[i + 1..].to_vec(),
        None => {
            eprintln!("kernel log marker lost (ring buffer wrapped?): judging the whole log");
            after
        }
    }
}

/// The bad lines of the window that are ours: naming our device or fsid,
/// or any bad line when no other btrfs device spoke in the window (other
/// sessions share this kernel; their splats are not ours to judge).
fn judge_kernel_log(window: &[String], dev: &str, fsid: &str) -> Vec<String> {
    let ours = |l: &str| l.contains(&format!("(device {dev})")) || l.contains(&format!("/dev/{dev} ")) || l.contains(fsid);
    let foreign = window.iter().any(|l| l.contains("BTRFS") && l.contains("(device ") && !ours(l));
    let bad: Vec<&String> = window.iter().filter(|l| BAD.iter().any(|b| l.contains(b))).collect();
    let mut out = Vec::new();
    for l in bad {
        if ours(l) || !foreign {
            out.push(l.clone());
        } else {
            eprintln!("kernel log: not attributed to {dev} (another btrfs was active): {l}");
        }
    }
    out
}

fn content(seed: u64, len: usize) -> Vec<u8> {
    let mut rng = fastrand::Rng::with_seed(seed);
    (0..len).map(|_| rng.u8(..)).collect()
}

fn scrub(mnt: &Path) {
    let out = must("btrfs", &["scrub", "start", "-B", mnt.to_str().unwrap()]);
    assert!(out.contains("no errors found"), "scrub:\n{out}");
}

/// One full cycle on a fresh loop device; returns a summary line.
fn cycle(layout: Layout, size: u64, pass: u32) -> String {
    let started = Instant::now();
    let log_before = dmesg();
    let dir = TempDir::new("loop");
    let img = dir.join("loop.img");
    std::fs::File::create(&img).unwrap().set_len(size).unwrap();
    let lo = Loop::attach(&img);

    // Format the block device itself: O_EXCL (no mount may hold it) and its
    // size from the device, as the scenario will.
    let mut dev = std::fs::OpenOptions::new().write(true).custom_flags(libc::O_EXCL).open(&lo.0).unwrap();
    let dev_size = dev.seek(SeekFrom::End(0)).unwrap();
    assert_eq!(dev_size, size);
    // Each cycle a new pass: a new fsid even on the same loop device.
    let ids = Ids::derive(99, 1, pass, dev.metadata().unwrap().rdev());
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let image = build(dev_size, layout, &ids, crate::btrfs::mkfs::LABEL, now).unwrap();
    write(&dev, Path::new(&lo.0), &image).unwrap();
    drop(dev);
    let fsid = format_uuid(&ids.fsid);

    let blkid = must("blkid", &["-p", &lo.0]);
    assert!(blkid.contains("TYPE=\"btrfs\"") && blkid.contains("LABEL=\"btrfs-reclaim-repro\"") && blkid.contains(&fsid), "blkid: {blkid}");

    let mnt = Mounted::new(&lo.0, &dir.join("mnt"));
    let mnt_str = mnt.0.to_str().unwrap().to_string();
    let mounts = mountinfo::parse(&std::fs::read_to_string("/proc/self/mountinfo").unwrap());
    let m = mountinfo::find_by_mount_point(&mounts, &mnt_str).expect("our mount in mountinfo");
    assert_eq!(m.fstype, "btrfs", "mountinfo: {m:?}");
    assert_eq!(mountinfo::space_cache(m), "v1", "mountinfo: {m:?}");

    // Write: big files (data chunks) and many small ones (inline, metadata).
    let big = 24;
    for i in 0..big {
        std::fs::write(mnt.path(&format!("big{i}")), content(i, 4 * MIB as usize)).unwrap();
    }
    for i in 0..1500u64 {
        std::fs::write(mnt.path(&format!("small{i}")), content(1000 + i, 100 + (i as usize * 37) % 3000)).unwrap();
    }
    must("sync", &["-f", &mnt_str]);
    for i in (0..big).step_by(2) {
        std::fs::remove_file(mnt.path(&format!("big{i}"))).unwrap();
    }
    for i in (0..1500u64).step_by(2) {
        std::fs::remove_file(mnt.path(&format!("small{i}"))).unwrap();
    }
    must("sync", &["-f", &mnt_str]);

    scrub(&mnt.0);
    let balance = must("btrfs", &["balance", "start", "--full-balance", &mnt_str]);
    assert!(balance.contains("Done, had to relocate"), "balance: {balance}");
    scrub(&mnt.0);
    for i in (1..big).step_by(2) {
        assert!(std::fs::read(mnt.path(&format!("big{i}"))).unwrap() == content(i, 4 * MIB as usize), "big{i} changed");
    }
    mnt.unmount();

    for mode in ["--mode=original", "--mode=lowmem"] {
        let r = run("btrfs", &["check", "--readonly", mode, &lo.0]);
        assert!(r.ok, "btrfs check {mode} after the cycle:\n{}", r.out);
    }
    // The v1 cache is in use: free space cache inodes in the root tree.
    let root = must("btrfs", &["inspect-internal", "dump-tree", "-t", &Tree::Root.id().to_string(), &lo.0]);
    let v1 = root.matches("FREE_SPACE UNTYPED").count();
    assert!(v1 > 0, "no v1 free space cache header after the cycle");

    // Remount once and read back.
    let mnt = Mounted::new(&lo.0, &dir.join("mnt"));
    assert!(std::fs::read(mnt.path("small1")).unwrap() == content(1001, 137));
    mnt.unmount();
    drop(lo);
    drop(dir);

    let window = new_lines(&log_before, dmesg());
    let dev = img_dev_name(&window, &fsid);
    let bad = judge_kernel_log(&window, &dev, &fsid);
    assert!(bad.is_empty(), "kernel log during the test:\n{}", bad.join("\n"));
    // A complete UUID tree at uuid_tree_generation: no rescan at mount.
    let rescans: Vec<&String> = window.iter().filter(|l| l.contains(&format!("(device {dev})")) && l.contains("UUID tree")).collect();
    assert!(rescans.is_empty(), "the kernel rebuilt the UUID tree: {rescans:?}");
    let ours = window.iter().filter(|l| l.contains(&format!("(device {dev})"))).inspect(|l| eprintln!("  {l}")).count();
    assert!(ours > 0, "no kernel line about {dev}: is the window right?");
    format!("{layout:?} {size}: mount v1, write/delete, scrub, full balance, scrub, check (both modes) ok, {v1} v1 cache headers, {ours} kernel lines, none bad, {:?}", started.elapsed())
}

/// The loop device's name as the kernel printed it for our fsid.
fn img_dev_name(window: &[String], fsid: &str) -> String {
    window
        .iter()
        .find(|l| l.contains(fsid) && l.contains("(device "))
        .and_then(|l| l.split("(device ").nth(1))
        .and_then(|s| s.split(')').next())
        .map(str::to_string)
        .unwrap_or_else(|| panic!("no kernel line names fsid {fsid}"))
}

#[test]
fn loop_device_mount_write_scrub_balance_check() {
    if !can_run("loop_device_mount_write_scrub_balance_check", true) {
        return;
    }
    // One after the other: the kernel-log window stays ours.
    for (pass, (layout, size)) in [(Layout::DupMetadata16K, 3 * GIB), (Layout::SingleMetadata4K, GIB)].into_iter().enumerate() {
        let summary = cycle(layout, size, pass as u32);
        eprintln!("{summary}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holders_names_a_process_with_a_file_open_under_the_path() {
        let dir = TempDir::new("holders");
        let me = format!("{} ", std::process::id());
        assert!(!holders(&dir.0).iter().any(|h| h.starts_with(&me)), "nothing open yet");
        let _open = std::fs::File::create(dir.join("f")).unwrap();
        assert!(holders(&dir.0).iter().any(|h| h.starts_with(&me)), "{:?}", holders(&dir.0));
    }

    #[test]
    fn kernel_log_judgement() {
        let window: Vec<String> = [
            "[ 10.0] BTRFS info (device loop3): first mount of filesystem 0a0b",
            "[ 10.1] BTRFS warning (device loop3): space cache v1 is being deprecated",
            "[ 10.2] BTRFS error (device loop30): parent transid verify failed",
            "[ 10.3] WARNING: CPU: 1 PID: 7 at fs/btrfs/extent-tree.c:123",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        // loop30 is another session's: its lines and the unattributed
        // splat are not ours.
        assert!(judge_kernel_log(&window, "loop3", "0a0b").is_empty());
        // Alone on the kernel, any splat is ours.
        let alone: Vec<String> = window.iter().filter(|l| !l.contains("loop30")).cloned().collect();
        assert_eq!(judge_kernel_log(&alone, "loop3", "0a0b").len(), 1);
        let mut ours = alone.clone();
        ours.push("[ 11] BTRFS critical (device loop3): corrupt leaf: root=2".into());
        assert_eq!(judge_kernel_log(&ours, "loop3", "0a0b").len(), 2);
        assert_eq!(new_lines(&window[..2], window.clone()), window[2..].to_vec());
    }
}

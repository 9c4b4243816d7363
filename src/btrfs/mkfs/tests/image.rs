//! Image tests: our filesystem on sparse files, judged by btrfs-progs
//! (`btrfs check` in both modes, `dump-super -a`) and compared with what
//! the host's mkfs.btrfs writes. Need btrfs-progs, not root.

use std::path::Path;
use std::time::Instant;

use crate::btrfs::mkfs::layout::{Plan, Tree, GIB, KIB};
use crate::testing::mkfs_env::{can_run, diff, make_image, missing_tool, must, normalize, run, runs};
use crate::btrfs::mkfs::{leaf, Layout};
use crate::btrfs::mkfs_progs;
use crate::testing::TempDir;

const TIB: u64 = 1 << 40;
/// The largest file ext4 allows with 4 KiB blocks.
const EXT4_MAX: u64 = 16 * TIB - 4 * KIB;

fn sizes(layout: Layout) -> Vec<u64> {
    match layout {
        // 3 GiB + 12345: a size that is no multiple of 4 KiB.
        Layout::DupMetadata16K => vec![GIB, 3 * GIB, 3 * GIB + 12345, 100 * GIB, TIB, 4 * TIB, EXT4_MAX],
        Layout::SingleMetadata4K => vec![GIB, 3 * GIB, 100 * GIB, TIB, EXT4_MAX],
    }
}

/// `btrfs check --readonly` in both modes on one image: (ok, output).
fn check_both(path: &str) -> Vec<(bool, String)> {
    ["original", "lowmem"]
        .iter()
        .map(|mode| {
            let r = run("btrfs", &["check", "--readonly", &format!("--mode={mode}"), path]);
            (r.ok, r.out)
        })
        .collect()
}

#[test]
fn btrfs_check_passes_at_every_size_in_both_layouts() {
    if !can_run("btrfs_check_passes_at_every_size_in_both_layouts", false) {
        return;
    }
    let dir = TempDir::new("check");
    for layout in [Layout::DupMetadata16K, Layout::SingleMetadata4K] {
        for size in sizes(layout) {
            let started = Instant::now();
            let path = dir.join(format!("{size}.img"));
            let image = make_image(&path, size, layout, 7);
            let p = path.to_str().unwrap();
            for (ok, out) in check_both(p) {
                assert!(ok, "{layout:?} {size}: btrfs check failed:\n{out}");
            }
            let supers = must("btrfs", &["inspect-internal", "dump-super", "-a", p]);
            let copies = supers.matches("superblock: bytenr=").count();
            assert_eq!(copies, image.supers.len(), "{layout:?} {size}: copies in dump-super -a");
            assert_eq!(supers.matches("[match]").count(), 3 * copies, "{layout:?} {size}: csum, magic and dev_item.fsid of every copy:\n{supers}");
            assert!(!supers.contains("DON'T MATCH"), "{supers}");
            let expected_copies = match size {
                s if s > 256 * GIB + 4 * KIB => 3,
                _ => 2,
            };
            assert_eq!(copies, expected_copies, "{layout:?} {size}");
            std::fs::remove_file(&path).unwrap();
            eprintln!("{layout:?} {size}: check (both modes) and {copies} superblock copies ok in {:?}", started.elapsed());
        }
    }
}

/// mkfs.btrfs 6.2 with the project's options on a sparse file.
fn progs_image(mkfs: &Path, path: &Path, size: u64, layout: Layout) {
    let file = std::fs::File::create(path).unwrap();
    file.set_len(size).unwrap();
    let p = path.to_str().unwrap();
    let mut args = vec!["-f", "-q", "-L", crate::btrfs::mkfs::LABEL, "-R", "^free-space-tree", "--nodiscard"];
    match layout {
        Layout::DupMetadata16K => args.extend(["-m", "dup", "-d", "single"]),
        Layout::SingleMetadata4K => args.extend(["-m", "single", "-d", "single", "--nodesize", "4096"]),
    }
    args.push(p);
    must(mkfs.to_str().unwrap(), &args);
}

#[test]
fn dump_tree_matches_mkfs_btrfs_6_2() {
    let test = "dump_tree_matches_mkfs_btrfs_6_2";
    if !can_run(test, false) {
        return;
    }
    let mkfs = mkfs_progs::find();
    let reason = match mkfs.as_deref().map(mkfs_progs::version_of) {
        None => missing_tool("mkfs.btrfs", "btrfs-progs").or_else(|| Some("no executable mkfs.btrfs".into())),
        Some(Some((6, 2))) => None,
        Some(other) => {
            let v = other.map(|(major, minor)| format!("v{major}.{minor}")).unwrap_or_else(|| "of unknown version".into());
            Some(format!("the host's mkfs.btrfs is {v}, not v6.2, whose layout this mkfs copies"))
        }
    };
    if !runs(test, reason) {
        return;
    }
    let mkfs = mkfs.expect("no reason to skip, so mkfs.btrfs v6.2 was found");
    let dir = TempDir::new("dump");
    let cases = [
        (Layout::DupMetadata16K, GIB),
        (Layout::DupMetadata16K, 2 * GIB),
        (Layout::DupMetadata16K, 5 * GIB / 2 - 4 * KIB),
        (Layout::DupMetadata16K, 3 * GIB),
        (Layout::DupMetadata16K, 100 * GIB),
        (Layout::DupMetadata16K, TIB),
        (Layout::SingleMetadata4K, GIB),
        (Layout::SingleMetadata4K, 3 * GIB),
    ];
    for (layout, size) in cases {
        let ours = dir.join("ours.img");
        let theirs = dir.join("theirs.img");
        make_image(&ours, size, layout, 11);
        progs_image(&mkfs, &theirs, size, layout);
        let dump = |p: &Path| normalize(&must("btrfs", &["inspect-internal", "dump-tree", p.to_str().unwrap()]));
        let (a, b) = (dump(&ours), dump(&theirs));
        // Known differences, all hidden by normalize(): generations (ours 1
        // everywhere; mkfs 3, 5 or 6 after its six commits), uuids and
        // times. mkfs.btrfs 6.2 writes no DEV_STATS item (6.13 does) and
        // neither do we; both write the UUID tree.
        let d = diff(&a, &b);
        assert!(d.is_empty(), "{layout:?} {size}: normalized dump-tree differs from mkfs.btrfs 6.2:\n{}", d.join("\n"));
        let super_a = must("btrfs", &["inspect-internal", "dump-super", ours.to_str().unwrap()]);
        let super_b = must("btrfs", &["inspect-internal", "dump-super", theirs.to_str().unwrap()]);
        // Known superblock differences: generations (1 vs 6), checksums,
        // uuids, uuid_tree_generation (ours 1: the tree is complete; 6.2
        // leaves 0 and the kernel rescans), and the backup roots (we fill
        // slot 0 only; mkfs has four commits' worth).
        let keep = |s: &str| {
            let s = s.split("backup_roots").next().unwrap_or("").to_string();
            normalize(&s)
                .lines()
                .filter(|l| !l.starts_with("csum ") && !l.starts_with("superblock:") && !l.starts_with("uuid_tree_generation"))
                .map(|l| format!("{l}\n"))
                .collect::<String>()
        };
        let d = diff(&keep(&super_a), &keep(&super_b));
        assert!(d.is_empty(), "{layout:?} {size}: dump-super differs:\n{}", d.join("\n"));
        eprintln!("{layout:?} {size}: normalized dump-tree and dump-super equal to mkfs.btrfs 6.2 ({} lines)", a.lines().count());
    }
}

/// A test-only fault in an otherwise good image must make `btrfs check`
/// fail: the harness above can fail.
#[test]
fn a_broken_image_fails_btrfs_check() {
    if !can_run("a_broken_image_fails_btrfs_check", false) {
        return;
    }
    let dir = TempDir::new("broken");
    let path = dir.join("broken.img");
    let p = path.to_str().unwrap();
    let plan = Plan::new(3 * GIB, Layout::DupMetadata16K).unwrap();
    let extent = plan.block(Tree::Extent);

    // 1. A block group's `used` off by one node, checksum recomputed: a
    // logical fault only the extent cross-check sees.
    let mut image = make_image(&path, 3 * GIB, Layout::DupMetadata16K, 3);
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    for (at, block) in image.blocks.iter_mut().filter(|(at, _)| plan.physical(extent).contains(at)) {
        let (data_at, _) = item_data(block, 0); // the DATA block group
        let used = u64::from_le_bytes(block[data_at..data_at + 8].try_into().unwrap());
        block[data_at..data_at + 8].copy_from_slice(&(used + 16 * KIB).to_le_bytes());
        leaf::seal(block);
        std::os::unix::fs::FileExt::write_all_at(&file, block, *at).unwrap();
    }
    for (ok, out) in check_both(p) {
        assert!(!ok, "btrfs check passed an image whose block group used is wrong:\n{out}");
    }

    // 2. One flipped byte in both copies of the root tree, no reseal.
    make_image(&path, 3 * GIB, Layout::DupMetadata16K, 3);
    let file = std::fs::OpenOptions::new().read(true).write(true).open(&path).unwrap();
    for at in plan.physical(plan.block(Tree::Root)) {
        let mut b = [0u8; 1];
        std::os::unix::fs::FileExt::read_exact_at(&file, &mut b, at + 200).unwrap();
        std::os::unix::fs::FileExt::write_all_at(&file, &[b[0] ^ 0xFF], at + 200).unwrap();
    }
    let r = run("btrfs", &["check", "--readonly", p]);
    assert!(!r.ok, "btrfs check passed a corrupt root tree:\n{}", r.out);
}

/// Item `i`'s data position (absolute in the block) and size.
fn item_data(block: &[u8], i: usize) -> (usize, usize) {
    let at = leaf::HEADER_SIZE + leaf::ITEM_SIZE * i;
    let off = u32::from_le_bytes(block[at + 17..at + 21].try_into().unwrap()) as usize;
    let size = u32::from_le_bytes(block[at + 21..at + 25].try_into().unwrap()) as usize;
    (leaf::HEADER_SIZE + off, size)
}

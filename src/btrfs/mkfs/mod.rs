//! The built-in mkfs: writes the filesystem mkfs.btrfs 6.2 would leave for
//! our two layouts, directly in its final state, so a target machine needs
//! no btrfs-progs. `build()` is pure (bytes for a size, a layout, ids, a
//! label and a time); `write()` is the one step that touches the device.
#![forbid(unsafe_code)]

mod crc32c;
mod ids;
mod items;
mod layout;
mod leaf;
mod superblock;
mod trees;
mod write;

pub use crate::base::ondisk::LABEL;

pub use ids::Ids;
pub use layout::{Layout, PlanError, MIN_SIZE};
pub use write::write;

use layout::{Plan, MIB, SUPER_SIZE, SUPER_SLOTS};

/// Old signatures to wipe at each end: progs' `btrfs_prepare_device()`
/// zeroes 2 MiB there (GPT backup header, md 1.0, a previous filesystem).
const WIPE_BYTES: u64 = 2 * MIB;

/// Everything to write on a device, in the order `write()` uses.
#[derive(Debug, Clone)]
pub struct Image {
    /// The device size `build()` was given; zeroing may reach it.
    pub size_bytes: u64,
    /// The filesystem size: `size_bytes` rounded down to 4 KiB.
    pub total_bytes: u64,
    /// [start, end) ranges to zero first; they cover the superblock slots
    /// (written last) but no tree block.
    pub zero: Vec<(u64, u64)>,
    /// Tree block copies: (physical offset, bytes); DUP blocks twice.
    pub blocks: Vec<(u64, Vec<u8>)>,
    /// Superblock copies: (physical offset, 4 KiB).
    pub supers: Vec<(u64, Vec<u8>)>,
}

/// The filesystem for a device of `size_bytes`, ready for `write()`.
pub fn build(size_bytes: u64, layout: Layout, ids: &Ids, label: &str, now_secs: u64) -> Result<Image, PlanError> {
    if !superblock::label_ok(label) {
        return Err(PlanError::Label { len: label.len() });
    }
    let plan = Plan::new(size_bytes, layout)?;
    let trees = trees::build(&plan, ids, now_secs).map_err(|e| PlanError::Layout(e.to_string()))?;
    let mut blocks = Vec::new();
    for (logical, bytes) in trees {
        for phys in plan.physical(logical) {
            blocks.push((phys, bytes.clone()));
        }
    }
    blocks.sort_by_key(|(at, _)| *at);
    let supers = layout::super_copies(plan.total_bytes)
        .into_iter()
        .map(|at| (at, superblock::encode(&plan, ids, label, at)))
        .collect();
    let zero = zero_ranges(size_bytes, &blocks);
    Ok(Image { size_bytes, total_bytes: plan.total_bytes, zero, blocks, supers })
}

/// Both ends of the device and every superblock slot that exists on it,
/// minus the tree blocks, merged and sorted.
fn zero_ranges(size_bytes: u64, blocks: &[(u64, Vec<u8>)]) -> Vec<(u64, u64)> {
    let mut wanted = vec![(0, WIPE_BYTES.min(size_bytes)), (size_bytes.saturating_sub(WIPE_BYTES) & !(layout::SECTOR - 1), size_bytes)];
    for slot in SUPER_SLOTS {
        if slot < size_bytes {
            wanted.push((slot, (slot + SUPER_SIZE).min(size_bytes)));
        }
    }
    wanted.sort();
    let mut merged: Vec<(u64, u64)> = Vec::new();
    for (start, end) in wanted {
        match merged.last_mut() {
            Some(last) if start <= last.1 => last.1 = last.1.max(end),
            _ => merged.push((start, end)),
        }
    }
    let mut out = Vec::new();
    for (mut start, end) in merged {
        for (at, bytes) in blocks {
            let block_end = at + bytes.len() as u64;
            if *at < end && block_end > start {
                if *at > start {
                    out.push((start, *at));
                }
                start = block_end.min(end);
            }
        }
        if start < end {
            out.push((start, end));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    // The privileged suites: our images judged by btrfs-progs, and on a
    // loop device mounted by this machine's kernel.
    mod image;
    mod loopdev;

    use super::layout::{Tree, GIB, KIB};
    use super::*;

    fn ids() -> Ids {
        Ids::derive(1, 2, 3, 4)
    }

    #[test]
    fn both_dup_copies_of_every_tree_block_are_identical() {
        let image = build(3 * GIB, Layout::DupMetadata16K, &ids(), "x", 0).unwrap();
        let plan = Plan::new(3 * GIB, Layout::DupMetadata16K).unwrap();
        assert_eq!(image.blocks.len(), 16);
        for &(tree, logical) in &plan.blocks {
            let copies: Vec<&Vec<u8>> = plan.physical(logical).iter().map(|p| &image.blocks.iter().find(|(at, _)| at == p).unwrap().1).collect();
            assert_eq!(copies.len(), 2, "{tree:?}");
            assert!(copies[0] == copies[1], "{tree:?}: DUP copies differ");
            // The header names the logical address, not the physical one.
            assert_eq!(u64::from_le_bytes(copies[0][48..56].try_into().unwrap()), logical);
        }
        let single = build(3 * GIB, Layout::SingleMetadata4K, &ids(), "x", 0).unwrap();
        assert_eq!(single.blocks.len(), 8);
        assert!(single.blocks.iter().all(|(_, b)| b.len() == 4096));
    }

    #[test]
    fn every_superblock_copy_checksums_and_names_its_offset() {
        for size in [GIB, 300 * GIB] {
            let image = build(size, Layout::DupMetadata16K, &ids(), crate::btrfs::mkfs::LABEL, 0).unwrap();
            let offsets: Vec<u64> = image.supers.iter().map(|(at, _)| *at).collect();
            assert_eq!(offsets, layout::super_copies(size));
            for (at, sb) in &image.supers {
                assert_eq!(sb.len(), 4096);
                assert_eq!(u32::from_le_bytes(sb[0..4].try_into().unwrap()), crc32c::checksum(&sb[32..]));
                assert_eq!(u64::from_le_bytes(sb[48..56].try_into().unwrap()), *at);
                assert_eq!(&sb[64..72], b"_BHRfS_M");
                assert_eq!(&sb[299..299 + 19], b"btrfs-reclaim-repro");
                assert_eq!(sb[299 + 19], 0);
            }
            // Copies differ only in bytenr and checksum.
            let strip = |sb: &Vec<u8>| [&sb[32..48], &sb[56..]].concat();
            assert!(image.supers.windows(2).all(|w| strip(&w[0].1) == strip(&w[1].1)));
        }
    }

    #[test]
    fn the_image_is_the_same_for_the_same_inputs() {
        let a = build(3 * GIB, Layout::DupMetadata16K, &ids(), "x", 100).unwrap();
        let b = build(3 * GIB, Layout::DupMetadata16K, &ids(), "x", 100).unwrap();
        assert_eq!(a.blocks, b.blocks);
        assert_eq!(a.supers, b.supers);
        let c = build(3 * GIB, Layout::DupMetadata16K, &Ids::derive(1, 2, 4, 4), "x", 100).unwrap();
        assert_ne!(a.supers[0].1[32..48], c.supers[0].1[32..48], "another pass, another fsid");
    }

    #[test]
    fn zeroing_wipes_both_ends_and_every_slot_but_no_tree_block() {
        let size = 300 * GIB + 512;
        let image = build(size, Layout::SingleMetadata4K, &ids(), "x", 0).unwrap();
        assert_eq!(image.total_bytes, 300 * GIB);
        let zeroed = |at: u64| image.zero.iter().any(|&(s, e)| s <= at && at < e);
        for at in [0, 64 * KIB, 2 * 1024 * KIB - 1, 64 << 20, 256 * GIB, size - 2 * 1024 * KIB, size - 1] {
            assert!(zeroed(at), "{at} not zeroed");
        }
        assert!(!zeroed(size), "nothing past the device");
        assert!(!zeroed(3 * 1024 * KIB));
        for (at, block) in &image.blocks {
            for &(s, e) in &image.zero {
                assert!(e <= *at || s >= at + block.len() as u64, "zero range {s}..{e} over the block at {at}");
            }
        }
        // Sorted, disjoint.
        assert!(image.zero.windows(2).all(|w| w[0].1 <= w[1].0));
        // A slot that exists but cannot hold a copy is still wiped.
        let image = build(256 * GIB + 4096, Layout::DupMetadata16K, &ids(), "x", 0).unwrap();
        assert_eq!(image.supers.len(), 2);
        assert!(image.zero.iter().any(|&(s, e)| s <= 256 * GIB && 256 * GIB + 4096 <= e));
    }

    #[test]
    fn refusals_are_one_line() {
        let e = build(GIB - 4096, Layout::DupMetadata16K, &ids(), "x", 0).unwrap_err();
        assert!(matches!(e, PlanError::TooSmall { .. }));
        assert!(e.to_string().contains("--mkfs external"));
        let e = build(GIB, Layout::DupMetadata16K, &ids(), &"l".repeat(256), 0).unwrap_err();
        assert_eq!(e, PlanError::Label { len: 256 });
        assert!(!e.to_string().contains('\n'));
        assert!(build(GIB, Layout::DupMetadata16K, &ids(), &"l".repeat(255), 0).is_ok());
    }

    #[test]
    fn used_bytes_agree_everywhere() {
        for layout in [Layout::DupMetadata16K, Layout::SingleMetadata4K] {
            let plan = Plan::new(3 * GIB, layout).unwrap();
            let per_bg: u64 = plan.chunks.iter().map(|c| plan.used_in(c)).sum();
            assert_eq!(per_bg, 8 * layout.nodesize() as u64);
            let image = build(3 * GIB, layout, &ids(), "x", 0).unwrap();
            let sb = &image.supers[0].1;
            assert_eq!(u64::from_le_bytes(sb[120..128].try_into().unwrap()), per_bg);
            assert_eq!(plan.block(Tree::Root), u64::from_le_bytes(sb[80..88].try_into().unwrap()));
        }
    }
}

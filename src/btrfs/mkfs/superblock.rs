//! The superblock (`struct btrfs_super_block`, 4 KiB), one per copy: the
//! copies differ only in `bytenr`, which `btrfs_validate_super()` requires
//! to equal the offset the copy was read from.

use super::ids::Ids;
use super::layout::{Plan, Tree, SUPER_SIZE};
use super::leaf::{self, Key};
use super::trees::GENERATION;
use super::items;

use crate::base::ondisk::{LABEL_MAX, MAGIC};
/// MIXED_BACKREF | EXTENDED_IREF | SKINNY_METADATA | NO_HOLES, mkfs's
/// defaults; compat_ro stays 0: no free space tree, so the v1 cache works.
pub const INCOMPAT: u64 = 0x341;
/// `BTRFS_HEADER_FLAG_WRITTEN`: progs' `write_dev_supers()` sets it on
/// every superblock it writes.
const FLAGS: u64 = 1;
const SYS_CHUNK_ARRAY: usize = 811;
const SYS_CHUNK_ARRAY_SIZE: usize = 2048;
const SUPER_ROOTS: usize = 2859;

/// Field offsets (`offsetof(struct btrfs_super_block, ...)`).
pub mod at {
    pub const FSID: usize = 32;
    pub const BYTENR: usize = 48;
    pub const FLAGS: usize = 56;
    pub const MAGIC: usize = crate::base::ondisk::MAGIC_AT;
    pub const GENERATION: usize = 72;
    pub const ROOT: usize = 80;
    pub const CHUNK_ROOT: usize = 88;
    pub const TOTAL_BYTES: usize = 112;
    pub const BYTES_USED: usize = 120;
    pub const ROOT_DIR_OBJECTID: usize = 128;
    pub const NUM_DEVICES: usize = 136;
    pub const SECTORSIZE: usize = 144;
    pub const NODESIZE: usize = 148;
    pub const LEAFSIZE: usize = 152;
    pub const STRIPESIZE: usize = 156;
    pub const SYS_CHUNK_ARRAY_SIZE: usize = 160;
    pub const CHUNK_ROOT_GENERATION: usize = 164;
    pub const INCOMPAT: usize = 188;
    pub const DEV_ITEM: usize = 201;
    pub const LABEL: usize = crate::base::ondisk::LABEL_AT;
    pub const CACHE_GENERATION: usize = 555;
    pub const UUID_TREE_GENERATION: usize = 563;
}

/// A copy of the superblock for `copy_offset`. `dev_item` is the chunk
/// tree's DEV_ITEM, byte for byte (`btrfs_validate_super()` compares its
/// fsid; `read_one_dev()` its sizes).
pub fn encode(plan: &Plan, ids: &Ids, label: &str, copy_offset: u64) -> Vec<u8> {
    let mut sb = vec![0u8; SUPER_SIZE as usize];
    let mut put = |off: usize, bytes: &[u8]| sb[off..off + bytes.len()].copy_from_slice(bytes);
    let node = plan.nodesize;
    put(at::FSID, &ids.fsid);
    put(at::BYTENR, &copy_offset.to_le_bytes());
    put(at::FLAGS, &FLAGS.to_le_bytes());
    put(at::MAGIC, &MAGIC.to_le_bytes());
    put(at::GENERATION, &GENERATION.to_le_bytes());
    put(at::ROOT, &plan.block(Tree::Root).to_le_bytes());
    put(at::CHUNK_ROOT, &plan.block(Tree::Chunk).to_le_bytes());
    put(at::TOTAL_BYTES, &plan.total_bytes.to_le_bytes());
    // Every tree block: `btrfs check` compares with the extent tree's sum.
    let bytes_used = plan.blocks.len() as u64 * node as u64;
    put(at::BYTES_USED, &bytes_used.to_le_bytes());
    put(at::ROOT_DIR_OBJECTID, &items::ROOT_TREE_DIR_OBJECTID.to_le_bytes());
    put(at::NUM_DEVICES, &1u64.to_le_bytes());
    put(at::SECTORSIZE, &4096u32.to_le_bytes());
    put(at::NODESIZE, &node.to_le_bytes());
    put(at::LEAFSIZE, &node.to_le_bytes());
    put(at::STRIPESIZE, &4096u32.to_le_bytes());
    let sys = sys_chunk_array(plan, ids);
    put(at::SYS_CHUNK_ARRAY_SIZE, &(sys.len() as u32).to_le_bytes());
    put(SYS_CHUNK_ARRAY, &sys);
    put(at::CHUNK_ROOT_GENERATION, &GENERATION.to_le_bytes());
    put(at::INCOMPAT, &INCOMPAT.to_le_bytes());
    // csum_type 0 (crc32c), root levels 0: already zero.
    put(at::DEV_ITEM, &items::dev_item(plan.total_bytes, plan.dev_bytes_used(), &ids.dev_uuid, &ids.fsid));
    put(at::LABEL, label.as_bytes());
    // u64::MAX: v1 cache on, every block group's cache invalid until the
    // kernel writes one (`btrfs_free_space_cache_v1_active()`,
    // `btrfs_read_block_groups()`); what mkfs writes without the free space
    // tree.
    put(at::CACHE_GENERATION, &u64::MAX.to_le_bytes());
    // The UUID tree is complete: no rescan at the first mount.
    put(at::UUID_TREE_GENERATION, &GENERATION.to_le_bytes());
    put(SUPER_ROOTS, &backup_root(plan, bytes_used));
    leaf::seal(&mut sb);
    sb
}

/// The SYSTEM chunk's key and item: all `btrfs_read_sys_array()` can map
/// before the chunk tree is read.
fn sys_chunk_array(plan: &Plan, ids: &Ids) -> Vec<u8> {
    let chunk = plan.system_chunk();
    let mut out = Key::new(items::FIRST_CHUNK_TREE_OBJECTID, items::CHUNK_ITEM, chunk.logical).encode().to_vec();
    out.extend_from_slice(&items::chunk_item(chunk, &ids.dev_uuid));
    assert!(out.len() <= SYS_CHUNK_ARRAY_SIZE);
    out
}

/// `struct btrfs_root_backup` slot 0 (168 bytes), for
/// `rescue=usebackuproot`; the other three stay empty.
fn backup_root(plan: &Plan, bytes_used: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(168);
    for tree in [Tree::Root, Tree::Chunk, Tree::Extent, Tree::Fs, Tree::Dev, Tree::Csum] {
        out.extend_from_slice(&plan.block(tree).to_le_bytes());
        out.extend_from_slice(&GENERATION.to_le_bytes());
    }
    out.extend_from_slice(&plan.total_bytes.to_le_bytes());
    out.extend_from_slice(&bytes_used.to_le_bytes());
    out.extend_from_slice(&1u64.to_le_bytes()); // num_devices
    out.resize(168, 0); // unused, the six levels (0), unused
    out
}

/// Label rules of `btrfs_validate_super()`-era progs: at most 255 bytes and
/// NUL-terminated inside the 256-byte field.
pub fn label_ok(label: &str) -> bool {
    label.len() <= LABEL_MAX && !label.as_bytes().contains(&0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::btrfs::mkfs::layout::{Layout, GIB};

    fn u64_at(sb: &[u8], off: usize) -> u64 {
        u64::from_le_bytes(sb[off..off + 8].try_into().unwrap())
    }
    fn u32_at(sb: &[u8], off: usize) -> u32 {
        u32::from_le_bytes(sb[off..off + 4].try_into().unwrap())
    }

    #[test]
    fn fields_as_mkfs_writes_them() {
        let ids = Ids::derive(5, 0, 0, 0);
        for (layout, node, sys_size) in [(Layout::DupMetadata16K, 16384, 129), (Layout::SingleMetadata4K, 4096, 97)] {
            let plan = Plan::new(3 * GIB, layout).unwrap();
            let sb = encode(&plan, &ids, "btrfs-reclaim-repro", 65536);
            assert_eq!(&sb[at::FSID..at::FSID + 16], &ids.fsid);
            assert_eq!(u64_at(&sb, at::FLAGS), 1);
            assert_eq!(u64_at(&sb, at::GENERATION), 1);
            assert_eq!(u64_at(&sb, at::TOTAL_BYTES), 3 * GIB);
            assert_eq!(u64_at(&sb, at::BYTES_USED), 8 * node as u64);
            assert_eq!(u64_at(&sb, at::ROOT_DIR_OBJECTID), 6);
            assert_eq!(u64_at(&sb, at::NUM_DEVICES), 1);
            assert_eq!(u32_at(&sb, at::SECTORSIZE), 4096);
            assert_eq!(u32_at(&sb, at::NODESIZE), node);
            assert_eq!(u32_at(&sb, at::LEAFSIZE), node);
            assert_eq!(u32_at(&sb, at::STRIPESIZE), 4096);
            assert_eq!(u32_at(&sb, at::SYS_CHUNK_ARRAY_SIZE), sys_size);
            assert_eq!(u64_at(&sb, at::INCOMPAT), 0x341);
            assert_eq!(u64_at(&sb, 172), 0, "compat");
            assert_eq!(u64_at(&sb, 180), 0, "compat_ro: no free space tree");
            assert_eq!(u16::from_le_bytes([sb[196], sb[197]]), 0, "crc32c");
            assert_eq!(u64_at(&sb, at::CACHE_GENERATION), u64::MAX);
            // The superblock's dev item is the chunk tree's, and names the fsid.
            let dev = items::dev_item(plan.total_bytes, plan.dev_bytes_used(), &ids.dev_uuid, &ids.fsid);
            assert_eq!(&sb[at::DEV_ITEM..at::DEV_ITEM + 98], &dev[..]);
            assert_eq!(&sb[at::DEV_ITEM + 82..at::DEV_ITEM + 98], &ids.fsid);
            // sys_chunk_array: the SYSTEM chunk's key first.
            assert_eq!(sb[SYS_CHUNK_ARRAY + 8], items::CHUNK_ITEM);
            assert_eq!(u64_at(&sb, SYS_CHUNK_ARRAY + 9), plan.system_chunk().logical);
            // Backup slot 0 names the tree root.
            assert_eq!(u64_at(&sb, SUPER_ROOTS), plan.block(Tree::Root));
        }
    }

    #[test]
    fn labels() {
        assert!(label_ok("btrfs-reclaim-repro"));
        assert!(label_ok(&"x".repeat(255)));
        assert!(!label_ok(&"x".repeat(256)));
        assert!(!label_ok("a\0b"));
    }
}

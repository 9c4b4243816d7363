//! The content of the eight one-leaf trees of a fresh filesystem: the final
//! state mkfs.btrfs 6.2 reaches after its six commits, written once at
//! generation 1 (`verify_parent_transid()` then holds trivially: every
//! header, root item and super generation is the same).

use super::crc32c::name_hash;
use super::ids::Ids;
use super::items::{self, Inode, Root};
use super::layout::{Plan, Tree};
use super::leaf::{Header, Key, Leaf, LeafError};

/// The one generation everything is written at.
pub const GENERATION: u64 = 1;

/// The root directory of the FS and data reloc trees.
const FIRST_FREE: u64 = items::FIRST_FREE_OBJECTID;

/// Every tree block: (logical address, bytes).
pub fn build(plan: &Plan, ids: &Ids, now: u64) -> Result<Vec<(u64, Vec<u8>)>, LeafError> {
    let mut out = Vec::new();
    for &(tree, at) in &plan.blocks {
        let items = match tree {
            Tree::Root => root_tree(plan, ids, now),
            Tree::Extent => extent_tree(plan),
            Tree::Chunk => chunk_tree(plan, ids),
            Tree::Dev => dev_tree(plan, ids),
            Tree::Fs => dir_tree(plan.nodesize as u64, [now; 4]),
            // The data reloc tree as `btrfs_make_subvolume()` leaves it: no
            // nbytes, no otime.
            Tree::DataReloc => dir_tree(0, [now, now, now, 0]),
            Tree::Csum => Vec::new(),
            Tree::Uuid => {
                let (lo, hi) = items::uuid_key(&ids.fs_tree_uuid);
                vec![(Key::new(lo, items::UUID_KEY_SUBVOL, hi), items::uuid_subvol(Tree::Fs.id()))]
            }
        };
        let mut leaf = Leaf::new(plan.nodesize);
        for (key, data) in items {
            leaf.push(key, data)?;
        }
        let header = Header {
            fsid: ids.fsid,
            chunk_tree_uuid: ids.chunk_tree_uuid,
            bytenr: at,
            generation: GENERATION,
            owner: tree.id(),
        };
        out.push((at, leaf.encode(&header)));
    }
    Ok(out)
}

fn sorted(mut items: Vec<(Key, Vec<u8>)>) -> Vec<(Key, Vec<u8>)> {
    items.sort_by_key(|(k, _)| *k);
    items
}

/// ROOT_ITEMs of every tree but root and chunk, plus the root tree
/// directory (inode 6) with "default" → FS tree, as `make_root_dir()`.
fn root_tree(plan: &Plan, ids: &Ids, now: u64) -> Vec<(Key, Vec<u8>)> {
    let node = plan.nodesize as u64;
    // `make_btrfs()`'s root item inode; trees made later by
    // `btrfs_create_tree()` (uuid, data reloc) have a zero one.
    let tree_inode = Inode { generation: 1, size: 3, nbytes: node, nlink: 1, mode: items::DIR_MODE, ..Inode::default() };
    let root = |tree: Tree, inode: Option<Inode>, root_dirid: u64| Root {
        inode,
        generation: GENERATION,
        root_dirid,
        bytenr: plan.block(tree),
        bytes_used: node,
        uuid: [0; 16],
        ctime: 0,
        otime: 0,
    };
    let root_item = |tree: Tree, r: Root| (Key::new(tree.id(), items::ROOT_ITEM, 0), items::root_item(&r));
    let fs = Root { uuid: ids.fs_tree_uuid, ctime: now, otime: now, ..root(Tree::Fs, Some(tree_inode), FIRST_FREE) };
    let dir = items::ROOT_TREE_DIR_OBJECTID;
    let dir_inode = Inode { generation: GENERATION, nbytes: node, nlink: 1, mode: items::DIR_MODE, times: [now; 4], ..Inode::default() };
    let default = Key::new(Tree::Fs.id(), items::ROOT_ITEM, u64::MAX);
    sorted(vec![
        root_item(Tree::Extent, root(Tree::Extent, Some(tree_inode), 0)),
        root_item(Tree::Dev, root(Tree::Dev, Some(tree_inode), 0)),
        root_item(Tree::Fs, fs),
        root_item(Tree::Csum, root(Tree::Csum, Some(tree_inode), 0)),
        root_item(Tree::Uuid, root(Tree::Uuid, None, 0)),
        root_item(Tree::DataReloc, root(Tree::DataReloc, None, FIRST_FREE)),
        (Key::new(Tree::Fs.id(), items::INODE_REF, dir), items::inode_ref(0, b"default")),
        (Key::new(dir, items::INODE_ITEM, 0), items::inode_item(&dir_inode)),
        (Key::new(dir, items::INODE_REF, dir), items::inode_ref(0, b"..")),
        (Key::new(dir, items::DIR_ITEM, name_hash(b"default")), items::dir_item(&default, items::FT_DIR, b"default")),
    ])
}

/// A BLOCK_GROUP_ITEM per chunk (`read_bg_from_eb()` matches them) and a
/// METADATA_ITEM per tree block (the first COW of a block without one
/// aborts the transaction).
fn extent_tree(plan: &Plan) -> Vec<(Key, Vec<u8>)> {
    let mut out = Vec::new();
    for chunk in &plan.chunks {
        let key = Key::new(chunk.logical, items::BLOCK_GROUP_ITEM, chunk.length);
        out.push((key, items::block_group(plan.used_in(chunk), chunk.flags)));
    }
    for &(tree, at) in &plan.blocks {
        // Key offset: the block's level.
        out.push((Key::new(at, items::METADATA_ITEM, 0), items::metadata_item(GENERATION, tree.id())));
    }
    sorted(out)
}

fn chunk_tree(plan: &Plan, ids: &Ids) -> Vec<(Key, Vec<u8>)> {
    let dev = items::dev_item(plan.total_bytes, plan.dev_bytes_used(), &ids.dev_uuid, &ids.fsid);
    let mut out = vec![(Key::new(items::DEV_ITEMS_OBJECTID, items::DEV_ITEM, items::DEVID), dev)];
    for chunk in &plan.chunks {
        let key = Key::new(items::FIRST_CHUNK_TREE_OBJECTID, items::CHUNK_ITEM, chunk.logical);
        out.push((key, items::chunk_item(chunk, &ids.dev_uuid)));
    }
    sorted(out)
}

/// A DEV_EXTENT per stripe: `btrfs_verify_dev_extents()` fails the mount on
/// a missing one. No DEV_STATS item: mkfs.btrfs 6.2 writes none and the
/// kernel starts from zero without it (`btrfs_device_init_dev_stats()`).
fn dev_tree(plan: &Plan, ids: &Ids) -> Vec<(Key, Vec<u8>)> {
    let mut out = Vec::new();
    for chunk in &plan.chunks {
        for &phys in &chunk.stripes {
            let key = Key::new(items::DEVID, items::DEV_EXTENT, phys);
            out.push((key, items::dev_extent(chunk.logical, chunk.length, &ids.chunk_tree_uuid)));
        }
    }
    sorted(out)
}

/// An FS-tree-like root: directory inode 256 and its ".." ref, which the
/// tree-checker (no empty fs/reloc leaf) and `btrfs check` want.
fn dir_tree(nbytes: u64, times: [u64; 4]) -> Vec<(Key, Vec<u8>)> {
    let inode = Inode { generation: GENERATION, nbytes, nlink: 1, mode: items::DIR_MODE, times, ..Inode::default() };
    vec![
        (Key::new(FIRST_FREE, items::INODE_ITEM, 0), items::inode_item(&inode)),
        (Key::new(FIRST_FREE, items::INODE_REF, FIRST_FREE), items::inode_ref(0, b"..")),
    ]
}

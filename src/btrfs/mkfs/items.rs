//! Item encoders: the on-disk structs of `btrfs_tree.h` as little-endian
//! bytes, whatever the host. Sizes are checked by the tree-checker, so each
//! encoder asserts its own.

use super::layout::{Chunk, STRIPE_LEN};

// Key types (`BTRFS_*_KEY`).
pub const INODE_ITEM: u8 = 1;
pub const INODE_REF: u8 = 12;
pub const DIR_ITEM: u8 = 84;
pub const ROOT_ITEM: u8 = 132;
pub const METADATA_ITEM: u8 = 169;
pub const TREE_BLOCK_REF: u8 = 176;
pub const BLOCK_GROUP_ITEM: u8 = 192;
pub const DEV_EXTENT: u8 = 204;
pub const DEV_ITEM: u8 = 216;
pub const CHUNK_ITEM: u8 = 228;
pub const UUID_KEY_SUBVOL: u8 = 251;

// Objectids.
pub const DEV_ITEMS_OBJECTID: u64 = 1;
pub const ROOT_TREE_DIR_OBJECTID: u64 = 6;
pub const FIRST_CHUNK_TREE_OBJECTID: u64 = 256;
pub const FIRST_FREE_OBJECTID: u64 = 256;
pub const CHUNK_TREE_OBJECTID: u64 = 3;
pub const EXTENT_TREE_OBJECTID: u64 = 2;

/// `BTRFS_EXTENT_FLAG_TREE_BLOCK`.
const EXTENT_FLAG_TREE_BLOCK: u64 = 2;
/// `BTRFS_FT_DIR`.
pub const FT_DIR: u8 = 2;
pub const DIR_MODE: u32 = 0o040755;
const SECTOR: u32 = 4096;
pub const DEVID: u64 = 1;

/// Little-endian field writer for fixed-size structs.
struct Out(Vec<u8>);

impl Out {
    fn new() -> Out {
        Out(Vec::new())
    }
    fn u8(&mut self, v: u8) -> &mut Out {
        self.0.push(v);
        self
    }
    fn u16(&mut self, v: u16) -> &mut Out {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn u32(&mut self, v: u32) -> &mut Out {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn u64(&mut self, v: u64) -> &mut Out {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn bytes(&mut self, v: &[u8]) -> &mut Out {
        self.0.extend_from_slice(v);
        self
    }
    fn zeros(&mut self, n: usize) -> &mut Out {
        self.0.resize(self.0.len() + n, 0);
        self
    }
    fn done(&mut self, size: usize) -> Vec<u8> {
        assert_eq!(self.0.len(), size, "on-disk struct size");
        std::mem::take(&mut self.0)
    }
}

/// `struct btrfs_dev_item`, 98 bytes; also copied into the superblock.
pub fn dev_item(total_bytes: u64, bytes_used: u64, dev_uuid: &[u8; 16], fsid: &[u8; 16]) -> Vec<u8> {
    Out::new()
        .u64(DEVID)
        .u64(total_bytes)
        .u64(bytes_used)
        .u32(SECTOR) // io_align
        .u32(SECTOR) // io_width
        .u32(SECTOR) // sector_size
        .u64(0) // type
        .u64(0) // generation
        .u64(0) // start_offset
        .u32(0) // dev_group
        .u8(0) // seek_speed
        .u8(0) // bandwidth
        .bytes(dev_uuid)
        .bytes(fsid)
        .done(98)
}

/// `struct btrfs_chunk` with its stripes: 80 + 32 (n − 1) bytes.
pub fn chunk_item(chunk: &Chunk, dev_uuid: &[u8; 16]) -> Vec<u8> {
    let mut out = Out::new();
    out.u64(chunk.length)
        .u64(EXTENT_TREE_OBJECTID) // owner
        .u64(STRIPE_LEN)
        .u64(chunk.flags)
        .u32(chunk.io_align)
        .u32(chunk.io_align) // io_width
        .u32(SECTOR)
        .u16(chunk.stripes.len() as u16)
        .u16(chunk.sub_stripes);
    for &offset in &chunk.stripes {
        out.u64(DEVID).u64(offset).bytes(dev_uuid);
    }
    out.done(48 + 32 * chunk.stripes.len())
}

/// `struct btrfs_dev_extent`, 48 bytes: one per chunk stripe.
pub fn dev_extent(chunk_logical: u64, length: u64, chunk_tree_uuid: &[u8; 16]) -> Vec<u8> {
    Out::new()
        .u64(CHUNK_TREE_OBJECTID)
        .u64(FIRST_CHUNK_TREE_OBJECTID)
        .u64(chunk_logical)
        .u64(length)
        .bytes(chunk_tree_uuid)
        .done(48)
}

/// `struct btrfs_block_group_item`, 24 bytes.
pub fn block_group(used: u64, flags: u64) -> Vec<u8> {
    Out::new().u64(used).u64(FIRST_CHUNK_TREE_OBJECTID).u64(flags).done(24)
}

/// A skinny METADATA_ITEM (`btrfs_extent_item`) with one inline
/// TREE_BLOCK_REF naming the owner tree, 33 bytes: what progs' recow leaves
/// and what `lookup_inline_extent_backref()` needs at the block's first COW.
pub fn metadata_item(generation: u64, owner: u64) -> Vec<u8> {
    Out::new()
        .u64(1) // refs
        .u64(generation)
        .u64(EXTENT_FLAG_TREE_BLOCK)
        .u8(TREE_BLOCK_REF)
        .u64(owner)
        .done(33)
}

/// The fields of a `btrfs_inode_item` that a fresh filesystem sets.
#[derive(Debug, Clone, Copy, Default)]
pub struct Inode {
    pub generation: u64,
    pub size: u64,
    pub nbytes: u64,
    pub nlink: u32,
    pub mode: u32,
    pub flags: u64,
    /// atime, ctime, mtime, otime (seconds; nanoseconds 0).
    pub times: [u64; 4],
}

/// `struct btrfs_inode_item`, 160 bytes.
pub fn inode_item(inode: &Inode) -> Vec<u8> {
    let mut out = Out::new();
    out.u64(inode.generation)
        .u64(0) // transid: mkfs leaves 0
        .u64(inode.size)
        .u64(inode.nbytes)
        .u64(0) // block_group
        .u32(inode.nlink)
        .u32(0) // uid
        .u32(0) // gid
        .u32(inode.mode)
        .u64(0) // rdev
        .u64(inode.flags)
        .u64(0) // sequence
        .zeros(32); // reserved
    for t in inode.times {
        out.u64(t).u32(0);
    }
    out.done(160)
}

/// The fields of a `btrfs_root_item` that a fresh filesystem sets.
#[derive(Debug, Clone, Copy)]
pub struct Root {
    /// The embedded inode; progs leaves it zero for trees made by
    /// `btrfs_create_tree()` (uuid, data reloc).
    pub inode: Option<Inode>,
    pub generation: u64,
    pub root_dirid: u64,
    pub bytenr: u64,
    pub bytes_used: u64,
    pub uuid: [u8; 16],
    pub ctime: u64,
    pub otime: u64,
}

/// `struct btrfs_root_item`, 439 bytes. generation_v2 equals generation:
/// otherwise `btrfs_read_root_item()` treats the item as pre-v2 and zeroes
/// everything after it (uuid included).
pub fn root_item(root: &Root) -> Vec<u8> {
    let mut out = Out::new();
    match &root.inode {
        Some(inode) => out.bytes(&inode_item(inode)),
        None => out.zeros(160),
    };
    out.u64(root.generation)
        .u64(root.root_dirid)
        .u64(root.bytenr)
        .u64(0) // byte_limit
        .u64(root.bytes_used)
        .u64(0) // last_snapshot
        .u64(0) // flags
        .u32(1) // refs
        .zeros(17) // drop_progress
        .u8(0) // drop_level
        .u8(0) // level: every tree is one leaf
        .u64(root.generation) // generation_v2
        .bytes(&root.uuid)
        .zeros(32) // parent_uuid, received_uuid
        .zeros(32); // ctransid, otransid, stransid, rtransid
    out.u64(root.ctime).u32(0).u64(root.otime).u32(0).zeros(24); // stime, rtime
    out.zeros(64).done(439) // reserved
}

/// `struct btrfs_inode_ref` + name.
pub fn inode_ref(index: u64, name: &[u8]) -> Vec<u8> {
    Out::new().u64(index).u16(name.len() as u16).bytes(name).done(10 + name.len())
}

/// `struct btrfs_dir_item` + name, pointing at `location`.
pub fn dir_item(location: &super::leaf::Key, file_type: u8, name: &[u8]) -> Vec<u8> {
    Out::new()
        .bytes(&location.encode())
        .u64(0) // transid: mkfs leaves 0
        .u16(0) // data_len
        .u16(name.len() as u16)
        .u8(file_type)
        .bytes(name)
        .done(30 + name.len())
}

/// A UUID_KEY_SUBVOL item's data: the subvolume id.
pub fn uuid_subvol(root_id: u64) -> Vec<u8> {
    root_id.to_le_bytes().to_vec()
}

/// The UUID tree key of a subvolume uuid: both halves as little-endian u64
/// (`btrfs_uuid_to_key()`).
pub fn uuid_key(uuid: &[u8; 16]) -> (u64, u64) {
    let lo = u64::from_le_bytes(uuid[0..8].try_into().expect("8 bytes"));
    let hi = u64::from_le_bytes(uuid[8..16].try_into().expect("8 bytes"));
    (lo, hi)
}

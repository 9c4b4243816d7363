//! The chunk plan: where mkfs.btrfs 6.2 leaves the SYSTEM, METADATA and DATA
//! chunks and the eight tree blocks, for a device size and one of our two
//! layouts. Same placement, so that block group counts, v1 cache inode
//! counts and the kernel's later allocations stay comparable with runs that
//! used mkfs.btrfs.

use std::fmt;

pub const KIB: u64 = 1 << 10;
pub const MIB: u64 = 1 << 20;
pub const GIB: u64 = 1 << 30;
pub const SECTOR: u64 = 4096;
/// `BTRFS_STRIPE_LEN`: chunk stripes and sizes are multiples of it.
pub const STRIPE_LEN: u64 = 64 * KIB;
pub use crate::base::ondisk::{SUPER_SIZE, SUPER_SLOTS};
/// The smallest device the fixed placement below is checked for.
pub const MIN_SIZE: u64 = GIB;

/// Block group / chunk type and profile bits (`BTRFS_BLOCK_GROUP_*`).
pub const BG_DATA: u64 = 1 << 0;
pub const BG_SYSTEM: u64 = 1 << 1;
pub const BG_METADATA: u64 = 1 << 2;
pub const BG_DUP: u64 = 1 << 5;

/// What the filesystem looks like, as the project asks mkfs.btrfs for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `-m dup -d single`, 16 KiB nodes: the default.
    DupMetadata16K,
    /// `-m single -d single --nodesize 4096`: the `--enospc natural` path,
    /// whose small metadata chunk fills fast.
    SingleMetadata4K,
}

impl Layout {
    pub fn nodesize(self) -> u32 {
        match self {
            Layout::DupMetadata16K => 16384,
            Layout::SingleMetadata4K => 4096,
        }
    }
}

/// The trees a fresh filesystem has, each one leaf.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tree {
    Root,
    Extent,
    Chunk,
    Dev,
    Fs,
    Csum,
    Uuid,
    DataReloc,
}

impl Tree {
    /// The tree's objectid (`BTRFS_*_TREE_OBJECTID`), also its blocks' owner.
    pub fn id(self) -> u64 {
        match self {
            Tree::Root => 1,
            Tree::Extent => 2,
            Tree::Chunk => 3,
            Tree::Dev => 4,
            Tree::Fs => 5,
            Tree::Csum => 7,
            Tree::Uuid => 9,
            Tree::DataReloc => -9i64 as u64,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// Type | profile bits.
    pub flags: u64,
    pub logical: u64,
    pub length: u64,
    /// Physical start of each stripe on device 1 (DUP: two).
    pub stripes: Vec<u64>,
    pub io_align: u32,
    pub sub_stripes: u16,
}

impl Chunk {
    pub fn contains(&self, logical: u64) -> bool {
        logical >= self.logical && logical < self.logical + self.length
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The device size rounded down to a sector: the filesystem's size.
    pub total_bytes: u64,
    pub nodesize: u32,
    /// Sorted by logical address.
    pub chunks: Vec<Chunk>,
    /// Every tree's leaf, by logical address.
    pub blocks: Vec<(Tree, u64)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanError {
    TooSmall { size: u64 },
    /// Longer than the superblock's 256-byte field allows (with its NUL),
    /// or containing a NUL.
    Label { len: usize },
    /// A placement rule broken: a bug of ours, never the user's input.
    Layout(String),
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlanError::TooSmall { size } => write!(
                f,
                "device of {size} bytes is too small for the built-in mkfs (needs at least 1 GiB; use --mkfs external)"
            ),
            PlanError::Label { len } => write!(f, "label of {len} bytes is not a btrfs label (at most 255 bytes, no NUL)"),
            PlanError::Layout(why) => write!(f, "built-in mkfs layout error: {why}"),
        }
    }
}

impl std::error::Error for PlanError {}

/// The METADATA|DUP stripe mkfs.btrfs 6.2 allocates: progs
/// `init_alloc_chunk_ctl_policy_regular()` (1 GiB above 50 GiB, else 256 MiB,
/// capped at 10 % of the device) then `decide_stripe_size_regular()` (when
/// the cap bites, the cap divided by num_stripes = 2, floor 32 MiB, both
/// rounded down to the stripe length).
pub fn metadata_dup_stripe(total_bytes: u64) -> u64 {
    let mut max_chunk = if total_bytes > 50 * GIB { GIB } else { 256 * MIB };
    let stripe = max_chunk;
    max_chunk = max_chunk.min(total_bytes / 10);
    let stripe = if stripe > max_chunk { round_down(max_chunk / 2, STRIPE_LEN) } else { stripe };
    round_down(stripe.max(32 * MIB), STRIPE_LEN)
}

pub fn round_down(value: u64, align: u64) -> u64 {
    value - value % align
}

/// Superblock copies the kernel keeps up to date: `write_dev_supers()` skips
/// copy i when `bytenr + BTRFS_SUPER_INFO_SIZE >= total_bytes`.
pub fn super_copies(total_bytes: u64) -> Vec<u64> {
    SUPER_SLOTS.iter().copied().filter(|&o| o + SUPER_SIZE < total_bytes).collect()
}

impl Plan {
    pub fn new(size_bytes: u64, layout: Layout) -> Result<Plan, PlanError> {
        let total_bytes = round_down(size_bytes, SECTOR);
        if total_bytes < MIN_SIZE {
            return Err(PlanError::TooSmall { size: size_bytes });
        }
        let node = layout.nodesize() as u64;
        let (chunks, blocks) = match layout {
            // mkfs's temporary chunks (SYSTEM 1 MiB + 4 MiB, METADATA 5 MiB
            // + 8 MiB, DATA 13 MiB + 8 MiB) become the final ones: with
            // single profiles `cleanup_temp_chunks()` keeps them. The
            // SYSTEM chunk keeps `make_btrfs()`'s io_align 4096 and
            // sub_stripes 0.
            Layout::SingleMetadata4K => {
                let chunks = vec![
                    single(BG_SYSTEM, MIB, 4 * MIB, SECTOR as u32, 0),
                    single(BG_METADATA, 5 * MIB, 8 * MIB, STRIPE_LEN as u32, 1),
                    single(BG_DATA, 13 * MIB, 8 * MIB, STRIPE_LEN as u32, 1),
                ];
                // Where the blocks are after mkfs's commits and recow.
                let meta = 5 * MIB;
                let blocks = vec![
                    (Tree::Chunk, MIB + node),
                    (Tree::Root, meta),
                    (Tree::Extent, meta + node),
                    (Tree::Fs, meta + 2 * node),
                    (Tree::Dev, meta + 6 * node),
                    (Tree::Csum, meta + 8 * node),
                    (Tree::DataReloc, meta + 9 * node),
                    (Tree::Uuid, meta + 10 * node),
                ];
                (chunks, blocks)
            }
            // `create_raid_groups()` adds SYSTEM|DUP and METADATA|DUP after
            // the temporaries (logical: after the last chunk; physical: the
            // first hole from 21 MiB), then the temporaries are deleted,
            // leaving [1 MiB, 13 MiB) unallocated and DATA at 13 MiB.
            Layout::DupMetadata16K => {
                let meta_stripe = metadata_dup_stripe(total_bytes);
                let chunks = vec![
                    single(BG_DATA, 13 * MIB, 8 * MIB, STRIPE_LEN as u32, 1),
                    Chunk {
                        flags: BG_SYSTEM | BG_DUP,
                        logical: 21 * MIB,
                        length: 8 * MIB,
                        stripes: vec![21 * MIB, 29 * MIB],
                        io_align: STRIPE_LEN as u32,
                        sub_stripes: 1,
                    },
                    Chunk {
                        flags: BG_METADATA | BG_DUP,
                        logical: 29 * MIB,
                        length: meta_stripe,
                        stripes: vec![37 * MIB, 37 * MIB + meta_stripe],
                        io_align: STRIPE_LEN as u32,
                        sub_stripes: 1,
                    },
                ];
                let meta = 29 * MIB;
                let blocks = vec![
                    (Tree::Chunk, 21 * MIB + node),
                    (Tree::Extent, meta),
                    (Tree::Fs, meta + node),
                    (Tree::Csum, meta + 5 * node),
                    (Tree::DataReloc, meta + 6 * node),
                    (Tree::Uuid, meta + 7 * node),
                    (Tree::Dev, meta + 8 * node),
                    (Tree::Root, meta + 9 * node),
                ];
                (chunks, blocks)
            }
        };
        let plan = Plan { total_bytes, nodesize: layout.nodesize(), chunks, blocks };
        plan.check()?;
        Ok(plan)
    }

    pub fn block(&self, tree: Tree) -> u64 {
        self.blocks.iter().find(|(t, _)| *t == tree).map(|(_, at)| *at).expect("every tree has a block")
    }

    pub fn chunk_of(&self, logical: u64) -> Option<&Chunk> {
        self.chunks.iter().find(|c| c.contains(logical))
    }

    /// Every physical copy of a logical address (DUP: two).
    pub fn physical(&self, logical: u64) -> Vec<u64> {
        match self.chunk_of(logical) {
            Some(c) => c.stripes.iter().map(|s| s + (logical - c.logical)).collect(),
            None => Vec::new(),
        }
    }

    /// Σ stripe lengths: the DEV_ITEM's bytes_used.
    pub fn dev_bytes_used(&self) -> u64 {
        self.chunks.iter().map(|c| c.length * c.stripes.len() as u64).sum()
    }

    /// Tree blocks inside a chunk, in bytes: its BLOCK_GROUP_ITEM's used.
    pub fn used_in(&self, chunk: &Chunk) -> u64 {
        self.blocks.iter().filter(|(_, at)| chunk.contains(*at)).count() as u64 * self.nodesize as u64
    }

    pub fn system_chunk(&self) -> &Chunk {
        self.chunks.iter().find(|c| c.flags & BG_SYSTEM != 0).expect("a SYSTEM chunk")
    }

    /// The invariants the kernel relies on: chunks inside the device and not
    /// overlapping; each tree block inside a chunk of the right type (the
    /// chunk root in SYSTEM, since `btrfs_read_sys_array()` only maps that);
    /// no tree block copy on a superblock slot, which `write_dev_supers()`
    /// would overwrite at every commit.
    fn check(&self) -> Result<(), PlanError> {
        let node = self.nodesize as u64;
        let mut extents: Vec<(u64, u64)> = Vec::new();
        for c in &self.chunks {
            for &s in &c.stripes {
                if s + c.length > self.total_bytes {
                    return Err(PlanError::TooSmall { size: self.total_bytes });
                }
                extents.push((s, s + c.length));
            }
        }
        extents.sort();
        if extents.windows(2).any(|w| w[0].1 > w[1].0) {
            return Err(PlanError::Layout("overlapping dev extents".into()));
        }
        for &(tree, at) in &self.blocks {
            let chunk = self.chunk_of(at).ok_or_else(|| PlanError::Layout(format!("{tree:?} block at {at} outside every chunk")))?;
            let want = if tree == Tree::Chunk { BG_SYSTEM } else { BG_METADATA };
            if chunk.flags & want == 0 || at % node != 0 || at + node > chunk.logical + chunk.length {
                return Err(PlanError::Layout(format!("{tree:?} block at {at} misplaced")));
            }
            for phys in self.physical(at) {
                if SUPER_SLOTS.iter().any(|&s| phys < s + SUPER_SIZE && s < phys + node) {
                    return Err(PlanError::Layout(format!("{tree:?} block at physical {phys} on a superblock slot")));
                }
            }
        }
        Ok(())
    }
}

fn single(kind: u64, start: u64, length: u64, io_align: u32, sub_stripes: u16) -> Chunk {
    Chunk { flags: kind, logical: start, length, stripes: vec![start], io_align, sub_stripes }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIB: u64 = 1 << 40;

    /// (logical, length, flags, stripes) of every chunk, by logical.
    fn table(size: u64, layout: Layout) -> Vec<(u64, u64, u64, Vec<u64>)> {
        let plan = Plan::new(size, layout).unwrap();
        plan.chunks.iter().map(|c| (c.logical, c.length, c.flags, c.stripes.clone())).collect()
    }

    /// MKFS.md §1.1: what `mkfs.btrfs -m dup -d single` 6.2 leaves
    /// (dump-tree of its images on this host).
    #[test]
    fn dup_layout_equals_mkfs_btrfs_6_2() {
        let meta = |size: u64| (29 * MIB, size, BG_METADATA | BG_DUP, vec![37 * MIB, 37 * MIB + size]);
        let data = (13 * MIB, 8 * MIB, BG_DATA, vec![13 * MIB]);
        let system = (21 * MIB, 8 * MIB, BG_SYSTEM | BG_DUP, vec![21 * MIB, 29 * MIB]);
        assert_eq!(table(GIB, Layout::DupMetadata16K), vec![data.clone(), system.clone(), meta(53_673_984)]);
        assert_eq!(table(3 * GIB, Layout::DupMetadata16K), vec![data.clone(), system.clone(), meta(256 * MIB)]);
        for size in [100 * GIB, TIB, 4 * TIB, 16 * TIB - 4 * KIB] {
            assert_eq!(table(size, Layout::DupMetadata16K), vec![data.clone(), system.clone(), meta(GIB)], "{size}");
        }
        // The 3 GiB DEV_ITEM bytes_used mkfs reports.
        assert_eq!(Plan::new(3 * GIB, Layout::DupMetadata16K).unwrap().dev_bytes_used(), 562_036_736);
    }

    #[test]
    fn metadata_stripe_rule() {
        // The 10 % cap bites below 2.5 GiB (then halved: the DUP quirk of
        // dividing by num_stripes); 1 GiB above 50 GiB.
        assert_eq!(metadata_dup_stripe(GIB), 53_673_984);
        assert_eq!(metadata_dup_stripe(2 * GIB), 107_347_968);
        assert_eq!(metadata_dup_stripe(5 * GIB / 2 - 4096), 134_152_192);
        assert_eq!(metadata_dup_stripe(5 * GIB / 2), 256 * MIB);
        assert_eq!(metadata_dup_stripe(50 * GIB), 256 * MIB);
        assert_eq!(metadata_dup_stripe(50 * GIB + 4096), GIB);
        // Never below 32 MiB, always a stripe multiple.
        assert_eq!(metadata_dup_stripe(300 * MIB), 32 * MIB);
        for size in [GIB + 4096, 3 * GIB - 4096, 77 * GIB + 12345 * 4096] {
            assert_eq!(metadata_dup_stripe(size) % STRIPE_LEN, 0);
        }
    }

    #[test]
    fn single_layout_equals_mkfs_btrfs_6_2() {
        for size in [GIB, 3 * GIB, TIB] {
            let plan = Plan::new(size, Layout::SingleMetadata4K).unwrap();
            let t: Vec<_> = plan.chunks.iter().map(|c| (c.logical, c.length, c.flags, c.stripes.clone(), c.io_align, c.sub_stripes)).collect();
            assert_eq!(
                t,
                vec![
                    (MIB, 4 * MIB, BG_SYSTEM, vec![MIB], 4096, 0),
                    (5 * MIB, 8 * MIB, BG_METADATA, vec![5 * MIB], 65536, 1),
                    (13 * MIB, 8 * MIB, BG_DATA, vec![13 * MIB], 65536, 1),
                ]
            );
            assert_eq!(plan.dev_bytes_used(), 20 * MIB);
            assert_eq!(plan.block(Tree::Root), 5 * MIB);
            assert_eq!(plan.block(Tree::Chunk), MIB + 4096);
        }
    }

    #[test]
    fn tree_blocks_where_mkfs_leaves_them() {
        let plan = Plan::new(3 * GIB, Layout::DupMetadata16K).unwrap();
        // From the dump of a 3 GiB mkfs.btrfs 6.2 image.
        assert_eq!(plan.block(Tree::Root), 30_556_160);
        assert_eq!(plan.block(Tree::Chunk), 22_036_480);
        assert_eq!(plan.block(Tree::Extent), 30_408_704);
        assert_eq!(plan.block(Tree::Dev), 30_539_776);
        assert_eq!(plan.physical(30_556_160), vec![30_556_160 - 29 * MIB + 37 * MIB, 30_556_160 - 29 * MIB + 37 * MIB + 256 * MIB]);
        let system = plan.system_chunk();
        assert_eq!(plan.used_in(system), 16384);
        assert_eq!(plan.blocks.len(), 8);
    }

    #[test]
    fn superblock_copies_by_size() {
        assert_eq!(super_copies(GIB), vec![64 * KIB, 64 * MIB]);
        assert_eq!(super_copies(256 * GIB + 4096), vec![64 * KIB, 64 * MIB]);
        assert_eq!(super_copies(256 * GIB + 8192), vec![64 * KIB, 64 * MIB, 256 * GIB]);
        assert_eq!(super_copies(TIB).len(), 3);
    }

    #[test]
    fn no_tree_block_on_a_superblock_slot_and_every_size_plans() {
        for layout in [Layout::DupMetadata16K, Layout::SingleMetadata4K] {
            for size in [GIB, GIB + 4095, 2 * GIB, 3 * GIB, 64 * GIB, 100 * GIB, 257 * GIB, TIB, 4 * TIB, 16 * TIB - 4 * KIB, 1 << 60] {
                // Plan::new checks slots, overlaps and chunk types.
                let plan = Plan::new(size, layout).unwrap_or_else(|e| panic!("{layout:?} {size}: {e}"));
                assert_eq!(plan.total_bytes % SECTOR, 0);
            }
        }
    }

    #[test]
    fn sizes_round_down_and_small_devices_are_refused() {
        let plan = Plan::new(3 * GIB + 4095, Layout::DupMetadata16K).unwrap();
        assert_eq!(plan.total_bytes, 3 * GIB);
        let plan = Plan::new(GIB + 512, Layout::SingleMetadata4K).unwrap();
        assert_eq!(plan.total_bytes, GIB);
        let e = Plan::new(GIB - 1, Layout::DupMetadata16K).unwrap_err();
        assert_eq!(e, PlanError::TooSmall { size: GIB - 1 });
        let text = e.to_string();
        assert!(text.contains("--mkfs external") && !text.contains('\n'), "{text}");
        assert!(Plan::new(0, Layout::SingleMetadata4K).is_err());
    }
}

/// The planner over 100,000 device sizes: from 0 to u64::MAX,
/// biased to the edges (the 1 GiB minimum, the 50 GiB and 10 % rules, the
/// mirror slots, 4 KiB alignment). It never panics; a plan it accepts keeps
/// every stripe inside the device and every tree block clear of the
/// superblock slots (a stripe may span a slot: the kernel excludes it,
/// exclude_super_stripes(), as mkfs.btrfs 6.2's own layout shows).
#[cfg(test)]
mod fuzz {
    use super::*;
    use crate::testing::fuzz::{run, INPUTS};

    #[test]
    fn the_planner_never_panics_and_stays_on_the_device() {
        let edges = [0, GIB - 1, GIB, GIB + 4095, 50 * GIB, 64 * MIB + 4096, 256 * GIB + 4096, 16 << 40, u64::MAX];
        let make = |rng: &mut fastrand::Rng| {
            let size = match rng.u8(..4) {
                0 => rng.u64(..),
                1 => edges[rng.usize(..edges.len())].wrapping_add(rng.u64(..8192)).wrapping_sub(4096),
                2 => rng.u64(..64 * GIB),
                _ => {
                    let shift = rng.u32(0..=16);
                    rng.u64(GIB..=GIB << shift)
                }
            };
            (size, if rng.bool() { Layout::DupMetadata16K } else { Layout::SingleMetadata4K })
        };
        let mut accepted = 0;
        run("mkfs::Plan::new", 0x6d6b6673, make, |(size, layout)| {
            if let Ok(plan) = Plan::new(*size, *layout) {
                accepted += 1;
                assert!(plan.total_bytes <= *size && plan.total_bytes % SECTOR == 0);
                for c in &plan.chunks {
                    for s in &c.stripes {
                        assert!(s + c.length <= plan.total_bytes, "stripe past the end: {c:?}");
                    }
                }
                let node = u64::from(plan.nodesize);
                for (_, logical) in &plan.blocks {
                    for p in plan.physical(*logical) {
                        assert!(SUPER_SLOTS.iter().all(|o| o + SUPER_SIZE <= p || *o >= p + node), "tree block over a superblock at {p}");
                    }
                }
            } else {
                assert!(round_down(*size, SECTOR) < MIN_SIZE, "refused {size}");
            }
        });
        assert!(accepted > INPUTS / 4, "only {accepted} sizes planned");
    }
}

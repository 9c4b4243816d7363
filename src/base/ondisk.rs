//! Where a btrfs says what it is and who made it: the superblock copies,
//! their magic and label field (`struct btrfs_super_block`), and our label.
//! The device probe (device/signature.rs) reads them; the built-in mkfs
//! (btrfs/mkfs/) writes them.

/// Our label: a btrfs carrying it was made by us and may be reformatted
/// (device/safety.rs keys on it).
pub const LABEL: &str = "btrfs-reclaim-repro";

/// `BTRFS_SUPER_INFO_SIZE`.
pub const SUPER_SIZE: u64 = 4096;
/// `btrfs_sb_offset(0..3)`: 64 KiB, then 16 KiB << 12 and 16 KiB << 24.
pub const SUPER_SLOTS: [u64; 3] = [64 << 10, 64 << 20, 256 << 30];
/// `BTRFS_MAGIC`, "_BHRfS_M".
pub const MAGIC: u64 = 0x4D5F_5366_5248_425F;
/// `BTRFS_LABEL_SIZE` less the terminating NUL.
pub const LABEL_MAX: usize = 255;
/// `offsetof(struct btrfs_super_block, magic)`.
pub const MAGIC_AT: usize = 64;
/// `offsetof(struct btrfs_super_block, label)`.
pub const LABEL_AT: usize = 299;

//! The test filesystem: made (mkfs.btrfs), mounted, filled, and asked about
//! its block groups and reclaim counters.

pub mod childop;
pub mod fill;
pub mod fs;
pub mod mkfs_progs;
pub mod mount;

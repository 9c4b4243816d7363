//! The test filesystem: made (the built-in mkfs or mkfs.btrfs), mounted, filled, and asked about
//! its block groups and reclaim counters.

pub mod childop;
pub mod fill;
pub mod format;
pub mod fs;
pub mod mkfs;
pub mod mkfs_progs;
pub mod mount;
pub mod reclaim;

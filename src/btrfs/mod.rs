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
pub mod swapfile;

use crate::sys::process::Signal;

/// Why making the test filesystem did not finish: it failed (one line:
/// what failed, on what), or a signal stopped it.
#[derive(Debug)]
pub enum Failure {
    Failed(String),
    Interrupted(Signal),
}

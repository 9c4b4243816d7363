//! Words every layer shares: sizes, the phases of a pass, progress lines,
//! what the process holds, the mount table, and how a btrfs names itself
//! on disk.

pub mod mountinfo;
pub mod ondisk;
pub mod phase;
pub mod progress;
pub mod resources;
pub mod size;

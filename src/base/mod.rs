//! Words every layer shares: sizes, the phases of a pass, progress lines,
//! what the process holds, and the mount table.

pub mod mountinfo;
pub mod phase;
pub mod progress;
pub mod resources;
pub mod size;

//! What the kernel has and says: its log (`kmsg/`: records, events, the
//! tracefs trace, pid groups, the watcher), kmemleak's reports, and the
//! facts of the running kernel and process (`host`).

pub mod host;
pub mod kmemleak;
pub mod kmsg;

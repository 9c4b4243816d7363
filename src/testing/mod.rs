//! Test and bench support, compiled only for `cargo test`: the product
//! modules never see it. Here: fixture loaders (real kernel output, console
//! captures under tests/fixtures/, turned into records and a Tracker) and
//! temporary directories that always go away; beside it the seeded fuzz
//! engine, the mkfs tests' environment, the rank test of the layers, and the
//! linearity bench (`make bench`).

pub mod fuzz;
mod linearity;
pub mod mkfs_env;
mod ranks;
mod sizes;

use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use crate::kernel::kmsg::events::Tracker;
use crate::kernel::kmsg::Record;

/// A directory under the system temp dir, removed with everything in it.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!("brr-{tag}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed));
        let dir = std::env::temp_dir().join(name);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }
}

impl Deref for TempDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Turns console (`[  39.02] text`) lines into records, numbering them.
pub fn records_from_console(text: &str) -> Vec<Record> {
    text.lines()
        .enumerate()
        .filter_map(|(i, line)| {
            let (stamp, rest) = line.strip_prefix('[')?.split_once("] ")?;
            let usec = (stamp.trim().parse::<f64>().ok()? * 1e6) as u64;
            Some(Record { level: 6, seq: i as u64 + 1, usec, text: rest.to_string() })
        })
        .collect()
}

pub fn track(records: &[Record]) -> Tracker {
    let mut t = Tracker::default();
    for r in records {
        t.feed(r);
    }
    t
}

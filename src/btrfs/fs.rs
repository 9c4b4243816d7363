//! What a mounted btrfs tells about itself: its sysfs reclaim knobs and
//! counters, its data block groups and their v1 cache inodes.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use crate::sys;
use crate::sys::btrfs::{get_u64, tree_search, SearchKey};

/// A mounted test filesystem: the open mount point and its sysfs directory.
pub struct Fs {
    pub mnt: PathBuf,
    /// As the kernel prints it (%pU): tracepoints carry it.
    pub fsid: String,
    pub dir: File,
    /// /sys/fs/btrfs/<fsid>/allocation/data
    pub data_sysfs: PathBuf,
}

/// Parses /sys/fs/btrfs/<fsid>/exclusive_operation: "none" or the name
/// of the operation under way ("balance", "balance paused", "device add", ...).
pub fn exclusive_operation_busy(text: &str) -> bool {
    text.trim() != "none"
}

pub fn format_uuid(b: &[u8; 16]) -> String {
    let h: Vec<String> = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        h[0..4].concat(),
        h[4..6].concat(),
        h[6..8].concat(),
        h[8..10].concat(),
        h[10..16].concat()
    )
}

/// The sysfs files this bug needs; they arrived with dynamic/periodic
/// reclaim (around 6.11).
pub const RECLAIM_FILES: [&str; 4] = ["dynamic_reclaim", "periodic_reclaim", "reclaim_count", "reclaim_errors"];

/// Which automatic reclaim the kernel offers, by the files of
/// allocation/data/ on the mounted filesystem.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offered {
    /// dynamic_reclaim, periodic_reclaim and the reclaim_* counters (6.11 on).
    DynamicPeriodic,
    /// Only the static bg_reclaim_threshold (non-zoned since 5.19): a data
    /// group whose usage drops below it on a free is marked for reclaim
    /// (btrfs_update_block_group() -> btrfs_mark_bg_to_reclaim()). No
    /// counters: attempts and failures are counted from the kernel log.
    StaticThreshold,
    /// Neither: nothing relocates a data group by itself.
    Nothing,
}

impl Offered {
    pub fn name(self) -> &'static str {
        match self {
            Offered::DynamicPeriodic => "dynamic/periodic",
            Offered::StaticThreshold => "bg_reclaim_threshold",
            Offered::Nothing => "none",
        }
    }

    /// From the names present in allocation/data/.
    pub fn from_files(has: impl Fn(&str) -> bool) -> Offered {
        if RECLAIM_FILES.iter().all(|f| has(f)) {
            Offered::DynamicPeriodic
        } else if has("bg_reclaim_threshold") {
            Offered::StaticThreshold
        } else {
            Offered::Nothing
        }
    }
}

impl Fs {
    pub fn open(mnt: &Path) -> io::Result<Fs> {
        let dir = File::open(mnt).map_err(sys::with("open", mnt))?;
        let fsid = format_uuid(&sys::btrfs::fsid(&dir, mnt)?);
        let data_sysfs = PathBuf::from(format!("/sys/fs/btrfs/{fsid}/allocation/data"));
        Ok(Fs { mnt: mnt.to_path_buf(), fsid, dir, data_sysfs })
    }

    pub fn offered(&self) -> Offered {
        Offered::from_files(|f| self.data_sysfs.join(f).exists())
    }

    /// reclaim_count and reclaim_errors exist (6.11 on).
    pub fn has_counters(&self) -> bool {
        ["reclaim_count", "reclaim_errors"].iter().all(|f| self.data_sysfs.join(f).exists())
    }

    /// The reclaim files this kernel lacks.
    pub fn missing_reclaim_files(&self) -> Vec<&'static str> {
        RECLAIM_FILES.iter().copied().filter(|f| !self.data_sysfs.join(f).exists()).collect()
    }

    pub fn read_counter(&self, name: &str) -> io::Result<u64> {
        let path = self.data_sysfs.join(name);
        let text = std::fs::read_to_string(&path).map_err(sys::with("read", &path))?;
        text.trim()
            .parse()
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, format!("read {}: not a number: {text:?}", path.display())))
    }

    /// Writes a sysfs knob, naming the file in any error.
    pub fn write_knob(&self, name: &str, value: &str) -> io::Result<()> {
        let path = self.data_sysfs.join(name);
        std::fs::write(&path, value).map_err(sys::with("write", format!("{value} to {}", path.display())))
    }

    pub fn reclaim_counts(&self) -> io::Result<(u64, u64)> {
        Ok((self.read_counter("reclaim_count")?, self.read_counter("reclaim_errors")?))
    }

    /// Whether an exclusive operation runs: the reclaim worker holds
    /// "balance" for its whole run (btrfs_reclaim_bgs_work() calls
    /// btrfs_exclop_start()). `None` when the file cannot be read.
    pub fn exclusive_operation_busy(&self) -> Option<bool> {
        let path = PathBuf::from(format!("/sys/fs/btrfs/{}/exclusive_operation", self.fsid));
        std::fs::read_to_string(path).ok().map(|text| exclusive_operation_busy(&text))
    }

    /// BTRFS_IOC_SYNC: commits and wakes the cleaner kthread, which runs the
    /// reclaim sweep.
    pub fn sync(&self) -> io::Result<()> {
        sys::btrfs::sync(&self.dir, &self.mnt)
    }

    pub fn syncfs(&self) -> io::Result<()> {
        sys::fs::syncfs(&self.dir, &self.mnt)
    }

    /// Data block groups (start, length) from the chunk tree.
    pub fn data_block_groups(&self) -> io::Result<Vec<(u64, u64)>> {
        // Chunk tree = 3, BTRFS_FIRST_CHUNK_TREE_OBJECTID = 256,
        // BTRFS_CHUNK_ITEM_KEY = 228, offset = logical start.
        let key = SearchKey {
            tree_id: 3,
            min_objectid: 256,
            max_objectid: 256,
            min_type: 228,
            max_type: 228,
            min_offset: 0,
            max_offset: u64::MAX,
        };
        let items = tree_search(&self.dir, key, &self.mnt)?;
        // struct btrfs_chunk: length, owner, stripe_len, type (u64 each).
        Ok(items
            .iter()
            .filter(|i| i.item_type == 228 && i.data.len() >= 32)
            .filter(|i| get_u64(&i.data, 24) & 1 != 0)
            .map(|i| (i.offset, get_u64(&i.data, 0)))
            .collect())
    }

    /// Block group starts that own a v1 free-space-cache inode: items keyed
    /// (BTRFS_FREE_SPACE_OBJECTID, 0, start) in the root tree.
    pub fn v1_cache_starts(&self) -> io::Result<Vec<u64>> {
        const FREE_SPACE_OBJECTID: u64 = -11i64 as u64;
        let key = SearchKey {
            tree_id: 1,
            min_objectid: FREE_SPACE_OBJECTID,
            max_objectid: FREE_SPACE_OBJECTID,
            min_type: 0,
            max_type: 0,
            min_offset: 0,
            max_offset: u64::MAX,
        };
        Ok(tree_search(&self.dir, key, &self.mnt)?.iter().filter(|i| i.item_type == 0).map(|i| i.offset).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_files_say_which_reclaim_the_kernel_offers() {
        // ls allocation/data/ on 6.1.192 (bzImage-6.1-instrumented):
        let v61 = "bg_reclaim_threshold bytes_may_use bytes_pinned bytes_readonly bytes_reserved bytes_used bytes_zone_unusable chunk_size disk_total disk_used flags single total_bytes";
        let has = |list: &'static str| move |f: &str| list.split(' ').any(|x| x == f);
        assert_eq!(Offered::from_files(has(v61)), Offered::StaticThreshold);
        let v612 = "bg_reclaim_threshold dynamic_reclaim periodic_reclaim reclaim_count reclaim_bytes reclaim_errors";
        assert_eq!(Offered::from_files(has(v612)), Offered::DynamicPeriodic);
        assert_eq!(Offered::from_files(has("bytes_used flags")), Offered::Nothing);
    }

    #[test]
    fn exclusive_operation_is_busy_unless_none() {
        // As btrfs_exclusive_operation_show() prints them.
        assert!(!exclusive_operation_busy("none\n"));
        assert!(exclusive_operation_busy("balance\n"));
        assert!(exclusive_operation_busy("balance paused\n"));
        assert!(exclusive_operation_busy("device add\n"));
        assert!(exclusive_operation_busy("unknown\n"));
    }
}

//! The fresh filesystem of a pass: written by the built-in mkfs (the
//! default: the same bytes on every machine, nothing to install) or by
//! mkfs.btrfs (`--mkfs external`, for comparison).

use std::fs::OpenOptions;
use std::io::{Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::btrfs::mkfs_progs;
use crate::btrfs::Failure;
use crate::btrfs::mkfs::{self, Ids, Layout, LABEL};
use crate::sys;

/// Which mkfs formats the device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mkfs {
    Builtin,
    /// mkfs.btrfs at `path`, and the version it reported.
    External { path: PathBuf, version: Option<(u32, u32)> },
}

impl Mkfs {
    /// What the JSON `mkfs` key and the device line say.
    pub fn describe(&self) -> String {
        match self {
            Mkfs::Builtin => "builtin".into(),
            Mkfs::External { version: Some((a, b)), .. } => format!("mkfs.btrfs v{a}.{b}"),
            Mkfs::External { .. } => "mkfs.btrfs (unknown version)".into(),
        }
    }
}

/// The filesystem laid out for `natural` (metadata SINGLE, 4 KiB nodes) or
/// not (metadata DUP, 16 KiB nodes), without the free space tree. Returns
/// how the free space tree was kept off (external mkfs), for the progress
/// line and the mount options.
pub fn format(mkfs: &Mkfs, dev: &Path, natural: bool, v1: bool, ids: &Ids, now_secs: u64) -> Result<Option<String>, Failure> {
    match mkfs {
        Mkfs::Builtin => {
            let layout = if natural { Layout::SingleMetadata4K } else { Layout::DupMetadata16K };
            let total = builtin(dev, layout, ids, now_secs).map_err(Failure::Failed)?;
            Ok(Some(format!("the built-in mkfs ({} filesystem)", crate::base::size::human(total))))
        }
        Mkfs::External { path, .. } => {
            let layout = if natural {
                mkfs_progs::Layout { metadata: "single", nodesize: Some(4096) }
            } else {
                mkfs_progs::Layout { metadata: "dup", nodesize: None }
            };
            mkfs_progs::format(path, dev, &layout, v1).map_err(|e| match e {
                Failure::Failed(m) => Failure::Failed(format!("mkfs: {m}")),
                stopped => stopped,
            })
        }
    }
}

/// Opens `dev` exclusively (the kernel refuses while anything holds it),
/// builds the image for its size and writes it. Returns the filesystem size.
fn builtin(dev: &Path, layout: Layout, ids: &Ids, now_secs: u64) -> Result<u64, String> {
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_EXCL)
        .open(dev)
        .map_err(|e| format!("built-in mkfs: {}", sys::with("open(O_EXCL)", dev)(e)))?;
    let size = file.seek(SeekFrom::End(0)).map_err(|e| format!("built-in mkfs: {}", sys::with("lseek(SEEK_END)", dev)(e)))?;
    let image = mkfs::build(size, layout, ids, LABEL, now_secs).map_err(|e| format!("built-in mkfs on {}: {e}", dev.display()))?;
    mkfs::write(&file, dev, &image).map_err(|e| format!("built-in mkfs: {e}"))?;
    Ok(image.total_bytes)
}

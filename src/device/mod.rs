//! The device under test: a block device used as is, or an image file bound
//! to a loop device that we attach and always detach.

pub mod loopdev;
pub mod safety;
pub mod signature;
pub mod usage;

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::sys;

pub use loopdev::LoopDevice;

/// The block device a run formats, and the loop device behind it if any.
#[derive(Debug)]
pub struct Target {
    /// The block device mkfs and mount use.
    pub block: PathBuf,
    pub bytes: u64,
    pub loop_dev: Option<LoopDevice>,
}

/// What the user named, before anything is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DevKind {
    Block,
    Image,
    Missing,
}

/// Looks at `<dev>` without touching it. Errors are one-line refusals.
pub fn inspect(dev: &Path, create_size: Option<u64>) -> Result<(DevKind, u64), String> {
    match std::fs::metadata(dev) {
        Ok(md) => {
            let ft = md.file_type();
            if ft.is_block_device() {
                let f = File::open(dev).map_err(|e| format!("refusing {}: cannot open it: {e} (is a medium present? are we root?)", dev.display()))?;
                let bytes = sys::fs::block_device_size(&f, dev)
                    .map_err(|e| format!("refusing {}: cannot read its size: {e} (give a disk or partition)", dev.display()))?;
                Ok((DevKind::Block, bytes))
            } else if ft.is_file() {
                Ok((DevKind::Image, md.len()))
            } else if ft.is_dir() {
                Err(format!("refusing {}: it is a directory (give a block device or an image file)", dev.display()))
            } else if ft.is_char_device() {
                Err(format!(
                    "refusing {}: it is a character device, not a block device (give a block device such as /dev/vdb, or an image file)",
                    dev.display()
                ))
            } else {
                Err(format!(
                    "refusing {}: not a block device or a regular file (give a block device, or an image file)",
                    dev.display()
                ))
            }
        }
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            Err(format!("refusing {}: it is a symlink loop (give the real device path)", dev.display()))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound && std::fs::symlink_metadata(dev).is_ok() => Err(format!(
            "refusing {}: it is a dangling symlink to {} (give the real device path)",
            dev.display(),
            std::fs::read_link(dev).map(|t| t.display().to_string()).unwrap_or_else(|_| "?".into())
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => match create_size {
            Some(size) => {
                let parent = dev.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
                if !parent.is_dir() {
                    return Err(format!(
                        "refusing {}: cannot create the image there: {} is not a directory (create it first, or pick another path)",
                        dev.display(),
                        parent.display()
                    ));
                }
                Ok((DevKind::Missing, size))
            }
            None => Err(format!(
                "refusing {}: no such file or device (check the path, or add --size 3G to create an image file there)",
                dev.display()
            )),
        },
        Err(e) => Err(format!("refusing {}: cannot look at it: {e} (check the path)", dev.display())),
    }
}

/// Makes the device usable: creates the sparse image if asked, attaches
/// image files to a loop device.
pub fn prepare(dev: &Path, kind: DevKind, bytes: u64) -> io::Result<Target> {
    if kind == DevKind::Missing {
        let f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(dev)
            .map_err(sys::with("create", dev))?;
        f.set_len(bytes).map_err(sys::with("ftruncate", dev))?;
    }
    if kind == DevKind::Block {
        return Ok(Target { block: dev.to_path_buf(), bytes, loop_dev: None });
    }
    let lo = LoopDevice::attach(dev)?;
    Ok(Target { block: lo.path.clone(), bytes, loop_dev: Some(lo) })
}

/// `rdev` of a block device, for matching against mountinfo.
pub fn rdev(path: &Path) -> Option<(u32, u32)> {
    let md = std::fs::metadata(path).ok()?;
    if !md.file_type().is_block_device() {
        return None;
    }
    Some(split_dev(md.rdev()))
}

/// glibc's gnu_dev_major/minor encoding of a dev_t.
pub fn split_dev(dev: u64) -> (u32, u32) {
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
    let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
    (major as u32, minor as u32)
}

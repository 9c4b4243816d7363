//! Checks before anything is written: who we are, what the kernel has, and
//! whether `<dev>` and `<mnt>` may be used.

use std::path::PathBuf;

use crate::cli::Config;
use crate::device::{self, DevKind};
use crate::mkfs;
use crate::mount;
use crate::safety;
use crate::scenario::Stop;
use crate::size::human;

pub struct Checked {
    pub kind: DevKind,
    pub bytes: u64,
    pub mkfs: PathBuf,
}

pub fn kernel_has_btrfs() -> bool {
    std::fs::read_to_string("/proc/filesystems")
        .map(|t| t.lines().any(|l| l.split_whitespace().last() == Some("btrfs")))
        .unwrap_or(false)
}

pub fn check(cfg: &Config) -> Result<Checked, Stop> {
    if crate::sys::process::euid() != 0 {
        return Err(Stop::Refused("refusing to run: not root (mkfs, mount and loop devices need CAP_SYS_ADMIN; use sudo)".into()));
    }
    let mkfs = mkfs::find().ok_or_else(|| {
        Stop::Refused("mkfs.btrfs not found in PATH or /sbin, /usr/sbin (install btrfs-progs)".into())
    })?;
    let (kind, bytes) = device::inspect(&cfg.dev, cfg.create_size).map_err(Stop::Refused)?;
    if kind != DevKind::Missing {
        safety::check_device(&cfg.dev, cfg.force).map_err(Stop::Refused)?;
    }
    if bytes <= safety::MIN_DEVICE_BYTES && !cfg.force {
        return Err(Stop::Refused(format!(
            "refusing {}: {} is too small: data block groups would be under 100 MiB and never get a v1 cache inode (use more than {}, or --force)",
            cfg.dev.display(),
            human(bytes),
            human(safety::MIN_DEVICE_BYTES)
        )));
    }
    if cfg.mnt.exists() && !cfg.mnt.is_dir() {
        return Err(Stop::Refused(format!("refusing mount point {}: not a directory", cfg.mnt.display())));
    }
    if cfg.mnt.exists() && mount::is_mount_point(&cfg.mnt) {
        return Err(Stop::Refused(format!(
            "refusing mount point {}: something is already mounted there (unmount it or pick another directory)",
            cfg.mnt.display()
        )));
    }
    if !kernel_has_btrfs() {
        return Err(Stop::Setup("the kernel has no btrfs (not in /proc/filesystems; try modprobe btrfs)".into()));
    }
    Ok(Checked { kind, bytes, mkfs })
}

//! Checks before anything is written: who we are, what the kernel has, and
//! whether `<dev>` and `<mnt>` may be used. A refusal is one line: what, why,
//! what to do.

use std::io;
use std::path::{Path, PathBuf};

use crate::cli::Config;
use crate::device::{self, DevKind};
use crate::btrfs::mkfs_progs;
use crate::btrfs::mount;
use crate::device::safety;
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

/// CAP_SYS_ADMIN (bit 21) in the `CapEff:` line of /proc/self/status text;
/// None when there is no such line.
pub fn has_cap_sys_admin(status: &str) -> Option<bool> {
    const CAP_SYS_ADMIN: u32 = 21;
    let hex = status.lines().find_map(|l| l.strip_prefix("CapEff:"))?.trim();
    let caps = u64::from_str_radix(hex, 16).ok()?;
    Some(caps & (1 << CAP_SYS_ADMIN) != 0)
}

/// Runs every check; a refusal is also printed on stderr, as the one line
/// that says what to fix (the verdict on stdout repeats it as its reason).
pub fn check(cfg: &Config) -> Result<Checked, Stop> {
    let r = check_all(cfg);
    if let Err(Stop::Refused(why)) = &r {
        eprintln!("btrfs-reclaim-repro: {why}");
    }
    r
}

fn check_all(cfg: &Config) -> Result<Checked, Stop> {
    if crate::sys::process::euid() != 0 {
        return Err(Stop::Refused("refusing to run: not root (mkfs, mount and loop devices need CAP_SYS_ADMIN; use sudo)".into()));
    }
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    if has_cap_sys_admin(&status) == Some(false) {
        return Err(Stop::Refused(
            "refusing to run: root without CAP_SYS_ADMIN (a restricted container?): mount and loop devices need it (run with full privileges, e.g. docker run --privileged)"
                .into(),
        ));
    }
    let mkfs = mkfs_progs::find().ok_or_else(|| {
        Stop::Refused("refusing to run: mkfs.btrfs not found in PATH, /usr/local/sbin, /usr/sbin or /sbin (install btrfs-progs)".into())
    })?;
    let (kind, bytes) = device::inspect(&cfg.dev, cfg.create_size).map_err(Stop::Refused)?;
    if kind != DevKind::Missing {
        safety::check_device(&cfg.dev, bytes, cfg.force).map_err(Stop::Refused)?;
    }
    if bytes <= safety::MIN_DEVICE_BYTES && !cfg.force {
        return Err(Stop::Refused(format!(
            "refusing {}: {} is too small: data block groups would be under 100 MiB and never get a v1 cache inode (use more than {}, or --force)",
            cfg.dev.display(),
            human(bytes),
            human(safety::MIN_DEVICE_BYTES)
        )));
    }
    check_mount_point(&cfg.mnt).map_err(Stop::Refused)?;
    if !kernel_has_btrfs() {
        return Err(Stop::Setup("the kernel has no btrfs (not in /proc/filesystems; try modprobe btrfs)".into()));
    }
    Ok(Checked { kind, bytes, mkfs })
}

/// `<mnt>` must be a directory with nothing mounted on it, or a path that
/// can be created as one.
pub fn check_mount_point(mnt: &Path) -> Result<(), String> {
    let refuse = |why: String| Err(format!("refusing mount point {}: {why}", mnt.display()));
    match std::fs::metadata(mnt) {
        Ok(md) if !md.is_dir() => refuse("it is not a directory (give a directory, or a path to create one at)".into()),
        Ok(_) if mount::is_mount_point(mnt) => {
            refuse("something is already mounted there (unmount it, or pick another directory)".into())
        }
        Ok(_) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => refuse("it is a symlink loop (give a real directory)".into()),
        Err(e) if e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ENOTDIR) => {
            if std::fs::symlink_metadata(mnt).is_ok() {
                return refuse("it is a dangling symlink (give a real directory)".into());
            }
            // Created with its parents: the nearest existing one must be a
            // directory.
            for a in mnt.ancestors().skip(1).filter(|a| !a.as_os_str().is_empty()) {
                if let Ok(md) = std::fs::metadata(a) {
                    if !md.is_dir() {
                        return refuse(format!("cannot create it: {} is not a directory (pick another path)", a.display()));
                    }
                    break;
                }
            }
            Ok(())
        }
        Err(e) => refuse(format!("cannot look at it: {e} (check the path)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cap_sys_admin_from_status() {
        let full = "Name:\tx\nCapInh:\t0000000000000000\nCapEff:\t000001ffffffffff\n";
        assert_eq!(has_cap_sys_admin(full), Some(true));
        // setpriv --bounding-set=-sys_admin: bit 21 cleared.
        assert_eq!(has_cap_sys_admin("CapEff:\t000001fffedfffff\n"), Some(false));
        assert_eq!(has_cap_sys_admin("CapEff:\t0000000000000000\n"), Some(false));
        assert_eq!(has_cap_sys_admin("Name:\tx\n"), None);
    }

    #[test]
    fn mount_point_checks() {
        let dir = std::env::temp_dir().join(format!("brr-preflight-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("file");
        std::fs::write(&file, "x").unwrap();
        assert!(check_mount_point(&dir).is_ok());
        assert!(check_mount_point(&dir.join("new/deeper")).is_ok());
        assert!(check_mount_point(&file).unwrap_err().contains("not a directory"));
        assert!(check_mount_point(&file.join("sub")).unwrap_err().contains("is not a directory"));
        std::os::unix::fs::symlink(dir.join("l2"), dir.join("l1")).unwrap();
        std::os::unix::fs::symlink(dir.join("l1"), dir.join("l2")).unwrap();
        assert!(check_mount_point(&dir.join("l1")).unwrap_err().contains("symlink loop"));
        std::os::unix::fs::symlink(dir.join("nowhere"), dir.join("dangling")).unwrap();
        assert!(check_mount_point(&dir.join("dangling")).unwrap_err().contains("dangling"));
        assert!(check_mount_point(Path::new("/")).unwrap_err().contains("already mounted"));
        for e in [check_mount_point(&file), check_mount_point(Path::new("/"))] {
            assert_eq!(e.unwrap_err().lines().count(), 1);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}

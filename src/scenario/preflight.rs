//! Checks before anything is written: who we are, what the kernel has, and
//! whether `<dev>` and `<mnt>` may be used. Each rule is written once and
//! serves both the run (the first refusal stops it, one line: what, why,
//! what to do) and `--check` (every finding, one line each, and the exit code
//! a run would get at the start: 0 go, 2 refused, 125 this kernel cannot
//! test the bug).

use std::io;
use std::path::Path;

use crate::btrfs::format::Mkfs;
use crate::btrfs::{mkfs_progs, mount};
use super::config::Config;
use crate::judge::verdict::ExitCode;
use crate::device::{self, safety, DevKind};
use crate::kernel::host;
use crate::base::size::human;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    Warn,
    /// A run would be refused (exit 2).
    Refuse,
    /// A run would be refused (exit 2): not root, or without CAP_SYS_ADMIN.
    Unprivileged,
    /// This kernel cannot test the bug (exit 125).
    Cannot,
}

impl Status {
    fn word(self) -> &'static str {
        match self {
            Status::Ok => "ok  ",
            Status::Warn => "warn",
            Status::Refuse | Status::Unprivileged | Status::Cannot => "fail",
        }
    }
}

/// Why a run may not start: the one line a person reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Blocked {
    Refused(String),
    /// Not root, or no CAP_SYS_ADMIN: a missing prerequisite.
    Unprivileged(String),
    CannotTest(String),
}

/// What a run learns from the preflight.
pub struct Checked {
    pub kind: DevKind,
    pub bytes: u64,
    pub mkfs: Mkfs,
}

/// The findings so far. For a run (`all == false`) the first refusal ends
/// the preflight; `--check` collects every line.
struct Findings {
    all: bool,
    items: Vec<(Status, String)>,
}

impl Findings {
    fn note(&mut self, status: Status, line: String) -> Result<(), Blocked> {
        match status {
            Status::Refuse if !self.all => Err(Blocked::Refused(line)),
            Status::Unprivileged if !self.all => Err(Blocked::Unprivileged(line)),
            Status::Cannot if !self.all => Err(Blocked::CannotTest(line)),
            _ => {
                self.items.push((status, line));
                Ok(())
            }
        }
    }
}

/// Every rule, in the order a run meets them. `None` from a rule that needs
/// an earlier one's answer (the device size) when that one failed.
fn rules(cfg: &Config, f: &mut Findings) -> Result<Option<Checked>, Blocked> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    match (host::euid_is_root(), host::has_cap_sys_admin(&status)) {
        (false, _) => f.note(Status::Unprivileged, "refusing to run: not root (mkfs, mount and loop devices need CAP_SYS_ADMIN; use sudo)".into())?,
        (true, Some(false)) => f.note(
            Status::Unprivileged,
            "refusing to run: root without CAP_SYS_ADMIN (a restricted container?): mount and loop devices need it (run with full privileges, e.g. docker run --privileged)"
                .into(),
        )?,
        (true, _) => f.note(Status::Ok, "root with CAP_SYS_ADMIN".into())?,
    }
    let mkfs = mkfs_rule(cfg, f)?;
    let device = device_rules(cfg, f)?;
    match check_mount_point(&cfg.mnt) {
        Ok(()) => f.note(Status::Ok, format!("mount point {} usable", cfg.mnt.display()))?,
        Err(why) => f.note(Status::Refuse, why)?,
    }
    if host::kernel_has_btrfs() {
        f.note(Status::Ok, "btrfs is in the kernel (/proc/filesystems)".into())?;
    } else {
        f.note(Status::Cannot, "the kernel has no btrfs (not in /proc/filesystems; try modprobe btrfs)".into())?;
    }
    // Only a mounted filesystem tells for sure: a run finds out after mount.
    if f.all {
        let (status, line) = knobs_likely(&host::kernel_release());
        f.note(status, line)?;
    }
    Ok(device.zip(mkfs).map(|((kind, bytes), mkfs)| Checked { kind, bytes, mkfs }))
}

/// The built-in mkfs needs nothing; `--mkfs external` needs mkfs.btrfs.
fn mkfs_rule(cfg: &Config, f: &mut Findings) -> Result<Option<Mkfs>, Blocked> {
    if !cfg.external_mkfs {
        f.note(Status::Ok, "mkfs: built-in (no btrfs-progs needed; --mkfs external runs mkfs.btrfs)".into())?;
        return Ok(Some(Mkfs::Builtin));
    }
    match mkfs_progs::find() {
        Some(path) => {
            let version = mkfs_progs::version_of(&path);
            let flag = mkfs_progs::v1_spellings(version).first().map(|s| s.join(" ")).unwrap_or_default();
            let v = version.map(|(a, b)| format!("btrfs-progs {a}.{b}")).unwrap_or_else(|| "unknown version".into());
            f.note(Status::Ok, format!("mkfs.btrfs {} ({v}): free space tree off with {flag}", path.display()))?;
            Ok(Some(Mkfs::External { path, version }))
        }
        None => {
            f.note(
                Status::Refuse,
                "refusing to run: mkfs.btrfs not found in PATH, /usr/local/sbin, /usr/sbin or /sbin (install btrfs-progs, or drop --mkfs external for the built-in mkfs)".into(),
            )?;
            Ok(None)
        }
    }
}

/// `<dev>`: what it is, that nobody uses it, no foreign signature, and big
/// enough for data block groups that get a v1 cache inode.
fn device_rules(cfg: &Config, f: &mut Findings) -> Result<Option<(DevKind, u64)>, Blocked> {
    let (kind, bytes) = match device::inspect(&cfg.dev, cfg.create_size) {
        Ok(found) => found,
        Err(why) => {
            f.note(Status::Refuse, why)?;
            return Ok(None);
        }
    };
    let what = match kind {
        DevKind::Block => "block device",
        DevKind::Image => "image file (attached through a loop device)",
        DevKind::Missing => "image file to create (--size)",
    };
    f.note(Status::Ok, format!("{}: {what}, {}", cfg.dev.display(), human(bytes)))?;
    if kind != DevKind::Missing {
        match safety::check_device(&cfg.dev, bytes, cfg.force) {
            Ok(()) => f.note(Status::Ok, format!("{}: not in use, no foreign signature", cfg.dev.display()))?,
            Err(why) => f.note(Status::Refuse, why)?,
        }
    }
    let bg = data_block_group_estimate(bytes);
    if bytes <= safety::MIN_DEVICE_BYTES {
        let status = if cfg.force { Status::Warn } else { Status::Refuse };
        f.note(
            status,
            format!(
                "refusing {}: {} is too small: data block groups of about {}, under the 100 MiB a v1 cache inode needs (use more than {}, or --force)",
                cfg.dev.display(),
                human(bytes),
                human(bg),
                human(safety::MIN_DEVICE_BYTES)
            ),
        )?;
    } else {
        f.note(Status::Ok, format!("data block groups of about {} (>= 100 MiB: v1 cache inodes)", human(bg)))?;
    }
    // The built-in layouts are mkfs.btrfs 6.2's from 1 GiB up; --force does
    // not change what they can place.
    if !cfg.external_mkfs && bytes < crate::btrfs::mkfs::MIN_SIZE {
        f.note(
            Status::Refuse,
            format!(
                "refusing {}: {} is too small for the built-in mkfs (it needs at least {}; --mkfs external formats smaller devices)",
                cfg.dev.display(),
                human(bytes),
                human(crate::btrfs::mkfs::MIN_SIZE)
            ),
        )?;
    }
    Ok(Some((kind, bytes)))
}

/// The run's preflight: stops at the first refusal, which is also printed
/// on stderr as the one line that says what to fix (the verdict on stdout
/// repeats it as its reason).
pub fn check(cfg: &Config) -> Result<Checked, Blocked> {
    let mut f = Findings { all: false, items: Vec::new() };
    let r = rules(cfg, &mut f).map(|c| c.expect("every rule passed, so the device and mkfs are known"));
    if let Err(Blocked::Refused(why) | Blocked::Unprivileged(why)) = &r {
        eprintln!("btrfs-reclaim-repro: {why}");
    }
    r
}

/// Every finding, for `--check`.
pub fn findings(cfg: &Config) -> Vec<(Status, String)> {
    let mut f = Findings { all: true, items: Vec::new() };
    let _ = rules(cfg, &mut f);
    f.items
}

/// The exit code for a list of findings.
pub fn exit_code(items: &[(Status, String)]) -> i32 {
    if items.iter().any(|(s, _)| matches!(s, Status::Refuse | Status::Unprivileged)) {
        ExitCode::REFUSED
    } else if items.iter().any(|(s, _)| *s == Status::Cannot) {
        ExitCode::SKIP
    } else {
        0
    }
}

/// `--check`: prints the findings and returns the exit code.
pub fn report_all(cfg: &Config) -> i32 {
    let items = findings(cfg);
    let code = exit_code(&items);
    let mut text = String::new();
    for (s, line) in &items {
        text.push_str(&format!("{} {line}\n", s.word()));
    }
    let outlook = match code {
        0 => "a run would go ahead",
        ExitCode::REFUSED => "a run would be refused",
        _ => "this kernel cannot test the bug",
    };
    text.push_str(&format!("preflight: {outlook} (exit {code})\n"));
    print!("{text}");
    code
}

/// `6.18.44-fc-v669` → (6, 18).
pub fn parse_release(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

/// Which reclaim trigger the kernel likely offers, by its release: dynamic
/// and periodic reclaim with their counters arrived around 6.11/6.12; the
/// static bg_reclaim_threshold (non-zoned) in 5.19, where the run triggers
/// reclaim through it and counts from the kernel log. Only a mounted
/// filesystem shows them for sure.
pub fn knobs_likely(release: &str) -> (Status, String) {
    match parse_release(release) {
        Some(v) if v >= (6, 12) => (Status::Ok, format!("kernel {release}: reclaim knobs likely (they arrived around 6.11/6.12)")),
        Some(v) if v >= (6, 11) => (Status::Warn, format!("kernel {release}: reclaim knobs likely, not certain (arrived around 6.11/6.12)")),
        Some(v) if v >= (5, 19) => (
            Status::Ok,
            format!(
                "kernel {release}: trigger bg_reclaim_threshold likely (dynamic/periodic reclaim arrived around 6.11): a run sets it to 75 after the fill and counts reclaim from the kernel log"
            ),
        ),
        Some(_) => (
            Status::Cannot,
            format!("kernel {release}: no reclaim trigger likely (bg_reclaim_threshold arrived in 5.19, dynamic/periodic reclaim around 6.11)"),
        ),
        None => (Status::Warn, format!("kernel {release}: release not understood; a run will tell")),
    }
}

/// The data block group size mkfs/the kernel picks: 10 % of the device,
/// rounded up to 16 MiB, at most 1 GiB (the 10 % cap of
/// init_alloc_chunk_ctl_policy_regular(); measured).
pub fn data_block_group_estimate(device_bytes: u64) -> u64 {
    let tenth = device_bytes / 10;
    let rounded = tenth.div_ceil(16 << 20) * (16 << 20);
    rounded.min(1 << 30)
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
    fn mount_point_checks() {
        let dir = crate::testing::TempDir::new("preflight");
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
    }

    #[test]
    fn releases() {
        assert_eq!(parse_release("6.18.44-fc-v669"), Some((6, 18)));
        assert_eq!(parse_release("6.12.117"), Some((6, 12)));
        assert_eq!(parse_release("5.15.0-91-generic"), Some((5, 15)));
        assert_eq!(parse_release("garbage"), None);
        assert_eq!(knobs_likely("6.12.117").0, Status::Ok);
        assert_eq!(knobs_likely("6.11.2").0, Status::Warn);
        assert_eq!(knobs_likely("6.1.192").0, Status::Ok);
        assert!(knobs_likely("6.1.192").1.contains("trigger bg_reclaim_threshold"));
        assert_eq!(knobs_likely("5.19.0").0, Status::Ok);
        assert_eq!(knobs_likely("5.18.19").0, Status::Cannot);
        assert!(knobs_likely("5.15.0-91-generic").1.contains("no reclaim trigger"));
    }

    #[test]
    fn block_group_estimate_matches_the_measurements() {
        // Measured: 1 GiB -> 112 MiB, 2 GiB -> 208 MiB, 3 GiB -> 320 MiB.
        assert_eq!(data_block_group_estimate(1 << 30), 112 << 20);
        assert_eq!(data_block_group_estimate(2 << 30), 208 << 20);
        assert_eq!(data_block_group_estimate(3 << 30), 320 << 20);
        assert_eq!(data_block_group_estimate(900 << 20), 96 << 20);
        assert_eq!(data_block_group_estimate(100 << 30), 1 << 30);
    }

    #[test]
    fn exit_code_prefers_refusal_over_kernel_gaps() {
        let ok = (Status::Ok, String::new());
        assert_eq!(exit_code(&[ok.clone(), (Status::Warn, String::new())]), 0);
        assert_eq!(exit_code(&[ok.clone(), (Status::Cannot, String::new())]), 125);
        assert_eq!(exit_code(&[(Status::Cannot, String::new()), (Status::Refuse, String::new())]), 2);
        assert_eq!(exit_code(&[(Status::Cannot, String::new()), (Status::Unprivileged, String::new())]), 2);
    }
}

//! `--check`: the preflight alone. Writes nothing, mounts nothing; one line
//! per item (ok / warn / fail) and the exit code a run would get at the start:
//! 0 it would go ahead, 2 it would be refused, 125 this kernel cannot test
//! the bug.

use crate::cli::Config;
use crate::device::{self, DevKind};
use crate::btrfs::mkfs_progs;
use crate::preflight;
use crate::device::safety;
use crate::size::human;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    Warn,
    /// A run would be refused (exit 2).
    Refuse,
    /// This kernel cannot test the bug (exit 125).
    Cannot,
}

impl Status {
    fn word(self) -> &'static str {
        match self {
            Status::Ok => "ok  ",
            Status::Warn => "warn",
            Status::Refuse | Status::Cannot => "fail",
        }
    }
}

/// `6.18.44-fc-v669` → (6, 18).
pub fn parse_release(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

/// Dynamic/periodic reclaim and their sysfs knobs arrived around 6.11/6.12;
/// only a mounted filesystem shows them for sure.
pub fn knobs_likely(release: &str) -> (Status, String) {
    match parse_release(release) {
        Some(v) if v >= (6, 12) => (Status::Ok, format!("kernel {release}: reclaim knobs likely (they arrived around 6.11/6.12)")),
        Some(v) if v >= (6, 11) => (Status::Warn, format!("kernel {release}: reclaim knobs likely, not certain (arrived around 6.11/6.12)")),
        Some(_) => (Status::Cannot, format!("kernel {release}: reclaim knobs unlikely (dynamic/periodic reclaim arrived around 6.11/6.12)")),
        None => (Status::Warn, format!("kernel {release}: release not understood; a run will tell")),
    }
}

/// The data block group size mkfs/the kernel picks: 10 % of the device,
/// rounded up to 16 MiB, at most 1 GiB (DOMAIN.md, measured).
pub fn data_block_group_estimate(device_bytes: u64) -> u64 {
    let tenth = device_bytes / 10;
    let rounded = tenth.div_ceil(16 << 20) * (16 << 20);
    rounded.min(1 << 30)
}

/// The exit code for a list of findings.
pub fn exit_code(items: &[(Status, String)]) -> i32 {
    if items.iter().any(|(s, _)| *s == Status::Refuse) {
        2
    } else if items.iter().any(|(s, _)| *s == Status::Cannot) {
        125
    } else {
        0
    }
}

pub fn findings(cfg: &Config) -> Vec<(Status, String)> {
    let mut out = Vec::new();
    let root = crate::sys::process::euid() == 0;
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    match (root, preflight::has_cap_sys_admin(&status)) {
        (true, Some(false)) => out.push((Status::Refuse, "root, but without CAP_SYS_ADMIN: mount and loop devices need it".into())),
        (true, _) => out.push((Status::Ok, "root with CAP_SYS_ADMIN".into())),
        (false, _) => out.push((Status::Refuse, "not root: mkfs, mount and loop devices need it (use sudo)".into())),
    }
    if preflight::kernel_has_btrfs() {
        out.push((Status::Ok, "btrfs is in the kernel (/proc/filesystems)".into()));
    } else {
        out.push((Status::Cannot, "btrfs is not in the kernel (/proc/filesystems; try modprobe btrfs)".into()));
    }
    out.push(knobs_likely(&crate::scenario::kernel_release()));
    match mkfs_progs::find() {
        Some(path) => {
            let version = mkfs_progs::version_of(&path);
            let flag = mkfs_progs::v1_spellings(version).first().map(|s| s.join(" ")).unwrap_or_default();
            let v = version.map(|(a, b)| format!("btrfs-progs {a}.{b}")).unwrap_or_else(|| "unknown version".into());
            out.push((Status::Ok, format!("mkfs.btrfs {} ({v}): free space tree off with {flag}", path.display())));
        }
        None => out.push((Status::Refuse, "mkfs.btrfs not found (install btrfs-progs)".into())),
    }
    match device::inspect(&cfg.dev, cfg.create_size) {
        Err(why) => out.push((Status::Refuse, why)),
        Ok((kind, bytes)) => {
            let what = match kind {
                DevKind::Block => "block device",
                DevKind::Image => "image file (attached through a loop device)",
                DevKind::Missing => "image file to create (--size)",
            };
            out.push((Status::Ok, format!("{}: {what}, {}", cfg.dev.display(), human(bytes))));
            if kind != DevKind::Missing {
                match safety::check_device(&cfg.dev, bytes, cfg.force) {
                    Ok(()) => out.push((Status::Ok, format!("{}: not in use, no foreign signature", cfg.dev.display()))),
                    Err(why) => out.push((Status::Refuse, why)),
                }
            }
            let bg = data_block_group_estimate(bytes);
            if bytes <= safety::MIN_DEVICE_BYTES {
                let status = if cfg.force { Status::Warn } else { Status::Refuse };
                out.push((
                    status,
                    format!(
                        "{}: {} gives data block groups of about {}, under the 100 MiB a v1 cache inode needs (use more than {})",
                        cfg.dev.display(),
                        human(bytes),
                        human(bg),
                        human(safety::MIN_DEVICE_BYTES)
                    ),
                ));
            } else {
                out.push((Status::Ok, format!("data block groups of about {} (>= 100 MiB: v1 cache inodes)", human(bg))));
            }
        }
    }
    match preflight::check_mount_point(&cfg.mnt) {
        Ok(()) => out.push((Status::Ok, format!("mount point {} usable", cfg.mnt.display()))),
        Err(why) => out.push((Status::Refuse, why)),
    }
    out
}

/// Prints the findings and returns the exit code.
pub fn run(cfg: &Config) -> i32 {
    let items = findings(cfg);
    let code = exit_code(&items);
    let mut text = String::new();
    for (s, line) in &items {
        text.push_str(&format!("{} {line}\n", s.word()));
    }
    text.push_str(match code {
        0 => "preflight: a run would go ahead (exit 0)\n",
        2 => "preflight: a run would be refused (exit 2)\n",
        _ => "preflight: this kernel cannot test the bug (exit 125)\n",
    });
    print!("{text}");
    code
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases() {
        assert_eq!(parse_release("6.18.44-fc-v669"), Some((6, 18)));
        assert_eq!(parse_release("6.12.117"), Some((6, 12)));
        assert_eq!(parse_release("5.15.0-91-generic"), Some((5, 15)));
        assert_eq!(parse_release("garbage"), None);
        assert_eq!(knobs_likely("6.12.117").0, Status::Ok);
        assert_eq!(knobs_likely("6.11.2").0, Status::Warn);
        assert_eq!(knobs_likely("6.6.30").0, Status::Cannot);
        assert!(knobs_likely("6.6.30").1.contains("unlikely"));
    }

    #[test]
    fn block_group_estimate_matches_the_measurements() {
        // DOMAIN.md: 1 GiB -> 112 MiB, 2 GiB -> 208 MiB, 3 GiB -> 320 MiB.
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
    }
}

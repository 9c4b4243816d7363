//! Who uses a block device or an image file: mounts, swap, dm/md holders,
//! loop devices and multi-device btrfs members. Pure over mountinfo and
//! /proc/swaps text and a sysfs tree rooted at a path (a fixture directory
//! in the tests).

use std::path::Path;

use crate::base::mountinfo::{self, Mount};

/// What we know about one block device from sysfs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlockInfo {
    pub name: String,
    pub major: u32,
    pub minor: u32,
    /// Names of its partitions (for a whole disk).
    pub partitions: Vec<String>,
    /// Non-empty holders/ (dm, md, ...).
    pub holders: Vec<String>,
    /// For loop devices: the backing file.
    pub backing_file: Option<String>,
}

/// Who uses block devices, system-wide: mounts (sources canonicalised),
/// active swap areas, and the members of every mounted btrfs.
#[derive(Debug, Clone, Default)]
pub struct Usage {
    pub mounts: Vec<Mount>,
    /// First field of each /proc/swaps line.
    pub swaps: Vec<String>,
    /// Kernel names under /sys/fs/btrfs/*/devices.
    pub btrfs_devices: Vec<String>,
}

/// The file names in /proc/swaps text (space, tab, newline and backslash
/// come escaped as in mountinfo: `\040`).
pub fn parse_swaps(text: &str) -> Vec<String> {
    text.lines().skip(1).filter_map(|l| l.split_whitespace().next()).map(mountinfo::unescape).collect()
}

impl Usage {
    /// From the texts of /proc/self/mountinfo and /proc/swaps, and the btrfs
    /// member names: pure, for the tests.
    pub fn parse(mountinfo_text: &str, swaps_text: &str, btrfs_devices: Vec<String>) -> Usage {
        Usage { mounts: mountinfo::parse(mountinfo_text), swaps: parse_swaps(swaps_text), btrfs_devices }
    }

    /// The running system's. Mount sources and swap names given through
    /// symlinks (/dev/mapper/x, /dev/disk/by-uuid/...) are canonicalised so
    /// they compare equal to /dev/<kernel name>.
    pub fn read(sys: &Path) -> Usage {
        let mut u = Usage::parse(
            &std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default(),
            &std::fs::read_to_string("/proc/swaps").unwrap_or_default(),
            btrfs_device_names(sys),
        );
        // Only /dev paths for mounts: other sources (server:/export,
        // //host/share, fuse names) are not block devices, and a stat on
        // them could hang.
        let canon = |s: &str| -> String {
            if s.starts_with("/dev/") {
                if let Ok(c) = std::fs::canonicalize(s) {
                    return c.to_string_lossy().into_owned();
                }
            }
            s.to_string()
        };
        for m in &mut u.mounts {
            m.source = canon(&m.source);
        }
        for s in &mut u.swaps {
            if let Ok(c) = std::fs::canonicalize(&*s) {
                *s = c.to_string_lossy().into_owned();
            }
        }
        u
    }
}

/// One way a device is in use: what, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Use {
    pub what: String,
    pub remedy: &'static str,
}

/// The places where a device is in use. `infos` are the device and its
/// partitions; `dev_paths` are the names the user gave for the first of
/// them (compared with mount sources and swap names as they are).
pub fn uses(dev_paths: &[String], infos: &[BlockInfo], usage: &Usage) -> Vec<Use> {
    let mut found = Vec::new();
    for (i, info) in infos.iter().enumerate() {
        let dev_path = format!("/dev/{}", info.name);
        let named = |s: &str| s == dev_path || (i == 0 && dev_paths.iter().any(|p| p == s));
        let mut mounted = false;
        for m in &usage.mounts {
            // Most filesystems show the device number; btrfs shows an
            // anonymous 0:N, so the source is compared too.
            if (m.major == info.major && m.minor == info.minor) || named(&m.source) {
                mounted = true;
                found.push(Use { what: format!("{dev_path} is mounted on {}", m.mount_point), remedy: "unmount it first, or use another device" });
            }
        }
        if !mounted && usage.btrfs_devices.contains(&info.name) {
            found.push(Use {
                what: format!("{dev_path} belongs to a mounted btrfs (listed in /sys/fs/btrfs/*/devices)"),
                remedy: "unmount that filesystem first, or use another device",
            });
        }
        if usage.swaps.iter().any(|s| named(s)) {
            found.push(Use { what: format!("{dev_path} is in use as swap"), remedy: "swapoff it first, or use another device" });
        }
        if !info.holders.is_empty() {
            found.push(Use {
                what: format!("{dev_path} is held by {} ({})", info.holders.join(", "), holder_kind(&info.holders)),
                remedy: "remove that device first (dmsetup remove / mdadm --stop), or use another device",
            });
        }
    }
    found
}

fn holder_kind(holders: &[String]) -> &'static str {
    let dm = holders.iter().any(|h| h.starts_with("dm-"));
    let md = holders.iter().any(|h| h.starts_with("md"));
    match (dm, md) {
        (true, false) => "device-mapper",
        (false, true) => "md RAID",
        _ => "device-mapper/md",
    }
}

fn read_trim(p: &Path) -> Option<String> {
    std::fs::read_to_string(p).ok().map(|s| s.trim().to_string())
}

fn list_dir(p: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(p)
        .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

fn parse_dev(text: &str) -> Option<(u32, u32)> {
    let (a, b) = text.trim().split_once(':')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// Facts from the sysfs tree at `sys` (normally /sys) for the block device
/// `major:minor`.
pub fn block_info(sys: &Path, major: u32, minor: u32) -> Option<BlockInfo> {
    let link = std::fs::canonicalize(sys.join(format!("dev/block/{major}:{minor}"))).ok()?;
    let name = link.file_name()?.to_string_lossy().into_owned();
    let partitions = list_dir(&link).into_iter().filter(|n| n.starts_with(&name) && link.join(n).join("partition").exists()).collect();
    Some(BlockInfo {
        name,
        major,
        minor,
        partitions,
        holders: list_dir(&link.join("holders")),
        backing_file: read_trim(&link.join("loop/backing_file")),
    })
}

/// The device and its partitions.
pub fn with_partitions(sys: &Path, info: BlockInfo) -> Vec<BlockInfo> {
    let parts: Vec<BlockInfo> = std::fs::canonicalize(sys.join(format!("dev/block/{}:{}", info.major, info.minor)))
        .map(|dir| {
            info.partitions
                .iter()
                .filter_map(|p| read_trim(&dir.join(p).join("dev")).and_then(|d| parse_dev(&d)))
                .filter_map(|(a, b)| block_info(sys, a, b))
                .collect()
        })
        .unwrap_or_default();
    std::iter::once(info).chain(parts).collect()
}

/// Kernel names of the members of every mounted btrfs.
pub fn btrfs_device_names(sys: &Path) -> Vec<String> {
    let root = sys.join("fs/btrfs");
    let mut out = Vec::new();
    for fsid in list_dir(&root) {
        out.extend(list_dir(&root.join(fsid).join("devices")));
    }
    out
}

/// Loop devices whose backing file is `image` (a canonical path).
pub fn loops_backed_by(sys: &Path, image: &str) -> Vec<BlockInfo> {
    list_dir(&sys.join("block"))
        .into_iter()
        .filter(|n| n.starts_with("loop"))
        .filter_map(|n| parse_dev(&read_trim(&sys.join("block").join(&n).join("dev"))?))
        .filter_map(|(a, b)| block_info(sys, a, b))
        .filter(|i| i.backing_file.as_deref().map(|b| b.trim_end_matches(" (deleted)")) == Some(image))
        .collect()
}

/// Who uses the block device `major:minor` (or one of its partitions), which
/// the user named `named`.
pub fn block_device_uses(sys: &Path, usage: &Usage, major: u32, minor: u32, named: &[String]) -> Vec<Use> {
    let Some(info) = block_info(sys, major, minor) else { return Vec::new() };
    let backing = info.backing_file.clone();
    let mut found = uses(named, &with_partitions(sys, info), usage);
    // A loop device over an image that another, mounted loop device maps too.
    if let Some(b) = backing {
        for lo in loops_backed_by(sys, b.trim_end_matches(" (deleted)")) {
            if lo.major == major && lo.minor == minor {
                continue;
            }
            for u in uses(&[], &with_partitions(sys, lo.clone()), usage) {
                found.push(Use { what: format!("its backing file {b} is also attached to /dev/{}, and {}", lo.name, u.what), remedy: u.remedy });
            }
        }
    }
    found
}

/// Who uses the image file `image` (canonical path): the loop devices over
/// it (and their partitions), and swap on the file itself.
pub fn image_uses(sys: &Path, usage: &Usage, image: &str) -> Vec<Use> {
    let mut found = Vec::new();
    if usage.swaps.iter().any(|s| s == image) {
        found.push(Use { what: "it is in use as a swap file".into(), remedy: "swapoff it first, or use another file" });
    }
    for lo in loops_backed_by(sys, image) {
        let name = lo.name.clone();
        for u in uses(&[], &with_partitions(sys, lo), usage) {
            found.push(Use {
                what: format!("it is attached to /dev/{name}, and {}", u.what),
                remedy: if u.remedy.starts_with("unmount") {
                    "unmount it and detach it with losetup -d first, or use another file"
                } else {
                    u.remedy
                },
            });
        }
    }
    found
}

#[cfg(test)]
mod tests;

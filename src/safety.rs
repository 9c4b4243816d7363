//! Never destroy what the user did not name: `<dev>` must not be in use and
//! must not hold anything but a filesystem we made ourselves (unless
//! --force). Detection is pure over text and bytes; `check_device` gathers
//! them from /proc, /sys and the device's first sectors.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::mountinfo::{self, Mount};

/// Devices this small get data block groups under 100 MiB, which never get a
/// v1 cache inode (cache_save_setup), so the injection site is unreachable.
pub const MIN_DEVICE_BYTES: u64 = 960 << 20;

/// How much of the device start the signature probe reads.
pub const PROBE_BYTES: usize = 0x10000 + 4096;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    pub name: &'static str,
    /// For btrfs: the label.
    pub label: Option<String>,
}

impl Signature {
    /// A btrfs we made: our mkfs writes this label.
    pub fn is_ours(&self) -> bool {
        self.name == "btrfs" && self.label.as_deref() == Some(crate::mkfs::LABEL)
    }
}

fn at(buf: &[u8], off: usize, magic: &[u8]) -> bool {
    buf.len() >= off + magic.len() && &buf[off..off + magic.len()] == magic
}

/// Finds a filesystem or other signature in the first bytes of a device
/// (offsets as libblkid's probers use them).
pub fn detect_signature(buf: &[u8]) -> Option<Signature> {
    let sig = |name| Some(Signature { name, label: None });
    // btrfs: superblock at 64 KiB, magic "_BHRfS_M" at +0x40, label at +0x12b.
    if at(buf, 0x10040, b"_BHRfS_M") {
        let label = buf.get(0x1012b..0x1012b + 256).map(|l| {
            let end = l.iter().position(|b| *b == 0).unwrap_or(l.len());
            String::from_utf8_lossy(&l[..end]).into_owned()
        });
        return Some(Signature { name: "btrfs", label });
    }
    if at(buf, 0, b"LUKS\xba\xbe") || at(buf, 0, b"SKUL\xba\xbe") {
        return sig("crypto_LUKS");
    }
    if at(buf, 0, b"XFSB") {
        return sig("xfs");
    }
    // ext2/3/4: superblock at 1024, s_magic 0xEF53 at +0x38 (little endian).
    if at(buf, 0x438, &[0x53, 0xef]) {
        // s_feature_compat bit 2 = has_journal (ext3/4); incompat extents/64bit = ext4.
        let compat = buf.get(0x45c..0x460).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]])).unwrap_or(0);
        let incompat = buf.get(0x460..0x464).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]])).unwrap_or(0);
        let name = if incompat & (0x40 | 0x80) != 0 {
            "ext4"
        } else if compat & 0x4 != 0 {
            "ext3"
        } else {
            "ext2"
        };
        return sig(name);
    }
    // swap: "SWAPSPACE2"/"SWAP-SPACE" in the last 10 bytes of the first page.
    for page in [4096usize, 8192, 16384, 65536] {
        if at(buf, page - 10, b"SWAPSPACE2") || at(buf, page - 10, b"SWAP-SPACE") {
            return sig("swap");
        }
    }
    if at(buf, 512, b"EFI PART") {
        return sig("gpt partition table");
    }
    if at(buf, 510, &[0x55, 0xaa]) {
        // An MBR with at least one partition entry of a non-zero type.
        let has_partition = (0..4).any(|i| buf.get(0x1be + i * 16 + 4).is_some_and(|t| *t != 0));
        if has_partition {
            return sig("dos partition table");
        }
    }
    None
}

/// What we know about one block device from /sys/class/block/NAME.
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

/// The places where a device is in use, from mountinfo text, /proc/swaps text
/// and the device's sysfs facts. `devices` are the device and its partitions;
/// `btrfs_devices` are the kernel names listed under /sys/fs/btrfs/*/devices.
pub fn uses(
    dev_paths: &[String],
    infos: &[BlockInfo],
    mounts: &[Mount],
    swaps: &str,
    btrfs_devices: &[String],
) -> Vec<String> {
    let mut found = Vec::new();
    for info in infos {
        let dev_path = format!("/dev/{}", info.name);
        for m in mounts {
            let by_number = m.major == info.major && m.minor == info.minor;
            let by_source = m.source == dev_path || dev_paths.iter().any(|p| *p == m.source && info == &infos[0]);
            if by_number || by_source {
                found.push(format!("{dev_path} is mounted on {}", m.mount_point));
            }
        }
        if btrfs_devices.iter().any(|d| *d == info.name) && !found.iter().any(|f| f.starts_with(&format!("{dev_path} is mounted"))) {
            found.push(format!("{dev_path} belongs to a mounted btrfs (/sys/fs/btrfs)"));
        }
        for line in swaps.lines().skip(1) {
            if let Some(first) = line.split_whitespace().next() {
                if first == dev_path || dev_paths.iter().any(|p| p == first && info == &infos[0]) {
                    found.push(format!("{dev_path} is in use as swap"));
                }
            }
        }
        if !info.holders.is_empty() {
            found.push(format!("{dev_path} is held by {} (device-mapper/md)", info.holders.join(", ")));
        }
    }
    found
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

/// Facts from sysfs for the block device `major:minor`.
pub fn block_info(major: u32, minor: u32) -> Option<BlockInfo> {
    let link = std::fs::canonicalize(format!("/sys/dev/block/{major}:{minor}")).ok()?;
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

fn btrfs_device_names() -> Vec<String> {
    let mut out = Vec::new();
    for fsid in list_dir(Path::new("/sys/fs/btrfs")) {
        out.extend(list_dir(&Path::new("/sys/fs/btrfs").join(fsid).join("devices")));
    }
    out
}

/// Loop devices whose backing file is `image`.
fn loops_backed_by(image: &Path) -> Vec<BlockInfo> {
    let image = image.to_string_lossy();
    list_dir(Path::new("/sys/class/block"))
        .into_iter()
        .filter(|n| n.starts_with("loop"))
        .filter_map(|n| {
            let dev = read_trim(&Path::new("/sys/class/block").join(&n).join("dev"))?;
            let (ma, mi) = dev.split_once(':')?;
            block_info(ma.parse().ok()?, mi.parse().ok()?)
        })
        .filter(|i| i.backing_file.as_deref().map(|b| b.trim_end_matches(" (deleted)")) == Some(&*image))
        .collect()
}

/// Refuses a device in use or holding a foreign signature. One line each.
pub fn check_device(dev: &Path, force: bool) -> Result<(), String> {
    let canonical = std::fs::canonicalize(dev).unwrap_or_else(|_| dev.to_path_buf());
    let mountinfo_text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mounts = mountinfo::parse(&mountinfo_text);
    let swaps = std::fs::read_to_string("/proc/swaps").unwrap_or_default();
    let btrfs_devs = btrfs_device_names();
    let named = vec![dev.display().to_string(), canonical.display().to_string()];

    let mut infos = Vec::new();
    if let Some((ma, mi)) = crate::device::rdev(&canonical) {
        if let Some(info) = block_info(ma, mi) {
            let parts = info.partitions.clone();
            infos.push(info);
            for p in parts {
                if let Some(pi) = read_trim(&PathBuf::from(format!("/sys/class/block/{p}/dev")))
                    .and_then(|d| d.split_once(':').and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?))))
                    .and_then(|(a, b)| block_info(a, b))
                {
                    infos.push(pi);
                }
            }
        }
    } else {
        // An image file: in use when a loop device over it is.
        for lo in loops_backed_by(&canonical) {
            let found = uses(&[], std::slice::from_ref(&lo), &mounts, &swaps, &btrfs_devs);
            if let Some(first) = found.first() {
                return Err(format!(
                    "refusing {}: attached to /dev/{} and {first} (unmount it and detach with losetup -d /dev/{})",
                    dev.display(),
                    lo.name,
                    lo.name
                ));
            }
        }
    }
    let found = uses(&named, &infos, &mounts, &swaps, &btrfs_devs);
    if let Some(first) = found.first() {
        return Err(format!("refusing {}: {first} (use another device)", dev.display()));
    }

    let mut buf = vec![0u8; PROBE_BYTES];
    let n = std::fs::File::open(&canonical)
        .and_then(|mut f| {
            let mut total = 0;
            while total < buf.len() {
                match f.read(&mut buf[total..])? {
                    0 => break,
                    k => total += k,
                }
            }
            Ok(total)
        })
        .map_err(|e| format!("refusing {}: cannot read it: {e}", dev.display()))?;
    buf.truncate(n);
    if let Some(sig) = detect_signature(&buf) {
        if !sig.is_ours() && !force {
            let label = sig.label.as_deref().filter(|l| !l.is_empty()).map(|l| format!(" labelled '{l}'")).unwrap_or_default();
            return Err(format!(
                "refusing {}: it holds a {}{label} signature (its data would be destroyed; use -f/--force to format it anyway)",
                dev.display(),
                sig.name
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(offset: usize, bytes: &[u8]) -> Vec<u8> {
        let mut b = vec![0u8; PROBE_BYTES];
        b[offset..offset + bytes.len()].copy_from_slice(bytes);
        b
    }

    #[test]
    fn detects_signatures() {
        assert_eq!(detect_signature(&vec![0u8; PROBE_BYTES]), None);
        assert_eq!(detect_signature(&with(0, b"XFSB")).unwrap().name, "xfs");
        assert_eq!(detect_signature(&with(0, b"LUKS\xba\xbe")).unwrap().name, "crypto_LUKS");
        assert_eq!(detect_signature(&with(4086, b"SWAPSPACE2")).unwrap().name, "swap");
        assert_eq!(detect_signature(&with(512, b"EFI PART")).unwrap().name, "gpt partition table");
        let mut mbr = with(510, &[0x55, 0xaa]);
        assert_eq!(detect_signature(&mbr), None, "boot signature without partitions");
        mbr[0x1be + 4] = 0x83;
        assert_eq!(detect_signature(&mbr).unwrap().name, "dos partition table");
        let mut ext4 = with(0x438, &[0x53, 0xef]);
        ext4[0x460] = 0x40;
        assert_eq!(detect_signature(&ext4).unwrap().name, "ext4");
        let mut ext3 = with(0x438, &[0x53, 0xef]);
        ext3[0x45c] = 0x4;
        assert_eq!(detect_signature(&ext3).unwrap().name, "ext3");
    }

    #[test]
    fn our_btrfs_label_is_ours_and_others_are_not() {
        let mut b = with(0x10040, b"_BHRfS_M");
        b[0x1012b..0x1012b + crate::mkfs::LABEL.len()].copy_from_slice(crate::mkfs::LABEL.as_bytes());
        let s = detect_signature(&b).unwrap();
        assert_eq!(s.name, "btrfs");
        assert!(s.is_ours());
        let mut b = with(0x10040, b"_BHRfS_M");
        b[0x1012b..0x1012b + 4].copy_from_slice(b"home");
        let s = detect_signature(&b).unwrap();
        assert_eq!(s.label.as_deref(), Some("home"));
        assert!(!s.is_ours());
    }

    fn info(name: &str, major: u32, minor: u32) -> BlockInfo {
        BlockInfo { name: name.into(), major, minor, ..BlockInfo::default() }
    }

    #[test]
    fn finds_every_kind_of_use() {
        // The disk holding / (ext4, matched by device number), a btrfs mount
        // (anonymous 0:N, matched by source), swap and dm holders.
        let mounts = mountinfo::parse(
            "22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n\
             36 22 0:32 / /home rw shared:30 - btrfs /dev/sdb1 rw,space_cache=v2\n",
        );
        let swaps = "Filename\tType\tSize\tUsed\tPriority\n/dev/sdc2 partition 1 0 -2\n";
        let root = uses(&["/dev/vda".into()], &[info("vda", 254, 0)], &mounts, swaps, &[]);
        assert_eq!(root, vec!["/dev/vda is mounted on /".to_string()]);
        // A whole disk whose partition is mounted.
        let disk = uses(&["/dev/sdb".into()], &[info("sdb", 8, 16), info("sdb1", 8, 17)], &mounts, swaps, &[]);
        assert_eq!(disk, vec!["/dev/sdb1 is mounted on /home".to_string()]);
        // btrfs seen only through /sys/fs/btrfs/*/devices.
        let multi = uses(&["/dev/sdd".into()], &[info("sdd", 8, 48)], &mounts, swaps, &["sdd".into()]);
        assert!(multi[0].contains("mounted btrfs"));
        let swap = uses(&["/dev/sdc2".into()], &[info("sdc2", 8, 34)], &mounts, swaps, &[]);
        assert_eq!(swap, vec!["/dev/sdc2 is in use as swap".to_string()]);
        let mut held = info("sde", 8, 64);
        held.holders = vec!["dm-0".into()];
        assert!(uses(&["/dev/sde".into()], &[held], &mounts, swaps, &[])[0].contains("held by dm-0"));
        assert!(uses(&["/dev/sdf".into()], &[info("sdf", 8, 80)], &mounts, swaps, &[]).is_empty());
    }
}

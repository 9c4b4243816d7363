//! Never destroy what the user did not name: `<dev>` must not be in use and
//! must not hold anything but a filesystem we made ourselves (unless
//! --force). Detection is pure over text, bytes and a sysfs tree (a fixture
//! directory in the tests); `check_device` gathers them from /proc, /sys and
//! the device's first and last sectors.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::mountinfo::{self, Mount};

/// Devices this small get data block groups under 100 MiB, which never get a
/// v1 cache inode (cache_save_setup), so the injection site is unreachable.
pub const MIN_DEVICE_BYTES: u64 = 960 << 20;

/// How much of the device start the signature probe reads (the btrfs
/// superblock at 64 KiB is the farthest magic we look for).
pub const PROBE_BYTES: usize = 0x10000 + 4096;

/// How much of the device end the tail probe reads (md 0.90 sits in the last
/// 64 KiB-aligned 64 KiB, md 1.0 in the last 8 KiB, the backup GPT header in
/// the last sector).
pub const TAIL_BYTES: usize = 128 << 10;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    pub name: &'static str,
    /// For btrfs: the label.
    pub label: Option<String>,
}

impl Signature {
    /// A btrfs we made: our mkfs writes this label.
    pub fn is_ours(&self) -> bool {
        self.name == "btrfs" && self.label.as_deref() == Some(crate::mkfs_progs::LABEL)
    }
}

fn at(buf: &[u8], off: usize, magic: &[u8]) -> bool {
    buf.len() >= off + magic.len() && &buf[off..off + magic.len()] == magic
}

fn le32(buf: &[u8], off: usize) -> u32 {
    buf.get(off..off + 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]])).unwrap_or(0)
}

/// md RAID superblock magic 0xa92b4efc, little endian.
const MD_MAGIC: [u8; 4] = [0xfc, 0x4e, 0x2b, 0xa9];

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
    // LVM2 physical volume: "LABELONE" in one of the first four sectors,
    // "LVM2 001" 0x18 bytes further.
    if (0..4).any(|s| at(buf, s * 512, b"LABELONE") && at(buf, s * 512 + 0x18, b"LVM2 001")) {
        return sig("LVM2_member");
    }
    // md RAID 1.1 (superblock at 0) and 1.2 (at 4 KiB).
    if at(buf, 0, &MD_MAGIC) || at(buf, 4096, &MD_MAGIC) {
        return sig("linux_raid_member");
    }
    // bcache: superblock at 4 KiB, 16-byte magic at +0x18.
    if at(buf, 4096 + 0x18, &[0xc6, 0x85, 0x73, 0xf6, 0x4e, 0x1a, 0x45, 0xca, 0x82, 0x65, 0xf5, 0x7f, 0x48, 0xba, 0x6d, 0x81]) {
        return sig("bcache");
    }
    // ext2/3/4: superblock at 1024, s_magic 0xEF53 at +0x38 (little endian).
    if at(buf, 0x438, &[0x53, 0xef]) {
        // s_feature_compat bit 2 = has_journal (ext3/4); incompat extents/64bit = ext4.
        let compat = le32(buf, 0x45c);
        let incompat = le32(buf, 0x460);
        let name = if incompat & (0x40 | 0x80) != 0 {
            "ext4"
        } else if compat & 0x4 != 0 {
            "ext3"
        } else {
            "ext2"
        };
        return sig(name);
    }
    // f2fs: superblock at 1024, magic 0xF2F52010.
    if at(buf, 0x400, &[0x10, 0x20, 0xf5, 0xf2]) {
        return sig("f2fs");
    }
    if at(buf, 0, b"hsqs") {
        return sig("squashfs");
    }
    // ISO 9660: volume descriptor at 32 KiB.
    if at(buf, 0x8001, b"CD001") {
        return sig("iso9660");
    }
    // swap: "SWAPSPACE2"/"SWAP-SPACE" in the last 10 bytes of the first page.
    for page in [4096usize, 8192, 16384, 65536] {
        if at(buf, page - 10, b"SWAPSPACE2") || at(buf, page - 10, b"SWAP-SPACE") {
            return sig("swap");
        }
    }
    // Boot-sector filesystems carry 0x55AA at 510 too: tell them from an MBR
    // first.
    if at(buf, 3, b"NTFS    ") {
        return sig("ntfs");
    }
    if at(buf, 3, b"EXFAT   ") {
        return sig("exfat");
    }
    if at(buf, 510, &[0x55, 0xaa]) && (at(buf, 0x36, b"FAT12   ") || at(buf, 0x36, b"FAT16   ") || at(buf, 0x52, b"FAT32   ")) {
        return sig("vfat");
    }
    // GPT header in LBA 1: 512-byte or 4 KiB sectors.
    if at(buf, 512, b"EFI PART") || at(buf, 4096, b"EFI PART") {
        return sig("gpt partition table");
    }
    if at(buf, 510, &[0x55, 0xaa]) {
        // An MBR: every boot indicator 0x00 or 0x80, at least one partition
        // entry of a non-zero type.
        let entry = |i: usize| 0x1be + i * 16;
        let flags_ok = (0..4).all(|i| matches!(buf.get(entry(i)), Some(0x00 | 0x80)));
        let has_partition = (0..4).any(|i| buf.get(entry(i) + 4).is_some_and(|t| *t != 0));
        if flags_ok && has_partition {
            return sig("dos partition table");
        }
    }
    None
}

/// Finds a signature kept at the end of a device: md RAID 0.90/1.0
/// superblocks and the backup GPT header. `tail` is the device's last bytes,
/// `size` the device size.
pub fn detect_tail_signature(tail: &[u8], size: u64) -> Option<Signature> {
    let start = size.checked_sub(tail.len() as u64)?;
    let rel = |off: u64| off.checked_sub(start).map(|o| o as usize);
    let sig = |name| Some(Signature { name, label: None });
    let md090 = (size & !0xffff).checked_sub(0x10000);
    let md10 = size.checked_sub(8192).map(|o| o & !0xfff);
    for off in [md090, md10].into_iter().flatten() {
        if rel(off).is_some_and(|o| at(tail, o, &MD_MAGIC)) {
            return sig("linux_raid_member");
        }
    }
    for sector in [512u64, 4096] {
        if size.checked_sub(sector).and_then(rel).is_some_and(|o| at(tail, o, b"EFI PART")) {
            return sig("gpt partition table (backup header)");
        }
    }
    None
}

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

/// The file names in /proc/swaps text (spaces come escaped as \040).
pub fn parse_swaps(text: &str) -> Vec<String> {
    text.lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .map(|f| f.replace("\\040", " "))
        .collect()
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

fn refusal(dev: &Path, u: &Use) -> String {
    format!("refusing {}: {} ({})", dev.display(), u.what, u.remedy)
}

/// Reads up to `len` bytes at `offset`.
fn read_at(f: &mut File, offset: u64, len: usize) -> std::io::Result<Vec<u8>> {
    f.seek(SeekFrom::Start(offset))?;
    let mut buf = vec![0u8; len];
    let mut total = 0;
    while total < len {
        match f.read(&mut buf[total..]) {
            Ok(0) => break,
            Ok(k) => total += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    buf.truncate(total);
    Ok(buf)
}

/// Refuses a device in use or holding a foreign signature: one line, what,
/// why and what to do. `bytes` is its size. Reads only.
pub fn check_device(dev: &Path, bytes: u64, force: bool) -> Result<(), String> {
    let sys = Path::new("/sys");
    let canonical = std::fs::canonicalize(dev).unwrap_or_else(|_| dev.to_path_buf());
    let usage = Usage::read(sys);
    let named = vec![dev.display().to_string(), canonical.display().to_string()];

    let is_block = if let Some((ma, mi)) = crate::device::rdev(&canonical) {
        if let Some(u) = block_device_uses(sys, &usage, ma, mi, &named).first() {
            return Err(refusal(dev, u));
        }
        // The kernel's own answer: a mounted filesystem, swap, dm/md or a
        // running mkfs claims the device, and O_EXCL then fails with EBUSY
        // (for a whole disk, also when one of its partitions is claimed).
        match OpenOptions::new().read(true).custom_flags(libc::O_EXCL).open(&canonical) {
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                return Err(format!(
                    "refusing {}: the kernel reports it busy (open with O_EXCL: EBUSY): something holds it (a mount, swap, dm/md, another mkfs) (stop that user first, or use another device)",
                    dev.display()
                ));
            }
            _ => {}
        }
        true
    } else {
        if let Some(u) = image_uses(sys, &usage, &canonical.to_string_lossy()).first() {
            return Err(refusal(dev, u));
        }
        false
    };

    let cannot_read = |e: std::io::Error| format!("refusing {}: cannot read it to look for a filesystem: {e} (check the path and permissions)", dev.display());
    let mut f = File::open(&canonical).map_err(cannot_read)?;
    let head = read_at(&mut f, 0, PROBE_BYTES).map_err(cannot_read)?;
    let mut found = detect_signature(&head);
    if found.is_none() && bytes > PROBE_BYTES as u64 {
        let len = TAIL_BYTES.min(bytes as usize);
        let tail = read_at(&mut f, bytes - len as u64, len).map_err(cannot_read)?;
        if tail.len() == len {
            found = detect_tail_signature(&tail, bytes);
        }
    }
    if let Some(sig) = found {
        if !sig.is_ours() && !force {
            // The label is the device's bytes: escaped, so a newline in it
            // cannot break the one-line refusal.
            let label = sig.label.as_deref().filter(|l| !l.is_empty()).map(|l| format!(" labelled '{}'", l.escape_debug())).unwrap_or_default();
            let what = if is_block { "device" } else { "image" };
            return Err(format!(
                "refusing {}: it holds a {}{label} signature: formatting would destroy it (wipe the {what} first, or use -f/--force)",
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
    use std::path::PathBuf;

    fn with(offset: usize, bytes: &[u8]) -> Vec<u8> {
        let mut b = vec![0u8; PROBE_BYTES];
        b[offset..offset + bytes.len()].copy_from_slice(bytes);
        b
    }

    #[test]
    fn detects_signatures() {
        assert_eq!(detect_signature(&vec![0u8; PROBE_BYTES]), None);
        assert_eq!(detect_signature(&[]), None);
        assert_eq!(detect_signature(&with(0, b"XFSB")).unwrap().name, "xfs");
        assert_eq!(detect_signature(&with(0, b"LUKS\xba\xbe")).unwrap().name, "crypto_LUKS");
        assert_eq!(detect_signature(&with(4086, b"SWAPSPACE2")).unwrap().name, "swap");
        assert_eq!(detect_signature(&with(65526, b"SWAPSPACE2")).unwrap().name, "swap");
        assert_eq!(detect_signature(&with(512, b"EFI PART")).unwrap().name, "gpt partition table");
        assert_eq!(detect_signature(&with(4096, b"EFI PART")).unwrap().name, "gpt partition table");
        assert_eq!(detect_signature(&with(4096, &MD_MAGIC)).unwrap().name, "linux_raid_member");
        assert_eq!(detect_signature(&with(0x401, b"LVM2 001")), None);
        let mut lvm = with(512, b"LABELONE");
        lvm[512 + 0x18..512 + 0x20].copy_from_slice(b"LVM2 001");
        assert_eq!(detect_signature(&lvm).unwrap().name, "LVM2_member");
        assert_eq!(detect_signature(&with(0x8001, b"CD001")).unwrap().name, "iso9660");
        assert_eq!(detect_signature(&with(0x400, &[0x10, 0x20, 0xf5, 0xf2])).unwrap().name, "f2fs");
        let mut mbr = with(510, &[0x55, 0xaa]);
        assert_eq!(detect_signature(&mbr), None, "boot signature without partitions");
        mbr[0x1be + 4] = 0x83;
        assert_eq!(detect_signature(&mbr).unwrap().name, "dos partition table");
        mbr[0x1be] = 0x13;
        assert_eq!(detect_signature(&mbr), None, "boot code, not partition entries");
        let mut fat = with(510, &[0x55, 0xaa]);
        fat[0x52..0x5a].copy_from_slice(b"FAT32   ");
        fat[0x1be + 4] = 0x12;
        assert_eq!(detect_signature(&fat).unwrap().name, "vfat");
        let mut ext4 = with(0x438, &[0x53, 0xef]);
        ext4[0x460] = 0x40;
        assert_eq!(detect_signature(&ext4).unwrap().name, "ext4");
        let mut ext3 = with(0x438, &[0x53, 0xef]);
        ext3[0x45c] = 0x4;
        assert_eq!(detect_signature(&ext3).unwrap().name, "ext3");
        assert_eq!(detect_signature(&with(0x438, &[0x53, 0xef])).unwrap().name, "ext2");
    }

    #[test]
    fn detects_signatures_at_the_end() {
        let size: u64 = (1 << 30) + 12345 * 512;
        let tail_at = |off: u64, magic: &[u8]| {
            let mut t = vec![0u8; TAIL_BYTES];
            let o = (off - (size - TAIL_BYTES as u64)) as usize;
            t[o..o + magic.len()].copy_from_slice(magic);
            t
        };
        assert_eq!(detect_tail_signature(&vec![0u8; TAIL_BYTES], size), None);
        let md090 = (size & !0xffff) - 0x10000;
        assert_eq!(detect_tail_signature(&tail_at(md090, &MD_MAGIC), size).unwrap().name, "linux_raid_member");
        let md10 = (size - 8192) & !0xfff;
        assert_eq!(detect_tail_signature(&tail_at(md10, &MD_MAGIC), size).unwrap().name, "linux_raid_member");
        assert!(detect_tail_signature(&tail_at(size - 512, b"EFI PART"), size).unwrap().name.starts_with("gpt"));
        // A device smaller than the probe: nothing, no panic.
        assert_eq!(detect_tail_signature(&vec![0u8; TAIL_BYTES], 4096), None);
    }

    #[test]
    fn our_btrfs_label_is_ours_and_others_are_not() {
        let mut b = with(0x10040, b"_BHRfS_M");
        b[0x1012b..0x1012b + crate::mkfs_progs::LABEL.len()].copy_from_slice(crate::mkfs_progs::LABEL.as_bytes());
        let s = detect_signature(&b).unwrap();
        assert_eq!(s.name, "btrfs");
        assert!(s.is_ours());
        let mut b = with(0x10040, b"_BHRfS_M");
        b[0x1012b..0x1012b + 4].copy_from_slice(b"home");
        let s = detect_signature(&b).unwrap();
        assert_eq!(s.label.as_deref(), Some("home"));
        assert!(!s.is_ours());
        // No label at all is not ours either.
        assert!(!detect_signature(&with(0x10040, b"_BHRfS_M")).unwrap().is_ours());
    }

    fn info(name: &str, major: u32, minor: u32) -> BlockInfo {
        BlockInfo { name: name.into(), major, minor, ..BlockInfo::default() }
    }

    fn whats(u: Vec<Use>) -> Vec<String> {
        u.into_iter().map(|u| u.what).collect()
    }

    #[test]
    fn finds_every_kind_of_use() {
        // The disk holding / (ext4, matched by device number), a btrfs mount
        // (anonymous 0:N, matched by source), swap and dm holders.
        let usage = Usage::parse(
            "22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n\
             36 22 0:32 / /home rw shared:30 - btrfs /dev/sdb1 rw,space_cache=v2\n",
            "Filename\tType\tSize\tUsed\tPriority\n/dev/sdc2 partition 1 0 -2\n",
            vec!["sdd".into()],
        );
        let root = uses(&["/dev/vda".into()], &[info("vda", 254, 0)], &usage);
        assert_eq!(whats(root), vec!["/dev/vda is mounted on /".to_string()]);
        // A whole disk whose partition is mounted.
        let disk = uses(&["/dev/sdb".into()], &[info("sdb", 8, 16), info("sdb1", 8, 17)], &usage);
        assert_eq!(whats(disk), vec!["/dev/sdb1 is mounted on /home".to_string()]);
        // btrfs seen only through /sys/fs/btrfs/*/devices.
        let multi = uses(&["/dev/sdd".into()], &[info("sdd", 8, 48)], &usage);
        assert!(multi[0].what.contains("mounted btrfs"));
        let swap = uses(&["/dev/sdc2".into()], &[info("sdc2", 8, 34)], &usage);
        assert_eq!(whats(swap), vec!["/dev/sdc2 is in use as swap".to_string()]);
        let mut held = info("sde", 8, 64);
        held.holders = vec!["dm-0".into()];
        let h = uses(&["/dev/sde".into()], &[held], &usage);
        assert!(h[0].what.contains("held by dm-0 (device-mapper)"), "{h:?}");
        assert!(h[0].remedy.contains("dmsetup remove"));
        assert!(uses(&["/dev/sdf".into()], &[info("sdf", 8, 80)], &usage).is_empty());
        // Named through a path the mount source uses verbatim.
        let usage = Usage::parse("40 22 0:40 / /data rw - btrfs /dev/disk/by-label/data rw\n", "", vec![]);
        assert!(!uses(&["/dev/disk/by-label/data".into()], &[info("sdg", 8, 96)], &usage).is_empty());
    }

    #[test]
    fn parses_swaps() {
        let t = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n/dev/zram0 partition 8388604 0 100\n/var/my\\040swap file 1024 0 -2\n";
        assert_eq!(parse_swaps(t), vec!["/dev/zram0".to_string(), "/var/my swap".to_string()]);
        assert!(parse_swaps("").is_empty());
    }

    /// A fixture sysfs tree in a temp directory: the layout of /sys that
    /// block_info and friends read (dev/block/M:m symlinks into devices/,
    /// partitions as subdirectories with a `partition` file, holders/,
    /// loop/backing_file, block/<disk>, fs/btrfs/<fsid>/devices/<name>).
    struct Sysfs {
        root: PathBuf,
    }

    impl Sysfs {
        fn new(name: &str) -> Sysfs {
            let root = std::env::temp_dir().join(format!("brr-sysfs-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&root);
            std::fs::create_dir_all(root.join("dev/block")).unwrap();
            std::fs::create_dir_all(root.join("block")).unwrap();
            Sysfs { root }
        }

        fn disk(&self, name: &str, dev: &str) -> &Sysfs {
            let d = self.root.join("devices").join(name);
            std::fs::create_dir_all(d.join("holders")).unwrap();
            std::fs::write(d.join("dev"), format!("{dev}\n")).unwrap();
            std::os::unix::fs::symlink(format!("../../devices/{name}"), self.root.join("dev/block").join(dev)).unwrap();
            std::os::unix::fs::symlink(format!("../devices/{name}"), self.root.join("block").join(name)).unwrap();
            self
        }

        fn partition(&self, disk: &str, name: &str, dev: &str) -> &Sysfs {
            let d = self.root.join("devices").join(disk).join(name);
            std::fs::create_dir_all(d.join("holders")).unwrap();
            std::fs::write(d.join("dev"), format!("{dev}\n")).unwrap();
            std::fs::write(d.join("partition"), "1\n").unwrap();
            std::os::unix::fs::symlink(format!("../../devices/{disk}/{name}"), self.root.join("dev/block").join(dev)).unwrap();
            self
        }

        /// `path` is devices/<...>: the disk or partition directory.
        fn holder(&self, path: &str, holder: &str) -> &Sysfs {
            std::fs::create_dir_all(self.root.join("devices").join(path).join("holders").join(holder)).unwrap();
            self
        }

        fn backing(&self, disk: &str, file: &str) -> &Sysfs {
            let d = self.root.join("devices").join(disk).join("loop");
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("backing_file"), format!("{file}\n")).unwrap();
            self
        }

        fn btrfs_member(&self, fsid: &str, name: &str) -> &Sysfs {
            let d = self.root.join("fs/btrfs").join(fsid).join("devices");
            std::fs::create_dir_all(&d).unwrap();
            std::os::unix::fs::symlink(format!("../../../../devices/{name}"), d.join(name)).unwrap();
            self
        }
    }

    impl Drop for Sysfs {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.root);
        }
    }

    const SWAPS_HEADER: &str = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n";

    /// The disk holding /: never to be staged on a real machine.
    #[test]
    fn refuses_the_disk_holding_root() {
        let s = Sysfs::new("root");
        s.disk("vda", "254:0").partition("vda", "vda1", "254:1").partition("vda", "vda2", "254:2");
        let info = block_info(&s.root, 254, 0).unwrap();
        assert_eq!(info.name, "vda");
        assert_eq!(info.partitions, vec!["vda1".to_string(), "vda2".to_string()]);
        // ext4 on a partition: matched by device number.
        let ext4 = Usage::parse("22 1 254:2 / / rw,relatime shared:1 - ext4 /dev/vda2 rw\n", SWAPS_HEADER, vec![]);
        let u = block_device_uses(&s.root, &ext4, 254, 0, &["/dev/vda".into()]);
        assert_eq!(whats(u), vec!["/dev/vda2 is mounted on /".to_string()]);
        // Naming the partition itself.
        let u = block_device_uses(&s.root, &ext4, 254, 2, &["/dev/vda2".into()]);
        assert_eq!(whats(u), vec!["/dev/vda2 is mounted on /".to_string()]);
        // The other partition is free.
        assert!(block_device_uses(&s.root, &ext4, 254, 1, &["/dev/vda1".into()]).is_empty());
        // btrfs on / shows 0:N: matched by source, and by /sys/fs/btrfs.
        let btrfs = Usage::parse("22 1 0:27 / / rw shared:1 - btrfs /dev/vda2 rw,space_cache=v2\n", SWAPS_HEADER, vec![]);
        let u = block_device_uses(&s.root, &btrfs, 254, 0, &["/dev/vda".into()]);
        assert_eq!(whats(u), vec!["/dev/vda2 is mounted on /".to_string()]);
        s.btrfs_member("3f1c0000-0000-0000-0000-000000000001", "vda2");
        let sources_elsewhere = Usage::parse("22 1 0:27 / / rw - btrfs /dev/root rw\n", SWAPS_HEADER, btrfs_device_names(&s.root));
        let u = block_device_uses(&s.root, &sources_elsewhere, 254, 0, &["/dev/vda".into()]);
        assert!(u[0].what.contains("/dev/vda2 belongs to a mounted btrfs"), "{u:?}");
    }

    /// A second device of a multi-device btrfs is not the mount source: only
    /// /sys/fs/btrfs/<fsid>/devices lists it.
    #[test]
    fn refuses_a_member_of_a_mounted_multi_device_btrfs() {
        let s = Sysfs::new("multi");
        s.disk("sdb", "8:16").disk("sdc", "8:32").disk("sdd", "8:48");
        s.btrfs_member("5a5a0000-0000-0000-0000-000000000002", "sdb").btrfs_member("5a5a0000-0000-0000-0000-000000000002", "sdc");
        assert_eq!(btrfs_device_names(&s.root), vec!["sdb".to_string(), "sdc".to_string()]);
        let usage = Usage::parse("36 22 0:32 / /pool rw - btrfs /dev/sdb rw\n", SWAPS_HEADER, btrfs_device_names(&s.root));
        let u = block_device_uses(&s.root, &usage, 8, 32, &["/dev/sdc".into()]);
        assert_eq!(u.len(), 1);
        assert!(u[0].what.contains("/dev/sdc belongs to a mounted btrfs"));
        let u = block_device_uses(&s.root, &usage, 8, 16, &["/dev/sdb".into()]);
        assert_eq!(whats(u), vec!["/dev/sdb is mounted on /pool".to_string()]);
        assert!(block_device_uses(&s.root, &usage, 8, 48, &["/dev/sdd".into()]).is_empty());
    }

    /// dm and md hold the device (or one of its partitions) without any
    /// mount of it showing up: sysfs holders/ says so.
    #[test]
    fn refuses_devices_held_by_dm_or_md() {
        let s = Sysfs::new("holders");
        s.disk("sdb", "8:16").disk("sdc", "8:32").partition("sdc", "sdc1", "8:33").disk("nvme0n1", "259:0");
        s.holder("sdb", "dm-0").holder("sdc/sdc1", "md127");
        let usage = Usage::parse("", SWAPS_HEADER, vec![]);
        let u = block_device_uses(&s.root, &usage, 8, 16, &["/dev/sdb".into()]);
        assert_eq!(whats(u), vec!["/dev/sdb is held by dm-0 (device-mapper)".to_string()]);
        let u = block_device_uses(&s.root, &usage, 8, 32, &["/dev/sdc".into()]);
        assert_eq!(whats(u), vec!["/dev/sdc1 is held by md127 (md RAID)".to_string()]);
        assert!(block_device_uses(&s.root, &usage, 259, 0, &["/dev/nvme0n1".into()]).is_empty());
        // A device named through a symlink: canonical names are compared.
        let usage = Usage::parse("", &format!("{SWAPS_HEADER}/dev/nvme0n1 partition 1 0 -2\n"), vec![]);
        let u = block_device_uses(&s.root, &usage, 259, 0, &["/dev/disk/by-id/nvme-x".into(), "/dev/nvme0n1".into()]);
        assert_eq!(whats(u), vec!["/dev/nvme0n1 is in use as swap".to_string()]);
    }

    /// An image file is in use when a loop device over it (or a partition of
    /// that loop device) is mounted, in swap or held.
    #[test]
    fn refuses_an_image_whose_loop_device_is_in_use() {
        let s = Sysfs::new("image");
        s.disk("loop0", "7:0").disk("loop1", "7:1").partition("loop1", "loop1p1", "259:5").disk("loop2", "7:2");
        s.backing("loop0", "/var/tmp/a.img").backing("loop1", "/var/tmp/b.img").backing("loop2", "/var/tmp/c.img (deleted)");
        let usage = Usage::parse(
            "50 22 0:50 / /mnt/a rw - btrfs /dev/loop0 rw\n51 22 259:5 / /mnt/b rw - ext4 /dev/loop1p1 rw\n",
            &format!("{SWAPS_HEADER}/dev/loop2 partition 1 0 -2\n/var/tmp/d.img file 1 0 -3\n"),
            vec![],
        );
        let a = image_uses(&s.root, &usage, "/var/tmp/a.img");
        assert_eq!(whats(a), vec!["it is attached to /dev/loop0, and /dev/loop0 is mounted on /mnt/a".to_string()]);
        let b = image_uses(&s.root, &usage, "/var/tmp/b.img");
        assert_eq!(whats(b), vec!["it is attached to /dev/loop1, and /dev/loop1p1 is mounted on /mnt/b".to_string()]);
        assert!(b_remedy_says_detach(&image_uses(&s.root, &usage, "/var/tmp/b.img")));
        let c = image_uses(&s.root, &usage, "/var/tmp/c.img");
        assert_eq!(whats(c), vec!["it is attached to /dev/loop2, and /dev/loop2 is in use as swap".to_string()]);
        assert_eq!(whats(image_uses(&s.root, &usage, "/var/tmp/d.img")), vec!["it is in use as a swap file".to_string()]);
        assert!(image_uses(&s.root, &usage, "/var/tmp/e.img").is_empty());
        // Naming a second loop device over a.img: a.img's mounted loop counts.
        s.disk("loop3", "7:3").backing("loop3", "/var/tmp/a.img");
        let u = block_device_uses(&s.root, &usage, 7, 3, &["/dev/loop3".into()]);
        assert!(u[0].what.contains("also attached to /dev/loop0, and /dev/loop0 is mounted on /mnt/a"), "{u:?}");
    }

    fn b_remedy_says_detach(u: &[Use]) -> bool {
        u.first().is_some_and(|u| u.remedy.contains("losetup -d"))
    }
}

#[cfg(test)]
mod fuzz {
    use super::*;
    use crate::fuzz::{run, INPUTS};

    /// Where the probes look, with what they look for there.
    const MAGICS: [(usize, &[u8]); 24] = [
        (0x10040, b"_BHRfS_M"),
        (0, b"LUKS\xba\xbe"),
        (0, b"SKUL\xba\xbe"),
        (0, b"XFSB"),
        (0, b"LABELONE"),
        (0x18, b"LVM2 001"),
        (1024, b"LABELONE"),
        (1024 + 0x18, b"LVM2 001"),
        (0, &MD_MAGIC),
        (4096, &MD_MAGIC),
        (4096 + 0x18, &[0xc6, 0x85, 0x73, 0xf6, 0x4e, 0x1a, 0x45, 0xca, 0x82, 0x65, 0xf5, 0x7f, 0x48, 0xba, 0x6d, 0x81]),
        (0x438, &[0x53, 0xef]),
        (0x460, &[0xc0, 0xff, 0xff, 0xff]),
        (0x400, &[0x10, 0x20, 0xf5, 0xf2]),
        (0, b"hsqs"),
        (0x8001, b"CD001"),
        (4086, b"SWAPSPACE2"),
        (65526, b"SWAP-SPACE"),
        (3, b"NTFS    "),
        (3, b"EXFAT   "),
        (510, &[0x55, 0xaa]),
        (0x52, b"FAT32   "),
        (512, b"EFI PART"),
        (0x1be, &[0x80, 0, 0, 0, 0x83]),
    ];

    /// Bytes written over a zeroed probe buffer: (offset, bytes).
    type Patches = Vec<(usize, Vec<u8>)>;

    fn patches(rng: &mut fastrand::Rng, around: &[usize], limit: usize) -> Patches {
        let mut out = Vec::new();
        for _ in 0..rng.usize(0..=6) {
            let (off, bytes) = match rng.u8(..4) {
                // A magic where it belongs, maybe cut short or shifted by one.
                0 | 1 => {
                    let (off, magic) = MAGICS[rng.usize(..MAGICS.len())];
                    let off = match rng.u8(..8) {
                        0 => off.saturating_sub(1),
                        1 => off + 1,
                        _ => off,
                    };
                    (off, magic[..rng.usize(1..=magic.len())].to_vec())
                }
                // Random bytes (labels, partition entries, non-UTF-8) at an
                // offset a probe reads.
                2 => {
                    let base = around[rng.usize(..around.len())];
                    let n = rng.usize(1..300);
                    (base.saturating_sub(rng.usize(..16)), std::iter::repeat_with(|| rng.u8(..)).take(n).collect())
                }
                _ => {
                    let n = rng.usize(1..64);
                    (rng.usize(..limit), std::iter::repeat_with(|| rng.u8(..)).take(n).collect())
                }
            };
            out.push((off, bytes));
        }
        out
    }

    /// Applies `patches` to the zeroed `buf`, runs `f` on its first `len`
    /// bytes, zeroes the patched bytes again.
    fn with_patches<R>(buf: &mut [u8], len: usize, patches: &Patches, f: impl FnOnce(&[u8]) -> R) -> R {
        for (off, bytes) in patches {
            let end = (off + bytes.len()).min(buf.len());
            if *off < end {
                buf[*off..end].copy_from_slice(&bytes[..end - off]);
            }
        }
        let r = f(&buf[..len.min(buf.len())]);
        for (off, bytes) in patches {
            let end = (off + bytes.len()).min(buf.len());
            if *off < end {
                buf[*off..end].fill(0);
            }
        }
        r
    }

    /// The head probe over a device's first bytes, of any length up to
    /// what check_device reads (a short device gives a short buffer).
    #[test]
    fn head_signature_detection_never_panics() {
        let around = [0x1012b, 0x1be, 0x45c, 0x460, 0x36, 0x52, 510, 4096, 0x8001, 0];
        let make = |rng: &mut fastrand::Rng| {
            let len = match rng.u8(..4) {
                0 => rng.usize(..=PROBE_BYTES),
                1 => rng.usize(..=1100),
                _ => PROBE_BYTES,
            };
            (len, patches(rng, &around, PROBE_BYTES))
        };
        let mut buf = vec![0u8; PROBE_BYTES];
        let mut names = std::collections::HashSet::new();
        let checked = run("safety::detect_signature", 0x68656164, make, |(len, p): &(usize, Patches)| {
            let found = with_patches(&mut buf, *len, p, detect_signature);
            if let Some(sig) = found {
                assert!(!sig.name.is_empty());
                assert!(sig.label.is_none() || sig.name == "btrfs", "{sig:?}");
                assert!(!sig.label.as_deref().is_some_and(|l| l.contains('\0')), "the label ends at its NUL");
                assert!(!sig.is_ours() || sig.name == "btrfs");
                names.insert(sig.name);
            }
        });
        assert_eq!(checked, INPUTS);
        assert!(buf.iter().all(|b| *b == 0), "every patch was undone");
        // Every kind the probe knows came up at least once.
        assert_eq!(names.len(), 18, "{names:?}");
    }

    /// The tail probe, with device sizes from zero to u64::MAX.
    #[test]
    fn tail_signature_detection_never_panics() {
        let make = |rng: &mut fastrand::Rng| {
            let len = if rng.bool() { TAIL_BYTES } else { rng.usize(..=TAIL_BYTES) };
            let size = match rng.u8(..6) {
                0 => rng.u64(..),
                1 => u64::MAX - rng.u64(..0x20000),
                2 => rng.u64(..=len as u64 + 16),
                3 => (rng.u64(1..1 << 20) << 16).wrapping_add(rng.u64(..4096)).wrapping_sub(2048),
                _ => (1 << 30) + rng.u64(..1 << 20) * 512,
            };
            // The offsets the probe reads, relative to the tail's start.
            let start = size.wrapping_sub(len as u64);
            let rel = |off: u64| off.wrapping_sub(start) as usize % (len + 1);
            let around = [
                rel((size & !0xffff).wrapping_sub(0x10000)),
                rel(size.wrapping_sub(8192) & !0xfff),
                rel(size.wrapping_sub(512)),
                rel(size.wrapping_sub(4096)),
            ];
            let mut p = patches(rng, &around, len.max(1));
            // Plant the magics where the probe looks.
            for off in around {
                match rng.u8(..4) {
                    0 => p.push((off, MD_MAGIC.to_vec())),
                    1 => p.push((off, b"EFI PART".to_vec())),
                    _ => {}
                }
            }
            (size, len, p)
        };
        let mut buf = vec![0u8; TAIL_BYTES];
        let mut found_some = 0;
        let checked = run("safety::detect_tail_signature", 0x7461696c, make, |(size, len, p): &(u64, usize, Patches)| {
            let found = with_patches(&mut buf, *len, p, |tail| detect_tail_signature(tail, *size));
            if *size < *len as u64 {
                assert_eq!(found, None, "a tail longer than the device is no tail");
            }
            if let Some(sig) = found {
                assert!(sig.name == "linux_raid_member" || sig.name.starts_with("gpt"), "{sig:?}");
                found_some += 1;
            }
        });
        assert_eq!(checked, INPUTS);
        assert!(found_some > INPUTS / 10, "{found_some}");
    }
}

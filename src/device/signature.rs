//! What a device holds, from its first and last bytes: pure detection of
//! filesystem, RAID, swap and partition-table magic (offsets as libblkid's
//! probers use them).

use crate::base::ondisk::{LABEL, LABEL_AT, LABEL_MAX, MAGIC, MAGIC_AT, SUPER_SIZE, SUPER_SLOTS};

/// The first btrfs superblock copy, at 64 KiB.
const BTRFS_SUPER: usize = SUPER_SLOTS[0] as usize;

/// How much of the device start the signature probe reads (the btrfs
/// superblock at 64 KiB is the farthest magic we look for).
pub const PROBE_BYTES: usize = BTRFS_SUPER + SUPER_SIZE as usize;

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
        self.name == "btrfs" && self.label.as_deref() == Some(LABEL)
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
/// (offsets as libblkid's probers use them), in this order.
pub fn detect_signature(buf: &[u8]) -> Option<Signature> {
    if let Some(ours) = btrfs(buf) {
        return Some(ours);
    }
    let name = containers(buf).or_else(|| ext(buf)).or_else(|| more_filesystems(buf)).or_else(|| boot_sector(buf))?;
    Some(Signature { name, label: None })
}

/// btrfs: the magic of the first superblock copy; its label tells ours.
fn btrfs(buf: &[u8]) -> Option<Signature> {
    if !at(buf, BTRFS_SUPER + MAGIC_AT, &MAGIC.to_le_bytes()) {
        return None;
    }
    let label_at = BTRFS_SUPER + LABEL_AT;
    let label = buf.get(label_at..label_at + LABEL_MAX + 1).map(|l| {
        let end = l.iter().position(|b| *b == 0).unwrap_or(l.len());
        String::from_utf8_lossy(&l[..end]).into_owned()
    });
    Some(Signature { name: "btrfs", label })
}

/// LUKS, xfs, and what holds other volumes: LVM, md RAID, bcache.
fn containers(buf: &[u8]) -> Option<&'static str> {
    if at(buf, 0, b"LUKS\xba\xbe") || at(buf, 0, b"SKUL\xba\xbe") {
        return Some("crypto_LUKS");
    }
    if at(buf, 0, b"XFSB") {
        return Some("xfs");
    }
    // LVM2 physical volume: "LABELONE" in one of the first four sectors,
    // "LVM2 001" 0x18 bytes further.
    if (0..4).any(|s| at(buf, s * 512, b"LABELONE") && at(buf, s * 512 + 0x18, b"LVM2 001")) {
        return Some("LVM2_member");
    }
    // md RAID 1.1 (superblock at 0) and 1.2 (at 4 KiB).
    if at(buf, 0, &MD_MAGIC) || at(buf, 4096, &MD_MAGIC) {
        return Some("linux_raid_member");
    }
    // bcache: superblock at 4 KiB, 16-byte magic at +0x18.
    if at(buf, 4096 + 0x18, &[0xc6, 0x85, 0x73, 0xf6, 0x4e, 0x1a, 0x45, 0xca, 0x82, 0x65, 0xf5, 0x7f, 0x48, 0xba, 0x6d, 0x81]) {
        return Some("bcache");
    }
    None
}

/// ext2/3/4: superblock at 1024, s_magic 0xEF53 at +0x38 (little endian).
fn ext(buf: &[u8]) -> Option<&'static str> {
    if !at(buf, 0x438, &[0x53, 0xef]) {
        return None;
    }
    // s_feature_compat bit 2 = has_journal (ext3/4); incompat extents/64bit = ext4.
    let compat = le32(buf, 0x45c);
    let incompat = le32(buf, 0x460);
    Some(if incompat & (0x40 | 0x80) != 0 {
        "ext4"
    } else if compat & 0x4 != 0 {
        "ext3"
    } else {
        "ext2"
    })
}

/// f2fs, squashfs, ISO 9660, swap.
fn more_filesystems(buf: &[u8]) -> Option<&'static str> {
    // f2fs: superblock at 1024, magic 0xF2F52010.
    if at(buf, 0x400, &[0x10, 0x20, 0xf5, 0xf2]) {
        return Some("f2fs");
    }
    if at(buf, 0, b"hsqs") {
        return Some("squashfs");
    }
    // ISO 9660: volume descriptor at 32 KiB.
    if at(buf, 0x8001, b"CD001") {
        return Some("iso9660");
    }
    // swap: "SWAPSPACE2"/"SWAP-SPACE" in the last 10 bytes of the first page.
    [4096usize, 8192, 16384, 65536]
        .into_iter()
        .any(|page| at(buf, page - 10, b"SWAPSPACE2") || at(buf, page - 10, b"SWAP-SPACE"))
        .then_some("swap")
}

/// What starts with a boot sector: NTFS, exFAT, FAT, then the partition
/// tables (GPT, MBR).
fn boot_sector(buf: &[u8]) -> Option<&'static str> {
    // Boot-sector filesystems carry 0x55AA at 510 too: tell them from an MBR
    // first.
    if at(buf, 3, b"NTFS    ") {
        return Some("ntfs");
    }
    if at(buf, 3, b"EXFAT   ") {
        return Some("exfat");
    }
    if at(buf, 510, &[0x55, 0xaa]) && (at(buf, 0x36, b"FAT12   ") || at(buf, 0x36, b"FAT16   ") || at(buf, 0x52, b"FAT32   ")) {
        return Some("vfat");
    }
    // GPT header in LBA 1: 512-byte or 4 KiB sectors.
    if at(buf, 512, b"EFI PART") || at(buf, 4096, b"EFI PART") {
        return Some("gpt partition table");
    }
    if at(buf, 510, &[0x55, 0xaa]) {
        // An MBR: every boot indicator 0x00 or 0x80, at least one partition
        // entry of a non-zero type.
        let entry = |i: usize| 0x1be + i * 16;
        let flags_ok = (0..4).all(|i| matches!(buf.get(entry(i)), Some(0x00 | 0x80)));
        let has_partition = (0..4).any(|i| buf.get(entry(i) + 4).is_some_and(|t| *t != 0));
        if flags_ok && has_partition {
            return Some("dos partition table");
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

#[cfg(test)]
mod tests {
    use super::*;

    fn with(offset: usize, bytes: &[u8]) -> Vec<u8> {
        let mut b = vec![0u8; PROBE_BYTES];
        b[offset..offset + bytes.len()].copy_from_slice(bytes);
        b
    }

    #[test]
    fn each_prober_alone_and_the_order_between_them() {
        assert_eq!(containers(&with(4096, &MD_MAGIC)), Some("linux_raid_member"));
        assert_eq!(ext(&with(0x438, &[0x53, 0xef])), Some("ext2"));
        let mut ext3 = with(0x438, &[0x53, 0xef]);
        ext3[0x45c] = 0x4;
        assert_eq!(ext(&ext3), Some("ext3"));
        ext3[0x460] = 0x40;
        assert_eq!(ext(&ext3), Some("ext4"));
        assert_eq!(more_filesystems(&with(0x8001, b"CD001")), Some("iso9660"));
        assert_eq!(boot_sector(&with(3, b"NTFS    ")), Some("ntfs"));
        assert_eq!((btrfs(&with(0, b"XFSB")), containers(&[]), ext(&[]), more_filesystems(&[]), boot_sector(&[])), (None, None, None, None, None));
        // An NTFS boot sector with an MBR signature is NTFS.
        let mut ntfs = with(3, b"NTFS    ");
        ntfs[510..512].copy_from_slice(&[0x55, 0xaa]);
        assert_eq!(detect_signature(&ntfs).unwrap().name, "ntfs");
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
        b[0x1012b..0x1012b + LABEL.len()].copy_from_slice(LABEL.as_bytes());
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
}

#[cfg(test)]
mod fuzz {
    use super::*;
    use crate::testing::fuzz::{run, INPUTS};

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
        run("safety::detect_signature", 0x68656164, make, |(len, p): &(usize, Patches)| {
            let found = with_patches(&mut buf, *len, p, detect_signature);
            if let Some(sig) = found {
                assert!(!sig.name.is_empty());
                assert!(sig.label.is_none() || sig.name == "btrfs", "{sig:?}");
                assert!(!sig.label.as_deref().is_some_and(|l| l.contains('\0')), "the label ends at its NUL");
                assert!(!sig.is_ours() || sig.name == "btrfs");
                names.insert(sig.name);
            }
        });
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
        run("safety::detect_tail_signature", 0x7461696c, make, |(size, len, p): &(u64, usize, Patches)| {
            let found = with_patches(&mut buf, *len, p, |tail| detect_tail_signature(tail, *size));
            if *size < *len as u64 {
                assert_eq!(found, None, "a tail longer than the device is no tail");
            }
            if let Some(sig) = found {
                assert!(sig.name == "linux_raid_member" || sig.name.starts_with("gpt"), "{sig:?}");
                found_some += 1;
            }
        });
        assert!(found_some > INPUTS / 10, "{found_some}");
    }
}

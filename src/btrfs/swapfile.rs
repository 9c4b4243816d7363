//! The swapfile trigger's file: an active swapfile pins its block group
//! (bg->swap_extents), and inc_block_group_ro() refuses that group with
//! ETXTBSY every time reclaim tries it.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

use crate::sys::fs::Extent;
use crate::sys::swap;

/// The swapfile's size: small next to a data block group, big enough that
/// the group stays the swapfile's while fillers come and go around it.
pub const SWAPFILE_BYTES: u64 = 64 << 20;

/// The v1 swap header mkswap writes (include/linux/swap.h, union
/// swap_header): one page, `version` 1 at 1024, `last_page` at 1028,
/// `nr_badpages` 0 at 1032, the uuid at 1036, "SWAPSPACE2" in the page's
/// last 10 bytes.
pub fn header(page_size: usize, file_bytes: u64, uuid: [u8; 16]) -> Vec<u8> {
    let mut page = vec![0u8; page_size];
    let pages = (file_bytes / page_size as u64) as u32;
    page[1024..1028].copy_from_slice(&1u32.to_le_bytes());
    page[1028..1032].copy_from_slice(&pages.saturating_sub(1).to_le_bytes());
    page[1036..1052].copy_from_slice(&uuid);
    page[page_size - 10..].copy_from_slice(b"SWAPSPACE2");
    page
}

/// A random (version 4) uuid from `rng`.
pub fn uuid(rng: &mut fastrand::Rng) -> [u8; 16] {
    let mut u = [0u8; 16];
    rng.fill(&mut u);
    u[6] = (u[6] & 0x0f) | 0x40;
    u[8] = (u[8] & 0x3f) | 0x80;
    u
}

/// Creates `path` as a swapfile btrfs_swap_activate() accepts: NOCOW set
/// while empty, `bytes` preallocated in one go, the header at offset 0,
/// fsync'd. Returns the file's extents (FIEMAP: physical = logical on
/// one device), to tell which block groups hold it.
pub fn create(path: &Path, bytes: u64, uuid: [u8; 16]) -> io::Result<Vec<Extent>> {
    let file: File = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(crate::sys::with("open", path))?;
    swap::set_nocow(&file, path)?;
    crate::sys::fs::fallocate(&file, 0, bytes, path)?;
    let page = header(swap::page_size(), bytes, uuid);
    file.write_all_at(&page, 0).map_err(crate::sys::with("pwrite", path))?;
    file.sync_all().map_err(crate::sys::with("fsync", path))?;
    crate::sys::fs::fiemap(&file, path)
}

/// The block groups (start, length) that hold any of `extents`.
pub fn groups_holding(groups: &[(u64, u64)], extents: &[Extent]) -> Vec<u64> {
    groups
        .iter()
        .filter(|(s, l)| extents.iter().any(|e| e.physical < s + l && e.physical + e.length > *s))
        .map(|(s, _)| *s)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_is_mkswaps_byte_for_byte() {
        // mkswap (util-linux 2.38.1) -U 0b1c2d3e-4f50-4617-8899-aabbccddeeff
        // on a 1 MiB file: its first page.
        let want = include_bytes!("../../tests/fixtures/mkswap-1m-first-page.bin");
        let uuid = [0x0b, 0x1c, 0x2d, 0x3e, 0x4f, 0x50, 0x46, 0x17, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff];
        assert_eq!(header(4096, 1 << 20, uuid), want.to_vec());
        let h = header(4096, SWAPFILE_BYTES, uuid);
        assert_eq!(u32::from_le_bytes(h[1028..1032].try_into().unwrap()), 16383);
        assert_eq!(header(65536, 1 << 20, uuid)[65526..], *b"SWAPSPACE2");
    }

    #[test]
    fn the_groups_holding_a_file_are_those_its_extents_touch() {
        let groups = [(0, 100), (100, 100), (200, 100)];
        let e = |physical, length| Extent { physical, length };
        assert_eq!(groups_holding(&groups, &[e(90, 20)]), vec![0, 100]);
        assert_eq!(groups_holding(&groups, &[e(100, 100)]), vec![100]);
        assert_eq!(groups_holding(&groups, &[e(210, 5), e(0, 1)]), vec![0, 200]);
        assert!(groups_holding(&groups, &[]).is_empty());
    }

    #[test]
    fn uuids_are_version_4() {
        let u = uuid(&mut fastrand::Rng::with_seed(7));
        assert_eq!((u[6] >> 4, u[8] >> 6), (4, 2));
        assert_ne!(u, uuid(&mut fastrand::Rng::with_seed(8)));
    }
}

//! The filesystem's uuids, derived rather than random: the same run inputs
//! give the same image (apart from times), while two passes of a run or two
//! devices never share an fsid, which the kernel keys its device list by
//! (`btrfs_scan_one_device()` / `find_fsid()`).

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ids {
    pub fsid: [u8; 16],
    pub dev_uuid: [u8; 16],
    pub chunk_tree_uuid: [u8; 16],
    /// The FS tree's ROOT_ITEM uuid (and its UUID tree entry).
    pub fs_tree_uuid: [u8; 16],
}

impl Ids {
    /// `device_identity` is anything that tells devices apart (e.g. the
    /// block device's dev_t, or an image file's inode and device).
    pub fn derive(seed: u64, iteration: u32, pass: u32, device_identity: u64) -> Ids {
        // Each input goes through the splitmix64 finalizer before the next
        // is folded in, so neighbouring inputs land far apart.
        let mut state = mix(seed ^ 0x6274_7266_732d_6d6b); // "btrfs-mk"
        state = mix(state ^ ((iteration as u64) << 32 | pass as u64));
        state = mix(state ^ device_identity);
        let mut rng = fastrand::Rng::with_seed(state);
        let mut uuid = || {
            let mut u = rng.u128(..).to_le_bytes();
            // RFC 4122 version 4 (random), variant 10xx: what mkfs's
            // uuid_generate() gives, and what blkid shows as a uuid.
            u[6] = (u[6] & 0x0F) | 0x40;
            u[8] = (u[8] & 0x3F) | 0x80;
            u
        };
        Ids { fsid: uuid(), dev_uuid: uuid(), chunk_tree_uuid: uuid(), fs_tree_uuid: uuid() }
    }
}

fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn same_inputs_same_ids() {
        assert_eq!(Ids::derive(42, 1, 0, 7), Ids::derive(42, 1, 0, 7));
    }

    #[test]
    fn any_changed_input_changes_every_uuid() {
        let base = Ids::derive(42, 1, 0, 7);
        for other in [Ids::derive(43, 1, 0, 7), Ids::derive(42, 2, 0, 7), Ids::derive(42, 1, 1, 7), Ids::derive(42, 1, 0, 8)] {
            assert_ne!(base.fsid, other.fsid);
            assert_ne!(base.dev_uuid, other.dev_uuid);
            assert_ne!(base.chunk_tree_uuid, other.chunk_tree_uuid);
            assert_ne!(base.fs_tree_uuid, other.fs_tree_uuid);
        }
    }

    #[test]
    fn no_fsid_shared_across_iterations_passes_and_devices() {
        let mut seen = HashSet::new();
        for iteration in 0..64 {
            for pass in 0..8 {
                for device in [0u64, 1, 0x0700, 0x0701, 0x0800_0010, u64::MAX] {
                    let ids = Ids::derive(12345, iteration, pass, device);
                    assert!(seen.insert(ids.fsid), "fsid repeated at {iteration}/{pass}/{device}");
                    // Four distinct uuids within one filesystem.
                    let all: HashSet<_> = [ids.fsid, ids.dev_uuid, ids.chunk_tree_uuid, ids.fs_tree_uuid].into_iter().collect();
                    assert_eq!(all.len(), 4);
                }
            }
        }
    }

    #[test]
    fn uuids_are_version_4() {
        let ids = Ids::derive(0, 0, 0, 0);
        for u in [ids.fsid, ids.dev_uuid, ids.chunk_tree_uuid, ids.fs_tree_uuid] {
            assert_eq!(u[6] >> 4, 4);
            assert_eq!(u[8] >> 6, 0b10);
        }
    }
}

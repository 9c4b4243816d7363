//! CRC-32C (Castagnoli), the checksum of every btrfs tree block and
//! superblock (csum_type 0), and the btrfs directory name hash.

/// Reflected Castagnoli polynomial.
const POLY: u32 = 0x82F6_3B78;

const TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ POLY } else { crc >> 1 };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
};

/// The raw register update, as the kernel's `crc32c(seed, data, len)`: no
/// inversion on entry or exit.
fn raw(seed: u32, data: &[u8]) -> u32 {
    data.iter().fold(seed, |crc, &b| (crc >> 8) ^ TABLE[((crc ^ b as u32) & 0xFF) as usize])
}

/// The standard CRC-32C: what `btrfs_csum_data()` stores in the first four
/// bytes (little-endian) of a tree block's or superblock's csum field.
pub fn checksum(data: &[u8]) -> u32 {
    !raw(!0, data)
}

/// `btrfs_name_hash()`: `crc32c((u32)~1, name, len)`, used as the key offset
/// of a DIR_ITEM.
pub fn name_hash(name: &[u8]) -> u64 {
    raw(!1, name) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_check_value() {
        assert_eq!(checksum(b"123456789"), 0xE306_9283);
        assert_eq!(checksum(b""), 0);
        // RFC 3720 B.4: 32 bytes of zeros.
        assert_eq!(checksum(&[0u8; 32]), 0x8A91_36AA);
    }

    #[test]
    fn name_hash_matches_mkfs() {
        // mkfs.btrfs 6.2's root tree: `(ROOT_TREE_DIR DIR_ITEM 2378154706)`
        // name "default" (dump-tree of a fresh image on this host).
        assert_eq!(name_hash(b"default"), 2_378_154_706);
    }
}

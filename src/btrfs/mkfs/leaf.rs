//! A tree leaf: the 101-byte header, the item array growing from the front,
//! the item data packed from the back, and the checksum. Built whole, so the
//! tree-checker's leaf rules (`__btrfs_check_leaf()`: keys strictly
//! increasing, no gap between item data, data inside the leaf and clear of
//! the item array) hold by construction and are refused otherwise.

use std::fmt;

use super::crc32c;

/// `sizeof(struct btrfs_header)`.
pub const HEADER_SIZE: usize = 101;
/// `sizeof(struct btrfs_item)`: a disk key, data offset u32, data size u32.
pub const ITEM_SIZE: usize = 25;
/// `BTRFS_HEADER_FLAG_WRITTEN` | `BTRFS_MIXED_BACKREF_REV << 56`: the kernel
/// refuses a leaf without WRITTEN; mixed backrefs are what progs writes.
const HEADER_FLAGS: u64 = 1 | (1 << 56);

/// A btrfs key; field order gives the on-disk sort order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Key {
    pub objectid: u64,
    pub kind: u8,
    pub offset: u64,
}

impl Key {
    pub fn new(objectid: u64, kind: u8, offset: u64) -> Key {
        Key { objectid, kind, offset }
    }

    /// `struct btrfs_disk_key`, 17 bytes.
    pub fn encode(&self) -> [u8; 17] {
        let mut out = [0u8; 17];
        out[0..8].copy_from_slice(&self.objectid.to_le_bytes());
        out[8] = self.kind;
        out[9..17].copy_from_slice(&self.offset.to_le_bytes());
        out
    }
}

/// The header fields that differ between leaves of one filesystem.
#[derive(Debug, Clone, Copy)]
pub struct Header {
    pub fsid: [u8; 16],
    pub chunk_tree_uuid: [u8; 16],
    /// The leaf's logical address (`validate_extent_buffer()` compares).
    pub bytenr: u64,
    pub generation: u64,
    pub owner: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeafError {
    Unsorted { previous: Key, key: Key },
    Full { key: Key, need: usize, free: usize },
}

impl fmt::Display for LeafError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LeafError::Unsorted { previous, key } => write!(f, "leaf key {key:?} not after {previous:?}"),
            LeafError::Full { key, need, free } => write!(f, "leaf full at {key:?}: need {need} bytes, {free} free"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Leaf {
    nodesize: usize,
    items: Vec<(Key, Vec<u8>)>,
}

impl Leaf {
    pub fn new(nodesize: u32) -> Leaf {
        Leaf { nodesize: nodesize as usize, items: Vec::new() }
    }

    /// Bytes left for more items (item header + data), as dump-tree's
    /// "free space".
    pub fn free_space(&self) -> usize {
        let used: usize = self.items.iter().map(|(_, d)| ITEM_SIZE + d.len()).sum();
        self.nodesize - HEADER_SIZE - used
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Appends an item; keys must come in strictly increasing order.
    pub fn push(&mut self, key: Key, data: Vec<u8>) -> Result<(), LeafError> {
        if let Some((previous, _)) = self.items.last() {
            if *previous >= key {
                return Err(LeafError::Unsorted { previous: *previous, key });
            }
        }
        let need = ITEM_SIZE + data.len();
        let free = self.free_space();
        if need > free {
            return Err(LeafError::Full { key, need, free });
        }
        self.items.push((key, data));
        Ok(())
    }

    /// The finished block, checksum included.
    pub fn encode(&self, header: &Header) -> Vec<u8> {
        let mut block = vec![0u8; self.nodesize];
        block[32..48].copy_from_slice(&header.fsid);
        block[48..56].copy_from_slice(&header.bytenr.to_le_bytes());
        block[56..64].copy_from_slice(&HEADER_FLAGS.to_le_bytes());
        block[64..80].copy_from_slice(&header.chunk_tree_uuid);
        block[80..88].copy_from_slice(&header.generation.to_le_bytes());
        block[88..96].copy_from_slice(&header.owner.to_le_bytes());
        block[96..100].copy_from_slice(&(self.items.len() as u32).to_le_bytes());
        block[100] = 0; // level: a leaf
        // Item offsets count from the end of the header; item 0's data ends
        // the leaf and each next item's data ends where the previous starts.
        let mut end = self.nodesize - HEADER_SIZE;
        for (i, (key, data)) in self.items.iter().enumerate() {
            let start = end - data.len();
            let at = HEADER_SIZE + ITEM_SIZE * i;
            block[at..at + 17].copy_from_slice(&key.encode());
            block[at + 17..at + 21].copy_from_slice(&(start as u32).to_le_bytes());
            block[at + 21..at + 25].copy_from_slice(&(data.len() as u32).to_le_bytes());
            block[HEADER_SIZE + start..HEADER_SIZE + end].copy_from_slice(data);
            end = start;
        }
        seal(&mut block);
        block
    }
}

/// Writes the crc32c of bytes [32, len) into the csum field's first four
/// bytes (`csum_tree_block()`; the same rule for the superblock).
pub fn seal(block: &mut [u8]) {
    let crc = crc32c::checksum(&block[32..]);
    block[0..32].fill(0);
    block[0..4].copy_from_slice(&crc.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Header {
        Header { fsid: [1; 16], chunk_tree_uuid: [2; 16], bytenr: 30_408_704, generation: 1, owner: 2 }
    }

    /// (key, data offset, data size) of every item, read back.
    fn parse(block: &[u8]) -> Vec<(Key, usize, usize)> {
        let n = u32::from_le_bytes(block[96..100].try_into().unwrap()) as usize;
        (0..n)
            .map(|i| {
                let at = HEADER_SIZE + ITEM_SIZE * i;
                let key = Key::new(
                    u64::from_le_bytes(block[at..at + 8].try_into().unwrap()),
                    block[at + 8],
                    u64::from_le_bytes(block[at + 9..at + 17].try_into().unwrap()),
                );
                let off = u32::from_le_bytes(block[at + 17..at + 21].try_into().unwrap()) as usize;
                let size = u32::from_le_bytes(block[at + 21..at + 25].try_into().unwrap()) as usize;
                (key, off, size)
            })
            .collect()
    }

    #[test]
    fn items_sorted_contiguous_from_the_end_and_checksummed() {
        let mut leaf = Leaf::new(4096);
        leaf.push(Key::new(1, 216, 1), vec![7; 98]).unwrap();
        leaf.push(Key::new(256, 228, 1 << 20), vec![8; 80]).unwrap();
        leaf.push(Key::new(256, 228, 5 << 20), vec![]).unwrap();
        leaf.push(Key::new(256, 228, 13 << 20), vec![9; 112]).unwrap();
        let block = leaf.encode(&header());
        assert_eq!(block.len(), 4096);
        let items = parse(&block);
        assert_eq!(items.len(), 4);
        // Strictly increasing keys; item 0 ends the leaf; no gaps.
        assert!(items.windows(2).all(|w| w[0].0 < w[1].0));
        let mut end = 4096 - HEADER_SIZE;
        for (_, off, size) in &items {
            assert_eq!(off + size, end);
            end = *off;
        }
        assert!(HEADER_SIZE + ITEM_SIZE * items.len() <= HEADER_SIZE + end, "data overlaps the item array");
        assert_eq!(&block[HEADER_SIZE + items[0].1..HEADER_SIZE + items[0].1 + 98], &[7u8; 98][..]);
        assert_eq!(leaf.free_space(), 4096 - HEADER_SIZE - 4 * ITEM_SIZE - 290);
        // Header fields.
        assert_eq!(u64::from_le_bytes(block[48..56].try_into().unwrap()), 30_408_704);
        assert_eq!(u64::from_le_bytes(block[56..64].try_into().unwrap()), 0x0100_0000_0000_0001);
        assert_eq!(u64::from_le_bytes(block[88..96].try_into().unwrap()), 2);
        assert_eq!(block[100], 0);
        // The checksum covers [32, nodesize) and the rest of the field is 0.
        assert_eq!(u32::from_le_bytes(block[0..4].try_into().unwrap()), crc32c::checksum(&block[32..]));
        assert!(block[4..32].iter().all(|&b| b == 0));
    }

    #[test]
    fn unsorted_or_duplicate_keys_are_refused() {
        let mut leaf = Leaf::new(4096);
        leaf.push(Key::new(5, 132, 0), vec![0; 10]).unwrap();
        assert!(matches!(leaf.push(Key::new(5, 12, 6), vec![]), Err(LeafError::Unsorted { .. })));
        assert!(matches!(leaf.push(Key::new(5, 132, 0), vec![]), Err(LeafError::Unsorted { .. })));
        // Order is objectid, then type, then offset, all unsigned.
        leaf.push(Key::new(5, 132, 1), vec![]).unwrap();
        leaf.push(Key::new(6, 1, 0), vec![]).unwrap();
        leaf.push(Key::new(-9i64 as u64, 132, 0), vec![]).unwrap();
        assert_eq!(leaf.len(), 4);
    }

    #[test]
    fn overflow_is_refused_and_a_full_leaf_is_exact() {
        let mut leaf = Leaf::new(4096);
        // 4096 − 101 = 3995 bytes: 5 items of 25 + 774 fill it exactly.
        for i in 0..5 {
            leaf.push(Key::new(i, 1, 0), vec![0; 774]).unwrap();
        }
        assert_eq!(leaf.free_space(), 0);
        let e = leaf.push(Key::new(9, 1, 0), vec![]).unwrap_err();
        assert_eq!(e, LeafError::Full { key: Key::new(9, 1, 0), need: 25, free: 0 });
        let items = parse(&leaf.encode(&header()));
        assert_eq!(items.last().unwrap().1, 5 * ITEM_SIZE, "the last item's data starts right after the item array");
    }
}

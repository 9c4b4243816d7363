//! Naming the upstream fix a kernel lacks, when the evidence has the shape of
//! a catalogued bug on the reclaim path. Pure.

/// A real bug that shipped on this path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KnownBug {
    /// 7e2718099438 made btrfs_reclaim_bgs_work() put a group that failed
    /// to relocate straight back on fs_info->reclaim_bgs: the worker never
    /// leaves its loop while the relocation keeps failing.
    ReclaimLoop,
    /// 4eb4e85c4f81's retry list linked a failed group without checking
    /// bg_list: a group emptied during its failed attempt ends up on two
    /// lists, and btrfs_delete_unused_bgs() drops a reference it never had.
    RetryListCorruption,
}

impl KnownBug {
    /// The one line of the verdict and the JSON's `known_bug`.
    pub fn line(self) -> &'static str {
        match self {
            KnownBug::ReclaimLoop => {
                "endless reclaim loop (7e2718099438 \"btrfs: reinsert BGs failed to reclaim\"): fixed upstream by 4eb4e85c4f81; this kernel lacks it"
            }
            KnownBug::RetryListCorruption => {
                "retry-list corruption (4eb4e85c4f81): fixed upstream by 48f091fd50b2; this kernel lacks it"
            }
        }
    }
}

pub use crate::kernel::kmsg::events::is_stall;

/// Which catalogued bug the evidence shows, if any. `trouble_context`: the
/// first trouble line and its stack frames; `relocation_failed`: a reclaim
/// relocation failed during the run; `looped`: the worker kept relocating
/// one failing group (kmsg::reclaim_loop).
///
/// Trouble comes first: on a kernel with the retry-list bug, the worker
/// loops on the corrupted list after the underflow, and that loop is the
/// corruption's consequence, never 7e2718099438's.
pub fn name(trouble_context: &[String], relocation_failed: bool, looped: bool) -> Option<KnownBug> {
    match trouble_context.first() {
        Some(first) if !is_stall(first) => {
            let has = |f: &str| trouble_context.iter().any(|l| l.contains(f));
            (relocation_failed && has("btrfs_delete_unused_bgs") && has("btrfs_reclaim_bgs_work"))
                .then_some(KnownBug::RetryListCorruption)
        }
        _ if looped => Some(KnownBug::ReclaimLoop),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{records_from_console, track};

    fn context(fixture: &str) -> Vec<String> {
        track(&records_from_console(fixture)).trouble_context
    }

    #[test]
    fn the_retry_list_underflow_names_48f091fd50b2() {
        // 6.12.117 with 48f091fd50b2 undone: refcount_t underflow in
        // btrfs_put_block_group <- btrfs_delete_unused_bgs <- btrfs_reclaim_bgs_work.
        let c = context(include_str!("../../tests/fixtures/real-retry-bug-hunt.txt"));
        assert_eq!(name(&c, true, false), Some(KnownBug::RetryListCorruption));
        assert!(KnownBug::RetryListCorruption.line().contains("48f091fd50b2"));
        // A loop seen after it is its consequence.
        assert_eq!(name(&c, true, true), Some(KnownBug::RetryListCorruption));
        assert_eq!(name(&c, false, false), None, "no failed relocation: not this bug");
    }

    #[test]
    fn trouble_elsewhere_names_nothing() {
        // The use-after-free at unmount (close_ctree) of a made-up extra put.
        let c = context(include_str!("../../tests/fixtures/kasan-refcount-oops-at-unmount.txt"));
        assert!(!c.is_empty());
        assert_eq!(name(&c, true, false), None);
        assert_eq!(name(&c, true, true), None, "trouble first, even with a loop");
    }

    #[test]
    fn the_loop_alone_or_with_a_stall_names_4eb4e85c4f81() {
        assert_eq!(name(&[], true, true), Some(KnownBug::ReclaimLoop));
        assert!(KnownBug::ReclaimLoop.line().contains("fixed upstream by 4eb4e85c4f81; this kernel lacks it"));
        let stall = context(include_str!("../../tests/fixtures/real-retry-bug-rcu-stall.txt"));
        assert!(is_stall(&stall[0]), "{:?}", stall.first());
        assert_eq!(name(&stall, true, true), Some(KnownBug::ReclaimLoop));
        assert_eq!(name(&stall, true, false), None, "a stall names no bug by itself");
        assert_eq!(name(&[], true, false), None);
    }
}

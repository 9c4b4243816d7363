//! The Tracker's bookkeeping of who works on which block group, sized for
//! hostile logs as well as real ones: every lookup is a map access and the
//! put windows left open are bounded, so a log is judged in time linear in
//! its records (`make bench BENCH_ONLY=parsers` shows the ratios).

use std::collections::{BTreeSet, HashMap, VecDeque};

/// The block group each pid is working on, and the reverse: the pids on
/// each block group (an `error relocating chunk` line names only the group).
#[derive(Debug, Default)]
pub struct PidGroups {
    by_pid: HashMap<i32, u64>,
    by_bg: HashMap<u64, BTreeSet<i32>>,
}

impl PidGroups {
    pub fn get(&self, pid: i32) -> Option<u64> {
        self.by_pid.get(&pid).copied()
    }

    pub fn set(&mut self, pid: i32, bg: u64) {
        if let Some(old) = self.by_pid.insert(pid, bg) {
            self.unlink(pid, old);
        }
        self.by_bg.entry(bg).or_default().insert(pid);
    }

    pub fn remove(&mut self, pid: i32) {
        if let Some(old) = self.by_pid.remove(&pid) {
            self.unlink(pid, old);
        }
    }

    fn unlink(&mut self, pid: i32, bg: u64) {
        if let Some(pids) = self.by_bg.get_mut(&bg) {
            pids.remove(&pid);
            if pids.is_empty() {
                self.by_bg.remove(&bg);
            }
        }
    }

    /// The lowest pid working on `bg` (the same answer for the same log,
    /// whatever order the pids came in).
    pub fn lowest_pid_on(&self, bg: u64) -> Option<i32> {
        self.by_bg.get(&bg)?.first().copied()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    Reloc,
    Reclaim,
}

/// How many put windows (`put bg` .. `put bg done`) are remembered open at
/// once. A task is inside at most one window of each kind (both lines come
/// from the task that puts), and only a few tasks put block groups at the
/// same time (the reclaim worker, a balance, a relocation): more open
/// windows mean their `done` lines were lost, or the log is not a kernel's.
/// The oldest is then forgotten, so a hostile log cannot make every new
/// window compare against all earlier ones.
pub const MAX_OPEN: usize = 64;

/// The put windows open now, oldest first.
#[derive(Debug, Default)]
pub struct OpenWindows {
    open: VecDeque<(u64, i32, Window)>,
}

impl OpenWindows {
    /// Opens a window of `kind` for `pid` on `bg`. Returns the pids whose
    /// window of the other kind is open on the same group: overlaps.
    pub fn open(&mut self, bg: u64, pid: i32, kind: Window) -> Vec<i32> {
        let others =
            self.open.iter().filter(|&&(b, p, k)| b == bg && p != pid && k != kind).map(|&(_, p, _)| p).collect();
        if self.open.len() == MAX_OPEN {
            self.open.pop_front();
        }
        self.open.push_back((bg, pid, kind));
        others
    }

    /// Closes `pid`'s latest window of `kind`; returns its block group.
    pub fn close(&mut self, pid: i32, kind: Window) -> Option<u64> {
        let at = self.open.iter().rposition(|&(_, p, k)| p == pid && k == kind)?;
        self.open.remove(at).map(|(bg, _, _)| bg)
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.open.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pid_groups_answer_both_ways() {
        let mut g = PidGroups::default();
        g.set(97, 100);
        g.set(12, 100);
        g.set(5, 200);
        assert_eq!((g.get(97), g.lowest_pid_on(100), g.lowest_pid_on(200)), (Some(100), Some(12), Some(5)));
        // 12 moves on: 97 is the one left on 100.
        g.set(12, 300);
        assert_eq!((g.lowest_pid_on(100), g.lowest_pid_on(300)), (Some(97), Some(12)));
        g.remove(97);
        g.remove(97);
        assert_eq!((g.get(97), g.lowest_pid_on(100)), (None, None));
        assert!(!g.by_bg.contains_key(&100), "an emptied group is forgotten");
        g.set(5, 200);
        assert_eq!(g.by_bg[&200].len(), 1);
    }

    #[test]
    fn windows_overlap_on_one_group_across_pids_and_kinds() {
        let mut w = OpenWindows::default();
        assert!(w.open(1, 10, Window::Reloc).is_empty());
        assert!(w.open(2, 11, Window::Reclaim).is_empty(), "another group");
        assert!(w.open(1, 10, Window::Reclaim).is_empty(), "the same pid");
        assert!(w.open(1, 12, Window::Reloc).contains(&10), "10's reclaim window is open on 1");
        assert_eq!(w.open(1, 13, Window::Reclaim), vec![10, 12]);
        assert_eq!(w.close(10, Window::Reloc), Some(1));
        assert_eq!(w.close(10, Window::Reloc), None);
        assert_eq!(w.open(1, 14, Window::Reclaim), vec![12]);
    }

    /// Windows opened and never closed: only the newest MAX_OPEN stay, so
    /// opening one costs at most MAX_OPEN comparisons (counted here as the
    /// overlaps it can report).
    #[test]
    fn windows_never_closed_are_bounded() {
        let mut w = OpenWindows::default();
        for pid in 0..10_000 {
            let kind = if pid % 2 == 0 { Window::Reloc } else { Window::Reclaim };
            let overlaps = w.open(7, pid, kind);
            assert!(overlaps.len() <= MAX_OPEN / 2, "{}", overlaps.len());
            assert!(w.len() <= MAX_OPEN);
        }
        assert_eq!(w.len(), MAX_OPEN);
        // The newest is still there to close; the oldest was forgotten.
        assert_eq!(w.close(9_999, Window::Reclaim), Some(7));
        assert_eq!(w.close(0, Window::Reloc), None);
    }
}

//! What the kernel log says about reclaim and relocation: classifies each
//! record's text and follows the block group that each pid is working on, so
//! the `put` lines (which carry no block group) can be attributed.

use std::collections::{HashMap, HashSet};

use crate::kernel::kmsg::groups::{OpenWindows, PidGroups, Window};
use crate::kernel::kmsg::Record;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Line {
    /// `BO: <pid> inject enospc... bg <start>` (instrumented kernel)
    Inject { pid: i32, bg: u64 },
    RelocPut { pid: i32 },
    RelocPutDone { pid: i32 },
    ReclaimPut { pid: i32 },
    ReclaimPutDone { pid: i32 },
    /// `BTRFS info (device X): reclaiming chunk <start> with ...` (6.12)
    ReclaimingChunk { bg: u64 },
    /// `BTRFS info (device X): relocating block group <start> flags ...`
    RelocatingBg { bg: u64 },
    /// `BTRFS error (device X): error relocating chunk <start>`
    RelocError { bg: u64 },
    /// A line that means the kernel itself is in trouble.
    Trouble,
    Other,
}

/// Lines that mean kernel trouble (the kernel's own bug reports: refcount, list and KASAN splats), and the
/// kernel's own "stopped making progress" reports: an RCU stall
/// (rcu_check_gp_kthread_starvation / print_other_cpu_stall: the reclaim
/// worker looping on a corrupted list) and the hung-task detector. Nothing of
/// ours times progress shorter than these: reclaim legitimately stalls
/// 0.4-26 s relocating a group.
pub fn is_trouble(text: &str) -> bool {
    let t = text.trim_start();
    if t.starts_with("INFO: task ") && t.contains(" blocked for more than ") {
        return true;
    }
    const CONTAINS: [&str; 11] = [
        "detected stalls on CPUs/tasks",
        "self-detected stall on CPU",
        "refcount_t: ",
        "kernel BUG at",
        "general protection fault",
        "list_add corruption",
        "list_del corruption",
        "Transaction aborted",
        "suspected memory leak",
        "Kernel panic",
        "UBSAN: ",
    ];
    const STARTS: [&str; 5] = ["BUG: ", "WARNING: ", "Oops", "unreferenced object ", "BTRFS critical"];
    STARTS.iter().any(|p| t.starts_with(p)) || CONTAINS.iter().any(|p| t.contains(p))
}

/// An RCU stall or hung-task report: the kernel stopped making progress,
/// which a bug causes and a slow machine (TCG, KASAN, a loaded host) can
/// too. It names no bug by itself.
pub fn is_stall(text: &str) -> bool {
    let t = text.trim_start();
    t.contains("self-detected stall on CPU")
        || t.contains("detected stalls on CPUs/tasks")
        || (t.starts_with("INFO: task ") && t.contains(" blocked for more than "))
}

fn bo_line(text: &str) -> Option<Line> {
    let rest = text.strip_prefix("BO: ")?;
    let (pid, what) = rest.split_once(' ')?;
    let pid: i32 = pid.parse().ok()?;
    Some(match what.trim_end() {
        "reloc put bg" => Line::RelocPut { pid },
        "reloc put bg done" => Line::RelocPutDone { pid },
        "reclaim loop put bg" => Line::ReclaimPut { pid },
        "reclaim loop put bg done" => Line::ReclaimPutDone { pid },
        w => {
            let bg = w.strip_prefix("inject enospc")?.rsplit_once("bg ")?.1.trim().parse().ok()?;
            Line::Inject { pid, bg }
        }
    })
}

/// The number right after `marker` in `text`.
pub(super) fn number_after(text: &str, marker: &str) -> Option<u64> {
    let at = text.find(marker)? + marker.len();
    let digits: String = text[at..].chars().take_while(|c| c.is_ascii_digit()).collect();
    digits.parse().ok()
}

pub fn classify(text: &str) -> Line {
    if let Some(line) = bo_line(text) {
        return line;
    }
    if text.starts_with("BTRFS") {
        if let Some(bg) = number_after(text, "error relocating chunk ") {
            return Line::RelocError { bg };
        }
        if let Some(bg) = number_after(text, "reclaiming chunk ") {
            return Line::ReclaimingChunk { bg };
        }
        if let Some(bg) = number_after(text, "relocating block group ") {
            return Line::RelocatingBg { bg };
        }
    }
    if is_trouble(text) {
        return Line::Trouble;
    }
    Line::Other
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Inject,
    RelocPut,
    RelocPutDone,
    ReclaimPut,
    ReclaimPutDone,
    RelocError,
}

impl EventKind {
    pub fn name(self) -> &'static str {
        match self {
            EventKind::Inject => "inject",
            EventKind::RelocPut => "reloc_put",
            EventKind::RelocPutDone => "reloc_put_done",
            EventKind::ReclaimPut => "reclaim_put",
            EventKind::ReclaimPutDone => "reclaim_put_done",
            EventKind::RelocError => "reloc_error",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub pid: Option<i32>,
    pub kind: EventKind,
    pub bg: Option<u64>,
    /// The log line, kept for the evidence.
    pub text: String,
}

/// Two put windows (put..done) on one block group from different pids that
/// interleave: the bug report's criterion for a suspected double put.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overlap {
    pub bg: u64,
    pub reloc_pid: i32,
    pub reclaim_pid: i32,
}

/// How many log lines follow the first trouble line in the evidence.
const TROUBLE_CONTEXT: usize = 10;
/// Relocation starts kept: only the first few matter.
const MAX_STARTS: usize = 64;

/// Distinct overlaps kept: the first one already makes the verdict
/// SUSPECTED; on a hostile log (thousands of pids putting one group) the
/// rest would only grow the list with each record.
pub const MAX_OVERLAPS: usize = 64;

/// Accumulates what the log said during a run.
#[derive(Debug, Default)]
pub struct Tracker {
    pub events: Vec<Event>,
    pub injections: u64,
    pub reloc_puts: u64,
    pub reclaim_puts: u64,
    pub reloc_errors: u64,
    /// `reclaiming chunk` lines: the worker's attempts, where no
    /// reclaim_count exists (before 6.11). Rate-limited by the kernel
    /// (btrfs_printk: 100 per 5 s), so a lower bound.
    pub reclaiming_chunks: u64,
    /// The first groups (up to MAX_STARTS) that printed `relocating block
    /// group`: their relocation got past its setup, where the instrumented
    /// kernel injects.
    pub relocation_starts: Vec<u64>,
    /// Every line recognised as kernel trouble.
    pub trouble: Vec<String>,
    /// The first trouble line and the lines right after it (stack frames).
    pub trouble_context: Vec<String>,
    /// The first MAX_OVERLAPS distinct overlaps.
    pub overlaps: Vec<Overlap>,
    /// Relocation errors for block groups that never printed `relocating
    /// block group`: relocation failed while setting up (read-only flip,
    /// v1 cache truncation, reloc inode), before moving any extent.
    pub errors_before_move: u64,
    /// Block groups that printed `relocating block group` and no error yet,
    /// with how many times (a map: a long run relocates thousands).
    relocating: HashMap<u64, u32>,
    /// Records missing between the first and the last one fed: their
    /// sequence numbers were skipped (the kernel overwrote them before they
    /// were read). They may have held the evidence.
    pub lost: u64,
    last_seq: Option<u64>,
    /// Only BTRFS lines about this device count (other filesystems on the
    /// machine may be relocating too).
    device: Option<String>,
    current_bg: PidGroups,
    pending_chunk: Option<u64>,
    open: OpenWindows,
}

/// A stack frame line of a splat: ` close_ctree+0x5ad/0x8c9` (not `? x+0x..`,
/// which the unwinder only guessed).
pub fn is_frame(text: &str) -> bool {
    let t = text.trim_start();
    text.starts_with(' ') && !t.starts_with('?') && t.contains("+0x") && !t.contains(':')
}

/// `BTRFS info (device loop0): ...` → "loop0".
pub fn btrfs_device(text: &str) -> Option<&str> {
    let rest = text.strip_prefix("BTRFS")?;
    let at = rest.find("(device ")? + "(device ".len();
    let end = rest[at..].find(')')?;
    Some(&rest[at..at + end])
}

impl Tracker {
    /// Ignore BTRFS lines that name another device from now on.
    pub fn only_device(&mut self, name: &str) {
        self.device = Some(name.to_string());
    }

    pub fn feed(&mut self, rec: &Record) {
        self.lost += crate::kernel::kmsg::seq_gap(self.last_seq, rec.seq);
        self.last_seq = Some(rec.seq);
        let text = rec.text.as_str();
        if let (Some(ours), Some(theirs)) = (self.device.as_deref(), btrfs_device(text)) {
            if ours != theirs {
                return;
            }
        }
        if !self.trouble_context.is_empty() && self.trouble_context.len() < TROUBLE_CONTEXT && is_frame(text) {
            self.trouble_context.push(text.to_string());
        }
        self.record(classify(text), text);
    }

    /// Counts one classified line of ours and keeps its event.
    fn record(&mut self, line: Line, text: &str) {
        match line {
            Line::Inject { pid, bg } => self.injected(pid, bg, text),
            Line::ReclaimingChunk { bg } => {
                self.reclaiming_chunks += 1;
                self.pending_chunk = Some(bg);
            }
            Line::RelocatingBg { bg } => self.relocating_bg(bg),
            Line::RelocError { bg } => self.reloc_error(bg, text),
            Line::RelocPut { pid } => {
                self.reloc_puts += 1;
                let bg = self.bg_of(pid);
                self.open_window(bg, pid, Window::Reloc);
                self.push(Some(pid), EventKind::RelocPut, bg, text);
            }
            Line::ReclaimPut { pid } => {
                self.reclaim_puts += 1;
                let bg = self.current_bg.get(pid);
                self.open_window(bg, pid, Window::Reclaim);
                self.push(Some(pid), EventKind::ReclaimPut, bg, text);
            }
            Line::RelocPutDone { pid } => {
                let bg = self.open.close(pid, Window::Reloc);
                self.push(Some(pid), EventKind::RelocPutDone, bg, text);
            }
            Line::ReclaimPutDone { pid } => {
                let bg = self.open.close(pid, Window::Reclaim);
                // The worker's loop iteration is over: its next put belongs
                // to another block group.
                self.current_bg.remove(pid);
                self.push(Some(pid), EventKind::ReclaimPutDone, bg, text);
            }
            Line::Trouble => {
                if self.trouble.is_empty() {
                    self.trouble_context.push(text.to_string());
                }
                self.trouble.push(text.to_string());
            }
            Line::Other => {}
        }
    }

    fn injected(&mut self, pid: i32, bg: u64, text: &str) {
        self.injections += 1;
        self.current_bg.set(pid, bg);
        if self.pending_chunk == Some(bg) {
            self.pending_chunk = None;
        }
        self.push(Some(pid), EventKind::Inject, Some(bg), text);
    }

    fn relocating_bg(&mut self, bg: u64) {
        if self.relocation_starts.len() < MAX_STARTS && !self.relocation_starts.contains(&bg) {
            self.relocation_starts.push(bg);
        }
        self.pending_chunk = Some(bg);
        *self.relocating.entry(bg).or_insert(0) += 1;
    }

    /// A relocation's error: it ends one relocation of `bg` under way, or,
    /// with none, came before any extent moved.
    fn reloc_error(&mut self, bg: u64, text: &str) {
        self.reloc_errors += 1;
        match self.relocating.get_mut(&bg) {
            Some(1) => {
                self.relocating.remove(&bg);
            }
            Some(n) => *n -= 1,
            None => self.errors_before_move += 1,
        }
        let pid = self.current_bg.lowest_pid_on(bg);
        self.push(pid, EventKind::RelocError, Some(bg), text);
    }

    fn bg_of(&mut self, pid: i32) -> Option<u64> {
        if let Some(bg) = self.current_bg.get(pid) {
            return Some(bg);
        }
        let bg = self.pending_chunk.take()?;
        self.current_bg.set(pid, bg);
        Some(bg)
    }

    fn push(&mut self, pid: Option<i32>, kind: EventKind, bg: Option<u64>, text: &str) {
        self.events.push(Event { pid, kind, bg, text: text.to_string() });
    }

    fn open_window(&mut self, bg: Option<u64>, pid: i32, kind: Window) {
        let Some(bg) = bg else { return };
        for opid in self.open.open(bg, pid, kind) {
            let (reloc_pid, reclaim_pid) = if kind == Window::Reloc { (pid, opid) } else { (opid, pid) };
            let overlap = Overlap { bg, reloc_pid, reclaim_pid };
            if self.overlaps.len() < MAX_OVERLAPS && !self.overlaps.contains(&overlap) {
                self.overlaps.push(overlap);
            }
        }
    }

    /// The trouble line to quote first: what went wrong (refcount_t, KASAN,
    /// Oops) rather than where (`WARNING: CPU: N PID: N at file:line`).
    /// A stall comes after anything that names a bug.
    pub fn headline(&self) -> Option<&str> {
        let what = |t: &&String| !t.starts_with("WARNING: ");
        self.trouble
            .iter()
            .find(|t| what(t) && !is_stall(t))
            .or(self.trouble.iter().find(what))
            .or(self.trouble.first())
            .map(String::as_str)
    }

    /// Every trouble line is a stall report (none names a bug).
    pub fn only_stalls(&self) -> bool {
        !self.trouble.is_empty() && self.trouble.iter().all(|t| is_stall(t))
    }

    /// Block groups whose relocation failed (an error line or an injection)
    /// in the events from `from` on, each counted once.
    pub fn failed_groups_since(&self, from: usize) -> u64 {
        let mut seen: Vec<u64> = self
            .events
            .get(from..)
            .unwrap_or(&[])
            .iter()
            .filter(|e| matches!(e.kind, EventKind::RelocError | EventKind::Inject))
            .filter_map(|e| e.bg)
            .collect();
        seen.sort_unstable();
        seen.dedup();
        seen.len() as u64
    }

    /// Block groups that were hit by an injection, in order, without repeats.
    pub fn injected_groups(&self) -> Vec<u64> {
        let mut seen = HashSet::new();
        self.events
            .iter()
            .filter_map(|e| (e.kind == EventKind::Inject).then_some(e.bg).flatten())
            .filter(|bg| seen.insert(*bg))
            .collect()
    }

    /// The log lines of the first injected block group's sequence, for the
    /// evidence of a mail-sized verdict.
    pub fn first_sequence(&self) -> Vec<String> {
        let first = self.events.iter().find_map(|e| (e.kind == EventKind::Inject).then_some(e.bg).flatten());
        let Some(bg) = first else { return Vec::new() };
        self.events.iter().filter(|e| e.bg == Some(bg)).map(|e| e.text.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{records_from_console, track};

    fn rec(seq: u64, text: &str) -> Record {
        Record { level: 6, seq, usec: seq, text: text.to_string() }
    }

    #[test]
    fn a_relocation_error_ends_one_relocation_or_counts_as_before_any_move() {
        let mut t = Tracker::default();
        t.record(Line::RelocatingBg { bg: 7 }, "");
        t.record(Line::RelocatingBg { bg: 7 }, "");
        t.record(Line::RelocError { bg: 7 }, "e1");
        t.record(Line::RelocError { bg: 7 }, "e2");
        t.record(Line::RelocError { bg: 7 }, "e3");
        assert_eq!((t.reloc_errors, t.errors_before_move, t.relocation_starts.clone()), (3, 1, vec![7]));
        t.record(Line::Inject { pid: 5, bg: 7 }, "i");
        assert_eq!((t.injections, t.pending_chunk, t.events.len()), (1, None, 4));
    }

    #[test]
    fn classifies_the_bug_reports_lines() {
        assert_eq!(classify("BO: 1234 inject enospc... bg 1234567890"), Line::Inject { pid: 1234, bg: 1234567890 });
        assert_eq!(classify("BO: 1234 reloc put bg"), Line::RelocPut { pid: 1234 });
        assert_eq!(classify("BO: 1234 reloc put bg done"), Line::RelocPutDone { pid: 1234 });
        assert_eq!(classify("BO: 5678 reclaim loop put bg"), Line::ReclaimPut { pid: 5678 });
        assert_eq!(classify("BO: 5678 reclaim loop put bg done"), Line::ReclaimPutDone { pid: 5678 });
        assert_eq!(classify("BO: x reloc put bg"), Line::Other);
    }

    #[test]
    fn classifies_stock_btrfs_lines() {
        assert_eq!(
            classify("BTRFS info (device vda): reclaiming chunk 634388480 with 15% used 0% reserved 0% unusable"),
            Line::ReclaimingChunk { bg: 634388480 }
        );
        assert_eq!(
            classify("BTRFS info (device loop0): relocating block group 13631488 flags data"),
            Line::RelocatingBg { bg: 13631488 }
        );
        assert_eq!(classify("BTRFS error (device vda): error relocating chunk 634388480"), Line::RelocError { bg: 634388480 });
        assert_eq!(classify("BTRFS info (device loop0): found 7 extents, stage: move data extents"), Line::Other);
    }

    #[test]
    fn recognises_kernel_trouble_and_not_btrfs_chatter() {
        for t in [
            "refcount_t: underflow; use-after-free.",
            "refcount_t: addition on 0; use-after-free.",
            "BUG: KASAN: slab-use-after-free in block_group_cache_tree_search+0x8e/0x16f",
            "WARNING: CPU: 1 PID: 719 at lib/refcount.c:25 refcount_warn_saturate+0xba/0x11f",
            "kernel BUG at fs/btrfs/block-group.c:123!",
            "BUG: unable to handle page fault for address: ffff",
            "Oops: general protection fault, probably for non-canonical address 0xdffffc0000000003: 0000 [#1] SMP KASAN",
            "list_del corruption, ffff888009611900->next is LIST_POISON1 (dead000000000100)",
            "BTRFS: Transaction aborted (error -28)",
            "kmemleak: 16 new suspected memory leaks (see /sys/kernel/debug/kmemleak)",
            "list_add corruption. prev->next should be next (ffff8880045a8c98), but was ffff888004f1b8d8. (prev=ffff888004f1b8d8).",
            "rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:",
            "rcu: INFO: rcu_sched self-detected stall on CPU",
            "INFO: task kworker/u8:2:97 blocked for more than 122 seconds.",
        ] {
            assert!(is_trouble(t), "{t}");
        }
        for t in [
            "BTRFS warning (device loop0): space cache v1 is being deprecated and will be removed in a future release, please use -o space_cache=v2",
            "BTRFS info (device loop0): relocating block group 13631488 flags data",
            "BO: 97 reclaim loop put bg",
            "loop0: detected capacity change from 0 to 6291456",
            "rcu: Hierarchical RCU implementation.",
            "INFO: task kworker/u8:2:97 finished",
        ] {
            assert!(!is_trouble(t), "{t}");
        }
    }

    #[test]
    fn instrumented_fixture_attributes_every_put_to_its_group() {
        let t = track(&records_from_console(include_str!("../../../tests/fixtures/instrumented-reclaim.txt")));
        assert_eq!(t.injections, 8);
        assert_eq!(t.reloc_puts, 8);
        assert_eq!(t.reclaim_puts, 10, "8 failed groups + 2 skipped ones");
        assert_eq!(t.reloc_errors, 8);
        assert_eq!(t.errors_before_move, 8, "the injection comes before 'relocating block group'");
        assert!(t.overlaps.is_empty());
        assert!(t.trouble.is_empty());
        assert_eq!(t.injected_groups().len(), 8);
        for bg in t.injected_groups() {
            let kinds: Vec<(EventKind, Option<i32>)> =
                t.events.iter().filter(|e| e.bg == Some(bg)).map(|e| (e.kind, e.pid)).collect();
            assert_eq!(
                kinds,
                vec![
                    (EventKind::Inject, Some(97)),
                    (EventKind::RelocPut, Some(97)),
                    (EventKind::RelocPutDone, Some(97)),
                    (EventKind::RelocError, Some(97)),
                    (EventKind::ReclaimPut, Some(97)),
                    (EventKind::ReclaimPutDone, Some(97)),
                ],
                "bg {bg}"
            );
        }
        // The two skipped groups' loop puts (no reclaiming line) have no bg.
        assert_eq!(t.events.iter().filter(|e| e.bg.is_none()).count(), 4);
        assert_eq!(t.first_sequence()[0], "BO: 97 inject enospc... bg 634388480");
    }

    #[test]
    fn skipped_sequence_numbers_are_lost_records() {
        let mut t = Tracker::default();
        t.only_device("loop1");
        for seq in [7, 8, 12, 13] {
            t.feed(&rec(seq, "BTRFS info (device loop0): another filesystem's line"));
        }
        assert_eq!(t.lost, 3, "9, 10 and 11 are missing, whichever device they were about");
        t.feed(&rec(13, "a repeat"));
        assert_eq!(t.lost, 3);
    }

    #[test]
    fn failed_groups_count_each_group_once_from_a_point_on() {
        let mut t = Tracker::default();
        t.feed(&rec(1, "BTRFS error (device loop0): error relocating chunk 100"));
        let from = t.events.len();
        for (seq, bg) in [(2, 200), (3, 300), (4, 200), (5, 100)] {
            t.feed(&rec(seq, &format!("BTRFS error (device loop0): error relocating chunk {bg}")));
        }
        t.feed(&rec(6, "BTRFS info (device loop0): relocating block group 400 flags data"));
        assert_eq!(t.failed_groups_since(0), 3);
        assert_eq!(t.failed_groups_since(from), 3, "100 failed again after the point");
        assert_eq!(t.failed_groups_since(from + 2), 2);
        assert_eq!(t.failed_groups_since(usize::MAX), 0);
    }

    #[test]
    fn headline_prefers_what_over_where() {
        let mut t = Tracker::default();
        t.feed(&rec(1, "WARNING: CPU: 1 PID: 75 at fs/btrfs/block-group.c:179 btrfs_put_block_group+0x4d/0x84"));
        t.feed(&rec(2, " btrfs_relocate_block_group+0x1/0x2"));
        t.feed(&rec(3, "refcount_t: underflow; use-after-free."));
        assert_eq!(t.headline(), Some("refcount_t: underflow; use-after-free."));
        assert_eq!(t.trouble_context.len(), 2);
    }

    #[test]
    fn lines_about_other_devices_are_ignored() {
        let mut t = Tracker::default();
        t.only_device("loop1");
        t.feed(&rec(1, "BTRFS error (device loop0): error relocating chunk 5"));
        t.feed(&rec(2, "BTRFS info (device loop0): relocating block group 5 flags data"));
        assert_eq!(t.reloc_errors, 0);
        assert!(t.relocating.is_empty());
        t.feed(&rec(3, "BTRFS error (device loop1): error relocating chunk 6"));
        assert_eq!(t.reloc_errors, 1);
        t.feed(&rec(4, "BTRFS info (device loop1): relocating block group 7 flags data"));
        t.feed(&rec(5, "BTRFS error (device loop1): error relocating chunk 7"));
        assert_eq!((t.reloc_errors, t.errors_before_move), (2, 1), "7 failed while moving extents");
        assert_eq!(btrfs_device("BTRFS: Transaction aborted (error -28)"), None);
    }

    /// One record per line, numbered from 0, fed to a fresh tracker.
    fn track_lines(lines: &[&str]) -> Tracker {
        let recs: Vec<Record> = lines.iter().enumerate().map(|(i, l)| rec(i as u64, l)).collect();
        track(&recs)
    }

    #[test]
    fn interleaved_puts_from_two_pids_on_one_group_overlap() {
        // The bug report's "success" example.
        let lines = [
            "BO: 1234 inject enospc... bg 1234567890",
            "BO: 5678 inject enospc... bg 1234567890",
            "BO: 1234 reloc put bg",
            "BO: 5678 reclaim loop put bg",
            "BO: 1234 reloc put bg done",
            "BO: 5678 reclaim loop put bg done",
        ];
        let t = track_lines(&lines);
        assert_eq!(t.overlaps, vec![Overlap { bg: 1234567890, reloc_pid: 1234, reclaim_pid: 5678 }]);
    }

    #[test]
    fn sequential_puts_from_two_pids_do_not_overlap() {
        let lines = [
            "BO: 1234 inject enospc... bg 1",
            "BO: 1234 reloc put bg",
            "BO: 1234 reloc put bg done",
            "BO: 5678 inject enospc... bg 1",
            "BO: 5678 reloc put bg",
            "BO: 5678 reloc put bg done",
            "BO: 5678 reclaim loop put bg",
            "BO: 5678 reclaim loop put bg done",
        ];
        assert!(track_lines(&lines).overlaps.is_empty());
    }

    /// A hostile log: 50,000 pids each open a put window on one group (reloc
    /// and reclaim by turns) and never close it. Every window overlaps all
    /// earlier ones of the other kind; the tracker keeps MAX_OPEN windows and
    /// MAX_OVERLAPS overlaps, so each record costs at most MAX_OPEN
    /// comparisons instead of one per record before it.
    #[test]
    fn windows_never_closed_keep_the_tracker_bounded() {
        let mut t = Tracker::default();
        for pid in 0..50_000 {
            let put = if pid % 2 == 0 { "reloc put bg" } else { "reclaim loop put bg" };
            t.feed(&rec(2 * pid as u64, &format!("BO: {pid} inject enospc... bg 4096")));
            t.feed(&rec(2 * pid as u64 + 1, &format!("BO: {pid} {put}")));
            assert!(t.open.len() <= crate::kernel::kmsg::groups::MAX_OPEN);
            assert!(t.overlaps.len() <= MAX_OVERLAPS);
        }
        assert_eq!(t.open.len(), crate::kernel::kmsg::groups::MAX_OPEN);
        assert_eq!(t.overlaps.len(), MAX_OVERLAPS);
        assert_eq!(t.overlaps[0], Overlap { bg: 4096, reloc_pid: 0, reclaim_pid: 1 }, "the first overlap is kept");
        assert_eq!((t.injections, t.reloc_puts, t.reclaim_puts), (50_000, 25_000, 25_000), "counts stay exact");
    }

    /// Relocations that start and never end are kept per group with a
    /// count: an error consumes one start, and one without a start was
    /// before any extent moved.
    #[test]
    fn relocations_in_flight_are_counted_per_group() {
        let lines = [
            "BTRFS info (device loop0): relocating block group 100 flags data",
            "BTRFS info (device loop0): relocating block group 100 flags data",
            "BTRFS info (device loop0): relocating block group 200 flags data",
            "BTRFS error (device loop0): error relocating chunk 100",
            "BTRFS error (device loop0): error relocating chunk 100",
            "BTRFS error (device loop0): error relocating chunk 100",
        ];
        let t = track_lines(&lines);
        assert_eq!((t.reloc_errors, t.errors_before_move), (3, 1));
        assert_eq!(t.relocating.len(), 1, "only 200 is still in flight");
    }

    /// An error names only the group: it goes to the lowest pid working on
    /// it, among thousands of pids on other groups.
    #[test]
    fn a_relocation_error_finds_its_pid_among_many() {
        let mut recs: Vec<Record> =
            (1..=5000).map(|p| rec(p as u64, &format!("BO: {p} inject enospc... bg {}", p * 4096))).collect();
        recs.push(rec(6000, "BO: 4000 inject enospc... bg 8192"));
        recs.push(rec(6001, "BTRFS error (device loop0): error relocating chunk 8192"));
        recs.push(rec(6002, "BTRFS error (device loop0): error relocating chunk 20480000"));
        let t = track(&recs);
        let errors: Vec<Option<i32>> = t.events.iter().filter(|e| e.kind == EventKind::RelocError).map(|e| e.pid).collect();
        assert_eq!(errors, vec![Some(2), Some(5000)], "4000 moved to 8192 after 2: 2 is the lowest");
        assert_eq!(t.injected_groups().len(), 5000, "8192 counted once");
    }

    #[test]
    fn kasan_fixture_keeps_the_first_line_and_its_frames() {
        let t = track(&records_from_console(include_str!("../../../tests/fixtures/kasan-refcount-oops-at-unmount.txt")));
        assert_eq!(t.trouble[0], "BUG: KASAN: slab-use-after-free in block_group_cache_tree_search+0x8e/0x16f");
        assert!(t.trouble.iter().any(|l| l == "refcount_t: addition on 0; use-after-free."));
        assert!(t.trouble.iter().any(|l| l.starts_with("Oops: general protection fault")));
        assert!(t.trouble_context.iter().any(|l| l.contains("btrfs_put_block_group_cache")));
        assert!(t.trouble_context.iter().skip(1).all(|l| is_frame(l)), "{:?}", t.trouble_context);
        assert_eq!(t.headline(), Some(t.trouble[0].as_str()));
        assert!(t.trouble_context.len() <= TROUBLE_CONTEXT);
    }

    #[test]
    fn the_real_retry_list_bug_is_trouble_with_the_workers_frames() {
        let t = track(&records_from_console(include_str!("../../../tests/fixtures/real-retry-bug-hunt.txt")));
        assert_eq!(t.headline(), Some("refcount_t: underflow; use-after-free."));
        assert!(t.trouble.iter().any(|l| l.starts_with("Oops: ")), "{:?}", t.trouble);
        assert!(t.trouble_context.iter().any(|l| l.contains("btrfs_put_block_group")));
        assert!(t.trouble_context.iter().any(|l| l.contains("btrfs_delete_unused_bgs")));
        assert_eq!(t.reloc_errors, 2);
    }

    /// The same bug's later sign, real output: the worker loops on the
    /// corrupted list and the kernel's RCU stall detector says so (the
    /// underflow splat before it is trimmed from the fixture, so the stall
    /// alone must be evidence).
    #[test]
    fn a_real_rcu_stall_of_the_looping_worker_is_trouble() {
        let t = track(&records_from_console(include_str!("../../../tests/fixtures/real-retry-bug-rcu-stall.txt")));
        assert_eq!(t.headline(), Some("rcu: INFO: rcu_sched self-detected stall on CPU"));
        assert_eq!(t.trouble.iter().filter(|l| l.contains("self-detected stall")).count(), 2, "{:?}", t.trouble);
        assert!(t.trouble_context.iter().any(|l| l.contains("btrfs_delete_unused_bgs")), "{:?}", t.trouble_context);
        assert!(t.trouble_context.iter().any(|l| l.contains("btrfs_reclaim_bgs_work")));
        assert_eq!(t.reloc_errors, 1);
    }
}

#[cfg(test)]
mod fuzz {
    use super::*;
    use crate::testing::fuzz::{run, text};

    const DICTIONARY: [&[u8]; 16] = [
        b"BO: ",
        b"BO: 97 ",
        b"BO: 5678 ",
        b"inject enospc... bg ",
        b"reloc put bg",
        b"reclaim loop put bg",
        b" done",
        b"BTRFS info (device vda): ",
        b"BTRFS error (device loop1): ",
        b"(device ",
        b"error relocating chunk ",
        b"reclaiming chunk ",
        b"relocating block group ",
        b"refcount_t: ",
        b"WARNING: ",
        b" close_ctree+0x5ad/0x8c9",
    ];

    /// The fixtures' record texts, one per line (console time stamps and
    /// /dev/kmsg headers taken off).
    fn corpus() -> Vec<String> {
        let strip = |fixture: &str| -> String {
            fixture
                .lines()
                .filter(|l| !l.starts_with('#'))
                .map(|l| l.split_once("] ").or_else(|| l.split_once(';')).map_or(l, |(_, t)| t))
                .collect::<Vec<_>>()
                .join("\n")
        };
        vec![
            strip(include_str!("../../../tests/fixtures/instrumented-reclaim.txt")),
            strip(include_str!("../../../tests/fixtures/kasan-refcount-oops-at-unmount.txt")),
            strip(include_str!("../../../tests/fixtures/host-6.18-kmsg-records.txt")),
        ]
    }

    fn check_line(line: &str) -> std::mem::Discriminant<Line> {
        // Numbers may come with a sign or leading zeros ("BO: -007 ..."):
        // the digits of their value are in the line all the same.
        let has = |n: String| line.contains(n.trim_start_matches('-'));
        match classify(line) {
            Line::Inject { pid, bg } => assert!(line.starts_with("BO: ") && has(pid.to_string()) && has(bg.to_string())),
            Line::RelocPut { pid } | Line::RelocPutDone { pid } | Line::ReclaimPut { pid } | Line::ReclaimPutDone { pid } => {
                assert!(line.starts_with("BO: ") && has(pid.to_string()))
            }
            Line::ReclaimingChunk { bg } | Line::RelocatingBg { bg } | Line::RelocError { bg } => {
                assert!(line.starts_with("BTRFS") && has(bg.to_string()))
            }
            Line::Trouble => assert!(is_trouble(line)),
            Line::Other => {}
        }
        if let Some(dev) = btrfs_device(line) {
            assert!(line.contains(&format!("(device {dev})")));
        }
        let _ = is_frame(line);
        std::mem::discriminant(&classify(line))
    }

    /// A few lines of (mutated) kernel log: each line is classified, then
    /// all are fed as records to a fresh tracker, as a run would.
    #[test]
    fn classifier_and_tracker_never_panic() {
        let corpus = corpus();
        let fixtures: Vec<&str> = corpus.iter().map(String::as_str).collect();
        // The lines, whether only vda's BTRFS lines count, and how many
        // records the reader missed between two of them.
        let make = |rng: &mut fastrand::Rng| (text(rng, &fixtures, 12, &DICTIONARY), rng.bool(), rng.u64(..3));
        let mut kinds = std::collections::HashSet::new();
        run("events::classify + Tracker", 0x6576656e7473, make, |(input, only_vda, gap): &(String, bool, u64)| {
            let mut t = Tracker::default();
            if *only_vda {
                t.only_device("vda");
            }
            let mut lines = 0;
            for (i, line) in input.split('\n').enumerate() {
                kinds.insert(check_line(line));
                t.feed(&Record { level: 6, seq: i as u64 * (gap + 1), usec: i as u64, text: line.to_string() });
                lines += 1;
            }
            assert_eq!(t.lost, (lines - 1) * gap);
            let count = |k: EventKind| t.events.iter().filter(|e| e.kind == k).count() as u64;
            assert!(t.events.len() as u64 <= lines);
            assert_eq!(t.injections, count(EventKind::Inject));
            assert_eq!(t.reloc_puts, count(EventKind::RelocPut));
            assert_eq!(t.reclaim_puts, count(EventKind::ReclaimPut));
            assert_eq!(t.reloc_errors, count(EventKind::RelocError));
            assert!(t.errors_before_move <= t.reloc_errors);
            assert!(t.trouble_context.len() <= TROUBLE_CONTEXT);
            assert_eq!(t.headline().is_some(), !t.trouble.is_empty());
            assert!(t.overlaps.iter().all(|o| o.reloc_pid != o.reclaim_pid));
            assert_eq!(t.first_sequence().is_empty(), t.injected_groups().is_empty());
        });
        // Every kind of line came up, or the inputs missed some of the
        // classifier's branches.
        assert_eq!(kinds.len(), 10, "{kinds:?}");
    }
}

//! The endless reclaim loop (7e2718099438, fixed by 4eb4e85c4f81): after a
//! failed relocation, btrfs_reclaim_bgs_work() did `if (ret)
//! btrfs_mark_bg_to_reclaim(bg);` at `next:`, so the group went straight
//! back on fs_info->reclaim_bgs and the worker's `while
//! (!list_empty(&fs_info->reclaim_bgs))` never ended while the relocation
//! kept failing.
//!
//! What tells it from a fixed kernel, in tracefs: btrfs_mark_bg_to_reclaim()
//! emits `btrfs_add_reclaim_block_group`, and on the loop kernel the reclaim
//! worker itself emits it for the group it has just failed. A fixed kernel
//! puts a failed group on a local retry list (untraced) and retries it once
//! per cleaner run, so a count of failures is no evidence (a fixed 6.12 hunt
//! round had 147): only the worker re-adding the group it failed is. With a
//! swapfile in the group, inc_block_group_ro() fails before any `reclaiming
//! chunk` line, and the re-add is all there is.
//!
//! Pure: fed the text of the tracing buffer.

use std::collections::HashMap;

use super::events::number_after;

/// Re-adds of one group by the worker that failed it before it counts as
/// looping: a single one could be chance (the group re-crossing the
/// threshold in the worker's own commit); the loop kernel makes hundreds.
pub const MIN_READDS: u64 = 3;

/// One trace line that matters to the loop.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Ev {
    pid: i32,
    /// The task is a kworker (the reclaim worker runs in one).
    kworker: bool,
    secs: f64,
    what: What,
    bg: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum What {
    /// `btrfs_reclaim_block_group`: the worker starts relocating `bg`.
    Attempt,
    /// `error relocating chunk <bg>` (printk:console).
    Failed,
    /// `btrfs_add_reclaim_block_group`: `bg` went onto reclaim_bgs.
    Added,
}

/// `  kworker/u4:1-24  [001] dN...  4.458119: console: BTRFS error (device vda): error relocating chunk 969932800`
fn parse(line: &str, fsid: &str) -> Option<Ev> {
    let (head, rest) = line.split_once("] ")?;
    let task = head.split(" [").next()?.trim();
    let (comm, pid) = task.rsplit_once('-')?;
    let pid = pid.parse().ok()?;
    // After the flags: "<seconds>: <event>: <text>".
    let rest = rest.trim_start();
    let rest = rest.split_once(' ').map(|(_, r)| r.trim_start()).unwrap_or(rest);
    let (secs, rest) = rest.split_once(": ")?;
    let secs: f64 = secs.trim().parse().ok()?;
    let (event, text) = rest.split_once(": ")?;
    let (what, bg) = match event {
        "console" => (What::Failed, number_after(text, "error relocating chunk ")?),
        "btrfs_reclaim_block_group" if text.starts_with(fsid) => (What::Attempt, number_after(text, "bytenr=")?),
        "btrfs_add_reclaim_block_group" if text.starts_with(fsid) => (What::Added, number_after(text, "bytenr=")?),
        _ => return None,
    };
    Some(Ev { pid, kworker: comm.starts_with("kworker/"), secs, what, bg })
}

/// What showed the loop, for the verdict.
#[derive(Debug, Clone, PartialEq)]
pub struct Loop {
    /// The looping block group (its start).
    pub bg: u64,
    /// The worker's task id (None: seen without tracefs).
    pub pid: Option<i32>,
    /// Failed attempts of `bg` seen (error lines; with none, the re-adds).
    pub failed_attempts: u64,
    /// Times the worker put `bg` back on reclaim_bgs right after failing it.
    pub readds: u64,
    /// From the first failed attempt to the last re-add in the trace.
    pub seconds: f64,
    /// Trace time of the first failed attempt.
    pub first_secs: f64,
    /// The group's first trace lines (up to `EVIDENCE_LINES`): the cycles.
    pub lines: Vec<String>,
    /// No attempt and no error line for the group, only re-adds:
    /// inc_block_group_ro() refused it (an active swapfile: ETXTBSY).
    pub refused: bool,
}

/// Trace lines kept as the loop's evidence: three cycles of attempt,
/// error, re-add.
pub const EVIDENCE_LINES: usize = 9;

impl Loop {
    /// One line: which group, how often, how fast, what showed it.
    pub fn describe(&self) -> String {
        match self.pid {
            Some(pid) if self.refused => format!(
                "the reclaim worker (pid {pid}) kept putting block group {} back on reclaim_bgs within one run: {} re-adds by the worker itself in the trace, and no relocation attempt (inc_block_group_ro() refused it each time; tracefs btrfs_add_reclaim_block_group)",
                self.bg, self.readds
            ),
            Some(pid) => format!(
                "the reclaim worker (pid {pid}) kept relocating block group {} within one run: {} failed attempts in {:.1} s, re-added to reclaim_bgs by the worker itself after {} of them (tracefs btrfs_add_reclaim_block_group)",
                self.bg, self.failed_attempts, self.seconds, self.readds
            ),
            None => format!(
                "the reclaim worker kept relocating block group {} within one run: {} failed attempts in {:.1} s while exclusive_operation read balance without a break and no commit was forced (error relocating chunk lines; no tracefs)",
                self.bg, self.failed_attempts, self.seconds
            ),
        }
    }
}

/// Without tracefs: how long exclusive_operation must read `balance`
/// without a break (the worker's one run; no commit forced meanwhile), and
/// how often one group must fail in it. A fixed kernel fails a group once
/// per run, and a healthy relocation fails none.
pub const BUSY_SPAN_MIN: f64 = 15.0;
pub const BUSY_FAILURES_MIN: u64 = 5;

/// The loop as the kernel log and exclusive_operation show it: `failed`,
/// the groups of the `error relocating chunk` lines seen while
/// exclusive_operation read `balance` for `busy_secs` without a break.
pub fn from_busy_span(failed: &[u64], busy_secs: f64) -> Option<Loop> {
    if busy_secs < BUSY_SPAN_MIN {
        return None;
    }
    let mut counts: Vec<(u64, u64)> = Vec::new();
    for bg in failed {
        match counts.iter_mut().find(|(g, _)| g == bg) {
            Some((_, n)) => *n += 1,
            None => counts.push((*bg, 1)),
        }
    }
    let (bg, n) = counts.into_iter().max_by_key(|(g, n)| (*n, std::cmp::Reverse(*g)))?;
    (n >= BUSY_FAILURES_MIN).then(|| Loop {
        bg,
        pid: None,
        failed_attempts: n,
        readds: 0,
        seconds: busy_secs,
        first_secs: 0.0,
        lines: Vec::new(),
        refused: false,
    })
}

#[derive(Default)]
struct Group {
    /// The task that last did something with the group, and whether that
    /// was an attempt or a failure (a worker's own step).
    last: Option<(i32, What)>,
    first_fail: Option<f64>,
    attempts: u64,
    failures: u64,
    readds: u64,
    lines: Vec<String>,
}

/// The first group the worker kept re-adding after failing it, if any,
/// with everything the trace shows of it (its failed attempts and re-adds
/// up to the last line). `fsid` as the kernel prints it (%pU): other
/// filesystems' events are not ours.
pub fn detect(trace: &str, fsid: &str) -> Option<Loop> {
    // Tasks seen starting a relocation: reclaim workers.
    let mut workers: Vec<i32> = Vec::new();
    let mut groups: HashMap<u64, Group> = HashMap::new();
    let mut found: Option<Loop> = None;
    for (line, ev) in trace.lines().filter_map(|l| Some((l, parse(l, fsid)?))) {
        if ev.what == What::Attempt && !workers.contains(&ev.pid) {
            workers.push(ev.pid);
        }
        if found.as_ref().is_some_and(|l| l.bg != ev.bg) {
            continue;
        }
        let g = groups.entry(ev.bg).or_default();
        if g.lines.len() < EVIDENCE_LINES {
            g.lines.push(line.trim().to_string());
        }
        match ev.what {
            What::Attempt => {
                g.attempts += 1;
                g.last = Some((ev.pid, What::Attempt));
            }
            What::Failed => {
                g.failures += 1;
                g.first_fail.get_or_insert(ev.secs);
                g.last = Some((ev.pid, What::Failed));
            }
            What::Added => {
                let worker = workers.contains(&ev.pid) || ev.kworker;
                // Right after this task's own failed attempt (or, with no
                // error line, its own attempt or re-add: inc_block_group_ro()
                // failing prints nothing).
                let own = matches!(g.last, Some((pid, _)) if pid == ev.pid);
                if worker && own {
                    g.readds += 1;
                    g.first_fail.get_or_insert(ev.secs);
                    if g.readds >= MIN_READDS {
                        let first = g.first_fail.unwrap_or(ev.secs);
                        found = Some(Loop {
                            bg: ev.bg,
                            pid: found.as_ref().map_or(Some(ev.pid), |l| l.pid),
                            failed_attempts: g.failures.max(g.readds),
                            readds: g.readds,
                            seconds: (ev.secs - first).max(0.0),
                            first_secs: first,
                            lines: g.lines.clone(),
                            refused: g.attempts == 0 && g.failures == 0,
                        });
                    }
                }
                g.last = Some((ev.pid, What::Added));
            }
        }
    }
    found
}

/// `--trigger swapfile` on a fixed kernel: which of `groups` (the
/// swapfile's) the trace shows put on reclaim_bgs but never attempted
/// (inc_block_group_ro() refuses a group with an active swapfile before
/// `btrfs_reclaim_block_group`), in the order first queued.
pub fn queued_never_attempted(trace: &str, fsid: &str, groups: &[u64]) -> Vec<u64> {
    let mut queued: Vec<u64> = Vec::new();
    let mut attempted: Vec<u64> = Vec::new();
    for ev in trace.lines().filter_map(|l| parse(l, fsid)).filter(|e| groups.contains(&e.bg)) {
        match ev.what {
            What::Added if !queued.contains(&ev.bg) => queued.push(ev.bg),
            What::Attempt => attempted.push(ev.bg),
            _ => {}
        }
    }
    queued.retain(|g| !attempted.contains(g));
    queued
}

#[cfg(test)]
mod tests {
    use super::*;

    const FSID_61: &str = "7782fce1-c17f-4e55-84d0-55f51616cb14";

    fn fixed_61() -> &'static str {
        include_str!("../../../tests/fixtures/6.1-instrumented-threshold-trace.txt")
    }

    #[test]
    fn parses_the_three_lines_of_a_real_trace() {
        let lines: Vec<Ev> = fixed_61().lines().filter_map(|l| parse(l, FSID_61)).collect();
        let count = |w: What| lines.iter().filter(|e| e.what == w).count();
        // 4 groups failing once per cleaner run, 6 runs in the fixture.
        assert_eq!(count(What::Added), 4);
        assert_eq!(count(What::Attempt), 24);
        assert_eq!(count(What::Failed), 24);
        let first = lines.iter().find(|e| e.what == What::Attempt).unwrap();
        assert_eq!((first.pid, first.kworker, first.bg), (24, true, 969932800));
        assert!((first.secs - 4.455689).abs() < 1e-9);
        assert_eq!(parse(fixed_61().lines().find(|l| l.contains("btrfs_add_reclaim")).unwrap(), "other-fsid"), None);
    }

    #[test]
    fn the_loop_kernels_natural_pass_is_the_loop() {
        // bzImage-6.1-reclaim-loop: 10 groups failing with a real ENOSPC,
        // each put back by kworker/u4:0-8 right after its failure.
        let trace = include_str!("../../../tests/fixtures/6.1-reclaim-loop-natural-trace.txt");
        let l = detect(trace, "ad958560-6238-4f96-88d3-e39ac5400128").unwrap();
        assert_eq!((l.bg, l.pid), (3041918976, Some(8)));
        assert!(l.readds >= MIN_READDS && l.failed_attempts >= l.readds, "{l:?}");
        assert!((l.first_secs - 56.257339).abs() < 1e-6);
        assert!(l.seconds > 0.2 && l.seconds < 1.0, "{}", l.seconds);
        assert_eq!(l.lines.len(), 3 * 3, "three cycles of attempt, error, re-add");
        assert!(l.lines[0].contains("btrfs_reclaim_block_group: ") && l.lines[0].contains("bytenr=3041918976"));
        assert!(l.lines[1].contains("error relocating chunk 3041918976"));
        assert!(l.lines[2].contains("btrfs_add_reclaim_block_group: ") && l.lines[8].contains("btrfs_add_reclaim_block_group: "));
        // Only the first MIN_READDS cycles: the same group, fewer attempts.
        let cut: String = trace.lines().take(90).map(|x| format!("{x}\n")).collect();
        let early = detect(&cut, "ad958560-6238-4f96-88d3-e39ac5400128").unwrap();
        assert_eq!(early.bg, l.bg);
        assert!(early.readds < l.readds);
        assert_eq!(detect(trace, FSID_61), None, "another filesystem's trace");
    }

    #[test]
    fn a_fixed_kernel_retrying_each_cleaner_run_is_no_loop() {
        // The same 4 groups failed 6 times each: the retry list, not a loop.
        assert_eq!(detect(fixed_61(), FSID_61), None);
        // bzImage-6.1-stock, natural pass: 10 groups failing with a real
        // ENOSPC 10 times each in 300 lines, retried on every cleaner run.
        let stock = include_str!("../../../tests/fixtures/6.1-stock-natural-retries-trace.txt");
        let fsid = "f885b6fb-17dd-4e5f-9585-39dba523c781";
        assert_eq!(stock.lines().filter_map(|l| parse(l, fsid)).filter(|e| e.what == What::Failed).count(), 100);
        assert_eq!(detect(stock, fsid), None);
    }

    fn line(task: &str, secs: f64, event: &str, text: &str) -> String {
        format!("    {task}      [001] d....  {secs:10.6}: {event}: {text}\n")
    }

    /// The loop kernel's shape: attempt, error, re-add by the same worker.
    fn looping(cycles: usize) -> String {
        let mut t = line("btrfs-145", 4.0, "btrfs_add_reclaim_block_group", "F: bg bytenr=500 len=1 used=0 flags=1(DATA)");
        for i in 0..cycles {
            let s = 4.1 + i as f64 * 0.01;
            t += &line("kworker/u4:1-24", s, "btrfs_reclaim_block_group", "F: bg bytenr=500 len=1 used=0 flags=1(DATA)");
            t += &line("kworker/u4:1-24", s + 0.001, "console", "BTRFS error (device vda): error relocating chunk 500");
            t += &line("kworker/u4:1-24", s + 0.002, "btrfs_add_reclaim_block_group", "F: bg bytenr=500 len=1 used=0 flags=1(DATA)");
        }
        t
    }

    #[test]
    fn the_worker_re_adding_the_group_it_failed_is_the_loop() {
        let l = detect(&looping(3), "F").unwrap();
        assert_eq!((l.bg, l.pid, l.readds, l.failed_attempts), (500, Some(24), 3, 3));
        assert!((l.seconds - 0.021).abs() < 1e-6, "{}", l.seconds);
        assert!(l.describe().contains("block group 500") && l.describe().contains("3 failed attempts"));
        // The rest of the trace counts too.
        let l = detect(&looping(5), "F").unwrap();
        assert_eq!((l.readds, l.failed_attempts), (5, 5));
        assert!((l.seconds - 0.041).abs() < 1e-6, "{}", l.seconds);
        assert_eq!(detect(&looping(2), "F"), None, "two re-adds are not enough");
    }

    #[test]
    fn re_adds_by_other_tasks_are_no_loop() {
        // A committer (sync) crossing the threshold of a group the worker
        // failed: frees, not the worker's `next:`.
        let mut t = String::new();
        for i in 0..10 {
            let s = 5.0 + i as f64;
            t += &line("kworker/u4:1-24", s, "btrfs_reclaim_block_group", "F: bg bytenr=7 len=1");
            t += &line("kworker/u4:1-24", s + 0.1, "console", "BTRFS error (device vda): error relocating chunk 7");
            t += &line("sync-99", s + 0.2, "btrfs_add_reclaim_block_group", "F: bg bytenr=7 len=1");
        }
        assert_eq!(detect(&t, "F"), None);
    }

    #[test]
    fn a_swapfile_group_re_added_without_any_attempt_line_is_the_loop() {
        // inc_block_group_ro() fails with ETXTBSY: only the re-adds show.
        let mut t = String::new();
        for i in 0..4 {
            t += &line("kworker/u4:2-31", 6.0 + i as f64 * 0.0001, "btrfs_add_reclaim_block_group", "F: bg bytenr=9 len=1");
        }
        let l = detect(&t, "F").unwrap();
        assert_eq!((l.bg, l.readds, l.failed_attempts, l.refused), (9, 3, 3, true));
        assert!(l.describe().contains("kept putting block group 9 back on reclaim_bgs") && l.describe().contains("no relocation attempt"));
        assert!(!detect(&looping(3), "F").unwrap().refused, "attempts and errors: a relocation that fails");
        // bzImage-6.1-reclaim-loop, --trigger swapfile: the fragment's
        // commit (init-34, our pass) queues the group, then kworker/u4:2-54
        // puts it back thousands of times; not one attempt line.
        let real = include_str!("../../../tests/fixtures/6.1-reclaim-loop-swapfile-trace.txt");
        let fsid = "1c4e7019-00dd-415f-9724-27633bbe33cc";
        let l = detect(real, fsid).unwrap();
        assert_eq!((l.bg, l.pid, l.readds, l.refused), (298844160, Some(54), 6, true));
        assert!(l.lines[0].starts_with("init-34 "));
        assert!(queued_never_attempted(real, fsid, &[298844160]) == vec![298844160]);
    }

    #[test]
    fn a_swapfile_group_queued_and_never_attempted_is_the_refused_one() {
        let mut t = line("rm-77", 3.0, "btrfs_add_reclaim_block_group", "F: bg bytenr=9 len=1");
        t += &line("rm-77", 3.1, "btrfs_add_reclaim_block_group", "F: bg bytenr=5 len=1");
        t += &line("kworker/u4:2-31", 3.2, "btrfs_reclaim_block_group", "F: bg bytenr=5 len=1");
        t += &line("rm-77", 3.3, "btrfs_add_reclaim_block_group", "G: bg bytenr=7 len=1");
        assert_eq!(queued_never_attempted(&t, "F", &[9, 5, 7, 11]), vec![9]);
        assert!(queued_never_attempted(&t, "F", &[11]).is_empty());
        assert_eq!(detect(&t, "F"), None, "queued once by the committer: no loop");
    }

    #[test]
    fn without_tracefs_one_group_failing_again_and_again_in_one_busy_run_is_the_loop() {
        // The loop kernel's error lines in the order it printed them.
        let trace = include_str!("../../../tests/fixtures/6.1-reclaim-loop-natural-trace.txt");
        let failed: Vec<u64> =
            trace.lines().filter(|l| l.contains(" console: ")).filter_map(|l| number_after(l, "error relocating chunk ")).collect();
        assert_eq!(failed.len(), 35);
        // 35 failures of 10 groups: each failed 3-4 times, under 5.
        assert_eq!(from_busy_span(&failed, 20.0), None);
        let mut twice = failed.clone();
        twice.extend(&failed);
        let l = from_busy_span(&twice, 20.0).unwrap();
        assert!(l.failed_attempts >= BUSY_FAILURES_MIN && l.describe().contains("exclusive_operation read balance"), "{l:?}");
        assert_eq!(from_busy_span(&twice, 10.0), None, "a run of 10 s may be one slow relocation");
        // A fixed kernel's run: each group once.
        let stock = include_str!("../../../tests/fixtures/6.1-stock-natural-retries-trace.txt");
        let one_run: Vec<u64> = stock
            .lines()
            .filter_map(|l| number_after(l, "error relocating chunk "))
            .take(10)
            .collect();
        assert_eq!(from_busy_span(&one_run, 60.0), None);
    }

    #[test]
    fn never_panics_on_garbage() {
        for s in ["", "]", "a-b] c", "x-1 [0] ..... nan: console: error relocating chunk 1", "k-1 [0] . 1.0: console"] {
            let _ = detect(s, "F");
        }
    }
}

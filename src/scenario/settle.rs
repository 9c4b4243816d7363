//! When to stop waiting for reclaim: as soon as the kernel says its work is
//! done, never while a relocation is in flight (the unmount would cancel it,
//! btrfs_relocate_block_group() checks btrfs_fs_closing(), and the evidence
//! of its error path would be lost).
//!
//! btrfs_reclaim_bgs_work() holds the exclusive operation "balance" from
//! before its first group to after its last (btrfs_exclop_start/finish), and
//! /sys/fs/btrfs/<fsid>/exclusive_operation shows it: busy there means a
//! relocation is running or the next one is about to. Once it reads "none",
//! two commits (BTRFS_IOC_SYNC wakes the cleaner, whose btrfs_reclaim_sweep()
//! marks a group on one run and queues it on the next) that start no new
//! work end the wait. A kernel without that file gets the old rule: the
//! counters still for 2 s.
//!
//! Pure: the caller reads the kernel and does what `next` says.

use std::time::Duration;

/// Why the wait ended (WorkerIdle: after `IDLE_SYNCS` idle commits); the
/// report names it, so it lives with the phases.
pub use crate::base::phase::SettleEnd as End;

/// How often a busy worker is looked at: its result is seen this late at most.
const BUSY_POLL: Duration = Duration::from_millis(20);
/// Commits in a row that start no reclaim work before the wait ends.
const IDLE_SYNCS: u32 = 2;
/// After a commit, the cleaner runs and may queue the worker: wait twice as
/// long as the commit took (a slow machine cleans slowly too), within these.
const CLEANER_WAIT_MIN: Duration = Duration::from_millis(50);
const CLEANER_WAIT_MAX: Duration = Duration::from_millis(500);
/// The fallback, for a kernel that does not show the exclusive operation.
const FALLBACK_QUIET: Duration = Duration::from_secs(2);
const FALLBACK_SYNC_EVERY: Duration = Duration::from_millis(200);
/// Static threshold: retries alone this long end the wait.
const RETRY_QUIET: Duration = Duration::from_secs(3);

/// What was read from the kernel at one look, `at` from the start of the wait.
#[derive(Debug, Clone, Copy)]
pub(super) struct Seen {
    pub at: Duration,
    /// The reclaim worker holds the exclusive operation; `None`: unknown.
    pub busy: Option<bool>,
    /// (reclaim_count, reclaim_errors) since the trigger's base.
    pub counts: (u64, u64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Next {
    Wait(Duration),
    Sync,
    Done(End),
}


#[derive(Debug)]
pub(super) struct Settle {
    deadline: Duration,
    counts: (u64, u64),
    /// When the counters last moved (the last relocation result seen).
    last_result: Duration,
    idle_syncs: u32,
    /// After a sync: until when the cleaner is given time.
    cleaner_until: Option<Duration>,
    last_sync: Duration,
    /// Static threshold: `counts` are (successes, groups failed so far),
    /// so that a retry is no news (see `End::RetriesOnly`).
    retries_forever: bool,
    idle_after_failure: bool,
}

impl Settle {
    pub(super) fn new(counts: (u64, u64), deadline: Duration) -> Settle {
        Settle {
            deadline,
            counts,
            last_result: Duration::ZERO,
            idle_syncs: 0,
            cleaner_until: None,
            last_sync: Duration::ZERO,
            retries_forever: false,
            idle_after_failure: false,
        }
    }

    /// For a kernel with only the static threshold: `Seen::counts` are then
    /// (relocations that succeeded, groups that failed so far).
    pub(super) fn retrying(mut self) -> Settle {
        self.retries_forever = true;
        self
    }

    /// When the last relocation result was seen, from the start of the wait.
    pub(super) fn last_result(&self) -> Duration {
        self.last_result
    }

    pub(super) fn next(&mut self, seen: Seen) -> Next {
        if seen.counts != self.counts {
            self.counts = seen.counts;
            self.last_result = seen.at;
            self.idle_syncs = 0;
        }
        if seen.at >= self.deadline {
            return Next::Done(End::Deadline);
        }
        if self.retries_forever && seen.counts.1 > 0 {
            self.idle_after_failure |= seen.busy == Some(false);
            if self.idle_after_failure && seen.at.saturating_sub(self.last_result) >= RETRY_QUIET {
                return Next::Done(End::RetriesOnly);
            }
        }
        match seen.busy {
            Some(true) => {
                self.idle_syncs = 0;
                self.cleaner_until = None;
                Next::Wait(BUSY_POLL)
            }
            Some(false) => match self.cleaner_until {
                Some(until) if seen.at < until => Next::Wait((until - seen.at).min(Duration::from_millis(10))),
                _ if self.idle_syncs >= IDLE_SYNCS => Next::Done(End::WorkerIdle),
                _ => Next::Sync,
            },
            None => {
                if seen.at.saturating_sub(self.last_result) >= FALLBACK_QUIET {
                    Next::Done(End::Quiet)
                } else if seen.at.saturating_sub(self.last_sync) >= FALLBACK_SYNC_EVERY {
                    Next::Sync
                } else {
                    Next::Wait(FALLBACK_SYNC_EVERY - seen.at.saturating_sub(self.last_sync))
                }
            }
        }
    }

    /// A sync asked for by `next` ended at `at` after taking `took`.
    pub(super) fn synced(&mut self, at: Duration, took: Duration) {
        self.idle_syncs += 1;
        self.last_sync = at;
        self.cleaner_until = Some(at + (took * 2).clamp(CLEANER_WAIT_MIN, CLEANER_WAIT_MAX));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Plays a kernel: `busy(at)` and `counts(at)`, syncs taking `sync_ms`.
    /// Returns how the wait ended, when, and when the last result was seen.
    fn play(busy: impl Fn(u64) -> Option<bool>, counts: impl Fn(u64) -> (u64, u64), sync_ms: u64) -> (End, u64, u64) {
        let mut s = Settle::new(counts(0), Duration::from_secs(60));
        let mut now = 0u64;
        for _ in 0..100_000 {
            match s.next(Seen { at: ms(now), busy: busy(now), counts: counts(now) }) {
                Next::Wait(d) => now += d.as_millis() as u64,
                Next::Sync => {
                    now += sync_ms;
                    s.synced(ms(now), ms(sync_ms));
                }
                Next::Done(end) => return (end, now, s.last_result().as_millis() as u64),
            }
        }
        panic!("the wait never ended");
    }

    #[test]
    fn never_ends_while_the_worker_is_busy() {
        // Busy until 3 s, results at 1, 2 and 3 s.
        let (end, at, last) = play(|t| Some(t < 3000), |t| (t.min(3000) / 1000, 0), 10);
        assert_eq!(end, End::WorkerIdle);
        assert!(at >= 3000, "ended at {at} ms while busy");
        assert_eq!(last, 3000);
        // Two syncs of 10 ms, each followed by 50 ms for the cleaner.
        assert!(at - last <= 3 * 20 + 2 * 60, "tail {} ms", at - last);
    }

    #[test]
    fn work_started_by_a_commit_restarts_the_count() {
        // Idle at 1 s; the first idle sync's cleaner queues more work, busy
        // from 1.03 to 2 s with one more result.
        let busy = |t| Some(t < 1000 || (1030..2000).contains(&t));
        let counts = |t| (if t < 2000 { 1 } else { 2 }, 0);
        let (end, at, last) = play(busy, counts, 10);
        assert_eq!(end, End::WorkerIdle);
        assert!(at > 2000, "ended at {at} ms, before the second batch of work");
        // Seen within one busy poll.
        assert!((2000..=2000 + 20).contains(&last), "last result seen at {last} ms");
    }

    #[test]
    fn a_slow_commit_gives_the_cleaner_longer() {
        // Syncs of 200 ms: each is followed by 400 ms of looking.
        let (end, at, last) = play(|t| Some(t < 100), |t| ((t >= 100) as u64, 0), 200);
        assert_eq!(end, End::WorkerIdle);
        assert_eq!(last, 100);
        assert!(at >= 100 + 2 * (200 + 400), "ended at {at} ms");
    }

    #[test]
    fn without_the_sysfs_file_the_counters_must_be_quiet_for_two_seconds() {
        let (end, at, last) = play(|_| None, |t| ((t.min(1500)) / 500, 0), 10);
        assert_eq!(end, End::Quiet);
        // Seen at the next look (one sync period at most).
        assert!((1500..=1500 + 210).contains(&last), "last result seen at {last} ms");
        assert!((2000..=2210).contains(&(at - last)), "ended {} ms after it", at - last);
    }

    #[test]
    fn a_worker_that_never_stops_ends_at_the_deadline() {
        let (end, at, _) = play(|_| Some(true), |t| (t / 100, 0), 10);
        assert_eq!(end, End::Deadline);
        assert_eq!(at, 60_000);
    }

    #[test]
    fn static_threshold_retries_alone_end_the_wait_once_the_worker_was_idle() {
        // Measured shape on 6.1.192: the worker fails the same groups again
        // after every commit; (successes, failed groups) stand still at
        // (0, 4) from 0.5 s, the worker idle 30 ms of every 300.
        let busy = |t: u64| Some(t % 300 >= 30);
        let counts = |t: u64| (0, if t < 500 { 1 } else { 4 });
        let mut s = Settle::new(counts(0), Duration::from_secs(60)).retrying();
        let mut now = 0u64;
        let end = loop {
            match s.next(Seen { at: ms(now), busy: busy(now), counts: counts(now) }) {
                Next::Wait(d) => now += d.as_millis() as u64,
                Next::Sync => {
                    now += 10;
                    s.synced(ms(now), ms(10));
                }
                Next::Done(end) => break end,
            }
        };
        assert_eq!(end, End::RetriesOnly);
        assert!((3500..3700).contains(&now), "ended at {now} ms");
        // Without the static threshold the same kernel runs to the deadline.
        let (end, _, _) = play(busy, counts, 10);
        assert_eq!(end, End::Deadline);
    }

    #[test]
    fn a_worker_never_idle_is_not_retrying_and_waits() {
        // The endless loop without tracefs: busy throughout, nothing new.
        let mut s = Settle::new((0, 3), Duration::from_secs(60)).retrying();
        let mut now = 0u64;
        let end = loop {
            match s.next(Seen { at: ms(now), busy: Some(true), counts: (0, 3) }) {
                Next::Wait(d) => now += d.as_millis() as u64,
                Next::Sync => unreachable!("no commit while the worker is busy"),
                Next::Done(end) => break end,
            }
        };
        assert_eq!((end, now), (End::Deadline, 60_000));
    }

    #[test]
    fn idle_from_the_start_ends_after_two_commits() {
        let (end, at, last) = play(|_| Some(false), |_| (3, 1), 10);
        assert_eq!(end, End::WorkerIdle);
        assert_eq!(last, 0);
        assert_eq!(at, 2 * (10 + 50));
    }
}

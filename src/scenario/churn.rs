//! Stress mode's threads (the bug report's parallel test): churn workers
//! keep allocation pressure up (with --fill-mode: fallocate by default, real
//! data with write) and turn whole block groups over, a balance worker
//! competes with reclaim for block groups, random delays shift the race
//! windows.
//! They see only the filesystem, never the run: the supervisor's tick
//! (stress.rs) drains the kernel log and decides when to stop.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::btrfs::fs::Fs;
use crate::judge::report::StressStats;
use crate::btrfs::fill::FillMode;
use crate::btrfs::fill;
use crate::sys;
use crate::sys::btrfs::{BALANCE_CTL_CANCEL, ERROR_DEV_EXCL_RUN_IN_PROGRESS};

/// Balance only groups at most this full: our fragmented groups are about
/// half used (the report's 5 % matched nothing).
pub const BALANCE_USAGE_PCT: u64 = 60;
const FILES_PER_ROUND: usize = 10;
/// Files a worker keeps between rounds before deleting its oldest.
const KEPT_PER_WORKER: usize = 10;
/// Every this many rounds a worker deletes all it keeps and commits. The
/// prefill's files are handed to the workers at the start, so after a few
/// rounds whole groups hold only churn data and these drains empty them:
/// the cleaner deletes an empty group (btrfs_delete_unused_bgs, with the
/// stress mount's nodiscard) and the next allocation makes a new one at a
/// new address, which reclaim and balance then fail on. Without the turnover
/// the failures stay on the 9-10 groups a 3 GiB filesystem starts with.
const DRAIN_EVERY_ROUNDS: u64 = 2;

/// What one churn round does: file sizes to write, then a pause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoundPlan {
    pub sizes: Vec<u64>,
    pub sleep_ms: u64,
}

pub fn plan_round(rng: &mut fastrand::Rng) -> RoundPlan {
    let sizes = (0..FILES_PER_ROUND).map(|_| rng.u64(10..=60) << 20).collect();
    RoundPlan { sizes, sleep_ms: rng.u64(0..=400) }
}

/// What one balance does: cancelled after `cancel_after_ms`, then a pause.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BalancePlan {
    pub cancel_after_ms: u64,
    pub pause_ms: u64,
}

pub fn plan_balance(rng: &mut fastrand::Rng) -> BalancePlan {
    BalancePlan { cancel_after_ms: rng.u64(2000..=4000), pause_ms: rng.u64(1000..=2000) }
}

/// Each thread draws from its own generator, derived from --seed, so a run's
/// choices replay whatever the scheduling.
pub fn thread_rng(seed: u64, index: u64) -> fastrand::Rng {
    fastrand::Rng::with_seed(seed ^ (index + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

#[derive(Default)]
pub(super) struct Shared {
    stop: AtomicBool,
    rounds: Vec<AtomicU64>,
    enospc: AtomicU64,
    started: AtomicU64,
    cancelled: AtomicU64,
    busy: AtomicU64,
    failed: AtomicU64,
    relocations: AtomicU64,
    balance_tid: Mutex<Option<sys::process::Pid>>,
    /// When the running balance is due to be cancelled.
    cancel_at: Mutex<Option<Instant>>,
    errors: Mutex<Vec<String>>,
    balance_last_error: Mutex<Option<String>>,
}

impl Shared {
    pub(super) fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// Sleeps up to `d`, returning early when asked to stop.
    fn pause(&self, d: Duration) {
        let end = Instant::now() + d;
        while !self.stopped() && Instant::now() < end {
            std::thread::sleep((end - Instant::now()).min(Duration::from_millis(20)));
        }
    }

    fn error(&self, e: String) {
        self.errors.lock().expect("errors lock").push(e);
    }
}

/// One churn thread; `inherited` are prefill files it deletes as its own.
fn churn_worker(fs: &Fs, dir: &Path, inherited: Vec<PathBuf>, mode: FillMode, index: usize, seed: u64, shared: &Shared) {
    let mut rng = thread_rng(seed, index as u64 + 1);
    let mut buf = if mode == FillMode::Write { fill::WriteBuf::new(&mut rng) } else { fill::WriteBuf::empty() };
    let mut kept: Vec<PathBuf> = inherited;
    let mut serial = 0u64;
    let mut round = 0u64;
    while !shared.stopped() {
        let plan = plan_round(&mut rng);
        let mut written = Vec::new();
        for size in &plan.sizes {
            if shared.stopped() {
                break;
            }
            let path = dir.join(format!("c{serial:06}"));
            serial += 1;
            match fill::make_file(&path, *size, mode, &mut buf, &mut rng) {
                Ok((_, enospc)) => {
                    written.push(path);
                    if enospc {
                        // Expected under this pressure: free the oldest.
                        shared.enospc.fetch_add(1, Ordering::Relaxed);
                        for old in kept.drain(..kept.len() / 2) {
                            let _ = std::fs::remove_file(old);
                        }
                        break;
                    }
                }
                Err(e) => {
                    shared.error(format!("worker {index}: {e}"));
                    return;
                }
            }
        }
        let _ = fs.syncfs();
        for (i, path) in written.into_iter().enumerate() {
            if i % 2 == 1 {
                let _ = std::fs::remove_file(&path);
            } else {
                kept.push(path);
            }
        }
        while kept.len() > KEPT_PER_WORKER {
            let _ = std::fs::remove_file(kept.remove(0));
        }
        round += 1;
        if round.is_multiple_of(DRAIN_EVERY_ROUNDS) {
            for old in kept.drain(..) {
                let _ = std::fs::remove_file(old);
            }
            // Commits and wakes the cleaner, which deletes the emptied groups.
            let _ = fs.sync();
        }
        shared.rounds[index].fetch_add(1, Ordering::Relaxed);
        shared.pause(Duration::from_millis(plan.sleep_ms));
    }
}

fn balance_worker(fs: &Fs, seed: u64, shared: &Shared) {
    *shared.balance_tid.lock().expect("tid lock") = Some(sys::process::gettid());
    let mut rng = thread_rng(seed, 0);

    while !shared.stopped() {
        let plan = plan_balance(&mut rng);
        *shared.cancel_at.lock().expect("cancel lock") = Some(Instant::now() + Duration::from_millis(plan.cancel_after_ms));
        if shared.stopped() {
            *shared.cancel_at.lock().expect("cancel lock") = None;
            break;
        }
        let result = sys::btrfs::balance_data_usage(&fs.dir, BALANCE_USAGE_PCT, &fs.mnt);
        *shared.cancel_at.lock().expect("cancel lock") = None;
        match result {
            // Reclaim holds the exclusive operation: busy, retry soon.
            Ok(r) if r.code == ERROR_DEV_EXCL_RUN_IN_PROGRESS => {
                shared.busy.fetch_add(1, Ordering::Relaxed);
                shared.pause(Duration::from_millis(rng.u64(200..=500)));
                continue;
            }
            Ok(r) if r.code == 0 => {
                shared.started.fetch_add(1, Ordering::Relaxed);
                shared.relocations.fetch_add(r.completed, Ordering::Relaxed);
            }
            Ok(r) if r.code == -(libc::ECANCELED as i64) => {
                shared.started.fetch_add(1, Ordering::Relaxed);
                shared.cancelled.fetch_add(1, Ordering::Relaxed);
                shared.relocations.fetch_add(r.completed, Ordering::Relaxed);
            }
            other => {
                // ENOSPC and friends: relocation failing is what we provoke.
                shared.started.fetch_add(1, Ordering::Relaxed);
                shared.failed.fetch_add(1, Ordering::Relaxed);
                let why = match other {
                    Ok(r) => format!("btrfs error code {}", r.code),
                    Err(e) => sys::errno_of(&e).map(sys::errno_name).unwrap_or_else(|| e.to_string()),
                };
                *shared.balance_last_error.lock().expect("error lock") = Some(why);
            }
        }
        shared.pause(Duration::from_millis(plan.pause_ms));
    }
}

/// Cancels the running balance if it is due (or `force`). ENOTCONN: none was
/// running, which is expected.
pub(super) fn cancel_balance_if_due(fs: &Fs, shared: &Shared, force: bool) {
    let due = shared.cancel_at.lock().expect("cancel lock").is_some_and(|t| force || Instant::now() >= t);
    if due {
        let _ = sys::btrfs::balance_ctl(&fs.dir, BALANCE_CTL_CANCEL, &fs.mnt);
    }
}

impl Shared {
    fn stats(&self, seconds: u64) -> StressStats {
        StressStats {
            seconds,
            worker_rounds: self.rounds.iter().map(|r| r.load(Ordering::Relaxed)).collect(),
            worker_enospc: self.enospc.load(Ordering::Relaxed),
            balances_started: self.started.load(Ordering::Relaxed),
            balances_cancelled: self.cancelled.load(Ordering::Relaxed),
            balances_busy: self.busy.load(Ordering::Relaxed),
            balances_failed: self.failed.load(Ordering::Relaxed),
            balance_relocations: self.relocations.load(Ordering::Relaxed),
            balance_tid: *self.balance_tid.lock().expect("tid lock"),
            worker_errors: self.errors.lock().expect("errors lock").clone(),
            balance_last_error: self.balance_last_error.lock().expect("error lock").clone(),
            // Counted from the kernel log by the stress pass.
            failed_groups: 0,
            // Counted by the stress pass from tracefs, after the churn.
            race_windows: None,
        }
    }
}

/// Runs a churn thread per `dirs` entry (sharing out `prefill`, the files the
/// fill left) and the balance thread on `fs` while `tick`
/// (on this thread) returns Ok(true); then stops them, cancels a running
/// balance so the join is prompt, and returns the counts with tick's result.
pub(super) fn run<E>(
    fs: &Fs,
    dirs: &[PathBuf],
    prefill: &[PathBuf],
    mode: FillMode,
    seed: u64,
    seconds: impl Fn() -> u64,
    mut tick: impl FnMut(&Shared) -> Result<bool, E>,
) -> (StressStats, Result<(), E>) {
    let shared = Shared { rounds: (0..dirs.len()).map(|_| AtomicU64::new(0)).collect(), ..Shared::default() };
    let result = std::thread::scope(|scope| {
        let shared = &shared;
        for (i, d) in dirs.iter().enumerate() {
            let inherited: Vec<PathBuf> = prefill.iter().skip(i).step_by(dirs.len()).cloned().collect();
            scope.spawn(move || churn_worker(fs, d, inherited, mode, i, seed, shared));
        }
        scope.spawn(move || balance_worker(fs, seed, shared));
        let outcome = loop {
            cancel_balance_if_due(fs, shared, false);
            match tick(shared) {
                Ok(true) => {}
                Ok(false) => break Ok(()),
                Err(e) => break Err(e),
            }
        };
        shared.stop.store(true, Ordering::SeqCst);
        // Wake a balance that is still relocating so the join is prompt.
        while shared.cancel_at.lock().expect("cancel lock").is_some() {
            cancel_balance_if_due(fs, shared, true);
            std::thread::sleep(Duration::from_millis(100));
        }
        outcome
    });
    (shared.stats(seconds()), result)
}

impl Shared {
    /// Live counts for the progress line.
    pub(super) fn rounds(&self) -> Vec<u64> {
        self.rounds.iter().map(|x| x.load(Ordering::Relaxed)).collect()
    }

    pub(super) fn balances(&self) -> (u64, u64) {
        (self.started.load(Ordering::Relaxed), self.cancelled.load(Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_makes_the_same_choices() {
        let draw = |seed| {
            let mut worker = thread_rng(seed, 1);
            let mut balance = thread_rng(seed, 0);
            let rounds: Vec<RoundPlan> = (0..20).map(|_| plan_round(&mut worker)).collect();
            let balances: Vec<BalancePlan> = (0..20).map(|_| plan_balance(&mut balance)).collect();
            (rounds, balances)
        };
        assert_eq!(draw(42), draw(42));
        assert_ne!(draw(42), draw(43));
    }

    #[test]
    fn plans_stay_in_their_ranges() {
        let mut rng = thread_rng(7, 3);
        for _ in 0..200 {
            let r = plan_round(&mut rng);
            assert_eq!(r.sizes.len(), 10);
            assert!(r.sizes.iter().all(|s| (10 << 20..=60 << 20).contains(s)));
            assert!(r.sleep_ms <= 400);
            let b = plan_balance(&mut rng);
            assert!((2000..=4000).contains(&b.cancel_after_ms));
            assert!((1000..=2000).contains(&b.pause_ms));
        }
    }

    #[test]
    fn threads_draw_from_different_streams() {
        assert_ne!(plan_round(&mut thread_rng(1, 1)), plan_round(&mut thread_rng(1, 2)));
    }
}

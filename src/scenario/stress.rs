//! The stress pass (the bug report's parallel test): the single pass's
//! setup with a prefill, reclaim's first turn, then `secs` of churn and
//! balance (churn.rs) against reclaim, with the kernel log judged live.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::btrfs::format::Mkfs;
use crate::btrfs::fs::Fs;
use crate::device::Target;
use crate::kernel::kmsg::trace;
use crate::base::phase::Phase;
use crate::judge::report::StressStats;

use super::churn::{self, BALANCE_USAGE_PCT};
use super::counters::Base;
use super::run::{PassKind, Run};
use super::stop::{at, check_signal, ignore_eintr, Stop};

/// Every third file goes: groups stay fuller than in the single pass, so
/// the churn has room to allocate.
const FRAGMENT_NTH: usize = 3;

/// Setup as the single pass, prefill (80 % by default), knobs, delete every
/// third file, wake reclaim, then `secs` of churn + balance, settle,
/// unmount.
pub(super) fn pass(run: &mut Run, target: &Target, mkfs: &Mkfs, secs: u64) -> Result<(), Stop> {
    // Stress keeps its own rules: the injected layout unless --enospc natural
    // (refused with --stress) asked otherwise.
    run.in_pass(PassKind::Injected, |run| stress_steps(run, target, mkfs, secs))
}

fn stress_steps(run: &mut Run, target: &Target, mkfs: &Mkfs, secs: u64) -> Result<(), Stop> {
    let (mounted, fs) = run.fresh_filesystem(target, mkfs)?;
    // The hunt's race windows, counted here too: with periodic reclaim on
    // they are harmless, but they tell whether the churn reaches the state.
    let tracing = run.start_tracing();
    let files = run.fill(&fs)?;
    // Knobs before the deletes, as in the single pass: frees only add to
    // reclaimable_bytes while periodic_reclaim is 1 (btrfs_update_block_group),
    // so deleting first would never arm the sweep.
    run.knobs(&fs)?;
    run.fragment(&fs, &files, FRAGMENT_NTH)?;
    // Reclaim's first turn comes before the churn: every allocation made
    // while periodic reclaim is on subtracts from reclaimable_bytes, and a
    // sweep that finds a balance running loses its turn. The workers and the
    // balance then start while reclaim's relocations are under way.
    let base = match run.trigger(&fs)? {
        Some(b) => b,
        None => run.reclaim_base(&fs)?,
    };
    churn_phase(run, &fs, &files, &base, secs)?;
    run.settle(&fs, base)?;
    if let Some(t) = tracing {
        let windows = trace::race_windows(&at("tracefs", t.read())?, &fs.fsid).len() as u64;
        run.report.stress.get_or_insert_with(StressStats::default).race_windows = Some(windows);
        run.progress.say(&format!("stress: {windows} race window(s) (tracefs)"));
    }
    drop(fs);
    run.unmount(mounted, target, true)
}

/// `secs` of churn and balance against reclaim, counted into the report.
fn churn_phase(run: &mut Run, fs: &Fs, files: &[PathBuf], base: &Base, secs: u64) -> Result<(), Stop> {
    let cfg = run.cfg;
    let prefill: Vec<PathBuf> = files.iter().filter(|f| f.exists()).cloned().collect();
    let mut dirs = Vec::new();
    for i in 0..cfg.workers {
        let d = cfg.mnt.join("churn").join(format!("w{i}"));
        at("mkdir", std::fs::create_dir_all(&d))?;
        dirs.push(d);
    }
    let started = Instant::now();
    let events_before = run.watch.as_ref().map_or(0, |w| w.log.events.len());
    let mut stats = StressStats::default();
    let result = run.phase(Phase::Stress, |r| {
        r.progress.say(&format!(
            "stress: {secs} s, {} churn workers, balance -dusage={BALANCE_USAGE_PCT} cancelled after 2-4 s",
            cfg.workers
        ));
        let end = started + Duration::from_secs(secs);
        let (s, outcome) = churn::run(fs, &dirs, &prefill, cfg.fill_mode, cfg.seed, || started.elapsed().as_secs(), |shared| {
            tick(r, fs, shared, secs, started, end, base)
        });
        stats = s;
        outcome?;
        // A last commit so that reclaim sees the final state.
        at("sync", ignore_eintr(fs.sync()))
    });
    // What the churn is for: relocations failing on many groups. Counted
    // from the log (error lines, injections), each group once.
    stats.failed_groups = run.watch.as_ref().map_or(0, |w| w.log.failed_groups_since(events_before));
    *run.report.stress.get_or_insert_with(StressStats::default) += stats;
    let s = run.report.stress.clone().unwrap_or_default();
    run.progress.say(&summary(&s));
    for e in &s.worker_errors {
        run.report.notes.push(e.clone());
    }
    result
}

/// The stress counts so far, in one progress line.
fn summary(s: &StressStats) -> String {
    format!(
        "stress: worker rounds {:?}, balances {} started / {} cancelled / {} busy / {} failed, {} groups relocated by balance, {} groups failed relocation",
        s.worker_rounds, s.balances_started, s.balances_cancelled, s.balances_busy, s.balances_failed, s.balance_relocations, s.failed_groups
    )
}

/// One turn of the supervisor (every 100 ms): drains the kernel log, shows
/// progress, and says whether to go on: not past the deadline, no signal,
/// and (with --until-reproduced) no evidence yet.
fn tick(
    r: &mut Run,
    fs: &Fs,
    shared: &churn::Shared,
    secs: u64,
    started: Instant,
    end: Instant,
    base: &Base,
) -> Result<bool, Stop> {
    check_signal()?;
    if Instant::now() >= end {
        return Ok(false);
    }
    std::thread::sleep(Duration::from_millis(100));
    r.drain();
    let (reclaims, errors) = r.count_reclaims(fs, base)?;
    let log = r.watch.as_ref().map(|w| (w.log.injections, w.log.overlaps.len(), !w.log.trouble.is_empty()));
    let (injections, overlaps, trouble) = log.unwrap_or((0, 0, false));
    let (started_balances, cancelled) = shared.balances();
    r.progress.update(&format!(
        "stress: {}/{secs} s, rounds {:?}, balances {started_balances}/{cancelled} started/cancelled, reclaims {reclaims} ({errors} errors), injections {injections}, overlaps {overlaps}",
        started.elapsed().as_secs(),
        shared.rounds(),
    ));
    if r.cfg.until_reproduced && (trouble || overlaps > 0) {
        r.progress.say("stress: evidence seen, stopping (--until-reproduced)");
        return Ok(false);
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_names_every_count() {
        let s = StressStats { balances_started: 3, balances_cancelled: 2, failed_groups: 5, ..StressStats::default() };
        let line = summary(&s);
        assert!(line.starts_with("stress: worker rounds ") && line.contains("balances 3 started / 2 cancelled / 0 busy / 0 failed"), "{line}");
        assert!(line.ends_with(", 0 groups relocated by balance, 5 groups failed relocation"), "{line}");
    }
}

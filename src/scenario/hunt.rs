//! The retry-list hunt (`--stress` unless `--reclaim periodic`): rounds on a
//! fresh filesystem that drive btrfs_reclaim_bgs_work() into the race that
//! upstream fixed in 48f091fd50b2 (docs/kernel.md, "The retry-list
//! corruption"). A round: mount nodiscard, fallocate 32 MiB files until ~76 % of
//! the device, knobs (periodic reclaim off), delete 9 of the 10 files of
//! every full data block group, sync until relocations fail (those groups
//! then sit on the worker's retry list), then with two BTRFS_IOC_SYNC loops
//! and a create/unlink loop running, delete the last file of each of those
//! groups back to back. The group the worker holds loses its last extent
//! inside its failed attempt: btrfs_mark_bg_unused() puts it on unused_bgs
//! while the worker, at `next:`, puts it on its retry list too.
//!
//! The helpers that may block forever in a wedged kernel are processes,
//! forked while this process has one thread: the judge abandons them.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::btrfs::fill::{self, FILE_BYTES};
use crate::btrfs::fs::Fs;
use crate::btrfs::mount::Mounted;
use crate::btrfs::fill::FillMode;
use crate::btrfs::reclaim::Reclaim;
use crate::btrfs::format::Mkfs;
use crate::device::Target;
use crate::kernel::host;
use crate::kernel::kmsg::reclaim_loop;
use crate::kernel::kmsg::trace::{self, Tracing};
use crate::base::phase::Phase;
use crate::judge::report::HuntStats;
use crate::sys;
use crate::sys::process::{spawn_helper, ChildEnd, Helper};

use super::run::{PassKind, Run};
use super::stop::{at, check_signal, nap, pause_inside, Stop};

/// How long a round waits after the burst for the kernel's answer: the
/// refcount underflow came 1.4-2.8 s after the unlinks (measured).
const WATCH_AFTER_BURST: Duration = Duration::from_secs(4);
/// Fraction of the device filled: on 3 GiB, 73 files, 7 full 320 MiB groups.
const FILL_PERCENT_OF_DEVICE: u64 = 76;

pub(super) fn pass(run: &mut Run, target: &Target, mkfs: &Mkfs, secs: u64) -> Result<(), Stop> {
    run.in_pass(PassKind::Injected, |run| rounds(run, target, mkfs, secs))
}

fn rounds(run: &mut Run, target: &Target, mkfs: &Mkfs, secs: u64) -> Result<(), Stop> {
    let mut tracing = run.start_tracing();
    // The endless reclaim loop's sign (kernel::kmsg::reclaim_loop): where
    // the kernel has the event, each round's trace is looked at for it too.
    let loop_watch = tracing.as_mut().is_some_and(|t| t.also("btrfs/btrfs_add_reclaim_block_group"));
    match &tracing {
        Some(t) => run.progress.say(&format!("hunt: counting race windows through {}", t.dir().display())),
        None => run.progress.say("hunt: no btrfs reclaim tracepoints in tracefs: race windows not counted"),
    }
    let stats = run.report.hunt.get_or_insert_with(HuntStats::default);
    if tracing.is_some() && stats.race_windows.is_none() {
        stats.race_windows = Some(0);
    }
    let started = Instant::now();
    // Earlier iterations' hunts count too.
    let earlier = run.report.hunt.as_ref().map_or(0.0, |h| h.seconds);
    let end = started + Duration::from_secs(secs);
    let mut n = 0;
    loop {
        n += 1;
        run.progress.say(&format!("hunt: round {n} ({} s left)", end.saturating_duration_since(Instant::now()).as_secs()));
        let result = round(run, target, mkfs, n, tracing.as_ref(), loop_watch);
        run.report.hunt.get_or_insert_with(HuntStats::default).seconds = earlier + started.elapsed().as_secs_f64();
        // A kernel that showed trouble is corrupted: another round would
        // only hang, so the hunt ends at the first evidence.
        if result? || run.evidence_seen() || Instant::now() >= end {
            return Ok(());
        }
    }
}

/// One round on a fresh filesystem. `Ok(true)`: the kernel showed trouble
/// and the filesystem was left mounted (an unmount would hang).
fn round(run: &mut Run, target: &Target, mkfs: &Mkfs, n: u64, tracing: Option<&Tracing>, loop_watch: bool) -> Result<bool, Stop> {
    let (mounted, fs) = run.fresh_filesystem(target, mkfs)?;
    run.report.hunt.get_or_insert_with(HuntStats::default).rounds += 1;
    if let Some(t) = tracing {
        at("tracefs", t.clear())?;
    }
    let files = hunt_fill(run, &fs, target.bytes)?;
    run.knobs(&fs)?;
    let last = fragment(run, &fs, &files, n)?;
    if last.is_empty() {
        run.progress.say("hunt: no full data block group in this layout; next round");
        return finish(run, mounted, fs, target, None);
    }
    let failing = fail_relocations(run, &fs, last.len() as u64)?;
    if failing {
        run.report.hunt.get_or_insert_with(HuntStats::default).rounds_failing += 1;
    }
    let raced = run.phase(Phase::Hunt, |r| race(r, &fs, &last));
    if let Some(t) = tracing {
        let text = at("tracefs", t.read())?;
        let windows = trace::race_windows(&text, &fs.fsid);
        if let Some(found) = loop_watch.then(|| reclaim_loop::detect(&text, &fs.fsid)).flatten() {
            run.progress.say(&format!("hunt: round {n}: {}", found.describe()));
            run.report.loop_evidence = found.lines.clone();
            run.facts.reclaim_loop = Some(found);
        }
        let stats = run.report.hunt.get_or_insert_with(HuntStats::default);
        stats.race_windows = Some(stats.race_windows.unwrap_or(0) + windows.len() as u64);
        if !windows.is_empty() {
            stats.rounds_with_window += 1;
        }
        run.progress.say(&format!("hunt: round {n}: {} race window(s) {windows:?}", windows.len()));
    }
    match raced {
        // A helper stuck in a sync past --op-timeout: the kernel stopped
        // making progress, and an unmount would block as well. Without
        // this the Mounted guard would try one and hold the verdict back
        // for another --op-timeout.
        Err(Stop::Killed) => {
            finish(run, mounted, fs, target, Some("a hunt helper hung in the kernel"))?;
            Err(Stop::Killed)
        }
        Err(e) => Err(e),
        Ok(true) => finish(run, mounted, fs, target, Some("the kernel showed trouble")),
        Ok(false) => finish(run, mounted, fs, target, None),
    }
}

/// Unmount, unless the kernel is wedged (`wedged` says how): then the
/// filesystem stays mounted (umount would block forever in close_ctree)
/// and the verdict comes first.
fn finish(run: &mut Run, mounted: Mounted, fs: Fs, target: &Target, wedged: Option<&str>) -> Result<bool, Stop> {
    drop(fs);
    if let Some(why) = wedged {
        mounted.keep();
        run.report.notes.push(format!(
            "left mounted on {}: {why} and an unmount would hang (reboot to clean up)",
            run.cfg.mnt.display()
        ));
        return Ok(true);
    }
    run.unmount(mounted, target, false)?;
    Ok(false)
}

/// fallocate 32 MiB files to ~76 % of the device, one at a time: each
/// lands in one block group (knobs stay off until after the fill).
fn hunt_fill(run: &mut Run, fs: &Fs, device_bytes: u64) -> Result<Vec<PathBuf>, Stop> {
    let dir = run.cfg.mnt.join("fill");
    let count = (device_bytes * FILL_PERCENT_OF_DEVICE / 100).div_ceil(FILE_BYTES);
    run.phase(Phase::Fill, |r| {
        at("mkdir", std::fs::create_dir_all(&dir))?;
        let mut files = Vec::new();
        for i in 0..count {
            check_signal()?;
            let path = dir.join(format!("f{i:05}"));
            let (held, enospc) = at("fill", fill::make_file(&path, FILE_BYTES, FillMode::Fallocate, &mut fill::WriteBuf::empty(), &mut r.rng))?;
            r.report.bytes_written += held;
            files.push(path);
            if enospc {
                break;
            }
        }
        at("fill", fs.syncfs())?;
        r.progress.say(&format!("fill: {} files of 32 MiB (fallocate)", files.len()));
        Ok(files)
    })
}

/// Which files fill which data block group completely: group start and
/// the indexes of its files, for groups holding exactly `len / FILE_BYTES`
/// files that lie wholly inside it.
pub(super) fn full_groups(groups: &[(u64, u64)], files: &[Vec<sys::fs::Extent>]) -> Vec<(u64, Vec<usize>)> {
    let group_of = |e: &sys::fs::Extent| {
        groups.iter().find(|(s, l)| e.physical >= *s && e.physical + e.length <= s + l).map(|(s, _)| *s)
    };
    let mut out: Vec<(u64, Vec<usize>)> = Vec::new();
    let mut straddling: Vec<u64> = Vec::new();
    for (i, extents) in files.iter().enumerate() {
        let owners: Vec<Option<u64>> = extents.iter().map(group_of).collect();
        match owners.first() {
            Some(Some(g)) if owners.iter().all(|o| *o == Some(*g)) => match out.iter_mut().find(|(s, _)| s == g) {
                Some((_, v)) => v.push(i),
                None => out.push((*g, vec![i])),
            },
            _ => straddling.extend(owners.into_iter().flatten()),
        }
    }
    out.retain(|(g, idx)| {
        let len = groups.iter().find(|(s, _)| s == g).map(|(_, l)| *l).unwrap_or(0);
        !straddling.contains(g) && idx.len() as u64 == len / FILE_BYTES
    });
    out.sort();
    out
}

/// Knows which file lives in which group (FIEMAP), keeps one file of each
/// full group (seeded choice, printed) and deletes the rest: each group
/// ends at 10 %, under the reclaim threshold. Returns (group, kept file).
///
/// With `--reclaim dynamic` one full group (seeded) is thinned first and
/// committed, as a spacer. Dynamic reclaim marks a group only when one free
/// takes it from at or above its threshold to below, and that threshold is
/// 0 while less than one data chunk is allocated but unused, pinned bytes
/// counting as used until their commit (calc_dynamic_reclaim_threshold(),
/// 6.12). The fill leaves ~0.6 chunk unused (3 GiB: 92 % of the data
/// space), so without the spacer nothing is ever marked (measured: 13
/// rounds, 0 relocations). After it, with ~no unallocated space left, the
/// threshold is ~100 %: each kept group's first free marks it.
fn fragment(run: &mut Run, fs: &Fs, files: &[PathBuf], n: u64) -> Result<Vec<(u64, PathBuf)>, Stop> {
    run.phase(Phase::Fragment, |r| {
        let groups = at("data block groups", fs.data_block_groups())?;
        let mut extents = Vec::new();
        for f in files {
            let file = std::fs::File::open(f).map_err(sys::with("open", f))?;
            extents.push(at("fiemap", sys::fs::fiemap(&file, f))?);
        }
        let mut full = full_groups(&groups, &extents);
        r.report.data_block_group_bytes = groups.iter().map(|(_, l)| *l).max();
        let used: u64 = extents.iter().flatten().map(|e| e.length).sum();
        let total: u64 = groups.iter().map(|(_, l)| *l).sum();
        r.report.fill_percent = fill::percent(used, total.saturating_sub(used));
        if r.cfg.reclaim == Reclaim::Dynamic && full.len() > 1 {
            let (g, idx) = full.remove(r.rng.usize(..full.len()));
            let keep = idx[r.rng.usize(..idx.len())];
            let thinned = thin(files, &idx, keep)?;
            r.kernel_sync(fs, Phase::Fragment)?;
            r.progress.say(&format!("fragment: round {n}: dynamic reclaim: spacer group {g} thinned ({thinned} files) and committed"));
        }
        let mut kept = Vec::new();
        let mut deleted = 0;
        for (g, idx) in &full {
            let keep = idx[r.rng.usize(..idx.len())];
            deleted += thin(files, idx, keep)?;
            kept.push((*g, files[keep].clone()));
        }
        let said: Vec<String> = kept.iter().map(|(g, f)| format!("{g}:{}", f.file_name().unwrap_or_default().to_string_lossy())).collect();
        r.progress.say(&format!(
            "fragment: round {n}: {} data block groups, {} full; deleted {deleted} files, kept (group:file) {}",
            groups.len(),
            full.len(),
            said.join(" ")
        ));
        Ok(kept)
    })
}

/// Deletes the files `idx` of one group but `keep`; returns how many.
fn thin(files: &[PathBuf], idx: &[usize], keep: usize) -> Result<u64, Stop> {
    let mut deleted = 0;
    for i in idx.iter().filter(|i| **i != keep) {
        std::fs::remove_file(&files[*i]).map_err(sys::with("unlink", &files[*i]))?;
        deleted += 1;
    }
    Ok(deleted)
}

/// Three commits, and more while fewer relocations than groups have failed
/// (up to 5 s): each failed group then sits on the worker's retry list. A
/// group the worker finds pinned or reserved is skipped at `next:` and,
/// with periodic reclaim off, never queued again: such a round cannot open
/// a window (measured: about half the rounds), so it gives up early.
fn fail_relocations(run: &mut Run, fs: &Fs, groups: u64) -> Result<bool, Stop> {
    let base = run.reclaim_base(fs)?;
    let timeout = Duration::from_secs(run.cfg.timeout_secs.min(5));
    run.phase(Phase::Trigger, |r| {
        let deadline = Instant::now() + timeout;
        let mut syncs = 0;
        loop {
            r.kernel_sync(fs, Phase::Trigger)?;
            syncs += 1;
            r.drain();
            let (c, e) = r.count_reclaims(fs, &base)?;
            if (syncs >= 3 && e >= groups) || Instant::now() >= deadline {
                r.progress.say(&format!("trigger: {syncs} syncs: {c} relocated, {e} relocations failed ({groups} groups kept)"));
                return Ok(e > 0);
            }
            nap(Duration::from_millis(100))?;
        }
    })
}

/// The race: helpers committing back to back (each retry then waits in
/// btrfs_inc_block_group_ro() for a commit in its dirty-block-group phase,
/// 10-130 ms instead of 30 us) and churning, then the burst of unlinks, then
/// the wait for the kernel's answer. `Ok(true)`: trouble seen, helpers
/// abandoned.
fn race(r: &mut Run, fs: &Fs, last: &[(u64, PathBuf)]) -> Result<bool, Stop> {
    let churn_dir = r.cfg.mnt.join("churn");
    at("mkdir", std::fs::create_dir_all(&churn_dir))?;
    let mut helpers = Vec::new();
    for _ in 0..2 {
        helpers.push(at("sync helper", spawn_helper(host::thread_count(), || loop {
            let _ = fs.sync();
        }))?);
    }
    let dir = churn_dir.clone();
    helpers.push(at("churn helper", spawn_helper(host::thread_count(), move || churn(&dir)))?);
    // A signal while the helpers run (the test hook holds it here) must
    // take the same way out: helpers killed and reaped, then the unmount.
    let result = pause_inside(Phase::Hunt, r.pass.name(), "helpers").and_then(|()| burst_and_watch(r, last));
    let trouble = r.evidence_seen();
    for h in &helpers {
        let _ = h.kill();
    }
    if trouble {
        // Never waited for: a helper stuck in the kernel stays there.
        r.progress.say(&format!("hunt: kernel trouble; {} helper processes abandoned", helpers.len()));
        return result.map(|_| true);
    }
    let hung = reap(r, &helpers);
    result?;
    if hung {
        r.facts.killed_in = Some((Phase::Hunt, None));
        return Err(Stop::Killed);
    }
    Ok(false)
}

/// Helpers that do not die within --op-timeout are stuck in a sync: the
/// kernel stopped making progress.
fn reap(r: &mut Run, helpers: &[Helper]) -> bool {
    let deadline = Instant::now() + Duration::from_secs(r.cfg.op_timeout_secs);
    let mut hung = false;
    for h in helpers {
        match h.reap(deadline.saturating_duration_since(Instant::now())) {
            Ok(ChildEnd::Hung) => {
                r.progress.say(&format!("hunt: helper {} still in the kernel after {} s", h.pid, r.cfg.op_timeout_secs));
                hung = true;
            }
            Ok(_) => {}
            Err(e) => r.report.notes.push(format!("hunt: {e}")),
        }
    }
    hung
}

/// The unlinks back to back, in a seeded order, then up to
/// WATCH_AFTER_BURST of log watching (stops at the first trouble).
fn burst_and_watch(r: &mut Run, last: &[(u64, PathBuf)]) -> Result<(), Stop> {
    // Let the helpers' commits get going first.
    nap(Duration::from_millis(300))?;
    let mut order: Vec<usize> = (0..last.len()).collect();
    r.rng.shuffle(&mut order);
    for i in &order {
        let path = &last[*i].1;
        std::fs::remove_file(path).map_err(sys::with("unlink", path))?;
    }
    let groups: Vec<u64> = order.iter().map(|i| last[*i].0).collect();
    r.progress.say(&format!("hunt: emptied {} groups in the order {groups:?}", groups.len()));
    let until = Instant::now() + WATCH_AFTER_BURST;
    while Instant::now() < until {
        nap(Duration::from_millis(50))?;
        r.drain();
        if r.evidence_seen() {
            let stats = r.report.hunt.get_or_insert_with(HuntStats::default);
            stats.first_evidence_seconds.get_or_insert(r.started.elapsed().as_secs_f64());
            break;
        }
    }
    Ok(())
}

/// The churn helper: empty files created and unlinked in a loop, so every
/// commit has delayed refs and dirty block groups to write.
fn churn(dir: &Path) -> i32 {
    loop {
        for i in 0..64 {
            let _ = std::fs::File::create(dir.join(format!("c{i}")));
        }
        for i in 0..64 {
            let _ = std::fs::remove_file(dir.join(format!("c{i}")));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::fs::Extent;

    const MIB: u64 = 1 << 20;

    fn ext(at: u64) -> Vec<Extent> {
        vec![Extent { physical: at, length: 32 * MIB }]
    }

    #[test]
    fn a_group_is_full_only_with_all_its_files_inside() {
        let g1 = 1000 * MIB;
        let g2 = g1 + 320 * MIB;
        let groups = [(g1, 320 * MIB), (g2, 320 * MIB)];
        let mut files: Vec<Vec<Extent>> = (0..10).map(|i| ext(g1 + i * 32 * MIB)).collect();
        // g2: nine files, the tenth straddles into it from nowhere.
        files.extend((0..9).map(|i| ext(g2 + i * 32 * MIB)));
        assert_eq!(full_groups(&groups, &files), vec![(g1, (0..10).collect())]);
        files.push(ext(g2 + 9 * 32 * MIB));
        assert_eq!(full_groups(&groups, &files).len(), 2);
        // A file split across g1 and g2 disqualifies both.
        files[3] = vec![Extent { physical: g1 + 96 * MIB, length: 16 * MIB }, Extent { physical: g2 + 300 * MIB, length: 16 * MIB }];
        assert!(full_groups(&groups, &files).is_empty());
    }
}

//! The steps of the bug report's list, shared by the single pass and the
//! stress pass: fresh filesystem, fill (and starve), knobs, fragment,
//! trigger, settle, unmount. Each prints one progress line.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};
use std::time::{Duration, Instant};

use crate::btrfs::childop::OpError;
use crate::btrfs::fill;
use crate::btrfs::fs::{Fs, Offered};
use super::config::Enospc;
use crate::btrfs::fill::FillMode;
use crate::btrfs::format::{self, FormatError, Mkfs};
use crate::btrfs::mount::{self, Mounted};
use crate::device::{self, Target};
use crate::btrfs::mkfs::Ids;
use crate::base::phase::Phase;
use crate::base::size::human;

use super::counters::Base;
use super::run::{PassKind, Run};
use super::stop::{at, check_signal, nap, Stop};
use super::settle::{End, Next, Seen, Settle};
use crate::kernel::kmsg::events::EventKind;
use crate::kernel::kmsg::reclaim_loop;
use crate::kernel::kmsg::trace::{Tracing, LOOP_EVENTS};

/// How often the settle reads the trace for the endless loop.
const LOOP_LOOK_EVERY: Duration = Duration::from_millis(500);
/// Once the loop showed, how long it is watched before the unmount (no
/// commit forced: a fixed kernel's worker would go idle in milliseconds).
const LOOP_CONFIRM: Duration = Duration::from_secs(3);
const BUSY_LOOK: Duration = Duration::from_millis(100);

impl Run<'_> {
    /// mkfs, then mount, then check that this kernel can test the bug.
    pub(super) fn fresh_filesystem(&mut self, target: &Target, mkfs: &Mkfs) -> Result<(Mounted, Fs), Stop> {
        let cfg = self.cfg;
        let v1 = cfg.space_cache_v1;
        // A fresh filesystem without the free space tree: the injected ENOSPC
        // is in delete_block_group_cache(), reached only for block groups
        // with a v1 cache inode.
        // The natural pass: single metadata with small nodes fills up fast,
        // and without spare unallocated space it cannot grow.
        let natural = self.pass == PassKind::Natural;
        // Two passes, iterations or devices never share an fsid: the kernel
        // keys its devices by it (btrfs_scan_one_device).
        self.formats += 1;
        let ids = Ids::derive(cfg.seed, self.report.iterations + 1, self.formats, device_identity(&target.block));
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let spelling = self.phase(Phase::Mkfs, |r| {
            let s = format::format(mkfs, &target.block, natural, v1, &ids, now).map_err(|e| match e {
                FormatError::Interrupted(sig) => Stop::Interrupted(sig),
                FormatError::Failed(m) => Stop::Setup(m),
            })?;
            r.progress.say(&format!(
                "mkfs: {} ({}) formatted{}",
                target.block.display(),
                human(target.bytes),
                s.as_deref().map(|s| format!(" with {s}")).unwrap_or_default()
            ));
            Ok(s)
        })?;

        // noatime as a flag (btrfs rejects it in the data string); the cache
        // the kernel really uses is read back from mountinfo.
        let data = match (v1, spelling.is_some(), natural) {
            (true, true, false) => "space_cache=v1",
            (true, true, true) => "space_cache=v1,max_inline=2048",
            (true, false, false) => "clear_cache,space_cache=v1",
            (true, false, true) => "clear_cache,space_cache=v1,max_inline=2048",
            (false, _, _) => "space_cache=v2",
        };
        // Stress needs nodiscard: with discard=async (the default since 6.2
        // where the device supports discard) btrfs_update_block_group() sends
        // an emptied group to the discard lists instead of
        // btrfs_mark_bg_unused(): the hunt's race window never opens, and the
        // churn's emptied groups wait there instead of being deleted.
        let data = if cfg.stress_secs.is_some() { format!("{data},nodiscard") } else { data.to_string() };
        let data = data.as_str();
        let mounted = self.phase(Phase::Mount, |r| {
            at("create mount point", std::fs::create_dir_all(&cfg.mnt))?;
            let op_timeout = Duration::from_secs(cfg.op_timeout_secs);
            let m = at("mount", Mounted::mount(&target.block, &cfg.mnt, data, op_timeout, &r.cleanup))?;
            r.report.mount_options = format!("noatime,{data}");
            let cache = mount::active_space_cache(&cfg.mnt).unwrap_or("unknown");
            r.facts.space_cache = Some(cache.to_string());
            r.progress.say(&format!("mount: {} on {} ({data}), space cache {cache}", target.block.display(), cfg.mnt.display()));
            if !v1 && *mkfs == Mkfs::Builtin && !r.report.notes.iter().any(|n| n.contains("free space tree")) {
                r.report.notes.push("space cache v2: the built-in mkfs writes no free space tree; the kernel built it at mount".into());
            }
            if v1 && cache != "v1" {
                return Err(Stop::Setup(format!("asked for the v1 space cache, the kernel mounted with {cache}")));
            }
            Ok(m)
        })?;
        let fs = at("open filesystem", Fs::open(&cfg.mnt))?;
        let offered = fs.offered();
        self.facts.offered = Some(offered);
        match offered {
            Offered::DynamicPeriodic => {}
            // 5.19 to 6.10: the same btrfs_reclaim_bgs_work() and error path,
            // reached through the static threshold; counted from the log.
            Offered::StaticThreshold => self.facts.counters_from_log = !fs.has_counters(),
            Offered::Nothing => {
                return Err(Stop::Setup(format!(
                    "kernel has neither {} nor bg_reclaim_threshold in {}: no automatic reclaim of data block groups (bg_reclaim_threshold arrived in 5.19)",
                    fs.missing_reclaim_files().join(", "),
                    fs.data_sysfs.display()
                )));
            }
        }
        Ok((mounted, fs))
    }

    /// Fill to --fill %. The knobs stay off until after it: while
    /// periodic_reclaim is 1, every allocation subtracts from
    /// reclaimable_bytes (btrfs_update_block_group), and the sweep never arms.
    pub(super) fn fill(&mut self, fs: &Fs) -> Result<Vec<PathBuf>, Stop> {
        let cfg = self.cfg;
        let dir = cfg.mnt.join("fill");
        // The natural pass fills data until ENOSPC, so that all unallocated
        // space becomes data block groups and metadata keeps its first chunk.
        // Its recipe is fixed: --fill and --fill-mode are the injected pass's
        // (and --enospc natural's, where it is the only pass).
        let natural = self.pass == PassKind::Natural;
        let (pct, mode) = match (natural, cfg.enospc) {
            (false, _) => (cfg.fill_percent, cfg.fill_mode),
            (true, Enospc::Natural) => (100, cfg.fill_mode),
            (true, _) => (100, FillMode::Fallocate),
        };
        let filled = self.phase(Phase::Fill, |r| {
            at("mkdir", std::fs::create_dir_all(&dir))?;
            let f = at("fill", fill::fill(&fs.dir, &dir, mode, pct, &mut r.rng, &mut r.progress))?;
            r.progress.say(&format!(
                "fill: {} files, {} ({:.1}% of the data space){}",
                f.files.len(),
                human(f.bytes),
                f.percent,
                if f.hit_enospc { ", stopped at ENOSPC" } else { "" }
            ));
            Ok(f)
        })?;
        self.report.bytes_written += filled.bytes;
        self.report.fill_percent = filled.percent;
        if let Some((_, secs)) = self.report.phases.iter().find(|(p, _)| *p == Phase::Fill) {
            self.report.fill_bytes_per_second = self.report.bytes_written as f64 / secs.max(1e-6);
        }
        if let Some(sig) = filled.interrupted {
            return Err(Stop::Interrupted(sig));
        }
        if natural {
            self.starve_metadata(fs)?;
        }
        Ok(filled.files)
    }

    /// Metadata full: relocation then fails with a genuine ENOSPC and
    /// reclaim goes down the same error path as with the injected one.
    pub(super) fn starve_metadata(&mut self, fs: &Fs) -> Result<(), Stop> {
        let dir = self.cfg.mnt.join("meta");
        self.phase(Phase::Starve, |r| {
            let (xattrs, files) = at("starve metadata", fill::starve_metadata(&dir, &mut r.progress))?;
            check_signal()?;
            // Commit, so what the transaction reserved is really used.
            let _ = fs.syncfs();
            r.progress.say(&format!("starve: {xattrs} xattrs and {files} small inline files until ENOSPC: metadata is full"));
            Ok(())
        })
    }

    /// Enable reclaim (--reclaim), now that the fill is done. Only with
    /// periodic_reclaim 0 does btrfs_reclaim_bgs_work() put a failed group
    /// on its retry list.
    pub(super) fn knobs(&mut self, fs: &Fs) -> Result<(), Stop> {
        let reclaim = self.reclaim_to_run();
        self.report.reclaim = reclaim;
        // Before 6.11 the dynamic/periodic files do not exist: their "off"
        // is the only state there is.
        let offered = self.facts.offered;
        let knobs: Vec<_> = reclaim
            .knobs()
            .into_iter()
            .filter(|(name, value)| offered != Some(Offered::StaticThreshold) || *value != "0" || *name == "bg_reclaim_threshold")
            .collect();
        self.phase(Phase::Knobs, |r| {
            for (name, value) in &knobs {
                at("reclaim knobs", fs.write_knob(name, value))?;
            }
            let said: Vec<String> = knobs.iter().map(|(k, v)| format!("{k}={v}")).collect();
            r.progress.say(&format!("knobs: {} ({})", said.join(" "), fs.data_sysfs.display()));
            Ok(())
        })
    }

    /// Delete every `nth` file so block groups become reclaim candidates,
    /// then count the data block groups that own a v1 cache inode.
    pub(super) fn fragment(&mut self, fs: &Fs, files: &[PathBuf], nth: usize) -> Result<(), Stop> {
        self.phase(Phase::Fragment, |r| {
            let n = at("fragment", fill::fragment(files, nth))?;
            at("fragment", fs.syncfs())?;
            let groups = at("data block groups", fs.data_block_groups())?;
            let cached = at("v1 cache inodes", fs.v1_cache_starts())?;
            let with_cache = groups.iter().filter(|(s, _)| cached.contains(s)).count() as u64;
            let bg_bytes = groups.iter().map(|(_, l)| *l).max();
            r.report.data_block_group_bytes = bg_bytes;
            r.facts.v1_cache_block_groups = Some(with_cache);
            r.progress.say(&format!(
                "fragment: deleted {n} files; {} data block groups of {}, {with_cache} with a v1 cache inode",
                groups.len(),
                bg_bytes.map(human).unwrap_or_else(|| "?".into())
            ));
            if with_cache == 0 {
                r.progress.say("fragment: no v1 cache inode: the injection site cannot be reached (reclaim still runs)");
            }
            r.cached_groups = cached.clone();
            if r.probing() {
                r.thin_probe_group(fs, files, &groups, &cached)?;
            }
            Ok(())
        })
    }

    /// `--enospc auto`'s injected pass is there to learn whether the kernel
    /// injects ENOSPC; where it does not, relocating every group of the
    /// layout is slow (a TCG guest: 20-30 s a group on 6.1) and tells nothing.
    pub(super) fn probing(&self) -> bool {
        self.pass == PassKind::Injected && self.cfg.enospc == Enospc::Auto && self.cfg.space_cache_v1 && self.cfg.stress_secs.is_none()
    }

    /// One group with a v1 cache inode keeps one file: reclaim relocates the
    /// emptiest group first (btrfs_reclaim_bgs_work sorts reclaim_bgs by
    /// used bytes), so the answer comes from 32 MiB, not 160.
    fn thin_probe_group(&mut self, fs: &Fs, files: &[PathBuf], groups: &[(u64, u64)], cached: &[u64]) -> Result<(), Stop> {
        let left: Vec<&PathBuf> = files.iter().filter(|f| f.exists()).collect();
        let mut extents = Vec::new();
        for f in &left {
            let file = std::fs::File::open(f).map_err(crate::sys::with("open", f))?;
            extents.push(at("fiemap", crate::sys::fs::fiemap(&file, f))?);
        }
        let Some((group, delete)) = probe_plan(groups, cached, &extents) else { return Ok(()) };
        for i in &delete {
            std::fs::remove_file(left[*i]).map_err(crate::sys::with("unlink", left[*i]))?;
        }
        at("fragment", fs.syncfs())?;
        self.progress.say(&format!(
            "fragment: probe: block group {group} (v1 cache) thinned to one file ({} deleted): relocated first, it shows whether the kernel injects",
            delete.len()
        ));
        Ok(())
    }

    /// A group with a v1 cache inode whose relocation printed `relocating
    /// block group`: it got past delete_block_group_cache(), where the
    /// instrumented kernel injects: this kernel does not.
    pub(super) fn past_injection_site(&self) -> Option<u64> {
        if !self.probing() {
            return None;
        }
        let log = &self.watch.as_ref()?.log;
        log.relocation_starts.iter().copied().find(|bg| self.cached_groups.contains(bg))
    }

    /// Each BTRFS_IOC_SYNC commits and wakes the cleaner; a block group is
    /// queued on the second sweep that finds it (btrfs_reclaim_sweep needs
    /// the reclaim_mark set by the first). Returns the counters' base when
    /// reclaim fired.
    pub(super) fn trigger(&mut self, fs: &Fs) -> Result<Option<Base>, Stop> {
        let cfg = self.cfg;
        let base = self.reclaim_base(fs)?;
        if self.facts.offered == Some(Offered::StaticThreshold) {
            self.start_loop_watch();
        }
        self.phase(Phase::Trigger, |r| {
            let deadline = Instant::now() + Duration::from_secs(cfg.timeout_secs);
            loop {
                r.drain();
                let (c, e) = r.count_reclaims(fs, &base)?;
                if let Some(bg) = r.past_injection_site() {
                    r.progress.say(&format!(
                        "trigger: block group {bg} (v1 cache) is being relocated past delete_block_group_cache(): no injection in this kernel"
                    ));
                    return Ok(Some(base));
                }
                if c + e > 0 {
                    r.progress.say(&format!("trigger: reclaim fired ({c} relocated, {e} errors)"));
                    return Ok(Some(base));
                }
                if Instant::now() >= deadline {
                    r.progress.say(&format!("trigger: reclaim did not fire within {} s", cfg.timeout_secs));
                    return Ok(None);
                }
                r.progress.update("trigger: waiting for reclaim");
                // The worker holds the exclusive operation while it relocates
                // (settle.rs): its first result is what we wait for, and a
                // commit now would only queue behind the relocation's own.
                if fs.exclusive_operation_busy() == Some(true) {
                    nap(Duration::from_millis(20))?;
                    continue;
                }
                r.kernel_sync(fs, Phase::Trigger)?;
                // The cleaner runs after the commit: give it time to sweep.
                nap(Duration::from_millis(50))?;
            }
        })
    }

    /// Reclaim works asynchronously: wait until its worker is done
    /// (settle.rs says how that is known), syncing so the cleaner keeps
    /// sweeping.
    pub(super) fn settle(&mut self, fs: &Fs, base: Base) -> Result<(), Stop> {
        let cfg = self.cfg;
        self.phase(Phase::Settle, |r| {
            let started = Instant::now();
            if r.past_injection_site().is_some() {
                // Nothing to wait for: the unmount lets the relocation under
                // way finish, and the worker then drops the rest.
                r.settled = Some((End::NoInjection, 0.0));
                r.loop_trace = None;
                return Ok(());
            }
            // A fixed kernel with only the static threshold retries each
            // failed group on every cleaner run, and each commit of ours
            // wakes the cleaner: there a retry is no news, only a group
            // failing for the first time is (attempts and errors come from
            // lines rate-limited apart, so no success count is exact).
            let retries_forever = r.facts.offered == Some(Offered::StaticThreshold);
            let news = |r: &mut Run, (c, e): (u64, u64)| match (retries_forever, &r.watch) {
                (true, Some(w)) => match w.log.failed_groups_since(0) {
                    0 => (c, 0),
                    failed => (0, failed),
                },
                _ => (c, e),
            };
            let first = r.count_reclaims(fs, &base)?;
            let mut settle = Settle::new(news(r, first), Duration::from_secs(cfg.timeout_secs));
            if retries_forever {
                settle = settle.retrying();
            }
            let mut busy_since: Option<Duration> = None;
            // Without tracefs: the kernel log's events when the busy run began.
            let mut busy_from_event = 0;
            let mut next_look = Duration::ZERO;
            let mut loop_seen: Option<Duration> = None;
            let (end, (c, e)) = loop {
                let busy = fs.exclusive_operation_busy();
                r.drain();
                let counts = r.count_reclaims(fs, &base)?;
                let at_ = started.elapsed();
                // exclusive_operation held without a break: one worker run
                // (settle forces no commit while it is held).
                if busy_since.is_none() {
                    busy_from_event = r.watch.as_ref().map_or(0, |w| w.log.events.len());
                }
                busy_since = match busy {
                    Some(true) => Some(busy_since.unwrap_or(at_)),
                    _ => None,
                };
                if let (true, None, None, Some(since), Some(w)) =
                    (retries_forever, &r.loop_trace, &loop_seen, busy_since, &r.watch)
                {
                    let failed: Vec<u64> = w.log.events[busy_from_event.min(w.log.events.len())..]
                        .iter()
                        .filter(|e| e.kind == EventKind::RelocError)
                        .filter_map(|e| e.bg)
                        .collect();
                    if let Some(found) = reclaim_loop::from_busy_span(&failed, (at_ - since).as_secs_f64()) {
                        r.progress.say(&format!("settle: {}", found.describe()));
                        r.facts.longest_busy_secs = Some((at_ - since).as_secs_f64());
                        r.facts.reclaim_loop = Some(found);
                        break (End::ReclaimLoop, counts);
                    }
                }
                if let Some(seen) = loop_seen {
                    // Watched a little longer, forcing no commit: how many
                    // more attempts, and whether the worker ever let go.
                    if at_ - seen < LOOP_CONFIRM {
                        nap(BUSY_LOOK)?;
                        continue;
                    }
                    r.look_for_loop(fs)?;
                    r.facts.longest_busy_secs = busy_since.map(|since| (at_ - since).as_secs_f64());
                    break (End::ReclaimLoop, counts);
                }
                if let Some(bg) = r.past_injection_site() {
                    r.progress.say(&format!(
                        "settle: block group {bg} (v1 cache) is being relocated past delete_block_group_cache(): no injection in this kernel"
                    ));
                    break (End::NoInjection, counts);
                }
                if at_ >= next_look {
                    next_look = at_ + LOOP_LOOK_EVERY;
                    if r.look_for_loop(fs)? {
                        loop_seen = Some(at_);
                        continue;
                    }
                }
                r.progress.update(&format!("settle: {} relocated, {} errors", counts.0, counts.1));
                match settle.next(Seen { at: at_, busy, counts: news(r, counts) }) {
                    Next::Wait(d) => nap(d)?,
                    Next::Sync => {
                        let t = Instant::now();
                        r.kernel_sync(fs, Phase::Settle)?;
                        settle.synced(started.elapsed(), t.elapsed());
                    }
                    Next::Done(end) => break (end, counts),
                }
            };
            r.loop_trace = None;
            let tail = started.elapsed().saturating_sub(settle.last_result()).as_secs_f64();
            r.settled = Some((end, tail));
            r.progress.say(&format!("settle: {c} relocated, {e} errors; {} {tail:.2} s after the last result", end.name()));
            Ok(())
        })
    }

    /// tracefs for the endless-loop watch (kernels with only the static
    /// threshold, where 7e2718099438 shipped). Without it the loop is
    /// looked for in exclusive_operation and the kernel log only
    /// (reclaim_loop::from_busy_span), and a note says so.
    fn start_loop_watch(&mut self) {
        // The last pass's first: its drop disables the very same events.
        self.loop_trace = None;
        match Tracing::start_events(&LOOP_EVENTS) {
            Ok(Some(t)) => self.loop_trace = Some(t),
            Ok(None) => self.note_once("tracefs lacks btrfs_reclaim_block_group/btrfs_add_reclaim_block_group: the endless reclaim loop is looked for only through exclusive_operation and the kernel log (a 15 s run)".into()),
            Err(e) => self.note_once(format!("tracefs: {e}: the endless reclaim loop is looked for only through exclusive_operation and the kernel log (a 15 s run)")),
        }
    }

    fn note_once(&mut self, note: String) {
        if !self.report.notes.contains(&note) {
            self.report.notes.push(note);
        }
    }

    /// Reads the trace and asks kmsg::reclaim_loop; true once it fired.
    fn look_for_loop(&mut self, fs: &Fs) -> Result<bool, Stop> {
        let Some(t) = &self.loop_trace else { return Ok(false) };
        let trace = at("tracefs", t.read())?;
        let Some(found) = reclaim_loop::detect(&trace, &fs.fsid) else { return Ok(false) };
        self.progress.say(&format!("settle: {}", found.describe()));
        self.report.loop_evidence = found.lines.clone();
        self.facts.reclaim_loop = Some(found);
        Ok(true)
    }

    /// close_ctree() drops the last block group references: a wrong count
    /// shows here, so the unmount is judged too.
    pub(super) fn unmount(&mut self, mounted: Mounted, target: &Target, last: bool) -> Result<(), Stop> {
        let cfg = self.cfg;
        self.phase(Phase::Unmount, |r| {
            if cfg.keep_mounted && last {
                mounted.keep();
                r.report.notes.push(format!("left mounted on {} (--keep-mounted)", cfg.mnt.display()));
                if let Some(lo) = &target.loop_dev {
                    r.report.notes.push(format!("{} stays attached until unmounted (autoclear)", lo.path.display()));
                }
                return Ok(());
            }
            let timeout = Duration::from_secs(cfg.op_timeout_secs);
            let looping = r.facts.reclaim_loop.is_some() && r.facts.loop_stopped.is_none();
            let t = Instant::now();
            let killed = match mounted.unmount() {
                Ok(note) => {
                    r.report.notes.extend(note);
                    r.progress.say(&format!("unmount: {}", cfg.mnt.display()));
                    if looping {
                        // close_ctree() waits for the worker: it let go.
                        r.facts.loop_stopped = Some(true);
                        r.progress.say(&format!("unmount: returned after {:.1} s: the loop stopped", t.elapsed().as_secs_f64()));
                    }
                    return Ok(());
                }
                Err(OpError::Failed(e)) => return Err(Stop::Setup(format!("unmount: {e}"))),
                Err(OpError::Killed(sig)) => Some(sig),
                Err(OpError::Hung) => None,
            };
            r.facts.killed_in = Some((Phase::Unmount, killed));
            if looping {
                r.facts.loop_stopped = Some(false);
            }
            r.progress.say(&format!(
                "unmount: {}",
                match killed {
                    Some(sig) => format!("the kernel killed the unmounting task ({})", sig.name()),
                    None => format!("hung in the kernel for {} s", cfg.op_timeout_secs),
                }
            ));
            // A killed child may have died before the kernel finished (or
            // even started) the unmount: one more try, in its own child. A
            // hung one holds the superblock: another would hang too.
            if killed.is_some() && mount::is_mount_point(&cfg.mnt) {
                match mount::unmount_path(&cfg.mnt, timeout) {
                    Ok(_) => r.report.notes.push(format!("cleanup unmounted {} after the killed unmount", cfg.mnt.display())),
                    Err(_) => r.progress.say("unmount: cleanup could not unmount either"),
                }
            }
            Err(Stop::Killed)
        })
    }
}

/// The probe group: among groups with a v1 cache inode, the one holding the
/// most whole files (two at least); all its files but the first go.
/// `extents[i]` are file i's extents (FIEMAP: physical = logical on one
/// device). Returns (group start, indexes of the files to delete).
pub(super) fn probe_plan(groups: &[(u64, u64)], cached: &[u64], extents: &[Vec<crate::sys::fs::Extent>]) -> Option<(u64, Vec<usize>)> {
    let inside = |e: &crate::sys::fs::Extent, (s, l): (u64, u64)| e.physical >= s && e.physical + e.length <= s + l;
    groups
        .iter()
        .filter(|(s, _)| cached.contains(s))
        .map(|&(s, l)| {
            let files: Vec<usize> =
                (0..extents.len()).filter(|i| !extents[*i].is_empty() && extents[*i].iter().all(|e| inside(e, (s, l)))).collect();
            (s, files)
        })
        .filter(|(_, files)| files.len() >= 2)
        .max_by_key(|(s, files)| (files.len(), std::cmp::Reverse(*s)))
        .map(|(s, files)| (s, files[1..].to_vec()))
}

/// What tells this device from another for the fsid: its device number
/// (the loop device of an image), never the same for two devices at once.
fn device_identity(block: &Path) -> u64 {
    device::rdev(block).map(|(major, minor)| (u64::from(major) << 32) | u64::from(minor)).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::probe_plan;
    use crate::sys::fs::Extent;

    #[test]
    fn the_probe_keeps_one_file_of_the_fullest_cached_group() {
        // Three 320 MiB groups; the first has no v1 cache inode.
        let groups = [(0, 320), (320, 320), (640, 320)];
        let cached = [320, 640];
        let e = |p: u64| vec![Extent { physical: p, length: 32 }];
        let files = vec![e(0), e(32), e(64), e(320), e(352), e(640), e(672), e(704), vec![], e(300)];
        // Group 640 holds files 5, 6, 7; 300+32 straddles 0 and 320.
        assert_eq!(probe_plan(&groups, &cached, &files), Some((640, vec![6, 7])));
        // A tie goes to the lower start.
        assert_eq!(probe_plan(&groups, &cached, &files[..7]), Some((320, vec![4])));
        assert_eq!(probe_plan(&groups, &[], &files), None, "no cached group");
        assert_eq!(probe_plan(&groups, &cached, &[e(320), e(640)]), None, "one file each: nothing to thin");
    }
}

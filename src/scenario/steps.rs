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
use crate::btrfs::format::{self, Mkfs};
use crate::btrfs::mount::{self, Mounted};
use crate::device::{self, Target};
use crate::btrfs::mkfs::Ids;
use crate::base::phase::Phase;
use crate::base::size::human;

use super::run::{PassKind, Run};
use super::stop::{at, check_signal, Stop};

impl Run<'_> {
    /// mkfs, then mount, then check that this kernel can test the bug.
    pub(super) fn fresh_filesystem(&mut self, target: &Target, mkfs: &Mkfs) -> Result<(Mounted, Fs), Stop> {
        let cfg = self.cfg;
        // The natural pass: single metadata with small nodes fills up fast,
        // and without spare unallocated space it cannot grow.
        let natural = self.pass == PassKind::Natural;
        let spelling = self.format(target, mkfs, natural)?;
        let data = mount_data(cfg.space_cache_v1, spelling.is_some(), natural, cfg.stress_secs.is_some());
        let mounted = self.mount(target, mkfs, &data)?;
        let fs = at("open filesystem", Fs::open(&cfg.mnt))?;
        self.reclaim_offered(&fs)?;
        Ok((mounted, fs))
    }

    /// mkfs (built-in or mkfs.btrfs) with a fresh fsid; how mkfs.btrfs kept
    /// the free space tree off, where it did.
    fn format(&mut self, target: &Target, mkfs: &Mkfs, natural: bool) -> Result<Option<String>, Stop> {
        let cfg = self.cfg;
        // A fresh filesystem without the free space tree: the injected ENOSPC
        // is in delete_block_group_cache(), reached only for block groups
        // with a v1 cache inode.
        let v1 = cfg.space_cache_v1;
        // Two passes, iterations or devices never share an fsid: the kernel
        // keys its devices by it (btrfs_scan_one_device).
        self.formats += 1;
        let ids = Ids::derive(cfg.seed, self.report.iterations + 1, self.formats, device_identity(&target.block));
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        self.phase(Phase::Mkfs, |r| {
            let s = format::format(mkfs, &target.block, natural, v1, &ids, now)?;
            r.progress.say(&format!(
                "mkfs: {} ({}) formatted{}",
                target.block.display(),
                human(target.bytes),
                s.as_deref().map(|s| format!(" with {s}")).unwrap_or_default()
            ));
            Ok(s)
        })
    }

    /// Mounts with `data`, and checks the space cache the kernel chose.
    fn mount(&mut self, target: &Target, mkfs: &Mkfs, data: &str) -> Result<Mounted, Stop> {
        let cfg = self.cfg;
        let v1 = cfg.space_cache_v1;
        self.phase(Phase::Mount, |r| {
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
        })
    }

    /// Which reclaim this kernel offers: none is a setup failure the judge
    /// turns into "cannot test the bug".
    fn reclaim_offered(&mut self, fs: &Fs) -> Result<(), Stop> {
        let offered = fs.offered();
        self.facts.offered = Some(offered);
        match offered {
            Offered::DynamicPeriodic => Ok(()),
            // 5.19 to 6.10: the same btrfs_reclaim_bgs_work() and error path,
            // reached through the static threshold; counted from the log.
            Offered::StaticThreshold => {
                self.facts.counters_from_log = !fs.has_counters();
                Ok(())
            }
            Offered::Nothing => Err(Stop::Setup(format!(
                "kernel has neither {} nor bg_reclaim_threshold in {}: no automatic reclaim of data block groups (bg_reclaim_threshold arrived in 5.19)",
                fs.missing_reclaim_files().join(", "),
                fs.data_sysfs.display()
            ))),
        }
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
            (false, _) if self.pass == PassKind::Swapfile => (cfg.fill_percent.min(super::swap::FILL_PERCENT), cfg.fill_mode),
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
            // The swapfile pass has no injection site to reach.
            if with_cache == 0 && r.pass != PassKind::Swapfile {
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

/// The mount's data string. noatime goes as a flag (btrfs rejects it in
/// the data string); the cache the kernel really uses is read back from
/// mountinfo. `spelled`: mkfs.btrfs said how it kept the free space tree
/// off (`format::format`); otherwise the mount clears the cache.
fn mount_data(v1: bool, spelled: bool, natural: bool, stress: bool) -> String {
    let data = match (v1, spelled, natural) {
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
    if stress { format!("{data},nodiscard") } else { data.to_string() }
}

/// What tells this device from another for the fsid: its device number
/// (the loop device of an image), never the same for two devices at once.
fn device_identity(block: &Path) -> u64 {
    device::rdev(block).map(|(major, minor)| (u64::from(major) << 32) | u64::from(minor)).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::{mount_data, probe_plan};
    use crate::sys::fs::Extent;

    #[test]
    fn the_mount_options_follow_cache_mkfs_pass_and_mode() {
        assert_eq!(mount_data(true, false, false, false), "clear_cache,space_cache=v1");
        assert_eq!(mount_data(true, true, true, false), "space_cache=v1,max_inline=2048");
        assert_eq!(mount_data(true, false, true, true), "clear_cache,space_cache=v1,max_inline=2048,nodiscard");
        assert_eq!(mount_data(false, true, true, true), "space_cache=v2,nodiscard");
    }

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

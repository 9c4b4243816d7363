//! The single pass, in the order of the bug report's list (corrected: v1
//! cache, knobs after the fill): fresh fs, fill, knobs, fragment, trigger,
//! settle, unmount, judge.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::btrfs::Fs;
use crate::childop::{in_child, OpError};
use crate::kmemleak;
use crate::cli::Config;
use crate::device::{self, Target};
use crate::mkfs_progs;
use crate::mount::{self, Mounted};
use crate::preflight;
use crate::report::{self, Report};
use crate::progress::Progress;
use crate::size::human;
use crate::sys::process::pending_signal;
use crate::verdict::{judge, Facts, Verdict};
use crate::watch::{self, Watch};
use crate::fill;

/// Why a run stopped before its end.
#[derive(Debug)]
pub enum Stop {
    Refused(String),
    Setup(String),
    Interrupted(i32),
    /// A kernel operation's child was killed or hung: `Facts::killed_in`
    /// says which. Evidence, not an error; the run ends.
    Killed,
}

impl From<std::io::Error> for Stop {
    fn from(e: std::io::Error) -> Stop {
        Stop::Setup(e.to_string())
    }
}

/// Adds the step's name to a system error.
pub(crate) fn at<T>(step: &str, r: std::io::Result<T>) -> Result<T, Stop> {
    r.map_err(|e| Stop::Setup(format!("{step}: {e}")))
}

pub(crate) fn check_signal() -> Result<(), Stop> {
    match pending_signal() {
        Some(sig) => Err(Stop::Interrupted(sig)),
        None => Ok(()),
    }
}

/// Sleeps in small slices so a signal is noticed promptly.
pub(crate) fn nap(d: Duration) -> Result<(), Stop> {
    let end = Instant::now() + d;
    while Instant::now() < end {
        check_signal()?;
        std::thread::sleep((end - Instant::now()).min(Duration::from_millis(20)));
    }
    check_signal()
}

pub struct Outcome {
    pub verdict: Verdict,
    pub text: String,
    pub json: String,
}

pub(crate) struct Run<'a> {
    pub(crate) cfg: &'a Config,
    pub(crate) progress: Progress,
    pub(crate) watch: Option<Watch>,
    pub(crate) report: Report,
    pub(crate) facts: Facts,
    taint_before: u64,
    pub(crate) rng: fastrand::Rng,
    pub(crate) started: Instant,
    /// The loop device of the current iteration, for the leftover check.
    loop_path: Option<std::path::PathBuf>,
}

/// VmHWM (peak resident set) of this process, in KiB.
pub fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok()))
        .unwrap_or(0)
}

/// Test hook: `BRR_TEST_PAUSE=<phase>` holds the run at the start of that
/// phase (signals still noticed), so tests can interrupt a chosen phase.
fn test_pause(phase: &str) -> Result<(), Stop> {
    if std::env::var("BRR_TEST_PAUSE").is_ok_and(|p| p == phase) {
        eprintln!("btrfs-reclaim-repro: pausing at {phase} (BRR_TEST_PAUSE)");
        nap(Duration::from_secs(60))?;
    }
    Ok(())
}

pub fn version() -> String {
    format!("{} ({})", env!("CARGO_PKG_VERSION"), env!("BRR_GIT_COMMIT"))
}

pub fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease").map(|s| s.trim().to_string()).unwrap_or_else(|_| "unknown".into())
}

/// Runs the single pass (or the stress run) `--iterations` times, each on a
/// fresh filesystem, and judges them together. Never leaves anything mounted
/// or attached: the guards live in `pass`/`stress` and `setup_and_pass`.
pub fn run(cfg: &Config) -> Outcome {
    let mut run = Run {
        cfg,
        progress: Progress::new(),
        watch: None,
        report: Report {
            version: version(),
            kernel: kernel_release(),
            device: cfg.dev.display().to_string(),
            fill_mode: cfg.fill_mode.name().to_string(),
            seed: cfg.seed,
            ..Report::default()
        },
        facts: Facts {
            unmount_observed: !cfg.keep_mounted,
            reclaim_wait_secs: cfg.stress_secs.unwrap_or(cfg.timeout_secs),
            op_timeout_secs: cfg.op_timeout_secs,
            natural_enospc: cfg.natural_enospc,
            ..Facts::default()
        },
        taint_before: watch::taint(),
        rng: fastrand::Rng::with_seed(cfg.seed),
        started: Instant::now(),
        loop_path: None,
    };
    let started = run.started;
    for i in 1..=cfg.iterations {
        if cfg.iterations > 1 {
            run.progress.say(&format!("iteration {i}/{}", cfg.iterations));
        }
        let result = run.setup_and_pass();
        // Guards have run by now: the unmount and the detach are inside the
        // judging window.
        if let Some(w) = &mut run.watch {
            std::thread::sleep(Duration::from_millis(50));
            w.drain();
            // The next iteration reads with a new Watch: keep this one's count.
            let (lost, errors, last_error) = w.take_read_trouble();
            run.facts.kmsg_lost += lost;
            run.report.kmsg_read_errors += errors;
            run.report.kmsg_read_error = last_error.or(run.report.kmsg_read_error.take());
        }
        run.report.iterations = i;
        match result {
            Ok(()) => {}
            Err(Stop::Refused(why)) => run.facts.refused = Some(why),
            Err(Stop::Setup(why)) => run.facts.setup_failure = Some(why),
            Err(Stop::Interrupted(sig)) => run.facts.interrupted = Some(sig),
            Err(Stop::Killed) => {}
        }
        run.note_leftovers();
        run.report.per_iteration.push(crate::resources::held());
        run.report.notes.extend(mount::take_cleanup_notes());
        let stop_early = run.facts.refused.is_some()
            || run.facts.setup_failure.is_some()
            || run.facts.interrupted.is_some()
            || run.facts.killed_in.is_some()
            || run.facts.kmemleak.is_some_and(|n| n > 0)
            || pending_signal().is_some()
            || run.evidence_seen();
        if stop_early {
            break;
        }
    }
    if run.facts.interrupted.is_none() {
        run.facts.interrupted = pending_signal();
    }
    run.facts.taint_gained = watch::taint() & !run.taint_before;
    run.report.total_seconds = started.elapsed().as_secs_f64();
    run.report.peak_rss_kib = peak_rss_kib();
    run.finish()
}

impl Run<'_> {
    fn finish(mut self) -> Outcome {
        let empty = crate::events::Tracker::default();
        let log = self.watch.as_ref().map(|w| &w.log).unwrap_or(&empty);
        self.report.kmsg_lost = crate::verdict::records_lost(&self.facts, log);
        self.report.reclaim_count = self.facts.reclaim_count;
        self.report.reclaim_errors = self.facts.reclaim_errors;
        self.report.kmemleak = self.facts.kmemleak;
        let verdict = judge(&self.facts, log);
        let text = report::text(&self.report, &verdict, log);
        let json = report::json(&self.report, &verdict, log, &self.facts);
        if let Some(w) = &mut self.watch {
            w.append_to_log(&text);
        }
        Outcome { verdict, text, json }
    }

    /// After an iteration: name what is still mounted or attached (a killed
    /// or hung unmount can leave both; the system may need a reboot).
    fn note_leftovers(&mut self) {
        if self.cfg.keep_mounted {
            return;
        }
        if mount::is_mount_point(&self.cfg.mnt) {
            self.report.notes.push(format!(
                "left mounted on {}: unmounting failed (umount {} may hang; the system may need a reboot)",
                self.cfg.mnt.display(),
                self.cfg.mnt.display()
            ));
        }
        if let Some(lo) = self.loop_path.take() {
            let name = lo.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            if std::path::Path::new(&format!("/sys/block/{name}/loop/backing_file")).exists() {
                self.report.notes.push(format!("{} is still attached (it detaches itself once unmounted: autoclear)", lo.display()));
            }
        }
    }

    /// BTRFS_IOC_SYNC in a child: a kernel that oopses in the commit kills
    /// the caller, and the judge must survive it.
    pub(crate) fn kernel_sync(&mut self, fs: &Fs, step: &'static str) -> Result<(), Stop> {
        let timeout = Duration::from_secs(self.cfg.op_timeout_secs);
        match in_child(step, &fs.mnt.display().to_string(), timeout, || fs.sync()) {
            Ok(()) => Ok(()),
            Err(e) if e.errno() == Some(libc::EINTR) => Ok(()),
            Err(OpError::Failed(e)) => Err(Stop::Setup(format!("{step}: {e}"))),
            Err(OpError::Killed(sig)) => {
                self.facts.killed_in = Some((step.to_string(), Some(sig)));
                Err(Stop::Killed)
            }
            Err(OpError::Hung) => {
                self.facts.killed_in = Some((step.to_string(), None));
                Err(Stop::Killed)
            }
        }
    }

    /// REPRODUCED or SUSPECTED evidence so far (kernel trouble, a bad
    /// taint, overlapping puts).
    fn evidence_seen(&self) -> bool {
        let bad_taint = watch::taint() & !self.taint_before & crate::verdict::TROUBLE_TAINTS != 0;
        bad_taint || self.watch.as_ref().is_some_and(|w| !w.log.trouble.is_empty() || !w.log.overlaps.is_empty())
    }

    pub(crate) fn phase<T>(&mut self, name: &'static str, f: impl FnOnce(&mut Self) -> Result<T, Stop>) -> Result<T, Stop> {
        check_signal()?;
        test_pause(name)?;
        let t = Instant::now();
        let r = f(self);
        let secs = t.elapsed().as_secs_f64();
        self.progress.done_updates();
        match self.report.phases.iter_mut().find(|(n, _)| *n == name) {
            Some((_, total)) => *total += secs,
            None => self.report.phases.push((name, secs)),
        }
        if let Some(w) = &mut self.watch {
            w.drain();
        }
        r
    }

    pub(crate) fn drain(&mut self) {
        if let Some(w) = &mut self.watch {
            w.drain();
        }
    }

    fn setup_and_pass(&mut self) -> Result<(), Stop> {
        let cfg = self.cfg;
        let checked = preflight::check(cfg)?;
        if self.report.iterations == 0 {
            // After preflight: a refusal stays one line.
            self.progress.say(&format!(
                "btrfs-reclaim-repro {} on kernel {}, seed {}",
                self.report.version, self.report.kernel, cfg.seed
            ));
        }
        self.report.device_bytes = checked.bytes;
        // Start watching before mkfs: only this run's records count.
        if watch::clear_warn_once() {
            self.progress.say("cleared WARN_ONCE state (debugfs clear_warn_once)");
        }
        let header = format!(
            "# btrfs-reclaim-repro {}\n# kernel {}\n# options: {}\n# seed {}\n# records: seq,usec;text\n",
            self.report.version,
            self.report.kernel,
            cfg.describe(),
            cfg.seed
        );
        self.watch = Some(Watch::start(cfg.log.as_deref(), &header).map_err(|e| Stop::Setup(format!("kernel log: {e}")))?);
        let target = at("prepare device", device::prepare(&cfg.dev, checked.kind, checked.bytes))?;
        if let Some(lo) = &target.loop_dev {
            self.progress.say(&format!("attached {} to {}", cfg.dev.display(), lo.path.display()));
            self.loop_path = Some(lo.path.clone());
        }
        let canonical = std::fs::canonicalize(&target.block).unwrap_or_else(|_| target.block.clone());
        if let (Some(w), Some(name)) = (&mut self.watch, canonical.file_name()) {
            w.log.only_device(&name.to_string_lossy());
        }
        if kmemleak::clear() {
            self.progress.say("kmemleak: cleared earlier reports");
        }
        let result = match cfg.stress_secs {
            Some(secs) => crate::stress::run(self, &target, &checked.mkfs, secs),
            None => self.pass(&target, &checked.mkfs),
        };
        drop(target);
        if result.is_ok() && !cfg.keep_mounted {
            self.check_kmemleak();
        }
        result
    }

    /// A leaked block group prints nothing: only kmemleak, after the
    /// unmount, finds it.
    fn check_kmemleak(&mut self) {
        let found = kmemleak::check(Duration::from_secs(1));
        if let Some(n) = found.note {
            self.progress.say(&n);
            self.report.notes.push(n);
        }
        if let Some(n) = found.btrfs_objects {
            self.progress.say(&format!("kmemleak: {n} unreferenced btrfs objects after the unmount"));
            self.facts.kmemleak = Some(self.facts.kmemleak.unwrap_or(0) + n);
            self.report.kmemleak_evidence.extend(found.evidence);
        }
    }

    /// The single pass, top to bottom like the bug report's list.
    fn pass(&mut self, target: &Target, mkfs_path: &Path) -> Result<(), Stop> {
        let (mounted, fs) = self.fresh_filesystem(target, mkfs_path)?;
        let files = self.fill(&fs)?;
        self.knobs(&fs)?;
        self.fragment(&fs, &files, 2)?;
        let base = self.trigger(&fs)?;
        if let Some(base) = base {
            self.settle(&fs, base)?;
        }
        drop(fs);
        self.unmount(mounted, target)
    }

    /// mkfs, then mount, then check that this kernel can test the bug.
    pub(crate) fn fresh_filesystem(&mut self, target: &Target, mkfs_path: &Path) -> Result<(Mounted, Fs), Stop> {
        let cfg = self.cfg;
        let v1 = cfg.space_cache_v1;
        // A fresh filesystem without the free space tree: the injected ENOSPC
        // is in delete_block_group_cache(), reached only for block groups
        // with a v1 cache inode.
        // --enospc natural: single metadata with small nodes fills up fast,
        // and without spare unallocated space it cannot grow.
        let layout = if cfg.natural_enospc {
            mkfs_progs::Layout { metadata: "single", data: "single", nodesize: Some(4096) }
        } else {
            mkfs_progs::Layout { metadata: "dup", data: "single", nodesize: None }
        };
        let spelling = self.phase("mkfs", |r| {
            let s = mkfs_progs::format(mkfs_path, &target.block, &layout, v1).map_err(|e| match e {
                mkfs_progs::MkfsError::Interrupted(sig) => Stop::Interrupted(sig),
                mkfs_progs::MkfsError::Failed(m) | mkfs_progs::MkfsError::Spawn(m) => Stop::Setup(format!("mkfs: {m}")),
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
        let data = match (v1, spelling.is_some(), cfg.natural_enospc) {
            (true, true, false) => "space_cache=v1",
            (true, true, true) => "space_cache=v1,max_inline=2048",
            (true, false, false) => "clear_cache,space_cache=v1",
            (true, false, true) => "clear_cache,space_cache=v1,max_inline=2048",
            (false, _, _) => "space_cache=v2",
        };
        let mounted = self.phase("mount", |r| {
            at("create mount point", std::fs::create_dir_all(&cfg.mnt))?;
            let op_timeout = Duration::from_secs(cfg.op_timeout_secs);
            let m = at("mount", Mounted::mount(&target.block, &cfg.mnt, data, op_timeout))?;
            let cache = mount::active_space_cache(&cfg.mnt).unwrap_or("unknown");
            r.report.space_cache = Some(cache.to_string());
            r.facts.space_cache = Some(cache.to_string());
            r.progress.say(&format!("mount: {} on {} ({data}), space cache {cache}", target.block.display(), cfg.mnt.display()));
            if v1 && cache != "v1" {
                return Err(Stop::Setup(format!("asked for the v1 space cache, the kernel mounted with {cache}")));
            }
            Ok(m)
        })?;
        let fs = at("open filesystem", Fs::open(&cfg.mnt))?;
        let missing = fs.missing_reclaim_files();
        if !missing.is_empty() {
            return Err(Stop::Setup(format!(
                "kernel has no {} in {}: too old for this bug (dynamic/periodic reclaim arrived around 6.11)",
                missing.join(", "),
                fs.data_sysfs.display()
            )));
        }
        Ok((mounted, fs))
    }

    /// Fill to --fill %. The knobs stay off until after it: while
    /// periodic_reclaim is 1, every allocation subtracts from
    /// reclaimable_bytes (btrfs_update_block_group), and the sweep never arms.
    pub(crate) fn fill(&mut self, fs: &Fs) -> Result<Vec<std::path::PathBuf>, Stop> {
        let cfg = self.cfg;
        let dir = cfg.mnt.join("fill");
        // --enospc natural fills data until ENOSPC, so that all unallocated
        // space becomes data block groups and metadata keeps its first chunk.
        let pct = if cfg.natural_enospc { 100 } else { cfg.fill_percent };
        let filled = self.phase("fill", |r| {
            at("mkdir", std::fs::create_dir_all(&dir))?;
            let f = at("fill", fill::fill(&fs.dir, &dir, cfg.fill_mode, pct, &mut r.rng, &mut r.progress))?;
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
        if let Some((_, secs)) = self.report.phases.iter().find(|(n, _)| *n == "fill") {
            self.report.fill_bytes_per_second = self.report.bytes_written as f64 / secs.max(1e-6);
        }
        if let Some(sig) = filled.interrupted {
            return Err(Stop::Interrupted(sig));
        }
        if cfg.natural_enospc {
            self.starve_metadata(fs)?;
        }
        Ok(filled.files)
    }

    /// Metadata full: relocation then fails with a genuine ENOSPC and
    /// reclaim goes down the same error path as with the injected one.
    fn starve_metadata(&mut self, fs: &Fs) -> Result<(), Stop> {
        let dir = self.cfg.mnt.join("meta");
        self.phase("starve", |r| {
            let n = at("starve metadata", fill::starve_metadata(&dir, &mut r.progress))?;
            check_signal()?;
            // Commit, so what the transaction reserved is really used.
            let _ = fs.syncfs();
            r.progress.say(&format!("starve: {n} small inline files until ENOSPC: metadata is full"));
            Ok(())
        })
    }

    /// Enable reclaim, now that the fill is done.
    pub(crate) fn knobs(&mut self, fs: &Fs) -> Result<(), Stop> {
        self.phase("knobs", |r| {
            at("reclaim knobs", fs.write_knob("dynamic_reclaim", "1"))?;
            at("reclaim knobs", fs.write_knob("periodic_reclaim", "1"))?;
            r.progress.say(&format!("knobs: dynamic_reclaim=1 periodic_reclaim=1 ({})", fs.data_sysfs.display()));
            Ok(())
        })
    }

    /// Delete every `nth` file so block groups become reclaim candidates,
    /// then count the data block groups that own a v1 cache inode.
    pub(crate) fn fragment(&mut self, fs: &Fs, files: &[std::path::PathBuf], nth: usize) -> Result<(), Stop> {
        self.phase("fragment", |r| {
            let n = at("fragment", fill::fragment(files, nth))?;
            at("fragment", fs.syncfs())?;
            let groups = at("data block groups", fs.data_block_groups())?;
            let cached = at("v1 cache inodes", fs.v1_cache_starts())?;
            let with_cache = groups.iter().filter(|(s, _)| cached.contains(s)).count() as u64;
            let bg_bytes = groups.iter().map(|(_, l)| *l).max();
            r.report.data_block_group_bytes = bg_bytes;
            r.report.v1_cache_block_groups = Some(with_cache);
            r.facts.v1_cache_block_groups = Some(with_cache);
            r.progress.say(&format!(
                "fragment: deleted {n} files; {} data block groups of {}, {with_cache} with a v1 cache inode",
                groups.len(),
                bg_bytes.map(human).unwrap_or_else(|| "?".into())
            ));
            if with_cache == 0 {
                r.progress.say("fragment: no v1 cache inode: the injection site cannot be reached (reclaim still runs)");
            }
            Ok(())
        })
    }

    /// Reclaim counters of this filesystem, relative to `base`, added to what
    /// earlier iterations counted.
    pub(crate) fn count_reclaims(&mut self, fs: &Fs, base: &Base) -> Result<(u64, u64), Stop> {
        let (c, e) = at("reclaim counters", fs.reclaim_counts())?;
        let now = (c.saturating_sub(base.count), e.saturating_sub(base.errors));
        self.facts.reclaim_count = base.earlier_count + now.0;
        self.facts.reclaim_errors = base.earlier_errors + now.1;
        if now != (0, 0) && self.report.first_reclaim_seconds.is_none() {
            self.report.first_reclaim_seconds = Some(self.started.elapsed().as_secs_f64());
        }
        Ok(now)
    }

    pub(crate) fn reclaim_base(&mut self, fs: &Fs) -> Result<Base, Stop> {
        let (count, errors) = at("reclaim counters", fs.reclaim_counts())?;
        Ok(Base { count, errors, earlier_count: self.facts.reclaim_count, earlier_errors: self.facts.reclaim_errors })
    }

    /// Each BTRFS_IOC_SYNC commits and wakes the cleaner; a block group is
    /// queued on the second sweep that finds it (btrfs_reclaim_sweep needs
    /// the reclaim_mark set by the first). Returns the counters' base when
    /// reclaim fired.
    pub(crate) fn trigger(&mut self, fs: &Fs) -> Result<Option<Base>, Stop> {
        let cfg = self.cfg;
        let base = self.reclaim_base(fs)?;
        self.phase("trigger", |r| {
            let deadline = Instant::now() + Duration::from_secs(cfg.timeout_secs);
            loop {
                r.kernel_sync(fs, "trigger")?;
                r.drain();
                let (c, e) = r.count_reclaims(fs, &base)?;
                if c + e > 0 {
                    r.progress.say(&format!("trigger: reclaim fired ({c} relocated, {e} errors)"));
                    return Ok(Some(base));
                }
                if Instant::now() >= deadline {
                    r.progress.say(&format!("trigger: reclaim did not fire within {} s", cfg.timeout_secs));
                    return Ok(None);
                }
                r.progress.update("trigger: waiting for reclaim");
                nap(Duration::from_millis(150))?;
            }
        })
    }

    /// Reclaim works asynchronously: keep syncing until the counters have
    /// not moved for 2 s.
    pub(crate) fn settle(&mut self, fs: &Fs, base: Base) -> Result<(), Stop> {
        let cfg = self.cfg;
        self.phase("settle", |r| {
            let mut last = r.count_reclaims(fs, &base)?;
            let mut stable_since = Instant::now();
            let deadline = Instant::now() + Duration::from_secs(cfg.timeout_secs);
            while stable_since.elapsed() < Duration::from_secs(2) && Instant::now() < deadline {
                nap(Duration::from_millis(200))?;
                r.kernel_sync(fs, "settle")?;
                r.drain();
                let now = r.count_reclaims(fs, &base)?;
                if now != last {
                    last = now;
                    stable_since = Instant::now();
                }
                r.progress.update(&format!("settle: {} relocated, {} errors", now.0, now.1));
            }
            r.progress.say(&format!("settle: {} relocated, {} errors", last.0, last.1));
            Ok(())
        })
    }

    /// close_ctree() drops the last block group references: a wrong count
    /// shows here, so the unmount is judged too.
    pub(crate) fn unmount(&mut self, mounted: Mounted, target: &Target) -> Result<(), Stop> {
        let cfg = self.cfg;
        self.phase("unmount", |r| {
            if cfg.keep_mounted {
                mounted.keep();
                r.report.notes.push(format!("left mounted on {} (--keep-mounted)", cfg.mnt.display()));
                if let Some(lo) = &target.loop_dev {
                    r.report.notes.push(format!("{} stays attached until unmounted (autoclear)", lo.path.display()));
                }
                return Ok(());
            }
            let timeout = Duration::from_secs(cfg.op_timeout_secs);
            let killed = match mounted.unmount() {
                Ok(note) => {
                    r.report.notes.extend(note);
                    r.progress.say(&format!("unmount: {}", cfg.mnt.display()));
                    return Ok(());
                }
                Err(OpError::Failed(e)) => return Err(Stop::Setup(format!("unmount: {e}"))),
                Err(OpError::Killed(sig)) => Some(sig),
                Err(OpError::Hung) => None,
            };
            r.facts.killed_in = Some(("unmount".to_string(), killed));
            r.progress.say(&format!(
                "unmount: {}",
                match killed {
                    Some(sig) => format!("the kernel killed the unmounting task ({})", crate::sys::process::signal_name(sig)),
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

/// Reclaim counters at the start of an iteration's wait, and what earlier
/// iterations counted.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Base {
    count: u64,
    errors: u64,
    earlier_count: u64,
    earlier_errors: u64,
}

pub(crate) fn ignore_eintr(r: std::io::Result<()>) -> std::io::Result<()> {
    match r {
        Err(e) if crate::sys::errno_of(&e) == Some(libc::EINTR) => Ok(()),
        other => other,
    }
}

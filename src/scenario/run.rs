//! One run's state and the plumbing every step shares: the phase timer,
//! kernel operations in children, the reclaim counters, signals.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::btrfs::childop::{in_child, OpError};
use crate::btrfs::fs::{Fs, Offered};
use crate::btrfs::mount;
use super::config::Config;
use crate::btrfs::reclaim::Reclaim;
use crate::kernel::host;
use crate::kernel::kmemleak;
use crate::kernel::kmsg::trace::Tracing;
use crate::kernel::kmsg::watch::Watch;
pub(super) use crate::base::phase::PassKind;
use crate::base::phase::{Phase, SettleEnd};
use super::preflight;
use crate::base::progress::Progress;
use crate::judge::report::ktap::Test;
use crate::judge::report::{self, PassRecord, Report};
use crate::sys::process::{pending_signal, Signal};
use crate::judge::verdict::{judge, Facts, Refusal};

use super::Outcome;

#[derive(Debug)]
pub enum Stop {
    Refused(Refusal),
    Setup(String),
    Interrupted(Signal),
    /// A kernel operation's child was killed or hung: `Facts::killed_in`
    /// says which. Evidence, not an error; the run ends.
    Killed,
}

impl From<preflight::Blocked> for Stop {
    fn from(b: preflight::Blocked) -> Stop {
        match b {
            preflight::Blocked::Refused(why) => Stop::Refused(Refusal::Unsafe(why)),
            preflight::Blocked::Unprivileged(why) => Stop::Refused(Refusal::Unprivileged(why)),
            preflight::Blocked::CannotTest(why) => Stop::Setup(why),
        }
    }
}

impl From<std::io::Error> for Stop {
    fn from(e: std::io::Error) -> Stop {
        Stop::Setup(e.to_string())
    }
}

/// Adds the step's name to a system error.
pub(super) fn at<T>(step: &str, r: std::io::Result<T>) -> Result<T, Stop> {
    r.map_err(|e| Stop::Setup(format!("{step}: {e}")))
}

pub(super) fn check_signal() -> Result<(), Stop> {
    match pending_signal() {
        Some(sig) => Err(Stop::Interrupted(sig)),
        None => Ok(()),
    }
}

/// Sleeps in small slices so a signal is noticed promptly.
pub(super) fn nap(d: Duration) -> Result<(), Stop> {
    let end = Instant::now() + d;
    while Instant::now() < end {
        check_signal()?;
        std::thread::sleep((end - Instant::now()).min(Duration::from_millis(20)));
    }
    check_signal()
}

/// A test pause (BRR_TEST_PAUSE): up to a minute, ended early by a signal.
fn hold(at: &str) -> Result<(), Stop> {
    eprintln!("btrfs-reclaim-repro: pausing at {at} (BRR_TEST_PAUSE)");
    nap(Duration::from_secs(60))
}

pub(super) struct Run<'a> {
    pub(super) cfg: &'a Config,
    pub(super) progress: Progress,
    pub(super) watch: Option<Watch>,
    pub(super) report: Report,
    pub(super) facts: Facts,
    pub(super) taint_before: u64,
    pub(super) rng: fastrand::Rng,
    pub(super) started: Instant,
    /// The loop device of the current iteration, for the leftover check.
    pub(super) loop_path: Option<PathBuf>,
    /// The layout of the pass under way.
    pub(super) pass: PassKind,
    /// Counters when the pass under way began.
    pub(super) pass_start: PassRecord,
    /// Filesystems made so far (passes, hunt rounds): no two share an fsid.
    pub(super) formats: u32,
    /// How the pass under way's settle ended, and how long after the last
    /// relocation result.
    pub(super) settled: Option<(SettleEnd, f64)>,
    /// tracefs while the endless-loop watch runs (trigger and settle).
    pub(super) loop_trace: Option<Tracing>,
    /// Data block groups of the pass under way with a v1 cache inode.
    pub(super) cached_groups: Vec<u64>,
}

impl Run<'_> {
    pub(super) fn finish(mut self) -> Outcome {
        let empty = crate::kernel::kmsg::events::Tracker::default();
        let log = self.watch.as_ref().map(|w| &w.log).unwrap_or(&empty);
        let verdict = judge(&self.facts, log);
        let text = report::text::text(&self.report, &verdict, log, &self.facts);
        let json = report::json::json(&self.report, &verdict, log, &self.facts);
        let test = if self.cfg.stress_secs.is_some() { Test::Stress } else { Test::Single };
        let (ktap, ktap_exit_code) = report::ktap::body(test, &self.report, &verdict, log, &self.facts);
        if let Some(w) = &mut self.watch {
            w.append_to_log(&text);
        }
        Outcome { verdict, text, json, ktap, ktap_exit_code }
    }

    /// After an iteration: name what is still mounted or attached (a killed
    /// or hung unmount can leave both; the system may need a reboot).
    pub(super) fn note_leftovers(&mut self) {
        if self.cfg.keep_mounted {
            return;
        }
        let said = self.report.notes.iter().any(|n| n.starts_with("left mounted on "));
        if !said && mount::is_mount_point(&self.cfg.mnt) {
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
    pub(super) fn kernel_sync(&mut self, fs: &Fs, phase: Phase) -> Result<(), Stop> {
        let timeout = Duration::from_secs(self.cfg.op_timeout_secs);
        match in_child(phase, "ioctl(BTRFS_IOC_SYNC)", &fs.mnt.display().to_string(), timeout, || fs.sync()) {
            Ok(()) => Ok(()),
            Err(e) if e.errno() == Some(libc::EINTR) => Ok(()),
            Err(OpError::Failed(e)) => Err(Stop::Setup(format!("{}: {e}", phase.name()))),
            Err(OpError::Killed(sig)) => {
                self.facts.killed_in = Some((phase, Some(sig)));
                Err(Stop::Killed)
            }
            Err(OpError::Hung) => {
                self.facts.killed_in = Some((phase, None));
                Err(Stop::Killed)
            }
        }
    }

    /// REPRODUCED or SUSPECTED evidence so far (kernel trouble, a bad
    /// taint, overlapping puts).
    pub(super) fn evidence_seen(&self) -> bool {
        let bad_taint = host::taint() & !self.taint_before & crate::judge::verdict::TROUBLE_TAINTS != 0;
        bad_taint
            || self.facts.reclaim_loop.is_some()
            || self.watch.as_ref().is_some_and(|w| !w.log.trouble.is_empty() || !w.log.overlaps.is_empty())
    }

    pub(super) fn phase<T>(&mut self, phase: Phase, f: impl FnOnce(&mut Self) -> Result<T, Stop>) -> Result<T, Stop> {
        check_signal()?;
        if let Some(at) = phase.pause_requested(self.pass.name()) {
            hold(&at)?;
        }
        let t = Instant::now();
        let r = f(self);
        let secs = t.elapsed().as_secs_f64();
        self.progress.done_updates();
        match self.report.phases.iter_mut().find(|(p, _)| *p == phase) {
            Some((_, total)) => *total += secs,
            None => self.report.phases.push((phase, secs)),
        }
        self.drain();
        r
    }

    /// Test hook: holds the run at `point` inside `phase`
    /// (`BRR_TEST_PAUSE=<phase>.<point>`), still noticing signals.
    pub(super) fn pause_inside(&self, phase: Phase, point: &str) -> Result<(), Stop> {
        match phase.pause_inside_requested(self.pass.name(), point) {
            Some(at) => hold(&at),
            None => Ok(()),
        }
    }

    /// tracefs for the hunt's race windows (None without it). An error
    /// starting it becomes a note: the windows then go uncounted, which
    /// the reader must not take for "none happened".
    pub(super) fn start_tracing(&mut self) -> Option<Tracing> {
        Tracing::start().unwrap_or_else(|e| {
            self.report.notes.push(format!("tracefs: {e}: race windows not counted"));
            None
        })
    }

    pub(super) fn drain(&mut self) {
        if let Some(w) = &mut self.watch {
            w.drain();
        }
    }

    /// A leaked block group prints nothing: only kmemleak, after the
    /// unmount, finds it.
    pub(super) fn check_kmemleak(&mut self) {
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

    /// What the pass under way has seen so far, counted from its start.
    fn pass_counts(&self) -> PassRecord {
        let log = self.watch.as_ref().map(|w| (w.log.injections, crate::judge::verdict::relocation_failures(&self.facts, &w.log)));
        let (injections, relocation_failures) = log.unwrap_or((0, self.facts.reclaim_errors));
        PassRecord {
            layout: self.pass,
            fill_percent: self.report.fill_percent,
            reclaim_count: self.facts.reclaim_count,
            reclaim_errors: self.facts.reclaim_errors,
            injections,
            relocation_failures,
            phases: self.report.phases.clone(),
            ..PassRecord::default()
        }
    }

    pub(super) fn begin_pass(&mut self, kind: PassKind) {
        self.pass = kind;
        self.settled = None;
        if kind == PassKind::Natural {
            self.facts.natural_enospc = true;
        }
        self.pass_start = self.pass_counts();
    }

    /// Records the pass that just ended (also one that stopped early).
    pub(super) fn end_pass(&mut self) {
        let (now, start) = (self.pass_counts(), &self.pass_start);
        let phases = now
            .phases
            .iter()
            .map(|(p, secs)| (*p, secs - start.phases.iter().find(|(q, _)| q == p).map(|(_, s)| *s).unwrap_or(0.0)))
            .filter(|(_, secs)| *secs > 0.0)
            .collect();
        self.report.passes.push(PassRecord {
            layout: now.layout,
            fill_percent: now.fill_percent,
            reclaim_count: now.reclaim_count - start.reclaim_count,
            reclaim_errors: now.reclaim_errors - start.reclaim_errors,
            injections: now.injections - start.injections,
            relocation_failures: now.relocation_failures.saturating_sub(start.relocation_failures),
            phases,
            settle_end: self.settled.map(|(end, _)| end),
            settle_tail_seconds: self.settled.map(|(_, tail)| tail),
            counters_from_log: self.facts.counters_from_log,
        });
    }

    /// The pass drove reclaim into a relocation failure (injected or real).
    pub(super) fn failure_path_reached(&self) -> bool {
        let now = self.pass_counts();
        now.injections > 0 || now.relocation_failures > 0
    }

    /// Reclaim counters of this filesystem, relative to `base`, added to what
    /// earlier iterations counted.
    pub(super) fn count_reclaims(&mut self, fs: &Fs, base: &Base) -> Result<(u64, u64), Stop> {
        let (c, e) = self.raw_counts(fs)?;
        let now = (c.saturating_sub(base.count), e.saturating_sub(base.errors));
        self.facts.reclaim_count = base.earlier_count + now.0;
        self.facts.reclaim_errors = base.earlier_errors + now.1;
        if now != (0, 0) && self.report.first_reclaim_seconds.is_none() {
            self.report.first_reclaim_seconds = Some(self.started.elapsed().as_secs_f64());
        }
        Ok(now)
    }

    pub(super) fn reclaim_base(&mut self, fs: &Fs) -> Result<Base, Stop> {
        let (count, errors) = self.raw_counts(fs)?;
        Ok(Base { count, errors, earlier_count: self.facts.reclaim_count, earlier_errors: self.facts.reclaim_errors })
    }

}

impl Run<'_> {
    /// (attempts, failures): the sysfs counters, or before 6.11 the kernel
    /// log's `reclaiming chunk` and `error relocating chunk` lines.
    fn raw_counts(&mut self, fs: &Fs) -> Result<(u64, u64), Stop> {
        if !self.facts.counters_from_log {
            return at("reclaim counters", fs.reclaim_counts());
        }
        self.drain();
        Ok(self.watch.as_ref().map_or((0, 0), |w| (w.log.reclaiming_chunks, w.log.reloc_errors)))
    }

    /// The reclaim the knobs turn on: --reclaim, except that a kernel with
    /// only the static threshold runs `Reclaim::STATIC_DEFAULT` for
    /// periodic or dynamic, which it does not have.
    pub(super) fn reclaim_to_run(&mut self) -> Reclaim {
        match (self.facts.offered, self.cfg.reclaim) {
            (Some(Offered::StaticThreshold), asked @ (Reclaim::Periodic | Reclaim::Dynamic)) => {
                let run = Reclaim::STATIC_DEFAULT;
                let note = format!(
                    "this kernel offers only bg_reclaim_threshold (no dynamic/periodic reclaim before 6.11): --reclaim {} ran as {}",
                    asked.name(),
                    run.name()
                );
                if !self.report.notes.contains(&note) {
                    self.progress.say(&format!("knobs: {note}"));
                    self.report.notes.push(note);
                }
                run
            }
            (_, asked) => asked,
        }
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

pub(super) fn ignore_eintr(r: std::io::Result<()>) -> std::io::Result<()> {
    match r {
        Err(e) if crate::sys::errno_of(&e) == Some(libc::EINTR) => Ok(()),
        other => other,
    }
}

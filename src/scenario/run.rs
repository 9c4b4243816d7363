//! One run's state and the plumbing every step shares: the phase timer,
//! kernel operations in children, kmemleak, what a run leaves behind.

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
use crate::base::progress::Progress;
use crate::btrfs::mount::CleanupNotes;
use crate::judge::report::ktap::Test;
use crate::judge::report::{self, PassRecord, Report};
use crate::judge::verdict::{judge, Facts};

use super::stop::{check_signal, pause_before, Stop};
use super::Outcome;

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
    /// What the mount guard had to do when it unmounted on an error path.
    pub(super) cleanup: CleanupNotes,
}

impl Run<'_> {
    /// A run of `cfg` that has done nothing yet.
    pub(super) fn new(cfg: &Config) -> Run<'_> {
        Run {
            cfg,
            progress: Progress::new(),
            watch: None,
            report: report_for(cfg, host::version(), host::kernel_release()),
            facts: facts_for(cfg),
            taint_before: host::taint(),
            rng: fastrand::Rng::with_seed(cfg.seed),
            started: Instant::now(),
            loop_path: None,
            pass: PassKind::Injected,
            pass_start: PassRecord::default(),
            formats: 0,
            settled: None,
            loop_trace: None,
            cached_groups: Vec::new(),
            cleanup: CleanupNotes::default(),
        }
    }

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
        pause_before(phase, self.pass.name())?;
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

/// The report of a run of `cfg` before it starts: what it runs, on what.
fn report_for(cfg: &Config, version: String, kernel: String) -> Report {
    Report {
        version,
        kernel,
        device: cfg.dev.display().to_string(),
        fill_mode: cfg.fill_mode,
        seed: cfg.seed,
        enospc_mode: cfg.enospc,
        reclaim: cfg.reclaim,
        trigger: cfg.trigger,
        ..Report::default()
    }
}

/// The facts of a run of `cfg` before it starts: what the judge must know
/// of how it was asked to run.
fn facts_for(cfg: &Config) -> Facts {
    Facts {
        unmount_observed: !cfg.keep_mounted,
        reclaim_wait_secs: cfg.stress_secs.unwrap_or(cfg.timeout_secs),
        op_timeout_secs: cfg.op_timeout_secs,
        swap_trigger: cfg.trigger == crate::base::phase::Trigger::Swapfile,
        ..Facts::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_run_starts_from_what_was_asked() {
        let mut cfg = Config::example("/dev/vdb", "/mnt/test");
        cfg.keep_mounted = true;
        cfg.stress_secs = Some(300);
        let r = report_for(&cfg, "v1".into(), "6.12.0".into());
        assert_eq!((r.version.as_str(), r.kernel.as_str(), r.device.as_str(), r.seed), ("v1", "6.12.0", "/dev/vdb", 1));
        assert_eq!((r.enospc_mode, r.reclaim, r.iterations), (cfg.enospc, cfg.reclaim, 0));
        let f = facts_for(&cfg);
        assert_eq!((f.unmount_observed, f.reclaim_wait_secs, f.op_timeout_secs), (false, 300, 60));
        cfg.stress_secs = None;
        assert_eq!(facts_for(&cfg).reclaim_wait_secs, 120);
        let run = Run::new(&cfg);
        assert_eq!((run.pass, run.formats, run.report.device.as_str()), (PassKind::Injected, 0, "/dev/vdb"));
    }
}

//! The bug report's scenario: preflight, watch the kernel log, then the
//! single pass or the stress pass on a fresh filesystem, `--iterations`
//! times, and judge them together.

mod churn;
pub mod config;
mod counters;
mod hunt;
pub mod preflight;
mod run;
mod settle;
mod single;
mod steps;
mod stop;
mod stress;
mod swap;
mod wait;

use std::time::{Duration, Instant};

pub use config::Config;
use crate::device;
use crate::kernel::host;
use crate::kernel::kmemleak;
use crate::kernel::kmsg::watch::Watch;
use crate::judge::report::IterationRecord;
use crate::sys::process::pending_signal;
use crate::judge::verdict::{Facts, Verdict};

use run::Run;
use stop::{at, Stop};

pub struct Outcome {
    pub verdict: Verdict,
    pub text: String,
    pub json: String,
    /// The KTAP diagnostics and result line (after `ktap::HEADER`), and
    /// the kselftest exit code that goes with them.
    pub ktap: String,
    pub ktap_exit_code: i32,
}

/// Runs the single pass (or the stress run) `--iterations` times, each on a
/// fresh filesystem, and judges them together. Leaves nothing mounted or
/// attached (the guards: `Mounted`, `Target`), but where the kernel keeps
/// it: an unmount or a swapoff that does not return, which a note names.
/// `on_start` is called once, when the first preflight has passed and
/// before anything is written (the KTAP plan goes out then).
pub fn run(cfg: &Config, on_start: &mut dyn FnMut()) -> Outcome {
    let mut run = Run::new(cfg);
    let started = run.started;
    for i in 1..=cfg.iterations {
        if cfg.iterations > 1 {
            run.progress.say(&format!("iteration {i}/{}", cfg.iterations));
        }
        let began = Instant::now();
        let result = iteration(&mut run, on_start);
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
        record_stop(&mut run.facts, result);
        run.note_leftovers();
        run.report.per_iteration.push(IterationRecord { seconds: began.elapsed().as_secs_f64(), held: crate::base::resources::held() });
        run.report.notes.extend(run.cleanup.take());
        if stops_early(&run.facts) || pending_signal().is_some() || run.evidence_seen() {
            break;
        }
    }
    if run.facts.interrupted.is_none() {
        run.facts.interrupted = pending_signal();
    }
    run.facts.taint_gained = host::taint() & !run.taint_before;
    run.report.total_seconds = started.elapsed().as_secs_f64();
    run.report.peak_rss_kib = host::peak_rss_kib();
    run.finish()
}

/// Why the iteration ended, as the judge reads it (a killed operation has
/// said so in `killed_in` already).
fn record_stop(facts: &mut Facts, result: Result<(), Stop>) {
    match result {
        Ok(()) => {}
        Err(Stop::Refused(why)) => facts.refused = Some(why),
        Err(Stop::Setup(why)) => facts.setup_failure = Some(why),
        Err(Stop::Interrupted(sig)) => facts.interrupted = Some(sig),
        Err(Stop::Killed) => {}
    }
}

/// No further iteration after one that stopped, or that left evidence the
/// facts hold (the log's evidence: `Run::evidence_seen`).
fn stops_early(facts: &Facts) -> bool {
    facts.refused.is_some()
        || facts.setup_failure.is_some()
        || facts.interrupted.is_some()
        || facts.killed_in.is_some()
        || facts.kmemleak.is_some_and(|n| n > 0)
}

fn iteration(run: &mut Run, on_start: &mut dyn FnMut()) -> Result<(), Stop> {
    let cfg = run.cfg;
    let checked = preflight::check(cfg)?;
    if run.report.iterations == 0 {
        on_start();
        // After preflight: a refusal stays one line.
        run.progress.say(&format!(
            "btrfs-reclaim-repro {} on kernel {}, seed {}",
            run.report.version, run.report.kernel, cfg.seed
        ));
    }
    run.report.device_bytes = checked.bytes;
    run.report.mkfs = checked.mkfs.describe();
    // Start watching before mkfs: only this run's records count.
    if host::clear_warn_once() {
        run.progress.say("cleared WARN_ONCE state (debugfs clear_warn_once)");
    }
    let header = format!(
        "# btrfs-reclaim-repro {}\n# kernel {}\n# options: {}\n# seed {}\n# records: seq,usec;text\n",
        run.report.version,
        run.report.kernel,
        cfg.describe(),
        cfg.seed
    );
    run.watch = Some(Watch::start(cfg.log.as_deref(), &header).map_err(|e| Stop::Setup(format!("kernel log: {e}")))?);
    let target = at("prepare device", device::prepare(&cfg.dev, checked.kind, checked.bytes))?;
    if let Some(lo) = &target.loop_dev {
        run.progress.say(&format!("attached {} to {}", cfg.dev.display(), lo.path.display()));
        run.loop_path = Some(lo.path.clone());
    }
    let canonical = std::fs::canonicalize(&target.block).unwrap_or_else(|_| target.block.clone());
    if let (Some(w), Some(name)) = (&mut run.watch, canonical.file_name()) {
        w.log.only_device(&name.to_string_lossy());
    }
    if kmemleak::clear() {
        run.progress.say("kmemleak: cleared earlier reports");
    }
    let result = match cfg.stress_secs {
        Some(secs) if cfg.hunt() => hunt::pass(run, &target, &checked.mkfs, secs),
        Some(secs) => stress::pass(run, &target, &checked.mkfs, secs),
        None => single::passes(run, &target, &checked.mkfs),
    };
    drop(target);
    // A pass may end well and still leave it mounted (a swapoff that did
    // not return): kmemleak counts leaks only after the unmount.
    if result.is_ok() && !cfg.keep_mounted && !crate::btrfs::mount::is_mount_point(&cfg.mnt) {
        run.check_kmemleak();
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::process::Signal;

    #[test]
    fn an_iteration_that_stopped_or_leaked_is_the_last() {
        let mut f = Facts::default();
        record_stop(&mut f, Ok(()));
        record_stop(&mut f, Err(Stop::Killed));
        assert!(!stops_early(&f));
        assert!(stops_early(&Facts { kmemleak: Some(1), ..Facts::default() }));
        assert!(!stops_early(&Facts { kmemleak: Some(0), ..Facts::default() }));
        record_stop(&mut f, Err(Stop::Setup("mkfs: EIO".into())));
        assert_eq!(f.setup_failure.as_deref(), Some("mkfs: EIO"));
        assert!(stops_early(&f));
        let mut f = Facts::default();
        record_stop(&mut f, Err(Stop::Interrupted(Signal(15))));
        assert_eq!((f.interrupted, stops_early(&f)), (Some(Signal(15)), true));
    }
}

//! Waiting for reclaim: the trigger (commits until reclaim fires) and the
//! settle (until its worker is done), watching for the endless reclaim loop
//! on kernels with only the static threshold.

use std::time::{Duration, Instant};

use crate::base::phase::Phase;
use crate::btrfs::fs::{Fs, Offered};
use crate::kernel::kmsg::events::{Event, EventKind};
use crate::kernel::kmsg::reclaim_loop;
use crate::kernel::kmsg::trace::{Tracing, LOOP_EVENTS};

use super::counters::Base;
use super::run::{PassKind, Run};
use super::settle::{End, Next, Seen, Settle};
use super::stop::{at, nap, Stop};

/// How often the settle reads the trace for the endless loop.
const LOOP_LOOK_EVERY: Duration = Duration::from_millis(500);
/// Once the loop showed, how long it is watched before the unmount (no
/// commit forced: a fixed kernel's worker would go idle in milliseconds).
const LOOP_CONFIRM: Duration = Duration::from_secs(3);
const BUSY_LOOK: Duration = Duration::from_millis(100);

impl Run<'_> {
    /// Each BTRFS_IOC_SYNC commits and wakes the cleaner; a block group is
    /// queued on the second sweep that finds it (btrfs_reclaim_sweep needs
    /// the reclaim_mark set by the first). Returns the counters' base when
    /// reclaim fired.
    pub(super) fn trigger(&mut self, fs: &Fs) -> Result<Option<Base>, Stop> {
        let cfg = self.cfg;
        let base = self.reclaim_base(fs)?;
        // The swapfile pass watches from before its fragment.
        let swap = self.pass == PassKind::Swapfile;
        if self.facts.offered == Some(Offered::StaticThreshold) && !(swap && self.loop_trace.is_some()) {
            self.start_loop_watch();
        }
        let mut next_look = Instant::now();
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
                // The swapfile's group fails before any log line: its
                // re-adds in the trace may be all there is.
                if swap && Instant::now() >= next_look {
                    next_look = Instant::now() + LOOP_LOOK_EVERY;
                    if r.look_for_loop(fs)? {
                        return Ok(Some(base));
                    }
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
            // failing for the first time is.
            let retries_forever = r.facts.offered == Some(Offered::StaticThreshold);
            let first = r.count_reclaims(fs, &base)?;
            let mut settle = Settle::new(r.news(retries_forever, first), Duration::from_secs(cfg.timeout_secs));
            if retries_forever {
                settle = settle.retrying();
            }
            let (end, (c, e)) = r.wait_settled(fs, &base, &mut settle, started, retries_forever)?;
            // The swapfile pass reads it once more (swap.rs).
            if r.pass != PassKind::Swapfile {
                r.loop_trace = None;
            }
            let tail = started.elapsed().saturating_sub(settle.last_result()).as_secs_f64();
            r.settled = Some((end, tail));
            r.progress.say(&format!("settle: {c} relocated, {e} errors; {} {tail:.2} s after the last result", end.name()));
            Ok(())
        })
    }

    /// The settle's loop: reads the worker and the counters, watches for
    /// the endless loop, and does what `settle` says until it says done.
    fn wait_settled(&mut self, fs: &Fs, base: &Base, settle: &mut Settle, started: Instant, retries_forever: bool) -> Result<(End, (u64, u64)), Stop> {
        let mut busy_since: Option<Duration> = None;
        // Without tracefs: the kernel log's events when the busy run began.
        let mut busy_from_event = 0;
        let mut next_look = Duration::ZERO;
        let mut loop_seen: Option<Duration> = None;
        loop {
            let busy = fs.exclusive_operation_busy();
            self.drain();
            let counts = self.count_reclaims(fs, base)?;
            let at_ = started.elapsed();
            if busy_since.is_none() {
                busy_from_event = self.watch.as_ref().map_or(0, |w| w.log.events.len());
            }
            busy_since = busy_run(busy_since, busy, at_);
            if let (true, None, None, Some(since)) = (retries_forever, &self.loop_trace, &loop_seen, busy_since) {
                if self.loop_in_busy_span(busy_from_event, at_ - since) {
                    return Ok((End::ReclaimLoop, counts));
                }
            }
            if let Some(seen) = loop_seen {
                // Watched a little longer, forcing no commit: how many
                // more attempts, and whether the worker ever let go.
                if at_ - seen < LOOP_CONFIRM {
                    nap(BUSY_LOOK)?;
                    continue;
                }
                self.look_for_loop(fs)?;
                self.facts.longest_busy_secs = busy_since.map(|since| (at_ - since).as_secs_f64());
                return Ok((End::ReclaimLoop, counts));
            }
            if let Some(bg) = self.past_injection_site() {
                self.progress.say(&format!(
                    "settle: block group {bg} (v1 cache) is being relocated past delete_block_group_cache(): no injection in this kernel"
                ));
                return Ok((End::NoInjection, counts));
            }
            if at_ >= next_look {
                next_look = at_ + LOOP_LOOK_EVERY;
                if self.look_for_loop(fs)? {
                    loop_seen = Some(at_);
                    continue;
                }
            }
            self.progress.update(&format!("settle: {} relocated, {} errors", counts.0, counts.1));
            match settle.next(Seen { at: at_, busy, counts: self.news(retries_forever, counts) }) {
                Next::Wait(d) => nap(d)?,
                Next::Sync => {
                    let t = Instant::now();
                    self.kernel_sync(fs, Phase::Settle)?;
                    settle.synced(started.elapsed(), t.elapsed());
                }
                Next::Done(end) => return Ok((end, counts)),
            }
        }
    }

    /// What the settle counts as news (see `news`).
    fn news(&self, retries_forever: bool, counts: (u64, u64)) -> (u64, u64) {
        let failed_groups = self.watch.as_ref().filter(|_| retries_forever).map(|w| w.log.failed_groups_since(0));
        news(counts, failed_groups)
    }

    /// Without tracefs: the endless loop, from the relocation errors the
    /// kernel log showed since the worker's busy run began `span` ago.
    fn loop_in_busy_span(&mut self, from_event: usize, span: Duration) -> bool {
        let Some(w) = &self.watch else { return false };
        let Some(found) = reclaim_loop::from_busy_span(&failed_groups(&w.log.events, from_event), span.as_secs_f64()) else { return false };
        self.progress.say(&format!("settle: {}", found.describe()));
        self.facts.longest_busy_secs = Some(span.as_secs_f64());
        self.facts.reclaim_loop = Some(found);
        true
    }

    /// tracefs for the endless-loop watch (kernels with only the static
    /// threshold, where 7e2718099438 shipped). Without it the loop is
    /// looked for in exclusive_operation and the kernel log only
    /// (reclaim_loop::from_busy_span), and a note says so.
    pub(super) fn start_loop_watch(&mut self) {
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
}

/// When the worker's run without a break began: exclusive_operation held
/// (settle forces no commit while it is held) since `since`, or from `at`.
fn busy_run(since: Option<Duration>, busy: Option<bool>, at: Duration) -> Option<Duration> {
    match busy {
        Some(true) => Some(since.unwrap_or(at)),
        _ => None,
    }
}

/// What the settle counts as news: the counters, except where the kernel
/// retries failed groups forever (`failed_groups`: how many groups failed
/// so far); there only a group failing for the first time is news
/// (attempts and errors come from lines rate-limited apart, so no success
/// count is exact).
fn news((c, e): (u64, u64), failed_groups: Option<u64>) -> (u64, u64) {
    match failed_groups {
        Some(0) => (c, 0),
        Some(failed) => (0, failed),
        None => (c, e),
    }
}

/// The block groups whose relocation failed, in the events from `from` on.
fn failed_groups(events: &[Event], from: usize) -> Vec<u64> {
    events[from.min(events.len())..].iter().filter(|e| e.kind == EventKind::RelocError).filter_map(|e| e.bg).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_runs_news_and_failed_groups() {
        let s = Duration::from_secs;
        assert_eq!(busy_run(None, Some(true), s(3)), Some(s(3)));
        assert_eq!(busy_run(Some(s(1)), Some(true), s(3)), Some(s(1)));
        assert_eq!(busy_run(Some(s(1)), Some(false), s(3)), None);
        assert_eq!(busy_run(Some(s(1)), None, s(3)), None);
        assert_eq!(news((5, 2), None), (5, 2));
        assert_eq!(news((5, 2), Some(0)), (5, 0));
        assert_eq!(news((5, 2), Some(1)), (0, 1));
        let ev = |kind, bg| Event { pid: None, kind, bg, text: String::new() };
        let events = [ev(EventKind::RelocError, Some(1)), ev(EventKind::RelocError, None), ev(EventKind::RelocError, Some(2))];
        assert_eq!(failed_groups(&events, 0), vec![1, 2]);
        assert_eq!(failed_groups(&events, 1), vec![2]);
        assert!(failed_groups(&events, 9).is_empty());
    }
}

//! What a pass counted: the one wrapper every pass runs in (its start and
//! end recorded in the report, also for a pass that stopped early), and
//! the reclaim counters, from sysfs or before 6.11 from the kernel log.

use crate::base::phase::PassKind;
use crate::btrfs::fs::Fs;
use crate::judge::report::PassRecord;

use super::run::Run;
use super::stop::{at, Stop};

/// Reclaim counters at the start of an iteration's wait, and what earlier
/// iterations counted.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Base {
    count: u64,
    errors: u64,
    earlier_count: u64,
    earlier_errors: u64,
}

/// The pass that ended: `now` less what was counted at its `start`, with
/// only the phases it spent time in.
fn pass_record(now: PassRecord, start: &PassRecord) -> PassRecord {
    let phases = now
        .phases
        .iter()
        .map(|(p, secs)| (*p, secs - start.phases.iter().find(|(q, _)| q == p).map(|(_, s)| *s).unwrap_or(0.0)))
        .filter(|(_, secs)| *secs > 0.0)
        .collect();
    PassRecord {
        reclaim_count: now.reclaim_count - start.reclaim_count,
        reclaim_errors: now.reclaim_errors - start.reclaim_errors,
        injections: now.injections - start.injections,
        relocation_failures: now.relocation_failures.saturating_sub(start.relocation_failures),
        phases,
        ..now
    }
}

impl Run<'_> {
    /// Runs `steps` as one pass laid out as `kind`, and records it (also
    /// one that stopped early).
    pub(super) fn in_pass<T>(&mut self, kind: PassKind, steps: impl FnOnce(&mut Self) -> Result<T, Stop>) -> Result<T, Stop> {
        self.begin_pass(kind);
        let result = steps(self);
        self.end_pass();
        result
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
            settle_end: self.settled.map(|(end, _)| end),
            settle_tail_seconds: self.settled.map(|(_, tail)| tail),
            counters_from_log: self.facts.counters_from_log,
        }
    }

    fn begin_pass(&mut self, kind: PassKind) {
        self.pass = kind;
        self.settled = None;
        if kind == PassKind::Natural {
            self.facts.natural_enospc = true;
        }
        self.pass_start = self.pass_counts();
    }

    fn end_pass(&mut self) {
        let record = pass_record(self.pass_counts(), &self.pass_start);
        self.report.passes.push(record);
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

    /// (attempts, failures): the sysfs counters, or before 6.11 the kernel
    /// log's `reclaiming chunk` and `error relocating chunk` lines.
    fn raw_counts(&mut self, fs: &Fs) -> Result<(u64, u64), Stop> {
        if !self.facts.counters_from_log {
            return at("reclaim counters", fs.reclaim_counts());
        }
        self.drain();
        Ok(self.watch.as_ref().map_or((0, 0), |w| (w.log.reclaiming_chunks, w.log.reloc_errors)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::phase::{Phase, SettleEnd};

    #[test]
    fn a_pass_record_counts_from_the_pass_start() {
        let start = PassRecord {
            reclaim_count: 2,
            reclaim_errors: 1,
            injections: 1,
            relocation_failures: 3,
            phases: vec![(Phase::Fill, 1.5)],
            ..PassRecord::default()
        };
        let now = PassRecord {
            layout: PassKind::Natural,
            fill_percent: 90.0,
            reclaim_count: 5,
            reclaim_errors: 1,
            injections: 4,
            relocation_failures: 2,
            phases: vec![(Phase::Fill, 1.5), (Phase::Settle, 2.0)],
            settle_end: Some(SettleEnd::Quiet),
            settle_tail_seconds: Some(0.5),
            counters_from_log: true,
        };
        let r = pass_record(now, &start);
        assert_eq!((r.reclaim_count, r.reclaim_errors, r.injections, r.relocation_failures), (3, 0, 3, 0));
        assert_eq!(r.phases, vec![(Phase::Settle, 2.0)]);
        assert_eq!((r.layout, r.fill_percent, r.settle_end, r.settle_tail_seconds, r.counters_from_log), (PassKind::Natural, 90.0, Some(SettleEnd::Quiet), Some(0.5), true));
    }
}

//! The verdict as people and scripts read it: a short text block that stands
//! alone in a mail (text.rs), and one JSON object (json.rs). `Report` holds
//! what only the printout needs; what the verdict reads is in `Facts`, once.

pub mod json;
pub mod ktap;
pub mod text;

use crate::kernel::kmsg::events::Tracker;
use crate::base::phase::{Enospc, PassKind, Phase, SettleEnd};
use crate::btrfs::fill::FillMode;
use crate::btrfs::reclaim::Reclaim;

/// How many evidence lines the text block shows (all are in --json/--log).
pub(super) const EVIDENCE_LINES: usize = 8;

/// --trigger swapfile: how swapoff ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SwapoffEnd {
    Off,
    Hung,
    Killed,
    Failed,
}

impl SwapoffEnd {
    pub fn name(self) -> &'static str {
        match self {
            SwapoffEnd::Off => "off",
            SwapoffEnd::Hung => "hung",
            SwapoffEnd::Killed => "killed",
            SwapoffEnd::Failed => "failed",
        }
    }
}

/// Run metadata and print-only observations.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub version: String,
    pub kernel: String,
    pub device: String,
    pub device_bytes: u64,
    /// "builtin" or "mkfs.btrfs v6.2": what formatted the device.
    pub mkfs: String,
    pub data_block_group_bytes: Option<u64>,
    pub fill_mode: FillMode,
    pub fill_percent: f64,
    pub bytes_written: u64,
    pub seed: u64,
    pub phases: Vec<(Phase, f64)>,
    pub total_seconds: f64,
    /// Unexpected /dev/kmsg read errors, and the last one's text.
    pub kmsg_read_errors: u64,
    pub kmsg_read_error: Option<String>,
    /// Seconds from start to the first reclaim_count/reclaim_errors change.
    pub first_reclaim_seconds: Option<f64>,
    pub fill_bytes_per_second: f64,
    /// VmHWM of this process.
    pub peak_rss_kib: u64,
    pub iterations: u32,
    /// Each iteration's wall time, and open fds and VmRSS at its end.
    pub per_iteration: Vec<IterationRecord>,
    /// kmemleak's summaries of leaked btrfs objects.
    pub kmemleak_evidence: Vec<String>,
    /// Stress mode's counts.
    pub stress: Option<StressStats>,
    /// Things a reader must know: lazy unmounts, what is left mounted.
    pub notes: Vec<String>,
    /// --enospc as asked.
    pub enospc_mode: Enospc,
    /// Each pass of each iteration, in order.
    pub passes: Vec<PassRecord>,
    /// The retry-list hunt's counts.
    pub hunt: Option<HuntStats>,
    /// --reclaim as run: periodic, dynamic or threshold=N.
    pub reclaim: Reclaim,
    /// --trigger.
    pub trigger: crate::base::phase::Trigger,
    /// --trigger swapfile: how swapoff ended (None: swap never went on).
    pub swapoff: Option<SwapoffEnd>,
    /// The mount options of the (last) mount: flags and data string.
    pub mount_options: String,
    /// The trace lines that showed the endless reclaim loop.
    pub loop_evidence: Vec<String>,
}

/// One iteration of an `--iterations` run: how long it took and what the
/// process held at its end (a long run must not grow either).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct IterationRecord {
    pub seconds: f64,
    pub held: crate::base::resources::Held,
}

/// One pass on a fresh filesystem: which failure path it was laid out for,
/// and what it saw (counts of this pass alone).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PassRecord {
    /// Injected (metadata DUP, 16 KiB nodes, --fill) or Natural (metadata
    /// SINGLE, 4 KiB nodes, data to ENOSPC, metadata starved).
    pub layout: PassKind,
    pub fill_percent: f64,
    pub reclaim_count: u64,
    pub reclaim_errors: u64,
    pub injections: u64,
    pub relocation_failures: u64,
    pub phases: Vec<(Phase, f64)>,
    /// How its settle ended, if it settled.
    pub settle_end: Option<SettleEnd>,
    /// Seconds from the last relocation result seen to the end of settle.
    pub settle_tail_seconds: Option<f64>,
    /// No sysfs counters (before 6.11): reclaim_count and reclaim_errors
    /// were counted from the kernel log, and the JSON shows them as null.
    pub counters_from_log: bool,
}

/// Stress mode's counts, summed over iterations.
#[derive(Debug, Clone, Default)]
pub struct StressStats {
    pub seconds: u64,
    pub worker_rounds: Vec<u64>,
    pub worker_enospc: u64,
    pub balances_started: u64,
    pub balances_cancelled: u64,
    pub balances_busy: u64,
    pub balances_failed: u64,
    pub balance_relocations: u64,
    /// gettid() of the balance thread: its BO: lines carry it.
    pub balance_tid: Option<crate::sys::process::Pid>,
    pub worker_errors: Vec<String>,
    /// Why the last failed balance failed.
    pub balance_last_error: Option<String>,
    /// Distinct block groups whose relocation failed during the churn.
    pub failed_groups: u64,
    /// The hunt's race windows (kernel/kmsg/trace.rs) counted over the churn:
    /// harmless with periodic reclaim on (the retry branch is dead code),
    /// but they show whether the churn reaches the state at all. None: no
    /// tracefs events.
    pub race_windows: Option<u64>,
}

/// The retry-list hunt's counts, summed over iterations.
#[derive(Debug, Clone, Default)]
pub struct HuntStats {
    /// Rounds started (each on a fresh filesystem).
    pub rounds: u64,
    /// Rounds whose relocations were failing before the burst.
    pub rounds_failing: u64,
    /// Groups emptied while their own failed relocation was in flight
    /// (tracefs); None: this kernel has no usable tracepoints.
    pub race_windows: Option<u64>,
    /// Rounds with at least one race window.
    pub rounds_with_window: u64,
    /// Seconds from the start of the run to the first kernel trouble line.
    pub first_evidence_seconds: Option<f64>,
    /// Seconds the rounds took, for the rates.
    pub seconds: f64,
}

/// `n` per minute of `secs`; None for no time at all.
pub fn per_minute(n: u64, secs: f64) -> Option<f64> {
    (secs > 0.0).then(|| (n as f64 * 60.0 / secs * 100.0).round() / 100.0)
}

/// Adds one iteration's counts to the totals.
impl std::ops::AddAssign for StressStats {
    fn add_assign(&mut self, s: StressStats) {
        self.seconds += s.seconds;
        if self.worker_rounds.len() < s.worker_rounds.len() {
            self.worker_rounds.resize(s.worker_rounds.len(), 0);
        }
        for (t, r) in self.worker_rounds.iter_mut().zip(&s.worker_rounds) {
            *t += r;
        }
        self.worker_enospc += s.worker_enospc;
        self.balances_started += s.balances_started;
        self.balances_cancelled += s.balances_cancelled;
        self.balances_busy += s.balances_busy;
        self.balances_failed += s.balances_failed;
        self.balance_relocations += s.balance_relocations;
        self.failed_groups += s.failed_groups;
        self.balance_tid = s.balance_tid.or(self.balance_tid);
        self.worker_errors.extend(s.worker_errors);
        self.balance_last_error = s.balance_last_error.or(self.balance_last_error.take());
        self.race_windows = match (self.race_windows, s.race_windows) {
            (None, None) => None,
            (a, b) => Some(a.unwrap_or(0) + b.unwrap_or(0)),
        };
    }
}

/// The notes, and what the reader of the verdict must know about reading
/// the kernel log.
pub(super) fn notes(r: &Report) -> Vec<String> {
    let mut out = r.notes.clone();
    if r.kmsg_read_errors > 0 {
        out.push(format!(
            "{} unexpected /dev/kmsg read error(s), last: {}; records after an error were read later or not at all",
            r.kmsg_read_errors,
            r.kmsg_read_error.as_deref().unwrap_or("?")
        ));
    }
    out
}

/// The kernel log lines that support the verdict: the first trouble and its
/// frames, else the first injected block group's sequence, else the failed
/// relocations.
pub fn evidence(log: &Tracker, r: &Report) -> Vec<String> {
    // The loop first, unless real trouble (not a stall it caused) came.
    if !r.loop_evidence.is_empty() && log.headline().is_none_or(crate::judge::known_bug::is_stall) {
        let mut lines = r.loop_evidence.clone();
        lines.extend(log.trouble.iter().cloned());
        return lines;
    }
    if log.trouble.is_empty() && !r.kmemleak_evidence.is_empty() {
        return r.kmemleak_evidence.clone();
    }
    if !log.trouble.is_empty() {
        // What went wrong first, then where: every distinct trouble line,
        // then the first splat's frames.
        let mut lines: Vec<String> = Vec::new();
        let mut listed = std::collections::HashSet::new();
        for t in log.headline().into_iter().chain(log.trouble.iter().map(String::as_str)) {
            if listed.insert(t) {
                lines.push(t.to_string());
            }
        }
        lines.extend(log.trouble_context.iter().skip(1).cloned());
        lines.extend(r.kmemleak_evidence.iter().cloned());
        return lines;
    }
    let seq = log.first_sequence();
    if !seq.is_empty() {
        return seq;
    }
    log.events.iter().filter(|e| e.kind == crate::kernel::kmsg::events::EventKind::RelocError).map(|e| e.text.clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use super::json::json;
    use super::text::text;
    use crate::testing::{records_from_console, track};
    use crate::judge::verdict::{judge, Facts, Verdict};

    fn sample() -> (Report, Verdict, Tracker, Facts) {
        let log = track(&records_from_console(include_str!("../../../tests/fixtures/instrumented-reclaim.txt")));
        let facts = Facts {
            space_cache: Some("v1".into()),
            v1_cache_block_groups: Some(9),
            reclaim_count: 8,
            reclaim_errors: 8,
            unmount_observed: true,
            ..Facts::default()
        };
        let v = judge(&facts, &log);
        let r = Report {
            version: "0.1.0 (abc)".into(),
            kernel: "6.12.117".into(),
            device: "/dev/vda".into(),
            device_bytes: 3 << 30,
            data_block_group_bytes: Some(320 << 20),
            fill_mode: FillMode::Fallocate,
            fill_percent: 90.2,
            bytes_written: 2 << 30,
            seed: 42,
            phases: Phase::ALWAYS_REPORTED.iter().map(|p| (*p, 0.5)).collect(),
            total_seconds: 4.0,
            ..Report::default()
        };
        (r, v, log, facts)
    }

    #[test]
    fn text_block_is_short_and_quotes_the_sequence() {
        let (r, v, log, facts) = sample();
        let t = text(&r, &v, &log, &facts);
        assert!(t.lines().count() <= 20, "{t}");
        assert!(t.starts_with("== btrfs-reclaim-repro 0.1.0 (abc): NOT REPRODUCED (exit 0) =="));
        assert!(t.contains("BO: 97 inject enospc... bg 634388480"));
        assert!(t.contains("BTRFS error (device vda): error relocating chunk 634388480"));
        assert!(t.contains("BO: 97 reclaim loop put bg done"));
        assert!(t.contains("320 MiB"));
    }

    #[test]
    fn json_has_the_documented_keys() {
        let (r, v, log, facts) = sample();
        let j = json(&r, &v, &log, &facts);
        for key in [
            "verdict", "exit_code", "reason", "version", "kernel", "device_bytes", "space_cache", "data_block_group_bytes",
            "v1_cache_block_groups", "fill_percent", "reclaim_count", "reclaim_errors", "injections", "reloc_puts",
            "reclaim_puts", "overlaps", "evidence", "kmsg_lost", "seed", "phases", "total_seconds", "bytes_written", "events",
            "first_reclaim_seconds", "fill_bytes_per_second", "peak_rss_kib", "kmemleak", "killed_in", "reclaim", "mount_options",
            "kmsg_read_errors", "kmsg_read_error", "per_iteration",
        ] {
            assert!(j.contains(&format!("\"{key}\": ")), "missing {key}");
        }
        assert!(j.contains("\"verdict\": \"NOT_REPRODUCED\""));
        assert!(j.contains("{\"pid\": 97, \"kind\": \"inject\", \"bg\": 634388480}"));
        assert!(j.contains("\"injections\": 8"));
        for p in Phase::ALWAYS_REPORTED {
            assert!(j.contains(&format!("\"{}\": 0.5", p.name())), "phase {p:?}");
        }
        assert_eq!(j.trim().lines().count(), 1);
    }

    #[test]
    fn per_iteration_fds_and_rss_are_in_the_json_and_the_runs_line() {
        use crate::base::resources::Held;
        let (mut r, v, log, facts) = sample();
        assert!(json(&r, &v, &log, &facts).contains("\"per_iteration\": []"));
        r.iterations = 3;
        let it = |seconds, open_fds, vm_rss_kib| IterationRecord { seconds, held: Held { open_fds, vm_rss_kib } };
        r.per_iteration = vec![it(4.25, 7, 2100), it(3.5, 7, 2150), it(3.75, 8, 2152)];
        let j = json(&r, &v, &log, &facts);
        assert!(
            j.contains(
                "\"per_iteration\": [{\"seconds\": 4.25, \"open_fds\": 7, \"vm_rss_kib\": 2100}, {\"seconds\": 3.5, \"open_fds\": 7, \"vm_rss_kib\": 2150}, {\"seconds\": 3.75, \"open_fds\": 8, \"vm_rss_kib\": 2152}]"
            ),
            "{j}"
        );
        let t = text(&r, &v, &log, &facts);
        assert!(t.contains("runs:     3 iterations on fresh filesystems; open fds 7 -> 8, VmRSS 2100 -> 2152 KiB (first -> last)"), "{t}");
    }

    /// A 100-iteration run has 100 passes: the text names the first three
    /// and sums the rest, so the block stays mail-sized.
    #[test]
    fn many_passes_fit_one_short_line() {
        let (mut r, v, log, facts) = sample();
        let pass = |n: u64| PassRecord { layout: PassKind::Injected, reclaim_count: 6, relocation_failures: n, injections: 0, ..PassRecord::default() };
        r.iterations = 100;
        r.passes = (0..100).map(|i| pass(i % 2)).collect();
        let t = text(&r, &v, &log, &facts);
        let line = t.lines().find(|l| l.starts_with("passes:")).unwrap();
        assert_eq!(
            line,
            "passes:   injected (6 relocated, 0 failed, 0 injected), then injected (6 relocated, 1 failed, 0 injected), \
             then injected (6 relocated, 0 failed, 0 injected), then 97 more passes (582 relocated, 49 failed, 0 injected)"
        );
        r.passes.truncate(4);
        let t = text(&r, &v, &log, &facts);
        assert_eq!(t.lines().find(|l| l.starts_with("passes:")).unwrap().matches(", then ").count(), 3, "four are shown as they are");
    }

    /// Without tracefs events the hunt cannot count race windows: null in
    /// the JSON and said so in the text, never a 0 that would read as
    /// "the race state was never reached".
    #[test]
    fn race_windows_are_null_and_not_counted_without_tracefs() {
        let (mut r, v, log, facts) = sample();
        r.reclaim = Reclaim::Threshold(75);
        r.hunt = Some(HuntStats { rounds: 4, rounds_failing: 3, ..HuntStats::default() });
        let j = json(&r, &v, &log, &facts);
        assert!(j.contains("\"hunt_rounds\": 4, \"hunt_rounds_failing\": 3, \"race_windows\": null, \"race_windows_per_minute\": null, \"rounds_with_window\": 0"), "{j}");
        let t = text(&r, &v, &log, &facts);
        assert!(t.contains("hunt:     4 rounds (3 with failing relocations), race windows not counted (no tracefs events), reclaim threshold=75"), "{t}");
        r.hunt = Some(HuntStats { rounds: 4, rounds_failing: 3, race_windows: Some(0), ..HuntStats::default() });
        assert!(json(&r, &v, &log, &facts).contains("\"race_windows\": 0,"));
        assert!(text(&r, &v, &log, &facts).contains("race windows 0 (in 0 rounds), reclaim threshold=75"));
    }

    /// Before 6.11 there is no reclaim_count: the counts from the kernel log
    /// are said as such, and the JSON's counters are null, never 0.
    #[test]
    fn a_static_threshold_kernel_has_null_counters_and_says_its_trigger() {
        let (mut r, v, log, mut facts) = sample();
        r.reclaim = crate::btrfs::reclaim::Reclaim::Threshold(75);
        r.passes = vec![PassRecord { layout: PassKind::Natural, reclaim_count: 5, reclaim_errors: 5, counters_from_log: true, ..PassRecord::default() }];
        facts.offered = Some(crate::btrfs::fs::Offered::StaticThreshold);
        facts.counters_from_log = true;
        let j = json(&r, &v, &log, &facts);
        assert!(j.contains("\"reclaim_count\": null, \"reclaim_errors\": null,"), "{j}");
        assert!(j.contains("\"layout\": \"natural\", \"fill_percent\": 0, \"reclaim_count\": null, \"reclaim_errors\": null"), "{j}");
        assert!(j.contains("\"reclaim\": \"threshold=75\", \"reclaim_offered\": \"bg_reclaim_threshold\", \"reclaim_attempts_logged\": "), "{j}");
        assert!(!j.contains("known_bug") && !j.contains("reclaim_loop"), "only when found: {j}");
        let t = text(&r, &v, &log, &facts);
        assert!(t.contains("trigger:  the kernel offers bg_reclaim_threshold only; ran threshold=75"), "{t}");
        assert!(t.contains("in the kernel log (no reclaim_count before 6.11"), "{t}");
        // With the counters (6.11 on) nothing of this shows.
        let (r, v, log, facts) = sample();
        let j = json(&r, &v, &log, &facts);
        assert!(!j.contains("reclaim_offered") && !j.contains("null, \"reclaim_errors\""), "{j}");
    }

    /// The churn stress counts race windows too: summed over iterations,
    /// null only when no iteration could count them.
    #[test]
    fn stress_race_windows_add_up_and_show() {
        let with = |n: Option<u64>| StressStats { race_windows: n, ..StressStats::default() };
        for (a, b, sum) in [(None, None, None), (Some(2), None, Some(2)), (None, Some(0), Some(0)), (Some(2), Some(3), Some(5))] {
            let mut total = with(a);
            total += with(b);
            assert_eq!(total.race_windows, sum, "{a:?} + {b:?}");
        }
        let (mut r, v, log, facts) = sample();
        r.stress = Some(with(Some(4)));
        assert!(json(&r, &v, &log, &facts).contains("\"balance_tid\": null, \"race_windows\": 4,"));
        assert!(text(&r, &v, &log, &facts).contains("balance tid ?, race windows 4\n"));
    }

    /// --trigger swapfile says itself and how swapoff ended; the default
    /// trigger adds nothing.
    #[test]
    fn the_swapfile_trigger_and_its_swapoff_show() {
        let (mut r, v, log, facts) = sample();
        assert!(!json(&r, &v, &log, &facts).contains("swapoff") && !text(&r, &v, &log, &facts).contains("swapfile"));
        r.trigger = crate::base::phase::Trigger::Swapfile;
        let j = json(&r, &v, &log, &facts);
        assert!(j.contains("\"trigger\": \"swapfile\", \"swapoff\": null"), "{j}");
        assert!(text(&r, &v, &log, &facts).contains("(inc_block_group_ro() refuses it: ETXTBSY); swapoff: never on\n"));
        r.swapoff = Some(SwapoffEnd::Hung);
        assert!(json(&r, &v, &log, &facts).contains("\"swapoff\": \"hung\""));
        assert!(text(&r, &v, &log, &facts).contains("; swapoff: hung\n"));
    }

    #[test]
    fn kmsg_read_errors_are_a_note_and_in_the_json() {
        let (mut r, v, log, facts) = sample();
        assert!(!text(&r, &v, &log, &facts).contains("read error"));
        assert!(json(&r, &v, &log, &facts).contains("\"kmsg_read_errors\": 0, \"kmsg_read_error\": null"));
        r.kmsg_read_errors = 3;
        r.kmsg_read_error = Some("read /dev/kmsg: Input/output error (os error 5)".into());
        let t = text(&r, &v, &log, &facts);
        assert!(
            t.contains("note:     3 unexpected /dev/kmsg read error(s), last: read /dev/kmsg: Input/output error (os error 5); "),
            "{t}"
        );
        let j = json(&r, &v, &log, &facts);
        assert!(j.contains("\"kmsg_read_errors\": 3, \"kmsg_read_error\": \"read /dev/kmsg: Input/output error (os error 5)\""), "{j}");
        assert!(j.contains("\"notes\": [\"3 unexpected /dev/kmsg read error(s)"), "{j}");
    }
}

/// Golden files: the verdict as printed, pinned byte for byte so that moving
/// code cannot change it unnoticed. `BRR_BLESS=1 cargo test --bins golden`
/// rewrites them; the diff then goes into the commit message.
#[cfg(test)]
pub(super) mod golden {
    use super::*;
    use super::json::json;
    use super::text::text;
    use crate::testing::{records_from_console, track};
    use crate::judge::verdict::{judge, Facts};

    pub(in crate::judge::report) fn compare(name: &str, actual: &str) {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/golden").join(name);
        if std::env::var("BRR_BLESS").is_ok_and(|v| v == "1") {
            std::fs::write(&path, actual).unwrap();
            return;
        }
        let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e} (BRR_BLESS=1 writes it)", path.display()));
        assert!(expected == actual, "{} differs from the output:\n--- expected\n{expected}\n--- actual\n{actual}", path.display());
    }

    pub(in crate::judge::report) fn report() -> Report {
        Report {
            version: "0.1.0 (abc)".into(),
            kernel: "6.12.117".into(),
            device: "/dev/vda".into(),
            device_bytes: 3 << 30,
            mkfs: "builtin".into(),
            data_block_group_bytes: Some(320 << 20),
            fill_mode: FillMode::Fallocate,
            fill_percent: 90.2,
            bytes_written: 2 << 30,
            seed: 42,
            phases: Phase::ALWAYS_REPORTED.iter().enumerate().map(|(i, p)| (*p, 0.25 * i as f64)).collect(),
            total_seconds: 4.0,
            first_reclaim_seconds: Some(1.5),
            fill_bytes_per_second: 1e9,
            peak_rss_kib: 4600,
            iterations: 1,
            notes: vec!["left mounted on /mnt/test (--keep-mounted)".into()],
            enospc_mode: Enospc::Injected,
            reclaim: Reclaim::Periodic,
            mount_options: "noatime,space_cache=v1".into(),
            ..Report::default()
        }
    }

    pub(in crate::judge::report) fn facts() -> Facts {
        Facts {
            space_cache: Some("v1".into()),
            v1_cache_block_groups: Some(9),
            reclaim_count: 8,
            reclaim_errors: 8,
            unmount_observed: true,
            kmemleak: Some(0),
            ..Facts::default()
        }
    }

    #[test]
    fn golden_not_reproduced_on_the_instrumented_kernel() {
        let log = track(&records_from_console(include_str!("../../../tests/fixtures/instrumented-reclaim.txt")));
        let (r, f) = (report(), facts());
        let v = judge(&f, &log);
        compare("instrumented.txt", &text(&r, &v, &log, &f));
        compare("instrumented.json", &json(&r, &v, &log, &f));
    }

    #[test]
    fn golden_reproduced_at_unmount() {
        let log = track(&records_from_console(include_str!("../../../tests/fixtures/kasan-refcount-oops-at-unmount.txt")));
        let mut f = facts();
        f.killed_in = Some((Phase::Unmount, Some(crate::sys::process::Signal::SEGV)));
        let r = report();
        let v = judge(&f, &log);
        compare("reproduced.txt", &text(&r, &v, &log, &f));
        compare("reproduced.json", &json(&r, &v, &log, &f));
    }

    #[test]
    fn rates_are_per_minute_of_the_time_taken() {
        assert_eq!(per_minute(3, 30.0), Some(6.0));
        assert_eq!(per_minute(1, 180.0), Some(0.33));
        assert_eq!(per_minute(5, 0.0), None);
    }

    #[test]
    fn golden_stress_natural() {
        let log = track(&records_from_console(include_str!("../../../tests/fixtures/host-6.18-kmsg-records.txt")));
        let mut f = facts();
        f.natural_enospc = true;
        f.reclaim_errors = 3;
        let mut r = report();
        r.enospc_mode = Enospc::Natural;
        r.iterations = 2;
        r.phases.push((Phase::Stress, 30.0));
        r.stress = Some(StressStats {
            seconds: 30,
            worker_rounds: vec![5, 6],
            worker_enospc: 1,
            balances_started: 4,
            balances_cancelled: 2,
            balances_busy: 1,
            balances_failed: 1,
            balance_relocations: 3,
            balance_tid: Some(crate::sys::process::Pid(1234)),
            worker_errors: vec![],
            balance_last_error: Some("ENOSPC".into()),
            failed_groups: 3,
            race_windows: None,
        });
        let v = judge(&f, &log);
        compare("stress.txt", &text(&r, &v, &log, &f));
        compare("stress.json", &json(&r, &v, &log, &f));
    }

    /// --enospc auto on a stock kernel: the injected pass relocated without
    /// a failure, the natural pass failed three relocations.
    #[test]
    fn golden_auto_on_a_stock_kernel() {
        let log = track(&records_from_console(include_str!("../../../tests/fixtures/host-6.18-kmsg-records.txt")));
        let mut f = facts();
        f.natural_enospc = true;
        f.reclaim_count = 11;
        f.reclaim_errors = 3;
        let mut r = report();
        r.enospc_mode = Enospc::Auto;
        r.passes = vec![
            PassRecord {
                layout: PassKind::Injected,
                fill_percent: 90.2,
                reclaim_count: 8,
                phases: vec![(Phase::Mkfs, 0.1), (Phase::Trigger, 0.3)],
                ..PassRecord::default()
            },
            PassRecord {
                layout: PassKind::Natural,
                fill_percent: 100.0,
                reclaim_count: 3,
                reclaim_errors: 3,
                relocation_failures: 3,
                phases: vec![(Phase::Starve, 3.8), (Phase::Settle, 2.0)],
                settle_end: Some(SettleEnd::WorkerIdle),
                settle_tail_seconds: Some(0.12),
                ..PassRecord::default()
            },
        ];
        let v = judge(&f, &log);
        compare("auto-stock.txt", &text(&r, &v, &log, &f));
        compare("auto-stock.json", &json(&r, &v, &log, &f));
    }

    #[test]
    fn golden_refused_and_interrupted() {
        let log = Tracker::default();
        let mut f = facts();
        f.refused = Some(crate::judge::verdict::Refusal::Unsafe("refusing /dev/vdb: mounted on /home (use another device)".into()));
        let v = judge(&f, &log);
        compare("refused.txt", &text(&report(), &v, &log, &f));
        let mut f = facts();
        f.interrupted = Some(crate::sys::process::Signal::INT);
        let v = judge(&f, &log);
        compare("interrupted.json", &json(&report(), &v, &log, &f));
        let mut f = facts();
        f.space_cache = Some("v2".into());
        f.reclaim_errors = 0;
        let v = judge(&f, &log);
        compare("inconclusive-v2.txt", &text(&report(), &v, &log, &f));
        compare("inconclusive-v2.json", &json(&report(), &v, &log, &f));
    }
}

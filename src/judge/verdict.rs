//! The judge: from what the run observed to one verdict and an exit code that
//! `git bisect run` understands (0 good, 1 bad, 125 skip, >127 abort).

use crate::btrfs::fs::Offered;
use crate::kernel::kmsg::events::Tracker;
use crate::judge::known_bug::{self, KnownBug};
use crate::base::phase::Phase;
use crate::sys::process::Signal;

pub use super::cause::Cause;

/// The exit codes, named once: `git bisect run` reads 0 as good, 1 as bad,
/// 125 as skip and anything above 127 as abort.
pub struct ExitCode;

impl ExitCode {
    pub const NOT_REPRODUCED: i32 = 0;
    pub const REPRODUCED: i32 = 1;
    /// A usage error or a safety refusal: nothing was touched.
    pub const REFUSED: i32 = 2;
    pub const SUSPECTED: i32 = 3;
    /// INCONCLUSIVE, and our own failures (a panic, a handler we could not
    /// install): no verdict on the kernel, so bisect skips the commit.
    pub const SKIP: i32 = 125;
    /// --vm refused on the host before anything started: `git bisect run`
    /// aborts (2 would mark the commit bad), and no 128+N of a signal.
    pub const VM_REFUSED: i32 = 255;

    /// 128 + the signal, as a shell reports a process the signal ended.
    pub fn interrupted(sig: Signal) -> i32 {
        128 + sig.0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Reproduced,
    Suspected,
    NotReproduced,
    Inconclusive,
    Refused,
    /// --vm, refused on the host (QEMU missing, not a kernel, no room):
    /// REFUSED, with the exit code that aborts a bisect.
    VmRefused,
    Interrupted(Signal),
}

impl Kind {
    /// The one place a verdict becomes an exit code.
    pub fn exit_code(self) -> i32 {
        match self {
            Kind::NotReproduced => ExitCode::NOT_REPRODUCED,
            Kind::Reproduced => ExitCode::REPRODUCED,
            Kind::Refused => ExitCode::REFUSED,
            Kind::VmRefused => ExitCode::VM_REFUSED,
            Kind::Suspected => ExitCode::SUSPECTED,
            Kind::Inconclusive => ExitCode::SKIP,
            Kind::Interrupted(sig) => ExitCode::interrupted(sig),
        }
    }

    pub fn json_name(self) -> &'static str {
        match self {
            Kind::Reproduced => "REPRODUCED",
            Kind::Suspected => "SUSPECTED",
            Kind::NotReproduced => "NOT_REPRODUCED",
            Kind::Inconclusive => "INCONCLUSIVE",
            Kind::Refused | Kind::VmRefused => "REFUSED",
            Kind::Interrupted(_) => "INTERRUPTED",
        }
    }
    pub fn human_name(self) -> &'static str {
        match self {
            Kind::NotReproduced => "NOT REPRODUCED",
            k => k.json_name(),
        }
    }
}

/// Taint bits that mean the kernel hit trouble (tainted-kernels.rst):
/// B = 5 bad page, D = 7 died (oops), W = 9 warning.
pub const TAINT_BAD_PAGE: u64 = 1 << 5;
pub const TAINT_DIE: u64 = 1 << 7;
pub const TAINT_WARN: u64 = 1 << 9;
pub const TROUBLE_TAINTS: u64 = TAINT_BAD_PAGE | TAINT_DIE | TAINT_WARN;

/// Why a run would not start, before anything was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The host lacks what any run needs (root, CAP_SYS_ADMIN): kernel CI
    /// reads that as "not applicable here", like kselftest's skips.
    Unprivileged(String),
    /// Bad arguments or an unsafe device: a configuration error.
    Unsafe(String),
}

impl Refusal {
    /// The one line a person reads.
    pub fn why(&self) -> &str {
        match self {
            Refusal::Unprivileged(why) | Refusal::Unsafe(why) => why,
        }
    }
}

/// What the run found out, apart from the kernel log.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// Set when the environment failed mid-run: names the step and errno.
    pub setup_failure: Option<String>,
    pub refused: Option<Refusal>,
    pub interrupted: Option<Signal>,
    /// "v1" / "v2" as found in mountinfo.
    pub space_cache: Option<String>,
    pub v1_cache_block_groups: Option<u64>,
    pub reclaim_count: u64,
    pub reclaim_errors: u64,
    pub reclaim_wait_secs: u64,
    /// Taint bits that appeared during the run.
    pub taint_gained: u64,
    /// False with --keep-mounted: close_ctree() was not observed.
    pub unmount_observed: bool,
    /// A kernel operation's child was killed (signal) or hung (None).
    pub killed_in: Option<(Phase, Option<Signal>)>,
    pub op_timeout_secs: u64,
    /// Unreferenced btrfs objects kmemleak found after the unmount; None:
    /// no kmemleak in this kernel.
    pub kmemleak: Option<u64>,
    /// --enospc natural was asked for.
    pub natural_enospc: bool,
    /// Kernel log records overwritten before the reader got them (EPIPE,
    /// sequence gaps), over every iteration.
    pub kmsg_lost: u64,
    /// Which automatic reclaim the mounted filesystem offered (None: not
    /// mounted yet).
    pub offered: Option<crate::btrfs::fs::Offered>,
    /// No reclaim_count/reclaim_errors files (before 6.11): the counts come
    /// from the kernel log, and the JSON shows the counters as null.
    pub counters_from_log: bool,
    /// The reclaim worker kept relocating one failing group within one run.
    pub reclaim_loop: Option<crate::kernel::kmsg::reclaim_loop::Loop>,
    /// After the loop: whether the unmount ended it (Some(true): the
    /// unmount returned, so the worker let go).
    pub loop_stopped: Option<bool>,
    /// Longest time exclusive_operation read `balance` without a break
    /// while the run forced no commit (the worker's one run).
    pub longest_busy_secs: Option<f64>,
    /// --trigger swapfile ran; the swapfile's group it saw queued, refused
    /// (inc_block_group_ro(): ETXTBSY) and let go by a worker gone idle.
    pub swap_trigger: bool,
    pub swap_refused: Option<u64>,
}

/// Which failure path the log shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailurePath {
    /// The instrumentation's BO: inject lines.
    Injected,
    /// Relocations failed without them: a real ENOSPC.
    Natural,
    /// No relocation failed, but the active swapfile's group was refused.
    Swapfile,
    None,
}

impl FailurePath {
    pub fn name(self) -> &'static str {
        match self {
            FailurePath::Injected => "injected",
            FailurePath::Natural => "natural",
            FailurePath::Swapfile => "swapfile",
            FailurePath::None => "none",
        }
    }
}

pub fn failure_path(f: &Facts, log: &Tracker) -> FailurePath {
    if log.injections > 0 {
        FailurePath::Injected
    } else if relocation_failures(f, log) > 0 {
        FailurePath::Natural
    } else if f.swap_refused.is_some() {
        FailurePath::Swapfile
    } else {
        FailurePath::None
    }
}

/// Kernel log records the run could not judge because the kernel had
/// overwritten them: the reader's count covers every iteration (and an
/// EPIPE before the first record), the tracker's the gaps in the records
/// judged.
pub fn records_lost(f: &Facts, log: &Tracker) -> u64 {
    f.kmsg_lost.max(log.lost)
}

pub fn relocation_failures(f: &Facts, log: &Tracker) -> u64 {
    f.reclaim_errors.max(log.reloc_errors)
}

#[derive(Debug, Clone)]
pub struct Verdict {
    pub kind: Kind,
    pub reason: String,
    /// INCONCLUSIVE: why, so that `next_step` can say what to do.
    pub cause: Option<Cause>,
    /// REPRODUCED: the catalogued upstream bug the evidence matches.
    pub known_bug: Option<KnownBug>,
}

impl Verdict {
    pub fn exit_code(&self) -> i32 {
        self.kind.exit_code()
    }

    /// What to do next (INCONCLUSIVE only).
    pub fn next_step(&self) -> Option<&'static str> {
        self.cause.map(Cause::advice)
    }
}

fn taint_letters(bits: u64) -> String {
    let mut s = String::new();
    for (bit, c) in [(TAINT_BAD_PAGE, 'B'), (TAINT_DIE, 'D'), (TAINT_WARN, 'W')] {
        if bits & bit != 0 {
            s.push(c);
        }
    }
    s
}

pub fn judge(f: &Facts, log: &Tracker) -> Verdict {
    if let Some(why) = &f.refused {
        return plain(Kind::Refused, why.why().to_string());
    }
    let trouble = trouble(f, log);
    if let Some(sig) = f.interrupted {
        return interrupted(sig, trouble.as_deref());
    }
    // A stall alone: the machine may just be slow (measured: TCG and KASAN
    // relocating a group stalled the CPU for 21 s on a clean kernel).
    if log.only_stalls() && f.reclaim_loop.is_none() && f.killed_in.is_none() && f.kmemleak.is_none_or(|n| n == 0) {
        let first = log.headline().unwrap_or_default();
        return inconclusive(Cause::StallOnly, format!("the kernel reported a stall and nothing that names a bug: {first}"));
    }
    if let Some(t) = trouble {
        return reproduced(f, log, &t);
    }
    if let Some(why) = &f.setup_failure {
        if f.offered == Some(Offered::Nothing) {
            return inconclusive(Cause::NoReclaimTrigger, why.clone());
        }
        return inconclusive(Cause::SetupFailed, format!("setup failed: {why}"));
    }
    if let Some(o) = log.overlaps.first() {
        let reason = format!("block group {}: reloc put (pid {}) and reclaim loop put (pid {}) overlap", o.bg, o.reloc_pid, o.reclaim_pid);
        return plain(Kind::Suspected, reason);
    }
    if let Some(reason) = exercised(f, log) {
        // A clean log with holes in it is no proof: the splat may have been
        // among the records the kernel overwrote before we read them.
        let lost = records_lost(f, log);
        if lost > 0 {
            return inconclusive(
                Cause::RecordsLost,
                format!(
                    "{lost} kernel log records were lost during the run; the evidence may have been among them (boot with log_buf_len=16M for a bigger kernel log buffer); without them: {reason}"
                ),
            );
        }
        return plain(Kind::NotReproduced, reason);
    }
    let (cause, reason) = not_exercised(f);
    inconclusive(cause, reason)
}

fn plain(kind: Kind, reason: String) -> Verdict {
    Verdict { kind, reason, cause: None, known_bug: None }
}

fn inconclusive(cause: Cause, reason: String) -> Verdict {
    Verdict { kind: Kind::Inconclusive, reason, cause: Some(cause), known_bug: None }
}

/// The endless reclaim loop, said with how long balance held the
/// exclusive operation and whether the unmount stopped it.
fn looped(f: &Facts) -> Option<String> {
    let l = f.reclaim_loop.as_ref()?;
    let mut s = l.describe();
    if let Some(b) = f.longest_busy_secs.filter(|b| *b >= 1.0 && l.pid.is_some()) {
        s.push_str(&format!("; exclusive_operation read balance for {b:.1} s without a break"));
    }
    s.push_str(match f.loop_stopped {
        Some(true) => "; the unmount then stopped it",
        Some(false) => "; the unmount did not return: the loop did not stop",
        None => "",
    });
    Some(s)
}

/// The evidence of kernel trouble, strongest first: the log's headline
/// (after the endless loop where that caused a stall), the loop, a killed
/// or hung operation, a kmemleak leak, a trouble taint.
fn trouble(f: &Facts, log: &Tracker) -> Option<String> {
    let killed = f.killed_in.as_ref().map(|(step, sig)| match sig {
        Some(sig) => format!("the kernel killed the {} task ({})", step.name(), sig.name()),
        None => format!("hung in {} (no return within {} s)", step.name(), step.op_timeout_secs(f.op_timeout_secs)),
    });
    let leak = || f.kmemleak.filter(|n| *n > 0).map(|n| format!("kmemleak: {n} unreferenced btrfs objects after the unmount (leak)"));
    let bad_taint = f.taint_gained & TROUBLE_TAINTS;
    let taint = || (bad_taint != 0).then(|| format!("the kernel gained taint {} during the run", taint_letters(bad_taint)));
    // The endless loop is decisive; a stall it causes comes second.
    let looped = looped(f);
    if let (Some(l), Some(first)) = (&looped, log.headline().filter(|h| known_bug::is_stall(h))) {
        return Some(format!("{l}; kernel trouble after it: {first}"));
    }
    if let Some(first) = log.headline() {
        let t = format!("kernel trouble: {first}");
        return Some(match killed {
            Some(k) => format!("{k}; {t}"),
            None => t,
        });
    }
    looped.or(killed).or_else(leak).or_else(taint)
}

fn interrupted(sig: Signal, trouble: Option<&str>) -> Verdict {
    let mut reason = format!("interrupted by {}", sig.name());
    if let Some(t) = trouble {
        reason.push_str(&format!(" (after {t})"));
    }
    plain(Kind::Interrupted(sig), reason)
}

/// REPRODUCED on `trouble`, with the injected block groups and the
/// upstream fix the evidence names.
fn reproduced(f: &Facts, log: &Tracker, trouble: &str) -> Verdict {
    let bg = match log.injected_groups().as_slice() {
        [] => String::new(),
        [one] => format!("; injected block group {one}"),
        [first, rest @ ..] => format!("; injected block groups {first} and {} more", rest.len()),
    };
    let failed = relocation_failures(f, log) > 0 || log.injections > 0;
    let known_bug = known_bug::name(&log.trouble_context, failed, f.reclaim_loop.is_some());
    Verdict { known_bug, ..plain(Kind::Reproduced, format!("{trouble}{bg}")) }
}

/// The failure path the run exercised without trouble, said as the
/// reason of a NOT REPRODUCED.
fn exercised(f: &Facts, log: &Tracker) -> Option<String> {
    let unobserved = if f.unmount_observed { "" } else { " (unmount not observed: --keep-mounted)" };
    match failure_path(f, log) {
        FailurePath::Injected => Some(format!(
            "failure path exercised: {} injected ENOSPC, puts balanced, no kernel trouble{unobserved}",
            log.injections
        )),
        FailurePath::Natural => Some(format!(
            "failure path exercised (natural ENOSPC, no injection): {} reclaim relocation(s) failed ({} before moving extents), no kernel trouble{unobserved}",
            relocation_failures(f, log),
            log.errors_before_move
        )),
        FailurePath::Swapfile => Some(format!(
            "failure path exercised (swapfile): block group {} holding the active swapfile was queued for reclaim and refused (inc_block_group_ro(): ETXTBSY); the worker let it go and went idle: no endless loop, no kernel trouble{unobserved}",
            f.swap_refused.unwrap_or(0)
        )),
        FailurePath::None => None,
    }
}

/// Why the failure path was not reached: the first thing missing (the
/// swapfile pass needs no v1 cache: it has no injection site to reach).
fn not_exercised(f: &Facts) -> (Cause, String) {
    if f.swap_trigger && f.reclaim_count > 0 {
        let why = "it did not cross the threshold, the worker did not reach it, or no trace showed it";
        (Cause::SwapNotRefused, format!("reclaim ran ({} relocated) but never refused the swapfile's block group: {why}", f.reclaim_count))
    } else if f.natural_enospc && f.reclaim_count > 0 {
        (Cause::NotStarved, format!("reclaim ran but no relocation failed ({} reclaimed): metadata was not starved enough", f.reclaim_count))
    } else if f.space_cache.as_deref() != Some("v1") && !f.swap_trigger {
        (
            Cause::NoV1Cache,
            format!(
                "no data block group has a v1 cache inode (space cache {}): the injection site in delete_block_group_cache() is unreachable",
                f.space_cache.as_deref().unwrap_or("unknown")
            ),
        )
    } else if f.v1_cache_block_groups == Some(0) && !f.swap_trigger {
        (
            Cause::NoV1CacheInode,
            "no data block group has a v1 cache inode: the injection site in delete_block_group_cache() is unreachable".to_string(),
        )
    } else if f.reclaim_count == 0 {
        (Cause::ReclaimNeverFired, format!("reclaim never fired within {} s", f.reclaim_wait_secs))
    } else {
        (
            Cause::NotInstrumented,
            format!("reclaim ran but no relocation failed ({} reclaimed, 0 errors): kernel not instrumented?", f.reclaim_count),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{records_from_console, track};
    use crate::kernel::kmsg::Record;

    fn base() -> Facts {
        Facts {
            space_cache: Some("v1".into()),
            v1_cache_block_groups: Some(9),
            reclaim_count: 8,
            reclaim_errors: 8,
            reclaim_wait_secs: 60,
            unmount_observed: true,
            ..Facts::default()
        }
    }

    fn log(name: &str) -> Tracker {
        let text = match name {
            "instrumented" => include_str!("../../tests/fixtures/instrumented-reclaim.txt"),
            "kasan" => include_str!("../../tests/fixtures/kasan-refcount-oops-at-unmount.txt"),
            _ => "",
        };
        track(&records_from_console(text))
    }

    /// A tracker fed `lines` with sequence numbers `step` apart (a step
    /// over 1 leaves gaps: lost records).
    fn lines_log<'a>(lines: impl IntoIterator<Item = &'a &'a str>, step: u64) -> Tracker {
        let mut l = Tracker::default();
        for (i, t) in lines.into_iter().enumerate() {
            l.feed(&Record { level: 6, seq: step * i as u64, usec: 0, text: t.to_string() });
        }
        l
    }

    fn fixture_log(text: &str) -> Tracker {
        track(&records_from_console(text))
    }

    fn a_loop() -> crate::kernel::kmsg::reclaim_loop::Loop {
        let trace = include_str!("../../tests/fixtures/6.1-reclaim-loop-natural-trace.txt");
        crate::kernel::kmsg::reclaim_loop::detect(trace, "ad958560-6238-4f96-88d3-e39ac5400128").unwrap()
    }

    #[test]
    fn the_endless_loop_is_reproduced_and_names_the_fix_the_kernel_lacks() {
        let f = Facts { reclaim_loop: Some(a_loop()), loop_stopped: Some(true), longest_busy_secs: Some(3.4), ..base() };
        let v = judge(&f, &lines_log(&["BTRFS error (device vda): error relocating chunk 3041918976"], 1));
        assert_eq!((v.kind, v.exit_code(), v.known_bug), (Kind::Reproduced, 1, Some(KnownBug::ReclaimLoop)));
        assert!(v.reason.starts_with("the reclaim worker (pid 8) kept relocating block group 3041918976"), "{}", v.reason);
        assert!(v.reason.contains("exclusive_operation read balance for 3.4 s") && v.reason.ends_with("the unmount then stopped it"));
        // A stall it causes comes second.
        let stall = fixture_log(include_str!("../../tests/fixtures/real-retry-bug-rcu-stall.txt"));
        let v = judge(&f, &stall);
        assert_eq!(v.known_bug, Some(KnownBug::ReclaimLoop));
        assert!(v.reason.starts_with("the reclaim worker") && v.reason.contains("kernel trouble after it: rcu: INFO"), "{}", v.reason);
    }

    #[test]
    fn after_the_retry_list_underflow_a_loop_is_its_consequence() {
        let l = fixture_log(include_str!("../../tests/fixtures/real-retry-bug-hunt.txt"));
        let v = judge(&Facts { reclaim_loop: Some(a_loop()), ..base() }, &l);
        assert_eq!((v.kind, v.known_bug), (Kind::Reproduced, Some(KnownBug::RetryListCorruption)));
        assert!(v.reason.starts_with("kernel trouble: refcount_t: underflow"), "{}", v.reason);
        let v = judge(&base(), &l);
        assert_eq!(v.known_bug, Some(KnownBug::RetryListCorruption));
        // Elsewhere (a use-after-free at unmount) no catalogued bug is named.
        assert_eq!(judge(&base(), &log("kasan")).known_bug, None);
        assert_eq!(judge(&base(), &log("instrumented")).known_bug, None);
    }

    #[test]
    fn a_stall_alone_is_inconclusive_and_with_a_bug_comes_second() {
        // The real stall, its underflow trimmed: nothing names a bug.
        let stall = fixture_log(include_str!("../../tests/fixtures/real-retry-bug-rcu-stall.txt"));
        assert!(stall.only_stalls());
        let v = judge(&base(), &stall);
        assert_eq!((v.kind, v.exit_code(), v.cause), (Kind::Inconclusive, 125, Some(Cause::StallOnly)));
        assert!(v.reason.contains("rcu: INFO: rcu_sched self-detected stall on CPU"), "{}", v.reason);
        assert!(v.next_step().unwrap().contains("a stall alone is no evidence"));
        // A stall first, then a line that names the bug: that line is quoted first.
        let mut l = fixture_log(include_str!("../../tests/fixtures/real-retry-bug-rcu-stall.txt"));
        l.feed(&Record { level: 4, seq: 10_000, usec: 0, text: "refcount_t: underflow; use-after-free.".into() });
        let v = judge(&base(), &l);
        assert_eq!(v.kind, Kind::Reproduced);
        assert!(v.reason.starts_with("kernel trouble: refcount_t: underflow"), "{}", v.reason);
        // With a leak, or a killed operation, it stays evidence.
        assert_eq!(judge(&Facts { kmemleak: Some(3), ..base() }, &stall).kind, Kind::Reproduced);
        assert_eq!(judge(&Facts { killed_in: Some((Phase::Unmount, None)), ..base() }, &stall).kind, Kind::Reproduced);
    }

    #[test]
    fn a_kernel_without_any_reclaim_trigger_is_inconclusive_with_a_next_step() {
        let f = Facts { offered: Some(Offered::Nothing), setup_failure: Some("kernel has neither ...".into()), ..base() };
        let v = judge(&f, &Tracker::default());
        assert_eq!((v.kind, v.exit_code(), v.cause), (Kind::Inconclusive, 125, Some(Cause::NoReclaimTrigger)));
        assert!(v.next_step().unwrap().contains("5.19"));
    }

    fn stock_log() -> Tracker {
        let text = include_str!("../../tests/fixtures/host-6.18-kmsg-records.txt");
        track(&text.lines().filter_map(crate::kernel::kmsg::parse_record).collect::<Vec<_>>())
    }

    #[test]
    fn kernel_trouble_is_reproduced() {
        let mut l = log("instrumented");
        for (i, r) in records_from_console(include_str!("../../tests/fixtures/kasan-refcount-oops-at-unmount.txt"))
            .into_iter()
            .enumerate()
        {
            l.feed(&Record { seq: 1000 + i as u64, ..r });
        }
        let v = judge(&base(), &l);
        assert_eq!((v.kind, v.exit_code()), (Kind::Reproduced, 1));
        assert!(v.reason.contains("BUG: KASAN: slab-use-after-free"), "{}", v.reason);
        assert!(v.reason.contains("634388480"), "names the block group: {}", v.reason);
    }

    #[test]
    fn a_new_warning_taint_alone_is_reproduced() {
        let f = Facts { taint_gained: TAINT_WARN, ..base() };
        let v = judge(&f, &log("instrumented"));
        assert_eq!((v.kind, v.exit_code()), (Kind::Reproduced, 1));
        assert!(v.reason.contains("taint W"));
        // Other taints (e.g. O, out-of-tree module = bit 12) are not trouble.
        let f = Facts { taint_gained: 1 << 12, ..base() };
        assert_eq!(judge(&f, &log("instrumented")).kind, Kind::NotReproduced);
    }

    #[test]
    fn overlapping_puts_are_suspected() {
        let lines = [
            "BO: 1234 inject enospc... bg 1234567890",
            "BO: 1234 reloc put bg",
            "BO: 5678 reclaim loop put bg",
            "BO: 1234 reloc put bg done",
            "BO: 5678 reclaim loop put bg done",
        ];
        let l = lines_log(&lines, 1);
        // pid 5678 never printed an inject, so its put is not attributed:
        // no overlap without a shared block group.
        assert_eq!(judge(&base(), &l).kind, Kind::NotReproduced);
        let l = lines_log(["BO: 5678 inject enospc... bg 1234567890"].iter().chain(lines.iter()), 1);
        let v = judge(&base(), &l);
        assert_eq!((v.kind, v.exit_code()), (Kind::Suspected, 3));
        assert!(v.reason.contains("1234567890") && v.reason.contains("1234") && v.reason.contains("5678"));
    }

    #[test]
    fn a_refused_swapfile_group_let_go_is_not_reproduced_and_one_never_refused_inconclusive() {
        let swap = Facts { swap_trigger: true, swap_refused: Some(298844160), reclaim_errors: 0, ..base() };
        let clean = Tracker::default();
        assert_eq!(failure_path(&swap, &clean), FailurePath::Swapfile);
        let v = judge(&swap, &clean);
        assert_eq!((v.kind, v.exit_code()), (Kind::NotReproduced, 0));
        assert!(v.reason.contains("block group 298844160 holding the active swapfile") && v.reason.contains("ETXTBSY"), "{}", v.reason);
        let v = judge(&Facts { swap_trigger: true, reclaim_count: 4, reclaim_errors: 0, ..base() }, &clean);
        assert_eq!((v.kind, v.cause), (Kind::Inconclusive, Some(Cause::SwapNotRefused)));
        assert!(v.reason.contains("never refused the swapfile's block group"), "{}", v.reason);
        // Reclaim that never fired is that, whatever the space cache: the
        // swapfile pass has no injection site to reach.
        for cache in [Some("v2"), Some("v1")] {
            let f = Facts { swap_trigger: true, reclaim_count: 0, reclaim_errors: 0, space_cache: cache.map(String::from), v1_cache_block_groups: Some(0), ..base() };
            assert_eq!(judge(&f, &clean).cause, Some(Cause::ReclaimNeverFired), "{cache:?}");
        }
    }

    #[test]
    fn injections_without_trouble_are_not_reproduced() {
        let v = judge(&base(), &log("instrumented"));
        assert_eq!((v.kind, v.exit_code()), (Kind::NotReproduced, 0));
        assert!(v.reason.contains("8 injected ENOSPC"));
    }

    #[test]
    fn failed_reclaim_relocations_without_injection_are_not_reproduced() {
        let v = judge(&Facts { reclaim_errors: 3, ..base() }, &stock_log());
        assert_eq!((v.kind, v.exit_code()), (Kind::NotReproduced, 0));
        assert!(v.reason.contains("3 reclaim relocation(s) failed"));
        assert!(v.reason.contains("natural ENOSPC"));
        assert_eq!(failure_path(&Facts { reclaim_errors: 3, ..base() }, &stock_log()), FailurePath::Natural);
        assert_eq!(failure_path(&base(), &log("instrumented")), FailurePath::Injected);
        assert_eq!(failure_path(&Facts { reclaim_errors: 0, ..base() }, &stock_log()), FailurePath::None);
    }

    #[test]
    fn stock_kernel_with_successful_reclaim_is_inconclusive() {
        let f = Facts { reclaim_errors: 0, reclaim_count: 4, ..base() };
        let v = judge(&f, &stock_log());
        assert_eq!((v.kind, v.exit_code()), (Kind::Inconclusive, 125));
        assert!(v.reason.contains("reclaim ran but no relocation failed"), "{}", v.reason);
    }

    #[test]
    fn inconclusive_reasons_name_the_step_that_fell_short() {
        let empty = Tracker::default();
        let v2 = Facts { space_cache: Some("v2".into()), v1_cache_block_groups: Some(0), reclaim_errors: 0, ..base() };
        assert!(judge(&v2, &empty).reason.contains("injection site"));
        let no_inode = Facts { v1_cache_block_groups: Some(0), reclaim_errors: 0, ..base() };
        assert!(judge(&no_inode, &empty).reason.contains("no data block group has a v1 cache inode"));
        let no_reclaim = Facts { reclaim_count: 0, reclaim_errors: 0, ..base() };
        let v = judge(&no_reclaim, &empty);
        assert_eq!(v.exit_code(), 125);
        assert!(v.reason.contains("reclaim never fired within 60 s"));
    }

    #[test]
    fn every_inconclusive_cause_says_what_to_do_next() {
        for c in Cause::ALL {
            let a = c.advice();
            assert!(!a.is_empty() && a.lines().count() == 1, "{c:?}: {a:?}");
        }
        let advice: Vec<&str> = Cause::ALL.iter().map(|c| c.advice()).collect();
        for (i, a) in advice.iter().enumerate() {
            assert!(!advice[i + 1..].contains(a), "two causes share advice: {a}");
        }
        // A judged run names the cause and the advice; other verdicts none.
        let v = judge(&Facts { space_cache: Some("v2".into()), reclaim_count: 3, unmount_observed: true, ..Facts::default() }, &Tracker::default());
        assert_eq!((v.cause, v.next_step()), (Some(Cause::NoV1Cache), Some(Cause::NoV1Cache.advice())));
        let refused = judge(&Facts { refused: Some(Refusal::Unsafe("x".into())), ..Facts::default() }, &Tracker::default());
        assert_eq!(refused.next_step(), None);
    }

    #[test]
    fn setup_failure_is_inconclusive_so_bisect_skips() {
        let f = Facts { setup_failure: Some("mount /dev/loop0: EINVAL".into()), ..base() };
        let v = judge(&f, &Tracker::default());
        assert_eq!((v.kind, v.exit_code()), (Kind::Inconclusive, 125));
        assert!(v.reason.starts_with("setup failed: mount"));
        // ... unless the kernel got into trouble first.
        assert_eq!(judge(&f, &log("kasan")).kind, Kind::Reproduced);
    }

    #[test]
    fn refusal_and_interruption_have_their_own_codes() {
        let f = Facts { refused: Some(Refusal::Unsafe("refusing /dev/vdb: mounted on /home".into())), ..base() };
        assert_eq!(judge(&f, &log("kasan")).exit_code(), 2);
        for (sig, code) in [(Signal::INT, 130), (Signal::TERM, 143), (Signal::HUP, 129)] {
            let v = judge(&Facts { interrupted: Some(sig), ..base() }, &log("instrumented"));
            assert_eq!((v.kind, v.exit_code()), (Kind::Interrupted(sig), code));
        }
    }

    #[test]
    fn a_killed_or_hung_kernel_operation_is_reproduced() {
        let f = Facts { killed_in: Some((Phase::Unmount, Some(Signal::SEGV))), ..base() };
        let v = judge(&f, &Tracker::default());
        assert_eq!((v.kind, v.exit_code()), (Kind::Reproduced, 1));
        assert!(v.reason.contains("killed the unmount task (SIGSEGV)"), "{}", v.reason);
        let f = Facts { killed_in: Some((Phase::Settle, None)), op_timeout_secs: 300, ..base() };
        assert!(judge(&f, &Tracker::default()).reason.contains("hung in settle (no return within 300 s)"));
        // The hunt's helpers (sync loops) still in the kernel after its
        // 20 s op timeout: the run stops with a verdict, clean log or not.
        let f = Facts { killed_in: Some((Phase::Hunt, None)), op_timeout_secs: 20, ..base() };
        let v = judge(&f, &Tracker::default());
        assert_eq!((v.kind, v.exit_code()), (Kind::Reproduced, 1));
        assert!(v.reason.contains("hung in hunt (no return within 20 s)"), "{}", v.reason);
        // swapoff is waited for 20 s at most, whatever --op-timeout.
        let f = Facts { killed_in: Some((Phase::Swapoff, None)), op_timeout_secs: 300, ..base() };
        assert!(judge(&f, &Tracker::default()).reason.contains("hung in swapoff (no return within 20 s)"));
        // With the oops in the log, both are said.
        let f = Facts { killed_in: Some((Phase::Unmount, Some(Signal::KILL))), ..base() };
        let v = judge(&f, &log("kasan"));
        assert!(v.reason.contains("killed the unmount task") && v.reason.contains("KASAN"), "{}", v.reason);
    }

    #[test]
    fn leaked_btrfs_objects_are_reproduced_and_none_is_fine() {
        let v = judge(&Facts { kmemleak: Some(16), ..base() }, &log("instrumented"));
        assert_eq!((v.kind, v.exit_code()), (Kind::Reproduced, 1));
        assert!(v.reason.contains("kmemleak: 16 unreferenced btrfs objects"));
        assert_eq!(judge(&Facts { kmemleak: Some(0), ..base() }, &log("instrumented")).kind, Kind::NotReproduced);
        assert_eq!(judge(&Facts { kmemleak: None, ..base() }, &log("instrumented")).kind, Kind::NotReproduced);
    }

    /// The instrumented fixture's records with `missing` taken out: their
    /// sequence numbers are skipped, as when the kernel overwrote them.
    fn instrumented_with_gap(missing: std::ops::Range<usize>) -> Vec<Record> {
        let mut records = records_from_console(include_str!("../../tests/fixtures/instrumented-reclaim.txt"));
        records.drain(missing);
        records
    }

    #[test]
    fn lost_records_turn_not_reproduced_into_inconclusive() {
        assert_eq!(judge(&base(), &track(&instrumented_with_gap(0..0))).kind, Kind::NotReproduced);
        let l = track(&instrumented_with_gap(20..25));
        assert_eq!(l.lost, 5);
        let v = judge(&base(), &l);
        assert_eq!((v.kind, v.exit_code()), (Kind::Inconclusive, 125));
        assert!(v.reason.starts_with("5 kernel log records were lost during the run; the evidence may have been among them"), "{}", v.reason);
        assert!(v.reason.contains("log_buf_len=16M"), "{}", v.reason);
        assert!(v.reason.ends_with("without them: failure path exercised: 8 injected ENOSPC, puts balanced, no kernel trouble"), "{}", v.reason);
        // The reader's count alone (EPIPE before the first record, or an
        // earlier iteration) is enough, and the natural path counts too.
        let v = judge(&Facts { kmsg_lost: 2, ..base() }, &log("instrumented"));
        assert_eq!(v.kind, Kind::Inconclusive);
        assert!(v.reason.starts_with("2 kernel log records were lost"), "{}", v.reason);
        let v = judge(&Facts { kmsg_lost: 1, reclaim_errors: 3, ..base() }, &stock_log());
        assert_eq!(v.kind, Kind::Inconclusive);
        assert!(v.reason.contains("without them: failure path exercised (natural ENOSPC"), "{}", v.reason);
    }

    #[test]
    fn lost_records_do_not_undo_evidence() {
        // A gap, then the refcount_t splat at the unmount: REPRODUCED.
        let mut records = instrumented_with_gap(20..25);
        let last = records.last().unwrap().seq;
        for (i, r) in records_from_console(include_str!("../../tests/fixtures/kasan-refcount-oops-at-unmount.txt")).into_iter().enumerate() {
            records.push(Record { seq: last + 100 + i as u64, ..r });
        }
        let l = track(&records);
        assert_eq!(l.lost, 5 + 99);
        assert!(l.trouble.iter().any(|t| t.starts_with("refcount_t: ")));
        let v = judge(&Facts { kmsg_lost: 7, ..base() }, &l);
        assert_eq!((v.kind, v.exit_code()), (Kind::Reproduced, 1));
        assert!(v.reason.contains("refcount_t") || v.reason.contains("KASAN"), "{}", v.reason);
        // Overlapping puts stay SUSPECTED.
        let lines = [
            "BO: 5678 inject enospc... bg 1234567890",
            "BO: 1234 inject enospc... bg 1234567890",
            "BO: 1234 reloc put bg",
            "BO: 5678 reclaim loop put bg",
            "BO: 1234 reloc put bg done",
            "BO: 5678 reclaim loop put bg done",
        ];
        let l = lines_log(&lines, 10);
        assert!(l.lost > 0);
        assert_eq!(judge(&base(), &l).kind, Kind::Suspected);
    }

    #[test]
    fn keep_mounted_says_unmount_was_not_observed() {
        let v = judge(&Facts { unmount_observed: false, ..base() }, &log("instrumented"));
        assert!(v.reason.contains("unmount not observed"));
    }

    #[test]
    fn each_piece_of_the_judgement_alone() {
        // looped: the loop, how long balance held on, whether it stopped.
        assert_eq!(looped(&base()), None);
        let l = looped(&Facts { reclaim_loop: Some(a_loop()), loop_stopped: Some(false), longest_busy_secs: Some(0.5), ..base() }).unwrap();
        assert!(l.ends_with("; the unmount did not return: the loop did not stop") && !l.contains("exclusive_operation"), "{l}");
        // trouble: strongest first.
        let quiet = Tracker::default();
        assert_eq!(trouble(&base(), &quiet), None);
        let killed = Facts { killed_in: Some((Phase::Unmount, None)), op_timeout_secs: 60, kmemleak: Some(2), taint_gained: TAINT_WARN, ..base() };
        assert_eq!(trouble(&killed, &quiet).unwrap(), "hung in unmount (no return within 60 s)");
        let leak = Facts { killed_in: None, ..killed.clone() };
        assert!(trouble(&leak, &quiet).unwrap().starts_with("kmemleak: 2 unreferenced"));
        assert_eq!(trouble(&Facts { kmemleak: None, ..leak }, &quiet).unwrap(), "the kernel gained taint W during the run");
        let headline = trouble(&killed, &log("kasan")).unwrap();
        assert!(headline.starts_with("hung in unmount (no return within 60 s); kernel trouble: "), "{headline}");
        // interrupted: the signal, and what came before it.
        let v = interrupted(Signal(2), Some("kernel trouble: x"));
        assert_eq!((v.kind, v.reason.as_str()), (Kind::Interrupted(Signal(2)), "interrupted by SIGINT (after kernel trouble: x)"));
        // reproduced: the trouble and the injected groups.
        let v = reproduced(&base(), &log("instrumented"), "kernel trouble: y");
        assert!(v.reason.starts_with("kernel trouble: y; injected block group"), "{}", v.reason);
        // exercised / not_exercised: the failure path, or the first thing missing.
        let e = exercised(&Facts { unmount_observed: false, ..base() }, &log("instrumented")).unwrap();
        assert!(e.starts_with("failure path exercised: ") && e.ends_with("(unmount not observed: --keep-mounted)"), "{e}");
        assert_eq!(exercised(&Facts { reclaim_errors: 0, ..base() }, &quiet), None);
        assert_eq!(not_exercised(&Facts { reclaim_count: 0, ..base() }), (Cause::ReclaimNeverFired, "reclaim never fired within 60 s".into()));
        assert_eq!(not_exercised(&Facts { space_cache: Some("v2".into()), ..base() }).0, Cause::NoV1Cache);
        assert_eq!(not_exercised(&Facts { v1_cache_block_groups: Some(0), ..base() }).0, Cause::NoV1CacheInode);
        assert_eq!(not_exercised(&Facts { natural_enospc: true, ..base() }).0, Cause::NotStarved);
        assert_eq!(not_exercised(&base()).0, Cause::NotInstrumented);
    }
}

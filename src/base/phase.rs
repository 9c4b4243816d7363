//! A pass and its phases, by name: the JSON `phases` keys, the progress
//! lines, `killed_in`, and the test hooks (`BRR_TEST_PAUSE`,
//! `BRR_TEST_CRASH_IN`) all spell them the same way, from here; so do the
//! pass records of the report (which passes a run asks for, which kind each
//! pass is, how its settle ended).

/// Which relocation failure a run drives reclaim into: which passes it makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Enospc {
    /// The injected pass; where reclaim ran and no relocation failed (a
    /// kernel without the instrumentation), a natural pass follows.
    #[default]
    Auto,
    Injected,
    Natural,
}

impl Enospc {
    pub fn name(self) -> &'static str {
        match self {
            Enospc::Auto => "auto",
            Enospc::Injected => "injected",
            Enospc::Natural => "natural",
        }
    }
}

/// Which failure path a pass lays its filesystem out for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PassKind {
    /// Metadata DUP, 16 KiB nodes, --fill: reclaim relocates and the
    /// instrumented kernel injects ENOSPC in delete_block_group_cache().
    #[default]
    Injected,
    /// Metadata SINGLE with 4 KiB nodes, data filled to ENOSPC, metadata
    /// starved: relocation fails with a real ENOSPC on any kernel.
    Natural,
    /// `--trigger swapfile`: the injected layout (relocation itself would
    /// succeed) with an active swapfile in a data block group that crosses
    /// the reclaim threshold: inc_block_group_ro() refuses it (ETXTBSY).
    Swapfile,
}

impl PassKind {
    pub fn name(self) -> &'static str {
        match self {
            PassKind::Injected => "injected",
            PassKind::Natural => "natural",
            PassKind::Swapfile => "swapfile",
        }
    }
}

/// --trigger: what makes a relocation fail besides the knobs' own passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Trigger {
    /// The passes --enospc asks for (the default).
    #[default]
    Knobs,
    /// One pass with an active swapfile in a reclaimed group (host-wide
    /// swap while it runs).
    Swapfile,
}

impl Trigger {
    pub fn name(self) -> &'static str {
        match self {
            Trigger::Knobs => "knobs",
            Trigger::Swapfile => "swapfile",
        }
    }
}

/// Why the wait for reclaim ended (scenario/settle.rs decides).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettleEnd {
    /// The worker idle, and the commits after it started nothing new.
    WorkerIdle,
    /// No exclusive_operation file: the counters stood still for 2 s.
    Quiet,
    /// The --timeout ran out first (a retry list keeps the worker busy).
    Deadline,
    /// The worker kept relocating one failing group (kmsg::reclaim_loop):
    /// it would never go idle.
    ReclaimLoop,
    /// Static threshold only: for a while nothing but retries of groups
    /// that had failed already, after the worker went idle once. A fixed
    /// kernel retries a failed group on every cleaner run (its retry list),
    /// and each commit of ours wakes the cleaner: it never stays idle for
    /// two commits.
    RetriesOnly,
    /// `--enospc auto`'s injected pass: a group with a v1 cache inode got
    /// past the injection site, so this kernel does not inject.
    NoInjection,
}

impl SettleEnd {
    pub fn name(self) -> &'static str {
        match self {
            SettleEnd::WorkerIdle => "worker idle",
            SettleEnd::Quiet => "counters quiet 2 s",
            SettleEnd::Deadline => "timeout",
            SettleEnd::ReclaimLoop => "reclaim loop",
            SettleEnd::RetriesOnly => "only retries",
            SettleEnd::NoInjection => "no injection",
        }
    }
}

/// The longest swapoff is waited for: 64 MiB come back in well under a
/// second; on the loop kernel swapoff's synchronize_rcu() never returns
/// (the looping worker never passes a quiescent state on PREEMPT_NONE).
const SWAPOFF_SECS: u64 = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Mkfs,
    Mount,
    /// --trigger swapfile: the swapfile made and swapped on.
    Swapon,
    Fill,
    /// --enospc natural: big xattrs, then small inline files, until metadata is full.
    Starve,
    Knobs,
    Fragment,
    Trigger,
    Settle,
    /// Stress mode's churn + balance.
    Stress,
    /// The retry-list hunt's race: sync and churn helpers, the burst of
    /// unlinks, the wait for the kernel's answer.
    Hunt,
    /// --trigger swapfile: swapoff, in a child with a timeout.
    Swapoff,
    Unmount,
}

impl Phase {
    /// Every phase, in the order of a pass.
    #[cfg(test)]
    pub const ALL: [Phase; 13] = [
        Phase::Mkfs,
        Phase::Mount,
        Phase::Swapon,
        Phase::Fill,
        Phase::Starve,
        Phase::Knobs,
        Phase::Fragment,
        Phase::Trigger,
        Phase::Settle,
        Phase::Stress,
        Phase::Hunt,
        Phase::Swapoff,
        Phase::Unmount,
    ];

    /// The phases every JSON verdict lists (0 when they did not run); the
    /// others appear only when they ran.
    pub const ALWAYS_REPORTED: [Phase; 8] =
        [Phase::Mkfs, Phase::Mount, Phase::Fill, Phase::Knobs, Phase::Fragment, Phase::Trigger, Phase::Settle, Phase::Unmount];

    pub fn name(self) -> &'static str {
        match self {
            Phase::Mkfs => "mkfs",
            Phase::Mount => "mount",
            Phase::Fill => "fill",
            Phase::Starve => "starve",
            Phase::Knobs => "knobs",
            Phase::Fragment => "fragment",
            Phase::Trigger => "trigger",
            Phase::Settle => "settle",
            Phase::Stress => "stress",
            Phase::Hunt => "hunt",
            Phase::Swapon => "swapon",
            Phase::Swapoff => "swapoff",
            Phase::Unmount => "unmount",
        }
    }

    /// Test hook: `BRR_TEST_PAUSE=<phase>` holds the run at the start of
    /// that phase (in every pass), `BRR_TEST_PAUSE=<pass>:<phase>` only in
    /// that pass (`natural:mkfs`), so tests can interrupt a chosen phase.
    /// Returns what it matched, for the "pausing at" line.
    pub fn pause_requested(self, pass: &str) -> Option<String> {
        pause_asked(self.name(), pass)
    }

    /// Test hook for a named point inside the phase, where the start is not
    /// the moment to test: `BRR_TEST_PAUSE=<phase>.<point>` (or
    /// `<pass>:<phase>.<point>`), e.g. `hunt.helpers`: the hunt's helper
    /// processes are running.
    pub fn pause_inside_requested(self, pass: &str, point: &str) -> Option<String> {
        pause_asked(&format!("{}.{point}", self.name()), pass)
    }

    /// How long one kernel operation of this phase is waited for under
    /// --op-timeout `op_timeout`: swapoff at most `SWAPOFF_SECS`.
    pub fn op_timeout_secs(self, op_timeout: u64) -> u64 {
        match self {
            Phase::Swapoff => op_timeout.min(SWAPOFF_SECS),
            _ => op_timeout,
        }
    }

    /// Test hook: `BRR_TEST_CRASH_IN=<phase>`: the first kernel operation
    /// child of that phase raises SIGSEGV, as an oops would kill it.
    pub fn crash_requested(self) -> bool {
        std::env::var("BRR_TEST_CRASH_IN").is_ok_and(|p| p == self.name())
    }
}

fn pause_asked(at: &str, pass: &str) -> Option<String> {
    let asked = std::env::var("BRR_TEST_PAUSE").ok()?;
    pause_matches(&asked, at, pass).then_some(asked)
}

/// `asked` (the value of BRR_TEST_PAUSE) names `at`, alone or in `pass`.
fn pause_matches(asked: &str, at: &str, pass: &str) -> bool {
    asked == at || asked == format!("{pass}:{at}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each phase's place in a pass. No wildcard: a new phase does not
    /// compile until it has one, and `ALL` must then list it there.
    fn place(p: Phase) -> usize {
        match p {
            Phase::Mkfs => 0,
            Phase::Mount => 1,
            Phase::Swapon => 2,
            Phase::Fill => 3,
            Phase::Starve => 4,
            Phase::Knobs => 5,
            Phase::Fragment => 6,
            Phase::Trigger => 7,
            Phase::Settle => 8,
            Phase::Stress => 9,
            Phase::Hunt => 10,
            Phase::Swapoff => 11,
            Phase::Unmount => 12,
        }
    }

    #[test]
    fn all_lists_every_phase_at_its_place() {
        for (i, p) in Phase::ALL.iter().enumerate() {
            assert_eq!(place(*p), i, "{p:?}");
        }
        assert_eq!(place(Phase::Unmount) + 1, Phase::ALL.len(), "the last phase ends ALL");
    }

    #[test]
    fn names_are_distinct_and_lowercase() {
        let names: Vec<&str> = Phase::ALL.iter().map(|p| p.name()).collect();
        for (i, n) in names.iter().enumerate() {
            assert!(!names[i + 1..].contains(n), "{n} twice");
            assert_eq!(*n, n.to_lowercase());
        }
    }

    #[test]
    fn a_pause_names_a_phase_or_a_point_inside_it_in_any_or_one_pass() {
        assert!(pause_matches("hunt", "hunt", "injected"));
        assert!(pause_matches("natural:mkfs", "mkfs", "natural"));
        assert!(!pause_matches("natural:mkfs", "mkfs", "injected"));
        assert!(pause_matches("hunt.helpers", "hunt.helpers", "injected"));
        assert!(pause_matches("injected:hunt.helpers", "hunt.helpers", "injected"));
        assert!(!pause_matches("hunt", "hunt.helpers", "injected"), "the phase's start is not the point inside");
        assert!(!pause_matches("hunt.helpers", "hunt", "injected"));
    }
}

//! The verdict as kernel CI reads it: KTAP version 1 (the kernel's
//! Documentation/dev-tools/ktap.rst), one test with a stable name, and
//! kselftest's exit codes (tools/testing/selftests/kselftest.h: 0 pass,
//! 1 fail, 4 skip). The kselftest runner, LAVA wrappers and the kernel's own
//! `kunit.py parse` read it; none of them knows our bisect codes.
//!
//! The plan (`HEADER`) is printed as soon as the run may start, before mkfs:
//! a kernel that dies mid-run leaves a plan without a result, which every
//! parser reports as a missing (failed) test instead of an empty log. The
//! verdict's lines become `# ` diagnostics before the result line: parsers
//! attach those to the result (LKFT writes them to the failing test's log).

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::kernel::kmsg::events::Tracker;
use crate::judge::verdict::{ExitCode, Facts, Kind, Refusal, Verdict};
use crate::sys::process::Signal;

use super::text::text;
use super::Report;

/// The version line and a plan of one test. Never `1..0`: the kernel's
/// parser reports an empty plan as an error, so a skip is `1..1` and a
/// skipped result.
pub const HEADER: &str = "KTAP version 1\n1..1\n";

/// Per-pass and per-iteration lines shown before "... N more".
const DETAIL_LINES: usize = 12;

/// The test a run reports: CI keys its history on these names, so they
/// never carry a seed, a device or a count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Test {
    Single,
    Stress,
}

impl Test {
    pub fn name(self) -> &'static str {
        match self {
            Test::Single => "btrfs_reclaim_repro",
            Test::Stress => "btrfs_reclaim_repro_stress",
        }
    }
}

/// The test `args` (argv without the program name) ask for, if --ktap:
/// read without parsing, so that arguments that do not parse still have
/// their KTAP answer.
pub fn asked(args: &[String]) -> Option<Test> {
    let has = |flag: &str| args.iter().any(|a| a == flag || a.starts_with(&format!("{flag}=")));
    has("--ktap").then(|| if has("--stress") { Test::Stress } else { Test::Single })
}

/// What the result line says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResultLine {
    /// `ok`: the failure path ran and the kernel stayed fine.
    Pass,
    /// `not ok`: the bug (or the bug report's criterion) showed.
    Fail,
    /// `ok ... # SKIP why`: this kernel or host cannot test the bug.
    Skip(String),
    /// `not ok ... # ERROR why`: the run was misconfigured.
    Error(String),
    /// `not ok ... # ERROR interrupted by ...`: a signal ended the run.
    Interrupted(Signal, String),
}

/// kselftest's exit codes (tools/testing/selftests/kselftest.h), which its
/// runner and CI wrappers read; an interruption keeps 128+N.
pub struct KselftestCode;

impl KselftestCode {
    pub const PASS: i32 = 0;
    pub const FAIL: i32 = 1;
    pub const SKIP: i32 = 4;
}

impl ResultLine {
    /// How a verdict reads in KTAP.
    pub fn of(v: &Verdict, f: &Facts) -> ResultLine {
        match v.kind {
            Kind::NotReproduced => ResultLine::Pass,
            Kind::Reproduced | Kind::Suspected => ResultLine::Fail,
            Kind::Inconclusive => ResultLine::Skip(v.reason.clone()),
            Kind::Refused => match &f.refused {
                Some(Refusal::Unprivileged(why)) => ResultLine::Skip(why.clone()),
                _ => ResultLine::Error(v.reason.clone()),
            },
            // --vm, refused on the host: nothing ran.
            Kind::VmRefused => ResultLine::Error(v.reason.clone()),
            Kind::Interrupted(sig) => ResultLine::Interrupted(sig, v.reason.clone()),
        }
    }

    /// kselftest's exit code; an interruption keeps 128+N, which wrappers
    /// pass on as the signal it was.
    pub fn exit_code(&self) -> i32 {
        match self {
            ResultLine::Pass => KselftestCode::PASS,
            ResultLine::Fail | ResultLine::Error(_) => KselftestCode::FAIL,
            ResultLine::Skip(_) => KselftestCode::SKIP,
            ResultLine::Interrupted(sig, _) => ExitCode::interrupted(*sig),
        }
    }

    /// `ok 1 <name>`, `not ok 1 <name> # ERROR <why>`, ...
    pub fn line(&self, test: Test) -> String {
        let name = test.name();
        match self {
            ResultLine::Pass => format!("ok 1 {name}\n"),
            ResultLine::Fail => format!("not ok 1 {name}\n"),
            ResultLine::Skip(why) => format!("ok 1 {name} # SKIP {}\n", one_line(why)),
            ResultLine::Error(why) | ResultLine::Interrupted(_, why) => format!("not ok 1 {name} # ERROR {}\n", one_line(why)),
        }
    }
}

/// A directive's text: one line, whatever the reason held.
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Each line as a `# ` diagnostic (a bare `#` for an empty one).
fn diagnostics(lines: impl IntoIterator<Item = String>) -> String {
    let mut out = String::new();
    for l in lines {
        let l = l.trim_end();
        out.push_str(if l.is_empty() { "#" } else { "# " });
        out.push_str(l);
        out.push('\n');
    }
    out
}

/// A text block's lines for the diagnostics: its first line names the
/// bisect exit code, which in KTAP mode is not the one returned, so the
/// version and the verdict stand in its place.
pub fn block_lines(version: &str, v: &Verdict, block: &str) -> Vec<String> {
    let mut lines = vec![format!("btrfs-reclaim-repro {version}: {}", v.kind.human_name())];
    lines.extend(block.lines().skip(1).map(String::from));
    lines
}

/// The diagnostics, then the result line; and the exit code.
pub fn result_after(test: Test, result: ResultLine, lines: impl IntoIterator<Item = String>) -> (String, i32) {
    let code = result.exit_code();
    (diagnostics(lines) + &result.line(test), code)
}

/// The run's diagnostics and its result line (the header went out first);
/// the result and the exit code to return.
pub fn body(test: Test, r: &Report, v: &Verdict, log: &Tracker, f: &Facts) -> (String, i32) {
    let result = ResultLine::of(v, f);
    let block = text(r, v, log, f);
    let mut lines = block_lines(&r.version, v, &block);
    if r.passes.len() > 1 {
        lines.extend(limited(r.passes.iter().enumerate().map(|(i, p)| {
            // A fold from 0.0: an empty f64 sum is -0.0, printed "-0.0".
            let secs = p.phases.iter().fold(0.0, |a, (_, s)| a + s);
            format!(
                "pass {}: {}, {} relocated, {} failed, {} injected, {secs:.1} s",
                i + 1,
                p.layout.name(),
                p.reclaim_count,
                p.relocation_failures,
                p.injections
            )
        })));
    }
    if r.per_iteration.len() > 1 {
        lines.extend(limited(r.per_iteration.iter().enumerate().map(|(i, it)| {
            format!(
                "iteration {}: {:.1} s, open fds {}, VmRSS {} KiB",
                i + 1,
                it.seconds,
                it.held.open_fds,
                it.held.vm_rss_kib
            )
        })));
    }
    result_after(test, result, lines)
}

/// The first `DETAIL_LINES` lines, then how many more there were.
fn limited(all: impl ExactSizeIterator<Item = String>) -> Vec<String> {
    let n = all.len();
    let mut out: Vec<String> = all.take(DETAIL_LINES).collect();
    if n > DETAIL_LINES {
        out.push(format!("... {} more", n - DETAIL_LINES));
    }
    out
}

/// The plan is out: whatever follows owes it one result line.
static PLAN_PRINTED: AtomicBool = AtomicBool::new(false);

/// Prints `HEADER` (with `plan`, unless already out), then `lines`; flushed
/// at once, so that a run killed later leaves what was printed.
pub fn print(plan: bool, lines: &str) {
    let mut out = std::io::stdout().lock();
    if plan && !PLAN_PRINTED.swap(true, Ordering::SeqCst) {
        let _ = out.write_all(HEADER.as_bytes());
    }
    let _ = out.write_all(lines.as_bytes());
    let _ = out.flush();
}

/// Prints a whole document (from `HEADER` on) after whatever is out: its
/// plan only when none went out before.
pub fn print_document(doc: &str) {
    match doc.strip_prefix(HEADER) {
        Some(rest) => print(true, rest),
        None => print(false, doc),
    }
}

/// An error before or outside a verdict (bad arguments, a panic): the
/// whole document, header included, and its exit code.
pub fn early_error(test: Test, why: &str) -> (String, i32) {
    let result = ResultLine::Error(why.to_string());
    let out = format!("{HEADER}{}{}", diagnostics([format!("btrfs-reclaim-repro: {}", one_line(why))]), result.line(test));
    (out, result.exit_code())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::phase::PassKind;
    use crate::judge::verdict::{judge, Cause};

    fn verdict(kind: Kind, reason: &str) -> Verdict {
        Verdict { kind, reason: reason.into(), cause: None, known_bug: None }
    }

    #[test]
    fn each_verdict_has_its_result_and_kselftest_code() {
        let f = Facts::default();
        let cases = [
            (verdict(Kind::NotReproduced, "fine"), "ok 1 btrfs_reclaim_repro\n", 0),
            (verdict(Kind::Reproduced, "refcount_t"), "not ok 1 btrfs_reclaim_repro\n", 1),
            (verdict(Kind::Suspected, "overlap"), "not ok 1 btrfs_reclaim_repro\n", 1),
            (verdict(Kind::Inconclusive, "no v1\ncache"), "ok 1 btrfs_reclaim_repro # SKIP no v1 cache\n", 4),
            (verdict(Kind::Refused, "refusing /dev/vdb: ext4"), "not ok 1 btrfs_reclaim_repro # ERROR refusing /dev/vdb: ext4\n", 1),
            (verdict(Kind::Interrupted(Signal::TERM), "interrupted by SIGTERM"), "not ok 1 btrfs_reclaim_repro # ERROR interrupted by SIGTERM\n", 143),
        ];
        for (v, line, code) in cases {
            let r = ResultLine::of(&v, &f);
            assert_eq!((r.line(Test::Single), r.exit_code()), (line.to_string(), code), "{:?}", v.kind);
        }
    }

    /// Not root is a missing prerequisite: a skip, not an error.
    #[test]
    fn an_unprivileged_refusal_is_a_skip() {
        let why = "refusing to run: not root (mkfs, mount and loop devices need CAP_SYS_ADMIN; use sudo)";
        let f = Facts { refused: Some(Refusal::Unprivileged(why.into())), ..Facts::default() };
        let v = judge(&f, &Tracker::default());
        let r = ResultLine::of(&v, &f);
        assert_eq!(r, ResultLine::Skip(why.into()));
        assert_eq!((r.exit_code(), r.line(Test::Stress)), (4, format!("ok 1 btrfs_reclaim_repro_stress # SKIP {why}\n")));
        let f = Facts { refused: Some(Refusal::Unsafe("refusing /dev/vdb: mounted on /home".into())), ..Facts::default() };
        let v = judge(&f, &Tracker::default());
        assert_eq!(ResultLine::of(&v, &f).exit_code(), 1);
    }

    #[test]
    fn the_plan_is_never_empty_and_names_carry_no_hash() {
        assert_eq!(HEADER, "KTAP version 1\n1..1\n");
        for t in [Test::Single, Test::Stress] {
            assert!(t.name().bytes().all(|b| b.is_ascii_lowercase() || b == b'_'), "{}", t.name());
        }
    }

    /// Every line of the body is a diagnostic but the last, the result.
    #[test]
    fn the_body_is_diagnostics_then_one_result() {
        let v = Verdict { kind: Kind::Inconclusive, reason: "reclaim never fired within 60 s".into(), known_bug: None, cause: Some(Cause::ReclaimNeverFired) };
        let r = Report { version: "0.1.0 (abc)".into(), kernel: "6.12.117".into(), ..Report::default() };
        let (out, code) = body(Test::Single, &r, &v, &Tracker::default(), &Facts::default());
        assert_eq!(code, 4);
        let lines: Vec<&str> = out.lines().collect();
        let (last, diag) = lines.split_last().unwrap();
        assert_eq!(*last, "ok 1 btrfs_reclaim_repro # SKIP reclaim never fired within 60 s");
        assert_eq!(diag[0], "# btrfs-reclaim-repro 0.1.0 (abc): INCONCLUSIVE");
        assert!(diag.iter().all(|l| *l == "#" || l.starts_with("# ")), "{out}");
        assert!(diag.iter().any(|l| l.starts_with("# next:     raise --timeout")), "{out}");
        assert!(!out.contains("exit 125"), "{out}");
    }

    /// The upstream fix a kernel lacks goes to CI with the verdict: the
    /// text block's `known:` line, as a diagnostic.
    #[test]
    fn a_known_bug_is_a_diagnostic() {
        let k = crate::judge::known_bug::KnownBug::ReclaimLoop;
        let v = Verdict { known_bug: Some(k), ..verdict(Kind::Reproduced, "kept relocating block group 1234") };
        let (out, code) = body(Test::Single, &Report::default(), &v, &Tracker::default(), &Facts::default());
        assert_eq!(code, 1);
        assert!(out.contains(&format!("\n# known:    {}\n", k.line())), "{out}");
    }

    #[test]
    fn many_passes_are_listed_then_counted() {
        let v = verdict(Kind::NotReproduced, "fine");
        let pass = crate::judge::report::PassRecord { layout: PassKind::Natural, reclaim_count: 3, relocation_failures: 3, ..Default::default() };
        let r = Report { passes: vec![pass; 20], ..Report::default() };
        let (out, _) = body(Test::Single, &r, &v, &Tracker::default(), &Facts::default());
        assert!(out.contains("# pass 1: natural, 3 relocated, 3 failed, 0 injected, 0.0 s\n"), "{out}");
        assert!(out.contains(&format!("# pass {DETAIL_LINES}: ")) && !out.contains(&format!("# pass {}: ", DETAIL_LINES + 1)), "{out}");
        assert!(out.contains(&format!("# ... {} more\n", 20 - DETAIL_LINES)), "{out}");
    }

    #[test]
    fn an_early_error_is_a_whole_document() {
        let (out, code) = early_error(Test::Stress, "bad --fill 0: give a percentage from 1 to 99");
        assert_eq!(
            out,
            "KTAP version 1\n1..1\n# btrfs-reclaim-repro: bad --fill 0: give a percentage from 1 to 99\n\
             not ok 1 btrfs_reclaim_repro_stress # ERROR bad --fill 0: give a percentage from 1 to 99\n"
        );
        assert_eq!(code, 1);
    }
}

/// The KTAP of each verdict kind, pinned byte for byte in
/// tests/fixtures/golden/ktap/ (the same runs as the text and JSON golden
/// files). mk/test-ktap.sh feeds these very files to the kernel's own
/// parser and to tappy. `BRR_BLESS=1 cargo test --bins golden` rewrites them.
#[cfg(test)]
mod golden {
    use super::*;
    use crate::kernel::kmsg::Record;
    use crate::base::phase::{Enospc, PassKind, Phase};
    use crate::judge::report::golden::{compare, facts, report};
    use crate::judge::report::{PassRecord, StressStats};
    use crate::testing::{records_from_console, track};
    use crate::judge::verdict::judge;

    fn pin(name: &str, test: Test, r: &Report, f: &Facts, log: &Tracker, code: i32) {
        let v = judge(f, log);
        let (lines, got) = body(test, r, &v, log, f);
        assert_eq!(got, code, "{name}: exit code");
        compare(&format!("ktap/{name}.ktap"), &format!("{HEADER}{lines}"));
    }

    fn console(text: &str) -> Tracker {
        track(&records_from_console(text))
    }

    #[test]
    fn golden_ktap_for_every_verdict_kind() {
        let (r, f) = (report(), facts());
        let none = Tracker::default();
        pin("not-reproduced", Test::Single, &r, &f, &console(include_str!("../../../tests/fixtures/instrumented-reclaim.txt")), 0);

        let mut killed = facts();
        killed.killed_in = Some((Phase::Unmount, Some(Signal::SEGV)));
        pin("reproduced", Test::Single, &r, &killed, &console(include_str!("../../../tests/fixtures/kasan-refcount-oops-at-unmount.txt")), 1);

        // The bug report's instrumentation: a reloc put and a reclaim loop
        // put of one block group from two pids, interleaved.
        let mut overlap = Tracker::default();
        for (i, t) in [
            "BO: 1234 inject enospc... bg 1234567890",
            "BO: 5678 inject enospc... bg 1234567890",
            "BO: 1234 reloc put bg",
            "BO: 5678 reclaim loop put bg",
            "BO: 1234 reloc put bg done",
            "BO: 5678 reclaim loop put bg done",
        ]
        .iter()
        .enumerate()
        {
            overlap.feed(&Record { level: 4, seq: i as u64, usec: 0, text: t.to_string() });
        }
        pin("suspected", Test::Single, &r, &f, &overlap, 1);

        let mut v2 = facts();
        v2.space_cache = Some("v2".into());
        v2.reclaim_errors = 0;
        pin("inconclusive-v2", Test::Single, &r, &v2, &none, 4);

        let mut unprivileged = facts();
        unprivileged.refused = Some(Refusal::Unprivileged(
            "refusing to run: not root (mkfs, mount and loop devices need CAP_SYS_ADMIN; use sudo)".into(),
        ));
        pin("not-root", Test::Single, &r, &unprivileged, &none, 4);

        let mut refused = facts();
        refused.refused = Some(Refusal::Unsafe(
            "refusing /dev/vdb: it holds a ext4 signature: formatting would destroy it (wipe the filesystem first, or use -f/--force)".into(),
        ));
        pin("refused", Test::Single, &r, &refused, &none, 1);

        let mut interrupted = facts();
        interrupted.interrupted = Some(Signal::TERM);
        pin("interrupted", Test::Single, &r, &interrupted, &none, 143);

        let stock = console(include_str!("../../../tests/fixtures/host-6.18-kmsg-records.txt"));
        let mut natural = facts();
        natural.natural_enospc = true;
        natural.reclaim_count = 11;
        natural.reclaim_errors = 3;
        let mut auto = report();
        auto.enospc_mode = Enospc::Auto;
        auto.passes = vec![
            PassRecord { layout: PassKind::Injected, fill_percent: 90.2, reclaim_count: 8, phases: vec![(Phase::Mkfs, 0.1), (Phase::Trigger, 0.3)], ..PassRecord::default() },
            PassRecord {
                layout: PassKind::Natural,
                fill_percent: 100.0,
                reclaim_count: 3,
                reclaim_errors: 3,
                relocation_failures: 3,
                phases: vec![(Phase::Starve, 3.8), (Phase::Settle, 2.0)],
                ..PassRecord::default()
            },
        ];
        pin("auto-stock", Test::Single, &auto, &natural, &stock, 0);

        let mut stress = report();
        stress.iterations = 2;
        stress.per_iteration = vec![
            crate::judge::report::IterationRecord { seconds: 16.5, held: crate::base::resources::Held { open_fds: 7, vm_rss_kib: 2100 } },
            crate::judge::report::IterationRecord { seconds: 15.25, held: crate::base::resources::Held { open_fds: 7, vm_rss_kib: 2150 } },
        ];
        stress.stress = Some(StressStats {
            seconds: 30,
            worker_rounds: vec![5, 6],
            balances_started: 4,
            balances_cancelled: 2,
            balance_tid: Some(crate::sys::process::Pid(1234)),
            failed_groups: 3,
            ..StressStats::default()
        });
        let mut churn = facts();
        churn.natural_enospc = true;
        churn.reclaim_errors = 3;
        pin("stress", Test::Stress, &stress, &churn, &stock, 0);

        let (doc, code) = early_error(Test::Single, "--ktap and --json both print on stdout: give one of them");
        assert_eq!(code, 1);
        compare("ktap/bad-arguments.ktap", &doc);
    }
}

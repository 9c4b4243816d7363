//! `--ktap` with `--vm`: the guest's pass runs with --ktap and prints its
//! KTAP as natively, into the file the host reads back at the end; the host
//! prints that document with the VM facts as one more diagnostic. What only
//! the host can judge (a refusal on the host, a guest that hung, never ran
//! /init or died of kernel trouble, frames that came back garbled, an
//! interruption) is rendered here as KTAP too, by the native rules: kernel
//! trouble `not ok` (1), INCONCLUSIVE `ok ... # SKIP` (4), a refusal on the
//! host `not ok ... # ERROR` (1: kselftest's codes have no "abort", and a
//! native refusal is 1 too), an interruption `# ERROR` with 128+N.
//!
//! When the plan goes out: natively, `1..1` once the preflight passed,
//! before mkfs. The guest's stdout reaches the host only with the verdict,
//! so the guest's pass says that moment on the console (`PLAN_MARKER`,
//! a line on its stderr) and the host prints the plan as it reads it.
//! Printing the whole document at the end would be simpler, but a CI lab
//! (LAVA, the kselftest runner, `kunit.py parse`) reads this stdout as a
//! stream: when the host itself is killed mid-run (a job timeout's
//! SIGKILL), a plan without a result reads as a missing, failed test,
//! while an empty stdout reads as no test at all. Before that moment (a
//! refusal on the host, a guest that never got to its preflight) the plan
//! goes out with the result, as a native refusal's does; a marker lost in
//! the console (a kernel line written into it) costs only the early plan.

use crate::judge::report::ktap::{self, ResultLine, Test, HEADER};
use crate::judge::report::Report;
use crate::judge::verdict::{Cause, Facts, Kind, Verdict};
use crate::kernel::kmsg::events::Tracker;

/// The line the guest's pass prints on stderr once its plan is out.
pub const PLAN_MARKER: &str = "BRR-GUEST-KTAP-PLAN";

/// The VM facts' diagnostic, as the text block's `vm:` line.
fn vm_line(facts_line: &str) -> String {
    format!("vm:       {facts_line}")
}

/// The guest's own KTAP document as the host prints it: the VM facts as a
/// diagnostic just before the result line.
pub fn with_vm_facts(doc: &str, facts_line: &str) -> String {
    let mut lines: Vec<String> = doc.lines().map(String::from).collect();
    let at = lines.iter().rposition(|l| l.starts_with("ok ") || l.starts_with("not ok ")).unwrap_or(lines.len());
    lines.insert(at, format!("# {}", vm_line(facts_line)));
    lines.iter().map(|l| format!("{l}\n")).collect()
}

/// A verdict made outside the pass (on the host, or by the guest's init),
/// as a whole KTAP document (`HEADER` included) and its exit code.
pub fn printout(test: Test, kind: Kind, reason: String, cause: Option<Cause>, kernel: &str, log: &Tracker, vm: Option<&str>) -> (String, i32) {
    let (r, v, f) = super::made(kind, reason, cause, kernel, crate::kernel::host::version());
    render(test, &r, &v, log, &f, vm)
}

fn render(test: Test, r: &Report, v: &Verdict, log: &Tracker, f: &Facts, vm: Option<&str>) -> (String, i32) {
    let block = super::short_text(r, v, log, f);
    let mut lines = ktap::block_lines(&r.version, v, &block);
    lines.extend(vm.map(vm_line));
    let (body, code) = ktap::result_after(test, ResultLine::of(v, f), lines);
    (format!("{HEADER}{body}"), code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::process::Signal;
    use crate::vm::host::ending_verdict;
    use crate::vm::triage::triage;

    const VM: &str = "x86_64 under TCG (no /dev/kvm); before the kernel 0.4 s, kernel boot to /init 2.2 s, pass ?, ours ?; total 25.3 s";
    const KERNEL: &str = "/vm/kernels/bzImage-instrumented";

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/vm").join(name)).unwrap()
    }

    /// A made verdict's document with a fixed version, as golden files need.
    fn doc(test: Test, kind: Kind, reason: &str, cause: Option<Cause>, log: &Tracker, vm: Option<&str>) -> (String, i32) {
        let (r, v, f) = crate::vm::made(kind, reason.into(), cause, KERNEL, "0.1.0 (abc)".into());
        render(test, &r, &v, log, &f, vm)
    }

    /// What the host prints when the guest handed no verdict over.
    fn ending(console: &[u8], timed_out: bool, garbled: bool) -> (String, i32) {
        let (kind, reason, cause, log) = ending_verdict(triage(console, timed_out, garbled), "", "");
        doc(Test::Single, kind, &reason, cause, &log, Some(VM))
    }

    /// One KTAP document: version, plan, `# ` lines, one result line last.
    fn lines_of(doc: &str) -> (Vec<&str>, &str) {
        let lines: Vec<&str> = doc.lines().collect();
        assert_eq!(lines[..2], ["KTAP version 1", "1..1"], "{doc}");
        let (last, diag) = lines[2..].split_last().unwrap();
        assert!(diag.iter().all(|l| *l == "#" || l.starts_with("# ")), "{doc}");
        assert!(!doc.contains("1..0") && !doc.contains("(exit "), "{doc}");
        (diag.to_vec(), last)
    }

    /// The golden file tests/fixtures/golden/ktap/<name>.ktap (mk/test-ktap.sh
    /// feeds it to the kernel's parser); `BRR_BLESS=1` rewrites it.
    fn pin(name: &str, doc: &str) {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/golden/ktap").join(format!("{name}.ktap"));
        if std::env::var("BRR_BLESS").is_ok_and(|v| v == "1") {
            std::fs::write(&path, doc).unwrap();
            return;
        }
        let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e} (BRR_BLESS=1 writes it)", path.display()));
        assert!(expected == doc, "{} differs:\n--- expected\n{expected}\n--- actual\n{doc}", path.display());
    }

    #[test]
    fn a_refusal_on_the_host_is_an_error_with_exit_1() {
        let why = "README.md is not a kernel image (no bzImage header, no arm64 Image magic): give a bzImage or an arm64 Image";
        let (d, code) = doc(Test::Single, Kind::VmRefused, why, None, &Tracker::default(), None);
        let (diag, result) = lines_of(&d);
        assert_eq!(code, 1);
        assert_eq!(result, format!("not ok 1 btrfs_reclaim_repro # ERROR {why}"));
        assert_eq!(diag[0], "# btrfs-reclaim-repro 0.1.0 (abc): REFUSED");
        pin("vm-refused", &d);
    }

    #[test]
    fn a_hung_guest_is_a_skip_with_the_vm_facts() {
        let c = b"[    2.9] Run /init as init process\r\nBRR-GUEST-START uptime=2.95\r\n[   0.0s] PID 1 stopped by brr.test_hang (a test hook)\r\n";
        let (d, code) = ending(c, true, false);
        let (diag, result) = lines_of(&d);
        assert_eq!(code, 4);
        assert_eq!(result, "ok 1 btrfs_reclaim_repro # SKIP guest hung at [ 0.0s] PID 1 stopped by brr.test_hang (a test hook)");
        assert!(diag.iter().any(|l| l.starts_with("# next:     ")), "{d}");
        assert_eq!(*diag.last().unwrap(), format!("# vm:       {VM}"));
        pin("vm-hung", &d);
    }

    /// The plan marker is no progress line: a guest that hangs right after
    /// it hung at the line before.
    #[test]
    fn the_plan_marker_is_not_where_the_guest_hung() {
        let c = format!("BRR-GUEST-START uptime=2.95\r\n[   0.1s] preflight: go\r\n{PLAN_MARKER}\r\n");
        let (d, _) = ending(c.as_bytes(), true, false);
        assert!(d.contains("# SKIP guest hung at [ 0.1s] preflight: go\n"), "{d}");
    }

    #[test]
    fn init_that_never_ran_and_garbled_frames_are_skips() {
        let (d, code) = ending(&fixture("console-wrong-arch-init.txt"), false, false);
        let (_, result) = lines_of(&d);
        assert_eq!(code, 4);
        assert!(result.starts_with("ok 1 btrfs_reclaim_repro # SKIP init never ran: ") && result.contains("error -8"), "{result}");
        pin("vm-init-never-ran", &d);
        let c = b"BRR-GUEST-START uptime=2.95\r\n===BRR-FRAME stdout len=99 crc32c=00000000===\r\nKTAP\r\n";
        let (d, code) = ending(c, false, true);
        assert_eq!(code, 4);
        assert!(lines_of(&d).1.contains("# SKIP the verdict came back garbled"), "{d}");
    }

    #[test]
    fn kernel_trouble_on_the_console_is_not_ok_with_its_evidence() {
        let (d, code) = ending(&fixture("console-refcount-after-init.txt"), true, false);
        let (diag, result) = lines_of(&d);
        assert_eq!((code, result), (1, "not ok 1 btrfs_reclaim_repro"));
        assert!(diag.iter().any(|l| l.starts_with("# evidence: refcount_t: underflow; use-after-free.")), "{d}");
        assert!(diag[1].starts_with("# reason:   kernel trouble: refcount_t: underflow"), "{d}");
        pin("vm-trouble", &d);
    }

    #[test]
    fn an_interruption_keeps_128_plus_n() {
        let (d, code) = doc(Test::Stress, Kind::Interrupted(Signal::INT), "interrupted by SIGINT (QEMU killed)", None, &Tracker::default(), Some(VM));
        let (_, result) = lines_of(&d);
        assert_eq!((code, result), (130, "not ok 1 btrfs_reclaim_repro_stress # ERROR interrupted by SIGINT (QEMU killed)"));
        pin("vm-interrupted", &d);
    }

    /// The guest's init finds no btrfs: its own document, then the host
    /// adds the VM facts.
    #[test]
    fn a_kernel_without_btrfs_is_a_skip_naming_the_option() {
        let why = "the kernel has no btrfs (not in /proc/filesystems): it needs CONFIG_BTRFS_FS=y (built in: the guest loads no modules)";
        let (guest, code) = doc(Test::Single, Kind::Inconclusive, why, Some(Cause::VmKernelConfig), &Tracker::default(), None);
        assert_eq!(code, 4);
        let d = with_vm_facts(&guest, VM);
        let (diag, result) = lines_of(&d);
        assert_eq!(result, format!("ok 1 btrfs_reclaim_repro # SKIP {why}"));
        assert!(diag.iter().any(|l| l.starts_with("# next:     build the kernel with the option the reason names")), "{d}");
        pin("vm-no-btrfs", &d);
    }

    /// The guest's pass printed a native document: the host adds one
    /// diagnostic, right before the result, and changes nothing else.
    #[test]
    fn the_guests_document_gets_the_vm_facts_before_its_result() {
        let native = include_str!("../../tests/fixtures/golden/ktap/not-reproduced.ktap");
        let d = with_vm_facts(native, VM);
        let (diag, result) = lines_of(&d);
        assert_eq!(result, "ok 1 btrfs_reclaim_repro");
        assert_eq!(*diag.last().unwrap(), format!("# vm:       {VM}"));
        assert_eq!(d, native.replacen("\nok 1 ", &format!("\n# vm:       {VM}\nok 1 "), 1));
        pin("vm-not-reproduced", &d);
    }
}

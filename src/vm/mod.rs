//! `--vm KERNEL`: the whole pass in a throwaway QEMU guest booted from
//! KERNEL, with this binary as the guest's only program (its /init). The
//! host side (host.rs) needs no root: it writes the initramfs and a sparse
//! disk, starts QEMU and reads the verdict back; the guest side (guest.rs)
//! is PID 1, which runs the normal pass on /dev/vda in a child.

mod boot;
pub mod cpio;
pub mod frame;
pub mod guest;
pub mod host;
pub mod image;
pub mod ktap;
mod prepare;
pub mod qemu;
pub mod triage;

use std::path::PathBuf;

use crate::kernel::kmsg::events::Tracker;
use crate::judge::report::Report;
use crate::judge::verdict::{Cause, Facts, Kind, Verdict};

/// Where the guest finds what the host packed.
pub const GUEST_ARGV: &str = "/brr/argv";
pub const GUEST_LOG: &str = "/brr/log";

/// What `--vm` runs with (cli fills it in).
#[derive(Debug, Clone)]
pub struct Options {
    pub kernel: PathBuf,
    pub accel: qemu::AccelAsk,
    pub timeout_secs: u64,
    pub console: Option<PathBuf>,
    pub mem_mib: u32,
    pub append: String,
    pub json: bool,
    /// --ktap: the test the KTAP names.
    pub ktap: Option<crate::judge::report::ktap::Test>,
    /// --log: written on the host, from what the guest recorded.
    pub log: Option<PathBuf>,
    /// The disk under test (--size, default 3 GiB).
    pub disk_bytes: u64,
    /// The guest's argv after the program name: the user's options, then
    /// /dev/vda /mnt/test.
    pub guest_args: Vec<String>,
}

/// Options that only the host reads, each with a value: dropped from the
/// guest's argv.
pub const HOST_ONLY: [&str; 7] = ["--vm", "--vm-accel", "--vm-timeout", "--vm-console", "--vm-mem", "--vm-append", "--size"];

/// The guest's argv from the user's (without the program name): the
/// host-only options go, `--log FILE` becomes the guest's own file, and the
/// device and mount point come last.
pub fn guest_args(user: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let mut it = user.iter();
    while let Some(a) = it.next() {
        if HOST_ONLY.contains(&a.as_str()) {
            it.next();
        } else if a == "--log" {
            it.next();
            out.extend(["--log".to_string(), GUEST_LOG.to_string()]);
        } else {
            out.push(a.clone());
        }
    }
    out.extend(["/dev/vda".to_string(), "/mnt/test".to_string()]);
    out
}

/// A verdict made outside the pass (a host refusal, a guest that never
/// got to run it, an interruption), printed as a native run prints its
/// own: (text block, JSON object).
pub fn printout(kind: Kind, reason: String, cause: Option<Cause>, kernel: &str, log: &Tracker) -> (String, String) {
    let (r, v, f) = made(kind, reason, cause, kernel, crate::kernel::host::version());
    (short_text(&r, &v, log, &f), crate::judge::report::json::json(&r, &v, log, &f))
}

/// The report, verdict and facts of a verdict made outside the pass.
fn made(kind: Kind, reason: String, cause: Option<Cause>, kernel: &str, version: String) -> (Report, Verdict, Facts) {
    // known_bug stays None: naming a fix needs the pass's relocation facts, which a
    // verdict made outside the pass does not have.
    let v = Verdict { kind, reason, cause, known_bug: None };
    let r = Report { version, kernel: kernel.to_string(), device: "/dev/vda (VM)".into(), ..Report::default() };
    let f = Facts { unmount_observed: true, ..Facts::default() };
    (r, v, f)
}

/// A made verdict's text block: it stops after the kernel, as a refusal's
/// does (nothing ran), but for the evidence of a guest that died of
/// kernel trouble.
fn short_text(r: &Report, v: &Verdict, log: &Tracker, f: &Facts) -> String {
    let text = crate::judge::report::text::text(r, v, log, f);
    text.lines()
        .filter(|l| ["== ", "reason:", "next:", "kernel:", "evidence:", "          "].iter().any(|p| l.starts_with(p)))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// The VM facts added to a verdict: a `vm` object at the end of the JSON
/// object, a `vm:` line after the text block.
pub fn with_vm_facts(verdict: &str, json: bool, facts_json: &str, facts_line: &str) -> String {
    // --check prints its findings as text, --json or not.
    let object = verdict.trim_start().starts_with('{');
    if json && object {
        match verdict.rfind('}') {
            Some(at) => format!("{}, \"vm\": {facts_json}{}", verdict[..at].trim_end(), &verdict[at..]),
            None => verdict.to_string(),
        }
    } else {
        format!("{verdict}{}vm:       {facts_line}\n", if verdict.ends_with('\n') || verdict.is_empty() { "" } else { "\n" })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn guest_args_drop_host_options_and_add_the_device() {
        let user = s(&["--vm", "k/bzImage", "--json", "--vm-timeout", "60", "--log", "/home/u/x.log", "--size", "4G", "--seed", "7", "--vm-append", "a b"]);
        assert_eq!(guest_args(&user), s(&["--json", "--log", GUEST_LOG, "--seed", "7", "/dev/vda", "/mnt/test"]));
        assert_eq!(guest_args(&s(&["--check", "--vm", "k"])), s(&["--check", "/dev/vda", "/mnt/test"]));
    }

    #[test]
    fn vm_facts_go_into_the_object_or_after_the_block() {
        assert_eq!(with_vm_facts("{\"verdict\": \"X\"}\n", true, "{\"accel\": \"tcg\"}", ""), "{\"verdict\": \"X\", \"vm\": {\"accel\": \"tcg\"}}\n");
        assert_eq!(with_vm_facts("== x ==\nreason: y\n", false, "", "x86_64 tcg"), "== x ==\nreason: y\nvm:       x86_64 tcg\n");
        assert_eq!(with_vm_facts("ok   x\npreflight: go\n", true, "{}", "x86_64 tcg"), "ok   x\npreflight: go\nvm:       x86_64 tcg\n");
    }

    #[test]
    fn a_made_verdict_reads_like_a_native_one() {
        let (text, json) = printout(Kind::Inconclusive, "no btrfs".into(), Some(Cause::VmKernelConfig), "6.1.0", &Tracker::default());
        assert!(text.starts_with("== btrfs-reclaim-repro ") && text.contains(": INCONCLUSIVE (exit 125) =="), "{text}");
        assert!(text.contains("next:     build the kernel with the option the reason names"), "{text}");
        assert!(json.starts_with("{\"verdict\": \"INCONCLUSIVE\", \"exit_code\": 125, \"reason\": \"no btrfs\""), "{json}");
    }
}

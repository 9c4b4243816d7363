//! What the console says when the guest handed over no verdict: init never
//! ran (and why, for the `next:` line), the kernel died of trouble that
//! names a bug (judged by the native judge's rules, fed the console's
//! kernel lines), or the guest hung, and where.

use crate::kernel::kmsg::events::Tracker;
use crate::kernel::kmsg::Record;
use crate::judge::verdict::Cause;

use super::frame::is_kernel_line;

/// The line PID 1 prints first (with its uptime): from here on, the guest
/// is ours.
pub const GUEST_START: &str = "BRR-GUEST-START";

/// How a VM run without a verdict ended.
#[derive(Debug)]
pub enum Ending {
    /// Kernel trouble after /init started: the tracker holds it (REPRODUCED).
    Trouble(Box<Tracker>),
    /// INCONCLUSIVE: the reason, and the cause whose advice is the `next:`.
    Inconclusive(String, Cause),
}

/// A console line's text: without `\r` and, for a kernel line, without its
/// `[ seconds]` stamp; (is it a kernel line, seconds, text).
pub fn split_line(line: &[u8]) -> (bool, f64, String) {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let text = String::from_utf8_lossy(line).into_owned();
    if is_kernel_line(line) {
        let close = text.find(']').unwrap_or(0);
        let secs = text[1..close].trim().parse().unwrap_or(0.0);
        let rest = text[close + 1..].strip_prefix(' ').unwrap_or(&text[close + 1..]).to_string();
        (true, secs, rest)
    } else {
        (false, 0.0, text)
    }
}

/// `console`: everything the guest printed; `timed_out`: the host killed
/// QEMU at its deadline; `garbled`: frames were there, none intact.
pub fn triage(console: &[u8], timed_out: bool, garbled: bool) -> Ending {
    let lines: Vec<(bool, f64, String)> = console.split(|&b| b == b'\n').map(split_line).collect();
    let started = lines.iter().position(|(k, _, t)| !k && t.starts_with(GUEST_START));
    let Some(started) = started else { return before_init(&lines, timed_out) };
    let mut log = Tracker::default();
    for (i, (_, secs, text)) in lines[started..].iter().enumerate().filter(|(_, l)| l.0) {
        log.feed(&Record { level: 4, seq: i as u64, usec: (secs * 1e6) as u64, text: text.clone() });
    }
    if !log.trouble.is_empty() {
        return Ending::Trouble(Box::new(log));
    }
    if garbled {
        return Ending::Inconclusive("the verdict came back garbled (length or checksum wrong on every copy), and the console shows no kernel trouble".into(), Cause::VmNoVerdict);
    }
    let last = lines[started..].iter().rev().find(|(k, _, t)| !k && !t.trim().is_empty() && !t.starts_with("===BRR-") && !t.starts_with(super::ktap::PLAN_MARKER)).map(|l| l.2.trim().to_string());
    let at = last.unwrap_or_else(|| "the start of /init".into());
    if timed_out {
        Ending::Inconclusive(format!("guest hung at {at}"), Cause::VmHung)
    } else {
        Ending::Inconclusive(format!("the VM ended without a verdict after {at}, and the console shows no kernel trouble"), Cause::VmNoVerdict)
    }
}

fn before_init(lines: &[(bool, f64, String)], timed_out: bool) -> Ending {
    let kernel: Vec<&str> = lines.iter().filter(|l| l.0).map(|l| l.2.as_str()).collect();
    let find = |needle: &str| kernel.iter().find(|t| t.contains(needle)).map(|t| t.to_string());
    // run_init_process() → kernel_execve(): -8 (ENOEXEC) is a binary of the
    // wrong architecture (or not an ELF the kernel can load).
    if let Some(l) = find("Failed to execute /init (error -8)") {
        return Ending::Inconclusive(format!("init never ran: {l}"), Cause::VmWrongArch);
    }
    if let Some(l) = find("Failed to execute /init").or_else(|| find("No working init found")).or_else(|| find("Unable to mount root fs")) {
        return Ending::Inconclusive(format!("init never ran: {l}"), Cause::VmNoInitramfs);
    }
    if kernel.is_empty() {
        let why = if timed_out { "no kernel output before the timeout" } else { "no kernel output at all" };
        return Ending::Inconclusive(format!("init never ran: {why}"), Cause::VmNoConsole);
    }
    let last = kernel.iter().rev().find(|t| !t.trim().is_empty()).copied().unwrap_or("");
    if let Some(l) = kernel.iter().find(|t| crate::kernel::kmsg::events::is_trouble(t)) {
        return Ending::Inconclusive(format!("the kernel died while booting, before /init ran: {l}"), Cause::VmBootFailed);
    }
    let how = if timed_out { "guest hung at boot" } else { "the VM ended during boot" };
    Ending::Inconclusive(format!("{how}, before /init ran (last kernel line: {last})"), Cause::VmBootFailed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/vm").join(name)).unwrap()
    }

    fn inconclusive(e: Ending) -> (String, Cause) {
        match e {
            Ending::Inconclusive(r, c) => (r, c),
            Ending::Trouble(t) => panic!("trouble: {:?}", t.trouble),
        }
    }

    #[test]
    fn init_never_ran_names_the_cause() {
        let (r, c) = inconclusive(triage(&fixture("console-wrong-arch-init.txt"), false, false));
        assert_eq!(c, Cause::VmWrongArch, "{r}");
        assert!(r.contains("error -8"), "{r}");
        let (r, c) = inconclusive(triage(b"SeaBIOS (version 1.16.2)\r\nBooting from ROM..\r\n", true, false));
        assert_eq!(c, Cause::VmNoConsole, "{r}");
        assert!(r.contains("before the timeout"));
        let (_, c) = inconclusive(triage(b"[    2.8] x\n[    2.871023] Kernel panic - not syncing: No working init found.  Try passing init= option to kernel.\n", false, false));
        assert_eq!(c, Cause::VmNoInitramfs);
    }

    #[test]
    fn trouble_after_init_is_judged_like_kmsg() {
        match triage(&fixture("console-refcount-after-init.txt"), true, false) {
            Ending::Trouble(t) => assert!(t.headline().unwrap().starts_with("refcount_t: underflow; use-after-free."), "{:?}", t.trouble),
            e => panic!("{e:?}"),
        }
    }

    #[test]
    fn a_clean_hang_names_the_last_progress_line() {
        let c = b"[    2.9] Run /init as init process\r\nBRR-GUEST-START uptime=2.95\r\n[   0.1s] btrfs-reclaim-repro 0.1.0 on kernel 6.12.117, seed 7\r\n[    3.100000] BTRFS: device label btrfs-reclaim-repro devid 1 transid 6 /dev/vda\r\n[   0.3s] pausing at fill (BRR_TEST_PAUSE=fill)\r\n";
        let (r, c2) = inconclusive(triage(c, true, false));
        assert_eq!((r.as_str(), c2), ("guest hung at [   0.3s] pausing at fill (BRR_TEST_PAUSE=fill)", Cause::VmHung));
        let (r, c2) = inconclusive(triage(c, false, true));
        assert!(r.contains("garbled"), "{r}");
        assert_eq!(c2, Cause::VmNoVerdict);
    }

    #[test]
    fn split_line_keeps_the_stamp_apart() {
        assert_eq!(split_line(b"[    1.500000] Linux version 6.12.117\r"), (true, 1.5, "Linux version 6.12.117".into()));
        assert_eq!(split_line(b"[   1.5s] mkfs"), (false, 0.0, "[   1.5s] mkfs".into()));
    }
}

//! The host side of `--vm`: refuse early (255, with --ktap 1) what cannot
//! work and pack the initramfs (prepare.rs), start QEMU with its files held
//! by descriptor only (unlinked before QEMU starts: nothing of ours stays
//! in $TMPDIR, even after a SIGKILL) and stream the guest's progress to
//! stderr (boot.rs), then print the guest's verdict, or the console's, as a
//! native run prints its own (text, JSON or KTAP: vm::ktap).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::time::Instant;

use crate::kernel::kmsg::events::Tracker;
use crate::judge::report::{json, ktap};
use crate::judge::verdict::{Cause, Kind};

use super::boot::{boot, Boot, End};
use super::frame::{self, Found};
use super::prepare::{prepare, Prepared};
use super::qemu::Accel;
use super::triage::{self, Ending};
use super::Options;

pub fn run(o: &Options) -> i32 {
    let started = Instant::now();
    let kernel = o.kernel.display().to_string();
    let prepared = match prepare(o) {
        Ok(p) => p,
        Err(why) => return print_made(o, Kind::VmRefused, why, None, &kernel, &Tracker::default(), None),
    };
    if let Err(e) = crate::sys::process::install_interrupt_handlers() {
        eprintln!("btrfs-reclaim-repro: {e}");
        if let Some(test) = o.ktap {
            let (doc, code) = ktap::early_error(test, &e.to_string());
            ktap::print_document(&doc);
            return code;
        }
        return 125;
    }
    if let Some(path) = &o.console {
        // Emptied once: each boot appends to it as the console comes.
        let _ = File::create(path);
    }
    let mut accel = prepared.accel;
    let mut why = prepared.accel_why.clone();
    loop {
        eprintln!("btrfs-reclaim-repro: booting {kernel} ({}) under {} ({why}), timeout {} s", prepared.arch.name(), accel.name().to_uppercase(), o.timeout_secs);
        let boot = boot(o, &prepared, accel);
        let boot = match boot {
            Ok(b) => b,
            Err(e) => return print_made(o, Kind::VmRefused, e, None, &kernel, &Tracker::default(), None),
        };
        if accel == Accel::Kvm && !boot.kernel_spoke && !matches!(boot.end, End::Interrupted(_)) {
            eprintln!("btrfs-reclaim-repro: no kernel output under KVM ({}): booting again under TCG", boot.qemu_error.lines().last().unwrap_or("silent"));
            accel = Accel::Tcg;
            why = "KVM fell back: the guest printed nothing under KVM".into();
            continue;
        }
        return finish(o, &prepared, accel, &why, boot, started);
    }
}

/// The results disk's bytes up to the first empty MiB.
fn results_bytes(f: &File) -> Vec<u8> {
    let mut f = f;
    let mut out = Vec::new();
    let _ = f.seek(SeekFrom::Start(0));
    let mut chunk = vec![0u8; 1 << 20];
    while let Ok(n) = f.read(&mut chunk) {
        if n == 0 || chunk[..n].iter().all(|&b| b == 0) {
            break;
        }
        out.extend_from_slice(&chunk[..n]);
    }
    out
}

/// The first intact copy of a frame: the results disk, else the console.
fn take(disk: &[u8], console: &[u8], name: &str) -> Found {
    match frame::decode(disk, name) {
        Found::Intact(p) => Found::Intact(p),
        on_disk => match (frame::decode(console, name), on_disk) {
            (Found::Intact(p), _) => Found::Intact(p),
            (Found::Absent, Found::Absent) => Found::Absent,
            _ => Found::Garbled { copies: 2 },
        },
    }
}

struct Times {
    before_kernel: Option<f64>,
    kernel_boot: Option<f64>,
    pass: Option<f64>,
    total: f64,
}

impl Times {
    /// Everything else: packing, QEMU's start and exit, the console, the
    /// frames, the power-off.
    fn ours(&self) -> Option<f64> {
        Some(self.total - self.before_kernel? - self.kernel_boot? - self.pass?)
    }
}

fn finish(o: &Options, p: &Prepared, accel: Accel, why: &str, b: Boot, started: Instant) -> i32 {
    let disk = results_bytes(&p.results);
    let facts = match take(&disk, &b.console, "facts") {
        Found::Intact(f) => String::from_utf8_lossy(&f).into_owned(),
        _ => String::new(),
    };
    let fact = |k: &str| facts.lines().find_map(|l| l.strip_prefix(k)?.strip_prefix('=')?.parse::<f64>().ok());
    let kernel_boot = b.init_at.zip(b.kernel_at).map(|(i, k)| i - k);
    let times = Times { before_kernel: b.kernel_at, kernel_boot, pass: fact("pass_seconds"), total: started.elapsed().as_secs_f64() };
    let kernel = o.kernel.display().to_string();
    let vm = vm_facts(o, p, accel, why, &times);
    if let End::Interrupted(sig) = b.end {
        let reason = format!("interrupted by {} (QEMU killed)", sig.name());
        return print_made(o, Kind::Interrupted(sig), reason, None, &kernel, &Tracker::default(), Some(vm));
    }
    let exit = take(&disk, &b.console, "exit");
    let stdout = take(&disk, &b.console, "stdout");
    if let Some(code) = guest_verdict(o, &disk, &exit, &stdout, &vm) {
        return code;
    }
    let garbled = matches!(exit, Found::Garbled { .. }) || matches!(stdout, Found::Garbled { .. });
    console_verdict(o, &b, garbled, &kernel, vm)
}

/// The guest's own verdict, where its exit code and stdout came through
/// intact: printed with the VM facts, its records to --log.
fn guest_verdict(o: &Options, disk: &[u8], exit: &Found, stdout: &Found, vm: &(String, String)) -> Option<i32> {
    let (Found::Intact(code), Found::Intact(out)) = (exit, stdout) else { return None };
    let code = std::str::from_utf8(code).ok().and_then(|c| c.trim().parse::<i32>().ok())?;
    if let (Some(path), Found::Intact(log)) = (&o.log, take(disk, &[], "log")) {
        if let Err(e) = std::fs::write(path, log) {
            eprintln!("btrfs-reclaim-repro: --log {}: {e}", path.display());
        }
    }
    let text = String::from_utf8_lossy(out);
    if o.ktap.is_some() {
        // The guest's pass printed KTAP with kselftest's code.
        ktap::print_document(&super::ktap::with_vm_facts(&text, &vm.1));
        return Some(code);
    }
    print!("{}", super::with_vm_facts(&text, o.json, &vm.0, &vm.1));
    let _ = std::io::stdout().flush();
    Some(code)
}

/// No verdict from the guest: the console's, its last lines on stderr.
fn console_verdict(o: &Options, b: &Boot, garbled: bool, kernel: &str, vm: (String, String)) -> i32 {
    if let Some(path) = &o.log {
        // No records from the guest: the console is the log.
        let _ = std::fs::write(path, &b.console);
    }
    let ending = triage::triage(&b.console, b.end == End::TimedOut, garbled);
    let tail: Vec<String> = b.console.split(|&c| c == b'\n').rev().take(12).map(|l| String::from_utf8_lossy(l).trim_end().to_string()).collect();
    if o.console.is_none() {
        eprintln!("btrfs-reclaim-repro: no verdict from the guest; the console's last lines:");
        for l in tail.iter().rev() {
            eprintln!("  | {l}");
        }
    }
    if !b.qemu_error.trim().is_empty() {
        eprintln!("btrfs-reclaim-repro: QEMU said: {}", b.qemu_error.trim());
    }
    let (kind, reason, cause, log) = ending_verdict(ending, &b.qemu_exit, &b.qemu_error);
    print_made(o, kind, reason, cause, kernel, &log, Some(vm))
}

/// The verdict of a run whose guest handed none over, from the console's
/// ending and how QEMU ended: (kind, reason, cause, the console's kernel log).
pub(super) fn ending_verdict(ending: Ending, qemu_exit: &str, qemu_error: &str) -> (Kind, String, Option<Cause>, Tracker) {
    match ending {
        Ending::Trouble(log) => {
            let reason = format!("kernel trouble: {} (the guest died of it before a verdict)", log.headline().unwrap_or(""));
            (Kind::Reproduced, reason, None, *log)
        }
        Ending::Inconclusive(mut reason, cause) => {
            // A silent console: how QEMU ended says more (a damaged image
            // triple-faults, and -no-reboot ends QEMU at once).
            if cause == Cause::VmNoConsole && !qemu_exit.is_empty() {
                reason.push_str(&format!(" ({qemu_exit})"));
            }
            if let (Cause::VmNoConsole, Some(said)) = (cause, qemu_error.lines().rev().find(|l| !l.trim().is_empty())) {
                reason.push_str(&format!("; QEMU said: {}", said.trim()));
            }
            (Kind::Inconclusive, reason, Some(cause), Tracker::default())
        }
    }
}

/// The VM facts: (JSON object, text line).
fn vm_facts(o: &Options, p: &Prepared, accel: Accel, why: &str, t: &Times) -> (String, String) {
    let mut j = json::Object::new();
    j.str("kernel_image", &o.kernel.display().to_string())
        .str("arch", p.arch.name())
        .str("accel", accel.name())
        .str("accel_reason", why)
        .str("qemu", &p.qemu)
        .raw("before_kernel_seconds", json::opt_num(t.before_kernel))
        .raw("kernel_boot_seconds", json::opt_num(t.kernel_boot))
        .raw("pass_seconds", json::opt_num(t.pass))
        .raw("ours_seconds", json::opt_num(t.ours()))
        .num("total_seconds", t.total);
    let s = |v: Option<f64>| v.map(|x| format!("{x:.1} s")).unwrap_or_else(|| "?".into());
    let line = format!(
        "{} under {} ({why}); before the kernel {}, kernel boot to /init {}, pass {}, ours {}; total {:.1} s",
        p.arch.name(),
        accel.name().to_uppercase(),
        s(t.before_kernel),
        s(t.kernel_boot),
        s(t.pass),
        s(t.ours()),
        t.total
    );
    (j.finish(), line)
}

/// Prints a verdict the host made, as the native run prints its own: a
/// refusal's one line on stderr, the block (or JSON) on stdout.
fn print_made(o: &Options, kind: Kind, reason: String, cause: Option<Cause>, kernel: &str, log: &Tracker, vm: Option<(String, String)>) -> i32 {
    if kind == Kind::VmRefused {
        eprintln!("btrfs-reclaim-repro: {reason}");
    }
    if let Some(test) = o.ktap {
        let (doc, code) = super::ktap::printout(test, kind, reason, cause, kernel, log, vm.as_ref().map(|v| v.1.as_str()));
        ktap::print_document(&doc);
        return code;
    }
    let (text, js) = super::printout(kind, reason, cause, kernel, log);
    let (text, js) = match &vm {
        Some((vj, vl)) => (super::with_vm_facts(&text, false, vj, vl), super::with_vm_facts(&js, true, vj, vl)),
        None => (text, js),
    };
    if o.json {
        if kind != Kind::VmRefused {
            eprint!("{text}");
        }
        print!("{js}");
    } else {
        print!("{text}");
    }
    let _ = std::io::stdout().flush();
    kind.exit_code()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_results_disk_is_read_first_and_the_console_is_the_fallback() {
        let good = frame::encode("stdout", b"{\"verdict\": \"X\"}\n");
        let mut bad = good.clone();
        let at = bad.len() - 30;
        bad[at] ^= 1;
        let console = [b"[    1.000000] Linux version 6.12.117\r\n".as_slice(), &good].concat();
        assert_eq!(take(&good, b"", "stdout"), Found::Intact(b"{\"verdict\": \"X\"}\n".to_vec()));
        assert_eq!(take(b"", &console, "stdout"), Found::Intact(b"{\"verdict\": \"X\"}\n".to_vec()));
        assert_eq!(take(&bad, &console, "stdout"), Found::Intact(b"{\"verdict\": \"X\"}\n".to_vec()));
        assert_eq!(take(&bad, &bad, "stdout"), Found::Garbled { copies: 2 });
        assert_eq!(take(b"", b"only the kernel\n", "stdout"), Found::Absent);
    }

    #[test]
    fn a_silent_console_says_how_qemu_ended() {
        let r = |cause| ending_verdict(Ending::Inconclusive("no console".into(), cause), "QEMU exited after 0.3 s, exit status: 0", "\nqemu: fatal: triple fault\n\n").1;
        assert_eq!(r(Cause::VmNoConsole), "no console (QEMU exited after 0.3 s, exit status: 0); QEMU said: qemu: fatal: triple fault");
        assert_eq!(r(Cause::VmHung), "no console");
    }

    #[test]
    fn ours_is_what_the_other_parts_leave() {
        let t = Times { before_kernel: Some(0.5), kernel_boot: Some(2.0), pass: Some(1.0), total: 4.0 };
        assert_eq!(t.ours(), Some(0.5));
        assert_eq!(Times { pass: None, ..t }.ours(), None);
    }
}

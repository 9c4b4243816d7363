//! The host side of `--vm`: refuse early (255, with --ktap 1) what cannot
//! work, pack the initramfs, start QEMU with its files held by descriptor
//! only (unlinked before QEMU starts: nothing of ours stays in $TMPDIR,
//! even after a SIGKILL), stream the guest's progress to stderr, and print
//! the guest's verdict, or the console's, as a native run prints its own
//! (text, JSON or KTAP: vm::ktap).

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::kernel::kmsg::events::Tracker;
use crate::judge::report::{json, ktap};
use crate::sys::process::{pending_signal, Pid, Signal};
use crate::judge::verdict::{Cause, Kind};

use super::cpio::{self, Entry};
use super::frame::{self, Found};
use super::image::Arch;
use super::qemu::{self, Accel, Machine};
use super::triage::{self, Ending, GUEST_START};
use super::Options;

/// Under KVM, a guest that prints no "Linux version" this soon is taken
/// for a hanging (nested, software) KVM, and booted again under TCG.
const KVM_SILENCE: Duration = Duration::from_secs(20);

/// After the guest handed its verdict over, how long it may take to power
/// off: a kernel wedged by the bug (a reclaim worker looping after a
/// use-after-free) can hang in the power-off itself.
const POWER_OFF_GRACE: Duration = Duration::from_secs(10);

/// Free space $TMPDIR must have: the sparse disk only grows by what the
/// guest writes (metadata and, with --fill-mode write, data).
const TMP_ROOM: u64 = 256 << 20;

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

struct Prepared {
    arch: Arch,
    accel: Accel,
    accel_why: String,
    qemu: String,
    initramfs: File,
    disk: File,
    results: File,
}

/// Every host-side check, then the three files, all before QEMU starts.
fn prepare(o: &Options) -> Result<Prepared, String> {
    let arch = super::image::detect_file(&o.kernel)?;
    let guest_binary = guest_binary(arch)?;
    let qemu = qemu::program(arch);
    if find_in_path(&qemu).is_none() {
        let pkg = if arch == Arch::X86_64 { "qemu-system-x86" } else { "qemu-system-arm" };
        return Err(format!("{qemu} not found in PATH (install {pkg})"));
    }
    let tmp = std::env::var_os("TMPDIR").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/tmp"));
    let space = crate::sys::fs::statfs(&tmp).map_err(|e| format!("$TMPDIR {}: {e}", tmp.display()))?;
    let free = space.avail_bytes;
    if free < TMP_ROOM {
        return Err(format!("no room in $TMPDIR {}: {} MiB free, the VM's scratch disk needs {} MiB (set TMPDIR elsewhere)", tmp.display(), free >> 20, TMP_ROOM >> 20));
    }
    let (accel, accel_why) = qemu::choose(o.accel, arch, &probe())?;
    let binary = std::fs::read(&guest_binary).map_err(|e| format!("cannot read the guest binary {}: {e}", guest_binary.display()))?;
    let argv: Vec<u8> = o.guest_args.iter().flat_map(|a| a.bytes().chain([0])).collect();
    let archive = cpio::newc(&[
        Entry::Dir { path: "dev", mode: 0o755 },
        Entry::CharDev { path: "dev/console", mode: 0o600, major: 5, minor: 1 },
        Entry::Dir { path: "proc", mode: 0o755 },
        Entry::Dir { path: "sys", mode: 0o755 },
        Entry::Dir { path: "mnt", mode: 0o755 },
        Entry::Dir { path: "brr", mode: 0o755 },
        Entry::File { path: "brr/argv", mode: 0o644, data: &argv },
        Entry::File { path: "init", mode: 0o755, data: &binary },
    ]);
    let mut initramfs = scratch(&tmp, "initramfs")?;
    initramfs.write_all(&archive).map_err(|e| format!("write the initramfs in {}: {e}", tmp.display()))?;
    let disk = scratch(&tmp, "disk")?;
    disk.set_len(o.disk_bytes).map_err(|e| format!("size the VM disk in {}: {e}", tmp.display()))?;
    let results = scratch(&tmp, "results")?;
    // The frames, plus the --log records (the kernel log buffer is 16 MiB).
    results.set_len(64 << 20).map_err(|e| format!("size the results disk in {}: {e}", tmp.display()))?;
    Ok(Prepared { arch, accel, accel_why, qemu, initramfs, disk, results })
}

/// A file in `dir` with no name: O_TMPFILE, or where the filesystem lacks
/// it, a new file unlinked at once. Only the descriptor holds it.
fn scratch(dir: &Path, what: &str) -> Result<File, String> {
    let err = |e: std::io::Error| format!("cannot create the VM's {what} file in $TMPDIR {}: {e}", dir.display());
    match std::fs::OpenOptions::new().read(true).write(true).mode(0o600).custom_flags(libc::O_TMPFILE).open(dir) {
        Ok(f) => Ok(f),
        Err(_) => {
            let path = dir.join(format!("brr-vm-{}-{what}", std::process::id()));
            let f = std::fs::OpenOptions::new().read(true).write(true).create_new(true).mode(0o600).open(&path).map_err(err)?;
            std::fs::remove_file(&path).map_err(err)?;
            Ok(f)
        }
    }
}

/// The guest's /init: this binary when the kernel is of our architecture,
/// else the other architecture's static build next to it
/// (dist/btrfs-reclaim-repro-aarch64 beside dist/btrfs-reclaim-repro-x86_64).
fn guest_binary(arch: Arch) -> Result<PathBuf, String> {
    let exe = std::fs::read_link("/proc/self/exe").map_err(|e| format!("readlink /proc/self/exe: {e}"))?;
    if Arch::host() == Some(arch) {
        return Ok(exe);
    }
    let name = format!("btrfs-reclaim-repro-{}", arch.name());
    let beside = exe.with_file_name(&name);
    if beside.is_file() {
        return Ok(beside);
    }
    Err(format!("an {} kernel needs the {} binary as its /init: no {} (make dist builds it)", arch.name(), arch.name(), beside.display()))
}

fn find_in_path(prog: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?.to_str()?.split(':').filter(|d| !d.is_empty()).map(|d| Path::new(d).join(prog)).find(|p| {
        use std::os::unix::fs::PermissionsExt;
        p.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    })
}

fn probe() -> qemu::Probe {
    let kvm = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .map_err(|e| {
            let hint = if e.kind() == std::io::ErrorKind::PermissionDenied { " (add yourself to group kvm)" } else { "" };
            format!("{}{hint}", crate::sys::with("open", "/dev/kvm")(e))
        })
        .and_then(|f| crate::sys::vm::kvm_api_version(&f).map_err(|e| e.to_string()));
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    // Test hook: BRR_TEST_VM_SKIP_CPU_CHECK=1 takes the cpu for one with
    // vmx/svm, so that this machine's hanging kvm_pvm is chosen.
    let skip = std::env::var("BRR_TEST_VM_SKIP_CPU_CHECK").is_ok_and(|v| v == "1");
    qemu::Probe { host: Arch::host(), kvm, virt_flags: skip || qemu::has_virt_flags(&cpuinfo) }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// QEMU exited by itself (power-off, panic=-1, or its own failure).
    Exited,
    TimedOut,
    Interrupted(Signal),
}

struct Boot {
    end: End,
    /// QEMU's own exit status and how long it ran, for a silent console.
    qemu_exit: String,
    console: Vec<u8>,
    qemu_error: String,
    kernel_spoke: bool,
    /// Seconds after QEMU started: the first kernel line, "Run /init".
    kernel_at: Option<f64>,
    init_at: Option<f64>,
}

/// What the console reader learns while it reads.
#[derive(Default)]
struct Seen {
    console: Vec<u8>,
    /// When the last frame (facts) went by: the results disk is written.
    handed_over: Option<Instant>,
    kernel_at: Option<f64>,
    init_at: Option<f64>,
}

fn boot(o: &Options, p: &Prepared, accel: Accel) -> Result<Boot, String> {
    const FD_INITRD: i32 = 100;
    const FD_DISK: i32 = 101;
    const FD_RESULTS: i32 = 102;
    let fd = |n: i32| format!("/proc/self/fd/{n}");
    let m = Machine {
        arch: p.arch,
        accel,
        smp: 2,
        mem_mib: o.mem_mib,
        kernel: o.kernel.display().to_string(),
        initrd: fd(FD_INITRD),
        disk: fd(FD_DISK),
        results: fd(FD_RESULTS),
        append: o.append.clone(),
    };
    let argv = qemu::argv(&m);
    let mut cmd = Command::new(&p.qemu);
    cmd.args(&argv[1..]).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let fds = [(p.initramfs.as_raw_fd(), FD_INITRD), (p.disk.as_raw_fd(), FD_DISK), (p.results.as_raw_fd(), FD_RESULTS)];
    let qemu_started = Instant::now();
    let mut child = crate::sys::vm::spawn_tied(&mut cmd, &fds).map_err(|e| format!("cannot start {}: {e}", p.qemu))?;
    let spoke = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(Mutex::new(Seen::default()));
    // --vm-console as it comes (a KVM boot that fell back stays above the TCG one).
    let keep = o.console.as_ref().and_then(|path| match std::fs::OpenOptions::new().create(true).append(true).open(path) {
        Ok(f) => Some(f),
        Err(e) => {
            eprintln!("btrfs-reclaim-repro: --vm-console {}: {e}", path.display());
            None
        }
    });
    let out = child.stdout.take().expect("piped");
    let err = child.stderr.take().expect("piped");
    let reader = {
        let (spoke, seen) = (spoke.clone(), seen.clone());
        let ktap = o.ktap.is_some();
        std::thread::spawn(move || read_console(out, qemu_started, &spoke, &seen, keep, ktap))
    };
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = BufReader::new(err).read_to_string(&mut s);
        s
    });
    let deadline = qemu_started + Duration::from_secs(o.timeout_secs);
    let mut qemu_exit = String::new();
    let end = loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                qemu_exit = format!("QEMU exited after {:.1} s, {status}", qemu_started.elapsed().as_secs_f64());
                break End::Exited;
            }
            Ok(None) => {}
            Err(_) => break End::Exited,
        }
        if let Some(sig) = pending_signal() {
            kill(&mut child);
            break End::Interrupted(sig);
        }
        if Instant::now() > deadline {
            kill(&mut child);
            break End::TimedOut;
        }
        let handed_over = seen.lock().map(|s| s.handed_over).unwrap_or(None);
        if handed_over.is_some_and(|t| t.elapsed() > POWER_OFF_GRACE) {
            eprintln!(
                "btrfs-reclaim-repro: the guest handed its verdict over but did not power off within {} s (a wedged kernel): QEMU killed",
                POWER_OFF_GRACE.as_secs()
            );
            kill(&mut child);
            break End::Exited;
        }
        if accel == Accel::Kvm && !spoke.load(Ordering::SeqCst) && qemu_started.elapsed() > KVM_SILENCE {
            kill(&mut child);
            break End::Exited;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let _ = reader.join();
    let qemu_error = err_reader.join().unwrap_or_default();
    let seen = std::mem::take(&mut *seen.lock().unwrap_or_else(|e| e.into_inner()));
    Ok(Boot {
        end,
        qemu_exit,
        console: seen.console,
        qemu_error,
        kernel_spoke: spoke.load(Ordering::SeqCst),
        kernel_at: seen.kernel_at,
        init_at: seen.init_at,
    })
}

/// SIGKILL to QEMU's pid, then reap it.
fn kill(child: &mut Child) {
    let _ = crate::sys::process::kill(Pid(child.id() as i32), Signal::KILL);
    let _ = child.wait();
}

/// Reads the console line by line: keeps it all, notes when the kernel
/// started and reached /init, and forwards the guest's own lines (progress,
/// not kernel lines, not frames) to stderr as they come. With `ktap`, the
/// guest's word that its pass printed the plan puts the host's plan out
/// (vm::ktap says why then).
fn read_console(out: impl Read, t0: Instant, spoke: &AtomicBool, seen: &Mutex<Seen>, mut keep: Option<File>, ktap: bool) {
    let mut r = BufReader::new(out);
    let mut line = Vec::new();
    let (mut ours, mut in_frame) = (false, false);
    let stderr = std::io::stderr();
    while r.read_until(b'\n', &mut line).is_ok_and(|n| n > 0) {
        let arrived = t0.elapsed().as_secs_f64();
        let (kernel, _, text) = triage::split_line(line.strip_suffix(b"\n").unwrap_or(&line));
        if let Some(f) = &mut keep {
            let _ = f.write_all(&line);
        }
        let mut s = seen.lock().unwrap_or_else(|e| e.into_inner());
        s.console.extend_from_slice(&line);
        if kernel {
            spoke.store(true, Ordering::SeqCst);
            // Host times, not the stamps: x86's clock counts from the
            // vCPU's reset (the TSC), firmware and decompression included.
            // The early console prints as the kernel goes.
            s.kernel_at.get_or_insert(arrived);
            if text.starts_with("Run /init as init process") {
                s.init_at = Some(arrived);
            }
        } else if text.starts_with(GUEST_START) {
            ours = true;
        } else if ours && text.trim_end() == super::ktap::PLAN_MARKER {
            if ktap {
                ktap::print(true, "");
            }
        } else if text.starts_with("===BRR-FRAME ") {
            in_frame = true;
        } else if text.starts_with("===BRR-FRAME-END ") {
            in_frame = false;
            if text.starts_with("===BRR-FRAME-END facts===") {
                s.handed_over = Some(Instant::now());
            }
        } else if ours && !in_frame && !text.trim().is_empty() {
            let _ = writeln!(stderr.lock(), "{text}");
        }
        drop(s);
        line.clear();
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
    if let (Found::Intact(code), Found::Intact(out)) = (&exit, &stdout) {
        if let Some(code) = std::str::from_utf8(code).ok().and_then(|c| c.trim().parse::<i32>().ok()) {
            if let (Some(path), Found::Intact(log)) = (&o.log, take(&disk, &[], "log")) {
                if let Err(e) = std::fs::write(path, log) {
                    eprintln!("btrfs-reclaim-repro: --log {}: {e}", path.display());
                }
            }
            let text = String::from_utf8_lossy(out);
            if o.ktap.is_some() {
                // The guest's pass printed KTAP with kselftest's code.
                ktap::print_document(&super::ktap::with_vm_facts(&text, &vm.1));
                return code;
            }
            print!("{}", super::with_vm_facts(&text, o.json, &vm.0, &vm.1));
            let _ = std::io::stdout().flush();
            return code;
        }
    }
    if let Some(path) = &o.log {
        // No records from the guest: the console is the log.
        let _ = std::fs::write(path, &b.console);
    }
    let garbled = matches!(exit, Found::Garbled { .. }) || matches!(stdout, Found::Garbled { .. });
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
    print_made(o, kind, reason, cause, &kernel, &log, Some(vm))
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
    fn ours_is_what_the_other_parts_leave() {
        let t = Times { before_kernel: Some(0.5), kernel_boot: Some(2.0), pass: Some(1.0), total: 4.0 };
        assert_eq!(t.ours(), Some(0.5));
        assert_eq!(Times { pass: None, ..t }.ours(), None);
    }
}

//! One boot of the guest: QEMU started with the prepared files passed by
//! descriptor, its console read and forwarded as it comes, and its end:
//! power-off, timeout, a signal, a silent KVM or a guest that handed its
//! verdict over and did not power off.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::AsRawFd;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::judge::report::ktap;
use crate::sys::process::{pending_signal, Pid, Signal};

use super::prepare::Prepared;
use super::qemu::{self, Accel, Machine};
use super::triage::{self, GUEST_START};
use super::Options;

/// Under KVM, a guest that prints no "Linux version" this soon is taken
/// for a hanging (nested, software) KVM, and booted again under TCG.
const KVM_SILENCE: Duration = Duration::from_secs(20);

/// After the guest handed its verdict over, how long it may take to power
/// off: a kernel wedged by the bug (a reclaim worker looping after a
/// use-after-free) can hang in the power-off itself.
const POWER_OFF_GRACE: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum End {
    /// QEMU exited by itself (power-off, panic=-1, or its own failure).
    Exited,
    TimedOut,
    Interrupted(Signal),
}

pub(super) struct Boot {
    pub(super) end: End,
    /// QEMU's own exit status and how long it ran, for a silent console.
    pub(super) qemu_exit: String,
    pub(super) console: Vec<u8>,
    pub(super) qemu_error: String,
    pub(super) kernel_spoke: bool,
    /// Seconds after QEMU started: the first kernel line, "Run /init".
    pub(super) kernel_at: Option<f64>,
    pub(super) init_at: Option<f64>,
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

pub(super) fn boot(o: &Options, p: &Prepared, accel: Accel) -> Result<Boot, String> {
    const FD_INITRD: i32 = 100;
    const FD_DISK: i32 = 101;
    const FD_RESULTS: i32 = 102;
    let argv = qemu::argv(&machine(o, p, accel, [FD_INITRD, FD_DISK, FD_RESULTS]));
    let mut cmd = Command::new(&p.qemu);
    cmd.args(&argv[1..]).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let fds = [(p.initramfs.as_raw_fd(), FD_INITRD), (p.disk.as_raw_fd(), FD_DISK), (p.results.as_raw_fd(), FD_RESULTS)];
    let qemu_started = Instant::now();
    let mut child = crate::sys::vm::spawn_tied(&mut cmd, &fds).map_err(|e| format!("cannot start {}: {e}", p.qemu))?;
    let spoke = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(Mutex::new(Seen::default()));
    let keep = console_copy(o);
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
    let silent_kvm = || accel == Accel::Kvm && !spoke.load(Ordering::SeqCst) && qemu_started.elapsed() > KVM_SILENCE;
    let (end, qemu_exit) = wait_for_qemu(&mut child, qemu_started, deadline, &seen, silent_kvm);
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

/// The machine to boot, its three files passed as `fds` (initramfs,
/// disk, results).
fn machine(o: &Options, p: &Prepared, accel: Accel, fds: [i32; 3]) -> Machine {
    let fd = |n: i32| format!("/proc/self/fd/{n}");
    Machine {
        arch: p.arch,
        accel,
        smp: 2,
        mem_mib: o.mem_mib,
        kernel: o.kernel.display().to_string(),
        initrd: fd(fds[0]),
        disk: fd(fds[1]),
        results: fd(fds[2]),
        append: o.append.clone(),
    }
}

/// --vm-console, appended to as it comes (a KVM boot that fell back
/// stays above the TCG one).
fn console_copy(o: &Options) -> Option<File> {
    let path = o.console.as_ref()?;
    match std::fs::OpenOptions::new().create(true).append(true).open(path) {
        Ok(f) => Some(f),
        Err(e) => {
            eprintln!("btrfs-reclaim-repro: --vm-console {}: {e}", path.display());
            None
        }
    }
}

/// Waits for QEMU to end, or ends it: at the deadline, on a signal, when
/// the guest handed its verdict over and did not power off, or when
/// `silent_kvm`. How it ended, and QEMU's exit status where it exited.
fn wait_for_qemu(child: &mut Child, started: Instant, deadline: Instant, seen: &Mutex<Seen>, silent_kvm: impl Fn() -> bool) -> (End, String) {
    loop {
        // The signal first: a terminal's Ctrl-C goes to the whole process
        // group, and QEMU exits of it too ("terminating on signal 2"),
        // usually before this loop wakes; that exit is the interruption's.
        if let Some(sig) = pending_signal() {
            kill(child);
            return (End::Interrupted(sig), String::new());
        }
        match child.try_wait() {
            Ok(Some(status)) => return (End::Exited, format!("QEMU exited after {:.1} s, {status}", started.elapsed().as_secs_f64())),
            Ok(None) => {}
            Err(_) => return (End::Exited, String::new()),
        }
        if Instant::now() > deadline {
            kill(child);
            return (End::TimedOut, String::new());
        }
        let handed_over = seen.lock().map(|s| s.handed_over).unwrap_or(None);
        if handed_over.is_some_and(|t| t.elapsed() > POWER_OFF_GRACE) {
            eprintln!(
                "btrfs-reclaim-repro: the guest handed its verdict over but did not power off within {} s (a wedged kernel): QEMU killed",
                POWER_OFF_GRACE.as_secs()
            );
            kill(child);
            return (End::Exited, String::new());
        }
        if silent_kvm() {
            kill(child);
            return (End::Exited, String::new());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
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

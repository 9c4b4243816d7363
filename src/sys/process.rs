//! Process-level calls: identity, signals.

use std::fmt;
use std::io;
use std::sync::atomic::{AtomicI32, Ordering};

use super::check;

/// A signal number, as the kernel delivers it and `waitpid` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signal(pub i32);

impl Signal {
    pub const HUP: Signal = Signal(libc::SIGHUP);
    pub const INT: Signal = Signal(libc::SIGINT);
    pub const KILL: Signal = Signal(libc::SIGKILL);
    pub const SEGV: Signal = Signal(libc::SIGSEGV);
    pub const TERM: Signal = Signal(libc::SIGTERM);

    /// SIGINT, SIGKILL, ...; "signal" for one we do not name.
    pub fn name(self) -> &'static str {
        match self.0 {
            libc::SIGHUP => "SIGHUP",
            libc::SIGINT => "SIGINT",
            libc::SIGQUIT => "SIGQUIT",
            libc::SIGILL => "SIGILL",
            libc::SIGABRT => "SIGABRT",
            libc::SIGBUS => "SIGBUS",
            libc::SIGFPE => "SIGFPE",
            libc::SIGKILL => "SIGKILL",
            libc::SIGSEGV => "SIGSEGV",
            libc::SIGPIPE => "SIGPIPE",
            libc::SIGTERM => "SIGTERM",
            _ => "signal",
        }
    }
}

/// A process or thread id (what the kernel prints as `current->pid`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pid(pub i32);

impl fmt::Display for Pid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

pub fn euid() -> u32 {
    // SAFETY: geteuid cannot fail and takes no arguments.
    unsafe { libc::geteuid() }
}

/// The calling thread's id: what the kernel prints as `current->pid`.
pub fn gettid() -> Pid {
    // SAFETY: gettid cannot fail and takes no arguments.
    Pid(unsafe { libc::syscall(libc::SYS_gettid) as i32 })
}

static PENDING_SIGNAL: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_signal(sig: libc::c_int) {
    // Only an atomic store: async-signal-safe.
    let _ = PENDING_SIGNAL.compare_exchange(0, sig, Ordering::SeqCst, Ordering::SeqCst);
}

/// Installs a handler for SIGINT, SIGTERM and SIGHUP that only records the
/// signal. No SA_RESTART: blocking calls return EINTR so the phase loops see
/// the request promptly and the cleanup guards can run.
pub fn install_interrupt_handlers() -> io::Result<()> {
    for sig in [Signal::INT, Signal::TERM, Signal::HUP].map(|s| s.0) {
        // SAFETY: sigaction is plain old data; zero is a valid initial value.
        let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
        action.sa_sigaction = on_signal as *const () as libc::sighandler_t;
        action.sa_flags = 0;
        // SAFETY: action.sa_mask is a valid sigset_t to initialise.
        unsafe { libc::sigemptyset(&mut action.sa_mask) };
        // SAFETY: action is fully initialised; the old action is not wanted.
        let ret = unsafe { libc::sigaction(sig, &action, std::ptr::null_mut()) };
        check(ret as libc::c_long, "sigaction", &format!("signal {sig}"))?;
    }
    Ok(())
}

/// The first SIGINT/SIGTERM/SIGHUP received, if any.
pub fn pending_signal() -> Option<Signal> {
    match PENDING_SIGNAL.load(Ordering::SeqCst) {
        0 => None,
        s => Some(Signal(s)),
    }
}

/// kill(2), used to stop a child we started (mkfs) when interrupted.
pub fn kill(pid: Pid, sig: Signal) -> io::Result<()> {
    // SAFETY: kill takes no pointers.
    let ret = unsafe { libc::kill(pid.0, sig.0) };
    check(ret as libc::c_long, "kill", &format!("pid {pid}")).map(|_| ())
}

/// How a child that ran one kernel operation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildEnd {
    /// The operation returned: 0, or the errno it failed with.
    Returned(i32),
    /// The kernel (or we, for a test) killed it with this signal.
    Killed(Signal),
    /// Still running at the deadline: stuck in the kernel. Left alone.
    Hung,
}

/// Runs `op` in a forked child and waits up to `timeout`, refusing to fork
/// unless this process has exactly one thread (`threads`, from
/// /proc/self/status). The kernel may kill the task that trips an oops (e.g.
/// in close_ctree at unmount); doing the operation in a child keeps the
/// judge alive. `op` returns 0 or an errno.
pub fn run_in_child_single_threaded(
    threads: Option<u64>,
    timeout: std::time::Duration,
    crash_first: bool,
    op: impl FnOnce() -> i32,
) -> io::Result<ChildEnd> {
    single_threaded(threads, "a child")?;
    // SAFETY: the process has one thread (checked just above from the
    // kernel's own count), so no lock can be held by a thread that does not
    // exist in the child.
    unsafe { run_in_child(timeout, crash_first, op) }
}

/// Refuses to fork unless this process has exactly one thread (`threads`,
/// from /proc/self/status): see `fork`'s # Safety. `child` names who would
/// hang, in the message.
fn single_threaded(threads: Option<u64>, child: &str) -> io::Result<()> {
    if threads == Some(1) {
        return Ok(());
    }
    let n = threads.map(|n| n.to_string()).unwrap_or_else(|| "an unknown number of".into());
    Err(io::Error::other(format!(
        "fork refused: this process has {n} threads, and {child} could hang on a lock another one holds (a bug of ours, not the kernel's: please report it)"
    )))
}

/// fork(2); `what` names the child in an error.
///
/// # Safety
/// No other thread may exist in this process: after fork the child has only
/// the calling thread, and a lock (malloc's, stdio's, a Mutex) held by any
/// other thread at the fork stays locked forever in the child, which would
/// then hang. The child must not return into the caller's frames: it runs
/// its work, then `_exit`s.
unsafe fn fork(what: &str) -> io::Result<libc::pid_t> {
    // SAFETY: the caller's (# Safety).
    let pid = unsafe { libc::fork() };
    check(pid as libc::c_long, "fork", what).map(|_| pid)
}

/// Runs `op` in a forked child and waits up to `timeout`.
///
/// # Safety
/// That of `fork`: no other thread may exist in this process (a child stuck
/// on a lock it inherited would be judged "hung in the kernel").
unsafe fn run_in_child(timeout: std::time::Duration, crash_first: bool, op: impl FnOnce() -> i32) -> io::Result<ChildEnd> {
    // SAFETY: the caller guarantees a single thread (# Safety); the child
    // only runs `op` and _exit, so it never returns into our stack frames.
    let pid = unsafe { fork("kernel operation child")? };
    if pid == 0 {
        if crash_first {
            // Rust's runtime catches SIGSEGV (stack overflow guard) and
            // returns for a raised one: restore the default action first.
            // SAFETY: plain signal disposition change and raise in the child.
            unsafe {
                libc::signal(Signal::SEGV.0, libc::SIG_DFL);
                libc::raise(Signal::SEGV.0);
            }
        }
        let code = op();
        // SAFETY: _exit ends the child without running the parent's atexit
        // handlers or unwinding into shared state.
        unsafe { libc::_exit(code.clamp(0, 255)) };
    }
    wait_until(Pid(pid), std::time::Instant::now() + timeout)
}

/// A long-lived helper process (the hunt's sync and unlink loops): forked
/// before any thread exists, so that a helper stuck forever in the kernel
/// can be abandoned (SIGKILL, never joined) and the judge still prints its
/// verdict. A thread in that state could never be joined.
#[derive(Debug)]
pub struct Helper {
    pub pid: Pid,
}

/// Forks a helper that runs `op` until it returns (its exit status) or is
/// killed. Refused unless this process has exactly one thread (`threads`,
/// from /proc/self/status): see `fork`'s # Safety. The helper dies
/// with its parent (PR_SET_PDEATHSIG), unless the kernel holds it.
pub fn spawn_helper(threads: Option<u64>, op: impl FnOnce() -> i32) -> io::Result<Helper> {
    single_threaded(threads, "a helper")?;
    // SAFETY: one thread (checked just above from the kernel's own count):
    // no lock can be held by a thread missing in the child. The child runs
    // `op` and _exits, never returning into our frames.
    let pid = unsafe { fork("helper process")? };
    if pid == 0 {
        // SAFETY: prctl with integer arguments; _exit ends the child without
        // running the parent's atexit handlers.
        unsafe {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0);
            let code = op();
            libc::_exit(code.clamp(0, 255));
        }
    }
    Ok(Helper { pid: Pid(pid) })
}

impl Helper {
    /// SIGKILL; a helper inside the kernel dies when it gets back to user
    /// space, which a wedged kernel may never let it do.
    pub fn kill(&self) -> io::Result<()> {
        kill(self.pid, Signal::KILL)
    }

    /// Waits up to `timeout` for the helper to end; `Hung` when it is still
    /// there (stuck in the kernel): it is then left alone.
    pub fn reap(&self, timeout: std::time::Duration) -> io::Result<ChildEnd> {
        wait_until(self.pid, std::time::Instant::now() + timeout)
    }
}

fn wait_until(pid: Pid, deadline: std::time::Instant) -> io::Result<ChildEnd> {
    let pid = pid.0;
    loop {
        let mut status: libc::c_int = 0;
        // SAFETY: status is a valid out pointer; pid is our child.
        let ret = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if ret == pid {
            if libc::WIFSIGNALED(status) {
                return Ok(ChildEnd::Killed(Signal(libc::WTERMSIG(status))));
            }
            return Ok(ChildEnd::Returned(libc::WEXITSTATUS(status)));
        }
        if ret == -1 {
            let errno = io::Error::last_os_error().raw_os_error().unwrap_or(0);
            if errno == libc::EINTR {
                continue;
            }
            return Err(super::error("waitpid", &format!("pid {pid}"), errno));
        }
        if std::time::Instant::now() >= deadline {
            return Ok(ChildEnd::Hung);
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn refuses_to_fork_with_more_than_one_thread() {
        for threads in [Some(2), Some(17), None] {
            let e = run_in_child_single_threaded(threads, Duration::from_secs(1), false, || 0).unwrap_err();
            assert!(e.to_string().starts_with("fork refused"), "{e}");
        }
    }

    /// In a test child: closes every descriptor above stderr. A child forked
    /// while another test (the mkfs loop test) holds a file on its mount open
    /// would keep that file open for as long as it lives, and that test's
    /// umount would fail with EBUSY.
    fn drop_inherited_files() {
        // SAFETY: close_range takes integers only (Linux 5.9+); an older
        // kernel returns ENOSYS and the child keeps its copies.
        unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) };
    }

    #[test]
    fn a_child_ends_as_returned_killed_or_hung() {
        // SAFETY: the test harness has other threads, but these children
        // only sleep (nanosleep) or return a constant, then _exit: they take
        // no lock and allocate nothing.
        unsafe {
            assert_eq!(run_in_child(Duration::from_secs(5), false, || libc::EBUSY).unwrap(), ChildEnd::Returned(libc::EBUSY));
            assert_eq!(run_in_child(Duration::from_secs(5), true, || 0).unwrap(), ChildEnd::Killed(Signal::SEGV));
            let hung = run_in_child(Duration::from_millis(100), false, || {
                drop_inherited_files();
                libc::sleep(3);
                0
            });
            assert_eq!(hung.unwrap(), ChildEnd::Hung);
        }
    }

    #[test]
    fn a_helper_is_refused_with_threads_and_can_be_abandoned_or_killed() {
        for threads in [Some(2), None] {
            let e = spawn_helper(threads, || 0).unwrap_err();
            assert!(e.to_string().starts_with("fork refused"), "{e}");
        }
        // Claiming one thread: this child only sleeps (nanosleep) and
        // _exits, taking no lock the harness's threads could hold.
        let h = spawn_helper(Some(1), || {
            drop_inherited_files();
            // SAFETY: sleep takes no pointers.
            unsafe { libc::sleep(30) };
            0
        })
        .unwrap();
        assert_eq!(h.reap(Duration::from_millis(100)).unwrap(), ChildEnd::Hung);
        h.kill().unwrap();
        assert_eq!(h.reap(Duration::from_secs(5)).unwrap(), ChildEnd::Killed(Signal::KILL));
        let quick = spawn_helper(Some(1), || 7).unwrap();
        assert_eq!(quick.reap(Duration::from_secs(5)).unwrap(), ChildEnd::Returned(7));
    }
}

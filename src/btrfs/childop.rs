//! Kernel operations that may get their task killed (an oops in
//! close_ctree() kills the task calling umount) run in a forked child with a
//! timeout, so the judge survives to print a verdict.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::kernel::host;
use crate::base::phase::Phase;
use crate::sys;
use crate::sys::process::{ChildEnd, Signal};

#[derive(Debug)]
pub enum OpError {
    /// The operation returned an error (the syscall, its target and the errno).
    Failed(io::Error),
    /// The kernel killed the child with this signal.
    Killed(Signal),
    /// No return within the timeout: stuck in the kernel.
    Hung,
}

impl OpError {
    /// The errno of a plain failure.
    pub fn errno(&self) -> Option<i32> {
        match self {
            OpError::Failed(e) => sys::errno_of(e),
            _ => None,
        }
    }
}

static CRASHED: AtomicBool = AtomicBool::new(false);

/// Runs `op` (the syscall `call` on `target`) in a child with `timeout`, for
/// `phase`. Refused (an error, no fork) unless this process has one thread.
/// `BRR_TEST_CRASH_IN=<phase>` makes that phase's first child raise SIGSEGV
/// before it calls into the kernel, as an oops would kill it.
pub fn in_child(
    phase: Phase,
    call: &'static str,
    target: &str,
    timeout: Duration,
    op: impl FnOnce() -> io::Result<()>,
) -> Result<(), OpError> {
    let crash = phase.crash_requested() && !CRASHED.swap(true, Ordering::SeqCst);
    let end = sys::process::run_in_child_single_threaded(host::thread_count_settled(), timeout, crash, || match op() {
        Ok(()) => 0,
        Err(e) => sys::errno_of(&e).unwrap_or(libc::EIO),
    })
    .map_err(OpError::Failed)?;
    outcome(end, call, target)
}

/// How the child ended, as the caller sees it: an errno that came back as
/// the exit status becomes the error the syscall would have given here.
fn outcome(end: ChildEnd, call: &'static str, target: &str) -> Result<(), OpError> {
    match end {
        ChildEnd::Returned(0) => Ok(()),
        ChildEnd::Returned(errno) => Err(OpError::Failed(sys::error(call, target, errno))),
        ChildEnd::Killed(sig) => Err(OpError::Killed(sig)),
        ChildEnd::Hung => Err(OpError::Hung),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_childs_errno_comes_back_with_the_syscall_and_target() {
        let e = outcome(ChildEnd::Returned(libc::EBUSY), "umount2", "/nowhere").unwrap_err();
        assert_eq!(e.errno(), Some(libc::EBUSY));
        let OpError::Failed(e) = e else { panic!() };
        assert_eq!(e.to_string(), "umount2 /nowhere: Device or resource busy (EBUSY)");
        assert!(outcome(ChildEnd::Returned(0), "x", "y").is_ok());
        assert!(matches!(outcome(ChildEnd::Killed(Signal::KILL), "x", "y"), Err(OpError::Killed(Signal::KILL))));
        assert!(matches!(outcome(ChildEnd::Hung, "x", "y"), Err(OpError::Hung)));
    }

    #[test]
    fn never_forks_from_a_multithreaded_process() {
        // The test harness runs this on a thread of its own: two at least.
        let r = in_child(Phase::Settle, "ioctl(BTRFS_IOC_SYNC)", "/m", Duration::from_secs(5), || Ok(()));
        let Err(OpError::Failed(e)) = r else { panic!("{r:?}") };
        assert!(e.to_string().contains("fork refused"), "{e}");
    }
}

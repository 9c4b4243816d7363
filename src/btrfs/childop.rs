//! Kernel operations that may get their task killed (an oops in
//! close_ctree() kills the task calling umount) run in a forked child with a
//! timeout, so the judge survives to print a verdict.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::sys;
use crate::sys::process::ChildEnd;

#[derive(Debug)]
pub enum OpError {
    /// The operation returned an error (context: the step and the errno).
    Failed(io::Error),
    /// The kernel killed the child with this signal.
    Killed(i32),
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

/// Test hook: `BRR_TEST_CRASH_IN=<step>` makes that step's first child raise
/// SIGSEGV before it calls into the kernel, as an oops would kill it. The
/// cleanup that follows runs normally.
fn crash_requested(step: &str) -> bool {
    std::env::var("BRR_TEST_CRASH_IN").is_ok_and(|s| s == step) && !CRASHED.swap(true, Ordering::SeqCst)
}

/// Runs `op` in a child with `timeout`. Call only while single-threaded.
pub fn in_child(step: &str, what: &str, timeout: Duration, op: impl FnOnce() -> io::Result<()>) -> Result<(), OpError> {
    let crash = crash_requested(step);
    let end = sys::process::run_in_child(timeout, crash, || match op() {
        Ok(()) => 0,
        Err(e) => sys::errno_of(&e).unwrap_or(libc::EIO),
    })
    .map_err(OpError::Failed)?;
    match end {
        ChildEnd::Returned(0) => Ok(()),
        ChildEnd::Returned(errno) => Err(OpError::Failed(sys::error_for(step, what, errno))),
        ChildEnd::Killed(sig) => Err(OpError::Killed(sig)),
        ChildEnd::Hung => Err(OpError::Hung),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_that_does_not_return_in_time_is_hung() {
        let r = in_child("test", "sleep", Duration::from_millis(100), || {
            std::thread::sleep(Duration::from_secs(3));
            Ok(())
        });
        assert!(matches!(r, Err(OpError::Hung)), "{r:?}");
    }

    #[test]
    fn a_childs_errno_comes_back_with_context() {
        let r = in_child("unmount", "/nowhere", Duration::from_secs(5), || Err(io::Error::from_raw_os_error(libc::EBUSY)));
        let e = r.unwrap_err();
        assert_eq!(e.errno(), Some(libc::EBUSY));
        let OpError::Failed(e) = e else { panic!() };
        assert_eq!(e.to_string(), "umount2 /nowhere: Device or resource busy (EBUSY)");
        assert!(in_child("settle", "/m", Duration::from_secs(5), || Ok(())).is_ok());
    }
}

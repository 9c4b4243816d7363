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

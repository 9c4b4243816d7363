//! Why a run stops early, and the plumbing that notices it: step errors,
//! signals (checked between steps and while sleeping), the test pauses.

use std::time::{Duration, Instant};

use crate::base::phase::Phase;
use crate::btrfs::Failure;
use crate::judge::verdict::Refusal;
use crate::sys::process::{pending_signal, Signal};

use super::preflight;

#[derive(Debug)]
pub enum Stop {
    Refused(Refusal),
    Setup(String),
    Interrupted(Signal),
    /// A kernel operation's child was killed or hung: `Facts::killed_in`
    /// says which. Evidence, not an error; the run ends.
    Killed,
}

impl From<preflight::Blocked> for Stop {
    fn from(b: preflight::Blocked) -> Stop {
        match b {
            preflight::Blocked::Refused(why) => Stop::Refused(Refusal::Unsafe(why)),
            preflight::Blocked::Unprivileged(why) => Stop::Refused(Refusal::Unprivileged(why)),
            preflight::Blocked::CannotTest(why) => Stop::Setup(why),
        }
    }
}

impl From<Failure> for Stop {
    fn from(f: Failure) -> Stop {
        match f {
            Failure::Failed(why) => Stop::Setup(why),
            Failure::Interrupted(sig) => Stop::Interrupted(sig),
        }
    }
}

impl From<std::io::Error> for Stop {
    fn from(e: std::io::Error) -> Stop {
        Stop::Setup(e.to_string())
    }
}

/// Adds the step's name to a system error.
pub(super) fn at<T>(step: &str, r: std::io::Result<T>) -> Result<T, Stop> {
    r.map_err(|e| Stop::Setup(format!("{step}: {e}")))
}

pub(super) fn check_signal() -> Result<(), Stop> {
    match pending_signal() {
        Some(sig) => Err(Stop::Interrupted(sig)),
        None => Ok(()),
    }
}

/// Sleeps in small slices so a signal is noticed promptly.
pub(super) fn nap(d: Duration) -> Result<(), Stop> {
    let end = Instant::now() + d;
    while Instant::now() < end {
        check_signal()?;
        std::thread::sleep((end - Instant::now()).min(Duration::from_millis(20)));
    }
    check_signal()
}

/// A test pause (BRR_TEST_PAUSE): up to a minute, ended early by a signal.
fn hold(at: &str) -> Result<(), Stop> {
    eprintln!("btrfs-reclaim-repro: pausing at {at} (BRR_TEST_PAUSE)");
    nap(Duration::from_secs(60))
}

/// Test hook: holds the run before `phase` of the pass named `pass`
/// (`BRR_TEST_PAUSE=<phase>`), still noticing signals.
pub(super) fn pause_before(phase: Phase, pass: &str) -> Result<(), Stop> {
    match phase.pause_requested(pass) {
        Some(at) => hold(&at),
        None => Ok(()),
    }
}

/// Test hook: holds the run at `point` inside `phase`
/// (`BRR_TEST_PAUSE=<phase>.<point>`), still noticing signals.
pub(super) fn pause_inside(phase: Phase, pass: &str, point: &str) -> Result<(), Stop> {
    match phase.pause_inside_requested(pass, point) {
        Some(at) => hold(&at),
        None => Ok(()),
    }
}

pub(super) fn ignore_eintr(r: std::io::Result<()>) -> std::io::Result<()> {
    match r {
        Err(e) if crate::sys::errno_of(&e) == Some(libc::EINTR) => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_errors_name_the_step_and_eintr_is_no_error() {
        let e = at::<()>("mkdir", Err(std::io::Error::from_raw_os_error(libc::ENOSPC))).unwrap_err();
        assert!(matches!(&e, Stop::Setup(s) if s.starts_with("mkdir: ")), "{e:?}");
        assert!(ignore_eintr(Err(std::io::Error::from_raw_os_error(libc::EINTR))).is_ok());
        assert!(ignore_eintr(Err(std::io::Error::from_raw_os_error(libc::EIO))).is_err());
        assert!(nap(Duration::from_millis(1)).is_ok());
        assert!(matches!(Stop::from(Failure::Failed("mkfs: x".into())), Stop::Setup(s) if s == "mkfs: x"));
        assert!(matches!(Stop::from(Failure::Interrupted(Signal(2))), Stop::Interrupted(Signal(2))));
    }
}

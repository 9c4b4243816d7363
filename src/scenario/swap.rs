//! `--trigger swapfile`: one pass on the injected layout (relocation itself
//! would succeed) with an active swapfile made first, so it sits in the
//! first data block groups. inc_block_group_ro() refuses a group holding
//! one (bg->swap_extents: ETXTBSY) every time reclaim tries it. A fixed
//! kernel retries it once per cleaner run; with 7e2718099438 and without
//! 4eb4e85c4f81, btrfs_reclaim_bgs_work() re-adds it at `next:` and never
//! leaves its loop. Swap is host-wide while the pass runs, and it is turned
//! off on every way out of the pass.

use std::path::PathBuf;
use std::time::Duration;

use crate::base::phase::{Phase, SettleEnd};
use crate::base::size::human;
use crate::btrfs::childop::{in_child, OpError};
use crate::btrfs::format::Mkfs;
use crate::btrfs::fs::Fs;
use crate::btrfs::swapfile::{self, SWAPFILE_BYTES};
use crate::device::Target;
use crate::judge::report::SwapoffEnd;
use crate::kernel::kmsg::reclaim_loop;
use crate::sys::fs::Extent;

use super::run::{PassKind, Run};
use super::stop::{at, Stop};

/// Every other filler goes, as in the single pass: the swapfile's group
/// drops under the threshold in one extent free
/// (should_reclaim_block_group() wants old >= threshold > new).
const FRAGMENT_NTH: usize = 2;

/// The swapfile pass fills at most this much of the data space: the
/// swapfile's group and about one more cross the threshold, so the worker
/// relocates one group (what shows it ran) before it reaches the
/// swapfile's, instead of a group's worth of seconds each for eight.
pub(super) const FILL_PERCENT: u32 = 30;

/// The active swapfile. Dropped still on (a panic unwinding: `swapoff`
/// turns it off on every other way out), it turns swap off before the
/// mount guard unmounts: an active swapfile keeps the mount busy.
pub(super) struct Swap {
    path: PathBuf,
    extents: Vec<Extent>,
    on: Option<Duration>,
}

impl Swap {
    /// swapoff in a child with `timeout`. A Ctrl-C reaches the child too,
    /// and try_to_unuse() then gives up with EINTR: that is no failure,
    /// swapoff again.
    fn off(&self, timeout: Duration) -> Result<(), OpError> {
        let shown = self.path.display().to_string();
        let mut r = Ok(());
        for _ in 0..3 {
            r = in_child(Phase::Swapoff, "swapoff", &shown, timeout, || crate::sys::swap::swapoff(&self.path));
            if !matches!(&r, Err(e) if e.errno() == Some(libc::EINTR)) {
                break;
            }
        }
        r
    }
}

impl Drop for Swap {
    fn drop(&mut self) {
        if let Some(timeout) = self.on.take() {
            let _ = self.off(timeout);
        }
    }
}

impl Run<'_> {
    /// The swapfile pass, swapoff and unmount included.
    pub(super) fn swapfile_pass(&mut self, target: &Target, mkfs: &Mkfs) -> Result<(), Stop> {
        self.in_pass(PassKind::Swapfile, |run| run.swap_steps(target, mkfs))
    }

    fn swap_steps(&mut self, target: &Target, mkfs: &Mkfs) -> Result<(), Stop> {
        let (mounted, fs) = self.fresh_filesystem(target, mkfs)?;
        let mut swap = self.swapon()?;
        // Whatever ended the steps (an error, a signal), swap goes off
        // before the unmount: an active swapfile keeps the mount busy.
        let steps = self.swap_reclaim(&fs, &swap);
        let off = self.swapoff(&mut swap);
        drop(fs);
        if !off {
            mounted.keep();
            return steps;
        }
        steps?;
        self.unmount(mounted, target, true)
    }

    /// The swapfile first (the first data block groups), then swapon.
    fn swapon(&mut self) -> Result<Swap, Stop> {
        let path = self.cfg.mnt.join("swapfile");
        let uuid = swapfile::uuid(&mut self.rng);
        self.phase(Phase::Swapon, |r| {
            let extents = at("swapfile", swapfile::create(&path, SWAPFILE_BYTES, uuid))?;
            at("swapfile", crate::sys::swap::swapon(&path, 0))?;
            r.progress.say(&format!(
                "swapon: {} swapfile {} active (host-wide swap until swapoff), {} extent(s) from {}",
                human(SWAPFILE_BYTES),
                path.display(),
                extents.len(),
                extents.first().map(|e| e.physical).unwrap_or(0)
            ));
            let timeout = Duration::from_secs(Phase::Swapoff.op_timeout_secs(r.cfg.op_timeout_secs));
            Ok(Swap { path, extents, on: Some(timeout) })
        })
    }

    /// Fill, knobs, fragment, trigger, settle; then whether the swapfile's
    /// group was refused and let go (a fixed kernel).
    fn swap_reclaim(&mut self, fs: &Fs, swap: &Swap) -> Result<(), Stop> {
        let files = self.fill(fs)?;
        self.knobs(fs)?;
        // From before the fragment: the commit that drops the swapfile's
        // group under the threshold queues it (btrfs_add_reclaim_block_group).
        self.start_loop_watch();
        self.fragment(fs, &files, FRAGMENT_NTH)?;
        let groups = at("data block groups", fs.data_block_groups())?;
        let held = swapfile::groups_holding(&groups, &swap.extents);
        self.progress.say(&format!(
            "fragment: the swapfile is in block group(s) {}",
            held.iter().map(u64::to_string).collect::<Vec<_>>().join(", ")
        ));
        let fired = self.trigger(fs)?;
        if let Some(base) = fired {
            self.settle(fs, base)?;
        }
        self.refused_and_let_go(fs, &held)
    }

    /// A fixed kernel: the trace shows a swapfile group queued and never
    /// attempted, the worker went idle, and the group is still there.
    fn refused_and_let_go(&mut self, fs: &Fs, held: &[u64]) -> Result<(), Stop> {
        let Some(t) = self.loop_trace.take() else { return Ok(()) };
        if self.facts.reclaim_loop.is_some() {
            // Disabling the events under a worker that never schedules
            // could wait on it too; left on, the buffer just wraps.
            std::mem::forget(t);
            return Ok(());
        }
        let trace = at("tracefs", t.read())?;
        drop(t);
        let idle = !matches!(self.settled, None | Some((SettleEnd::Deadline | SettleEnd::ReclaimLoop, _)));
        let groups = at("data block groups", fs.data_block_groups())?;
        let still: Vec<u64> = reclaim_loop::queued_never_attempted(&trace, &fs.fsid, held)
            .into_iter()
            .filter(|g| groups.iter().any(|(s, _)| s == g))
            .collect();
        if let (true, Some(bg)) = (idle, still.first()) {
            self.progress.say(&format!(
                "settle: block group {bg} (swapfile) was queued for reclaim, refused and let go: the worker went idle"
            ));
            self.facts.swap_refused = Some(*bg);
        }
        Ok(())
    }

    /// swapoff in a child with a timeout: true once swap is off. A swapoff
    /// that does not return leaves the filesystem mounted (the swapfile
    /// keeps it busy) and says so.
    fn swapoff(&mut self, swap: &mut Swap) -> bool {
        // Tried once here, whatever comes of it: a swapoff that did not
        // return is not tried again.
        let Some(timeout) = swap.on.take() else { return true };
        let secs = timeout.as_secs();
        let shown = swap.path.display().to_string();
        let mnt = self.cfg.mnt.display().to_string();
        // A signal before the phase began: swapoff all the same.
        let r = self.phase(Phase::Swapoff, |_| Ok(swap.off(timeout))).unwrap_or_else(|_| swap.off(timeout));
        let end = match r {
            Ok(()) => {
                self.report.swapoff = Some(SwapoffEnd::Off);
                self.progress.say(&format!("swapoff: {shown}"));
                return true;
            }
            Err(e) => e,
        };
        let looping = self.facts.reclaim_loop.is_some();
        self.report.swapoff = Some(match end {
            OpError::Hung => SwapoffEnd::Hung,
            OpError::Killed(_) => SwapoffEnd::Killed,
            OpError::Failed(_) => SwapoffEnd::Failed,
        });
        let said = match end {
            OpError::Hung if looping => format!("swapoff did not return in {secs} s: the reclaim worker still loops; reboot this machine"),
            OpError::Hung => {
                self.facts.killed_in.get_or_insert((Phase::Swapoff, None));
                format!("swapoff did not return in {secs} s; reboot this machine")
            }
            OpError::Killed(sig) => {
                self.facts.killed_in.get_or_insert((Phase::Swapoff, Some(sig)));
                format!("swapoff: the kernel killed the task ({}); reboot this machine", sig.name())
            }
            OpError::Failed(e) => format!("swapoff failed: {e}; turn it off by hand (swapoff {shown})"),
        };
        self.progress.say(&said);
        self.report.notes.push(said);
        self.report.notes.push(format!("left mounted on {mnt}: {shown} is still active swap, so it was not unmounted"));
        false
    }
}

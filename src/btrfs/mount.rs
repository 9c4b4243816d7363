//! Mounting the test filesystem, and the guard that always unmounts it.

use std::cell::RefCell;
use std::io;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use crate::btrfs::childop::{in_child, OpError};
use crate::base::mountinfo;
use crate::base::phase::Phase;
use crate::sys;

/// What cleanup on an error or interrupt path had to do that a reader of
/// the verdict must know (a lazy unmount): the run hands one to each guard
/// and collects it into its notes.
#[derive(Debug, Clone, Default)]
pub struct CleanupNotes(Rc<RefCell<Vec<String>>>);

impl CleanupNotes {
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.borrow_mut())
    }
}

/// A filesystem we mounted. Dropping it unmounts it (unless disarmed with
/// `keep`), with a note in `notes` where that took the last resort.
#[derive(Debug)]
pub struct Mounted {
    pub mnt: PathBuf,
    armed: bool,
    /// How long one umount2 may take before we call it hung.
    op_timeout: Duration,
    notes: CleanupNotes,
}

impl Mounted {
    pub fn mount(dev: &Path, mnt: &Path, data: &str, op_timeout: Duration, notes: &CleanupNotes) -> io::Result<Mounted> {
        sys::fs::mount_btrfs(dev, mnt, libc::MS_NOATIME, data)?;
        Ok(Mounted { mnt: mnt.to_path_buf(), armed: true, op_timeout, notes: notes.clone() })
    }

    /// Leave it mounted (--keep-mounted).
    pub fn keep(mut self) {
        self.armed = false;
    }

    /// Unmounts, retrying on EBUSY after a sync; lazy unmount only as the
    /// last resort. Returns a note when the last resort was needed.
    pub fn unmount(mut self) -> Result<Option<String>, OpError> {
        self.armed = false;
        unmount_path(&self.mnt, self.op_timeout)
    }
}

/// Unmounts in a child (see childop), retrying on EBUSY after a sync; lazy
/// unmount only as the last resort, with a note saying so.
pub fn unmount_path(mnt: &Path, op_timeout: Duration) -> Result<Option<String>, OpError> {
    let what = mnt.display().to_string();
    let mut last = None;
    for attempt in 0..20 {
        match in_child(Phase::Unmount, "umount2", &what, op_timeout, || sys::fs::umount(mnt, false)) {
            Ok(()) => return Ok(None),
            Err(e) if e.errno() == Some(libc::EBUSY) => {
                last = Some(e);
                if let Ok(f) = std::fs::File::open(mnt) {
                    let _ = sys::fs::syncfs(&f, mnt);
                }
                std::thread::sleep(Duration::from_millis(50 * (attempt + 1).min(5)));
            }
            Err(e) if e.errno() == Some(libc::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
    sys::fs::umount(mnt, true).map_err(OpError::Failed)?;
    let why = match last {
        Some(OpError::Failed(e)) => e.to_string(),
        _ => "EBUSY".into(),
    };
    Ok(Some(format!("{what} stayed busy ({why}); lazily unmounted (MNT_DETACH): it goes away when its last user does")))
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        match unmount_path(&self.mnt, self.op_timeout) {
            Ok(None) => {}
            Ok(Some(note)) => {
                eprintln!("btrfs-reclaim-repro: {note}");
                self.notes.0.borrow_mut().push(note);
            }
            Err(OpError::Failed(e)) => eprintln!(
                "btrfs-reclaim-repro: could not unmount {}: {e} (run: umount {})",
                self.mnt.display(),
                self.mnt.display()
            ),
            Err(OpError::Killed(sig)) => eprintln!(
                "btrfs-reclaim-repro: the kernel killed the unmount of {} ({}): the system may need a reboot",
                self.mnt.display(),
                sig.name()
            ),
            Err(OpError::Hung) => eprintln!(
                "btrfs-reclaim-repro: unmounting {} hung in the kernel: the system may need a reboot",
                self.mnt.display()
            ),
        }
    }
}

/// The mount exactly at `mnt` (the top one if stacked), from mountinfo.
fn mount_at(mnt: &Path) -> Option<mountinfo::Mount> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let canonical = std::fs::canonicalize(mnt).ok()?;
    mountinfo::find_by_mount_point(&mountinfo::parse(&text), &canonical.to_string_lossy()).cloned()
}

/// The space cache the kernel really uses on `mnt`, from mountinfo.
pub fn active_space_cache(mnt: &Path) -> Option<&'static str> {
    let m = mount_at(mnt)?;
    if m.fstype != "btrfs" {
        return None;
    }
    Some(mountinfo::space_cache(&m))
}

/// Is anything mounted exactly at `mnt`?
pub fn is_mount_point(mnt: &Path) -> bool {
    mount_at(mnt).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleanup_notes_reach_the_run_through_every_guard_handle() {
        let run = CleanupNotes::default();
        let guard = run.clone();
        guard.0.borrow_mut().push("lazily unmounted".into());
        assert_eq!(run.take(), vec!["lazily unmounted".to_string()]);
        assert!(run.take().is_empty() && guard.take().is_empty());
        // Two runs (tests in one process) share nothing.
        let other = CleanupNotes::default();
        guard.0.borrow_mut().push("x".into());
        assert!(other.take().is_empty());
    }
}

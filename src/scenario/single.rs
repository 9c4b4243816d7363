//! The single pass, top to bottom like the bug report's list (corrected:
//! v1 cache, knobs after the fill): fresh fs, fill, knobs, fragment,
//! trigger, settle, unmount.

use std::path::Path;

use crate::device::Target;

use super::run::{Run, Stop};

/// Every other file goes: each data block group ends about half used,
/// under dynamic reclaim's threshold.
const FRAGMENT_NTH: usize = 2;

pub(super) fn pass(run: &mut Run, target: &Target, mkfs_path: &Path) -> Result<(), Stop> {
    let (mounted, fs) = run.fresh_filesystem(target, mkfs_path)?;
    let files = run.fill(&fs)?;
    run.knobs(&fs)?;
    run.fragment(&fs, &files, FRAGMENT_NTH)?;
    if let Some(base) = run.trigger(&fs)? {
        run.settle(&fs, base)?;
    }
    drop(fs);
    run.unmount(mounted, target)
}

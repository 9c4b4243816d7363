//! The single pass, top to bottom like the bug report's list (corrected:
//! v1 cache, knobs after the fill): fresh fs, fill, knobs, fragment,
//! trigger, settle, unmount. `--enospc auto` runs it laid out for the
//! injected ENOSPC and, where that finds no relocation failure, once more
//! laid out for a real one.


use super::config::Enospc;
use crate::btrfs::format::Mkfs;
use crate::device::Target;

use super::run::{PassKind, Run};
use super::stop::Stop;

/// Every other file goes: each data block group ends about half used,
/// under dynamic reclaim's threshold.
const FRAGMENT_NTH: usize = 2;

/// The passes of one iteration, as --enospc asks.
pub(super) fn passes(run: &mut Run, target: &Target, mkfs: &Mkfs) -> Result<(), Stop> {
    let cfg = run.cfg;
    if cfg.trigger == super::config::Trigger::Swapfile {
        return run.swapfile_pass(target, mkfs);
    }
    match cfg.enospc {
        Enospc::Injected => pass(run, target, mkfs, PassKind::Injected, false).map(drop),
        Enospc::Natural => pass(run, target, mkfs, PassKind::Natural, false).map(drop),
        // The injection site needs a v1 cache inode and the natural recipe
        // the v1 cache: with v2 there is one pass, which says why.
        Enospc::Auto if !cfg.space_cache_v1 => pass(run, target, mkfs, PassKind::Injected, false).map(drop),
        Enospc::Auto => {
            if pass(run, target, mkfs, PassKind::Injected, true)? {
                run.progress.say("auto: reclaim relocated without a failure (no injection in this kernel): a natural pass follows");
                pass(run, target, mkfs, PassKind::Natural, false)?;
            }
            Ok(())
        }
    }
}

/// One pass on a fresh filesystem. With `may_follow`, a pass in which
/// reclaim ran but no relocation failed is not the last: it is unmounted
/// (and judged) even with --keep-mounted, and `Ok(true)` asks for the next.
fn pass(run: &mut Run, target: &Target, mkfs: &Mkfs, kind: PassKind, may_follow: bool) -> Result<bool, Stop> {
    run.in_pass(kind, |run| steps(run, target, mkfs, may_follow))
}

fn steps(run: &mut Run, target: &Target, mkfs: &Mkfs, may_follow: bool) -> Result<bool, Stop> {
    let (mounted, fs) = run.fresh_filesystem(target, mkfs)?;
    let files = run.fill(&fs)?;
    run.knobs(&fs)?;
    run.fragment(&fs, &files, FRAGMENT_NTH)?;
    let fired = run.trigger(&fs)?;
    let reclaimed = fired.is_some();
    if let Some(base) = fired {
        run.settle(&fs, base)?;
    }
    let follow = may_follow && reclaimed && !run.failure_path_reached() && !run.evidence_seen();
    drop(fs);
    run.unmount(mounted, target, !follow)?;
    Ok(follow)
}

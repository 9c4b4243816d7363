//! What a run is asked to do: the configuration the command line validated,
//! and which relocation failure the run drives reclaim into.

use std::path::PathBuf;

use crate::btrfs::fill::FillMode;
use crate::btrfs::reclaim::Reclaim;

/// --enospc; the report names it, so it lives with the passes it asks for.
pub use crate::base::phase::Enospc;
/// --trigger; the report names it too.
pub use crate::base::phase::Trigger;

/// What one invocation asks for, validated by the command line before
/// anything touches the device.
#[derive(Debug, Clone)]
pub struct Config {
    pub dev: PathBuf,
    pub mnt: PathBuf,
    pub fill_percent: u32,
    pub fill_mode: FillMode,
    /// true: v1 free space cache (the default)
    pub space_cache_v1: bool,
    pub timeout_secs: u64,
    pub seed: u64,
    pub json: bool,
    /// --ktap: KTAP on stdout, kselftest exit codes.
    pub ktap: bool,
    pub log: Option<PathBuf>,
    pub keep_mounted: bool,
    pub create_size: Option<u64>,
    pub force: bool,
    /// Some(seconds) in stress mode.
    pub stress_secs: Option<u64>,
    pub workers: u32,
    pub iterations: u32,
    pub until_reproduced: bool,
    pub op_timeout_secs: u64,
    /// --enospc: injected, natural (a real ENOSPC from starved metadata),
    /// or auto (both, as the kernel needs).
    pub enospc: Enospc,
    /// --mkfs external: mkfs.btrfs instead of the built-in mkfs.
    pub external_mkfs: bool,
    /// --check: preflight only.
    pub check_only: bool,
    /// --reclaim: the knobs written after the fill. With --stress, anything
    /// but periodic runs the retry-list hunt (scenario/hunt.rs).
    pub reclaim: Reclaim,
    /// --trigger swapfile: one pass with an active swapfile in a reclaimed
    /// group instead of the --enospc passes.
    pub trigger: Trigger,
}

impl Config {
    /// The retry-list hunt instead of the churn (`hunts`).
    pub fn hunt(&self) -> bool {
        hunts(self.stress_secs, self.reclaim)
    }

    /// The options as a person would type them, for the log header.
    pub fn describe(&self) -> String {
        format!(
            "dev={} mnt={} fill={}% fill-mode={} space-cache={} reclaim={} timeout={}s seed={}{}{}{}{}{}{}{}",
            self.dev.display(),
            self.mnt.display(),
            self.fill_percent,
            self.fill_mode.name(),
            if self.space_cache_v1 { "v1" } else { "v2" },
            self.reclaim.name(),
            self.timeout_secs,
            self.seed,
            if self.keep_mounted { " keep-mounted" } else { "" },
            if self.force { " force" } else { "" },
            self.stress_secs.map(|s| format!(" stress={s}s workers={}", self.workers)).unwrap_or_default(),
            if self.iterations > 1 { format!(" iterations={}", self.iterations) } else { String::new() },
            if self.external_mkfs { " mkfs=external" } else { "" },
            if self.enospc == Enospc::Auto { String::new() } else { format!(" enospc={}", self.enospc.name()) },
            if self.trigger == Trigger::Knobs { String::new() } else { format!(" trigger={}", self.trigger.name()) },
        )
    }
}

/// --stress with a reclaim setting that keeps periodic reclaim off: the
/// retry-list hunt instead of the churn.
pub fn hunts(stress_secs: Option<u64>, reclaim: Reclaim) -> bool {
    stress_secs.is_some() && reclaim != Reclaim::Periodic
}

#[cfg(test)]
impl Config {
    /// The defaults the command line gives `dev` and `mnt`.
    pub fn example(dev: &str, mnt: &str) -> Config {
        Config {
            dev: PathBuf::from(dev),
            mnt: PathBuf::from(mnt),
            fill_percent: 90,
            fill_mode: FillMode::Fallocate,
            space_cache_v1: true,
            timeout_secs: 120,
            seed: 1,
            json: false,
            ktap: false,
            log: None,
            keep_mounted: false,
            create_size: None,
            force: false,
            stress_secs: None,
            workers: 4,
            iterations: 1,
            until_reproduced: false,
            op_timeout_secs: 60,
            enospc: Enospc::Auto,
            external_mkfs: false,
            check_only: false,
            reclaim: Reclaim::Dynamic,
            trigger: Trigger::Knobs,
        }
    }
}

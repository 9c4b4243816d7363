//! The named choices: --mkfs, --fill-mode, --space-cache, and --trigger
//! (the knobs' own passes, the default, or the swapfile pass) with what the
//! swapfile pass cannot go with.

use super::Args;
use crate::btrfs::fill::FillMode;
use crate::scenario::config::Trigger;

/// (external mkfs, --fill-mode, v1 space cache): the named choices.
pub(super) fn choices(a: &Args) -> Result<(bool, FillMode, bool), String> {
    let external_mkfs = match a.mkfs.as_str() {
        "builtin" => false,
        "external" => true,
        m => return Err(format!("bad --mkfs '{m}': use builtin or external")),
    };
    let fill_mode = match a.fill_mode.as_str() {
        "fallocate" => FillMode::Fallocate,
        "write" => FillMode::Write,
        m => return Err(format!("bad --fill-mode '{m}': use fallocate or write")),
    };
    let space_cache_v1 = match a.space_cache.as_str() {
        "v1" => true,
        "v2" => false,
        c => return Err(format!("bad --space-cache '{c}': use v1 or v2")),
    };
    Ok((external_mkfs, fill_mode, space_cache_v1))
}

/// --trigger, and what the swapfile pass cannot go with.
pub(super) fn trigger(a: &Args) -> Result<Trigger, String> {
    let trigger = match a.trigger.as_deref() {
        None | Some("knobs") => return Ok(Trigger::Knobs),
        Some("swapfile") => Trigger::Swapfile,
        Some(t) => return Err(format!("bad --trigger '{t}': use knobs or swapfile")),
    };
    if a.stress.is_some() {
        return Err("--trigger swapfile is a single pass (the churn and the hunt delete and relocate the swapfile's group): drop --stress".into());
    }
    if a.enospc != "auto" {
        return Err("--trigger swapfile runs its own pass (the active swapfile makes relocation fail, not ENOSPC): drop --enospc".into());
    }
    if a.keep_mounted {
        return Err("--trigger swapfile turns swap off before the end (host-wide swap): drop --keep-mounted".into());
    }
    Ok(trigger)
}

#[cfg(test)]
mod tests {
    use super::*;
    use argh::FromArgs;

    fn t(args: &[&str]) -> Result<Trigger, String> {
        trigger(&Args::from_args(&["brr"], &[args, &["d", "m"]].concat()).unwrap())
    }

    #[test]
    fn swapfile_is_opt_in_and_alone() {
        assert_eq!(t(&[]), Ok(Trigger::Knobs));
        assert_eq!(t(&["--trigger", "knobs"]), Ok(Trigger::Knobs));
        assert_eq!(t(&["--trigger", "swapfile"]), Ok(Trigger::Swapfile));
        assert_eq!(t(&["--trigger", "swap"]).unwrap_err(), "bad --trigger 'swap': use knobs or swapfile");
        assert!(t(&["--trigger", "swapfile", "--stress", "60"]).unwrap_err().contains("drop --stress"));
        assert!(t(&["--trigger", "swapfile", "--enospc", "natural"]).unwrap_err().contains("drop --enospc"));
        assert!(t(&["--trigger", "swapfile", "--keep-mounted"]).unwrap_err().contains("drop --keep-mounted"));
    }
}

//! Command line: argh parses, `config` validates and turns argv into the
//! `scenario::Config` a run follows. Every bad value
//! is refused with one line and exit 2, before anything touches the device.

use std::path::PathBuf;

use argh::FromArgs;

use crate::base::size::parse_size;
use crate::btrfs::reclaim::Reclaim;
use crate::judge::verdict::ExitCode;
use crate::scenario::config::{hunts, Config, Enospc};

mod choices;
use choices::{choices, trigger};

pub const EXAMPLES: &str = "\
Examples:
  single pass on a spare disk (everything on it is destroyed):
      btrfs-reclaim-repro /dev/vdb /mnt/test
  single pass on a 3 GiB image file (created, attached to a loop device):
      btrfs-reclaim-repro --size 3G /var/tmp/repro.img /mnt/test
  hunt the retry-list bug for 5 minutes (rounds on fresh filesystems):
      btrfs-reclaim-repro --stress 300 /dev/vdb /mnt/test
  churn stress: 4 churn workers and a balance worker racing periodic reclaim:
      btrfs-reclaim-repro --stress 300 --reclaim periodic /dev/vdb /mnt/test
  only the real-ENOSPC pass (the default adds it where no injection fired):
      btrfs-reclaim-repro --enospc natural /dev/vdb /mnt/test
  a kernel build, in a throwaway QEMU guest (any user, no device named):
      btrfs-reclaim-repro --vm arch/x86/boot/bzImage
  under git bisect (good 0, bad 1/3, skip 125), each step building and booting its kernel:
      git bisect run sh -c 'make olddefconfig && make -j$(nproc) bzImage || exit 125; btrfs-reclaim-repro --vm arch/x86/boot/bzImage'
  check first, touching nothing:
      btrfs-reclaim-repro --check /dev/vdb /mnt/test";

pub const EXIT_CODES: &str = "\
Exit codes: 0 NOT REPRODUCED (failure path exercised, kernel fine), 1 REPRODUCED,
  2 REFUSED (usage/safety), 3 SUSPECTED (overlapping puts), 125 INCONCLUSIVE
  (bisect skips), 128+N INTERRUPTED by signal N; with --vm a refusal on the
  host is 255 REFUSED (bisect aborts).
With --ktap (kselftest's codes, for kernel CI): 0 ok (NOT REPRODUCED),
  1 not ok (REPRODUCED, SUSPECTED, REFUSED; with --vm a refusal on the host
  too, not 255: kselftest has no abort), 4 skip (INCONCLUSIVE; not root),
  128+N INTERRUPTED. Never use --ktap under git bisect run: 4 reads as bad.
Output: progress on stderr; the verdict on stdout (--json: one JSON object;
--ktap: KTAP version 1, one test, the verdict as # lines; with --vm the host
prints the guest's).
The kernel log of the run goes to --log FILE (every /dev/kmsg record, with a
header: version, kernel, options, seed); the verdict quotes the evidence.";

#[derive(FromArgs, Debug)]
/// Reproduces the btrfs reclaim/relocation block group refcount bug: fresh btrfs
/// with the v1 space cache on <dev>, fill, enable periodic+dynamic reclaim,
/// fragment, trigger reclaim, unmount, and judge the kernel log.
pub struct Args {
    /// the block device, or an image file (attached through a loop device)
    #[argh(positional)]
    pub dev: String,
    /// the mount point (created if missing)
    #[argh(positional)]
    pub mnt: String,

    /// fill the data space to PCT percent before fragmenting (default 90;
    /// 80 with --stress; at most 30 with --trigger swapfile)
    #[argh(option)]
    pub fill: Option<u32>,
    /// fallocate (default: extents without data, fast) or write (real data)
    #[argh(option, default = "String::from(\"fallocate\")")]
    pub fill_mode: String,
    /// v1 (default; the injection site needs it) or v2 (the bug report's setup)
    #[argh(option, default = "String::from(\"v1\")")]
    pub space_cache: String,
    /// seconds to wait for reclaim to fire (default 60)
    #[argh(option, default = "60")]
    pub timeout: u64,
    /// seed for every random choice (default: random, printed)
    #[argh(option)]
    pub seed: Option<u64>,
    /// print the verdict as one JSON object on stdout
    #[argh(switch)]
    pub json: bool,
    /// print KTAP version 1 for kernel CI on stdout, with kselftest's exit
    /// codes (0 ok, 1 not ok, 4 skip; not for git bisect run)
    #[argh(switch)]
    pub ktap: bool,
    /// write every kernel log record of the run to FILE
    #[argh(option)]
    pub log: Option<String>,
    /// leave the filesystem mounted at the end (the unmount is then not judged)
    #[argh(switch)]
    pub keep_mounted: bool,
    /// create the image file with this size when <dev> does not exist (e.g. 3G)
    #[argh(option)]
    pub size: Option<String>,
    /// format <dev> even if it holds a filesystem or is too small
    #[argh(switch, short = 'f')]
    pub force: bool,
    /// stress mode for SECS seconds: the retry-list hunt (rounds on a fresh
    /// filesystem, see README); with --reclaim periodic or --workers, churn
    /// workers and a balance worker racing reclaim (the bug report's
    /// parallel test)
    #[argh(option)]
    pub stress: Option<u64>,
    /// churn workers in stress mode (default 4; implies --reclaim periodic:
    /// the churn stress)
    #[argh(option)]
    pub workers: Option<u32>,
    /// repeat the whole run on a fresh filesystem N times, stopping at the
    /// first evidence (default 1)
    #[argh(option, default = "1")]
    pub iterations: u32,
    /// stop at the first REPRODUCED or SUSPECTED evidence
    #[argh(switch)]
    pub until_reproduced: bool,
    /// auto (default: the injected ENOSPC where the kernel has the bug
    /// report's instrumentation, else a second pass with a real one),
    /// injected (instrumented kernels only) or natural (starve metadata so
    /// relocation fails with a real ENOSPC on any kernel)
    #[argh(option, default = "String::from(\"auto\")")]
    pub enospc: String,
    /// builtin (default: our own mkfs, no btrfs-progs needed) or external
    /// (mkfs.btrfs, for comparison)
    #[argh(option, default = "String::from(\"builtin\")")]
    pub mkfs: String,
    /// seconds one kernel operation (unmount, sync) may take before the run
    /// calls it hung (default 300: debug kernels are slow, not hung; 20 in
    /// the retry-list hunt)
    #[argh(option)]
    pub op_timeout: Option<u64>,
    /// which reclaim the knobs turn on after the fill: periodic (dynamic and
    /// periodic, the bug report's; the default), dynamic (dynamic alone) or
    /// threshold=N (a static bg_reclaim_threshold of N %; threshold=75 is
    /// the default of --stress, the retry-list hunt, and of --trigger
    /// swapfile)
    #[argh(option)]
    pub reclaim: Option<String>,
    /// knobs (default) or swapfile: an active swapfile, host-wide swap while
    /// the run lasts (with the endless loop swapoff never returns: use --vm)
    #[argh(option)]
    pub trigger: Option<String>,
    /// preflight only: check root, kernel, mkfs.btrfs, <dev> and <mnt>;
    /// writes nothing, mounts nothing (exit 0 go, 2 refused, 125 kernel
    /// cannot test the bug)
    #[argh(switch)]
    pub check: bool,
    /// print the version and exit
    #[argh(switch)]
    pub version: bool,
    /// boot KERNEL (an x86 bzImage or an arm64 Image) in a throwaway QEMU
    /// guest and run there, on a sparse disk in $TMPDIR (no <dev> <mnt>, no
    /// root); a refusal on the host exits 255 (1 with --ktap)
    #[argh(option)]
    pub vm: Option<String>,
    /// with --vm: auto (default: KVM where it really works, else TCG), kvm
    /// or tcg
    #[argh(option)]
    pub vm_accel: Option<String>,
    /// with --vm: seconds before the guest counts as hung and QEMU is
    /// killed (default 300, plus --stress SECS, per iteration)
    #[argh(option)]
    pub vm_timeout: Option<u64>,
    /// with --vm: write the guest's serial console to FILE
    #[argh(option)]
    pub vm_console: Option<String>,
    /// with --vm: guest memory in MiB (default 2048)
    #[argh(option)]
    pub vm_mem: Option<u32>,
    /// with --vm: more kernel command line arguments
    #[argh(option)]
    pub vm_append: Option<String>,
}

/// The validated configuration a run follows, or the one-line refusal.
/// The checks run in this order: the first refusal is the one printed.
pub fn config(a: Args) -> Result<Config, String> {
    let (fill, workers) = amounts(&a)?;
    // Before --enospc and --reclaim: with --trigger swapfile theirs would
    // name a fix (--reclaim periodic) that the swapfile pass then refuses.
    let trigger = trigger(&a)?;
    let enospc = enospc(&a)?;
    let reclaim = reclaim(&a, enospc)?;
    let op_timeout = op_timeout(&a, hunts(a.stress, reclaim))?;
    outputs(&a)?;
    let (external_mkfs, fill_mode, space_cache_v1) = choices(&a)?;
    if a.timeout == 0 || a.timeout > 24 * 3600 {
        return Err(format!("bad --timeout {}: give seconds from 1 to 86400", a.timeout));
    }
    let create_size = a.size.as_deref().map(parse_size).transpose().map_err(|e| format!("--size: {e}"))?;
    if a.dev.is_empty() || a.mnt.is_empty() {
        return Err("<dev> and <mnt> must not be empty".into());
    }
    Ok(Config {
        dev: PathBuf::from(a.dev),
        mnt: PathBuf::from(a.mnt),
        fill_percent: fill,
        fill_mode,
        space_cache_v1,
        timeout_secs: a.timeout,
        seed: a.seed.unwrap_or_else(|| fastrand::u64(..)),
        json: a.json,
        ktap: a.ktap,
        log: a.log.map(PathBuf::from),
        keep_mounted: a.keep_mounted,
        create_size,
        force: a.force,
        stress_secs: a.stress,
        workers,
        iterations: a.iterations,
        until_reproduced: a.until_reproduced,
        op_timeout_secs: op_timeout,
        enospc,
        external_mkfs,
        check_only: a.check,
        reclaim,
        trigger,
    })
}

/// --fill (80 % under --stress, else 90 %), --stress, --workers (4).
fn amounts(a: &Args) -> Result<(u32, u32), String> {
    let fill = a.fill.unwrap_or(if a.stress.is_some() { 80 } else { 90 });
    if fill == 0 || fill > 99 {
        return Err(format!("bad --fill {fill}: give a percentage from 1 to 99"));
    }
    if let Some(s) = a.stress {
        if s == 0 || s > 7 * 24 * 3600 {
            return Err(format!("bad --stress {s}: give seconds from 1 to 604800"));
        }
    }
    let workers = a.workers.unwrap_or(4);
    if workers == 0 || workers > 64 {
        return Err(format!("bad --workers {workers}: give 1 to 64"));
    }
    if a.workers.is_some() && a.stress.is_none() {
        return Err("--workers only applies with --stress SECS".into());
    }
    Ok((fill, workers))
}

/// --enospc, and what natural needs.
fn enospc(a: &Args) -> Result<Enospc, String> {
    let enospc = match a.enospc.as_str() {
        "auto" => Enospc::Auto,
        "injected" => Enospc::Injected,
        "natural" => Enospc::Natural,
        m => return Err(format!("bad --enospc '{m}': use auto, injected or natural")),
    };
    let natural_enospc = enospc == Enospc::Natural;
    if natural_enospc && a.space_cache != "v1" {
        return Err("--enospc natural needs --space-cache v1".into());
    }
    if natural_enospc && a.stress.is_some() {
        return Err("--enospc natural is a single-pass mode (drop --stress)".into());
    }
    Ok(enospc)
}

/// --reclaim, or its default for the mode, and what goes with it.
fn reclaim(a: &Args, enospc: Enospc) -> Result<Reclaim, String> {
    let reclaim = match a.reclaim.as_deref() {
        Some(r) => Reclaim::parse(r).ok_or_else(|| format!("bad --reclaim '{r}': use periodic, dynamic or threshold=N (N from 1 to 99)"))?,
        // --workers names the churn stress (the bug report's parallel
        // test), which runs with periodic reclaim.
        None if a.stress.is_some() && a.workers.is_some() => Reclaim::Periodic,
        None if a.stress.is_some() => Reclaim::HUNT_DEFAULT,
        // The swapfile's group must cross a threshold in one free: periodic
        // reclaim's sweep on 6.11+ may never queue it.
        None if a.trigger.as_deref() == Some("swapfile") => Reclaim::STATIC_DEFAULT,
        None => Reclaim::Periodic,
    };
    if enospc == Enospc::Natural && reclaim != Reclaim::Periodic {
        return Err("--enospc natural runs with --reclaim periodic only".into());
    }
    if hunts(a.stress, reclaim) && a.workers.is_some() {
        return Err("--workers applies to --reclaim periodic --stress (the hunt has fixed helpers)".into());
    }
    Ok(reclaim)
}

/// --op-timeout. The hunt expects a wedged kernel: a sync or unmount that
/// does not return within 20 s is evidence, not slowness.
fn op_timeout(a: &Args, hunt: bool) -> Result<u64, String> {
    let op_timeout = a.op_timeout.unwrap_or(if hunt { 20 } else { 300 });
    if op_timeout == 0 || op_timeout > 24 * 3600 {
        return Err(format!("bad --op-timeout {op_timeout}: give seconds from 1 to 86400"));
    }
    Ok(op_timeout)
}

/// What goes to stdout, and how many times.
fn outputs(a: &Args) -> Result<(), String> {
    if a.ktap && a.json {
        return Err("--ktap and --json both print on stdout: give one of them".into());
    }
    if a.ktap && a.check {
        return Err("--ktap reports a run, --check only a preflight: drop one of them".into());
    }
    if a.iterations == 0 {
        return Err("bad --iterations 0: give 1 or more".into());
    }
    Ok(())
}

/// Parses argv; `Err((code, text))` is a help/usage exit.
pub fn parse(argv: &[String]) -> Result<Args, (i32, String)> {
    let name = argv.first().map(|s| s.rsplit('/').next().unwrap_or(s)).unwrap_or("btrfs-reclaim-repro");
    let rest: Vec<&str> = argv.iter().skip(1).map(String::as_str).collect();
    let parsed = Args::from_args(&[name], &rest);
    if rest.contains(&"--vm") {
        return parse_vm(name, &rest, parsed);
    }
    // `--version` needs no <dev> <mnt>: parse it again with two stand-ins.
    if parsed.is_err() && rest.contains(&"--version") {
        if let Ok(a) = Args::from_args(&[name], &[&rest[..], &["_", "_"]].concat()) {
            return Ok(a);
        }
    }
    parsed.map_err(|early| match early.status {
        Ok(()) => (
            0,
            format!("btrfs-reclaim-repro [options] <dev> <mnt>\n\n{EXAMPLES}\n\n{EXIT_CODES}\n\n{}\n", early.output.trim_end()),
        ),
        // argh lists missing positionals one per line: the refusal is one line.
        Err(()) => (ExitCode::REFUSED, format!("{} (see --help)", early.output.split_whitespace().collect::<Vec<_>>().join(" "))),
    })
}

/// With --vm the guest's disk is /dev/vda: `<dev> <mnt>` are not given, so
/// argh sees two stand-ins; a device path the user gave is refused.
fn parse_vm(name: &str, rest: &[&str], plain: Result<Args, argh::EarlyExit>) -> Result<Args, (i32, String)> {
    let refuse = |what: &str| Err((ExitCode::VM_REFUSED, format!("{what} has no meaning with --vm (the guest's disk is a fresh sparse file): drop it")));
    if plain.is_ok() {
        return refuse("a device path");
    }
    if let Ok(a) = Args::from_args(&[name], &[rest, &["_", "_"]].concat()) {
        return Ok(a);
    }
    if Args::from_args(&[name], &[rest, &["_"]].concat()).is_ok() {
        return refuse("a device path");
    }
    plain.map_err(|early| match early.status {
        Ok(()) => (0, early.output),
        Err(()) => (ExitCode::VM_REFUSED, format!("{} (see --help)", early.output.split_whitespace().collect::<Vec<_>>().join(" "))),
    })
}

/// `--vm`: the vm options, and the guest's argv from `user` (argv without
/// the program name); every other option is checked as natively. A
/// refusal is one line; the caller exits 255 (with --ktap, a KTAP error
/// and 1).
pub fn vm_options(mut a: Args, user: &[String]) -> Result<crate::vm::Options, String> {
    use crate::judge::report::ktap::Test;
    use crate::vm::qemu::AccelAsk;
    let kernel = a.vm.take().unwrap_or_default();
    if a.keep_mounted {
        return Err("--keep-mounted has no meaning with --vm (the guest powers off after the pass): drop it".into());
    }
    let accel = match a.vm_accel.as_deref() {
        None | Some("auto") => AccelAsk::Auto,
        Some("kvm") => AccelAsk::Kvm,
        Some("tcg") => AccelAsk::Tcg,
        Some(x) => return Err(format!("bad --vm-accel '{x}': use auto, kvm or tcg")),
    };
    let mem_mib = a.vm_mem.unwrap_or(2048);
    if !(256..=65536).contains(&mem_mib) {
        return Err(format!("bad --vm-mem {mem_mib}: give MiB from 256 to 65536"));
    }
    let (vm_timeout, console, append) = (a.vm_timeout.take(), a.vm_console.take(), a.vm_append.take());
    let cfg = config(a)?;
    if cfg.external_mkfs {
        return Err("--mkfs external has no meaning with --vm (the guest has no mkfs.btrfs): drop it".into());
    }
    let per_iteration = 300 + cfg.stress_secs.unwrap_or(0);
    let timeout_secs = vm_timeout.unwrap_or(per_iteration.saturating_mul(cfg.iterations as u64));
    if timeout_secs == 0 {
        return Err("bad --vm-timeout 0: give seconds".into());
    }
    Ok(crate::vm::Options {
        kernel: PathBuf::from(kernel),
        accel,
        timeout_secs,
        console: console.map(PathBuf::from),
        mem_mib,
        append: append.unwrap_or_default(),
        json: cfg.json,
        ktap: cfg.ktap.then_some(if cfg.stress_secs.is_some() { Test::Stress } else { Test::Single }),
        log: cfg.log,
        disk_bytes: cfg.create_size.unwrap_or(3 << 30),
        guest_args: crate::vm::guest_args(user),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::btrfs::fill::FillMode;

    fn cfg(args: &[&str]) -> Result<Config, String> {
        let argv: Vec<String> = std::iter::once("btrfs-reclaim-repro").chain(args.iter().copied()).map(String::from).collect();
        let a = parse(&argv).map_err(|(_, t)| t)?;
        config(a)
    }

    fn args(args: &[&str]) -> Args {
        let argv: Vec<String> = ["btrfs-reclaim-repro", "/dev/vdb", "/mnt/t"].iter().chain(args).map(|s| s.to_string()).collect();
        parse(&argv).unwrap()
    }

    #[test]
    fn each_piece_of_the_configuration_alone() {
        assert_eq!(amounts(&args(&[])), Ok((90, 4)));
        assert_eq!(amounts(&args(&["--stress", "9", "--workers", "2"])), Ok((80, 2)));
        assert_eq!(amounts(&args(&["--workers", "2"])).unwrap_err(), "--workers only applies with --stress SECS");
        assert_eq!(enospc(&args(&[])), Ok(Enospc::Auto));
        assert_eq!(enospc(&args(&["--enospc", "natural", "--space-cache", "v2"])).unwrap_err(), "--enospc natural needs --space-cache v1");
        assert_eq!(reclaim(&args(&[]), Enospc::Auto), Ok(Reclaim::Periodic));
        assert_eq!(reclaim(&args(&["--stress", "9"]), Enospc::Auto), Ok(Reclaim::HUNT_DEFAULT));
        assert_eq!(reclaim(&args(&["--reclaim", "dynamic"]), Enospc::Natural).unwrap_err(), "--enospc natural runs with --reclaim periodic only");
        assert_eq!((op_timeout(&args(&[]), true), op_timeout(&args(&[]), false)), (Ok(20), Ok(300)));
        assert!(op_timeout(&args(&["--op-timeout", "0"]), false).unwrap_err().starts_with("bad --op-timeout 0"));
        assert_eq!(outputs(&args(&[])), Ok(()));
        assert_eq!(outputs(&args(&["--ktap", "--json"])).unwrap_err(), "--ktap and --json both print on stdout: give one of them");
        assert_eq!(choices(&args(&[])), Ok((false, FillMode::Fallocate, true)));
        assert_eq!(reclaim(&args(&["--trigger", "swapfile"]), Enospc::Auto), Ok(Reclaim::STATIC_DEFAULT));
        assert_eq!(reclaim(&args(&["--trigger", "swapfile", "--reclaim", "dynamic"]), Enospc::Auto), Ok(Reclaim::Dynamic));
        assert_eq!(choices(&args(&["--mkfs", "external", "--fill-mode", "write", "--space-cache", "v2"])), Ok((true, FillMode::Write, false)));
    }

    /// What the swapfile pass cannot go with is said first, not a fix for
    /// the other option that the swapfile pass would then refuse.
    #[test]
    fn swapfile_refusals_come_first() {
        let e = cfg(&["/dev/vdb", "/mnt/t", "--trigger", "swapfile", "--enospc", "natural"]).unwrap_err();
        assert!(e.ends_with("drop --enospc"), "{e}");
        assert_eq!(cfg(&["/dev/vdb", "/mnt/t", "--trigger", "swapfile"]).unwrap().trigger, crate::scenario::config::Trigger::Swapfile);
    }

    #[test]
    fn defaults() {
        let c = cfg(&["/dev/vdb", "/mnt/test", "--seed", "7"]).unwrap();
        assert_eq!(c.fill_percent, 90);
        assert_eq!(c.fill_mode, FillMode::Fallocate);
        assert!(c.space_cache_v1);
        assert_eq!(c.timeout_secs, 60);
        assert_eq!(c.seed, 7);
        assert_eq!(c.create_size, None);
    }

    #[test]
    fn bad_values_are_refused_with_one_line() {
        for args in [
            &["--fill", "0", "d", "m"][..],
            &["--fill", "150", "d", "m"],
            &["--size", "12Q", "d", "m"],
            &["--timeout", "-1", "d", "m"],
            &["--timeout", "0", "d", "m"],
            &["--fill-mode", "dd", "d", "m"],
            &["--space-cache", "v3", "d", "m"],
            &["d"],
            &["--bogus", "d", "m"],
            &["--stress", "0", "d", "m"],
            &["--stress", "10", "--reclaim", "periodic", "--workers", "0", "d", "m"],
            &["--workers", "2", "d", "m"],
            &["--iterations", "0", "d", "m"],
            &["--enospc", "maybe", "d", "m"],
            &["--enospc", "natural", "--space-cache", "v2", "d", "m"],
            &["--reclaim", "sometimes", "d", "m"],
            &["--reclaim", "threshold=0", "d", "m"],
            &["--reclaim", "threshold=100", "d", "m"],
            &["--reclaim", "threshold=", "d", "m"],
            &["--reclaim", "threshold=-5", "d", "m"],
            &["--reclaim", "Periodic", "d", "m"],
            &["--reclaim", "dynamic", "--enospc", "natural", "d", "m"],
            &["--stress", "10", "--workers", "2", "--reclaim", "dynamic", "d", "m"],
            &["--ktap", "--json", "d", "m"],
            &["--ktap", "--check", "d", "m"],
        ] {
            let err = cfg(args).expect_err(&format!("{args:?} must be refused"));
            assert!(!err.trim().is_empty() && err.trim().lines().count() == 1, "{args:?}: {err}");
        }
    }

    #[test]
    fn stress_defaults_to_80_percent_and_4_workers() {
        let c = cfg(&["--stress", "60", "--reclaim", "periodic", "d", "m"]).unwrap();
        assert_eq!((c.stress_secs, c.workers, c.fill_percent), (Some(60), 4, 80));
        let c = cfg(&["--stress", "60", "--reclaim", "periodic", "--workers", "2", "--fill", "70", "d", "m"]).unwrap();
        assert_eq!((c.workers, c.fill_percent), (2, 70));
    }

    #[test]
    fn reclaim_settings_and_their_defaults() {
        assert_eq!(cfg(&["d", "m"]).unwrap().reclaim, Reclaim::Periodic);
        let stress = cfg(&["--stress", "60", "d", "m"]).unwrap();
        assert_eq!((stress.reclaim, stress.op_timeout_secs), (Reclaim::Threshold(75), 20));
        let today = cfg(&["--stress", "60", "--reclaim", "periodic", "d", "m"]).unwrap();
        assert_eq!((today.reclaim, today.op_timeout_secs, today.workers), (Reclaim::Periodic, 300, 4));
        assert_eq!(cfg(&["--reclaim", "dynamic", "d", "m"]).unwrap().reclaim, Reclaim::Dynamic);
        for n in [1, 50, 99] {
            let c = cfg(&["--reclaim", &format!("threshold={n}"), "d", "m"]).unwrap();
            assert_eq!(c.reclaim, Reclaim::Threshold(n));
            assert_eq!(c.reclaim.name(), format!("threshold={n}"));
        }
        assert_eq!(cfg(&["--stress", "9", "--op-timeout", "60", "d", "m"]).unwrap().op_timeout_secs, 60);
        let churn = cfg(&["--stress", "30", "--workers", "2", "d", "m"]).unwrap();
        assert_eq!((churn.reclaim, churn.hunt()), (Reclaim::Periodic, false));
        assert!(cfg(&["--stress", "30", "d", "m"]).unwrap().hunt());
    }

    #[test]
    fn describe_names_enospc_only_when_not_auto() {
        assert!(!cfg(&["d", "m"]).unwrap().describe().contains("enospc"));
        assert!(cfg(&["--enospc", "injected", "d", "m"]).unwrap().describe().ends_with(" enospc=injected"));
        assert!(cfg(&["--enospc", "natural", "d", "m"]).unwrap().describe().ends_with(" enospc=natural"));
    }

    #[test]
    fn the_help_names_the_exit_codes_the_verdicts_return() {
        for (code, verdict) in [
            (ExitCode::NOT_REPRODUCED, "NOT REPRODUCED"),
            (ExitCode::REPRODUCED, "REPRODUCED"),
            (ExitCode::REFUSED, "REFUSED"),
            (ExitCode::SUSPECTED, "SUSPECTED"),
            (ExitCode::SKIP, "INCONCLUSIVE"),
            (ExitCode::VM_REFUSED, "REFUSED"),
        ] {
            assert!(EXIT_CODES.contains(&format!(" {code} {verdict}")), "{code} {verdict}");
        }
    }

    /// --ktap with --vm: the host prints KTAP, its test named as natively;
    /// the guest runs with --ktap too.
    #[test]
    fn ktap_goes_to_the_host_and_the_guest() {
        let user: Vec<String> = ["--vm", "k/bzImage", "--ktap", "--stress", "30"].map(String::from).to_vec();
        let argv: Vec<String> = std::iter::once("x".to_string()).chain(user.iter().cloned()).collect();
        let o = vm_options(parse(&argv).unwrap(), &user).unwrap();
        assert_eq!(o.ktap, Some(crate::judge::report::ktap::Test::Stress));
        assert!(!o.json && o.guest_args.contains(&"--ktap".to_string()), "{:?}", o.guest_args);
    }

    #[test]
    fn help_exits_zero_and_shows_examples() {
        let argv: Vec<String> = ["x", "--help"].iter().map(|s| s.to_string()).collect();
        let (code, text) = parse(&argv).unwrap_err();
        assert_eq!(code, 0);
        assert!(text.contains("git bisect run"));
        assert!(text.contains("125"));
        let usage = text.lines().find(|l| l.starts_with("Usage: ")).expect("a Usage line");
        assert!(usage.ends_with("] <dev> <mnt>"), "{usage}");
        let pos = text.split("Positional Arguments:").nth(1).expect("a Positional Arguments section");
        let names: Vec<&str> =
            pos.lines().filter(|l| l.starts_with("  ") && !l.starts_with("   ")).filter_map(|l| l.split_whitespace().next()).collect();
        assert_eq!(names[..2], ["dev", "mnt"], "{pos}");
    }

    #[test]
    fn positionals_are_dev_then_mnt_and_version_needs_none() {
        let c = cfg(&["--fill", "50", "/dev/vdb", "/mnt/test"]).unwrap();
        assert_eq!((c.dev.to_str(), c.mnt.to_str()), (Some("/dev/vdb"), Some("/mnt/test")));
        let argv: Vec<String> = ["x", "--version"].iter().map(|s| s.to_string()).collect();
        assert!(parse(&argv).unwrap().version);
        for args in [&[][..], &["d"], &["d", "m", "extra"]] {
            let err = cfg(args).expect_err(&format!("{args:?} must be refused"));
            assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
            assert!(err.ends_with("(see --help)"), "{args:?}: {err}");
        }
    }
}

#[cfg(test)]
mod golden {
    /// `--help` pinned byte for byte (tests/fixtures/golden/help.txt);
    /// `BRR_BLESS=1` rewrites it.
    #[test]
    fn golden_help() {
        let argv: Vec<String> = ["/usr/local/bin/btrfs-reclaim-repro", "--help"].map(String::from).to_vec();
        let (code, actual) = super::parse(&argv).unwrap_err();
        assert_eq!(code, 0);
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/golden/help.txt");
        if std::env::var("BRR_BLESS").is_ok_and(|v| v == "1") {
            std::fs::write(&path, &actual).unwrap();
            return;
        }
        let expected = std::fs::read_to_string(&path).unwrap();
        assert!(expected == actual, "--help differs from {}:\n{actual}", path.display());
    }
}

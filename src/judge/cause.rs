//! Why a run was INCONCLUSIVE, and what to do about each: the advice the
//! verdict prints under its reason.

/// Why a run was INCONCLUSIVE: each has its advice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// The environment failed mid-run (the reason names the step and errno).
    SetupFailed,
    /// The natural pass relocated without a failure.
    NotStarved,
    /// The filesystem uses no v1 cache (--space-cache v2).
    NoV1Cache,
    /// v1 cache, but no data block group got a cache inode.
    NoV1CacheInode,
    /// Reclaim never relocated anything within --timeout.
    ReclaimNeverFired,
    /// Reclaim relocated and nothing failed, and no natural pass ran.
    NotInstrumented,
    /// The kernel overwrote log records before we read them: a clean log
    /// with holes proves nothing.
    RecordsLost,
    /// --vm: the guest kernel lacks what the test needs (the reason names
    /// the CONFIG_ option).
    VmKernelConfig,
    /// --vm: the kernel could not execute /init (ENOEXEC): another
    /// architecture's binary.
    VmWrongArch,
    /// --vm: no initramfs init ran (no CONFIG_BLK_DEV_INITRD).
    VmNoInitramfs,
    /// --vm: the console stayed silent.
    VmNoConsole,
    /// --vm: the kernel died or stopped while booting, before /init.
    VmBootFailed,
    /// --vm: the guest ran past the host's deadline, with a clean console.
    VmHung,
    /// --vm: the VM ended without an intact verdict, with a clean console.
    VmNoVerdict,
    /// The only kernel trouble was a stall report, with nothing that names
    /// a bug (no loop, no refcount/list/KASAN line, no leak).
    StallOnly,
    /// The kernel offers no automatic reclaim of data block groups (neither
    /// dynamic/periodic reclaim nor bg_reclaim_threshold: before 5.19).
    NoReclaimTrigger,
    /// --trigger swapfile: reclaim ran, but the trace never showed the
    /// swapfile's group refused (or there was no trace).
    SwapNotRefused,
}

impl Cause {
    /// Every cause, for the test that each has advice.
    #[cfg(test)]
    pub const ALL: [Cause; 17] = [
        Cause::SwapNotRefused,
        Cause::StallOnly,
        Cause::NoReclaimTrigger,
        Cause::SetupFailed,
        Cause::NotStarved,
        Cause::NoV1Cache,
        Cause::NoV1CacheInode,
        Cause::ReclaimNeverFired,
        Cause::NotInstrumented,
        Cause::RecordsLost,
        Cause::VmKernelConfig,
        Cause::VmWrongArch,
        Cause::VmNoInitramfs,
        Cause::VmNoConsole,
        Cause::VmBootFailed,
        Cause::VmHung,
        Cause::VmNoVerdict,
    ];

    pub fn advice(self) -> &'static str {
        match self {
            Cause::SetupFailed => "fix what the reason names (the step and the errno), then run again; git bisect skips this commit",
            Cause::NotStarved => "run again (a different --seed changes the fill), or give a smaller device so metadata fills sooner",
            Cause::NoV1Cache => "drop --space-cache v2: the injection site and the natural recipe need the v1 cache (the default)",
            Cause::NoV1CacheInode => "give a larger device (over 960 MiB, 3 GiB is good): data block groups under 100 MiB get no v1 cache inode",
            Cause::ReclaimNeverFired => "raise --timeout, and check that dynamic_reclaim/periodic_reclaim (6.11 on) or bg_reclaim_threshold (5.19 on) exist in /sys/fs/btrfs/<fsid>/allocation/data",
            Cause::NotInstrumented => "run with --enospc auto (the default) or natural for a real ENOSPC, or boot the bug report's instrumented kernel",
            Cause::StallOnly => "a stall alone is no evidence: run again on a less loaded machine (no other VMs or CPU hogs) and see whether a line that names a bug comes; --log keeps the kernel log",
            Cause::NoReclaimTrigger => "boot a kernel from 5.19 on (bg_reclaim_threshold) or 6.11 on (dynamic/periodic reclaim): this one cannot test the bug, git bisect skips it",
            Cause::RecordsLost => "boot with log_buf_len=16M (a bigger kernel log buffer), or keep other kernel chatter down, and run again",
            Cause::VmKernelConfig => "build the kernel with the option the reason names set to y (README: Kernel config for --vm); git bisect skips this commit",
            Cause::VmWrongArch => "give a kernel of the guest binary's architecture (x86_64 bzImage, arm64 Image; the aarch64 binary is dist/btrfs-reclaim-repro-aarch64)",
            Cause::VmNoInitramfs => "build the kernel with CONFIG_BLK_DEV_INITRD=y: the binary boots as the initramfs's /init",
            Cause::VmNoConsole => "build the kernel with its serial console (CONFIG_SERIAL_8250_CONSOLE on x86, CONFIG_SERIAL_AMBA_PL011_CONSOLE on arm64); under KVM try --vm-accel tcg",
            Cause::VmBootFailed => "read the console (--vm-console FILE keeps it): the kernel itself failed to boot; git bisect skips this commit",
            Cause::VmHung => "raise --vm-timeout if the guest was only slow; the console (--vm-console FILE) shows where it stopped",
            Cause::VmNoVerdict => "run again with --vm-console FILE and read how the guest ended",
            Cause::SwapNotRefused => "the swapfile trigger is seen only through tracefs (btrfs_add_reclaim_block_group): boot a kernel with event tracing and tracefs mounted (--vm mounts it), or run again with another --seed",
        }
    }
}

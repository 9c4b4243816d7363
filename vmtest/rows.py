"""The VM test table: one entry per row, run in this order by `make vm-test`.

Keys of an entry:
  name      row name: the console log goes to target/vm-logs/<name>.log
  kernel    the kernel image, as a path relative to the shared vm/ folder
            (../shared/vm): "kernels/bzImage-stock", "arm64/kernels/Image-stock",
            "kernels-6.1/bzImage-6.1-stock"; or "repo:<path>", a kernel kept in
            this repository: "repo:vmtest/kernels/bzImage-debug-stock"
            (vmtest/kernels/README.md says what each is and how it was built)
  runner    how the row boots and runs the binary:
            "vm": the binary boots the kernel itself with `--vm` (the x86_64
            binary on the host, as any user; an arm64 kernel gets
            dist/btrfs-reclaim-repro-aarch64 as its /init); `args` follow
            `--vm KERNEL --json --vm-console <log>`, the JSON comes from
            stdout (text from --check: the checks see it as "stdout"), the
            exit code from the binary;
            "busybox" (vmtest.RUNNERS): the shared runner of the row's arch
            (run-vm, or arm64/run-vm-arm64) boots the kernel with its busybox
            initramfs, and vmtest/payload.sh runs the binary on /dev/vda;
            "bisect": `git bisect run` with --vm over a repository the row
            makes: one commit per entry of `kernels` (paths under the shared
            vm/ folder), good first, bad last; `first_bad` is the commit
            (1-based) it must name, or None: the bisect must abort, because
            `qemu_vanishes_after` steps QEMU is gone from PATH (exit 255)
  arch      x86_64 (default) or aarch64: which static binary runs
            (dist/btrfs-reclaim-repro-<arch>, built by `make vm-test`) and,
            for the busybox runner, which script (run-vm, or
            arm64/run-vm-arm64: TCG either way)
  initramfs (busybox runner) btrfs-progs (default: busybox, mkfs.btrfs, btrfs) or busybox-only
            (the runners' --no-btrfs-progs: no mkfs.btrfs, no glibc)
  args      the binary's options (the payload adds --json and /dev/vda /mnt/test;
            with --ktap among them, no --json, either runner: the checks then
            read the KTAP as vmtest.ktap_document turns it into keys: result
            ("ok"/"not ok"), name, directive, diagnostics (the `# ` lines),
            verdict, reason, vm (runner vm: the `# vm:` diagnostic))
  exit      the binary's exit code, or a list of accepted ones; checked in the
            JSON (exit_code), in the payload's marker line and as run-vm's status
  checks    what the verdict JSON must show; each check is a string:
              "KEY OP VALUE"  OP is == != >= <= > < (VALUE: JSON literal or a
                              bare word, compared as a string), "in" (VALUE a
                              JSON list), "~" (Python regex searched in the
                              string, or in any element of a list of strings),
                              "contains" (substring of a string)
              "NAME"          a named check from vmtest.NAMED_CHECKS, e.g.
                              console_clean (no kernel trouble anywhere in the
                              console log: the host's own look, not the binary's)
  requires  options that must appear in `--help` (Usage line or Options list);
            when one is missing the row is not run and prints SKIP
  requires_keys
            JSON keys that a binary without the feature does not print yet:
            when the row's other checks hold but a key is missing, SKIP
  vm        extra run-vm options (e.g. --mem 3072); run-vm keeps only the
            last --append, so all kernel arguments go into one
  disk      virtio disk size (default 3G)
  timeout   seconds before the runner kills the VM (default 180)
  user      (runner vm) "nobody": run the binary as uid 65534 (setpriv)
  env       (runner vm) extra environment, e.g. a test hook
  interrupt (runner vm) dict(signal="INT", when=REGEX, after=SECS, group=BOOL):
            the signal is sent to the binary SECS (default 0) after a line of
            its stderr matches; with group=True to its process group (QEMU
            included), as a terminal's Ctrl-C is; with checks
            ["no_verdict"] (SIGKILL) only the exit status, the stdout (exactly
            the row's `stdout`, default empty) and what is left count. Every
            --vm row runs with a TMPDIR of its own, which must be empty
            afterwards, and no QEMU of ours may be left running.
  stdout    (no_verdict rows) what the killed binary printed, exactly
  host_hogs N busy-loop processes on the host while the row runs (default 0):
            a loaded host, as when other TCG guests share its cores; they are
            killed when the row ends, however it ends

`VMTEST_STRICT=1 make vm-test` (or vmtest.py --strict) turns every SKIP into a
FAIL: use it once a row's feature has landed.
"""

# A bigger kernel log buffer than the kernels' 128 KiB (CONFIG_LOG_BUF_SHIFT=17
# in ../shared/vm/kernel*.config): records the kernel overwrites before the
# binary reads them make a clean run INCONCLUSIVE.
LOG_BUF = "log_buf_len=16M"
# The Debian 6.1.192 kernels.
K61 = "kernels-6.1/"

ROWS = [
    # Most rows run through the binary's own --vm (runner "vm": it boots the
    # kernel itself, no busybox); the busybox-only rows stay on run-vm (the
    # binary in someone else's minimal guest). Measured here under TCG (2
    # cores shared): instrumented 3.6 s (kernel boot to /init 2.2 s, pass
    # 0.9 s, ours 0.2 s), buggy-extra-put 5.4 s, stock 30-37 s (settle 30 s),
    # arm64 instrumented 3.7 s.
    # The default (--enospc auto, built-in mkfs) on a stock kernel: the
    # injected pass relocates without a failure, the natural pass fails
    # relocations with a real ENOSPC.
    dict(name="stock", runner="vm", kernel="kernels/bzImage-stock", args=[], exit=0,
         checks=["verdict == NOT_REPRODUCED", 'failure_path == "natural"', "relocation_failures >= 1",
                 'enospc_mode == "auto"', 'mkfs == "builtin"', 'space_cache == "v1"', "v1_cache_block_groups >= 1",
                 "console_clean"]),
    # Stock 6.12.117 plus one silent extra btrfs_put_block_group() on the
    # ENOSPC path of btrfs_relocate_block_group(): the shape of a real bug,
    # no instrumentation. The default must find it (via the natural pass).
    dict(name="silent-extra-put", runner="vm", kernel="kernels/bzImage-silent-extra-put", args=["--op-timeout", "45"],
         exit=1, checks=["verdict == REPRODUCED", 'failure_path == "natural"', r"evidence ~ refcount_t"]),
    dict(name="instrumented", runner="vm", kernel="kernels/bzImage-instrumented", args=[], exit=0,
         checks=["verdict == NOT_REPRODUCED", "injections >= 1", "reloc_puts >= 1", "reclaim_puts >= 1",
                 "reclaim_errors >= 1", "inject_reloc_reclaim_same_pid", "console_clean", 'vm.arch == "x86_64"',
                 "vm.pass_seconds > 0", "vm.ours_seconds >= 0"]),
    # The use-after-free sometimes leaves the unmount spinning (RCU stall):
    # a short --op-timeout turns that into "hung in unmount" well within the
    # row's time limit.
    dict(name="buggy-extra-put", runner="vm", kernel="kernels/bzImage-buggy-extra-put", args=["--op-timeout", "45"],
         exit=1, checks=["verdict == REPRODUCED", r"evidence ~ refcount_t: .* use-after-free\."]),
    dict(name="instrumented-v2", runner="vm", kernel="kernels/bzImage-instrumented", args=["--space-cache", "v2"],
         exit=125,
         checks=["verdict == INCONCLUSIVE", "reason contains v1 cache inode", "next_step contains --space-cache v2",
                 "console_clean"]),
    # --ktap (kernel CI's format) through --vm on the same two kernels: ok on
    # the healthy instrumented one, not ok with the splat among the
    # diagnostics on the buggy one; the kselftest exit codes, the VM facts as
    # a `# vm:` diagnostic. A kernel without btrfs: the guest's init skips.
    # Measured (2 shared cores, TCG): 3.3 s, 3.0 s and 2.2 s, boot included.
    dict(name="ktap-instrumented", runner="vm", kernel="kernels/bzImage-instrumented", args=["--ktap"], exit=0,
         requires=["--ktap"],
         checks=['result == "ok"', 'name == "btrfs_reclaim_repro"', 'directive == ""', 'verdict == "NOT REPRODUCED"',
                 "diagnostics ~ inject enospc", "vm ~ ^x86_64 under ", "console_clean"]),
    dict(name="ktap-buggy-extra-put", runner="vm", kernel="kernels/bzImage-buggy-extra-put",
         args=["--ktap", "--op-timeout", "45"], exit=1, requires=["--ktap"],
         checks=['result == "not ok"', 'name == "btrfs_reclaim_repro"', 'directive == ""', "verdict == REPRODUCED",
                 r"diagnostics ~ refcount_t: .* use-after-free\.", "vm ~ ^x86_64 under "]),
    dict(name="ktap-vm-no-btrfs", runner="vm", kernel="kernels-6.1/bzImage-6.1-no-btrfs", args=["--ktap"], exit=4,
         timeout=120, requires=["--ktap"],
         checks=['result == "ok"', "directive ~ ^SKIP .*CONFIG_BTRFS_FS", "verdict == INCONCLUSIVE",
                 "vm ~ ^x86_64 under "]),
    # --trigger swapfile on stock 6.12 is not a row: with two CPU hogs on
    # the host it ended INCONCLUSIVE ("reclaim never fired within 60 s", no
    # relocation at all) in 3 of 4 runs (bench/RESULTS.md, "--trigger
    # swapfile"); the 6.1 pair below is the trigger's proof.
    # Features being implemented: skipped (SKIP) until the binary has them.
    dict(name="stress", runner="vm", kernel="kernels/bzImage-instrumented", args=["--stress", "30", "--workers", "2"],
         exit=[0, 3], requires=["--stress", "--workers"], timeout=240,
         checks=['verdict in ["NOT_REPRODUCED", "SUSPECTED"]', "injections >= 1", "inject_by_balance_tid",
                 "suspected_names_overlap"]),
    dict(name="natural-stock", runner="vm", kernel="kernels/bzImage-stock", args=["--enospc", "natural"], exit=0,
         requires=["--enospc"],
         checks=["verdict == NOT_REPRODUCED", "reclaim_errors >= 1", 'failure_path == "natural"', "console_clean"]),
    dict(name="debug-kmemleak", runner="vm", kernel="kernels/bzImage-debug-instrumented",
         args=["--vm-mem", "3072", "--vm-append", "acpi=noirq"], exit=0, requires_keys=["kmemleak"], timeout=420,
         checks=["verdict == NOT_REPRODUCED", "kmemleak == 0", "injections >= 1", "console_clean"]),
    # The clean debug control: stock 6.12.118 (no patch) with KASAN and
    # kmemleak, vmtest/kernels/bzImage-debug-stock, while two busy loops
    # load the host's two cores as other TCG guests do. Under TCG and KASAN
    # the stock default's relocations are slow enough for RCU stall reports;
    # a stall is no bug, so the verdict may be INCONCLUSIVE but never
    # REPRODUCED. No console_clean: the stall report prints a Call Trace.
    # Measured (binary at 8b83860, 1 run): 198.5 s, settle 62.5 s, unmount
    # 82.0 s, REPRODUCED on "rcu: INFO: rcu_sched self-detected stall on
    # CPU" alone: the false positive the judge must stop making.
    dict(name="debug-stock-hogs", runner="vm", kernel="repo:vmtest/kernels/bzImage-debug-stock",
         args=["--vm-mem", "3072", "--vm-append", "acpi=noirq"], exit=[0, 125], host_hogs=2, timeout=300,
         checks=["verdict != REPRODUCED", "kmemleak >= 0"]),
    # The aarch64 binary on the arm64 twins of the stock and instrumented
    # kernels (qemu-system-aarch64 -M virt -cpu cortex-a57, TCG): --vm on
    # an x86_64 host boots them with dist/btrfs-reclaim-repro-aarch64 as
    # /init.
    dict(name="arm64-instrumented", runner="vm", arch="aarch64", kernel="arm64/kernels/Image-instrumented", args=[],
         exit=0, timeout=240,
         checks=["verdict == NOT_REPRODUCED", "injections >= 1", "reloc_puts >= 1", "reclaim_puts >= 1",
                 "reclaim_errors >= 1", "inject_reloc_reclaim_same_pid", "console_clean", 'vm.arch == "aarch64"',
                 'vm.accel == "tcg"']),
    dict(name="arm64-stock", runner="vm", arch="aarch64", kernel="arm64/kernels/Image-stock", args=[], exit=0,
         timeout=300,
         checks=["verdict == NOT_REPRODUCED", "relocation_failures >= 1", 'failure_path == "natural"', "console_clean"]),
    # No btrfs-progs in the guest (busybox only): the built-in mkfs is all
    # the binary needs.
    dict(name="busybox-only", kernel="kernels/bzImage-instrumented", runner="busybox", initramfs="busybox-only",
         args=[], exit=0,
         vm=["--append", LOG_BUF],
         checks=["verdict == NOT_REPRODUCED", "injections >= 1", 'mkfs == "builtin"', "console_clean"]),
    dict(name="arm64-busybox-only", arch="aarch64", kernel="arm64/kernels/Image-instrumented", runner="busybox",
         initramfs="busybox-only", args=[], exit=0, timeout=240, vm=["--append", LOG_BUF],
         checks=["verdict == NOT_REPRODUCED", "injections >= 1", 'mkfs == "builtin"', "console_clean"]),
    # The retry-list hunt: the real historic bug (48f091fd50b2
    # undone) is found; its fixed control stays clean although the hunt
    # opened the race window. Measured: first evidence 1.5-13 s.
    dict(name="hunt-real-retry-bug", runner="vm", kernel="kernels/bzImage-real-retry-bug-instrumented",
         args=["--stress", "300", "--until-reproduced", "--seed", "11"], exit=1, requires=["--reclaim"],
         timeout=420,
         checks=["verdict == REPRODUCED", r"evidence ~ refcount_t: underflow; use-after-free\.", 'mode == "hunt"',
                 'reclaim == "threshold=75"', "mount_options contains nodiscard"]),
    dict(name="hunt-control", runner="vm", kernel="kernels/bzImage-instrumented", args=["--stress", "120", "--seed", "3"],
         exit=0,
         requires=["--reclaim"], requires_keys=["race_windows"], timeout=300,
         checks=["verdict == NOT_REPRODUCED", "race_windows >= 1", "hunt_rounds_failing >= 1", "console_clean"]),
    # As any user: no root, no /dev/kvm (uid 65534 cannot open it), TCG.
    dict(name="vm-unprivileged", runner="vm", user="nobody", kernel="kernels/bzImage-instrumented", args=[], exit=0,
         timeout=120, checks=["verdict == NOT_REPRODUCED", "injections >= 1", 'vm.accel == "tcg"']),
    # --vm --check: boots and runs the preflight in the guest, formats nothing.
    dict(name="vm-check", runner="vm", kernel="kernels/bzImage-instrumented", args=["--check"], exit=0, timeout=90,
         checks=["stdout contains btrfs is in the kernel", "stdout contains preflight: a run would go ahead",
                 "stdout contains vm:       x86_64 under TCG"]),
    # Fault rows: every way a --vm run can end has a verdict.
    dict(name="vm-no-btrfs", runner="vm", kernel="kernels-6.1/bzImage-6.1-no-btrfs", args=[], exit=125, timeout=120,
         checks=["verdict == INCONCLUSIVE", "reason contains CONFIG_BTRFS_FS", "next_step contains option"]),
    dict(name="vm-not-a-kernel", runner="vm", kernel="README.md", args=[], exit=255, timeout=60,
         checks=["verdict == REFUSED", "reason contains README.md is not a kernel image"]),
    # A test hook stops PID 1: the binary's --vm-timeout kills QEMU by pid.
    dict(name="vm-guest-hangs", runner="vm", kernel="kernels/bzImage-instrumented",
         args=["--vm-append", "brr.test_hang=1", "--vm-timeout", "25"], exit=125, timeout=90,
         checks=["verdict == INCONCLUSIVE", "reason ~ ^guest hung at .*brr.test_hang", "next_step contains --vm-timeout"]),
    # A kernel the bug wedged can hang the power-off itself: a test hook
    # keeps the guest up after it handed its verdict over; QEMU is killed
    # 10 s later and the verdict stands.
    dict(name="vm-poweroff-hangs", runner="vm", kernel="kernels/bzImage-instrumented",
         args=["--vm-append", "brr.test_no_poweroff=1"], exit=0, timeout=120,
         checks=["verdict == NOT_REPRODUCED", "injections >= 1"]),
    # This machine's /dev/kvm (kvm_pvm) hangs a standard guest; the test hook
    # skips the vmx/svm check so that auto picks it: the silent KVM boot is
    # killed after 20 s and the run ends under TCG with the right verdict.
    dict(name="vm-kvm-falls-back", runner="vm", kernel="kernels/bzImage-instrumented", args=[], exit=0, timeout=180,
         env={"BRR_TEST_VM_SKIP_CPU_CHECK": "1"},
         checks=["verdict == NOT_REPRODUCED", "injections >= 1", 'vm.accel == "tcg"']),
    # Ctrl-C during the boot and during the pass (to the process group, as a
    # terminal sends it: QEMU gets it too and exits of it), SIGKILL of the
    # host binary alone mid-boot: QEMU killed (or dead with us:
    # PR_SET_PDEATHSIG), nothing left.
    dict(name="vm-ctrl-c-boot", runner="vm", kernel="kernels/bzImage-stock", args=[], exit=130, timeout=60,
         interrupt=dict(signal="INT", when=r"^btrfs-reclaim-repro: booting ", after=1.5, group=True),
         checks=["verdict == INTERRUPTED", "reason contains SIGINT"]),
    dict(name="vm-ctrl-c-pass", runner="vm", kernel="kernels/bzImage-stock", args=[], exit=130, timeout=120,
         interrupt=dict(signal="INT", when=r"\] fill: ", group=True),
         checks=["verdict == INTERRUPTED", "reason contains SIGINT", "vm.kernel_boot_seconds > 0"]),
    dict(name="vm-sigkill-boot", runner="vm", kernel="kernels/bzImage-stock", args=[], exit=137, timeout=60,
         interrupt=dict(signal="KILL", when=r"^btrfs-reclaim-repro: booting ", after=1.5), checks=["no_verdict"]),
    # --ktap, the host SIGKILLed mid-pass (a CI job's timeout): its stdout
    # holds the plan without a result, put out when the guest's pass said
    # its own plan was out (vm::ktap), which a CI parser reads as a failed test.
    dict(name="ktap-vm-sigkill-pass", runner="vm", kernel="kernels/bzImage-stock", args=["--ktap"], exit=137,
         timeout=60, requires=["--ktap"], interrupt=dict(signal="KILL", when=r"\] fill: "), checks=["no_verdict"],
         stdout="KTAP version 1\n1..1\n"),
    # The README's bisect line, tested: commits c1..c5 name good, good, bad,
    # bad, bad kernels; then QEMU vanishing from PATH after the first step
    # aborts the bisect (255) instead of naming a commit.
    dict(name="vm-bisect", runner="bisect", exit=0, timeout=300, checks=["bisect"], first_bad=3,
         kernels=["kernels/bzImage-instrumented", "kernels/bzImage-instrumented", "kernels/bzImage-buggy-extra-put",
                  "kernels/bzImage-buggy-extra-put", "kernels/bzImage-buggy-extra-put"]),
    dict(name="vm-bisect-qemu-vanishes", runner="bisect", exit=0, timeout=300, checks=["bisect"], first_bad=None,
         qemu_vanishes_after=1,
         kernels=["kernels/bzImage-instrumented", "kernels/bzImage-instrumented", "kernels/bzImage-buggy-extra-put",
                  "kernels/bzImage-buggy-extra-put", "kernels/bzImage-buggy-extra-put"]),
    # Debian 6.1.192 (../shared/vm/kernels-6.1/): only the static
    # bg_reclaim_threshold, no reclaim_count (counted from the kernel log,
    # the JSON's counters null). The default command on the stock kernel:
    # relocations fail with a real ENOSPC in the natural pass, each failed
    # group retried once per cleaner run: no loop.
    dict(name="v61-stock", runner="vm", kernel=K61 + "bzImage-6.1-stock", args=[], exit=0, timeout=180,
         checks=["verdict == NOT_REPRODUCED", "relocation_failures >= 1", 'reclaim == "threshold=75"',
                 'reclaim_offered == "bg_reclaim_threshold"', "reclaim_count == null", "no_reclaim_loop",
                 "console_clean"]),
    dict(name="v61-instrumented", runner="vm", kernel=K61 + "bzImage-6.1-instrumented", args=[], exit=0,
         checks=["verdict == NOT_REPRODUCED", "injections >= 1", 'reclaim == "threshold=75"', "reclaim_errors == null",
                 "inject_reloc_reclaim_same_pid", "no_reclaim_loop", "console_clean"]),
    # The code of 6.1.39-6.1.95 (7e2718099438 without 4eb4e85c4f81): the
    # natural pass's failing group goes straight back on reclaim_bgs and
    # the worker never leaves its loop; the default finds it and unmounts.
    dict(name="v61-reclaim-loop", runner="vm", kernel=K61 + "bzImage-6.1-reclaim-loop", args=[], exit=1,
         timeout=180,
         checks=["verdict == REPRODUCED", r"reason ~ kept relocating block group \d+", "known_bug contains 4eb4e85c4f81",
                 "reclaim_loop_within_60s", "reclaim_loop_stopped"]),
    # --trigger swapfile: an active swapfile in a group that crosses the
    # threshold; inc_block_group_ro() refuses it (ETXTBSY) every time. The
    # loop kernel re-adds it at `next:` forever: the verdict comes from the
    # trace before swapoff, whose synchronize_rcu() never returns there
    # (PREEMPT_NONE); the guest powers off with swap still on.
    dict(name="v61-swapfile-loop", runner="vm", kernel=K61 + "bzImage-6.1-reclaim-loop",
         args=["--trigger", "swapfile"], exit=1, timeout=90,
         checks=["verdict == REPRODUCED", r"reason ~ kept putting block group \d+ back on reclaim_bgs",
                 "known_bug contains 4eb4e85c4f81", 'trigger == "swapfile"', 'swapoff == "hung"',
                 r"notes ~ ^swapoff did not return in \d+ s: the reclaim worker still loops"]),
    # The fixed control: the group is refused, retried once per cleaner run
    # and let go; swapoff returns and the run unmounts.
    dict(name="v61-swapfile-stock", runner="vm", kernel=K61 + "bzImage-6.1-stock",
         args=["--trigger", "swapfile"], exit=0, timeout=90,
         checks=["verdict == NOT_REPRODUCED", 'failure_path == "swapfile"', 'trigger == "swapfile"', 'swapoff == "off"',
                 "no_reclaim_loop", "console_clean"]),
    # The retry-list bug as shipped in 6.1.96-97 (48f091fd50b2's backport
    # undone, the injection), and its fixed control.
    dict(name="v61-hunt-retry-bug", runner="vm", kernel=K61 + "bzImage-6.1-retry-bug-instrumented",
         args=["--stress", "240", "--until-reproduced", "--seed", "11"], exit=1, timeout=300,
         checks=["verdict == REPRODUCED", 'mode == "hunt"', "known_bug contains 48f091fd50b2", "no_reclaim_loop"]),
    dict(name="v61-hunt-control", runner="vm", kernel=K61 + "bzImage-6.1-instrumented", args=["--stress", "60", "--seed", "3"],
         exit=0, timeout=240,
         checks=["verdict == NOT_REPRODUCED", "race_windows >= 1", "no_reclaim_loop", "console_clean"]),
]

"""The VM test table: one entry per row, run in this order by `make vm-test`.

Keys of an entry:
  name      row name: the console log goes to target/vm-logs/<name>.log
  kernel    file in ../shared/vm/kernels/
  args      the binary's options (the payload adds --json and /dev/vda /mnt/test)
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
  vm        extra run-vm options (e.g. --mem 3072)
  disk      virtio disk size (default 3G)
  timeout   seconds before run-vm kills the VM (default 180)

`VMTEST_STRICT=1 make vm-test` (or vmtest.py --strict) turns every SKIP into a
FAIL: use it once a row's feature has landed.
"""

ROWS = [
    dict(name="stock", kernel="bzImage-stock", args=[], exit=125,
         checks=["verdict == INCONCLUSIVE", "reclaim_count >= 1", "reclaim_errors == 0", 'space_cache == "v1"',
                 "v1_cache_block_groups >= 1", "console_clean"]),
    dict(name="instrumented", kernel="bzImage-instrumented", args=[], exit=0,
         checks=["verdict == NOT_REPRODUCED", "injections >= 1", "reloc_puts >= 1", "reclaim_puts >= 1",
                 "reclaim_errors >= 1", "inject_reloc_reclaim_same_pid", "console_clean"]),
    # The use-after-free sometimes leaves the unmount spinning (RCU stall):
    # a short --op-timeout turns that into "hung in unmount" well within the
    # row's time limit.
    dict(name="buggy-extra-put", kernel="bzImage-buggy-extra-put", args=["--op-timeout", "45"], exit=1,
         checks=["verdict == REPRODUCED", r"evidence ~ refcount_t: .* use-after-free\."]),
    dict(name="instrumented-v2", kernel="bzImage-instrumented", args=["--space-cache", "v2"], exit=125,
         checks=["verdict == INCONCLUSIVE", "reason contains v1 cache inode", "console_clean"]),
    # Features being implemented: skipped (SKIP) until the binary has them.
    dict(name="stress", kernel="bzImage-instrumented", args=["--stress", "30", "--workers", "2"], exit=[0, 3],
         requires=["--stress", "--workers"], timeout=240,
         checks=['verdict in ["NOT_REPRODUCED", "SUSPECTED"]', "injections >= 1", "inject_by_balance_tid",
                 "suspected_names_overlap"]),
    dict(name="natural-stock", kernel="bzImage-stock", args=["--enospc", "natural"], exit=0, requires=["--enospc"],
         checks=["verdict == NOT_REPRODUCED", "reclaim_errors >= 1", 'failure_path == "natural"', "console_clean"]),
    dict(name="debug-kmemleak", kernel="bzImage-debug-instrumented", args=[], exit=0,
         vm=["--mem", "3072", "--append", "acpi=noirq"], requires_keys=["kmemleak"], timeout=420,
         checks=["verdict == NOT_REPRODUCED", "kmemleak == 0", "injections >= 1", "console_clean"]),
    # The retry-list hunt (issue 16): the real historic bug (48f091fd50b2
    # undone) is found; its fixed control stays clean although the hunt
    # opened the race window. Measured: first evidence 1.5-13 s.
    dict(name="hunt-real-retry-bug", kernel="bzImage-real-retry-bug-instrumented",
         args=["--stress", "300", "--until-reproduced", "--seed", "11"], exit=1, requires=["--reclaim"],
         vm=["--append", "log_buf_len=16M"], timeout=420,
         checks=["verdict == REPRODUCED", r"evidence ~ refcount_t: underflow; use-after-free\.", 'mode == "hunt"',
                 'reclaim == "threshold=75"', "mount_options contains nodiscard"]),
    dict(name="hunt-control", kernel="bzImage-instrumented", args=["--stress", "120", "--seed", "3"], exit=0,
         requires=["--reclaim"], requires_keys=["race_windows"], vm=["--append", "log_buf_len=16M"], timeout=300,
         checks=["verdict == NOT_REPRODUCED", "race_windows >= 1", "hunt_rounds_failing >= 1", "console_clean"]),
]

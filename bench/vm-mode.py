#!/usr/bin/env python3
"""`make vm-bench`: the three parts of a `--vm` run per shared kernel.

Runs `btrfs-reclaim-repro --vm KERNEL --json` RUNS times per kernel (as
the calling user, TCG unless KVM really works) and prints one markdown row
per kernel: the median of each part of the run as the binary reports it in
its `vm` facts (before the kernel's clock: QEMU, firmware, decompression;
the kernel's boot to /init; the pass; ours: initramfs, QEMU start and exit,
console, frames, power-off), the wall time, and the verdicts seen.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

KERNELS = [
    "kernels/bzImage-instrumented", "kernels/bzImage-buggy-extra-put", "kernels/bzImage-stock",
    "kernels-6.1/bzImage-6.1-stock", "kernels-6.1/bzImage-6.1-no-btrfs",
    "arm64/kernels/Image-instrumented", "arm64/kernels/Image-stock",
]
PARTS = ["before_kernel_seconds", "kernel_boot_seconds", "pass_seconds", "ours_seconds", "total_seconds"]


def median(xs):
    xs = [x for x in xs if isinstance(x, (int, float))]
    return f"{statistics.median(xs):.2f}" if xs else "–"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", required=True)
    ap.add_argument("--vm-dir", required=True)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("kernels", nargs="*", default=KERNELS)
    a = ap.parse_args()
    print("| kernel | runs | before the kernel | kernel boot to /init | pass | ours | total (binary) | wall | verdicts |")
    print("|---|---|---|---|---|---|---|---|---|")
    for k in a.kernels:
        facts, walls, verdicts = [], [], []
        for _ in range(a.runs):
            t0 = time.monotonic()
            p = subprocess.run([a.bin, "--vm", os.path.join(a.vm_dir, k), "--json", "--op-timeout", "45"],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            walls.append(time.monotonic() - t0)
            try:
                v = json.loads(p.stdout)
            except ValueError:
                verdicts.append(f"no JSON (exit {p.returncode})")
                continue
            verdicts.append(f"{v.get('verdict')} {p.returncode}")
            facts.append(v.get("vm", {}))
        cells = [median([f.get(part) for f in facts]) for part in PARTS]
        seen = ", ".join(sorted(set(verdicts)))
        print(f"| {k} | {a.runs} | {' | '.join(cells)} | {median(walls)} | {seen} |")
        sys.stdout.flush()


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Tables for bench/bench.sh: min/median per phase and variant, the ratios and
the targets of issue 6, as Markdown (pasted into bench/RESULTS.md).

    python3 bench/stats.py target/bench/bench-<time>.jsonl

Input: one JSON object a line; the first describes the machine, the others
are {"variant", "run", "exit_code", "wall_seconds", "load1_before",
"load1_after", "result"} where result is the stdout JSON of the binary
(--json), of bash-single-pass.sh or of write-limit.sh.

Time from fragmenting to the first reclaim = first_reclaim_seconds (from the
start of the process) minus the phases up to and including fragment (mkfs,
mount, fill, knobs, fragment), for the binary and the bash scripts alike. It
slightly overstates: the time before mkfs (preflight, image, loop attach) is
in first_reclaim_seconds but in no phase.
"""

import json
import statistics
import sys

PHASES = ["mkfs", "mount", "fill", "knobs", "fragment", "trigger", "settle", "unmount"]
BEFORE_TRIGGER = PHASES[:5]
PASSES = ["bash-dd", "bash-fallocate", "ours-fallocate", "ours-write"]
LIMITS = ["limit-buffered", "limit-direct"]
# Exit codes that mean "the pass ran": the binary answers 125 (INCONCLUSIVE)
# on a stock kernel, 0 (NOT REPRODUCED) on the instrumented one; 1/3 are
# kernel trouble, which would still be a timed pass.
OK_EXIT = {"ours-fallocate": {0, 1, 3, 125}, "ours-write": {0, 1, 3, 125}}
MiB = 1 << 20


def load(path):
    machine, runs, failed = {}, {}, []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                row = json.loads(line)
            except ValueError as e:
                failed.append(f"line {n}: not JSON ({e})")
                continue
            v = row.get("variant")
            if v == "machine":
                machine = row
                continue
            res = row.get("result")
            ok = OK_EXIT.get(v, {0})
            if not isinstance(res, dict) or row.get("exit_code") not in ok:
                failed.append(f"{v} run {row.get('run')}: exit {row.get('exit_code')}, result {'missing' if res is None else 'kept'}")
                if not isinstance(res, dict):
                    continue
            res = dict(res)
            res["_wall"] = row.get("wall_seconds")
            res["_load"] = max(x for x in (row.get("load1_before"), row.get("load1_after"), 0) if x is not None)
            runs.setdefault(v, []).append(res)
    return machine, runs, failed


def derived(r):
    """The numbers a row of the table shows, for one run."""
    d = {}
    phases = r.get("phases") or {}
    for p in PHASES:
        if p in phases:
            d[p] = phases[p]
    if phases:
        d["sum of phases"] = sum(phases.get(p, 0) for p in PHASES)
    for k in ("total_seconds", "first_reclaim_seconds"):
        if r.get(k) is not None:
            d[k] = r[k]
    if r.get("first_reclaim_seconds") is not None and all(p in phases for p in BEFORE_TRIGGER):
        d["fragment -> first reclaim"] = r["first_reclaim_seconds"] - sum(phases[p] for p in BEFORE_TRIGGER)
    if "seconds" in r:  # write-limit.sh
        d["seconds"] = r["seconds"]
    bps = r.get("fill_bytes_per_second")
    if bps is None and r.get("bytes_written") and phases.get("fill"):
        bps = r["bytes_written"] / phases["fill"]
    if bps:
        d["fill MiB/s"] = bps / MiB
    if r.get("bytes_written") is not None:
        d["bytes written (MiB)"] = r["bytes_written"] / MiB
    if r.get("peak_rss_kib"):
        d["peak RSS (KiB)"] = r["peak_rss_kib"]
    if r.get("reclaim_count") is not None:
        d["reclaim_count"] = r["reclaim_count"]
    if r.get("_wall") is not None:
        d["wall (outside)"] = r["_wall"]
    d["load1"] = r["_load"]
    return d


def summarize(runs):
    """variant -> metric -> (min, median, max, n)"""
    out = {}
    for v, rs in runs.items():
        ds = [derived(r) for r in rs]
        keys = []
        for d in ds:
            keys += [k for k in d if k not in keys]
        out[v] = {}
        for k in keys:
            xs = [d[k] for d in ds if k in d]
            out[v][k] = (min(xs), statistics.median(xs), max(xs), len(xs))
    return out


def fmt(x, k):
    if "MiB/s" in k or "KiB" in k or "MiB)" in k:
        return f"{x:.0f}"
    if k in ("reclaim_count", "load1"):
        return f"{x:g}"
    return f"{x:.3f}" if x < 10 else f"{x:.2f}"


ROWS = PHASES + ["sum of phases", "total_seconds", "first_reclaim_seconds", "fragment -> first reclaim",
                 "seconds", "fill MiB/s", "bytes written (MiB)", "peak RSS (KiB)", "reclaim_count", "wall (outside)", "load1"]


def table(s, variants):
    variants = [v for v in variants if v in s]
    lines = ["| min / median | " + " | ".join(variants) + " |", "|---|" + "---|" * len(variants)]
    for k in ROWS:
        if not any(k in s[v] for v in variants):
            continue
        cells = []
        for v in variants:
            if k in s[v]:
                lo, med, _, _ = s[v][k]
                cells.append(f"{fmt(lo, k)} / {fmt(med, k)}")
            else:
                cells.append("")
        unit = "" if any(u in k for u in ("MiB", "KiB", "count", "load")) else " (s)"
        lines.append(f"| {k}{unit} | " + " | ".join(cells) + " |")
    n = {v: s[v]["load1"][3] for v in variants}
    lines.append("| runs | " + " | ".join(str(n[v]) for v in variants) + " |")
    return "\n".join(lines)


def med(s, v, k):
    return s.get(v, {}).get(k, (None, None, None, 0))[1]


def worst(s, v, k):
    return s.get(v, {}).get(k, (None, None, None, 0))[2]


def main(argv):
    if len(argv) != 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    machine, runs, failed = load(argv[1])
    s = summarize(runs)
    out = []
    if machine:
        out.append(f"Machine: {machine.get('cpu')}, {machine.get('cpus')} CPUs, {machine.get('mem_kib', 0) // 1024} MiB RAM"
                   f" ({machine.get('virt')}), kernel {machine.get('kernel')}, {machine.get('btrfs_progs')};"
                   f" images in {machine.get('image_dir')} ({machine.get('image_fs')}). {machine.get('date')}.")
        out.append(f"Binary: {machine.get('binary_version')}, {machine.get('binary_bytes')} bytes"
                   f" ({machine.get('binary_bytes', 0) / MiB:.2f} MiB). Load average before: {machine.get('loadavg_before')}.")
        out.append("")
    out.append(table(s, PASSES + LIMITS))
    out.append("")
    if failed:
        out.append("Runs that failed: " + "; ".join(failed))
        out.append("")

    # The limit: the faster of the two dd ways, by median.
    limits = {v: med(s, v, "fill MiB/s") for v in LIMITS if med(s, v, "fill MiB/s")}
    limit_v = max(limits, key=limits.get) if limits else None
    limit = limits.get(limit_v)

    def ratio(a, b):
        return None if a is None or not b else a / b

    r = {}
    out.append("Ratios (medians):")
    for v in ("ours-write", "ours-fallocate", "bash-dd"):
        for lv, lval in limits.items():
            x = ratio(med(s, v, "fill MiB/s"), lval)
            if x is not None:
                out.append(f"- fill throughput {v} / {lv}: {x:.2f}")
    r["fill"] = ratio(med(s, "ours-write", "fill MiB/s"), limit)
    for ours in ("ours-fallocate", "ours-write"):
        for bash in ("bash-dd", "bash-fallocate"):
            x = ratio(med(s, ours, "first_reclaim_seconds"), med(s, bash, "first_reclaim_seconds"))
            r[(ours, bash)] = x
            if x is not None:
                out.append(f"- time to first reclaim {ours} / {bash}: {x:.2f}")
    for v in PASSES:
        x = med(s, v, "fragment -> first reclaim")
        if x is not None:
            out.append(f"- fragment -> first reclaim, {v}: {x:.3f} s")
    size = machine.get("binary_bytes")
    rss = max([worst(s, v, "peak RSS (KiB)") or 0 for v in ("ours-fallocate", "ours-write")])
    if size:
        out.append(f"- binary size: {size} bytes ({size / MiB:.2f} MiB)")
    if rss:
        out.append(f"- peak RSS of the binary (worst run): {rss} KiB ({rss / 1024:.1f} MiB)")
    out.append("")

    # Targets: judged on medians (the worst run is shown beside).
    out.append("| target | measured (median; worst) | |")
    out.append("|---|---|---|")

    def target(name, value, limit_value, shown, worst_shown="", lower_is_better=True):
        if value is None or limit_value is None:
            out.append(f"| {name} | no data | ? |")
            return
        ok = value <= limit_value if lower_is_better else value >= limit_value
        if ok:
            verdict = "met"
        elif lower_is_better:
            verdict = f"**missed**: {(value / limit_value - 1) * 100:.0f} % over"
        else:
            verdict = f"**missed**: at {value / limit_value * 100:.0f} % of the target"
        out.append(f"| {name} | {shown}{'; ' + worst_shown if worst_shown else ''} | {verdict} |")

    tot = med(s, "ours-fallocate", "total_seconds")
    target("default mode: whole pass <= 4 s", tot, 4.0, f"{tot:.2f} s" if tot is not None else "",
           f"{worst(s, 'ours-fallocate', 'total_seconds'):.2f} s" if tot is not None else "")
    x = r.get(("ours-fallocate", "bash-dd"))
    target("default mode: first reclaim <= 0.25x bash (dd)", x, 0.25, f"{x:.3f}x" if x is not None else "")
    x = r.get(("ours-fallocate", "bash-fallocate"))
    target("default mode: first reclaim <= bash (fallocate)", x, 1.0, f"{x:.3f}x" if x is not None else "")
    fr = med(s, "ours-fallocate", "fragment -> first reclaim")
    target("default mode: first reclaim <= 1 s after fragmenting", fr, 1.0, f"{fr:.3f} s" if fr is not None else "",
           f"{worst(s, 'ours-fallocate', 'fragment -> first reclaim'):.3f} s" if fr is not None else "")
    x = r.get("fill")
    target(f"write mode: fill >= 90 % of the limit ({limit_v}, {limit:.0f} MiB/s)" if limit else "write mode: fill >= 90 % of the limit",
           x, 0.90, f"{x * 100:.0f} % ({med(s, 'ours-write', 'fill MiB/s'):.0f} MiB/s)" if x is not None else "",
           lower_is_better=False)
    tw = med(s, "ours-write", "total_seconds")
    target("write mode: whole pass <= 10 s", tw, 10.0, f"{tw:.2f} s" if tw is not None else "",
           f"{worst(s, 'ours-write', 'total_seconds'):.2f} s" if tw is not None else "")
    target("static binary <= 1 MiB", size / MiB if size else None, 1.0, f"{size / MiB:.2f} MiB" if size else "")
    target("peak RSS <= 8 MiB", rss / 1024 if rss else None, 8.0, f"{rss / 1024:.1f} MiB (worst run)" if rss else "")
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

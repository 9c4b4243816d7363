#!/usr/bin/env python3
"""The hunt's counts out of VM console logs (`make vm-hunt`, bench/RESULTS.md).

    vmtest/hunt_summary.py LOG...          one line per log
    vmtest/hunt_summary.py --table LOG...  a markdown table, one row per log

Reads the --json verdict between vmtest/payload.sh's marker lines (the same
extraction as the VM tier), so the numbers are the binary's own.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vmtest import ExtractError, extract, guest_seconds  # noqa: E402

FIELDS = ["hunt_rounds", "hunt_rounds_failing", "race_windows", "rounds_with_window", "first_evidence_seconds"]
# The churn stress (--reclaim periodic --stress) has no rounds: what it has.
STRESS_FIELDS = ["stress_seconds", "failed_groups", "balances_started"]


def summary(text):
    """dict of the run's counts; 'error' set when the log holds no verdict.

    >>> s = summary('===BRR-VERDICT-BEGIN===\\n{"verdict": "REPRODUCED", "exit_code": 1, "reclaim": "threshold=75", '
    ...             '"hunt_rounds": 2, "race_windows": null, "evidence": ["refcount_t: underflow"]}\\n'
    ...             '===BRR-VERDICT-END===\\n===BRR-EXIT-CODE=1===\\n')
    >>> s["verdict"], s["exit"], s["hunt_rounds"], s["race_windows"], s["first_evidence"]
    ('REPRODUCED', 1, 2, None, 'refcount_t: underflow')
    """
    try:
        v, code = extract(text)
    except ExtractError as e:
        return {"error": str(e)}
    out = {"verdict": v.get("verdict"), "exit": code, "reclaim": v.get("reclaim"), "mode": v.get("mode"),
           "total_seconds": v.get("total_seconds"), "guest_seconds": guest_seconds(text),
           "reclaim_errors": v.get("reclaim_errors"), "first_evidence": (v.get("evidence") or [None])[0]}
    for f in FIELDS + STRESS_FIELDS:
        out[f] = v.get(f)
    return out


def show(x):
    if x is None:
        return "null"
    return f"{x:.1f}" if isinstance(x, float) else str(x)


def main(argv):
    table = argv[:1] == ["--table"]
    logs = argv[1:] if table else argv
    if table:
        print("| log | exit | verdict | reclaim | mode | rounds | failing | race_windows | rounds_with_window "
              "| first_evidence_seconds | total_seconds | first evidence line |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for log in logs:
        with open(log, errors="replace") as f:
            s = summary(f.read())
        name = os.path.basename(log)
        if "error" in s:
            print(f"| {name} | no verdict: {s['error']} |" if table else f"{name}: no verdict: {s['error']}")
            continue
        if table:
            cells = [s["exit"], s["verdict"], s["reclaim"], s["mode"], *[s[f] for f in FIELDS], s["total_seconds"],
                     (s["first_evidence"] or "")[:60]]
            print(f"| {name} | " + " | ".join(show(c) for c in cells) + " |")
        else:
            fields = FIELDS if s["mode"] != "stress" else ["race_windows"] + STRESS_FIELDS
            print(f"{s['verdict']} exit {s['exit']} mode {s['mode']} reclaim {s['reclaim']} "
                  + " ".join(f"{f}={show(s[f])}" for f in fields) + f" reclaim_errors={show(s['reclaim_errors'])}"
                  + f" total_seconds={show(s['total_seconds'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

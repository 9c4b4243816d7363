"""Feeds KTAP documents to the parsers kernel CI uses and checks what they
make of them (mk/test-ktap.sh runs it):
  - the kernel's own, `tools/testing/kunit/kunit.py parse --json`
    (its test status: PASS, FAIL, SKIP; ERROR for a plan without a result);
  - the Python `tap` library (tappy), mapped to pass/fail/skip as LKFT's
    Linaro/test-definitions automated/linux/kselftest/parse-output.py does:
    ok -> pass, ok # SKIP -> skip, not ok -> fail.

Usage: ktap-parsers.py KUNIT_PY EXPECT FILE [EXPECT FILE ...]
       ktap-parsers.py --nested EXPECT_OUTER EXPECT_INNER FILE
EXPECT: pass, fail, skip, or missing (a plan without its result line).
--nested reads kselftest runner.sh output: the runner's own result, then
ours inside it, its `# ` prefix stripped the way parse-output.py recurses.
Exit 0 when every file reads as expected; one line per file either way.
"""

import json
import os
import subprocess
import sys
import tempfile

from tap.parser import Parser

KUNIT_STATUS = {"pass": "PASS", "fail": "FAIL", "skip": "SKIP"}


def tappy(text):
    """(results, planned): each result as (pass|fail|skip, description)."""
    results, planned = [], None
    for line in Parser().parse_text(text):
        if line.category == "plan":
            planned = line.expected_tests
        elif line.category == "test":
            verdict = "skip" if line.skip else ("pass" if line.ok else "fail")
            results.append((verdict, line.description))
    return results, planned


def tappy_reads(text, expect):
    results, planned = tappy(text)
    if expect == "missing":
        return (planned == 1 and not results), f"plan {planned}, {len(results)} results"
    ok = planned == 1 and len(results) == 1 and results[0][0] == expect
    return ok, f"plan {planned}, results {results}"


def kunit_reads(kunit_py, path, expect):
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "k.json")
        # kunit.py changes into the kernel tree: absolute paths only.
        p = subprocess.run([sys.executable, kunit_py, "parse", f"--json={out}", os.path.abspath(path)], capture_output=True, text=True)
        try:
            with open(out) as f:
                cases = json.load(f)["test_cases"]
        except (OSError, ValueError, KeyError) as e:
            return False, f"no JSON ({e}); output:\n{p.stdout}{p.stderr}"
    statuses = [(c["name"], c["status"]) for c in cases]
    errors = [l for l in p.stdout.splitlines() if "[ERROR]" in l]
    if expect == "missing":
        ok = bool(errors) and all(s != "PASS" for _, s in statuses)
    else:
        ok = len(statuses) == 1 and statuses[0][1] == KUNIT_STATUS[expect] and not errors
        ok = ok and statuses[0][0].startswith("btrfs_reclaim_repro")
    return ok, f"{statuses}{' ' + '; '.join(errors) if errors else ''}"


def main(argv):
    failed = 0
    if argv[0] == "--nested":
        outer_expect, inner_expect, path = argv[1:4]
        text = open(path).read()
        ok1, said1 = tappy_reads(text, outer_expect)
        inner = "\n".join(l[2:] if l.startswith("# ") else l[1:] if l == "#" else "" for l in text.splitlines()
                          if l.startswith("#"))
        ok2, said2 = tappy_reads(inner, inner_expect)
        ok = ok1 and ok2
        print(f"{'ok' if ok else 'FAIL'}: {path}: runner {outer_expect} ({said1}); nested {inner_expect} ({said2})")
        return 0 if ok else 1
    kunit_py, pairs = argv[0], argv[1:]
    for expect, path in zip(pairs[::2], pairs[1::2]):
        ok1, said1 = kunit_reads(kunit_py, path, expect)
        ok2, said2 = tappy_reads(open(path).read(), expect)
        ok = ok1 and ok2
        failed += not ok
        print(f"{'ok' if ok else 'FAIL'}: {os.path.basename(path)} reads as {expect}: kunit.py {said1}; tappy {said2}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

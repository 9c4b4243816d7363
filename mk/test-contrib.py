"""Tests of contrib/'s kernel-CI files (run by mk/test-contrib.sh, part of
`make test`), on stand-ins: nothing boots, no lab is contacted.

  - contrib/lava/btrfs-reclaim-repro.yaml: parsed as YAML; every
    `lava-test-case` call in its steps uses only the options lava-test-case
    takes (--shell, --result, --units, --measurement; anything else exits 1
    and ends a `set -e` job); then its steps run as LAVA runs them (the
    params as shell variables, `set -e`, one shell), with a stand-in binary
    that prints a golden KTAP document and exits with each --ktap code, and a
    stand-in lava-test-case that rejects what the real one rejects: the
    result must be pass/skip/fail as the code says, after the KTAP printed
    between <LAVA_SIGNAL_STARTTC btrfs-reclaim-repro> and
    <LAVA_SIGNAL_ENDTC btrfs-reclaim-repro>.
  - contrib/tuxrun/btrfs-reclaim-repro-lava: the same, run as the guest runs
    it; it exits 0 once the result is recorded.
  - contrib/tuxrun/run-tuxrun.sh: with a stand-in tuxrun, the overlay holds
    the binary and the wrapper, executable, and the command runs the wrapper.

Usage: test-contrib.py   (from the repository's top directory)
"""

import os
import shlex
import stat
import subprocess
import sys
import tarfile
import tempfile

import yaml

NAME = "btrfs-reclaim-repro"
START, END = f"<LAVA_SIGNAL_STARTTC {NAME}>", f"<LAVA_SIGNAL_ENDTC {NAME}>"
OPTIONS = {"--shell", "--result", "--units", "--measurement"}
RESULTS = {"pass", "fail", "skip", "unknown"}
GOLDEN = "tests/fixtures/golden/ktap"
# --ktap exit code -> (a golden document that goes with it, the LAVA result)
CASES = [
    (0, "not-reproduced", "pass"),
    (1, "reproduced", "fail"),
    (1, "refused", "fail"),
    (4, "inconclusive-v2", "skip"),
    (4, "not-root", "skip"),
    (143, "interrupted", "fail"),
]

# The stand-in lava-test-case: logs its arguments, fails as the real one
# does on an option it does not take or a result it does not know.
STUB_LTC = f"""#!{sys.executable}
import os, sys
a = sys.argv[1:]
with open(os.environ["LTC_LOG"], "a") as f:
    f.write(" ".join(a) + "\\n")
if not a or a[0].startswith("-"):
    sys.exit(1)
rest = a[1:]
if len(rest) % 2 or any(o not in {sorted(OPTIONS)!r} for o in rest[::2]):
    sys.exit(1)
if "--result" in rest and rest[rest.index("--result") + 1] not in {sorted(RESULTS)!r}:
    sys.exit(1)
"""

failures = 0


def check(ok, what, detail=""):
    global failures
    print(f"{'ok  ' if ok else 'FAIL'} {what}")
    if not ok:
        failures += 1
        for line in str(detail).splitlines():
            print(f"     | {line}")


def calls_in(text):
    """The arguments of every lava-test-case call in shell text."""
    calls = []
    for line in text.splitlines():
        if line.lstrip().startswith("#"):
            continue
        lex = shlex.shlex(line, posix=True, punctuation_chars=True)
        lex.whitespace_split = True
        toks = list(lex)
        for i, t in enumerate(toks):
            if t == "lava-test-case":
                args = []
                for a in toks[i + 1:]:
                    if a in (";", ";;", "&&", "||", "|", ")"):
                        break
                    args.append(a)
                calls.append(args)
    return calls


def static_calls_ok(where, text):
    calls = calls_in(text)
    check(len(calls) == 1, f"{where}: one lava-test-case call", calls)
    for args in calls:
        opts = args[1:]
        ok = args[:1] == [NAME] and len(opts) % 2 == 0 and all(o in OPTIONS for o in opts[::2])
        check(ok, f"{where}: lava-test-case {' '.join(args)} uses only {', '.join(sorted(OPTIONS))}", args)
        check("--shell" not in opts, f"{where}: the result is mapped, not --shell (which fails a skip)", args)


def stubs(tmp, code, doc):
    bindir = os.path.join(tmp, "bin")
    os.makedirs(bindir, exist_ok=True)
    ltc = os.path.join(bindir, "lava-test-case")
    with open(ltc, "w") as f:
        f.write(STUB_LTC)
    binary = os.path.join(tmp, "btrfs-reclaim-repro")
    with open(binary, "w") as f:
        f.write(f"#!/bin/sh\necho \"$*\" > {tmp}/args\ncat {os.path.abspath(doc)}\nexit {code}\n")
    for p in (ltc, binary):
        os.chmod(p, 0o755)
    # TMPDIR: the scripts keep the KTAP there while they print it (and remove it).
    env = dict(os.environ, PATH=bindir + os.pathsep + os.environ["PATH"], LTC_LOG=os.path.join(tmp, "ltc.log"), TMPDIR=tmp)
    return binary, env


def ran_right(where, code, doc, want, p, tmp):
    """The KTAP between the signals, then one lava-test-case with `want`."""
    out = p.stdout.splitlines()
    ktap = open(doc).read().splitlines()
    log = open(os.path.join(tmp, "ltc.log")).read().splitlines() if os.path.exists(os.path.join(tmp, "ltc.log")) else []
    inside = out[out.index(START) + 1:out.index(END)] if START in out and END in out else None
    ok = p.returncode == 0 and inside == ktap and log == [f"{NAME} --result {want}"]
    check(ok, f"{where}: exit {code} ({os.path.basename(doc)}) -> KTAP between the signals, result {want}",
          f"rc {p.returncode}\nlava-test-case calls: {log}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}")
    args = open(os.path.join(tmp, "args")).read().split()
    check(args[:1] == ["--ktap"], f"{where}: the binary runs with --ktap first", args)
    kept = os.path.join(tmp, "btrfs-reclaim-repro.ktap")
    check(not os.path.exists(kept), f"{where}: the KTAP file is removed once printed", kept)


def lava_definition():
    path = "contrib/lava/btrfs-reclaim-repro.yaml"
    d = yaml.safe_load(open(path))
    meta = d.get("metadata", {})
    check(meta.get("format") == "Lava-Test Test Definition 1.0" and meta.get("name") == NAME,
          f"{path}: a Lava-Test Test Definition 1.0 named {NAME}", meta)
    steps = d.get("run", {}).get("steps", [])
    check(bool(steps) and all(isinstance(s, str) for s in steps), f"{path}: run.steps are shell lines", steps)
    static_calls_ok(path, "\n".join(steps))
    params = d.get("params", {})
    for code, name, want in CASES:
        doc = os.path.join(GOLDEN, name + ".ktap")
        with tempfile.TemporaryDirectory() as tmp:
            binary, env = stubs(tmp, code, doc)
            # As lava-test-runner writes run.sh: params, set -e, the steps.
            lines = [f"{k}={shlex.quote(str(v))}" for k, v in params.items() if k != "BRR_BIN"]
            lines += [f"BRR_BIN={shlex.quote(binary)}", "set -e"] + steps
            script = os.path.join(tmp, "run.sh")
            with open(script, "w") as f:
                f.write("\n".join(lines) + "\n")
            p = subprocess.run(["sh", script], cwd=tmp, env=env, capture_output=True, text=True)
            ran_right(path, code, doc, want, p, tmp)


def tuxrun_wrapper():
    path = "contrib/tuxrun/btrfs-reclaim-repro-lava"
    static_calls_ok(path, open(path).read())
    for code, name, want in CASES:
        doc = os.path.join(GOLDEN, name + ".ktap")
        with tempfile.TemporaryDirectory() as tmp:
            binary, env = stubs(tmp, code, doc)
            env["BRR_BIN"] = binary
            p = subprocess.run(["sh", "-e", os.path.abspath(path), "--size", "3G", "/var/tmp/x.img", "/mnt/x"],
                               cwd=tmp, env=env, capture_output=True, text=True)
            ran_right(path, code, doc, want, p, tmp)


def tuxrun_example():
    path = os.path.abspath("contrib/tuxrun/run-tuxrun.sh")
    with tempfile.TemporaryDirectory() as tmp:
        os.makedirs(os.path.join(tmp, "dist"))
        os.makedirs(os.path.join(tmp, "bin"))
        with open(os.path.join(tmp, "dist", "btrfs-reclaim-repro-x86_64"), "w") as f:
            f.write("#!/bin/sh\nexit 0\n")
        log = os.path.join(tmp, "tuxrun.log")
        with open(os.path.join(tmp, "bin", "tuxrun"), "w") as f:
            f.write(f"#!/bin/sh\nfor a; do printf '%s\\n' \"$a\"; done > {log}\n")
        os.chmod(os.path.join(tmp, "bin", "tuxrun"), 0o755)
        env = dict(os.environ, PATH=os.path.join(tmp, "bin") + os.pathsep + os.environ["PATH"])
        p = subprocess.run(["sh", path, "x86_64", "/boot/bzImage"], cwd=tmp, env=env, capture_output=True, text=True)
        args = open(log).read().splitlines() if os.path.exists(log) else []
        check(p.returncode == 0 and "--overlay" in args, "run-tuxrun.sh: runs tuxrun with an overlay",
              f"rc {p.returncode}\n{p.stderr}\n{args}")
        if "--overlay" not in args:
            return
        overlay = args[args.index("--overlay") + 1]
        with tarfile.open(overlay) as t:
            members = {m.name: m for m in t.getmembers()}
        want = ["usr/local/bin/btrfs-reclaim-repro", "usr/local/bin/btrfs-reclaim-repro-lava"]
        check(all(w in members and members[w].mode & stat.S_IXUSR for w in want),
              "run-tuxrun.sh: the overlay holds the binary and the wrapper, executable", sorted(members))
        cmd = args[args.index("--") + 1] if "--" in args else ""
        check(cmd.split()[:1] == ["btrfs-reclaim-repro-lava"] and "command-name=btrfs-reclaim-repro-run" in args,
              "run-tuxrun.sh: the commands test runs the wrapper (under its own case name)", args)


lava_definition()
tuxrun_wrapper()
tuxrun_example()
print(f"contrib: {'all passed' if not failures else f'{failures} failed'}")
sys.exit(1 if failures else 0)

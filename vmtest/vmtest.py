#!/usr/bin/env python3
"""Host side of the VM test tier (`make vm-test`).

For each row of vmtest/rows.py: boot the row's kernel (a path relative to
../shared/vm) the way its runner says (RUNNERS; "busybox": the architecture's
shared script, ../shared/vm/run-vm for x86_64 or ../shared/vm/arm64/run-vm-arm64
for aarch64, runs vmtest/payload.sh, which runs that architecture's static
binary, dist/btrfs-reclaim-repro-<arch>, with --json on /dev/vda, or with
--ktap when the row's args have it; "vm": the binary's own --vm, its stdout
read as JSON or KTAP), keep the console log as
target/vm-logs/<row>.log, cut the verdict JSON (or the KTAP, read into a dict:
extract_ktap) and the exit code out of it (between the payload's marker lines)
and check the row's expectations. Prints one PASS/FAIL/SKIP line per row, then "N passed, M failed"
alone on the last line; exits 1 when a row failed.

The guest has only busybox: everything JSON happens here, with python3's json.
"""

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
# The repository's root: a row's kernel written "repo:<path>" is a file of
# this repository (vmtest/kernels/), not of the shared vm/ folder.
REPO = os.path.dirname(HERE)
REPO_PREFIX = "repo:"
sys.path.insert(0, HERE)
from rows import ROWS  # noqa: E402

VERDICT_BEGIN = "===BRR-VERDICT-BEGIN==="
VERDICT_END = "===BRR-VERDICT-END==="
PROGRESS_BEGIN = "===BRR-PROGRESS-BEGIN==="
PROGRESS_END = "===BRR-PROGRESS-END==="
EXIT_RE = re.compile(r"===BRR-EXIT-CODE=(\d+)===")
# A kernel console line ("[   12.345678] text"): only ever dropped from the
# verdict block when the JSON does not parse as it is.
KERNEL_LINE_RE = re.compile(r"^\[\s*\d+\.\d+\] ")
# What the host itself calls kernel trouble in a console log (console_clean).
TROUBLE_RE = re.compile(
    r"WARNING:|BUG:|kernel BUG at|refcount_t:|Oops|general protection|Kernel panic|"
    r"list_(add|del) corruption|unreferenced object|Transaction aborted|Call Trace:|"
    # arm64 says these (and "Call trace:", lower case) where x86 says Oops/general protection
    r"Internal error:|Unable to handle kernel|Call trace:"
)
RUN_VM_STATUS = {250: "VM timeout", 251: "VM died before the payload finished (panic?)",
                 252: "run-vm usage/setup error", 253: "run-vm --fail-on-warn"}
DEFAULT_TIMEOUT = 180

# Per architecture: the busybox runner's script (relative to --vm-dir) and the
# binary's name in --dist. The scripts share options, markers and codes.
ARCHES = {
    "x86_64": dict(script="run-vm", binary="btrfs-reclaim-repro-x86_64"),
    "aarch64": dict(script="arm64/run-vm-arm64", binary="btrfs-reclaim-repro-aarch64"),
}
# A row's initramfs: the runners' default (busybox, mkfs.btrfs, btrfs) or
# busybox alone (--no-btrfs-progs: no mkfs.btrfs, no glibc in the guest).
INITRAMFS = {"btrfs-progs": [], "busybox-only": ["--no-btrfs-progs"]}


def row_arch(row):
    return row.get("arch", "x86_64")


def kernel_path(row, a):
    """The row's kernel image: its `kernel`, relative to the shared vm/ folder,
    or, written "repo:<path>", relative to this repository.

    >>> class A: vm_dir = "/vm"
    >>> kernel_path(dict(kernel="kernels-6.1/bzImage-6.1-stock"), A)
    '/vm/kernels-6.1/bzImage-6.1-stock'
    >>> kernel_path(dict(kernel="repo:vmtest/kernels/bzImage-x"), A) == os.path.join(REPO, "vmtest", "kernels", "bzImage-x")
    True
    """
    k = row["kernel"]
    if k.startswith(REPO_PREFIX):
        return os.path.join(REPO, k[len(REPO_PREFIX):])
    return os.path.join(a.vm_dir, k)


def busybox_command(row, a, log_path, timeout):
    """The busybox runner: the arch's shared script boots the kernel with its
    busybox initramfs, the binary as a file in it, and runs vmtest/payload.sh.

    >>> class A: vm_dir, dist, payload = "/vm", "/d", "/p.sh"
    >>> row = dict(kernel="arm64/kernels/Image-stock", arch="aarch64", initramfs="busybox-only", args=["--x"])
    >>> busybox_command(row, A, "/l", 99)[:4]
    ['/vm/arm64/run-vm-arm64', '--kernel', '/vm/arm64/kernels/Image-stock', '--disk-size']
    >>> c = busybox_command(dict(kernel="kernels-6.1/bzImage-6.1-stock", args=[]), A, "/l", 99)
    >>> c[0], c[2], c[c.index("--file") + 1], c[-2:], "--no-btrfs-progs" in c
    ('/vm/run-vm', '/vm/kernels-6.1/bzImage-6.1-stock', '/d/btrfs-reclaim-repro-x86_64', ['/p.sh', 'btrfs-reclaim-repro-x86_64'], False)
    """
    arch = ARCHES[row_arch(row)]
    binary = os.path.join(a.dist, arch["binary"])
    return [os.path.join(a.vm_dir, arch["script"]), "--kernel", kernel_path(row, a),
            "--disk-size", row.get("disk", "3G"), "--log", log_path, "--timeout", str(int(timeout)), "--no-devargs",
            "--file", binary, *INITRAMFS[row.get("initramfs", "btrfs-progs")], *row.get("vm", []),
            "--", a.payload, arch["binary"], *row.get("args", [])]


def vm_mode_command(row, a, log_path, timeout):
    """The command line of a row run through the binary's own --vm (runner "vm").

    >>> class A: vm_dir, dist = "/vm", "/d"
    >>> vm_mode_command(dict(kernel="kernels/bzImage-stock", args=["--seed", "1"]), A, "/l", 99)
    ['/d/btrfs-reclaim-repro-x86_64', '--vm', '/vm/kernels/bzImage-stock', '--json', '--vm-console', '/l', '--vm-timeout', '89', '--seed', '1']
    >>> vm_mode_command(dict(kernel="k", args=["--ktap"]), A, "/l", 99)[1:]
    ['--vm', '/vm/k', '--vm-console', '/l', '--vm-timeout', '89', '--ktap']
    >>> vm_mode_command(dict(kernel="k", user="nobody", args=["--vm-timeout", "20"]), A, "/l", 99)[:5]
    ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', '/d/btrfs-reclaim-repro-x86_64']
    """
    # The host binary is always the x86_64 one: an arm64 kernel boots with
    # the aarch64 binary found next to it in dist/. A --ktap row prints KTAP
    # instead of the JSON (the binary refuses both).
    cmd = [os.path.join(a.dist, ARCHES["x86_64"]["binary"]), "--vm", kernel_path(row, a),
           *([] if ktap_row(row) else ["--json"]), "--vm-console", log_path]
    if "--vm-timeout" not in row.get("args", []):
        # The binary's own deadline first, so that it, not the tier, kills QEMU.
        cmd += ["--vm-timeout", str(max(10, int(timeout) - 10))]
    cmd += row.get("args", [])
    if row.get("user") == "nobody":
        cmd = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] + cmd
    return cmd


def qemu_of_ours():
    """Pids of running QEMUs started by --vm (their results disk's serial says so)."""
    out = subprocess.run(["pgrep", "-f", "serial=brr-results"], stdout=subprocess.PIPE, text=True).stdout
    return [int(p) for p in out.split()]


def run_vm_mode_row(row, a, timeout):
    """Run a --vm row: (exit status, console log text, wall seconds, verdict JSON or None, stdout, leftovers).

    The binary runs with a TMPDIR of its own, which must be empty after it,
    and no QEMU of ours may be left. `interrupt` sends a signal once a
    stderr line matches (Ctrl-C during boot or the pass, SIGKILL of the host);
    with `group`, to its process group, QEMU included.
    """
    log_path = os.path.join(a.logs, row["name"] + ".log")
    # An unprivileged row writes its console into a file the tier owns.
    with open(log_path, "w"):
        pass
    os.chmod(log_path, 0o666)
    cmd = vm_mode_command(row, a, log_path, timeout)
    tmp = tempfile.mkdtemp(prefix="vmtest-tmpdir-")
    os.chmod(tmp, 0o1777)
    env = dict(os.environ, TMPDIR=tmp, **row.get("env", {}))
    intr = row.get("interrupt")
    t0 = time.monotonic()
    # A session of its own: a `group` interrupt reaches QEMU too, as a
    # terminal's Ctrl-C does, and never this script.
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, errors="replace", env=env,
                         start_new_session=True)
    err_lines, sent = [], None

    def read_stderr():
        nonlocal sent
        for line in p.stderr:
            err_lines.append(line)
            if intr and sent is None and re.search(intr["when"], line):
                sent = line.strip() + (f" (+{intr['after']} s)" if intr.get("after") else "")
                time.sleep(intr.get("after", 0))
                sig = getattr(signal, "SIG" + intr["signal"])
                if intr.get("group"):
                    os.killpg(p.pid, sig)
                else:
                    p.send_signal(sig)

    # Each pipe has one reader (communicate() would race read_stderr for the lines).
    out_parts = []
    readers = [threading.Thread(target=read_stderr), threading.Thread(target=lambda: out_parts.append(p.stdout.read()))]
    for r in readers:
        r.start()
    try:
        status = p.wait(timeout=timeout + 30)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        status = 250
        err_lines.append(f"vmtest: the binary ran past {timeout + 30:.0f} s and was killed\n")
    for r in readers:
        r.join()
    out = "".join(out_parts)
    wall = time.monotonic() - t0
    if status < 0:
        status = 128 - status  # killed by a signal: as a shell reports it
    leftovers = []
    # PR_SET_PDEATHSIG: a QEMU whose host process was SIGKILLed dies with it, at once.
    for _ in range(20):
        if not qemu_of_ours():
            break
        time.sleep(0.1)
    else:
        leftovers.append(f"QEMU still running: pids {qemu_of_ours()}")
    left_files = os.listdir(tmp)
    if left_files:
        leftovers.append(f"left in TMPDIR: {left_files}")
    shutil.rmtree(tmp, ignore_errors=True)
    with open(log_path, "a", encoding="utf-8", errors="replace") as f:
        f.write("\n==== btrfs-reclaim-repro --vm (host stderr) ====\n$ " + " ".join(cmd) + "\n" + "".join(err_lines)
                + (f"vmtest: sent SIG{intr['signal']} after: {sent}\n" if sent else "") + f"exit status {status}\n")
    with open(log_path, encoding="utf-8", errors="replace") as f:
        log = f.read()
    if intr and sent is None:
        leftovers.append(f"no stderr line matched {intr['when']!r}: SIG{intr['signal']} never sent")
    return status, log, wall, vm_mode_verdict(row, out, status), out, leftovers


def vm_mode_verdict(row, out, status):
    """What the checks of a --vm row read from the binary's stdout: the JSON
    verdict; the KTAP as ktap_document reads it (--ktap rows; its exit_code
    the binary's); or the text of --check as "stdout". None when nothing
    usable was printed.

    >>> vm_mode_verdict(dict(args=["--ktap"]), "KTAP version 1\\n1..1\\n# vm:       x\\nnot ok 1 b\\n", 1)["exit_code"]
    1
    >>> vm_mode_verdict(dict(args=["--ktap"]), "KTAP version 1\\n1..1\\n", 137) is None
    True
    """
    if ktap_row(row):
        try:
            k = ktap_document(out.split("\n"))
        except ExtractError:
            return None
        k["exit_code"] = status
        return k
    try:
        return json.loads(out)
    except ValueError:
        # --check prints its findings, not a verdict: the checks read them as "stdout".
        return {"stdout": out, "exit_code": status} if out.strip() else None


def killed_failures(row, status, out):
    """A no_verdict row (the host binary SIGKILLed): its exit status, and its
    stdout exactly as the row's `stdout` says (default: nothing; --ktap
    after its plan went out: the plan without a result).

    >>> killed_failures(dict(exit=137), 137, "")
    []
    >>> killed_failures(dict(exit=137), 125, "== x ==\\n")
    ['exit status 125, want 137', "stdout '== x ==\\\\n', want ''"]
    >>> killed_failures(dict(exit=137, stdout="KTAP version 1\\n1..1\\n"), 137, "")
    ["stdout '', want 'KTAP version 1\\\\n1..1\\\\n'"]
    """
    want = row.get("stdout", "")
    return ([f"exit status {status}, want {row['exit']}"] if status != row["exit"] else []) + \
        ([f"stdout {out[:300]!r}, want {want!r}"] if out != want else [])


BISECT_SCRIPT = """#!/bin/sh
# One `git bisect run` step: the commit's file `kernel` names the kernel.
n=$(($(cat "$BRR_COUNT") + 1)); echo $n > "$BRR_COUNT"
if [ -n "$BRR_VANISH_AFTER" ] && [ $n -gt "$BRR_VANISH_AFTER" ]; then rm -f "$BRR_QEMU_DIR"/qemu-system-*; fi
kernel=$(head -n 1 kernel)
PATH=$BRR_QEMU_DIR exec "$BRR_BIN" --vm "$kernel" --vm-timeout 120
"""


def run_bisect_row(row, a, timeout):
    """`git bisect run` over a repository whose commits name kernels (runner "bisect").

    Returns (failures, summary, wall, log text).
    """
    work = tempfile.mkdtemp(prefix="vmtest-bisect-")
    repo, qdir, count = os.path.join(work, "repo"), os.path.join(work, "qemu"), os.path.join(work, "count")
    os.makedirs(repo)
    os.makedirs(qdir)
    # QEMU reaches the binary only through this folder, which the step may empty.
    os.symlink(shutil.which("qemu-system-x86_64"), os.path.join(qdir, "qemu-system-x86_64"))
    with open(count, "w") as f:
        f.write("0")
    script = os.path.join(work, "step.sh")
    with open(script, "w") as f:
        f.write(BISECT_SCRIPT)
    os.chmod(script, 0o755)
    git = ["git", "-c", "user.name=vmtest", "-c", "user.email=vmtest@localhost", "-C", repo]
    run = lambda *args: subprocess.run(git + list(args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,  # noqa: E731
                                       text=True, timeout=timeout)
    run("init", "-q")
    shas = []
    for i, k in enumerate(row["kernels"], 1):
        with open(os.path.join(repo, "kernel"), "w") as f:
            # The second line makes each commit a change, also for the same kernel.
            f.write(os.path.abspath(os.path.join(a.vm_dir, k)) + f"\nc{i}\n")
        run("add", "kernel")
        c = run("commit", "-qm", f"c{i}: {os.path.basename(k)}")
        if c.returncode != 0:
            raise RuntimeError(f"git commit c{i}: {c.stdout}")
        shas.append(run("rev-parse", "HEAD").stdout.strip())
    env = dict(os.environ, BRR_COUNT=count, BRR_QEMU_DIR=qdir, BRR_VANISH_AFTER=str(row.get("qemu_vanishes_after", "")),
               BRR_BIN=os.path.join(a.dist, ARCHES["x86_64"]["binary"]), TMPDIR=work)
    t0 = time.monotonic()
    run("bisect", "start", shas[-1], shas[0])
    p = subprocess.run(git + ["bisect", "run", script], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       errors="replace", timeout=timeout, env=env)
    wall = time.monotonic() - t0
    run("bisect", "reset")
    with open(count) as f:
        steps = int(f.read().strip())
    shutil.rmtree(work, ignore_errors=True)
    found = re.search(r"^([0-9a-f]{40}) is the first bad commit", p.stdout, re.M)
    want = row.get("first_bad")
    failures = []
    if want is None:
        if found or p.returncode == 0:
            failures.append(f"the bisect should abort (QEMU gone: exit 255), but it ended with status {p.returncode}"
                            + (f", naming {found.group(1)[:12]}" if found else ""))
        summary = f"aborted after {steps} step(s), status {p.returncode}"
    else:
        if not found or found.group(1) != shas[want - 1]:
            failures.append(f"want c{want} ({shas[want - 1][:12]}) as the first bad commit, got "
                            + (found.group(1)[:12] if found else "none") + f" (status {p.returncode})")
        summary = f"c{want} is the first bad commit, {steps} step(s)"
    leftovers = qemu_of_ours()
    if leftovers:
        failures.append(f"QEMU still running: pids {leftovers}")
    return failures, summary, wall, f"$ git bisect run {script}\n" + p.stdout


def vm_mode_timing(v):
    """ "boot 0.4+2.2 s, pass 0.9 s, ours 0.2 s" from the verdict's vm facts.

    >>> vm_mode_timing({"vm": {"before_kernel_seconds": 0.4, "kernel_boot_seconds": 2.25, "pass_seconds": None}})
    ', boot 0.4+2.2 s, pass ? s, ours ? s'
    """
    f = v.get("vm") if isinstance(v, dict) else None
    if isinstance(f, str):  # --ktap: the `# vm:` diagnostic
        return f", vm: {f}"
    if not isinstance(f, dict):
        return ""
    n = lambda k: "?" if not isinstance(f.get(k), (int, float)) else f"{f[k]:.1f}"  # noqa: E731
    return (f", boot {n('before_kernel_seconds')}+{n('kernel_boot_seconds')} s, pass {n('pass_seconds')} s, "
            f"ours {n('ours_seconds')} s")


# A row's `runner`: how its VM boots and runs the binary. Each takes (row,
# args, console log path, timeout) and returns the command line, which exits
# with the payload's status or one of RUN_VM_STATUS and leaves the console
# log, verdict markers included, at the log path.
RUNNERS = {"busybox": busybox_command}
# Runners that are not a command line with console markers: "vm" runs the
# binary's own --vm (JSON on stdout, its exit code; run_vm_mode_row), and
# "bisect" runs `git bisect run` with it over a repository the row makes
# (run_bisect_row).
OWN_RUNNERS = ("vm", "bisect")


def vm_command(row, a, log_path, timeout):
    """The command line for one row, from its runner."""
    return RUNNERS[row["runner"]](row, a, log_path, timeout)


class ExtractError(Exception):
    pass


def console_lines(text):
    """The console log as lines, without the serial line's carriage returns."""
    return text.replace("\r", "").split("\n")


def _marker_indexes(lines, marker):
    return [i for i, line in enumerate(lines) if line.strip() == marker]


def section(lines, begin, end):
    """Lines strictly between the one `begin` marker line and the next `end` one."""
    starts = _marker_indexes(lines, begin)
    if len(starts) != 1:
        raise ExtractError(f"{len(starts)} '{begin}' marker lines in the log (want exactly 1)")
    ends = [i for i in _marker_indexes(lines, end) if i > starts[0]]
    if not ends:
        raise ExtractError(f"no '{end}' marker line after '{begin}' (output cut short?)")
    return lines[starts[0] + 1:ends[0]]


def extract(text):
    """Cut (verdict dict, exit code) out of a console log; ExtractError when not there.

    >>> log = "[ 1.0] boot\\r\\n===BRR-VERDICT-BEGIN===\\r\\n{\\"verdict\\": \\"X\\"}\\r\\n\\r\\n"
    >>> log += "===BRR-VERDICT-END===\\r\\n===BRR-EXIT-CODE=3===\\r\\nHARNESS-EXIT=3\\r\\n"
    >>> extract(log)
    ({'verdict': 'X'}, 3)
    """
    lines = console_lines(text)
    body = section(lines, VERDICT_BEGIN, VERDICT_END)
    raw = "\n".join(body).strip()
    if not raw:
        raise ExtractError("empty verdict block: the binary printed no JSON on stdout")
    try:
        verdict = json.loads(raw)
    except ValueError as first:
        # A kernel message slipped in despite `dmesg -n 1`: drop console lines.
        kept = "\n".join(line for line in body if not KERNEL_LINE_RE.match(line)).strip()
        try:
            verdict = json.loads(kept)
        except ValueError:
            raise ExtractError(f"verdict block is not JSON ({first}): {raw[:300]!r}") from None
    if not isinstance(verdict, dict):
        raise ExtractError(f"verdict JSON is a {type(verdict).__name__}, not an object")
    codes = [m.group(1) for m in (EXIT_RE.fullmatch(line.strip()) for line in lines) if m]
    if len(codes) != 1:
        raise ExtractError(f"{len(codes)} '===BRR-EXIT-CODE=<n>===' marker lines in the log (want exactly 1)")
    return verdict, int(codes[0])


KTAP_RESULT_RE = re.compile(r"^(ok|not ok) (\d+) ([^#]*?)(?: # (.*))?$")


def extract_ktap(text):
    """Cut a --ktap run's KTAP out of a console log, as (dict, exit code); the
    dict has what the checks read: version, plan, result ("ok"/"not ok"),
    number, name, directive ("" or "SKIP ..."/"ERROR ..."), diagnostics (the
    `# ` lines, prefix removed), verdict and reason (from those lines) and
    exit_code (the payload's marker). ExtractError when the block is not one
    KTAP document: version, plan 1..1, `# ` lines, one result line.

    >>> log = "===BRR-VERDICT-BEGIN===\\r\\nKTAP version 1\\r\\n1..1\\r\\n# btrfs-reclaim-repro 0.1.0: REPRODUCED\\r\\n"
    >>> log += "# reason:   refcount_t: underflow\\r\\n[ 9.1] late console line\\r\\nnot ok 1 btrfs_reclaim_repro\\r\\n"
    >>> log += "===BRR-VERDICT-END===\\r\\n===BRR-EXIT-CODE=1===\\r\\n"
    >>> k, code = extract_ktap(log)
    >>> k["result"], k["name"], k["directive"], k["verdict"], k["reason"], code
    ('not ok', 'btrfs_reclaim_repro', '', 'REPRODUCED', 'refcount_t: underflow', 1)
    """
    lines = console_lines(text)
    k = ktap_document([line for line in section(lines, VERDICT_BEGIN, VERDICT_END) if not KERNEL_LINE_RE.match(line)])
    codes = [m.group(1) for m in (EXIT_RE.fullmatch(line.strip()) for line in lines) if m]
    if len(codes) != 1:
        raise ExtractError(f"{len(codes)} '===BRR-EXIT-CODE=<n>===' marker lines in the log (want exactly 1)")
    k["exit_code"] = int(codes[0])
    return k, int(codes[0])


def ktap_document(body):
    """One KTAP document's lines (a console's, or --vm's stdout) as the dict
    extract_ktap describes, without exit_code; ExtractError when they are not
    one document. `vm` is the host's `# vm:` diagnostic (--vm), or None.

    >>> k = ktap_document(["KTAP version 1", "1..1", "# btrfs-reclaim-repro 0.1.0: INCONCLUSIVE",
    ...                    "# vm:       x86_64 under TCG", "ok 1 btrfs_reclaim_repro # SKIP no btrfs", ""])
    >>> k["result"], k["directive"], k["verdict"], k["reason"], k["vm"]
    ('ok', 'SKIP no btrfs', 'INCONCLUSIVE', None, 'x86_64 under TCG')
    """
    body = list(body)
    while body and not body[-1].strip():
        body.pop()
    if len(body) < 3 or body[0] != "KTAP version 1" or body[1] != "1..1":
        raise ExtractError(f"not a KTAP document (version line, plan 1..1 first): {body[:3]!r}")
    m = KTAP_RESULT_RE.match(body[-1])
    if not m:
        raise ExtractError(f"the last line is no KTAP result: {body[-1]!r}")
    middle = body[2:-1]
    stray = [line for line in middle if not (line == "#" or line.startswith("# "))]
    if stray:
        raise ExtractError(f"lines between the plan and the result that are not diagnostics: {stray[:3]!r}")
    diagnostics = [line[2:] for line in middle]
    k = dict(version=body[0], plan=body[1], result=m.group(1), number=int(m.group(2)), name=m.group(3).strip(),
             directive=m.group(4) or "", diagnostics=diagnostics)
    head = re.match(r"btrfs-reclaim-repro .*: ([A-Z ]+)$", diagnostics[0]) if diagnostics else None
    k["verdict"] = head.group(1) if head else None
    k["reason"] = next((d.split(":", 1)[1].strip() for d in diagnostics if d.startswith("reason:")), None)
    k["vm"] = next((d.split(":", 1)[1].strip() for d in diagnostics if d.startswith("vm:")), None)
    return k


def ktap_row(row):
    """A row whose binary prints KTAP (--ktap in its args) instead of JSON."""
    return "--ktap" in row.get("args", [])


def progress(text):
    """The binary's stderr (progress and text verdict), [] when absent."""
    try:
        return section(console_lines(text), PROGRESS_BEGIN, PROGRESS_END)
    except ExtractError:
        return []


def kernel_trouble(text):
    """Console lines outside the payload's marker blocks that look like kernel trouble."""
    out, inside = [], False
    for line in console_lines(text):
        s = line.strip()
        if s in (VERDICT_BEGIN, PROGRESS_BEGIN):
            inside = True
        elif s in (VERDICT_END, PROGRESS_END):
            inside = False
        elif not inside and TROUBLE_RE.search(line):
            out.append(s)
    return out


# ---- checks -----------------------------------------------------------------

CHECK_RE = re.compile(r"^\s*([\w.]+)\s*(==|!=|>=|<=|>|<|~|\bin\b|\bcontains\b)\s*(.*?)\s*$")
MISSING = object()


def _value(s):
    try:
        return json.loads(s)
    except ValueError:
        return s


def _compare(actual, op, expected):
    if op == "==":
        return actual == expected
    if op == "!=":
        return actual != expected
    if op == "in":
        return actual in expected
    if op == "contains":
        return isinstance(actual, str) and str(expected) in actual
    if op == "~":
        items = actual if isinstance(actual, list) else [actual]
        return any(isinstance(x, str) and re.search(str(expected), x) for x in items)
    if not isinstance(actual, (int, float)) or isinstance(actual, bool):
        return False
    return {">=": actual >= expected, "<=": actual <= expected, ">": actual > expected, "<": actual < expected}[op]


def _events(v):
    ev = v.get("events")
    return ev if isinstance(ev, list) else []


def check_inject_reloc_reclaim_same_pid(v, ctx):
    """Per injection: the block group's next reloc_put and reclaim_put come from the injecting pid."""
    ev = _events(v)
    if "events" not in v:
        return False, "no 'events' key in the JSON"
    injects = [i for i, e in enumerate(ev) if e.get("kind") == "inject"]
    if not injects:
        return False, "no inject event in 'events'"
    bad = []
    for i in injects:
        bg, pid = ev[i].get("bg"), ev[i].get("pid")
        seen = {}
        for e in ev[i + 1:]:
            if e.get("bg") != bg:
                continue
            kind = e.get("kind")
            if kind == "inject":
                break
            if kind in ("reloc_put", "reclaim_put") and kind not in seen:
                seen[kind] = e.get("pid")
        for kind in ("reloc_put", "reclaim_put"):
            if kind not in seen:
                bad.append(f"bg {bg}: inject by pid {pid}, no {kind} after it")
            elif seen[kind] != pid:
                bad.append(f"bg {bg}: inject by pid {pid}, {kind} by pid {seen[kind]}")
    if bad:
        return False, "; ".join(bad[:5]) + (f" (+{len(bad) - 5} more)" if len(bad) > 5 else "")
    return True, f"{len(injects)} injection(s), each with reloc_put and reclaim_put from the same pid"


def check_inject_by_balance_tid(v, ctx):
    tid = v.get("balance_tid")
    if not isinstance(tid, int) or isinstance(tid, bool):
        return False, f"balance_tid is {tid!r}, not an integer"
    pids = sorted({e.get("pid") for e in _events(v) if e.get("kind") == "inject"}, key=str)
    if tid in pids:
        return True, f"an inject event carries balance_tid {tid}"
    return False, f"no inject event from balance_tid {tid} (inject pids: {pids})"


def check_suspected_names_overlap(v, ctx):
    if v.get("verdict") != "SUSPECTED":
        return True, "not SUSPECTED"
    reason = str(v.get("reason", ""))
    if re.search(r"overlap", reason) and re.search(r"block group \d+", reason) and len(re.findall(r"pid \d+", reason)) >= 2:
        return True, "reason names the overlap"
    return False, f"SUSPECTED but the reason does not name the block group, both pids and the overlap: {reason!r}"


def check_console_clean(v, ctx):
    trouble = kernel_trouble(ctx.get("log", ""))
    if trouble:
        return False, f"{len(trouble)} kernel trouble line(s) in the console log, first: {trouble[0]!r}"
    return True, "console log clean"


def check_no_reclaim_loop(v, ctx):
    """The endless-loop detector stayed silent: no reclaim_loop object, no loop known_bug."""
    if v.get("reclaim_loop") is not None or "4eb4e85c4f81;" in str(v.get("known_bug", "")):
        return False, f"reclaim loop reported: {v.get('reclaim_loop')!r} {v.get('known_bug')!r}"
    return True, "no reclaim loop reported"


def check_reclaim_loop_within_60s(v, ctx):
    """The loop was evidence within 60 s of its group's first failed attempt."""
    lo = v.get("reclaim_loop")
    if not isinstance(lo, dict):
        return False, "no reclaim_loop object"
    secs = lo.get("seconds")
    if not isinstance(secs, (int, float)) or secs > 60:
        return False, f"reclaim_loop.seconds {secs!r}, want <= 60"
    return True, f"block group {lo.get('bg')}: {lo.get('failed_attempts')} failed attempts in {secs} s"


def check_reclaim_loop_stopped(v, ctx):
    """After the loop the run unmounted, and said whether that stopped it."""
    lo = v.get("reclaim_loop")
    if not isinstance(lo, dict) or lo.get("stopped_by_unmount") is not True:
        return False, f"reclaim_loop.stopped_by_unmount is {lo.get('stopped_by_unmount') if isinstance(lo, dict) else None!r}"
    return True, "the unmount returned and stopped the loop"


NAMED_CHECKS = {
    "no_reclaim_loop": check_no_reclaim_loop,
    "reclaim_loop_within_60s": check_reclaim_loop_within_60s,
    "reclaim_loop_stopped": check_reclaim_loop_stopped,
    "inject_reloc_reclaim_same_pid": check_inject_reloc_reclaim_same_pid,
    "inject_by_balance_tid": check_inject_by_balance_tid,
    "suspected_names_overlap": check_suspected_names_overlap,
    "console_clean": check_console_clean,
    "no_verdict": lambda v, ctx: (v is None, "no verdict expected"),
    "bisect": lambda v, ctx: (True, "judged by the bisect's outcome"),
}


def lookup(v, key):
    """v[key], where a dotted key walks into objects ("vm.accel"); MISSING when absent.

    >>> lookup({"vm": {"accel": "tcg"}}, "vm.accel"), lookup({"vm": {}}, "vm.accel") is MISSING
    ('tcg', True)
    """
    for part in key.split("."):
        if not isinstance(v, dict) or part not in v:
            return MISSING
        v = v[part]
    return v


def run_check(check, v, ctx=None):
    """(ok, message) for one check string of the table.

    >>> run_check("injections >= 1", {"injections": 2})
    (True, 'injections >= 1')
    >>> run_check('space_cache == "v1"', {"space_cache": "v2"})
    (False, "space_cache == 'v1': got 'v2'")
    >>> run_check("evidence ~ refcount_t: .* use-after-free\\\\.", {"evidence": ["x", "refcount_t: underflow; use-after-free."]})[0]
    True
    >>> run_check("kmemleak == 0", {})
    (False, 'kmemleak == 0: no such key')
    """
    ctx = ctx or {}
    name = check.strip()
    if name in NAMED_CHECKS:
        ok, msg = NAMED_CHECKS[name](v, ctx)
        return ok, f"{name}: {msg}"
    m = CHECK_RE.match(check)
    if not m:
        raise ValueError(f"bad check {check!r}")
    key, op, expected = m.group(1), m.group(2), _value(m.group(3))
    actual = lookup(v, key)
    if actual is MISSING:
        return False, f"{check.strip()}: no such key"
    if _compare(actual, op, expected):
        return True, check.strip()
    shown = actual if not isinstance(actual, str) or len(actual) < 200 else actual[:200] + "..."
    return False, f"{key} {op} {expected!r}: got {shown!r}"


def evaluate(row, verdict, exit_marker, status, log):
    """(failures, missing_feature_keys) for one row's run.

    >>> row = dict(name="r", kernel="k", exit=0, checks=["verdict == NOT_REPRODUCED", "kmemleak == 0"],
    ...            requires_keys=["kmemleak"])
    >>> evaluate(row, {"verdict": "NOT_REPRODUCED", "exit_code": 0}, 0, 0, "")
    ([], ['kmemleak'])
    >>> evaluate(row, {"verdict": "REPRODUCED", "exit_code": 1}, 1, 1, "")[0]
    ['exit code 1 (JSON exit_code 1, marker 1, run-vm 1), want 0', "verdict == 'NOT_REPRODUCED': got 'REPRODUCED'"]
    """
    want = row["exit"] if isinstance(row["exit"], list) else [row["exit"]]
    failures = []
    codes = (verdict.get("exit_code"), exit_marker, status)
    if len(set(codes)) != 1 or codes[0] not in want:
        failures.append(f"exit code {exit_marker} (JSON exit_code {codes[0]}, marker {exit_marker}, run-vm {status}), "
                        f"want {' or '.join(map(str, want))}")
    missing = [k for k in row.get("requires_keys", []) if k not in verdict]
    for check in row["checks"]:
        m = CHECK_RE.match(check)
        if m and m.group(1) in missing:
            continue  # judged as a missing feature, not as a failure
        ok, msg = run_check(check, verdict, {"log": log})
        if not ok:
            failures.append(msg)
    return failures, missing


# ---- running ----------------------------------------------------------------

def help_options(binary):
    """Options the binary's --help offers (Usage line and the Options list, not the examples)."""
    out = subprocess.run([binary, "--help"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=30).stdout
    return parse_help_options(out)


def parse_help_options(text):
    """
    >>> t = "Usage: b [--fill <fill>] [-f] [--json]\\n\\nOptions:\\n  --fill    fill\\n  -f, --force  f\\n"
    >>> t += "                    --not-an-option in a description\\nExamples:\\n      b --stress 300 /dev/vdb /mnt\\n"
    >>> sorted(parse_help_options(t))
    ['--fill', '--force', '--json']
    """
    opts = set()
    for line in text.splitlines():
        if line.startswith("Usage:"):
            opts.update(re.findall(r"\[(--[A-Za-z][\w-]*)", line))
        m = re.match(r"^ {1,4}(?:-\w, )?(--[A-Za-z][\w-]*)", line)
        if m:
            opts.add(m.group(1))
    return opts


def guest_seconds(log):
    """Guest uptime from /init start to the payload's end, or None."""
    a = re.search(r"HARNESS-INIT-START uptime=([0-9.]+)", log)
    b = re.search(r"HARNESS-EXIT=\d+ uptime=([0-9.]+)", log)
    return float(b.group(1)) - float(a.group(1)) if a and b else None


# A host CPU hog (a row's host_hogs): a busy loop, as another TCG guest on
# the host would be. It also ends by itself once its parent is no longer the
# vmtest process that started it (killed, even with SIGKILL: the hog is
# reparented), so no hog outlives the tier. HOG_TAG names it in ps.
HOG_TAG = "brr-host-hog"
HOG_CODE = ("import os, sys\n"
            "parent = int(sys.argv[2])\n"
            "while os.getppid() == parent:\n"
            "    for _ in range(100000):\n"
            "        pass\n")


@contextlib.contextmanager
def host_hogs(n):
    """N busy-loop processes on the host while the with-block runs (a list of
    their Popen); killed and reaped on the way out, returned or raised."""
    hogs = []
    try:
        for _ in range(n):
            hogs.append(subprocess.Popen([sys.executable, "-c", HOG_CODE, HOG_TAG, str(os.getpid())],
                                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL))
        yield hogs
    finally:
        for p in hogs:
            p.kill()
        for p in hogs:
            p.wait()


def run_row(row, a, timeout):
    """Boot the row's VM (its host_hogs busy on the host meanwhile); returns
    (run-vm status, console log text, wall seconds)."""
    log_path = os.path.join(a.logs, row["name"] + ".log")
    cmd = vm_command(row, a, log_path, timeout)
    with host_hogs(row.get("host_hogs", 0)):
        t0 = time.monotonic()
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace")
        wall = time.monotonic() - t0
    # Keep run-vm's own summary with the console log.
    with open(log_path, "a", encoding="utf-8", errors="replace") as f:
        f.write("\n==== run-vm (host) ====\n$ " + " ".join(cmd) + "\n" + p.stdout + f"run-vm exit status {p.returncode}\n")
    with open(log_path, encoding="utf-8", errors="replace") as f:
        return p.returncode, f.read(), wall


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--vm-dir", default=os.path.join(HERE, "..", "..", "shared", "vm"))
    ap.add_argument("--dist", default=os.path.join(HERE, "..", "dist"),
                    help="folder of the static binaries, btrfs-reclaim-repro-<arch>")
    ap.add_argument("--logs", default=os.path.join(HERE, "..", "target", "vm-logs"))
    ap.add_argument("--rows", default="", help="space/comma separated row names (default: all)")
    # 14 rows measured at ~390 s (the hunt rows ~130 s), the 15 --vm rows at
    # ~210 s (stock 30 s, the two bisects 45 s, the hang and the KVM
    # fallback 25 s each), the five 6.1.192 rows ~230 s (v61-stock 30 s,
    # v61-instrumented 15 s, v61-reclaim-loop 30 s, the two hunts 45 and
    # 85 s): typical total ~15 min. 1800 s for the first two sets plus the
    # 10 minutes the 6.1 rows may take: 2400 s keeps .ci/run (make test
    # ~10 min before it) under 60 minutes.
    ap.add_argument("--budget", type=float, default=float(os.environ.get("VMTEST_BUDGET", 2400)),
                    help="seconds for the whole tier (default 2400): later rows get what is left")
    ap.add_argument("--strict", action="store_true", default=os.environ.get("VMTEST_STRICT", "") not in ("", "0"),
                    help="a row that would SKIP fails instead (also VMTEST_STRICT=1)")
    ap.add_argument("--print-binaries", action="store_true",
                    help="print the binaries (dist/ names) the selected rows need, and exit: `make vm-test` builds them")
    a = ap.parse_args()
    a.payload = os.path.join(HERE, "payload.sh")
    a.dist = os.path.abspath(a.dist)

    wanted = [r for r in re.split(r"[\s,]+", a.rows) if r]
    unknown = [r for r in wanted if r not in {row["name"] for row in ROWS}]
    if unknown:
        print(f"vmtest: unknown row(s) {unknown}; rows: {' '.join(r['name'] for r in ROWS)}", file=sys.stderr)
        return 2
    rows = [r for r in ROWS if not wanted or r["name"] in wanted]
    # The x86_64 binary always: its --help says which options this source has
    # (the same for every architecture) without running the others under qemu-user.
    needed = ["x86_64"] + sorted({row_arch(r) for r in rows} - {"x86_64"})
    if a.print_binaries:
        print(" ".join(ARCHES[x]["binary"] for x in needed))
        return 0
    unknown = sorted({r.get("runner") for r in rows} - set(RUNNERS) - set(OWN_RUNNERS), key=str)
    if unknown:
        print(f"vmtest: unknown runner(s) {unknown} in vmtest/rows.py; runners: {' '.join([*RUNNERS, *OWN_RUNNERS])}", file=sys.stderr)
        return 2
    for x in sorted({row_arch(r) for r in rows if r["runner"] == "busybox"}):
        script = os.path.join(a.vm_dir, ARCHES[x]["script"])
        if not os.access(script, os.X_OK):
            print(f"vmtest: {script} not found: the {x} rows need it (is ../shared/vm there?)", file=sys.stderr)
            return 2
    for x in needed:
        if not os.access(os.path.join(a.dist, ARCHES[x]["binary"]), os.X_OK):
            print(f"vmtest: {a.dist}/{ARCHES[x]['binary']} not found: build it (make vm-test does)", file=sys.stderr)
            return 2
    os.makedirs(a.logs, exist_ok=True)
    options = help_options(os.path.join(a.dist, ARCHES["x86_64"]["binary"]))

    passed, failed, skipped = [], [], []
    t_start = time.monotonic()
    for row in rows:
        name, log_path = row["name"], os.path.join(a.logs, row["name"] + ".log")
        kernel = " ".join(os.path.basename(k) for k in row["kernels"]) if "kernels" in row else row["kernel"]
        hogs = f" host_hogs={row['host_hogs']}" if row.get("host_hogs") else ""
        label = f"{name} [{row_arch(row)} {kernel}{'' if row['runner'] == 'busybox' else ' runner ' + row['runner']}{' ' + ' '.join(row.get('args', [])) if row.get('args') else ''}{hogs}]"
        if os.path.exists(log_path):
            os.remove(log_path)  # no stale log from an earlier run for a row that is not run now

        def fail(msgs, wall=None, extra=()):
            failed.append(name)
            t = f" ({wall:.1f} s)" if wall is not None else ""
            print(f"FAIL {label}{t}: log {log_path}")
            for m in msgs:
                print(f"     - {m}")
            for line in extra:
                print(f"     | {line}")
            sys.stdout.flush()

        def skip(why):
            if a.strict:
                return fail([f"would SKIP (--strict): {why}"])
            skipped.append(name)
            print(f"SKIP {label}: {why}")
            sys.stdout.flush()

        absent = [o for o in row.get("requires", []) if o not in options]
        if absent:
            skip(f"the binary's --help has no {', '.join(absent)} (feature not in this binary yet)")
            continue
        kernel_paths = ([os.path.join(a.vm_dir, k) for k in row["kernels"]] if "kernels" in row
                        else [kernel_path(row, a)])
        missing_kernels = [k for k in kernel_paths if not os.path.isfile(k)]
        if missing_kernels:
            fail([f"kernel {k} not found (a row's kernel is relative to --vm-dir, "
                  f"or to the repository when written {REPO_PREFIX}<path>)" for k in missing_kernels])
            continue
        left = a.budget - (time.monotonic() - t_start)
        if left < 60:
            fail([f"not run: the tier's {a.budget:.0f} s budget is used up"])
            continue
        if row.get("runner") == "bisect":
            failures, summary, wall, log = run_bisect_row(row, a, min(row.get("timeout", DEFAULT_TIMEOUT), left))
            with open(log_path, "w") as f:
                f.write(log)
            if failures:
                fail(failures, wall, log.splitlines()[-15:])
            else:
                passed.append(name)
                print(f"PASS {label} ({wall:.1f} s): {summary}")
                sys.stdout.flush()
            continue
        if row.get("runner") == "vm":
            with host_hogs(row.get("host_hogs", 0)):
                status, log, wall, verdict, out, leftovers = run_vm_mode_row(
                    row, a, min(row.get("timeout", DEFAULT_TIMEOUT), left))
            if row.get("checks") == ["no_verdict"]:
                failures = leftovers + killed_failures(row, status, out)
                if failures:
                    fail(failures, wall, log.splitlines()[-15:])
                else:
                    passed.append(name)
                    print(f"PASS {label} ({wall:.1f} s): exit {status}, no QEMU and nothing in TMPDIR left")
                continue
            if verdict is None:
                what = "KTAP document" if ktap_row(row) else "verdict JSON"
                fail(leftovers + [f"exit status {status}", f"no {what} on stdout: {out[:300]!r}"], wall,
                     log.splitlines()[-15:])
                continue
            failures, missing = evaluate(row, verdict, status, status, log)
            failures = leftovers + failures
            timing = f"{wall:.1f} s{vm_mode_timing(verdict)}"
            summary = f"{verdict.get('verdict')} exit {status}: {verdict.get('reason')}"
            if "stdout" in verdict:  # --check: its findings, no verdict
                said = [line for line in verdict["stdout"].splitlines() if line.strip()]
                summary = f"exit {status}: {said[-2] if len(said) > 1 else ''}"
            if failures:
                fail(failures + [f"verdict: {summary}"], wall, log.splitlines()[-15:])
            elif missing:
                skip(f"ran ({timing}, {summary}) but the JSON has no {', '.join(missing)}")
            else:
                passed.append(name)
                print(f"PASS {label} ({timing}): {summary}")
                sys.stdout.flush()
            continue
        status, log, wall = run_row(row, a, min(row.get("timeout", DEFAULT_TIMEOUT), left))
        try:
            verdict, exit_marker = (extract_ktap if ktap_row(row) else extract)(log)
        except ExtractError as e:
            what = RUN_VM_STATUS.get(status, f"payload exit {status}")
            fail([f"run-vm status {status} ({what})", f"no verdict: {e}"], wall, progress(log)[-15:])
            continue
        failures, missing = evaluate(row, verdict, exit_marker, status, log)
        g = guest_seconds(log)
        timing = f"{wall:.1f} s" + (f", payload {g:.1f} s" if g is not None else "")
        summary = f"{verdict.get('verdict')} exit {exit_marker}: {verdict.get('reason')}"
        if failures:
            fail(failures + [f"verdict: {summary}"], wall, progress(log)[-15:])
        elif missing:
            skip(f"ran ({timing}, {summary}) but the JSON has no {', '.join(missing)} (feature not in this binary yet)")
        else:
            passed.append(name)
            print(f"PASS {label} ({timing}): {summary}")
            sys.stdout.flush()

    total = time.monotonic() - t_start
    if skipped:
        print(f"{len(skipped)} skipped: {' '.join(skipped)}")
    if failed:
        print(f"failed rows: {' '.join(failed)} (console logs in {a.logs}/<row>.log)")
    print(f"VM tier wall time {total:.0f} s")
    print(f"{len(passed)} passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

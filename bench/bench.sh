#!/usr/bin/env bash
# The benchmark (`make bench`, root): on one machine, in one run, for 3 GiB
# sparse images on one filesystem, runs each of
#   limit-buffered  dd bs=1M conv=fdatasync to a loop device (write-limit.sh)
#   limit-direct    the same with oflag=direct (bios, as a filesystem sends)
#   bash-dd         the bash equivalent of our single pass, filling with dd
#   bash-fallocate  the same, filling with fallocate(1)
#   ours-fallocate  the binary, --json: the default (--enospc auto: on a
#                   stock kernel an injected pass, then a natural one)
#   ours-injected   the binary, --json --enospc injected
#   ours-natural    the binary, --json --enospc natural
#   ours-write      the binary, --json --enospc injected --fill-mode write
# and, in QEMU/TCG VMs of ../shared/vm (bench/vm-run.sh, BENCH_VM=dir):
#   vm-default      the default on the instrumented kernel
#   vm-injected     --enospc injected on the instrumented kernel
#   vm-stress       --reclaim periodic --stress 60 --seed 5, instrumented kernel
#   vm-stress-eb82cb1  the same stress with the binary of commit eb82cb1
#                   (built from git into <out>/eb82cb1 once), the baseline
# --runs times (default 3, interleaved round by round so that a busy moment
# hits every variant alike), then prints min/median per phase, the ratios
# and the targets (bench/stats.py). The binary's runs keep their kernel log
# (--log) next to their stderr, for the settle tail on the kernel's clock.
# Then, once each:
#   iterations      the binary, --json --iterations N (default 100) of the
#                   injected pass: total time, per-iteration median, open fds
#                   and VmRSS of the first and last iteration
#   parsers         the parser linearity table: each parser timed at N, 10N
#                   and 100N input units (cargo test --release, no root)
#
#   bench/bench.sh [--runs N] [--dir DIR] [--bin PATH] [--out DIR] [--only V,V]
#                  [--iterations N]
#   bench/bench.sh --report FILE.jsonl      print the tables of an earlier run
#
# --dir holds the images (default /tmp; every image of a run lives there, so
# on one filesystem). Raw results: <out>/bench-<time>.jsonl (default
# target/bench), each run's stderr in <out>/logs/, the parser table in
# <out>/parsers-<time>.md. Nothing stays mounted or
# attached: each script cleans up after itself, and the EXIT trap here
# unmounts and detaches whatever still carries this run's prefix.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
runs=3 dir=/tmp bin=$root/dist/btrfs-reclaim-repro-x86_64 out=$root/target/bench only= report= iterations=100
while [ $# -gt 0 ]; do
    case $1 in
        --runs) runs=$2; shift 2 ;;
        --dir) dir=$2; shift 2 ;;
        --bin) bin=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        --only) only=$2; shift 2 ;;
        --report) report=$2; shift 2 ;;
        --iterations) iterations=$2; shift 2 ;;
        -h|--help) sed -n '2,39p' "$0"; exit 0 ;;
        *) echo "bench: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
case $bin in /*) ;; *) bin=$PWD/$bin ;; esac

if [ -n "$report" ]; then
    exec python3 "$here/stats.py" "$report"
fi

variants=(limit-buffered limit-direct bash-dd bash-fallocate ours-fallocate ours-injected ours-natural ours-write
    vm-default vm-injected vm-stress vm-stress-eb82cb1 iterations parsers)
if [ -n "$only" ]; then
    IFS=, read -r -a variants <<<"$only"
fi
# The rounds interleave the timed passes; iterations and parsers run once.
rounds=() once=()
for v in "${variants[@]}"; do
    case $v in
        iterations|parsers) once+=("$v") ;;
        limit-buffered|limit-direct|bash-dd|bash-fallocate|ours-*|vm-*) rounds+=("$v") ;;
        *) echo "bench: unknown variant $v (see --help)" >&2; exit 2 ;;
    esac
done
case $iterations in ''|*[!0-9]*|0) echo "bench: --iterations wants a positive number, not '$iterations'" >&2; exit 2 ;; esac

# Everything but the parsers' table runs the binary: root, loop devices.
devices=false
if [ ${#rounds[@]} -gt 0 ] || [[ " ${once[*]} " == *" iterations "* ]]; then
    devices=true
    [ "$(id -u)" -eq 0 ] || { echo "bench: must run as root (loop devices, mkfs, mount)" >&2; exit 2; }
    [ -x "$bin" ] || { echo "bench: no binary at $bin (run make first)" >&2; exit 2; }
    # What the scripts and VM rows need (btrfs-progs, util-linux, mount,
    # python3, qemu, busybox, cpio): the dependency step, one line when all
    # is there.
    "$here/../mk/deps.sh" bench || exit 2
fi
[ -d "$dir" ] || { echo "bench: --dir $dir is not a directory" >&2; exit 2; }

prefix=$(cd "$dir" && pwd)/brr-bench-$$
mkdir -p "$out/logs"
stamp=$(date +%Y%m%d-%H%M%S)
results=$out/bench-$stamp.jsonl
$devices && : >"$results"

cleanup() {
    local rc=$?
    set +e
    trap - EXIT INT TERM HUP
    # Deepest first; only what carries this run's prefix.
    findmnt -rn -o TARGET | grep -F "$prefix" | sort -r | while read -r m; do
        umount "$m" 2>/dev/null || umount -l "$m" || true
    done
    losetup -n -O NAME,BACK-FILE | grep -F "$prefix" | while read -r lo _; do
        losetup -d "$lo" 2>/dev/null || true
    done
    rm -rf "$prefix"-*
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

load1() { cut -d' ' -f1 /proc/loadavg; }
json_str() { python3 -c 'import json,sys; print(json.dumps(sys.argv[1]))' "$1"; }

# The machine, once, as the first line of the results.
if $devices; then
    cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)
    mem_kib=$(sed -n 's/^MemTotal:[[:space:]]*\([0-9]*\).*/\1/p' /proc/meminfo)
    backing=$(findmnt -n -o SOURCE,FSTYPE -T "$dir" | head -n1)
    virt="vm: $(systemd-detect-virt --vm 2>/dev/null || echo none), container: $(systemd-detect-virt --container 2>/dev/null || echo none)"
    {
        printf '{"variant": "machine", "date": %s, "host": %s, "cpu": %s, "cpus": %d, "mem_kib": %d, "virt": %s,' \
            "$(json_str "$(date -u +%Y-%m-%dT%H:%M:%SZ)")" "$(json_str "$(uname -n)")" "$(json_str "$cpu")" "$(nproc)" "$mem_kib" "$(json_str "$virt")"
        printf ' "kernel": %s, "btrfs_progs": %s, "image_dir": %s, "image_fs": %s,' \
            "$(json_str "$(uname -r)")" "$(json_str "$(mkfs.btrfs --version 2>&1 | head -n1)")" "$(json_str "$dir")" "$(json_str "$backing")"
        printf ' "binary": %s, "binary_version": %s, "binary_bytes": %d, "runs": %d, "loadavg_before": %s}\n' \
            "$(json_str "$bin")" "$(json_str "$("$bin" --version 2>&1 | head -n1)")" "$(stat -c %s "$bin")" "$runs" "$(json_str "$(cut -d' ' -f1-3 /proc/loadavg)")"
    } >>"$results"
fi

# The stress baseline: the binary as it was at commit eb82cb1, built once.
old_bin=$out/eb82cb1/btrfs-reclaim-repro
build_old() {
    [ -x "$old_bin" ] && return 0
    echo "bench: building the binary of commit eb82cb1 (the stress baseline) in $out/eb82cb1" >&2
    rm -rf "$out/eb82cb1/src" && mkdir -p "$out/eb82cb1/src"
    git -C "$root" archive eb82cb1 | tar -x -C "$out/eb82cb1/src"
    (cd "$out/eb82cb1/src" && cargo build --release --locked --target x86_64-unknown-linux-musl >"$out/eb82cb1/build.log" 2>&1) ||
        { echo "bench: building eb82cb1 failed (see $out/eb82cb1/build.log)" >&2; return 1; }
    cp "$out/eb82cb1/src/target/x86_64-unknown-linux-musl/release/btrfs-reclaim-repro" "$old_bin"
}
vm=${BENCH_VM:-$root/../shared/vm}
kernel=$vm/kernels/bzImage-instrumented

run_one() {
    local v=$1 i=$2 of=${3:-$runs} img=$prefix-$1-$2.img mnt=$prefix-$1-$2.mnt log=$out/logs/$stamp-$1-$2.log
    local kmsg=$out/logs/$stamp-$1-$2.kmsg console=$out/logs/$stamp-$1-$2.console
    local rc=0 res t0 t1 l0 klog=null
    sync
    l0=$(load1)
    t0=${EPOCHREALTIME/./}
    case $v in
        limit-buffered) res=$("$here/write-limit.sh" "$img" 2>"$log") || rc=$? ;;
        limit-direct) res=$("$here/write-limit.sh" --direct "$img" 2>"$log") || rc=$? ;;
        bash-dd) res=$("$here/bash-single-pass.sh" --fill-mode dd "$img" "$mnt" 2>"$log") || rc=$? ;;
        bash-fallocate) res=$("$here/bash-single-pass.sh" --fill-mode fallocate "$img" "$mnt" 2>"$log") || rc=$? ;;
        ours-*)
            # The binary creates the image (--size) and detaches it; exit 125
            # (INCONCLUSIVE) is --enospc injected's honest answer on a stock
            # kernel.
            local args=()
            case $v in
                ours-injected) args=(--enospc injected) ;;
                ours-natural) args=(--enospc natural) ;;
                ours-write) args=(--enospc injected --fill-mode write) ;;
            esac
            res=$("$bin" --json --log "$kmsg" "${args[@]}" --size 3G "$img" "$mnt" 2>"$log") || rc=$?
            klog=$(json_str "$kmsg")
            rm -f "$img"; rmdir "$mnt" 2>/dev/null || true ;;
        vm-default) res=$("$here/vm-run.sh" "$kernel" "$bin" "$console" 2>"$log") || rc=$? ;;
        vm-injected) res=$("$here/vm-run.sh" "$kernel" "$bin" "$console" --enospc injected 2>"$log") || rc=$? ;;
        vm-stress) res=$("$here/vm-run.sh" "$kernel" "$bin" "$console" --reclaim periodic --stress 60 --seed 5 2>"$log") || rc=$? ;;
        vm-stress-eb82cb1)
            build_old && { res=$("$here/vm-run.sh" "$kernel" "$old_bin" "$console" --stress 60 --seed 5 2>"$log") || rc=$?; } ;;
        iterations)
            # One process, one image, a fresh filesystem per iteration: the
            # injected pass only (a default run adds the natural pass and
            # doubles the time), as tests/iterations.rs runs ten.
            res=$("$bin" --json --size 3G --iterations "$iterations" --enospc injected "$img" "$mnt" 2>"$log") || rc=$?
            rm -f "$img"; rmdir "$mnt" 2>/dev/null || true ;;
        *) echo "bench: unknown variant $v" >&2; return 2 ;;
    esac
    t1=${EPOCHREALTIME/./}
    # One JSON object on stdout, or null.
    res=$(printf '%s\n' "$res" | grep '^{' | tail -n1)
    python3 -c 'import json,sys; json.loads(sys.argv[1])' "$res" 2>/dev/null || res=null
    printf '{"variant": "%s", "run": %d, "exit_code": %d, "wall_seconds": %s, "load1_before": %s, "load1_after": %s, "kmsg_log": %s, "result": %s}\n' \
        "$v" "$i" "$rc" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e6 }')" "$l0" "$(load1)" "$klog" "$res" >>"$results"
    printf 'bench: %-15s run %d/%d: exit %d, %s s wall, load %s\n' "$v" "$i" "$of" "$rc" \
        "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", (b - a) / 1e6 }')" "$l0" >&2
}

# The parsers' linearity table (src/testing/linearity.rs), from the release build
# of the unit tests: only its lines, also kept in <out>/parsers-<time>.md.
run_parsers() {
    local table=$out/parsers-$stamp.md
    echo "bench: parser linearity (cargo test --release --bins -- --ignored parser_linearity); load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
    (cd "$root" && "${CARGO:-cargo}" test --release --locked --bins -- --ignored --nocapture --exact testing::linearity::parser_linearity) \
        | sed -n '/^parser linearity/,/^test /p' | grep -v '^test ' | tee "$table"
    echo "bench: parser table in $table" >&2
}

if [ ${#rounds[@]} -gt 0 ]; then
    echo "bench: $runs runs of ${rounds[*]} on 3 GiB images in $dir ($backing); load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
    for ((i = 1; i <= runs; i++)); do
        for v in "${rounds[@]}"; do
            run_one "$v" "$i"
        done
    done
fi
if [[ " ${once[*]} " == *" iterations "* ]]; then
    echo "bench: $iterations iterations in one run on a 3 GiB image in $dir; load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
    run_one iterations 1 1
fi
if $devices; then
    echo "bench: raw results in $results" >&2
    python3 "$here/stats.py" "$results" | tee "${results%.jsonl}.md"
fi
if [[ " ${once[*]} " == *" parsers "* ]]; then
    run_parsers
fi

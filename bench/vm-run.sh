#!/usr/bin/env bash
# One run of a binary in a QEMU/TCG VM of ../shared/vm, for bench.sh's VM
# variants: boots KERNEL with a fresh 3 GiB virtio disk, runs the binary
# through vmtest/payload.sh with ARGS, prints the verdict's JSON line on
# stdout (nothing when the run gave none) and exits with the binary's exit
# code (run-vm's own codes, 250-253, when the VM failed).
#
#   bench/vm-run.sh <kernel file> <binary> <console log> [ARGS...]
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
[ $# -ge 3 ] || { echo "usage: $0 <kernel> <binary> <console log> [ARGS...]" >&2; exit 2; }
kernel=$1 bin=$2 log=$3
shift 3
vm=${BENCH_VM:-$root/../shared/vm}
[ -x "$vm/run-vm" ] || { echo "vm-run: no $vm/run-vm (BENCH_VM=dir)" >&2; exit 2; }

# payload.sh runs ./<file name of --file>: the binary keeps its name.
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
cp "$bin" "$stage/btrfs-reclaim-repro-x86_64"
rc=0
"$vm/run-vm" --kernel "$kernel" --disk-size 3G --append log_buf_len=16M --timeout 900 --no-devargs \
    --log "$log" --file "$stage/btrfs-reclaim-repro-x86_64" -- "$root/vmtest/payload.sh" \
    btrfs-reclaim-repro-x86_64 "$@" >/dev/null 2>&1 || rc=$?
# The verdict: between the payload's markers, one JSON object (the serial
# console ends its lines with \r\n).
tr -d '\r' <"$log" | awk '/===BRR-VERDICT-BEGIN===/ {on = 1; next} /===BRR-VERDICT-END===/ {on = 0} on && /^\{/' | tail -n1
exit "$rc"

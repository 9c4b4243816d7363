#!/usr/bin/env bash
# One run of a binary in a QEMU/TCG VM of ../shared/vm, for bench.sh's VM
# variants: boots KERNEL with a fresh 3 GiB virtio disk, runs the binary
# through vmtest/payload.sh with ARGS, prints the verdict's JSON line on
# stdout (nothing when the run gave none) and exits with the binary's exit
# code (run-vm's own codes, 250-253, when the VM failed). Also make
# vm-hunt's runner.
#
#   bench/vm-run.sh <kernel file> <binary> <console log> [ARGS...]
#   BENCH_VM=dir (default ../shared/vm)  VM_TIMEOUT=seconds (default 900)
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
"$vm/run-vm" --kernel "$kernel" --disk-size 3G --append log_buf_len=16M --timeout "${VM_TIMEOUT:-900}" --no-devargs \
    --log "$log" --file "$stage/btrfs-reclaim-repro-x86_64" -- "$root/vmtest/payload.sh" \
    btrfs-reclaim-repro-x86_64 "$@" >/dev/null 2>&1 || rc=$?
# The verdict, cut out as the VM tier does (vmtest.extract: the markers,
# \r\n line ends, kernel lines that slipped into the block), on one line.
python3 - "$root/vmtest" "$log" <<'EOF' || true
import json, sys
sys.path.insert(0, sys.argv[1])
from vmtest import ExtractError, extract
try:
    print(json.dumps(extract(open(sys.argv[2], errors="replace").read())[0]))
except (ExtractError, OSError):
    pass
EOF
exit "$rc"

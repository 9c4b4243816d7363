#!/usr/bin/env bash
# The limit for a write fill: sequential write bandwidth of a loop device over
# a fresh sparse image, attached the way the binary attaches it (buffered
# backing file, no loop direct I/O), written with dd bs=1M conv=fdatasync:
# the data reaches the disk before dd's clock stops, as the fill's syncfs
# makes it.
#
#   write-limit.sh [--size 3G] [--mib 2290] [--direct] <image>
#
# --direct adds oflag=direct: dd's writes skip the loop device's own page
# cache and arrive as bios, the way a filesystem's writeback reaches it (the
# backing file stays buffered). Both are measured; the faster is the limit.
#
# --mib defaults to what a 90 % write fill of a 3 GiB btrfs writes (about
# 2.24 GiB). stdout: one JSON line. <image> must not exist; it is removed,
# and the loop device detached, whatever happens (EXIT trap).
set -euo pipefail

size=3G mib=2290 direct=
while [ $# -gt 0 ]; do
    case $1 in
        --size) size=$2; shift 2 ;;
        --mib) mib=$2; shift 2 ;;
        --direct) direct=oflag=direct; shift ;;
        -*) echo "write-limit: unknown option $1" >&2; exit 2 ;;
        *) break ;;
    esac
done
[ $# -eq 1 ] || { echo "usage: $0 [--size 3G] [--mib N] [--direct] <image>" >&2; exit 2; }
img=$1
[ "$(id -u)" -eq 0 ] || { echo "write-limit: must run as root" >&2; exit 2; }
[ ! -e "$img" ] || { echo "refusing $img: it exists (give a new path)" >&2; exit 2; }

us() { local t=${EPOCHREALTIME/./}; echo $((10#$t)); }
secs() { printf '%d.%06d' $(($1 / 1000000)) $(($1 % 1000000)); }

loop=
cleanup() {
    local rc=$?
    set +e
    trap - EXIT INT TERM HUP
    [ -z "$loop" ] || losetup -d "$loop" 2>/dev/null || true
    rm -f "$img"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

truncate -s "$size" "$img"
loop=$(losetup -f --show "$img")
t0=$(us)
dd if=/dev/zero of="$loop" bs=1M count="$mib" ${direct} conv=fdatasync status=none
t=$(($(us) - t0))
losetup -d "$loop"
loop=
bytes=$((mib << 20))
bps=$(awk -v b=$bytes -v u=$t 'BEGIN { printf "%.0f", b * 1e6 / u }')
if [ -n "$direct" ]; then variant=limit-direct; else variant=limit-buffered; fi
echo "$variant: $bytes bytes to a $size loop device in $(secs $t) s" >&2
printf '{"variant": "%s", "bytes_written": %d, "seconds": %s, "fill_bytes_per_second": %s}\n' "$variant" "$bytes" "$(secs $t)" "$bps"

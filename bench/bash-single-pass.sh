#!/usr/bin/env bash
# The bash equivalent of one btrfs-reclaim-repro single pass, written for the
# benchmark (bench/bench.sh): the same steps in the same order, done the way
# the bug report's scripts do them (mkfs.btrfs, mount, dd or fallocate(1),
# echo into sysfs, rm, `btrfs filesystem sync` once a second).
#
#   bash-single-pass.sh [--fill-mode dd|fallocate] [--size 3G] [--fill 90]
#                       [--timeout 60] <image> <mnt>
#
# <image> must not exist: it is created sparse, attached to a loop device,
# and removed at the end. <mnt> is created when missing. Whatever happens
# (error, Ctrl-C), the EXIT trap unmounts, detaches and removes the image.
#
# Steps, mirroring src/scenario/single.rs, steps.rs and src/btrfs/fill.rs:
#   mkfs   mkfs.btrfs -f -L btrfs-reclaim-repro -m dup -d single, no free
#          space tree (spelling by btrfs-progs version, as src/btrfs/mkfs_progs.rs)
#   mount  -o noatime,space_cache=v1, checked in /proc/self/mountinfo
#   fill   fill/f00000... of 32 MiB (the last one smaller) until
#          written / (written + f_bavail) >= 90 %, measured after syncfs
#          (`sync -f`); the fill aims at the target estimated from the free
#          space, then measures again
#   knobs  dynamic_reclaim=1, periodic_reclaim=1, only now
#   fragment  delete every other file (odd index), syncfs
#   trigger   `btrfs filesystem sync` once a second until reclaim_count (or
#          reclaim_errors) grows
#   settle    `btrfs filesystem sync` once a second until the counters have
#          not moved for 2 s
#   unmount
#
# stdout: one JSON line, with the keys of the binary's --json that the
# benchmark compares (phases, total_seconds, first_reclaim_seconds,
# bytes_written, fill_bytes_per_second). Progress goes to stderr.
set -euo pipefail

FILE_BYTES=$((32 << 20))   # src/btrfs/fill.rs FILE_BYTES
MIN_FILE=$((1 << 20))      # the last file is at least 1 MiB
LABEL=btrfs-reclaim-repro

fill_mode=dd size=3G fill_pct=90 timeout=60
while [ $# -gt 0 ]; do
    case $1 in
        --fill-mode) fill_mode=$2; shift 2 ;;
        --size) size=$2; shift 2 ;;
        --fill) fill_pct=$2; shift 2 ;;
        --timeout) timeout=$2; shift 2 ;;
        -h|--help) sed -n '2,30p' "$0"; exit 0 ;;
        -*) echo "bash-single-pass: unknown option $1" >&2; exit 2 ;;
        *) break ;;
    esac
done
[ $# -eq 2 ] || { echo "usage: $0 [--fill-mode dd|fallocate] [--size 3G] [--fill 90] [--timeout 60] <image> <mnt>" >&2; exit 2; }
img=$1 mnt=$2
case $fill_mode in dd|fallocate) ;; *) echo "bash-single-pass: --fill-mode dd|fallocate" >&2; exit 2 ;; esac
[ "$(id -u)" -eq 0 ] || { echo "bash-single-pass: must run as root" >&2; exit 2; }
[ ! -e "$img" ] || { echo "refusing $img: it exists (give a new path)" >&2; exit 2; }
! mountpoint -q "$mnt" 2>/dev/null || { echo "refusing $mnt: already a mount point" >&2; exit 2; }

# Microseconds since the epoch, and microseconds as seconds.
us() { local t=${EPOCHREALTIME/./}; echo $((10#$t)); }
secs() { printf '%d.%06d' $(($1 / 1000000)) $(($1 % 1000000)); }
say() { printf '[%7s s] %s\n' "$(secs $(($(us) - start)))" "$*" >&2; }

start=$(us)
loop= made_mnt= mounted=
cleanup() {
    local rc=$?
    set +e
    trap - EXIT INT TERM HUP
    if [ -n "$mounted" ] && mountpoint -q "$mnt"; then
        umount "$mnt" 2>/dev/null || umount -l "$mnt" || true
    fi
    [ -z "$loop" ] || losetup -d "$loop" 2>/dev/null || true
    rm -f "$img"
    [ -z "$made_mnt" ] || rmdir "$mnt" 2>/dev/null || true
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

phases=()
phase_t0=0
phase_begin() { phase_t0=$(us); }
phase_end() { phases+=("\"$1\": $(secs $(($(us) - phase_t0)))"); }

# --- device ---------------------------------------------------------------
[ -d "$mnt" ] || { mkdir -p "$mnt"; made_mnt=1; }
truncate -s "$size" "$img"
loop=$(losetup -f --show "$img")
say "attached $img to $loop"

# --- mkfs: no free space tree, spelled for this btrfs-progs ---------------
phase_begin
ver=$(mkfs.btrfs --version 2>&1 | sed -n 's/.*btrfs-progs v\([0-9]*\)\.\([0-9]*\).*/\1 \2/p' | head -n1)
read -r major minor <<<"${ver:-99 0}"
if [ $((major * 100 + minor)) -le 602 ]; then
    nofst=(-R ^free-space-tree)
elif [ $((major * 100 + minor)) -le 618 ]; then
    nofst=(-O ^free-space-tree)
else
    nofst=(-O ^free-space-tree,^block-group-tree)
fi
mkfs.btrfs -f -L "$LABEL" -m dup -d single "${nofst[@]}" "$loop" >/dev/null
phase_end mkfs
say "mkfs: $loop formatted with ${nofst[*]}"

# --- mount with the v1 space cache ------------------------------------------
phase_begin
mount -o noatime,space_cache=v1 "$loop" "$mnt"
mounted=1
opts=$(findmnt -n -o OPTIONS --mountpoint "$mnt")
case ",$opts," in
    *,space_cache=v2,*|*,nospace_cache,*) echo "mount: $mnt is not on the v1 space cache ($opts)" >&2; exit 1 ;;
    *,space_cache,*|*,space_cache=v1,*) ;;
    *) echo "mount: no space_cache in the options of $mnt ($opts)" >&2; exit 1 ;;
esac
fsid=
for d in /sys/fs/btrfs/*/devices/"${loop##*/}"; do
    [ -e "$d" ] && fsid=${d#/sys/fs/btrfs/} && fsid=${fsid%%/*}
done
[ -n "$fsid" ] || { echo "mount: no /sys/fs/btrfs/<fsid> for $loop" >&2; exit 1; }
data=/sys/fs/btrfs/$fsid/allocation/data
for f in dynamic_reclaim periodic_reclaim reclaim_count reclaim_errors; do
    [ -e "$data/$f" ] || { echo "kernel has no $data/$f: too old for this bug" >&2; exit 1; }
done
phase_end mount
say "mount: $loop on $mnt (space_cache=v1), $data"

# --- fill -----------------------------------------------------------------
phase_begin
dir=$mnt/fill
mkdir -p "$dir"
written=0 n=0 enospc=0
while :; do
    sync -f "$dir"                       # statfs counts delalloc once written
    read -r bavail bsize < <(stat -f -c '%a %S' "$dir")
    avail=$((bavail * bsize))
    # written / (written + avail) >= fill %, in integers
    if [ $enospc -eq 1 ] || [ $((written * 100)) -ge $(((written + avail) * fill_pct)) ]; then
        break
    fi
    target=$(((written + avail) * fill_pct / 100))
    while [ $written -lt $target ]; do
        len=$((target - written))
        [ $len -ge $MIN_FILE ] || len=$MIN_FILE
        [ $len -le $FILE_BYTES ] || len=$FILE_BYTES
        f=$(printf '%s/f%05d' "$dir" $n)
        n=$((n + 1))
        if [ "$fill_mode" = dd ]; then
            err=$(dd if=/dev/zero of="$f" bs=1M count=$len iflag=count_bytes status=none 2>&1) || {
                case $err in *"No space left"*) enospc=1 ;; *) echo "dd $f: $err" >&2; exit 1 ;; esac
            }
        else
            err=$(fallocate -l $len "$f" 2>&1) || {
                case $err in *"No space left"*) enospc=1 ;; *) echo "fallocate $f: $err" >&2; exit 1 ;; esac
            }
        fi
        if [ $enospc -eq 1 ]; then
            written=$((written + $(stat -c %s "$f")))
            break
        fi
        written=$((written + len))
    done
done
phase_end fill
fill_us=$(($(us) - phase_t0))
fill_percent=$(awk -v w=$written -v a=$avail 'BEGIN { printf "%.3f", (w + a) ? w * 100 / (w + a) : 0 }')
say "fill: $n files, $written bytes ($fill_percent % of the data space, $fill_mode)$([ $enospc -eq 0 ] || echo ', stopped at ENOSPC')"

# --- knobs: only after the fill (allocations made with periodic_reclaim on
# drive reclaimable_bytes negative and the sweep never arms) ---------------
phase_begin
echo 1 > "$data/dynamic_reclaim"
echo 1 > "$data/periodic_reclaim"
phase_end knobs
say "knobs: dynamic_reclaim=1 periodic_reclaim=1"

# --- fragment: every other file -----------------------------------------------
phase_begin
deleted=0
for ((i = 1; i < n; i += 2)); do
    rm -f "$(printf '%s/f%05d' "$dir" $i)"
    deleted=$((deleted + 1))
done
sync -f "$mnt"
phase_end fragment
say "fragment: deleted $deleted files"

# --- trigger: one `btrfs filesystem sync` a second until reclaim moves ------
counters() { echo $(($(<"$data/reclaim_count") + $(<"$data/reclaim_errors"))); }
base=$(counters)
first_reclaim=
phase_begin
deadline=$(($(us) + timeout * 1000000))
while :; do
    btrfs filesystem sync "$mnt" >/dev/null
    if [ "$(counters)" -gt "$base" ]; then
        first_reclaim=$(($(us) - start))
        break
    fi
    [ "$(us)" -lt $deadline ] || break
    sleep 1
done
phase_end trigger
if [ -n "$first_reclaim" ]; then
    say "trigger: reclaim fired ($(($(<"$data/reclaim_count"))) relocated, $(($(<"$data/reclaim_errors"))) errors)"
else
    say "trigger: reclaim did not fire within $timeout s"
fi

# --- settle: until the counters stay still for 2 s --------------------------
phase_begin
if [ -n "$first_reclaim" ]; then
    last=$(counters) stable=$(us)
    deadline=$(($(us) + timeout * 1000000))
    while [ $(($(us) - stable)) -lt 2000000 ] && [ "$(us)" -lt $deadline ]; do
        sleep 1
        btrfs filesystem sync "$mnt" >/dev/null
        now=$(counters)
        if [ "$now" != "$last" ]; then last=$now stable=$(us); fi
    done
fi
reclaim_count=$(($(<"$data/reclaim_count")))
reclaim_errors=$(($(<"$data/reclaim_errors")))
phase_end settle
say "settle: $reclaim_count relocated, $reclaim_errors errors"

# --- unmount ----------------------------------------------------------------
phase_begin
umount "$mnt"
mounted=
phase_end unmount
say "unmount: $mnt"
losetup -d "$loop"
loop=

total=$(($(us) - start))
fill_bps=$(awk -v b=$written -v u=$fill_us 'BEGIN { printf "%.0f", (u > 0) ? b * 1e6 / u : 0 }')
joined=$(IFS=,; echo "${phases[*]}")
printf '{"variant": "bash-%s", "fill_mode": "%s", "phases": {%s}, "total_seconds": %s, "first_reclaim_seconds": %s, "bytes_written": %d, "fill_bytes_per_second": %s, "fill_percent": %s, "files": %d, "reclaim_count": %d, "reclaim_errors": %d}\n' \
    "$fill_mode" "$fill_mode" "${joined//,/, }" "$(secs $total)" \
    "$([ -n "$first_reclaim" ] && secs "$first_reclaim" || echo null)" \
    "$written" "$fill_bps" "$fill_percent" "$n" "$reclaim_count" "$reclaim_errors"

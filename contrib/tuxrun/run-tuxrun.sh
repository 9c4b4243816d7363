#!/bin/sh
# TuxRun example: boots KERNEL under QEMU with TuxRun's default rootfs and an
# overlay holding the static binary and contrib/tuxrun/btrfs-reclaim-repro-lava,
# and runs it as TuxRun's `commands` test. The kernel needs
# contrib/btrfs-reclaim-repro.config merged in. `commands` times out after
# 2 minutes by default: one pass under TCG needs more (--timeouts).
#
# Usage (from a clone, after `make dist`):
#   contrib/tuxrun/run-tuxrun.sh x86_64|arm64 KERNEL [btrfs-reclaim-repro options]
#   (default options: --size 3G /var/tmp/btrfs-reclaim-repro.img /mnt/btrfs-reclaim-repro)
set -eu
arch=${1:?x86_64 or arm64}
kernel=${2:?kernel image (bzImage or Image)}
shift 2
case $arch in
x86_64) device=qemu-x86_64 bin=dist/btrfs-reclaim-repro-x86_64 ;;
arm64) device=qemu-arm64 bin=dist/btrfs-reclaim-repro-aarch64 ;;
*) echo "run-tuxrun.sh: arch is x86_64 or arm64, not $arch" >&2; exit 2 ;;
esac
[ $# -gt 0 ] || set -- --size 3G /var/tmp/btrfs-reclaim-repro.img /mnt/btrfs-reclaim-repro

here=$(dirname "$0")
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/root/usr/local/bin"
cp "$bin" "$stage/root/usr/local/bin/btrfs-reclaim-repro"
cp "$here/btrfs-reclaim-repro-lava" "$stage/root/usr/local/bin/"
chmod 755 "$stage/root/usr/local/bin/"*
overlay=$PWD/dist/btrfs-reclaim-repro-overlay.tar.xz
tar -C "$stage/root" --owner=0 --group=0 -cJf "$overlay" usr

tuxrun --device "$device" --kernel "$kernel" \
	--overlay "$overlay" \
	--parameters command-name=btrfs-reclaim-repro-run \
	--timeouts commands=15 \
	-- "btrfs-reclaim-repro-lava $*"

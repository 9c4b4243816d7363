#!/usr/bin/env bash
# Installs what ../shared/vm/run-vm needs on the host, only when missing:
# qemu-system-x86 (qemu-system-x86_64), busybox-static (a *static* /bin/busybox:
# the initramfs copies it as is), btrfs-progs (mkfs.btrfs, btrfs), cpio.
set -euo pipefail
need=()
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
# ldd succeeds only on a dynamic executable: the busybox package is not enough.
if [ ! -x /bin/busybox ] || ldd /bin/busybox >/dev/null 2>&1; then need+=(busybox-static); fi
{ command -v mkfs.btrfs && command -v btrfs; } >/dev/null || need+=(btrfs-progs)
command -v cpio >/dev/null || need+=(cpio)
command -v python3 >/dev/null || need+=(python3)
[ ${#need[@]} -eq 0 ] && exit 0
echo "vmtest: installing ${need[*]}"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"

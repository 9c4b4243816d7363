#!/usr/bin/env bash
# The dependency step of `make run`, `make test`, `make vm-test` and `make bench`
# (`make deps-SET`): works out which Debian packages are missing by looking
# their commands up through PATH, and which rustup targets are missing, then
#   - nothing missing: one line saying so, nothing else;
#   - as root with apt-get: one line naming what it installs, one
#     `apt-get update`, one `apt-get install` of exactly the missing packages;
#   - otherwise: one line naming the packages and the command to run, exit 1.
# DRY_RUN=1 prints what it would do (one line) and exits 0, installing nothing.
#
# Usage: mk/deps.sh SET...   SET: run test vm-test bench
set -euo pipefail

usage() { echo "usage: mk/deps.sh run|test|vm-test|bench ..." >&2; exit 2; }
[ $# -ge 1 ] || usage

MUSL_X86=x86_64-unknown-linux-musl
MUSL_ARM=aarch64-unknown-linux-musl

# "command package" pairs, per set. A package is missing when any of its
# commands is not found through PATH.
cmds=() targets=()
for set in "$@"; do
	case "$set" in
	run)
		# The built-in mkfs (src/btrfs/mkfs/) formats: a pass needs no btrfs-progs.
		targets+=("$MUSL_X86") ;;
	test)
		cmds+=("mkfs.btrfs btrfs-progs" "btrfs btrfs-progs" "mkfs.ext4 e2fsprogs"
			"mkfs.xfs xfsprogs" "sfdisk fdisk" "file file" "losetup mount"
			"qemu-aarch64-static qemu-user-static")
		# mk/test-ktap.sh and mk/test-contrib.sh: the kernel's KTAP parser
		# and kselftest runner (python3), tappy and PyYAML, unpacking
		# linux-source-6.12 (xz) and its `make defconfig` (gcc, flex, bison).
		cmds+=("python3 python3" "python3:tap python3-tap" "python3:yaml python3-yaml"
			"xz xz-utils" "gcc gcc" "flex flex" "bison bison")
		targets+=("$MUSL_X86" "$MUSL_ARM") ;;
	vm-test)
		# ../shared/vm/run-vm and build-initramfs.sh: a *static* busybox, the
		# host's mkfs.btrfs and btrfs (copied into the initramfs), cpio;
		# arm64/run-vm-arm64: qemu-system-aarch64; vmtest.py: python3.
		cmds+=("qemu-system-x86_64 qemu-system-x86" "qemu-system-aarch64 qemu-system-arm"
			"busybox:static busybox-static" "cpio cpio" "mkfs.btrfs btrfs-progs" "btrfs btrfs-progs"
			"python3 python3")
		targets+=("$MUSL_X86" "$MUSL_ARM") ;;
	bench)
		# bench/bench.sh: the bash equivalents and the limit runs; its VM
		# variants boot ../shared/vm/run-vm as vm-test does.
		cmds+=("mkfs.btrfs btrfs-progs" "btrfs btrfs-progs" "losetup mount" "fallocate util-linux"
			"findmnt util-linux" "python3 python3" "qemu-system-x86_64 qemu-system-x86"
			"busybox:static busybox-static" "cpio cpio")
		targets+=("$MUSL_X86") ;;
	*) usage ;;
	esac
done

# A static busybox found through PATH: ldd succeeds only on a dynamic
# executable, so Debian's (dynamic) busybox package is not enough.
have() {
	if [ "${1%%:*}" = python3 ] && [ "$1" != python3 ]; then
		# A python module: a python3 first in PATH (pyenv, a venv) may not
		# see Debian's python3-* packages; /usr/bin/python3 does.
		local py
		for py in python3 /usr/bin/python3; do
			command -v "$py" >/dev/null 2>&1 && "$py" -c "import ${1#python3:}" 2>/dev/null && return 0
		done
		return 1
	elif [ "$1" = busybox:static ]; then
		local bb
		bb=$(command -v busybox) || return 1
		! ldd "$bb" >/dev/null 2>&1
	else
		command -v "$1" >/dev/null 2>&1
	fi
}

pkgs=() missing_cmds=()
for pair in "${cmds[@]}"; do
	c=${pair% *} p=${pair#* }
	have "$c" && continue
	case " ${missing_cmds[*]} " in *" $c "*) ;; *) missing_cmds+=("$c") ;; esac
	case " ${pkgs[*]} " in *" $p "*) ;; *) pkgs+=("$p") ;; esac
done

# rustup targets: their standard library in the toolchain's sysroot.
tmissing=()
sysroot=$(rustc --print sysroot 2>/dev/null || true)
for t in "${targets[@]}"; do
	[ -n "$sysroot" ] && [ -d "$sysroot/lib/rustlib/$t/lib" ] && continue
	case " ${tmissing[*]} " in *" $t "*) ;; *) tmissing+=("$t") ;; esac
done

what="deps ($*)"
if [ ${#pkgs[@]} -eq 0 ] && [ ${#tmissing[@]} -eq 0 ]; then
	echo "$what: nothing missing"
	exit 0
fi

# --no-install-recommends: qemu-system-* recommend qemu-utils and
# qemu-block-extra (= their own version), which only get in the way (below).
APT_INSTALL="apt-get install -y --no-install-recommends"
plan=()
[ ${#pkgs[@]} -eq 0 ] || plan+=("apt-get update && $APT_INSTALL ${pkgs[*]}")
[ ${#tmissing[@]} -eq 0 ] || plan+=("rustup target add ${tmissing[*]}")
missing_desc="missing ${pkgs[*]}${pkgs[*]:+ (${missing_cmds[*]})}${tmissing[*]:+${pkgs[*]:+, }rustup target ${tmissing[*]}}"
joined=$(printf '%s; ' "${plan[@]}"); joined=${joined%; }

if [ "${DRY_RUN:-0}" != 0 ]; then
	echo "$what: $missing_desc: would run: $joined"
	exit 0
fi

# Packages need root and apt-get; rustup targets need neither.
if [ ${#pkgs[@]} -gt 0 ]; then
	if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
		why=$([ "$(id -u)" != 0 ] && echo "not root" || echo "no apt-get on this system")
		echo "$what: $missing_desc; $why, so install them yourself, e.g. as root: $joined" >&2
		exit 1
	fi
fi

echo "$what: installing: $joined"
if [ ${#pkgs[@]} -gt 0 ]; then
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	# Measured on a fresh machine of this project's kind (2026-11-25): it ships
	# qemu-utils 10.0.2 from bookworm-backports, while qemu-system-* here are
	# bookworm's 7.2. One combined `apt-get install -y` of all the test and
	# vm-test packages failed with "pkgProblemResolver::Resolve generated
	# breaks"; the same packages one at a time succeeded (installing
	# qemu-system-x86 removed qemu-utils 10.0.2). `apt-get -s` on a copy of
	# the dpkg status with those packages taken out and qemu-utils 10.0.2 put
	# back with "Breaks: qemu-system-common (<< 1:8.0)" (guessed: its removal
	# suggests it) gives exactly both: the combined install with recommends
	# fails the same way, qemu-system-x86 alone removes qemu-utils. The
	# recommended qemu-utils and qemu-block-extra (= 7.2) are what the
	# resolver cannot reconcile: without recommends the vm-test set installs
	# in one go and removes qemu-utils 10.0.2 (qemu-img: this project does
	# not use it). So: one combined install without recommends, and only if
	# that fails, one package at a time.
	if ! $APT_INSTALL -qq "${pkgs[@]}"; then
		echo "$what: the combined apt-get install failed; installing one package at a time" >&2
		for p in "${pkgs[@]}"; do
			$APT_INSTALL -qq "$p" || { echo "$what: apt-get install $p failed (see above); install it by hand, then re-run" >&2; exit 1; }
		done
	fi
fi
if [ ${#tmissing[@]} -gt 0 ]; then
	rustup target add "${tmissing[@]}" || { echo "$what: rustup target add ${tmissing[*]} failed; run it by hand, then re-run" >&2; exit 1; }
fi
# What was missing must now be there: an install that "succeeded" without
# bringing the command is a failure here, not later in a test.
still=()
for pair in "${cmds[@]}"; do
	have "${pair% *}" || still+=("${pair% *}")
done
if [ ${#still[@]} -gt 0 ]; then
	echo "$what: still not found after installing: ${still[*]} (PATH=$PATH)" >&2
	exit 1
fi

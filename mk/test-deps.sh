#!/usr/bin/env bash
# Tests of mk/deps.sh (run by `make script-test`, part of `make test`).
# Each case runs deps.sh with PATH set to a scratch directory of its own:
# stand-in commands for everything deps.sh looks for (minus the ones a case
# hides), a stand-in rustc whose sysroot holds the rustup targets a case
# wants, a stand-in apt-get that "installs" a package by creating its
# commands (and logs its arguments), and links to the few real tools deps.sh
# itself runs (bash, env, ldd). Nothing is installed on this machine.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
DEPS=$HERE/deps.sh
T=$(mktemp -d /tmp/test-deps.XXXXXX)
trap 'rm -rf "$T"' EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; shift; for l in "$@"; do echo "     | $l"; done; }

ALL_CMDS="mkfs.btrfs btrfs mkfs.ext4 mkfs.xfs sfdisk file losetup qemu-aarch64-static
qemu-system-x86_64 qemu-system-aarch64 busybox cpio python3 fallocate findmnt xz gcc flex bison"
# Which package brings which commands, for the stand-in apt-get.
PKG_CMDS="btrfs-progs:mkfs.btrfs,btrfs e2fsprogs:mkfs.ext4 xfsprogs:mkfs.xfs fdisk:sfdisk file:file
mount:losetup qemu-user-static:qemu-aarch64-static qemu-system-x86:qemu-system-x86_64
qemu-system-arm:qemu-system-aarch64 busybox-static:busybox cpio:cpio python3:python3
util-linux:fallocate,findmnt xz-utils:xz gcc:gcc flex:flex bison:bison"

# setup NAME [hide=CMD...] [notarget=T...] [uid=N] [noapt] [aptfail-combined]
setup() {
	local name=$1; shift
	D=$T/$name; mkdir -p "$D/bin" "$D/sysroot/lib/rustlib"
	local hide=" " uid=0 apt=1 aptmode=ok t
	local targets="x86_64-unknown-linux-musl aarch64-unknown-linux-musl"
	for a in "$@"; do
		case "$a" in
		hide=*) hide="$hide${a#hide=} " ;;
		notarget=*) targets=${targets//${a#notarget=}/} ;;
		uid=*) uid=${a#uid=} ;;
		noapt) apt=0 ;;
		aptfail-combined) aptmode=fail-combined ;;
		esac
	done
	for t in bash env ldd; do ln -s "$(command -v $t)" "$D/bin/$t"; done
	for c in $ALL_CMDS; do
		case "$hide" in *" $c "*) continue ;; esac
		printf '#!/bin/sh\nexit 0\n' > "$D/bin/$c"; chmod +x "$D/bin/$c"
	done
	for t in $targets; do mkdir -p "$D/sysroot/lib/rustlib/$t/lib"; done
	printf '#!/bin/sh\n[ "$1 $2" = "--print sysroot" ] && echo %s\n' "$D/sysroot" > "$D/bin/rustc"
	printf '#!/bin/sh\n[ "$1" = -u ] && echo %s\n' "$uid" > "$D/bin/id"
	printf '#!/bin/sh\necho "rustup $*" >> %s\n' "$D/calls" > "$D/bin/rustup"
	if [ $apt = 1 ]; then
		cat > "$D/bin/apt-get" <<-EOF
		#!/bin/bash
		echo "apt-get \$*" >> "$D/calls"
		[ "\$1" = update ] && exit 0
		pk=(); for a in "\$@"; do case "\$a" in -*|install) ;; *) pk+=("\$a") ;; esac; done
		[ "$aptmode" = fail-combined ] && [ \${#pk[@]} -gt 1 ] && { echo "E: Error, pkgProblemResolver::Resolve generated breaks" >&2; exit 100; }
		for p in "\${pk[@]}"; do
			for e in ${PKG_CMDS//$'\n'/ }; do
				[ "\${e%%:*}" = "\$p" ] || continue
				cs=\${e#*:}; for c in \${cs//,/ }; do printf '#!/bin/sh\nexit 0\n' > "$D/bin/\$c"; $(command -v chmod) +x "$D/bin/\$c"; done
			done
		done
		EOF
		chmod +x "$D/bin/apt-get"
	fi
	chmod +x "$D/bin/"*
	: > "$D/calls"
}

# run [DRY_RUN=1] SET...: sets OUT, ERR, RC, CALLS
run() {
	local dry=0
	[ "$1" = DRY_RUN=1 ] && { dry=1; shift; }
	env -i PATH="$D/bin" HOME="$T" DRY_RUN=$dry bash "$DEPS" "$@" > "$D/out" 2> "$D/err"
	RC=$?
	OUT=$(cat "$D/out") ERR=$(cat "$D/err") CALLS=$(cat "$D/calls")
}
lines() { [ -z "$1" ] && echo 0 || printf '%s\n' "$1" | wc -l; }
show() { echo "rc=$RC" "stdout: $OUT" "stderr: $ERR" "calls: $CALLS"; }

# 1. Everything present: one line saying so, nothing else, no installer run.
for set in run test vm-test bench "test vm-test"; do
	setup all
	run $set
	if [ $RC = 0 ] && [ "$OUT" = "deps ($set): nothing missing" ] && [ -z "$ERR" ] && [ -z "$CALLS" ]; then
		ok "all present ($set): one line, nothing run"
	else
		mapfile -t s < <(show); bad "all present ($set)" "${s[@]}"
	fi
	rm -rf "$T/all"
done

# 2. No mkfs.btrfs on PATH: it would install btrfs-progs, and only that;
# `make run` needs none (the built-in mkfs).
setup nomkfs-run hide=mkfs.btrfs
run DRY_RUN=1 run
if [ $RC = 0 ] && [ "$OUT" = "deps (run): nothing missing" ] && [ -z "$CALLS" ]; then
	ok "no mkfs.btrfs (run): nothing missing"
else
	mapfile -t s < <(show); bad "no mkfs.btrfs (run)" "want: deps (run): nothing missing" "${s[@]}"
fi
for set in test bench; do
	setup nomkfs-$set hide=mkfs.btrfs
	run DRY_RUN=1 $set
	want="deps ($set): missing btrfs-progs (mkfs.btrfs): would run: apt-get update && apt-get install -y --no-install-recommends btrfs-progs"
	if [ $RC = 0 ] && [ "$OUT" = "$want" ] && [ -z "$ERR" ] && [ -z "$CALLS" ]; then
		ok "no mkfs.btrfs ($set), DRY_RUN: would install btrfs-progs"
	else
		mapfile -t s < <(show); bad "no mkfs.btrfs ($set), DRY_RUN" "want: $want" "${s[@]}"
	fi
done

# 3. Several hidden, a dynamic busybox and a missing rustup target: exactly
# those packages, in one apt-get line, plus the target.
setup several hide=mkfs.btrfs hide=btrfs hide=sfdisk hide=qemu-aarch64-static hide=qemu-system-aarch64 \
	hide=busybox notarget=aarch64-unknown-linux-musl
ln -s "$(command -v ls)" "$D/bin/busybox"  # a dynamic executable: not busybox-static
run DRY_RUN=1 test vm-test
want="deps (test vm-test): missing btrfs-progs fdisk qemu-user-static qemu-system-arm busybox-static (mkfs.btrfs btrfs sfdisk qemu-aarch64-static qemu-system-aarch64 busybox:static), rustup target aarch64-unknown-linux-musl: would run: apt-get update && apt-get install -y --no-install-recommends btrfs-progs fdisk qemu-user-static qemu-system-arm busybox-static; rustup target add aarch64-unknown-linux-musl"
if [ $RC = 0 ] && [ "$OUT" = "$want" ] && [ -z "$CALLS" ]; then ok "several missing, DRY_RUN: exact package list and target"
else mapfile -t s < <(show); bad "several missing, DRY_RUN" "want: $want" "${s[@]}"; fi

# 4. The sets do not ask for each other's packages: qemu-system-* missing
# matters to vm-test only.
setup sets hide=qemu-system-x86_64 hide=cpio
run DRY_RUN=1 test
if [ $RC = 0 ] && [ "$OUT" = "deps (test): nothing missing" ]; then ok "test set ignores vm-test's commands"
else mapfile -t s < <(show); bad "test set ignores vm-test's commands" "${s[@]}"; fi
run DRY_RUN=1 vm-test
case "$OUT" in *"install -y --no-install-recommends qemu-system-x86 cpio") ok "vm-test set: qemu-system-x86 cpio" ;;
*) mapfile -t s < <(show); bad "vm-test set: qemu-system-x86 cpio" "${s[@]}" ;; esac

# 5. As root with apt-get: one announce line, one update, one install of
# exactly the missing packages; the commands are there afterwards.
setup install hide=mkfs.btrfs hide=btrfs hide=file
run test
want_calls=$'apt-get update -qq\napt-get install -y --no-install-recommends -qq btrfs-progs file'
if [ $RC = 0 ] && [ "$(lines "$OUT")" = 1 ] && [[ "$OUT" == "deps (test): installing: "*"btrfs-progs file" ]] \
	&& [ "$CALLS" = "$want_calls" ] && [ -x "$D/bin/mkfs.btrfs" ]; then ok "root + apt: one line, one update, one install"
else mapfile -t s < <(show); bad "root + apt" "want calls: $want_calls" "${s[@]}"; fi

# 6. The combined install fails (as measured on a fresh machine): one package
# at a time, and the run succeeds.
setup fallback hide=qemu-system-x86_64 hide=qemu-system-aarch64 hide=cpio aptfail-combined
run vm-test
want_calls=$'apt-get update -qq\napt-get install -y --no-install-recommends -qq qemu-system-x86 qemu-system-arm cpio
apt-get install -y --no-install-recommends -qq qemu-system-x86\napt-get install -y --no-install-recommends -qq qemu-system-arm
apt-get install -y --no-install-recommends -qq cpio'
if [ $RC = 0 ] && [ "$CALLS" = "$want_calls" ] && [[ "$ERR" == *"one package at a time"* ]]; then ok "combined install fails: one at a time"
else mapfile -t s < <(show); bad "combined install fails: one at a time" "${s[@]}"; fi

# 7. Not root, or no apt-get: one line naming the packages and the command,
# non-zero exit, nothing run.
setup notroot hide=mkfs.xfs uid=1000
run test
if [ $RC = 1 ] && [ -z "$OUT" ] && [ "$(lines "$ERR")" = 1 ] && [[ "$ERR" == *"missing xfsprogs"*"not root"*"apt-get install -y --no-install-recommends xfsprogs" ]] \
	&& [ -z "$CALLS" ]; then ok "not root: one line, exit 1"
else mapfile -t s < <(show); bad "not root" "${s[@]}"; fi
setup noapt hide=mkfs.xfs noapt
run test
if [ $RC = 1 ] && [ "$(lines "$ERR")" = 1 ] && [[ "$ERR" == *"no apt-get"*"xfsprogs" ]]; then ok "no apt-get: one line, exit 1"
else mapfile -t s < <(show); bad "no apt-get" "${s[@]}"; fi

# 8. Only a rustup target missing: no root or apt-get needed.
setup target notarget=aarch64-unknown-linux-musl uid=1000 noapt
run test
if [ $RC = 0 ] && [ "$CALLS" = "rustup target add aarch64-unknown-linux-musl" ]; then ok "rustup target only: added without root"
else mapfile -t s < <(show); bad "rustup target only" "${s[@]}"; fi

# 9. An install that does not bring the command fails loudly.
setup liar hide=cpio
sed -i 's/^\t*for p in/exit 0; for p in/' "$D/bin/apt-get"
run vm-test
if [ $RC = 1 ] && [[ "$ERR" == *"still not found after installing: cpio"* ]]; then ok "install without the command: exit 1"
else mapfile -t s < <(show); bad "install without the command" "${s[@]}"; fi

# 10. .ci/run installs nothing by hand: no installer, no package name of its
# own (the packages live in deps.sh alone).
names=$(grep -oE '"[a-z0-9.:-]+ [a-z0-9-]+"' "$DEPS" | tr -d '"' | awk '{print $2}' | sort -u)
found=$(grep -v '^[[:space:]]*#' "$HERE/../.ci/run" | grep -owE "apt-get|apt|dpkg|rustup|$(echo $names | tr ' ' '|')" | sort -u | tr '\n' ' ')
if [ -n "$names" ] && [ -z "$found" ]; then ok ".ci/run names no package and runs no installer"
else bad ".ci/run installs by hand" "found: ${found:-<no package names read from deps.sh>}"; fi

echo "deps.sh: $pass passed, $fail failed"
[ $fail = 0 ]

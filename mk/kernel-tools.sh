#!/usr/bin/env bash
# The kernel's own test tools for `make test` (mk/test-ktap.sh): the KTAP
# parser (tools/testing/kunit/), kselftest's runner
# (tools/testing/selftests/kselftest/) and what `make defconfig` and
# scripts/kconfig/merge_config.sh need (scripts/, the Makefiles, every
# Kconfig file, the x86 and arm64 defconfigs), from Debian's linux-source-6.12.
# They are GPL-2.0: fetched and extracted here at test time into
# target/kernel-tools/, never copied into this (MIT) repository.
#
# Prints the source tree's path on stdout; the download and the extraction
# (timed) are said on stderr. A tree extracted earlier is reused.
#
# Usage: mk/kernel-tools.sh [DIR]   (default target/kernel-tools)
set -euo pipefail

dest=${1:-target/kernel-tools}
pkg=linux-source-6.12
tree=$dest/$pkg
stamp=$tree/.brr-extracted

# Seconds since $1 (date +%s%N), one decimal.
secs_since() {
	local ms=$(( ($(date +%s%N) - $1) / 1000000 ))
	printf '%d.%d' $((ms / 1000)) $((ms % 1000 / 100))
}

if [ -f "$stamp" ]; then
	echo "$tree"
	exit 0
fi
mkdir -p "$dest"
deb=$(ls "$dest"/${pkg}_*.deb 2>/dev/null | head -n 1 || true)
if [ -z "$deb" ]; then
	t0=$(date +%s%N)
	# apt-get download writes into the current directory (a root download
	# there warns that _apt cannot write it: harmless).
	(cd "$dest" && apt-get download -q "$pkg" 2>&1 | grep -v '^W: Download is performed unsandboxed' >&2) || true
	deb=$(ls "$dest"/${pkg}_*.deb 2>/dev/null | head -n 1 || true)
	[ -n "$deb" ] || { echo "kernel tools: apt-get download $pkg failed (is bookworm-security in the apt sources?)" >&2; exit 1; }
	echo "kernel tools: downloaded $(basename "$deb") ($(du -m "$deb" | cut -f1) MiB) in $(secs_since "$t0") s" >&2
fi

# The tarball inside the .deb holds the whole tree (~1.4 GiB unpacked): tar
# takes only the members named, so nothing else reaches the disk.
rm -rf "$tree"
t0=$(date +%s%N)
dpkg-deb --fsys-tarfile "$deb" | tar -xO "./usr/src/$pkg.tar.xz" | xz -T0 -dc |
	tar -x -C "$dest" --wildcards \
		"$pkg/tools/testing/kunit/*" \
		"$pkg/tools/testing/selftests/kselftest/*" \
		"$pkg/scripts/*" \
		"$pkg/Makefile" \
		"$pkg/*Kconfig*" \
		"$pkg/arch/x86/Makefile*" "$pkg/arch/x86/configs/*" "$pkg/arch/x86/tools/*" \
		"$pkg/arch/arm64/Makefile" "$pkg/arch/arm64/configs/*" \
		"$pkg/kernel/configs/*"
secs=$(secs_since "$t0")
touch "$stamp"
echo "kernel tools: extracted kunit, kselftest and kconfig from $(basename "$deb") into $tree ($(du -sm "$tree" | cut -f1) MiB) in $secs s" >&2
echo "$tree"

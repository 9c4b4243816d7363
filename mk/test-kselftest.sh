#!/usr/bin/env bash
# The binary under kselftest's own runner (tools/testing/selftests/kselftest/
# runner.sh from mk/kernel-tools.sh), as a kselftest directory laid out with
# contrib/kselftest/settings, three runs on image files (the binary attaches
# them to loop devices): NOT REPRODUCED -> `ok 1 selftests: ...`,
# INCONCLUSIVE (--space-cache v2) -> `ok 1 selftests: ... # SKIP`, a refusal
# (an image holding ext4) -> `not ok 1 selftests: ... # exit=1` with our
# `# ` lines nested. Each runner output is also read by tappy, then its
# nested part the way LKFT's parse-output.py recurses. Touches the host
# kernel: run it under `flock /tmp/brr-host.lock` (make test is). Needs root;
# without, it skips (CI set: fails).
#
# Usage: mk/test-kselftest.sh [BINARY]   (default dist/btrfs-reclaim-repro-x86_64)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$(realpath "${1:-dist/btrfs-reclaim-repro-x86_64}")

if [ "$(id -u)" != 0 ] || [ ! -e /dev/loop-control ]; then
	why="needs root and loop devices"
	[ -n "${CI:-}" ] && { echo "FAIL mk/test-kselftest.sh: $why (CI)" >&2; exit 1; }
	echo "SKIP mk/test-kselftest.sh: $why"
	exit 0
fi
tree=$(mk/kernel-tools.sh)
PY=$(mk/python-with.sh tap)

T=$(mktemp -d /tmp/brr-kselftest.XXXXXX)
cleanup() {
	# Whatever a failed run left: mounts under $T, loop devices on its images.
	# (Each may find nothing: never the script's exit status.)
	{ grep -o " $T/[^ ]*" /proc/self/mounts | sort -r | while read -r m; do umount "$m" || umount -l "$m"; done; } || true
	{ losetup -n -O NAME,BACK-FILE 2>/dev/null | awk -v t="$T/" 'index($2, t) == 1 { print $1 }' | xargs -r -n1 losetup -d; } || true
	rm -rf "$T"
}
trap cleanup EXIT

base=$T/selftests
dir=$base/btrfs-reclaim-repro
mkdir -p "$dir"
cp -r "$tree/tools/testing/selftests/kselftest" "$base/"
cp "$BIN" "$dir/btrfs-reclaim-repro"
cp contrib/kselftest/settings "$dir/"

fail=0
# case NAME RUNNER_LINE NESTED_RESULT ARGS...: one runner.sh run of the
# binary with --ktap ARGS; its result line must be RUNNER_LINE exactly.
case_() {
	local name=$1 want=$2 nested=$3 out=$T/$1.tap
	shift 3
	(cd "$dir" && BASE_DIR=$base KSELFTEST_BTRFS_RECLAIM_REPRO_ARGS="--ktap $*" \
		bash -c '. "$BASE_DIR/kselftest/runner.sh" && run_many ./btrfs-reclaim-repro') 2>&1 | cat >"$out" || true
	# (Through a pipe: runner.sh appends the test's output to /dev/stdout
	# with >>, which on a plain file opened with > would overwrite it.)
	local got
	got=$(grep -E '^(not )?ok 1 ' "$out" || true)
	local outer=pass
	case $want in not\ ok*) outer=fail ;; *"# SKIP") outer=skip ;; esac
	if [ "$got" = "$want" ] && "$PY" mk/ktap-parsers.py --nested "$outer" "$nested" "$out" >"$T/$name.parsed" 2>&1; then
		echo "ok   kselftest runner, $name: $got; $(grep -E '^(ok|FAIL):' "$T/$name.parsed")"
	else
		fail=$((fail + 1))
		echo "FAIL kselftest runner, $name: want '$want', got '$got'"
		cat "$T/$name.parsed" 2>/dev/null || true
		sed 's/^/     | /' "$out"
	fi
	if grep -q " $T/" /proc/self/mounts || losetup -n -O BACK-FILE 2>/dev/null | grep -q "^$T/"; then
		fail=$((fail + 1))
		echo "FAIL kselftest runner, $name: left something mounted or attached"
	fi
}

hdr="selftests: btrfs-reclaim-repro: btrfs-reclaim-repro"
case_ not-reproduced "ok 1 $hdr" pass --size 3G --seed 1 "$T/a.img" "$T/mnt"
case_ inconclusive-v2 "ok 1 $hdr # SKIP" skip --size 3G --space-cache v2 --timeout 20 "$T/b.img" "$T/mnt"
truncate -s 3G "$T/ext4.img"
mkfs.ext4 -q -F "$T/ext4.img"
case_ refused-ext4 "not ok 1 $hdr # exit=1" fail "$T/ext4.img" "$T/mnt"
# Our own lines, nested under the runner's `# `.
if grep -q '^# # reason:   refusing .*ext4 signature' "$T/refused-ext4.tap" &&
	grep -q '^# not ok 1 btrfs_reclaim_repro # ERROR refusing ' "$T/refused-ext4.tap"; then
	echo "ok   kselftest runner, refused-ext4: our reason and result nested as # lines"
else
	fail=$((fail + 1))
	echo "FAIL kselftest runner, refused-ext4: our # lines are not nested in the runner's output"
fi
[ $fail = 0 ] && echo "kselftest runner: 3 runs as expected" || { echo "kselftest runner: $fail failed"; exit 1; }

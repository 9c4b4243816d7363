#!/usr/bin/env bash
# Our KTAP as kernel CI reads it (`make test`): every golden KTAP document
# (tests/fixtures/golden/ktap/, one per verdict kind and one per way a --vm
# run ends on the host, vm-*, pinned by the unit tests) goes to the kernel's own parser (kunit.py parse) and to the Python
# `tap` library LKFT builds on; each must read as pass, fail or skip as the
# README's --ktap table says. A plan without a result (the kernel died
# mid-run) must read as an error to the one and as a missing result to the
# other, never as a pass. The parsers come from mk/kernel-tools.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

tree=$(mk/kernel-tools.sh)
PY=$(mk/python-with.sh tap)

expect_of() {
	case $1 in
	not-reproduced | auto-stock | stress | vm-not-reproduced) echo pass ;;
	reproduced | suspected | refused | interrupted | bad-arguments | vm-refused | vm-trouble | vm-interrupted) echo fail ;;
	inconclusive-v2 | not-root | vm-hung | vm-init-never-ran | vm-no-btrfs) echo skip ;;
	*) echo unknown ;;
	esac
}

args=()
for f in tests/fixtures/golden/ktap/*.ktap; do
	e=$(expect_of "$(basename "$f" .ktap)")
	if [ "$e" = unknown ]; then
		echo "FAIL: $f: no expected result in mk/test-ktap.sh (pass, fail or skip?)" >&2
		exit 1
	fi
	args+=("$e" "$f")
done
[ ${#args[@]} -ge 20 ] || { echo "FAIL: only $((${#args[@]} / 2)) golden KTAP files" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# What a run leaves when the kernel dies after the plan.
head -n 3 tests/fixtures/golden/ktap/not-reproduced.ktap >"$tmp/plan-without-result.ktap"
args+=(missing "$tmp/plan-without-result.ktap")

"$PY" mk/ktap-parsers.py "$tree/tools/testing/kunit/kunit.py" "${args[@]}"

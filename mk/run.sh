#!/usr/bin/env bash
# `make run`: one single pass on a 3 GiB sparse image under /tmp (created by
# the binary, removed here unless it was there before and refused), then the
# outcome in one line.
#   - the binary printed a verdict (NOT REPRODUCED, REPRODUCED, SUSPECTED,
#     INCONCLUSIVE; read from its --json stdout, key "verdict") and exited
#     with that verdict's code: `make run` did its job, exit 0;
#   - otherwise (REFUSED 2, INTERRUPTED 128+N, a crash, a signal, no JSON):
#     the binary's exit code is passed through.
# The text verdict block goes to stderr as the run goes (--json moves it
# there); the JSON is kept in $RUN_JSON (default target/run-verdict.json).
#
# Usage: mk/run.sh BIN IMG MNT [more binary options...]
set -uo pipefail
[ $# -ge 3 ] || { echo "usage: mk/run.sh BIN IMG MNT [options...]" >&2; exit 2; }
bin=$1 img=$2 mnt=$3; shift 3
json=${RUN_JSON:-target/run-verdict.json}
mkdir -p "$(dirname "$json")"

# A file already at IMG that the binary refused (2: nothing written; e.g. it
# holds another filesystem) is not ours to remove; any other image is.
existed=0
[ -e "$img" ] && existed=1
rc=0
"$bin" --json "$@" --size 3G "$img" "$mnt" > "$json" || rc=$?
if [ "$existed" = 1 ] && [ "$rc" = 2 ]; then
	echo "make run: $img was there before and was refused: left as it was (remove it, or give IMG=another path)" >&2
else
	rm -f "$img"
fi
rmdir "$mnt" 2>/dev/null

# "verdict" is the first key of the binary's JSON object.
verdict=$(grep -oE '"verdict"[[:space:]]*:[[:space:]]*"[A-Z_]+"' "$json" 2>/dev/null | head -1 | sed -E 's/.*"([A-Z_]+)"$/\1/')
case "$verdict" in
NOT_REPRODUCED) want=0 ;;
REPRODUCED) want=1 ;;
SUSPECTED) want=3 ;;
INCONCLUSIVE) want=125 ;;
*) want= ;;
esac
shown=${verdict//_/ }
if [ -n "$want" ] && [ "$rc" = "$want" ]; then
	echo "make run: verdict $shown, binary exit code $rc; make run exits 0 (the run gave a verdict; the code is for scripts and git bisect)"
	exit 0
fi
if [ "$rc" -gt 128 ] && [ "$rc" -lt 160 ] && [ "$verdict" != INTERRUPTED ]; then
	why="killed by signal $((rc - 128)) ($(kill -l "$((rc - 128))" 2>/dev/null || echo '?'))"
elif [ -n "$verdict" ]; then
	why="verdict $shown"
else
	why="no verdict on stdout"
fi
[ "$rc" = 0 ] && rc=1 && why="$why, yet exit code 0"
echo "make run: binary exit code $rc: $why (JSON in $json); make run exits $rc" >&2
exit "$rc"

#!/usr/bin/env bash
# Tests of mk/run.sh (`make run`'s wrapper), run by `make script-test`: stand-in
# binaries (small shell scripts) print a fixture verdict JSON and exit with each
# code the real binary can give, or die by a signal; run.sh must exit 0 for a
# verdict, pass every other code through, and remove the image and the mount
# point directory either way.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
T=$(mktemp -d /tmp/test-run.XXXXXX)
trap 'rm -rf "$T"' EXIT
pass=0 fail=0

# stand NAME VERDICT CODE [signal]: a stand-in binary. It checks its arguments
# (--json ... --size 3G IMG MNT), creates IMG and MNT as the real one would,
# prints the text block on stderr and the JSON on stdout.
stand() {
	local f=$T/$1 verdict=$2 code=$3 sig=${4:-}
	{
		echo '#!/bin/bash'
		echo 'args="$*"'
		echo 'case "$args" in "--json "*"--size 3G "*) ;; *) echo "stand-in: bad args: $args" >&2; exit 99 ;; esac'
		echo 'n=$(($# - 1)); img=${!n}; mnt=${!#}'
		echo 'truncate -s 3G "$img"; mkdir -p "$mnt"'
		echo "echo 'verdict:  $verdict' >&2"
		[ "$verdict" = none ] || printf 'printf %q\n' "{\"verdict\": \"$verdict\", \"exit_code\": $code, \"reason\": \"stand-in\", \"passes\": [{\"verdict\": \"X\"}]}"
		[ -n "$sig" ] && echo "kill -$sig \$\$"
		echo "exit $code"
	} > "$f"
	chmod +x "$f"
}

# check NAME VERDICT BINARY_CODE WANT_CODE WANT_TEXT [signal]
check() {
	local name=$1 verdict=$2 code=$3 want=$4 text=$5 sig=${6:-}
	stand "$name" "$verdict" "$code" "$sig"
	local img=$T/$name.img mnt=$T/$name.mnt
	RUN_JSON=$T/$name.json "$HERE/run.sh" "$T/$name" "$img" "$mnt" > "$T/$name.out" 2>&1
	local rc=$? all
	all=$(cat "$T/$name.out")
	local last
	last=$(tail -n 1 <<< "$all")
	if [ "$rc" = "$want" ] && [[ "$last" == *"$text"* ]] && [[ "$last" == "make run: "* ]] && [ ! -e "$img" ] && [ ! -e "$mnt" ] \
		&& { [ "$verdict" = none ] || [[ "$all" == *"verdict:  $verdict"* ]]; }; then
		pass=$((pass + 1)); echo "ok   $name: exit $rc: $last"
	else
		fail=$((fail + 1)); echo "FAIL $name: exit $rc (want $want), last line: $last (want: *$text*)"
		[ -e "$img" ] && echo "     | image $img left behind"
		[ -e "$mnt" ] && echo "     | mount point $mnt left behind"
		sed 's/^/     | /' "$T/$name.out"
	fi
}

check not-reproduced NOT_REPRODUCED 0 0 "verdict NOT REPRODUCED, binary exit code 0; make run exits 0"
check reproduced REPRODUCED 1 0 "verdict REPRODUCED, binary exit code 1; make run exits 0"
check suspected SUSPECTED 3 0 "verdict SUSPECTED, binary exit code 3; make run exits 0"
check inconclusive INCONCLUSIVE 125 0 "verdict INCONCLUSIVE, binary exit code 125; make run exits 0"
check refused REFUSED 2 2 "binary exit code 2: verdict REFUSED"
check interrupted INTERRUPTED 130 130 "binary exit code 130: verdict INTERRUPTED"
check killed none 0 137 "killed by signal 9 (KILL)" KILL
check crashed none 0 139 "killed by signal 11 (SEGV)" SEGV
check panicked none 101 101 "binary exit code 101: no verdict on stdout"
# A verdict whose code does not match what the binary exited with (killed
# after printing): the exit code wins.
check verdict-then-killed NOT_REPRODUCED 0 137 "killed by signal 9" KILL
check silent-zero none 0 1 "no verdict on stdout, yet exit code 0"

# A file already at IMG that the binary refuses (it holds something else):
# run.sh passes the 2 through and leaves the file as it was.
{
	echo '#!/bin/bash'
	echo 'echo "{\"verdict\": \"REFUSED\", \"exit_code\": 2}"; exit 2'
} > "$T/refuses-existing"
chmod +x "$T/refuses-existing"
echo precious > "$T/existing.img"
RUN_JSON=$T/existing.json "$HERE/run.sh" "$T/refuses-existing" "$T/existing.img" "$T/existing.mnt" > "$T/existing.out" 2>&1
rc=$?
if [ "$rc" = 2 ] && [ "$(cat "$T/existing.img" 2>/dev/null)" = precious ] && grep -q "left as it was" "$T/existing.out"; then
	pass=$((pass + 1)); echo "ok   refused-existing-image: exit 2, the file left as it was"
else
	fail=$((fail + 1)); echo "FAIL refused-existing-image: exit $rc (want 2), file: $(cat "$T/existing.img" 2>&1)"
	sed 's/^/     | /' "$T/existing.out"
fi

echo "run.sh: $pass passed, $fail failed"
[ $fail = 0 ]

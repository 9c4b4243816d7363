#!/bin/sh
# Guest side of `make vm-test` (busybox sh, PID 1's child, cwd /payload).
# The runner is called with --no-devargs: $1 is the binary's file name (copied
# into /payload/ with --file: btrfs-reclaim-repro-x86_64 or -aarch64), the rest
# are the row's binary options.
# The kernel console runs at loglevel=7, so everything the host must parse is
# printed between marker lines after `dmesg -n 1` has quietened the console:
#   ===BRR-PROGRESS-BEGIN=== ... ===BRR-PROGRESS-END===   (stderr of the run)
#   ===BRR-VERDICT-BEGIN===  ... ===BRR-VERDICT-END===    (the --json verdict,
#                                                          or with --ktap its KTAP)
#   ===BRR-EXIT-CODE=<n>===
# The host side (vmtest/vmtest.py) cuts these out of the console log.
BIN=./$1
shift

# A row that asks for --ktap reads KTAP: --json would be refused with it.
format=--json
for a in "$@"; do
	[ "$a" = --ktap ] && format=
done
echo "===BRR-ARGS=== $BIN $format $* /dev/vda /mnt/test"
"$BIN" $format "$@" /dev/vda /mnt/test >/tmp/verdict.json 2>/tmp/progress.txt
rc=$?

dmesg -n 1
# let pending console output drain before the markers
sleep 0.2
echo
echo "===BRR-PROGRESS-BEGIN==="
cat /tmp/progress.txt
echo
echo "===BRR-PROGRESS-END==="
echo "===BRR-VERDICT-BEGIN==="
cat /tmp/verdict.json
echo
echo "===BRR-VERDICT-END==="
echo "===BRR-EXIT-CODE=$rc==="
exit "$rc"

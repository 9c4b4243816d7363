#!/usr/bin/env bash
# contrib/ as kernel CI uses it (`make test`):
#   - the LAVA test definition, the TuxRun wrapper and example, on stand-ins
#     (mk/test-contrib.py: nothing boots);
#   - the kernel config fragments merged with the kernel's own
#     scripts/kconfig/merge_config.sh onto x86_64 and arm64 defconfig
#     (linux-source-6.12 from mk/kernel-tools.sh): contrib/btrfs-reclaim-repro.config
#     alone, then with contrib/btrfs-reclaim-repro-debug.config; every option a
#     merged fragment names must be set, as named, in the resulting .config.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD

PY=$(mk/python-with.sh yaml)
"$PY" mk/test-contrib.py

tree=$(mk/kernel-tools.sh)
T=$(mktemp -d /tmp/brr-kconfig.XXXXXX)
trap 'rm -rf "$T"' EXIT
fail=0
# merge ARCH DEFCONFIG FRAGMENT...
merge() {
	# One output directory per architecture: kconfig's conf is built once.
	local arch=$1 def=$2 out=$T/$1
	shift 2
	mkdir -p "$out"
	local frags=() names=()
	for f in "$@"; do frags+=("$top/$f"); names+=("$(basename "$f")"); done
	if ! (cd "$tree" && ARCH=$arch scripts/kconfig/merge_config.sh -O "$out" "$def" "${frags[@]}") >"$out/merge.log" 2>&1; then
		fail=$((fail + 1))
		echo "FAIL merge_config.sh $arch $def ${names[*]}:"
		sed 's/^/     | /' "$out/merge.log" | tail -20
		return
	fi
	local missing=()
	while read -r line; do
		grep -qxF "$line" "$out/.config" || missing+=("$line (have: $(grep -E "^(# )?${line%%=*}[= ]" "$out/.config" || echo nothing))")
	done < <(grep -hE '^CONFIG_[A-Z0-9_]+=' "${frags[@]}")
	if [ ${#missing[@]} = 0 ]; then
		echo "ok   $arch $(basename "$def") + ${names[*]}: all $(grep -hE '^CONFIG_' "${frags[@]}" | wc -l) options set"
	else
		fail=$((fail + 1))
		echo "FAIL $arch $(basename "$def") + ${names[*]}: not set as named:"
		printf '     | %s\n' "${missing[@]}"
	fi
}

for frags in "contrib/btrfs-reclaim-repro.config" "contrib/btrfs-reclaim-repro.config contrib/btrfs-reclaim-repro-debug.config"; do
	# shellcheck disable=SC2086
	merge x86_64 arch/x86/configs/x86_64_defconfig $frags
	# shellcheck disable=SC2086
	merge arm64 arch/arm64/configs/defconfig $frags
done
[ $fail = 0 ] && echo "kconfig fragments: set on x86_64 and arm64" || { echo "kconfig fragments: $fail failed"; exit 1; }

#!/usr/bin/env bash
# Prints a python3 that can import every module named (a pyenv or venv
# python3 first in PATH may lack Debian's python3-* packages, which
# /usr/bin/python3 has), or says which is missing and exits 1.
#
# Usage: mk/python-with.sh MODULE...
set -euo pipefail
imports=$(printf 'import %s;' "$@")
for py in python3 /usr/bin/python3; do
	if command -v "$py" >/dev/null 2>&1 && "$py" -c "$imports" 2>/dev/null; then
		command -v "$py"
		exit 0
	fi
done
echo "no python3 here can import $* (install the python3-* packages: make deps-test)" >&2
exit 1

# VM test tier (`make vm-test`): runs the static binaries under QEMU/TCG on the
# kernels of ../shared/vm (x86_64) and ../shared/vm/arm64 (aarch64), one VM
# boot per row of vmtest/rows.py (the table), and fails when a row does not
# hold. Console logs: target/vm-logs/<row>.log. The dependency step
# (mk/deps.sh vm-test) comes first; then the binaries the chosen rows need.
#   make vm-test ROWS="stock instrumented"    only these rows
#   make vm-test VMTEST_STRICT=1              rows that would SKIP fail instead
#   make vm-test-selftest                     the host-side checker's own tests

VMTEST_VM_DIR ?= $(CURDIR)/../shared/vm
VMTEST_LOGS   ?= $(CURDIR)/target/vm-logs
VMTEST_STRICT ?=
ROWS          ?=

VMTEST_FLAGS   = $(if $(ROWS), --rows "$(ROWS)")$(if $(filter-out 0,$(VMTEST_STRICT)), --strict)
export PYTHONDONTWRITEBYTECODE = 1

.PHONY: vm-test vm-test-selftest

vm-test: deps-vm-test
	@$(MAKE) --no-print-directory vm-test-selftest
	@bins=$$(python3 vmtest/vmtest.py --print-binaries$(if $(ROWS), --rows "$(ROWS)")) && \
	$(MAKE) --no-print-directory $$(printf 'dist/%s ' $$bins)
	python3 vmtest/vmtest.py --vm-dir $(VMTEST_VM_DIR) --dist dist --logs $(VMTEST_LOGS)$(VMTEST_FLAGS)

# Marker/JSON extraction on fake console logs, the checks, the table: a broken
# extractor fails here, before any VM boots.
vm-test-selftest:
	python3 -m unittest discover -s vmtest -p 'test_*.py'

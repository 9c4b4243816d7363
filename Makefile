# btrfs-reclaim-repro: `make` builds the static binary, `make test` runs every
# test (root, for the loop-device tests), `make run` runs one pass on an image.

TARGET   ?= x86_64-unknown-linux-musl
BIN      := dist/btrfs-reclaim-repro-x86_64
CARGO    ?= cargo
IMG      ?= /tmp/btrfs-reclaim-repro.img
MNT      ?= /tmp/btrfs-reclaim-repro.mnt
# .git/logs/HEAD: a new commit changes what --version prints.
SOURCES  := $(shell find src -name '*.rs') Cargo.toml Cargo.lock build.rs $(wildcard .git/logs/HEAD)
BIN_AARCH64 := dist/btrfs-reclaim-repro-aarch64

.PHONY: all run test unit-test integration-test static-check script-test ktap-test clean dist deps-run deps-test deps-vm-test deps-bench

all: $(BIN)

# The dependency step (mk/deps.sh): what `make run`, `test`, `vm-test` and
# `bench` need, looked up through PATH and installed when missing (root,
# apt-get), announced in one line; `make deps-test DRY_RUN=1` only says what it
# would do. Each of those targets runs it first, then the rest in a sub-make,
# so that nothing starts before the packages are there (also under -j).
deps-run deps-test deps-vm-test deps-bench: deps-%:
	@mk/deps.sh $*

# The musl target is installed on demand: a fresh clone needs nothing else.
$(BIN): $(SOURCES)
	@rustup target list --installed 2>/dev/null | grep -qx $(TARGET) || rustup target add $(TARGET)
	$(CARGO) build --release --locked --target $(TARGET)
	@mkdir -p dist
	cp target/$(TARGET)/release/btrfs-reclaim-repro $@
	@ls -l $@

# aarch64 links with the toolchain's rust-lld (.cargo/config.toml): no cross
# gcc. `make dist`: both static binaries and their checksums, ready to attach.
$(BIN_AARCH64): $(SOURCES) .cargo/config.toml
	@rustup target list --installed 2>/dev/null | grep -qx aarch64-unknown-linux-musl || rustup target add aarch64-unknown-linux-musl
	$(CARGO) build --release --locked --target aarch64-unknown-linux-musl
	@mkdir -p dist
	cp target/aarch64-unknown-linux-musl/release/btrfs-reclaim-repro $@

dist: $(BIN) $(BIN_AARCH64)
	cd dist && sha256sum btrfs-reclaim-repro-x86_64 btrfs-reclaim-repro-aarch64 > SHA256SUMS
	@ls -l dist/btrfs-reclaim-repro-* && cat dist/SHA256SUMS

# One single pass on a 3 GiB sparse image file (created, then removed):
# exits 0 when the binary gave a verdict, else passes its code through
# (mk/run.sh; tested by mk/test-run.sh).
run: deps-run
	@$(MAKE) --no-print-directory $(BIN)
	@mk/run.sh $(BIN) $(IMG) $(MNT)

test: deps-test
	@$(MAKE) --no-print-directory $(BIN) $(BIN_AARCH64) static-check script-test unit-test integration-test ktap-test

# The Makefile's own scripts: the dependency step and `make run`'s wrapper,
# on stand-ins (no package is installed, no device touched).
script-test:
	mk/test-deps.sh
	mk/test-run.sh

static-check: $(BIN) $(BIN_AARCH64)
	@for b in $(BIN) $(BIN_AARCH64); do 		file $$b | grep -Eq 'statically linked|static-pie linked' || { file $$b; echo "FAIL: $$b is not statically linked"; exit 1; }; 	done
	@env -i ./$(BIN) --version
	@echo "ok: $(BIN) and $(BIN_AARCH64) are static; $(BIN) runs with an empty environment"

unit-test:
	$(CARGO) test --locked --bins

# The end-to-end tests mkfs/mount loop devices: one at a time, so that one
# run's kernel log does not land in another's judging window. They test the
# shipped static binary.
integration-test: $(BIN) $(BIN_AARCH64)
	BRR_BIN=$(CURDIR)/$(BIN) BRR_BIN_AARCH64=$(CURDIR)/$(BIN_AARCH64) $(CARGO) test --locked --test '*' -- --test-threads=1

# KTAP as kernel CI reads it: our golden KTAP through the kernel's own parser
# (kunit.py parse) and tappy, then the shipped binary three times under
# kselftest's runner.sh on image files (root, host kernel); contrib/'s LAVA
# definition and TuxRun example on stand-ins, its config fragments merged
# onto x86_64 and arm64 defconfig. The GPL tools come from Debian's
# linux-source-6.12 at test time (mk/kernel-tools.sh, into target/).
ktap-test: $(BIN)
	@start=$$(date +%s); mk/test-ktap.sh && mk/test-kselftest.sh $(BIN) && mk/test-contrib.sh && \
	echo "ktap-test: $$(( $$(date +%s) - start )) s"

clean:
	$(CARGO) clean
	rm -f dist/btrfs-reclaim-repro-* dist/SHA256SUMS

# Further targets (vm-test, vm-hunt, bench, vm-bench) live in mk/*.mk.
-include mk/*.mk

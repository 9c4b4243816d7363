# btrfs-reclaim-repro: `make` builds the static binary, `make test` runs every
# test (root, for the loop-device tests), `make run` runs one pass on an image.

TARGET   ?= x86_64-unknown-linux-musl
BIN      := dist/btrfs-reclaim-repro-x86_64
CARGO    ?= cargo
IMG      ?= /tmp/btrfs-reclaim-repro.img
MNT      ?= /tmp/btrfs-reclaim-repro.mnt
SOURCES  := $(shell find src -name '*.rs') Cargo.toml Cargo.lock build.rs

.PHONY: all run test unit-test integration-test static-check clean

all: $(BIN)

# The musl target is installed on demand: a fresh clone needs nothing else.
$(BIN): $(SOURCES)
	@rustup target list --installed 2>/dev/null | grep -qx $(TARGET) || rustup target add $(TARGET)
	$(CARGO) build --release --locked --target $(TARGET)
	@mkdir -p dist
	cp target/$(TARGET)/release/btrfs-reclaim-repro $@
	@ls -l $@

# One single pass on a 3 GiB sparse image file (created, then removed).
run: $(BIN)
	@rc=0; $(BIN) --size 3G $(IMG) $(MNT) || rc=$$?; rm -f $(IMG); rmdir $(MNT) 2>/dev/null; \
	echo "exit code $$rc"; exit $$rc

test: $(BIN) static-check unit-test integration-test

static-check: $(BIN)
	@file $(BIN) | grep -Eq 'statically linked|static-pie linked' || { file $(BIN); echo "FAIL: $(BIN) is not statically linked"; exit 1; }
	@env -i ./$(BIN) --version
	@echo "ok: $(BIN) is static and runs with an empty environment"

unit-test:
	$(CARGO) test --locked --bins

# The end-to-end tests mkfs/mount loop devices: one at a time, so that one
# run's kernel log does not land in another's judging window. They test the
# shipped static binary.
integration-test: $(BIN)
	BRR_BIN=$(CURDIR)/$(BIN) $(CARGO) test --locked --tests -- --test-threads=1

clean:
	$(CARGO) clean
	rm -f dist/btrfs-reclaim-repro-* dist/SHA256SUMS

# Further targets (vm-test, bench, dist) live in their own files.
-include mk/*.mk

# The benchmark (`make bench`, root): limit, bash equivalents and the binary,
# BENCH_RUNS times each on 3 GiB sparse images in BENCH_DIR; prints min/median
# per phase, ratios and the targets. Then, once each, BENCH_ITERATIONS
# iterations of the binary in one run (time per iteration, fds and VmRSS) and
# the parser linearity table. Results: bench/RESULTS.md.
#   make bench BENCH_RUNS=5 BENCH_DIR=/var/tmp
#   make bench BENCH_ONLY=ours-fallocate,bash-fallocate
#   make bench BENCH_ONLY=iterations BENCH_ITERATIONS=100
#   make bench BENCH_ONLY=parsers          (no root, no loop device)

BENCH_RUNS ?= 3
BENCH_DIR  ?= /tmp
BENCH_OUT  ?= $(CURDIR)/target/bench
BENCH_ONLY ?=
BENCH_ITERATIONS ?= 100

.PHONY: bench

# bench.sh runs the dependency step itself, only when a variant needs the
# system (the parsers' table needs nothing).
bench: dist/btrfs-reclaim-repro-x86_64
	bench/bench.sh --runs $(BENCH_RUNS) --dir $(BENCH_DIR) --out $(BENCH_OUT) --iterations $(BENCH_ITERATIONS) --bin $(CURDIR)/dist/btrfs-reclaim-repro-x86_64$(if $(BENCH_ONLY), --only $(BENCH_ONLY))

# The three parts of a --vm run per shared kernel, medians of VM_BENCH_RUNS
# (bench/vm-mode.py; results in bench/RESULTS.md, "--vm").
VM_BENCH_RUNS ?= 3
.PHONY: vm-bench
vm-bench: dist/btrfs-reclaim-repro-x86_64 dist/btrfs-reclaim-repro-aarch64
	bench/vm-mode.py --bin $(CURDIR)/dist/btrfs-reclaim-repro-x86_64 --vm-dir $(CURDIR)/../shared/vm --runs $(VM_BENCH_RUNS)

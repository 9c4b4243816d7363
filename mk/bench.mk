# The benchmark (`make bench`, root): limit, bash equivalents and the binary,
# BENCH_RUNS times each on 3 GiB sparse images in BENCH_DIR; prints min/median
# per phase, ratios and the issue-6 targets. Results: bench/RESULTS.md.
#   make bench BENCH_RUNS=5 BENCH_DIR=/var/tmp
#   make bench BENCH_ONLY=ours-fallocate,bash-fallocate

BENCH_RUNS ?= 3
BENCH_DIR  ?= /tmp
BENCH_OUT  ?= $(CURDIR)/target/bench
BENCH_ONLY ?=

.PHONY: bench

bench: deps-bench
	@$(MAKE) --no-print-directory dist/btrfs-reclaim-repro-x86_64
	bench/bench.sh --runs $(BENCH_RUNS) --dir $(BENCH_DIR) --out $(BENCH_OUT) --bin $(CURDIR)/dist/btrfs-reclaim-repro-x86_64$(if $(BENCH_ONLY), --only $(BENCH_ONLY))

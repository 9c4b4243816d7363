# The retry-list hunt on the shared kernels (outside CI): 5 seeded runs on
# each kernel with the real bug put back (each must say REPRODUCED, exit 1,
# within 5 minutes: 6.12 with 48f091fd50b2 reverted, and Debian 6.1.192 with
# the code of 6.1.96-97) and 5 on each fixed control (NOT REPRODUCED, exit 0).
# Console logs: target/vm-hunt/<kernel>-<seed>.log; one line per run with the
# verdict's hunt counts (vmtest/hunt_summary.py; --table LOG... for RESULTS.md).
#   make vm-hunt HUNT_SEEDS="1 2 3"

HUNT_SEEDS ?= 11 12 13 14 15
HUNT_VM    ?= $(CURDIR)/../shared/vm
HUNT_LOGS  ?= $(CURDIR)/target/vm-hunt
# kernel (inside HUNT_VM):exit wanted:--stress seconds:more options
HUNT_PAIRS ?= kernels/bzImage-real-retry-bug-instrumented:1:300:--until-reproduced kernels/bzImage-instrumented:0:120: \
	kernels-6.1/bzImage-6.1-retry-bug-instrumented:1:240:--until-reproduced kernels-6.1/bzImage-6.1-instrumented:0:60:

.PHONY: vm-hunt

vm-hunt: $(BIN)
	@mkdir -p $(HUNT_LOGS)
	@fail=0; for seed in $(HUNT_SEEDS); do \
	  for pair in $(HUNT_PAIRS); do \
	    path=$${pair%%:*}; k=$${path##*/bzImage-}; rest=$${pair#*:}; want=$${rest%%:*}; rest=$${rest#*:}; secs=$${rest%%:*}; extra=$${rest#*:}; \
	    log=$(HUNT_LOGS)/$$k-$$seed.log; \
	    BENCH_VM=$(HUNT_VM) VM_TIMEOUT=420 bench/vm-run.sh $(HUNT_VM)/$$path $(BIN) $$log \
	      --stress $$secs $$extra --seed $$seed >/dev/null 2>&1; rc=$$?; \
	    line=$$(vmtest/hunt_summary.py $$log); \
	    if [ $$rc = $$want ]; then echo "ok   $$k seed $$seed exit $$rc: $$line"; \
	    else echo "FAIL $$k seed $$seed exit $$rc (want $$want): $$line ($$log)"; fail=1; fi; \
	  done; \
	done; exit $$fail

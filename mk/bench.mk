# `make bench` (issue 4): overhead, kill latency and footprint of oomkiller
# against the floor and two peers. Run as root; see bench/README.md.
#
# The workloads are built in $(BUILD)/bench. sysbench.c is built twice:
# `benchsys` is a non-target, `oomp_benchsys` a target (its name has "oomp").

BENCH_DIR   := $(BUILD)/bench
BENCH_BINS  := $(BENCH_DIR)/benchsys $(BENCH_DIR)/oomp_benchsys \
               $(BENCH_DIR)/oomp_victim $(BENCH_DIR)/ballast $(BENCH_DIR)/procpoller \
               $(BENCH_DIR)/floor.bpf.o
BENCH_ARGS  ?=

.PHONY: bench bench-build bench-deps

bench: oomkiller bench-build bench-deps
	$(PYTHON) bench/run.py $(BENCH_ARGS)

bench-build: $(BENCH_BINS)

# The bpftrace peer needs Debian's bpftrace; without it the driver skips
# that peer and says so, so a failed install is not fatal here.
bench-deps: | $(BUILD)/.deps
	$(Q)command -v bpftrace >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ]; then \
			echo "  APT      bpftrace"; \
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
				bpftrace >/dev/null 2>&1 || { apt-get update -qq && \
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
				bpftrace >/dev/null; } || echo "bench: bpftrace not installed: its peer is skipped" >&2; \
		else echo "bench: no bpftrace: run: sudo apt-get install -y bpftrace" >&2; fi; }

$(BENCH_DIR)/benchsys $(BENCH_DIR)/oomp_benchsys: bench/sysbench.c | $(BUILD)/.deps
	$(Q)mkdir -p $(dir $@)
	$(call msg,CC,$@)
	$(Q)$(CC) $(PROG_CFLAGS) -o $@ $<

$(BENCH_DIR)/oomp_victim: bench/victim.c | $(BUILD)/.deps
	$(Q)mkdir -p $(dir $@)
	$(call msg,CC,$@)
	$(Q)$(CC) $(PROG_CFLAGS) -o $@ $<

$(BENCH_DIR)/ballast: bench/ballast.c | $(BUILD)/.deps
	$(Q)mkdir -p $(dir $@)
	$(call msg,CC,$@)
	$(Q)$(CC) $(PROG_CFLAGS) -o $@ $<

$(BENCH_DIR)/procpoller: bench/poller.c | $(BUILD)/.deps
	$(Q)mkdir -p $(dir $@)
	$(call msg,CC,$@)
	$(Q)$(CC) $(PROG_CFLAGS) -o $@ $<

# Needs no vmlinux.h: empty programs only. -target bpf drops the multiarch
# include dir that <asm/types.h> lives in on Debian, so add it back.
$(BENCH_DIR)/floor.bpf.o: bench/floor.bpf.c | $(BUILD)/.deps
	$(Q)mkdir -p $(dir $@)
	$(call msg,BPF,$@)
	$(Q)$(CLANG) -g -O2 -target bpf -Wall -Werror \
		$(if $(MULTIARCH),-I/usr/include/$(MULTIARCH)) -c $< -o $@

# `make bench-vm` (issue 9): each attach family's cost per write, read and
# getppid on stock kernels, one guest each, as ratios to nothing attached.
# Prints a table per kernel, writes bench/results-vm-KERNEL.json. The
# kernels: BENCH_VM_KERNELS (Debian 12's and 13's own kernels, the one the
# project was specified for, the newest; issue 19), or VM_KERNEL alone if
# given on the command line, as for vm-run. BENCH_VM_ARGS go to
# bench/vm_families.py.
BENCH_VM_ARGS ?=
BENCH_VM_KERNELS ?= bookworm:6.1 trixie:6.12 6.18.5 newest
.PHONY: bench-vm
bench-vm: export VM_CMD = $(PYTHON) bench/vm_families.py $(BENCH_VM_ARGS)
bench-vm: oomkiller bench-build $(VNG)
	$(Q)set -e; for k in $(if $(filter command line,$(origin VM_KERNEL)),$(VM_KERNEL),$(BENCH_VM_KERNELS)); do \
		echo "bench-vm: kernel $$k"; VM_KERNEL=$$k vm/run.sh -- "$$VM_CMD"; done

# oomkiller: `make` builds ./oomkiller, `sudo make test` runs every test.
#
# Outputs go to $(BUILD); vmlinux.h is generated at the top, as the design
# lays it out, and is not committed. V=1 shows full commands.

BUILD     ?= build
CLANG     ?= clang
CC        ?= gcc
# Debian's python3, so that python3-pytest is the pytest we get.
PYTHON    ?= /usr/bin/python3
BPFTOOL   ?= bpftool
STRIP     ?= llvm-strip
ARCH      := x86

# -target bpf drops the multiarch include dir that <asm/unistd_64.h> lives
# in on Debian: add it back.
MULTIARCH   := $(shell $(CC) -print-multiarch 2>/dev/null)
UAPI_ASM    := /usr/include/$(if $(MULTIARCH),$(MULTIARCH)/)asm
BPF_CFLAGS  := -g -O2 -target bpf -D__TARGET_ARCH_$(ARCH) -mcpu=v3 \
               -Wall -Werror -I. -Ibpf -I$(BUILD) \
               $(if $(MULTIARCH),-I/usr/include/$(MULTIARCH))
PROG_CFLAGS := -O2 -g -Wall -Werror -pthread

PY_SRCS  := $(wildcard src/oomkiller/*.py src/oomkiller/*/*.py)
PROGS    := $(patsubst tests/progs/%.c,$(BUILD)/progs/%,$(wildcard tests/progs/*.c))
# The seed's programs once more as i386 binaries (gcc -m32): they must
# behave exactly as the 64-bit ones (tests/test_e2e_seed.py).
PROGS32  := $(patsubst tests/progs/%.c,$(BUILD)/progs32/%,$(wildcard tests/progs/oomp_test_*.c))
# ...and oomp_notw: what is not a write is the same by i386's numbers.
PROGS32  += $(BUILD)/progs32/oomp_notw
# oomp_rand linked more ways, for finding rand in any ELF a target maps
# (src/oomkiller/bpf/elfsym.py): static glibc with and without symbols, stripped
# static-pie, dynamic musl, and a stripped library that exports nothing.
PROGSLIBC := $(addprefix $(BUILD)/progs/oomp_rand_,static stripped spie musl hidden.so)
MUSLCC    ?= musl-gcc

ifeq ($(V),1)
Q :=
msg :=
else
Q := @
msg = @printf '  %-8s %s\n' "$(1)" "$(2)";
endif

.DELETE_ON_ERROR:
.PHONY: all deps test progs clean

all: oomkiller

# Build dependencies, checked once per build dir: root installs what is
# missing (Debian package names), anyone else is told the command.
$(BUILD)/.deps:
	$(Q)mkdir -p $(BUILD)
	$(Q)missing=""; \
	command -v $(CLANG) >/dev/null 2>&1 || missing="$$missing clang"; \
	command -v $(STRIP) >/dev/null 2>&1 || missing="$$missing llvm"; \
	command -v $(BPFTOOL) >/dev/null 2>&1 || missing="$$missing bpftool"; \
	command -v $(CC) >/dev/null 2>&1 || missing="$$missing gcc"; \
	command -v make >/dev/null 2>&1 || missing="$$missing make"; \
	[ -x $(PYTHON) ] || missing="$$missing python3"; \
	[ -f /usr/include/bpf/bpf_helpers.h ] || missing="$$missing libbpf-dev"; \
	$(PYTHON) -c 'import pytest' >/dev/null 2>&1 || missing="$$missing python3-pytest"; \
	sh mk/apt-install.sh "building oomkiller" $$missing
	$(Q)touch $@

deps: $(BUILD)/.deps

vmlinux.h: | $(BUILD)/.deps
	$(call msg,GEN,$@)
	$(Q)$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > $@

# i386's syscall numbers as NR32_*: <asm/unistd_32.h>'s __NR_* names clash
# with x86-64's, and the BPF side needs both tables.
$(BUILD)/oomk_unistd_32.h: | $(BUILD)/.deps
	$(call msg,GEN,$@)
	$(Q)sed -n 's/^#define __NR_\([a-z0-9_]*\)[[:space:]]\{1,\}\([0-9]\{1,\}\)$$/#define NR32_\1 \2/p' \
		$(UAPI_ASM)/unistd_32.h > $@
	$(Q)grep -q '^#define NR32_write 4$$' $@ || \
		{ echo "oomkiller: no i386 syscall numbers in $(UAPI_ASM)/unistd_32.h" >&2; exit 1; }

$(BUILD)/oomkiller.bpf.o: bpf/oomkiller.bpf.c bpf/oomkiller.h vmlinux.h $(BUILD)/oomk_unistd_32.h | $(BUILD)/.deps
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@
	$(Q)$(STRIP) -g $@

# The zipapp: the package plus the compiled object, run by any python3.
$(BUILD)/zip/oomkiller/oomkiller.bpf.o: $(BUILD)/oomkiller.bpf.o $(PY_SRCS)
	$(Q)rm -rf $(BUILD)/zip && mkdir -p $(BUILD)/zip/oomkiller
	$(Q)for f in $(PY_SRCS:src/%=%); do install -D -m 644 src/$$f $(BUILD)/zip/$$f || exit 1; done
	$(Q)cp $< $@

oomkiller: $(BUILD)/zip/oomkiller/oomkiller.bpf.o
	$(call msg,ZIPAPP,$@)
	$(Q)$(PYTHON) -m zipapp $(BUILD)/zip -p '/usr/bin/env python3' \
		-m 'oomkiller.commands.cli:main' -o $@.tmp && chmod 755 $@.tmp && mv $@.tmp $@

# Test workloads: every tests/progs/NAME.c becomes $(BUILD)/progs/NAME.
$(BUILD)/progs/%: tests/progs/%.c | $(BUILD)/.deps
	$(Q)mkdir -p $(dir $@)
	$(call msg,CC,$@)
	$(Q)$(CC) $(PROG_CFLAGS) -o $@ $<

# The progress file's layout, shared with tests/killer.py.
$(BUILD)/progs/oomp_work: tests/progs/progress.h

# gcc-multilib brings the i386 libc and its headers; checked once.
$(BUILD)/.deps32: | $(BUILD)/.deps
	$(Q)missing=""; \
	[ -e /usr/lib32/libc.so ] || [ -e /usr/lib/i386-linux-gnu/libc.so ] || missing="gcc-multilib"; \
	sh mk/apt-install.sh "the 32-bit test programs" $$missing
	$(Q)touch $@

$(BUILD)/progs32/%: tests/progs/%.c | $(BUILD)/.deps32
	$(Q)mkdir -p $(dir $@)
	$(call msg,CC32,$@)
	$(Q)$(CC) -m32 $(PROG_CFLAGS) -o $@ $<

$(BUILD)/progs/oomp_rand_static: LINK := -static
$(BUILD)/progs/oomp_rand_stripped: LINK := -static -s
$(BUILD)/progs/oomp_rand_spie: LINK := -static-pie -s
$(BUILD)/progs/oomp_rand_hidden.so: LINK := -fPIC -shared -fvisibility=hidden -s
$(filter-out %_musl,$(PROGSLIBC)): tests/progs/oomp_rand.c | $(BUILD)/.deps
	$(Q)mkdir -p $(dir $@)
	$(call msg,CC,$@)
	$(Q)$(CC) $(PROG_CFLAGS) $(LINK) -o $@ $<

# musl-tools brings musl-gcc and, through musl, /lib/ld-musl-x86_64.so.1
# (the libc and the loader in one file); checked once.
$(BUILD)/.depsmusl: | $(BUILD)/.deps
	$(Q)missing=""; \
	command -v $(MUSLCC) >/dev/null 2>&1 || missing="musl-tools"; \
	sh mk/apt-install.sh "the musl test program" $$missing
	$(Q)touch $@

$(BUILD)/progs/oomp_rand_musl: tests/progs/oomp_rand.c | $(BUILD)/.depsmusl
	$(Q)mkdir -p $(dir $@)
	$(call msg,MUSLCC,$@)
	$(Q)$(MUSLCC) $(PROG_CFLAGS) -o $@ $<

progs: $(PROGS) $(PROGS32) $(PROGSLIBC)

test: oomkiller progs
	$(PYTHON) -m pytest -q tests --ignore=tests/systemd $(PYTEST_ARGS)

clean:
	rm -rf $(BUILD) oomkiller oomkiller.tmp vmlinux.h

# Optional lanes (VM, bench, install) live in their own fragments.
include $(wildcard mk/*.mk)

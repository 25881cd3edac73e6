# VM lane (issue 3): boot a stock Debian kernel under QEMU (TCG) over this
# machine's own root filesystem with virtme-ng, and run the end-to-end suite
# there once per attach family.
#
#   make vm-run CMD='uname -r'        run CMD in the guest, in this directory;
#                                     make exits with CMD's status
#   make test-vm                      the per-family set under fentry,
#                                     kprobe, tracepoint, then auto
#   make test-vm KERNEL=/path/vmlinuz [MODULES=/path/lib/modules/VER]
#                                     the same on a kernel you bring
#
# Without KERNEL, vm/fetch-kernel.sh resolves the newest generic amd64 kernel
# in Debian unstable at run time and caches it unpacked in $(VM_CACHE).

VM_CACHE  ?= /var/cache/oomkiller-vm
VM_VENV   := $(BUILD)/vm-venv
VNG       := $(VM_VENV)/bin/vng
# Pinned: the flags vm/run.sh passes were checked against this release.
VIRTME_NG ?= virtme-ng==1.42
# 6G: the suite holds a ballast of gate + 1.5 GiB + slack (~2.8 GiB) and
# wants 2 GiB of RAM left beside it (tests/killer.py, Ballast).
VM_MEMORY ?= 6G
VM_CPUS   ?= 2
# Families run by test-vm, in this order; auto last.
VM_FAMILIES ?= fentry kprobe tracepoint auto
# The per-family set: what pytest runs once per family in the guest. The
# tests whose outcome depends on the attach family are tests/test_e2e_*.py
# (seed, boundaries, variants, tcp, gate, deferred, interface, cli). Left out
# of them: the bad-argument table, --version and the non-root refusal of
# test_e2e_cli.py, which exit before anything is probed or loaded, so every
# family would run the same code (they were 120 of 406 s per family under
# TCG). Everything else (unit, install, ops, rel: load, races, faults, soak)
# runs on the host in `make test`: it is not family-specific, and under TCG
# it alone would take 12-20 min per family. The guest shell expands the glob.
VM_PYTEST_ARGS ?= tests/test_e2e_*.py \
	$(foreach t,bad_argument_exits_2_with_one_line version non_root_is_refused, \
		--deselect tests/test_e2e_cli.py::test_$(t))
# Seconds per family before the guest gives up on it (2-4.5 min is normal).
VM_FAMILY_TIMEOUT ?= 600
export VM_PYTEST_ARGS VM_FAMILY_TIMEOUT

# busybox: virtme-ng builds its initramfs around a static one.

export VM_CACHE VM_MEMORY VM_CPUS VNG KERNEL MODULES

.PHONY: vm-deps vm-kernel vm-run test-vm

# Like $(BUILD)/.deps: mk/apt-install.sh installs what is missing as root,
# and tells anyone else the command.
$(BUILD)/.vm-deps:
	$(Q)mkdir -p $(BUILD)
	$(Q)missing=""; \
	command -v qemu-system-x86_64 >/dev/null 2>&1 || missing="$$missing qemu-system-x86"; \
	PATH="$$PATH:/usr/sbin:/sbin" command -v depmod >/dev/null 2>&1 || missing="$$missing kmod"; \
	command -v busybox >/dev/null 2>&1 || missing="$$missing busybox-static"; \
	$(PYTHON) -c 'import venv, ensurepip' >/dev/null 2>&1 || missing="$$missing python3-venv"; \
	sh mk/apt-install.sh "the VM lane" $$missing
	$(Q)touch $@

# virtme-ng from PyPI into a venv of Debian's python3, so nothing leaks into
# the system's site-packages.
$(VNG): | $(BUILD)/.vm-deps
	$(call msg,VENV,$(VM_VENV))
	$(Q)rm -rf $(VM_VENV)
	$(Q)$(PYTHON) -m venv $(VM_VENV)
	$(Q)$(VM_VENV)/bin/pip install -q --disable-pip-version-check '$(VIRTME_NG)'
	$(Q)test -x $@

vm-deps: $(VNG)

vm-kernel: | $(BUILD)/.vm-deps
	$(Q)vm/fetch-kernel.sh >/dev/null

vm-run: export VM_CMD = $(value CMD)
vm-run: $(VNG)
	$(Q)rc=0; vm/run.sh -- "$$VM_CMD" || rc=$$?; \
	[ $$rc = 0 ] || $(PYTHON) vm/make-exit.py $$PPID $$rc; exit $$rc

# The suite once per family, in one boot. The workloads and ./oomkiller are
# built here on the host; the guest sees them through the shared root.
test-vm: oomkiller progs $(VNG)
	$(Q)vm/test-vm.sh $(VM_FAMILIES)

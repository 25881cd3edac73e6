# A test object whose struct oomk_stats has two __u64 members swapped
# (samples and kills): same size, different layout. The loader must refuse it
# with one line (tests/test_e2e_abi.py), as it would any object that
# src/oomkiller/bpf/abi.py no longer describes.

ABI_DIR := $(BUILD)/abi-swapped

$(ABI_DIR)/oomkiller.bpf.o: bpf/oomkiller.bpf.c bpf/oomkiller.h vmlinux.h $(BUILD)/oomk_unistd_32.h | $(BUILD)/.deps
	$(Q)mkdir -p $(ABI_DIR)
	$(call msg,BPF,$@)
	$(Q)cp bpf/oomkiller.bpf.c $(ABI_DIR)/
	$(Q)awk '/^struct oomk_stats \{/ { s = 1 } \
		s && /^\t__u64 samples;/ { held = $$0; next } \
		s && held != "" && /^\t__u64 kills;/ { print; print held; held = ""; s = 0; next } \
		{ print }' bpf/oomkiller.h > $(ABI_DIR)/oomkiller.h
	$(Q)! cmp -s bpf/oomkiller.h $(ABI_DIR)/oomkiller.h || \
		{ echo "mk/abi.mk: struct oomk_stats no longer has samples then kills" >&2; exit 1; }
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $(ABI_DIR)/oomkiller.bpf.c -o $@

progs: $(ABI_DIR)/oomkiller.bpf.o

# SPDX-License-Identifier: GPL-2.0-only
#
# Builds what Kbuild lists. `make V=1` shows the commands, `make SANITIZE=1`
# builds everything with ASan+UBSan into build/san/.

include Kbuild

PREFIX ?= /usr/local
DESTDIR ?=
CC ?= cc
CLANG ?= clang
BPFTOOL ?= bpftool
PKG_CONFIG ?= pkg-config
ARCH := $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/')

BPF_OUT := build/bpf
ifeq ($(SANITIZE),1)
OUT ?= build/san
SAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer \
	     -fno-sanitize-recover=all
else
OUT ?= build
SAN_FLAGS :=
endif

ifeq ($(V),1)
Q :=
msg :=
else
Q := @
msg = @printf '  %-8s %s\n' '$(1)' '$(2)';
endif

progs := $(sbin-y) $(unittest-y) $(testprog-y)
all_libs := $(sort $(foreach p,$(progs),$($(p)-libs)))
skels := $(patsubst %,$(BPF_OUT)/%.skel.h,$(bpf-y))

CFLAGS ?= -O2 -g
override CFLAGS += -std=gnu11 -Wall -Wextra -Werror -Wshadow -Wformat=2 \
	-Wmissing-prototypes -Wstrict-prototypes -Wno-unused-parameter \
	-Wvla -Wpointer-arith -fstack-protector-strong -D_GNU_SOURCE \
	-Iuserspace/lib -Iuserspace/core -Iuserspace/control -Ibpf -I$(BPF_OUT) $(SAN_FLAGS) \
	$(shell $(PKG_CONFIG) --cflags $(all_libs) 2>/dev/null)
override LDFLAGS += $(SAN_FLAGS)
BPF_CFLAGS := -target bpf -D__TARGET_ARCH_$(ARCH) -g -O2 -Wall -Werror \
	-I$(BPF_OUT) -Ibpf

.PHONY: all tests check demo deps install clean bench
.DEFAULT_GOAL := all
# Keep generated BPF files: they are inputs of more than one rule.
.SECONDARY:

# selftests/vm's BPF LSM, built against the guest kernel's own BTF and,
# for CO-RE to relocate, against this host's.
vm_bpf := $(BPF_OUT)/vm_lsm.guest.bpf.o $(BPF_OUT)/vm_lsm.host.bpf.o

all: $(addprefix $(OUT)/,$(sbin-y))
tests: $(addprefix $(OUT)/,$(unittest-y) $(testprog-y)) $(vm_bpf)

$(BPF_OUT) $(OUT):
	$(Q)mkdir -p $@

$(BPF_OUT)/vmlinux.h: | $(BPF_OUT)
	$(call msg,GEN,$@)
	$(Q)$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > $@.tmp
	$(Q)mv $@.tmp $@

$(BPF_OUT)/%.bpf.o: bpf/%.bpf.c bpf/iofence.h $(BPF_OUT)/vmlinux.h
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@

build/vm/guest/vmlinux.h:
	$(Q)selftests/vm/prepare.sh

$(BPF_OUT)/vm_lsm.guest.bpf.o: selftests/vm/vm_lsm.bpf.c build/vm/guest/vmlinux.h | $(BPF_OUT)
	$(call msg,BPF,$@)
	$(Q)$(CLANG) -Ibuild/vm/guest $(BPF_CFLAGS) -c $< -o $@

$(BPF_OUT)/vm_lsm.host.bpf.o: selftests/vm/vm_lsm.bpf.c $(BPF_OUT)/vmlinux.h
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(BPF_OUT)/%.skel.h: $(BPF_OUT)/%.bpf.o
	$(call msg,GEN,$@)
	$(Q)$(BPFTOOL) gen skeleton $< name $*_bpf > $@.tmp
	$(Q)mv $@.tmp $@

# Every object may include a skeleton; they are cheap to make first.
$(OUT)/%.o: %.c $(skels)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

define prog_rule
$(OUT)/$(1): $(addprefix $(OUT)/,$($(1)-y))
	$$(call msg,LD,$$@)
	$$(Q)$$(CC) $$(LDFLAGS) -o $$@ $$^ \
		$(if $($(1)-libs),$$(shell $$(PKG_CONFIG) --libs $($(1)-libs)))
endef
$(foreach p,$(progs),$(eval $(call prog_rule,$(p))))

-include $(shell find $(OUT) -name '*.d' 2>/dev/null)

# The README's two commands: each installs what it needs first, then
# re-reads this Makefile so pkg-config sees the fresh packages.
deps:
	$(Q)scripts/deps.sh

check: deps
	$(Q)$(MAKE) --no-print-directory all tests
	$(Q)OUT=$(OUT) selftests/run.sh

# scripts/demo.sh runs the daemon, its client and the FUSE fault injector.
demo: deps
	$(Q)$(MAKE) --no-print-directory all $(OUT)/faultfs
	$(Q)OUT=$(OUT) scripts/demo.sh

bench: deps
	$(Q)$(MAKE) --no-print-directory all tests
	$(Q)OUT=$(OUT) selftests/bench/run.sh

install: all
	install -D -m 0755 $(OUT)/iofenced $(DESTDIR)$(PREFIX)/sbin/iofenced
	install -D -m 0755 $(OUT)/iofencectl $(DESTDIR)$(PREFIX)/sbin/iofencectl
	install -D -m 0644 userspace/iofencectl/iofencectl.8 $(DESTDIR)$(PREFIX)/share/man/man8/iofencectl.8
	install -D -m 0644 userspace/iofence-protocol.7 $(DESTDIR)$(PREFIX)/share/man/man7/iofence-protocol.7
	install -D -m 0644 bpf/iofence-bpf.7 $(DESTDIR)$(PREFIX)/share/man/man7/iofence-bpf.7

clean:
	rm -rf build

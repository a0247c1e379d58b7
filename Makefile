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
FUZZ_OUT ?= build/fuzz
FUZZ_SECONDS ?= 30
# check, demo, bench and fuzz build with JOBS compilers at once.
JOBS ?= $(shell nproc)
ifeq ($(FUZZ),1)
# The libFuzzer targets (make fuzz): clang, coverage on every object,
# never into another build's folder.
override OUT := $(FUZZ_OUT)
CC := clang
SAN_FLAGS := -fsanitize=fuzzer-no-link,address,undefined \
	     -fno-omit-frame-pointer -fno-sanitize-recover=all
# clang's -Wformat=2 wants format attributes on static v*printf wrappers,
# and it flags "a " MACRO concatenations: gcc, the tree's compiler, not.
FUZZ_WFLAGS := -Wno-format-nonliteral -Wno-string-concatenation
else ifeq ($(SANITIZE),1)
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

progs := $(sbin-y) $(unittest-y) $(testprog-y) $(if $(filter 1,$(FUZZ)),$(fuzz-y))
all_libs := $(sort $(foreach p,$(progs),$($(p)-libs)))
skels := $(patsubst %,$(BPF_OUT)/%.skel.h,$(bpf-y))

CFLAGS ?= -O2 -g
override CFLAGS += -std=gnu11 -Wall -Wextra -Werror -Wshadow -Wformat=2 \
	-Wmissing-prototypes -Wstrict-prototypes -Wno-unused-parameter \
	-Wvla -Wpointer-arith -fstack-protector-strong -D_GNU_SOURCE \
	-Iuserspace/lib -Iuserspace/core -Iuserspace/control -Ibpf -I$(BPF_OUT) $(SAN_FLAGS) $(FUZZ_WFLAGS) \
	$(shell $(PKG_CONFIG) --cflags $(all_libs) 2>/dev/null)
override LDFLAGS += $(SAN_FLAGS)
BPF_CFLAGS := -target bpf -D__TARGET_ARCH_$(ARCH) -g -O2 -Wall -Werror \
	-I$(BPF_OUT) -Ibpf

.PHONY: all tests check demo deps install uninstall clean bench fuzz fuzz-build
.DEFAULT_GOAL := all
# Keep generated BPF files: they are inputs of more than one rule.
.SECONDARY:

# selftests/vm's BPF LSM, built against the guest kernel's own BTF and,
# for CO-RE to relocate, against this host's.
vm_bpf := $(BPF_OUT)/vm_lsm.guest.bpf.o $(BPF_OUT)/vm_lsm.host.bpf.o
# selftests/ceph.sh's cgroup programs (a host's own source address, the
# network fence), loaded by bpftool.
ceph_bpf := $(BPF_OUT)/ceph_net.bpf.o

all: $(addprefix $(OUT)/,$(sbin-y))
tests: $(addprefix $(OUT)/,$(unittest-y) $(testprog-y)) $(vm_bpf) $(ceph_bpf)

$(BPF_OUT) $(OUT):
	$(Q)mkdir -p $@

$(BPF_OUT)/vmlinux.h: | $(BPF_OUT)
	$(call msg,GEN,$@)
	$(Q)$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > $@.tmp
	$(Q)mv $@.tmp $@

$(BPF_OUT)/%.bpf.o: bpf/%.bpf.c bpf/iofence.h $(BPF_OUT)/vmlinux.h
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(BPF_OUT)/netfence.bpf.o: bpf/netfence_maps.h

build/vm/guest/vmlinux.h:
	$(Q)selftests/vm/prepare.sh

$(BPF_OUT)/vm_lsm.guest.bpf.o: selftests/vm/vm_lsm.bpf.c build/vm/guest/vmlinux.h | $(BPF_OUT)
	$(call msg,BPF,$@)
	$(Q)$(CLANG) -Ibuild/vm/guest $(BPF_CFLAGS) -c $< -o $@

$(BPF_OUT)/vm_lsm.host.bpf.o: selftests/vm/vm_lsm.bpf.c $(BPF_OUT)/vmlinux.h
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(BPF_OUT)/ceph_net.bpf.o: selftests/e2e/helpers/ceph_net.bpf.c $(BPF_OUT)/vmlinux.h
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
	$(Q)$(MAKE) --no-print-directory -j$(JOBS) all tests
	$(Q)OUT=$(OUT) selftests/run.sh

# scripts/demo.sh runs the daemon, its client and the FUSE fault injector.
demo: deps
	$(Q)$(MAKE) --no-print-directory -j$(JOBS) all $(OUT)/faultfs
	$(Q)OUT=$(OUT) scripts/demo.sh

# `make fuzz FUZZ_SECONDS=N`: builds selftests/fuzz's targets into
# build/fuzz/ and runs each N seconds (30); fails on any finding.
fuzz:
	$(Q)$(MAKE) --no-print-directory -j$(JOBS) FUZZ=1 fuzz-build
	$(Q)OUT=$(FUZZ_OUT) FUZZ_SECONDS=$(FUZZ_SECONDS) selftests/fuzz/run.sh

fuzz-build: $(addprefix $(OUT)/,$(fuzz-y))
$(addprefix $(OUT)/,$(fuzz-y)): override LDFLAGS += -fsanitize=fuzzer

bench: deps
	$(Q)$(MAKE) --no-print-directory -j$(JOBS) all tests
	$(Q)OUT=$(OUT) selftests/bench/run.sh

# `make install`: PREFIX=/usr for a package (debian/rules), /usr/local by
# default; DESTDIR stages it. The units go to systemd's own unit dir when
# PREFIX=/usr (pkg-config systemd: /lib/systemd/system on Debian 12), else
# under PREFIX: systemd, systemd-tmpfiles and systemd-sysusers read
# /usr/local/lib/{systemd/system,tmpfiles.d,sysusers.d} as well.
BINDIR ?= $(PREFIX)/bin
SBINDIR ?= $(PREFIX)/sbin
LIBEXECDIR ?= $(PREFIX)/libexec
MANDIR ?= $(PREFIX)/share/man
SYSCONFDIR ?= /etc
TMPFILESDIR ?= $(PREFIX)/lib/tmpfiles.d
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
ifndef SYSTEMDUNITDIR
ifeq ($(PREFIX),/usr)
SYSTEMDUNITDIR := $(or $(shell $(PKG_CONFIG) --variable=systemdsystemunitdir systemd 2>/dev/null),/lib/systemd/system)
else
SYSTEMDUNITDIR := $(PREFIX)/lib/systemd/system
endif
endif

# SOURCE:DESTINATION:MODE of each file that is installed as it is. A
# missing source, or a placeholder left in a unit, fails the install
# before it copies anything: nothing is skipped.
inst-y += $(OUT)/iofenced:$(SBINDIR)/iofenced:0755
inst-y += $(OUT)/iofencectl:$(BINDIR)/iofencectl:0755
inst-y += scripts/iofence-inspect:$(SBINDIR)/iofence-inspect:0755
inst-y += scripts/iofence-connect-hook:$(LIBEXECDIR)/iofence/iofence-connect-hook:0755
inst-y += scripts/systemd/iofence.tmpfiles:$(TMPFILESDIR)/iofence.conf:0644
inst-y += scripts/systemd/iofence.sysusers:$(SYSUSERSDIR)/iofence.conf:0644
inst-y += scripts/bash-completion/iofencectl:$(BASHCOMPDIR)/iofencectl:0644
inst-y += userspace/control/iofenced.8:$(MANDIR)/man8/iofenced.8:0644
inst-y += userspace/iofencectl/iofencectl.8:$(MANDIR)/man8/iofencectl.8:0644
inst-y += userspace/control/iofenced.conf.5:$(MANDIR)/man5/iofenced.conf.5:0644
inst-y += userspace/iofence-protocol.7:$(MANDIR)/man7/iofence-protocol.7:0644
inst-y += bpf/iofence-bpf.7:$(MANDIR)/man7/iofence-bpf.7:0644
# The units, the same way, with @SBINDIR@ and the like replaced by this
# install's paths.
inst-unit-y += scripts/systemd/iofenced.service:$(SYSTEMDUNITDIR)/iofenced.service:0644
inst-unit-y += scripts/systemd/iofenced.socket:$(SYSTEMDUNITDIR)/iofenced.socket:0644
inst-subst := -e 's|@SBINDIR@|$(SBINDIR)|g' -e 's|@BINDIR@|$(BINDIR)|g' \
	-e 's|@LIBEXECDIR@|$(LIBEXECDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g'
# The config: installed when absent; one already there is the admin's.
inst-conf := userspace/control/iofenced.conf
inst-conf-dst = $(DESTDIR)$(SYSCONFDIR)/iofence/iofenced.conf

install: all
	$(Q)missing=; \
	for i in $(inst-y) $(inst-unit-y) $(inst-conf); do \
		[ -f "$${i%%:*}" ] || missing="$$missing $${i%%:*}"; \
	done; \
	[ -z "$$missing" ] || { echo "install: missing:$$missing" >&2; exit 1; }; \
	for i in $(inst-unit-y); do \
		! sed $(inst-subst) "$${i%%:*}" | grep -nE '@[A-Za-z_]+@' >&2 || { \
			echo "install: $${i%%:*}: a placeholder is left" >&2; exit 1; }; \
	done
	$(Q)set -e; for i in $(inst-y); do \
		src=$${i%%:*} rest=$${i#*:}; dst=$(DESTDIR)$${rest%:*}; \
		printf '  %-8s %s\n' INSTALL "$$dst"; \
		install -D -m "$${rest##*:}" "$$src" "$$dst"; \
	done
	$(Q)set -e; for i in $(inst-unit-y); do \
		src=$${i%%:*} rest=$${i#*:}; dst=$(DESTDIR)$${rest%:*}; \
		printf '  %-8s %s\n' INSTALL "$$dst"; \
		install -d "$${dst%/*}"; \
		sed $(inst-subst) "$$src" >"$$dst.tmp"; \
		chmod "$${rest##*:}" "$$dst.tmp"; mv "$$dst.tmp" "$$dst"; \
	done
	$(Q)dst=$(inst-conf-dst); \
	if [ ! -e "$$dst" ]; then \
		printf '  %-8s %s\n' INSTALL "$$dst"; \
		install -D -m 0644 $(inst-conf) "$$dst"; \
	elif ! cmp -s $(inst-conf) "$$dst"; then \
		printf '  %-8s %s (yours; the shipped one is %s)\n' KEPT "$$dst" $(inst-conf); \
	fi

# Removes what install put there, and iofence's own directories when they
# are empty; shared ones (bin, man8, tmpfiles.d...) stay. A config that
# differs from the shipped one is the admin's: it stays, and is named.
uninstall:
	$(Q)for i in $(inst-y) $(inst-unit-y); do \
		rest=$${i#*:}; dst=$(DESTDIR)$${rest%:*}; \
		[ -e "$$dst" ] || [ -L "$$dst" ] || continue; \
		printf '  %-8s %s\n' REMOVE "$$dst"; \
		rm -f "$$dst"; \
	done
	$(Q)dst=$(inst-conf-dst); \
	if [ -e "$$dst" ] && cmp -s $(inst-conf) "$$dst"; then \
		printf '  %-8s %s\n' REMOVE "$$dst"; \
		rm -f "$$dst"; \
	elif [ -e "$$dst" ]; then \
		printf '  %-8s %s (changed since install: remove it yourself)\n' KEPT "$$dst"; \
	fi
	$(Q)for d in $(DESTDIR)$(LIBEXECDIR)/iofence $(DESTDIR)$(SYSCONFDIR)/iofence; do \
		[ ! -d "$$d" ] || rmdir --ignore-fail-on-non-empty "$$d"; \
	done

clean:
	rm -rf build

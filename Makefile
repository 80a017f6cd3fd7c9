# SPDX-License-Identifier: GPL-2.0
#
# rloop: out-of-tree build and test entry points. `make help` lists them.
# Kbuild reads ./Kbuild for the module itself.

SCRIPTS := $(CURDIR)/scripts
export KDIR

# Two kinds of targets. Plain ones (modules, clean, install, lint, fmt,
# test-host, test-dkms) do what they say and no more: without KDIR they use
# the cached test kernel if it is built, and otherwise stop and say to run
# `make kernel` or pass KDIR. The ones that set things up (deps, kernel,
# kdir, vm, demo, check, check-full, check-distro, test-vm, soak, bench)
# install the host packages and build the kernels they need, from nothing.

.PHONY: all modules setup clean kdir deps kernel vm demo check check-full check-distro soak test-host test-dkms test-vm bench fmt lint install help

all: modules

## make modules: build rloop.ko against KDIR (the default target; KDIR defaults to the cached test kernel, which must be built: make kernel)
modules:
	@$(SCRIPTS)/kmake.sh modules

# The set-up of the targets that boot the test VM: host packages and the
# test kernel (make kernel), then rloop.ko for it.
setup: kernel
	@$(SCRIPTS)/kmake.sh modules

## make clean: remove the module's build products (no kernel tree needed)
clean:
	@$(SCRIPTS)/clean.sh

## make kdir: print the path of the cached test-kernel build tree
kdir:
	@RLOOP_QUIET=1 $(SCRIPTS)/deps.sh
	@RLOOP_QUIET=1 $(SCRIPTS)/kernel-build.sh test

## make deps: install host dependencies (Debian packages, bindgen, virtme-ng)
deps:
	@$(SCRIPTS)/deps.sh

## make kernel: fetch and build the cached test kernel
kernel: deps
	@$(SCRIPTS)/kernel-build.sh test >/dev/null

## make vm: interactive shell in the test VM, project directory mounted
vm: setup
	@$(SCRIPTS)/vm.sh --shell

## make demo: build what is missing, boot the VM and show rloop at work
demo: setup
	@$(SCRIPTS)/vm.sh -- $(CURDIR)/tests/demo.sh

## make check: the test suite (what CI runs): lint, host tests, dkms build, the VM suite, each stage timed
check:
	@$(SCRIPTS)/check.sh fast

## make check-full: make check with the long forms of the VM cases (Documentation/testing.rst says when it is due)
check-full:
	@$(SCRIPTS)/check.sh full

## make check-distro: rloop built for Debian's own kernels (sid, trixie-backports; DISTRO_KERNELS=debian:... picks) and tested in them, in a VM
check-distro: results/bin/compat32
	@$(SCRIPTS)/check-distro.sh $(DISTRO_KERNELS)

## make bench: fio, rloop vs loop.c vs raw file, in a release-kernel VM; report in results/bench/latest
bench:
	@$(SCRIPTS)/bench.sh

## make fmt: format the Rust sources in kernel style
fmt:
	@$(SCRIPTS)/lint.sh --fix

## make lint: rustfmt --check, clippy (CLIPPY=1), rustdoc, checkpatch --strict, no unsafe in the driver logic, the layering of rust/, shellcheck, pyflakes
lint:
	@$(SCRIPTS)/lint.sh

## make install: install rloop.ko into /lib/modules/<release>/extra
install: modules
	@$(SCRIPTS)/kmake.sh modules_install INSTALL_MOD_DIR=extra

## make test-host: host-side cargo test of the kernel-free logic
test-host:
	@$(SCRIPTS)/test-host.sh

## make test-dkms: dkms add and build against the test kernel (KDIR, or the cached one) and Debian sid's headers (needs root)
test-dkms:
	@$(SCRIPTS)/test-dkms.sh

# The VM suite, the soak and the interactive VM load a test module: it has
# the test hooks of rust/test_hooks.rs (the selftest_warn parameter, the
# load-time self-check of the C helpers), which the production build, what
# `make` and `make install` build, leaves out. Kbuild rebuilds the module
# when the setting changes.
test-vm soak vm: export RLOOP_TEST_HOOKS = 1

## make test-vm: the in-VM test suite over two VMs at once (TESTS=regex selects cases, RLOOP_VM_SHARDS=N the number of VMs)
test-vm: setup results/bin/compat32
	@$(SCRIPTS)/test-vm.sh '$(TESTS)'

# A 32-bit program for the compat ioctl tests, built here: in the guest,
# under TCG, gcc takes minutes. gcc -m32 needs gcc-multilib (make deps).
results/bin/compat32: tests/compat32.c | deps
	@mkdir -p $(dir $@)
	@gcc -m32 -static -O2 -Wall -o $@ $<

SOAK_SECS ?= 600
SEED ?= 1

## make soak: long reliability runs in the VM: fio verify on 8 devices for SOAK_SECS (default 600) s, races and ioctl fuzzing scaled up, seeded by SEED (default 1)
soak: setup results/bin/compat32
	@$(SCRIPTS)/vm.sh --dmesg $(CURDIR)/results/dmesg-soak.txt -- env RLOOP_SOAK_SECS=$(SOAK_SECS) \
		RLOOP_SEED=$(SEED) RLOOP_CASE_TIMEOUT=$$(($(SOAK_SECS) + 1200)) \
		$(CURDIR)/tests/run.sh -d $(CURDIR)/tests/soak

## make help: list the targets
help:
	@sed -n 's/^## make \([^:]*\): /  \1\t/p' $(MAKEFILE_LIST) | expand -t 16

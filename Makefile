# duet - one host, a fleet of VMs and containers from YAML manifests.
#
#   make deps     install the Debian packages duet builds and tests with (idempotent)
#   make          build build/duet
#   make test     deps, build, then the whole suite (criterion)
#   make asan     the whole suite again under AddressSanitizer + UBSan
#   make bench    benchmarks, with ratios against a reference measured in the same run
#   make demo     deps, build, start duetd and run the example fleet (VMs + containers), then tear down
#   make install  PREFIX=/usr/local DESTDIR=  (docs/install.md; make uninstall)

SHELL   := /bin/bash
PREFIX  ?= /usr/local
DESTDIR ?=
BUILD   ?= build
CC      ?= cc

# Build and test dependencies; runtime ones come with the backends that use them.
DEB_PACKAGES = gcc make pkg-config libyaml-dev libjansson-dev libvirt-dev libcriterion-dev \
               libseccomp-dev libuv1-dev libsqlite3-dev libhttp-parser-dev libmnl-dev libnftables-dev libarchive-dev libssl-dev libcurl4-openssl-dev busybox-static umoci runc curl \
               docker-registry skopeo apache2-utils openssl \
               libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients qemu-system-x86 qemu-utils \
               e2fsprogs cpio syslinux syslinux-common mtools dosfstools nftables mmdebstrap fdisk \
               systemd man-db groff-base zsh prometheus chromium fonts-liberation

PKGS      = yaml-0.1 jansson libvirt libseccomp libuv sqlite3
# Every header is named by its path from the top ("backends/driver.h"), or
# bare from a file of its own folder.
INCLUDES  = -I.
WARN      = -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wformat=2 -Wno-format-nonliteral
CFLAGS   ?= -O2 -g
ALL_CFLAGS = -std=gnu11 -D_GNU_SOURCE -pthread $(WARN) $(INCLUDES) $(CFLAGS) $(SAN_CFLAGS) \
             $(shell pkg-config --cflags $(PKGS) 2>/dev/null) -MMD -MP
# libvirt is loaded at run time by the VM probe (dlopen): only its headers are built against.
LIBS       = $(shell pkg-config --libs yaml-0.1 jansson libseccomp libuv sqlite3 2>/dev/null) -lhttp_parser -lmnl -lnftables -lm -pthread
# The image store (images/): layers through libarchive, digests through
# libcrypto, registries through libcurl.  Not on the duet command's link line: its start-up pays for
# every library it loads, and it never unpacks an image itself.
IMG_LIBS   = $(shell pkg-config --libs libarchive libssl libcrypto libcurl 2>/dev/null)
# The tests also drive libvirt's in-process test driver directly.
TEST_LIBS  = $(shell pkg-config --libs criterion libvirt libvirt-qemu 2>/dev/null)

ifeq ($(SAN),1)
SAN_CFLAGS = -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS   += -fsanitize=address,undefined
endif

LIB_SRC = common/err.c common/base64.c common/fsutil.c common/loopdev.c common/arena.c common/units.c common/strmap.c common/jsonw.c common/jsonfmt.c common/grow.c common/sysinfo.c common/promtext.c common/listenaddr.c \
          manifests/diag.c manifests/ytree.c manifests/schema.c manifests/manifest.c manifests/hostpath.c manifests/specjson.c \
          scheduler/host.c scheduler/placement.c scheduler/hostprobe.c \
          backends/driver.c backends/kept.c backends/opqueue.c backends/instance.c backends/rootfs.c backends/container/cgroup_detect.c backends/container/probe.c \
          backends/container/cgroup.c backends/container/cgroup_v1.c backends/container/cgroup_v2.c \
          backends/container/syscall_filter.c backends/container/caps.c \
          backends/container/mounts.c backends/container/layer.c backends/container/runtime.c backends/container/exec_tty.c backends/container/spawner.c backends/container/driver.c \
          backends/vm/agent.c backends/vm/qga.c backends/vm/probe.c backends/vm/virtiofs.c backends/vm/domain.c backends/vm/event_uv.c backends/vm/guest_image.c backends/vm/iso9660.c backends/vm/cloudinit.c backends/vm/driver.c \
          orchestrator/store.c orchestrator/api/http.c cli/client.c cli/plan_output.c cli/plan_images.c \
          network/ipam.c network/netlink.c network/nft.c network/dns.c network/dhcp.c network/fleet.c \
          images/digest.c images/ref.c images/unpack.c images/config.c images/registry.c images/store.c \
          storage/volume.c storage/snapshot.c storage/backup.c
CLI_SRC   = cli/main.c cli/verbs.c cli/exec.c cli/compare.c cli/estimate.c cli/top.c
# duetd's core (the context, workloads, events, apply, reconciler, health,
# network glue) is a library: the reconciler's unit tests link it too.
DUETD_CORE_SRC = orchestrator/daemon.c orchestrator/workload.c orchestrator/events.c orchestrator/apply.c orchestrator/image.c \
                 orchestrator/net.c orchestrator/reconcile.c orchestrator/health.c orchestrator/volume.c \
                 orchestrator/snapshot.c orchestrator/backup.c orchestrator/stats.c orchestrator/compare.c \
                 orchestrator/compare_probe.c orchestrator/logfilter.c orchestrator/secret.c orchestrator/metrics.c
DUETD_SRC = orchestrator/main.c orchestrator/api/routes.c orchestrator/api/workloads.c orchestrator/api/apply.c \
            orchestrator/api/logs.c orchestrator/api/exec_io.c orchestrator/api/events.c orchestrator/api/images.c orchestrator/api/volumes.c \
            orchestrator/api/snapshots.c orchestrator/api/backups.c orchestrator/api/compare.c orchestrator/api/secrets.c \
            orchestrator/api/web.c orchestrator/api/web_assets.c
UNIT_SRC  = $(wildcard tests/unit/*.c) tests/common/criterion_main.c
CLI_TEST_SRC = $(wildcard tests/cli/*.c) tests/common/criterion_main.c
CT_TEST_SRC = tests/container/test_container.c tests/container/test_driver.c tests/common/criterion_main.c
VM_TEST_SRC = $(wildcard tests/vm/*.c) tests/common/criterion_main.c
DAEMON_TEST_SRC = $(wildcard tests/daemon/*.c) tests/vm/no_kvm.c tests/common/criterion_main.c
BENCH_SRC = tests/bench/bench_plan.c
BENCH_CT_SRC = tests/bench/bench_container.c
BENCH_VM_SRC = tests/bench/bench_vm.c
BENCH_D_SRC = tests/bench/bench_daemon.c
BENCH_CMP_SRC = tests/bench/bench_compare.c tests/vm/no_kvm.c
BENCH_IMG_SRC = tests/bench/bench_images.c
BENCH_VOL_SRC = tests/bench/bench_volume.c

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))

LIB       = $(BUILD)/libduet.a
LIBD      = $(BUILD)/libduetd.a
DUET      = $(BUILD)/duet
DUETD     = $(BUILD)/duetd
INIT      = $(BUILD)/duet-init
VMINIT    = $(BUILD)/duet-vminit
VIRTIOFSD = $(BUILD)/duet-virtiofsd
UNIT_BIN  = $(BUILD)/tests/unit
CLI_BIN   = $(BUILD)/tests/cli
CT_BIN    = $(BUILD)/tests/container
VM_BIN    = $(BUILD)/tests/vm
DAEMON_BIN = $(BUILD)/tests/daemon
PROBE     = $(BUILD)/tests/escape_probe
ROOTFS    = $(BUILD)/images/busybox
BENCH_BIN = $(BUILD)/bench/plan
BENCH_CT_BIN = $(BUILD)/bench/container
BENCH_VM_BIN = $(BUILD)/bench/vm
BENCH_D_BIN = $(BUILD)/bench/daemon
BENCH_CMP_BIN = $(BUILD)/bench/compare
BENCH_IMG_BIN = $(BUILD)/bench/images
BENCH_VOL_BIN = $(BUILD)/bench/volume

.PHONY: all deps test check asan bench demo install install-files uninstall clean images

MANPAGES = $(BUILD)/man/duet.1 $(BUILD)/man/duet-manifest.5 $(BUILD)/man/duetd.8

all: $(DUET) $(DUETD) $(INIT) $(VMINIT) $(VIRTIOFSD) $(MANPAGES)

# V=1 shows the full command lines.
Q = $(if $(V),,@)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(V),,echo "  CC      $<")
	$(Q)$(CC) $(ALL_CFLAGS) -c $< -o $@

# The dashboard's files are built into duetd (.incbin): its object
# depends on them.
WEB_ASSETS = $(wildcard orchestrator/web/*)
$(BUILD)/obj/orchestrator/api/web_assets.o: $(WEB_ASSETS)

$(LIB): $(call obj,$(LIB_SRC))
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(LIBD): $(call obj,$(DUETD_CORE_SRC))
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(DUET): $(call obj,$(CLI_SRC)) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

# duetd drives libvirt itself (the VM driver), so it links it.
$(DUETD): $(call obj,$(DUETD_SRC)) $(LIBD) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS) $(IMG_LIBS) $(shell pkg-config --libs libvirt libvirt-qemu 2>/dev/null)

# pid 1 of every container, and the spawner that clones their setup
# processes (spawner.h): static, small, never sanitized (it runs inside
# containers, where the sanitizer runtime has nothing to report to).
INIT_SRC = backends/container/init_main.c backends/container/init_attach.c backends/container/spawner_main.c backends/container/setup.c \
           backends/container/mounts.c backends/container/caps.c common/fsutil.c common/err.c
$(INIT): $(INIT_SRC) $(wildcard backends/container/*.h common/*.h network/*.h manifests/*.h)
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -D_GNU_SOURCE $(WARN) $(INCLUDES) -Os -static -o $@ $(INIT_SRC)

# /init of the initramfs a rootfs image boots with as a VM: static, it runs
# inside guests.
VMINIT_SRC = backends/vm/vminit_main.c backends/vm/vminit_agent.c
$(VMINIT): $(VMINIT_SRC) backends/vm/vminit_agent.h backends/vm/agent_proto.h common/ifconf.h common/dirs.h
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -D_GNU_SOURCE $(WARN) $(INCLUDES) -Os -static -o $@ $(VMINIT_SRC)

# The virtiofsd libvirt starts for a VM's volume (backends/vm/virtiofs.h);
# called by its -ro name, the volume is read-only on the host's side.
$(VIRTIOFSD): backends/vm/virtiofsd_main.c backends/vm/virtiofs.c backends/vm/virtiofs.h
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -D_GNU_SOURCE $(WARN) $(INCLUDES) -O2 -o $@ backends/vm/virtiofsd_main.c backends/vm/virtiofs.c
	ln -sf duet-virtiofsd $@-ro

$(UNIT_BIN): $(call obj,$(UNIT_SRC)) $(LIBD) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS) $(IMG_LIBS) $(TEST_LIBS)

$(CLI_BIN): $(call obj,$(CLI_TEST_SRC)) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS) $(IMG_LIBS) $(TEST_LIBS)

$(CT_BIN): $(call obj,$(CT_TEST_SRC)) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS) $(IMG_LIBS) $(TEST_LIBS)

$(VM_BIN): $(call obj,$(VM_TEST_SRC)) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS) $(IMG_LIBS) $(TEST_LIBS)

$(DAEMON_BIN): $(call obj,$(DAEMON_TEST_SRC)) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS) $(IMG_LIBS) $(TEST_LIBS)

$(PROBE): tests/container/escape_probe.c
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -D_GNU_SOURCE $(WARN) -O1 -static -o $@ $<

# The test and example image: Debian's busybox-static, no download.
$(ROOTFS): tests/images/busybox-rootfs.sh $(PROBE)
	tests/images/busybox-rootfs.sh $@ $(PROBE)

# The same rootfs as an OCI image layout (two layers, a config): what the
# tests and the demo run as image.oci.
OCI_LAYOUT = $(BUILD)/images/busybox-oci
$(OCI_LAYOUT): tests/images/oci-layout.sh $(ROOTFS)
	tests/images/oci-layout.sh $@ $(ROOTFS)

# Man pages: kept in docs/man, their tables made from docs/ (man-page.sh).
$(BUILD)/man/%: docs/man/% scripts/man-page.sh scripts/man-table.awk docs/manifest.md docs/install.md
	@mkdir -p $(dir $@)
	scripts/man-page.sh $< $@

# Guest images for the example fleet's VMs: Debian's kernel (apt-get
# download + dpkg -x, nothing installed) and the db guest's initramfs.
$(BUILD)/images/kernel/vmlinuz: tests/images/guest-kernel.sh
	tests/images/guest-kernel.sh $(BUILD)/images/kernel

$(BUILD)/images/vmlinuz: $(BUILD)/images/kernel/vmlinuz
	cp $< $@

$(BUILD)/images/db-initrd.cpio.gz: tests/images/initramfs.sh tests/images/db-guest.sh $(BUILD)/images/kernel/vmlinuz
	tests/images/initramfs.sh $@ tests/images/db-guest.sh $(BUILD)/images/kernel

$(BUILD)/images/net-initrd.cpio.gz: tests/images/initramfs.sh tests/images/net-guest.sh $(BUILD)/images/kernel/vmlinuz
	tests/images/initramfs.sh $@ tests/images/net-guest.sh $(BUILD)/images/kernel

$(BUILD)/images/test-initrd.cpio.gz: tests/images/initramfs.sh tests/images/test-guest.sh $(BUILD)/images/kernel/vmlinuz
	tests/images/initramfs.sh $@ tests/images/test-guest.sh $(BUILD)/images/kernel

# A raw disk that boots by BIOS alone (SYSLINUX on FAT), for the disk tests.
$(BUILD)/images/bootable.img: tests/images/bootable-disk.sh $(BUILD)/images/kernel/vmlinuz $(BUILD)/images/test-initrd.cpio.gz
	tests/images/bootable-disk.sh $@ $(BUILD)/images/kernel/vmlinuz $(BUILD)/images/test-initrd.cpio.gz

# The same, booting the network guest, which then asks DHCP for its address.
$(BUILD)/images/net-bootable.img: tests/images/bootable-disk.sh $(BUILD)/images/kernel/vmlinuz $(BUILD)/images/net-initrd.cpio.gz
	tests/images/bootable-disk.sh $@ $(BUILD)/images/kernel/vmlinuz $(BUILD)/images/net-initrd.cpio.gz duet.peer=web:8080

# A Debian 12 cloud disk image with cloud-init (mmdebstrap from Debian's
# packages, a few minutes), for the cloud-init tests.  One per checkout:
# the sanitizer build shares it.
CLOUD_GUEST = build/images/cloud-guest.qcow2
$(CLOUD_GUEST): tests/images/cloud-guest.sh
	@mkdir -p $(dir $@)
	tests/images/cloud-guest.sh $@

VM_IMAGES = $(CLOUD_GUEST) $(BUILD)/images/vmlinuz $(BUILD)/images/db-initrd.cpio.gz $(BUILD)/images/net-initrd.cpio.gz $(BUILD)/images/net-bootable.img $(BUILD)/images/kernel/vmlinuz $(BUILD)/images/test-initrd.cpio.gz $(BUILD)/images/bootable.img

DEMO_IMAGES = $(ROOTFS) $(OCI_LAYOUT) $(BUILD)/images/vmlinuz $(BUILD)/images/db-initrd.cpio.gz $(BUILD)/images/test-initrd.cpio.gz $(BUILD)/images/kernel/vmlinuz
images: $(DEMO_IMAGES) $(VM_IMAGES)

$(BENCH_BIN): $(call obj,$(BENCH_SRC)) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS) $(IMG_LIBS)

$(BENCH_CT_BIN): $(call obj,$(BENCH_CT_SRC)) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS) $(IMG_LIBS)

$(BENCH_VM_BIN): $(call obj,$(BENCH_VM_SRC)) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS) $(IMG_LIBS) $(shell pkg-config --libs libvirt libvirt-qemu 2>/dev/null)

$(BENCH_D_BIN): $(call obj,$(BENCH_D_SRC)) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS) $(IMG_LIBS)

$(BENCH_CMP_BIN): $(call obj,$(BENCH_CMP_SRC))
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ -ljansson -lpthread

$(BENCH_VOL_BIN): $(call obj,$(BENCH_VOL_SRC))
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^

$(BENCH_IMG_BIN): $(call obj,$(BENCH_IMG_SRC)) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS) $(IMG_LIBS)

# npm for the dashboard's browser test: Debian's, unless a Node.js with
# its own npm is there already (Debian's npm package would conflict with it).
deps:
	@./scripts/deps.sh $(DEB_PACKAGES)
	@command -v npm >/dev/null || ./scripts/deps.sh nodejs npm

# The suite: unit tests, then tests that run the built binary.  Criterion
# prints its summary line for each; any failure fails the target.
TEST_ENV = DUET_CONFIG=none DUET_BIN=$(abspath $(DUET)) DUET_BUILD=$(abspath $(BUILD)) DUET_INIT=$(abspath $(INIT)) DUET_ROOTFS=$(abspath $(ROOTFS)) DUET_SRC=$(CURDIR) \
           DUET_VMINIT=$(abspath $(VMINIT)) DUET_VIRTIOFSD=$(abspath $(VIRTIOFSD)) DUET_GUEST_KERNEL=$(abspath $(BUILD)/images/kernel/vmlinuz) \
           DUET_IMAGES=$(abspath $(BUILD)/images) DUET_OCI=$(abspath $(OCI_LAYOUT)) DUET_CLOUD_GUEST=$(abspath $(CLOUD_GUEST)) $(if $(RSS_LIMIT_KIB),DUET_RSS_LIMIT_KIB=$(RSS_LIMIT_KIB)) \
           DUET_WEB_MODULES=$(abspath $(WEB_TEST_MODULES)) \
           $(if $(filter 1,$(SAN)),DUET_VM_VIA_LIBVIRTD=1)

# Under the sanitizers a report inside a test's worker process does not
# change the test's result, so the output is also searched for reports.
SAN_LOG = $(BUILD)/sanitizer.log
ifeq ($(SAN),1)
RUN_SUITE = set -o pipefail; $(TEST_ENV) $(1) --jobs 2 2>&1 | tee -a $(SAN_LOG)
else
RUN_SUITE = $(TEST_ENV) $(1) --jobs 2
endif

# The dashboard's browser test drives Debian's chromium with puppeteer-core
# from the npm registry, at the version package-lock.json holds; one copy
# for every build (make test and make asan share it).
WEB_TEST_DIR = build/web-test
WEB_TEST_MODULES = $(WEB_TEST_DIR)/node_modules
$(WEB_TEST_DIR)/.installed: tests/web/package.json tests/web/package-lock.json
	@command -v npm >/dev/null || { echo "npm is missing: the dashboard test needs Node.js 18 or later and npm" >&2; exit 1; }
	@mkdir -p $(WEB_TEST_DIR)
	cp tests/web/package.json tests/web/package-lock.json $(WEB_TEST_DIR)/
	cd $(WEB_TEST_DIR) && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
	@touch $@

check: $(WEB_TEST_DIR)/.installed $(DUET) $(DUETD) $(INIT) $(VMINIT) $(VIRTIOFSD) $(MANPAGES) $(UNIT_BIN) $(CLI_BIN) $(CT_BIN) $(VM_BIN) $(DAEMON_BIN) $(ROOTFS) $(OCI_LAYOUT) $(VM_IMAGES)
	@rm -f $(SAN_LOG)
	$(call RUN_SUITE,$(UNIT_BIN))
	$(call RUN_SUITE,$(CLI_BIN))
	$(call RUN_SUITE,$(CT_BIN))
	$(call RUN_SUITE,$(VM_BIN))
	$(call RUN_SUITE,$(DAEMON_BIN))
	@if [ -f $(SAN_LOG) ] && grep -E "ERROR: (Address|Leak)Sanitizer|runtime error:" $(SAN_LOG); then \
	    echo "sanitizer reports above: failing" >&2; exit 1; fi

test: deps
	$(MAKE) check

# The VM and daemon suites' VMs go through a libvirtd of each test's own
# under the sanitizers (DUET_VM_VIA_LIBVIRTD, see tests/vm/vmtest.h and
# tests/daemon/dtest.h): libvirt's embedded driver forks inside the
# instrumented process and its children allocate before they exec, which
# GCC 12's ASan allocator does not survive.
# Shadow memory and quarantine raise peak RSS; the memory bound of the
# hostile-input tests is loosened to match, never dropped.
# intercept_tls_get_addr=0: up to GCC 13 the runtime's __tls_get_addr
# interceptor takes a dynamic TLS block that happens to start 16 bytes into
# a page for an old glibc's header and reads garbage as its bounds; the
# leak checker's tracer then dies ("Tracer caught signal 11") in processes
# with dlopen'ed TLS, which libvirt's driver modules are.  Seen about once
# in five ASan runs of the VM and daemon suites; the dynamic TLS blocks are
# still scanned, as heap reachable from each thread's TLS.
# tests/lsan.supp: one leak of libvirt's own, in its QMP parsing (the file
# says which and why nothing of duet's can match it).
asan: deps
	ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:quarantine_size_mb=16:intercept_tls_get_addr=0 UBSAN_OPTIONS=print_stacktrace=1 \
	LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp:print_suppressions=0 \
	$(MAKE) BUILD=build/asan SAN=1 CFLAGS="-O1 -g" RSS_LIMIT_KIB=131072 check

# Each benchmark exits 1 when outside its bars; all of them run regardless.
# podman is a reference of the daemon benchmark, measured in the same run.
BENCH_DEB_PACKAGES = podman

bench: deps
	@./scripts/deps.sh $(BENCH_DEB_PACKAGES)
	$(MAKE) $(DUET) $(DUETD) $(INIT) $(VMINIT) $(VIRTIOFSD) $(ROOTFS) $(OCI_LAYOUT) $(BENCH_BIN) $(BENCH_CT_BIN) $(BENCH_VM_BIN) $(BENCH_D_BIN) $(BENCH_CMP_BIN) $(BENCH_IMG_BIN) $(BENCH_VOL_BIN) $(VM_IMAGES)
	@rc=0; \
	DUET_BIN=$(abspath $(DUET)) $(BENCH_BIN) || rc=1; \
	$(TEST_ENV) $(BENCH_CT_BIN) || rc=1; \
	$(TEST_ENV) $(BENCH_VM_BIN) || rc=1; \
	$(TEST_ENV) $(BENCH_D_BIN) || rc=1; \
	$(TEST_ENV) $(BENCH_CMP_BIN) || rc=1; \
	$(TEST_ENV) $(BENCH_IMG_BIN) || rc=1; \
	$(TEST_ENV) $(BENCH_VOL_BIN) || rc=1; \
	exit $$rc

# The example fleet for real: duetd, VMs and containers, then torn down.
demo: deps
	$(MAKE) all $(DEMO_IMAGES)
	./scripts/demo.sh $(BUILD)

# The installed layout (docs/install.md lists it, and the install test
# checks the two agree).  duetd finds its helpers in PREFIX/lib/duet and
# the guest kernel in PREFIX/lib/duet/kernel, as `duet plan` does; the
# config file is /etc/duet/duetd.yaml whatever the prefix, and is never
# overwritten.
SBINDIR    = $(PREFIX)/sbin
BINDIR     = $(PREFIX)/bin
DUETLIBDIR = $(PREFIX)/lib/duet
UNITDIR    = $(PREFIX)/lib/systemd/system
MANDIR     = $(PREFIX)/share/man
BASHCOMPDIR = $(PREFIX)/share/bash-completion/completions
ZSHCOMPDIR = $(PREFIX)/share/zsh/site-functions
GUEST_KERNEL_DIR = $(BUILD)/images/kernel

install: $(DUET) $(DUETD) $(INIT) $(VMINIT) $(VIRTIOFSD) $(MANPAGES) $(GUEST_KERNEL_DIR)/vmlinuz
	$(MAKE) --no-print-directory install-files

# The copying alone, from a build that exists (the install test runs it
# against the build under test, which nothing may rebuild meanwhile).
install-files:
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(SBINDIR) $(DESTDIR)$(DUETLIBDIR) $(DESTDIR)$(UNITDIR) \
	    $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8 \
	    $(DESTDIR)$(BASHCOMPDIR) $(DESTDIR)$(ZSHCOMPDIR) $(DESTDIR)/etc/duet
	install -m 0755 $(DUET) $(DESTDIR)$(BINDIR)/
	install -m 0755 $(DUETD) $(DESTDIR)$(SBINDIR)/
	install -m 0755 $(INIT) $(VMINIT) $(VIRTIOFSD) $(DESTDIR)$(DUETLIBDIR)/
	ln -sfn duet-virtiofsd $(DESTDIR)$(DUETLIBDIR)/duet-virtiofsd-ro
	rm -rf $(DESTDIR)$(DUETLIBDIR)/kernel.new
	cp -a $(GUEST_KERNEL_DIR) $(DESTDIR)$(DUETLIBDIR)/kernel.new
	rm -rf $(DESTDIR)$(DUETLIBDIR)/kernel
	mv $(DESTDIR)$(DUETLIBDIR)/kernel.new $(DESTDIR)$(DUETLIBDIR)/kernel
	sed 's|@SBINDIR@|$(SBINDIR)|g' orchestrator/duetd.service.in > $(DESTDIR)$(UNITDIR)/duetd.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/duetd.service
	install -m 0644 $(BUILD)/man/duet.1 $(DESTDIR)$(MANDIR)/man1/
	install -m 0644 $(BUILD)/man/duet-manifest.5 $(DESTDIR)$(MANDIR)/man5/
	install -m 0644 $(BUILD)/man/duetd.8 $(DESTDIR)$(MANDIR)/man8/
	install -m 0644 cli/completion/duet.bash $(DESTDIR)$(BASHCOMPDIR)/duet
	install -m 0644 cli/completion/_duet $(DESTDIR)$(ZSHCOMPDIR)/_duet
	[ -e $(DESTDIR)/etc/duet/duetd.yaml ] || install -m 0644 orchestrator/duetd.yaml $(DESTDIR)/etc/duet/duetd.yaml

# Everything install put down but the config file, which holds the
# user's settings (remove /etc/duet by hand to forget them).
uninstall:
	rm -f $(DESTDIR)$(BINDIR)/duet $(DESTDIR)$(SBINDIR)/duetd $(DESTDIR)$(UNITDIR)/duetd.service \
	    $(DESTDIR)$(MANDIR)/man1/duet.1 $(DESTDIR)$(MANDIR)/man5/duet-manifest.5 $(DESTDIR)$(MANDIR)/man8/duetd.8 \
	    $(DESTDIR)$(BASHCOMPDIR)/duet $(DESTDIR)$(ZSHCOMPDIR)/_duet
	rm -rf $(DESTDIR)$(DUETLIBDIR)

clean:
	rm -rf build

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

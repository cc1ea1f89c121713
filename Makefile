# ctrlua — build, test, bench, install.  `make deps && make test` on a fresh Debian 12 (root).
SHELL     := /bin/bash
VERSION   := 0.1.0
PREFIX    ?= /usr/local
DESTDIR   ?=
BUILD     ?= build
PKGS      := luajit libseccomp libcjson libarchive libcrypto libcurl
DATADIR   := $(PREFIX)/share/ctrlua

# Debian packages the build, the tests and the benchmarks need.
DEB_PACKAGES := build-essential pkg-config luajit libluajit-5.1-dev libseccomp-dev \
	libcjson-dev libarchive-dev libssl-dev lua-busted lua-ldoc busybox-static \
	zstd gzip tar iproute2 iputils-ping util-linux bsdutils procps python3 tmux umoci skopeo runc crun containerd \
	containernetworking-plugins criu hyperfine time luarocks \
	libcurl4-openssl-dev docker-registry apache2-utils python3-jwt python3-cryptography openssl \
	musl-tools libisal-dev

CC        ?= cc
MONITOR_LDFLAGS ?= -static
OPT       ?= -O2 -g
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
# libarchive, libcrypto, libseccomp and libcurl are not linked: csrc/base/lazylib.c loads
# them on first use (see there why), by the sonames of the libraries pkg-config names; libisal
# (the fast gzip inflate) likewise, and only if it is there.
LINK_PKGS  := luajit libcjson
PKG_LIBS   := $(shell pkg-config --libs $(LINK_PKGS) 2>/dev/null) -pthread
# The host links LuaJIT statically where its archive is installed (the -dev package ships
# it): a library fewer for ld.so to map, relocate, protect and bind lazily in every process
# (images ls about 5% faster, --version 0.2 ms).  The Lua C API is exported from the
# executable (the list is made from the archive) for the C modules a script may load.
# Elsewhere, or with HOST_STATIC= empty, the shared library as before.
LUAJIT_A   := $(shell pkg-config --variable=libdir luajit 2>/dev/null)/libluajit-5.1.a
HOST_STATIC ?= $(if $(wildcard $(LUAJIT_A)),yes)
ifeq ($(HOST_STATIC),yes)
# libgcc's unwinder (LuaJIT raises its errors through it) linked in as well, not libgcc_s
# mapped (about 0.2 MB of a run's peak RSS); not under the sanitizers, which bring their own.
HOST_LIBS  := -Wl,--dynamic-list=$(BUILD)/obj/lua-api.list $(LUAJIT_A) \
	$(shell pkg-config --libs libcjson 2>/dev/null) -pthread $(if $(EXTRA_CFLAGS),,-static-libgcc)
HOST_DEPS  := $(BUILD)/obj/lua-api.list
else
HOST_LIBS  := $(PKG_LIBS)
HOST_DEPS  :=
endif
soname = $(shell objdump -p $$(pkg-config --variable=libdir $(1))/$(2).so 2>/dev/null | awk '/SONAME/ {print $$2}')
SONAMES   := -DCTR_LIBARCHIVE_SONAME='"$(call soname,libarchive,libarchive)"' \
	-DCTR_LIBCRYPTO_SONAME='"$(call soname,libcrypto,libcrypto)"' \
	-DCTR_LIBCURL_SONAME='"$(call soname,libcurl,libcurl)"' \
	-DCTR_LIBSECCOMP_SONAME='"$(call soname,libseccomp,libseccomp)"' \
	-DCTR_LIBISAL_SONAME='"$(call soname,libisal,libisal)"'
CFLAGS_ALL = -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wno-format-truncation -fPIC $(OPT) \
	-DCTRLUA_VERSION='"$(VERSION)"' -DCTRLUA_DATADIR='"$(DATADIR)"' $(SONAMES) $(PKG_CFLAGS) \
	$(EXTRA_CFLAGS)

# The core, one folder per layer (see ARCHITECTURE.md): base/ needs libc only; store/ and
# runtime/ build on base/; cgroups/ on base/; monitor/ is what a detached task runs; net/ is the
# registry transfer layer; lua/ holds the host (host.c) and the binding, the only files that
# include Lua's headers.
BASE_SRCS    := $(wildcard csrc/base/*.c)
STORE_SRCS   := $(wildcard csrc/store/*.c)
RUNTIME_SRCS := $(wildcard csrc/runtime/*.c)
CGROUP_SRCS  := $(wildcard csrc/cgroups/*.c)
MONITOR_SRCS := $(filter-out csrc/monitor/main.c,$(wildcard csrc/monitor/*.c))
NET_SRCS     := $(wildcard csrc/net/*.c)
BINDING_SRCS := $(filter-out csrc/lua/host.c csrc/lua/libm.c,$(wildcard csrc/lua/*.c))
CORE_SRCS := $(BASE_SRCS) $(STORE_SRCS) $(RUNTIME_SRCS) $(CGROUP_SRCS) $(MONITOR_SRCS) $(NET_SRCS) \
	$(BINDING_SRCS)
CORE_OBJS := $(patsubst csrc/%.c,$(BUILD)/obj/%.o,$(CORE_SRCS)) $(BUILD)/obj/trampoline_blob.o
HEADERS   := $(wildcard csrc/*/*.h)

LUAJIT_RUN = LUA_PATH='lua/?.lua;lua/?/init.lua;spec/?.lua;;' LUA_CPATH='$(BUILD)/lib/?.so;;' \
	CTRLUA_BIN='$(CURDIR)/$(BUILD)/ctrlua' CTRLUA_TEST_IMAGE='$(CURDIR)/build/images/busybox.oci.tar'

.PHONY: all deps test test-repeat asan bench bench-check bench-baseline soak image install install-rock uninstall clean doc \
	conformance fuzz fuzz-build fuzz-bins

all: $(BUILD)/ctrlua $(BUILD)/lib/ctr/core.so $(BUILD)/ctrlua-runc

# The host's text is resident nearly whole in a run (180 to 187 of its 192 pages, read from
# /proc/PID/pagemap while the container ran: a fault maps more of the page cache than the page
# touched), so its size is RSS.  The core is built for size: 58 KB less text, a run's peak
# RSS 80 KB smaller, its time the same (150 alternating pairs).  The files whose loops move a
# layer's or a blob's bytes stay built for speed.  (An OPT given on make's command line, as
# asan's, is every file's.)
SPEED_OBJS := $(patsubst csrc/%.c,$(BUILD)/obj/%.o,csrc/store/layer_apply.c csrc/store/layer_write.c \
	csrc/store/layer_jobs.c csrc/store/content.c csrc/store/import.c csrc/net/http.c \
	csrc/base/digest.c csrc/base/json.c)
$(filter-out $(SPEED_OBJS),$(CORE_OBJS)) $(BUILD)/obj/lua/host.o: OPT := $(subst -O2,-Os,$(OPT))

$(BUILD)/obj/%.o: csrc/%.c $(HEADERS) | $(BUILD)/obj
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_ALL) -iquote csrc -c -o $@ $<

$(BUILD)/obj $(BUILD)/lib/ctr build/images:
	mkdir -p $@

# ctrlua-exec (csrc/runtime/sealed.h): no libc, no sanitizer, a couple of kilobytes, carried inside
# the core as data.
TRAMPOLINE := $(BUILD)/obj/ctrlua-exec
TRAMPOLINE_CC ?= $(CC)
$(TRAMPOLINE): csrc/runtime/sealed/trampoline.c | $(BUILD)/obj
	$(TRAMPOLINE_CC) -std=c11 -Wall -Wextra -Werror -Os -static -nostdlib -no-pie -fno-pie -ffreestanding \
		-fno-stack-protector -fno-asynchronous-unwind-tables -fno-builtin -Wl,--build-id=none \
		-Wl,-z,noseparate-code -Wl,-z,norelro -s -o $@ $<
$(BUILD)/obj/trampoline_blob.o: csrc/runtime/sealed/blob.S $(TRAMPOLINE) | $(BUILD)/obj
	$(CC) -fPIC -DTRAMPOLINE_BIN='"$(TRAMPOLINE)"' -c -o $@ $<

# The host carries lua/ctr's modules and the scripts as bytecode (csrc/lua/embedded.h): no
# source read and compiled per run.  The table records each source's size and mtime (to the
# nanosecond), which `install -p` keeps: the host prefers the file once either differs; and
# each blob's length (its symbol's size in the object luajit -b wrote), for the host reads a
# blob from its executable file rather than through its mapping.  The table's object is linked
# ahead of the bytecode, so that the names the host looks up sit with the core's own read-only
# data and the bytecode, never touched in memory, fills 64 KiB folios of its own.  Stripped
# (-s): line numbers and the names of locals were a tenth of a `run --rm`'s heap and of its
# peak resident set's anonymous part; `ctrlua --debug` runs the files, whose tracebacks have them.
LUA_MODS   := $(sort $(wildcard lua/ctr/*.lua lua/ctr/*/*.lua))
LUA_SCRIPTS := $(sort $(wildcard scripts/*.lua))
BC_OBJS    := $(patsubst %.lua,$(BUILD)/obj/bc/%.o,$(LUA_MODS) $(LUA_SCRIPTS))
# The host's relative relocations packed (DT_RELR, glibc 2.36), where the linker and the C
# library support it: the 1,443 entries ld.so read at every start (34 KB of .rela.dyn) take
# 0.3 KB.
RELR_LDFLAGS := $(shell printf 'int main(void){return 0;}' | $(CC) -x c - -o /dev/null \
	-Wl,-z,pack-relative-relocs 2>/dev/null && echo -Wl,-z,pack-relative-relocs)
# libm only --as-needed: the host defines what LuaJIT takes from it and loads it on first use
# (csrc/lua/libm.c); libc ahead of it, for the few functions both define (frexp, ldexp, modf).
$(BUILD)/ctrlua: $(BUILD)/obj/lua/host.o $(BUILD)/obj/lua/libm.o $(CORE_OBJS) $(BUILD)/obj/bc/embedded.o $(BC_OBJS) $(HOST_DEPS)
	$(CC) $(EXTRA_LDFLAGS) $(RELR_LDFLAGS) -o $@ $(filter %.o,$^) $(HOST_LIBS) -ldl -lc -Wl,--as-needed -lm
$(BUILD)/obj/lua-api.list: $(LUAJIT_A) | $(BUILD)/obj
	{ echo '{'; nm -g --defined-only $< | awk '$$2 ~ /^[TDRB]$$/ && $$3 ~ /^(lua|luaL|luaopen|luaJIT)_/ { print $$3 ";" }' | sort -u; echo '};'; } >$@.tmp
	mv $@.tmp $@

# lua/ctr/remotes/init.lua -> ctr.remotes; scripts/run.lua -> ctrlua_script_run (a symbol only)
bc_modname = $(if $(filter scripts/%,$(1)),ctrlua_script_$(basename $(notdir $(1))),$(patsubst %.init,%,$(subst /,.,$(patsubst lua/%.lua,%,$(1)))))
$(BUILD)/obj/bc/%.o: %.lua Makefile
	@mkdir -p $(@D)
	luajit -b -s -n $(call bc_modname,$<) $< $@
bc_sym = luaJIT_BC_$(subst .,_,$(call bc_modname,$(1)))
$(BUILD)/obj/bc/embedded.c: $(LUA_MODS) $(LUA_SCRIPTS) $(BC_OBJS) Makefile
	@mkdir -p $(@D)
	@{ echo '/* generated by make from lua/ctr and scripts: see csrc/lua/embedded.h */'; \
	echo '#include "lua/embedded.h"'; \
	$(foreach f,$(LUA_MODS) $(LUA_SCRIPTS),echo 'extern const char $(call bc_sym,$(f))[];';) \
	echo 'const struct ctr_embedded ctr_embedded[] = {'; \
	$(foreach f,$(LUA_MODS) $(LUA_SCRIPTS),set -- $$(stat -c '%s %.9Y' $(f)) \
		$$(nm -S --defined-only $(patsubst %.lua,$(BUILD)/obj/bc/%.o,$(f)) | awk '$$4 == "$(call bc_sym,$(f))" { print $$2 }') && \
		{ [ -n "$$3" ] || { echo "$(f): no $(call bc_sym,$(f)) in its object" >&2; exit 1; }; } && \
		echo '    {"$(if $(filter scripts/%,$(f)),$(notdir $(f)),$(call bc_modname,$(f)))", $(if $(filter scripts/%,$(f)),1,0), $(call bc_sym,$(f)), '"$$((16#$$3)), $$1, $${2%.*}LL, $$((10#$${2#*.}))L},";) \
	echo '};'; echo 'const size_t ctr_embedded_count = sizeof ctr_embedded / sizeof ctr_embedded[0];'; } >$@.tmp
	@mv $@.tmp $@
$(BUILD)/obj/bc/embedded.o: $(BUILD)/obj/bc/embedded.c csrc/lua/embedded.h
	$(CC) $(CFLAGS_ALL) -iquote csrc -c -o $@ $<

# The detached task monitor: static, libc only (not under the sanitizers, which cannot link
# statically) (its RSS is what a sleeping container costs).  With musl (Debian's musl-tools)
# when musl-gcc is there and no sanitizer is asked for: a static glibc maps and touches about
# four times the memory for the same program.  musl-gcc sees the kernel's uapi headers only
# through $(BUILD)/musl-include (links to linux-libc-dev's folders, not glibc's).
MUSL_GCC := $(if $(EXTRA_CFLAGS),,$(shell command -v musl-gcc 2>/dev/null))
MONITOR_OBJS := $(patsubst %,$(BUILD)/obj-monitor/%.o,monitor/main monitor/monitor base/files \
	base/procstat base/error)
ifneq ($(MUSL_GCC),)
MONITOR_CC     := $(MUSL_GCC)
MULTIARCH      := $(shell $(CC) -print-multiarch 2>/dev/null)
MONITOR_CFLAGS := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wno-format-truncation $(OPT) \
	-isystem $(BUILD)/musl-include
MONITOR_DEPS   := $(BUILD)/musl-include/linux
else
MONITOR_CC     := $(CC)
MONITOR_CFLAGS  = $(CFLAGS_ALL)
MONITOR_DEPS   :=
endif
all: $(BUILD)/ctrlua-monitor
$(BUILD)/musl-include/linux:
	mkdir -p $(@D)
	ln -sfn /usr/include/asm-generic $(@D)/asm-generic
	ln -sfn /usr/include/$(MULTIARCH)/asm $(@D)/asm
	ln -sfn /usr/include/linux $@
$(BUILD)/obj-monitor/%.o: csrc/%.c $(HEADERS) $(MONITOR_DEPS)
	@mkdir -p $(@D)
	$(MONITOR_CC) $(MONITOR_CFLAGS) -iquote csrc -c -o $@ $<
$(BUILD)/ctrlua-monitor: $(MONITOR_OBJS)
	$(MONITOR_CC) $(EXTRA_LDFLAGS) $(MONITOR_LDFLAGS) -o $@ $^

$(BUILD)/ctrlua-runc: $(BUILD)/ctrlua
	ln -sf ctrlua $@

# The module for stock luajit (busted): symbols of LuaJIT come from the host executable.
$(BUILD)/lib/ctr/core.so: $(CORE_OBJS) | $(BUILD)/lib/ctr
	$(CC) $(EXTRA_LDFLAGS) -shared -o $@ $^ $(filter-out -lluajit-5.1,$(PKG_LIBS)) -lm

# Install every Debian package we need; `apt-get update` only when something is missing.
deps:
	@missing=$$(for p in $(DEB_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing:" $$missing; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	else echo "deps: all installed"; fi

# The project's own test image, from Debian's busybox-static, written by our layer writer.
image: build/images/busybox.oci.tar
build/images/busybox.oci.tar: all tools/mkimage.lua | build/images
	$(BUILD)/ctrlua tools/mkimage.lua --busybox /bin/busybox --name ctrlua.test/busybox:latest $@

test: all image
	@$(LUAJIT_RUN) luajit spec/runner.lua spec

# The whole suite N times in a row (default 5), each run's summary on one line, the failing
# tests of a red run named; it fails when any run failed.  A flaky test shows up here.
N ?= 5
test-repeat: all image
	@fails=0; for i in $$(seq 1 $(N)); do 		log=$(BUILD)/test-repeat.$$i.log; 		$(LUAJIT_RUN) luajit spec/runner.lua spec >$$log 2>&1; rc=$$?; 		echo "run $$i of $(N): $$(tail -n 1 $$log)"; 		if [ $$rc -ne 0 ]; then fails=$$((fails + 1)); grep '^FAIL ' $$log | sed 's/^/  /'; fi; 	done; 	echo "$(N) runs, $$fails red"; [ $$fails -eq 0 ]

# The specs under AddressSanitizer/UBSan: the instrumented host runs busted itself (it is a
# LuaJIT with ctr.core linked in), so no sanitizer runtime is preloaded into other programs.
asan:
	$(MAKE) BUILD=build-asan OPT='-O1 -g -fno-omit-frame-pointer' \
		EXTRA_CFLAGS='-fsanitize=address,undefined -fno-sanitize-recover=undefined' \
		EXTRA_LDFLAGS='-fsanitize=address,undefined' MONITOR_LDFLAGS= all
	$(MAKE) image
	@ASAN_OPTIONS=detect_leaks=0:abort_on_error=0 \
	LUA_PATH='lua/?.lua;lua/?/init.lua;spec/?.lua;;' LUA_CPATH='build-asan/lib/?.so;;' \
	CTRLUA_BIN='$(CURDIR)/build-asan/ctrlua' CTRLUA_TEST_IMAGE='$(CURDIR)/build/images/busybox.oci.tar' \
	CTRLUA_LUA='$(CURDIR)/build-asan/ctrlua' build-asan/ctrlua spec/runner.lua spec

# Fuzzing: one libFuzzer harness per reader of untrusted bytes (fuzz/*.c; README "Fuzzing"),
# built by clang with ASan and UBSan into build-fuzz/ (the core too, instrumented for
# coverage).  `make fuzz` runs each for SECONDS seconds on a copy of its seed corpus
# (fuzz/corpus/NAME/ is never written) and fails when any harness crashes, leaks, trips a
# sanitizer, times out or breaks a contract it checks; the input that did is left in
# build-fuzz/artifacts/NAME/, the whole output in build-fuzz/NAME.log.
FUZZ_BUILD := build-fuzz
FUZZ_NAMES := config manifest layer passwd monitor hosts auth
FUZZ_LUA   := manifest passwd hosts auth
SECONDS    ?= 30
FUZZ_SAN   := -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_OPTS_config   := -max_len=16384 -dict=fuzz/config.dict
FUZZ_OPTS_manifest := -max_len=16384 -dict=fuzz/manifest.dict
FUZZ_OPTS_layer    := -max_len=65536 -dict=fuzz/layer.dict
FUZZ_OPTS_passwd   := -max_len=8192 -dict=fuzz/passwd.dict -timeout=10
FUZZ_OPTS_monitor  := -max_len=512 -dict=fuzz/monitor.dict
FUZZ_OPTS_hosts    := -max_len=16384 -dict=fuzz/hosts.dict
FUZZ_OPTS_auth     := -max_len=8192 -dict=fuzz/auth.dict -timeout=10
FUZZ_ENV := ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

fuzz-build:
	$(MAKE) BUILD=$(FUZZ_BUILD) CC=clang TRAMPOLINE_CC=cc OPT='-O1 -g -fno-omit-frame-pointer' \
		EXTRA_CFLAGS='-Wno-unknown-warning-option -fsanitize=fuzzer-no-link $(FUZZ_SAN)' fuzz-bins

# (in the sub-make of fuzz-build: BUILD is build-fuzz, CC clang)
fuzz-bins: $(FUZZ_NAMES:%=$(BUILD)/fuzz/%)

$(BUILD)/fuzz:
	mkdir -p $@

$(BUILD)/libctrcore.a: $(CORE_OBJS)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/fuzz/luahost.o: fuzz/luahost.c fuzz/luahost.h $(HEADERS) | $(BUILD)/fuzz
	$(CC) $(CFLAGS_ALL) -iquote csrc -DCTR_FUZZ_SRCDIR='"$(CURDIR)"' -c -o $@ $<

$(BUILD)/fuzz/%: fuzz/%.c fuzz/luahost.h $(HEADERS) $(BUILD)/fuzz/luahost.o $(BUILD)/libctrcore.a | $(BUILD)/fuzz
	$(CC) $(CFLAGS_ALL) -iquote csrc -iquote fuzz -fsanitize=fuzzer $(FUZZ_SAN) -o $@ $< \
		$(if $(filter $*,$(FUZZ_LUA)),$(BUILD)/fuzz/luahost.o) $(BUILD)/libctrcore.a $(PKG_LIBS) -lm -ldl

# One harness: its corpus copied, its run, one summary line (runs, coverage, corpus).
define fuzz_one
	mkdir -p $(FUZZ_BUILD)/corpus/$(1) $(FUZZ_BUILD)/artifacts/$(1); \
	cp fuzz/corpus/$(1)/* $(FUZZ_BUILD)/corpus/$(1)/; \
	$(FUZZ_ENV) $(FUZZ_BUILD)/fuzz/$(1) -max_total_time=$(SECONDS) -timeout=25 -detect_leaks=1 \
		-print_final_stats=1 -artifact_prefix=$(FUZZ_BUILD)/artifacts/$(1)/ $(FUZZ_OPTS_$(1)) \
		$(FUZZ_BUILD)/corpus/$(1) >$(FUZZ_BUILD)/$(1).log 2>&1; rc=$$?; \
	runs=$$(sed -n 's/^stat::number_of_executed_units: *//p' $(FUZZ_BUILD)/$(1).log); \
	last=$$(grep -E '^#[0-9]+' $(FUZZ_BUILD)/$(1).log | tail -n 1 | sed -E 's/^#[0-9]+[[:space:]]+[A-Z]+[[:space:]]+//'); \
	if [ $$rc -eq 0 ]; then echo "fuzz $(1): ok, $${runs:-?} runs in $(SECONDS) s; $$last"; \
	else fails=$$((fails + 1)); echo "fuzz $(1): FAILED (exit $$rc), see $(FUZZ_BUILD)/$(1).log and $(FUZZ_BUILD)/artifacts/$(1)/"; \
		grep -E 'ERROR|fuzz:|SUMMARY|Test unit written' $(FUZZ_BUILD)/$(1).log | head -n 20 | sed 's/^/  /'; fi;
endef

fuzz: fuzz-build
	@rm -rf $(FUZZ_BUILD)/corpus $(FUZZ_BUILD)/artifacts; fails=0; \
	$(foreach t,$(FUZZ_NAMES),$(call fuzz_one,$(t))) \
	echo "$(words $(FUZZ_NAMES)) harnesses, $$fails failed"; [ $$fails -eq 0 ]

bench: all image
	@$(LUAJIT_RUN) luajit bench/run.lua

# The bench, then each ratio against bench/baseline.json: fails when one is more than 20% above
# the baseline's (bench/run.lua --check).  A baseline of another kind of machine (nproc,
# memory, kernel) is reported and skipped.  bench-baseline writes it (NOTE= says how it was
# taken: kept in the file).
BASELINE ?= bench/baseline.json
NOTE     ?=
bench-check: all image
	@$(LUAJIT_RUN) luajit bench/run.lua --check $(BASELINE)
bench-baseline: all image
	@$(LUAJIT_RUN) luajit bench/run.lua --baseline $(BASELINE) --note '$(NOTE)'

# Soak and load (bench/soak.lua; not part of test): 1,000 run --rm, 200 run -d/kill/delete
# cycles, 8 concurrent runs at a time; counts of mounts, cgroups, state, records, processes and
# fds before and after, the time per run at the start and at the end.  Fails on any leftover.
soak: all image
	@$(LUAJIT_RUN) luajit bench/soak.lua

# The OCI runtime-tools validation suite against ctrlua-runc.  It succeeds when every program
# that fails is one the script marks [known] (no runtime can pass it on this machine).
conformance: all
	@set -o pipefail; ../shared/tools/oci-validation.sh \
		$(CURDIR)/$(BUILD)/ctrlua-runc | tee $(BUILD)/conformance.log; rc=$$?; \
	failed=$$(sed -n 's/^[0-9]* passed, \([0-9]*\) failed$$/\1/p' $(BUILD)/conformance.log); \
	known=$$(sed -n 's/^of the failures, \([0-9]*\) are tagged.*/\1/p' $(BUILD)/conformance.log); \
	if [ $$rc -eq 1 ] && [ -n "$$failed" ] && [ "$$failed" = "$$known" ]; then \
		echo "conformance: every failure is a known one"; exit 0; fi; exit $$rc

# The API reference (LDoc, config.ld): lua/ctr's modules, the README and examples/.
doc:
	ldoc -d $(BUILD)/doc .

# lua/ctr: the public modules at the top, the rest in these packages
LUA_PKGS := remotes cmd store spec
# (-p: the host runs its built-in bytecode of a module or script only while the installed file
# keeps the size and mtime of the source it was compiled from; see csrc/lua/embedded.h)
install_lua = install -d $(1)/ctr $(LUA_PKGS:%=$(1)/ctr/%) && install -p -m 0644 lua/ctr/*.lua $(1)/ctr/ && \
	for p in $(LUA_PKGS); do install -p -m 0644 lua/ctr/$$p/*.lua $(1)/ctr/$$p/; done

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(DATADIR)/scripts \
		$(DESTDIR)$(DATADIR)/examples $(DESTDIR)$(PREFIX)/lib/lua/5.1/ctr
	install -m 0755 $(BUILD)/ctrlua $(BUILD)/ctrlua-monitor $(DESTDIR)$(PREFIX)/bin/
	ln -sf ctrlua $(DESTDIR)$(PREFIX)/bin/ctrlua-runc
	$(call install_lua,$(DESTDIR)$(DATADIR)/lua)
	install -p -m 0644 scripts/*.lua $(DESTDIR)$(DATADIR)/scripts/
	for f in examples/*; do [ ! -f "$$f" ] || install -m 0644 "$$f" $(DESTDIR)$(DATADIR)/examples/; done
	install -m 0755 $(BUILD)/lib/ctr/core.so $(DESTDIR)$(PREFIX)/lib/lua/5.1/ctr/core.so

# For `luarocks make rockspec/...`: modules into the rocks tree's LUADIR/LIBDIR, and the host
# with its scripts and examples under PREFIX (found through ../share/ctrlua from the binary).
install-rock: all
	install -d $(LIBDIR)/ctr $(PREFIX)/bin $(PREFIX)/share/ctrlua/scripts $(PREFIX)/share/ctrlua/examples
	$(call install_lua,$(LUADIR))
	install -m 0755 $(BUILD)/lib/ctr/core.so $(LIBDIR)/ctr/core.so
	install -m 0755 $(BUILD)/ctrlua $(BUILD)/ctrlua-monitor $(PREFIX)/bin/
	ln -sf ctrlua $(PREFIX)/bin/ctrlua-runc
	$(call install_lua,$(PREFIX)/share/ctrlua/lua)
	install -p -m 0644 scripts/*.lua $(PREFIX)/share/ctrlua/scripts/
	for f in examples/*; do [ ! -f "$$f" ] || install -m 0644 "$$f" $(PREFIX)/share/ctrlua/examples/; done

uninstall:
	rm -rf $(DESTDIR)$(PREFIX)/bin/ctrlua $(DESTDIR)$(PREFIX)/bin/ctrlua-runc \
		$(DESTDIR)$(PREFIX)/bin/ctrlua-monitor $(DESTDIR)$(DATADIR) \
		$(DESTDIR)$(PREFIX)/lib/lua/5.1/ctr/core.so

clean:
	rm -rf build build-asan build-fuzz

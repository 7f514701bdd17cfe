# SPDX-License-Identifier: Apache-2.0
# ClusterDB Mesh build. `make` builds libmesh.a, libmesh.so, mesh.pc and meshctl;
# `make check` runs every test; `make check SAN=1` runs them under ASan+UBSan.

CC      ?= cc
SAN     ?= 0
PREFIX  ?= /usr/local
PYTHON  ?= /usr/bin/python3
FUZZ_SECONDS ?= 60

compiler := $(notdir $(firstword $(CC)))
ifeq ($(SAN),1)
  BUILD ?= build/$(compiler)-san
else ifeq ($(compiler),cc)
  BUILD ?= build
else
  BUILD ?= build/$(compiler)
endif

PKGS      := yaml-0.1 jansson sqlite3 libssl libcrypto libcurl
# meshproxy links only these; OpenSSL reaches it through meshproxy-tls.so (src/proxy/tls_plugin.h),
# and libcurl (src/kube, the Kubernetes API client) never does.
PROXY_PKGS := yaml-0.1 jansson
TLS_PKGS   := libssl libcrypto
TEST_PKGS := cmocka

WARN    := -Wall -Wextra -Wshadow -Wformat=2 -Werror
CFLAGS  ?= -O2 -g
CFLAGS  += -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE $(WARN) -fPIC \
           -Iinclude -Isrc $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS  := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lpthread -lm
PROXY_LDLIBS := $(shell pkg-config --libs $(PROXY_PKGS) 2>/dev/null) -lpthread -lm
TLS_LDLIBS   := $(shell pkg-config --libs $(TLS_PKGS) 2>/dev/null)
# Where `make install` puts meshproxy-tls.so; compiled into meshproxy as its last place to look.
TLS_PLUGIN_DIR ?= $(PREFIX)/lib/clusterdb-mesh
ifeq ($(SAN),1)
  SANFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
  CFLAGS   += $(SANFLAGS)
  LDFLAGS  += $(SANFLAGS)
  # The plugin's sanitizer symbols come from the runtime meshproxy already has.
  TLS_SO_FLAGS :=
else
  # Every symbol the plugin uses must come from OpenSSL or libc, never from meshproxy.
  TLS_SO_FLAGS := -Wl,-z,defs
endif

LIB_SRC  := $(sort $(wildcard src/core/*.c src/model/*.c src/store/*.c src/provider/*.c \
              src/net/*.c src/http/*.c src/kube/*.c))
PROXY_SRC := $(sort $(wildcard src/proxy/*.c))
PROXY_LIB_SRC := $(filter-out src/proxy/main.c,$(PROXY_SRC))
CONTROL_SRC := $(sort $(wildcard src/control/*.c))
CONTROL_LIB_SRC := $(filter-out src/control/main.c,$(CONTROL_SRC))
ECHO_SRC := $(sort $(wildcard src/echo/*.c))
CLI_SRC  := $(sort $(wildcard src/cli/*.c))
TLS_SRC  := $(sort $(wildcard src/tls/*.c))
UNIT_SRC := $(sort $(wildcard tests/unit/test_*.c))
EX_SRC   := $(sort $(wildcard examples/c/*.c))

LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/obj/%.o)
PROXY_OBJ := $(PROXY_SRC:%.c=$(BUILD)/obj/%.o)
PROXY_LIB_OBJ := $(PROXY_LIB_SRC:%.c=$(BUILD)/obj/%.o)
CONTROL_OBJ := $(CONTROL_SRC:%.c=$(BUILD)/obj/%.o)
CONTROL_LIB_OBJ := $(CONTROL_LIB_SRC:%.c=$(BUILD)/obj/%.o)
# The dashboard's files, compiled into meshd's archive as byte arrays (src/control/ui_assets.h).
UI_FILES := $(sort $(wildcard src/control/ui/*.html src/control/ui/*.css src/control/ui/*.js))
UI_ASSETS_OBJ := $(BUILD)/obj/gen/ui_assets.o
CONTROL_LIB_OBJ += $(UI_ASSETS_OBJ)
ECHO_OBJ := $(ECHO_SRC:%.c=$(BUILD)/obj/%.o)
# The plugin's per-connection TLS is src/net/tls.c (and tls_sniff.c, which it calls), and its
# https:// for the link to meshd src/net/http_client_tls.c, compiled a second time with its flags.
TLS_OBJ  := $(TLS_SRC:%.c=$(BUILD)/obj/%.o) $(BUILD)/obj/plugin/src/net/tls.o \
	    $(BUILD)/obj/plugin/src/net/tls_sniff.o $(BUILD)/obj/plugin/src/net/http_client_tls.o
UNITS    := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
EXAMPLES := $(EX_SRC:examples/c/%.c=$(BUILD)/examples/%)

.PHONY: FORCE all deps test-deps check unit e2e demo fuzz fuzz-replay format format-check install clean bench

BINS := $(BUILD)/meshctl $(BUILD)/meshproxy $(BUILD)/mesh-echo \
        $(if $(wildcard src/control/main.c),$(BUILD)/meshd)

TLS_PLUGIN := $(BUILD)/meshproxy-tls.so

all: deps $(BUILD)/libmesh.a $(BUILD)/libmesh.so $(BUILD)/mesh.pc $(BINS) $(TLS_PLUGIN) $(EXAMPLES)

deps:
	@scripts/deps.sh $(PKGS) $(TEST_PKGS)

# The tools the tests need besides the libraries (pytest, Prometheus, headless Chromium...).
# After deps, so that two apt-get runs never race for dpkg's lock.
test-deps: deps
	@scripts/deps.sh --tests $(PKGS) $(TEST_PKGS)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/libmesh.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/libmesh.so: $(LIB_OBJ)
	$(CC) -shared -Wl,-soname,libmesh.so.0 $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/mesh.pc: mesh.pc.in Makefile
	@mkdir -p $(dir $@)
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@REQUIRES@|$(PKGS)|g' mesh.pc.in > $@

# meshctl uses meshd's analyzer and the proxy's own router (explain), so it links both archives.
$(BUILD)/meshctl: $(CLI_OBJ) $(BUILD)/libmeshcontrol.a $(BUILD)/libmeshproxy.a $(BUILD)/libmesh.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# The proxy's own modules (src/proxy) live in an internal archive linked into meshproxy and the
# unit tests, not into libmesh.
$(BUILD)/libmeshproxy.a: $(PROXY_LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

# No OpenSSL in meshproxy itself (RSS of static mode): sidecars and gateways dlopen() the plugin.
$(BUILD)/meshproxy: $(BUILD)/obj/src/proxy/main.o $(BUILD)/libmeshproxy.a $(BUILD)/libmesh.a
	$(CC) $(LDFLAGS) -o $@ $^ $(PROXY_LDLIBS)

# The compiled-in install location, rewritten only when TLS_PLUGIN_DIR changes (so that
# `make install PREFIX=...` rebuilds what depends on it, and nothing else does).
$(BUILD)/gen/tls_plugin_dir.h: FORCE
	@mkdir -p $(dir $@)
	@printf '#define MESH_TLS_PLUGIN_DIR "%s"\n' '$(TLS_PLUGIN_DIR)' > $@.tmp
	@if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv $@.tmp $@; fi

$(BUILD)/obj/src/proxy/tls_load.o: $(BUILD)/gen/tls_plugin_dir.h
$(BUILD)/obj/src/proxy/tls_load.o: CFLAGS += -I$(BUILD)/gen

# meshproxy's OpenSSL code (src/tls), one exported symbol; the rest hidden. The archive holds
# the same objects for unit tests that link them directly.
$(TLS_OBJ): CFLAGS += -fvisibility=hidden

$(BUILD)/obj/plugin/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(TLS_PLUGIN): $(TLS_OBJ)
	$(CC) -shared $(LDFLAGS) $(TLS_SO_FLAGS) -o $@ $^ $(TLS_LDLIBS)

$(BUILD)/libmeshtls.a: $(TLS_OBJ)
	@rm -f $@
	ar rcs $@ $^

# meshd's modules (src/control) likewise: an internal archive for meshd and the unit tests.
$(BUILD)/libmeshcontrol.a: $(CONTROL_LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

# meshd serves the dashboard from its own binary: no file is read at run time, nothing is fetched
# from elsewhere.
$(BUILD)/gen/ui_assets.c: scripts/embed_ui.sh $(UI_FILES)
	@mkdir -p $(dir $@)
	scripts/embed_ui.sh $(UI_FILES) > $@.tmp
	@mv $@.tmp $@

$(UI_ASSETS_OBJ): $(BUILD)/gen/ui_assets.c src/control/ui_assets.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/meshd: $(BUILD)/obj/src/control/main.o $(BUILD)/libmeshcontrol.a $(BUILD)/libmeshproxy.a \
		$(BUILD)/libmesh.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/mesh-echo: $(ECHO_OBJ) $(BUILD)/libmesh.a
	$(CC) $(LDFLAGS) -o $@ $(ECHO_OBJ) $(BUILD)/libmesh.a $(LDLIBS)

$(BUILD)/examples/%: examples/c/%.c $(BUILD)/libmesh.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libmesh.a $(LDLIBS)

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libmeshcontrol.a $(BUILD)/libmeshproxy.a $(BUILD)/libmesh.a \
		$(BUILD)/libmeshtls.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(shell pkg-config --cflags $(TEST_PKGS)) -MMD -MP $(LDFLAGS) -o $@ $< \
		$(BUILD)/libmeshcontrol.a $(BUILD)/libmeshproxy.a $(BUILD)/libmesh.a $(BUILD)/libmeshtls.a \
		$(shell pkg-config --libs $(TEST_PKGS)) $(LDLIBS)

# test_identity also dlopen()s the built plugin (and libmesh.so, as a file that is no plugin).
$(BUILD)/tests/test_identity: $(TLS_PLUGIN) $(BUILD)/libmesh.so

# Every test, then one summary line. SAN=1 runs the same under ASan+UBSan.
check: test-deps all $(UNITS)
	@BUILD=$(BUILD) SAN=$(SAN) PYTHON=$(PYTHON) scripts/check.sh $(UNITS)

unit: all $(UNITS)
	@BUILD=$(BUILD) SAN=$(SAN) PYTHON=$(PYTHON) scripts/check.sh --unit-only $(UNITS)

e2e: test-deps all
	@BUILD=$(BUILD) SAN=$(SAN) PYTHON=$(PYTHON) scripts/check.sh --e2e-only

# Applies examples/ to a fresh embedded store and prints what was stored, then runs meshproxy
# with the seed's 90/10 split in front of two mesh-echo upstreams and shows the traffic.
demo: all
	@/usr/bin/python3 scripts/demo.py $(BUILD)

# libFuzzer harnesses (clang): `make fuzz` explores for FUZZ_SECONDS per target;
# `make fuzz-replay` runs the committed corpus once, as CI does.
FUZZ_BUILD := build/fuzz
FUZZ_FLAGS := -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -g -O1 -Iinclude -Isrc \
              -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
              $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
FUZZ_SRC := $(sort $(wildcard fuzz/fuzz_*.c))
FUZZERS  := $(FUZZ_SRC:fuzz/%.c=$(FUZZ_BUILD)/%)

$(FUZZ_BUILD)/%: fuzz/%.c $(LIB_SRC)
	@mkdir -p $(dir $@)
	clang $(FUZZ_FLAGS) -o $@ $< $(LIB_SRC) $(LDLIBS)

fuzz: deps $(FUZZERS)
	@scripts/fuzz.sh run $(FUZZ_SECONDS) $(FUZZERS)

fuzz-replay: deps $(FUZZERS)
	@scripts/fuzz.sh replay 0 $(FUZZERS)

# Side-by-side figures of meshproxy, nginx and HAProxy under wrk (minutes; never part of check or
# CI). Knobs: BENCH_DURATION, BENCH_CONNECTIONS, BENCH_ROUNDS; see docs/performance.md.
bench: all
	bench/run.sh

format:
	clang-format -i $(LIB_SRC) $(CLI_SRC) $(PROXY_SRC) $(CONTROL_SRC) $(ECHO_SRC) $(TLS_SRC) $(UNIT_SRC) $(EX_SRC) $(FUZZ_SRC) \
		$(wildcard include/mesh/*.h src/*/*.h)

format-check:
	clang-format --dry-run -Werror $(LIB_SRC) $(CLI_SRC) $(PROXY_SRC) $(CONTROL_SRC) $(ECHO_SRC) $(TLS_SRC) $(UNIT_SRC) $(EX_SRC) $(FUZZ_SRC) \
		$(wildcard include/mesh/*.h src/*/*.h)

install: all
	install -d $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/include/mesh \
		$(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(TLS_PLUGIN_DIR)
	install -m 0644 $(BUILD)/libmesh.a $(DESTDIR)$(PREFIX)/lib/
	install -m 0755 $(BUILD)/libmesh.so $(DESTDIR)$(PREFIX)/lib/libmesh.so.0
	ln -sf libmesh.so.0 $(DESTDIR)$(PREFIX)/lib/libmesh.so
	install -m 0644 $(BUILD)/mesh.pc $(DESTDIR)$(PREFIX)/lib/pkgconfig/
	install -m 0644 include/mesh/*.h $(DESTDIR)$(PREFIX)/include/mesh/
	install -m 0755 $(BINS) $(DESTDIR)$(PREFIX)/bin/
	install -m 0644 $(TLS_PLUGIN) $(DESTDIR)$(TLS_PLUGIN_DIR)/

clean:
	rm -rf build

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(PROXY_OBJ:.o=.d) $(CONTROL_OBJ:.o=.d) $(ECHO_OBJ:.o=.d) \
	$(TLS_OBJ:.o=.d) $(UNITS:=.d)

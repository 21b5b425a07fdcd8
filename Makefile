# kbridge - plaintext Kafka in, verified TLS out.
# The codec (kafka_protocol/) builds as libkp.a with libc headers only; everything else links
# libevent, OpenSSL and inih found with pkg-config. All outputs go under $(BUILD).

CC      ?= cc
BUILD   ?= build
PYTHON  ?= /usr/bin/python3
WARN    := -Wall -Wextra -Wshadow -Werror
CSTD    := -std=c11 -D_GNU_SOURCE
OPT     ?= -O2 -g
SAN     ?=
CFLAGS_ALL := $(CSTD) $(WARN) $(OPT) $(SAN) $(EXTRA_CFLAGS)
LDFLAGS_ALL := $(SAN) $(LDFLAGS)

PKGS      := libevent libevent_openssl openssl inih rdkafka libcurl
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

KP_SRC  := $(sort $(wildcard kafka_protocol/*.c))
KP_OBJ  := $(KP_SRC:%.c=$(BUILD)/%.o)
KB_SRC  := $(sort $(filter-out proxy/main.c,$(wildcard proxy/*.c check/*.c tls/*.c conf/*.c auth/*.c aws/*.c)))
KB_OBJ  := $(KB_SRC:%.c=$(BUILD)/%.o)
KB_INC  := -I. -Ikafka_protocol

UNIT_SRC := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)

.PHONY: all deps test test-run demo-run deb deb-run deb-check fresh-check unit-test golden-test conf-test integration-test demo asan test-asan fuzz \
        bench clean check-headers format format-check mock install uninstall docker-check \
        deploy-test valgrind-test soak
all: $(BUILD)/kbridge

# --- codec: pure C11, only its own directory on the include path ------------------------
$(BUILD)/kafka_protocol/%.o: kafka_protocol/%.c $(wildcard kafka_protocol/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -Ikafka_protocol -c $< -o $@

$(BUILD)/libkp.a: $(KP_OBJ)
	@rm -f $@
	ar rcs $@ $^

# --- daemon --------------------------------------------------------------------------------
HDRS := $(wildcard proxy/*.h check/*.h tls/*.h conf/*.h auth/*.h aws/*.h kafka_protocol/*.h)
$(BUILD)/%.o: %.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(KB_INC) $(PKG_CFLAGS) -c $< -o $@

$(BUILD)/libkb.a: $(KB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/kbridge: $(BUILD)/proxy/main.o $(BUILD)/libkb.a $(BUILD)/libkp.a
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(PKG_LIBS)

# --- tests -----------------------------------------------------------------------------------
# Each unit test links only what it tests: test_kp_* the codec, test_conf* conf/, test_tls*
# tls/ + conf/, test_b64, test_scram, test_auth_mech, test_sigv4 and test_msk_iam auth/ (+ libcrypto),
# anything else the whole daemon library.
CONF_OBJ := $(filter $(BUILD)/conf/%,$(KB_OBJ))
AUTH_OBJ := $(filter $(BUILD)/auth/%,$(KB_OBJ))
TLS_OBJ  := $(filter $(BUILD)/tls/%,$(KB_OBJ))
$(BUILD)/tests/test_kp_%: tests/unit/test_kp_%.c tests/test.h $(BUILD)/libkp.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -Ikafka_protocol -Itests -o $@ $< $(BUILD)/libkp.a $(LDFLAGS_ALL)
$(BUILD)/tests/test_conf: tests/unit/test_conf.c tests/test.h $(CONF_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(KB_INC) -Itests $(PKG_CFLAGS) -o $@ $< $(CONF_OBJ) $(LDFLAGS_ALL) $(PKG_LIBS)
AUTH_TESTS := $(BUILD)/tests/test_b64 $(BUILD)/tests/test_scram $(BUILD)/tests/test_auth_mech \
    $(BUILD)/tests/test_sigv4 $(BUILD)/tests/test_msk_iam
$(AUTH_TESTS): $(BUILD)/tests/%: tests/unit/%.c tests/test.h $(AUTH_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(KB_INC) -Itests $(PKG_CFLAGS) -o $@ $< $(AUTH_OBJ) $(LDFLAGS_ALL) \
	    $(shell pkg-config --libs libcrypto 2>/dev/null)
# The test CLIs that sign and verify MSK IAM: the pure signing objects plus libcrypto only.
SIGN_OBJ := $(BUILD)/auth/sigv4.o $(BUILD)/auth/msk_iam.o $(BUILD)/auth/str.o $(BUILD)/auth/b64.o $(BUILD)/auth/json.o
$(BUILD)/tests/test_tls: tests/unit/test_tls.c tests/test.h $(TLS_OBJ) $(CONF_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(KB_INC) -Itests $(PKG_CFLAGS) -o $@ $< $(TLS_OBJ) $(CONF_OBJ) \
	    $(LDFLAGS_ALL) $(PKG_LIBS) -lpthread
$(BUILD)/tests/%: tests/unit/%.c tests/test.h $(BUILD)/libkb.a $(BUILD)/libkp.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(KB_INC) -Itests $(PKG_CFLAGS) -o $@ $< $(BUILD)/libkb.a \
	    $(BUILD)/libkp.a $(LDFLAGS_ALL) $(PKG_LIBS)

$(BUILD)/tests/test_golden: tests/golden/test_golden.c tests/test.h $(BUILD)/libkp.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -Ikafka_protocol -Itests -o $@ $< $(BUILD)/libkp.a $(LDFLAGS_ALL)

# The TLS test cluster: librdkafka's mock brokers behind TLS endpoints, optionally enforcing
# SASL (kbmock_sasl.c; base64 from auth/, Kafka primitives from the codec). Tests only.
KBMOCK_SRC := tests/integration/kbmock.c tests/integration/kbmock_sasl.c \
    tests/integration/iam_verify.c auth/b64.c
$(BUILD)/kbmock: $(KBMOCK_SRC) tests/integration/kbmock_sasl.h tests/integration/iam_verify.h \
    auth/b64.h $(BUILD)/libkp.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(KB_INC) $(PKG_CFLAGS) -o $@ $(KBMOCK_SRC) $(BUILD)/libkp.a \
	    $(LDFLAGS_ALL) $(PKG_LIBS) -lpthread
mock: $(BUILD)/kbmock

# The AWS credentials provider of one cluster, run against the mocks of tests/integration/mock_aws.py.
$(BUILD)/kbcreds: tests/integration/kbcreds.c $(BUILD)/libkb.a $(BUILD)/libkp.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(KB_INC) $(PKG_CFLAGS) -o $@ $< $(BUILD)/libkb.a $(BUILD)/libkp.a \
	    $(LDFLAGS_ALL) $(PKG_LIBS) -lpthread
# MSK IAM test tools: the test cluster's verifier (iam_verify.c, written apart from auth/) and
# kbridge's own signer, as CLIs for tests/integration/test_iam_verify.py.
$(BUILD)/iamverify: tests/integration/iam/iamverify.c tests/integration/iam_verify.c \
    tests/integration/iam_verify.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -Itests/integration -o $@ tests/integration/iam/iamverify.c \
	    tests/integration/iam_verify.c $(LDFLAGS_ALL) -lcrypto
$(BUILD)/iamsign: tests/integration/iam/iamsign.c $(SIGN_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(KB_INC) -o $@ $< $(SIGN_OBJ) $(LDFLAGS_ALL) -lcrypto

unit-test: $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; KB_TEST_CERTS=$(BUILD)/certs ./$$t; done

golden-test: $(BUILD)/tests/test_golden
	./$(BUILD)/tests/test_golden tests/golden/frames

conf-test: $(BUILD)/kbridge
	@sh tests/conf/run.sh $(BUILD)/kbridge

integration-test: $(BUILD)/kbridge $(BUILD)/kbmock $(BUILD)/kbcreds $(BUILD)/iamverify \
    $(BUILD)/iamsign
	KB_BUILD=$(abspath $(BUILD)) $(PYTHON) -m pytest -q tests/integration

# Fault soak (not in CI): 1,000,000 acks=all idempotent messages over 120 s while brokers go
# down and up; prints sent/acked/found/duplicates. make test runs a 200,000-message version.
soak: $(BUILD)/kbridge $(BUILD)/kbmock $(BUILD)/certs/ca.pem
	KB_SOAK_MESSAGES=1000000 KB_SOAK_SECONDS=120 KB_TEST_TIMEOUT=400 \
	    KB_BUILD=$(abspath $(BUILD)) $(PYTHON) -m pytest -q -s tests/integration/test_soak.py

# The integration tests that carry the most traffic, the threaded (workers = 2) and TLS
# session-cache paths, and the core regression tests (reloads, closes, drains), with kbridge
# under valgrind (CI).
valgrind-test: $(BUILD)/kbridge $(BUILD)/kbmock $(BUILD)/certs/ca.pem
	KB_VALGRIND=1 KB_BUILD=$(abspath $(BUILD)) $(PYTHON) -m pytest -q \
	    tests/integration/test_kcat.py tests/integration/test_upstream_failures.py \
	    tests/integration/test_operate.py tests/integration/test_workers.py \
	    tests/integration/test_tls_resume.py tests/integration/test_core.py

$(UNIT_BIN): | $(BUILD)/certs/ca.pem
$(BUILD)/certs/ca.pem: tests/integration/gen_certs.sh
	sh tests/integration/gen_certs.sh $(BUILD)/certs

# make demo and make test first install what they need and is missing (scripts/deps.list, one
# apt-get; kafkajs with npm ci), then run in a fresh make that sees the new pkg-config files.
# KB_NO_DEPS=1 skips that step.
deps:
	@sh scripts/deps.sh

test:
	@sh scripts/deps.sh build test
	@$(MAKE) --no-print-directory test-run
test-run: unit-test golden-test conf-test deploy-test integration-test

demo:
	@sh scripts/deps.sh build demo
	@$(MAKE) --no-print-directory demo-run
demo-run: $(BUILD)/kbridge $(BUILD)/kbmock $(BUILD)/certs/ca.pem
	KB_BUILD=$(abspath $(BUILD)) sh examples/demo.sh

# ASan + UBSan build of everything, then the whole suite against it. A small quarantine keeps
# freed memory from inflating RSS, which the bounded-memory tests measure.
asan test-asan:
	ASAN_OPTIONS=quarantine_size_mb=4 $(MAKE) BUILD=build-asan CC=clang OPT="-O1 -g -fno-omit-frame-pointer" \
	    SAN="-fsanitize=address,undefined -fno-sanitize-recover=all" test

FUZZ_SRC := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BIN := $(FUZZ_SRC:tests/fuzz/%.c=$(BUILD)/fuzz/%)
FUZZ_SECONDS ?= 20
$(BUILD)/fuzz/%: tests/fuzz/%.c $(KP_SRC) $(wildcard kafka_protocol/*.h)
	@mkdir -p $(dir $@)
	clang $(CSTD) -g -O1 -fsanitize=fuzzer,address,undefined -Ikafka_protocol -o $@ $< $(KP_SRC)
fuzz: $(FUZZ_BIN)
	@set -e; for f in $(FUZZ_BIN); do n=$$(basename $$f); mkdir -p $(BUILD)/fuzz/corpus-$$n; \
	    echo "== $$n ($(FUZZ_SECONDS)s)"; \
	    ./$$f -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 $(BUILD)/fuzz/corpus-$$n tests/golden/frames tests/fuzz/seeds; done

# Benchmarks (not tests): the codec micro-benchmark, then kbridge vs HAProxy vs the floor relay
# vs direct TLS side by side, Produce and Fetch (bench/run.sh; needs haproxy, strace and perf;
# about 20 minutes; writes bench/RESULTS.md and bench/PROFILE.md).
bench: $(BUILD)/libkp.a $(BUILD)/kbridge
	$(MAKE) -C bench BUILD=$(abspath $(BUILD))
	bash bench/run.sh $(abspath $(BUILD))

# --- install and deployment checks ----------------------------------------------------------
# `make install` honours DESTDIR and PREFIX (default /usr/local); it never creates or overwrites
# $(SYSCONFDIR)/kbridge/kbridge.ini, only kbridge.ini.example next to it.
PREFIX         ?= /usr/local
DESTDIR        ?=
BINDIR         ?= $(PREFIX)/bin
MANDIR         ?= $(PREFIX)/share/man
SYSCONFDIR     ?= /etc
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR    ?= $(PREFIX)/lib/sysusers.d
INSTALL        ?= install

install: $(BUILD)/kbridge
	$(INSTALL) -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 \
	    $(DESTDIR)$(SYSCONFDIR)/kbridge $(DESTDIR)$(SYSTEMDUNITDIR) $(DESTDIR)$(SYSUSERSDIR)
	$(INSTALL) -m 0755 $(BUILD)/kbridge $(DESTDIR)$(BINDIR)/kbridge
	$(INSTALL) -m 0644 docs/kbridge.1 $(DESTDIR)$(MANDIR)/man1/kbridge.1
	$(INSTALL) -m 0644 docs/kbridge.ini.5 $(DESTDIR)$(MANDIR)/man5/kbridge.ini.5
	$(INSTALL) -m 0644 conf/kbridge.ini $(DESTDIR)$(SYSCONFDIR)/kbridge/kbridge.ini.example
	sed -e 's|/usr/local/bin/kbridge|$(BINDIR)/kbridge|g' \
	    -e 's|/etc/kbridge/|$(SYSCONFDIR)/kbridge/|g' deploy/systemd/kbridge.service \
	    > $(DESTDIR)$(SYSTEMDUNITDIR)/kbridge.service
	chmod 0644 $(DESTDIR)$(SYSTEMDUNITDIR)/kbridge.service
	$(INSTALL) -m 0644 deploy/systemd/kbridge.sysusers $(DESTDIR)$(SYSUSERSDIR)/kbridge.conf

# Leaves $(SYSCONFDIR)/kbridge/kbridge.ini (the operator's file) alone.
uninstall:
	rm -f $(DESTDIR)$(BINDIR)/kbridge $(DESTDIR)$(MANDIR)/man1/kbridge.1 \
	    $(DESTDIR)$(MANDIR)/man5/kbridge.ini.5 \
	    $(DESTDIR)$(SYSCONFDIR)/kbridge/kbridge.ini.example \
	    $(DESTDIR)$(SYSTEMDUNITDIR)/kbridge.service $(DESTDIR)$(SYSUSERSDIR)/kbridge.conf
	rmdir $(DESTDIR)$(SYSCONFDIR)/kbridge 2>/dev/null || true

# Debian package: build/kbridge_<version>_<arch>.deb (packaging/deb/build.sh), from a build
# with Debian's hardening flags in $(DEB_BUILD). deb-check installs it into a debootstrap root
# and runs it there (root, Debian mirror: CI).
DEB_BUILD ?= build-deb
deb:
	@sh scripts/deps.sh build deb
	@$(MAKE) --no-print-directory deb-run
deb-run:
	$(MAKE) --no-print-directory BUILD=$(DEB_BUILD) OPT="$$(dpkg-buildflags --get CFLAGS)" \
	    EXTRA_CFLAGS="$$(dpkg-buildflags --get CPPFLAGS)" \
	    LDFLAGS="$$(dpkg-buildflags --get LDFLAGS) -Wl,-z,now" $(DEB_BUILD)/kbridge
	sh packaging/deb/build.sh $(DEB_BUILD) $(BUILD)
deb-check: deb
	sh tests/deploy/deb_check.sh $(BUILD)/kbridge_*.deb

# make demo on a machine with nothing installed: a debootstrap root with only `make` added
# (root, Debian mirror, minutes: CI).
fresh-check:
	sh tests/deploy/fresh_check.sh

# The Dockerfile's build and runtime stages in debootstrap roots (root, Debian mirror, minutes).
docker-check:
	sh tests/deploy/docker_check.sh

# systemd unit, Dataproc init action, Kubernetes manifests, man pages, install, PySpark example.
deploy-test: $(BUILD)/kbridge
	KB_BUILD=$(abspath $(BUILD)) sh tests/deploy/run.sh

check-headers:
	@set -e; for h in kafka_protocol/*.h; do echo "#include \"$$h\"" | \
	    $(CC) $(CSTD) $(WARN) -Ikafka_protocol -I. -x c -fsyntax-only -; done; \
	for h in proxy/*.h check/*.h tls/*.h conf/*.h auth/*.h aws/*.h; do echo "#include \"$$h\"" | \
	    $(CC) $(CSTD) $(WARN) $(KB_INC) $(PKG_CFLAGS) -x c -fsyntax-only -; done; echo headers ok

format:
	clang-format -i $$(git ls-files '*.c' '*.h')
format-check:
	clang-format --dry-run -Werror $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build build-asan build-deb

# Live tests at modern protocol versions: librdkafka 2.12 built once from npm's node-rdkafka@3.6.1
# (the first run needs the npm registry, so it is not part of `make test`; CI runs it).
# (-include: source tarballs and the Docker build context carry no tests/.)
-include tests/modern/modern.mk

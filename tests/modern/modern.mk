# tests/modern/modern.mk - included by the top-level Makefile (after its own variables).
# Live tests at modern protocol versions: librdkafka 2.12.0 (built once from the npm package
# node-rdkafka@3.6.1) gives a mock cluster serving Metadata v12, Produce v10 and Fetch v16 with
# KIP-951 NodeEndpoints, and modern clients (Debian's kcat and confluent-kafka loaded with it).
#
#   make modern-deps   librdkafka 2.12 (one-time, ~1 min), kbmock-modern, connect_recorder.so
#   make modern-test   the suite (tests/modern), /usr/bin/python3 -m pytest

LRK_DIR    ?= $(BUILD)/librdkafka-2.12
MODERN_DIR := $(BUILD)/modern

# build_librdkafka.sh keeps its own stamp; it returns at once when the build is already there.
$(LRK_DIR)/.stamp: tests/modern/build_librdkafka.sh
	sh tests/modern/build_librdkafka.sh $(LRK_DIR)
	@touch $@

# The same kbmock (KBMOCK_SRC, as the top-level Makefile builds it) against librdkafka 2.12, which enables --advertise-host: its headers via
# -isystem (searched before /usr/include, and their own warnings stay quiet), -L and a run path
# to its library.
$(MODERN_DIR)/kbmock-modern: $(KBMOCK_SRC) $(BUILD)/libkp.a $(LRK_DIR)/.stamp
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -isystem $(LRK_DIR)/include $(KB_INC) $(PKG_CFLAGS) -o $@ $(KBMOCK_SRC) \
	    $(BUILD)/libkp.a $(LDFLAGS_ALL) -L$(LRK_DIR)/lib -Wl,-rpath,$(abspath $(LRK_DIR))/lib \
	    $(PKG_LIBS) -lpthread

# LD_PRELOAD'ed into client processes: no sanitizer flags, whatever $(SAN) says.
$(MODERN_DIR)/connect_recorder.so: tests/modern/connect_recorder.c
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) $(WARN) $(OPT) -fPIC -shared -o $@ $< -ldl

modern-deps: $(LRK_DIR)/.stamp $(MODERN_DIR)/kbmock-modern $(MODERN_DIR)/connect_recorder.so

modern-test: modern-deps $(BUILD)/kbridge $(BUILD)/certs/ca.pem
	KB_BUILD=$(abspath $(BUILD)) $(PYTHON) -m pytest -q tests/modern

.PHONY: modern-deps modern-test

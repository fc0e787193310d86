# diffad — plain Makefile. Targets:
#   make            library (static + shared) and the `diffad` CLI
#   make test       build and run every tests/test_*.c program (and the PyTorch cross-checks)
#   make san-test   the same under AddressSanitizer + UndefinedBehaviorSanitizer (build-san/)
#   make bench      build the benchmarks in bench/
#   make demo       the built-in sample end to end (see README)
CC      ?= cc
PYTHON  ?= /usr/bin/python3
BUILD   ?= build
OPT     ?= -O3 -march=native
CFLAGS  += -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE $(OPT) -g -Wall -Wextra -fopenmp -fPIC -Iinclude -Isrc
LDLIBS  += -ldnnl -lstb -lm -lpthread
# Library objects hide every symbol; include/diffad.h marks the public ones
# (DIFFAD_API), so libdiffad.so exports diffad_* only (scripts/check_exports.sh).
LIB_CFLAGS = -fvisibility=hidden
LDFLAGS += -fopenmp

ifeq ($(SAN),1)
  BUILD  = build-san
  OPT    = -O1 -march=native
  CFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
  LDFLAGS += -fsanitize=address,undefined
endif

LIB_SRC   := $(wildcard src/*.c src/*/*.c src/*/*/*.c)
LIB_OBJ   := $(LIB_SRC:src/%.c=$(BUILD)/obj/%.o)
LIB_HDR   := $(wildcard src/*.h src/*/*.h src/*/*/*.h include/*.h)
TEST_SRC  := $(wildcard tests/test_*.c)
TEST_BIN  := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
BENCH_SRC := $(wildcard bench/*.c)
BENCH_BIN := $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)
TOOL_SRC  := $(wildcard tools/*.c)
EX_SRC    := $(wildcard examples/*.c)
EX_BIN    := $(EX_SRC:examples/%.c=$(BUILD)/examples/%)

.PHONY: all test san-test bench demo clean
all: $(BUILD)/libdiffad.a $(BUILD)/libdiffad.so $(BUILD)/diffad $(EX_BIN)

$(BUILD)/obj/%.o: src/%.c $(LIB_HDR)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LIB_CFLAGS) -c $< -o $@

$(BUILD)/libdiffad.a: $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/libdiffad.so: $(LIB_OBJ)
	$(CC) -shared $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/diffad: $(TOOL_SRC) $(BUILD)/libdiffad.a $(LIB_HDR)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(TOOL_SRC) $(BUILD)/libdiffad.a $(LDLIBS)

$(BUILD)/tests/%: tests/%.c tests/check.h $(BUILD)/libdiffad.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libdiffad.a $(LDLIBS)

$(BUILD)/bench/%: bench/%.c $(BUILD)/libdiffad.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libdiffad.a $(LDLIBS)

$(BUILD)/examples/%: examples/%.c $(BUILD)/libdiffad.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libdiffad.a $(LDLIBS)

test: all $(TEST_BIN)
	@BUILD=$(BUILD) PYTHON=$(PYTHON) sh scripts/run_tests.sh $(TEST_BIN) \
	  scripts/check_layers.sh scripts/test_check_layers.sh scripts/check_exports.sh

# Under the sanitizers the paper-config forward (160 M parameters) is skipped: the
# same code is checked at the small config, and the plain build runs it.
san-test:
	DIFFAD_SKIP_PAPER=1 ASAN_OPTIONS=detect_leaks=1 $(MAKE) SAN=1 test

bench: $(BENCH_BIN)

demo:
	sh scripts/setup.sh && $(MAKE) all && sh scripts/demo.sh $(BUILD)

clean:
	rm -rf build build-san

# make soak: tests/soak_predict.c scores 10,000 mixed images from 1, 2, 4 and 8 threads
# (bit-identical scores, flat RSS); minutes long, so not part of `make test`. SOAK_N=... to change.
.PHONY: soak
soak: $(BUILD)/tests/soak_predict
	$(BUILD)/tests/soak_predict

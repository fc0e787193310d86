# diffad — plain Makefile. Targets:
#   make            library (static + shared) and the `diffad` CLI
#   make test       build and run every tests/test_*.c program (and the PyTorch cross-checks)
#   make san-test   the same under AddressSanitizer + UndefinedBehaviorSanitizer (build-san/)
#   make bench      build the benchmarks in bench/
#   make demo       the built-in sample end to end (see README)
#   make install    header, libraries, CLI, pkg-config file, Python binding under PREFIX (below)
CC      ?= cc
PYTHON  ?= /usr/bin/python3
BUILD   ?= build
OPT     ?= -O3 -march=native
# -fno-trapping-math: diffad never enables floating-point traps, and under gcc's default
# (traps possible) loops with a select over a computed value (dd_expf's clamp in SiLU and
# sigmoid, src/backend/cpu/fastmath.h) are not if-converted, so without AVX-512 masking
# (AVX2 CPUs) they ran scalar: GroupNorm + SiLU 9-16x slower (bench/README.md). clang's
# default is the same. Values are unchanged: no reassociation, no contraction.
# -ffp-contract=off: gcc does not fuse a * b + c into one rounding under -std=c11, but clang
# does by default (-ffp-contract=on), so a clang build computed other bits than a gcc build
# wherever a multiply feeds an add (dd_expf, found 2026-12-03 when test_ops compared the
# SiLU arrays, whose intrinsics are never fused, with the scalar SiLU). Stated for both.
# -mprefer-vector-width=512: on AVX-512 CPUs gcc's tuning otherwise vectorises with 256-bit
# registers; 512 made the CPU-profile training step 2-3 % faster on Sapphire Rapids with
# bit-identical results (2026-12-03, bench/README.md). No effect where AVX-512 is absent.
CFLAGS  += -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE $(OPT) -fno-trapping-math -ffp-contract=off -mprefer-vector-width=512 -g -Wall -Wextra -fopenmp -fPIC -Iinclude -Isrc
LDLIBS  += -ldnnl -lstb -lm -lpthread
# Library objects hide every symbol; include/diffad.h marks the public ones
# (DIFFAD_API), so libdiffad.so exports diffad_* only (scripts/check_exports.sh).
LIB_CFLAGS = -fvisibility=hidden
LDFLAGS += -fopenmp
# the library version (include/diffad.h) and its soname's major number
VERSION    := $(shell sed -n 's/^\#define DIFFAD_VERSION "\(.*\)"/\1/p' include/diffad.h)
SOVERSION  := $(firstword $(subst ., ,$(VERSION)))

# MPI (Open MPI's pkg-config name ompi-c) for data-parallel `diffad train` under mpirun; only
# the CLI links it (tools/cli_dist.c), the library never does. NO_MPI=1 builds without it.
ifneq ($(NO_MPI),1)
  MPI_CFLAGS := $(shell pkg-config --cflags ompi-c 2>/dev/null)
  MPI_LIBS   := $(shell pkg-config --libs ompi-c 2>/dev/null)
endif
ifneq ($(strip $(MPI_LIBS)),)
  TOOL_CFLAGS = -DDD_HAVE_MPI $(MPI_CFLAGS)
endif

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

# soname libdiffad.so.<major> (make install); the link of that name, made with the library,
# lets programs linked in-tree (-Lbuild -ldiffad) find it, and its absence relinks a build
# folder's libdiffad.so made before the soname
$(BUILD)/libdiffad.so.$(SOVERSION): $(LIB_OBJ)
	$(CC) -shared $(LDFLAGS) -Wl,-soname,libdiffad.so.$(SOVERSION) -o $(BUILD)/libdiffad.so $^ $(LDLIBS)
	ln -sf libdiffad.so $@
$(BUILD)/libdiffad.so: $(BUILD)/libdiffad.so.$(SOVERSION) ;

$(BUILD)/diffad: $(TOOL_SRC) $(wildcard tools/*.h) $(BUILD)/libdiffad.a $(LIB_HDR)
	$(CC) $(CFLAGS) $(TOOL_CFLAGS) $(LDFLAGS) -o $@ $(TOOL_SRC) $(BUILD)/libdiffad.a $(LDLIBS) $(MPI_LIBS)

# test_op_profile tests the benchmarks' op-timing backend (a header)
$(BUILD)/tests/test_op_profile: bench/op_profile.h
$(BUILD)/tests/%: tests/%.c $(wildcard tests/*.h) $(BUILD)/libdiffad.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libdiffad.a $(LDLIBS)

$(BUILD)/bench/%: bench/%.c $(wildcard bench/*.h) $(BUILD)/libdiffad.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libdiffad.a $(LDLIBS)

$(BUILD)/examples/%: examples/%.c $(BUILD)/libdiffad.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libdiffad.a $(LDLIBS)

test: all $(TEST_BIN) $(BUILD)/tests/fuzz_replay
	@BUILD=$(BUILD) PYTHON=$(PYTHON) sh scripts/run_tests.sh $(TEST_BIN) $(BUILD)/tests/fuzz_replay \
	  scripts/check_layers.sh scripts/test_check_layers.sh scripts/check_exports.sh \
	  tests/py/test_binding.py tests/py/test_export.py tests/test_install.sh tests/test_mpi.sh

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

# make install [PREFIX=/usr/local] [DESTDIR=...]: include/diffad.h, libdiffad.a, libdiffad.so
# (libdiffad.so.VERSION, soname libdiffad.so.MAJOR), the diffad CLI, LIBDIR/pkgconfig/diffad.pc
# (`pkg-config --cflags --libs diffad`; --static adds oneDNN, stb, OpenMP), and under
# PREFIX/share/diffad the Python binding (python/diffad.py, told where the library is) and the
# examples. tests/test_install.sh checks it from outside the tree. No uninstall target.
PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
LIBDIR     ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
DATADIR    ?= $(PREFIX)/share/diffad
.PHONY: install
install: $(BUILD)/libdiffad.a $(BUILD)/libdiffad.so $(BUILD)/diffad
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(INCLUDEDIR) \
	  $(DESTDIR)$(DATADIR)/python $(DESTDIR)$(DATADIR)/examples
	install -m 644 include/diffad.h $(DESTDIR)$(INCLUDEDIR)/diffad.h
	install -m 644 $(BUILD)/libdiffad.a $(DESTDIR)$(LIBDIR)/libdiffad.a
	install -m 755 $(BUILD)/libdiffad.so $(DESTDIR)$(LIBDIR)/libdiffad.so.$(VERSION)
	ln -sf libdiffad.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libdiffad.so.$(SOVERSION)
	ln -sf libdiffad.so.$(SOVERSION) $(DESTDIR)$(LIBDIR)/libdiffad.so
	install -m 755 $(BUILD)/diffad $(DESTDIR)$(BINDIR)/diffad
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(LIBDIR)|g' -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|g' \
	  -e 's|@VERSION@|$(VERSION)|g' diffad.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/diffad.pc
	sed 's|^_INSTALLED_LIB = None.*|_INSTALLED_LIB = "$(LIBDIR)/libdiffad.so.$(SOVERSION)"|' python/diffad.py \
	  > $(DESTDIR)$(DATADIR)/python/diffad.py
	install -m 644 examples/embed.c $(DESTDIR)$(DATADIR)/examples/embed.c
	install -m 755 examples/embed.py $(DESTDIR)$(DATADIR)/examples/embed.py

# make fuzz: libFuzzer harnesses (issue 14) in $(BUILD)/fuzz/: fuzz_image (dd_image_decode),
# fuzz_modelfile (the safetensors reader, through a temporary file), fuzz_json (dd_json_parse,
# dd_model_config_from_json); the library compiled with clang, ASan and UBSan. Run e.g.
#   $(BUILD)/fuzz/fuzz_json -max_total_time=240 tests/fuzz/corpus/json
# `make test` replays the seed corpora tests/fuzz/corpus/* without libFuzzer (fuzz_replay).
FUZZ_CC     ?= clang
FUZZ_SAN    := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
FUZZ_CFLAGS := -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -O1 -g -fopenmp -Iinclude -Isrc $(FUZZ_SAN)
FUZZ_NAMES  := image modelfile json
FUZZ_OBJ    := $(LIB_SRC:src/%.c=$(BUILD)/fuzz/obj/%.o)
.PHONY: fuzz
fuzz: $(FUZZ_NAMES:%=$(BUILD)/fuzz/fuzz_%)
.SECONDARY: $(FUZZ_OBJ) $(BUILD)/fuzz/stb_image_impl.o
$(BUILD)/fuzz/obj/%.o: src/%.c $(LIB_HDR)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@
$(BUILD)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_OBJ)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $^ $(LDLIBS) -fopenmp
# fuzz_image also gets an instrumented stb_image (tests/fuzz/stb_image_impl.c)
$(BUILD)/fuzz/fuzz_image: $(BUILD)/fuzz/stb_image_impl.o
$(BUILD)/fuzz/stb_image_impl.o: tests/fuzz/stb_image_impl.c
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -w -c $< -o $@
$(BUILD)/tests/fuzz_replay: tests/fuzz/replay_main.c $(FUZZ_NAMES:%=tests/fuzz/fuzz_%.c) $(BUILD)/libdiffad.a $(LIB_HDR)
	@mkdir -p $(dir $@)
	$(foreach n,$(FUZZ_NAMES),$(CC) $(CFLAGS) -DLLVMFuzzerTestOneInput=fuzz_$(n)_one -c tests/fuzz/fuzz_$(n).c -o $(BUILD)/tests/fuzz_$(n).o &&) true
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ tests/fuzz/replay_main.c $(FUZZ_NAMES:%=$(BUILD)/tests/fuzz_%.o) $(BUILD)/libdiffad.a $(LDLIBS)

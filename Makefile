# LM-Predictor. One Makefile, no configure step.
#
#   make run        install missing Debian packages, build, run lmrun on Llama-2-7B
#   make test       install missing packages, build, run every test (also under
#                   ASan+UBSan), check generated_modules/ against module_db.json,
#                   the Python binding (test/python) and make install/uninstall
#                   (test/install_test.sh)
#   make generate   regenerate generated_modules/ from module_db.json
#   make bench      print performance figures
#   make fuzz       build the libFuzzer targets (clang) and run each for
#                   FUZZ_SECONDS (default 60) from test/fuzz/corpus/; any
#                   crash, leak, timeout or UB report fails
#   make deps       install the Debian packages the project needs, if missing
#                   (python3 too: the agent tests' fake LLM server is a script)
#   make install    install under PREFIX (default /usr/local; DESTDIR honoured)
#   make uninstall  remove what make install installed
#   make deps-browser  install chromium (make test does: test_html renders
#                   the --format html page in it)

# ---- version: the one place it is written -----------------------------------
# lmrun --version, lmgen --version, lmp_version(), lmpredict.pc and the Python
# package's __version__ all come from here (-DLMP_VERSION).
VERSION  = 0.2.0

CC       = cc
WARN     = -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes
CPPFLAGS = -Iinclude -D_POSIX_C_SOURCE=200809L -DLMP_VERSION='"$(VERSION)"'
DEPFLAGS = -MMD -MP
CFLAGS   = -std=c11 -g -O2 $(WARN)
# libcurl: headers only (types, constants); agents/http.c loads the library
# with dlopen when the network is used, so nothing links it (DESIGN.md,
# "Start-up cost").
PKGS     = jansson libcurl
LIBS     = $$(pkg-config --libs jansson) -ltcc -ldl -lm
SAN      = -fsanitize=address,undefined,float-cast-overflow -fno-omit-frame-pointer -fno-sanitize-recover=all

# BUILD_DEBS build and run lmrun/lmgen; the rest are for make test (groff-base
# renders the man pages, python3 runs the binding's tests and the fake LLM).
BUILD_DEBS = gcc make libc6-dev pkg-config libjansson-dev libtcc-dev tcc \
           libcurl4-openssl-dev
DEBS     = $(BUILD_DEBS) libcmocka-dev python3 groff-base
SHELL    = /bin/bash

# The library: everything but the commands' mains. liblmpredict.a holds
# all of it (lmgen needs agents/); liblmpredict.so the prediction part (with
# agents/http.c: Hub ids are fetched over it), PIC,
# with libtcc inside (see DESIGN.md, "The shared library") and only lmp_*
# exported.
CORE_SRCS= $(wildcard common/*.c) $(wildcard gen/*.c) \
           $(filter-out runtime/lmrun.c runtime/lmcalib.c runtime/tccshim.c,$(wildcard runtime/*.c))
LIB_SRCS = $(CORE_SRCS) $(filter-out agents/lmgen.c,$(wildcard agents/*.c))
PROMPTS  = $(wildcard agents/prompts/*.txt)
EMBED    = build/embed/schema_text.c build/embed/modabi_text.c build/embed/tcc_id.c \
           $(patsubst agents/prompts/%.txt,build/embed/prompt_%_text.c,$(PROMPTS))
HDRS     = $(wildcard include/*.h)
TEST_SRCS= $(wildcard test/test_*.c)
TESTS    = $(patsubst test/%.c,build/%,$(TEST_SRCS))
ASAN_TESTS = $(patsubst test/%.c,build/asan/%,$(TEST_SRCS))

OBJS      = $(patsubst %.c,build/obj/%.o,$(LIB_SRCS) $(EMBED))
PIC_OBJS  = $(patsubst %.c,build/pic/obj/%.o,$(CORE_SRCS) runtime/tccshim.c \
              agents/http.c build/embed/schema_text.c build/embed/modabi_text.c \
              build/embed/tcc_id.c)
ASAN_OBJS = $(patsubst %.c,build/asan/obj/%.o,$(LIB_SRCS) $(EMBED))

LIB      = build/liblmpredict.a
ASAN_LIB = build/asan/liblmpredict.a
SO       = build/liblmpredict.so

.PHONY: all deps deps-browser fuzz-deps run test tests check check-generated check-example \
        generate bench fuzz clean calibration validate install uninstall \
        check-build check-python check-install
.DEFAULT_GOAL := all
.DELETE_ON_ERROR:
.SECONDARY: $(EMBED)

# The database index lmrun reads instead of checking module_db.json whole
# (gen/dbindex.c, DESIGN.md §3 "The index"): a build product, not
# committed; lmgen also refreshes it whenever it writes.
DBINDEX  = generated_modules/module_db.index

all: lmgen lmrun lmcalib $(LIB) $(SO) $(DBINDEX)

$(DBINDEX): module_db.json lmgen
	./lmgen --index && touch $@

# ---- Debian packages (make deps) --------------------------------------------
# A new machine: plain `make` (or any build goal) first checks that the build
# packages are there and, if not, says which command installs them instead of
# failing with "cc: command not found". Goals that run `make deps` themselves
# (test, run, bench) and those that build nothing skip the check.
DEPS_SKIP = deps clean uninstall test run bench
ifeq ($(filter $(DEPS_SKIP),$(MAKECMDGOALS)),)
DEPS_NEED := $(if $(filter check tests build/test_% build/asan/%,$(MAKECMDGOALS)),$(filter-out python3,$(DEBS)),$(BUILD_DEBS))
ifneq ($(shell command -v dpkg-query),)
DEPS_HAVE := $(shell dpkg-query -W -f='$${Package}:$${Status}\n' $(DEPS_NEED) 2>/dev/null | sed -n 's/:install ok installed$$//p')
DEPS_MISSING := $(filter-out $(DEPS_HAVE),$(DEPS_NEED))
else
DEPS_MISSING := $(if $(shell command -v $(CC)),,$(BUILD_DEBS))
endif
ifneq ($(DEPS_MISSING),)
$(error missing packages: $(DEPS_MISSING). Install them with `make deps` (as root or with sudo), or: apt-get install --no-install-recommends $(DEPS_MISSING))
endif
endif

deps:
	@missing=""; \
	for p in $(DEBS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' \
	    || missing="$$missing $$p"; \
	done; \
	command -v python3 >/dev/null 2>&1 && missing="$${missing/ python3/}"; \
	[ -z "$$missing" ] && exit 0; \
	if [ "$$(id -u)" -eq 0 ]; then sudo=""; \
	elif command -v sudo >/dev/null 2>&1; then sudo=sudo; \
	else echo "deps: not root and no sudo: as root, run: apt-get install --no-install-recommends$$missing" >&2; exit 1; fi; \
	echo "deps: installing$$missing"; \
	export DEBIAN_FRONTEND=noninteractive; \
	apt="$$sudo apt-get install -y -q --no-install-recommends$$missing"; \
	$$apt || { $$sudo apt-get update -q && $$apt; } \
	  || { echo "deps: could not install$$missing" >&2; exit 1; }

# The browser test_html renders the --format html page in (headless
# Chromium): installed by `make test` only, without recommends.
BROWSER_DEBS = chromium
deps-browser:
	@dpkg-query -W -f='$${Status}' $(BROWSER_DEBS) 2>/dev/null | grep -q 'install ok installed' \
	  && exit 0; \
	if [ "$$(id -u)" -eq 0 ]; then sudo=""; \
	elif command -v sudo >/dev/null 2>&1; then sudo=sudo; \
	else echo "deps-browser: not root and no sudo: as root, run: apt-get install --no-install-recommends $(BROWSER_DEBS)" >&2; exit 1; fi; \
	echo "deps-browser: installing $(BROWSER_DEBS)"; \
	export DEBIAN_FRONTEND=noninteractive; \
	apt="$$sudo apt-get install -y -q --no-install-recommends $(BROWSER_DEBS)"; \
	$$apt || { $$sudo apt-get update -q && $$apt; } \
	  || { echo "deps-browser: could not install $(BROWSER_DEBS)" >&2; exit 1; }

# ---- embedded text (schema, modabi.h) ---------------------------------------
define embed
	@mkdir -p $(@D)
	@{ echo '/* generated by make from $< */'; echo 'const char $(1)[] ='; \
	  sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/^/"/' -e 's/$$/\\n"/' $<; \
	  echo ';'; } > $@
endef
build/embed/schema_text.c: module_db_schema.json
	$(call embed,lm_schema_text)
build/embed/modabi_text.c: include/modabi.h
	$(call embed,lm_modabi_text)
# The identity of the libtcc linked in (its size and CRC), part of the key
# of every cached compile (runtime/jitcache.c): another libtcc, another key.
TCC_A := $(shell $(CC) -print-file-name=libtcc.a)
build/embed/tcc_id.c: $(TCC_A)
	@mkdir -p $(@D)
	@{ echo '/* generated by make: cksum of $< */'; \
	  echo "const char lm_tcc_id[] = \"$$(cksum < $< | tr ' ' ':')\";"; } > $@
build/embed/prompt_%_text.c: agents/prompts/%.txt
	$(call embed,lm_prompt_$*_text)

# ---- objects ---------------------------------------------------------------
build/obj/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(DEPFLAGS) $(CFLAGS) $$(pkg-config --cflags $(PKGS)) -c $< -o $@
build/asan/obj/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(DEPFLAGS) $(CFLAGS) -O1 $(SAN) $$(pkg-config --cflags $(PKGS)) -c $< -o $@

# ---- dependency files --------------------------------------------------------
# -MMD -MP: each object (and test binary) depends on the headers it includes,
# written by the compiler into a .d file next to it; a rebuilt VERSION
# rebuilds the objects through the stamp. No object includes build/embed/*.c
# (they are compiled on their own), so no order is needed for them.
VERSION_STAMP = build/version/$(VERSION)
$(VERSION_STAMP):
	@mkdir -p $(@D) && rm -f $(@D)/* && touch $@
$(OBJS) $(PIC_OBJS) $(ASAN_OBJS) build/obj/agents/lmgen.o build/obj/runtime/lmrun.o \
  build/asan/obj/agents/lmgen.o build/asan/obj/runtime/lmrun.o: $(VERSION_STAMP)
-include $(shell find build -name '*.d' 2>/dev/null)

build/pic/obj/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(DEPFLAGS) $(CFLAGS) -fPIC $$(pkg-config --cflags $(PKGS)) -c $< -o $@

$(LIB): $(OBJS)
	ar rcs $@ $^
$(ASAN_LIB): $(ASAN_OBJS)
	ar rcs $@ $^

# libtcc.a is not PIC: its members, with the three libc data symbols they
# reach PC-relative renamed to hidden copies in runtime/tccshim.c, go into
# the .so, whose version script makes every non-lmp_ symbol local.
build/tcc/stamp:
	@rm -rf $(@D) && mkdir -p $(@D)
	cd $(@D) && ar x "$$($(CC) -print-file-name=libtcc.a)"
	for o in $(@D)/*.o; do objcopy --redefine-sym stdout=lmp_tcc_stdout \
	  --redefine-sym stderr=lmp_tcc_stderr --redefine-sym environ=lmp_tcc_environ $$o \
	  || exit 1; done
	@touch $@
$(SO): $(PIC_OBJS) build/tcc/stamp runtime/lmpredict.map
	$(CC) -shared $(CFLAGS) -Wl,-soname,liblmpredict.so -Wl,--version-script=runtime/lmpredict.map \
	  -Wl,-z,defs -o $@ $(PIC_OBJS) build/tcc/*.o $$(pkg-config --libs jansson) -ldl -lm

# ---- programs --------------------------------------------------------------
# -z now: every symbol bound at start, not on first call through the PLT;
# a whole lmrun run is 0.3 ms faster that way (DESIGN.md, "Start-up cost")
# Jansson linked in statically (its archive, when the system has one): one
# shared library fewer to find, map and relocate at start, about 0.1 ms of
# every run (DESIGN.md, "Start-up cost"); without libjansson.a, as before.
PROG_LDFLAGS = -Wl,-z,now
PROG_LIBS = $$(if [ -f "$$(pkg-config --variable=libdir jansson)/libjansson.a" ]; \
  then echo -Wl,-Bstatic $$(pkg-config --libs jansson) -Wl,-Bdynamic; \
  else pkg-config --libs jansson; fi) -ltcc -ldl -lm
lmgen: build/obj/agents/lmgen.o $(LIB)
	$(CC) $(CFLAGS) $(PROG_LDFLAGS) -o $@ $^ $(PROG_LIBS)
lmrun: build/obj/runtime/lmrun.o $(LIB)
	$(CC) $(CFLAGS) $(PROG_LDFLAGS) -o $@ $^ $(PROG_LIBS)
lmcalib: build/obj/runtime/lmcalib.o $(LIB)
	$(CC) $(CFLAGS) $(PROG_LDFLAGS) -o $@ $^ $(PROG_LIBS)
build/asan/lmcalib: build/asan/obj/runtime/lmcalib.o $(ASAN_LIB)
	$(CC) $(CFLAGS) $(SAN) -o $@ $^ $(LIBS)
build/asan/lmgen: build/asan/obj/agents/lmgen.o $(ASAN_LIB)
	$(CC) $(CFLAGS) $(SAN) -o $@ $^ $(LIBS)
build/asan/lmrun: build/asan/obj/runtime/lmrun.o $(ASAN_LIB)
	$(CC) $(CFLAGS) $(SAN) -o $@ $^ $(LIBS)

# examples/predict.c on the public API: linked against the .so (tests) and
# the static library.
build/predict: examples/predict.c include/lmpredict.h $(SO)
	$(CC) -Iinclude $(CFLAGS) -o $@ $< -Lbuild -llmpredict -Wl,-rpath,'$$ORIGIN'
build/predict-static: examples/predict.c include/lmpredict.h $(LIB)
	$(CC) -Iinclude $(CFLAGS) -o $@ $< $(LIB) $(LIBS)

# ---- tests -----------------------------------------------------------------
build/test_%: test/test_%.c test/testutil.h $(LIB)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(DEPFLAGS) -Itest $(CFLAGS) $$(pkg-config --cflags $(PKGS)) -o $@ $< $(LIB) $(LIBS) -lcmocka
build/asan/test_%: test/test_%.c test/testutil.h $(ASAN_LIB)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(DEPFLAGS) -Itest $(CFLAGS) -O1 $(SAN) $$(pkg-config --cflags $(PKGS)) -o $@ $< $(ASAN_LIB) $(LIBS) -lcmocka

tests: all build/asan/lmgen build/asan/lmrun build/asan/lmcalib build/predict build/predict-static $(TESTS) $(ASAN_TESTS)

# Each suite runs from the repository root; LM_BIN says which lmgen/lmrun
# the end-to-end suites drive. Stops at the first failing suite. The cache
# of compiled code (DESIGN.md §7.10) is one of the build's, emptied first,
# so a run never writes under $HOME and both misses and hits are run.
check: export LM_PREDICTOR_CACHE = $(CURDIR)/build/test-cache
check: tests
	@rm -rf build/test-cache
	@set -e; for t in $(TESTS); do \
	  echo "== $$t"; LM_BIN=. ./$$t; done
	@set -e; for t in $(ASAN_TESTS); do \
	  echo "== $$t (ASan+UBSan)"; \
	  LM_BIN=build/asan ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ./$$t; done
	@$(MAKE) --no-print-directory check-generated check-build check-python check-install
	@echo "all tests passed"

check-generated: lmgen
	./lmgen --check --all

test: deps deps-browser
	@$(MAKE) --no-print-directory check

# ---- commands --------------------------------------------------------------
generate: lmgen
	./lmgen --all

run: deps
	@$(MAKE) --no-print-directory all
	./lmrun models/llama-2-7b-hf.json -B 1 -S 2048

bench: deps
	@$(MAKE) --no-print-directory all build/bench
	./build/bench

build/bench: test/bench.c $(LIB)
	$(CC) $(CPPFLAGS) $(DEPFLAGS) $(CFLAGS) $$(pkg-config --cflags $(PKGS)) -o $@ $< $(LIB) $(LIBS)

# ---- calibration ------------------------------------------------------------
# Rebuild the kernel CSV from the measurement copies in test/data/calibration/
# and refit the shipped calibrations (DESIGN.md section 12). Needs python3
# (standard library only) for the shape conversion; the fit is lmcalib's.
CALIB_DATA = test/data/calibration
VIDUR_SRC  = --source "vidur = Vidur (github.com/microsoft/vidur @ 7d47513363ec447a741ac5e47241580b47724fbf, data/profiling/compute/<gpu>/meta-llama/<model>/mlp.csv, TP1, median CUDA kernel time)"
LLMC_SRC   = --source "llmcompass = LLMCompass (github.com/PrincetonUniversity/LLMCompass @ 2e015fd2ee750e6cad8d7152df52551e5b41ef20, ae/figure5/*/real_hardware/*_A100.csv, wall clock around one call)"
calibration: lmcalib
	python3 tools/convert_calibration.py $(CALIB_DATA)/kernels.csv $(CALIB_DATA)/vidur.csv $(CALIB_DATA)/llmcompass.csv
	./lmcalib --fit $(CALIB_DATA)/kernels.csv --hardware a100-sxm-80gb $(VIDUR_SRC) $(LLMC_SRC)
	./lmcalib --fit $(CALIB_DATA)/kernels.csv --hardware h100-sxm $(VIDUR_SRC)

# The validation tables: leave-one-source-out per kernel class, then end to
# end against published latencies (test/data/calibration/e2e.csv), then
# multi-GPU against published figures (multi_gpu.csv; DESIGN 15.6's tables).
validate: all
	./lmcalib --validate $(CALIB_DATA)/kernels.csv
	@echo
	python3 tools/validate_e2e.py $(CALIB_DATA)/e2e.csv
	@echo
	python3 tools/validate_multi_gpu.py $(CALIB_DATA)/multi_gpu.csv

# ---- fuzzing ---------------------------------------------------------------
# libFuzzer ships in Debian 12's libclang-rt-14-dev (clang-14 only recommends
# it). Targets: test/fuzz/fuzz_<name>.c; seeds: test/fuzz/corpus/<name>/
# (small, committed); what a run learns goes to build/fuzz/corpus/<name>/;
# a finding is saved as build/fuzz/artifacts/<name>-crash-... and fails.
FUZZ_DEBS    = clang-14 libclang-rt-14-dev
FUZZ_CC      = clang-14
FUZZ_FLAGS   = -g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined \
               -fno-sanitize-recover=all
FUZZ_SECONDS ?= 60
FUZZ_NAMES   = $(patsubst test/fuzz/fuzz_%.c,%,$(wildcard test/fuzz/fuzz_*.c))
FUZZ_OBJS    = $(patsubst %.c,build/fuzz/obj/%.o,$(LIB_SRCS) $(EMBED))

fuzz-deps:
	@$(MAKE) --no-print-directory deps DEBS="$(FUZZ_DEBS)"

build/fuzz/obj/%.o: %.c $(HDRS)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(CPPFLAGS) -std=c11 $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link \
	  $$(pkg-config --cflags $(PKGS)) -c $< -o $@
build/fuzz/liblm.a: $(FUZZ_OBJS)
	ar rcs $@ $^
build/fuzz/fuzz_%: test/fuzz/fuzz_%.c build/fuzz/liblm.a
	$(FUZZ_CC) $(CPPFLAGS) -std=c11 $(FUZZ_FLAGS) -fsanitize=fuzzer \
	  $$(pkg-config --cflags $(PKGS)) -o $@ $< build/fuzz/liblm.a $(LIBS)

fuzz: fuzz-deps
	@$(MAKE) --no-print-directory $(patsubst %,build/fuzz/fuzz_%,$(FUZZ_NAMES))
	@set -e; for t in $(FUZZ_NAMES); do \
	  mkdir -p build/fuzz/corpus/$$t build/fuzz/artifacts; \
	  echo "== fuzz $$t ($(FUZZ_SECONDS) s)"; \
	  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  ./build/fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -timeout=30 \
	    -rss_limit_mb=2048 -print_final_stats=1 \
	    -artifact_prefix=build/fuzz/artifacts/$$t- \
	    build/fuzz/corpus/$$t test/fuzz/corpus/$$t 2>build/fuzz/$$t.log \
	    || { tail -n 60 build/fuzz/$$t.log >&2; \
	         echo "fuzz $$t: FINDING (see build/fuzz/$$t.log)" >&2; exit 1; }; \
	  grep -E '^stat::number_of_executed_units' build/fuzz/$$t.log \
	    | sed "s/^/  /"; \
	done
	@echo "fuzz: no findings"

clean:
	rm -rf build lmgen lmrun lmcalib $(DBINDEX)

# ---- install / uninstall -----------------------------------------------------
# make install PREFIX=/usr/local (the default); DESTDIR=/stage is prepended
# to every path written (packaging), never to paths written into files.
# The layout (DESIGN.md, "Install"):
#   bin/lmrun, bin/lmgen, bin/lmcalib
#   lib/liblmpredict.so, lib/liblmpredict.a, lib/pkgconfig/lmpredict.pc
#   include/lmpredict.h
#   share/lm-predictor/  module_db.json, module_db_schema.json, hardware.json,
#                        parallel.json, generated_modules/, models/ (and
#                        models/arch/), calibration/, engines/,
#                        agents/prompts/
#   share/man/man1/lmrun.1, lmgen.1, lmcalib.1
#   lib/python3/dist-packages/lmpredict/  (PYTHONDIR= to put it elsewhere)
# lmrun, lmgen and liblmpredict.so find share/lm-predictor from their own
# location (common/fsutil.c lm_home), so the tree can be moved whole.
PREFIX     ?= /usr/local
BINDIR     = $(PREFIX)/bin
LIBDIR     = $(PREFIX)/lib
INCLUDEDIR = $(PREFIX)/include
DATADIR    = $(PREFIX)/share/lm-predictor
MANDIR     = $(PREFIX)/share/man
PYTHONDIR  = $(LIBDIR)/python3/dist-packages
INSTALL    = install
INSTALL_DATA_DIRS = generated_modules models models/arch calibration engines agents/prompts
PY_SRCS    = $(wildcard python/lmpredict/*.py)

install: all $(SO) $(LIB) $(DBINDEX)
	@set -e; D='$(DESTDIR)'; \
	$(INSTALL) -d "$$D$(BINDIR)" "$$D$(LIBDIR)/pkgconfig" "$$D$(INCLUDEDIR)" \
	  "$$D$(MANDIR)/man1" "$$D$(PYTHONDIR)/lmpredict" \
	  $(patsubst %,"$$D$(DATADIR)/%",$(INSTALL_DATA_DIRS)); \
	$(INSTALL) -m 755 lmrun lmgen lmcalib "$$D$(BINDIR)/"; \
	$(INSTALL) -m 755 $(SO) "$$D$(LIBDIR)/"; \
	$(INSTALL) -m 644 $(LIB) "$$D$(LIBDIR)/"; \
	$(INSTALL) -m 644 include/lmpredict.h "$$D$(INCLUDEDIR)/"; \
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' lmpredict.pc.in \
	  > "$$D$(LIBDIR)/pkgconfig/lmpredict.pc"; \
	for m in lmrun lmgen lmcalib; do \
	  sed 's|@VERSION@|$(VERSION)|' man/$$m.1 > "$$D$(MANDIR)/man1/$$m.1"; done; \
	$(INSTALL) -m 644 module_db.json module_db_schema.json hardware.json \
	  parallel.json "$$D$(DATADIR)/"; \
	$(INSTALL) -m 644 generated_modules/*.c $(DBINDEX) "$$D$(DATADIR)/generated_modules/"; \
	$(INSTALL) -m 644 models/*.json "$$D$(DATADIR)/models/"; \
	$(INSTALL) -m 644 models/arch/*.json "$$D$(DATADIR)/models/arch/"; \
	$(INSTALL) -m 644 calibration/*.json calibration/*.csv "$$D$(DATADIR)/calibration/"; \
	$(INSTALL) -m 644 engines/*.json "$$D$(DATADIR)/engines/"; \
	$(INSTALL) -m 644 agents/prompts/*.txt "$$D$(DATADIR)/agents/prompts/"; \
	$(INSTALL) -m 644 $(PY_SRCS) "$$D$(PYTHONDIR)/lmpredict/"; \
	printf '# written by make install\nLIBRARY = %s\nVERSION = %s\n' \
	  "'$(LIBDIR)/$(notdir $(SO))'" "'$(VERSION)'" \
	  > "$$D$(PYTHONDIR)/lmpredict/_install.py"; \
	echo "installed LM-Predictor $(VERSION) under $$D$(PREFIX)"

# Removes every file install writes; share/lm-predictor/ and the Python
# package directory belong to LM-Predictor and go whole (with anything lmgen
# wrote there); the shared directories (bin/, lib/, ...) stay.
uninstall:
	rm -f "$(DESTDIR)$(BINDIR)/lmrun" "$(DESTDIR)$(BINDIR)/lmgen" \
	  "$(DESTDIR)$(BINDIR)/lmcalib" "$(DESTDIR)$(MANDIR)/man1/lmcalib.1" \
	  "$(DESTDIR)$(LIBDIR)/$(notdir $(SO))" "$(DESTDIR)$(LIBDIR)/$(notdir $(LIB))" \
	  "$(DESTDIR)$(LIBDIR)/pkgconfig/lmpredict.pc" \
	  "$(DESTDIR)$(INCLUDEDIR)/lmpredict.h" \
	  "$(DESTDIR)$(MANDIR)/man1/lmrun.1" "$(DESTDIR)$(MANDIR)/man1/lmgen.1"
	rm -rf "$(DESTDIR)$(DATADIR)" "$(DESTDIR)$(PYTHONDIR)/lmpredict"

# The build system's promises (missing packages, header dependencies,
# --version); the Python binding's unittest suite, over the build tree's
# library; make install/uninstall end to end in a temporary PREFIX (once per
# make test).
check-build: all
	@echo "== test/build_test.sh"
	@test/build_test.sh
check-python: all $(SO)
	@echo "== python3 -m unittest (test/python)"
	@python3 -m unittest discover -s test/python
check-install: all $(SO) $(LIB) $(DBINDEX)
	@echo "== test/install_test.sh"
	@test/install_test.sh

# Every target installs what it needs into .venv first, so a fresh machine needs only `make demo` / `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Which dlib: `blas` builds it against OpenBLAS once per machine (cached in ~/.cache/faceledger,
# 5x faster face vectors) and falls back to the prebuilt wheel; `bin` goes straight to dlib-bin.
DLIB ?= blas
DLIB_VERSION := 20.0.1
# The prebuilt dlib-bin, kept aside (not importable from the venv) for the test that compares builds.
DLIB_REF := $(VENV)/dlib-bin-ref

.PHONY: demo test lint compreface-venv fuzz bench bench-dlib bench-peer screenshots clean

# Both dlib distributions write the module `dlib`, so exactly one is ever installed: the old one
# is removed first, and the BLAS wheel goes in before the package so pip sees `dlib` satisfied.
$(STAMP): pyproject.toml tools/dlib_wheel.sh
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip uninstall --quiet --yes dlib dlib-bin 2>/dev/null || true
	@if [ "$(DLIB)" = blas ] && dir="$$(tools/dlib_wheel.sh $(PY))" \
	    && $(PY) -m pip install --quiet --no-index --find-links "$$dir" "dlib==$(DLIB_VERSION)" \
	    && $(PY) -c 'import dlib, sys; sys.exit(not dlib.DLIB_USE_BLAS)'; then \
	  echo "dlib $(DLIB_VERSION) built against OpenBLAS, from $$dir"; \
	  $(PY) -m pip install --quiet -e '.[dev,milvus,ray]' && \
	  $(PY) -m pip install --quiet --upgrade --no-deps --target $(DLIB_REF) \
	    "dlib-bin==$(DLIB_VERSION).*"; \
	else \
	  echo "*** dlib: using the prebuilt dlib-bin (no BLAS: face vectors about 5x slower)." >&2; \
	  echo "*** For the fast build: make clean && make (needs libopenblas-dev, cmake, a C++ compiler)." >&2; \
	  $(PY) -m pip uninstall --quiet --yes dlib 2>/dev/null || true; \
	  rm -rf $(DLIB_REF); \
	  $(PY) -m pip install --quiet -e '.[dev,milvus,ray,dlib-bin]'; \
	fi
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m faceledger.demo

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench

# The real compreface-sdk needs urllib3<2, so it has a venv of its own (tests/test_compreface.py
# skips with the reason when it could not be made, and fails under CI=true).
compreface-venv: $(STAMP)
	bash tools/compreface_venv.sh $(PY) || echo "*** .venv-compreface could not be made" >&2

test: lint compreface-venv
	$(VENV)/bin/pytest -n 2 --dist loadfile -q

# A longer, random campaign over the readers; each crashing input lands in tests/fuzz-corpus/.
FUZZ_EXAMPLES ?= 20000
fuzz: $(STAMP)
	FACELEDGER_FUZZ=1 FACELEDGER_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(VENV)/bin/pytest -q -p no:cacheprovider tests/test_fuzz.py

# The peer (face_recognition's CLI) gets a venv of its own: bench/peer_env.sh.
bench: $(STAMP)
	bash bench/peer_env.sh
	$(PY) bench/bench_ingest.py
	$(PY) bench/bench_search.py
	$(PY) bench/bench_policy.py
	$(PY) bench/bench_index_store.py

# Per-face descriptor and HOG times of the OpenBLAS build and of dlib-bin, in one run.
bench-dlib: $(STAMP)
	$(PY) bench/bench_dlib_build.py

# PNGs of each console page at desktop and phone width, for the README (drives Debian's chromium).
screenshots: $(STAMP)
	$(PY) tools/screenshots.py docs/screenshots

clean:
	rm -rf $(VENV) .venv-compreface faceledger-library demo-out

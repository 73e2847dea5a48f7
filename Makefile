# Every target installs what it needs into .venv first, so a fresh machine needs only `make demo` / `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint fuzz bench bench-peer clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,milvus]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m faceledger.demo

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench

test: lint
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

clean:
	rm -rf $(VENV) faceledger-library demo-out

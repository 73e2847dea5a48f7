# Every target installs what it needs into .venv first, so a fresh machine needs only `make demo` / `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench bench-peer clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m faceledger.demo

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench

test: lint
	$(VENV)/bin/pytest -n 2 --dist loadfile -q

bench: $(STAMP)
	$(PY) -m pip install --quiet --no-deps face_recognition
	$(PY) -m pip install --quiet Click
	$(PY) bench/bench_ingest.py
	$(PY) bench/bench_search.py

clean:
	rm -rf $(VENV) faceledger-library demo-out

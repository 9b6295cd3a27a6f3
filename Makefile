# Everything a fresh machine needs: `make demo` runs the curation job on the bundled
# synthetic corpus, `make test` runs lint, type checks and the whole test suite.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
DEMO_DIR ?= demo

.PHONY: setup demo test lint typecheck pytest protos clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --upgrade pip
	# CPU build of torch first: a bare `torch` requirement would pull a multi-GB CUDA build.
	$(PY) -m pip install -q --disable-pip-version-check torch==2.13.0
	$(PY) -m pip install -q --disable-pip-version-check -e '.[cpu,dev]'
	rm -f $(VENV)/.installed-*
	touch $@

demo: setup
	$(PY) -m batchcraft demo --dir $(DEMO_DIR)

lint: setup
	$(VENV)/bin/ruff check src tests benchmarks scripts examples
	$(VENV)/bin/ruff format --check src tests benchmarks scripts examples
	$(PY) scripts/gen_protos.py --check
	$(VENV)/bin/lint-imports --no-cache  # the architecture contracts in pyproject.toml

protos: setup
	$(PY) scripts/gen_protos.py

typecheck: setup
	$(VENV)/bin/mypy

pytest: setup
	bash scripts/ensure_chromium.sh  # headless browser for the report tests
	$(PY) -m pytest -q --durations=15

test: lint typecheck pytest

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache .mypy_cache .ruff_cache

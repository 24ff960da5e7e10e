# Two commands on a fresh machine (only Python >= 3.11 and make needed):
#   make demo   set up .venv and play a day of the service desk on SQLite
#   make test   set up .venv with the dev tools and run the whole test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test lint bench bench-claim-path bench-timers bench-scale clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# Playwright (the dashboard's browser tests) drives Debian's chromium: never a download.
$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 $(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

demo: $(VENV)/.installed-dev
	$(BIN)/baoflow demo

test: $(VENV)/.installed-dev
	$(BIN)/pytest

# mypy cannot follow the editable install's import hook (the folders are mapped onto
# baoflow.*): it reads the package through a tree of links made afresh each time.
lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	rm -rf .typecheck && mkdir -p .typecheck/baoflow
	for f in baoflow/*; do ln -s "$$PWD/$$f" .typecheck/baoflow/; done
	for d in engine workflows notifications diagrams; do ln -s "$$PWD/$$d" .typecheck/baoflow/$$d; done
	$(BIN)/mypy

bench: $(VENV)/.installed-dev
	$(BIN)/python -m bench.fire

# A real claim from report to payment, every deadline on its way, against a floor that
# replays the rows it wrote: on SQLite (docs/claim-path.json), then on PostgreSQL
# (BAOFLOW_BENCH_PG_URL, default postgresql://postgres@127.0.0.1:5432/test;
# docs/claim-path-postgresql.json).
bench-claim-path: $(VENV)/.installed-dev
	$(BIN)/python -m bench.claim_path --json docs/claim-path.json
	$(BIN)/python -m bench.claim_path --url $${BAOFLOW_BENCH_PG_URL:-postgresql://postgres@127.0.0.1:5432/test} --json docs/claim-path-postgresql.json

# Needs PostgreSQL (BAOFLOW_BENCH_PG_URL, default postgresql://postgres@127.0.0.1:5432/test).
bench-timers: $(VENV)/.installed-dev
	$(BIN)/python -m bench.timers

# 10k, 100k and 1,000,000 cases on SQLite and PostgreSQL (BAOFLOW_BENCH_PG_URL, default
# postgresql://postgres@127.0.0.1:5432/test): docs/benchmarks.md and docs/scale.json.
bench-scale: $(VENV)/.installed-dev
	$(BIN)/python -m bench.scale --sizes 10000,100000,1000000 --backends sqlite,postgresql

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis .typecheck build baoflow-demo.db*

# Two commands on a fresh machine (only Python >= 3.11 and make needed):
#   make demo   set up .venv and play a day of the service desk on SQLite
#   make test   set up .venv with the dev tools and run the whole test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test lint bench bench-fire bench-claim-path bench-timers bench-scale bench-soak mutation clean

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

# The dev tools plus what the comparison runs against (the `bench` extra: SpiffWorkflow).
$(VENV)/.installed-bench: pyproject.toml $(VENV)/.installed-dev
	PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 $(BIN)/python -m pip install -q -e '.[dev,bench]'
	touch $@

# The comparison (issue #14): the five-step claim with a deadline per state — baoflow on
# SQLite and PostgreSQL (1, 2 and 4 processes), the floor replaying its writes, the
# hand-written transitions + SQLAlchemy ORM version and SpiffWorkflow — then the real
# claim path on both databases; the figures go to docs/bench-compare.json,
# docs/claim-path*.json and their section of docs/benchmarks.md. PostgreSQL from
# BAOFLOW_BENCH_PG_URL (default postgresql://postgres@127.0.0.1:5432/test).
BENCH_PG_URL = $${BAOFLOW_BENCH_PG_URL:-postgresql://postgres@127.0.0.1:5432/test}
bench: $(VENV)/.installed-bench
	$(BIN)/python -m bench.compare --pg-url $(BENCH_PG_URL) --json docs/bench-compare.json
	$(BIN)/python -m bench.claim_path --json docs/claim-path.json
	$(BIN)/python -m bench.claim_path --url $(BENCH_PG_URL) --json docs/claim-path-postgresql.json
	$(BIN)/python -m bench.compare --render --json docs/bench-compare.json --doc docs/benchmarks.md

# fire() on SQLite against its floor, memory with many cases, a profile (docs/benchmarks.md's
# first sections).
bench-fire: $(VENV)/.installed-dev
	$(BIN)/python -m bench.fire

# A real claim from report to payment, every deadline on its way, against a floor that
# replays the rows it wrote: on SQLite (docs/claim-path.json), then on PostgreSQL
# (BAOFLOW_BENCH_PG_URL, default postgresql://postgres@127.0.0.1:5432/test;
# docs/claim-path-postgresql.json).
bench-claim-path: $(VENV)/.installed-dev
	$(BIN)/python -m bench.claim_path --json docs/claim-path.json
	$(BIN)/python -m bench.claim_path --url $(BENCH_PG_URL) --json docs/claim-path-postgresql.json

# Needs PostgreSQL (BAOFLOW_BENCH_PG_URL, default postgresql://postgres@127.0.0.1:5432/test).
bench-timers: $(VENV)/.installed-dev
	$(BIN)/python -m bench.timers

# 10k, 100k and 1,000,000 cases on SQLite and PostgreSQL (BAOFLOW_BENCH_PG_URL, default
# postgresql://postgres@127.0.0.1:5432/test): docs/benchmarks.md and docs/scale.json.
bench-scale: $(VENV)/.installed-dev
	$(BIN)/python -m bench.scale --sizes 10000,100000,1000000 --backends sqlite,postgresql

# The soak (issue #15 item 7, docs/reliability.md): 4 processes opening claims and moving
# them forward at a steady rate, with idempotency keys, while 4 timer workers drain the
# warnings that fall due; errors, memory and lateness per minute, then every due timer
# fired once and every case equal to its history. PostgreSQL (BAOFLOW_BENCH_PG_URL,
# default postgresql://postgres@127.0.0.1:5432/test; a private schema) for 5 minutes,
# then SQLite for 3; the figures to docs/soak.json.
bench-soak: $(VENV)/.installed-dev
	$(BIN)/python -m bench.soak --backends postgresql --minutes 5
	$(BIN)/python -m bench.soak --backends sqlite --minutes 3

# Mutation testing of the rule modules (docs/reliability.md): cosmic-ray changes one
# operator at a time IN PLACE in the working tree, runs the tests that guard the module,
# and puts the file back; run it on a clean tree and touch nothing while it runs (about
# 45 minutes). MUTATE=authority runs one module. The surviving mutants are printed, and
# kept in mutation/*.sqlite for `cr-report`.
MUTATE ?= authority idempotency deadlines complaint claim
$(VENV)/.installed-mutation: pyproject.toml $(VENV)/.installed-dev
	PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 $(BIN)/python -m pip install -q -e '.[dev,mutation]'
	touch $@

mutation: $(VENV)/.installed-mutation
	@for m in $(MUTATE); do \
	  echo "== $$m"; \
	  $(BIN)/cosmic-ray init --force mutation/$$m.toml mutation/$$m.sqlite && \
	  $(BIN)/cr-filter-operators mutation/$$m.sqlite mutation/$$m.toml && \
	  $(BIN)/python mutation/definitions.py mutation/$$m.sqlite --config mutation/$$m.toml && \
	  $(BIN)/cosmic-ray baseline mutation/$$m.toml && \
	  $(BIN)/cosmic-ray exec mutation/$$m.toml mutation/$$m.sqlite && \
	  $(BIN)/cr-report --surviving-only --show-diff mutation/$$m.sqlite || exit 1; \
	done
	git diff --exit-code --stat -- engine workflows  # every mutated file was put back

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis .typecheck build baoflow-demo.db*

# The two commands of the README: `make run` and `make test`. Everything else supports them.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 8000
# pytest arguments: `make test PYTEST_ARGS="tests/faults --randomly-seed=1234"` repeats an
# order (the seed is printed at the end of every run); tests run in random order.
PYTEST_ARGS ?=
PYTEST := $(BIN)/pytest -q -p randomly
# `make test-loaded`: how many busy-loop processes keep cores busy during the tests.
LOAD_PROCS ?= 2

.PHONY: run test test-loaded lint typecheck unit unit-loaded screenshots system-deps bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.run-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[tf]'
	touch $@

$(VENV)/.dev-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.run-installed

run: $(VENV)/.run-installed
	$(BIN)/tunesmith serve --example --port $(PORT)

system-deps:
	@missing=""; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium chromium-driver"; \
	command -v docker-compose >/dev/null 2>&1 || missing="$$missing docker-compose"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing$$missing (Debian packages for browser and compose tests)"; \
	    apt-get install -y -qq --no-install-recommends $$missing >/dev/null 2>&1 || \
	    { apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends $$missing >/dev/null; } || \
	    echo "could not install$$missing: the tests that need them will be skipped"; \
	  else echo "missing$$missing (apt-get install them): the tests that need them will be skipped"; fi; \
	fi

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check service objectives tests bench
	$(BIN)/mypy

unit: $(VENV)/.dev-installed
	$(PYTEST) $(PYTEST_ARGS)

test: $(VENV)/.dev-installed system-deps lint unit

# The same tests with LOAD_PROCS busy loops beside them (a loaded machine), killed afterwards.
unit-loaded: $(VENV)/.dev-installed
	@pids=""; \
	for i in $$(seq 1 $(LOAD_PROCS)); do $(BIN)/python -c 'while True: pass' & pids="$$pids $$!"; done; \
	trap 'kill $$pids 2>/dev/null' EXIT INT TERM; \
	echo "$(LOAD_PROCS) busy loops running:$$pids"; \
	$(PYTEST) $(PYTEST_ARGS)

test-loaded: $(VENV)/.dev-installed system-deps lint unit-loaded

# Refreshes the README's pictures (docs/screenshots/) from the browser tests.
screenshots: $(VENV)/.dev-installed system-deps
	TUNESMITH_REFRESH_SCREENSHOTS=1 $(PYTEST) tests/browser

bench: $(VENV)/.dev-installed
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	$(BIN)/python bench/optimizer.py --quick
	$(BIN)/python bench/throughput.py --quick

# Mutation testing (outside CI; hours on 2 cores): mutmut mutates the optimizer, the
# scheduler and state machine, and the policies (setup.cfg [mutmut]) and runs the fast
# in-process tests that cover them. MUTANTS narrows the run, e.g.
# `make mutants MUTANTS='service.optimizer.acquisition*'`; results stay in mutants/.
MUTANT_JOBS ?= 2
MUTANTS ?=
.PHONY: mutants
mutants: $(VENV)/.dev-installed
	$(BIN)/pip install --quiet 'mutmut>=3.8,<4'
	nice -n 10 $(BIN)/mutmut run --max-children $(MUTANT_JOBS) $(MUTANTS)
	$(BIN)/mutmut export-cicd-stats
	$(BIN)/python -c 'import json; s = json.load(open("mutants/mutmut-cicd-stats.json")); k = s["killed"] + s["timeout"]; n = k + s["survived"] + s["suspicious"]; print("killed %d of %d mutants (%.1f%%), %d not covered by the selected tests; survivors: $(BIN)/mutmut results" % (k, n, 100.0 * k / max(n, 1), s["no_tests"]))'

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache

# The two commands of the README: `make run` and `make test`. Everything else supports them.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 8000

.PHONY: run test lint typecheck unit browser-deps bench clean

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

browser-deps:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get install -y -qq chromium chromium-driver >/dev/null 2>&1 || \
	     (apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null)) || \
	    echo "chromium could not be installed: browser tests will be skipped"; \
	  else echo "chromium is missing (apt-get install chromium): browser tests will be skipped"; fi; }

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check service objectives tests bench
	$(BIN)/mypy

unit: $(VENV)/.dev-installed
	$(BIN)/pytest -q

test: $(VENV)/.dev-installed browser-deps lint unit

bench: $(VENV)/.dev-installed
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	$(BIN)/python bench/optimizer.py --quick
	$(BIN)/python bench/throughput.py --quick

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache

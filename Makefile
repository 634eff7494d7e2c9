# `make run` serves the chat; `make test` checks everything. Both set up .venv themselves.
PYTHON ?= $(shell command -v python3.12 2>/dev/null || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
THEME := theme/static_src
CSS := theme/static/css/dist/styles.css

.PHONY: run test lint css css-check clean bench

$(BIN)/.installed: requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else "Python 3.12 or newer is needed (see .python-version)")'
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.txt
	touch $@

$(BIN)/.installed-dev: $(BIN)/.installed requirements-dev.txt
	$(BIN)/python -m pip install -q -r requirements-dev.txt
	touch $@

run: $(BIN)/.installed
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py runserver $(HOST):$(PORT)

lint: $(BIN)/.installed-dev
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy .
	$(BIN)/python manage.py makemigrations --check --dry-run

test: lint css-check
	$(BIN)/pytest

# The fan-out benchmark (bench/README.md): starts its own servers, prints one table.
# BENCH_ARGS passes options, e.g. make bench BENCH_ARGS="--duration 20 --json bench.json".
bench: $(BIN)/.installed-dev
	$(BIN)/python -m bench.run $(BENCH_ARGS)

# Rebuild the committed CSS after changing templates (needs Node and npm).
css:
	cd $(THEME) && npm ci --no-audit --no-fund && npm run build

# The committed CSS must be what the templates build to; skipped where there is no npm.
css-check:
	@if command -v npm >/dev/null 2>&1; then \
		$(MAKE) css && git diff --quiet -- $(CSS) \
		|| { echo "$(CSS) is stale: run 'make css' and commit it."; exit 1; }; \
	else \
		echo "css-check skipped: npm is not installed"; \
	fi

clean:
	rm -rf $(VENV) $(THEME)/node_modules staticfiles

# `make run` serves the chat; `make test` checks everything. Both set up .venv themselves.
PYTHON ?= $(shell command -v python3.12 2>/dev/null || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
THEME := theme/static_src
CSS := theme/static/css/dist/styles.css
# What `make test` checks before pytest; CI's second pass sets it empty (see .ci/run).
CHECKS ?= lint css-check
# A pytest marker expression for `make test`, e.g. MARKERS="not browser"; empty runs every test.
MARKERS ?=
# More options for pytest, e.g. PYTEST_ARGS="-x -k socket".
PYTEST_ARGS ?=
# pytest-xdist workers for `make test`: more than the two cores, since most tests wait on
# servers and browsers. chat/tests/conftest.py groups the tests (a module's servers start
# once). WORKERS=0 runs them in one process, in pytest's order.
WORKERS ?= 3
# The tests that run inside the pytest process: no browser, no server processes.
IN_PROCESS := not browser and not delivery and not process

.PHONY: run serve test test-fast lint css css-check node-modules clean bench lock messages

# The settings default to production (DEBUG off, a SECRET_KEY required). The development
# targets run with DEBUG on unless it is set; their prerequisites inherit it.
run test test-fast lint bench messages: export DEBUG ?= true

$(BIN)/.installed: requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else "Python 3.12 or newer is needed (see .python-version)")'
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q --require-hashes -r requirements.txt
	touch $@

# The development lock holds the runtime's and the uvicorn extra's packages at the same versions.
$(BIN)/.installed-dev: $(BIN)/.installed requirements-dev.txt
	$(BIN)/python -m pip install -q --require-hashes -r requirements-dev.txt
	touch $@

run: $(BIN)/.installed
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py runserver $(HOST):$(PORT)

# The production layout on this machine: nginx in front of gunicorn (pages) and daphne
# (sockets), configured by the environment as deploy/serve.py describes.
serve: $(BIN)/.installed
	$(BIN)/python deploy/serve.py

lint: $(BIN)/.installed-dev
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy .
	$(BIN)/python manage.py makemigrations --check --dry-run

test: $(CHECKS) $(BIN)/.installed-dev node-modules
	$(BIN)/pytest -n $(WORKERS) --dist loadgroup $(if $(MARKERS),-m "$(MARKERS)") $(PYTEST_ARGS)

# The in-process tests alone, without lint: seconds, for the edit-test loop.
test-fast: $(BIN)/.installed-dev
	$(BIN)/pytest -m "$(IN_PROCESS)" $(PYTEST_ARGS)

# The fan-out benchmark (bench/README.md): starts its own servers, prints one table.
# BENCH_ARGS passes options, e.g. make bench BENCH_ARGS="--duration 20 --json bench.json".
bench: $(BIN)/.installed-dev
	$(BIN)/python -m bench.run $(BENCH_ARGS)

# Recompile the locks from the *.in files after changing a pin (needs PyPI); pip-compile's
# options are in pyproject.toml. requirements.txt comes first: the others keep its versions.
PIP_COMPILE := CUSTOM_COMPILE_COMMAND="make lock" $(BIN)/pip-compile --quiet
# LOCK_ARGS passes options, e.g. make lock LOCK_ARGS="--upgrade-package gunicorn".
lock: $(BIN)/.installed-dev
	$(PIP_COMPILE) $(LOCK_ARGS) --output-file requirements.txt requirements.in
	$(PIP_COMPILE) $(LOCK_ARGS) --output-file requirements-uvicorn.txt requirements-uvicorn.in
	$(PIP_COMPILE) $(LOCK_ARGS) --output-file requirements-dev.txt requirements-dev.in

# Update the Russian catalogue (locale/ru/LC_MESSAGES/django.po) from the code and the
# templates, then compile it (needs GNU gettext: apt-get install -y gettext). New messages
# come in untranslated, and `make test` fails until each has its Russian (chat/tests/
# test_i18n.py). The compiled .mo is committed, so that `make run` needs no gettext.
messages: $(BIN)/.installed
	$(BIN)/python manage.py makemessages --locale ru --add-location file --no-obsolete \
		--ignore node_modules --ignore staticfiles --ignore chat/tests --ignore bench --ignore deploy --ignore docs
	$(BIN)/python manage.py compilemessages --locale ru --ignore .venv --ignore node_modules

# Rebuild the committed CSS after changing templates (needs Node and npm).
css:
	cd $(THEME) && npm ci --no-audit --no-fund && npm run build

# The theme's npm packages, from its lock: Tailwind for `make css`, and axe-core, which the
# accessibility tests inject into pages. Reinstalled when the lock changes; without npm the
# accessibility tests skip (and fail under CI=true).
node-modules:
	@if command -v npm >/dev/null 2>&1; then \
		[ $(THEME)/node_modules/.package-lock.json -nt $(THEME)/package-lock.json ] \
		|| (cd $(THEME) && npm ci --no-audit --no-fund); \
	else \
		echo "node-modules skipped: npm is not installed (the accessibility tests will skip)"; \
	fi

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

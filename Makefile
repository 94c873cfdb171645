# The two commands of the README: `make demo` (the main job) and `make test`.
# Each installs what it needs into .venv and checks that Redis and PostgreSQL are up.
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: demo test services browser pgbouncer lint json-docs config-docs docs

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

services:
	bash scripts/ensure-services.sh

# Debian's chromium + chromedriver for the dashboard's browser test (apt-get, or says how)
browser:
	bash scripts/ensure-chromium.sh

# Debian's pgbouncer for tests/test_pgbouncer.py, which runs its own (apt-get, or says how)
pgbouncer:
	bash scripts/ensure-pgbouncer.sh

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) scripts/staged_tree.py -- $(abspath $(VENV))/bin/lint-imports $(CURDIR)/pyproject.toml
	$(PY) scripts/staged_tree.py -- $(abspath $(VENV))/bin/mypy \
		--config-file $(CURDIR)/pyproject.toml --cache-dir $(CURDIR)/.mypy_cache -p stickerq

# Most tests wait on workers and services, so three test processes share the 2 cores well
# (measured: 242 s with two, 201 s with three, 179 s with four); the
# tests marked serial (a restarted PostgreSQL, rates per second, kill bounds) run alone after,
# collected from tests/worker only, where tests/conftest.py requires them to be.
# Each run exits non-zero when it collects no test.
# Python's default again where the machine sets PYTHONDONTWRITEBYTECODE=1: bytecode and
# pytest's rewritten test modules are kept, so a pytest or worker process after the first
# does not compile them again (collection: 12.3 s -> 7.2 s a process).
test: export PYTHONDONTWRITEBYTECODE =
test: $(VENV)/.installed services browser pgbouncer lint
	$(PY) -m pytest -n 3 -m "not serial"
	$(PY) -m pytest -m serial tests/worker

# docs/json.md from the models in producer/views/ (tests/test_json_docs.py checks it is current)
json-docs: $(VENV)/.installed
	$(PY) -m stickerq.cli.json_docs docs/json.md

# docs/configuration.md from stickerq/settings.py (tests/test_config_docs.py checks it is current)
config-docs: $(VENV)/.installed
	$(PY) -m stickerq.cli.config_docs docs/configuration.md

# every generated page at once
docs: json-docs config-docs

demo: $(VENV)/.installed
	bash scripts/ensure-services.sh redis
	$(VENV)/bin/stickerq demo

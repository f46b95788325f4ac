# The command index. `make run` and `make test` are all a fresh machine needs.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint setup demo bench screenshots clean

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

setup: $(STAMP)
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py setup_roles
	$(BIN)/python manage.py load_kb --if-empty
	$(BIN)/python manage.py create_admin

demo: setup
	$(BIN)/python manage.py seed_demo

## Set up everything and serve the dashboard (with a worker) at http://127.0.0.1:8000
run: demo
	$(BIN)/python manage.py rundesk 127.0.0.1:8000

# Test processes for `make test` (pytest-xdist); `make test TEST_WORKERS=0` runs the suite in one process.
# Each worker keeps its own test database, Redis databases and labs (tests/parallel.py). Four on two
# cores: lab and browser tests spend much of their time waiting (timeouts, sshd, chromium), and
# tests/scheduling.py keeps two workers in the lab while the other two compute. Measured on
# 2026-12-03's machine: 4 workers 365 s; 6 workers 436 s, every test's CPU grows a quarter when six share two cores.
TEST_WORKERS ?= 4

## Set up and run the whole test suite (on TEST_WORKERS processes)
# Bytecode is written even where the environment says not to: without it each of the five pytest
# processes rewrites the asserts of every test module and plugin package again (12 s of CPU each
# here, 4.5 s once cached).
# --maxschedchunk=1: a worker takes the next test when it is free, so the long tests that
# tests/conftest.py puts first spread over every worker instead of filling the first one's batch.
test: $(STAMP)
	PYTHONDONTWRITEBYTECODE= $(BIN)/python -m pytest -n $(TEST_WORKERS) --maxschedchunk=1

## Performance figures (root: builds lab hosts in network namespaces)
bench: $(STAMP)
	$(BIN)/python bench/collect_one_host.py
	$(BIN)/python bench/sweep_hosts.py
	$(BIN)/python bench/match_kb.py
	$(BIN)/python bench/match_run.py
	$(BIN)/python bench/starvation.py
	$(BIN)/python bench/sweep_fleet.py
	$(BIN)/python bench/dashboard_load.py

## Refresh the README's screenshots from the browser tests (every one that saves a screenshot)
screenshots: $(STAMP)
	TRIAGE_SCREENSHOTS=1 $(BIN)/python -m pytest -q $$(grep -l save_screenshot tests/test_browser*.py)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python manage.py makemigrations --check --dry-run

clean:
	rm -rf var .pytest_cache

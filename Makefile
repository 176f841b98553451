# Everyday commands. `make` alone lists them. CI runs `.ci/run`, which does the same checks from a
# fresh virtualenv (`make ci` runs it here).

# The Python of the active virtualenv, else the project's .venv (`make install` creates it).
ifdef VIRTUAL_ENV
PYTHON ?= python
else
PYTHON ?= .venv/bin/python
endif
# The same paths as .ci/run: keep the two lists in step.
LINTED := src tests dashboards benchmarks scripts
TYPECHECKED := src dashboards/generate.py scripts/build_compiled.py

.DEFAULT_GOAL := help
.PHONY: help install hooks lint format typecheck test-unit test demo bench docs ci

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

install: ## create .venv (unless a virtualenv is active) and install StreamGuard with its dev tools
	@if [ "$(PYTHON)" = .venv/bin/python ] && [ ! -x .venv/bin/python ]; then python3 -m venv .venv; fi
	$(PYTHON) -m pip install -e '.[dev]'

hooks: ## install the git pre-commit hooks (ruff, ruff format, mypy)
	$(PYTHON) -m pre_commit install

lint: ## ruff check and ruff format --check, as CI runs them
	$(PYTHON) -m ruff check $(LINTED)
	$(PYTHON) -m ruff format --check $(LINTED)

format: ## ruff format, then the fixes ruff marks as safe
	$(PYTHON) -m ruff format $(LINTED)
	$(PYTHON) -m ruff check --fix $(LINTED)

typecheck: ## mypy (strict) over the package, the dashboard generator and the compiled-build script
	$(PYTHON) -m mypy $(TYPECHECKED)

test-unit: ## the pure tests: no broker, no network, a few seconds
	$(PYTHON) -m pytest tests/unit -q

test: ## the whole suite (the broker of STREAMGUARD_TEST_BROKER, or one started for the session)
	$(PYTHON) -m pytest

demo: ## the main job: a local broker, a worker and the Ventura-style scenario
	$(PYTHON) -m streamguard demo

bench: ## engine throughput (benchmarks/bench_scale.py starts its own broker and takes minutes)
	$(PYTHON) benchmarks/bench_engine.py

docs: ## regenerate the README's settings table and the Grafana dashboards
	$(PYTHON) -m streamguard.settings --write README.md
	$(PYTHON) dashboards/generate.py

ci: ## what CI runs on a fresh clone: a new virtualenv, all checks, Kafka, the whole suite
	bash .ci/run

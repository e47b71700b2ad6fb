# Two commands do all the set-up on a fresh machine (Python 3.11+ with venv):
#   make demo   # creates .venv, installs the lab, generates the lab PKI if missing, runs the demo and
#               # writes its HTML report to reports/demo-<time>.html (a new file each run)
#   make test   # creates .venv, installs the lab with its test tools, runs ruff, mypy and pytest
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint bench clean compose-test

# The editable install: setuptools says, on every install mapped with package-dir (pyproject.toml), that a
# folder named like the package may shadow it; here that folder (mtls_lab/) is the package itself: not news.
$(BIN)/mtls-lab: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	PYTHONWARNINGS='ignore:Editable installation' $(BIN)/pip install --quiet -e '.[test]'
	touch $@

demo: $(BIN)/mtls-lab
	mkdir -p reports
	$(BIN)/mtls-lab demo --report reports/demo-$$(date +%Y%m%d-%H%M%S).html

lint: $(BIN)/mtls-lab
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m tests.support.typecheck

# The tests start mtls-lab in hundreds of processes: compile the package first, so that none of them
# compiles it again (where PYTHONDONTWRITEBYTECODE is set, no process would keep what it compiled).
test: lint
	$(BIN)/python -m compileall -q mtls_lab certs server caller
	$(BIN)/pytest

# docker-compose.yml in real containers (as root): starts its own Docker engine, see docs/compose.md
compose-test: $(BIN)/mtls-lab
	bash scripts/compose-test.sh

bench: $(BIN)/mtls-lab
	$(BIN)/python benchmarks/server_throughput.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info

# socialgrid — the two commands a fresh machine needs: `make demo` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000

.PHONY: demo test install lint format wasm bench clean constraints

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# constraints.txt pins every package to the versions the suite last passed with, so a fresh
# clone installs what was tested; `make constraints` takes the newest the ranges allow.
$(VENV)/.installed: pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

install: $(VENV)/.installed

## The whole platform on embedded defaults: http://127.0.0.1:$(PORT)/ (Ctrl-C stops it).
demo: install
	$(BIN)/python manage.py migrate --noinput
	PORT=$(PORT) $(BIN)/python manage.py seed_demo
	$(BIN)/python manage.py runplatform --port $(PORT)

## Every test level this machine supports (see scripts/test_levels.py).
test: lint
	$(BIN)/python scripts/test_levels.py $(ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python manage.py makemigrations --check --dry-run

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

wasm:
	compute/examples/wasm/build.sh

## The performance harness on PostgreSQL + Redis (bench/README.md); ARGS="--volunteers 500 ..."
bench: install
	$(BIN)/python -m bench.harness.run $(ARGS)

## Refresh constraints.txt from a new environment with the newest releases pyproject.toml allows.
constraints:
	rm -rf .venv-constraints
	$(PYTHON) -m venv .venv-constraints
	.venv-constraints/bin/pip install --quiet --upgrade pip
	.venv-constraints/bin/pip install --quiet -e '.[dev]'
	{ echo "# The versions the test suite last passed with; 'make constraints' refreshes them."; \
	  .venv-constraints/bin/pip freeze --exclude-editable | grep -v '^socialgrid'; } > constraints.txt
	rm -rf .venv-constraints

clean:
	rm -rf $(VENV) var staticfiles .pytest_cache .ruff_cache .hypothesis

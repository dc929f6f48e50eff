# The two commands a newcomer needs:
#   make demo   train the sentiment example into the local store and serve it
#   make test   install everything, start every service the tests need, run the suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install demo test lint unit format clean bench-image

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,azure]'
	touch $@

demo: install
	PATH="$(CURDIR)/$(BIN):$$PATH" scripts/demo.sh

lint: install
	$(BIN)/ruff check src tests examples
	$(BIN)/ruff format --check src tests examples
	$(BIN)/mypy

format: install
	$(BIN)/ruff check --fix src tests examples
	$(BIN)/ruff format src tests examples

# pytest exits 5 when it collected no test: make treats that as the failure it is.
test: lint
	scripts/run-tests.sh $(BIN)

unit: install
	$(BIN)/pytest tests/unit -q

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build dist

# Benchmarks are not part of `make test`; their numbers go into bench/README.md.
bench-image: install
	scripts/docker-engine.sh
	scripts/base-image.sh
	$(BIN)/python bench/image_bench.py shipml-test/python:3.11-slim

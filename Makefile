# The two commands a newcomer needs:
#   make demo   train the sentiment example into the local store and serve it
#   make test   install everything, start every service the tests need, run the suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install demo test lint unit format clean bench bench-image fuzz

install: $(STAMP)

# uv (scripts/uv.sh, installed into .tools/ on first use) makes the venv in seconds; pip
# stays inside it (--seed): `shipml build` downloads the image's wheels with it. Modules are
# compiled at install, as pip does: where PYTHONDONTWRITEBYTECODE is set, nothing imported
# later would ever be cached and every start would compile scikit-learn again.
UV := scripts/uv.sh
$(STAMP): pyproject.toml
	$(UV) venv --quiet --seed --allow-existing --python $(PYTHON) $(VENV)
	$(UV) pip install --quiet --compile-bytecode --python $(BIN)/python -e '.[dev,azure]'
	# XGBoost without NVIDIA's NCCL wheel (~200 MB, multi-GPU only); numpy and scipy,
	# its other dependencies, came with the dev extra.
	$(UV) pip install --quiet --compile-bytecode --python $(BIN)/python --no-deps 'xgboost>=2.1'
	touch $@

demo: install
	PATH="$(CURDIR)/$(BIN):$$PATH" scripts/demo.sh

lint: install
	$(BIN)/ruff check src tests examples bench
	$(BIN)/ruff format --check src tests examples bench
	$(BIN)/mypy

format: install
	$(BIN)/ruff check --fix src tests examples bench
	$(BIN)/ruff format src tests examples bench

# pytest exits 5 when it collected no test: make treats that as the failure it is.
# The services start while the project installs and lints (scripts/run-tests.sh).
test:
	scripts/run-tests.sh $(BIN) 'make --no-print-directory install' 'make --no-print-directory lint'

# xdist workers: the cores, at least 2 and at most 8 (scripts/run-tests.sh does the same).
# Bytecode is written (__pycache__, ignored by git and by shipml) even where the shell says
# PYTHONDONTWRITEBYTECODE: each worker and each process the tests start would otherwise
# compile the same modules again (scripts/run-tests.sh does the same).
WORKERS ?= $(shell n=$$(nproc); echo $$(( n < 2 ? 2 : (n > 8 ? 8 : n) )))
unit: install
	env -u PYTHONDONTWRITEBYTECODE $(BIN)/pytest tests/unit -q -n $(WORKERS) --dist loadgroup

# schemathesis against three served models, every phase and check (make test runs a
# shorter, seeded run): FUZZ_ARGS='--examples 1000 --seed 7' for more
FUZZ_ARGS ?=
fuzz: install
	$(BIN)/python -m tests.fuzz $(FUZZ_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build dist bench/.venvs bench/.work

# Benchmarks are not part of `make test`; their numbers go into bench/README.md.
# make bench                      the full sweep (~15 min; installs are cached in bench/.venvs)
# make bench BENCH_ARGS=--quick   a smoke sweep; see python -m bench.run --help for more
BENCH_ARGS  ?=
BENCH_STAMP := $(VENV)/.bench-installed

$(BENCH_STAMP): $(STAMP) pyproject.toml
	$(UV) pip install --quiet --compile-bytecode --python $(BIN)/python -e '.[dev,azure,bench]'
	touch $@

bench: $(BENCH_STAMP)
	command -v wrk >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq wrk; }
	$(BIN)/python -m bench.run $(BENCH_ARGS)

bench-image: install
	scripts/docker-engine.sh
	scripts/base-image.sh
	$(BIN)/python bench/image_bench.py shipml-test/python:3.11-slim

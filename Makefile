# Two commands on a fresh machine: `make demo` and `make test`. Everything else installs itself.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test test-slow lint docs bench bench-large clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,bench,docs]'
	touch $(STAMP)

## A local S3 server seeded with a sample deliverable, annotated, and the marker shown.
demo: install
	$(BIN)/python -m gos3matic.demo

## The test suite: unit tests and the real CLI against moto server and SeaweedFS.
test: install
	$(BIN)/python -m pytest

## Adds the tests marked slow (a real object over 5 GiB on SeaweedFS).
test-slow: install
	$(BIN)/python -m pytest --run-slow -m slow

lint: install
	$(BIN)/ruff check gos3matic tests benchmarks annotate_s3.py
	$(BIN)/ruff format --check gos3matic tests benchmarks annotate_s3.py
	$(BIN)/mypy

## The manual (docs/, mkdocs.yml) into site/; --strict: a broken link or a missing page fails.
## Options, exit codes and CI variables are generated from the program (docs/hooks/generated.py).
docs: install
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

## gos3matic side by side with s5cmd and aws-cli on a local SeaweedFS (N objects, default 2000,
## and LARGE for the loopback10k regime, default 10000): objects/s and client CPU per object.
bench: install
	$(BIN)/python benchmarks/bench.py $(if $(N),--objects $(N)) $(if $(LARGE),--large $(LARGE))

bench-large: install
	$(BIN)/python benchmarks/bench_large.py

clean:
	rm -rf $(VENV) build site *.egg-info .pytest_cache .mypy_cache .ruff_cache

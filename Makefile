# `make check` installs what the tests need (into the current Python) and runs every check.
PY ?= python3

.PHONY: install dev demo lint typecheck test check bench

install:
	$(PY) -m pip install -q -e .

dev:
	$(PY) -m pip install -q -e '.[dev]'

demo: install
	faregate serve --demo

lint:
	$(PY) -m ruff format --check .
	$(PY) -m ruff check .

typecheck:
	$(PY) -m mypy

test:
	$(PY) -m pytest -q

check: dev lint typecheck test

bench:
	$(PY) scripts/bench_routing.py

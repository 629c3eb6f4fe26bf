# `make check` installs what the tests need (into the current Python) and runs every check.
PY ?= python3

.PHONY: install dev browser demo lint typecheck test check bench

# An editable install compiles no bytecode (a wheel's install does): compile it, so a machine that sets
# PYTHONDONTWRITEBYTECODE does not compile every module at every start.
install:
	$(PY) -m pip install -q -e .
	$(PY) -m compileall -q src

dev:
	$(PY) -m pip install -q -e '.[dev]'
	$(PY) -m compileall -q src

demo: install
	faregate serve --demo

# The CORS browser test drives Debian's Chromium with Playwright (never `playwright install`: it downloads
# a browser build). Installed here when missing; without it that one test skips, or fails under CI=true.
browser:
	@test -x /usr/bin/chromium || (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium) \
		|| echo "warning: could not install chromium; the browser test will be skipped (failed under CI=true)"

lint:
	$(PY) -m ruff format --check .
	$(PY) -m ruff check .

typecheck:
	$(PY) -m mypy

test:
	$(PY) -m pytest -q

check: dev browser lint typecheck test

bench:
	$(PY) scripts/bench_routing.py

# The README's two commands: `make demo` and `make test`. Everything is installed from the project's
# own files (requirements*.txt, package-lock.json); nothing relies on a hand-installed tool.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench bench-moto install node clean

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

install: $(STAMP)

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch node_modules/.package-lock.json

node: node_modules/.package-lock.json

demo: install node
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) scripts/demo.py

test: install node
	$(PY) -m ruff check .
	$(PY) -m pytest

lint: install
	$(PY) -m ruff check .

# Every format against SAS's connector from a paced, ranged source (bench/ranged.py), then CSV->Parquet
# against other writers (bench/parquet.py). bench-moto: the older passthrough/gzip race on moto.
bench: install
	$(PY) -m bench.ranged
	$(PY) -m bench.conversion
	$(PY) -m bench.parquet

bench-moto: install
	$(PY) -m bench.run

clean:
	rm -rf $(VENV) node_modules .serverless .demo .bench .pytest_cache .ruff_cache

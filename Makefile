# The README's two commands: `make demo` and `make test`. Everything is installed from the project's
# own files (requirements*.txt, package-lock.json); nothing relies on a hand-installed tool.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# cfn-lint and checkov live apart: checkov's own pins (boto3, urllib3, ...) clash with the function's.
LINT_VENV := .venv-lint
LINT_STAMP := $(LINT_VENV)/.installed

.PHONY: demo fanout test unit lint lint-tools bench bench-moto install node clean

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

install: $(STAMP)

$(LINT_STAMP): requirements-lint.txt
	test -x $(LINT_VENV)/bin/python || $(PYTHON) -m venv $(LINT_VENV)
	$(LINT_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-lint.txt
	touch $(LINT_STAMP)

lint-tools: $(LINT_STAMP)

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch node_modules/.package-lock.json

node: node_modules/.package-lock.json

demo: install node
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) scripts/demo.py

# Fan-out, locally (README): a "large" audience through the packaged state machine (aws-local-stepfunctions),
# each Task state running our handler in a local Python process, against moto.
fanout: install node
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) scripts/fanout_local.py

# The suite runs cfn-lint and checkov on the packaged templates (tests/integration/package/test_template.py),
# once each.
test: install node lint-tools
	$(PY) -m ruff check .
	$(VENV)/bin/lint-imports
	$(PY) -m pytest

# The unit tests alone: no server, no process, no AWS (tests/unit/conftest.py guards it).
unit: install
	$(PY) -m pytest -q tests/unit

# ruff, then cfn-lint and checkov on the templates `serverless package` writes (no wheels: a few seconds).
lint: install node lint-tools
	$(PY) -m ruff check .
	$(VENV)/bin/lint-imports
	$(PY) -m pytest -q tests/integration/package/test_template.py -k linters

# Every format against SAS's connector from a paced, ranged source (bench/ranged.py), then CSV->Parquet
# against other writers (bench/parquet.py), then the fan-out's range workers against one function
# (bench/fanout.py). bench-moto: the older passthrough/gzip race on moto.
bench: install
	$(PY) -m bench.ranged
	$(PY) -m bench.wire
	$(PY) -m bench.conversion
	$(PY) -m bench.parquet
	$(PY) -m bench.fanout

bench-moto: install
	$(PY) -m bench.run

clean:
	rm -rf $(VENV) $(LINT_VENV) node_modules .serverless .demo .bench .pytest_cache .ruff_cache .import_linter_cache

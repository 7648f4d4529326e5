# caseledger — the two commands a new machine needs are `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PG_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test

.PHONY: run test bench lint install clean contracts

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,bench,lint]'
	touch $(STAMP)

install: $(STAMP)

# the pinned Solidity compiler and anvil (contracts/package-lock.json); re-installed when the lock changes
NODE_STAMP := contracts/node_modules/.installed

$(NODE_STAMP): contracts/package-lock.json
	cd contracts && npm ci --no-audit --no-fund --loglevel=error
	touch $(NODE_STAMP)

# recompile contracts/LedgerAnchor.sol into the committed contracts/build/LedgerAnchor.json
contracts: $(STAMP) $(NODE_STAMP)
	$(PY) -m contracts.compile

run: $(STAMP)
	$(VENV)/bin/caseledger serve --demo

test: $(STAMP) $(NODE_STAMP)
	command -v pdftoppm >/dev/null || (apt-get update -qq && apt-get install -y -qq poppler-utils)
	CASELEDGER_TEST_PG=$(PG_URL) $(PY) -m pytest -n 2 -q

bench: $(STAMP) $(NODE_STAMP)
	command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	CASELEDGER_TEST_PG=$(PG_URL) $(PY) bench/run.py $(BENCH_ARGS)
	CASELEDGER_TEST_PG=$(PG_URL) $(PY) bench/http_bench.py $(HTTP_BENCH_ARGS)
	$(PY) bench/anchor_bench.py $(ANCHOR_BENCH_ARGS)
	CASELEDGER_TEST_PG=$(PG_URL) $(PY) bench/documents_bench.py $(DOCUMENTS_BENCH_ARGS)
	$(PY) bench/export_bench.py $(EXPORT_BENCH_ARGS)
	$(PY) bench/export_pdf_bench.py $(EXPORT_PDF_BENCH_ARGS)
	$(PY) bench/bundle_bench.py $(BUNDLE_BENCH_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports
	@# STYLE §7: only the envelope module touches AES-GCM
	@! grep -rlE 'hazmat\.primitives\.ciphers|AESGCM' --include='*.py' verification ledger compliance api \
		| grep -v '^ledger/envelope.py$$' | grep . || (echo "AES-GCM imported outside ledger/envelope.py" >&2; false)

clean:
	rm -rf $(VENV) caseledger-data .pytest_cache .hypothesis build *.egg-info contracts/node_modules

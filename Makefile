# The README's commands: `make run` and `make test`. Everything else is a helper.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
TODAY  := $(shell date +%F)
DATA   ?= data
# A 16-19 college: the absence-text rule applies to 16-19 students (docs/messaging.md).
SAMPLE_SIZE ?= college

.PHONY: run test e2e bench lint sample dashboard clean-data docs

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

## Set everything up (virtualenv, install, today's sample college) and start the app.
run: $(STAMP) sample
	$(BIN)/schoolcomms --data-dir $(DATA) run

## Generate and load today's sample (a school day even at a weekend) unless already loaded.
sample: $(STAMP)
	@if [ "$$(cat $(DATA)/sample/DATE 2>/dev/null)" != "$(TODAY)" ]; then \
	  $(BIN)/schoolcomms --data-dir $(DATA) sample --size $(SAMPLE_SIZE) --date $(TODAY) --weekend-school-day --out $(DATA)/sample --load; \
	else echo "Sample data for $(TODAY) already loaded (delete $(DATA)/sample to regenerate)."; fi

## Run the whole test suite (the end-to-end browser tests are `make e2e`). The ops-store
## tests also run on a PostgreSQL server the tests start themselves (Debian's, installed
## when missing; see docs/operations.md).
test: $(STAMP)
	@bash scripts/install_postgres.sh || { echo "make test: the PostgreSQL server binaries are not available, so the [postgresql] ops-store tests cannot run (see above)." >&2; exit 1; }
	$(BIN)/python -m pytest -n 2 -q --ignore=tests/e2e

## End-to-end tests in headless Chromium (Debian's, installed when missing), timed.
e2e: $(STAMP)
	@bash scripts/install_chromium.sh || { echo "make e2e: Chromium is not available, so the end-to-end tests cannot run (see above)." >&2; exit 1; }
	@start=$$(date +%s); status=0; \
	$(BIN)/python -m pytest tests/e2e -p no:xdist -q || status=$$?; \
	echo "make e2e: the end-to-end tests took $$(( $$(date +%s) - start )) s (exit $$status)."; \
	exit $$status

## Benchmarks against their baselines, printed as a table.
bench: $(STAMP)
	$(BIN)/python -m benchmarks

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

## Regenerate the generated docs (extracts, settings, CLI) from the code.
docs: $(STAMP)
	$(BIN)/python -m schoolcomms.docs --write

# One command each on a fresh machine: every target creates .venv and installs the project first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Debian packages the tests and benchmarks use (PostgreSQL for the Postgres store's tests,
# Chromium for the browser tests), installed with apt-get when missing (needs root, as on CI).
SYSTEM_PACKAGES := postgresql chromium nodejs npm curl openssl
# The VS Code package's npm dependencies (its language client, and VS Code's TextMate engine for
# the tests), installed from its package-lock.json.
EDITOR_PACKAGES := editors/vscode/node_modules/.package-lock.json

.PHONY: demo test lint bench clean system-packages editor-packages screenshots

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/flowlang validate flows/ -d examples/deployment.yaml
	$(BIN)/flowlang fmt --check flows/
	$(BIN)/flowlang dry-run flows/messaging.flow --deployment examples/deployment.yaml --messages examples/messages.yaml --allow-blocked
	$(BIN)/flowlang dry-run flows/messaging.flow --deployment examples/deployment.yaml --messages examples/webhooks.yaml
	$(BIN)/flowlang dry-run flows/social.flow --deployment examples/deployment.yaml --messages examples/social_webhooks.yaml
	$(BIN)/flowlang test flows/tests/
	$(BIN)/flowlang simulate examples/simulation.yaml --deployment examples/deployment.yaml --plot queue-length.svg
	rm -f demo.sqlite
	$(BIN)/flowlang dry-run flows/messaging.flow --deployment examples/deployment.yaml --messages examples/messages.yaml --allow-blocked --store demo.sqlite > /dev/null
	$(BIN)/flowlang dry-run flows/social.flow --deployment examples/deployment.yaml --messages examples/social.yaml --store demo.sqlite > /dev/null
	$(BIN)/flowlang report queues --store demo.sqlite --deployment examples/deployment.yaml
	$(BIN)/flowlang report agents --store demo.sqlite --media message
	$(BIN)/flowlang report all --store demo.sqlite --deployment examples/deployment.yaml --format html -o report.html

system-packages:
	scripts/ensure-system-packages $(SYSTEM_PACKAGES)

$(EDITOR_PACKAGES): editors/vscode/package-lock.json | system-packages
	@if command -v npm > /dev/null; then cd editors/vscode && npm ci --no-audit --no-fund; \
	else echo "npm is missing: the VS Code package's tests skip (and fail under CI)" >&2; fi

editor-packages: $(EDITOR_PACKAGES)

test: $(STAMP) system-packages editor-packages
	$(BIN)/python -m pytest -n auto

# The browser tests write their screenshots to out/screenshots/; this refreshes the ones the
# docs show (docs/workspace.md).
screenshots: $(STAMP) system-packages editor-packages
	FLOWLANG_SCREENSHOTS=$(CURDIR)/docs/screenshots $(BIN)/python -m pytest tests/browser tests/editors -q

lint: $(STAMP)
	$(BIN)/ruff check flowlang tests benchmarks examples
	$(BIN)/ruff format --check flowlang tests benchmarks examples
	$(BIN)/mypy flowlang
	$(BIN)/mypy tests benchmarks

bench: $(STAMP) system-packages
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache editors/vscode/node_modules

# `make demo` and `make test` each build .venv/ from nothing (python3, make and git are all they need).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck unit bench clean lock chromium

$(STAMP): requirements-dev.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

# The softphone's one front-end dependency (@twilio/voice-sdk), exactly as package-lock.json pins it; the bridge
# serves its dist file. npm comes from Debian when it is missing and we are root.
SDK := node_modules/@twilio/voice-sdk/dist/twilio.min.js
$(SDK): package.json package-lock.json
	@command -v npm >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm; } || \
	  { echo "make: npm is needed to install @twilio/voice-sdk (apt-get install npm)" >&2; exit 1; }
	npm ci --no-audit --no-fund
	touch $(SDK)

# The browser tests drive Debian's chromium (never a browser downloaded by Playwright). Installed when we are
# root and it is missing; otherwise the tests skip locally and fail under CI=true.
chromium:
	@if [ ! -x /usr/bin/chromium ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; fi
	@[ -x /usr/bin/chromium ] || echo "make: no /usr/bin/chromium: the browser tests will skip (fail under CI=true)"

demo: $(STAMP) $(SDK)
	$(BIN)/bridge demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pylint --disable=all --enable=duplicate-code --score=n bridge webhooks schemas

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP) $(SDK) chromium
	$(BIN)/pytest --cov --cov-report=term

test: lint typecheck unit

bench: $(STAMP)
	$(BIN)/python -m bench $(BENCH_ARGS)

# Re-pin every dependency: runtime (deployments) and runtime + dev (make test).
lock: $(STAMP)
	$(BIN)/python -m pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml --python-version 3.11 --no-header -o requirements.lock
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 --no-header -o requirements-dev.lock

clean:
	rm -rf $(VENV) node_modules test-artifacts .mypy_cache .pytest_cache .ruff_cache .coverage

# `make run` brings up the whole service here; `make key EMAIL=...` issues an API key on
# it; `make test` runs the suite. Each installs what is missing first: Debian packages
# (as root), then the virtualenv. Running needs only the package (`pip install -e .`) and
# `scripts/ensure-system.sh run`; the tests add the dev extras and `... test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
RUN_STAMP := $(VENV)/.installed-run
PORT ?= 8080
WORKERS ?= 1
STATE ?= .state
EMAIL ?=
NAME ?= make-key
SAMPLE_URL ?= https://webcast.tiktok.com/webcast/im/fetch/?aid=1988&app_name=tiktok_web&device_platform=web_pc&browser_name=Mozilla&browser_platform=Win32&os=windows&screen_width=1920&screen_height=1080&room_id=7312345678901234567

.PHONY: all system system-run venv venv-run test lint typecheck unit run key sign bench clean

all: test

system:
	@scripts/ensure-system.sh test

system-run:
	@scripts/ensure-system.sh run

# What the service needs to run, nothing more: no linters, no test tools.
# A virtualenv with the dev extras (`make test`) up to date already holds it all.
$(RUN_STAMP): pyproject.toml | system-run
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@if [ ! -f $(STAMP) ] || [ pyproject.toml -nt $(STAMP) ]; then \
	  $(BIN)/python -m pip install -q --upgrade pip && $(BIN)/python -m pip install -q -e .; \
	fi
	@touch $(RUN_STAMP)

$(STAMP): pyproject.toml | system
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP)

venv-run: $(RUN_STAMP)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: venv
	$(BIN)/mypy

NODE_CLIENTS := tests/clients/node

$(NODE_CLIENTS)/node_modules/.installed: $(NODE_CLIENTS)/package-lock.json | system
	cd $(NODE_CLIENTS) && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# axe-core, which tests/console/test_accessibility.py injects into each console page.
NODE_CONSOLE := tests/console/node

$(NODE_CONSOLE)/node_modules/.installed: $(NODE_CONSOLE)/package-lock.json | system
	cd $(NODE_CONSOLE) && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

unit: venv system $(NODE_CLIENTS)/node_modules/.installed $(NODE_CONSOLE)/node_modules/.installed
	$(BIN)/pytest -q

test: lint typecheck unit

run: venv-run system-run
	$(BIN)/signer up --port $(PORT) --workers $(WORKERS) --state '$(STATE)'

# On the running `make run`: adds the user (tier api_key) unless there, prints a new key.
# (The virtualenv only once EMAIL is given: a usage mistake installs nothing.)
key: $(if $(EMAIL),venv-run)
	@test -n '$(EMAIL)' || { echo "usage: make key EMAIL=you@example.com [NAME=laptop]" >&2; exit 2; }
	@$(BIN)/signer users create '$(EMAIL)' --tier api_key --if-missing --state '$(STATE)' >/dev/null
	@$(BIN)/signer keys create --user '$(EMAIL)' --name '$(NAME)' --state '$(STATE)'

sign: venv-run system-run
	$(BIN)/signer sign '$(SAMPLE_URL)' --json

bench: venv system
	$(BIN)/python bench/sign_bench.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .hypothesis

# `make run` brings up the whole service here; `make test` runs the suite.
# Both install what is missing first: Debian packages (as root), then the virtualenv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PORT ?= 8080
WORKERS ?= 1
SAMPLE_URL ?= https://webcast.tiktok.com/webcast/im/fetch/?aid=1988&app_name=tiktok_web&device_platform=web_pc&browser_name=Mozilla&browser_platform=Win32&os=windows&screen_width=1920&screen_height=1080&room_id=7312345678901234567

.PHONY: all system venv test lint typecheck unit run sign bench clean

all: test

system:
	@scripts/ensure-system.sh

$(STAMP): pyproject.toml | system
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: venv
	$(BIN)/mypy

NODE_CLIENTS := tests/clients/node

$(NODE_CLIENTS)/node_modules/.installed: $(NODE_CLIENTS)/package-lock.json | system
	cd $(NODE_CLIENTS) && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

unit: venv system $(NODE_CLIENTS)/node_modules/.installed
	$(BIN)/pytest -q

test: lint typecheck unit

run: venv system
	$(BIN)/signer up --port $(PORT) --workers $(WORKERS)

sign: venv system
	$(BIN)/signer sign '$(SAMPLE_URL)' --json

bench: venv system
	$(BIN)/python bench/sign_bench.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .hypothesis

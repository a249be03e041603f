# Chronos — every target documents itself: `make help`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
CHRONOS := $(VENV)/bin/chronos
export CHRONOS_DATA_DIR ?= $(CURDIR)/data

.PHONY: help install demo test test-fast lint typecheck bench dev api clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml requirements.txt
	# Browser tests drive Debian's Chromium (Playwright's own browser download is not used).
	@command -v chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq chromium; }
	$(PYTHON) -m venv $(VENV)
	# torch first: 2.13.0 resolves to the CPU wheel on disk; anything else pulls CUDA.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $@

install: $(VENV)/.installed ## create .venv with everything pinned in requirements.txt

demo: install ## ingest the sample lecture end to end, ask it three questions, print costs
	$(CHRONOS) demo

test: install ## run the whole test suite (PostgreSQL tests skip unless a server answers)
	$(PY) -m pytest

lint: install ## ruff
	$(VENV)/bin/ruff check chronos_pipeline chronos_api tests benchmarks scripts

typecheck: install ## mypy (strict) on the packages
	$(VENV)/bin/mypy

bench: install ## every benchmark: ingest, daemon ingest (per executor), simultaneous uploads, re-embedding backfill, retrieval, trust, providers, dashboard, ledger scale, vector scale, playback, pages, chat load (30-minute lecture; needs espeak-ng, ffmpeg)
	@command -v espeak-ng >/dev/null || { apt-get update -qq && apt-get install -y -qq espeak-ng; }
	@command -v ffmpeg >/dev/null || { apt-get update -qq && apt-get install -y -qq ffmpeg; }
	$(PY) -m benchmarks.ingest
	$(PY) -m benchmarks.daemon_ingest
	$(PY) -m benchmarks.reembed_backfill
	$(PY) -m benchmarks.retrieval
	$(PY) -m benchmarks.trust
	$(PY) -m benchmarks.providers
	$(PY) -m benchmarks.dashboard
	$(PY) -m benchmarks.ledger_scale
	$(PY) -m benchmarks.vectors_scale
	$(PY) -m benchmarks.spend_reservations
	$(PY) -m benchmarks.playback
	$(PY) -m benchmarks.pages
	$(PY) -m benchmarks.chat_load
	$(PY) -m benchmarks.simultaneous_uploads

dev: install ## the Dagster UI and daemon on this data directory (http://127.0.0.1:3000)
	$(CHRONOS) dev

api: install ## serve the HTTP API (http://127.0.0.1:8000/schema)
	$(CHRONOS) serve

clean: ## remove the data directory (all local state)
	rm -rf "$(CHRONOS_DATA_DIR)"

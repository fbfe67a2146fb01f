# ExportHub: `make run` starts the hub with demo data, `make test` runs the whole suite.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help install run test lint format bench bench-node bench-smoke clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP) ## create .venv and install the project with its dev tools

run: $(STAMP) ## start web server + worker with demo data (embedded PostgreSQL/Redis unless DATABASE_URL/REDIS_URL)
	$(BIN)/exporthub dev

test: $(STAMP) ## run the whole test suite (real PostgreSQL and Redis; embedded ones unless the URLs are set)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP) ## ruff lint and format check, mypy, the import layers (import-linter)
	$(BIN)/ruff check backend tests bench
	$(BIN)/ruff format --check backend tests bench
	$(BIN)/mypy backend/exporthub
	$(BIN)/lint-imports  # the layers: [tool.importlinter] in pyproject.toml

format: $(STAMP) ## apply ruff's fixes and formatting
	$(BIN)/ruff check --fix backend tests bench
	$(BIN)/ruff format backend tests bench

BENCH_STAMP := $(VENV)/.bench-installed
$(BENCH_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	touch $(BENCH_STAMP)

# The seed's Node exporter (bench/node/node_sql.js) runs beside ExportHub: its pinned packages, once.
NODE_STAMP := bench/node/node_modules/.installed
$(NODE_STAMP): bench/node/package.json bench/node/package-lock.json
	cd bench/node && npm ci --no-audit --no-fund --loglevel=error
	touch $(NODE_STAMP)

bench-node: $(NODE_STAMP) ## install the Node reference exporter's packages (npm ci into bench/node/node_modules)

bench: $(BENCH_STAMP) $(NODE_STAMP) ## benchmarks (exports, 2 workers, WebSocket fan-out, API load) -> bench/results/; about 8 min
	@command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && apt-get install -y -q wrk >/dev/null; } \
		|| echo "wrk not found (apt-get install wrk): the API load uses the slower asyncio generator"
	$(BIN)/python -m bench.run $(BENCH_ARGS)

bench-smoke: $(STAMP) ## the benchmarks, tiny, as CI runs them (checks the result files, not the numbers)
	$(BIN)/python -m pytest tests/integration/test_bench_smoke.py $(PYTEST_ARGS)

clean: ## remove the virtualenv, caches and the embedded servers' data
	rm -rf $(VENV) .data .pytest_cache .ruff_cache .mypy_cache test-artifacts

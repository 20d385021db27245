.DEFAULT_GOAL := help
PY ?= python3

.PHONY: help
help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

.PHONY: build-dev
build-dev: ## build the extension (release profile) and install the package editable
	$(PY) -m pip install -q --no-build-isolation -e .

.PHONY: test
test: ## Rust unit tests and the pytest suite
	cargo test -q
	$(PY) -m pytest -q

.PHONY: lint
lint: ## fmt, clippy (with and without the python feature), ruff, mypy, stubtest
	cargo fmt --check
	cargo clippy --all-targets -- -D warnings
	cargo clippy --all-targets --features python -- -D warnings
	$(PY) -m ruff check python tests benchmarks fuzz
	$(PY) -m ruff format --check python tests benchmarks fuzz
	$(PY) -m mypy --strict python/proxyproto_rs tests/typing/check_api.py
	$(PY) -m mypy.stubtest proxyproto_rs._core --allowlist tests/stubtest-allowlist.txt

.PHONY: fuzz
fuzz: ## run every fuzz target FUZZ_TIME s (default 60) and merge new coverage into fuzz/corpus
	fuzz/run.sh -t $(or $(FUZZ_TIME),60)

.PHONY: bench
bench: ## side-by-side benchmarks against the peers (pip install '.[bench]' first)
	$(PY) benchmarks/bench.py
	$(PY) benchmarks/memory.py
	$(PY) benchmarks/bench_aio.py

.PHONY: ci
ci: ## what CI runs: install everything, lint, fuzz smoke, the whole test suite
	bash .ci/run

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
lint: ## fmt, clippy (with and without the python feature), ruff, mypy, stubtest, actionlint
	cargo fmt --check
	cargo clippy --all-targets -- -D warnings
	cargo clippy --all-targets --features python -- -D warnings
	$(PY) -m ruff check python tests benchmarks fuzz
	$(PY) -m ruff format --check python tests benchmarks fuzz
	$(PY) -m mypy --strict python/proxyproto_rs tests/typing/check_api.py
	$(PY) -m mypy.stubtest proxyproto_rs._core --allowlist tests/stubtest-allowlist.txt
	actionlint -no-color

# The Linux wheel users install: abi3 (one wheel for CPython >= 3.11), manylinux_2_17 (glibc
# 2.17, what manylinux2014 means), linked through zig so no old-glibc container is needed.
# Tools: pip install '.[release]' into $(PY)'s environment (.ci/run does it in a venv).
WHEEL_TARGET ?= x86_64-unknown-linux-gnu
WHEEL_TAG ?= manylinux_2_17_x86_64

.PHONY: wheel
wheel: ## manylinux_2_17 abi3 wheel in dist/ (maturin + zig), checked by auditwheel
	rm -f dist/proxyproto_rs-*$(WHEEL_TAG)*.whl
	CARGO_ZIGBUILD_PYTHON_PATH="$(PY)" $(PY) -m maturin build --release --zig \
		--compatibility manylinux2014 --target $(WHEEL_TARGET) --out dist
	@# auditwheel reads the symbol versions the extension needs; fail unless they fit the tag.
	$(PY) -m auditwheel show dist/proxyproto_rs-*$(WHEEL_TAG)*.whl | tee dist/auditwheel.txt
	@tr -s ' \n' ' ' < dist/auditwheel.txt | grep -q 'consistent with the following platform tag: "$(WHEEL_TAG)"' \
		|| { echo "wheel: auditwheel does not report $(WHEEL_TAG)" >&2; exit 1; }

.PHONY: sdist
sdist: ## source distribution in dist/ (maturin sdist), its contents listed
	rm -f dist/proxyproto_rs-*.tar.gz
	$(PY) -m maturin sdist --out dist
	tar -tzf dist/proxyproto_rs-*.tar.gz

.PHONY: fuzz
fuzz: ## run every fuzz target FUZZ_TIME s (default 60) and merge new coverage into fuzz/corpus
	fuzz/run.sh -t $(or $(FUZZ_TIME),60)

.PHONY: bench
bench: ## side-by-side benchmarks against the peers (pip install '.[bench]' first)
	$(PY) benchmarks/bench.py
	$(PY) benchmarks/memory.py
	$(PY) benchmarks/bench_aio.py

.PHONY: ci
ci: ## what CI runs: wheel and sdist into fresh venvs, lint, fuzz smoke, the suite on the wheel
	bash .ci/run

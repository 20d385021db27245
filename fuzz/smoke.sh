#!/usr/bin/env bash
# CI smoke: build every fuzz target and run each cargo-fuzz target and atheris harness for a
# few seconds on the committed corpus (which is replayed too). Under 2 minutes including the
# build on the 2-core machine; installs what it needs itself, idempotently.
#
#   fuzz/smoke.sh [SECONDS_PER_TARGET]        (default 3)
#
# To stay fast and need nothing beyond crates.io and PyPI:
# - the cargo-fuzz targets are built with plain `cargo build` and the flags
#   `cargo fuzz build -s none` passes (so cargo-fuzz itself need not be installed), except
#   -Ccodegen-units=1, which only slows the build down;
# - the atheris harnesses run in a venv that sees the system site-packages, i.e. the
#   proxyproto_rs already built for the tests (`make build-dev`), uninstrumented: the smoke
#   checks the harnesses' invariants, not Rust coverage (fuzz/run.sh does that). If no
#   proxyproto_rs is importable, the instrumented wheel is built instead (slower).
# New inputs found here are thrown away: the corpus changes only through fuzz/run.sh.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"
secs="${1:-3}"
start=$(date +%s)
# shellcheck source=fuzz/tools.sh
source "$here/tools.sh"
triple=x86_64-unknown-linux-gnu
bins="${CARGO_TARGET_DIR:-target}/$triple/release"
smoke_venv="${FUZZ_SMOKE_VENV:-/tmp/proxyproto-fuzz-smoke-venv}"

(
    RUSTFLAGS="$SANCOV_RUSTFLAGS -Cllvm-args=-simplifycfg-branch-fold-threshold=0 \
-Cllvm-args=-sanitizer-coverage-stack-depth" \
        cargo build --quiet --release --bins --target "$triple" --manifest-path Cargo.toml
) &
build_pid=$!
if "$PY" -c "import proxyproto_rs" >/dev/null 2>&1; then
    if [ ! -x "$smoke_venv/bin/pip" ]; then
        rm -rf "$smoke_venv"
        "$PY" -m venv --system-site-packages "$smoke_venv"
    fi
    # -P: from fuzz/, the harness folder atheris/ would pass for the package.
    if ! "$smoke_venv/bin/python" -P -c "import atheris" >/dev/null 2>&1; then
        "$smoke_venv/bin/pip" install --quiet --disable-pip-version-check atheris
        "$smoke_venv/bin/python" -P -c "import atheris"  # fail here, loudly, if it did not work
    fi
    py="$smoke_venv/bin/python"
else
    build_atheris_ext
    py="$FUZZ_VENV/bin/python"
fi
wait "$build_pid"
echo "smoke: built in $(( $(date +%s) - start ))s"

failed=0
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
run() {
    local t="$1"; shift
    mkdir -p "$work/$t" "$work/artifacts"
    local log="$work/$t.log"
    local seeds=("corpus/$t")
    [[ "$t" != py_* ]] || seeds+=("corpus/$(atheris_seed "$t")")
    if "$@" -max_total_time="$secs" -max_len=4096 -print_final_stats=1 \
        -artifact_prefix="$work/artifacts/$t-" "$work/$t" "${seeds[@]}" >"$log" 2>&1; then
        echo "smoke: $t ok, $(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | grep -o '[0-9]*$') runs"
    else
        echo "smoke: $t FAILED"; tail -n 40 "$log"; failed=1
        cp "$work"/artifacts/"$t"-* "$here/artifacts/" 2>/dev/null || true
    fi
}
mkdir -p "$here/artifacts"
for t in parse split_feed roundtrip crc32c spp; do
    run "$t" "$bins/$t"
done
for t in py_parse py_parser py_build py_aio; do
    mkdir -p "corpus/$t"  # empty until fuzz/run.sh merges what it finds
    run "$t" "$py" "atheris/$t.py"
done
echo "smoke: done in $(( $(date +%s) - start ))s"
exit "$failed"

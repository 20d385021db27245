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
# - the atheris harnesses run on the proxyproto_rs that the interpreter $PY (default python3;
#   a venv's python works too) imports, uninstrumented: the smoke checks the harnesses'
#   invariants, not Rust coverage (fuzz/run.sh does that). atheris lives in a venv of its own
#   made from $PY, which also sees every site directory $PY sees (a .pth file adds them), so
#   neither $PY's environment nor the package under test is touched. If $PY cannot import
#   proxyproto_rs, the instrumented wheel is built instead (slower).
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
    # Same interpreter version as $PY or a fresh venv (atheris is a compiled extension).
    if [ ! -x "$smoke_venv/bin/pip" ] || [ "$("$smoke_venv/bin/python" -c 'import sys; print(sys.version)')" \
        != "$("$PY" -c 'import sys; print(sys.version)')" ]; then
        rm -rf "$smoke_venv"
        "$PY" -m venv "$smoke_venv"
    fi
    # A venv made from a venv's python is based on the base interpreter and would not see
    # $PY's packages: hand it $PY's site directories (with their .pth files: editable installs).
    "$PY" -c '
import sys, sysconfig
std = {sysconfig.get_path("stdlib"), sysconfig.get_path("platstdlib")}
dirs = [p for p in sys.path
        if p and p not in std and not p.endswith((".zip", "lib-dynload"))]
print("import site; " + "; ".join(f"site.addsitedir({d!r})" for d in dirs))
' >"$("$smoke_venv/bin/python" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')/_proxyproto_smoke_py.pth"
    # Fail here, loudly, rather than in every harness.
    "$smoke_venv/bin/python" -P -c "import proxyproto_rs" || {
        echo "smoke: the atheris venv cannot import the proxyproto_rs of $PY" >&2
        kill "$build_pid"; exit 1; }
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
for t in py_parse py_parser py_build py_aio py_spp; do
    mkdir -p "corpus/$t"  # empty until fuzz/run.sh merges what it finds
    run "$t" "$py" "atheris/$t.py"
done
echo "smoke: done in $(( $(date +%s) - start ))s"
exit "$failed"

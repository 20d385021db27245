#!/usr/bin/env bash
# Coverage with and without the sanitizer-coverage build of the extension, same budget:
#
#   fuzz/compare_atheris.sh [SECONDS] [HARNESS]      (default 120 s, py_parse)
#
# Runs HARNESS from an empty corpus for SECONDS against (a) the instrumented extension
# ($FUZZ_VENV) and (b) a plain release build ($FUZZ_VENV-plain), then replays both resulting
# corpora through the instrumented build with -runs=0, so both are counted in the same
# units: libFuzzer's "cov" (edges: Python bytecode edges plus, when instrumented, Rust).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"
secs="${1:-120}"
h="${2:-py_parse}"
# shellcheck source=fuzz/tools.sh
source "$here/tools.sh"
build_atheris_ext
build_atheris_ext plain
work="$(mktemp -d)"
for kind in sancov plain; do
    venv="$FUZZ_VENV"
    [ "$kind" = sancov ] || venv="$FUZZ_VENV-plain"
    mkdir -p "$work/$kind"
    "$venv/bin/python" "atheris/$h.py" -max_total_time="$secs" -max_len=4096 \
        -print_final_stats=1 "$work/$kind" >"$work/$kind.log" 2>&1 || true
    during="$(grep -E 'DONE' "$work/$kind.log" | grep -o 'cov: [0-9]*' | tail -1 || true)"
    runs="$(grep -oE '^#[0-9]+' "$work/$kind.log" | tail -1 || true)"
    "$FUZZ_VENV/bin/python" "atheris/$h.py" -runs=0 "$work/$kind" >"$work/$kind.replay.log" 2>&1 \
        || true
    replay="$(grep -E 'INITED|DONE' "$work/$kind.replay.log" | grep -o 'cov: [0-9]*' | tail -1 \
        || true)"
    funcs="$(grep -c 'NEW_FUNC.*proxyproto_rs\|NEW_FUNC.*pyo3' "$work/$kind.log" || true)"
    echo "$h $kind: ${secs}s, ${runs#\#} runs, $(find "$work/$kind" -type f | wc -l) inputs;" \
        "during the run $during; corpus replayed on the instrumented build $replay;" \
        "new Rust functions reported: $funcs"
done
echo "logs: $work"

#!/usr/bin/env bash
# Prove .clusterfuzzlite/build.sh without a container: run it here with the variables
# ClusterFuzzLite / OSS-Fuzz set, pointed at temporary folders, then run every fuzzer it
# produced for RUNS executions on its own seed corpus, as the service's runner would.
#
#   fuzz/oss-fuzz/prove-build.sh [RUNS]        (default 100000; PROVE_DIR=... keeps the tree)
#
# Where this machine differs from the builder image, the difference is emulated, not hidden:
#   - CC/CXX are gcc/g++ when clang is absent (build.sh compiles no C of ours; libFuzzer's
#     C++ is compiled by libfuzzer-sys with $CXX, as cargo-fuzz does anywhere);
#   - the image's Rust toolchain is nightly; on stable, RUSTC_BOOTSTRAP=1 lets rustc take
#     cargo-fuzz's -Zsanitizer=address (fuzz/README.md);
#   - `compile_python_fuzzer` (PyInstaller in the image) is replaced by a shim writing the
#     same wrapper ($OUT/<harness>, preloading $OUT/sanitizer_with_fuzzer.so) around the
#     harness run by a venv's Python that has atheris and maturin, like the image's pip.
# Needs cargo-fuzz (fuzz/tools.sh installs it) and PyPI access for the venv. Prints one
# line per fuzzer: executions, seconds, exec/s, coverage, and OK or CRASH; exits 1 on a crash.
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
runs="${1:-100000}"
base="${PROVE_DIR:-$(mktemp -d /tmp/proxyproto-cflite.XXXXXX)}"
# shellcheck source=fuzz/tools.sh
source "$repo/fuzz/tools.sh"
ensure_cargo_fuzz

export SRC="$base/src" OUT="$base/out" WORK="$base/work"
rm -rf "$OUT" && mkdir -p "$SRC" "$OUT" "$WORK" "$base/bin" "$base/logs"
ln -sfn "$repo" "$SRC/proxyproto_rs"
export SANITIZER="${SANITIZER:-address}" FUZZING_ENGINE=libfuzzer ARCHITECTURE=x86_64
export FUZZING_LANGUAGE=rust LIB_FUZZING_ENGINE="-fsanitize=fuzzer"
if command -v clang >/dev/null; then export CC=clang CXX=clang++; else export CC=gcc CXX=g++; fi
export CFLAGS="-O1 -fno-omit-frame-pointer -g -fsanitize=$SANITIZER"
export CXXFLAGS="$CFLAGS"
export RUSTFLAGS="--cfg fuzzing -Cdebug-assertions -Cforce-frame-pointers"
export RUSTC_BOOTSTRAP=1

venv="$base/venv"
[ -x "$venv/bin/python" ] || "${PY:-python3}" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "atheris==3.0.0" \
    "maturin>=1.5,<2"
cat >"$base/bin/compile_python_fuzzer" <<SHIM
#!/bin/sh
# Shim of OSS-Fuzz's compile_python_fuzzer: same wrapper, the venv's Python for PyInstaller.
set -eu
harness="\$1"; name=\$(basename "\$harness" .py)
mkdir -p "\$OUT/\$name.pkg"
cp "\$harness" "\$(dirname "\$harness")/_common.py" "\$OUT/\$name.pkg/"
cat >"\$OUT/\$name" <<WRAP
#!/bin/sh
# LLVMFuzzerTestOneInput for fuzzer detection.
this_dir=\\\$(dirname "\\\$0")
LD_PRELOAD=\\\$this_dir/sanitizer_with_fuzzer.so \\\\
ASAN_OPTIONS=\\\$ASAN_OPTIONS:detect_leaks=0 \\\\
exec $venv/bin/python "\\\$this_dir/\$name.pkg/\$name.py" "\\\$@"
WRAP
chmod +x "\$OUT/\$name"
SHIM
chmod +x "$base/bin/compile_python_fuzzer"
export PATH="$base/bin:$venv/bin:$PATH"

start=$(date +%s)
bash -eu "$repo/.clusterfuzzlite/build.sh" >"$base/logs/build.log" 2>&1 || {
    tail -n 40 "$base/logs/build.log"; exit 1; }
echo "build.sh: $(( $(date +%s) - start )) s, \$OUT=$OUT"
ls -l "$OUT"

failed=0
for fuzzer in "$OUT"/*; do
    name=$(basename "$fuzzer")
    [ -f "$fuzzer" ] && [ -x "$fuzzer" ] || continue
    case "$name" in *.so | *.zip | *.options) continue ;; esac
    corpus="$WORK/corpus-$name"
    rm -rf "$corpus" && mkdir -p "$corpus"
    (cd "$corpus" && python3 -m zipfile -e "$OUT/${name}_seed_corpus.zip" .)
    seeds=$(find "$corpus" -type f | wc -l)
    log="$base/logs/$name.log"
    t0=$(date +%s.%N)
    if ASAN_OPTIONS="${ASAN_OPTIONS:-}" "$fuzzer" -runs="$runs" -max_len=4096 \
        -print_final_stats=1 -artifact_prefix="$WORK/crash-$name-" "$corpus" >"$log" 2>&1; then
        status=OK
    else
        status=CRASH; failed=1
    fi
    secs=$(python3 -c "import time; print(round(time.time() - $t0, 1))")
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
    rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
    cov=$(grep -E '^#[0-9]+' "$log" | grep -o 'cov: [0-9]*' | tail -1 || true)
    echo "$name: $status, $execs runs in $secs s ($rate exec/s), $cov, $seeds seeds (log: $log)"
    [ "$status" = OK ] || tail -n 30 "$log"
done
exit "$failed"

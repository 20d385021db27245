#!/bin/bash -eu
# ClusterFuzzLite / OSS-Fuzz build script: every fuzz target of proxyproto_rs into $OUT.
#
# What it builds, with the layout the service expects ($OUT/<name> executables, each with
# <name>_seed_corpus.zip and <name>.options beside it):
#   - every cargo-fuzz target of fuzz/Cargo.toml ([[bin]] entries), by `cargo fuzz build`
#     with the sanitizer the service asks for ($SANITIZER; cargo-fuzz passes it to rustc as
#     -Zsanitizer, so the Rust core is instrumented the way the run expects);
#   - every atheris harness fuzz/atheris/py_*.py, packed by the service's
#     `compile_python_fuzzer`, against a proxyproto_rs wheel built here with the
#     sanitizer-coverage flags cargo-fuzz uses, so libFuzzer inside atheris sees the Rust
#     core's edges (fuzz/README.md, "Atheris with Rust coverage").
# Seeds are the committed corpus: fuzz/corpus/<target>/ for a cargo-fuzz target; for an
# atheris harness its own corpus plus the cargo-fuzz corpus whose input format it reads
# (atheris_seed in fuzz/tools.sh: py_parse <- parse, py_build <- roundtrip, ...).
#
# Variables the service sets and this script reads: SRC, OUT, WORK, SANITIZER, RUSTFLAGS,
# CC, CXX (libFuzzer's C++ is compiled by cargo with $CXX). CFLAGS/CXXFLAGS carry the
# service's C sanitizer flags: nothing here is C but libFuzzer itself, which cargo-fuzz
# builds uninstrumented everywhere else, so they are kept away from it.
# fuzz/oss-fuzz/prove-build.sh runs this script outside a container with those variables
# pointed at temporary folders.

repo="${PROXYPROTO_SRC:-$SRC/proxyproto_rs}"
triple=x86_64-unknown-linux-gnu
cd "$repo/fuzz"

# -- cargo-fuzz targets ---------------------------------------------------------------------
case "$SANITIZER" in
    address | memory | thread) cargo_sanitizer="$SANITIZER" ;;
    *) cargo_sanitizer=none ;;  # undefined, coverage, introspector: no Rust runtime for them
esac
rust_targets=$(cargo fuzz list)
env -u CFLAGS -u CXXFLAGS cargo fuzz build --release --debug-assertions \
    --sanitizer "$cargo_sanitizer" --target "$triple"
for target in $rust_targets; do
    cp "target/$triple/release/$target" "$OUT/$target"
done

# -- atheris harnesses ----------------------------------------------------------------------
# The flags cargo-fuzz gives its targets (fuzz/tools.sh, SANCOV_RUSTFLAGS). --target keeps
# them off build scripts and proc macros, which link no libFuzzer.
sancov="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions"
wheels="$WORK/proxyproto-wheels"
rm -rf "$wheels"
(
    cd "$repo"
    env -u CFLAGS -u CXXFLAGS RUSTFLAGS="${RUSTFLAGS:-} $sancov" \
        CARGO_TARGET_DIR="$WORK/proxyproto-atheris-target" \
        maturin build --release --target "$triple" -i python3 -o "$wheels"
)
python3 -m pip install --no-deps --force-reinstall "$wheels"/proxyproto_rs-*.whl

# The wrapper compile_python_fuzzer writes preloads $OUT/sanitizer_with_fuzzer.so (libFuzzer
# plus the sanitizer runtime): the instrumented extension needs libFuzzer's __sanitizer_cov_*
# symbols at import. Take the atheris build matching $SANITIZER if the image left none.
if [ ! -e "$OUT/sanitizer_with_fuzzer.so" ]; then
    atheris_libs=$(python3 -c 'import atheris; print(atheris.path())')
    case "$SANITIZER" in
        address) runtime=asan_with_fuzzer.so ;;
        *) runtime=ubsan_with_fuzzer.so ;;
    esac
    cp "$atheris_libs/$runtime" "$OUT/sanitizer_with_fuzzer.so"
fi

py_targets=""
for harness in "$repo"/fuzz/atheris/py_*.py; do
    name=$(basename "$harness" .py)
    compile_python_fuzzer "$harness"
    py_targets="$py_targets $name"
done

# -- seeds and options ----------------------------------------------------------------------
# atheris_seed HARNESS: the cargo-fuzz corpus whose input format the harness reads (one
# mapping, shared with fuzz/run.sh and fuzz/smoke.sh).
# shellcheck source=fuzz/tools.sh
source "$repo/fuzz/tools.sh"

# seed_zip NAME DIR...: every file of DIRs, flat, prefixed with its folder (names repeat).
seed_zip() {
    local name="$1"; shift
    python3 - "$OUT/${name}_seed_corpus.zip" "$@" <<'PY'
import os, sys, zipfile
out, dirs = sys.argv[1], sys.argv[2:]
with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
    for d in dirs:
        if os.path.isdir(d):
            for f in sorted(os.listdir(d)):
                p = os.path.join(d, f)
                if os.path.isfile(p):
                    z.write(p, f"{os.path.basename(d)}-{f}")
PY
}

for target in $rust_targets $py_targets; do
    corpora=("$repo/fuzz/corpus/$target")
    [[ "$target" != py_* ]] || corpora+=("$repo/fuzz/corpus/$(atheris_seed "$target")")
    seed_zip "$target" "${corpora[@]}"
    # 4096 covers max_size's default and every TLV shape; the corpus holds one 65468-byte
    # input that would otherwise make libFuzzer grow every input to that size.
    printf '[libfuzzer]\nmax_len = 4096\n' >"$OUT/$target.options"
done

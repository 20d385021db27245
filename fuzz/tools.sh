# Sourced by fuzz/run.sh and fuzz/smoke.sh: installs what fuzzing needs, idempotently, and
# never touches the editable install the other developers use.
#   - cargo-fuzz from crates.io (`ensure_cargo_fuzz`: `cargo install`, skipped when present). It runs on the one
#     stable toolchain with `-s none` (`--sanitizer none`): every other flag it passes
#     (-Cpasses=sancov-module, -Cllvm-args=-sanitizer-coverage-*, --cfg fuzzing,
#     -Cdebug-assertions) is stable; only -Zsanitizer=address needs nightly (or
#     RUSTC_BOOTSTRAP=1, see fuzz/README.md).
#   - a venv ($FUZZ_VENV, default /tmp/proxyproto-fuzz-venv) with atheris from PyPI (a
#     manylinux wheel for CPython 3.11: no clang needed) and proxyproto_rs built by
#     `maturin build` with sanitizer-coverage instrumentation ($FUZZ_TARGET_DIR, default
#     /tmp/proxyproto-fuzz-target), so libFuzzer inside atheris sees the Rust core's edges.
# shellcheck shell=bash
FUZZ_VENV="${FUZZ_VENV:-/tmp/proxyproto-fuzz-venv}"
FUZZ_TARGET_DIR="${FUZZ_TARGET_DIR:-/tmp/proxyproto-fuzz-target}"
FUZZ_REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PY:-python3}"

# The flags cargo-fuzz gives its targets, for the extension atheris loads.
SANCOV_RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions"

ensure_cargo_fuzz() {
    if ! cargo fuzz --version >/dev/null 2>&1; then
        cargo install cargo-fuzz --locked --quiet || return 1
    fi
}

ensure_venv() {
    local venv="$1"
    if [ ! -x "$venv/bin/pip" ]; then
        rm -rf "$venv"
        "$PY" -m venv "$venv" || return 1
    fi
    if ! "$venv/bin/python" -P -c "import atheris, maturin" >/dev/null 2>&1; then
        "$venv/bin/pip" install --quiet --disable-pip-version-check atheris maturin || return 1
    fi
}

# build_atheris_ext [plain]: build proxyproto_rs into $FUZZ_VENV (instrumented) or, with
# `plain`, into $FUZZ_VENV-plain without instrumentation (for the coverage comparison).
# --target keeps RUSTFLAGS off build scripts and proc macros (they link no libFuzzer).
# Rebuilt only when rust/, python/ or the manifests changed since the last build.
build_atheris_ext() {
    local kind="${1:-sancov}" venv="$FUZZ_VENV" tdir="$FUZZ_TARGET_DIR" flags="$SANCOV_RUSTFLAGS"
    if [ "$kind" = plain ]; then
        venv="$FUZZ_VENV-plain"; tdir="$FUZZ_TARGET_DIR-plain"; flags=""
    fi
    ensure_venv "$venv" || return 1
    local stamp="$venv/.proxyproto-src"
    local src
    src="$(cd "$FUZZ_REPO" && cat Cargo.toml Cargo.lock pyproject.toml rust/*.rs \
        python/proxyproto_rs/*.py python/proxyproto_rs/*.pyi | sha1sum | cut -c1-40)"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$src" ]; then
        return 0
    fi
    local wheels
    wheels="$(mktemp -d)"
    (cd "$FUZZ_REPO" && RUSTFLAGS="$flags" CARGO_TARGET_DIR="$tdir" \
        "$venv/bin/maturin" build --release --quiet --target x86_64-unknown-linux-gnu \
        -i "$venv/bin/python" -o "$wheels" >/dev/null) || return 1
    "$venv/bin/pip" install --quiet --disable-pip-version-check --force-reinstall --no-deps \
        "$wheels"/proxyproto_rs-*.whl || return 1
    rm -rf "$wheels"
    echo "$src" >"$stamp"
}

# atheris_seed HARNESS: the cargo-fuzz corpus whose format the harness reads (extra seeds).
atheris_seed() {
    case "$1" in
        py_parse) echo parse ;;
        py_build) echo roundtrip ;;
        py_spp) echo spp ;;
        *) echo split_feed ;;
    esac
}

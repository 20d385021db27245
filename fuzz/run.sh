#!/usr/bin/env bash
# Run every fuzz target (cargo-fuzz, then atheris) one after the other, then merge the new
# coverage into the committed corpus. Named seed/crash files are always kept; the hash-named
# files libFuzzer adds are re-minimised like `cargo fuzz cmin` (-merge=1) but harder, with
# -set_cover_merge=1 -use_counters=0: the smallest set found that keeps every edge (hit-count
# variety is dropped), so the committed corpus stays at a few hundred small files.
#
#   fuzz/run.sh [-t SECONDS] [-n RUNS] [TARGET...]      (make fuzz FUZZ_TIME=SECONDS)
#
# -t: time per target (default 60); -n: executions per target instead (libFuzzer -runs).
# TARGET: parse split_feed roundtrip crc32c spp (cargo-fuzz) and py_parse py_parser py_build
# py_aio py_spp (atheris); default all. One process per target (-jobs=1 equivalent: the machine
# has 2 shared cores). Logs go to fuzz/logs/<target>.log (ignored by git); a crash stops
# that target, is left in fuzz/artifacts/<target>/ and makes the script exit 1.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"
secs=60
runs=-1
while getopts "t:n:" opt; do
    case "$opt" in
        t) secs="$OPTARG" ;;
        n) runs="$OPTARG"; secs=0 ;;
        *) echo "usage: $0 [-t SECONDS] [-n RUNS] [TARGET...]" >&2; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
rust_targets=(parse split_feed roundtrip crc32c spp)
py_targets=(py_parse py_parser py_build py_aio py_spp)
targets=("$@")
[ "${#targets[@]}" -gt 0 ] || targets=("${rust_targets[@]}" "${py_targets[@]}")

# shellcheck source=fuzz/tools.sh
source "$here/tools.sh"
ensure_cargo_fuzz
mkdir -p logs artifacts
failed=0

is_rust() { [[ " ${rust_targets[*]} " == *" $1 "* ]]; }

# merge_corpus DIR NEWDIR CMD...: keep DIR's named files, add what NEWDIR's inputs add.
merge_corpus() {
    local dir="$1" new="$2"; shift 2
    local out hashed=(-regex '.*/[0-9a-f]{40}')
    out="$(mktemp -d)"
    find "$dir" -maxdepth 1 -regextype posix-extended -type f ! "${hashed[@]}" -exec cp {} "$out/" \;
    if ! "$@" -set_cover_merge=1 -use_counters=0 "$out" "$dir" "$new" \
        >>"logs/$t.merge.log" 2>&1; then
        echo "   merge failed (logs/$t.merge.log); new inputs left in $new"
        rm -rf "$out"
        return 1
    fi
    find "$dir" -maxdepth 1 -regextype posix-extended -type f "${hashed[@]}" -delete
    find "$out" -maxdepth 1 -regextype posix-extended -type f "${hashed[@]}" -exec cp {} "$dir/" \;
    rm -rf "$out" "$new"
}

build_rust_done=0
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t" "artifacts/$t"
    new="$(mktemp -d)"
    # -max_len: the corpus holds a 65468-byte crash file; without a cap libFuzzer would grow
    # every input to that size. 4096 covers max_size's default and every TLV shape.
    limits=(-max_len=4096 -print_final_stats=1 -artifact_prefix="artifacts/$t/")
    if [ "$runs" -ge 0 ]; then limits+=(-runs="$runs"); else limits+=(-max_total_time="$secs"); fi
    if is_rust "$t"; then
        if [ "$build_rust_done" -eq 0 ]; then
            cargo fuzz build -s none >logs/build.log 2>&1
            build_rust_done=1
        fi
        cmd=("target/x86_64-unknown-linux-gnu/release/$t")
    else
        build_atheris_ext
        cmd=("$FUZZ_VENV/bin/python" "atheris/$t.py")
        seeds+=("corpus/$(atheris_seed "$t")")
    fi
    echo "== $t ($( [ "$runs" -ge 0 ] && echo "$runs runs" || echo "${secs}s" ))"
    start=$(date +%s)
    if "${cmd[@]}" "${limits[@]}" "$new" "corpus/$t" "${seeds[@]}" >"logs/$t.log" 2>&1; then
        status=ok
    else
        status="CRASH (see logs/$t.log, artifacts/$t/)"
        failed=1
    fi
    grep -E '^#[0-9]+ +DONE|stat::number_of_executed_units' "logs/$t.log" | tail -2 || true
    echo "   $status in $(( $(date +%s) - start ))s"
    merge_corpus "corpus/$t" "$new" "${cmd[@]}" || failed=1
    echo "   corpus/$t: $(find "corpus/$t" -type f | wc -l) files"
done
exit "$failed"

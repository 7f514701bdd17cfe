#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Runs libFuzzer harnesses over their committed corpora (fuzz/corpus/<name>/).
#   scripts/fuzz.sh run SECONDS FUZZER...   explore for SECONDS per fuzzer, on a scratch copy of
#                                           the corpus, with fuzz/<name>.dict when present;
#                                           crashing inputs are saved in fuzz/crashes/
#   scripts/fuzz.sh replay 0 FUZZER...      run every corpus file once (as CI does)
# Exits non-zero when any fuzzer crashes, leaks or times out.
set -u

usage() {
    echo "usage: $0 run SECONDS FUZZER... | $0 replay 0 FUZZER..." >&2
    exit 2
}

[ $# -ge 3 ] || usage
mode=$1
seconds=$2
shift 2
case "$mode" in
run | replay) ;;
*) usage ;;
esac
case "$seconds" in
'' | *[!0-9]*) usage ;;
esac

crash_dir=fuzz/crashes
failed=""

# Explores from a scratch copy, so that a run never rewrites the committed corpus.
run_one() {
    fuzzer=$1 name=$2 corpus=$3
    scratch=$(mktemp -d "${TMPDIR:-/tmp}/fuzz-$name.XXXXXX") || return 1
    [ -d "$corpus" ] && cp -R "$corpus/." "$scratch/"
    dict=""
    [ -f "fuzz/$name.dict" ] && dict="-dict=fuzz/$name.dict"
    mkdir -p "$crash_dir"
    echo "fuzz: $name for ${seconds}s (corpus $corpus, $(find "$scratch" -type f | wc -l) inputs)"
    "$fuzzer" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$crash_dir/$name-" ${dict:+"$dict"} "$scratch" >"$scratch.log" 2>&1
    rc=$?
    tail -n 12 "$scratch.log"
    if [ $rc -ne 0 ]; then
        cp "$scratch.log" "$crash_dir/$name.log"
        echo "fuzz: $name FAILED (rc=$rc); inputs and log in $crash_dir/" >&2
    fi
    rm -rf "$scratch" "$scratch.log"
    return $rc
}

replay_one() {
    fuzzer=$1 name=$2 corpus=$3
    if [ ! -d "$corpus" ] || [ -z "$(ls "$corpus")" ]; then
        echo "fuzz: $name has no corpus in $corpus" >&2
        return 1
    fi
    log=$(mktemp "${TMPDIR:-/tmp}/fuzz-$name.XXXXXX") || return 1
    # Files given one by one are each run exactly once, with no mutation.
    "$fuzzer" -timeout=10 -rss_limit_mb=2048 "$corpus"/* >"$log" 2>&1
    rc=$?
    if [ $rc -ne 0 ]; then
        cat "$log"
        echo "fuzz: $name replay FAILED (rc=$rc)" >&2
    else
        echo "fuzz: $name replayed $(find "$corpus" -type f | wc -l) inputs, no crash"
    fi
    rm -f "$log"
    return $rc
}

for fuzzer in "$@"; do
    name=$(basename "$fuzzer")
    corpus=fuzz/corpus/$name
    if [ ! -x "$fuzzer" ]; then
        echo "fuzz: $fuzzer is not built" >&2
        failed="$failed $name"
        continue
    fi
    if [ "$mode" = run ]; then
        run_one "$fuzzer" "$name" "$corpus" || failed="$failed $name"
    else
        replay_one "$fuzzer" "$name" "$corpus" || failed="$failed $name"
    fi
done

if [ -n "$failed" ]; then
    echo "fuzz: FAILED:$failed" >&2
    exit 1
fi
echo "fuzz: OK"

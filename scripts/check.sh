#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Runs the cmocka unit suites and the pytest end-to-end suite, then prints one summary line.
# Environment: BUILD (build dir), SAN (1 = sanitizer build), PYTHON (interpreter with pytest).
set -u
mode=all
case "${1:-}" in
--unit-only) mode=unit; shift ;;
--e2e-only) mode=e2e; shift ;;
esac

: "${BUILD:=build}" "${SAN:=0}" "${PYTHON:=/usr/bin/python3}"
export MESH_BUILD="$BUILD"
if [ "$SAN" = 1 ]; then
    export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:abort_on_error=0:exitcode=86"
    export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
    export LSAN_OPTIONS="exitcode=86"
fi

log_dir="$BUILD/test-logs"
mkdir -p "$log_dir"
unit_pass=0 unit_fail=0 failed_suites=""
if [ "$mode" != e2e ]; then
    for t in "$@"; do
        name=$(basename "$t")
        if "$t" >"$log_dir/$name.log" 2>&1 && ! grep -q -e 'Sanitizer' -e 'runtime error:' "$log_dir/$name.log"; then
            :
        else
            failed_suites="$failed_suites $name"
            cat "$log_dir/$name.log"
        fi
        p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$log_dir/$name.log" | tail -n 1)
        f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$log_dir/$name.log" | tail -n 1)
        unit_pass=$((unit_pass + ${p:-0}))
        unit_fail=$((unit_fail + ${f:-0}))
    done
    [ -n "$failed_suites" ] && [ "$unit_fail" = 0 ] && unit_fail=1
fi

e2e_summary="not run"
e2e_rc=0
if [ "$mode" != unit ]; then
    "$PYTHON" -m pytest -q -p no:cacheprovider tests/e2e >"$log_dir/e2e.log" 2>&1
    e2e_rc=$?
    if [ $e2e_rc -ne 0 ]; then
        cat "$log_dir/e2e.log"
    else
        tail -n 3 "$log_dir/e2e.log"
    fi
    e2e_summary=$(grep -E '[0-9]+ (passed|failed|error)' "$log_dir/e2e.log" | tail -n 1 | sed 's/=//g; s/^ *//; s/ *$//')
    [ -n "$e2e_summary" ] || e2e_summary="no result (rc=$e2e_rc)"
fi

san=""
[ "$SAN" = 1 ] && san=" [ASan+UBSan+LSan]"
if [ "$unit_fail" = 0 ] && [ $e2e_rc -eq 0 ]; then
    echo "check: OK$san: unit $unit_pass passed; e2e $e2e_summary"
    exit 0
fi
echo "check: FAILED$san: unit $unit_pass passed, $unit_fail failed${failed_suites:+ (in$failed_suites)}; e2e $e2e_summary"
exit 1

#!/usr/bin/env bash
# make test-valgrind: the unit test programs of a build under valgrind's
# memcheck. Every case runs in a forked child (fm_test.h), which memcheck
# follows; a child with a memory error or a definite leak exits with 99 and
# its case fails. Valgrind's own logs (one per process) go to a temporary
# folder; at the end their error counts are added up and any log with an
# error is printed.
#
# usage: tests/valgrind.sh BUILD_DIR
set -euo pipefail
build=$1
here=$(cd "$(dirname "$0")" && pwd)

if ! command -v valgrind >/dev/null; then
    echo "valgrind not found (apt-get install valgrind)" >&2
    exit 77
fi

# Every unit test program but the allocation-counting ones (test_*_alloc:
# they define malloc and friends themselves, which memcheck replaces with its
# own, so their counts read 0) and the stress programs (tests/stress: thread
# stress loops, for the native and sanitizer builds). Not yet here:
# test_pool_idle and test_bufpool_colour, newer, not yet timed under memcheck
# (test_pool_idle starts thousands of threads).
programs=(test_common test_bad_input test_bufpool test_objpool test_pool test_pool_threads
          test_multipool test_tasks test_diag)
# Cases left out, each with why.
skip=(
    # Thousands of create/submit/destroy rounds on up to 64 threads: 135 s
    # alone under memcheck, which runs one thread at a time. ASan and TSan
    # run it.
    test_pool:destroy_right_after_submits_runs_them_all
    # Its own two threads hold up to 200 objects each in locals while it
    # forks; in the child those threads do not exist, so memcheck counts
    # their objects as lost: a leak of the test, not of the library.
    test_objpool:fork_while_threads_use_the_pool_leaves_a_working_child
)

logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
vg=(valgrind --tool=memcheck --error-exitcode=99 --leak-check=full
    --errors-for-leak-kinds=definite --show-leak-kinds=definite --trace-children=yes
    --suppressions="$here/valgrind.supp" --log-file="$logs/%p.log")
# Memcheck runs one thread at a time, 10-50 times slower: the per-case limit
# (a guard against hangs only) grows to match.
export FM_TEST_TIMEOUT=${FM_TEST_TIMEOUT:-900}

passed=0 failed=0 skipped=0 rc=0
for prog in "${programs[@]}"; do
    cases=()
    while read -r c; do
        if [[ " ${skip[*]} " == *" $prog:$c "* ]]; then
            skipped=$((skipped + 1))
        else
            cases+=("$c")
        fi
    done < <("$build/tests/$prog" --list)
    echo "== $prog (${#cases[@]} cases)"
    prog_rc=0
    "${vg[@]}" "$build/tests/$prog" "${cases[@]}" >"$logs/out" 2>&1 || prog_rc=1
    last=$(tail -n 1 "$logs/out")
    if [[ $last =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
        passed=$((passed + BASH_REMATCH[1]))
        failed=$((failed + BASH_REMATCH[2]))
    else
        prog_rc=1
    fi
    if ((prog_rc)); then
        cat "$logs/out" # the whole output of a program with a failure
        rc=1
    else
        echo "$last"
    fi
done

errors=0 processes=0
for f in "$logs"/[0-9]*.log; do
    processes=$((processes + 1))
    n=$(sed -n 's/.*ERROR SUMMARY: \([0-9]*\) errors.*/\1/p' "$f" | tail -n 1)
    if [[ ${n:-0} != 0 ]]; then
        errors=$((errors + n))
        cat "$f"
    fi
done
echo "valgrind memcheck: $processes processes, $errors errors; cases left out: $skipped"
echo "$passed passed, $failed failed"
((rc == 0 && failed == 0 && errors == 0))

#!/bin/sh
# Builds and runs one Relacy model (tests/models/MODEL.cpp) as the library
# has it, which must show no error, and once per broken ordering named on the
# command line (a macro the model reads), each of which must be caught: a
# model that cannot fail proves nothing. Exits 77 when Relacy or g++ is
# missing (apt-get install relacy-dev g++).
#   check_relacy.sh MODEL BROKEN_MACRO...
set -eu
model=$1
shift
cxx=${CXX:-g++}
if ! command -v "$cxx" >/dev/null || [ ! -f /usr/include/relacy/relacy.hpp ]; then
    echo "Relacy or $cxx is not installed (apt-get install relacy-dev g++): model not checked"
    exit 77
fi
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# verify NAME EXPECT [flags]: EXPECT is "holds" or "fails".
verify() {
    name=$1 expect=$2
    shift 2
    "$cxx" -std=c++11 -O1 -w "$@" -o "$work/model" "$here/$model.cpp"
    rc=0
    "$work/model" >"$work/out" 2>&1 || rc=$?
    summary=$(grep '^MODEL ' "$work/out" || echo "no summary (exit $rc)")
    if [ "$expect" = holds ] && [ "$rc" = 0 ]; then
        echo "ok   $name: $summary"
    elif [ "$expect" = fails ] && [ "$rc" = 1 ]; then
        kind=$(grep -m1 -E 'DATA RACE|DEADLOCK|LIVELOCK|ASSERT|ACCESS TO FREED|MEMORY LEAK|UNINITIALIZED' "$work/out" || echo '?')
        echo "ok   $name: caught ($kind): $summary"
    else
        echo "FAIL $name: expected the model to $expect: $summary"
        grep -v '^\[' "$work/out" | head -40
        return 1
    fi
}

passed=0 failed=0
if verify "$model" holds; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
for broken in "$@"; do
    if verify "$model/$broken" fails -DFM_BROKEN "-D$broken"; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
    fi
done
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]

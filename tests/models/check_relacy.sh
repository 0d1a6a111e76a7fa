#!/bin/sh
# Builds one Relacy model (tests/models/MODEL.cpp) and runs it with the
# library's orderings, which must show no error, and once per broken variant
# named on the command line, each of which must be caught: a model that
# cannot fail proves nothing. Exits 77 when Relacy or g++ is missing
# (apt-get install relacy-dev g++).
#   check_relacy.sh MODEL BROKEN_VARIANT...
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

"$cxx" -std=c++11 -O1 -w -o "$work/model" "$here/$model.cpp"

# verify VARIANT EXPECT: EXPECT is "holds" or "fails".
verify() {
    name=$model/$1 expect=$2
    rc=0
    "$work/model" "$1" >"$work/out" 2>&1 || rc=$?
    summary=$(grep '^MODEL ' "$work/out" || echo "no summary (exit $rc)")
    if [ "$expect" = holds ] && [ "$rc" = 0 ]; then
        echo "ok   $name: $summary"
    elif [ "$expect" = fails ] && [ "$rc" = 1 ]; then
        kind=$(grep -m1 -E 'DATA RACE|DEADLOCK|LIVELOCK|ASSERT|ACCESS TO FREED|MEMORY LEAK|UNINITIALIZED' "$work/out" || echo '?')
        echo "ok   $name: caught ($kind): $summary"
    else
        echo "FAIL $name: expected \"$expect\", got: $summary"
        grep -v '^\[' "$work/out" | head -40
        return 1
    fi
}

passed=0 failed=0
if verify library holds; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
for broken in "$@"; do
    if verify "$broken" fails; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
    fi
done
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]

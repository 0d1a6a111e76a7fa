#!/bin/sh
# Model-checks tcache_handshake.pml with spin: the library's two orderings
# must hold, and the broken one must be caught (a model that cannot fail
# proves nothing). Exits 0 when all three verdicts are as expected.
set -eu
if ! command -v spin >/dev/null; then
    echo "spin is not installed (apt-get install spin): model not checked"
    exit 77
fi
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

# verify NAME EXPECT [spin -D flags]: EXPECT is "holds" or "fails".
verify() {
    name=$1 expect=$2
    shift 2
    spin -a "$@" "$here/tcache_handshake.pml" >/dev/null
    cc -O2 -DSAFETY -o pan pan.c
    ./pan >pan.out || true
    errors=$(sed -n 's/.*errors: \([0-9]*\).*/\1/p' pan.out)
    states=$(sed -n 's/^ *\([0-9]*\) states, stored.*/\1/p' pan.out)
    if [ "$expect" = holds ] && [ "$errors" = 0 ]; then
        echo "ok   $name: the handshake holds (full search, $states states)"
    elif [ "$expect" = fails ] && [ "${errors:-0}" != 0 ]; then
        echo "ok   $name: the broken ordering is caught ($errors error trail, $states states)"
    else
        echo "FAIL $name: expected the handshake to $expect, spin found ${errors:-?} errors"
        return 1
    fi
}

failed=0
verify membarrier holds -DMEMBARRIER || failed=$((failed + 1))
verify fences-on-both-sides holds -DTHREAD_FENCE || failed=$((failed + 1))
verify drainer-fence-only fails || failed=$((failed + 1))
echo "$((3 - failed)) passed, $failed failed"
[ "$failed" = 0 ]

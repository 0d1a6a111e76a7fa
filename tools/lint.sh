#!/usr/bin/env bash
# make lint: cppcheck and clang-tidy on every C and C++ file of the build
# (src/, tests/, bench/, examples/), read from the compile database that CMake
# writes (CMAKE_EXPORT_COMPILE_COMMANDS) in the debug configuration, so the
# FM_DEBUG checks are analysed too. Configuration: .clang-tidy (with
# bench/.clang-tidy and tests/.clang-tidy on top) and tools/cppcheck.supp,
# each exception with its reason. Fails on any finding.
#
# usage: tools/lint.sh BUILD_DIR [JOBS]
set -euo pipefail
build=$1
jobs=${2:-2}
cd "$(dirname "$0")/.."
db=$build/compile_commands.json

missing=()
command -v cppcheck >/dev/null || missing+=(cppcheck)
command -v clang-tidy >/dev/null || missing+=(clang-tidy)
if ((${#missing[@]})); then
    echo "lint: ${missing[*]} not found (apt-get install ${missing[*]})" >&2
    exit 77
fi

# One "file" entry per line in CMake's database; a file may appear twice.
mapfile -t files < <(sed -n 's/^ *"file": "\(.*\)",\{0,1\}$/\1/p' "$db" | sort -u)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

echo "== cppcheck $(cppcheck --version | cut -d' ' -f2) on ${#files[@]} files"
cppcheck --project="$db" --enable=warning,style,performance,portability \
    --inline-suppr --suppressions-list=tools/cppcheck.supp --quiet -j "$jobs" \
    --template='{file}:{line}:{column}: {severity}: {message} [{id}]' \
    2>"$out/cppcheck.txt" || { cat "$out/cppcheck.txt"; echo "lint: cppcheck failed" >&2; exit 1; }
cpp_n=$(grep -cE '^.+:[0-9]+:[0-9]+: [a-z]+: .*\[[A-Za-z0-9_]+\]$' "$out/cppcheck.txt" || true)
cat "$out/cppcheck.txt"

echo "== clang-tidy $(clang-tidy --version | sed -n 's/.*version \([0-9.]*\).*/\1/p') on ${#files[@]} files"
printf '%s\n' "${files[@]}" |
    xargs -P "$jobs" -n 1 clang-tidy -p "$build" --quiet >"$out/tidy.txt" 2>"$out/tidy.err" || true
# A finding is a "file:line:col: warning|error: ... [check]" line; the same
# header finding reached from several files counts once.
grep -E '^[^ ]+:[0-9]+:[0-9]+: (warning|error): .*\]$' "$out/tidy.txt" | sort -u >"$out/tidy.uniq" || true
tidy_n=$(wc -l <"$out/tidy.uniq")
cat "$out/tidy.uniq"
# clang-tidy errors that are not findings (a file that does not parse) fail too.
if grep -E '^Error|error: unable|fatal error' "$out/tidy.err" "$out/tidy.txt"; then
    echo "lint: clang-tidy could not analyse every file" >&2
    exit 1
fi

echo "lint: ${#files[@]} files checked; cppcheck: $cpp_n findings, clang-tidy: $tidy_n findings"
((cpp_n == 0 && tidy_n == 0))

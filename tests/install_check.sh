#!/usr/bin/env bash
# Installs formica into a scratch prefix and builds a small program against it
# three ways: pkg-config with the shared library, pkg-config --static, and
# CMake's find_package. Each program must run and print the linked version.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix

make -C "$root" install PREFIX="$prefix" >/dev/null

cat >"$work/main.c" <<'C'
#include <formica.h>
#include <stdio.h>
static void hello(void *arg) { printf("%s\n", (const char *)arg); }
int main(void)
{
    fm_pool *p;
    if (fm_pool_new(&p, 2, NULL) != 0)
        return 1;
    if (fm_pool_submit(p, hello, "task ran") != 0)
        return 1;
    fm_pool_wait(p, FM_FOREVER);
    fm_pool_destroy(p);
    printf("formica %s\n", fm_version_string());
    return 0;
}
C

export PKG_CONFIG_PATH=$(dirname "$(find "$prefix" -name formica.pc)")
cc -o "$work/shared" "$work/main.c" $(pkg-config --cflags --libs formica) \
    -Wl,-rpath,"$(pkg-config --variable=libdir formica)"
"$work/shared" | grep -q "task ran"
cc -o "$work/static" "$work/main.c" $(pkg-config --cflags formica) \
    "$(pkg-config --variable=libdir formica)/libformica.a" -pthread
"$work/static" | grep -q "task ran"
if nm -D "$(pkg-config --variable=libdir formica)/libformica.so" | grep -q ' fm__'; then
    echo "internal symbols are exported" >&2
    exit 1
fi

mkdir -p "$work/cm"
cat >"$work/cm/CMakeLists.txt" <<'CM'
cmake_minimum_required(VERSION 3.16)
project(consumer C)
find_package(formica REQUIRED)
add_executable(consumer ../main.c)
target_link_libraries(consumer PRIVATE formica::formica)
CM
cmake -S "$work/cm" -B "$work/cm/build" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$work/cm/build" >/dev/null
LD_LIBRARY_PATH="$(pkg-config --variable=libdir formica)" "$work/cm/build/consumer" | grep -q "task ran"
echo "install check: pkg-config (shared, static) and find_package all work"

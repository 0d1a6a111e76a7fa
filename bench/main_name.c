/* The name of the executable this file is built into (BENCH_EXE_NAME, set per
 * program by CMakeLists.txt): a helper checks that it is the one a system
 * asks for before running it (main.c). */
#include "bench.h"

const char bench_exe_name[] = BENCH_EXE_NAME;

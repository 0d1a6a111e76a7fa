/* Error names and version. */
#include "fm_test.h"

#include <formica.h>

FM_TEST(strerror_names_every_code)
{
    const int codes[] = {EINVAL, EAGAIN, ESHUTDOWN, ETIMEDOUT, ENOMEM, EDEADLK, ECANCELED};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        const char *neg = fm_strerror(-codes[i]);
        const char *pos = fm_strerror(codes[i]);
        FM_CHECK(neg != NULL && pos != NULL);
        FM_CHECK(strcmp(neg, pos) == 0);
        FM_CHECK(strcmp(neg, fm_strerror(0)) != 0);
        for (size_t j = 0; j < i; j++)
            FM_CHECK(strcmp(neg, fm_strerror(-codes[j])) != 0);
    }
    FM_CHECK(strcmp(fm_strerror(0), "success") == 0);
    FM_CHECK(fm_strerror(-12345) != NULL);
    FM_CHECK(fm_strerror(-2147483647 - 1) != NULL);
}

FM_TEST(version_matches_header)
{
    FM_CHECK_EQ(fm_version(), FM_VERSION);
    char want[32];
    snprintf(want, sizeof want, "%d.%d.%d", FM_VERSION_MAJOR, FM_VERSION_MINOR, FM_VERSION_PATCH);
    FM_CHECK(strcmp(fm_version_string(), want) == 0);
}

FM_TEST_MAIN()

// test_str.c - the allocation-free formatter.
#include <string.h>

#include "harness.h"
#include "str.h"

static void formats_numbers(void) {
    char b[64];
    mh_snprintf(b, sizeof b, "%d %u %x %zu %lld", -42, 7u, 255u, (size_t)123456789012, -5ll);
    CHECK(strcmp(b, "-42 7 ff 123456789012 -5") == 0);
    mh_snprintf(b, sizeof b, "[%5d|%-4s|%03u]", 12, "ab", 7u);
    CHECK(strcmp(b, "[   12|ab  |007]") == 0);
    mh_snprintf(b, sizeof b, "%p", (void *)0x1234);
    CHECK(strcmp(b, "0x1234") == 0);
}

static void truncates_safely(void) {
    char b[8];
    memset(b, 'X', sizeof b);
    size_t n = mh_snprintf(b, sizeof b, "%s", "0123456789");
    CHECK_EQ(n, 7);
    CHECK(strcmp(b, "0123456") == 0);
    const char *volatile none = NULL;
    mh_snprintf(b, sizeof b, "%s|", none);
    CHECK(strcmp(b, "(null)|") == 0);
}

static void compares(void) {
    CHECK(mh_streq("abc", "abc"));
    CHECK(!mh_streq("abc", "abd"));
    CHECK(!mh_streq("abc", "ab"));
    CHECK_EQ(mh_strlen("hello"), 5);
}

TEST_MAIN(T(formats_numbers), T(truncates_safely), T(compares))

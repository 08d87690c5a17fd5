// test_options.c - option parsing, precedence, the environment reader and the
// configuration reader's recovery from bad input.
#include <signal.h>
#include <string.h>

#include "config_file.h"
#include "harness.h"
#include "options.h"

static char reports[16][512];
static int nreports;

static void collect(void *ctx, const char *line) {
    (void)ctx;
    if (nreports < 16) snprintf(reports[nreports], sizeof reports[0], "%s", line);
    nreports++;
}

static int parse_conf(const char *text) {
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", text);
    nreports = 0;
    mh_opt_reset_defaults();
    return mh_config_parse_buffer("t.conf", buf, strlen(buf), collect, NULL);
}

static void values(void) {
    int64_t v;
    char why[200];
    CHECK(mh_opt_parse(MH_OPT_period_ms, " 250 ", &v, why, sizeof why) == 0 && v == 250);
    CHECK(mh_opt_parse(MH_OPT_period_ms, "-1", &v, why, sizeof why) != 0);
    CHECK(strcmp(why, "expected an integer from 0 to 86400000") == 0);
    CHECK(mh_opt_parse(MH_OPT_period_ms, "99999999999999999999999", &v, why, sizeof why) != 0);
    CHECK(mh_opt_parse(MH_OPT_verbose, "YES", &v, why, sizeof why) == 0 && v == 1);
    CHECK(mh_opt_parse(MH_OPT_verbose, "off", &v, why, sizeof why) == 0 && v == 0);
    CHECK(mh_opt_parse(MH_OPT_verbose, "2", &v, why, sizeof why) != 0);
    CHECK(mh_opt_parse(MH_OPT_thp, "disable", &v, why, sizeof why) == 0 && v == MH_THP_DISABLE);
    CHECK(mh_opt_parse(MH_OPT_thp, "maybe", &v, why, sizeof why) != 0);
    CHECK(strcmp(why, "expected one of \"warn\", \"disable\", \"off\"") == 0);
    CHECK(mh_opt_parse(MH_OPT_stats_at_exit, "3", &v, why, sizeof why) != 0);
}

static void signals(void) {
    CHECK_EQ(mh_signal_parse("SIGUSR2"), SIGUSR2);
    CHECK_EQ(mh_signal_parse("usr1"), SIGUSR1);
    CHECK_EQ(mh_signal_parse("off"), 0);
    CHECK_EQ(mh_signal_parse("RTMIN+3"), SIGRTMIN + 3);
    CHECK_EQ(mh_signal_parse("SIGKILL"), -1); // cannot be caught
    CHECK_EQ(mh_signal_parse("SIGSEGV"), -1); // belongs to the write barrier
    CHECK_EQ(mh_signal_parse("rtmin+99"), -1);
    char b[32];
    CHECK(strcmp(mh_signal_name(SIGUSR2, b, sizeof b), "SIGUSR2") == 0);
}

static void precedence(void) {
    mh_opt_reset_defaults();
    mh_opt_set(MH_OPT_period_ms, 7, (mh_opt_origin_t){MH_SRC_ENV, 0, "MESH_PERIOD_MS"});
    mh_opt_set(MH_OPT_period_ms, 9, (mh_opt_origin_t){MH_SRC_FILE, 3, NULL}); // lower: ignored
    CHECK_EQ(mh_opt[MH_OPT_period_ms], 7);
    mh_opt_set(MH_OPT_period_ms, 5, (mh_opt_origin_t){MH_SRC_CTL, 0, NULL});
    CHECK_EQ(mh_opt[MH_OPT_period_ms], 5);
    char b[64];
    mh_opt_format_origin(MH_OPT_period_ms, "f", b, sizeof b);
    CHECK(strcmp(b, "mesh_mallctl") == 0);
}

static void environment(void) {
    char *envp[] = {"MESH_PERIOD_MS=12", "MESH_STATS=1", "MALLOCSTATS=2", "MESH_THP=bogus",
                    "MESH_VERBOSEX=1", NULL};
    mh_opt_reset_defaults();
    nreports = 0;
    mh_opt_apply_env(envp, collect, NULL);
    CHECK_EQ(mh_opt[MH_OPT_period_ms], 12);
    CHECK_EQ(mh_opt[MH_OPT_stats_at_exit], 2); // MALLOCSTATS wins over its alias
    CHECK_EQ(mh_opt[MH_OPT_thp], MH_THP_WARN);
    CHECK_EQ(mh_opt[MH_OPT_verbose], 0);
    CHECK_EQ(nreports, 1);
    CHECK(strcmp(reports[0], "MESH_THP=\"bogus\": expected one of \"warn\", \"disable\", \"off\"; ignored") == 0);
}

static void file_values_and_lines(void) {
    CHECK_EQ(parse_conf("mesh = { period_ms = 250; };\nstats = { at_exit = 2; signal = \"usr2\"; };\n"), 0);
    CHECK_EQ(mh_opt[MH_OPT_period_ms], 250);
    CHECK_EQ(mh_opt[MH_OPT_stats_signal], SIGUSR2);
    CHECK_EQ(mh_opt_origin[MH_OPT_stats_at_exit].line, 2);
}

static void recovers_from_bad_lines(void) {
    int n = parse_conf("mesh = { period_ms = 1; };\nthis is not valid\nstats = { at_exit = 1; };\n"
                       "mesh2 = { x = 1; };\nlog = { verbose = 3; };\nchecks = { thp = \"off\"; };\n");
    CHECK_EQ(n, 3);
    CHECK(strcmp(reports[0], "t.conf:2: syntax error; line skipped") == 0);
    CHECK(strcmp(reports[1], "t.conf:4: unknown option 'mesh2.x'; ignored") == 0);
    CHECK(strcmp(reports[2], "t.conf:5: log.verbose: expected true or false; ignored") == 0);
    CHECK_EQ(mh_opt[MH_OPT_period_ms], 1);
    CHECK_EQ(mh_opt[MH_OPT_stats_at_exit], 1);
    CHECK_EQ(mh_opt[MH_OPT_thp], MH_THP_OFF);
}

static void binary_and_huge_values(void) {
    char buf[64] = "mesh = { period_ms = 5; };\n\x01\x00\xff garbage\n";
    nreports = 0;
    mh_opt_reset_defaults();
    mh_config_parse_buffer("b.conf", buf, 40, collect, NULL);
    CHECK_EQ(mh_opt[MH_OPT_period_ms], 5);
    CHECK(nreports >= 1 && strstr(reports[0], "b.conf:2: binary data") != NULL);
    CHECK(parse_conf("mesh = { period_ms = 100000000000L; };") == 1);
    CHECK_EQ(mh_opt[MH_OPT_period_ms], 100);
}

TEST_MAIN(T(values), T(signals), T(precedence), T(environment), T(file_values_and_lines),
          T(recovers_from_bad_lines), T(binary_and_huge_values))

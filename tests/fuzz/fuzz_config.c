// fuzz_config.c - fuzz target for the configuration readers: the input is parsed as a
// mesh.conf (libconfig syntax with error recovery) and, split at newlines, as the
// values of every MESH_* environment variable. Neither may crash, hang or leave an
// option outside its declared range.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_file.h"
#include "options.h"

static void ignore(void *ctx, const char *line) {
    (void)line;
    ++*(int *)ctx;
}

static void check_ranges(void) {
    for (int id = 0; id < MH_OPT_COUNT; id++)
        if (mh_opt[id] < mh_opt_desc[id].min || mh_opt[id] > mh_opt_desc[id].max) abort();
}

static void fuzz_env(const uint8_t *data, size_t size) {
    char *envp[2 * MH_OPT_COUNT + 1];
    char storage[2 * MH_OPT_COUNT][96];
    size_t pos = 0;
    int n = 0;
    for (int id = 0; id < MH_OPT_COUNT; id++) {
        const char *names[2] = {mh_opt_desc[id].env, mh_opt_desc[id].env_alt};
        for (int k = 0; k < 2 && names[k]; k++) {
            size_t len = 0;
            char value[64];
            while (pos < size && data[pos] != '\n' && len + 1 < sizeof value) value[len++] = (char)data[pos++];
            pos++;
            value[len] = 0; // an embedded NUL just ends the value, as in a real environment
            snprintf(storage[n], sizeof storage[n], "%s=%s", names[k], value);
            envp[n] = storage[n];
            n++;
        }
    }
    envp[n] = NULL;
    int problems = 0;
    mh_opt_apply_env(envp, ignore, &problems);
    check_ranges();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > MH_CONFIG_MAX_BYTES) return 0;
    char *buf = malloc(size + 1);
    memcpy(buf, data, size);
    int problems = 0;
    mh_opt_reset_defaults();
    mh_config_parse_buffer("fuzz.conf", buf, size, ignore, &problems);
    check_ranges();
    free(buf);
    mh_opt_reset_defaults();
    fuzz_env(data, size);
    mh_opt_reset_defaults();
    return 0;
}

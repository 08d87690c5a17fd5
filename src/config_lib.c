// config_lib.c - libconfig, loaded only when a configuration file has settings in it.
//
// Layer 7 (runtime): nothing of libmesh; dlopen from libc.
// Why: under a system-wide preload every process would otherwise map, relocate and
// initialise libconfig at exec, although most never read a setting (the shipped
// /etc/mesh.conf is all comments, and a missing file is the default). The library is
// opened at the first file that holds a setting, by the one thread that reads the
// configuration (outside every allocator lock; dlopen may allocate), and stays loaded.
// dlerror() is never called: it translates its message, which takes libc's locale
// lock, and the configuration can be read from inside a malloc that setlocale made
// with that lock held.
// meshctl links libconfig directly (MESH_LIBCONFIG_LINKED): the table points at it.
#define _GNU_SOURCE
#include "config_lib.h"

#ifdef MESH_LIBCONFIG_LINKED

const mh_libconfig_t *mh_libconfig(void) {
    static const mh_libconfig_t linked = {
        config_init, config_destroy, config_read_string, config_setting_get_int64,
        config_setting_get_bool, config_setting_get_string, config_setting_length,
        config_setting_get_elem,
    };
    return &linked;
}

#else

#include <dlfcn.h>

static mh_libconfig_t table;
static int state; // 0 not tried, 1 loaded, -1 cannot be loaded (not tried again)

// Looks up one symbol into *slot; false when it is missing.
static int bind(void *lib, const char *name, void *slot) {
    void *f = dlsym(lib, name);
    if (!f) return 0;
    *(void **)slot = f;
    return 1;
}

static int load(void) {
    void *lib = dlopen(MESH_LIBCONFIG_SONAME, RTLD_NOW | RTLD_LOCAL);
    if (!lib) return -1;
    int ok = bind(lib, "config_init", &table.init) & bind(lib, "config_destroy", &table.destroy) &
             bind(lib, "config_read_string", &table.read_string) &
             bind(lib, "config_setting_get_int64", &table.get_int64) &
             bind(lib, "config_setting_get_bool", &table.get_bool) &
             bind(lib, "config_setting_get_string", &table.get_string) &
             bind(lib, "config_setting_length", &table.length) &
             bind(lib, "config_setting_get_elem", &table.get_elem);
    return ok ? 1 : -1; // (a library without them stays mapped: dlclose could run its destructors)
}

const mh_libconfig_t *mh_libconfig(void) {
    if (state == 0) state = load();
    return state > 0 ? &table : NULL;
}

#endif

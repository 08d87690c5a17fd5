// config_lib.h - libconfig's entry points, reached at first need (see config_lib.c).
//
// Layer 7 (runtime).
#ifndef MH_CONFIG_LIB_H
#define MH_CONFIG_LIB_H

#include <libconfig.h>

// The file dlopen opens: the soname of the libconfig the build found (CMake).
#ifndef MESH_LIBCONFIG_SONAME
#define MESH_LIBCONFIG_SONAME "libconfig.so.9"
#endif
#define MH_LIBCONFIG_NAME MESH_LIBCONFIG_SONAME

// The eight libconfig functions config_file.c calls (the rest of the API it uses are
// macros over these structures).
typedef struct mh_libconfig_s {
    void (*init)(config_t *config);
    void (*destroy)(config_t *config);
    int (*read_string)(config_t *config, const char *str);
    long long (*get_int64)(const config_setting_t *setting);
    int (*get_bool)(const config_setting_t *setting);
    const char *(*get_string)(const config_setting_t *setting);
    int (*length)(const config_setting_t *setting);
    config_setting_t *(*get_elem)(const config_setting_t *setting, unsigned int idx);
} mh_libconfig_t;

// libconfig's functions, or NULL when the library cannot be loaded (not installed, a
// chroot or container without it): the caller then reports one problem and keeps the
// defaults. Single-threaded callers only (the configuration is read once, by one
// thread; meshctl).
const mh_libconfig_t *mh_libconfig(void);

#endif

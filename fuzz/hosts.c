/* A registry host's hosts.toml (untrusted bytes: containerd's certs.d format, the file a pull
 * reads for each registry), through ctr.remotes.hosts: parse_toml, and for_host over the file
 * written as <dir>/_default/hosts.toml.  The input is the file's text; fuzz/hosts.lua says
 * which calls are made and what is checked.  <dir> is a directory of this process's own
 * (CTRLUA_FUZZ_HOSTS_DIR for the driver), removed at exit. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/error.h"
#include "base/files.h"
#include "luahost.h"

static char dir[64];

static void cleanup(void)
{
    struct ctr_err e;
    if (ctr_remove_tree(dir, &e) < 0)
        fprintf(stderr, "fuzz: remove %s: %s\n", dir, e.msg);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    snprintf(dir, sizeof dir, "/tmp/ctrlua-fuzz-hosts.XXXXXX");
    if (mkdtemp(dir) == NULL) {
        fprintf(stderr, "fuzz: mkdtemp %s: %s\n", dir, strerror(errno));
        exit(1);
    }
    atexit(cleanup);
    char sub[96];
    snprintf(sub, sizeof sub, "%s/_default", dir);
    if (mkdir(sub, 0700) < 0) {
        fprintf(stderr, "fuzz: mkdir %s: %s\n", sub, strerror(errno));
        exit(1);
    }
    if (setenv("CTRLUA_FUZZ_HOSTS_DIR", dir, 1) < 0) {
        fprintf(stderr, "fuzz: setenv CTRLUA_FUZZ_HOSTS_DIR: %s\n", strerror(errno));
        exit(1);
    }
    ctr_fuzz_lua_init("hosts");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ctr_fuzz_lua_run(data, size);
    return 0;
}

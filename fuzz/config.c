/* The OCI config parser (csrc/runtime/config.c): ctr_config_parse, the one parser behind
 * ctr_config_load, and ctr_config_set_process, which an exec into a container runs on the
 * process object it is given.
 *
 * The input is a config.json, optionally followed by a NUL and a process object.  The config is
 * parsed against a bundle directory made at start-up (with rootfs/ in it, so that the usual
 * relative root.path resolves); the process is set on that config when it parsed, or else on
 * a small valid config, so that set_process is fuzzed whatever the first part is.  A config
 * that parsed is checked for what the runtime takes for granted of it (counts within their
 * arrays, strings where the spawn path reads strings) and freed; LeakSanitizer checks that
 * every path, failed ones included, frees what it allocated. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/config.h"

static char bundle[64], rootfs[96];

static void cleanup(void)
{
    rmdir(rootfs);
    rmdir(bundle);
}

static const char base_config[] =
    "{\"ociVersion\":\"1.0.2\",\"root\":{\"path\":\"rootfs\"},"
    "\"process\":{\"args\":[\"sh\"],\"cwd\":\"/\"},"
    "\"linux\":{\"namespaces\":[{\"type\":\"mount\"}]}}";

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    snprintf(bundle, sizeof bundle, "/tmp/ctrlua-fuzz-config.XXXXXX");
    if (mkdtemp(bundle) == NULL) {
        perror("fuzz: mkdtemp");
        exit(1);
    }
    atexit(cleanup);
    snprintf(rootfs, sizeof rootfs, "%s/rootfs", bundle);
    if (mkdir(rootfs, 0755) < 0) {
        perror("fuzz: mkdir rootfs");
        exit(1);
    }
    return 0;
}

#define expect(cond)                                                                           \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            fprintf(stderr, "fuzz: a parsed config breaks `%s'\n", #cond);                     \
            abort();                                                                           \
        }                                                                                      \
    } while (0)

static void check_strv(const char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        expect(strlen(v[i]) < CTR_CONFIG_MAX);
}

/* What runtime/create.c, runtime/rootfs.c and runtime/process.c read of a config without checking it again. */
static void check(const struct ctr_config *c)
{
    expect(c->json != NULL);
    expect(c->rootfs != NULL && c->rootfs[0] == '/');
    expect(c->args != NULL && c->args[0] != NULL && c->args[0][0] != '\0');
    expect(c->env != NULL);
    check_strv(c->args);
    check_strv(c->env);
    expect(c->cwd != NULL && c->cwd[0] == '/');
    expect(c->ngroups == 0 || c->groups != NULL);
    expect(c->nns <= sizeof c->ns / sizeof c->ns[0]);
    for (size_t i = 0; i < c->nmounts; i++) {
        expect(c->mounts[i].destination && c->mounts[i].destination[0] == '/');
        expect(c->mounts[i].type != NULL && c->mounts[i].source != NULL);
        expect(c->mounts[i].opts.data != NULL);
    }
    for (size_t i = 0; i < c->ndevices; i++)
        expect(c->devices[i].path && c->devices[i].path[0] == '/');
    for (size_t i = 0; i < c->nrlimits; i++)
        expect(c->rlimits[i].name != NULL && c->rlimits[i].soft <= c->rlimits[i].hard);
    for (size_t i = 0; i < c->nsysctls; i++)
        expect(c->sysctls[i].key != NULL && c->sysctls[i].value != NULL);
    expect(c->join_user < (int)c->nns);
    check_strv(c->masked);
    check_strv(c->readonly);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    const char *nul = memchr(text, '\0', size);
    size_t clen = nul ? (size_t)(nul - text) : size;

    struct ctr_config cfg;
    struct ctr_err err = {0};
    int loaded = ctr_config_parse(bundle, text, clen, &cfg, &err) == 0;
    if (loaded)
        check(&cfg);
    else
        expect(err.msg[0] != '\0');

    if (nul) {
        if (!loaded) {
            struct ctr_err e2;
            if (ctr_config_parse(bundle, base_config, strlen(base_config), &cfg, &e2) < 0) {
                fprintf(stderr, "fuzz: the base config does not parse: %s\n", e2.msg);
                abort();
            }
        }
        err = (struct ctr_err){0};
        if (ctr_config_set_process(&cfg, nul + 1, size - clen - 1, &err) == 0)
            check(&cfg);
        else
            expect(err.msg[0] != '\0');
        loaded = 1;
    }
    if (loaded)
        ctr_config_free(&cfg);
    return 0;
}

#include "runtime/hooks.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/files.h"
#include "base/json.h"
#include "runtime/sealed.h"
#include "base/cleanup.h"

static const char *const kind_names[CTR_HOOK_KINDS] = {
    "prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop",
};

const char *ctr_hook_kind_name(int kind)
{
    return kind >= 0 && kind < CTR_HOOK_KINDS ? kind_names[kind] : NULL;
}

int ctr_hook_kind(const char *name)
{
    for (int k = 0; k < CTR_HOOK_KINDS; k++)
        if (strcmp(kind_names[k], name) == 0)
            return k;
    return -1;
}

int ctr_hooks_parse(const cJSON *hooks, struct ctr_hooks *out, struct ctr_err *err)
{
    memset(out, 0, sizeof *out);
    if (hooks == NULL || cJSON_IsNull(hooks))
        return 0;
    if (!cJSON_IsObject(hooks))
        return ctr_fail(err, EINVAL, "config.json: hooks: expected object");
    for (int k = 0; k < CTR_HOOK_KINDS; k++) {
        const cJSON *list;
        char where[64];
        snprintf(where, sizeof where, "hooks.%s", kind_names[k]);
        if (ctr_json_array(hooks, "hooks", kind_names[k], &list, err) < 0)
            goto fail;
        size_t n = list ? (size_t)cJSON_GetArraySize(list) : 0;
        if (n == 0)
            continue;
        if ((out->list[k] = calloc(n, sizeof *out->list[k])) == NULL) {
            ctr_fail(err, ENOMEM, "config.json: %s", where);
            goto fail;
        }
        for (const cJSON *j = list->child; j; j = j->next) {
            char w[80];
            snprintf(w, sizeof w, "%s[%zu]", where, out->n[k]);
            struct ctr_hook *h = &out->list[k][out->n[k]];
            int64_t t;
            int present;
            if (!cJSON_IsObject(j)) {
                ctr_fail(err, EINVAL, "config.json: %s: expected object", w);
                goto fail;
            }
            out->n[k]++;
            if (ctr_json_string(j, w, "path", &h->path, err) < 0 ||
                ctr_json_strv(j, w, "args", &h->args, NULL, err) < 0 ||
                ctr_json_strv(j, w, "env", &h->env, NULL, err) < 0 ||
                ctr_json_int(j, w, "timeout", 1, 1 << 30, &t, &present, err) < 0)
                goto fail;
            if (h->path == NULL || h->path[0] != '/') {
                ctr_fail(err, EINVAL, "config.json: %s.path: must be an absolute path", w);
                goto fail;
            }
            h->timeout = present ? (int)t : 0;
        }
    }
    return 0;
fail:
    ctr_hooks_free(out);
    if (err->code == 0)
        err->code = EINVAL;
    return -1;
}

void ctr_hooks_free(struct ctr_hooks *h)
{
    for (int k = 0; k < CTR_HOOK_KINDS; k++) {
        for (size_t i = 0; i < h->n[k]; i++) {
            free(h->list[k][i].args);
            free(h->list[k][i].env);
        }
        free(h->list[k]);
    }
    memset(h, 0, sizeof *h);
}

char *ctr_hooks_state(const char *oci_version, const char *id, const char *status, pid_t pid,
                      const char *bundle, const cJSON *annotations)
{
    cJSON *o = cJSON_CreateObject();
    if (o == NULL)
        return NULL;
    cJSON_AddStringToObject(o, "ociVersion", oci_version ? oci_version : "1.0.2");
    cJSON_AddStringToObject(o, "id", id ? id : "");
    cJSON_AddStringToObject(o, "status", status);
    if (pid > 0)
        cJSON_AddNumberToObject(o, "pid", (double)pid);
    cJSON_AddStringToObject(o, "bundle", bundle ? bundle : "");
    if (annotations && cJSON_IsObject(annotations) && annotations->child)
        cJSON_AddItemToObject(o, "annotations", cJSON_Duplicate(annotations, 1));
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One hook: its stdin is a memfd holding the state (no pipe to fill, nothing to block on). */
static int run_one(const struct ctr_hook *h, const char *kind, const char *state, int tramp,
                   struct ctr_err *err)
{
    cleanup_close int in = memfd_create("ctrlua-hook-state", MFD_CLOEXEC);
    if (in < 0)
        return ctr_fail(err, errno, "%s hook `%s': memfd_create", kind, h->path);
    if (ctr_write_all(in, state, strlen(state)) < 0 || lseek(in, 0, SEEK_SET) < 0)
        return ctr_fail(err, errno, "%s hook `%s': write the state", kind, h->path);
    const char *argv0[] = {h->path, NULL};
    const char *envnone[] = {NULL};
    int ep[2];
    if (pipe2(ep, O_CLOEXEC) < 0)
        return ctr_fail(err, errno, "%s hook `%s': pipe", kind, h->path);
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(ep[0]);
        close(ep[1]);
        return ctr_fail(err, e, "%s hook `%s': fork", kind, h->path);
    }
    if (pid == 0) {
        close(ep[0]);
        if (dup2(in, 0) < 0)
            _exit(127);
        /* nothing of ours but stdio reaches the hook: the exec-error pipe and the trampoline
         * are close-on-exec, like everything else from here */
        close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
        /* a caller that forwards signals has them blocked: the hook must not inherit that */
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        char *const *args = (char *const *)(h->args && h->args[0] ? h->args : argv0);
        char *const *env = (char *const *)(h->env ? h->env : envnone);
        if (tramp >= 0)
            ctr_sealed_exec(tramp, ep[1], "", h->path, args, env); /* ctrlua-exec reports */
        else
            execve(h->path, args, env);
        int e = errno;
        while (write(ep[1], &e, sizeof e) < 0 && errno == EINTR)
            ;
        _exit(127);
    }
    close(ep[1]);
    int exec_errno = 0;
    ssize_t n = RETRY(read(ep[0], &exec_errno, sizeof exec_errno));
    close(ep[0]);
    double deadline = h->timeout > 0 ? now() + h->timeout : 0;
    int status;
    for (;;) {
        pid_t r = waitpid(pid, &status, h->timeout > 0 ? WNOHANG : 0);
        if (r == pid)
            break;
        if (r < 0 && errno != EINTR)
            return ctr_fail(err, errno, "%s hook `%s': waitpid", kind, h->path);
        if (r == 0 && now() >= deadline) {
            kill(pid, SIGKILL);
            RETRY(waitpid(pid, &status, 0));
            return ctr_fail(err, ETIMEDOUT, "%s hook `%s': killed after its timeout of %d s",
                            kind, h->path, h->timeout);
        }
        if (r == 0) {
            struct timespec ts = {0, 5 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
    }
    if (n == (ssize_t)sizeof exec_errno)
        return ctr_fail(err, exec_errno, "%s hook `%s': exec", kind, h->path);
    if (WIFSIGNALED(status))
        return ctr_fail(err, ECANCELED, "%s hook `%s': killed by signal %d", kind, h->path,
                        WTERMSIG(status));
    if (WEXITSTATUS(status) != 0) {
        ctr_fail(err, 0, "%s hook `%s': exit status %d", kind, h->path, WEXITSTATUS(status));
        err->code = ECANCELED;
        return -1;
    }
    return 0;
}

int ctr_hooks_run(const struct ctr_hooks *h, int kind, const char *state, int keep_going,
                  int tramp, struct ctr_err *err)
{
    int r = 0;
    struct ctr_err e;
    for (size_t i = 0; i < h->n[kind]; i++) {
        if (run_one(&h->list[kind][i], kind_names[kind], state, tramp, &e) < 0) {
            if (r == 0)
                *err = e;
            r = -1;
            if (!keep_going)
                break;
        }
    }
    return r;
}

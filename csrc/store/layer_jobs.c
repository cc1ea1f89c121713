/* Layer applies on their own threads (see store/layer_jobs.h). */
#include "store/layer_jobs.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/cleanup.h"

struct ctr_apply_job {
    pthread_t thread;
    int joined;
    char *dir, *blob, *diff_id;
    struct ctr_layer_apply_opts opts;
    struct ctr_layer_source src;
    atomic_int done;
    int rc;
    struct ctr_layer_apply_result res;
    struct ctr_err err;
};

static void *run(void *arg)
{
    struct ctr_apply_job *j = arg;
    j->rc = ctr_layer_apply(j->dir, j->blob, &j->opts, &j->res, &j->err);
    atomic_store(&j->done, 1);
    return NULL;
}

int ctr_apply_job_start(const char *dir, const char *blob_path, int follow,
                        const struct ctr_layer_apply_opts *opts, struct ctr_apply_job **out,
                        struct ctr_err *err)
{
    struct ctr_apply_job *j = calloc(1, sizeof *j);
    if (j == NULL)
        return ctr_fail(err, ENOMEM, "apply layer `%s'", blob_path);
    j->src.fd = -1;
    j->dir = strdup(dir);
    j->blob = strdup(blob_path);
    j->diff_id = opts->diff_id ? strdup(opts->diff_id) : NULL;
    if (j->dir == NULL || j->blob == NULL || (opts->diff_id && j->diff_id == NULL)) {
        ctr_apply_job_free(j);
        return ctr_fail(err, ENOMEM, "apply layer `%s'", blob_path);
    }
    j->src.fd = RETRY(open(blob_path, O_RDONLY | O_CLOEXEC));
    if (j->src.fd < 0) {
        int e = errno;
        ctr_apply_job_free(j);
        return ctr_fail(err, e, "open `%s'", blob_path);
    }
    j->src.follow = follow;
    atomic_init(&j->src.final_size, -1);
    atomic_init(&j->src.abandoned, 0);
    atomic_init(&j->src.consumed, 0);
    atomic_init(&j->done, 0);
    j->opts = *opts;
    j->opts.diff_id = j->diff_id;
    j->opts.source = &j->src;
    int e = pthread_create(&j->thread, NULL, run, j);
    if (e != 0) {
        j->joined = 1;
        ctr_apply_job_free(j);
        return ctr_fail(err, e, "apply layer `%s': pthread_create", blob_path);
    }
    *out = j;
    return 0;
}

uint64_t ctr_apply_job_progress(struct ctr_apply_job *j) { return atomic_load(&j->src.consumed); }

int ctr_apply_job_done(struct ctr_apply_job *j) { return atomic_load(&j->done); }

void ctr_apply_job_source_complete(struct ctr_apply_job *j, int64_t size)
{
    atomic_store(&j->src.final_size, (long long)size);
}

void ctr_apply_job_source_failed(struct ctr_apply_job *j) { atomic_store(&j->src.abandoned, 1); }

int ctr_apply_job_wait(struct ctr_apply_job *j, struct ctr_layer_apply_result *res,
                       struct ctr_err *err)
{
    if (!j->joined) {
        pthread_join(j->thread, NULL);
        j->joined = 1;
    }
    if (j->rc < 0) {
        *err = j->err;
        return -1;
    }
    *res = j->res;
    return 0;
}

void ctr_apply_job_free(struct ctr_apply_job *j)
{
    if (j == NULL)
        return;
    if (!j->joined && j->thread) {
        atomic_store(&j->src.abandoned, 1);
        pthread_join(j->thread, NULL);
    }
    if (j->src.fd >= 0)
        close(j->src.fd);
    free(j->dir);
    free(j->blob);
    free(j->diff_id);
    free(j);
}

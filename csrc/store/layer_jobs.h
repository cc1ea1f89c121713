/* A layer applied on a thread of its own, so that the caller can go on with other work (drive
 * downloads, draw progress) and poll how far it has come.  The layer's bytes may come from a
 * blob in the store or from a download's ingest file still being written (follow): the apply
 * then reads what has arrived and waits for the rest, so a layer is unpacked while it
 * downloads.  The caller says when that download is complete (its final size) or abandoned.
 *
 * Nothing it makes is committed: the caller applies into a temporary snapshot and commits it
 * only when both the apply (diff ID) and the download (digest) verified. */
#ifndef CTR_APPLYJOB_H
#define CTR_APPLYJOB_H

#include <stdint.h>

#include "store/layer.h"
#include "base/error.h"

struct ctr_apply_job;

/* Open blob_path now (in the caller's thread: a download's ingest may be renamed into the store
 * at any moment after) and start applying it into dir. */
int ctr_apply_job_start(const char *dir, const char *blob_path, int follow,
                        const struct ctr_layer_apply_opts *opts, struct ctr_apply_job **out,
                        struct ctr_err *err);
/* Compressed bytes read so far. */
uint64_t ctr_apply_job_progress(struct ctr_apply_job *j);
/* 1 once the apply has finished (ctr_apply_job_wait then returns at once). */
int ctr_apply_job_done(struct ctr_apply_job *j);
void ctr_apply_job_source_complete(struct ctr_apply_job *j, int64_t size);
void ctr_apply_job_source_failed(struct ctr_apply_job *j);
/* Wait for the end: 0 and *res, or -1 and *err. */
int ctr_apply_job_wait(struct ctr_apply_job *j, struct ctr_layer_apply_result *res,
                       struct ctr_err *err);
/* Abandons a job still running (its source is marked failed), waits for it, frees it. */
void ctr_apply_job_free(struct ctr_apply_job *j);

#endif

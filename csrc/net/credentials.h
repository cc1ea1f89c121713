/* Programs run for the registry client (docker-credential-* helpers) and secrets read from
 * the terminal.
 *
 * A helper is run with an argv and pipes, never through a shell: its secret travels on its
 * stdin and stdout only, never in an argv, an environment variable or a file. */
#ifndef CTR_HELPER_H
#define CTR_HELPER_H

#include <stddef.h>

#include "base/error.h"

/* Run argv[0] (looked up in PATH) with input on its stdin; its stdout (at most cap bytes) into
 * *out (free it), its exit status into *status (128+N for signal N).  Killed after timeout_ms.
 * stderr is discarded: a helper may print the secret there on failure. */
int ctr_run_capture(const char *const *argv, const char *input, size_t input_len, size_t cap,
                    int timeout_ms, char **out, size_t *out_len, int *status,
                    struct ctr_err *err);

/* Print prompt on the controlling terminal and read a line from it with echo off (restored
 * afterwards, also when interrupted).  ENOTTY when there is no terminal. */
int ctr_read_secret(const char *prompt, char *out, size_t outlen, struct ctr_err *err);

#endif

/* /proc/PID/stat, the one reader of it in the core.  Field 2 (comm, in parentheses) is the
 * process's own choice of at most 15 bytes and may hold spaces and parentheses itself
 * ("a) b (c"): the fields after it are found after the LAST ')' of the line, never by
 * counting spaces from its start.  libc only: build/ctrlua-monitor links it. */
#ifndef CTR_PROCSTAT_H
#define CTR_PROCSTAT_H

#include <sys/types.h>

#include "base/error.h"

/* Field 22: the start time in clock ticks since boot; with the pid it names one process
 * across pid reuse. */
#define CTR_PROCSTAT_STARTTIME 22

/* Field `field` (numbered as proc(5) numbers them; 3 or later: the numeric fields after comm)
 * of the text of a /proc/PID/stat line, as a number; -1 when the text has no such field. */
int ctr_procstat_parse(const char *line, int field, long long *value);

/* Read /proc/PID/stat and take field `field` of it (as ctr_procstat_parse). */
int ctr_procstat_field(pid_t pid, int field, long long *value, struct ctr_err *err);

/* What the runtime asks of a process: its state letter (field 3: R, S, Z, X, ...), its parent
 * (4), its start time (22) and, for a zombie, its wait status (52: the kernel keeps it until
 * the zombie is reaped, so an exit is known even where nobody reaps). */
struct ctr_procstat {
    char state;
    pid_t ppid;
    long long start_time;
    int exit_status;
};

/* The fields above of the text of a /proc/PID/stat line; -1 when one is missing. */
int ctr_procstat_parse_all(const char *line, struct ctr_procstat *st);

/* Read /proc/PID/stat into *st.  A process that is gone: ENOENT (or ESRCH). */
int ctr_procstat_read(pid_t pid, struct ctr_procstat *st, struct ctr_err *err);

#endif

/* /proc/PID/stat: see base/procstat.h. */
#include "base/procstat.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/cleanup.h"
#include "base/files.h"

int ctr_procstat_parse(const char *line, int field, long long *value)
{
    const char *p = strrchr(line, ')');
    if (p == NULL || field < 3 || p[1] != ' ')
        return -1;
    p += 2; /* field 3 */
    for (int f = 3; f < field; f++) {
        p = strchr(p, ' ');
        if (p == NULL)
            return -1;
        p++;
    }
    char *end;
    errno = 0;
    long long v = strtoll(p, &end, 10);
    if (end == p || errno != 0 || (*end != ' ' && *end != '\n' && *end != '\0'))
        return -1;
    *value = v;
    return 0;
}

static ssize_t read_stat(pid_t pid, char *buf, size_t cap, char *path, size_t plen,
                         struct ctr_err *err)
{
    snprintf(path, plen, "/proc/%d/stat", (int)pid);
    cleanup_close int fd = RETRY(open(path, O_RDONLY | O_CLOEXEC));
    if (fd < 0)
        return ctr_fail(err, errno, "open `%s'", path);
    ssize_t n = ctr_read_full(fd, buf, cap - 1);
    if (n < 0)
        return ctr_fail(err, errno, "read `%s'", path);
    buf[n] = '\0';
    return n;
}

int ctr_procstat_field(pid_t pid, int field, long long *value, struct ctr_err *err)
{
    /* the whole line: 52 numbers of at most 20 digits each after a comm of 64 bytes at most */
    char path[64], buf[4096];
    if (read_stat(pid, buf, sizeof buf, path, sizeof path, err) < 0)
        return -1;
    if (ctr_procstat_parse(buf, field, value) < 0)
        return ctr_fail(err, 0, "`%s': no field %d", path, field);
    return 0;
}

int ctr_procstat_parse_all(const char *line, struct ctr_procstat *st)
{
    const char *p = strrchr(line, ')');
    if (p == NULL || p[1] != ' ' || p[2] == '\0' || p[3] != ' ')
        return -1;
    long long ppid, start, status;
    if (ctr_procstat_parse(line, 4, &ppid) < 0 ||
        ctr_procstat_parse(line, CTR_PROCSTAT_STARTTIME, &start) < 0)
        return -1;
    /* field 52 is there since Linux 3.5; older kernels: no status */
    if (ctr_procstat_parse(line, 52, &status) < 0)
        status = -1;
    st->state = p[2];
    st->ppid = (pid_t)ppid;
    st->start_time = start;
    st->exit_status = (int)status;
    return 0;
}

int ctr_procstat_read(pid_t pid, struct ctr_procstat *st, struct ctr_err *err)
{
    char path[64], buf[4096];
    if (read_stat(pid, buf, sizeof buf, path, sizeof path, err) < 0)
        return -1;
    if (ctr_procstat_parse_all(buf, st) < 0)
        return ctr_fail(err, EPROTO, "`%s': not a stat line", path);
    return 0;
}

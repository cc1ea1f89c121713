/* build/ctrlua-monitor: the monitor's process image after create (see monitor/monitor.h).  Linked
 * statically with monitor/monitor.c, base/files.c and base/error.c only, so a sleeping container costs a few
 * hundred KiB of resident memory.  Started only by ctr_monitor_spawn:
 *   ctrlua-monitor DIR INIT_PID LISTEN_FD REPORT_FD OOM_FILE|- LOGGER_PID CONSOLE_FD OUT_FD,ERR_FD
 * (-1 for a console or fifo fd the task does not have) */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "monitor/monitor.h"

int main(int argc, char **argv)
{
    if (argc != 9) {
        fprintf(stderr, "ctrlua-monitor: started by ctrlua only\n");
        return 2;
    }
    struct ctr_monitor_args a = {
        .dir = argv[1],
        .pid = (pid_t)atoi(argv[2]),
        .listen_fd = atoi(argv[3]),
        .report_fd = atoi(argv[4]),
        .oom_file = strcmp(argv[5], "-") ? argv[5] : NULL,
        .logger = (pid_t)atoi(argv[6]),
        .console_fd = atoi(argv[7]),
        .fifo_fds = {-1, -1},
    };
    if (sscanf(argv[8], "%d,%d", &a.fifo_fds[0], &a.fifo_fds[1]) != 2) {
        fprintf(stderr, "ctrlua-monitor: started by ctrlua only\n");
        return 2;
    }
    struct ctr_err e;
    if (ctr_monitor_run(&a, &e) < 0) {
        kill(a.pid, SIGKILL);
        if (a.report_fd >= 0) {
            struct ctr_monitor_report r = {.ok = 0, .err = e};
            if (write(a.report_fd, &r, sizeof r) < 0)
                return 1;
        }
        return 1;
    }
    return 0;
}

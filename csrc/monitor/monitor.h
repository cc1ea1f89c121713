/* The monitor: one small process per detached task, in place of containerd + shim.
 *
 * `ctr_monitor_spawn` (called by ctrlua) forks, the child calls setsid() and forks again, so
 * the monitor belongs to no session and no caller waits for it; the grandchild (the monitor)
 * becomes a child subreaper, starts the logging binary if any, and calls ctr_create itself,
 * so it is the container init's parent.  It then binds STATE/NS/ID/monitor.sock and execve's
 * the tiny static build/ctrlua-monitor (same pid, still the init's parent; no Lua, no libraries
 * mapped), which runs `ctr_monitor_run`: it writes `status`, reports the pid to ctrlua over a
 * pipe, and supervises:
 *
 *   signalfd(SIGCHLD)  reap the init (and orphans); record exit code, exit time and OOM in
 *                      `status` (fsync + rename); append a /tasks/exit event; answer waiters
 *   monitor.sock       SOCK_SEQPACKET, 0600 in a 0700 directory; one request a datagram:
 *                        "start"   read the exec fifo (the init execs), status running
 *                        "wait"    reply "exit CODE" once the init has exited
 *                        "pause" / "resume"  record the status the caller set in the freezer
 *                        "delete"  refused while the init runs; else reply and exit
 *                        "console" the pty master of a process.terminal task, sent with
 *                                  the reply "ok" (SCM_RIGHTS), for `tasks attach`
 *                      replies are "ok", "exit CODE" or "error: MESSAGE"
 *
 * --fifo-dir: containerd's shim holds both ends of the output fifos while it copies and closes
 * them when the process exits, so output that no reader had taken is dropped with the pipe.
 * The monitor holds a write end of each instead; when the init exits, a fifo that a reader
 * has open, or that is empty, is closed (the reader drains it and sees EOF, as with
 * containerd); one with unread data and no reader is kept until the delete, so a late reader
 * still gets the output (then EOF when the task is deleted).
 *
 * Nothing polls with sleeps: the monitor sleeps in poll(2) on those fds.  If it is killed the
 * init is reparented and keeps running; ctrlua then judges the state from the pid and its
 * start time (ctr.tasks). */
#ifndef CTR_MONITOR_H
#define CTR_MONITOR_H

#include <stdint.h>
#include <sys/types.h>

#include "base/error.h"
#include "runtime/create.h"

#define CTR_MONITOR_SOCK "monitor.sock"
#define CTR_MONITOR_CONSOLE_SOCK "console.sock"

struct ctr_monitor_args {
    const char *dir;       /* the task's state directory */
    pid_t pid;             /* the init, our child */
    int listen_fd;         /* bound, listening monitor.sock */
    int report_fd;         /* where the spawner waits for struct ctr_monitor_report, or -1 */
    const char *oom_file;  /* memory.events (v2) or memory.oom_control (v1), or NULL */
    pid_t logger;          /* the logging binary, or 0 */
    int console_fd;        /* the pty master of a process.terminal init, or -1 */
    int fifo_fds[2];       /* write ends of the --fifo-dir stdout/stderr fifos, or -1 */
};

struct ctr_monitor_report {
    int ok;
    pid_t pid;       /* the init */
    pid_t monitor;
    struct ctr_err err;
    int init_died, init_status, init_oom; /* a failed create's struct ctr_init_death */
};

/* Supervise until the task is deleted; returns 0 then, -1 on a setup failure. */
int ctr_monitor_run(const struct ctr_monitor_args *a, struct ctr_err *err);

struct ctr_monitor_spawn_opts {
    const char *bundle;       /* the state directory, also the bundle */
    const char *exec_fifo;
    const char *pid_file;     /* may be NULL */
    int no_pivot;
    int stdio[3];             /* the init's 0, 1, 2 (for a logger, 1 and 2 are replaced) */
    const char *monitor_bin;  /* build/ctrlua-monitor */
    const char *oom_file;     /* may be NULL */
    char *const *logger_argv; /* binary:// logger, or NULL */
    char *const *logger_envp;
    int console;              /* process.terminal: the init sends its pty master to the
                               * monitor over console.sock in the task directory (removed
                               * once received); the monitor keeps it for attachers */
    const char *id;           /* the container id (the hooks' state), may be NULL */
    int keep_fifos;           /* stdio[1] and stdio[2] are fifos (--fifo-dir): the monitor
                               * holds a write end of each, so output the container wrote and
                               * nobody read survives its exit until a reader or the delete
                               * comes (see ctr_monitor_run) */
    struct ctr_init_death *death; /* out, may be NULL: an init that died on its own during
                                   * create (runtime/create.h) */
    const char *const *fsync;     /* NULL-terminated, may be NULL: files and directories to
                                   * fsync while the init is created, in this order (a
                                   * durability point of the caller's, overlapped with the
                                   * create) */
    const char *const *syncfs;    /* the same, for a path on each file system to syncfs after
                                   * them; a failure of either is the error, with the init
                                   * killed and the monitor gone */
};

/* Start the monitor, which creates the init.  Returns the init's pid (the monitor's in
 * *monitor) once the init waits on the exec fifo and every o->fsync and o->syncfs is done, or -1 with
 * the create's error (or the syncfs's, the task undone: no init, no monitor left). */
pid_t ctr_monitor_spawn(const struct ctr_monitor_spawn_opts *o, pid_t *monitor,
                        struct ctr_err *err);

/* Connect to dir's monitor.sock, send `req`, and wait for the reply (blocking; a waiter may
 * wait for as long as the task runs).  ECONNREFUSED/ENOENT: no monitor.  A monitor that
 * dies while we wait is EPIPE. */
int ctr_monitor_request(const char *dir, const char *req, char *reply, size_t cap,
                        struct ctr_err *err);

/* The same, for a reply that may carry an fd (the "console" request): *fd is the received
 * fd (CLOEXEC), or -1 when the reply carried none. */
int ctr_monitor_request_fd(const char *dir, const char *req, char *reply, size_t cap, int *fd,
                           struct ctr_err *err);

/* The requests of the monitor's socket, as ctr_monitor_parse_request reads a datagram: the
 * text up to its first NUL is the request's name.  A datagram longer than
 * CTR_MONITOR_REQ_MAX bytes is cut there (SOCK_SEQPACKET drops the rest). */
#define CTR_MONITOR_REQ_MAX 63
enum ctr_monitor_req {
    CTR_MONITOR_UNKNOWN,
    CTR_MONITOR_START,
    CTR_MONITOR_WAIT,
    CTR_MONITOR_PAUSE,
    CTR_MONITOR_RESUME,
    CTR_MONITOR_CONSOLE,
    CTR_MONITOR_DELETE,
};
enum ctr_monitor_req ctr_monitor_parse_request(const char *buf, size_t n);

/* The client's half of a request, once it is sent: receive the monitor's one reply datagram on
 * the connected socket s into reply_buf (NUL-terminated, cut to cap - 1 bytes) and the fd it
 * may carry into *fdp (-1 when none; with fdp NULL a received fd is closed).  `dir` names the
 * task in errors. */
int ctr_monitor_recv_reply(int s, const char *dir, char *reply_buf, size_t cap, int *fdp,
                           struct ctr_err *err);

/* STATE/NS/events.log: one JSON line an event, appended by the monitors and by ctrlua.  It is
 * bounded: an append that would take it past CTR_EVENTS_MAX starts a new one, the old one
 * becoming events.log.1 (the one before that is dropped).  Each append is one write(2) to an
 * O_APPEND file under a shared flock of the log, the rotation a rename under an exclusive
 * one, so a line is never split, lost to a rename, or written to a file already rotated
 * away: readers that hold the shared lock see both files whole and in order. */
#define CTR_EVENTS_MAX (1024 * 1024)

/* Append line (len bytes, its newline included) to the log at path, rotating past `limit`
 * bytes (0: CTR_EVENTS_MAX). */
int ctr_events_append(const char *path, const char *line, size_t len, size_t limit,
                      struct ctr_err *err);

/* Where a reader of the log is: the inode of the file it read last and how far (0, 0: at
 * the start of it all). */
struct ctr_events_pos {
    uint64_t ino, offset;
};

/* What the log at path holds past *pos (NULL: everything, path.1 then path), read under the
 * shared lock, malloc'd and NUL-terminated (empty when there is nothing); *pos moves to its
 * end.  A reader that fell two rotations behind gets both files whole (what was between is
 * gone). */
int ctr_events_read(const char *path, struct ctr_events_pos *pos, char **out, size_t *len,
                    struct ctr_err *err);

/* Wait for a process that is not our child to exit (pidfd + poll).  0 once it has, -1 on
 * error (ESRCH: it was already gone). */
int ctr_pid_wait(pid_t pid, struct ctr_err *err);

#endif

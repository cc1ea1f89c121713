--- Docker's default seccomp profile as containerd 1.6 builds it (contrib/seccomp/
-- seccomp_default.go, DefaultProfile), kept as data: ctr.seccomp.default_profile(spec) turns it
-- into an OCI linux.seccomp table for one spec and one host.
--
-- The profile: default action SCMP_ACT_ERRNO (EPERM); the architectures of the host; `allow`,
-- allowed unconditionally; personality(2) allowed for a few personas only; ptrace(2) allowed
-- on kernels from 4.8 (before, ptrace could bypass seccomp); per-architecture extras; extra
-- syscalls unlocked by each capability in the bounding set; and without CAP_SYS_ADMIN, clone(2)
-- only without namespace flags (a MASKED_EQ rule) and clone3(2) answering ENOSYS, so that libc
-- falls back to clone (clone3's flags live in memory, out of seccomp's reach; moby#42681).
--
-- ctrlua: containerd 1.6 keeps socket(2) unconditional; newer moby profiles deny AF_VSOCK.  We
-- follow containerd 1.6 here.
-- @module ctr.spec.seccomp_default

local M = {}

--- The default action, and the errno it returns (runc's default for SCMP_ACT_ERRNO).
M.default_action = "SCMP_ACT_ERRNO"
M.EPERM = 1
M.ENOSYS = 38

--- Architectures added to the filter, by host architecture (Go's GOARCH names).
M.arches = {
  amd64 = { "SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32" },
  arm64 = { "SCMP_ARCH_ARM", "SCMP_ARCH_AARCH64" },
  mips64 = { "SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64", "SCMP_ARCH_MIPS64N32" },
  mips64n32 = { "SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64", "SCMP_ARCH_MIPS64N32" },
  mipsel64 = { "SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64", "SCMP_ARCH_MIPSEL64N32" },
  mipsel64n32 = { "SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64", "SCMP_ARCH_MIPSEL64N32" },
  s390x = { "SCMP_ARCH_S390", "SCMP_ARCH_S390X" },
  riscv64 = { "SCMP_ARCH_RISCV64" },
}

--- The host's GOARCH by the native libseccomp architecture.
M.goarch = {
  SCMP_ARCH_X86_64 = "amd64", SCMP_ARCH_X86 = "386", SCMP_ARCH_X32 = "amd64",
  SCMP_ARCH_AARCH64 = "arm64", SCMP_ARCH_ARM = "arm",
  SCMP_ARCH_MIPS64 = "mips64", SCMP_ARCH_MIPS64N32 = "mips64n32",
  SCMP_ARCH_MIPSEL64 = "mipsel64", SCMP_ARCH_MIPSEL64N32 = "mipsel64n32",
  SCMP_ARCH_MIPS = "mips", SCMP_ARCH_MIPSEL = "mipsle",
  SCMP_ARCH_PPC64LE = "ppc64le", SCMP_ARCH_PPC64 = "ppc64",
  SCMP_ARCH_S390X = "s390x", SCMP_ARCH_S390 = "s390", SCMP_ARCH_RISCV64 = "riscv64",
}

--- Allowed unconditionally.
M.allow = {
  "accept", "accept4", "access", "adjtimex", "alarm", "bind", "brk", "capget", "capset",
  "chdir", "chmod", "chown", "chown32", "clock_adjtime", "clock_adjtime64", "clock_getres",
  "clock_getres_time64", "clock_gettime", "clock_gettime64", "clock_nanosleep",
  "clock_nanosleep_time64", "close", "close_range", "connect", "copy_file_range", "creat",
  "dup", "dup2", "dup3", "epoll_create", "epoll_create1", "epoll_ctl", "epoll_ctl_old",
  "epoll_pwait", "epoll_pwait2", "epoll_wait", "epoll_wait_old", "eventfd", "eventfd2",
  "execve", "execveat", "exit", "exit_group", "faccessat", "faccessat2", "fadvise64",
  "fadvise64_64", "fallocate", "fanotify_mark", "fchdir", "fchmod", "fchmodat", "fchown",
  "fchown32", "fchownat", "fcntl", "fcntl64", "fdatasync", "fgetxattr", "flistxattr", "flock",
  "fork", "fremovexattr", "fsetxattr", "fstat", "fstat64", "fstatat64", "fstatfs", "fstatfs64",
  "fsync", "ftruncate", "ftruncate64", "futex", "futex_time64", "futex_waitv", "futimesat",
  "getcpu", "getcwd", "getdents", "getdents64", "getegid", "getegid32", "geteuid",
  "geteuid32", "getgid", "getgid32", "getgroups", "getgroups32", "getitimer", "getpeername",
  "getpgid", "getpgrp", "getpid", "getppid", "getpriority", "getrandom", "getresgid",
  "getresgid32", "getresuid", "getresuid32", "getrlimit", "get_robust_list", "getrusage",
  "getsid", "getsockname", "getsockopt", "get_thread_area", "gettid", "gettimeofday", "getuid",
  "getuid32", "getxattr", "inotify_add_watch", "inotify_init", "inotify_init1",
  "inotify_rm_watch", "io_cancel", "ioctl", "io_destroy", "io_getevents", "io_pgetevents",
  "io_pgetevents_time64", "ioprio_get", "ioprio_set", "io_setup", "io_submit",
  "io_uring_enter", "io_uring_register", "io_uring_setup", "ipc", "kill", "landlock_add_rule",
  "landlock_create_ruleset", "landlock_restrict_self", "lchown", "lchown32", "lgetxattr",
  "link", "linkat", "listen", "listxattr", "llistxattr", "_llseek", "lremovexattr", "lseek",
  "lsetxattr", "lstat", "lstat64", "madvise", "membarrier", "memfd_create", "memfd_secret",
  "mincore", "mkdir", "mkdirat", "mknod", "mknodat", "mlock", "mlock2", "mlockall", "mmap",
  "mmap2", "mprotect", "mq_getsetattr", "mq_notify", "mq_open", "mq_timedreceive",
  "mq_timedreceive_time64", "mq_timedsend", "mq_timedsend_time64", "mq_unlink", "mremap",
  "msgctl", "msgget", "msgrcv", "msgsnd", "msync", "munlock", "munlockall", "munmap",
  "nanosleep", "newfstatat", "_newselect", "open", "openat", "openat2", "pause", "pidfd_open",
  "pidfd_send_signal", "pipe", "pipe2", "poll", "ppoll", "ppoll_time64", "prctl", "pread64",
  "preadv", "preadv2", "prlimit64", "process_mrelease", "pselect6", "pselect6_time64",
  "pwrite64", "pwritev", "pwritev2", "read", "readahead", "readlink", "readlinkat", "readv",
  "recv", "recvfrom", "recvmmsg", "recvmmsg_time64", "recvmsg", "remap_file_pages",
  "removexattr", "rename", "renameat", "renameat2", "restart_syscall", "rmdir", "rseq",
  "rt_sigaction", "rt_sigpending", "rt_sigprocmask", "rt_sigqueueinfo", "rt_sigreturn",
  "rt_sigsuspend", "rt_sigtimedwait", "rt_sigtimedwait_time64", "rt_tgsigqueueinfo",
  "sched_getaffinity", "sched_getattr", "sched_getparam", "sched_get_priority_max",
  "sched_get_priority_min", "sched_getscheduler", "sched_rr_get_interval",
  "sched_rr_get_interval_time64", "sched_setaffinity", "sched_setattr", "sched_setparam",
  "sched_setscheduler", "sched_yield", "seccomp", "select", "semctl", "semget", "semop",
  "semtimedop", "semtimedop_time64", "send", "sendfile", "sendfile64", "sendmmsg", "sendmsg",
  "sendto", "setfsgid", "setfsgid32", "setfsuid", "setfsuid32", "setgid", "setgid32",
  "setgroups", "setgroups32", "setitimer", "setpgid", "setpriority", "setregid", "setregid32",
  "setresgid", "setresgid32", "setresuid", "setresuid32", "setreuid", "setreuid32",
  "setrlimit", "set_robust_list", "setsid", "setsockopt", "set_thread_area",
  "set_tid_address", "setuid", "setuid32", "setxattr", "shmat", "shmctl", "shmdt", "shmget",
  "shutdown", "sigaltstack", "signalfd", "signalfd4", "sigprocmask", "sigreturn", "socket",
  "socketcall", "socketpair", "splice", "stat", "stat64", "statfs", "statfs64", "statx",
  "symlink", "symlinkat", "sync", "sync_file_range", "syncfs", "sysinfo", "tee", "tgkill",
  "time", "timer_create", "timer_delete", "timer_getoverrun", "timer_gettime",
  "timer_gettime64", "timer_settime", "timer_settime64", "timerfd_create", "timerfd_gettime",
  "timerfd_gettime64", "timerfd_settime", "timerfd_settime64", "times", "tkill", "truncate",
  "truncate64", "ugetrlimit", "umask", "uname", "unlink", "unlinkat", "utime", "utimensat",
  "utimensat_time64", "utimes", "vfork", "vmsplice", "wait4", "waitid", "waitpid", "write",
  "writev",
}

--- personality(2) is allowed only for these personas (PER_LINUX, PER_LINUX32,
-- UNAME26, UNAME26|PER_LINUX32, and 0xffffffff which queries the current one), one rule each.
M.personality = { 0x0, 0x0008, 0x20000, 0x20008, 0xffffffff }

--- Allowed from this kernel version on (before 4.8 ptrace could bypass seccomp).
M.by_kernel = {
  { kernel = 4, major = 8, names = { "ptrace" } },
}

--- Allowed on one host architecture (GOARCH).
M.by_arch = {
  ppc64le = { "sync_file_range2", "swapcontext" },
  arm = { "arm_fadvise64_64", "arm_sync_file_range", "sync_file_range2", "breakpoint",
    "cacheflush", "set_tls" },
  amd64 = { "arch_prctl", "modify_ldt" },
  ["386"] = { "modify_ldt" },
  s390 = { "s390_pci_mmio_read", "s390_pci_mmio_write", "s390_runtime_instr" },
  riscv64 = { "riscv_flush_icache" },
}
M.by_arch.arm64 = M.by_arch.arm
M.by_arch.s390x = M.by_arch.s390

--- Allowed when the capability is in the bounding set.  One rule per capability, added in the
-- order of spec.process.capabilities.bounding (as containerd's loop does).
M.by_cap = {
  CAP_DAC_READ_SEARCH = { "open_by_handle_at" },
  CAP_SYS_ADMIN = { "bpf", "clone", "clone3", "fanotify_init", "fsconfig", "fsmount", "fsopen",
    "fspick", "lookup_dcookie", "mount", "mount_setattr", "move_mount", "name_to_handle_at",
    "open_tree", "perf_event_open", "quotactl", "quotactl_fd", "setdomainname", "sethostname",
    "setns", "syslog", "umount", "umount2", "unshare" },
  CAP_SYS_BOOT = { "reboot" },
  CAP_SYS_CHROOT = { "chroot" },
  CAP_SYS_MODULE = { "delete_module", "init_module", "finit_module" },
  CAP_SYS_PACCT = { "acct" },
  CAP_SYS_PTRACE = { "kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv",
    "process_vm_writev", "ptrace" },
  CAP_SYS_RAWIO = { "iopl", "ioperm" },
  CAP_SYS_TIME = { "settimeofday", "stime", "clock_settime", "clock_settime64" },
  CAP_SYS_TTY_CONFIG = { "vhangup" },
  CAP_SYSLOG = { "syslog" },
  CAP_BPF = { "bpf" },
  CAP_PERFMON = { "perf_event_open" },
}

--- The namespace flags of clone(2) refused without CAP_SYS_ADMIN: CLONE_NEWNS | CLONE_NEWUTS |
-- CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWCGROUP.
M.CLONE_NS_FLAGS = 0x00020000 + 0x04000000 + 0x08000000 + 0x10000000 + 0x20000000
  + 0x40000000 + 0x02000000

--- Which argument of clone(2) holds the flags: the second on s390 (its argument order differs),
-- the first elsewhere.
M.clone_flags_index = { s390 = 1, s390x = 1 }

return M

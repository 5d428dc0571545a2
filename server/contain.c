/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Confinement of a session process, so that one taken over (say through the
 * driver's PTX JIT on guest input) can hurt only its own tenant.  Every
 * process of the server runs as one uid, so without this a session could
 * write the whole scheduler state, signal or trace its siblings and the
 * parent, and read or write their memory.  Applied at the start of every
 * session, before the first byte from the client is read and before CUDA:
 *   - its scheduler slot is claimed with the identity the server gave it,
 *     and then everything but that slot's page is mapped read-only from a
 *     sealed memfd (sched.c): no other session's entry, no identity, no
 *     limit or priority is writable, and the view cannot be made writable;
 *   - if it runs as root, every capability is dropped (a root process with
 *     CAP_SYS_PTRACE or CAP_KILL would step over the rest);
 *   - no_new_privs and a seccomp filter: a denylist (EPERM) of what a CUDA
 *     session never needs and could reach others with (tracing, other
 *     processes' memory, signals to any process but itself, namespaces,
 *     keys, BPF, perf, io_uring, module and system calls, growing its
 *     writable page with mremap).  Everything else stays allowed, so the
 *     NVIDIA driver and runtime work as they do natively (ioctl, mmap,
 *     threads, futexes, eventfds, memfds, dlopen, sockets, fork and exec:
 *     a child inherits the filter).
 * The parent makes itself non-dumpable before its first fork (children
 * inherit it), so no process of the server can be traced or have its
 * /proc/PID/mem, fd or environ opened by another of the same uid.
 * docs/server.md says what a confined session can and cannot still do.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <linux/capability.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "contain.h"
#include "scheduler.h"
#include "server_internal.h"

int vgpu_contain_parent(bool sessions_on)
{
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) {
        int rc = -errno;

        vgpu_log(VGPU_LOG_ERROR, "cannot make the server non-dumpable: %s", strerror(-rc));
        return rc;
    }
    if (sessions_on)
        vgpu_log(VGPU_LOG_INFO, "sessions run confined (read-only scheduler state but their own "
                 "slot, seccomp filter); the server is not dumpable");
    else
        vgpu_log(VGPU_LOG_WARN, "sessions run unconfined (contain = off or --no-contain): a session "
                 "taken over can write every tenant's scheduler state and signal other sessions; "
                 "for debugging only");
    return 0;
}

int vgpu_contain_drop_capabilities(void)
{
    struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
    struct __user_cap_data_struct d[2];

    if (geteuid() != 0)
        return 0;
    for (int cap = 0; cap < 64; cap++)
        if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL)
            return -errno;
    memset(d, 0, sizeof(d));
    return syscall(SYS_capset, &h, d) < 0 ? -errno : 0;
}

/* Denied outright: nothing a CUDA session does needs them. */
static const char *const denied[] = {
    /* other processes: tracing, memory, handles, signals by pidfd */
    "ptrace", "process_vm_readv", "process_vm_writev", "process_madvise", "kcmp",
    "pidfd_open", "pidfd_send_signal", "pidfd_getfd", "tkill",
    /* leaving the server's session and process group */
    "setsid", "setpgid",
    /* namespaces and mounts */
    "unshare", "setns", "mount", "umount2", "pivot_root", "chroot", "move_mount", "open_tree",
    "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr",
    /* kernel interfaces with a large attack surface, or that bypass this filter */
    "keyctl", "add_key", "request_key", "bpf", "perf_event_open", "userfaultfd",
    "io_uring_setup", "io_uring_enter", "io_uring_register", "open_by_handle_at",
    "name_to_handle_at", "fanotify_init", "lookup_dcookie", "remap_file_pages",
    /* the system as a whole */
    "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module", "reboot",
    "swapon", "swapoff", "acct", "settimeofday", "clock_settime", "clock_adjtime", "adjtimex",
    "sethostname", "setdomainname", "iopl", "ioperm", "quotactl", "quotactl_fd", "syslog",
    "vhangup", "uselib",
};

/* Namespace and re-parenting flags of clone(); clone3 (flags in memory) is answered ENOSYS. */
static const uint64_t clone_denied[] = {
    CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET,
    CLONE_NEWCGROUP, CLONE_PARENT,
};

/* One comparison of argument n (libseccomp's macros leave fields out, which clang warns of). */
static struct scmp_arg_cmp arg(unsigned int n, enum scmp_compare op, uint64_t a)
{
    return (struct scmp_arg_cmp){ .arg = n, .op = op, .datum_a = a, .datum_b = 0 };
}

/* Argument n's low 32 bits equal v (an int or unsigned argument: the kernel ignores the rest). */
static struct scmp_arg_cmp arg32_eq(unsigned int n, uint32_t v)
{
    return (struct scmp_arg_cmp){ .arg = n, .op = SCMP_CMP_MASKED_EQ, .datum_a = 0xffffffffu,
                                  .datum_b = v };
}

#define NE SCMP_CMP_NE
#define EPERM_ACT SCMP_ACT_ERRNO(EPERM)
#define RULE(nr, ...) \
    do { \
        if ((rc = seccomp_rule_add(ctx, EPERM_ACT, (nr), __VA_ARGS__)) < 0) \
            return rc; \
    } while (0)

/* Calls that name another process: allowed for this process only (signal 0, a probe, to any). */
static int add_pid_rules(scmp_filter_ctx ctx, uint64_t self)
{
    int rc;

    RULE(SCMP_SYS(kill), 2, arg(0, NE, self), arg(1, NE, 0));
    RULE(SCMP_SYS(tgkill), 2, arg(0, NE, self), arg(2, NE, 0));
    RULE(SCMP_SYS(rt_sigqueueinfo), 1, arg(0, NE, self));
    RULE(SCMP_SYS(rt_tgsigqueueinfo), 1, arg(0, NE, self));
    /* another process's limits may be read, not set; pages of others are not moved */
    RULE(SCMP_SYS(prlimit64), 2, arg(0, NE, 0), arg(2, NE, 0));
    RULE(SCMP_SYS(move_pages), 1, arg(0, NE, 0));
    RULE(SCMP_SYS(migrate_pages), 1, arg(0, NE, 0));
    RULE(SCMP_SYS(ioprio_set), 1, arg(1, NE, 0));
    /* SIGIO to another process: a file's owner may be this process only */
    RULE(SCMP_SYS(fcntl), 2, arg32_eq(1, F_SETOWN), arg(2, NE, self));
    RULE(SCMP_SYS(fcntl), 1, arg32_eq(1, F_SETOWN_EX));
    RULE(SCMP_SYS(ioctl), 1, arg32_eq(1, FIOSETOWN));
    RULE(SCMP_SYS(ioctl), 1, arg32_eq(1, SIOCSPGRP));
    RULE(SCMP_SYS(ioctl), 1, arg32_eq(1, TIOCSPGRP));
    /* typing into the server's terminal, if it has one */
    RULE(SCMP_SYS(ioctl), 1, arg32_eq(1, TIOCSTI));
    return 0;
}

static int add_rules(scmp_filter_ctx ctx, uint64_t self, const void *page, size_t page_len)
{
    int rc;

    for (size_t i = 0; i < sizeof(denied) / sizeof(denied[0]); i++) {
        int nr = seccomp_syscall_resolve_name(denied[i]);

        if (nr == __NR_SCMP_ERROR)
            continue;               /* not a call on this architecture */
        RULE(nr, 0);
    }
    if ((rc = add_pid_rules(ctx, self)) < 0)
        return rc;
    for (size_t i = 0; i < sizeof(clone_denied) / sizeof(clone_denied[0]); i++)
        RULE(SCMP_SYS(clone), 1, (struct scmp_arg_cmp){ .arg = 0, .op = SCMP_CMP_MASKED_EQ,
                                                         .datum_a = clone_denied[i],
                                                         .datum_b = clone_denied[i] });
    /* glibc falls back to clone() when clone3 is missing; clone3's flags cannot be inspected */
    rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
    if (rc < 0)
        return rc;
    /* the session's one writable page of the scheduler state must not grow over its neighbours */
    if (page)
        RULE(SCMP_SYS(mremap), 1, (struct scmp_arg_cmp){ .arg = 0, .op = SCMP_CMP_MASKED_EQ,
                                                          .datum_a = ~(uint64_t)(page_len - 1),
                                                          .datum_b = (uint64_t)(uintptr_t)page });
    return 0;
}

/* The filter; page (the session's writable scheduler page) may be NULL: a TLS relay has none. */
static int install_filter(void *page, size_t page_len)
{
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    int rc;

    if (!ctx)
        return -ENOMEM;
    /* other architectures' calls (int 0x80 on x86_64) are killed: libseccomp's default */
    rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
    /*
     * SPEC_ALLOW: kernels booted with spec_store_bypass_disable=seccomp (the
     * default before 5.16) turn on the Spectre v4 mitigation (SSBD) for
     * every filtered thread, which slows all of the session's code.  SSBD
     * guards a process's memory from code sandboxed inside that process; a
     * session runs no such code and holds only its own tenant's data.
     */
    if (!rc)
        rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_SSB, 1);
    if (!rc)
        rc = add_rules(ctx, (uint64_t)getpid(), page, page_len);
    if (!rc)
        rc = seccomp_load(ctx);
    seccomp_release(ctx);
    return rc;
}

int vgpu_contain_relay(void)
{
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        return -errno;
    return install_filter(NULL, 0);
}

int vgpu_contain_session(const struct vgpu_identity *who, bool on)
{
    struct vgpu_sched_join j = { .vm_id = who->vm_id, .pool = who->pool,
                                 .priority = who->priority, .client = "",
                                 .max_vm = vgpu_config_vm_sessions(vgpu_cfg, who->vm_id) };
    const char *what = NULL;
    size_t page_len = 0;
    void *page;
    int rc;

    /*
     * the slot is claimed while this process may still write identities; a
     * refusal (-ENOSPC, -EUSERS) is told to the client by the handshake's join
     */
    vgpu_sched_claim(&j);
    if (!on) {
        vgpu_log(VGPU_LOG_DEBUG, "session not confined (contain = off)");
        return 0;
    }
    if ((rc = vgpu_sched_confine()) < 0)
        what = "cannot map the scheduler state read-only";
    else if ((rc = vgpu_contain_drop_capabilities()) < 0)
        what = "cannot drop root's capabilities";
    else if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        rc = -errno, what = "cannot set no_new_privs";
    else if ((page = vgpu_sched_own_page(&page_len)), (rc = install_filter(page, page_len)) < 0)
        what = "cannot install the seccomp filter";
    if (rc < 0)
        vgpu_log(VGPU_LOG_ERROR, "session refused: %s: %s (the kernel needs memfd sealing, 5.1 or "
                 "later, and seccomp; contain = off in [server] runs sessions unconfined, for "
                 "debugging)", what, strerror(-rc));
    else
        vgpu_log(VGPU_LOG_DEBUG, "session confined");
    return rc;
}

/* The sessions' user, when the server started as root and was given one. */
static struct {
    bool set;
    char name[64];
    uid_t uid;
    gid_t gid;
    gid_t groups[64];
    int ngroups;
} run_as;

int vgpu_contain_user_init(const char *user)
{
    struct passwd *pw;

    if (!user || !*user) {
        if (geteuid() == 0)
            vgpu_log(VGPU_LOG_WARN, "sessions run as root: set user = NAME in [server] (or "
                     "--user), a user of its own that can open /dev/nvidia*, so a session "
                     "taken over holds no root");
        return 0;
    }
    errno = 0;
    pw = getpwnam(user);
    if (!pw) {
        vgpu_log(VGPU_LOG_ERROR, "user = %s: no such user%s%s", user, errno ? ": " : "",
                 errno ? strerror(errno) : "");
        return -1;
    }
    if (geteuid() != 0) {
        if (pw->pw_uid == geteuid())
            return 0;
        vgpu_log(VGPU_LOG_ERROR, "user = %s: sessions can run as another user only when the "
                 "server starts as root (it runs as uid %u); start it as root, or as %s",
                 user, (unsigned)geteuid(), user);
        return -1;
    }
    if (pw->pw_uid == 0) {
        vgpu_log(VGPU_LOG_ERROR, "user = %s is root: name an unprivileged user", user);
        return -1;
    }
    run_as.ngroups = (int)(sizeof(run_as.groups) / sizeof(run_as.groups[0]));
    if (getgrouplist(user, pw->pw_gid, run_as.groups, &run_as.ngroups) < 0) {
        vgpu_log(VGPU_LOG_ERROR, "user = %s is in more than %zu groups", user,
                 sizeof(run_as.groups) / sizeof(run_as.groups[0]));
        return -1;
    }
    snprintf(run_as.name, sizeof(run_as.name), "%s", user);
    run_as.uid = pw->pw_uid;
    run_as.gid = pw->pw_gid;
    run_as.set = true;
    vgpu_log(VGPU_LOG_INFO, "sessions run as user %s (uid %u, gid %u)", user,
             (unsigned)run_as.uid, (unsigned)run_as.gid);
    return 0;
}

bool vgpu_contain_user_ids(uid_t *uid, gid_t *gid)
{
    if (!run_as.set)
        return false;            /* *uid and *gid keep the caller's values */
    *uid = run_as.uid;
    *gid = run_as.gid;
    return true;
}

bool vgpu_contain_user_in_group(gid_t gid)
{
    if (!run_as.set)
        return false;
    for (int i = 0; i < run_as.ngroups; i++)
        if (run_as.groups[i] == gid)
            return true;
    return run_as.gid == gid;
}

uid_t vgpu_contain_user_uid(void)
{
    return run_as.set ? run_as.uid : (uid_t)-1;
}

int vgpu_contain_become_user(pid_t parent)
{
    if (!run_as.set)
        return 0;
    if (setgroups((size_t)run_as.ngroups, run_as.groups) < 0 || setgid(run_as.gid) < 0 ||
        setuid(run_as.uid) < 0) {
        vgpu_log(VGPU_LOG_ERROR, "cannot become user %s: %s", run_as.name, strerror(errno));
        return -1;
    }
    if (setuid(0) == 0) {        /* the change must be for good */
        vgpu_log(VGPU_LOG_ERROR, "still able to become root after becoming %s", run_as.name);
        return -1;
    }
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    vgpu_contain_orphan(parent);
    return 0;
}

void vgpu_contain_orphan(pid_t parent)
{
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
        vgpu_log(VGPU_LOG_WARN, "cannot ask to end with the server (%s): a session could outlive "
                 "a server killed with SIGKILL", strerror(errno));
    if (getppid() != parent)
        _exit(1);              /* it died before the request */
}

void vgpu_contain_reaped(pid_t pid, int status)
{
    /* SIGALRM is the handshake's deadline (main.c): a client that said nothing in time */
    if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM)
        vgpu_log(VGPU_LOG_INFO, "process %d: its client did not finish the handshake in time",
                 (int)pid);
    else if (WIFSIGNALED(status) && WTERMSIG(status) != SIGKILL && WTERMSIG(status) != SIGTERM)
        vgpu_log(VGPU_LOG_WARN, "process %d ended by signal %d (%s)%s; its client's calls fail "
                 "with cudaErrorNoDevice, and its GPU memory went with it", (int)pid,
                 WTERMSIG(status), strsignal(WTERMSIG(status)),
                 WCOREDUMP(status) ? ", core dumped" : "");
}

/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Confining session processes (contain.c): what a session taken over can
 * still reach is its own tenant; docs/server.md lists it.
 */
#ifndef VGPU_CONTAIN_H
#define VGPU_CONTAIN_H

#include <stdbool.h>
#include <sys/types.h>

#include "config.h"

/*
 * The server (before its first fork, after vgpu_sched_init): makes itself,
 * and so every process it forks, non-dumpable, so no other process of the
 * same uid can trace it or open its /proc/PID/mem.  sessions_on only says
 * what to log.  Returns 0 or a negative errno (logged).
 */
int vgpu_contain_parent(bool sessions_on);

/*
 * A session process, first thing, before it reads from its client: claims
 * its scheduler slot with identity who (-ENOSPC shows later, at
 * vgpu_sched_join), then with on: keeps only that slot's page of the
 * scheduler state writable, drops every capability when it runs as root,
 * sets no_new_privs and installs the seccomp filter.  Without on it only
 * claims the slot and logs a warning.  Returns 0, or a negative errno
 * (logged): the session must end then, unconfined.  Irreversible.
 */
int vgpu_contain_session(const struct vgpu_identity *who, bool on);

/*
 * A child the server (or a VM's link process) forked, first thing: it is
 * killed when parent dies, however it dies (SIGKILL included), so no
 * session outlives the server that accepted it, holding the GPU and
 * serving a client no server knows of.  A parent gone already ends it at
 * once.
 */
void vgpu_contain_orphan(pid_t parent);

/*
 * A TLS relay (tls.c), after its privileges are dropped and before the
 * first byte from its client: no_new_privs and the sessions' seccomp
 * filter (no signals to others, no tracing, ...).  0 or -errno.
 */
int vgpu_contain_relay(void);

/*
 * A process running as root gives up every capability (bounding set
 * included) for itself and anything it executes; nothing when not root.
 * The calling thread only: call it before any thread starts.  0 or -errno.
 */
int vgpu_contain_drop_capabilities(void);

/*
 * The server, at start: sessions are to run as user (a name; NULL or "":
 * as the server).  Started as root, user's uid, gid and groups are looked
 * up now; not as root, user must be the server's own.  0 or -1 (logged).
 */
int vgpu_contain_user_init(const char *user);
/*
 * The uid and gid sessions run as: true when they are another user's (root
 * started us); false, *uid and *gid untouched, when they are the server's.
 */
bool vgpu_contain_user_ids(uid_t *uid, gid_t *gid);
/* Is gid one of that user's groups (false when sessions run as the server)? */
bool vgpu_contain_user_in_group(gid_t gid);
/* That user's uid, or (uid_t)-1. */
uid_t vgpu_contain_user_uid(void);
/*
 * A connection's process, right after vgpu_contain_orphan(parent), before
 * it reads a byte from its client: becomes the sessions' user (groups, gid,
 * uid, irreversibly), when one is set, and asks again to end with parent
 * (a change of user clears that request).  0, or -1 (logged): it must end.
 */
int vgpu_contain_become_user(pid_t parent);

/*
 * The server or a link process reaped child pid with wait status status:
 * an end by a signal (a crash: the driver dying under a call, say) is
 * logged as a warning naming the signal (the handshake's deadline,
 * SIGALRM, as the client's slowness at info); what the session held the kernel
 * and the driver free with its process, and its client's calls fail.
 */
void vgpu_contain_reaped(pid_t pid, int status);

#endif

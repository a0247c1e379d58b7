/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * One daemon per state: the state dir, the socket and the pin dir each
 * belong to one iofenced at a time. A second one would re-arm the same
 * storages, append to the same journal and unpin the first one's BPF
 * links, so it is refused before it does any of that.
 *
 * Each is an flock(LOCK_EX | LOCK_NB), taken in this order:
 *   <state dir>/lock     holds the pid of the daemon, for the error
 *   <socket>.lock        next to the socket, also with the pid
 *   <pin dir> itself     an O_DIRECTORY fd on bpffs (no files there)
 * flock follows the open file across fork(), so the locks are taken in
 * the foreground, where the error is seen, and the detached daemon keeps
 * them. The lock files are never removed: removing one would let two
 * daemons lock two different files of the same name.
 */
#ifndef IOFENCE_INSTANCE_LOCK_H
#define IOFENCE_INSTANCE_LOCK_H

#include "config.h"

#define INSTANCE_LOCK_FILE "lock"
#define INSTANCE_LOCK_SUFFIX ".lock"

struct instance_lock {
	int state_fd;
	int socket_fd;
	int pin_fd; /* -1 with --no-bpf */
};

/*
 * Takes all three, or none: 0, or a negative errno after logging which
 * one is taken and by which pid (-EBUSY), or what else went wrong.
 */
int instance_lock(const struct config *cfg, struct instance_lock *lk);
/*
 * Releases them explicitly: a daemon whose io-wq workers hang in the
 * kernel on a dead storage keeps its open files after it exits, and must
 * not keep its successor out.
 */
void instance_unlock(struct instance_lock *lk);

#endif

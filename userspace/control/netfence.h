/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The network fence of rbd storages (bpf/netfence.bpf.c): once a victim
 * is marked, every packet its sockets send is dropped, including what a
 * socket it left behind (SIGKILLed, or in D state on another storage)
 * still queues, and it is refused new sockets and connects.
 *
 * The programs are attached at the cgroup2 root as bpf links pinned under
 * the pin dir, with the maps: they outlive the daemon, so a restart leaves
 * no window without the fence, and the next daemon reuses them rather
 * than attaching a second set. Sockets made before the programs were
 * first attached get their owner from a sweep over every process then
 * (TCP and UDP ones of the daemon's network namespace: the socket
 * iterators walk that one).
 * Every call logs nothing but netfence_open().
 *
 * netfence_open() and netfence_close() run on the control plane;
 * netfence_mark() only makes BPF syscalls on fds opened at open (no file
 * system, no /proc; iterators over the victim's files and over the
 * host's TCP and UDP sockets), so the fencer may call it right before
 * its SIGKILL.
 */
#ifndef IOFENCE_NETFENCE_API_H
#define IOFENCE_NETFENCE_API_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct netfence;

/*
 * Loads and attaches the programs, or reuses those pinned under @pin_dir.
 * Returns 0, or a negative errno after one log line that says what the
 * kernel or the host lacks (the daemon goes on without the fence).
 */
int netfence_open(struct netfence **out, const char *pin_dir);
/* Whether netfence_open() found the programs pinned and running. */
bool netfence_reused(const struct netfence *nf);
/*
 * Marks process @tgid as a victim of storage @storage_idx, then claims
 * its open sockets (ones it got from another process, by fork or fd
 * passing, are its own from now on) and records its start time (so a
 * later process with its pid is not fenced). A process marked already
 * stays under the storage that marked it first; a mark left by an
 * earlier process with the pid is replaced. 0, or a negative errno:
 * -ENOEXEC when only the claim failed, or missed a socket (not TCP or
 * UDP, or of another network namespace than the daemon's): the mark
 * holds, for whatever process has the pid when its start is unknown.
 */
int netfence_mark(const struct netfence *nf, pid_t tgid, uint32_t storage_idx);
/*
 * Lifts every mark of @storage_idx: its unfence. The number lifted. Its
 * processes may make new sockets and connects again; a socket that sent
 * while marked stays fenced for its life.
 */
int netfence_unmark_storage(struct netfence *nf, uint32_t storage_idx);
/* Packets dropped and sockets or connects refused, over @storage_idx's marks. */
uint64_t netfence_dropped(const struct netfence *nf, uint32_t storage_idx);
uint64_t netfence_refused(const struct netfence *nf, uint32_t storage_idx);
/* Packets dropped of sockets that stay fenced after their mark was lifted. */
uint64_t netfence_dropped_lifted(const struct netfence *nf);
/* The fenced map (key a tgid, value struct netfence_mark). */
int netfence_map_fd(const struct netfence *nf);
/*
 * Closes @nf (NULL is fine). With @unpin, the pins go too, which detaches
 * the programs: the fence is lifted for good.
 */
void netfence_close(struct netfence *nf, bool unpin);

#endif

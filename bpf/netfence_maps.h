/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The maps of the network fence (bpf/netfence.bpf.c) as the daemon and
 * the BPF side share them; the BPF side sees the types through
 * vmlinux.h, userspace through <linux/types.h>.
 */
#ifndef IOFENCE_NETFENCE_MAPS_H
#define IOFENCE_NETFENCE_MAPS_H

/* Processes marked at once, over all fenced storages. */
#define NETFENCE_MAX_MARKED 4096

/*
 * A process, told from a later one with the same pid: its tgid in the
 * host's pid namespace and its start time (task->start_boottime of the
 * group leader, ns).
 */
struct netfence_owner {
	__u32 tgid;
	__u32 flags; /* NETFENCE_SOCK_* */
	__u64 start;
};

/*
 * The socket sent while its owner was marked: it sends nothing ever
 * again, unmarked or not, so nothing queued during a fence goes out
 * after an unfence.
 */
#define NETFENCE_SOCK_FENCED 1u

/* fenced: key a tgid, value this. */
struct netfence_mark {
	__u32 storage_idx; /* the storage whose fence marked the process */
	__u32 pad;
	/* The marked process's start time, set by the sweep; 0: any. */
	__u64 start;
	__u64 dropped; /* packets of its sockets dropped at egress */
	__u64 refused; /* sockets and connects it was refused */
};

/*
 * pending: key a socket's inode number, value this: the owner the
 * socket passes give it (the claim's always, the sweep's only to a
 * socket that has none), between a task_file pass and them.
 */
#define NETFENCE_MAX_PENDING 65536
struct netfence_pending {
	struct netfence_owner owner;
	__u32 claim;
	__u32 pad;
};

#endif

// SPDX-License-Identifier: GPL-2.0-only
/*
 * The network fence of rbd storages: librbd in a qemu victim writes to
 * the cluster over TCP, where no file hook sees it. Every IPv4 and IPv6
 * socket carries the process it belongs to (owner, socket local
 * storage): set when it is created and when it connects, by the sweep
 * for the sockets that predate the programs, and by the claim for the
 * sockets a victim holds. Once the daemon puts a victim's
 * tgid in fenced, every packet its sockets send is dropped at egress,
 * whoever sends it: the process, or the kernel retransmitting what a
 * socket orphaned by SIGKILL still queues. The owner lives as long as the
 * socket does, so the victim's death does not lift it; its start time
 * keeps a later process that reuses the pid out of the fence. A socket
 * caught once stays fenced for its life, after an unmark too. A marked
 * process is refused new sockets and connects.
 *
 * Attached at the cgroup2 root with BPF_F_ALLOW_MULTI: every process of
 * the host, in any cgroup and any network namespace (the cgroup of the
 * socket decides, not the namespace), next to whatever else is attached.
 *
 * Kernels: 5.15 (bpf_get_current_task_btf in cgroup programs), 6.1 for
 * the claim of one process (a task iterator with a pid).
 */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include "netfence_maps.h"

#define AF_INET_ 2
#define AF_INET6_ 10

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	/* Accepted sockets inherit their listener's owner. */
	__uint(map_flags, BPF_F_NO_PREALLOC | BPF_F_CLONE);
	__type(key, int);
	__type(value, struct netfence_owner);
} owner SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, NETFENCE_MAX_MARKED);
	__type(key, __u32);
	__type(value, struct netfence_mark);
} fenced SEC(".maps");

/* Packets of sockets fenced once whose mark was lifted since. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} lifted SEC(".maps");

static __always_inline struct netfence_owner owner_of(struct task_struct *t)
{
	return (struct netfence_owner){
		.tgid = t->tgid,
		.start = t->group_leader->start_boottime,
	};
}

/* @o's process owns the socket now; whether it was fenced stays. */
static __always_inline void set_owner(struct netfence_owner *o,
				      const struct netfence_owner *me)
{
	o->tgid = me->tgid;
	o->start = me->start;
}

/* The mark of @o, if its process is marked (not just its pid). */
static __always_inline struct netfence_mark *
mark_of(const struct netfence_owner *o)
{
	struct netfence_mark *m = bpf_map_lookup_elem(&fenced, &o->tgid);

	if (m && m->start && o->start && m->start != o->start)
		return NULL;
	return m;
}

/* The caller owns @sk from now on, unless it is marked: then 0. */
static __always_inline int take(void *sk)
{
	struct netfence_owner me = owner_of(bpf_get_current_task_btf()), *o;
	struct netfence_mark *m = mark_of(&me);

	if (m) {
		__sync_fetch_and_add(&m->refused, 1);
		return 0;
	}
	if (!sk)
		return 1;
	o = bpf_sk_storage_get(&owner, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (o)
		set_owner(o, &me);
	return 1;
}

SEC("cgroup/sock_create")
int nf_sock_create(struct bpf_sock *sk)
{
	return take(sk);
}

/* The connecting process takes over a socket it got by fork or fd passing. */
SEC("cgroup/connect4")
int nf_connect4(struct bpf_sock_addr *ctx)
{
	return take(ctx->sk);
}

SEC("cgroup/connect6")
int nf_connect6(struct bpf_sock_addr *ctx)
{
	return take(ctx->sk);
}

SEC("cgroup_skb/egress")
int nf_egress(struct __sk_buff *skb)
{
	struct netfence_owner *o;
	struct netfence_mark *m;
	struct bpf_sock *sk;
	__u32 zero = 0;
	__u64 *n;

	sk = skb->sk;
	if (!sk)
		return 1;
	/* Request and timewait sockets carry no storage. */
	sk = bpf_sk_fullsock(sk);
	if (!sk)
		return 1;
	o = bpf_sk_storage_get(&owner, sk, 0, 0);
	if (!o)
		return 1;
	m = mark_of(o);
	if (m) {
		o->flags |= NETFENCE_SOCK_FENCED;
		__sync_fetch_and_add(&m->dropped, 1);
		return 0;
	}
	if (!(o->flags & NETFENCE_SOCK_FENCED))
		return 1;
	n = bpf_map_lookup_elem(&lifted, &zero);
	if (n)
		__sync_fetch_and_add(n, 1);
	return 0;
}

/*
 * Newer kernels refuse a socket reached from a file to the socket
 * storage helpers (6.18: sock->sk of bpf_sock_from_file() is an
 * "untrusted_ptr_"), while the socket iterators hand theirs over
 * trusted. So owners are given in two passes: a task_file pass puts
 * each internet socket a process holds into pending, by its inode
 * number, with the owner it is to get; then the TCP and UDP socket
 * passes give each socket they find in pending its owner. The daemon
 * runs them back to back and then drops whatever is left (a socket of
 * another protocol or network namespace, an unbound UDP one, or one
 * closed in between). An inode number names one socket for its life;
 * only probe reads (BPF_CORE_READ) go through the untrusted pointers.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, NETFENCE_MAX_PENDING);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u64);
	__type(value, struct netfence_pending);
} pending SEC(".maps");

/* The inode number of @file's socket, if an internet one; else 0. */
static __always_inline __u64 inet_ino_of(struct file *file)
{
	struct socket *sock = bpf_sock_from_file(file);
	__u16 family;

	if (!sock)
		return 0;
	family = BPF_CORE_READ(sock, sk, __sk_common.skc_family);
	if (family != AF_INET_ && family != AF_INET6_)
		return 0;
	return BPF_CORE_READ(file, f_inode, i_ino);
}

/* Puts @task's socket @ino in pending; one byte out says it did. */
static __always_inline void queue(struct bpf_iter_meta *meta, __u64 ino,
				  struct task_struct *task, __u32 claim)
{
	struct netfence_pending p = { .owner = owner_of(task), .claim = claim };
	char one = 1;

	/* The sweep's first holder wins; a claim is the victim's own. */
	if (!bpf_map_update_elem(&pending, &ino, &p,
				 claim ? BPF_ANY : BPF_NOEXIST))
		bpf_seq_write(meta->seq, &one, 1);
}

/*
 * The sweep, when the programs are first attached, over every process: a
 * socket with no owner (it predates the programs) gets its holder.
 */
SEC("iter/task_file")
int nf_sweep(struct bpf_iter__task_file *ctx)
{
	struct task_struct *task = ctx->task;
	struct file *file = ctx->file;
	__u64 ino;

	if (!task || !file)
		return 0;
	ino = inet_ino_of(file);
	if (ino)
		queue(ctx->meta, ino, task, 0);
	return 0;
}

/*
 * The claim, over one victim as it is marked: every socket it holds is
 * its own, whoever made it (fork, fd passing); its mark gets its start
 * time; and the start time is printed first, 8 bytes, for the daemon to
 * tell this process's mark from a stale one of an earlier process that
 * had the pid, then a byte per socket queued.
 */
SEC("iter/task_file")
int nf_claim(struct bpf_iter__task_file *ctx)
{
	struct task_struct *task = ctx->task;
	struct file *file = ctx->file;
	struct netfence_owner me;
	struct netfence_mark *m;
	__u64 ino;

	if (!task || !file)
		return 0;
	if (ctx->meta->seq_num == 0) {
		me = owner_of(task);
		bpf_seq_write(ctx->meta->seq, &me.start, sizeof(me.start));
		m = bpf_map_lookup_elem(&fenced, &me.tgid);
		if (m && !m->start)
			m->start = me.start;
	}
	ino = inet_ino_of(file);
	if (ino)
		queue(ctx->meta, ino, task, 1);
	return 0;
}

/* Socket @sk, of inode @ino, gets the owner pending for it, if any. */
static __always_inline void give(void *sk, __u64 ino)
{
	struct netfence_pending *p;
	struct netfence_owner *o;

	if (!ino)
		return;
	p = bpf_map_lookup_elem(&pending, &ino);
	if (!p)
		return;
	o = bpf_sk_storage_get(&owner, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (o && (p->claim || !o->tgid))
		set_owner(o, &p->owner);
	bpf_map_delete_elem(&pending, &ino);
}

SEC("iter/tcp")
int nf_give_tcp(struct bpf_iter__tcp *ctx)
{
	struct sock_common *skc = ctx->sk_common;
	struct tcp_sock *tp;

	if (!skc)
		return 0;
	/* Time-wait and request sockets have no socket, nor storage. */
	tp = bpf_skc_to_tcp_sock(skc);
	if (tp)
		give(skc, BPF_CORE_READ(tp, inet_conn.icsk_inet.sk.sk_socket,
					file, f_inode, i_ino));
	return 0;
}

SEC("iter/udp")
int nf_give_udp(struct bpf_iter__udp *ctx)
{
	struct udp_sock *u = ctx->udp_sk;

	if (u)
		give(u,
		     BPF_CORE_READ(u, inet.sk.sk_socket, file, f_inode, i_ino));
	return 0;
}

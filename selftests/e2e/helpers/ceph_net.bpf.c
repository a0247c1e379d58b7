// SPDX-License-Identifier: GPL-2.0-only
/*
 * Cgroup programs of the rbd tests (selftests/ceph.sh), loaded with
 * bpftool, one instance per simulated host, attached to that host's cgroup:
 *
 * host_src: every TCP connect to 127.0.0.0/8 from the cgroup is bound
 * first to the host's own loopback address (127.0.0.2, ...), so that its
 * Ceph clients, which no option of librados binds, are told apart by the
 * cluster as two hosts' are, and can be blocklisted one host at a time.
 *
 * net_fence: every IPv4 packet the cgroup's sockets send to a fenced
 * address is dropped, established connections included: a fence in the
 * kernel for network storage, which no file hook sees.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define SOCK_STREAM_ 1
#define ETH_P_IP_ 0x0800

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32); /* the host's address, network order; 0: none */
} src_addr SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32); /* a fenced IPv4 destination, network order */
	__type(value, __u64); /* packets dropped */
} fenced_dst SEC(".maps");

SEC("cgroup/connect4")
int host_src(struct bpf_sock_addr *ctx)
{
	struct sockaddr_in sa = {};
	__u32 key = 0, *addr;

	if (ctx->type != SOCK_STREAM_ ||
	    (bpf_ntohl(ctx->user_ip4) >> 24) != 127)
		return 1;
	addr = bpf_map_lookup_elem(&src_addr, &key);
	if (!addr || !*addr)
		return 1;
	sa.sin_family = 2; /* AF_INET */
	sa.sin_addr.s_addr = *addr;
	/* Port 0: the address only, the port is picked at connect. */
	bpf_bind(ctx, (struct sockaddr *)&sa, sizeof(sa));
	return 1;
}

SEC("cgroup_skb/egress")
int net_fence(struct __sk_buff *skb)
{
	__u32 daddr;
	__u64 *n;

	if (skb->protocol != bpf_htons(ETH_P_IP_))
		return 1;
	if (bpf_skb_load_bytes(skb, offsetof(struct iphdr, daddr), &daddr,
			       sizeof(daddr)))
		return 1;
	n = bpf_map_lookup_elem(&fenced_dst, &daddr);
	if (!n)
		return 1;
	__sync_fetch_and_add(n, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";

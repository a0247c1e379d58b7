// SPDX-License-Identifier: GPL-2.0-only
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <mntent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/types.h>

#include "array_size.h"
#include "log.h"
#include "netfence.h"
#include "netfence.skel.h"
#include "netfence_maps.h"

/* The iterator programs: the sweep, the claim, the socket passes. */
enum iter { ITER_SWEEP, ITER_CLAIM, ITER_GIVE_TCP, ITER_GIVE_UDP, NR_ITERS };

struct netfence {
	char *pin_dir;
	int fenced_fd;
	int lifted_fd;
	int pending_fd;
	int iter_fd[NR_ITERS];
	bool reused;
};

/* Everything pinned under the pin dir, by the names a person reads. */
#define PIN_FENCED "fenced"
#define PIN_OWNER "owner"
#define PIN_LIFTED "lifted"
#define PIN_PENDING "pending"
static const char *const link_pins[] = {
	"link_sock_create",
	"link_connect4",
	"link_connect6",
	"link_egress",
};

static const char *const iter_pins[NR_ITERS] = {
	[ITER_SWEEP] = "sweep",
	[ITER_CLAIM] = "claim",
	[ITER_GIVE_TCP] = "give_tcp",
	[ITER_GIVE_UDP] = "give_udp",
};

static struct bpf_program *iter_prog(struct netfence_bpf *skel, enum iter i)
{
	struct bpf_program *p[NR_ITERS] = {
		[ITER_SWEEP] = skel->progs.nf_sweep,
		[ITER_CLAIM] = skel->progs.nf_claim,
		[ITER_GIVE_TCP] = skel->progs.nf_give_tcp,
		[ITER_GIVE_UDP] = skel->progs.nf_give_udp,
	};

	return p[i];
}

static struct bpf_program *link_prog(struct netfence_bpf *skel, unsigned int i)
{
	struct bpf_program *p[] = {
		skel->progs.nf_sock_create,
		skel->progs.nf_connect4,
		skel->progs.nf_connect6,
		skel->progs.nf_egress,
	};

	return p[i];
}

static int pin_path(const struct netfence *nf, const char *name, char *buf,
		    size_t len)
{
	int n = snprintf(buf, len, "%s/%s", nf->pin_dir, name);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static int pin_get(const struct netfence *nf, const char *name)
{
	char path[PATH_MAX];
	int fd;

	if (pin_path(nf, name, path, sizeof(path)))
		return -ENAMETOOLONG;
	fd = bpf_obj_get(path);
	return fd < 0 ? -errno : fd;
}

static void unpin_all(const struct netfence *nf)
{
	const char *maps[] = { PIN_FENCED, PIN_LIFTED, PIN_OWNER, PIN_PENDING };
	char path[PATH_MAX];

	/* Links first: their programs stop before the maps go. */
	for (unsigned int i = 0; i < ARRAY_SIZE(link_pins); i++)
		if (!pin_path(nf, link_pins[i], path, sizeof(path)))
			unlink(path);
	for (unsigned int i = 0; i < ARRAY_SIZE(maps); i++)
		if (!pin_path(nf, maps[i], path, sizeof(path)))
			unlink(path);
	for (unsigned int i = 0; i < NR_ITERS; i++)
		if (!pin_path(nf, iter_pins[i], path, sizeof(path)))
			unlink(path);
}

static void close_fds(struct netfence *nf)
{
	int *fds[3 + NR_ITERS] = { &nf->fenced_fd, &nf->lifted_fd,
				   &nf->pending_fd };

	for (unsigned int i = 0; i < NR_ITERS; i++)
		fds[3 + i] = &nf->iter_fd[i];
	for (unsigned int i = 0; i < ARRAY_SIZE(fds); i++) {
		if (*fds[i] >= 0)
			close(*fds[i]);
		*fds[i] = -1;
	}
}

/* The first cgroup2 mount: its root holds every process of the host. */
static int cgroup2_root(char *buf, size_t len)
{
	FILE *f = setmntent("/proc/mounts", "re");
	struct mntent *m;
	int ret = -ENOENT;

	if (!f)
		return -errno;
	while ((m = getmntent(f)))
		if (!strcmp(m->mnt_type, "cgroup2")) {
			ret = snprintf(buf, len, "%s", m->mnt_dir) < (int)len ?
				      0 :
				      -ENAMETOOLONG;
			break;
		}
	endmntent(f);
	return ret;
}

/*
 * Runs iterator program @prog over process @tgid, or every process when
 * 0; what it prints goes to @out (@len bytes at most). The number of
 * bytes it printed, or a negative errno.
 */
static int run_iter(int prog, pid_t tgid, void *out, size_t len)
{
	LIBBPF_OPTS(bpf_link_create_opts, opts);
	union bpf_iter_link_info info;
	char buf[64];
	int lfd, ifd, got = 0, tries = 0;
	ssize_t n;

	if (tgid > 0) {
		memset(&info, 0, sizeof(info));
		info.task.pid = (__u32)tgid;
		opts.iter_info = &info;
		opts.iter_info_len = sizeof(info);
	}
	lfd = bpf_link_create(prog, 0, BPF_TRACE_ITER, &opts);
	if (lfd < 0)
		return -errno;
	ifd = bpf_iter_create(lfd);
	if (ifd < 0) {
		got = -errno;
		goto out;
	}
	/* One read walks up to a million files: more when it says EAGAIN. */
	while ((n = read(ifd, buf, sizeof(buf))) != 0) {
		if (n > 0) {
			if ((size_t)got < len)
				memcpy((char *)out + got, buf,
				       (size_t)n < len - (size_t)got ?
					       (size_t)n :
					       len - (size_t)got);
			got += (int)n;
		} else if ((errno != EAGAIN && errno != EINTR) ||
			   ++tries > 64) {
			got = -errno;
			break;
		}
	}
	close(ifd);
out:
	close(lfd);
	return got;
}

/*
 * Drops what is left in pending of the sweep (@tgid 0) or of the claim
 * of @tgid; another claim's entries stay for its own socket passes.
 * The number dropped.
 */
static int drop_pending(const struct netfence *nf, pid_t tgid)
{
	struct netfence_pending p;
	__u64 keys[64], key, next;
	void *prev = NULL;
	int n = 0, got;

	/* In batches: a delete during the walk would restart it. */
	do {
		got = 0;
		prev = NULL;
		while (got < (int)ARRAY_SIZE(keys) &&
		       !bpf_map_get_next_key(nf->pending_fd, prev, &next)) {
			key = next;
			prev = &key;
			if (bpf_map_lookup_elem(nf->pending_fd, &key, &p) ||
			    p.claim != (tgid > 0) ||
			    (tgid > 0 && p.owner.tgid != (__u32)tgid))
				continue;
			keys[got++] = key;
		}
		for (int i = 0; i < got; i++)
			if (!bpf_map_delete_elem(nf->pending_fd, &keys[i]))
				n++;
	} while (got == (int)ARRAY_SIZE(keys));
	return n;
}

/*
 * The socket passes (bpf/netfence.bpf.c says why there are two kinds),
 * after a task_file pass queued @queued sockets for @tgid (0: the
 * sweep). The number of them left without their owner, or a negative
 * errno.
 */
static int give_owners(const struct netfence *nf, pid_t tgid, int queued)
{
	int ret = 0, left;

	if (queued > 0) {
		ret = run_iter(nf->iter_fd[ITER_GIVE_TCP], 0, NULL, 0);
		if (ret >= 0)
			ret = run_iter(nf->iter_fd[ITER_GIVE_UDP], 0, NULL, 0);
	}
	left = drop_pending(nf, tgid);
	return ret < 0 ? ret : left;
}

/* Every process's sockets with no owner get it; as give_owners(). */
static int sweep(const struct netfence *nf)
{
	int queued = run_iter(nf->iter_fd[ITER_SWEEP], 0, NULL, 0);

	if (queued < 0) {
		drop_pending(nf, 0);
		return queued;
	}
	return give_owners(nf, 0, queued);
}

/* Map @fd is of @type, with values of @size bytes. */
static bool map_shape(int fd, __u32 type, __u32 size)
{
	struct bpf_map_info info;
	__u32 len = sizeof(info);

	memset(&info, 0, sizeof(info));
	return !bpf_obj_get_info_by_fd(fd, &info, &len) && info.type == type &&
	       info.value_size == size;
}

/* The pins of an earlier open, all there and of this layout. */
static bool reuse(struct netfence *nf)
{
	bool ok;
	int fd;

	for (unsigned int i = 0; i < ARRAY_SIZE(link_pins); i++) {
		fd = pin_get(nf, link_pins[i]);
		if (fd < 0)
			return false;
		close(fd);
	}
	fd = pin_get(nf, PIN_OWNER);
	if (fd < 0)
		return false;
	ok = map_shape(fd, BPF_MAP_TYPE_SK_STORAGE,
		       sizeof(struct netfence_owner));
	close(fd);
	nf->fenced_fd = pin_get(nf, PIN_FENCED);
	nf->lifted_fd = pin_get(nf, PIN_LIFTED);
	nf->pending_fd = pin_get(nf, PIN_PENDING);
	for (unsigned int i = 0; i < NR_ITERS; i++) {
		nf->iter_fd[i] = pin_get(nf, iter_pins[i]);
		ok = ok && nf->iter_fd[i] >= 0;
	}
	return ok && nf->fenced_fd >= 0 && nf->lifted_fd >= 0 &&
	       nf->pending_fd >= 0 &&
	       map_shape(nf->fenced_fd, BPF_MAP_TYPE_HASH,
			 sizeof(struct netfence_mark)) &&
	       map_shape(nf->lifted_fd, BPF_MAP_TYPE_ARRAY, sizeof(__u64)) &&
	       map_shape(nf->pending_fd, BPF_MAP_TYPE_HASH,
			 sizeof(struct netfence_pending));
}

/* Loads, attaches at @cgroup and pins afresh; @what says what failed. */
static int fresh(struct netfence *nf, const char *cgroup, const char **what)
{
	char path[PATH_MAX];
	struct netfence_bpf *skel;
	struct bpf_link *l;
	int cg, ret;

	*what = "cannot open the BPF object";
	skel = netfence_bpf__open();
	if (!skel)
		return -errno;
	*what = "cannot load the BPF programs (cgroup sock, sock_addr, skb, and task_file, tcp and udp iterator programs, with socket storage)";
	ret = netfence_bpf__load(skel);
	if (ret)
		goto out;
	*what = "cannot pin the maps";
	ret = pin_path(nf, PIN_FENCED, path, sizeof(path));
	if (!ret)
		ret = bpf_map__pin(skel->maps.fenced, path);
	if (!ret)
		ret = pin_path(nf, PIN_LIFTED, path, sizeof(path));
	if (!ret)
		ret = bpf_map__pin(skel->maps.lifted, path);
	if (!ret)
		ret = pin_path(nf, PIN_OWNER, path, sizeof(path));
	if (!ret)
		ret = bpf_map__pin(skel->maps.owner, path);
	if (!ret)
		ret = pin_path(nf, PIN_PENDING, path, sizeof(path));
	if (!ret)
		ret = bpf_map__pin(skel->maps.pending, path);
	for (unsigned int i = 0; !ret && i < NR_ITERS; i++) {
		ret = pin_path(nf, iter_pins[i], path, sizeof(path));
		if (!ret)
			ret = bpf_program__pin(iter_prog(skel, i), path);
	}
	if (ret)
		goto out;
	*what = "cannot open the cgroup2 root";
	cg = open(cgroup, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cg < 0) {
		ret = -errno;
		goto out;
	}
	*what = "cannot attach and pin its programs at the cgroup2 root";
	for (unsigned int i = 0; !ret && i < ARRAY_SIZE(link_pins); i++) {
		/* A cgroup link is BPF_F_ALLOW_MULTI: others attach beside it. */
		l = bpf_program__attach_cgroup(link_prog(skel, i), cg);
		if (!l) {
			ret = -errno;
			break;
		}
		ret = pin_path(nf, link_pins[i], path, sizeof(path));
		if (!ret)
			ret = bpf_link__pin(l, path);
		bpf_link__destroy(l);
	}
	close(cg);
	if (ret)
		goto out;
	nf->fenced_fd = dup(bpf_map__fd(skel->maps.fenced));
	nf->lifted_fd = dup(bpf_map__fd(skel->maps.lifted));
	nf->pending_fd = dup(bpf_map__fd(skel->maps.pending));
	if (nf->fenced_fd < 0 || nf->lifted_fd < 0 || nf->pending_fd < 0)
		ret = -errno;
	for (unsigned int i = 0; !ret && i < NR_ITERS; i++) {
		nf->iter_fd[i] = dup(bpf_program__fd(iter_prog(skel, i)));
		if (nf->iter_fd[i] < 0)
			ret = -errno;
	}
out:
	netfence_bpf__destroy(skel);
	return ret;
}

int netfence_open(struct netfence **out, const char *pin_dir)
{
	char cgroup[PATH_MAX];
	struct netfence *nf;
	const char *what;
	int ret;

	*out = NULL;
	nf = calloc(1, sizeof(*nf));
	if (!nf)
		return -ENOMEM;
	nf->fenced_fd = nf->lifted_fd = nf->pending_fd = -1;
	for (unsigned int i = 0; i < NR_ITERS; i++)
		nf->iter_fd[i] = -1;
	nf->pin_dir = strdup(pin_dir);
	if (!nf->pin_dir) {
		free(nf);
		return -ENOMEM;
	}
	ret = cgroup2_root(cgroup, sizeof(cgroup));
	if (ret) {
		pr_warn("network fence off (rbd victims' sockets stay open after a fence): no cgroup2 mount in /proc/mounts: %s",
			strerror(-ret));
		goto fail;
	}
	if (mkdir(pin_dir, 0700) && errno != EEXIST) {
		ret = -errno;
		pr_warn("network fence off (rbd victims' sockets stay open after a fence): cannot create the pin dir %s: %s (is bpffs mounted on /sys/fs/bpf?)",
			pin_dir, strerror(errno));
		goto fail;
	}
	if (reuse(nf)) {
		nf->reused = true;
		pr_info("network fence taken over from an earlier daemon, pinned under %s",
			pin_dir);
		*out = nf;
		return 0;
	}
	/* Half a set, or another layout: none of it is attached twice. */
	close_fds(nf);
	unpin_all(nf);
	ret = fresh(nf, cgroup, &what);
	if (ret) {
		pr_warn("network fence off (rbd victims' sockets stay open after a fence): %s: %s",
			what, strerror(-ret));
		unpin_all(nf);
		rmdir(pin_dir);
		goto fail;
	}
	ret = sweep(nf);
	if (ret < 0)
		pr_warn("network fence: the sockets made before it started have no owner (sweep: %s); a victim's are its own once it is marked",
			strerror(-ret));
	else if (ret > 0)
		pr_info("network fence: %d sockets made before it started keep no owner (not TCP or UDP, unbound UDP, or of another network namespace); a victim's are its own once it is marked",
			ret);
	pr_info("network fence attached at %s, pinned under %s", cgroup,
		pin_dir);
	*out = nf;
	return 0;
fail:
	netfence_close(nf, false);
	return ret;
}

bool netfence_reused(const struct netfence *nf)
{
	return nf->reused;
}

int netfence_mark(const struct netfence *nf, pid_t tgid, uint32_t storage_idx)
{
	struct netfence_mark m = { .storage_idx = storage_idx }, old;
	__u32 key = (__u32)tgid;
	bool existed = false, have_start;
	__u64 start = 0;
	int got, ret;

	if (tgid <= 0)
		return -EINVAL;
	if (bpf_map_update_elem(nf->fenced_fd, &key, &m, BPF_NOEXIST)) {
		if (errno != EEXIST)
			return -errno;
		existed = true;
	}
	got = run_iter(nf->iter_fd[ITER_CLAIM], tgid, &start, sizeof(start));
	have_start = got >= (int)sizeof(start);
	if (have_start) {
		ret = give_owners(nf, tgid, got - (int)sizeof(start));
		ret = ret ? -ENOEXEC : 0;
	} else {
		drop_pending(nf, tgid);
		ret = -ENOEXEC;
	}
	if (!existed)
		return ret;
	/*
	 * Marked already: by another storage (it stays under that one), or
	 * for an earlier process that had the pid, which is replaced (by a
	 * mark of whatever has the pid when this one's start is unknown).
	 */
	if (!bpf_map_lookup_elem(nf->fenced_fd, &key, &old) &&
	    (!old.start || (have_start && old.start == start)))
		return ret;
	m.start = have_start ? start : 0;
	if (bpf_map_update_elem(nf->fenced_fd, &key, &m, BPF_ANY))
		return -errno;
	return ret;
}

/* Calls @fn on each mark of @storage_idx; stops at its first nonzero. */
static int for_marks(int fd, uint32_t storage_idx,
		     int (*fn)(int fd, __u32 key, const struct netfence_mark *m,
			       void *arg),
		     void *arg)
{
	struct netfence_mark m;
	__u32 key, next;
	void *prev = NULL;
	int ret;

	while (!bpf_map_get_next_key(fd, prev, &next)) {
		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(fd, &key, &m) ||
		    m.storage_idx != storage_idx)
			continue;
		ret = fn(fd, key, &m, arg);
		if (ret)
			return ret;
	}
	return 0;
}

static int collect(int fd, __u32 key, const struct netfence_mark *m, void *arg)
{
	__u32 *keys = arg;

	/* keys[0] counts; a full batch stops the walk. */
	keys[++keys[0]] = key;
	return keys[0] == 64;
}

int netfence_unmark_storage(struct netfence *nf, uint32_t storage_idx)
{
	__u32 keys[65];
	int n = 0;

	/* In batches: a delete during the walk would restart it. */
	do {
		keys[0] = 0;
		for_marks(nf->fenced_fd, storage_idx, collect, keys);
		for (__u32 i = 1; i <= keys[0]; i++)
			if (!bpf_map_delete_elem(nf->fenced_fd, &keys[i]))
				n++;
	} while (keys[0] == 64);
	return n;
}

struct sums {
	uint64_t dropped, refused;
};

static int add(int fd, __u32 key, const struct netfence_mark *m, void *arg)
{
	struct sums *s = arg;

	s->dropped += m->dropped;
	s->refused += m->refused;
	return 0;
}

uint64_t netfence_dropped(const struct netfence *nf, uint32_t storage_idx)
{
	struct sums s = { 0 };

	for_marks(nf->fenced_fd, storage_idx, add, &s);
	return s.dropped;
}

uint64_t netfence_refused(const struct netfence *nf, uint32_t storage_idx)
{
	struct sums s = { 0 };

	for_marks(nf->fenced_fd, storage_idx, add, &s);
	return s.refused;
}

uint64_t netfence_dropped_lifted(const struct netfence *nf)
{
	__u32 zero = 0;
	__u64 n = 0;

	bpf_map_lookup_elem(nf->lifted_fd, &zero, &n);
	return n;
}

int netfence_map_fd(const struct netfence *nf)
{
	return nf->fenced_fd;
}

void netfence_close(struct netfence *nf, bool unpin)
{
	if (!nf)
		return;
	close_fds(nf);
	if (unpin) {
		unpin_all(nf);
		/* Fails, as it should, while anything else is pinned there. */
		rmdir(nf->pin_dir);
	}
	free(nf->pin_dir);
	free(nf);
}

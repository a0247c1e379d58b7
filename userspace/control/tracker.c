// SPDX-License-Identifier: GPL-2.0-only
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <linux/magic.h>
#include <unistd.h>
#include <linux/loop.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <zlib.h>

#include "chan.h"
#include "devstack.h"
#include "iofence.skel.h"
#include "log.h"
#include "loop.h"
#include "storage.h"
#include "thread.h"
#include "tracker.h"
#include "write_ages.h"

#define NS_PER_MS 1000000ull
/*
 * A device entry counts requests in flight that start this long after
 * the moment the entry is written (struct iofence_dev): the write is
 * done well within it, so every request counted started after it.
 */
#define ARM_MARGIN_NS (100 * NS_PER_MS)
/* Loop backing lookups that may wait on a backing file at once. */
#define LOOKUPS_MAX 64
/* The LSMs the kernel runs, in the order it calls them. */
#define TRACKER_LSM_LIST "/sys/kernel/security/lsm"
/* progs[]'s io_uring_submit_req, which may attach to another name. */
#define PROG_SUBMIT 5

struct tracker_slot {
	bool used; /* armed, or found pinned at start (stale) */
	const struct storage *owner; /* NULL: stale, nobody re-armed it yet */
	struct devstack devs; /* what the storage sits on or under */
	int counts_for[DEVSTACK_MAX]; /* the slot each of them counts in */
	struct iofence_record_key rec;
	bool has_rec;
	bool looking; /* a loop backing lookup for it is out */
};

enum prog_kind {
	PROG_BLOCK, /* the block evidence */
	PROG_HEARTBEAT, /* one of the io_uring three: all or none */
	PROG_LSM, /* the kernel write fence: all or none */
};

/* The programs, with their link pins and the tracepoints or hooks they need. */
static const struct prog_desc {
	const char *tp; /* a tracepoint, or an LSM hook */
	const char *pin;
	enum prog_kind kind;
	bool optional; /* left out where the kernel lacks it */
} progs[TRACKER_PROGS] = {
	{ "block_rq_issue", "link_rq_issue", PROG_BLOCK, false },
	{ "block_rq_requeue", "link_rq_requeue", PROG_BLOCK, true },
	{ "block_rq_complete", "link_rq_complete", PROG_BLOCK, false },
	{ "block_rq_error", "link_rq_error", PROG_BLOCK, true },
	{ "io_uring_create", "link_uring_create", PROG_HEARTBEAT, false },
	/* io_uring_submit_sqe, with the request first, before 6.3 */
	{ "io_uring_submit_req", "link_uring_submit", PROG_HEARTBEAT, false },
	{ "io_uring_complete", "link_uring_complete", PROG_HEARTBEAT, false },
	{ "file_permission", "link_lsm_file_permission", PROG_LSM, false },
	{ "file_open", "link_lsm_file_open", PROG_LSM, false },
	{ "mmap_file", "link_lsm_mmap_file", PROG_LSM, false },
	{ "file_mprotect", "link_lsm_file_mprotect", PROG_LSM, false },
	{ "path_truncate", "link_lsm_path_truncate", PROG_LSM, false },
	/* since 6.2; ftruncate asked path_truncate before */
	{ "file_truncate", "link_lsm_file_truncate", PROG_LSM, true },
};

static struct bpf_program *prog_of(struct iofence_bpf *skel, unsigned int i)
{
	struct bpf_program *p[TRACKER_PROGS] = {
		skel->progs.iofence_rq_issue,
		skel->progs.iofence_rq_requeue,
		skel->progs.iofence_rq_complete,
		skel->progs.iofence_rq_error,
		skel->progs.iofence_uring_create,
		skel->progs.iofence_uring_submit,
		skel->progs.iofence_uring_complete,
		skel->progs.iofence_file_permission,
		skel->progs.iofence_file_open,
		skel->progs.iofence_mmap_file,
		skel->progs.iofence_file_mprotect,
		skel->progs.iofence_path_truncate,
		skel->progs.iofence_file_truncate,
	};

	return p[i];
}

/*
 * libbpf explains a failure in several lines; the tracker says it in
 * one. Its first warning goes into that line, and all of them are
 * logged at debug level.
 */
static char libbpf_first[256];

static int libbpf_log(enum libbpf_print_level level, const char *fmt,
		      va_list ap)
{
	char line[512];
	size_t n;

	if (level == LIBBPF_DEBUG)
		return 0;
	vsnprintf(line, sizeof(line), fmt, ap);
	n = strlen(line);
	while (n && (line[n - 1] == '\n' || line[n - 1] == ' '))
		line[--n] = '\0';
	/*
	 * The first says what went wrong, the rest what failed with it;
	 * the memlock one only comes with whatever kept libbpf from probing.
	 */
	if (level == LIBBPF_WARN && n && !libbpf_first[0] &&
	    !strstr(line, "RLIMIT_MEMLOCK"))
		snprintf(libbpf_first, sizeof(libbpf_first), "%.255s",
			 strncmp(line, "libbpf: ", 8) ? line : line + 8);
	log_msg(LOG_DEBUG, "libbpf: %s", line);
	return 0;
}

static struct iofence_devkey devkey(dev_t dev)
{
	return (struct iofence_devkey){ major(dev), minor(dev) };
}

int tracker_blk_errno(unsigned int status)
{
	static const int table[] = {
		[0] = 0,	  [1] = EOPNOTSUPP, [2] = ETIMEDOUT,
		[3] = ENOSPC,	  [4] = ENOLINK,    [5] = EREMOTEIO,
		[6] = EBADE,	  [7] = ENODATA,    [8] = EILSEQ,
		[9] = ENOMEM,	  [10] = EIO,	    [11] = EREMCHG,
		[12] = EAGAIN,	  [13] = EBUSY,	    [14] = ETOOMANYREFS,
		[15] = EOVERFLOW, [16] = ENODEV,    [17] = ETIME,
		[19] = EINVAL,
	};

	if (status < sizeof(table) / sizeof(table[0]) &&
	    (table[status] || !status))
		return table[status];
	return EIO;
}

static int pin_path(const struct tracker *t, const char *name, char *buf,
		    size_t len)
{
	int n = snprintf(buf, len, "%s/%s", t->pin_dir, name);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* Every pin in the pin dir: ours, whatever build made them. */
static void unpin_all(struct tracker *t)
{
	struct dirent *de;
	DIR *d = opendir(t->pin_dir);

	if (!d)
		return;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			unlinkat(dirfd(d), de->d_name, 0);
	closedir(d);
}

/* --- what this kernel has ------------------------------------------- */

/* The prototype of tracepoint @tp's probe, or NULL when it has none. */
static const struct btf_type *tp_proto(const struct btf *btf, const char *tp)
{
	char name[128];
	const struct btf_type *t;
	int id;

	snprintf(name, sizeof(name), "btf_trace_%s", tp);
	id = btf__find_by_name_kind(btf, name, BTF_KIND_TYPEDEF);
	if (id < 0)
		return NULL;
	t = btf__type_by_id(btf, btf__type_by_id(btf, id)->type);
	if (!t || !btf_is_ptr(t))
		return NULL;
	t = btf__type_by_id(btf, t->type);
	return t && btf_is_func_proto(t) ? t : NULL;
}

/* The parameters of tracepoint @tp's probe, or -1 when it has none. */
static int tp_params(const struct btf *btf, const char *tp)
{
	const struct btf_type *t = tp_proto(btf, tp);

	return t ? btf_vlen(t) : -1;
}

/* Parameter @i of @tp's probe is a pointer to struct @type. */
static bool tp_param_is(const struct btf *btf, const char *tp, unsigned int i,
			const char *type)
{
	const struct btf_type *t = tp_proto(btf, tp), *p;

	if (!t || i >= btf_vlen(t))
		return false;
	p = btf__type_by_id(btf, btf_params(t)[i].type);
	if (!p || !btf_is_ptr(p))
		return false;
	p = btf__type_by_id(btf, p->type);
	return p && btf_is_struct(p) &&
	       !strcmp(btf__name_by_offset(btf, p->name_off), type);
}

/* The kernel has LSM hook @hook for BPF programs (CONFIG_BPF_LSM). */
static bool lsm_hook(const struct btf *btf, const char *hook)
{
	char name[128];

	snprintf(name, sizeof(name), "bpf_lsm_%s", hook);
	return btf__find_by_name_kind(btf, name, BTF_KIND_FUNC) >= 0;
}

static bool has_member(const struct btf *btf, const char *type,
		       const char *member)
{
	int id = btf__find_by_name_kind(btf, type, BTF_KIND_STRUCT);
	const struct btf_member *m;
	const struct btf_type *t;

	if (id < 0)
		return false;
	t = btf__type_by_id(btf, id);
	m = btf_members(t);
	for (unsigned int i = 0; i < btf_vlen(t); i++, m++)
		if (!strcmp(btf__name_by_offset(btf, m->name_off), member))
			return true;
	return false;
}

/*
 * BPF LSM programs attach anywhere CONFIG_BPF_LSM is built, but run only
 * where bpf is among the LSMs the kernel booted with (lsm=).
 */
static bool lsm_active(char *why, size_t len)
{
	char list[512], *tok, *save;
	ssize_t n;
	int fd;

	fd = open(TRACKER_LSM_LIST, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(why, len, "cannot read %s: %s", TRACKER_LSM_LIST,
			 strerror(errno));
		return false;
	}
	n = read(fd, list, sizeof(list) - 1);
	close(fd);
	if (n < 0) {
		snprintf(why, len, "cannot read %s: %s", TRACKER_LSM_LIST,
			 strerror(errno));
		return false;
	}
	list[n] = '\0';
	list[strcspn(list, "\n")] = '\0';
	for (tok = strtok_r(list, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save))
		if (!strcmp(tok, "bpf"))
			return true;
	snprintf(
		why, len,
		"bpf is not among the active LSMs (%s: %.160s; boot with lsm=...,bpf)",
		TRACKER_LSM_LIST, list);
	return false;
}

/*
 * Which programs load here, and where block_rq_issue has its request.
 * Returns 0, or -ENOTSUP with @why when the block programs cannot run.
 * Leaves in t->fence_why why the write fence cannot, if it cannot.
 */
static int probe_kernel(struct tracker *t, bool load[TRACKER_PROGS], char *why,
			size_t len)
{
	struct btf *btf = btf__load_vmlinux_btf();
	bool hb = true, lsm = true;
	int n;

	if (!btf) {
		snprintf(why, len, "the kernel has no BTF (%s)",
			 strerror(errno));
		return -ENOTSUP;
	}
	for (unsigned int i = 0; i < TRACKER_PROGS; i++) {
		if (progs[i].kind == PROG_LSM)
			load[i] = lsm_hook(btf, progs[i].tp);
		else
			load[i] = tp_params(btf, progs[i].tp) >= 0;
		if (progs[i].kind == PROG_BLOCK && !load[i] &&
		    !progs[i].optional) {
			snprintf(why, len, "the kernel has no %s tracepoint",
				 progs[i].tp);
			btf__free(btf);
			return -ENOTSUP;
		}
	}
	/* Before 5.11 the request was the second argument, after the queue. */
	n = tp_params(btf, "block_rq_issue");
	t->skel->rodata->rq_arg = n >= 3 ? 1 : 0;
	/* io_uring_submit_req was io_uring_submit_sqe, with the request first since 5.19. */
	t->submit_tp = NULL;
	if (!load[PROG_SUBMIT] && tp_params(btf, "io_uring_submit_sqe") == 3 &&
	    tp_param_is(btf, "io_uring_submit_sqe", 1, "io_kiocb")) {
		t->submit_tp = "io_uring_submit_sqe";
		load[PROG_SUBMIT] = true;
	}
	for (unsigned int i = 0; i < TRACKER_PROGS; i++)
		if (progs[i].kind == PROG_HEARTBEAT && !load[i])
			hb = false;
	/* io_uring_complete has passed its request second since 5.18. */
	if (tp_params(btf, "io_uring_complete") < 3 ||
	    !has_member(btf, "io_kiocb", "cqe"))
		hb = false;
	t->fence_why[0] = '\0';
	/* The switch runs on kernel-seen heartbeats, and knows the daemon by its ring. */
	if (!hb) {
		snprintf(
			t->fence_why, sizeof(t->fence_why),
			"this kernel gives no kernel-seen heartbeats, which the dead man's switch runs on");
		lsm = false;
	}
	for (unsigned int i = 0; lsm && i < TRACKER_PROGS; i++)
		if (progs[i].kind == PROG_LSM && !load[i] &&
		    !progs[i].optional) {
			snprintf(
				t->fence_why, sizeof(t->fence_why),
				"this kernel has no BPF LSM hook %s (CONFIG_BPF_LSM)",
				progs[i].tp);
			lsm = false;
		}
	if (lsm)
		lsm = lsm_active(t->fence_why, sizeof(t->fence_why));
	for (unsigned int i = 0; i < TRACKER_PROGS; i++) {
		if (progs[i].kind == PROG_HEARTBEAT)
			load[i] = hb;
		if (progs[i].kind == PROG_LSM)
			load[i] = load[i] && lsm;
	}
	t->heartbeats = hb;
	t->skel->rodata->fence_on = lsm;
	btf__free(btf);
	return 0;
}

/* The LSM programs are among those to load. */
static bool wants_fence(const bool load[TRACKER_PROGS])
{
	for (unsigned int i = 0; i < TRACKER_PROGS; i++)
		if (progs[i].kind == PROG_LSM && load[i])
			return true;
	return false;
}

/* --- loading, taking over, pinning ----------------------------------- */

static uint64_t object_id(void)
{
	size_t sz;
	const void *elf = iofence_bpf__elf_bytes(&sz);

	return (uint64_t)IOFENCE_LAYOUT << 32 |
	       crc32(0, (const Bytef *)elf, (uInt)sz);
}

/*
 * The programs of an earlier daemon still run, and they are this very
 * build's: keep them and their maps, so nothing in flight is lost.
 */
static bool can_take_over(struct tracker *t, const bool load[TRACKER_PROGS],
			  bool *fence)
{
	char path[PATH_MAX];
	struct iofence_daemon dm;
	__u32 zero = 0;
	int fd, lfd;
	bool ok;

	if (pin_path(t, "daemon", path, sizeof(path)))
		return false;
	fd = bpf_obj_get(path);
	if (fd < 0)
		return false;
	ok = !bpf_map_lookup_elem(fd, &zero, &dm) &&
	     dm.layout == IOFENCE_LAYOUT && dm.object_id == object_id();
	close(fd);
	/* Its LSM programs run where they loaded for it. */
	*fence = ok && dm.write_fence;
	for (unsigned int i = 0; ok && i < TRACKER_PROGS; i++) {
		if (!load[i] || (progs[i].kind == PROG_LSM && !*fence))
			continue;
		if (pin_path(t, progs[i].pin, path, sizeof(path)))
			return false;
		lfd = bpf_obj_get(path);
		ok = lfd >= 0;
		if (lfd >= 0)
			close(lfd);
	}
	return ok;
}

static void *map_mmap(struct bpf_map *m, size_t *len)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t sz = ((bpf_map__value_size(m) + 7ul) & ~7ul) *
		    bpf_map__max_entries(m);
	void *p;

	sz = (sz + page - 1) / page * page;
	p = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_SHARED, bpf_map__fd(m),
		 0);
	if (p == MAP_FAILED)
		return NULL;
	*len = sz;
	return p;
}

static int load(struct tracker *t, const bool load[TRACKER_PROGS])
{
	char path[PATH_MAX];
	struct bpf_map *map;
	int ret;

	for (unsigned int i = 0; i < TRACKER_PROGS; i++)
		bpf_program__set_autoload(prog_of(t->skel, i),
					  load[i] && !t->took_over);
	if (t->submit_tp) {
		ret = bpf_program__set_attach_target(
			t->skel->progs.iofence_uring_submit, 0, t->submit_tp);
		if (ret)
			return ret;
	}
	bpf_object__for_each_map(map, t->skel->obj)
	{
		if (bpf_map__is_internal(map))
			continue;
		ret = pin_path(t, bpf_map__name(map), path, sizeof(path));
		if (!ret)
			ret = bpf_map__set_pin_path(map, path);
		if (ret)
			return ret;
	}
	return iofence_bpf__load(t->skel);
}

static int attach(struct tracker *t, const bool load[TRACKER_PROGS])
{
	char path[PATH_MAX];
	struct bpf_link *l;
	int ret;

	for (unsigned int i = 0; i < TRACKER_PROGS; i++) {
		if (!load[i])
			continue;
		l = bpf_program__attach(prog_of(t->skel, i));
		if (!l)
			return -errno;
		t->links[i] = l;
		ret = pin_path(t, progs[i].pin, path, sizeof(path));
		if (!ret)
			ret = bpf_link__pin(l, path);
		if (ret)
			return ret;
	}
	return 0;
}

static void mirror_add_dev(struct tracker *t, const struct iofence_devkey *k,
			   const struct iofence_dev *v)
{
	struct tracker_slot *ms = &t->mine[v->slot];

	if (devstack_add(&ms->devs, makedev(k->major, k->minor), v->role))
		ms->counts_for[ms->devs.n - 1] = (int)v->slot;
}

/* What the pinned maps already hold: slots of storages not re-armed yet. */
static void mirror_load(struct tracker *t)
{
	int dfd = bpf_map__fd(t->skel->maps.devices);
	int rfd = bpf_map__fd(t->skel->maps.records);
	struct iofence_record_key rk, *rprev = NULL;
	struct iofence_devkey k, *prev = NULL;
	struct iofence_record rv;
	struct iofence_dev v;
	unsigned int n = 0;

	for (unsigned int i = 0; i < IOFENCE_MAX_SLOTS; i++) {
		if (t->slots[i].type == IOFENCE_SLOT_FREE)
			continue;
		t->mine[i].used = true;
		n++;
	}
	/* Entries of no slot (a daemon that died mid-teardown) go. */
	while (!bpf_map_get_next_key(dfd, prev, &k)) {
		if (!bpf_map_lookup_elem(dfd, &k, &v) &&
		    v.slot < IOFENCE_MAX_SLOTS && t->mine[v.slot].used)
			mirror_add_dev(t, &k, &v);
		else if (!bpf_map_delete_elem(dfd, &k))
			continue;
		prev = &k;
	}
	while (!bpf_map_get_next_key(rfd, rprev, &rk)) {
		if (!bpf_map_lookup_elem(rfd, &rk, &rv) &&
		    rv.slot < IOFENCE_MAX_SLOTS && t->mine[rv.slot].used) {
			t->mine[rv.slot].rec = rk;
			t->mine[rv.slot].has_rec = true;
		} else if (!bpf_map_delete_elem(rfd, &rk)) {
			continue;
		}
		rprev = &rk;
	}
	if (n)
		pr_info("BPF tracker: %u storage slots kept from an earlier daemon",
			n);
}

static int open_maps(struct tracker *t)
{
	t->slots = map_mmap(t->skel->maps.slots, &t->slots_len);
	t->ages = map_mmap(t->skel->maps.write_ages, &t->ages_len);
	t->dm = map_mmap(t->skel->maps.daemon, &t->dm_len);
	t->mine = calloc(IOFENCE_MAX_SLOTS, sizeof(*t->mine));
	t->by_idx = malloc(IOFENCE_MAX_SLOTS * sizeof(*t->by_idx));
	if (!t->slots || !t->ages || !t->dm || !t->mine || !t->by_idx)
		return -ENOMEM;
	for (unsigned int i = 0; i < IOFENCE_MAX_SLOTS; i++)
		t->by_idx[i] = -1;
	return 0;
}

/* A fresh skeleton, and what this kernel loads of it. */
static int reopen(struct tracker *t, bool want[TRACKER_PROGS], char *why,
		  size_t len)
{
	if (t->skel)
		iofence_bpf__destroy(t->skel);
	t->skel = iofence_bpf__open();
	if (!t->skel)
		return -errno;
	return probe_kernel(t, want, why, len);
}

/*
 * Loads the programs afresh (the pin dir was cleared). Where the LSM
 * programs do not load (a kernel that refuses them, as one whose ftrace
 * is locked down refuses every trampoline), the rest load without them.
 */
static int load_fresh(struct tracker *t, bool want[TRACKER_PROGS], char *why,
		      size_t len)
{
	char first[sizeof(t->fence_why)];
	int ret = load(t, want);

	if (!ret || !wants_fence(want))
		return ret;
	snprintf(first, sizeof(first),
		 "its LSM programs do not load: %s%s%.200s", strerror(-ret),
		 libbpf_first[0] ? "; libbpf: " : "", libbpf_first);
	libbpf_first[0] = '\0';
	ret = reopen(t, want, why, len);
	if (ret)
		return ret;
	for (unsigned int i = 0; i < TRACKER_PROGS; i++)
		if (progs[i].kind == PROG_LSM)
			want[i] = false;
	t->skel->rodata->fence_on = 0;
	snprintf(t->fence_why, sizeof(t->fence_why), "%s", first);
	return load(t, want);
}

int tracker_open(struct tracker *t, const char *pin_dir, struct chan *reply)
{
	bool want[TRACKER_PROGS], fence = false;
	char why[sizeof(t->off_why)] = "";
	struct statfs sfs;
	const char *what;
	int ret;

	memset(t, 0, sizeof(*t));
	t->reply = reply;
	t->sysfs_root = "/sys";
	libbpf_first[0] = '\0';
	libbpf_set_print(libbpf_log);
	t->pin_dir = strdup(pin_dir);
	if (!t->pin_dir)
		return -ENOMEM;
	if (mkdir(pin_dir, 0700) && errno != EEXIST) {
		ret = -errno;
		snprintf(
			why, sizeof(why),
			"cannot create the pin dir %s: %s (is bpffs mounted on /sys/fs/bpf?)",
			pin_dir, strerror(errno));
		goto fail;
	}
	/*
	 * Pins anywhere else fail only at load, with an errno that names
	 * no cause: say what is wrong.
	 */
	if (!statfs(pin_dir, &sfs) && sfs.f_type != BPF_FS_MAGIC) {
		ret = -ENOTSUP;
		snprintf(
			why, sizeof(why),
			"the pin dir %s is not on bpffs (file system magic 0x%lx; mount -t bpf bpffs /sys/fs/bpf)",
			pin_dir, (unsigned long)sfs.f_type);
		goto fail;
	}
	what = "cannot open the BPF object";
	ret = reopen(t, want, why, sizeof(why));
	if (ret == -ENOTSUP)
		goto fail;
	if (ret)
		goto fail_what;
	t->took_over = can_take_over(t, want, &fence);
	if (!t->took_over)
		unpin_all(t);
	what = "cannot load the BPF programs (they need BTF and CAP_BPF with CAP_PERFMON, or CAP_SYS_ADMIN)";
	if (t->took_over) {
		ret = load(t, want);
		if (ret) {
			/* Pins that looked like ours but are not: start afresh. */
			t->took_over = false;
			unpin_all(t);
			ret = reopen(t, want, why, sizeof(why));
			if (!ret)
				ret = load_fresh(t, want, why, sizeof(why));
		}
	} else {
		ret = load_fresh(t, want, why, sizeof(why));
	}
	if (ret == -ENOTSUP && why[0])
		goto fail;
	if (ret)
		goto fail_what;
	what = "cannot map its maps";
	ret = open_maps(t);
	if (ret)
		goto fail_what;
	if (!t->took_over) {
		what = "cannot attach and pin its programs";
		ret = attach(t, want);
		if (ret)
			goto fail_what;
		memset(t->dm, 0, sizeof(*t->dm));
		t->dm->layout = IOFENCE_LAYOUT;
		t->dm->object_id = object_id();
		fence = wants_fence(want);
		t->dm->write_fence = fence;
	}
	t->write_fence = fence;
	if (fence)
		t->fence_why[0] = '\0';
	else if (!t->fence_why[0])
		snprintf(
			t->fence_why, sizeof(t->fence_why),
			"the programs taken over from an earlier daemon run without it (its LSM programs did not load for that one)");
	mirror_load(t);
	t->active = true;
	pr_info("BPF tracker %s, pinned under %s%s%s",
		t->took_over ? "taken over from an earlier daemon" : "loaded",
		pin_dir,
		t->heartbeats ?
			"" :
			" (no kernel-seen heartbeats: this kernel lacks io_uring_submit_req)",
		fence ? ", with the kernel write fence" : "");
	if (!fence)
		pr_warn("kernel write fence off: %s; fenced storages take writes, no dead man's switch (heartbeats and fencing go on)",
			t->fence_why);
	return 0;

fail_what:
	snprintf(why, sizeof(why), "%s: %s%s%s", what, strerror(-ret),
		 libbpf_first[0] ? "; libbpf: " : "", libbpf_first);
	/* Nothing half-made stays pinned (the dir was cleared before). */
	if (t->skel && !t->took_over)
		unpin_all(t);
fail:
	pr_warn("BPF tracker off, no kernel evidence and no kernel write fence (heartbeats and fencing go on): %s",
		why);
	/* Ours when it is empty. */
	rmdir(pin_dir);
	tracker_close(t, false);
	snprintf(t->off_why, sizeof(t->off_why), "%s", why);
	return ret;
}

void tracker_close(struct tracker *t, bool unpin)
{
	if (t->active && unpin)
		unpin_all(t);
	for (unsigned int i = 0; i < TRACKER_PROGS; i++)
		if (t->links[i])
			bpf_link__destroy(t->links[i]);
	if (t->slots)
		munmap(t->slots, t->slots_len);
	if (t->ages)
		munmap(t->ages, t->ages_len);
	if (t->dm)
		munmap(t->dm, t->dm_len);
	if (t->skel)
		iofence_bpf__destroy(t->skel);
	/* Fails, as it should, while anything else is pinned there. */
	if (unpin && t->pin_dir)
		rmdir(t->pin_dir);
	free(t->pin_dir);
	free(t->mine);
	free(t->by_idx);
	memset(t, 0, sizeof(*t));
}

void tracker_register_ring(struct tracker *t)
{
	if (!t->active || !t->heartbeats)
		return;
	t->dm->tid = 0;
	t->dm->start_ns = 0;
	t->dm->ring = 0;
	t->dm->ring_created_ns = 0;
	t->dm->tgid = (__u32)getpid();
	t->dm->registered_ns = loop_now_ns();
	/* Last: the program reads the tid first. */
	__atomic_store_n(&t->dm->tid, (__u32)gettid(), __ATOMIC_RELEASE);
}

/* --- slots and their devices ------------------------------------------ */

static int find_uuid(struct tracker *t, const char *uuid)
{
	for (unsigned int i = 0; i < IOFENCE_MAX_SLOTS; i++)
		if (t->mine[i].used &&
		    !strncmp(t->slots[i].uuid, uuid, IOFENCE_UUID_SIZE))
			return (int)i;
	return -1;
}

_Static_assert(STORAGE_MAX <= IOFENCE_MAX_SLOTS,
	       "every storage index has a place in by_idx");

static int find_owner(struct tracker *t, const struct storage *s)
{
	int i = s->idx < STORAGE_MAX ? t->by_idx[s->idx] : -1;

	/* by_idx is a hint: the owner is what counts. */
	if (i >= 0 && t->mine[i].used && t->mine[i].owner == s)
		return i;
	for (i = 0; i < IOFENCE_MAX_SLOTS; i++)
		if (t->mine[i].used && t->mine[i].owner == s)
			return (int)i;
	return -1;
}

static int find_free(struct tracker *t)
{
	for (unsigned int i = 0; i < IOFENCE_MAX_SLOTS; i++)
		if (!t->mine[i].used)
			return (int)i;
	return -1;
}

static int dev_put(struct tracker *t, uint32_t slot, dev_t dev,
		   enum iofence_dev_role role)
{
	struct iofence_dev v = {
		.slot = slot,
		.role = role,
		.armed_ns = loop_now_ns() + ARM_MARGIN_NS,
	};
	struct iofence_devkey k = devkey(dev);

	if (bpf_map_update_elem(bpf_map__fd(t->skel->maps.devices), &k, &v,
				BPF_ANY))
		return -errno;
	return 0;
}

/* Every slot that lists @dev learns which slot it counts for now. */
static void set_owner(struct tracker *t, dev_t dev, int owner)
{
	for (unsigned int i = 0; i < IOFENCE_MAX_SLOTS; i++) {
		struct tracker_slot *ms = &t->mine[i];

		if (!ms->used)
			continue;
		for (unsigned int j = 0; j < ms->devs.n; j++)
			if (ms->devs.e[j].dev == dev)
				ms->counts_for[j] = owner;
	}
}

/*
 * @dev becomes @slot's, unless another armed slot has it: one device
 * counts for one storage, the first that armed it. Its own entry is kept
 * as it is (but for its role): a new armed_ns would leave the requests
 * it counted in flight there for ever. Returns the slot it counts for,
 * or a negative errno.
 */
static int dev_claim(struct tracker *t, uint32_t slot, dev_t dev,
		     enum iofence_dev_role role, const char *uuid)
{
	int fd = bpf_map__fd(t->skel->maps.devices);
	struct iofence_devkey k = devkey(dev);
	struct iofence_dev v;
	int ret;

	if (bpf_map_lookup_elem(fd, &k, &v))
		goto mine;
	if (v.slot == slot) {
		if (v.role == role)
			return (int)slot;
		v.role = role;
		return bpf_map_update_elem(fd, &k, &v, BPF_EXIST) ? -errno :
								    (int)slot;
	}
	if (v.slot < IOFENCE_MAX_SLOTS && t->mine[v.slot].used &&
	    devstack_has(&t->mine[v.slot].devs, dev)) {
		pr_info("%s: device %u:%u counts for storage %.*s, which armed it first",
			uuid, major(dev), minor(dev), IOFENCE_UUID_SIZE,
			t->slots[v.slot].uuid);
		return (int)v.slot;
	}
mine:
	ret = dev_put(t, slot, dev, role);
	if (ret)
		return ret;
	set_owner(t, dev, (int)slot);
	return (int)slot;
}

/* @dev leaves @slot: to another slot that wants it, or out of the map. */
static void dev_release(struct tracker *t, uint32_t slot, dev_t dev)
{
	int fd = bpf_map__fd(t->skel->maps.devices);
	struct iofence_devkey k = devkey(dev);
	struct iofence_dev v;

	if (bpf_map_lookup_elem(fd, &k, &v) || v.slot != slot)
		return;
	for (unsigned int i = 0; i < IOFENCE_MAX_SLOTS; i++) {
		struct devstack *ds = &t->mine[i].devs;

		if (i == slot || !t->mine[i].used)
			continue;
		for (unsigned int j = 0; j < ds->n; j++)
			if (ds->e[j].dev == dev) {
				if (!dev_put(t, i, dev, ds->e[j].role))
					set_owner(t, dev, (int)i);
				return;
			}
	}
	bpf_map_delete_elem(fd, &k);
}

static void devstack_of(struct tracker *t, const struct storage *s,
			struct devstack *ds)
{
	memset(ds, 0, sizeof(*ds));
	if (s->p.type == STORAGE_BLOCK) {
		if (s->dev)
			devstack_add_block(ds, s->dev, IOFENCE_DEV_TARGET,
					   t->sysfs_root);
		return;
	}
	if (!s->fs_dev)
		return;
	/* NFS and FUSE have anonymous devices: no block stack below. */
	if (major(s->fs_dev))
		devstack_add_block(ds, s->fs_dev, IOFENCE_DEV_FS,
				   t->sysfs_root);
	else
		devstack_add(ds, s->fs_dev, IOFENCE_DEV_FS);
}

static bool record_key(const struct storage *s, struct iofence_record_key *k)
{
	memset(k, 0, sizeof(*k));
	if (s->p.type == STORAGE_BLOCK) {
		if (!s->dev)
			return false;
		k->dev = devkey(s->dev);
	} else {
		if (!s->record_ino)
			return false;
		k->dev = devkey(s->record_dev);
		k->ino = s->record_ino;
	}
	k->offset = s->record_offset;
	return true;
}

/* --- a loop device's backing device, off the control plane ----------- */

struct lookup {
	struct msg m;
	struct tracker *t;
	struct chan *reply;
	uint32_t slot, generation;
	dev_t loop;
	char sysfs_root[64];
	int err;
	dev_t backing;
};

static void lookup_done(struct msg *m, void *ctx)
{
	struct lookup *l = container_of(m, struct lookup, m);
	struct tracker *t = l->t;
	struct tracker_slot *ms;

	if (!t->active)
		goto out;
	t->lookups--;
	ms = &t->mine[l->slot];
	ms->looking = false;
	if (!ms->used || t->slots[l->slot].generation != l->generation)
		goto out;
	if (l->err) {
		pr_info("%.*s: loop device %u:%u: its backing device is not known: %s",
			IOFENCE_UUID_SIZE, t->slots[l->slot].uuid,
			major(l->loop), minor(l->loop), strerror(-l->err));
		goto out;
	}
	/* A file on tmpfs, FUSE or NFS: no block device under it. */
	if (!major(l->backing))
		goto out;
	if (devstack_add(&ms->devs, l->backing, IOFENCE_DEV_LOOP_BACKING))
		ms->counts_for[ms->devs.n - 1] = dev_claim(
			t, l->slot, l->backing, IOFENCE_DEV_LOOP_BACKING,
			t->slots[l->slot].uuid);
out:
	free(l);
}

/*
 * LOOP_GET_STATUS64 stats the backing file in the kernel: on a dead
 * FUSE or NFS server it waits with it. Only this thread does.
 */
static void *lookup_main(void *arg)
{
	struct lookup *l = arg;
	struct loop_info64 info;
	char name[64], path[80];
	struct stat st;
	int fd;

	l->err = devstack_devname(l->loop, l->sysfs_root, name, sizeof(name));
	if (l->err)
		goto out;
	snprintf(path, sizeof(path), "/dev/%s", name);
	fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		l->err = -errno;
		goto out;
	}
	if (fstat(fd, &st) || !S_ISBLK(st.st_mode) || st.st_rdev != l->loop)
		l->err = -ENODEV;
	else if (ioctl(fd, LOOP_GET_STATUS64, &info))
		l->err = -errno;
	else
		l->backing = (dev_t)info.lo_device;
	close(fd);
out:
	chan_send(l->reply, &l->m, lookup_done);
	return NULL;
}

static void lookup_start(struct tracker *t, uint32_t slot, dev_t loop)
{
	struct tracker_slot *ms = &t->mine[slot];
	struct lookup *l;
	pthread_t th;

	if (!t->reply || ms->looking || t->lookups >= LOOKUPS_MAX)
		return;
	l = calloc(1, sizeof(*l));
	if (!l)
		return;
	l->t = t;
	l->reply = t->reply;
	l->slot = slot;
	l->generation = t->slots[slot].generation;
	l->loop = loop;
	snprintf(l->sysfs_root, sizeof(l->sysfs_root), "%s", t->sysfs_root);
	if (thread_start(&th, lookup_main, l)) {
		free(l);
		return;
	}
	pthread_detach(th);
	ms->looking = true;
	t->lookups++;
}

/* --- arming ------------------------------------------------------------- */

int tracker_arm(struct tracker *t, const struct storage *s)
{
	struct iofence_record_key rk;
	struct iofence_record rv;
	struct iofence_slot *ks;
	struct tracker_slot *ms;
	struct devstack ds;
	bool fresh, rec;
	int idx, ret;

	if (!t->active)
		return 0;
	idx = find_uuid(t, s->p.uuid);
	fresh = idx < 0;
	if (fresh)
		idx = find_free(t);
	if (idx < 0) {
		pr_err("%s: no free BPF slot (%d in use)", s->p.uuid,
		       IOFENCE_MAX_SLOTS);
		return -ENOSPC;
	}
	ks = &t->slots[idx];
	ms = &t->mine[idx];
	if (fresh) {
		/* No device points here yet: nothing counts into it. */
		memset(ks, 0, sizeof(*ks));
		memset(&t->ages[idx], 0, sizeof(t->ages[idx]));
		memset(ms, 0, sizeof(*ms));
		snprintf(ks->uuid, sizeof(ks->uuid), "%s", s->p.uuid);
		ks->armed_ns = loop_now_ns();
	}
	ks->type = s->p.type == STORAGE_BLOCK ? IOFENCE_SLOT_BLOCK :
						IOFENCE_SLOT_FILE;
	/* The dead man's switch counts from the last kernel-seen heartbeat. */
	ks->timeout_ns = (uint64_t)s->p.timeout_ms * NS_PER_MS;
	ks->guarded = t->write_fence;
	ks->generation++;
	ms->used = true;
	ms->owner = s;
	if (s->idx < STORAGE_MAX)
		t->by_idx[s->idx] = idx;

	/* The record: heartbeats count only on this one. */
	rec = record_key(s, &rk);
	if (ms->has_rec && (!rec || memcmp(&rk, &ms->rec, sizeof(rk))))
		bpf_map_delete_elem(bpf_map__fd(t->skel->maps.records),
				    &ms->rec);
	ms->has_rec = false;
	if (rec) {
		rv.slot = idx;
		rv.generation = ks->generation;
		if (bpf_map_update_elem(bpf_map__fd(t->skel->maps.records), &rk,
					&rv, BPF_ANY)) {
			ret = -errno;
			pr_err("%s: record map: %s", s->p.uuid, strerror(-ret));
			return ret;
		}
		ms->rec = rk;
		ms->has_rec = true;
	}

	/* The devices: what it no longer sits on goes, the rest comes. */
	devstack_of(t, s, &ds);
	if (ds.truncated)
		pr_warn("%s: more than %d devices under and over it; the rest are not tracked",
			s->p.uuid, DEVSTACK_MAX);
	for (unsigned int i = 0; i < ms->devs.n; i++)
		if (!devstack_has(&ds, ms->devs.e[i].dev))
			dev_release(t, idx, ms->devs.e[i].dev);
	ms->devs = ds;
	for (unsigned int i = 0; i < ds.n; i++) {
		ret = dev_claim(t, idx, ds.e[i].dev, ds.e[i].role, s->p.uuid);
		ms->counts_for[i] = ret;
		if (ret < 0) {
			pr_err("%s: device map: %s", s->p.uuid, strerror(-ret));
			return ret;
		}
	}
	for (unsigned int i = 0; i < ds.n; i++)
		if (ds.e[i].role != IOFENCE_DEV_PARTITION &&
		    ds.e[i].role != IOFENCE_DEV_HOLDER &&
		    devstack_is_loop(ds.e[i].dev, t->sysfs_root))
			lookup_start(t, idx, ds.e[i].dev);
	return 0;
}

/* Slot @idx leaves its devices and record, and is free. */
static void slot_free(struct tracker *t, int idx)
{
	struct iofence_slot *ks = &t->slots[idx];
	struct tracker_slot *ms = &t->mine[idx];

	for (unsigned int i = 0; i < ms->devs.n; i++)
		dev_release(t, idx, ms->devs.e[i].dev);
	if (ms->has_rec)
		bpf_map_delete_elem(bpf_map__fd(t->skel->maps.records),
				    &ms->rec);
	/* No device points here any more: a teardown lifts the kernel fence. */
	ks->guarded = 0;
	__atomic_store_n(&ks->fenced, 0, __ATOMIC_RELEASE);
	ks->fenced_at_ns = 0;
	ks->writes_refused = 0;
	ks->type = IOFENCE_SLOT_FREE;
	ks->generation++;
	memset(ks->uuid, 0, sizeof(ks->uuid));
	ms->used = false;
	ms->owner = NULL;
	ms->has_rec = false;
	ms->devs.n = 0;
}

void tracker_disarm(struct tracker *t, const struct storage *s)
{
	int idx;

	if (!t->active || (idx = find_owner(t, s)) < 0)
		return;
	slot_free(t, idx);
}

void tracker_forget(struct tracker *t, const char *uuid)
{
	int idx;

	if (!t->active || (idx = find_uuid(t, uuid)) < 0 || t->mine[idx].owner)
		return;
	pr_info("%s: its BPF slot %d goes with it (kept since an earlier daemon; the kernel fence on it ends)",
		uuid, idx);
	slot_free(t, idx);
}

void tracker_forget_stale(struct tracker *t,
			  bool (*keep)(const char *uuid, void *ctx), void *ctx)
{
	char uuid[IOFENCE_UUID_SIZE + 1];

	if (!t->active)
		return;
	for (unsigned int i = 0; i < IOFENCE_MAX_SLOTS; i++) {
		if (!t->mine[i].used || t->mine[i].owner)
			continue;
		snprintf(uuid, sizeof(uuid), "%.*s", IOFENCE_UUID_SIZE,
			 t->slots[i].uuid);
		if (keep(uuid, ctx))
			continue;
		pr_info("%s: BPF slot %u of an earlier daemon names a storage that is no longer armed; freed, with its kernel fence",
			uuid, i);
		slot_free(t, (int)i);
	}
}

bool tracker_holds(const struct tracker *t)
{
	if (!t->active)
		return false;
	for (unsigned int i = 0; i < IOFENCE_MAX_SLOTS; i++)
		if (t->mine[i].used)
			return true;
	return false;
}

/* --- the kernel write fence ----------------------------------------------- */

/* The guarded slot of @s, or NULL. */
static struct iofence_slot *guarded_slot(struct tracker *t,
					 const struct storage *s)
{
	int idx;

	if (!t->active || !t->write_fence || (idx = find_owner(t, s)) < 0 ||
	    !t->slots[idx].guarded)
		return NULL;
	return &t->slots[idx];
}

void tracker_fence(struct tracker *t, const struct storage *s)
{
	struct iofence_slot *ks = guarded_slot(t, s);
	uint64_t now, at;

	if (!ks || (__atomic_load_n(&ks->fenced, __ATOMIC_ACQUIRE) &
		    IOFENCE_FENCED_BY_DAEMON))
		return;
	/*
	 * Where the switch ran out first, the programs have refused every
	 * write since, whether they saw one or not.
	 */
	now = loop_now_ns();
	at = iofence_deadman_at(ks);
	if (!ks->fenced_at_ns)
		ks->fenced_at_ns = at && at < now ? at : now;
	__atomic_fetch_or(&ks->fenced, IOFENCE_FENCED_BY_DAEMON,
			  __ATOMIC_SEQ_CST);
}

void tracker_unfence(struct tracker *t, const struct storage *s)
{
	struct iofence_slot *ks = guarded_slot(t, s);

	if (!ks)
		return;
	ks->writes_refused = 0;
	ks->fenced_at_ns = 0;
	__atomic_store_n(&ks->fenced, 0, __ATOMIC_RELEASE);
}

/* Fenced, or its switch ran out and the programs refuse the next write. */
static bool slot_fenced(const struct iofence_slot *ks, uint64_t now)
{
	uint64_t at = iofence_deadman_at(ks);

	return __atomic_load_n(&ks->fenced, __ATOMIC_ACQUIRE) ||
	       (at && now > at);
}

bool tracker_fenced(struct tracker *t, const struct storage *s)
{
	struct iofence_slot *ks = guarded_slot(t, s);

	return ks && slot_fenced(ks, loop_now_ns());
}

/* --- evidence ------------------------------------------------------------ */

int tracker_read(struct tracker *t, const struct storage *s,
		 struct tracker_evidence *ev)
{
	int idx;

	if (!t->active || (idx = find_owner(t, s)) < 0)
		return -ENOENT;
	memset(ev, 0, sizeof(*ev));
	ev->slot = idx;
	ev->now_ns = loop_now_ns();
	memcpy(&ev->s, &t->slots[idx], sizeof(ev->s));
	if (ev->s.writes_in_flight > 0)
		ev->oldest_write = write_ages_oldest(&t->ages[idx], ev->now_ns,
						     &ev->oldest_write_min_ns,
						     &ev->oldest_write_max_ns);
	return 0;
}

int tracker_slot(struct tracker *t, const struct storage *s,
		 const struct iofence_slot **slot,
		 const struct iofence_write_ages **ages)
{
	int idx;

	*slot = NULL;
	*ages = NULL;
	if (!t->active || (idx = find_owner(t, s)) < 0)
		return -ENOENT;
	*slot = &t->slots[idx];
	*ages = &t->ages[idx];
	return idx;
}

static json_t *ago_ms(uint64_t now, uint64_t then)
{
	if (!then)
		return json_null();
	return json_integer(
		now > then ? (json_int_t)((now - then) / NS_PER_MS) : 0);
}

static json_t *devices_json(struct tracker *t, uint32_t slot)
{
	const struct tracker_slot *ms = &t->mine[slot];
	json_t *list = json_array();
	char name[32];

	for (unsigned int i = 0; i < ms->devs.n; i++) {
		int owner = ms->counts_for[i];
		json_t *o;

		snprintf(name, sizeof(name), "%u:%u", major(ms->devs.e[i].dev),
			 minor(ms->devs.e[i].dev));
		o = json_pack("{s:s,s:s}", "device", name, "role",
			      devstack_role_name(ms->devs.e[i].role));
		if (owner >= 0 && owner < IOFENCE_MAX_SLOTS &&
		    (uint32_t)owner != slot)
			json_object_set_new(
				o, "counts_for",
				json_stringn(t->slots[owner].uuid,
					     strnlen(t->slots[owner].uuid,
						     IOFENCE_UUID_SIZE)));
		json_array_append_new(list, o);
	}
	return list;
}

static json_t *hist_json(const struct iofence_slot *s)
{
	json_t *a = json_array();
	unsigned int n = IOFENCE_HIST_SLOTS;

	/* Up to the last slot that counted something. */
	while (n && !s->latency_us[n - 1])
		n--;
	for (unsigned int i = 0; i < n; i++)
		json_array_append_new(
			a, json_integer((json_int_t)s->latency_us[i]));
	return a;
}

/* The kernel write fence of a slot, as query-status shows it. */
static json_t *fence_json(const struct iofence_slot *k, uint64_t now)
{
	uint64_t at = iofence_deadman_at(k), since = k->fenced_at_ns;
	bool fenced = k->guarded && slot_fenced(k, now);
	json_t *why = json_array();

	if (k->fenced & IOFENCE_FENCED_BY_DAEMON)
		json_array_append_new(why, json_string("daemon"));
	if ((k->fenced & IOFENCE_FENCED_DEADMAN) || (at && now > at)) {
		json_array_append_new(why, json_string("dead man's switch"));
		if (!since || at < since)
			since = at;
	}
	return json_pack("{s:b,s:b,s:o,s:o,s:o,s:I,s:I}", "active",
			 (bool)k->guarded, "fenced", fenced, "reasons", why,
			 "since_ms", fenced ? ago_ms(now, since) : json_null(),
			 "switch_in_ms",
			 at ? json_integer((json_int_t)((int64_t)(at - now) /
							(int64_t)NS_PER_MS)) :
			      json_null(),
			 "timeout_ms", (json_int_t)(k->timeout_ns / NS_PER_MS),
			 "writes_refused", (json_int_t)k->writes_refused);
}

json_t *tracker_json(struct tracker *t, const struct storage *s)
{
	dev_t main_dev = s->p.type == STORAGE_BLOCK ? s->dev : s->fs_dev;
	struct tracker_evidence ev;
	const struct iofence_slot *k = &ev.s;
	json_t *oldest;
	char dev[32];

	snprintf(dev, sizeof(dev), "%u:%u", major(main_dev), minor(main_dev));
	if (tracker_read(t, s, &ev))
		return main_dev ? json_pack("{s:s,s:b}", "device", dev,
					    "tracked", 0) :
				  json_null();
	oldest = ev.oldest_write ?
			 json_pack("{s:I,s:I}", "min",
				   (json_int_t)(ev.oldest_write_min_ns /
						NS_PER_MS),
				   "max",
				   (json_int_t)(ev.oldest_write_max_ns /
						NS_PER_MS)) :
			 json_null();
	return json_pack(
		"{s:s,s:b,s:i,s:o,s:I,s:I,s:I,s:i,s:i,s:o,s:o,s:I,s:I,s:I,"
		"s:{s:I,s:I,s:o},s:o,s:{s:b,s:I,s:I,s:o,s:i},s:o}",
		"device", dev, "tracked", 1, "slot", (int)ev.slot, "devices",
		devices_json(t, ev.slot), "completions",
		(json_int_t)(k->done_ok + k->done_failed), "errors",
		(json_int_t)k->done_failed, "bytes", (json_int_t)k->bytes,
		"last_error",
		k->done_failed ? tracker_blk_errno(k->last_error_status) : 0,
		"last_error_status", (int)k->last_error_status, "since_ok_ms",
		ago_ms(ev.now_ns, k->last_ok_ns), "since_error_ms",
		ago_ms(ev.now_ns, k->last_error_ns), "errors_logged",
		(json_int_t)k->errors_logged, "requeued",
		(json_int_t)k->requeued, "untimed", (json_int_t)k->untimed,
		"in_flight", "reads",
		(json_int_t)(k->reads_in_flight > 0 ? k->reads_in_flight : 0),
		"writes",
		(json_int_t)(k->writes_in_flight > 0 ? k->writes_in_flight : 0),
		"oldest_write_ms", oldest, "latency_us_log2", hist_json(k),
		"heartbeats", "seen_by_kernel", t->heartbeats, "count",
		(json_int_t)k->heartbeats, "failed",
		(json_int_t)k->heartbeats_failed, "since_ms",
		ago_ms(ev.now_ns, k->last_heartbeat_ns), "last_result",
		k->last_heartbeat_res, "kernel_fence",
		fence_json(k, ev.now_ns));
}

// SPDX-License-Identifier: GPL-2.0-only
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "iofence.skel.h"
#include "log.h"
#include "tracker.h"

/* The link's pin name; maps are pinned under their own names. */
#define LINK_PIN_COMPLETE "link_block_rq_complete"

static int libbpf_log(enum libbpf_print_level level, const char *fmt,
		      va_list ap)
{
	char line[512];
	size_t n;

	if (level == LIBBPF_DEBUG)
		return 0;
	vsnprintf(line, sizeof(line), fmt, ap);
	n = strlen(line);
	if (n && line[n - 1] == '\n')
		line[n - 1] = '\0';
	log_msg(level == LIBBPF_WARN ? LOG_WARNING : LOG_DEBUG, "libbpf: %s",
		line);
	return 0;
}

uint32_t tracker_kdev(uint64_t dev)
{
	return IOFENCE_MKDEV(major(dev), minor(dev));
}

static int pin_path(const struct tracker *t, const char *name, char *buf,
		    size_t len)
{
	int n = snprintf(buf, len, "%s/%s", t->pin_dir, name);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/*
 * A pinned link left by an earlier daemon keeps the program attached
 * while we start; replace its pin only once our own link is attached so
 * completions are counted throughout.
 */
static int pin_link(struct tracker *t, struct bpf_link *link, const char *name)
{
	char path[PATH_MAX];
	int ret;

	ret = pin_path(t, name, path, sizeof(path));
	if (ret)
		return ret;
	if (unlink(path) && errno != ENOENT)
		return -errno;
	return bpf_link__pin(link, path);
}

int tracker_open(struct tracker *t, const char *pin_dir)
{
	struct bpf_map *map;
	char path[PATH_MAX];
	int ret;

	memset(t, 0, sizeof(*t));
	t->pin_dir = strdup(pin_dir);
	if (!t->pin_dir)
		return -ENOMEM;
	libbpf_set_print(libbpf_log);

	if (mkdir(pin_dir, 0700) && errno != EEXIST) {
		ret = -errno;
		pr_warn("BPF tracker off: cannot create pin dir %s: %s (is bpffs mounted on /sys/fs/bpf?)",
			pin_dir, strerror(errno));
		goto err;
	}
	t->skel = iofence_bpf__open();
	if (!t->skel) {
		ret = -errno;
		pr_warn("BPF tracker off: cannot open the BPF object: %s",
			strerror(errno));
		goto err;
	}
	/* Pinned maps outlive the daemon: a restart reuses them. */
	bpf_object__for_each_map(map, t->skel->obj)
	{
		ret = pin_path(t, bpf_map__name(map), path, sizeof(path));
		if (!ret)
			ret = bpf_map__set_pin_path(map, path);
		if (ret)
			goto err_skel;
	}
	ret = iofence_bpf__load(t->skel);
	if (ret) {
		pr_warn("BPF tracker off: cannot load the BPF program: %s (needs BTF and CAP_BPF/CAP_SYS_ADMIN)",
			strerror(-ret));
		goto err_skel;
	}
	t->complete_link =
		bpf_program__attach(t->skel->progs.block_rq_complete);
	if (!t->complete_link) {
		ret = -errno;
		pr_warn("BPF tracker off: cannot attach to block_rq_complete: %s",
			strerror(errno));
		goto err_skel;
	}
	ret = pin_link(t, t->complete_link, LINK_PIN_COMPLETE);
	if (ret) {
		pr_warn("BPF tracker off: cannot pin its link in %s: %s",
			pin_dir, strerror(-ret));
		goto err_skel;
	}
	t->active = true;
	pr_info("BPF tracker loaded, pinned under %s", pin_dir);
	return 0;

err_skel:
	tracker_close(t, true);
	return ret;
err:
	free(t->pin_dir);
	t->pin_dir = NULL;
	return ret;
}

void tracker_close(struct tracker *t, bool unpin)
{
	struct bpf_map *map;

	if (t->complete_link) {
		if (unpin)
			bpf_link__unpin(t->complete_link);
		bpf_link__destroy(t->complete_link);
	}
	if (t->skel) {
		if (unpin) {
			bpf_object__for_each_map(map, t->skel->obj)
				bpf_map__unpin(map, NULL);
		}
		iofence_bpf__destroy(t->skel);
	}
	/* Fails, as it should, while anything else is pinned there. */
	if (unpin && t->pin_dir)
		rmdir(t->pin_dir);
	free(t->pin_dir);
	memset(t, 0, sizeof(*t));
}

int tracker_add_dev(struct tracker *t, uint32_t kdev, uint32_t storage_idx)
{
	struct dev_stats st = { .storage_idx = storage_idx };
	int fd;

	if (!t->active)
		return 0;
	fd = bpf_map__fd(t->skel->maps.dev_stats);
	/*
	 * An entry kept from before a restart keeps its counts: rewriting it
	 * would race with the program's increments.
	 */
	if (!bpf_map_lookup_elem(fd, &kdev, &st) &&
	    st.storage_idx == storage_idx)
		return 0;
	st = (struct dev_stats){ .storage_idx = storage_idx };
	return bpf_map_update_elem(fd, &kdev, &st, BPF_ANY) ? -errno : 0;
}

int tracker_del_dev(struct tracker *t, uint32_t kdev)
{
	int fd;

	if (!t->active)
		return 0;
	fd = bpf_map__fd(t->skel->maps.dev_stats);
	if (bpf_map_delete_elem(fd, &kdev) && errno != ENOENT)
		return -errno;
	return 0;
}

int tracker_read_dev(struct tracker *t, uint32_t kdev, struct dev_stats *out)
{
	if (!t->active)
		return -ENOENT;
	if (bpf_map_lookup_elem(bpf_map__fd(t->skel->maps.dev_stats), &kdev,
				out))
		return -errno;
	return 0;
}
